/* .Call glue for symbols: construction, queries, JSON, shape inference. */
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "r_glue.h"

static void sn_r_symbol_finalize(SEXP x) {
  sn_symbol *s = R_ExternalPtrAddr(x);
  if (!s) return;
  sn_symbol_free(s);
  R_ClearExternalPtr(x);
}

SEXP sn_r_symbol_wrap(sn_symbol *s) {
  SEXP ptr = PROTECT(R_MakeExternalPtr(s, Rf_install("MXSymbol"), R_NilValue));
  R_RegisterCFinalizerEx(ptr, sn_r_symbol_finalize, TRUE);
  Rf_setAttrib(ptr, R_ClassSymbol, Rf_mkString("MXSymbol"));
  UNPROTECT(1);
  return ptr;
}

sn_symbol *sn_r_symbol(SEXP x, const char *what) {
  if (TYPEOF(x) != EXTPTRSXP || R_ExternalPtrTag(x) != Rf_install("MXSymbol"))
    Rf_error("%s must be an MXSymbol", what);
  sn_symbol *s = R_ExternalPtrAddr(x);
  if (!s)
    Rf_error("%s is an MXSymbol handle that is no longer valid (restored from saveRDS?); use "
             "mx.symbol.save / mx.symbol.load or mx.serialize",
             what);
  return s;
}

SEXP C_sym_variable(SEXP name) {
  sn_symbol *s;
  SN_R_TRY(sn_symbol_variable(sn_r_string(name, "name"), &s));
  return sn_r_symbol_wrap(s);
}

SEXP C_sym_create(SEXP opname, SEXP name, SEXP keys, SEXP vals, SEXP in_names, SEXP inputs) {
  const char *n = sn_r_string(opname, "op name");
  const sn_op *op = sn_op_find(n);
  if (!op) Rf_error("unknown operator '%s'", n);
  const char **k, **v;
  int np = sn_r_kv(keys, vals, &k, &v);
  R_xlen_t ni = Rf_xlength(inputs);
  if (ni > SN_MAX_IO) Rf_error("too many inputs");
  if (!Rf_isNull(in_names) && (!Rf_isString(in_names) || XLENGTH(in_names) != ni))
    Rf_error("input names must match the inputs");
  const char *names[SN_MAX_IO];
  sn_symbol *syms[SN_MAX_IO];
  for (R_xlen_t i = 0; i < ni; i++) {
    syms[i] = sn_r_symbol(VECTOR_ELT(inputs, i), "every input");
    names[i] = NULL;
    if (!Rf_isNull(in_names) && STRING_ELT(in_names, i) != NA_STRING && CHAR(STRING_ELT(in_names, i))[0])
      names[i] = CHAR(STRING_ELT(in_names, i));
  }
  const char *nm = Rf_isNull(name) ? NULL : sn_r_string(name, "name");
  sn_symbol *out;
  SN_R_TRY(sn_symbol_create(op, nm, np, k, v, (int)ni, names, syms, &out));
  return sn_r_symbol_wrap(out);
}

SEXP C_sym_group(SEXP list) {
  R_xlen_t n = Rf_xlength(list);
  sn_symbol **syms = (sn_symbol **)R_alloc(n + 1, sizeof(sn_symbol *));
  for (R_xlen_t i = 0; i < n; i++) syms[i] = sn_r_symbol(VECTOR_ELT(list, i), "every element");
  sn_symbol *out;
  SN_R_TRY(sn_symbol_group((int)n, syms, &out));
  return sn_r_symbol_wrap(out);
}

SEXP C_sym_compose(SEXP sym, SEXP names, SEXP list) {
  sn_symbol *s = sn_r_symbol(sym, "symbol");
  R_xlen_t n = Rf_xlength(list);
  if (!Rf_isString(names) || XLENGTH(names) != n) Rf_error("every substituted symbol needs a name");
  sn_symbol **syms = (sn_symbol **)R_alloc(n + 1, sizeof(sn_symbol *));
  const char **nm = (const char **)R_alloc(n + 1, sizeof(char *));
  for (R_xlen_t i = 0; i < n; i++) {
    syms[i] = sn_r_symbol(VECTOR_ELT(list, i), "every substituted value");
    nm[i] = CHAR(STRING_ELT(names, i));
  }
  sn_symbol *out;
  SN_R_TRY(sn_symbol_compose(s, (int)n, nm, syms, &out));
  return sn_r_symbol_wrap(out);
}

static SEXP sn_r_name_vector(const char **names, int n) {
  SEXP out = PROTECT(Rf_allocVector(STRSXP, n));
  for (int i = 0; i < n; i++) SET_STRING_ELT(out, i, Rf_mkCharCE(names[i], CE_UTF8));
  UNPROTECT(1);
  return out;
}

SEXP C_sym_arguments(SEXP sym) {
  const char **names;
  int n;
  SN_R_TRY(sn_symbol_arguments(sn_r_symbol(sym, "symbol"), &names, &n));
  SEXP out = sn_r_name_vector(names, n); /* allocation failure would leak the array only */
  free(names);
  return out;
}

SEXP C_sym_aux(SEXP sym) {
  const char **names;
  int n;
  SN_R_TRY(sn_symbol_aux_states(sn_r_symbol(sym, "symbol"), &names, &n));
  SEXP out = sn_r_name_vector(names, n);
  free(names);
  return out;
}

SEXP C_sym_outputs(SEXP sym) {
  char **names;
  int n;
  SN_R_TRY(sn_symbol_outputs(sn_r_symbol(sym, "symbol"), &names, &n));
  SEXP out = sn_r_name_vector((const char **)names, n);
  sn_free_strings(names, n);
  return out;
}

SEXP C_sym_internals(SEXP sym) {
  sn_symbol *out;
  SN_R_TRY(sn_symbol_internals(sn_r_symbol(sym, "symbol"), &out));
  return sn_r_symbol_wrap(out);
}

SEXP C_sym_children(SEXP sym) {
  sn_symbol *out;
  SN_R_TRY(sn_symbol_children(sn_r_symbol(sym, "symbol"), &out));
  return out ? sn_r_symbol_wrap(out) : R_NilValue;
}

SEXP C_sym_get_output(SEXP sym, SEXP index) {
  sn_symbol *out;
  SN_R_TRY(sn_symbol_get_output(sn_r_symbol(sym, "symbol"), Rf_asInteger(index) - 1, &out));
  return sn_r_symbol_wrap(out);
}

SEXP C_sym_num_outputs(SEXP sym) { return Rf_ScalarInteger(sn_r_symbol(sym, "symbol")->n); }

SEXP C_sym_attr_get(SEXP sym) {
  const sn_kv *kv;
  int n;
  SN_R_TRY(sn_symbol_attr_get(sn_r_symbol(sym, "symbol"), &kv, &n));
  SEXP out = PROTECT(Rf_allocVector(STRSXP, n));
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, n));
  for (int i = 0; i < n; i++) {
    SET_STRING_ELT(out, i, Rf_mkCharCE(kv[i].val, CE_UTF8));
    SET_STRING_ELT(nm, i, Rf_mkCharCE(kv[i].key, CE_UTF8));
  }
  Rf_setAttrib(out, R_NamesSymbol, nm);
  UNPROTECT(2);
  return out;
}

SEXP C_sym_attr_set(SEXP sym, SEXP key, SEXP val) {
  SN_R_TRY(sn_symbol_attr_set(sn_r_symbol(sym, "symbol"), sn_r_string(key, "attribute name"),
                              sn_r_string(val, "attribute value")));
  return R_NilValue;
}

SEXP C_sym_to_json(SEXP sym) {
  char *text;
  size_t len;
  SN_R_TRY(sn_symbol_to_json(sn_r_symbol(sym, "symbol"), &text, &len));
  SEXP out = Rf_mkCharLenCE(text, (int)len, CE_UTF8);
  free(text);
  return Rf_ScalarString(out);
}

SEXP C_sym_from_json(SEXP json) {
  const char *text = sn_r_string(json, "json");
  sn_symbol *out;
  SN_R_TRY(sn_symbol_from_json(text, strlen(text), &out));
  return sn_r_symbol_wrap(out);
}

static SEXP sn_r_shape_list(const sn_shape *s, const sn_dtype *t, int n, SEXP names, int complete_only) {
  SEXP out = PROTECT(Rf_allocVector(VECSXP, n));
  (void)t;
  for (int i = 0; i < n; i++) {
    if (complete_only && !sn_shape_known(&s[i])) continue;
    SET_VECTOR_ELT(out, i, sn_r_dim_from_shape(&s[i]));
  }
  Rf_setAttrib(out, R_NamesSymbol, names);
  UNPROTECT(1);
  return out;
}

/* list(arg.shapes, out.shapes, aux.shapes, complete) with R-order dims. */
SEXP C_sym_infer(SEXP sym, SEXP names, SEXP shapes) {
  sn_symbol *s = sn_r_symbol(sym, "symbol");
  R_xlen_t n = Rf_xlength(shapes);
  if (!Rf_isString(names) || XLENGTH(names) != n) Rf_error("every shape needs a name");
  const char **nm = (const char **)R_alloc(n + 1, sizeof(char *));
  sn_shape *sh = (sn_shape *)R_alloc(n + 1, sizeof(sn_shape));
  for (R_xlen_t i = 0; i < n; i++) {
    nm[i] = CHAR(STRING_ELT(names, i));
    SEXP d = VECTOR_ELT(shapes, i);
    if (!Rf_isNumeric(d)) Rf_error("the shape of '%s' must be numeric", nm[i]);
    SN_R_TRY(sn_r_shape_from_dim(d, &sh[i]));
  }
  sn_infer_result res;
  SN_R_TRY(sn_symbol_infer(s, (int)n, nm, sh, NULL, &res));
  const char **an, **xn;
  char **on;
  int na, nx, no;
  int rc = sn_symbol_arguments(s, &an, &na);
  if (rc != SN_OK) {
    sn_infer_result_free(&res);
    sn_r_fail(rc);
  }
  rc = sn_symbol_aux_states(s, &xn, &nx);
  if (rc != SN_OK) {
    free(an);
    sn_infer_result_free(&res);
    sn_r_fail(rc);
  }
  rc = sn_symbol_outputs(s, &on, &no);
  if (rc != SN_OK) {
    free(an);
    free(xn);
    sn_infer_result_free(&res);
    sn_r_fail(rc);
  }
  /* From here on only R allocations: copy names first so nothing leaks. */
  SEXP ann = PROTECT(Rf_allocVector(STRSXP, na));
  SEXP xnn = PROTECT(Rf_allocVector(STRSXP, nx));
  SEXP onn = PROTECT(Rf_allocVector(STRSXP, no));
  for (int i = 0; i < na; i++) SET_STRING_ELT(ann, i, Rf_mkChar(an[i]));
  for (int i = 0; i < nx; i++) SET_STRING_ELT(xnn, i, Rf_mkChar(xn[i]));
  for (int i = 0; i < no; i++) SET_STRING_ELT(onn, i, Rf_mkChar(on[i]));
  free(an);
  free(xn);
  sn_free_strings(on, no);
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 4));
  SET_VECTOR_ELT(out, 0, sn_r_shape_list(res.arg, res.arg_type, res.narg, ann, 1));
  SET_VECTOR_ELT(out, 1, sn_r_shape_list(res.out, res.out_type, res.nout, onn, 1));
  SET_VECTOR_ELT(out, 2, sn_r_shape_list(res.aux, res.aux_type, res.naux, xnn, 1));
  SET_VECTOR_ELT(out, 3, Rf_ScalarLogical(res.complete));
  sn_infer_result_free(&res);
  SEXP nmv = PROTECT(Rf_allocVector(STRSXP, 4));
  SET_STRING_ELT(nmv, 0, Rf_mkChar("arg.shapes"));
  SET_STRING_ELT(nmv, 1, Rf_mkChar("out.shapes"));
  SET_STRING_ELT(nmv, 2, Rf_mkChar("aux.shapes"));
  SET_STRING_ELT(nmv, 3, Rf_mkChar("complete"));
  Rf_setAttrib(out, R_NamesSymbol, nmv);
  UNPROTECT(5);
  return out;
}

/* Node table for graph.viz: list(name, op, inputs (list of 0-based node
 * ids), params (named chr)), in topological order. */
SEXP C_sym_nodes(SEXP sym) {
  sn_symbol *s = sn_r_symbol(sym, "symbol");
  sn_node **ord;
  int n;
  SN_R_TRY(sn_graph_topo(s, &ord, &n));
  SEXP out = PROTECT(Rf_allocVector(VECSXP, 4));
  SEXP nm = PROTECT(Rf_allocVector(STRSXP, n)), op = PROTECT(Rf_allocVector(STRSXP, n));
  SEXP ins = PROTECT(Rf_allocVector(VECSXP, n)), prm = PROTECT(Rf_allocVector(VECSXP, n));
  for (int i = 0; i < n; i++) {
    const sn_node *nd = ord[i];
    SET_STRING_ELT(nm, i, Rf_mkChar(nd->name));
    SET_STRING_ELT(op, i, Rf_mkChar(nd->op ? nd->op->name : "null"));
    SEXP iv = Rf_allocVector(INTSXP, nd->nin);
    SET_VECTOR_ELT(ins, i, iv);
    for (int k = 0; k < nd->nin; k++) {
      int j = 0;
      while (j < i && ord[j] != nd->in[k].node) j++;
      INTEGER(iv)[k] = j;
    }
    SEXP pv = Rf_allocVector(STRSXP, nd->nparam);
    SET_VECTOR_ELT(prm, i, pv);
    SEXP pn = Rf_allocVector(STRSXP, nd->nparam);
    Rf_setAttrib(pv, R_NamesSymbol, pn);
    for (int k = 0; k < nd->nparam; k++) {
      SET_STRING_ELT(pv, k, Rf_mkChar(nd->param[k].val));
      SET_STRING_ELT(pn, k, Rf_mkChar(nd->param[k].key));
    }
  }
  free(ord);
  SET_VECTOR_ELT(out, 0, nm);
  SET_VECTOR_ELT(out, 1, op);
  SET_VECTOR_ELT(out, 2, ins);
  SET_VECTOR_ELT(out, 3, prm);
  SEXP names = PROTECT(Rf_allocVector(STRSXP, 4));
  SET_STRING_ELT(names, 0, Rf_mkChar("name"));
  SET_STRING_ELT(names, 1, Rf_mkChar("op"));
  SET_STRING_ELT(names, 2, Rf_mkChar("inputs"));
  SET_STRING_ELT(names, 3, Rf_mkChar("params"));
  Rf_setAttrib(out, R_NamesSymbol, names);
  UNPROTECT(6);
  return out;
}

SEXP C_name_reset(void) {
  sn_name_reset();
  return R_NilValue;
}
