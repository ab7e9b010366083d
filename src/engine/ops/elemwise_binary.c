/* Placeholder: the elemwise_binary op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_elemwise_binary[] = {NULL};
