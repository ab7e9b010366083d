/* .Call glue for executors: bind, forward, backward, outputs, memory
 * statistics, and in-place copies into bound arrays. */
#include <stdlib.h>
#include <string.h>

#include "engine/device.h"
#include "engine/exec.h"
#include "r_glue.h"

sn_symbol *sn_r_symbol(SEXP x, const char *what);

static void sn_r_exec_finalize(SEXP x) {
  sn_executor *e = R_ExternalPtrAddr(x);
  if (!e) return;
  sn_executor_free(e);
  R_ClearExternalPtr(x);
}

sn_executor *sn_r_exec(SEXP x) {
  if (TYPEOF(x) != EXTPTRSXP || R_ExternalPtrTag(x) != Rf_install("MXExecutorHandle"))
    Rf_error("not an executor handle");
  sn_executor *e = R_ExternalPtrAddr(x);
  if (!e) Rf_error("this executor is no longer valid (restored from saveRDS?); bind the symbol again");
  return e;
}

static void sn_r_tensors(SEXP list, sn_tensor **out, R_xlen_t n, int allow_null, const char *what) {
  if (Rf_xlength(list) != n) Rf_error("expected %ld %s, got %ld", (long)n, what, (long)Rf_xlength(list));
  for (R_xlen_t i = 0; i < n; i++) {
    SEXP e = VECTOR_ELT(list, i);
    out[i] = (allow_null && Rf_isNull(e)) ? NULL : sn_r_tensor(e, what);
  }
}

SEXP C_exec_bind(SEXP sym, SEXP ctx, SEXP args, SEXP grads, SEXP reqs, SEXP aux, SEXP plan, SEXP dry,
                 SEXP graphs) {
  sn_symbol *s = sn_r_symbol(sym, "symbol");
  R_xlen_t na = Rf_xlength(args), nx = Rf_xlength(aux);
  sn_tensor **a = (sn_tensor **)R_alloc(na + 1, sizeof(sn_tensor *));
  sn_tensor **g = (sn_tensor **)R_alloc(na + 1, sizeof(sn_tensor *));
  sn_tensor **x = (sn_tensor **)R_alloc(nx + 1, sizeof(sn_tensor *));
  if (!Rf_isInteger(reqs) || XLENGTH(reqs) != na) Rf_error("one grad req per argument is needed");
  sn_r_tensors(args, a, na, 0, "argument arrays");
  sn_r_tensors(grads, g, na, 1, "gradient arrays");
  sn_r_tensors(aux, x, nx, 0, "aux arrays");
  sn_bind_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.dev = sn_r_device(ctx);
  spec.narg = (int)na;
  spec.args = a;
  spec.grads = g;
  spec.grad_req = INTEGER(reqs);
  spec.naux = (int)nx;
  spec.aux = x;
  spec.plan_memory = Rf_asLogical(plan) == TRUE;
  spec.dry_run = Rf_asLogical(dry) == TRUE;
  spec.cuda_graphs = Rf_asLogical(graphs) == TRUE;
  sn_executor *ex;
  SN_R_TRY(sn_executor_bind(s, &spec, &ex));
  SEXP ptr = PROTECT(R_MakeExternalPtr(ex, Rf_install("MXExecutorHandle"), R_NilValue));
  R_RegisterCFinalizerEx(ptr, sn_r_exec_finalize, TRUE);
  UNPROTECT(1);
  return ptr;
}

SEXP C_exec_forward(SEXP h, SEXP is_train) {
  SN_R_TRY(sn_executor_forward(sn_r_exec(h), Rf_asLogical(is_train) == TRUE));
  return R_NilValue;
}

SEXP C_exec_backward(SEXP h, SEXP head_grads) {
  sn_executor *ex = sn_r_exec(h);
  R_xlen_t n = Rf_xlength(head_grads);
  sn_tensor **hg = (sn_tensor **)R_alloc(n + 1, sizeof(sn_tensor *));
  sn_r_tensors(head_grads, hg, n, 1, "head gradients");
  SN_R_TRY(sn_executor_backward(ex, (int)n, hg));
  return R_NilValue;
}

/* Views of the outputs (they alias the executor's memory). */
SEXP C_exec_outputs(SEXP h) {
  sn_executor *ex = sn_r_exec(h);
  int n = sn_executor_num_outputs(ex);
  SEXP out = PROTECT(Rf_allocVector(VECSXP, n));
  for (int i = 0; i < n; i++) {
    sn_tensor t;
    SN_R_TRY(sn_executor_output(ex, i, &t));
    SET_VECTOR_ELT(out, i, sn_r_tensor_wrap(&t));
  }
  UNPROTECT(1);
  return out;
}

SEXP C_exec_stats(SEXP h) {
  sn_mem_stats st;
  sn_executor_stats(sn_r_exec(h), &st);
  SEXP out = PROTECT(Rf_allocVector(REALSXP, 6));
  REAL(out)[0] = (double)st.planned_bytes;
  REAL(out)[1] = (double)st.naive_bytes;
  REAL(out)[2] = (double)st.workspace_bytes;
  REAL(out)[3] = st.nentries;
  REAL(out)[4] = st.nsteps;
  REAL(out)[5] = st.ninplace;
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, 6));
  const char *names[] = {"planned.bytes", "naive.bytes", "workspace.bytes", "entries", "steps", "inplace"};
  for (int i = 0; i < 6; i++) SET_STRING_ELT(nm, i, Rf_mkChar(names[i]));
  Rf_setAttrib(out, R_NamesSymbol, nm);
  UNPROTECT(2);
  return out;
}

/* Copies src's values into dst's storage (bound arrays are references). */
SEXP C_nd_copy_into(SEXP dst, SEXP src) {
  sn_tensor *d = sn_r_tensor(dst, "destination"), *s = sn_r_tensor(src, "source");
  if (!sn_shape_equal(&d->shape, &s->shape)) {
    char a[160], b[160];
    Rf_error("cannot copy an array of shape %s into one of shape %s (R dims are reversed)",
             sn_shape_str(&s->shape, a, sizeof a), sn_shape_str(&d->shape, b, sizeof b));
  }
  SN_R_TRY(sn_tensor_copy(d, s));
  return R_NilValue;
}

/* Device memory counters: c(live, cached) bytes of gpu(dev). */
SEXP C_gpu_memory(SEXP dev, SEXP release) {
  const sn_gpu_api *g = sn_gpu();
  int d = Rf_asInteger(dev);
  if (!g) Rf_error("GPU support is not loaded");
  SN_R_TRY(sn_device_check((sn_device){SN_DEV_GPU, d}));
  if (Rf_asLogical(release) == TRUE) SN_R_TRY(g->release_cached(d));
  SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
  REAL(out)[0] = (double)g->live_bytes(d);
  REAL(out)[1] = (double)g->cached_bytes(d);
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(nm, 0, Rf_mkChar("live"));
  SET_STRING_ELT(nm, 1, Rf_mkChar("cached"));
  Rf_setAttrib(out, R_NamesSymbol, nm);
  UNPROTECT(2);
  return out;
}
