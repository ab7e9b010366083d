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
  X(C_device_check, 1)     \
  X(C_sym_variable, 1)     \
  X(C_sym_create, 6)       \
  X(C_sym_group, 1)        \
  X(C_sym_compose, 3)      \
  X(C_sym_arguments, 1)    \
  X(C_sym_aux, 1)          \
  X(C_sym_outputs, 1)      \
  X(C_sym_internals, 1)    \
  X(C_sym_children, 1)     \
  X(C_sym_get_output, 2)   \
  X(C_sym_num_outputs, 1)  \
  X(C_sym_attr_get, 1)     \
  X(C_sym_attr_set, 3)     \
  X(C_sym_to_json, 1)      \
  X(C_sym_from_json, 1)    \
  X(C_sym_infer, 3)        \
  X(C_sym_nodes, 1)        \
  X(C_exec_bind, 9)        \
  X(C_gpu_memory, 2)       \
  X(C_exec_forward, 2)     \
  X(C_exec_backward, 2)    \
  X(C_exec_outputs, 1)     \
  X(C_exec_stats, 1)       \
  X(C_nd_copy_into, 2)     \
  X(C_nd_save, 3)          \
  X(C_nd_load, 1)          \
  X(C_nd_save_raw, 2)      \
  X(C_nd_load_raw, 1)      \
  X(C_name_reset, 0)       \
  X(C_io_arrayiter, 6)     \
  X(C_io_mnist, 3)         \
  X(C_io_csv, 6)           \
  X(C_io_reset, 1)         \
  X(C_io_next, 1)          \
  X(C_io_value, 1)         \
  X(C_io_value_into, 3)    \
  X(C_exec_predict, 4)     \
  X(C_io_num_pad, 1)       \
  X(C_io_drop, 1)          \
  X(C_io_info, 1)          \
  X(C_io_have_zlib, 0)     \
  X(C_pb_decode, 3)        \
  X(C_pb_encode, 3)        \
  X(C_pb_unpack, 2)        \
  X(C_nd_invoke_into, 5)        \
  X(C_nd_invoke_into_each, 5)

#define ARGS0 void
#define ARGS1 SEXP
#define ARGS2 SEXP, SEXP
#define ARGS3 SEXP, SEXP, SEXP
#define ARGS4 SEXP, SEXP, SEXP, SEXP
#define ARGS5 SEXP, SEXP, SEXP, SEXP, SEXP
#define ARGS6 SEXP, SEXP, SEXP, SEXP, SEXP, SEXP
#define ARGS8 SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP
#define ARGS9 SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP
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
