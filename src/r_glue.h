/* Shared pieces of the .Call glue: turning engine errors into R errors,
 * and external-pointer handles for tensors, symbols and executors.
 *
 * Rule: a glue function frees every engine object it holds before it calls
 * sn_r_fail() (which longjmps through Rf_error). */
#ifndef SN_R_GLUE_H
#define SN_R_GLUE_H

#define R_NO_REMAP
#include <R.h>
#include <Rinternals.h>

#include "engine/op.h"
#include "engine/tensor.h"

/* Raises the engine's last error as an R error. */
void sn_r_fail(int status) __attribute__((noreturn));
#define SN_R_TRY(expr)                  \
  do {                                  \
    int sn_r_status_ = (expr);          \
    if (sn_r_status_ != SN_OK)          \
      sn_r_fail(sn_r_status_);          \
  } while (0)

/* Wraps a tensor (ownership of its storage reference moves into the
 * handle) as an MXNDArray external pointer with a finalizer. */
SEXP sn_r_tensor_wrap(sn_tensor *t);
/* The tensor behind an MXNDArray; R error when x is not a live handle. */
sn_tensor *sn_r_tensor(SEXP x, const char *what);
/* list(device = , device_id = , device_typeid = ) or NULL (cpu). */
sn_device sn_r_device(SEXP ctx);
SEXP sn_r_context(sn_device dev);
/* R dim (reversed) <-> C shape. */
int sn_r_shape_from_dim(SEXP dim, sn_shape *out);
SEXP sn_r_dim_from_shape(const sn_shape *s);
/* Reads key/value character vectors into arrays valid while the SEXPs are. */
int sn_r_kv(SEXP keys, SEXP vals, const char ***k, const char ***v);
const char *sn_r_string(SEXP x, const char *what);
/* The engine objects behind executor and iterator handles (R errors when
 * the handle is not one or no longer valid). */
struct sn_executor *sn_r_exec(SEXP x);
struct sn_io_iter *sn_r_io(SEXP x);

#endif
