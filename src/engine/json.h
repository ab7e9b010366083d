/* A small JSON reader and writer for MXNet symbol files (prefix-symbol.json).
 *
 * Values form a tree of sn_json nodes.  The parser is strict RFC 8259 JSON
 * (no comments, no trailing commas, nothing after the value) with a nesting
 * limit of SN_JSON_MAX_DEPTH; errors are SN_ERR_FORMAT with the message
 * "line L, column C: what" (1-based; the column counts characters, i.e. bytes other than UTF-8
 * continuation bytes), allocation
 * failures SN_ERR_OOM.  Strings are kept as bytes: \uXXXX escapes (with
 * surrogate pairs) become UTF-8, invalid UTF-8 is passed through as MXNet
 * does, but control characters below 0x20 must be escaped and NUL (raw or
 * \u0000) is refused, so every string is a plain C string.  Object members
 * keep file order and duplicate keys.  Numbers keep their source text in
 * number_text so that integers of any size round-trip exactly.
 *
 * The writer reproduces the layout of dmlc-core's JSONWriter, which MXNet
 * uses for symbol files, so that a file MXNet wrote comes back byte for byte
 * (see sn_json_write).  No global state: everything is thread-safe as long
 * as one tree is not modified by two threads at once. */
#ifndef SN_JSON_H
#define SN_JSON_H

#include <stddef.h>

#include "error.h"

#define SN_JSON_MAX_DEPTH 256

typedef enum { SN_JSON_NULL, SN_JSON_BOOL, SN_JSON_NUMBER, SN_JSON_STRING, SN_JSON_ARRAY, SN_JSON_OBJECT } sn_json_type;
typedef struct sn_json sn_json;
struct sn_json {
  sn_json_type type;
  int boolean; double number; char *string; /* strings: UTF-8, NUL-terminated (reject embedded NULs) */
  size_t n;          /* array/object length */
  sn_json **items;   /* array elements or object values, in file order */
  char **keys;       /* object keys (NULL for arrays) */
  char *number_text; /* the number's original text, so integers round-trip exactly */
};

/* Parses len bytes of text (need not be NUL-terminated).  On success *out is
 * a new tree (free with sn_json_free); on failure *out is NULL. */
int sn_json_parse(const char *text, size_t len, sn_json **out);   /* SN_ERR_FORMAT with "line L, column C: what" */
/* Frees a whole tree (iteratively: any depth is fine).  NULL is a no-op. */
void sn_json_free(sn_json *v);
const sn_json *sn_json_get(const sn_json *obj, const char *key);   /* NULL if absent or not an object; first match */

/* Builders.  A new STRING holds "", a NUMBER 0, a BOOL 0 (set v->boolean).
 * Grow arrays and objects only with sn_json_append / sn_json_put (they keep
 * the items/keys capacity at the next power of two of n). */
sn_json *sn_json_new(sn_json_type t);               /* NULL on OOM */
int sn_json_set_string(sn_json *v, const char *s);  /* copies; v must be a STRING (else SN_ERR_ARG) */
int sn_json_set_number(sn_json *v, double x);       /* v must be a NUMBER; drops number_text */
int sn_json_append(sn_json *array, sn_json *item);  /* takes ownership (also on failure: frees item) */
int sn_json_put(sn_json *object, const char *key, sn_json *item); /* appends; takes ownership */

/* Writer.  indent > 0 gives dmlc-core's JSONWriter layout, as in MXNet's
 * symbol files: an object with two or more members, or an array with more
 * than 10 elements or with an object among its elements, is "multi-line":
 * each member/element goes on a new line indented by indent * (nesting
 * depth) spaces, members are separated by ", " before the newline (a
 * trailing space, as MXNet writes), and the closing bracket goes on its own
 * line.  Other containers are written inline: [0, 0, 0], {"k": "v"}, [].
 * Members are "key": value.  No newline at the end.  indent == 0 gives
 * compact JSON without any whitespace.  Numbers are written from
 * number_text when present, else integers below 2^53 without a decimal
 * point and other values with the shortest "%.*g" text that reads back
 * exactly; NaN and infinities are refused (SN_ERR_ARG), as is nesting
 * deeper than SN_JSON_MAX_DEPTH.  Strings escape ", \, \n, \r, \t with a
 * backslash and other control characters as \u00XX. */
int sn_json_write(const sn_json *v, int indent, char **text, size_t *len); /* malloc'd, NUL-terminated */

#endif
