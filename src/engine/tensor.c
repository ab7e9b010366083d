/* Tensors, storage and host memory.  See tensor.h. */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"

static int64_t sn_host_live;

/* ---- dtypes ---- */
size_t sn_dtype_size(sn_dtype t) {
  switch (t) {
  case SN_F32: case SN_I32: return 4;
  case SN_F64: case SN_I64: return 8;
  case SN_F16: return 2;
  case SN_U8: case SN_I8: return 1;
  default: return 0;
  }
}

static const char *const sn_dtype_names[] = {"float32", "float64", "float16", "uint8",
                                             "int32",   "int8",    "int64"};

const char *sn_dtype_name(sn_dtype t) {
  return (t >= SN_F32 && t <= SN_I64) ? sn_dtype_names[t] : "unknown";
}

int sn_dtype_from_name(const char *name, sn_dtype *out) {
  for (int i = 0; i <= SN_I64; i++)
    if (strcmp(name, sn_dtype_names[i]) == 0) {
      *out = (sn_dtype)i;
      return SN_OK;
    }
  return sn_error(SN_ERR_ARG, "unknown dtype '%s' (use float32, float64, float16, uint8, int32, int8 or int64)", name);
}

/* ---- shapes ---- */
sn_shape sn_shape_make(int ndim, const int64_t *dim) {
  sn_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = ndim;
  for (int i = 0; i < ndim && i < SN_MAX_DIMS; i++) s.dim[i] = dim[i];
  return s;
}

sn_shape sn_shape_unknown(void) {
  sn_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = -1;
  return s;
}

int sn_shape_known(const sn_shape *s) {
  if (s->ndim < 0) return 0;
  for (int i = 0; i < s->ndim; i++)
    if (s->dim[i] <= 0) return 0;
  return 1;
}

int sn_shape_equal(const sn_shape *a, const sn_shape *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->dim[i] != b->dim[i]) return 0;
  return 1;
}

int sn_mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return sn_error(SN_ERR_OVERFLOW, "size overflow (%zu x %zu)", a, b);
  *out = a * b;
  return SN_OK;
}

int sn_add_size(size_t a, size_t b, size_t *out) {
  if (b > SIZE_MAX - a) return sn_error(SN_ERR_OVERFLOW, "size overflow (%zu + %zu)", a, b);
  *out = a + b;
  return SN_OK;
}

int sn_shape_size(const sn_shape *s, int64_t *out) {
  int64_t n = 1;
  if (s->ndim < 0 || s->ndim > SN_MAX_DIMS) return sn_error(SN_ERR_SHAPE, "shape is unknown");
  for (int i = 0; i < s->ndim; i++) {
    int64_t d = s->dim[i];
    if (d < 0) return sn_error(SN_ERR_SHAPE, "negative dimension %lld", (long long)d);
    if (d != 0 && n > INT64_MAX / d) {
      char buf[160];
      return sn_error(SN_ERR_OVERFLOW, "shape %s has too many elements", sn_shape_str(s, buf, sizeof buf));
    }
    n *= d;
  }
  *out = n;
  return SN_OK;
}

int sn_shape_bytes(const sn_shape *s, sn_dtype t, size_t *out) {
  int64_t n;
  size_t es = sn_dtype_size(t);
  if (es == 0) return sn_error(SN_ERR_TYPE, "unknown dtype %d", (int)t);
  SN_TRY(sn_shape_size(s, &n));
  if ((uint64_t)n > SIZE_MAX) return sn_error(SN_ERR_OVERFLOW, "tensor too large");
  return sn_mul_size((size_t)n, es, out);
}

const char *sn_shape_str(const sn_shape *s, char *buf, size_t n) {
  size_t len = 0;
  if (n == 0) return buf;
  buf[0] = '\0';
  if (s->ndim < 0) {
    snprintf(buf, n, "?");
    return buf;
  }
  len += (size_t)snprintf(buf + len, n - len, "(");
  for (int i = 0; i < s->ndim && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, i ? ", %lld" : "%lld", (long long)s->dim[i]);
  if (len < n) snprintf(buf + len, n - len, s->ndim == 1 ? ",)" : ")");
  return buf;
}

/* ---- devices ---- */
sn_device sn_cpu(void) {
  sn_device d = {SN_DEV_CPU, 0};
  return d;
}

int sn_device_equal(sn_device a, sn_device b) { return a.type == b.type && a.id == b.id; }

/* ---- host memory ---- */
void *sn_host_alloc(size_t bytes) {
  void *p = NULL;
  size_t rounded = (bytes + 63) & ~(size_t)63;
  if (rounded < bytes) return NULL;
  if (rounded == 0) rounded = 64;
  if (posix_memalign(&p, 64, rounded) != 0) return NULL;
  __atomic_add_fetch(&sn_host_live, (int64_t)bytes, __ATOMIC_RELAXED);
  return p;
}

void sn_host_free(void *p, size_t bytes) {
  if (!p) return;
  __atomic_sub_fetch(&sn_host_live, (int64_t)bytes, __ATOMIC_RELAXED);
  free(p);
}

int64_t sn_host_live_bytes(void) { return __atomic_load_n(&sn_host_live, __ATOMIC_RELAXED); }

/* ---- storage ---- */
int sn_storage_new(size_t bytes, sn_device dev, sn_storage **out) {
  sn_storage *st = calloc(1, sizeof *st);
  if (!st) return sn_error(SN_ERR_OOM, "out of memory");
  st->refcount = 1;
  st->bytes = bytes;
  st->dev = dev;
  st->owns = 1;
  if (dev.type == SN_DEV_CPU) {
    st->data = sn_host_alloc(bytes);
    if (!st->data) {
      free(st);
      return sn_error(SN_ERR_OOM, "cannot allocate %zu bytes of host memory", bytes);
    }
  } else {
    int rc = sn_device_check(dev);
    if (rc == SN_OK) rc = sn_gpu()->alloc(dev.id, bytes ? bytes : 1, &st->data);
    if (rc != SN_OK) {
      free(st);
      return rc;
    }
  }
  *out = st;
  return SN_OK;
}

int sn_storage_wrap(void *data, size_t bytes, sn_device dev, sn_storage **out) {
  sn_storage *st = calloc(1, sizeof *st);
  if (!st) return sn_error(SN_ERR_OOM, "out of memory");
  st->refcount = 1;
  st->data = data;
  st->bytes = bytes;
  st->dev = dev;
  st->owns = 0;
  *out = st;
  return SN_OK;
}

void sn_storage_retain(sn_storage *st) {
  if (st) __atomic_add_fetch(&st->refcount, 1, __ATOMIC_RELAXED);
}

void sn_storage_release(sn_storage *st) {
  if (!st) return;
  if (__atomic_sub_fetch(&st->refcount, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (st->owns) {
    if (st->dev.type == SN_DEV_CPU)
      sn_host_free(st->data, st->bytes);
    else if (sn_gpu())
      sn_gpu()->free(st->dev.id, st->data, st->bytes ? st->bytes : 1);
  }
  free(st);
}

/* ---- tensors ---- */
int sn_tensor_alloc(sn_tensor *t, sn_dtype dtype, const sn_shape *shape, sn_device dev) {
  size_t bytes;
  memset(t, 0, sizeof *t);
  if (shape->ndim < 0 || shape->ndim > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "cannot allocate a tensor of unknown shape");
  SN_TRY(sn_shape_bytes(shape, dtype, &bytes));
  SN_TRY(sn_storage_new(bytes, dev, &t->st));
  t->dtype = dtype;
  t->shape = *shape;
  t->offset = 0;
  return SN_OK;
}

int sn_tensor_zeros(sn_tensor *t, sn_dtype dtype, const sn_shape *shape, sn_device dev) {
  SN_TRY(sn_tensor_alloc(t, dtype, shape, dev));
  if (dev.type == SN_DEV_CPU) {
    memset(sn_tensor_data(t), 0, t->st->bytes);
    return SN_OK;
  }
  int rc = sn_gpu()->memset0(dev.id, sn_tensor_data(t), t->st->bytes);
  if (rc != SN_OK) sn_tensor_release(t);
  return rc;
}

void sn_tensor_view(sn_tensor *dst, const sn_tensor *src) {
  *dst = *src;
  sn_storage_retain(dst->st);
}

void sn_tensor_release(sn_tensor *t) {
  if (!t) return;
  sn_storage_release(t->st);
  memset(t, 0, sizeof *t);
  t->shape.ndim = -1;
}

void *sn_tensor_data(const sn_tensor *t) {
  return t->st ? (char *)t->st->data + t->offset : NULL;
}

int64_t sn_tensor_size(const sn_tensor *t) {
  int64_t n = 0;
  if (sn_shape_size(&t->shape, &n) != SN_OK) return 0;
  return n;
}

size_t sn_tensor_bytes(const sn_tensor *t) {
  return (size_t)sn_tensor_size(t) * sn_dtype_size(t->dtype);
}

sn_device sn_tensor_device(const sn_tensor *t) { return t->st ? t->st->dev : sn_cpu(); }

/* dtype conversion on the host, element by element. */
static double sn_load_as_double(const void *p, sn_dtype t, int64_t i) {
  switch (t) {
  case SN_F32: return ((const float *)p)[i];
  case SN_F64: return ((const double *)p)[i];
  case SN_U8: return ((const uint8_t *)p)[i];
  case SN_I8: return ((const int8_t *)p)[i];
  case SN_I32: return ((const int32_t *)p)[i];
  case SN_I64: return (double)((const int64_t *)p)[i];
  default: return 0;
  }
}

static void sn_store_double(void *p, sn_dtype t, int64_t i, double v) {
  switch (t) {
  case SN_F32: ((float *)p)[i] = (float)v; break;
  case SN_F64: ((double *)p)[i] = v; break;
  case SN_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case SN_I8: ((int8_t *)p)[i] = (int8_t)v; break;
  case SN_I32: ((int32_t *)p)[i] = (int32_t)v; break;
  case SN_I64: ((int64_t *)p)[i] = (int64_t)v; break;
  default: break;
  }
}

static int sn_copy_kind(sn_device dst, sn_device src) {
  if (dst.type == SN_DEV_GPU && src.type == SN_DEV_CPU) return 0;
  if (dst.type == SN_DEV_CPU && src.type == SN_DEV_GPU) return 1;
  return 2;
}

int sn_tensor_copy(sn_tensor *dst, const sn_tensor *src) {
  int64_t n = sn_tensor_size(src);
  sn_device dd = sn_tensor_device(dst), sd = sn_tensor_device(src);
  if (n != sn_tensor_size(dst)) {
    char a[160], b[160];
    return sn_error(SN_ERR_SHAPE, "cannot copy %s into %s: sizes differ",
                    sn_shape_str(&src->shape, a, sizeof a), sn_shape_str(&dst->shape, b, sizeof b));
  }
  if (n == 0) return SN_OK;
  if (dst->dtype == src->dtype) {
    size_t bytes = sn_tensor_bytes(src);
    if (dd.type == SN_DEV_CPU && sd.type == SN_DEV_CPU) {
      if (sn_tensor_data(dst) != sn_tensor_data(src))
        memmove(sn_tensor_data(dst), sn_tensor_data(src), bytes);
      return SN_OK;
    }
    SN_TRY(sn_device_check(dd));
    SN_TRY(sn_device_check(sd));
    return sn_gpu()->copy(sn_tensor_data(dst), dd.id, sn_tensor_data(src), sd.id, bytes,
                          sn_copy_kind(dd, sd));
  }
  if (dd.type != SN_DEV_CPU || sd.type != SN_DEV_CPU)
    return sn_error(SN_ERR_UNSUPPORTED, "dtype conversion (%s to %s) is done on the CPU only",
                    sn_dtype_name(src->dtype), sn_dtype_name(dst->dtype));
  if (sn_dtype_size(src->dtype) == 0 || sn_dtype_size(dst->dtype) == 0 || src->dtype == SN_F16 ||
      dst->dtype == SN_F16)
    return sn_error(SN_ERR_TYPE, "cannot convert %s to %s", sn_dtype_name(src->dtype),
                    sn_dtype_name(dst->dtype));
  {
    const void *s = sn_tensor_data(src);
    void *d = sn_tensor_data(dst);
    for (int64_t i = 0; i < n; i++) sn_store_double(d, dst->dtype, i, sn_load_as_double(s, src->dtype, i));
  }
  return SN_OK;
}

int sn_tensor_clone(sn_tensor *dst, const sn_tensor *src, sn_dtype dtype, sn_device dev) {
  SN_TRY(sn_tensor_alloc(dst, dtype, &src->shape, dev));
  int rc = sn_tensor_copy(dst, src);
  if (rc != SN_OK) sn_tensor_release(dst);
  return rc;
}

int sn_tensor_fill(sn_tensor *t, double value) {
  int64_t n = sn_tensor_size(t);
  sn_device dev = sn_tensor_device(t);
  if (dev.type != SN_DEV_CPU) {
    /* Fill on the host and copy: fills are rare (initialisation). */
    sn_tensor tmp;
    SN_TRY(sn_tensor_alloc(&tmp, t->dtype, &t->shape, sn_cpu()));
    int rc = sn_tensor_fill(&tmp, value);
    if (rc == SN_OK) rc = sn_tensor_copy(t, &tmp);
    sn_tensor_release(&tmp);
    return rc;
  }
  if (sn_dtype_size(t->dtype) == 0 || t->dtype == SN_F16)
    return sn_error(SN_ERR_TYPE, "cannot fill a %s tensor", sn_dtype_name(t->dtype));
  void *d = sn_tensor_data(t);
  if (value == 0) {
    memset(d, 0, sn_tensor_bytes(t));
    return SN_OK;
  }
  if (t->dtype == SN_F32) {
    float *f = d, v = (float)value;
    for (int64_t i = 0; i < n; i++) f[i] = v;
  } else {
    for (int64_t i = 0; i < n; i++) sn_store_double(d, t->dtype, i, value);
  }
  return SN_OK;
}
