/* JSON reader and writer for MXNet symbol files: see json.h.
 *
 * Parser: recursive descent over a byte buffer with an explicit length (the
 * text need not be NUL-terminated and is never read past len), nesting
 * limited to SN_JSON_MAX_DEPTH so the C stack stays small.  Every node is
 * attached to its parent as soon as it exists, so on any error freeing the
 * root releases everything.  Line and column are computed only when an error
 * is reported.
 *
 * Numbers are converted without depending on the C locale: the JSON text is
 * rewritten as "<sign><all digits>e<exponent>" (no decimal point) and handed
 * to strtod, which is correctly rounded in glibc and the BSD libcs.
 *
 * sn_json_free walks the tree without recursion and without allocating, by
 * pointer reversal: when it descends into the last child of a node it
 * stores the node's parent in the slot that child occupied.
 *
 * Writer: dmlc-core JSONWriter layout (what MXNet writes), see json.h. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Nodes and builders                                                        */

static int is_container(const sn_json *v) {
  return v && (v->type == SN_JSON_ARRAY || v->type == SN_JSON_OBJECT);
}

/* Frees one node whose children (if any) are already gone. */
static void free_one(sn_json *v) {
  size_t i;
  if (v->keys)
    for (i = 0; i < v->n; i++) free(v->keys[i]);
  free(v->string);
  free(v->number_text);
  free(v->items);
  free(v->keys);
  free(v);
}

void sn_json_free(sn_json *v) {
  sn_json *parent = NULL, *cur = v;
  while (cur) {
    if (is_container(cur) && cur->n > 0 && cur->items) {
      size_t i = cur->n - 1;
      sn_json *child = cur->items[i];
      if (cur->keys) {
        free(cur->keys[i]);
        cur->keys[i] = NULL;
      }
      cur->n = i;
      if (is_container(child) && child->n > 0 && child->items) {
        cur->items[i] = parent; /* back link, read when we come back up */
        parent = cur;
        cur = child;
      } else if (child) {
        free_one(child);
      }
      continue;
    }
    free_one(cur);
    if (!parent) break;
    cur = parent;
    parent = cur->items[cur->n];
  }
}

sn_json *sn_json_new(sn_json_type t) {
  sn_json *v;
  if ((int)t < (int)SN_JSON_NULL || (int)t > (int)SN_JSON_OBJECT) return NULL;
  v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->type = t;
  if (t == SN_JSON_STRING) {
    v->string = malloc(1);
    if (!v->string) {
      free(v);
      return NULL;
    }
    v->string[0] = '\0';
  }
  return v;
}

int sn_json_set_string(sn_json *v, const char *s) {
  size_t n;
  char *c;
  if (!v || v->type != SN_JSON_STRING || !s)
    return sn_error(SN_ERR_ARG, "sn_json_set_string: needs a JSON string value and a string");
  n = strlen(s);
  c = malloc(n + 1);
  if (!c) return sn_error(SN_ERR_OOM, "sn_json_set_string: out of memory for a string of %zu bytes", n);
  memcpy(c, s, n + 1);
  free(v->string);
  v->string = c;
  return SN_OK;
}

int sn_json_set_number(sn_json *v, double x) {
  if (!v || v->type != SN_JSON_NUMBER) return sn_error(SN_ERR_ARG, "sn_json_set_number: needs a JSON number value");
  free(v->number_text);
  v->number_text = NULL;
  v->number = x;
  return SN_OK;
}

/* Makes room for one more member.  Capacity is 0 for n == 0, otherwise the
 * larger of 4 and the next power of two >= n, so it is full exactly when
 * n == 0 or n is a power of two >= 4. */
static int reserve_one(sn_json *c) {
  size_t n = c->n, cap;
  void *p;
  if (n != 0 && (n < 4 || (n & (n - 1)) != 0)) return SN_OK;
  if (n == 0) {
    cap = 4;
  } else {
    if (n > SIZE_MAX / 2 / sizeof(void *)) return sn_error(SN_ERR_OVERFLOW, "JSON container too large");
    cap = 2 * n;
  }
  p = realloc(c->items, cap * sizeof(sn_json *));
  if (!p) return sn_error(SN_ERR_OOM, "out of memory growing a JSON container to %zu members", cap);
  c->items = p;
  if (c->type == SN_JSON_OBJECT) {
    p = realloc(c->keys, cap * sizeof(char *));
    if (!p) return sn_error(SN_ERR_OOM, "out of memory growing a JSON object to %zu members", cap);
    c->keys = p;
  }
  return SN_OK;
}

int sn_json_append(sn_json *array, sn_json *item) {
  int rc;
  if (!item) return sn_error(SN_ERR_ARG, "sn_json_append: no item");
  if (item == array) return sn_error(SN_ERR_ARG, "sn_json_append: cannot append an array to itself");
  if (!array || array->type != SN_JSON_ARRAY) {
    sn_json_free(item);
    return sn_error(SN_ERR_ARG, "sn_json_append: not a JSON array");
  }
  rc = reserve_one(array);
  if (rc != SN_OK) {
    sn_json_free(item);
    return rc;
  }
  array->items[array->n++] = item;
  return SN_OK;
}

/* Appends item under key, taking ownership of both (freed on failure). */
static int put_owned(sn_json *object, char *key, sn_json *item) {
  int rc = reserve_one(object);
  if (rc != SN_OK) {
    free(key);
    sn_json_free(item);
    return rc;
  }
  object->keys[object->n] = key;
  object->items[object->n] = item;
  object->n++;
  return SN_OK;
}

int sn_json_put(sn_json *object, const char *key, sn_json *item) {
  size_t n;
  char *k;
  if (!item) return sn_error(SN_ERR_ARG, "sn_json_put: no item");
  if (item == object) return sn_error(SN_ERR_ARG, "sn_json_put: cannot put an object into itself");
  if (!object || object->type != SN_JSON_OBJECT || !key) {
    sn_json_free(item);
    return sn_error(SN_ERR_ARG, "sn_json_put: needs a JSON object and a key");
  }
  n = strlen(key);
  k = malloc(n + 1);
  if (!k) {
    sn_json_free(item);
    return sn_error(SN_ERR_OOM, "sn_json_put: out of memory for key of %zu bytes", n);
  }
  memcpy(k, key, n + 1);
  return put_owned(object, k, item);
}

const sn_json *sn_json_get(const sn_json *obj, const char *key) {
  size_t i;
  if (!obj || obj->type != SN_JSON_OBJECT || !key || !obj->keys) return NULL;
  for (i = 0; i < obj->n; i++)
    if (obj->keys[i] && strcmp(obj->keys[i], key) == 0) return obj->items[i];
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Locale-independent number conversion                                      */

/* t[0..n) is a number matching the JSON grammar. */
static int number_value(const char *t, size_t n, double *out) {
  char small[96], *buf = small, *w;
  size_t i = 0, frac = 0;
  long long e = 0, adj;
  int eneg = 0;
  if (n > SIZE_MAX - 40) return SN_ERR_OVERFLOW;
  if (n + 40 > sizeof small) {
    buf = malloc(n + 40);
    if (!buf) return SN_ERR_OOM;
  }
  w = buf;
  if (i < n && t[i] == '-') *w++ = t[i++];
  while (i < n && t[i] >= '0' && t[i] <= '9') *w++ = t[i++];
  if (i < n && t[i] == '.') {
    i++;
    while (i < n && t[i] >= '0' && t[i] <= '9') {
      *w++ = t[i++];
      frac++;
    }
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    if (i < n && (t[i] == '+' || t[i] == '-')) eneg = t[i++] == '-';
    while (i < n && t[i] >= '0' && t[i] <= '9') {
      if (e < 1000000000LL) e = e * 10 + (t[i] - '0'); /* saturates: the result is 0 or inf anyway */
      i++;
    }
  }
  if (eneg) e = -e;
  /* |e| < 1e10 and frac <= n, so this cannot overflow a long long */
  adj = e - (frac > (size_t)4000000000000000000LL ? 4000000000000000000LL : (long long)frac);
  snprintf(w, 40, "e%lld", adj);
  *out = strtod(buf, NULL);
  if (buf != small) free(buf);
  return SN_OK;
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */

typedef struct {
  const unsigned char *s;
  size_t len, pos;
} parser;

static int perr(const parser *p, size_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int perr(const parser *p, size_t at, const char *fmt, ...) {
  char msg[256];
  size_t i, line = 1, col = 1;
  va_list ap;
  if (at > p->len) at = p->len;
  for (i = 0; i < at; i++) {
    if (p->s[i] == '\n') {
      line++;
      col = 1;
    } else if ((p->s[i] & 0xC0) != 0x80) {
      col++; /* count characters, not UTF-8 continuation bytes */
    }
  }
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sn_error(SN_ERR_FORMAT, "line %zu, column %zu: %s", line, col, msg);
}

static int oom(void) { return sn_error(SN_ERR_OOM, "out of memory while parsing JSON"); }

/* Describes the byte at p->pos (or the end of input) for messages. */
static void describe(const parser *p, size_t at, char *buf, size_t n) {
  if (at >= p->len) {
    snprintf(buf, n, "end of input");
  } else {
    unsigned c = p->s[at];
    if (c == 0)
      snprintf(buf, n, "NUL byte");
    else if (c >= 0x20 && c < 0x7F)
      snprintf(buf, n, "'%c'", (int)c);
    else
      snprintf(buf, n, "byte 0x%02X", c);
  }
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Reads 4 hex digits at s[at..at+4) (within end); -1 if not possible. */
static long hex4(const parser *p, size_t at, size_t end) {
  long v = 0;
  size_t k;
  if (at > end || end - at < 4) return -1;
  for (k = 0; k < 4; k++) {
    int h = hexval(p->s[at + k]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* p->pos is at the opening quote.  Decodes into a new malloc'd string. */
static int parse_string(parser *p, char **out) {
  size_t open = p->pos, start = open + 1, end = start, k;
  char *buf, *w;
  *out = NULL;
  /* find the closing quote */
  while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) return perr(p, open, "unterminated string");
  buf = malloc(end - start + 1);
  if (!buf) return oom();
  w = buf;
  for (k = start; k < end;) {
    unsigned char c = p->s[k];
    if (c == '\\') {
      unsigned char e = p->s[k + 1]; /* k + 1 < end: a backslash never ends the span */
      switch (e) {
        case '"': *w++ = '"'; k += 2; break;
        case '\\': *w++ = '\\'; k += 2; break;
        case '/': *w++ = '/'; k += 2; break;
        case 'b': *w++ = '\b'; k += 2; break;
        case 'f': *w++ = '\f'; k += 2; break;
        case 'n': *w++ = '\n'; k += 2; break;
        case 'r': *w++ = '\r'; k += 2; break;
        case 't': *w++ = '\t'; k += 2; break;
        case 'u': {
          long cp = hex4(p, k + 2, end);
          size_t used = 6;
          if (cp < 0) {
            free(buf);
            return perr(p, k, "\\u must be followed by 4 hex digits");
          }
          if (cp == 0) {
            free(buf);
            return perr(p, k, "\\u0000 (NUL) is not allowed in strings");
          }
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(buf);
            return perr(p, k, "unpaired low surrogate \\u%04lX", (unsigned long)cp);
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo = -1;
            if (end - k >= 12 && p->s[k + 6] == '\\' && p->s[k + 7] == 'u') lo = hex4(p, k + 8, end);
            if (lo < 0xDC00 || lo > 0xDFFF) {
              free(buf);
              return perr(p, k, "high surrogate \\u%04lX not followed by a low surrogate", (unsigned long)cp);
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
          }
          if (cp < 0x80) {
            *w++ = (char)cp;
          } else if (cp < 0x800) {
            *w++ = (char)(0xC0 | (cp >> 6));
            *w++ = (char)(0x80 | (cp & 0x3F));
          } else if (cp < 0x10000) {
            *w++ = (char)(0xE0 | (cp >> 12));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
          } else {
            *w++ = (char)(0xF0 | (cp >> 18));
            *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *w++ = (char)(0x80 | (cp & 0x3F));
          }
          k += used;
          break;
        }
        default: {
          char d[32];
          describe(p, k + 1, d, sizeof d);
          free(buf);
          return perr(p, k, "invalid escape: backslash followed by %s", d);
        }
      }
    } else if (c < 0x20) {
      free(buf);
      if (c == 0) return perr(p, k, "NUL byte in string");
      return perr(p, k, "unescaped control character 0x%02X in string", (unsigned)c);
    } else {
      *w++ = (char)c;
      k++;
    }
  }
  *w = '\0';
  p->pos = end + 1;
  *out = buf;
  return SN_OK;
}

static int is_digit(const parser *p, size_t at) { return at < p->len && p->s[at] >= '0' && p->s[at] <= '9'; }

static int parse_number(parser *p, sn_json **out) {
  size_t start = p->pos, i = start, n;
  sn_json *v;
  int rc;
  if (i < p->len && p->s[i] == '-') i++;
  if (!is_digit(p, i)) return perr(p, start, "invalid number: expected a digit");
  if (p->s[i] == '0') {
    i++;
  } else {
    while (is_digit(p, i)) i++;
  }
  if (i < p->len && p->s[i] == '.') {
    i++;
    if (!is_digit(p, i)) return perr(p, i, "invalid number: expected a digit after the decimal point");
    while (is_digit(p, i)) i++;
  }
  if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
    i++;
    if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
    if (!is_digit(p, i)) return perr(p, i, "invalid number: expected a digit in the exponent");
    while (is_digit(p, i)) i++;
  }
  if (i < p->len) {
    unsigned char c = p->s[i];
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '+' ||
        c == '-')
      return perr(p, start, "invalid number");
  }
  n = i - start;
  v = sn_json_new(SN_JSON_NUMBER);
  if (!v) return oom();
  v->number_text = malloc(n + 1);
  if (!v->number_text) {
    sn_json_free(v);
    return oom();
  }
  memcpy(v->number_text, p->s + start, n);
  v->number_text[n] = '\0';
  rc = number_value(v->number_text, n, &v->number);
  if (rc != SN_OK) {
    sn_json_free(v);
    return oom();
  }
  p->pos = i;
  *out = v;
  return SN_OK;
}

static int parse_value(parser *p, int depth, sn_json **out);

static int parse_array(parser *p, int depth, sn_json **out) {
  sn_json *a = sn_json_new(SN_JSON_ARRAY);
  if (!a) return oom();
  p->pos++; /* '[' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == ']') {
    p->pos++;
    *out = a;
    return SN_OK;
  }
  for (;;) {
    sn_json *item = NULL;
    int rc = parse_value(p, depth + 1, &item);
    if (rc == SN_OK) rc = sn_json_append(a, item);
    if (rc != SN_OK) {
      sn_json_free(a);
      return rc;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      size_t comma = p->pos;
      p->pos++;
      skip_ws(p);
      if (p->pos < p->len && p->s[p->pos] == ']') {
        sn_json_free(a);
        return perr(p, comma, "trailing comma in array");
      }
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == ']') {
      p->pos++;
      *out = a;
      return SN_OK;
    } else {
      char d[32];
      describe(p, p->pos, d, sizeof d);
      sn_json_free(a);
      return perr(p, p->pos, "expected ',' or ']' in array, found %s", d);
    }
  }
}

static int parse_object(parser *p, int depth, sn_json **out) {
  sn_json *o = sn_json_new(SN_JSON_OBJECT);
  char d[32];
  if (!o) return oom();
  p->pos++; /* '{' */
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == '}') {
    p->pos++;
    *out = o;
    return SN_OK;
  }
  for (;;) {
    char *key = NULL;
    sn_json *item = NULL;
    int rc;
    if (p->pos >= p->len || p->s[p->pos] != '"') {
      describe(p, p->pos, d, sizeof d);
      sn_json_free(o);
      return perr(p, p->pos, "expected a string key in object, found %s", d);
    }
    rc = parse_string(p, &key);
    if (rc != SN_OK) {
      sn_json_free(o);
      return rc;
    }
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':') {
      describe(p, p->pos, d, sizeof d);
      free(key);
      sn_json_free(o);
      return perr(p, p->pos, "expected ':' after object key, found %s", d);
    }
    p->pos++;
    rc = parse_value(p, depth + 1, &item);
    if (rc != SN_OK) {
      free(key);
      sn_json_free(o);
      return rc;
    }
    rc = put_owned(o, key, item);
    if (rc != SN_OK) {
      sn_json_free(o);
      return rc;
    }
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      size_t comma = p->pos;
      p->pos++;
      skip_ws(p);
      if (p->pos < p->len && p->s[p->pos] == '}') {
        sn_json_free(o);
        return perr(p, comma, "trailing comma in object");
      }
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == '}') {
      p->pos++;
      *out = o;
      return SN_OK;
    }
    describe(p, p->pos, d, sizeof d);
    sn_json_free(o);
    return perr(p, p->pos, "expected ',' or '}' in object, found %s", d);
  }
}

static int parse_literal(parser *p, const char *word, sn_json_type t, int b, sn_json **out) {
  size_t n = strlen(word);
  sn_json *v;
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return perr(p, p->pos, "invalid literal (expected '%s')", word);
  v = sn_json_new(t);
  if (!v) return oom();
  v->boolean = b;
  p->pos += n;
  *out = v;
  return SN_OK;
}

/* depth: number of containers enclosing this value. */
static int parse_value(parser *p, int depth, sn_json **out) {
  unsigned char c;
  *out = NULL;
  skip_ws(p);
  if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of input, expected a value");
  c = p->s[p->pos];
  switch (c) {
    case '{':
    case '[':
      if (depth >= SN_JSON_MAX_DEPTH) return perr(p, p->pos, "nesting deeper than %d levels", SN_JSON_MAX_DEPTH);
      return c == '{' ? parse_object(p, depth, out) : parse_array(p, depth, out);
    case '"': {
      char *s = NULL;
      sn_json *v;
      int rc = parse_string(p, &s);
      if (rc != SN_OK) return rc;
      v = sn_json_new(SN_JSON_NULL);
      if (!v) {
        free(s);
        return oom();
      }
      v->type = SN_JSON_STRING;
      v->string = s;
      *out = v;
      return SN_OK;
    }
    case 't': return parse_literal(p, "true", SN_JSON_BOOL, 1, out);
    case 'f': return parse_literal(p, "false", SN_JSON_BOOL, 0, out);
    case 'n': return parse_literal(p, "null", SN_JSON_NULL, 0, out);
    default:
      if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
      {
        char d[32];
        describe(p, p->pos, d, sizeof d);
        return perr(p, p->pos, "unexpected %s, expected a value", d);
      }
  }
}

int sn_json_parse(const char *text, size_t len, sn_json **out) {
  parser p;
  sn_json *v = NULL;
  int rc;
  if (!out) return sn_error(SN_ERR_ARG, "sn_json_parse: no output pointer");
  *out = NULL;
  if (!text && len > 0) return sn_error(SN_ERR_ARG, "sn_json_parse: no text");
  p.s = (const unsigned char *)(text ? text : "");
  p.len = text ? len : 0;
  p.pos = 0;
  /* a UTF-8 byte order mark is allowed (RFC 8259 section 8.1) and skipped */
  if (p.len >= 3 && p.s[0] == 0xEF && p.s[1] == 0xBB && p.s[2] == 0xBF) p.pos = 3;
  rc = parse_value(&p, 0, &v);
  if (rc != SN_OK) return rc;
  skip_ws(&p);
  if (p.pos < p.len) {
    char d[32];
    describe(&p, p.pos, d, sizeof d);
    sn_json_free(v);
    return perr(&p, p.pos, "unexpected %s after the JSON value", d);
  }
  *out = v;
  return SN_OK;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */

typedef struct {
  char *buf;
  size_t len, cap;
  int indent;
  int err; /* first error status */
} writer;

static void put(writer *w, const char *s, size_t n) {
  if (w->err) return;
  if (n > w->cap - w->len - 1 || w->cap == 0) {
    size_t need, cap;
    char *b;
    if (n > SIZE_MAX - w->len - 1) {
      w->err = sn_error(SN_ERR_OVERFLOW, "JSON text too large");
      return;
    }
    need = w->len + n + 1;
    cap = w->cap ? w->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b = realloc(w->buf, cap);
    if (!b) {
      w->err = sn_error(SN_ERR_OOM, "out of memory writing JSON (%zu bytes)", cap);
      return;
    }
    w->buf = b;
    w->cap = cap;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = '\0';
}

static void puts_(writer *w, const char *s) { put(w, s, strlen(s)); }

static void newline(writer *w, int depth) {
  static const char spaces[] = "                                                                ";
  size_t n;
  put(w, "\n", 1);
  if (w->err) return;
  n = (size_t)depth * (size_t)w->indent;
  while (n > 0) {
    size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
    put(w, spaces, k);
    n -= k;
  }
}

static void write_string(writer *w, const char *s) {
  const unsigned char *c = (const unsigned char *)s, *run = c;
  put(w, "\"", 1);
  for (; *c; c++) {
    const char *esc = NULL;
    char u[8];
    switch (*c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default:
        if (*c < 0x20) {
          snprintf(u, sizeof u, "\\u%04X", (unsigned)*c);
          esc = u;
        }
    }
    if (esc) {
      put(w, (const char *)run, (size_t)(c - run));
      puts_(w, esc);
      run = c + 1;
    }
  }
  put(w, (const char *)run, (size_t)(c - run));
  put(w, "\"", 1);
}

/* Formats x as JSON, shortest text that reads back exactly. */
static int format_number(double x, char *out, size_t n) {
  int prec;
  if (!isfinite(x)) return sn_error(SN_ERR_ARG, "cannot write %s as a JSON number", isnan(x) ? "NaN" : "an infinity");
  if (x == floor(x) && fabs(x) < 9007199254740992.0) {
    snprintf(out, n, "%.0f", x);
    return SN_OK;
  }
  for (prec = 1; prec <= 17; prec++) {
    char raw[48];
    size_t i, j = 0;
    double back;
    snprintf(raw, sizeof raw, "%.*g", prec, x);
    /* normalise the locale's decimal point (whatever it is) to '.' */
    for (i = 0; raw[i] && j + 1 < n; i++) {
      char c = raw[i];
      if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
        out[j++] = c;
      } else if (j == 0 || out[j - 1] != '.') {
        out[j++] = '.';
      }
    }
    out[j] = '\0';
    if (number_value(out, j, &back) != SN_OK) return sn_error(SN_ERR_OOM, "out of memory writing JSON");
    if (back == x) return SN_OK;
  }
  return SN_OK; /* %.17g always reads back; not reached */
}

static void write_value(writer *w, const sn_json *v, int depth) {
  size_t i;
  if (w->err) return;
  if (!v) {
    puts_(w, "null");
    return;
  }
  switch (v->type) {
    case SN_JSON_NULL: puts_(w, "null"); return;
    case SN_JSON_BOOL: puts_(w, v->boolean ? "true" : "false"); return;
    case SN_JSON_NUMBER:
      if (v->number_text && v->number_text[0]) {
        puts_(w, v->number_text);
      } else {
        char t[64];
        int rc = format_number(v->number, t, sizeof t);
        if (rc != SN_OK) {
          w->err = rc;
          return;
        }
        puts_(w, t);
      }
      return;
    case SN_JSON_STRING: write_string(w, v->string ? v->string : ""); return;
    case SN_JSON_ARRAY:
    case SN_JSON_OBJECT: {
      int obj = v->type == SN_JSON_OBJECT, multi = 0;
      if (depth >= SN_JSON_MAX_DEPTH) {
        w->err = sn_error(SN_ERR_ARG, "cannot write JSON nested deeper than %d levels", SN_JSON_MAX_DEPTH);
        return;
      }
      if (v->n > 0 && (!v->items || (obj && !v->keys))) {
        w->err = sn_error(SN_ERR_ARG, "malformed JSON container (%zu members but no storage)", v->n);
        return;
      }
      if (w->indent > 0) {
        if (obj) {
          multi = v->n > 1;
        } else {
          multi = v->n > 10;
          for (i = 0; i < v->n && !multi; i++) multi = v->items[i] && v->items[i]->type == SN_JSON_OBJECT;
        }
      }
      put(w, obj ? "{" : "[", 1);
      for (i = 0; i < v->n && !w->err; i++) {
        if (i > 0) puts_(w, w->indent > 0 ? ", " : ",");
        if (multi) newline(w, depth + 1);
        if (obj) {
          if (!v->keys[i]) {
            w->err = sn_error(SN_ERR_ARG, "JSON object member %zu has no key", i);
            return;
          }
          write_string(w, v->keys[i]);
          puts_(w, w->indent > 0 ? ": " : ":");
        }
        write_value(w, v->items[i], depth + 1);
      }
      if (multi && v->n > 0) newline(w, depth);
      put(w, obj ? "}" : "]", 1);
      return;
    }
  }
  w->err = sn_error(SN_ERR_ARG, "unknown JSON value type %d", (int)v->type);
}

int sn_json_write(const sn_json *v, int indent, char **text, size_t *len) {
  writer w;
  if (!text) return sn_error(SN_ERR_ARG, "sn_json_write: no output pointer");
  *text = NULL;
  if (len) *len = 0;
  if (!v) return sn_error(SN_ERR_ARG, "sn_json_write: no value");
  if (indent < 0 || indent > 64) return sn_error(SN_ERR_ARG, "sn_json_write: indent must be in 0..64, got %d", indent);
  memset(&w, 0, sizeof w);
  w.indent = indent;
  put(&w, "", 0); /* allocates, so an empty result is still a string */
  write_value(&w, v, 0);
  if (w.err) {
    free(w.buf);
    return w.err;
  }
  *text = w.buf;
  if (len) *len = w.len;
  return SN_OK;
}
