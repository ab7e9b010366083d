/* Placeholder: the optimizer_update op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_optimizer_update[] = {NULL};
