/* Placeholder: the concat_split op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_concat_split[] = {NULL};
