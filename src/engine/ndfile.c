/* MXNet's NDArray file format: `mx.nd.save` / `mx.nd.load` and the
 * `prefix-NNNN.params` half of a checkpoint.
 *
 * The layout, as MXNet writes it (NDArray::Save(Stream*, data, names) and
 * NDArray::Save(Stream*) in src/ndarray/ndarray.cc; Tuple::Save in
 * include/mxnet/tuple.h; vectors and strings through dmlc's serializer),
 * all little-endian:
 *
 *   uint64 0x112, uint64 reserved (0; not checked on load, as in MXNet)
 *   uint64 count, then count records
 *   uint64 nnames (0 or count), then nnames x (uint64 len, len bytes)
 *
 * Records come in four versions, told apart by their first uint32:
 *
 *   V2  0xF993FAC9 (MXNet 1.0 and later; the one written here):
 *       int32 stype (0 dense; sparse types add a storage shape and aux
 *       arrays, not supported here), int32 ndim, ndim x int64 dims (C
 *       order).  ndim 0 marks a "none" array and ends the record (MXNet >=
 *       1.5 writes such an array with ndim -1, which is read as none too).
 *       Otherwise int32 dev_type, int32 dev_id, int32 type_flag, then
 *       prod(dims) * sizeof(type) bytes of row-major data.
 *   V3  0xF993FACA (numpy-shape semantics): as V2, but ndim -1 or a dim of
 *       -1 is "none" and ndim 0 is a scalar holding one element.
 *   V1  0xF993FAC8 (0.10.1 to 0.12): no stype; uint32 ndim, ndim x int64
 *       dims; ndim 0 is none; then context, type_flag and data as above.
 *   V0  no magic (before 0.10.1): the first uint32 is ndim, then ndim x
 *       uint32 dims; ndim 0 is none; then context, type_flag and data.
 *
 * Type flags are mshadow's: 0 f32, 1 f64, 2 f16, 3 u8, 4 i32, 5 i8, 6 i64
 * (7 bool, 8 int16, 9 uint16, 10 uint32, 11 uint64, 12 bfloat16 exist in
 * later MXNet and are refused with a clear message).  The context is read
 * and ignored: everything loads to the CPU, as MXNet does without a GPU.
 *
 * Loading is for files users point at anything: every count and size read
 * is checked against the bytes left before anything is allocated, a short
 * or malformed file is SN_ERR_FORMAT naming the record and what is wrong,
 * and on any error everything allocated so far is freed.  Bytes after the
 * names are ignored, as MXNet ignores them.  Saving writes a temporary file
 * beside the target, flushes and fsyncs it and renames it over the target,
 * so a crash never leaves a half-written checkpoint. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "ndfile.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <share.h>
#include <windows.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

#define ND_LIST_MAGIC 0x112u
#define ND_V1_MAGIC 0xF993FAC8u
#define ND_V2_MAGIC 0xF993FAC9u
#define ND_V3_MAGIC 0xF993FACAu
/* The smallest record: a V0 "none" record is a single uint32 0. */
#define ND_MIN_RECORD 4u
#define ND_HEADER_BYTES 24u

/* ---- byte order ---- */

static int nd_host_le(void) {
  const uint16_t one = 1;
  unsigned char c;
  memcpy(&c, &one, 1);
  return c == 1;
}

static uint32_t nd_get_u32(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t nd_get_u64(const unsigned char *b) {
  return (uint64_t)nd_get_u32(b) | (uint64_t)nd_get_u32(b + 4) << 32;
}

static void nd_put_u32(unsigned char *b, uint32_t v) {
  b[0] = (unsigned char)v;
  b[1] = (unsigned char)(v >> 8);
  b[2] = (unsigned char)(v >> 16);
  b[3] = (unsigned char)(v >> 24);
}

static void nd_put_u64(unsigned char *b, uint64_t v) {
  nd_put_u32(b, (uint32_t)v);
  nd_put_u32(b + 4, (uint32_t)(v >> 32));
}

/* Reverses the bytes of each of n elements of size es (big-endian hosts). */
static void nd_swap(void *p, size_t n, size_t es) {
  unsigned char *c = p;
  if (es < 2) return;
  for (size_t i = 0; i < n; i++, c += es)
    for (size_t a = 0, b = es - 1; a < b; a++, b--) {
      unsigned char t = c[a];
      c[a] = c[b];
      c[b] = t;
    }
}

static const char *nd_type_flag_name(int32_t flag) {
  static const char *const names[] = {"float32", "float64", "float16", "uint8",  "int32",
                                      "int8",    "int64",   "bool",    "int16",  "uint16",
                                      "uint32",  "uint64",  "bfloat16"};
  return (flag >= 0 && flag <= 12) ? names[flag] : "unknown";
}

/* ---- reader over a memory buffer or a FILE ---- */

typedef struct {
  const unsigned char *buf; /* memory source, or NULL */
  FILE *fp;                 /* file source when buf is NULL */
  uint64_t len, pos;
  char label[600]; /* "'path'" or "buffer", for messages */
  long long rec;   /* 0-based record being read, -1 outside records */
  uint64_t nrec;
} nd_reader;

static int nd_fail(const nd_reader *r, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int nd_fail(const nd_reader *r, int status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (r->rec >= 0)
    return sn_error(status, "NDArray file %s: record %lld of %llu: %s", r->label, r->rec + 1,
                    (unsigned long long)r->nrec, msg);
  return sn_error(status, "NDArray file %s: %s", r->label, msg);
}

static uint64_t nd_left(const nd_reader *r) { return r->len - r->pos; }

static int nd_take(nd_reader *r, void *dst, uint64_t n, const char *what) {
  if (n > nd_left(r))
    return nd_fail(r, SN_ERR_FORMAT, "file is truncated: %s needs %llu bytes but only %llu remain",
                   what, (unsigned long long)n, (unsigned long long)nd_left(r));
  if (n == 0) return SN_OK;
  if (r->buf) {
    memcpy(dst, r->buf + r->pos, (size_t)n);
  } else {
    size_t got = fread(dst, 1, (size_t)n, r->fp);
    if (got != (size_t)n) {
      if (ferror(r->fp))
        return nd_fail(r, SN_ERR_IO, "read error in %s: %s", what, strerror(errno));
      return nd_fail(r, SN_ERR_IO, "file became shorter while reading %s", what);
    }
  }
  r->pos += n;
  return SN_OK;
}

static int nd_u32(nd_reader *r, uint32_t *v, const char *what) {
  unsigned char b[4] = {0};
  SN_TRY(nd_take(r, b, 4, what));
  *v = nd_get_u32(b);
  return SN_OK;
}

static int nd_i32(nd_reader *r, int32_t *v, const char *what) {
  uint32_t u;
  SN_TRY(nd_u32(r, &u, what));
  memcpy(v, &u, 4); /* two's complement reinterpretation */
  return SN_OK;
}

static int nd_u64(nd_reader *r, uint64_t *v, const char *what) {
  unsigned char b[8] = {0};
  SN_TRY(nd_take(r, b, 8, what));
  *v = nd_get_u64(b);
  return SN_OK;
}

/* Reads ndim dims of width 4 (unsigned, V0) or 8 (signed) into s. */
static int nd_dims(nd_reader *r, sn_shape *s, int ndim, int width) {
  unsigned char b[8 * SN_MAX_DIMS] = {0};
  SN_TRY(nd_take(r, b, (uint64_t)ndim * (uint64_t)width, "the shape"));
  s->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    if (width == 4) {
      s->dim[i] = (int64_t)nd_get_u32(b + 4 * i);
    } else {
      uint64_t u = nd_get_u64(b + 8 * i);
      int64_t d;
      memcpy(&d, &u, 8);
      s->dim[i] = d;
    }
  }
  return SN_OK;
}

/* A "none" record: no storage, ndim 0. */
static void nd_none(sn_tensor *t) {
  memset(t, 0, sizeof *t);
  t->dtype = SN_F32;
  t->shape.ndim = 0;
}

static int nd_read_record(nd_reader *r, sn_tensor *t) {
  uint32_t magic;
  int32_t ctx_type, ctx_id, flag;
  sn_shape shape;
  size_t bytes;
  char sbuf[200];
  int rc;

  nd_none(t);
  memset(&shape, 0, sizeof shape);
  SN_TRY(nd_u32(r, &magic, "the record header"));

  if (magic == ND_V2_MAGIC || magic == ND_V3_MAGIC) {
    int32_t stype, ndim;
    int v3 = magic == ND_V3_MAGIC;
    SN_TRY(nd_i32(r, &stype, "the storage type"));
    if (stype != 0)
      return nd_fail(r, SN_ERR_FORMAT,
                     "storage type %d (%s) is not supported: only dense arrays can be loaded", (int)stype,
                     stype == 1 ? "row_sparse" : stype == 2 ? "csr" : "unknown");
    SN_TRY(nd_i32(r, &ndim, "the number of dimensions"));
    if (ndim < -1) return nd_fail(r, SN_ERR_FORMAT, "invalid number of dimensions %d", (int)ndim);
    if (ndim == -1 || (ndim == 0 && !v3)) return SN_OK; /* none */
    if (ndim > SN_MAX_DIMS)
      return nd_fail(r, SN_ERR_FORMAT, "array has %d dimensions; at most %d are supported", (int)ndim,
                     SN_MAX_DIMS);
    SN_TRY(nd_dims(r, &shape, (int)ndim, 8));
    for (int i = 0; i < ndim; i++) {
      if (v3 && shape.dim[i] == -1) return SN_OK; /* unknown shape: none */
      if (shape.dim[i] < 0)
        return nd_fail(r, SN_ERR_FORMAT, "dimension %d of the shape is negative (%lld)", i,
                       (long long)shape.dim[i]);
    }
  } else if (magic == ND_V1_MAGIC) {
    uint32_t ndim;
    SN_TRY(nd_u32(r, &ndim, "the number of dimensions"));
    if (ndim == 0) return SN_OK; /* none */
    if (ndim > SN_MAX_DIMS)
      return nd_fail(r, SN_ERR_FORMAT, "array has %lu dimensions; at most %d are supported",
                     (unsigned long)ndim, SN_MAX_DIMS);
    SN_TRY(nd_dims(r, &shape, (int)ndim, 8));
    for (uint32_t i = 0; i < ndim; i++)
      if (shape.dim[i] < 0)
        return nd_fail(r, SN_ERR_FORMAT, "dimension %lu of the shape is negative (%lld)",
                       (unsigned long)i, (long long)shape.dim[i]);
  } else {
    /* V0: the word just read is ndim. */
    if (magic == 0) return SN_OK; /* none */
    if (magic > SN_MAX_DIMS)
      return nd_fail(r, SN_ERR_FORMAT,
                     "unknown record magic 0x%08lX (expected 0x%08lX; as a pre-0.10.1 record it would "
                     "have %lu dimensions, at most %d are supported)",
                     (unsigned long)magic, (unsigned long)ND_V2_MAGIC, (unsigned long)magic, SN_MAX_DIMS);
    SN_TRY(nd_dims(r, &shape, (int)magic, 4));
  }

  SN_TRY(nd_i32(r, &ctx_type, "the context"));
  SN_TRY(nd_i32(r, &ctx_id, "the context"));
  (void)ctx_type;
  (void)ctx_id;
  SN_TRY(nd_i32(r, &flag, "the data type"));
  if (flag < 0 || flag > SN_I64)
    return nd_fail(r, SN_ERR_FORMAT, "data type flag %d (%s) is not supported", (int)flag,
                   nd_type_flag_name(flag));

  rc = sn_shape_bytes(&shape, (sn_dtype)flag, &bytes);
  if (rc != SN_OK)
    return nd_fail(r, SN_ERR_FORMAT, "shape %s of %s is too large", sn_shape_str(&shape, sbuf, sizeof sbuf),
                   nd_type_flag_name(flag));
  if ((uint64_t)bytes > nd_left(r))
    return nd_fail(r, SN_ERR_FORMAT,
                   "file is truncated: the data of shape %s (%s) needs %llu bytes but only %llu remain",
                   sn_shape_str(&shape, sbuf, sizeof sbuf), nd_type_flag_name(flag),
                   (unsigned long long)bytes, (unsigned long long)nd_left(r));
  rc = sn_tensor_alloc(t, (sn_dtype)flag, &shape, sn_cpu());
  if (rc != SN_OK) {
    nd_none(t);
    if (r->rec >= 0)
      return sn_error_context(rc, "NDArray file %s: record %lld of %llu", r->label, r->rec + 1,
                              (unsigned long long)r->nrec);
    return rc;
  }
  rc = nd_take(r, sn_tensor_data(t), bytes, "the data");
  if (rc != SN_OK) {
    sn_tensor_release(t);
    nd_none(t);
    return rc;
  }
  if (!nd_host_le()) nd_swap(sn_tensor_data(t), bytes / sn_dtype_size((sn_dtype)flag), sn_dtype_size((sn_dtype)flag));
  return SN_OK;
}

void sn_ndlist_free(sn_ndlist *l) {
  if (!l) return;
  if (l->arrays)
    for (int i = 0; i < l->n; i++) sn_tensor_release(&l->arrays[i]);
  if (l->names)
    for (int i = 0; i < l->n; i++) free(l->names[i]);
  free(l->arrays);
  free(l->names);
  l->n = 0;
  l->arrays = NULL;
  l->names = NULL;
}

static int nd_load(nd_reader *r, sn_ndlist *out) {
  unsigned char head[ND_HEADER_BYTES] = {0};
  uint64_t magic, count, nnames;
  sn_ndlist l = {0, NULL, NULL};
  size_t cap = 0;
  int rc = SN_OK;

  r->rec = -1;
  if (r->len < ND_HEADER_BYTES) {
    if (r->len >= 8) {
      SN_TRY(nd_take(r, head, 8, "the header"));
      if (nd_get_u64(head) != ND_LIST_MAGIC) goto bad_magic;
    }
    return nd_fail(r, SN_ERR_FORMAT, "file is truncated: %llu bytes, shorter than the %u-byte header",
                   (unsigned long long)r->len, ND_HEADER_BYTES);
  }
  SN_TRY(nd_take(r, head, ND_HEADER_BYTES, "the header"));
  magic = nd_get_u64(head);
  if (magic != ND_LIST_MAGIC) goto bad_magic;
  /* head + 8: reserved, ignored as MXNet ignores it. */
  count = nd_get_u64(head + 16);
  if (count > (uint64_t)INT_MAX || count > nd_left(r) / ND_MIN_RECORD)
    return nd_fail(r, SN_ERR_FORMAT,
                   "header claims %llu arrays but only %llu bytes follow (file truncated or corrupt)",
                   (unsigned long long)count, (unsigned long long)nd_left(r));

  /* Grow the array as records arrive, so memory follows what the file
   * really holds rather than what its header claims. */
  r->nrec = count;
  for (uint64_t i = 0; i < count; i++) {
    if ((size_t)i == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      sn_tensor *na;
      if (ncap > (size_t)count) ncap = (size_t)count;
      na = realloc(l.arrays, ncap * sizeof *na);
      if (!na) {
        rc = sn_error(SN_ERR_OOM, "NDArray file %s: out of memory for %llu arrays", r->label,
                      (unsigned long long)count);
        goto fail;
      }
      l.arrays = na;
      cap = ncap;
    }
    r->rec = (long long)i;
    rc = nd_read_record(r, &l.arrays[i]);
    if (rc != SN_OK) goto fail;
    l.n = (int)i + 1;
  }
  r->rec = -1;

  rc = nd_u64(r, &nnames, "the number of names");
  if (rc != SN_OK) goto fail;
  if (nnames != 0 && nnames != count) {
    rc = nd_fail(r, SN_ERR_FORMAT, "file has %llu names for %llu arrays", (unsigned long long)nnames,
                 (unsigned long long)count);
    goto fail;
  }
  if (nnames > 0) {
    l.names = calloc((size_t)nnames, sizeof *l.names);
    if (!l.names) {
      rc = sn_error(SN_ERR_OOM, "NDArray file %s: out of memory for %llu names", r->label,
                    (unsigned long long)nnames);
      goto fail;
    }
    for (uint64_t i = 0; i < nnames; i++) {
      uint64_t len;
      rc = nd_u64(r, &len, "the length of a name");
      if (rc != SN_OK) goto fail;
      if (len > nd_left(r)) {
        rc = nd_fail(r, SN_ERR_FORMAT, "file is truncated: name %llu has length %llu but only %llu bytes remain",
                     (unsigned long long)i + 1, (unsigned long long)len, (unsigned long long)nd_left(r));
        goto fail;
      }
      l.names[i] = malloc((size_t)len + 1);
      if (!l.names[i]) {
        rc = sn_error(SN_ERR_OOM, "NDArray file %s: out of memory for a name of %llu bytes", r->label,
                      (unsigned long long)len);
        goto fail;
      }
      rc = nd_take(r, l.names[i], len, "a name");
      if (rc != SN_OK) goto fail;
      l.names[i][len] = '\0';
      if (memchr(l.names[i], '\0', (size_t)len)) {
        rc = nd_fail(r, SN_ERR_FORMAT, "name %llu contains a NUL byte", (unsigned long long)i + 1);
        goto fail;
      }
    }
  }
  /* Trailing bytes are ignored, as MXNet ignores them. */
  *out = l;
  return SN_OK;

fail:
  sn_ndlist_free(&l);
  return rc;

bad_magic:
  return nd_fail(r, SN_ERR_FORMAT, "not an MXNet NDArray file (header 0x%llx, expected 0x112)",
                 (unsigned long long)nd_get_u64(head));
}

int sn_ndfile_load_mem(const void *buf, size_t len, sn_ndlist *out) {
  nd_reader r;
  if (!out) return sn_error(SN_ERR_ARG, "sn_ndfile_load_mem: out is NULL");
  out->n = 0;
  out->arrays = NULL;
  out->names = NULL;
  if (!buf && len > 0) return sn_error(SN_ERR_ARG, "sn_ndfile_load_mem: buffer is NULL");
  memset(&r, 0, sizeof r);
  r.buf = buf ? buf : (const unsigned char *)"";
  r.len = len;
  snprintf(r.label, sizeof r.label, "(in memory)");
  return nd_load(&r, out);
}

/* Reads a non-regular file (a pipe, /dev/stdin) into memory. */
static int nd_slurp(FILE *fp, const char *path, unsigned char **buf, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  unsigned char *b = malloc(cap);
  if (!b) return sn_error(SN_ERR_OOM, "cannot read '%s': out of memory", path);
  for (;;) {
    size_t got;
    if (n == cap) {
      unsigned char *nb;
      if (cap > SIZE_MAX / 2) {
        free(b);
        return sn_error(SN_ERR_OOM, "cannot read '%s': too large", path);
      }
      nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        return sn_error(SN_ERR_OOM, "cannot read '%s': out of memory", path);
      }
      b = nb;
      cap *= 2;
    }
    got = fread(b + n, 1, cap - n, fp);
    n += got;
    if (got == 0) break;
  }
  if (ferror(fp)) {
    int e = errno;
    free(b);
    return sn_error(SN_ERR_IO, "cannot read '%s': %s", path, strerror(e));
  }
  *buf = b;
  *len = n;
  return SN_OK;
}

int sn_ndfile_load(const char *path, sn_ndlist *out) {
  nd_reader r;
  struct stat st;
  FILE *fp;
  int rc;
  if (!out) return sn_error(SN_ERR_ARG, "sn_ndfile_load: out is NULL");
  out->n = 0;
  out->arrays = NULL;
  out->names = NULL;
  if (!path || !*path) return sn_error(SN_ERR_ARG, "sn_ndfile_load: empty file name");
  fp = fopen(path, "rb");
  if (!fp) return sn_error(SN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  if (fstat(fileno(fp), &st) != 0) {
    int e = errno;
    fclose(fp);
    return sn_error(SN_ERR_IO, "cannot open '%s': %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    fclose(fp);
    return sn_error(SN_ERR_IO, "cannot open '%s': Is a directory", path);
  }
  if (!S_ISREG(st.st_mode)) {
    unsigned char *buf = NULL;
    size_t len = 0;
    rc = nd_slurp(fp, path, &buf, &len);
    fclose(fp);
    if (rc != SN_OK) return rc;
    memset(&r, 0, sizeof r);
    r.buf = buf;
    r.len = len;
    snprintf(r.label, sizeof r.label, "'%s'", path);
    rc = nd_load(&r, out);
    free(buf);
    return rc;
  }
  memset(&r, 0, sizeof r);
  r.fp = fp;
  r.len = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  snprintf(r.label, sizeof r.label, "'%s'", path);
  rc = nd_load(&r, out);
  fclose(fp);
  return rc;
}

/* ---- writer over a memory buffer or a FILE ---- */

typedef struct {
  unsigned char *buf; /* memory target (exactly sized), or NULL */
  FILE *fp;
  size_t pos;
  const char *label;
} nd_writer;

static int nd_put(nd_writer *w, const void *p, size_t n) {
  if (n == 0) return SN_OK;
  if (w->buf) {
    memcpy(w->buf + w->pos, p, n);
  } else if (fwrite(p, 1, n, w->fp) != n) {
    return sn_error(SN_ERR_IO, "cannot write '%s': %s", w->label, strerror(errno));
  }
  w->pos += n;
  return SN_OK;
}

static int nd_put_u32w(nd_writer *w, uint32_t v) {
  unsigned char b[4] = {0};
  nd_put_u32(b, v);
  return nd_put(w, b, 4);
}

static int nd_put_u64w(nd_writer *w, uint64_t v) {
  unsigned char b[8] = {0};
  nd_put_u64(b, v);
  return nd_put(w, b, 8);
}

/* Element data, little-endian whatever the host. */
static int nd_put_data(nd_writer *w, const void *p, size_t bytes, size_t es) {
  unsigned char tmp[1 << 14];
  const unsigned char *c = p;
  if (nd_host_le() || es < 2) return nd_put(w, p, bytes);
  while (bytes > 0) {
    size_t chunk = bytes < sizeof tmp ? bytes : sizeof tmp;
    chunk -= chunk % es;
    memcpy(tmp, c, chunk);
    nd_swap(tmp, chunk / es, es);
    SN_TRY(nd_put(w, tmp, chunk));
    c += chunk;
    bytes -= chunk;
  }
  return SN_OK;
}

/* Checks what save is given; *total receives the exact file size. */
static int nd_check_save(int n, const sn_tensor *const *arrays, const char *const *names, size_t *total) {
  size_t sum = ND_HEADER_BYTES + 8;
  if (n < 0) return sn_error(SN_ERR_ARG, "mx.nd.save: negative number of arrays (%d)", n);
  if (n > 0 && !arrays) return sn_error(SN_ERR_ARG, "mx.nd.save: arrays is NULL");
  for (int i = 0; i < n; i++) {
    const sn_tensor *t = arrays[i];
    size_t bytes, rec;
    char sbuf[200];
    if (!t) return sn_error(SN_ERR_ARG, "mx.nd.save: array %d is NULL", i + 1);
    if (!t->st) {
      rec = 12; /* none: magic, stype, ndim 0 */
    } else {
      sn_device dev = t->st->dev;
      if (dev.type != SN_DEV_CPU)
        return sn_error(SN_ERR_ARG, "mx.nd.save: array %d is on %s:%d; copy it to the CPU before saving",
                        i + 1, dev.type == SN_DEV_GPU ? "gpu" : "device", dev.id);
      if (sn_dtype_size(t->dtype) == 0)
        return sn_error(SN_ERR_TYPE, "mx.nd.save: array %d has an unknown dtype (%d)", i + 1, (int)t->dtype);
      if (t->shape.ndim < 0 || t->shape.ndim > SN_MAX_DIMS)
        return sn_error(SN_ERR_SHAPE, "mx.nd.save: array %d has an unknown shape", i + 1);
      if (sn_shape_bytes(&t->shape, t->dtype, &bytes) != SN_OK)
        return sn_error(SN_ERR_SHAPE, "mx.nd.save: array %d: shape %s is invalid or too large", i + 1,
                        sn_shape_str(&t->shape, sbuf, sizeof sbuf));
      if (t->offset > t->st->bytes || bytes > t->st->bytes - t->offset)
        return sn_error(SN_ERR_INTERNAL, "mx.nd.save: array %d: shape %s (%s) needs %zu bytes but its storage "
                        "holds %zu from offset %zu", i + 1, sn_shape_str(&t->shape, sbuf, sizeof sbuf),
                        sn_dtype_name(t->dtype), bytes, t->st->bytes, t->offset);
      if (bytes > 0 && !t->st->data)
        return sn_error(SN_ERR_INTERNAL, "mx.nd.save: array %d has no data", i + 1);
      rec = 4 + 4 + 4 + 8 * (size_t)t->shape.ndim + 4 + 4 + 4;
      SN_TRY(sn_add_size(rec, bytes, &rec));
    }
    SN_TRY(sn_add_size(sum, rec, &sum));
    if (names) {
      size_t len;
      if (!names[i]) return sn_error(SN_ERR_ARG, "mx.nd.save: name %d is NULL", i + 1);
      len = strlen(names[i]);
      SN_TRY(sn_add_size(sum, 8, &sum));
      SN_TRY(sn_add_size(sum, len, &sum));
    }
  }
  *total = sum;
  return SN_OK;
}

static int nd_write_all(nd_writer *w, int n, const sn_tensor *const *arrays, const char *const *names) {
  SN_TRY(nd_put_u64w(w, ND_LIST_MAGIC));
  SN_TRY(nd_put_u64w(w, 0));
  SN_TRY(nd_put_u64w(w, (uint64_t)n));
  for (int i = 0; i < n; i++) {
    const sn_tensor *t = arrays[i];
    if (!t->st) {
      SN_TRY(nd_put_u32w(w, ND_V2_MAGIC));
      SN_TRY(nd_put_u32w(w, 0)); /* dense */
      SN_TRY(nd_put_u32w(w, 0)); /* ndim 0: none */
      continue;
    }
    /* A 0-d tensor is a scalar only in numpy-shape (V3) records; in V2 an
     * ndim of 0 would read back as "none". */
    SN_TRY(nd_put_u32w(w, t->shape.ndim == 0 ? ND_V3_MAGIC : ND_V2_MAGIC));
    SN_TRY(nd_put_u32w(w, 0)); /* dense */
    SN_TRY(nd_put_u32w(w, (uint32_t)t->shape.ndim));
    for (int d = 0; d < t->shape.ndim; d++) SN_TRY(nd_put_u64w(w, (uint64_t)t->shape.dim[d]));
    SN_TRY(nd_put_u32w(w, SN_DEV_CPU));
    SN_TRY(nd_put_u32w(w, 0));
    SN_TRY(nd_put_u32w(w, (uint32_t)t->dtype));
    SN_TRY(nd_put_data(w, sn_tensor_data(t), sn_tensor_bytes(t), sn_dtype_size(t->dtype)));
  }
  SN_TRY(nd_put_u64w(w, names ? (uint64_t)n : 0));
  if (names)
    for (int i = 0; i < n; i++) {
      size_t len = strlen(names[i]);
      SN_TRY(nd_put_u64w(w, (uint64_t)len));
      SN_TRY(nd_put(w, names[i], len));
    }
  return SN_OK;
}

int sn_ndfile_save_mem(int n, const sn_tensor *const *arrays, const char *const *names, void **buf, size_t *len) {
  size_t total;
  nd_writer w;
  int rc;
  if (!buf || !len) return sn_error(SN_ERR_ARG, "sn_ndfile_save_mem: buf or len is NULL");
  *buf = NULL;
  *len = 0;
  SN_TRY(nd_check_save(n, arrays, names, &total));
  memset(&w, 0, sizeof w);
  w.buf = malloc(total);
  if (!w.buf) return sn_error(SN_ERR_OOM, "mx.nd.save: cannot allocate %zu bytes", total);
  w.label = "(in memory)";
  rc = nd_write_all(&w, n, arrays, names);
  if (rc == SN_OK && w.pos != total)
    rc = sn_error(SN_ERR_INTERNAL, "mx.nd.save: wrote %zu bytes, expected %zu", w.pos, total);
  if (rc != SN_OK) {
    free(w.buf);
    return rc;
  }
  *buf = w.buf;
  *len = total;
  return SN_OK;
}

/* ---- atomic file save ---- */

#ifdef _WIN32
static int nd_open_temp(char *tmpl, FILE **fp) {
  int fd = -1;
  size_t n = strlen(tmpl);
  for (int attempt = 0; attempt < 100; attempt++) {
    memcpy(tmpl + n - 6, "XXXXXX", 6);
    if (_mktemp_s(tmpl, n + 1) != 0) return -1;
    if (_sopen_s(&fd, tmpl, _O_CREAT | _O_EXCL | _O_WRONLY | _O_BINARY, _SH_DENYNO, _S_IREAD | _S_IWRITE) == 0)
      break;
    if (errno != EEXIST) return -1;
  }
  if (fd < 0) return -1;
  *fp = _fdopen(fd, "wb");
  if (!*fp) {
    _close(fd);
    _unlink(tmpl);
    return -1;
  }
  return 0;
}
static int nd_sync(FILE *fp) { return _commit(_fileno(fp)); }
static int nd_replace(const char *from, const char *to) {
  if (MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) return 0;
  errno = EACCES;
  return -1;
}
static void nd_sync_dir(const char *path) { (void)path; }
#else
static int nd_open_temp(char *tmpl, FILE **fp) {
  int fd = mkstemp(tmpl);
  if (fd < 0) return -1;
  *fp = fdopen(fd, "wb");
  if (!*fp) {
    int e = errno;
    close(fd);
    unlink(tmpl);
    errno = e;
    return -1;
  }
  return 0;
}
static int nd_sync(FILE *fp) { return fsync(fileno(fp)); }
static int nd_replace(const char *from, const char *to) { return rename(from, to); }
/* Makes the rename durable; failures here are not errors. */
static void nd_sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  size_t n;
  int fd;
  if (!slash) {
    dir = malloc(2);
    if (!dir) return;
    strcpy(dir, ".");
  } else {
    n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/file" */
    dir = malloc(n + 1);
    if (!dir) return;
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  free(dir);
}
#endif

/* mkstemp creates 0600; give the file the mode a plain fopen would
 * (0666 & ~umask), or keep the mode of the file it replaces. */
static void nd_set_mode(FILE *fp, const char *path) {
#ifdef _WIN32
  (void)fp;
  (void)path;
#else
  struct stat st;
  mode_t mode;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
    mode = st.st_mode & 07777;
  } else {
    mode_t mask = umask(022);
    umask(mask);
    mode = 0666 & ~mask;
  }
  (void)fchmod(fileno(fp), mode);
#endif
}

int sn_ndfile_save(const char *path, int n, const sn_tensor *const *arrays, const char *const *names) {
  size_t total, plen;
  char *tmp;
  FILE *fp = NULL;
  nd_writer w;
  int rc;
  if (!path || !*path) return sn_error(SN_ERR_ARG, "mx.nd.save: empty file name");
  SN_TRY(nd_check_save(n, arrays, names, &total));
  plen = strlen(path);
  tmp = malloc(plen + 11);
  if (!tmp) return sn_error(SN_ERR_OOM, "mx.nd.save: out of memory");
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmpXXXXXX", 11);
  if (nd_open_temp(tmp, &fp) != 0) {
    rc = sn_error(SN_ERR_IO, "cannot open '%s' for writing: %s", path, strerror(errno));
    free(tmp);
    return rc;
  }
  nd_set_mode(fp, path);
  memset(&w, 0, sizeof w);
  w.fp = fp;
  w.label = path;
  rc = nd_write_all(&w, n, arrays, names);
  if (rc == SN_OK && fflush(fp) != 0) rc = sn_error(SN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
  if (rc == SN_OK && nd_sync(fp) != 0) rc = sn_error(SN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
  if (fclose(fp) != 0 && rc == SN_OK) rc = sn_error(SN_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
  if (rc == SN_OK && w.pos != total)
    rc = sn_error(SN_ERR_INTERNAL, "mx.nd.save: wrote %zu bytes to '%s', expected %zu", w.pos, path, total);
  if (rc == SN_OK && nd_replace(tmp, path) != 0)
    rc = sn_error(SN_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
  if (rc != SN_OK) {
    remove(tmp);
    free(tmp);
    return rc;
  }
  nd_sync_dir(path);
  free(tmp);
  return SN_OK;
}
