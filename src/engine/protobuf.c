/* Protocol buffers wire format: reader, schema-driven decoder and writer.
 * See protobuf.h for the contract.  Nothing here trusts a length: every
 * varint, fixed value and length-delimited record is checked against the
 * end of the record that holds it before it is read, counts come from a
 * validating first pass (so the visitor allocates what the bytes can
 * actually hold), and nesting is limited to SN_PB_MAX_DEPTH. */
#include "protobuf.h"

#include <math.h>
#include <string.h>

#include "tensor.h"

static const uint8_t sn_pb_empty[1] = {0};

void sn_pb_reader_init(sn_pb_reader *r, const void *buf, size_t len) {
  const uint8_t *b = buf ? (const uint8_t *)buf : sn_pb_empty;
  if (!buf) len = 0;
  r->base = b;
  r->p = b;
  r->end = b + len;
}

void sn_pb_reader_sub(sn_pb_reader *r, const uint8_t *base, const uint8_t *data, size_t len) {
  r->base = base;
  r->p = data;
  r->end = data + len;
}

int sn_pb_eof(const sn_pb_reader *r) { return r->p >= r->end; }

size_t sn_pb_offset(const sn_pb_reader *r) { return (size_t)(r->p - r->base); }

int sn_pb_read_varint(sn_pb_reader *r, uint64_t *out) {
  uint64_t v = 0;
  size_t at = sn_pb_offset(r);
  for (int i = 0; i < 10; i++) {
    if (r->p >= r->end)
      return sn_error(SN_ERR_FORMAT, "protobuf: varint at byte %zu is cut off by the end of its record", at);
    uint8_t b = *r->p++;
    if (i == 9 && b > 1)
      return sn_error(SN_ERR_FORMAT, "protobuf: varint at byte %zu does not fit in 64 bits", at);
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = v;
      return SN_OK;
    }
  }
  return sn_error(SN_ERR_FORMAT, "protobuf: varint at byte %zu is longer than 10 bytes", at);
}

static int need(const sn_pb_reader *r, size_t n, const char *what) {
  size_t left = (size_t)(r->end - r->p);
  if (left < n)
    return sn_error(SN_ERR_FORMAT, "protobuf: %s at byte %zu needs %zu bytes but only %zu are left",
                    what, sn_pb_offset(r), n, left);
  return SN_OK;
}

int sn_pb_read_fixed32(sn_pb_reader *r, uint32_t *out) {
  SN_TRY(need(r, 4, "fixed32 value"));
  const uint8_t *p = r->p;
  *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  r->p += 4;
  return SN_OK;
}

int sn_pb_read_fixed64(sn_pb_reader *r, uint64_t *out) {
  SN_TRY(need(r, 8, "fixed64 value"));
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | r->p[i];
  *out = v;
  r->p += 8;
  return SN_OK;
}

int sn_pb_read_len(sn_pb_reader *r, const uint8_t **data, size_t *len) {
  uint64_t n;
  size_t at = sn_pb_offset(r);
  SN_TRY(sn_pb_read_varint(r, &n));
  size_t left = (size_t)(r->end - r->p);
  if (n > left)
    return sn_error(SN_ERR_FORMAT,
                    "protobuf: record at byte %zu has length %llu but only %zu bytes are left", at,
                    (unsigned long long)n, left);
  *data = r->p;
  *len = (size_t)n;
  r->p += n;
  return SN_OK;
}

int sn_pb_read_tag(sn_pb_reader *r, uint32_t *field, int *wire) {
  uint64_t v;
  size_t at = sn_pb_offset(r);
  SN_TRY(sn_pb_read_varint(r, &v));
  if (v > 0xffffffffu)
    return sn_error(SN_ERR_FORMAT, "protobuf: tag at byte %zu is too large (%llu)", at, (unsigned long long)v);
  uint32_t f = (uint32_t)(v >> 3);
  int w = (int)(v & 7);
  if (f == 0) return sn_error(SN_ERR_FORMAT, "protobuf: field number 0 at byte %zu (not a protobuf message?)", at);
  if (w == 6 || w == 7)
    return sn_error(SN_ERR_FORMAT, "protobuf: invalid wire type %d for field %u at byte %zu", w, f, at);
  *field = f;
  *wire = w;
  return SN_OK;
}

static int skip_value(sn_pb_reader *r, uint32_t field, int wire, int depth) {
  uint64_t u;
  const uint8_t *d;
  size_t n;
  switch (wire) {
  case SN_PB_WIRE_VARINT: return sn_pb_read_varint(r, &u);
  case SN_PB_WIRE_I64:
    SN_TRY(need(r, 8, "fixed64 value"));
    r->p += 8;
    return SN_OK;
  case SN_PB_WIRE_I32:
    SN_TRY(need(r, 4, "fixed32 value"));
    r->p += 4;
    return SN_OK;
  case SN_PB_WIRE_LEN: return sn_pb_read_len(r, &d, &n);
  case SN_PB_WIRE_SGROUP: {
    if (depth >= SN_PB_MAX_DEPTH)
      return sn_error(SN_ERR_FORMAT, "protobuf: groups nested deeper than %d at byte %zu", SN_PB_MAX_DEPTH,
                      sn_pb_offset(r));
    for (;;) {
      uint32_t f;
      int w;
      if (sn_pb_eof(r))
        return sn_error(SN_ERR_FORMAT, "protobuf: group of field %u is not closed before the end of its record",
                        field);
      SN_TRY(sn_pb_read_tag(r, &f, &w));
      if (w == SN_PB_WIRE_EGROUP) {
        if (f != field)
          return sn_error(SN_ERR_FORMAT, "protobuf: end of group %u where group %u is open (byte %zu)", f, field,
                          sn_pb_offset(r));
        return SN_OK;
      }
      SN_TRY(skip_value(r, f, w, depth + 1));
    }
  }
  default:
    return sn_error(SN_ERR_FORMAT, "protobuf: unexpected end of group %u at byte %zu", field, sn_pb_offset(r));
  }
}

int sn_pb_skip(sn_pb_reader *r, uint32_t field, int wire) { return skip_value(r, field, wire, 0); }

/* ------------------------------------------------------------------ */
/* Schemas                                                            */
/* ------------------------------------------------------------------ */

static const char *const type_names[SN_PB_NTYPES] = {
    "int64", "uint64", "int32", "uint32", "sint32", "sint64", "bool", "enum", "float",
    "double", "fixed32", "fixed64", "sfixed32", "sfixed64", "string", "bytes", "message"};

const char *sn_pb_type_name(int type) {
  return type >= 0 && type < SN_PB_NTYPES ? type_names[type] : "?";
}

int sn_pb_type_wire(int type) {
  switch (type) {
  case SN_PB_FLOAT: case SN_PB_FIXED32: case SN_PB_SFIXED32: return SN_PB_WIRE_I32;
  case SN_PB_DOUBLE: case SN_PB_FIXED64: case SN_PB_SFIXED64: return SN_PB_WIRE_I64;
  case SN_PB_STRING: case SN_PB_BYTES: case SN_PB_MESSAGE: return SN_PB_WIRE_LEN;
  default: return SN_PB_WIRE_VARINT;
  }
}

static int is_numeric(int type) { return type >= 0 && type < SN_PB_STRING; }

int sn_pb_schema_check(const sn_pb_schema *s) {
  if (!s || s->nmessages <= 0 || !s->messages) return sn_error(SN_ERR_ARG, "protobuf schema: no messages");
  for (int i = 0; i < s->nmessages; i++) {
    const sn_pb_message *m = &s->messages[i];
    const char *mn = m->name ? m->name : "?";
    if (m->nfields < 0 || m->nfields > SN_PB_MAX_FIELDS || (m->nfields > 0 && !m->fields))
      return sn_error(SN_ERR_ARG, "protobuf schema: message %s has %d fields (at most %d)", mn, m->nfields,
                      SN_PB_MAX_FIELDS);
    for (int k = 0; k < m->nfields; k++) {
      const sn_pb_field *f = &m->fields[k];
      const char *fn = f->name ? f->name : "?";
      if (f->number == 0 || f->number > 0x1fffffffu)
        return sn_error(SN_ERR_ARG, "protobuf schema: field %s.%s has number %u", mn, fn, f->number);
      if (f->type < 0 || f->type >= SN_PB_NTYPES)
        return sn_error(SN_ERR_ARG, "protobuf schema: field %s.%s has an unknown type", mn, fn);
      if (f->repeated < 0 || f->repeated > 2 || (f->repeated == 2 && !is_numeric(f->type)))
        return sn_error(SN_ERR_ARG, "protobuf schema: field %s.%s: only numbers can be packed", mn, fn);
      if (f->type == SN_PB_MESSAGE && (f->message < 0 || f->message >= s->nmessages))
        return sn_error(SN_ERR_ARG, "protobuf schema: field %s.%s refers to message %d of %d", mn, fn, f->message,
                        s->nmessages);
      for (int j = 0; j < k; j++)
        if (m->fields[j].number == f->number)
          return sn_error(SN_ERR_ARG, "protobuf schema: message %s has two fields numbered %u", mn, f->number);
    }
  }
  return SN_OK;
}

int sn_pb_field_index(const sn_pb_message *m, uint32_t number) {
  for (int k = 0; k < m->nfields; k++)
    if (m->fields[k].number == number) return k;
  return -1;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                           */
/* ------------------------------------------------------------------ */

static const char *wire_name(int wire) {
  switch (wire) {
  case SN_PB_WIRE_VARINT: return "varint";
  case SN_PB_WIRE_I64: return "fixed64";
  case SN_PB_WIRE_LEN: return "length-delimited";
  case SN_PB_WIRE_SGROUP: return "group";
  case SN_PB_WIRE_I32: return "fixed32";
  default: return "end-group";
  }
}

static void convert(int type, uint64_t u, sn_pb_value *v) {
  memset(v, 0, sizeof *v);
  switch (type) {
  case SN_PB_INT64: case SN_PB_SFIXED64:
    v->i64 = (int64_t)u;
    v->num = (double)v->i64;
    break;
  case SN_PB_UINT64: case SN_PB_FIXED64:
    v->i64 = (int64_t)u;
    v->num = (double)u;
    break;
  case SN_PB_INT32: case SN_PB_ENUM: case SN_PB_SFIXED32:
    v->i64 = (int32_t)(uint32_t)u;
    v->num = (double)v->i64;
    break;
  case SN_PB_UINT32: case SN_PB_FIXED32:
    v->i64 = (uint32_t)u;
    v->num = (double)v->i64;
    break;
  case SN_PB_SINT32: {
    uint32_t w = (uint32_t)u;
    v->i64 = (int32_t)(w >> 1) ^ -(int32_t)(w & 1);
    v->num = (double)v->i64;
    break;
  }
  case SN_PB_SINT64:
    v->i64 = sn_pb_unzigzag(u);
    v->num = (double)v->i64;
    break;
  case SN_PB_BOOL:
    v->i64 = u != 0;
    v->num = (double)v->i64;
    break;
  case SN_PB_FLOAT: {
    uint32_t w = (uint32_t)u;
    float f;
    memcpy(&f, &w, 4);
    v->num = f;
    break;
  }
  case SN_PB_DOUBLE: {
    double d;
    memcpy(&d, &u, 8);
    v->num = d;
    break;
  }
  default: break;
  }
}

/* Number of varints in a packed run (each checked). */
static int count_packed_varints(const uint8_t *base, const uint8_t *d, size_t n, int64_t *count) {
  sn_pb_reader r;
  uint64_t u;
  int64_t c = 0;
  sn_pb_reader_sub(&r, base, d, n);
  while (!sn_pb_eof(&r)) {
    SN_TRY(sn_pb_read_varint(&r, &u));
    c++;
  }
  *count = c;
  return SN_OK;
}

static int field_error(int rc, const sn_pb_message *m, const sn_pb_field *f) {
  return sn_error_context(rc, "%s.%s (field %u)", m->name ? m->name : "?", f->name ? f->name : "?", f->number);
}

/* Pass 1: checks the record and counts each field's values. */
static int count_fields(const sn_pb_message *m, const uint8_t *base, const uint8_t *data, size_t len,
                        int64_t *counts) {
  sn_pb_reader r;
  sn_pb_reader_sub(&r, base, data, len);
  for (int k = 0; k < m->nfields; k++) counts[k] = 0;
  while (!sn_pb_eof(&r)) {
    uint32_t num;
    int wire;
    size_t at = sn_pb_offset(&r);
    int rc = sn_pb_read_tag(&r, &num, &wire);
    if (rc != SN_OK) return sn_error_context(rc, "%s", m->name ? m->name : "?");
    int k = sn_pb_field_index(m, num);
    if (k < 0) {
      rc = sn_pb_skip(&r, num, wire);
      if (rc != SN_OK) return sn_error_context(rc, "%s: unknown field %u", m->name ? m->name : "?", num);
      continue;
    }
    const sn_pb_field *f = &m->fields[k];
    int natural = sn_pb_type_wire(f->type);
    if (wire == natural) {
      rc = sn_pb_skip(&r, num, wire);
      if (rc != SN_OK) return field_error(rc, m, f);
      counts[k] = f->repeated ? counts[k] + 1 : 1;
    } else if (wire == SN_PB_WIRE_LEN && f->repeated && is_numeric(f->type)) {
      const uint8_t *d;
      size_t n;
      int64_t c;
      rc = sn_pb_read_len(&r, &d, &n);
      if (rc != SN_OK) return field_error(rc, m, f);
      if (natural == SN_PB_WIRE_VARINT) {
        rc = count_packed_varints(base, d, n, &c);
        if (rc != SN_OK) return field_error(rc, m, f);
      } else {
        size_t w = natural == SN_PB_WIRE_I32 ? 4 : 8;
        if (n % w)
          return field_error(sn_error(SN_ERR_FORMAT,
                                      "protobuf: packed %s values at byte %zu take %zu bytes, not a multiple of %zu",
                                      sn_pb_type_name(f->type), at, n, w),
                             m, f);
        c = (int64_t)(n / w);
      }
      counts[k] += c;
    } else {
      return field_error(sn_error(SN_ERR_FORMAT, "protobuf: %s value at byte %zu where a %s%s is expected",
                                  wire_name(wire), at, f->repeated ? "repeated " : "", sn_pb_type_name(f->type)),
                         m, f);
    }
  }
  return SN_OK;
}

static int read_scalar(sn_pb_reader *r, int type, sn_pb_value *v) {
  uint64_t u = 0;
  switch (sn_pb_type_wire(type)) {
  case SN_PB_WIRE_VARINT: SN_TRY(sn_pb_read_varint(r, &u)); break;
  case SN_PB_WIRE_I32: {
    uint32_t w;
    SN_TRY(sn_pb_read_fixed32(r, &w));
    u = w;
    break;
  }
  default: SN_TRY(sn_pb_read_fixed64(r, &u)); break;
  }
  convert(type, u, v);
  return SN_OK;
}

static int decode_msg(const sn_pb_schema *s, int msg, const uint8_t *base, const uint8_t *data, size_t len,
                      const sn_pb_visitor *v, void *ctx, int depth, void **out) {
  const sn_pb_message *m = &s->messages[msg];
  int nf = m->nfields > 0 ? m->nfields : 1;
  /* On the stack (at most SN_PB_MAX_FIELDS each), so no heap memory is
   * held while the visitor runs. */
  int64_t counts[nf], next[nf];
  void *h = NULL;
  int rc;
  if (depth > SN_PB_MAX_DEPTH)
    return sn_error(SN_ERR_FORMAT, "protobuf: messages nested deeper than %d (at byte %zu)", SN_PB_MAX_DEPTH,
                    (size_t)(data - base));
  SN_TRY(count_fields(m, base, data, len, counts));
  if (v) SN_TRY(v->begin(ctx, msg, counts, &h));
  for (int k = 0; k < nf; k++) next[k] = 0;
  sn_pb_reader r;
  sn_pb_reader_sub(&r, base, data, len);
  rc = SN_OK;
  while (rc == SN_OK && !sn_pb_eof(&r)) {
    uint32_t num;
    int wire;
    rc = sn_pb_read_tag(&r, &num, &wire);
    if (rc != SN_OK) break;
    int k = sn_pb_field_index(m, num);
    if (k < 0) {
      rc = sn_pb_skip(&r, num, wire);
      continue;
    }
    const sn_pb_field *f = &m->fields[k];
    int natural = sn_pb_type_wire(f->type);
    sn_pb_value val;
    if (wire == natural && is_numeric(f->type)) {
      rc = read_scalar(&r, f->type, &val);
      if (rc == SN_OK && v) rc = v->value(ctx, h, msg, k, f->repeated ? next[k] : 0, &val);
      next[k]++;
    } else if (wire == natural) { /* string, bytes, message */
      const uint8_t *d;
      size_t n;
      rc = sn_pb_read_len(&r, &d, &n);
      if (rc != SN_OK) break;
      int64_t idx = f->repeated ? next[k] : 0;
      next[k]++;
      if (f->type == SN_PB_MESSAGE) {
        void *child = NULL;
        rc = decode_msg(s, f->message, base, d, n, v, ctx, depth + 1, &child);
        if (rc != SN_OK) {
          rc = f->repeated ? sn_error_context(rc, "%s.%s[%lld]", m->name, f->name, (long long)idx)
                           : sn_error_context(rc, "%s.%s", m->name, f->name);
          break;
        }
        if (v) rc = v->child(ctx, h, msg, k, idx, child);
      } else {
        memset(&val, 0, sizeof val);
        val.data = d;
        val.len = n;
        if (v) rc = v->value(ctx, h, msg, k, idx, &val);
      }
    } else { /* packed run (checked in pass 1) */
      const uint8_t *d;
      size_t n;
      rc = sn_pb_read_len(&r, &d, &n);
      sn_pb_reader pr;
      sn_pb_reader_sub(&pr, base, d, n);
      while (rc == SN_OK && !sn_pb_eof(&pr)) {
        rc = read_scalar(&pr, f->type, &val);
        if (rc == SN_OK && v) rc = v->value(ctx, h, msg, k, next[k], &val);
        next[k]++;
      }
    }
  }
  if (rc == SN_OK) {
    /* pass 1 and pass 2 must agree (they read the same bytes) */
    for (int k = 0; k < m->nfields; k++) {
      int64_t want = m->fields[k].repeated ? counts[k] : (counts[k] ? 1 : 0);
      int64_t got = m->fields[k].repeated ? next[k] : (next[k] ? 1 : 0);
      if (want != got) {
        rc = sn_error(SN_ERR_INTERNAL, "protobuf: %s.%s counted %lld values but read %lld", m->name,
                      m->fields[k].name, (long long)want, (long long)got);
        break;
      }
    }
  }
  if (v) v->end(ctx, h, rc == SN_OK);
  if (rc == SN_OK) *out = h;
  return rc;
}

int sn_pb_decode(const void *buf, size_t len, const sn_pb_schema *s, int msg, const sn_pb_visitor *v,
                 void *ctx, void **out) {
  sn_pb_reader r;
  void *h = NULL;
  SN_TRY(sn_pb_schema_check(s));
  if (msg < 0 || msg >= s->nmessages) return sn_error(SN_ERR_ARG, "protobuf: message %d is not in the schema", msg);
  if (v && (!v->begin || !v->value || !v->child || !v->end))
    return sn_error(SN_ERR_ARG, "protobuf: incomplete visitor");
  sn_pb_reader_init(&r, buf, len);
  SN_TRY(decode_msg(s, msg, r.base, r.p, (size_t)(r.end - r.p), v, ctx, 0, &h));
  if (out) *out = h;
  return SN_OK;
}

int sn_pb_validate(const void *buf, size_t len, const sn_pb_schema *s, int msg) {
  return sn_pb_decode(buf, len, s, msg, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Little-endian elements                                             */
/* ------------------------------------------------------------------ */

size_t sn_pb_raw_size(int kind) {
  switch (kind) {
  case SN_PB_RAW_F32: case SN_PB_RAW_I32: case SN_PB_RAW_U32: return 4;
  case SN_PB_RAW_F64: case SN_PB_RAW_I64: case SN_PB_RAW_U64: return 8;
  case SN_PB_RAW_F16: case SN_PB_RAW_BF16: case SN_PB_RAW_I16: case SN_PB_RAW_U16: return 2;
  case SN_PB_RAW_I8: case SN_PB_RAW_U8: case SN_PB_RAW_BOOL: return 1;
  default: return 0;
  }
}

double sn_pb_half_to_double(uint16_t h) {
  int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 0) v = ldexp((double)m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = ldexp((double)(m | 0x400), e - 25);
  return sign ? -v : v;
}

static uint64_t le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}

int sn_pb_raw_to_double(const uint8_t *raw, size_t len, int kind, double *out, size_t n) {
  size_t w = sn_pb_raw_size(kind), bytes;
  if (w == 0) return sn_error(SN_ERR_ARG, "protobuf: unknown element kind %d", kind);
  if (sn_mul_size(n, w, &bytes) != SN_OK || bytes != len)
    return sn_error(SN_ERR_FORMAT, "protobuf: %zu bytes of raw data do not hold %zu elements of %zu bytes", len, n,
                    w);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = raw + i * w;
    uint64_t u = le(p, w);
    double d;
    switch (kind) {
    case SN_PB_RAW_F32: {
      uint32_t b = (uint32_t)u;
      float f;
      memcpy(&f, &b, 4);
      d = f;
      break;
    }
    case SN_PB_RAW_F64: memcpy(&d, &u, 8); break;
    case SN_PB_RAW_F16: d = sn_pb_half_to_double((uint16_t)u); break;
    case SN_PB_RAW_BF16: {
      uint32_t b = (uint32_t)u << 16;
      float f;
      memcpy(&f, &b, 4);
      d = f;
      break;
    }
    case SN_PB_RAW_I8: d = (int8_t)(uint8_t)u; break;
    case SN_PB_RAW_U8: d = (uint8_t)u; break;
    case SN_PB_RAW_I16: d = (int16_t)(uint16_t)u; break;
    case SN_PB_RAW_U16: d = (uint16_t)u; break;
    case SN_PB_RAW_I32: d = (int32_t)(uint32_t)u; break;
    case SN_PB_RAW_U32: d = (uint32_t)u; break;
    case SN_PB_RAW_I64: d = (double)(int64_t)u; break;
    case SN_PB_RAW_U64: d = (double)u; break;
    default: d = u != 0; break; /* bool */
    }
    out[i] = d;
  }
  return SN_OK;
}

/* ------------------------------------------------------------------ */
/* Writer                                                             */
/* ------------------------------------------------------------------ */

void sn_pb_writer_init(sn_pb_writer *w) {
  w->buf = NULL;
  w->len = 0;
  w->cap = 0;
}

void sn_pb_writer_free(sn_pb_writer *w) {
  sn_host_free(w->buf, w->cap);
  sn_pb_writer_init(w);
}

static int reserve(sn_pb_writer *w, size_t extra) {
  size_t want, cap;
  if (sn_add_size(w->len, extra, &want) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "protobuf writer: message size overflows");
  if (want <= w->cap) return SN_OK;
  cap = w->cap < 256 ? 256 : w->cap;
  while (cap < want) {
    if (sn_mul_size(cap, 2, &cap) != SN_OK) {
      cap = want;
      break;
    }
  }
  uint8_t *nb = sn_host_alloc(cap);
  if (!nb) return sn_error(SN_ERR_OOM, "protobuf writer: cannot allocate %zu bytes", cap);
  if (w->len) memcpy(nb, w->buf, w->len);
  sn_host_free(w->buf, w->cap);
  w->buf = nb;
  w->cap = cap;
  return SN_OK;
}

int sn_pb_write_raw(sn_pb_writer *w, const void *data, size_t len) {
  if (len == 0) return SN_OK;
  SN_TRY(reserve(w, len));
  memcpy(w->buf + w->len, data, len);
  w->len += len;
  return SN_OK;
}

int sn_pb_write_varint(sn_pb_writer *w, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  do {
    uint8_t c = v & 0x7f;
    v >>= 7;
    b[n++] = (uint8_t)(c | (v ? 0x80 : 0));
  } while (v);
  return sn_pb_write_raw(w, b, n);
}

int sn_pb_write_tag(sn_pb_writer *w, uint32_t field, int wire) {
  if (field == 0 || field > 0x1fffffffu || wire < 0 || wire > 5)
    return sn_error(SN_ERR_ARG, "protobuf writer: bad tag (field %u, wire type %d)", field, wire);
  return sn_pb_write_varint(w, (uint64_t)field << 3 | (uint64_t)wire);
}

int sn_pb_write_fixed32(sn_pb_writer *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  return sn_pb_write_raw(w, b, 4);
}

int sn_pb_write_fixed64(sn_pb_writer *w, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  return sn_pb_write_raw(w, b, 8);
}

int sn_pb_write_len_field(sn_pb_writer *w, uint32_t field, const void *data, size_t len) {
  SN_TRY(sn_pb_write_tag(w, field, SN_PB_WIRE_LEN));
  SN_TRY(sn_pb_write_varint(w, (uint64_t)len));
  return sn_pb_write_raw(w, data, len);
}

int sn_pb_write_scalar_payload(sn_pb_writer *w, int type, double num, int64_t i64) {
  switch (type) {
  case SN_PB_INT64: case SN_PB_UINT64: case SN_PB_INT32: case SN_PB_ENUM:
    return sn_pb_write_varint(w, (uint64_t)i64);
  case SN_PB_UINT32: return sn_pb_write_varint(w, (uint32_t)i64);
  case SN_PB_SINT32: {
    int32_t x = (int32_t)i64;
    return sn_pb_write_varint(w, ((uint32_t)x << 1) ^ (uint32_t)(x >> 31));
  }
  case SN_PB_SINT64: return sn_pb_write_varint(w, sn_pb_zigzag(i64));
  case SN_PB_BOOL: return sn_pb_write_varint(w, i64 != 0);
  case SN_PB_FLOAT: {
    float f = (float)num;
    uint32_t b;
    memcpy(&b, &f, 4);
    return sn_pb_write_fixed32(w, b);
  }
  case SN_PB_DOUBLE: {
    uint64_t b;
    memcpy(&b, &num, 8);
    return sn_pb_write_fixed64(w, b);
  }
  case SN_PB_FIXED32: case SN_PB_SFIXED32: return sn_pb_write_fixed32(w, (uint32_t)i64);
  case SN_PB_FIXED64: case SN_PB_SFIXED64: return sn_pb_write_fixed64(w, (uint64_t)i64);
  default: return sn_error(SN_ERR_ARG, "protobuf writer: %s is not a scalar type", sn_pb_type_name(type));
  }
}

int sn_pb_write_scalar(sn_pb_writer *w, uint32_t field, int type, double num, int64_t i64) {
  SN_TRY(sn_pb_write_tag(w, field, sn_pb_type_wire(type)));
  return sn_pb_write_scalar_payload(w, type, num, i64);
}
