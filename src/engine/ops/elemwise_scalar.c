/* Placeholder: the elemwise_scalar op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_elemwise_scalar[] = {NULL};
