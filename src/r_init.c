/* Routine registration (no dynamic symbol lookup). */
#include <R_ext/Rdynload.h>

#include "r_glue.h"

#define CALLS(X)          \
  X(C_nd_from_r, 4)       \
  X(C_nd_to_r, 1)         \
  X(C_nd_dim, 1)          \
  X(C_nd_ctx, 1)          \
  X(C_nd_dtype, 1)        \
  X(C_nd_is_valid, 1)     \
  X(C_nd_copyto, 3)       \
  X(C_nd_full, 4)         \
  X(C_nd_invoke, 5)       \
  X(C_nd_backward, 5)     \
  X(C_op_info, 0)         \
  X(C_rng_seed, 1)        \
  X(C_mem_live, 0)        \
  X(C_gpu_load, 1)        \
  X(C_device_check, 1)

#define ARGS0 void
#define ARGS1 SEXP
#define ARGS2 SEXP, SEXP
#define ARGS3 SEXP, SEXP, SEXP
#define ARGS4 SEXP, SEXP, SEXP, SEXP
#define ARGS5 SEXP, SEXP, SEXP, SEXP, SEXP
#define ARGS6 SEXP, SEXP, SEXP, SEXP, SEXP, SEXP
#define DECLARE(name, n) SEXP name(ARGS##n);
CALLS(DECLARE)
#undef DECLARE

static const R_CallMethodDef call_methods[] = {
#define ENTRY(name, n) {#name, (DL_FUNC)&name, n},
    CALLS(ENTRY)
#undef ENTRY
    {NULL, NULL, 0}};

void R_init_symnet(DllInfo *dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  R_forceSymbols(dll, TRUE);
}
