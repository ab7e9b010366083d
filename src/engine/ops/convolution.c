/* Placeholder: the convolution op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_convolution[] = {NULL};
