/* Placeholder: the elemwise_unary op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_elemwise_unary[] = {NULL};
