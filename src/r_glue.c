/* Handles, conversions and errors shared by the glue files. */
#include <string.h>

#include "engine/device.h"
#include "r_glue.h"

void sn_r_fail(int status) {
  char msg[2048];
  (void)status;
  snprintf(msg, sizeof msg, "%s", sn_last_error());
  sn_clear_error();
  Rf_error("%s", msg);
}

static void sn_r_tensor_finalize(SEXP x) {
  sn_tensor *t = R_ExternalPtrAddr(x);
  if (!t) return;
  sn_tensor_release(t);
  free(t);
  R_ClearExternalPtr(x);
}

/* R's collector sees an NDArray as a few bytes, not the engine memory
 * behind it, so garbage NDArrays (a loop's temporaries, iterator batches)
 * could pile up engine memory long before R collects.  When the engine's
 * host memory has grown by more than max(256 MiB, what was live after the
 * last such collection), collect first: amortised, and bounded to about
 * twice what is really in use. */
static void sn_r_memory_pressure(void) {
  static int64_t mark = 0;
  const int64_t floor = (int64_t)256 << 20;
  int64_t live = sn_host_live_bytes();
  if (live - mark > (mark > floor ? mark : floor)) {
    R_gc();
    mark = sn_host_live_bytes();
  }
}

SEXP sn_r_tensor_wrap(sn_tensor *t) {
  sn_r_memory_pressure(); /* may run R's collector, as any R allocation may */
  /* R allocations first: if they fail, t is untouched and still the
   * caller's; the move happens only once nothing can fail. */
  SEXP ptr = PROTECT(R_MakeExternalPtr(NULL, Rf_install("MXNDArray"), R_NilValue));
  R_RegisterCFinalizerEx(ptr, sn_r_tensor_finalize, TRUE);
  Rf_setAttrib(ptr, R_ClassSymbol, Rf_mkString("MXNDArray"));
  sn_tensor *h = malloc(sizeof *h);
  if (!h) {
    sn_tensor_release(t);
    Rf_error("out of memory");
  }
  *h = *t;
  memset(t, 0, sizeof *t);
  R_SetExternalPtrAddr(ptr, h);
  UNPROTECT(1);
  return ptr;
}

sn_tensor *sn_r_tensor(SEXP x, const char *what) {
  if (TYPEOF(x) != EXTPTRSXP || R_ExternalPtrTag(x) != Rf_install("MXNDArray"))
    Rf_error("%s must be an MXNDArray", what);
  sn_tensor *t = R_ExternalPtrAddr(x);
  if (!t)
    Rf_error("%s is an MXNDArray handle that is no longer valid (restored from saveRDS or a "
             "previous session?); save arrays with mx.nd.save and read them with mx.nd.load",
             what);
  return t;
}

sn_device sn_r_device(SEXP ctx) {
  sn_device d = sn_cpu();
  if (Rf_isNull(ctx)) return d;
  if (!Rf_isNewList(ctx)) Rf_error("ctx must be an MXContext, such as mx.cpu() or mx.gpu(0)");
  SEXP names = Rf_getAttrib(ctx, R_NamesSymbol);
  for (R_xlen_t i = 0; i < XLENGTH(ctx); i++) {
    const char *n = CHAR(STRING_ELT(names, i));
    SEXP v = VECTOR_ELT(ctx, i);
    if (!strcmp(n, "device_typeid")) d.type = Rf_asInteger(v);
    else if (!strcmp(n, "device_id")) d.id = Rf_asInteger(v);
  }
  if ((d.type != SN_DEV_CPU && d.type != SN_DEV_GPU) || d.id < 0 || d.id == NA_INTEGER)
    Rf_error("ctx is not a valid MXContext");
  return d;
}

SEXP sn_r_context(sn_device dev) {
  SEXP ctx = PROTECT(Rf_allocVector(VECSXP, 3));
  SEXP names = PROTECT(Rf_allocVector(STRSXP, 3));
  SET_VECTOR_ELT(ctx, 0, Rf_mkString(dev.type == SN_DEV_GPU ? "gpu" : "cpu"));
  SET_VECTOR_ELT(ctx, 1, Rf_ScalarInteger(dev.id));
  SET_VECTOR_ELT(ctx, 2, Rf_ScalarInteger(dev.type));
  SET_STRING_ELT(names, 0, Rf_mkChar("device"));
  SET_STRING_ELT(names, 1, Rf_mkChar("device_id"));
  SET_STRING_ELT(names, 2, Rf_mkChar("device_typeid"));
  Rf_setAttrib(ctx, R_NamesSymbol, names);
  Rf_setAttrib(ctx, R_ClassSymbol, Rf_mkString("MXContext"));
  UNPROTECT(2);
  return ctx;
}

int sn_r_shape_from_dim(SEXP dim, sn_shape *out) {
  R_xlen_t n = XLENGTH(dim);
  memset(out, 0, sizeof *out);
  if (n > SN_MAX_DIMS) return sn_error(SN_ERR_SHAPE, "at most %d dimensions are supported, got %ld", SN_MAX_DIMS, (long)n);
  out->ndim = (int)n;
  for (R_xlen_t i = 0; i < n; i++) {
    double d = Rf_isInteger(dim) ? (INTEGER(dim)[i] == NA_INTEGER ? -1 : INTEGER(dim)[i]) : REAL(dim)[i];
    if (!(d >= 1) || d != (double)(int64_t)d)
      return sn_error(SN_ERR_SHAPE, "dimensions must be positive whole numbers, got %g", d);
    out->dim[n - 1 - i] = (int64_t)d;
  }
  int64_t size;
  return sn_shape_size(out, &size);
}

SEXP sn_r_dim_from_shape(const sn_shape *s) {
  SEXP dim = PROTECT(Rf_allocVector(REALSXP, s->ndim));
  int all_int = 1;
  for (int i = 0; i < s->ndim; i++) {
    REAL(dim)[s->ndim - 1 - i] = (double)s->dim[i];
    if (s->dim[i] > 2147483647) all_int = 0;
  }
  if (all_int) dim = Rf_coerceVector(dim, INTSXP);
  UNPROTECT(1);
  return dim;
}

int sn_r_kv(SEXP keys, SEXP vals, const char ***k, const char ***v) {
  if (!Rf_isString(keys) || !Rf_isString(vals) || XLENGTH(keys) != XLENGTH(vals))
    Rf_error("parameter names and values must be character vectors of equal length");
  R_xlen_t n = XLENGTH(keys);
  *k = (const char **)R_alloc(n + 1, sizeof(char *));
  *v = (const char **)R_alloc(n + 1, sizeof(char *));
  for (R_xlen_t i = 0; i < n; i++) {
    (*k)[i] = CHAR(STRING_ELT(keys, i));
    (*v)[i] = CHAR(STRING_ELT(vals, i));
  }
  return (int)n;
}

const char *sn_r_string(SEXP x, const char *what) {
  if (!Rf_isString(x) || XLENGTH(x) != 1 || STRING_ELT(x, 0) == NA_STRING)
    Rf_error("%s must be a single string", what);
  return CHAR(STRING_ELT(x, 0));
}
