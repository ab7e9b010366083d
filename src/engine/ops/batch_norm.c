/* Placeholder: the batch_norm op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_batch_norm[] = {NULL};
