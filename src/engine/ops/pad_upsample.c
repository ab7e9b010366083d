/* Placeholder: the pad_upsample op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_pad_upsample[] = {NULL};
