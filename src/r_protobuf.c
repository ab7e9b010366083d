/* .Call glue for the protobuf reader/writer (src/engine/protobuf.c), used by
 * R/onnx.R and R/caffe.R.  Parsing stays in C; what the fields mean stays
 * in R.
 *
 * A schema comes from R as a list of messages, each
 *   list(name = "TensorProto", fname = <chr>, fnum = <int>, ftype = <int>,
 *        frep = <int>, fmsg = <int>)
 * (ftype an sn_pb_type code, frep 0 optional / 1 repeated / 2 packed, fmsg the
 * 0-based index of the nested message or -1); see mx.internal.pb.schema().
 *
 * C_pb_decode(raw, schema, msg) gives a list with one element per schema
 * field, named like the fields, NULL when absent: numbers as doubles, bools
 * as logicals, strings as character, bytes as raw vectors, messages as such
 * lists; a repeated field gives a vector (numbers, bools, strings) or a list
 * (bytes, messages).  C_pb_encode(x, schema, msg) is the inverse (absent or
 * NULL fields are not written; fields are written in schema order).
 * C_pb_unpack(raw, kind) converts little-endian elements to doubles. */
#include <math.h>
#include <string.h>

#include "engine/protobuf.h"
#include "r_glue.h"

static int list_int(SEXP m, int i, const char *what, R_xlen_t *n, const int **out) {
  SEXP v = VECTOR_ELT(m, i);
  if (TYPEOF(v) != INTSXP) Rf_error("protobuf schema: %s must be an integer vector", what);
  *n = XLENGTH(v);
  *out = INTEGER(v);
  return 0;
}

static const sn_pb_schema *schema_from_r(SEXP sch) {
  if (!Rf_isNewList(sch) || XLENGTH(sch) == 0 || XLENGTH(sch) > 100000)
    Rf_error("protobuf schema must be a non-empty list of messages");
  int nm = (int)XLENGTH(sch);
  sn_pb_message *ms = (sn_pb_message *)R_alloc((size_t)nm, sizeof *ms);
  for (int i = 0; i < nm; i++) {
    SEXP m = VECTOR_ELT(sch, i);
    if (!Rf_isNewList(m) || XLENGTH(m) != 6) Rf_error("protobuf schema: message %d is malformed", i + 1);
    SEXP name = VECTOR_ELT(m, 0), fname = VECTOR_ELT(m, 1);
    if (TYPEOF(name) != STRSXP || XLENGTH(name) != 1 || TYPEOF(fname) != STRSXP)
      Rf_error("protobuf schema: message %d has no name or field names", i + 1);
    R_xlen_t nf = XLENGTH(fname), n2, n3, n4, n5;
    const int *fnum, *ftype, *frep, *fmsg;
    list_int(m, 2, "fnum", &n2, &fnum);
    list_int(m, 3, "ftype", &n3, &ftype);
    list_int(m, 4, "frep", &n4, &frep);
    list_int(m, 5, "fmsg", &n5, &fmsg);
    if (n2 != nf || n3 != nf || n4 != nf || n5 != nf || nf > SN_PB_MAX_FIELDS)
      Rf_error("protobuf schema: message %s has field vectors of different lengths", CHAR(STRING_ELT(name, 0)));
    sn_pb_field *fs = (sn_pb_field *)R_alloc(nf > 0 ? (size_t)nf : 1, sizeof *fs);
    for (R_xlen_t k = 0; k < nf; k++) {
      fs[k].name = CHAR(STRING_ELT(fname, k));
      fs[k].number = fnum[k] > 0 ? (uint32_t)fnum[k] : 0;
      fs[k].type = ftype[k];
      fs[k].repeated = frep[k];
      fs[k].message = fmsg[k];
    }
    ms[i].name = CHAR(STRING_ELT(name, 0));
    ms[i].nfields = (int)nf;
    ms[i].fields = fs;
  }
  sn_pb_schema *s = (sn_pb_schema *)R_alloc(1, sizeof *s);
  s->nmessages = nm;
  s->messages = ms;
  SN_R_TRY(sn_pb_schema_check(s));
  return s;
}

static int msg_index(SEXP msg, const sn_pb_schema *s) {
  int m = Rf_asInteger(msg);
  if (m == NA_INTEGER || m < 0 || m >= s->nmessages) Rf_error("protobuf: message index out of range");
  return m;
}

/* ---- decoding ---- */

typedef struct {
  const sn_pb_schema *s;
  SEXP names; /* list of the field-name vectors, made on first use */
} dec_ctx;

static int dec_begin(void *vctx, int msg, const int64_t *counts, void **handle) {
  dec_ctx *c = vctx;
  const sn_pb_message *m = &c->s->messages[msg];
  SEXP lst = PROTECT(Rf_allocVector(VECSXP, m->nfields)); /* popped by dec_child, or at the end */
  SEXP nm = VECTOR_ELT(c->names, msg);
  if (Rf_isNull(nm)) {
    nm = Rf_allocVector(STRSXP, m->nfields);
    SET_VECTOR_ELT(c->names, msg, nm);
    for (int k = 0; k < m->nfields; k++) SET_STRING_ELT(nm, k, Rf_mkChar(m->fields[k].name));
  }
  Rf_setAttrib(lst, R_NamesSymbol, nm);
  for (int k = 0; k < m->nfields; k++) {
    const sn_pb_field *f = &m->fields[k];
    R_xlen_t n = (R_xlen_t)counts[k];
    if (n == 0) continue;
    SEXP el = R_NilValue;
    if (f->type == SN_PB_BOOL) el = Rf_allocVector(LGLSXP, f->repeated ? n : 1);
    else if (f->type == SN_PB_STRING) el = Rf_allocVector(STRSXP, f->repeated ? n : 1);
    else if (f->type == SN_PB_BYTES || f->type == SN_PB_MESSAGE) {
      if (f->repeated) el = Rf_allocVector(VECSXP, n);
    } else el = Rf_allocVector(REALSXP, f->repeated ? n : 1);
    SET_VECTOR_ELT(lst, k, el);
  }
  *handle = lst;
  return SN_OK;
}

static int dec_value(void *vctx, void *handle, int msg, int k, int64_t idx, const sn_pb_value *v) {
  dec_ctx *c = vctx;
  const sn_pb_message *m = &c->s->messages[msg];
  const sn_pb_field *f = &m->fields[k];
  SEXP lst = (SEXP)handle, el = VECTOR_ELT(lst, k);
  if (f->type == SN_PB_BYTES) {
    SEXP raw = PROTECT(Rf_allocVector(RAWSXP, (R_xlen_t)v->len));
    if (v->len) memcpy(RAW(raw), v->data, v->len);
    if (!f->repeated) {
      SET_VECTOR_ELT(lst, k, raw);
    } else {
      el = VECTOR_ELT(lst, k);
      if (Rf_isNull(el) || idx < 0 || (R_xlen_t)idx >= XLENGTH(el)) {
        UNPROTECT(1);
        return sn_error(SN_ERR_INTERNAL, "protobuf: %s.%s value %lld out of range", m->name, f->name,
                        (long long)idx);
      }
      SET_VECTOR_ELT(el, (R_xlen_t)idx, raw);
    }
    UNPROTECT(1);
    return SN_OK;
  }
  if (Rf_isNull(el) || idx < 0 || (R_xlen_t)idx >= XLENGTH(el))
    return sn_error(SN_ERR_INTERNAL, "protobuf: %s.%s value %lld out of range", m->name, f->name, (long long)idx);
  switch (f->type) {
  case SN_PB_BOOL: LOGICAL(el)[idx] = v->i64 != 0; break;
  case SN_PB_STRING:
    if (v->len > 0x7fffffff)
      return sn_error(SN_ERR_FORMAT, "protobuf: %s.%s: string of %zu bytes is too long", m->name, f->name, v->len);
    if (v->len && memchr(v->data, 0, v->len))
      return sn_error(SN_ERR_FORMAT, "protobuf: %s.%s: string contains a NUL byte", m->name, f->name);
    SET_STRING_ELT(el, (R_xlen_t)idx, Rf_mkCharLenCE((const char *)v->data, (int)v->len, CE_UTF8));
    break;
  default: REAL(el)[idx] = v->num; break;
  }
  return SN_OK;
}

static int dec_child(void *vctx, void *handle, int msg, int k, int64_t idx, void *child) {
  dec_ctx *c = vctx;
  const sn_pb_field *f = &c->s->messages[msg].fields[k];
  SEXP lst = (SEXP)handle;
  if (f->repeated) {
    SEXP el = VECTOR_ELT(lst, k);
    if (Rf_isNull(el) || idx < 0 || (R_xlen_t)idx >= XLENGTH(el)) {
      UNPROTECT(1);
      return sn_error(SN_ERR_INTERNAL, "protobuf: nested message %lld out of range", (long long)idx);
    }
    SET_VECTOR_ELT(el, (R_xlen_t)idx, (SEXP)child);
  } else {
    SET_VECTOR_ELT(lst, k, (SEXP)child);
  }
  UNPROTECT(1); /* the child's list, protected by its dec_begin */
  return SN_OK;
}

static void dec_end(void *vctx, void *handle, int ok) {
  (void)vctx;
  (void)handle;
  (void)ok; /* R's error unwinding resets the protect stack */
}

SEXP C_pb_decode(SEXP raw, SEXP schema, SEXP msg) {
  if (TYPEOF(raw) != RAWSXP) Rf_error("protobuf: the data must be a raw vector");
  const sn_pb_schema *s = schema_from_r(schema);
  int m = msg_index(msg, s);
  dec_ctx c = {s, R_NilValue};
  c.names = PROTECT(Rf_allocVector(VECSXP, s->nmessages));
  sn_pb_visitor v = {dec_begin, dec_value, dec_child, dec_end};
  void *out = NULL;
  sn_clear_error();
  int rc = sn_pb_decode(RAW(raw), (size_t)XLENGTH(raw), s, m, &v, &c, &out);
  if (rc != SN_OK) sn_r_fail(rc);
  UNPROTECT(2); /* the root list and the names */
  return (SEXP)out;
}

/* ---- encoding ---- */

static int enc_msg(SEXP x, const sn_pb_schema *s, int msg, sn_pb_writer *w, int depth);

static int num_at(SEXP v, R_xlen_t i, double *out) {
  switch (TYPEOF(v)) {
  case REALSXP: *out = REAL(v)[i]; return !ISNAN(*out);
  case INTSXP: *out = INTEGER(v)[i]; return INTEGER(v)[i] != NA_INTEGER;
  case LGLSXP: *out = LOGICAL(v)[i]; return LOGICAL(v)[i] != NA_LOGICAL;
  default: return 0;
  }
}

/* The integer for an integer-typed field, range-checked. */
static int to_int(const sn_pb_message *m, const sn_pb_field *f, double d, int64_t *out) {
  double lo, hi;
  switch (f->type) {
  case SN_PB_BOOL: *out = d != 0; return SN_OK;
  case SN_PB_FLOAT: case SN_PB_DOUBLE: *out = 0; return SN_OK;
  case SN_PB_INT32: case SN_PB_SINT32: case SN_PB_SFIXED32: case SN_PB_ENUM: lo = -2147483648.0; hi = 2147483648.0; break;
  case SN_PB_UINT32: case SN_PB_FIXED32: lo = 0; hi = 4294967296.0; break;
  case SN_PB_UINT64: case SN_PB_FIXED64: lo = 0; hi = 18446744073709551616.0; break;
  default: lo = -9223372036854775808.0; hi = 9223372036854775808.0; break;
  }
  if (!isfinite(d) || d != floor(d) || d < lo || d >= hi)
    return sn_error(SN_ERR_ARG, "protobuf: %s.%s: %g is not a valid %s", m->name, f->name, d, sn_pb_type_name(f->type));
  if (d >= 9223372036854775808.0) *out = (int64_t)(uint64_t)d;
  else *out = (int64_t)d;
  return SN_OK;
}

static int enc_field(SEXP el, const sn_pb_schema *s, const sn_pb_message *m, const sn_pb_field *f, sn_pb_writer *w,
                     int depth) {
  R_xlen_t n = XLENGTH(el);
  int t = f->type;
  if (t == SN_PB_MESSAGE) {
    if (!Rf_isNewList(el)) return sn_error(SN_ERR_ARG, "protobuf: %s.%s must be a list", m->name, f->name);
    R_xlen_t cnt = f->repeated ? n : 1;
    for (R_xlen_t i = 0; i < cnt; i++) {
      SEXP sub = f->repeated ? VECTOR_ELT(el, i) : el;
      sn_pb_writer sw;
      sn_pb_writer_init(&sw);
      int rc = enc_msg(sub, s, f->message, &sw, depth + 1);
      if (rc == SN_OK) rc = sn_pb_write_len_field(w, f->number, sw.buf, sw.len);
      sn_pb_writer_free(&sw);
      if (rc != SN_OK)
        return f->repeated ? sn_error_context(rc, "%s.%s[%lld]", m->name, f->name, (long long)i + 1)
                           : sn_error_context(rc, "%s.%s", m->name, f->name);
    }
    return SN_OK;
  }
  if (t == SN_PB_STRING || t == SN_PB_BYTES) {
    if (TYPEOF(el) == RAWSXP && t == SN_PB_BYTES) /* one bytes value */
      return sn_pb_write_len_field(w, f->number, RAW(el), (size_t)n);
    if (!f->repeated && n != 1)
      return sn_error(SN_ERR_ARG, "protobuf: %s.%s must be a single %s", m->name, f->name, sn_pb_type_name(t));
    for (R_xlen_t i = 0; i < n; i++) {
      if (TYPEOF(el) == STRSXP) {
        SEXP ch = STRING_ELT(el, i);
        if (ch == NA_STRING) return sn_error(SN_ERR_ARG, "protobuf: %s.%s is NA", m->name, f->name);
        SN_TRY(sn_pb_write_len_field(w, f->number, CHAR(ch), strlen(CHAR(ch))));
      } else if (TYPEOF(el) == VECSXP && TYPEOF(VECTOR_ELT(el, i)) == RAWSXP) {
        SEXP r = VECTOR_ELT(el, i);
        SN_TRY(sn_pb_write_len_field(w, f->number, RAW(r), (size_t)XLENGTH(r)));
      } else {
        return sn_error(SN_ERR_ARG, "protobuf: %s.%s must be character or raw", m->name, f->name);
      }
    }
    return SN_OK;
  }
  /* numbers and bools */
  if (TYPEOF(el) != REALSXP && TYPEOF(el) != INTSXP && TYPEOF(el) != LGLSXP)
    return sn_error(SN_ERR_ARG, "protobuf: %s.%s must be numeric", m->name, f->name);
  if (!f->repeated && n != 1)
    return sn_error(SN_ERR_ARG, "protobuf: %s.%s must be a single number (got %lld)", m->name, f->name,
                    (long long)n);
  if (f->repeated == 2) {
    if (n == 0) return SN_OK;
    sn_pb_writer pw;
    sn_pb_writer_init(&pw);
    int rc = SN_OK;
    for (R_xlen_t i = 0; i < n && rc == SN_OK; i++) {
      double d;
      int64_t iv = 0;
      if (!num_at(el, i, &d)) rc = sn_error(SN_ERR_ARG, "protobuf: %s.%s has NA", m->name, f->name);
      if (rc == SN_OK) rc = to_int(m, f, d, &iv);
      if (rc == SN_OK) rc = sn_pb_write_scalar_payload(&pw, t, d, iv);
    }
    if (rc == SN_OK) rc = sn_pb_write_len_field(w, f->number, pw.buf, pw.len);
    sn_pb_writer_free(&pw);
    return rc;
  }
  for (R_xlen_t i = 0; i < n; i++) {
    double d;
    int64_t iv = 0;
    if (!num_at(el, i, &d)) return sn_error(SN_ERR_ARG, "protobuf: %s.%s has NA", m->name, f->name);
    SN_TRY(to_int(m, f, d, &iv));
    SN_TRY(sn_pb_write_scalar(w, f->number, t, d, iv));
  }
  return SN_OK;
}

static int enc_msg(SEXP x, const sn_pb_schema *s, int msg, sn_pb_writer *w, int depth) {
  const sn_pb_message *m = &s->messages[msg];
  if (depth > SN_PB_MAX_DEPTH)
    return sn_error(SN_ERR_ARG, "protobuf: messages nested deeper than %d", SN_PB_MAX_DEPTH);
  if (!Rf_isNewList(x)) return sn_error(SN_ERR_ARG, "protobuf: a %s must be a named list", m->name);
  R_xlen_t n = XLENGTH(x);
  SEXP nm = Rf_getAttrib(x, R_NamesSymbol);
  if (n > 0 && TYPEOF(nm) != STRSXP) return sn_error(SN_ERR_ARG, "protobuf: a %s must be a named list", m->name);
  for (R_xlen_t i = 0; i < n; i++) {
    const char *key = CHAR(STRING_ELT(nm, i));
    int found = 0;
    for (int k = 0; k < m->nfields && !found; k++) found = !strcmp(key, m->fields[k].name);
    if (!found) return sn_error(SN_ERR_ARG, "protobuf: %s has no field '%s'", m->name, key);
  }
  for (int k = 0; k < m->nfields; k++) {
    const sn_pb_field *f = &m->fields[k];
    for (R_xlen_t i = 0; i < n; i++) {
      if (strcmp(CHAR(STRING_ELT(nm, i)), f->name)) continue;
      SEXP el = VECTOR_ELT(x, i);
      if (!Rf_isNull(el)) SN_TRY(enc_field(el, s, m, f, w, depth));
    }
  }
  return SN_OK;
}

SEXP C_pb_encode(SEXP x, SEXP schema, SEXP msg) {
  const sn_pb_schema *s = schema_from_r(schema);
  int m = msg_index(msg, s);
  sn_pb_writer w;
  sn_pb_writer_init(&w);
  sn_clear_error();
  int rc = enc_msg(x, s, m, &w, 0);
  if (rc != SN_OK) {
    sn_pb_writer_free(&w);
    sn_r_fail(rc);
  }
  SEXP out = Rf_allocVector(RAWSXP, (R_xlen_t)w.len);
  if (w.len) memcpy(RAW(out), w.buf, w.len);
  sn_pb_writer_free(&w);
  return out;
}

SEXP C_pb_unpack(SEXP raw, SEXP kind) {
  if (TYPEOF(raw) != RAWSXP) Rf_error("protobuf: raw data must be a raw vector");
  int k = Rf_asInteger(kind);
  size_t w = k == NA_INTEGER ? 0 : sn_pb_raw_size(k);
  if (w == 0) Rf_error("protobuf: unknown element kind");
  size_t len = (size_t)XLENGTH(raw);
  if (len % w) Rf_error("protobuf: %zu bytes of raw data are not a whole number of %zu-byte elements", len, w);
  SEXP out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)(len / w)));
  int rc = sn_pb_raw_to_double(RAW(raw), len, k, REAL(out), len / w);
  if (rc != SN_OK) sn_r_fail(rc);
  UNPROTECT(1);
  return out;
}
