/* libFuzzer harness for the JSON reader and writer (src/engine/json.c).
 *
 * Each input is parsed with sn_json_parse.  A malformed input must give an
 * error status with a message ("line L, column C: ..." for format errors)
 * and leave nothing allocated (LeakSanitizer checks).  A well-formed one is
 * written back both pretty (indent 2, MXNet's layout) and compact; each text
 * must parse again to an identical tree, and writing that tree again must
 * give the same bytes (the writer is a fixed point after one round).
 * Build and run: see README.md in this folder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define FUZZ_CHECK(c)                                                           \
  do {                                                                          \
    if (!(c)) {                                                                 \
      fprintf(stderr, "json_fuzz: check failed: %s (line %d): %s\n", #c, __LINE__, \
              sn_last_error());                                                 \
      __builtin_trap();                                                         \
    }                                                                           \
  } while (0)

/* Same tree: types, strings, keys, number texts and values.  Depth is
 * bounded by the parser's limit, so recursion is fine here. */
static int same(const sn_json *a, const sn_json *b) {
  size_t i;
  if (a->type != b->type) return 0;
  switch (a->type) {
    case SN_JSON_NULL: return 1;
    case SN_JSON_BOOL: return a->boolean == b->boolean;
    case SN_JSON_NUMBER:
      if ((a->number_text == NULL) != (b->number_text == NULL)) return 0;
      if (a->number_text && strcmp(a->number_text, b->number_text) != 0) return 0;
      return memcmp(&a->number, &b->number, sizeof(double)) == 0;
    case SN_JSON_STRING: return strcmp(a->string, b->string) == 0;
    case SN_JSON_ARRAY:
    case SN_JSON_OBJECT:
      if (a->n != b->n) return 0;
      if ((a->keys == NULL) != (b->keys == NULL) && a->n > 0) return 0;
      for (i = 0; i < a->n; i++) {
        if (a->type == SN_JSON_OBJECT && strcmp(a->keys[i], b->keys[i]) != 0) return 0;
        if (!same(a->items[i], b->items[i])) return 0;
      }
      return 1;
  }
  return 0;
}

static void round_trip(const sn_json *v, int indent) {
  char *t1 = NULL, *t2 = NULL;
  size_t l1 = 0, l2 = 0;
  sn_json *w = NULL;
  FUZZ_CHECK(sn_json_write(v, indent, &t1, &l1) == SN_OK);
  FUZZ_CHECK(t1 != NULL && strlen(t1) == l1);
  FUZZ_CHECK(sn_json_parse(t1, l1, &w) == SN_OK);
  FUZZ_CHECK(same(v, w));
  FUZZ_CHECK(sn_json_write(w, indent, &t2, &l2) == SN_OK);
  FUZZ_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0);
  free(t1);
  free(t2);
  sn_json_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sn_json *v = (sn_json *)&v;
  int rc;
  const char *text = (const char *)data;

  sn_clear_error();
  rc = sn_json_parse(text, size, &v);
  if (rc != SN_OK) {
    const char *msg = sn_last_error();
    FUZZ_CHECK(v == NULL);
    FUZZ_CHECK(rc == SN_ERR_FORMAT || rc == SN_ERR_OOM);
    FUZZ_CHECK(msg && msg[0] != '\0');
    if (rc == SN_ERR_FORMAT) FUZZ_CHECK(strncmp(msg, "line ", 5) == 0 && strstr(msg, ", column ") != NULL);
    return 0;
  }
  FUZZ_CHECK(v != NULL);
  /* lookups of the first key, if any, return the first match */
  if (v->type == SN_JSON_OBJECT && v->n > 0) FUZZ_CHECK(sn_json_get(v, v->keys[0]) == v->items[0]);
  round_trip(v, 2);
  round_trip(v, 0);
  round_trip(v, 1);
  sn_json_free(v);
  return 0;
}
