/* Data iterators and their file readers (see io.h).
 *
 * MXNet behaviour kept here:
 * - mx.io.arrayiter (R-package/src/io.cc): the last partial batch is padded
 *   with the rows the previous batch had at those positions (the C++ code
 *   reused one batch buffer), zeros when there is no previous batch;
 *   num.pad is batch - remaining on that batch only.
 * - MNISTIter (src/io/iter_mnist.cc): pixels are scaled by 1/256 (not 255),
 *   the order is shuffled once at creation with the `seed` parameter, and
 *   only full batches are produced (the tail is dropped, num.pad is 0);
 *   num_parts/part_index keep the part [n*k/parts, n*(k+1)/parts).
 *   The label batch is (batch), MXNet's C API flattening (batch, 1).
 * - CSVIter (src/io/iter_csv.cc + BatchLoader): round_batch (default on)
 *   fills the last batch by wrapping to the start of the data and reports
 *   the wrapped count as num.pad; off, it reports batch - remaining and
 *   the rest of the batch holds stale rows.  MXNet's BatchLoader then starts
 *   the next pass after the wrapped rows; here every reset starts at the
 *   first row, so each pass sees every row once (predict() relies on it).
 *   Missing label files give zero labels.
 * The shuffle generator is splitmix64, not MXNet's mt19937, so a seed gives
 * a different (but reproducible) order than MXNet's. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef SN_HAVE_ZLIB
#include <zlib.h>
#endif

#include "io.h"
#include "cpu_par.h"

/* ------------------------------------------------------------ fields ---- */

static int64_t shape_row(const sn_shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->ndim; i++) n *= s->dim[i];
  return n;
}

int sn_io_field_alloc(sn_io_field *f, const sn_shape *shape, int64_t num) {
  int64_t row;
  size_t bytes;
  memset(f, 0, sizeof *f);
  if (shape->ndim < 0 || shape->ndim > SN_MAX_DIMS - 1)
    return sn_error(SN_ERR_SHAPE, "an example may have at most %d dimensions", SN_MAX_DIMS - 1);
  SN_TRY(sn_shape_size(shape, &row));
  if (row <= 0 || num <= 0) return sn_error(SN_ERR_SHAPE, "an iterator needs at least one example of at least one value");
  SN_TRY(sn_mul_size((size_t)row, (size_t)num, &bytes));
  SN_TRY(sn_mul_size(bytes, sizeof(float), &bytes));
  f->base = sn_host_alloc(bytes);
  if (!f->base) return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes for %lld examples", bytes, (long long)num);
  f->bytes = bytes;
  f->ptr = f->base;
  f->dtype = SN_F32;
  f->scale = 1.0f;
  f->shape = *shape;
  f->row = row;
  return SN_OK;
}

int sn_io_field_borrow(sn_io_field *f, const sn_shape *shape, int64_t num, sn_dtype dtype,
                       const void *ptr) {
  memset(f, 0, sizeof *f);
  if (dtype != SN_F64 && dtype != SN_I32)
    return sn_error(SN_ERR_TYPE, "a borrowed iterator field must be float64 or int32");
  if (shape->ndim < 0 || shape->ndim > SN_MAX_DIMS - 1)
    return sn_error(SN_ERR_SHAPE, "an example may have at most %d dimensions", SN_MAX_DIMS - 1);
  int64_t row;
  size_t bytes;
  SN_TRY(sn_shape_size(shape, &row));
  if (row <= 0 || num <= 0) return sn_error(SN_ERR_SHAPE, "an iterator needs at least one example of at least one value");
  SN_TRY(sn_mul_size((size_t)row, (size_t)num, &bytes)); /* every index stays in range */
  SN_TRY(sn_mul_size(bytes, sizeof(double), &bytes));
  f->ptr = ptr;
  f->dtype = dtype;
  f->scale = 1.0f;
  f->shape = *shape;
  f->row = row;
  return SN_OK;
}

void sn_io_field_free(sn_io_field *f) {
  if (!f) return;
  sn_host_free(f->base, f->bytes);
  memset(f, 0, sizeof *f);
}

/* --------------------------------------------------------- iterators ---- */

struct sn_io_iter {
  sn_io_field f[2]; /* data, label */
  int64_t num, batch;
  int64_t *order;
  size_t order_bytes;
  sn_io_pad pad;
  int64_t cur;  /* order index of the current batch's first example, -1 none */
  int64_t next; /* order index where the next batch starts */
};

int sn_io_iter_new(sn_io_field *data, sn_io_field *label, int64_t num, int64_t batch_size,
                   sn_io_pad pad, sn_io_iter **out) {
  *out = NULL;
  if (batch_size <= 0) return sn_error(SN_ERR_ARG, "batch size must be positive, got %lld", (long long)batch_size);
  if (num <= 0) return sn_error(SN_ERR_ARG, "an iterator needs at least one example");
  if (pad != SN_IO_PAD_STALE && pad != SN_IO_PAD_WRAP && pad != SN_IO_PAD_DROP)
    return sn_error(SN_ERR_ARG, "unknown padding mode %d", (int)pad);
  if (data->dtype != SN_F32 && data->dtype != SN_U8 && data->dtype != SN_F64 && data->dtype != SN_I32)
    return sn_error(SN_ERR_TYPE, "iterator data must be float32, uint8, float64 or int32");
  if (label->dtype != SN_F32 && label->dtype != SN_U8 && label->dtype != SN_F64 && label->dtype != SN_I32)
    return sn_error(SN_ERR_TYPE, "iterator labels must be float32, uint8, float64 or int32");
  if (data->shape.ndim > SN_MAX_DIMS - 1 || label->shape.ndim > SN_MAX_DIMS - 1)
    return sn_error(SN_ERR_SHAPE, "an example may have at most %d dimensions", SN_MAX_DIMS - 1);
  size_t ob;
  SN_TRY(sn_mul_size((size_t)num, sizeof(int64_t), &ob));
  sn_io_iter *it = calloc(1, sizeof *it);
  if (!it) return sn_error(SN_ERR_OOM, "cannot allocate an iterator");
  it->order = sn_host_alloc(ob);
  if (!it->order) {
    free(it);
    return sn_error(SN_ERR_OOM, "cannot allocate the order of %lld examples", (long long)num);
  }
  it->order_bytes = ob;
  for (int64_t i = 0; i < num; i++) it->order[i] = i;
  it->f[0] = *data;
  it->f[1] = *label;
  memset(data, 0, sizeof *data);
  memset(label, 0, sizeof *label);
  it->num = num;
  it->batch = batch_size;
  it->pad = pad;
  it->cur = -1;
  it->next = 0;
  *out = it;
  return SN_OK;
}

void sn_io_iter_free(sn_io_iter *it) {
  if (!it) return;
  sn_io_field_free(&it->f[0]);
  sn_io_field_free(&it->f[1]);
  sn_host_free(it->order, it->order_bytes);
  free(it);
}

int sn_io_iter_set_order(sn_io_iter *it, const int64_t *perm, int64_t n) {
  if (n != it->num)
    return sn_error(SN_ERR_ARG, "the order has %lld entries for %lld examples", (long long)n, (long long)it->num);
  size_t bytes = (size_t)((it->num + 7) / 8);
  unsigned char *seen = calloc(bytes ? bytes : 1, 1);
  if (!seen) return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes", bytes);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = perm[i];
    if (v < 0 || v >= n || (seen[v / 8] >> (v % 8)) & 1) {
      free(seen);
      return sn_error(SN_ERR_ARG, "the order is not a permutation of the %lld examples", (long long)n);
    }
    seen[v / 8] |= (unsigned char)(1u << (v % 8));
  }
  free(seen);
  memcpy(it->order, perm, (size_t)n * sizeof(int64_t));
  sn_io_iter_reset(it);
  return SN_OK;
}

/* splitmix64 */
static uint64_t io_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, bound) without modulo bias. */
static uint64_t io_rand_below(uint64_t *s, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t r;
  do r = io_rand(s);
  while (r >= limit);
  return r % bound;
}

int sn_io_iter_shuffle(sn_io_iter *it, uint64_t seed) {
  uint64_t s = seed;
  for (int64_t i = it->num - 1; i > 0; i--) {
    int64_t j = (int64_t)io_rand_below(&s, (uint64_t)i + 1);
    int64_t t = it->order[i];
    it->order[i] = it->order[j];
    it->order[j] = t;
  }
  sn_io_iter_reset(it);
  return SN_OK;
}

void sn_io_iter_reset(sn_io_iter *it) {
  it->cur = -1;
  it->next = 0;
}

int sn_io_iter_next(sn_io_iter *it, int *has) {
  int64_t start = it->next;
  *has = 0;
  if (start >= it->num || (it->pad == SN_IO_PAD_DROP && it->num - start < it->batch)) {
    it->cur = -1;
    it->next = it->num;
    return SN_OK;
  }
  it->cur = start;
  it->next = it->batch >= it->num - start ? it->num : start + it->batch;
  *has = 1;
  return SN_OK;
}

int64_t sn_io_iter_num_pad(const sn_io_iter *it) {
  if (it->cur < 0) return 0;
  int64_t left = it->num - it->cur;
  return left >= it->batch ? 0 : it->batch - left;
}

int64_t sn_io_iter_num(const sn_io_iter *it) { return it->num; }
int64_t sn_io_iter_batch_size(const sn_io_iter *it) { return it->batch; }

int64_t sn_io_iter_num_batches(const sn_io_iter *it) {
  if (it->pad == SN_IO_PAD_DROP) return it->num / it->batch;
  return it->num / it->batch + (it->num % it->batch != 0);
}

static sn_shape batch_shape(const sn_io_field *f, int64_t batch) {
  sn_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = f->shape.ndim + 1;
  s.dim[0] = batch;
  for (int i = 0; i < f->shape.ndim; i++) s.dim[i + 1] = f->shape.dim[i];
  return s;
}

void sn_io_iter_batch_shapes(const sn_io_iter *it, sn_shape *data, sn_shape *label) {
  if (data) *data = batch_shape(&it->f[0], it->batch);
  if (label) *label = batch_shape(&it->f[1], it->batch);
}

void sn_io_iter_squeeze_label(sn_io_iter *it) {
  if (it->f[1].shape.ndim == 1 && it->f[1].shape.dim[0] == 1) it->f[1].shape.ndim = 0;
}

/* Example stored at batch position p of the current batch, -1 for zeros. */
static int64_t source_of(const sn_io_iter *it, int64_t p) {
  int64_t k = it->cur + p;
  if (k < it->num) return it->order[k];
  switch (it->pad) {
  case SN_IO_PAD_WRAP: return it->order[(k - it->num) % it->num];
  case SN_IO_PAD_STALE: return it->cur >= it->batch ? it->order[it->cur - it->batch + p] : -1;
  default: return -1;
  }
}

/* One example converted to float32 (vectorised where the CPU allows). */
SN_VEC_CLONES static void conv_f64(float *d, const double *s, int64_t n) {
  for (int64_t j = 0; j < n; j++) d[j] = (float)s[j];
}
SN_VEC_CLONES static void conv_u8(float *d, const uint8_t *s, int64_t n, float scale) {
  for (int64_t j = 0; j < n; j++) d[j] = (float)s[j] * scale;
}
static void conv_i32(float *d, const int32_t *s, int64_t n) {
  for (int64_t j = 0; j < n; j++) d[j] = s[j] == INT32_MIN ? NAN : (float)s[j];
}

static void gather_one(const sn_io_field *f, int64_t s, float *d) {
  const int64_t row = f->row;
  if (s < 0) {
    memset(d, 0, (size_t)row * sizeof(float));
  } else if (f->dtype == SN_F32) {
    memcpy(d, (const float *)f->ptr + s * row, (size_t)row * sizeof(float));
  } else if (f->dtype == SN_F64) {
    conv_f64(d, (const double *)f->ptr + s * row, row);
  } else if (f->dtype == SN_I32) {
    conv_i32(d, (const int32_t *)f->ptr + s * row, row);
  } else {
    conv_u8(d, (const uint8_t *)f->ptr + s * row, row, f->scale);
  }
}

/* Batches below this many values are gathered on one thread (an OpenMP
 * fork/join costs more than copying them). */
#define SN_IO_PAR_MIN 65536

static void gather(const sn_io_iter *it, const sn_io_field *f, float *dst) {
  const int64_t row = f->row, batch = it->batch;
  /* Examples sit at random places in a large store (a shuffled epoch), so
   * the copy is bound by memory latency: two threads keep more misses in
   * flight. */
  SN_OMP(parallel for schedule(static) if (row * batch >= SN_IO_PAR_MIN)
             num_threads(sn_num_threads()))
  for (int64_t p = 0; p < batch; p++) {
    gather_one(f, source_of(it, p), dst + p * row);
  }
}

int sn_io_iter_value(const sn_io_iter *it, sn_tensor *data, sn_tensor *label) {
  memset(data, 0, sizeof *data);
  memset(label, 0, sizeof *label);
  if (it->cur < 0)
    return sn_error(SN_ERR_ARG, "the iterator has no current batch: value() is valid only after "
                                "iter.next() returned TRUE (called before the first batch or after the last)");
  sn_shape ds = batch_shape(&it->f[0], it->batch), ls = batch_shape(&it->f[1], it->batch);
  SN_TRY(sn_tensor_alloc(data, SN_F32, &ds, sn_cpu()));
  int rc = sn_tensor_alloc(label, SN_F32, &ls, sn_cpu());
  if (rc != SN_OK) {
    sn_tensor_release(data);
    return rc;
  }
  gather(it, &it->f[0], sn_tensor_data(data));
  gather(it, &it->f[1], sn_tensor_data(label));
  return SN_OK;
}

static int value_into_one(const sn_io_iter *it, const sn_io_field *f, sn_tensor *dst, const char *what) {
  int64_t want;
  sn_shape bs = batch_shape(f, it->batch);
  SN_TRY(sn_shape_size(&bs, &want));
  if (!dst->st || sn_tensor_size(dst) != want) {
    char a[128], b[128];
    return sn_error(SN_ERR_SHAPE, "the iterator's %s batch %s does not fit an array of shape %s", what,
                    sn_shape_str(&bs, a, sizeof a), dst->st ? sn_shape_str(&dst->shape, b, sizeof b) : "(none)");
  }
  if (dst->dtype == SN_F32 && sn_tensor_device(dst).type == SN_DEV_CPU) {
    gather(it, f, sn_tensor_data(dst));
    return SN_OK;
  }
  sn_tensor tmp;
  SN_TRY(sn_tensor_alloc(&tmp, SN_F32, &bs, sn_cpu()));
  gather(it, f, sn_tensor_data(&tmp));
  int rc = SN_OK;
  if (dst->dtype != SN_F32 && sn_tensor_device(dst).type != SN_DEV_CPU) {
    /* convert on the CPU first: devices copy same-dtype data only */
    sn_tensor conv;
    rc = sn_tensor_clone(&conv, &tmp, dst->dtype, sn_cpu());
    sn_tensor_release(&tmp);
    if (rc != SN_OK) return rc;
    tmp = conv;
  }
  rc = sn_tensor_copy(dst, &tmp);
  sn_tensor_release(&tmp);
  return rc;
}

int sn_io_iter_value_into(const sn_io_iter *it, sn_tensor *data, sn_tensor *label) {
  if (it->cur < 0)
    return sn_error(SN_ERR_ARG, "the iterator has no current batch: value() is valid only after "
                                "iter.next() returned TRUE (called before the first batch or after the last)");
  if (data) SN_TRY(value_into_one(it, &it->f[0], data, "data"));
  if (label) SN_TRY(value_into_one(it, &it->f[1], label, "label"));
  return SN_OK;
}

/* ----------------------------------------------------------- streams ---- */

int sn_io_have_zlib(void) {
#ifdef SN_HAVE_ZLIB
  return 1;
#else
  return 0;
#endif
}

enum { ST_MEM, ST_FILE, ST_GZ };

typedef struct {
  int kind;
  const unsigned char *mem;
  size_t mem_len, mem_pos;
  FILE *fp;
#ifdef SN_HAVE_ZLIB
  gzFile gz;
#endif
  uint64_t disk_size; /* bytes on disk (compressed size for gzip) */
  const char *path;   /* for messages */
  const char *what;
} sn_stream;

static void stream_mem(sn_stream *s, const void *buf, size_t len, const char *what) {
  memset(s, 0, sizeof *s);
  s->kind = ST_MEM;
  s->mem = buf;
  s->mem_len = len;
  s->disk_size = len;
  s->path = "<memory>";
  s->what = what;
}

static int stream_open(sn_stream *s, const char *path, const char *what) {
  struct stat sb;
  unsigned char magic[2];
  memset(s, 0, sizeof *s);
  s->path = path;
  s->what = what;
  if (!path || !*path) return sn_error(SN_ERR_ARG, "no %s file name given", what);
  if (stat(path, &sb) != 0)
    return sn_error(SN_ERR_IO, "cannot open %s file '%s': %s", what, path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return sn_error(SN_ERR_IO, "%s file '%s' is a directory", what, path);
  s->fp = fopen(path, "rb");
  if (!s->fp) return sn_error(SN_ERR_IO, "cannot open %s file '%s': %s", what, path, strerror(errno));
  s->kind = ST_FILE;
  s->disk_size = S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
  size_t got = fread(magic, 1, 2, s->fp);
  int gz = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (!gz) {
    rewind(s->fp);
    return SN_OK;
  }
  fclose(s->fp);
  s->fp = NULL;
#ifdef SN_HAVE_ZLIB
  s->gz = gzopen(path, "rb");
  if (!s->gz) return sn_error(SN_ERR_IO, "cannot open gzip %s file '%s': %s", what, path, strerror(errno));
  gzbuffer(s->gz, 1 << 17);
  s->kind = ST_GZ;
  return SN_OK;
#else
  return sn_error(SN_ERR_UNSUPPORTED,
                  "%s file '%s' is gzip-compressed, but symnet was built without zlib; "
                  "decompress it first (gunzip) or reinstall with zlib available",
                  what, path);
#endif
}

static void stream_close(sn_stream *s) {
  if (s->fp) fclose(s->fp);
#ifdef SN_HAVE_ZLIB
  if (s->gz) gzclose(s->gz);
  s->gz = NULL;
#endif
  s->fp = NULL;
}

/* Reads up to n bytes; *got is what was read.  Errors only for I/O failures
 * and corrupt or truncated compressed data. */
static int stream_read(sn_stream *s, void *buf, size_t n, size_t *got) {
  *got = 0;
  switch (s->kind) {
  case ST_MEM: {
    size_t left = s->mem_len - s->mem_pos;
    size_t k = n < left ? n : left;
    if (k) memcpy(buf, s->mem + s->mem_pos, k);
    s->mem_pos += k;
    *got = k;
    return SN_OK;
  }
  case ST_FILE: {
    size_t k = fread(buf, 1, n, s->fp);
    *got = k;
    if (k < n && ferror(s->fp))
      return sn_error(SN_ERR_IO, "error reading %s file '%s': %s", s->what, s->path, strerror(errno));
    return SN_OK;
  }
#ifdef SN_HAVE_ZLIB
  case ST_GZ: {
    unsigned char *p = buf;
    while (n > 0) {
      unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
      int k = gzread(s->gz, p, chunk);
      int err;
      const char *msg = gzerror(s->gz, &err);
      if (k < 0 || (err != Z_OK && err != Z_STREAM_END)) {
        if (err == Z_BUF_ERROR)
          return sn_error(SN_ERR_FORMAT, "gzip %s file '%s' is truncated (the compressed stream ends early)",
                          s->what, s->path);
        return sn_error(SN_ERR_FORMAT, "gzip %s file '%s' is corrupt: %s", s->what, s->path,
                        msg ? msg : "unknown zlib error");
      }
      *got += (size_t)k;
      if ((unsigned)k < chunk) break;
      p += k;
      n -= (size_t)k;
    }
    return SN_OK;
  }
#endif
  default: return sn_error(SN_ERR_INTERNAL, "bad stream");
  }
}

/* Reads everything left into a NUL-terminated sn_host_alloc buffer. */
static int stream_read_all(sn_stream *s, char **out, size_t *len, size_t *cap_out) {
  size_t cap, used = 0;
  *out = NULL;
  *len = 0;
  if (s->kind == ST_MEM) cap = s->mem_len - s->mem_pos + 1;
  else if (s->kind == ST_FILE && s->disk_size > 0) cap = (size_t)s->disk_size + 1;
  else cap = (size_t)1 << 20;
  if (s->kind == ST_FILE && s->disk_size > 0 && (uint64_t)(cap - 1) != s->disk_size)
    return sn_error(SN_ERR_OOM, "%s file '%s' is too large to read", s->what, s->path);
  char *buf = sn_host_alloc(cap);
  if (!buf) return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes to read %s file '%s'", cap, s->what, s->path);
  for (;;) {
    size_t got;
    if (used + 1 == cap) {
      size_t ncap;
      if (sn_mul_size(cap, 2, &ncap) != SN_OK) {
        sn_host_free(buf, cap);
        return sn_error(SN_ERR_OVERFLOW, "%s file '%s' is too large", s->what, s->path);
      }
      char *nb = sn_host_alloc(ncap);
      if (!nb) {
        sn_host_free(buf, cap);
        return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes to read %s file '%s'", ncap, s->what, s->path);
      }
      memcpy(nb, buf, used);
      sn_host_free(buf, cap);
      buf = nb;
      cap = ncap;
    }
    int rc = stream_read(s, buf + used, cap - 1 - used, &got);
    if (rc != SN_OK) {
      sn_host_free(buf, cap);
      return rc;
    }
    used += got;
    if (got == 0) break;
  }
  buf[used] = '\0';
  *out = buf;
  *len = used;
  *cap_out = cap;
  return SN_OK;
}

/* --------------------------------------------------------- idx files ---- */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *idx_kind(int ndim) { return ndim == 3 ? "image" : ndim == 1 ? "label" : "idx"; }

static int idx_read_stream(sn_stream *s, int expect_ndim, sn_idx *out) {
  unsigned char h[4], d[4 * 8];
  size_t got;
  const char *what = s->what, *path = s->path;
  memset(out, 0, sizeof *out);
  SN_TRY(stream_read(s, h, 4, &got));
  if (got < 4)
    return sn_error(SN_ERR_FORMAT, "%s file '%s' is too short to be an idx file (%zu bytes)", what, path, got);
  int expect_magic = 0x0800 | expect_ndim;
  if (h[0] != 0 || h[1] != 0 || h[2] != 0x08 || h[3] < 1 || h[3] > 8)
    return sn_error(SN_ERR_FORMAT,
                    "%s file '%s' is not an idx %s file: its magic number is 0x%02X%02X%02X%02X, "
                    "expected %d (0x%08X)%s",
                    what, path, idx_kind(expect_ndim), h[0], h[1], h[2], h[3], expect_magic,
                    (unsigned)expect_magic,
                    (h[0] == 0 && h[1] == 0 && h[2] != 0x08) ? "; only unsigned-byte idx files (type 0x08) are read" : "");
  if (h[3] != expect_ndim)
    return sn_error(SN_ERR_FORMAT,
                    "%s file '%s' has magic number %d (an idx %s file with %d dimensions), "
                    "expected %d (an idx %s file)%s",
                    what, path, 0x0800 | h[3], idx_kind(h[3]), h[3], expect_magic, idx_kind(expect_ndim),
                    ((h[3] == 1 || h[3] == 3) && (expect_ndim == 1 || expect_ndim == 3))
                        ? "; are the image and label files swapped?" : "");
  int ndim = h[3];
  SN_TRY(stream_read(s, d, (size_t)4 * ndim, &got));
  if (got < (size_t)4 * ndim)
    return sn_error(SN_ERR_FORMAT, "%s file '%s' is truncated inside its header", what, path);
  int64_t dims[8];
  size_t payload = 1;
  for (int i = 0; i < ndim; i++) {
    dims[i] = be32(d + 4 * i);
    if (dims[i] == 0) return sn_error(SN_ERR_FORMAT, "%s file '%s' has a zero size in its header (dimension %d)", what, path, i + 1);
    if (sn_mul_size(payload, (size_t)dims[i], &payload) != SN_OK)
      return sn_error(SN_ERR_FORMAT, "%s file '%s' has header sizes whose product overflows", what, path);
  }
  char desc[128];
  if (ndim == 3)
    snprintf(desc, sizeof desc, "%lld images of %lldx%lld", (long long)dims[0], (long long)dims[1], (long long)dims[2]);
  else
    snprintf(desc, sizeof desc, "%lld values", (long long)payload);
  size_t header = 4 + (size_t)4 * ndim;
  if (s->kind != ST_GZ) {
    uint64_t total = s->kind == ST_MEM ? s->mem_len : s->disk_size;
    uint64_t after = total >= header ? total - header : 0;
    if (after < payload)
      return sn_error(SN_ERR_FORMAT,
                      "%s file '%s' is truncated: its header promises %s (%zu bytes) but only %llu bytes follow",
                      what, path, desc, payload, (unsigned long long)after);
    if (after > payload)
      return sn_error(SN_ERR_FORMAT,
                      "%s file '%s' has %llu bytes after the %zu its header promises (%s): not an idx file, "
                      "or a wrong header",
                      what, path, (unsigned long long)(after - payload), payload, desc);
  } else if (s->disk_size > 0 && (payload - 1) / 1032 > s->disk_size) {
    /* deflate cannot expand by more than about 1032:1 */
    return sn_error(SN_ERR_FORMAT,
                    "gzip %s file '%s' is corrupt: its header promises %s (%zu bytes), more than a "
                    "%llu-byte gzip file can hold",
                    what, path, desc, payload, (unsigned long long)s->disk_size);
  }
  unsigned char *buf = sn_host_alloc(payload);
  if (!buf) return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes for %s file '%s'", payload, what, path);
  int rc = stream_read(s, buf, payload, &got);
  if (rc == SN_OK && got < payload)
    rc = sn_error(SN_ERR_FORMAT, "%s file '%s' is truncated: its header promises %s (%zu bytes) but only %zu bytes follow",
                  what, path, desc, payload, got);
  if (rc == SN_OK && s->kind == ST_GZ) {
    unsigned char extra[256];
    size_t more = 0, k;
    do {
      rc = stream_read(s, extra, sizeof extra, &k);
      more += k;
    } while (rc == SN_OK && k == sizeof extra && more < ((size_t)1 << 20));
    if (rc == SN_OK && more > 0)
      rc = sn_error(SN_ERR_FORMAT,
                    "%s file '%s' has %s%zu bytes after the %zu its header promises (%s): not an idx file, "
                    "or a wrong header",
                    what, path, more >= ((size_t)1 << 20) ? "at least " : "", more, payload, desc);
  }
  if (rc != SN_OK) {
    sn_host_free(buf, payload);
    return rc;
  }
  out->num = dims[0];
  out->field.base = buf;
  out->field.bytes = payload;
  out->field.ptr = buf;
  out->field.dtype = SN_U8;
  out->field.scale = 1.0f;
  out->field.shape.ndim = ndim - 1;
  for (int i = 1; i < ndim; i++) out->field.shape.dim[i - 1] = dims[i];
  out->field.row = shape_row(&out->field.shape);
  return SN_OK;
}

int sn_idx_read(const char *path, int expect_ndim, const char *what, sn_idx *out) {
  sn_stream s;
  memset(out, 0, sizeof *out);
  if (expect_ndim < 1 || expect_ndim > 8) return sn_error(SN_ERR_ARG, "bad idx dimension count %d", expect_ndim);
  SN_TRY(stream_open(&s, path, what));
  int rc = idx_read_stream(&s, expect_ndim, out);
  stream_close(&s);
  return rc;
}

int sn_idx_read_mem(const void *buf, size_t len, int expect_ndim, const char *what, sn_idx *out) {
  sn_stream s;
  memset(out, 0, sizeof *out);
  if (expect_ndim < 1 || expect_ndim > 8) return sn_error(SN_ERR_ARG, "bad idx dimension count %d", expect_ndim);
  stream_mem(&s, buf, len, what);
  return idx_read_stream(&s, expect_ndim, out);
}

int sn_io_mnist_open(const char *image, const char *label, int64_t batch_size, int flat,
                     int shuffle, uint64_t seed, int num_parts, int part_index, sn_io_pad pad,
                     sn_io_iter **out, char *info, size_t info_len) {
  sn_idx img, lab;
  *out = NULL;
  if (batch_size <= 0) return sn_error(SN_ERR_ARG, "MNISTIter: batch.size must be positive, got %lld", (long long)batch_size);
  if (num_parts < 1 || part_index < 0 || part_index >= num_parts)
    return sn_error(SN_ERR_ARG, "MNISTIter: need num.parts >= 1 and 0 <= part.index < num.parts, got %d and %d",
                    num_parts, part_index);
  SN_TRY(sn_idx_read(image, 3, "image", &img));
  int rc = sn_idx_read(label, 1, "label", &lab);
  if (rc != SN_OK) {
    sn_io_field_free(&img.field);
    return rc;
  }
  if (img.num != lab.num) {
    rc = sn_error(SN_ERR_FORMAT, "MNISTIter: image file '%s' holds %lld images but label file '%s' holds %lld labels",
                  image, (long long)img.num, label, (long long)lab.num);
    goto fail;
  }
  int64_t n = img.num;
  int64_t start = (int64_t)((double)n / num_parts * part_index);
  int64_t end = (int64_t)((double)n / num_parts * (part_index + 1));
  if (end > n) end = n;
  if (end <= start) {
    rc = sn_error(SN_ERR_ARG, "MNISTIter: part %d of %d of %lld images is empty", part_index, num_parts, (long long)n);
    goto fail;
  }
  int64_t rows = img.field.shape.dim[0], cols = img.field.shape.dim[1];
  img.field.ptr = (const uint8_t *)img.field.ptr + start * img.field.row;
  lab.field.ptr = (const uint8_t *)lab.field.ptr + start;
  n = end - start;
  img.field.scale = 1.0f / 256.0f;
  if (flat) {
    img.field.shape.ndim = 1;
    img.field.shape.dim[0] = rows * cols;
  } else {
    img.field.shape.ndim = 3;
    img.field.shape.dim[0] = 1;
    img.field.shape.dim[1] = rows;
    img.field.shape.dim[2] = cols;
  }
  lab.field.shape.ndim = 0;
  if (pad == SN_IO_PAD_DROP && batch_size > n) {
    rc = sn_error(SN_ERR_ARG,
                  "MNISTIter: batch.size %lld is larger than the %lld images, and MNISTIter drops the last "
                  "partial batch, so no batch would be produced",
                  (long long)batch_size, (long long)n);
    goto fail;
  }
  rc = sn_io_iter_new(&img.field, &lab.field, n, batch_size, pad, out);
  if (rc != SN_OK) goto fail;
  if (shuffle) sn_io_iter_shuffle(*out, seed);
  if (info && info_len) {
    if (flat)
      snprintf(info, info_len, "MNISTIter: load %lld images, shuffle=%d, shape=(%lld,%lld)", (long long)n,
               shuffle ? 1 : 0, (long long)batch_size, (long long)(rows * cols));
    else
      snprintf(info, info_len, "MNISTIter: load %lld images, shuffle=%d, shape=(%lld,1,%lld,%lld)", (long long)n,
               shuffle ? 1 : 0, (long long)batch_size, (long long)rows, (long long)cols);
  }
  return SN_OK;
fail:
  sn_io_field_free(&img.field);
  sn_io_field_free(&lab.field);
  return rc;
}

/* --------------------------------------------------------- CSV files ---- */

static int is_blank_line(const char *p, const char *e) {
  for (; p < e; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r') return 0;
  return 1;
}

/* Parses buf[0..len) (buf[len] must be '\0'). */
static int csv_parse(const char *buf, size_t len, const sn_shape *shape, const char *what, const char *path,
                     sn_io_field *out, int64_t *num) {
  int64_t row, lines = 0;
  memset(out, 0, sizeof *out);
  *num = 0;
  if (shape->ndim < 1) return sn_error(SN_ERR_SHAPE, "%s: the shape must have at least one dimension", what);
  for (int i = 0; i < shape->ndim; i++)
    if (shape->dim[i] <= 0) return sn_error(SN_ERR_SHAPE, "%s: shape sizes must be positive", what);
  SN_TRY(sn_shape_size(shape, &row));
  const char *end = buf + len;
  for (const char *p = buf; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if (!is_blank_line(p, le)) lines++;
    p = nl ? nl + 1 : end;
  }
  if (lines == 0) return sn_error(SN_ERR_FORMAT, "%s file '%s' has no data lines", what, path);
  SN_TRY(sn_io_field_alloc(out, shape, lines));
  float *dst = (float *)out->base;
  int64_t line_no = 0, k = 0;
  for (const char *p = buf; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    line_no++;
    if (is_blank_line(p, le)) {
      p = nl ? nl + 1 : end;
      continue;
    }
    int64_t field = 0;
    const char *q = p;
    for (;;) {
      while (q < le && (*q == ' ' || *q == '\t')) q++;
      const char *fs = q;
      double v = 0;
      char *after = (char *)q;
      int ok = q < le && *q != ',' && *q != '\r';
      if (ok) {
        v = strtod(q, &after);
        ok = after != q && after <= le;
      }
      if (ok) {
        q = after;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        ok = q == le || *q == ',';
      }
      if (!ok) {
        const char *fe = fs;
        while (fe < le && *fe != ',' && *fe != '\r') fe++;
        int flen = (int)(fe - fs > 40 ? 40 : fe - fs);
        int rc = sn_error(SN_ERR_FORMAT, "%s file '%s', line %lld, value %lld: '%.*s' is not a number%s", what, path,
                          (long long)line_no, (long long)(field + 1), flen, fs,
                          line_no == 1 ? " (CSV files for CSVIter hold numbers only: no header line)" : "");
        sn_io_field_free(out);
        return rc;
      }
      if (field < row) dst[k * row + field] = (float)v;
      field++;
      if (q == le) break;
      q++; /* the comma */
    }
    if (field != row) {
      int rc = sn_error(SN_ERR_FORMAT, "%s file '%s', line %lld has %lld values, but the shape needs %lld per line",
                        what, path, (long long)line_no, (long long)field, (long long)row);
      sn_io_field_free(out);
      return rc;
    }
    k++;
    p = nl ? nl + 1 : end;
  }
  *num = lines;
  return SN_OK;
}

int sn_csv_read(const char *path, const sn_shape *shape, const char *what, sn_io_field *out, int64_t *num) {
  sn_stream s;
  char *buf;
  size_t len = 0, cap = 0;
  memset(out, 0, sizeof *out);
  *num = 0;
  SN_TRY(stream_open(&s, path, what));
  int rc = stream_read_all(&s, &buf, &len, &cap);
  stream_close(&s);
  if (rc != SN_OK) return rc;
  if (memchr(buf, '\0', len)) {
    sn_host_free(buf, cap);
    return sn_error(SN_ERR_FORMAT, "%s file '%s' contains NUL bytes: not a CSV text file", what, path);
  }
  rc = csv_parse(buf, len, shape, what, path, out, num);
  sn_host_free(buf, cap);
  return rc;
}

int sn_csv_read_mem(const char *buf, size_t len, const sn_shape *shape, const char *what, sn_io_field *out,
                    int64_t *num) {
  memset(out, 0, sizeof *out);
  *num = 0;
  char *copy = sn_host_alloc(len + 1);
  if (!copy) return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes", len + 1);
  memcpy(copy, buf, len);
  copy[len] = '\0';
  int rc;
  if (memchr(copy, '\0', len))
    rc = sn_error(SN_ERR_FORMAT, "%s contains NUL bytes: not a CSV text", what);
  else
    rc = csv_parse(copy, len, shape, what, "<memory>", out, num);
  sn_host_free(copy, len + 1);
  return rc;
}

int sn_io_csv_open(const char *data_csv, const sn_shape *data_shape, const char *label_csv,
                   const sn_shape *label_shape, int64_t batch_size, sn_io_pad pad, sn_io_iter **out) {
  sn_io_field data, label;
  int64_t n, nl;
  *out = NULL;
  if (batch_size <= 0) return sn_error(SN_ERR_ARG, "CSVIter: batch.size must be positive, got %lld", (long long)batch_size);
  if (label_shape->ndim < 1) return sn_error(SN_ERR_SHAPE, "CSVIter: label.shape must have at least one dimension");
  SN_TRY(sn_csv_read(data_csv, data_shape, "data.csv", &data, &n));
  int rc;
  if (label_csv) {
    rc = sn_csv_read(label_csv, label_shape, "label.csv", &label, &nl);
    if (rc == SN_OK && nl != n) {
      rc = sn_error(SN_ERR_FORMAT, "CSVIter: data.csv '%s' has %lld lines but label.csv '%s' has %lld", data_csv,
                    (long long)n, label_csv, (long long)nl);
      sn_io_field_free(&label);
    }
  } else {
    rc = sn_io_field_alloc(&label, label_shape, n);
    if (rc == SN_OK) memset(label.base, 0, label.bytes);
  }
  if (rc != SN_OK) {
    sn_io_field_free(&data);
    return rc;
  }
  rc = sn_io_iter_new(&data, &label, n, batch_size, pad, out);
  if (rc != SN_OK) {
    sn_io_field_free(&data);
    sn_io_field_free(&label);
    return rc;
  }
  sn_io_iter_squeeze_label(*out);
  return SN_OK;
}
