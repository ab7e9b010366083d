/* .Call glue for NDArrays and imperative op calls. */
#include <string.h>

#include "engine/device.h"
#include "r_glue.h"

/* Copies R numbers into a fresh tensor; dim NULL means a 1-D array. */
SEXP C_nd_from_r(SEXP x, SEXP dim, SEXP dtype, SEXP ctx) {
  sn_shape shape;
  sn_dtype t;
  sn_tensor host, out;
  sn_device dev = sn_r_device(ctx);
  if (!Rf_isReal(x) && !Rf_isInteger(x) && !Rf_isLogical(x))
    Rf_error("mx.nd.array needs a numeric, integer or logical vector, matrix or array, not %s",
             Rf_type2char(TYPEOF(x)));
  R_xlen_t n = XLENGTH(x);
  if (Rf_isNull(dim)) {
    if (n == 0) Rf_error("cannot make an NDArray from an empty vector");
    shape = sn_shape_make(1, (int64_t[]){(int64_t)n});
  } else {
    SN_R_TRY(sn_r_shape_from_dim(dim, &shape));
  }
  int64_t size;
  SN_R_TRY(sn_shape_size(&shape, &size));
  if (size != (int64_t)n) Rf_error("dim does not match the length of the data");
  SN_R_TRY(sn_dtype_from_name(sn_r_string(dtype, "dtype"), &t));
  if (t != SN_F32 && t != SN_F64 && t != SN_I32 && t != SN_U8 && t != SN_I64 && t != SN_I8)
    Rf_error("dtype %s cannot be made from R data", sn_dtype_name(t));
  SN_R_TRY(sn_tensor_alloc(&host, t, &shape, sn_cpu()));
  void *d = sn_tensor_data(&host);
  if (Rf_isReal(x)) {
    const double *s = REAL(x);
    switch (t) {
    case SN_F32: for (R_xlen_t i = 0; i < n; i++) ((float *)d)[i] = (float)s[i]; break;
    case SN_F64: memcpy(d, s, (size_t)n * sizeof(double)); break;
    case SN_I32: for (R_xlen_t i = 0; i < n; i++) ((int32_t *)d)[i] = (int32_t)s[i]; break;
    case SN_I64: for (R_xlen_t i = 0; i < n; i++) ((int64_t *)d)[i] = (int64_t)s[i]; break;
    case SN_U8: for (R_xlen_t i = 0; i < n; i++) ((uint8_t *)d)[i] = (uint8_t)s[i]; break;
    default: for (R_xlen_t i = 0; i < n; i++) ((int8_t *)d)[i] = (int8_t)s[i]; break;
    }
  } else {
    const int *s = Rf_isInteger(x) ? INTEGER(x) : LOGICAL(x);
    for (R_xlen_t i = 0; i < n; i++) {
      if (s[i] == NA_INTEGER) {
        sn_tensor_release(&host);
        Rf_error("NA values cannot be stored in an NDArray of dtype %s", sn_dtype_name(t));
      }
    }
    switch (t) {
    case SN_F32: for (R_xlen_t i = 0; i < n; i++) ((float *)d)[i] = (float)s[i]; break;
    case SN_F64: for (R_xlen_t i = 0; i < n; i++) ((double *)d)[i] = s[i]; break;
    case SN_I32: memcpy(d, s, (size_t)n * sizeof(int)); break;
    case SN_I64: for (R_xlen_t i = 0; i < n; i++) ((int64_t *)d)[i] = s[i]; break;
    case SN_U8: for (R_xlen_t i = 0; i < n; i++) ((uint8_t *)d)[i] = (uint8_t)s[i]; break;
    default: for (R_xlen_t i = 0; i < n; i++) ((int8_t *)d)[i] = (int8_t)s[i]; break;
    }
  }
  if (dev.type == SN_DEV_CPU) return sn_r_tensor_wrap(&host);
  int rc = sn_tensor_clone(&out, &host, t, dev);
  sn_tensor_release(&host);
  if (rc != SN_OK) sn_r_fail(rc);
  return sn_r_tensor_wrap(&out);
}

/* Values as an R double array with the reversed dims. */
SEXP C_nd_to_r(SEXP nd) {
  sn_tensor *t = sn_r_tensor(nd, "x");
  sn_tensor host;
  if (!t->st) return Rf_allocVector(REALSXP, 0); /* an empty record of a .params file */
  int64_t n = sn_tensor_size(t);
  if (t->dtype == SN_F16) Rf_error("float16 arrays cannot be converted to R; cast them first");
  if (sn_tensor_device(t).type == SN_DEV_CPU && t->dtype == SN_F64) {
    SEXP out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)n));
    memcpy(REAL(out), sn_tensor_data(t), (size_t)n * sizeof(double));
    if (t->shape.ndim > 0) Rf_setAttrib(out, R_DimSymbol, sn_r_dim_from_shape(&t->shape));
    UNPROTECT(1);
    return out;
  }
  SN_R_TRY(sn_tensor_clone(&host, t, SN_F64, sn_cpu()));
  SEXP out = Rf_allocVector(REALSXP, (R_xlen_t)n);
  memcpy(REAL(out), sn_tensor_data(&host), (size_t)n * sizeof(double));
  sn_tensor_release(&host);
  PROTECT(out);
  if (t->shape.ndim > 0) Rf_setAttrib(out, R_DimSymbol, sn_r_dim_from_shape(&t->shape));
  UNPROTECT(1);
  return out;
}

SEXP C_nd_dim(SEXP nd) {
  sn_tensor *t = sn_r_tensor(nd, "x");
  if (!t->st) return Rf_allocVector(INTSXP, 0);
  return sn_r_dim_from_shape(&t->shape);
}

SEXP C_nd_ctx(SEXP nd) { return sn_r_context(sn_tensor_device(sn_r_tensor(nd, "x"))); }

SEXP C_nd_dtype(SEXP nd) { return Rf_mkString(sn_dtype_name(sn_r_tensor(nd, "x")->dtype)); }

SEXP C_nd_is_valid(SEXP nd) {
  return Rf_ScalarLogical(TYPEOF(nd) == EXTPTRSXP && R_ExternalPtrTag(nd) == Rf_install("MXNDArray") &&
                          R_ExternalPtrAddr(nd) != NULL);
}

SEXP C_nd_copyto(SEXP nd, SEXP ctx, SEXP dtype) {
  sn_tensor *t = sn_r_tensor(nd, "src");
  sn_tensor out;
  sn_dtype dt = t->dtype;
  if (!Rf_isNull(dtype)) SN_R_TRY(sn_dtype_from_name(sn_r_string(dtype, "dtype"), &dt));
  SN_R_TRY(sn_tensor_clone(&out, t, dt, sn_r_device(ctx)));
  return sn_r_tensor_wrap(&out);
}

SEXP C_nd_full(SEXP dim, SEXP value, SEXP dtype, SEXP ctx) {
  sn_shape shape;
  sn_dtype t;
  sn_tensor out;
  sn_device dev = sn_r_device(ctx);
  SN_R_TRY(sn_r_shape_from_dim(dim, &shape));
  SN_R_TRY(sn_dtype_from_name(sn_r_string(dtype, "dtype"), &t));
  SN_R_TRY(sn_tensor_alloc(&out, t, &shape, dev));
  int rc = sn_tensor_fill(&out, Rf_asReal(value));
  if (rc != SN_OK) {
    sn_tensor_release(&out);
    sn_r_fail(rc);
  }
  return sn_r_tensor_wrap(&out);
}

static const sn_op *sn_r_op(SEXP name) {
  const char *n = sn_r_string(name, "op name");
  const sn_op *op = sn_op_find(n);
  if (!op) Rf_error("unknown operator '%s'", n);
  return op;
}

static int sn_r_tensor_list(SEXP list, sn_tensor **out, int cap, int allow_null, const char *what) {
  if (!Rf_isNewList(list) && !Rf_isNull(list)) Rf_error("%s must be a list of MXNDArrays", what);
  R_xlen_t n = Rf_xlength(list);
  if (n > cap) Rf_error("too many %s (at most %d)", what, cap);
  for (R_xlen_t i = 0; i < n; i++) {
    SEXP e = VECTOR_ELT(list, i);
    out[i] = (allow_null && Rf_isNull(e)) ? NULL : sn_r_tensor(e, what);
  }
  return (int)n;
}

SEXP C_nd_invoke(SEXP name, SEXP keys, SEXP vals, SEXP inputs, SEXP ctx) {
  const sn_op *op = sn_r_op(name);
  const char **k, **v;
  sn_params p;
  sn_tensor *in[SN_MAX_IO];
  sn_tensor out[SN_MAX_IO];
  int nout = 0;
  int n = sn_r_kv(keys, vals, &k, &v);
  int nin = sn_r_tensor_list(inputs, in, SN_MAX_IO, 0, "inputs");
  SN_R_TRY(sn_params_parse(op, n, k, v, &p));
  SN_R_TRY(sn_invoke(op, &p, in, nin, sn_r_device(ctx), out, &nout));
  /* Wrap all first so an allocation failure cannot leak the rest. */
  SEXP res = PROTECT(Rf_allocVector(VECSXP, nout));
  for (int i = 0; i < nout; i++) SET_VECTOR_ELT(res, i, sn_r_tensor_wrap(&out[i]));
  UNPROTECT(1);
  return res;
}

SEXP C_nd_backward(SEXP name, SEXP keys, SEXP vals, SEXP inputs, SEXP ograds) {
  const sn_op *op = sn_r_op(name);
  const char **k, **v;
  sn_params p;
  sn_tensor *in[SN_MAX_IO], *og[SN_MAX_IO];
  sn_tensor grads[SN_MAX_IO];
  int ng = 0;
  int n = sn_r_kv(keys, vals, &k, &v);
  int nin = sn_r_tensor_list(inputs, in, SN_MAX_IO, 0, "inputs");
  int nog = sn_r_tensor_list(ograds, og, SN_MAX_IO, 1, "output gradients");
  SN_R_TRY(sn_params_parse(op, n, k, v, &p));
  SN_R_TRY(sn_invoke_backward(op, &p, in, nin, og, nog, grads, &ng));
  SEXP res = PROTECT(Rf_allocVector(VECSXP, ng));
  for (int i = 0; i < ng; i++) SET_VECTOR_ELT(res, i, sn_r_tensor_wrap(&grads[i]));
  UNPROTECT(1);
  return res;
}

/* ---- registry description, for the wrapper generator and docs ---- */
static SEXP sn_r_strings(const char **s, int n) {
  SEXP out = PROTECT(Rf_allocVector(STRSXP, n));
  for (int i = 0; i < n; i++) SET_STRING_ELT(out, i, Rf_mkChar(s[i] ? s[i] : ""));
  UNPROTECT(1);
  return out;
}

static const char *sn_ptype_label(sn_ptype t) {
  static const char *names[] = {"int", "float", "boolean", "enum", "shape", "int or None",
                                "float or None", "shape or None", "dtype", "string"};
  return names[t];
}

/* Params with defaults, required ones given neutral values, so that the
 * op's input/output lists can be read. */
static void sn_r_default_params(const sn_op *op, sn_params *p) {
  const char *k[SN_MAX_PARAMS], *v[SN_MAX_PARAMS];
  int n = 0;
  for (int i = 0; i < op->nparams; i++) {
    if (op->params[i].dflt) continue;
    k[n] = op->params[i].name;
    switch (op->params[i].type) {
    case SN_PT_SHAPE: case SN_PT_OPT_SHAPE: v[n] = "(1,)"; break;
    case SN_PT_ENUM: v[n] = op->params[i].choices; break; /* first choice below */
    case SN_PT_DTYPE: v[n] = "float32"; break;
    case SN_PT_STRING: v[n] = ""; break;
    default: v[n] = "1"; break;
    }
    n++;
  }
  char first[SN_MAX_PARAMS][SN_PSTR];
  for (int i = 0; i < n; i++) {
    const char *bar = strchr(v[i], '|');
    if (bar && (size_t)(bar - v[i]) < SN_PSTR) {
      memcpy(first[i], v[i], (size_t)(bar - v[i]));
      first[i][bar - v[i]] = '\0';
      v[i] = first[i];
    }
  }
  if (sn_params_parse(op, n, k, v, p) != SN_OK) {
    memset(p, 0, sizeof *p);
    p->op = op;
    sn_clear_error();
  }
}

SEXP C_op_info(void) {
  int nops = sn_op_count();
  SEXP res = PROTECT(Rf_allocVector(VECSXP, nops));
  SEXP rnames = PROTECT(Rf_allocVector(STRSXP, nops));
  static const char *fields[] = {"name", "aliases", "doc", "param.name", "param.type", "param.default",
                                 "param.choices", "param.doc", "inputs", "variadic", "outputs",
                                 "aux", "flags", "param.required"};
  const int nf = 14;
  for (int i = 0; i < nops; i++) {
    const sn_op *op = sn_op_at(i);
    sn_params p;
    const char *names[SN_MAX_IO];
    const char *pn[SN_MAX_PARAMS], *pt[SN_MAX_PARAMS], *pd[SN_MAX_PARAMS], *pc[SN_MAX_PARAMS],
        *pdoc[SN_MAX_PARAMS];
    SEXP e = PROTECT(Rf_allocVector(VECSXP, nf));
    SEXP en = PROTECT(sn_r_strings(fields, nf));
    sn_r_default_params(op, &p);
    SET_VECTOR_ELT(e, 0, Rf_mkString(op->name));
    SET_VECTOR_ELT(e, 1, Rf_mkString(op->aliases ? op->aliases : ""));
    SET_VECTOR_ELT(e, 2, Rf_mkString(op->doc ? op->doc : ""));
    for (int j = 0; j < op->nparams; j++) {
      pn[j] = op->params[j].name;
      pt[j] = sn_ptype_label(op->params[j].type);
      pd[j] = op->params[j].dflt ? op->params[j].dflt : "";
      pc[j] = op->params[j].choices ? op->params[j].choices : "";
      pdoc[j] = op->params[j].doc ? op->params[j].doc : "";
    }
    SET_VECTOR_ELT(e, 3, sn_r_strings(pn, op->nparams));
    SET_VECTOR_ELT(e, 4, sn_r_strings(pt, op->nparams));
    SET_VECTOR_ELT(e, 5, sn_r_strings(pd, op->nparams));
    SET_VECTOR_ELT(e, 6, sn_r_strings(pc, op->nparams));
    SET_VECTOR_ELT(e, 7, sn_r_strings(pdoc, op->nparams));
    int nin = sn_op_inputs(op, &p, names, SN_MAX_IO);
    SET_VECTOR_ELT(e, 8, sn_r_strings(names, nin < SN_MAX_IO ? nin : SN_MAX_IO));
    SET_VECTOR_ELT(e, 9, Rf_ScalarLogical(op->list_inputs != NULL && sn_param_index(op, "num_args") >= 0));
    int nvis = sn_op_num_visible(op, &p);
    int nout = sn_op_outputs(op, &p, names, SN_MAX_IO);
    SET_VECTOR_ELT(e, 10, sn_r_strings(names, nvis < nout ? nvis : nout));
    int naux = sn_op_num_aux(op);
    SET_VECTOR_ELT(e, 11, sn_r_strings((const char **)op->aux, naux));
    SET_VECTOR_ELT(e, 12, Rf_ScalarInteger((int)op->flags));
    SEXP req = Rf_allocVector(LGLSXP, op->nparams);
    SET_VECTOR_ELT(e, 13, req);
    for (int j = 0; j < op->nparams; j++) LOGICAL(req)[j] = op->params[j].dflt == NULL;
    Rf_setAttrib(e, R_NamesSymbol, en);
    SET_VECTOR_ELT(res, i, e);
    SET_STRING_ELT(rnames, i, Rf_mkChar(op->name));
    UNPROTECT(2);
  }
  Rf_setAttrib(res, R_NamesSymbol, rnames);
  UNPROTECT(2);
  return res;
}

SEXP C_rng_seed(SEXP seed) {
  double s = Rf_asReal(seed);
  if (ISNAN(s)) Rf_error("seed must be a number");
  sn_rng_seed((uint64_t)(int64_t)s);
  return R_NilValue;
}

SEXP C_mem_live(void) { return Rf_ScalarReal((double)sn_host_live_bytes()); }

SEXP C_gpu_load(SEXP path) {
  SN_R_TRY(sn_gpu_load(sn_r_string(path, "path")));
  return R_NilValue;
}

SEXP C_device_check(SEXP ctx) {
  SN_R_TRY(sn_device_check(sn_r_device(ctx)));
  return R_NilValue;
}

/* Runs an op writing into existing arrays (in-place updates). */
SEXP C_nd_invoke_into(SEXP name, SEXP keys, SEXP vals, SEXP inputs, SEXP outputs) {
  const sn_op *op = sn_r_op(name);
  const char **k, **v;
  sn_params p;
  sn_tensor *in[SN_MAX_IO], *out[SN_MAX_IO];
  int n = sn_r_kv(keys, vals, &k, &v);
  int nin = sn_r_tensor_list(inputs, in, SN_MAX_IO, 0, "inputs");
  int nout = sn_r_tensor_list(outputs, out, SN_MAX_IO, 0, "outputs");
  SN_R_TRY(sn_params_parse(op, n, k, v, &p));
  SN_R_TRY(sn_invoke_into(op, &p, in, nin, out, nout));
  return R_NilValue;
}

/* Runs an op once per element of `inputs` (a list of input lists) into the
 * matching element of `outputs`, with the parameters parsed once: an
 * optimizer's update of every weight of a model in one call. */
SEXP C_nd_invoke_into_each(SEXP name, SEXP keys, SEXP vals, SEXP inputs, SEXP outputs) {
  const sn_op *op = sn_r_op(name);
  const char **k, **v;
  sn_params p;
  sn_tensor *in[SN_MAX_IO], *out[SN_MAX_IO];
  if (TYPEOF(inputs) != VECSXP || TYPEOF(outputs) != VECSXP || XLENGTH(inputs) != XLENGTH(outputs))
    Rf_error("inputs and outputs must be lists of the same length");
  int n = sn_r_kv(keys, vals, &k, &v);
  SN_R_TRY(sn_params_parse(op, n, k, v, &p));
  for (R_xlen_t i = 0; i < XLENGTH(inputs); i++) {
    int nin = sn_r_tensor_list(VECTOR_ELT(inputs, i), in, SN_MAX_IO, 0, "inputs");
    int nout = sn_r_tensor_list(VECTOR_ELT(outputs, i), out, SN_MAX_IO, 0, "outputs");
    SN_R_TRY(sn_invoke_into(op, &p, in, nin, out, nout));
  }
  return R_NilValue;
}
