/* Parsing and formatting of op parameters.
 *
 * Parameters travel as strings, exactly as MXNet writes them in symbol JSON
 * ("(5, 5)", "True", "0.001", "None"), whether they come from a JSON file or
 * from an R wrapper; the schema of the op says how to read each one. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "op.h"

static const char *sn_skip_ws(const char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  return s;
}

static int sn_is_none(const char *s) {
  s = sn_skip_ws(s);
  if (strncmp(s, "None", 4) != 0) return 0;
  return *sn_skip_ws(s + 4) == '\0';
}

static int sn_parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  s = sn_skip_ws(s);
  long long v = strtoll(s, &end, 10);
  if (end == s || errno) return 0;
  /* Accept "5.0" the way MXNet's dmlc parser does for whole numbers. */
  if (*end == '.') {
    char *end2;
    double d = strtod(s, &end2);
    if (d != floor(d)) return 0;
    end = end2;
  } else if (*end == 'L') {
    end++;
  }
  if (*sn_skip_ws(end) != '\0') return 0;
  *out = v;
  return 1;
}

static int sn_parse_float(const char *s, double *out) {
  char *end;
  s = sn_skip_ws(s);
  if (strcasecmp(s, "inf") == 0 || strcasecmp(s, "+inf") == 0) { *out = INFINITY; return 1; }
  if (strcasecmp(s, "-inf") == 0) { *out = -INFINITY; return 1; }
  double v = strtod(s, &end);
  if (end == s || *sn_skip_ws(end) != '\0') return 0;
  *out = v;
  return 1;
}

static int sn_parse_bool(const char *s, int64_t *out) {
  s = sn_skip_ws(s);
  if (!strcasecmp(s, "true") || !strcmp(s, "1")) { *out = 1; return 1; }
  if (!strcasecmp(s, "false") || !strcmp(s, "0")) { *out = 0; return 1; }
  return 0;
}

/* Tuples: "(5, 5)", "(5,)", "[5, 5]", "5", "()".  "None" entries (slice
 * begin/end) read as INT64_MIN. */
int sn_parse_shape(const char *text, sn_shape *out) {
  const char *s = sn_skip_ws(text);
  char close = 0;
  memset(out, 0, sizeof *out);
  if (*s == '(') close = ')';
  else if (*s == '[') close = ']';
  if (close) s++;
  for (;;) {
    s = sn_skip_ws(s);
    if (close && *s == close) { s++; break; }
    if (!close && *s == '\0') break;
    if (out->ndim >= SN_MAX_DIMS) return 0;
    if (strncmp(s, "None", 4) == 0) {
      out->dim[out->ndim++] = INT64_MIN;
      s += 4;
    } else {
      char *end;
      errno = 0;
      long long v = strtoll(s, &end, 10);
      if (end == s || errno) return 0;
      if (*end == 'L') end++;
      out->dim[out->ndim++] = v;
      s = end;
    }
    s = sn_skip_ws(s);
    if (*s == ',') s++;
    else if (close && *s == close) { s++; break; }
    else if (!close && *s == '\0') break;
    else return 0;
  }
  return *sn_skip_ws(s) == '\0';
}

static int sn_enum_index(const char *choices, const char *val, int64_t *out) {
  const char *a = choices;
  size_t len = strlen(val);
  for (int idx = 0; a && *a; idx++) {
    const char *bar = strchr(a, '|');
    size_t l = bar ? (size_t)(bar - a) : strlen(a);
    if (l == len && strncmp(a, val, len) == 0) {
      *out = idx;
      return 1;
    }
    a = bar ? bar + 1 : NULL;
  }
  return 0;
}

static const char *sn_ptype_name(sn_ptype t) {
  switch (t) {
  case SN_PT_INT: return "an integer";
  case SN_PT_FLOAT: return "a number";
  case SN_PT_BOOL: return "a boolean";
  case SN_PT_ENUM: return "one of the listed choices";
  case SN_PT_SHAPE: return "a tuple such as (2, 2)";
  case SN_PT_OPT_INT: return "an integer or None";
  case SN_PT_OPT_FLOAT: return "a number or None";
  case SN_PT_OPT_SHAPE: return "a tuple or None";
  case SN_PT_DTYPE: return "a dtype name";
  default: return "a string";
  }
}

static int sn_param_set(const sn_op *op, const sn_param_spec *spec, const char *val, sn_pval *v) {
  int ok = 1;
  memset(v, 0, sizeof *v);
  v->set = 1;
  switch (spec->type) {
  case SN_PT_OPT_INT:
  case SN_PT_OPT_FLOAT:
  case SN_PT_OPT_SHAPE:
    if (sn_is_none(val)) {
      v->set = 0;
      if (spec->type == SN_PT_OPT_SHAPE) v->s.ndim = -1;
      return SN_OK;
    }
    if (spec->type == SN_PT_OPT_INT) ok = sn_parse_int(val, &v->i);
    else if (spec->type == SN_PT_OPT_FLOAT) ok = sn_parse_float(val, &v->f);
    else ok = sn_parse_shape(val, &v->s);
    break;
  case SN_PT_INT: ok = sn_parse_int(val, &v->i); break;
  case SN_PT_FLOAT: ok = sn_parse_float(val, &v->f); break;
  case SN_PT_BOOL: ok = sn_parse_bool(val, &v->i); break;
  case SN_PT_SHAPE: ok = sn_parse_shape(val, &v->s); break;
  case SN_PT_ENUM:
    ok = sn_enum_index(spec->choices, sn_skip_ws(val), &v->i);
    if (!ok)
      return sn_error(SN_ERR_ARG, "%s: parameter '%s' must be one of %s, got '%s'", op->name,
                      spec->name, spec->choices, val);
    break;
  case SN_PT_DTYPE: {
    sn_dtype t;
    if (sn_dtype_from_name(sn_skip_ws(val), &t) != SN_OK)
      return sn_error(SN_ERR_ARG, "%s: parameter '%s' must be a dtype name, got '%s'", op->name,
                      spec->name, val);
    v->i = t;
    break;
  }
  case SN_PT_STRING:
    if (strlen(val) >= SN_PSTR)
      return sn_error(SN_ERR_ARG, "%s: parameter '%s' is too long", op->name, spec->name);
    break;
  }
  if (!ok)
    return sn_error(SN_ERR_ARG, "%s: parameter '%s' must be %s, got '%s'", op->name, spec->name,
                    sn_ptype_name(spec->type), val);
  snprintf(v->str, SN_PSTR, "%s", val);
  if (spec->type == SN_PT_INT || spec->type == SN_PT_OPT_INT) v->f = (double)v->i;
  if (spec->type == SN_PT_FLOAT || spec->type == SN_PT_OPT_FLOAT) v->i = (int64_t)v->f;
  return SN_OK;
}

int sn_param_index(const sn_op *op, const char *name) {
  for (int i = 0; i < op->nparams; i++)
    if (strcmp(op->params[i].name, name) == 0) return i;
  return -1;
}

int sn_params_parse(const sn_op *op, int n, const char *const *keys, const char *const *vals,
                    sn_params *out) {
  int given[SN_MAX_PARAMS] = {0};
  memset(out, 0, sizeof *out);
  out->op = op;
  out->n = op->nparams;
  if (op->nparams > SN_MAX_PARAMS)
    return sn_error(SN_ERR_INTERNAL, "%s: too many parameters in the schema", op->name);
  for (int k = 0; k < n; k++) {
    if (strncmp(keys[k], "__", 2) == 0) continue; /* symbol attributes */
    int idx = sn_param_index(op, keys[k]);
    if (idx < 0) {
      char list[512];
      size_t len = 0;
      list[0] = '\0';
      for (int i = 0; i < op->nparams && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, i ? ", %s" : "%s", op->params[i].name);
      return sn_error(SN_ERR_ARG, "%s has no parameter '%s' (its parameters: %s)", op->name,
                      keys[k], op->nparams ? list : "none");
    }
    SN_TRY(sn_param_set(op, &op->params[idx], vals[k], &out->v[idx]));
    given[idx] = 1;
  }
  for (int i = 0; i < op->nparams; i++) {
    if (given[i]) continue;
    if (!op->params[i].dflt)
      return sn_error(SN_ERR_ARG, "%s: required parameter '%s' is missing", op->name,
                      op->params[i].name);
    SN_TRY(sn_param_set(op, &op->params[i], op->params[i].dflt, &out->v[i]));
  }
  return SN_OK;
}

const char *sn_param_format(const sn_param_spec *spec, const sn_pval *v, char *buf, size_t n) {
  switch (spec->type) {
  case SN_PT_OPT_INT:
  case SN_PT_OPT_FLOAT:
  case SN_PT_OPT_SHAPE:
    if (!v->set) {
      snprintf(buf, n, "None");
      return buf;
    }
    if (spec->type == SN_PT_OPT_INT) snprintf(buf, n, "%lld", (long long)v->i);
    else if (spec->type == SN_PT_OPT_FLOAT) snprintf(buf, n, "%.17g", v->f);
    else sn_shape_str(&v->s, buf, n);
    return buf;
  case SN_PT_INT: snprintf(buf, n, "%lld", (long long)v->i); return buf;
  case SN_PT_FLOAT: snprintf(buf, n, "%.17g", v->f); return buf;
  case SN_PT_BOOL: snprintf(buf, n, "%s", v->i ? "True" : "False"); return buf;
  case SN_PT_SHAPE: return sn_shape_str(&v->s, buf, n);
  case SN_PT_DTYPE: snprintf(buf, n, "%s", sn_dtype_name((sn_dtype)v->i)); return buf;
  default: snprintf(buf, n, "%s", v->str); return buf;
  }
}
