/* A small, safe reader and writer of the protocol buffers wire format, used
 * to load ONNX models (.onnx) and Caffe weights (.caffemodel) and to write
 * ONNX models.
 *
 * Wire level: varints (at most 10 bytes, the 10th at most 1), zigzag,
 * little-endian fixed32/fixed64 and length-delimited records.  Every length
 * is checked against the bytes left in the enclosing record before anything
 * is read or allocated; groups (wire types 3/4, deprecated) are skipped with
 * a depth limit; field number 0 and wire types 6/7 are errors.  Errors are
 * SN_ERR_FORMAT with a message giving the byte offset in the buffer, the
 * message and the field.
 *
 * Schema level: a schema is a table of messages, each a table of fields
 * (number, type, repeated, nested message).  sn_pb_decode() walks a buffer
 * against it and reports what it finds to a visitor: for each message it
 * first validates the whole record and counts the values of every field
 * (packed numbers one by one), so the visitor can allocate exactly, then it
 * reports the values in file order and the nested messages (decoded
 * recursively, at most SN_PB_MAX_DEPTH deep).  Fields the schema does not
 * name are skipped after their wire format is checked; a known field with a
 * wire type that does not fit its type is an error.  A non-repeated field
 * seen twice keeps its last value (nested messages are not merged).
 * Repeated numbers are accepted packed and unpacked.
 *
 * The engine holds no heap memory while it calls the visitor, so a visitor
 * may leave by longjmp (the R glue does, on allocation failure). */
#ifndef SN_PROTOBUF_H
#define SN_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SN_PB_MAX_DEPTH 64
#define SN_PB_MAX_FIELDS 256 /* fields per message in a schema */

enum { SN_PB_WIRE_VARINT = 0, SN_PB_WIRE_I64 = 1, SN_PB_WIRE_LEN = 2, SN_PB_WIRE_SGROUP = 3,
       SN_PB_WIRE_EGROUP = 4, SN_PB_WIRE_I32 = 5 };

/* ---- wire-level reader ---- */
typedef struct {
  const uint8_t *base; /* start of the whole buffer (for offsets in messages) */
  const uint8_t *p;    /* next byte */
  const uint8_t *end;  /* end of the current record */
} sn_pb_reader;

void sn_pb_reader_init(sn_pb_reader *r, const void *buf, size_t len);
/* A reader over [data, data + len) that reports offsets relative to base. */
void sn_pb_reader_sub(sn_pb_reader *r, const uint8_t *base, const uint8_t *data, size_t len);
int sn_pb_eof(const sn_pb_reader *r);
size_t sn_pb_offset(const sn_pb_reader *r);
int sn_pb_read_varint(sn_pb_reader *r, uint64_t *out);
int sn_pb_read_fixed32(sn_pb_reader *r, uint32_t *out);
int sn_pb_read_fixed64(sn_pb_reader *r, uint64_t *out);
/* A length-delimited record: *data points into the buffer. */
int sn_pb_read_len(sn_pb_reader *r, const uint8_t **data, size_t *len);
/* A tag: field number 1 .. 2^29 - 1 and a wire type 0..5. */
int sn_pb_read_tag(sn_pb_reader *r, uint32_t *field, int *wire);
/* Skips the value of a field whose tag was just read (groups included). */
int sn_pb_skip(sn_pb_reader *r, uint32_t field, int wire);

static inline int64_t sn_pb_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
static inline uint64_t sn_pb_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

/* ---- schemas ---- */
typedef enum {
  SN_PB_INT64, SN_PB_UINT64, SN_PB_INT32, SN_PB_UINT32, SN_PB_SINT32, SN_PB_SINT64, SN_PB_BOOL,
  SN_PB_ENUM, SN_PB_FLOAT, SN_PB_DOUBLE, SN_PB_FIXED32, SN_PB_FIXED64, SN_PB_SFIXED32,
  SN_PB_SFIXED64, SN_PB_STRING, SN_PB_BYTES, SN_PB_MESSAGE, SN_PB_NTYPES
} sn_pb_type;

typedef struct {
  const char *name;
  uint32_t number;
  int type;     /* sn_pb_type */
  int repeated; /* 0 optional, 1 repeated, 2 repeated and written packed */
  int message;  /* SN_PB_MESSAGE: index of the nested message in the schema */
} sn_pb_field;

typedef struct {
  const char *name;
  int nfields;
  const sn_pb_field *fields;
} sn_pb_message;

typedef struct {
  int nmessages;
  const sn_pb_message *messages;
} sn_pb_schema;

/* Checks a schema: field numbers valid and unique, types and nested
 * message indices in range, at most SN_PB_MAX_FIELDS fields. */
int sn_pb_schema_check(const sn_pb_schema *s);
const char *sn_pb_type_name(int type);
/* The wire type a value of this type is written with (not packed). */
int sn_pb_type_wire(int type);
/* Index of the field with this number in m, or -1. */
int sn_pb_field_index(const sn_pb_message *m, uint32_t number);

/* ---- decoding with a visitor ---- */
typedef struct {
  double num;            /* numbers and bools as a double (int64 beyond 2^53 rounded) */
  int64_t i64;           /* integer types: the exact value (uint64 above INT64_MAX wraps) */
  const uint8_t *data;   /* string and bytes: the bytes (not NUL-terminated) */
  size_t len;
} sn_pb_value;

typedef struct {
  /* A message starts; counts[k] is the number of values of field k (0 or 1
   * for a non-repeated field).  *handle is the visitor's object for it.
   * When begin fails it keeps nothing (end is not called). */
  int (*begin)(void *ctx, int msg, const int64_t *counts, void **handle);
  /* Value number idx of scalar/string/bytes field k (idx 0 for a
   * non-repeated field, which may come several times). */
  int (*value)(void *ctx, void *handle, int msg, int field, int64_t idx, const sn_pb_value *v);
  /* Nested message number idx of field k, already ended successfully.  The
   * parent takes child over even when it returns an error. */
  int (*child)(void *ctx, void *handle, int msg, int field, int64_t idx, void *child);
  /* The message is done: ok = 1 complete, ok = 0 abandoned after an error
   * (the visitor frees what it must; it is not given to a parent then). */
  void (*end)(void *ctx, void *handle, int ok);
} sn_pb_visitor;

/* Decodes buf as message msg of s.  On success *out is the root handle
 * (ended, owned by the caller). */
int sn_pb_decode(const void *buf, size_t len, const sn_pb_schema *s, int msg, const sn_pb_visitor *v,
                 void *ctx, void **out);
/* Validates buf as message msg of s (recursively) without a visitor. */
int sn_pb_validate(const void *buf, size_t len, const sn_pb_schema *s, int msg);

/* ---- little-endian element decoding (ONNX raw_data) ---- */
typedef enum {
  SN_PB_RAW_F32, SN_PB_RAW_F64, SN_PB_RAW_F16, SN_PB_RAW_BF16, SN_PB_RAW_I8, SN_PB_RAW_U8,
  SN_PB_RAW_I16, SN_PB_RAW_U16, SN_PB_RAW_I32, SN_PB_RAW_U32, SN_PB_RAW_I64, SN_PB_RAW_U64,
  SN_PB_RAW_BOOL, SN_PB_RAW_NKINDS
} sn_pb_raw_kind;

size_t sn_pb_raw_size(int kind); /* bytes per element, 0 for an unknown kind */
/* Converts len bytes of little-endian elements to n doubles; len must be
 * n * element size (SN_ERR_FORMAT otherwise). */
int sn_pb_raw_to_double(const uint8_t *raw, size_t len, int kind, double *out, size_t n);
double sn_pb_half_to_double(uint16_t h);

/* ---- writer ---- */
typedef struct {
  uint8_t *buf; /* sn_host_alloc'ed */
  size_t len, cap;
} sn_pb_writer;

void sn_pb_writer_init(sn_pb_writer *w);
void sn_pb_writer_free(sn_pb_writer *w);
int sn_pb_write_raw(sn_pb_writer *w, const void *data, size_t len);
int sn_pb_write_varint(sn_pb_writer *w, uint64_t v);
int sn_pb_write_tag(sn_pb_writer *w, uint32_t field, int wire);
int sn_pb_write_fixed32(sn_pb_writer *w, uint32_t v);
int sn_pb_write_fixed64(sn_pb_writer *w, uint64_t v);
/* tag, length, bytes */
int sn_pb_write_len_field(sn_pb_writer *w, uint32_t field, const void *data, size_t len);
/* One scalar value of a field of this type (tag included); num is the
 * value for floating types, i64 for the integer types and bool. */
int sn_pb_write_scalar(sn_pb_writer *w, uint32_t field, int type, double num, int64_t i64);
/* The bytes of one scalar value without a tag (packed runs). */
int sn_pb_write_scalar_payload(sn_pb_writer *w, int type, double num, int64_t i64);

#endif
