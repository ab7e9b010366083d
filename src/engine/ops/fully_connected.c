/* Placeholder: the fully_connected op family is not written yet. */
#include "../op.h"

const sn_op *const sn_family_fully_connected[] = {NULL};
