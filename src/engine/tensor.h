/* Tensors: dtype, C-order shape, device, refcounted storage and an offset.
 *
 * A tensor is a small value struct; the data lives in an sn_storage block
 * that is reference counted, so views (executor arena slices, R handles that
 * alias executor arrays) share it.  Shapes are C order (row-major, last
 * dimension fastest); R's dim is the reverse.  A dimension of 0 means
 * "unknown" during shape inference (MXNet's legacy convention) and ndim -1
 * means the whole shape is unknown. */
#ifndef SN_TENSOR_H
#define SN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SN_MAX_DIMS 8

/* The values are MXNet's type flags, so they go straight into .params files. */
typedef enum {
  SN_F32 = 0,
  SN_F64 = 1,
  SN_F16 = 2,
  SN_U8 = 3,
  SN_I32 = 4,
  SN_I8 = 5,
  SN_I64 = 6,
  SN_DTYPE_UNKNOWN = -1
} sn_dtype;

/* MXNet's device type codes: 1 cpu, 2 gpu. */
enum { SN_DEV_CPU = 1, SN_DEV_GPU = 2 };

typedef struct {
  int type;
  int id;
} sn_device;

typedef struct {
  int ndim; /* -1 unknown */
  int64_t dim[SN_MAX_DIMS];
} sn_shape;

typedef struct sn_storage {
  int refcount; /* atomic updates */
  void *data;
  size_t bytes;
  sn_device dev;
  int owns; /* 0: data belongs to someone else (never freed here) */
} sn_storage;

typedef struct {
  sn_dtype dtype;
  sn_shape shape;
  sn_storage *st; /* NULL for an empty tensor */
  size_t offset;  /* in bytes */
} sn_tensor;

/* ---- dtypes ---- */
size_t sn_dtype_size(sn_dtype t); /* 0 for unknown */
const char *sn_dtype_name(sn_dtype t);
int sn_dtype_from_name(const char *name, sn_dtype *out);

/* ---- shapes ---- */
sn_shape sn_shape_make(int ndim, const int64_t *dim);
sn_shape sn_shape_unknown(void);
int sn_shape_known(const sn_shape *s); /* ndim >= 0 and no zero dims */
int sn_shape_equal(const sn_shape *a, const sn_shape *b);
/* Product of dims with overflow check (SN_ERR_OVERFLOW). Empty shape: 1. */
int sn_shape_size(const sn_shape *s, int64_t *out);
/* Bytes = size * dtype size with overflow check. */
int sn_shape_bytes(const sn_shape *s, sn_dtype t, size_t *out);
/* "(2, 3, 4)" into buf. Unknown dims print as 0, unknown shape as "?". */
const char *sn_shape_str(const sn_shape *s, char *buf, size_t n);
/* Overflow-checked size arithmetic helpers. */
int sn_mul_size(size_t a, size_t b, size_t *out);
int sn_add_size(size_t a, size_t b, size_t *out);

/* ---- devices ---- */
sn_device sn_cpu(void);
int sn_device_equal(sn_device a, sn_device b);

/* ---- storage ---- */
int sn_storage_new(size_t bytes, sn_device dev, sn_storage **out);
/* Wraps foreign memory without taking ownership. */
int sn_storage_wrap(void *data, size_t bytes, sn_device dev, sn_storage **out);
void sn_storage_retain(sn_storage *st);
void sn_storage_release(sn_storage *st);

/* ---- tensors ---- */
/* Allocates fresh storage (uninitialised). */
int sn_tensor_alloc(sn_tensor *t, sn_dtype dtype, const sn_shape *shape, sn_device dev);
/* Same, then zero fill. */
int sn_tensor_zeros(sn_tensor *t, sn_dtype dtype, const sn_shape *shape, sn_device dev);
/* A view sharing src's storage (retains). */
void sn_tensor_view(sn_tensor *dst, const sn_tensor *src);
/* Releases the storage reference and clears the struct. Safe on empty. */
void sn_tensor_release(sn_tensor *t);
void *sn_tensor_data(const sn_tensor *t);
int64_t sn_tensor_size(const sn_tensor *t); /* shape checked at creation */
size_t sn_tensor_bytes(const sn_tensor *t);
sn_device sn_tensor_device(const sn_tensor *t);
/* Copies values between tensors of equal size (any devices, same dtype,
 * or a dtype conversion on the CPU). */
int sn_tensor_copy(sn_tensor *dst, const sn_tensor *src);
/* Converts/copies into a new tensor of dtype on dev. */
int sn_tensor_clone(sn_tensor *dst, const sn_tensor *src, sn_dtype dtype, sn_device dev);
int sn_tensor_fill(sn_tensor *t, double value);

/* ---- host memory: 64-byte aligned, counted ---- */
void *sn_host_alloc(size_t bytes);
void sn_host_free(void *p, size_t bytes);
/* Live bytes per device type: index 0 host, 1.. gpu ids (see device.h). */
int64_t sn_host_live_bytes(void);

#endif
