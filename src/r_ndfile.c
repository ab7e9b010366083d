/* .Call glue for MXNet's NDArray files (mx.nd.save / mx.nd.load) and the
 * in-memory form used by mx.serialize. */
#include <stdlib.h>
#include <string.h>

#include "engine/ndfile.h"
#include "r_glue.h"

/* Host copies of the arrays (GPU arrays are copied to the CPU first). */
static int sn_r_host_list(SEXP list, sn_tensor *host, const sn_tensor **ptrs, R_xlen_t n) {
  for (R_xlen_t i = 0; i < n; i++) {
    sn_tensor *t = sn_r_tensor(VECTOR_ELT(list, i), "every element");
    if (sn_tensor_device(t).type == SN_DEV_CPU) {
      sn_tensor_view(&host[i], t);
    } else {
      int rc = sn_tensor_clone(&host[i], t, t->dtype, sn_cpu());
      if (rc != SN_OK) {
        for (R_xlen_t j = 0; j < i; j++) sn_tensor_release(&host[j]);
        return rc;
      }
    }
    ptrs[i] = &host[i];
  }
  return SN_OK;
}

static const char **sn_r_names(SEXP names, R_xlen_t n) {
  if (Rf_isNull(names)) return NULL;
  const char **nm = (const char **)R_alloc(n + 1, sizeof(char *));
  for (R_xlen_t i = 0; i < n; i++) nm[i] = CHAR(STRING_ELT(names, i));
  return nm;
}

SEXP C_nd_save(SEXP list, SEXP names, SEXP path) {
  R_xlen_t n = Rf_xlength(list);
  const char *p = sn_r_string(path, "filename");
  sn_tensor *host = (sn_tensor *)R_alloc(n + 1, sizeof(sn_tensor));
  const sn_tensor **ptrs = (const sn_tensor **)R_alloc(n + 1, sizeof(sn_tensor *));
  const char **nm = sn_r_names(names, n);
  memset(host, 0, sizeof(sn_tensor) * (size_t)(n + 1));
  /* Validate every handle before taking references. */
  for (R_xlen_t i = 0; i < n; i++) sn_r_tensor(VECTOR_ELT(list, i), "every element");
  SN_R_TRY(sn_r_host_list(list, host, ptrs, n));
  int rc = sn_ndfile_save(p, (int)n, ptrs, nm);
  for (R_xlen_t i = 0; i < n; i++) sn_tensor_release(&host[i]);
  if (rc != SN_OK) sn_r_fail(rc);
  return R_NilValue;
}

/* The list stays owned by an external pointer until every tensor and name
 * has moved into R objects, so an R allocation error cannot leak it. */
static void sn_r_ndlist_finalize(SEXP p) {
  sn_ndlist *l = R_ExternalPtrAddr(p);
  if (!l) return;
  sn_ndlist_free(l);
  free(l);
  R_ClearExternalPtr(p);
}

static SEXP sn_r_ndlist(sn_ndlist *src) {
  sn_ndlist *l = malloc(sizeof *l);
  if (!l) {
    sn_ndlist_free(src);
    Rf_error("out of memory");
  }
  *l = *src;
  SEXP guard = PROTECT(R_MakeExternalPtr(l, R_NilValue, R_NilValue));
  R_RegisterCFinalizer(guard, sn_r_ndlist_finalize);
  SEXP out = PROTECT(Rf_allocVector(VECSXP, l->n));
  if (l->names) {
    SEXP names = Rf_allocVector(STRSXP, l->n);
    Rf_setAttrib(out, R_NamesSymbol, names);
    for (int i = 0; i < l->n; i++) SET_STRING_ELT(names, i, Rf_mkCharCE(l->names[i], CE_UTF8));
  }
  /* sn_r_tensor_wrap moves the tensor (and clears it) only on success. */
  for (int i = 0; i < l->n; i++) SET_VECTOR_ELT(out, i, sn_r_tensor_wrap(&l->arrays[i]));
  UNPROTECT(2);
  return out;
}

SEXP C_nd_load(SEXP path) {
  sn_ndlist l;
  SN_R_TRY(sn_ndfile_load(sn_r_string(path, "filename"), &l));
  return sn_r_ndlist(&l);
}

static void sn_r_free_buffer(SEXP p) {
  free(R_ExternalPtrAddr(p));
  R_ClearExternalPtr(p);
}

SEXP C_nd_save_raw(SEXP list, SEXP names) {
  R_xlen_t n = Rf_xlength(list);
  sn_tensor *host = (sn_tensor *)R_alloc(n + 1, sizeof(sn_tensor));
  const sn_tensor **ptrs = (const sn_tensor **)R_alloc(n + 1, sizeof(sn_tensor *));
  const char **nm = sn_r_names(names, n);
  void *buf = NULL;
  size_t len = 0;
  memset(host, 0, sizeof(sn_tensor) * (size_t)(n + 1));
  for (R_xlen_t i = 0; i < n; i++) sn_r_tensor(VECTOR_ELT(list, i), "every element");
  SN_R_TRY(sn_r_host_list(list, host, ptrs, n));
  int rc = sn_ndfile_save_mem((int)n, ptrs, nm, &buf, &len);
  for (R_xlen_t i = 0; i < n; i++) sn_tensor_release(&host[i]);
  if (rc != SN_OK) sn_r_fail(rc);
  /* Rf_allocVector may longjmp: keep the engine buffer in an R-owned
   * external pointer whose finalizer frees it in that case. */
  SEXP guard = PROTECT(R_MakeExternalPtr(buf, R_NilValue, R_NilValue));
  R_RegisterCFinalizer(guard, sn_r_free_buffer);
  SEXP out = Rf_allocVector(RAWSXP, (R_xlen_t)len);
  memcpy(RAW(out), buf, len);
  free(buf);
  R_ClearExternalPtr(guard);
  UNPROTECT(1);
  return out;
}

SEXP C_nd_load_raw(SEXP raw) {
  if (TYPEOF(raw) != RAWSXP) Rf_error("expected a raw vector");
  sn_ndlist l;
  SN_R_TRY(sn_ndfile_load_mem(RAW(raw), (size_t)XLENGTH(raw), &l));
  return sn_r_ndlist(&l);
}
