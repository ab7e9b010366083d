/* libFuzzer harness for the protobuf reader/writer (src/engine/protobuf.c).
 *
 * Each input is decoded against two schemas that mirror what R/onnx.R and
 * R/caffe.R use (ONNX ModelProto and TensorProto, Caffe NetParameter) with a
 * visitor that builds a tree in malloc'ed memory, the way the R glue builds
 * R lists.  A malformed input must fail with SN_ERR_FORMAT and a message and
 * leave nothing allocated (the visitor frees abandoned messages); a valid one
 * is written back with the writer, decoded again, and the two trees must be
 * equal.  Raw byte fields are also run through sn_pb_raw_to_double.
 * AddressSanitizer/LeakSanitizer catch memory errors, the checks below the
 * logic ones.  Build and run: see README.md in this folder. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "protobuf.h"
#include "tensor.h"

/* The writer allocates with sn_host_alloc (tensor.c); these stand in for
 * the GPU loader when it is not linked. */
__attribute__((weak)) const sn_gpu_api *sn_gpu(void) { return NULL; }
__attribute__((weak)) int sn_device_check(sn_device dev) {
  return dev.type == SN_DEV_CPU ? SN_OK : sn_error(SN_ERR_UNSUPPORTED, "no GPU in the fuzzer");
}

#define FUZZ_CHECK(c)                                                               \
  do {                                                                              \
    if (!(c)) {                                                                     \
      fprintf(stderr, "protobuf_fuzz: check failed: %s (line %d)\n", #c, __LINE__); \
      __builtin_trap();                                                             \
    }                                                                               \
  } while (0)

/* ---- schemas (field numbers as in onnx.proto and caffe.proto) ---- */
#define F(n, num, t, r, m) {n, num, t, r, m}
enum { M_MODEL, M_OPSET, M_KV, M_GRAPH, M_NODE, M_ATTR, M_VI, M_TYPE, M_TTYPE, M_SHAPE, M_DIM, M_TENSOR,
       M_NET, M_LAYER, M_V1, M_BLOB, M_BSHAPE, M_SIGNED, NMSG };
static const sn_pb_field f_model[] = {
    F("ir_version", 1, SN_PB_INT64, 0, -1), F("producer_name", 2, SN_PB_STRING, 0, -1),
    F("graph", 7, SN_PB_MESSAGE, 0, M_GRAPH), F("opset_import", 8, SN_PB_MESSAGE, 1, M_OPSET),
    F("metadata_props", 14, SN_PB_MESSAGE, 1, M_KV), F("functions", 25, SN_PB_BYTES, 1, -1)};
static const sn_pb_field f_opset[] = {F("domain", 1, SN_PB_STRING, 0, -1), F("version", 2, SN_PB_INT64, 0, -1)};
static const sn_pb_field f_kv[] = {F("key", 1, SN_PB_STRING, 0, -1), F("value", 2, SN_PB_STRING, 0, -1)};
static const sn_pb_field f_graph[] = {
    F("node", 1, SN_PB_MESSAGE, 1, M_NODE), F("name", 2, SN_PB_STRING, 0, -1),
    F("initializer", 5, SN_PB_MESSAGE, 1, M_TENSOR), F("input", 11, SN_PB_MESSAGE, 1, M_VI),
    F("output", 12, SN_PB_MESSAGE, 1, M_VI), F("value_info", 13, SN_PB_MESSAGE, 1, M_VI)};
static const sn_pb_field f_node[] = {
    F("input", 1, SN_PB_STRING, 1, -1), F("output", 2, SN_PB_STRING, 1, -1), F("name", 3, SN_PB_STRING, 0, -1),
    F("op_type", 4, SN_PB_STRING, 0, -1), F("attribute", 5, SN_PB_MESSAGE, 1, M_ATTR),
    F("domain", 7, SN_PB_STRING, 0, -1)};
static const sn_pb_field f_attr[] = {
    F("name", 1, SN_PB_STRING, 0, -1), F("f", 2, SN_PB_FLOAT, 0, -1), F("i", 3, SN_PB_INT64, 0, -1),
    F("s", 4, SN_PB_BYTES, 0, -1), F("t", 5, SN_PB_MESSAGE, 0, M_TENSOR), F("g", 6, SN_PB_MESSAGE, 0, M_GRAPH),
    F("floats", 7, SN_PB_FLOAT, 1, -1), F("ints", 8, SN_PB_INT64, 1, -1), F("strings", 9, SN_PB_BYTES, 1, -1),
    F("tensors", 10, SN_PB_MESSAGE, 1, M_TENSOR), F("type", 20, SN_PB_ENUM, 0, -1)};
static const sn_pb_field f_vi[] = {F("name", 1, SN_PB_STRING, 0, -1), F("type", 2, SN_PB_MESSAGE, 0, M_TYPE)};
static const sn_pb_field f_type[] = {F("tensor_type", 1, SN_PB_MESSAGE, 0, M_TTYPE)};
static const sn_pb_field f_ttype[] = {F("elem_type", 1, SN_PB_INT32, 0, -1), F("shape", 2, SN_PB_MESSAGE, 0, M_SHAPE)};
static const sn_pb_field f_shape[] = {F("dim", 1, SN_PB_MESSAGE, 1, M_DIM)};
static const sn_pb_field f_dim[] = {F("dim_value", 1, SN_PB_INT64, 0, -1), F("dim_param", 2, SN_PB_STRING, 0, -1)};
static const sn_pb_field f_tensor[] = {
    F("dims", 1, SN_PB_INT64, 1, -1), F("data_type", 2, SN_PB_INT32, 0, -1), F("float_data", 4, SN_PB_FLOAT, 2, -1),
    F("int32_data", 5, SN_PB_INT32, 2, -1), F("int64_data", 7, SN_PB_INT64, 2, -1), F("name", 8, SN_PB_STRING, 0, -1),
    F("raw_data", 9, SN_PB_BYTES, 0, -1), F("double_data", 10, SN_PB_DOUBLE, 2, -1),
    F("uint64_data", 11, SN_PB_UINT64, 2, -1)};
static const sn_pb_field f_net[] = {
    F("name", 1, SN_PB_STRING, 0, -1), F("layers", 2, SN_PB_MESSAGE, 1, M_V1), F("input", 3, SN_PB_STRING, 1, -1),
    F("input_dim", 4, SN_PB_INT32, 1, -1), F("input_shape", 8, SN_PB_MESSAGE, 1, M_BSHAPE),
    F("layer", 100, SN_PB_MESSAGE, 1, M_LAYER)};
static const sn_pb_field f_layer[] = {
    F("name", 1, SN_PB_STRING, 0, -1), F("type", 2, SN_PB_STRING, 0, -1), F("bottom", 3, SN_PB_STRING, 1, -1),
    F("top", 4, SN_PB_STRING, 1, -1), F("blobs", 7, SN_PB_MESSAGE, 1, M_BLOB)};
static const sn_pb_field f_v1[] = {
    F("bottom", 2, SN_PB_STRING, 1, -1), F("top", 3, SN_PB_STRING, 1, -1), F("name", 4, SN_PB_STRING, 0, -1),
    F("type", 5, SN_PB_ENUM, 0, -1), F("blobs", 6, SN_PB_MESSAGE, 1, M_BLOB)};
static const sn_pb_field f_blob[] = {
    F("num", 1, SN_PB_INT32, 0, -1), F("channels", 2, SN_PB_INT32, 0, -1), F("height", 3, SN_PB_INT32, 0, -1),
    F("width", 4, SN_PB_INT32, 0, -1), F("data", 5, SN_PB_FLOAT, 2, -1), F("shape", 7, SN_PB_MESSAGE, 0, M_BSHAPE),
    F("double_data", 8, SN_PB_DOUBLE, 2, -1)};
static const sn_pb_field f_bshape[] = {F("dim", 1, SN_PB_INT64, 2, -1)};
/* every remaining scalar type, unpacked and packed */
static const sn_pb_field f_signed[] = {
    F("u32", 1, SN_PB_UINT32, 1, -1), F("s32", 2, SN_PB_SINT32, 2, -1), F("s64", 3, SN_PB_SINT64, 1, -1),
    F("b", 4, SN_PB_BOOL, 2, -1), F("fx32", 5, SN_PB_FIXED32, 1, -1), F("fx64", 6, SN_PB_FIXED64, 2, -1),
    F("sfx32", 7, SN_PB_SFIXED32, 2, -1), F("sfx64", 8, SN_PB_SFIXED64, 1, -1), F("d", 9, SN_PB_DOUBLE, 0, -1),
    F("self", 10, SN_PB_MESSAGE, 0, M_SIGNED), F("s", 11, SN_PB_STRING, 0, -1), F("i32", 12, SN_PB_INT32, 0, -1)};
#define MSG(n, f) {n, (int)(sizeof f / sizeof f[0]), f}
static const sn_pb_message messages[NMSG] = {
    MSG("ModelProto", f_model), MSG("OperatorSetIdProto", f_opset), MSG("StringStringEntryProto", f_kv),
    MSG("GraphProto", f_graph), MSG("NodeProto", f_node), MSG("AttributeProto", f_attr),
    MSG("ValueInfoProto", f_vi), MSG("TypeProto", f_type), MSG("TypeProtoTensor", f_ttype),
    MSG("TensorShapeProto", f_shape), MSG("Dimension", f_dim), MSG("TensorProto", f_tensor),
    MSG("NetParameter", f_net), MSG("LayerParameter", f_layer), MSG("V1LayerParameter", f_v1),
    MSG("BlobProto", f_blob), MSG("BlobShape", f_bshape), MSG("AllTypes", f_signed)};
static const sn_pb_schema schema = {NMSG, messages};

/* ---- a tree built by the visitor ---- */
typedef struct node node;
typedef struct {
  int64_t n;
  double *num;
  int64_t *i64;
  uint8_t **data;
  size_t *len;
  node **child;
} vals;
struct node {
  int msg;
  vals *f;
};

static void node_free(node *m) {
  if (!m) return;
  const sn_pb_message *d = &messages[m->msg];
  for (int k = 0; k < d->nfields; k++) {
    vals *v = &m->f[k];
    for (int64_t i = 0; i < v->n; i++) {
      if (v->data) free(v->data[i]);
      if (v->child) node_free(v->child[i]);
    }
    free(v->num);
    free(v->i64);
    free(v->data);
    free(v->len);
    free(v->child);
  }
  free(m->f);
  free(m);
}

static int v_begin(void *ctx, int msg, const int64_t *counts, void **handle) {
  (void)ctx;
  const sn_pb_message *d = &messages[msg];
  node *m = calloc(1, sizeof *m);
  FUZZ_CHECK(m);
  m->msg = msg;
  m->f = calloc((size_t)(d->nfields ? d->nfields : 1), sizeof *m->f);
  FUZZ_CHECK(m->f);
  for (int k = 0; k < d->nfields; k++) {
    int64_t n = counts[k];
    FUZZ_CHECK(n >= 0 && (d->fields[k].repeated || n <= 1));
    vals *v = &m->f[k];
    v->n = n;
    if (!n) continue;
    if (d->fields[k].type == SN_PB_MESSAGE) {
      v->child = calloc((size_t)n, sizeof *v->child);
      FUZZ_CHECK(v->child);
    } else if (d->fields[k].type >= SN_PB_STRING) {
      v->data = calloc((size_t)n, sizeof *v->data);
      v->len = calloc((size_t)n, sizeof *v->len);
      FUZZ_CHECK(v->data && v->len);
    } else {
      v->num = calloc((size_t)n, sizeof *v->num);
      v->i64 = calloc((size_t)n, sizeof *v->i64);
      FUZZ_CHECK(v->num && v->i64);
    }
  }
  *handle = m;
  return SN_OK;
}

static int v_value(void *ctx, void *handle, int msg, int k, int64_t idx, const sn_pb_value *val) {
  (void)ctx;
  node *m = handle;
  FUZZ_CHECK(m->msg == msg && k >= 0 && k < messages[msg].nfields);
  vals *v = &m->f[k];
  FUZZ_CHECK(idx >= 0 && idx < v->n);
  if (v->data) {
    free(v->data[idx]);
    v->data[idx] = malloc(val->len ? val->len : 1);
    FUZZ_CHECK(v->data[idx]);
    if (val->len) memcpy(v->data[idx], val->data, val->len);
    v->len[idx] = val->len;
  } else {
    FUZZ_CHECK(v->num);
    v->num[idx] = val->num;
    v->i64[idx] = val->i64;
  }
  return SN_OK;
}

static int v_child(void *ctx, void *handle, int msg, int k, int64_t idx, void *child) {
  (void)ctx;
  node *m = handle;
  vals *v = &m->f[k];
  FUZZ_CHECK(m->msg == msg && v->child && idx >= 0 && idx < v->n);
  node_free(v->child[idx]); /* a non-repeated message seen twice: the last one wins */
  v->child[idx] = child;
  return SN_OK;
}

static void v_end(void *ctx, void *handle, int ok) {
  (void)ctx;
  if (!ok) node_free(handle);
}

static const sn_pb_visitor visitor = {v_begin, v_value, v_child, v_end};

/* ---- writing a tree back ---- */
static int encode(const node *m, sn_pb_writer *w) {
  const sn_pb_message *d = &messages[m->msg];
  for (int k = 0; k < d->nfields; k++) {
    const sn_pb_field *f = &d->fields[k];
    const vals *v = &m->f[k];
    if (!v->n) continue;
    if (f->type == SN_PB_MESSAGE) {
      for (int64_t i = 0; i < v->n; i++) {
        sn_pb_writer sub;
        sn_pb_writer_init(&sub);
        int rc = encode(v->child[i], &sub);
        if (rc == SN_OK) rc = sn_pb_write_len_field(w, f->number, sub.buf, sub.len);
        sn_pb_writer_free(&sub);
        SN_TRY(rc);
      }
    } else if (f->type >= SN_PB_STRING) {
      for (int64_t i = 0; i < v->n; i++) SN_TRY(sn_pb_write_len_field(w, f->number, v->data[i], v->len[i]));
    } else if (f->repeated == 2) {
      sn_pb_writer sub;
      sn_pb_writer_init(&sub);
      int rc = SN_OK;
      for (int64_t i = 0; i < v->n && rc == SN_OK; i++) rc = sn_pb_write_scalar_payload(&sub, f->type, v->num[i], v->i64[i]);
      if (rc == SN_OK) rc = sn_pb_write_len_field(w, f->number, sub.buf, sub.len);
      sn_pb_writer_free(&sub);
      SN_TRY(rc);
    } else {
      for (int64_t i = 0; i < v->n; i++) SN_TRY(sn_pb_write_scalar(w, f->number, f->type, v->num[i], v->i64[i]));
    }
  }
  return SN_OK;
}

static int same_num(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static int same(const node *a, const node *b) {
  if (a->msg != b->msg) return 0;
  const sn_pb_message *d = &messages[a->msg];
  for (int k = 0; k < d->nfields; k++) {
    const vals *u = &a->f[k], *v = &b->f[k];
    if (u->n != v->n) return 0;
    for (int64_t i = 0; i < u->n; i++) {
      if (u->child) {
        if (!same(u->child[i], v->child[i])) return 0;
      } else if (u->data) {
        if (u->len[i] != v->len[i] || (u->len[i] && memcmp(u->data[i], v->data[i], u->len[i]))) return 0;
      } else {
        int t = d->fields[k].type;
        int is_float = t == SN_PB_FLOAT || t == SN_PB_DOUBLE;
        if (!same_num(u->num[i], v->num[i])) return 0;
        if (!is_float && u->i64[i] != v->i64[i]) return 0;
      }
    }
  }
  return 1;
}

/* Raw fields as little-endian elements of every kind. */
static void raw_kinds(const node *m) {
  const sn_pb_message *d = &messages[m->msg];
  for (int k = 0; k < d->nfields; k++) {
    const vals *v = &m->f[k];
    for (int64_t i = 0; i < v->n; i++) {
      if (v->child) raw_kinds(v->child[i]);
      if (!v->data || d->fields[k].type != SN_PB_BYTES) continue;
      for (int kind = 0; kind < SN_PB_RAW_NKINDS; kind++) {
        size_t w = sn_pb_raw_size(kind), n = v->len[i] / w;
        double *out = malloc((n ? n : 1) * sizeof *out);
        FUZZ_CHECK(out);
        int rc = sn_pb_raw_to_double(v->data[i], v->len[i], kind, out, n);
        FUZZ_CHECK((rc == SN_OK) == (v->len[i] % w == 0));
        free(out);
      }
    }
  }
}

static void one(const uint8_t *data, size_t size, int root) {
  node *tree = NULL;
  int64_t live0 = sn_host_live_bytes();
  sn_clear_error();
  int rc = sn_pb_decode(data, size, &schema, root, &visitor, NULL, (void **)&tree);
  int rc2 = sn_pb_validate(data, size, &schema, root);
  FUZZ_CHECK((rc == SN_OK) == (rc2 == SN_OK));
  if (rc != SN_OK) {
    FUZZ_CHECK(rc == SN_ERR_FORMAT);
    FUZZ_CHECK(strlen(sn_last_error()) > 0 && strcmp(sn_last_error(), "unknown error"));
    FUZZ_CHECK(sn_host_live_bytes() == live0);
    return;
  }
  FUZZ_CHECK(tree != NULL);
  raw_kinds(tree);
  sn_pb_writer w;
  sn_pb_writer_init(&w);
  FUZZ_CHECK(encode(tree, &w) == SN_OK);
  node *again = NULL;
  rc = sn_pb_decode(w.buf, w.len, &schema, root, &visitor, NULL, (void **)&again);
  FUZZ_CHECK(rc == SN_OK);
  FUZZ_CHECK(same(tree, again));
  /* written output is canonical: writing it again gives the same bytes */
  sn_pb_writer w2;
  sn_pb_writer_init(&w2);
  FUZZ_CHECK(encode(again, &w2) == SN_OK);
  FUZZ_CHECK(w2.len == w.len && (w.len == 0 || memcmp(w.buf, w2.buf, w.len) == 0));
  sn_pb_writer_free(&w2);
  sn_pb_writer_free(&w);
  node_free(again);
  node_free(tree);
  FUZZ_CHECK(sn_host_live_bytes() == live0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int checked;
  if (!checked) {
    FUZZ_CHECK(sn_pb_schema_check(&schema) == SN_OK);
    checked = 1;
  }
  one(data, size, M_MODEL);
  one(data, size, M_NET);
  one(data, size, M_TENSOR);
  one(data, size, M_SIGNED);
  return 0;
}
