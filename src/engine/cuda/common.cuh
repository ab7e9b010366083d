// Shared declarations of the CUDA module (symnet_cuda.so).
//
// The module is C++/CUDA and must not include R headers.  It reaches the host
// (the engine in symnet.so) only through the sn_host_api it receives in
// symnet_cuda_init: symnet.so is loaded by R with local symbols, so engine
// functions such as sn_tensor_data cannot be called from here — use the
// inline helpers below instead.  Errors are reported with snc::host->error
// (which sets the engine's per-thread message) and returned as status codes;
// no C++ exception may leave a function the host calls.
//
// All work for device d runs on one stream, snc::stream(d): kernels, copies
// and memsets are ordered on it, which is what lets the caching allocator hand
// a freed block to the next request without waiting.
#ifndef SN_CUDA_COMMON_CUH
#define SN_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#ifdef SN_HAVE_CUDNN
#include <cudnn.h>
#endif

extern "C" {
#include "device.h"
#include "error.h"
#include "op.h"
#include "tensor.h"
}

#define SNC_EXPORT extern "C" __attribute__((visibility("default")))

namespace snc {

// Set once by symnet_cuda_init.
extern const sn_host_api *host;

// Reports a CUDA runtime error as SN_ERR_DEVICE (SN_ERR_OOM for
// cudaErrorMemoryAllocation): "<what> failed on gpu(<dev>): <text> (<name>)".
int cuda_error(cudaError_t e, int dev, const char *what);
int cublas_error(cublasStatus_t s, int dev, const char *what);

#define SNC_CHECK(expr, dev, what)                              \
  do {                                                          \
    cudaError_t snc_e_ = (expr);                                \
    if (snc_e_ != cudaSuccess) return snc::cuda_error(snc_e_, (dev), (what)); \
  } while (0)

// Number of devices seen at init.
int num_devices();
// Checks dev and makes it current for the calling thread.
int set_device(int dev);
// The device's stream (created on first use, non-blocking).
int stream(int dev, cudaStream_t *out);
// Library handles bound to the device's stream (created on first use).
int cublas(int dev, cublasHandle_t *out);
#ifdef SN_HAVE_CUDNN
int cudnn(int dev, cudnnHandle_t *out);
#endif

// Tensor helpers (the engine's own are not reachable from the module).
inline void *data(const sn_tensor *t) {
  return t && t->st ? (void *)((char *)t->st->data + t->offset) : nullptr;
}
template <typename T> inline T *ptr(const sn_tensor *t) { return (T *)data(t); }
inline int64_t size(const sn_tensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->shape.ndim; i++) n *= t->shape.dim[i];
  return n;
}

// Small host helpers for the kernel families' checks and messages (both
// kernels.cuh and nn_common.cuh take them from here).
inline const char *op_name(const sn_call *c) {
  return c && c->p && c->p->op && c->p->op->name ? c->p->op->name : "op";
}

inline size_t dtype_size(sn_dtype t) {
  switch (t) {
    case SN_F32: return 4;
    case SN_F64: return 8;
    case SN_F16: return 2;
    case SN_U8: return 1;
    case SN_I32: return 4;
    case SN_I8: return 1;
    case SN_I64: return 8;
    default: return 0;
  }
}

inline const char *dtype_name(sn_dtype t) {
  switch (t) {
    case SN_F32: return "float32";
    case SN_F64: return "float64";
    case SN_F16: return "float16";
    case SN_U8: return "uint8";
    case SN_I32: return "int32";
    case SN_I8: return "int8";
    case SN_I64: return "int64";
    default: return "unknown";
  }
}

inline int64_t nelem(const sn_tensor *t) { return size(t); }
inline size_t nbytes(const sn_tensor *t) { return (size_t)size(t) * dtype_size(t->dtype); }

// "(2, 3, 4)" for messages.
inline const char *shape_str(const sn_shape *s, char *buf, size_t n) {
  size_t k = 0;
  if (n == 0) return buf;
  buf[0] = 0;
  if (s->ndim < 0) {
    snprintf(buf, n, "?");
    return buf;
  }
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < s->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s->dim[i]);
  if (k < n) snprintf(buf + k, n - k, s->ndim == 1 ? ",)" : ")");
  return buf;
}

// Runs the body (the remaining arguments) with T typedef'd to the C type of
// a floating dtype; other dtypes return SN_ERR_TYPE, naming the op.
#define SNC_FLOAT_SWITCH(dt, c, T, ...)                                                    \
  switch (dt) {                                                                            \
    case SN_F32: {                                                                         \
      typedef float T;                                                                     \
      __VA_ARGS__;                                                                         \
      break;                                                                               \
    }                                                                                      \
    case SN_F64: {                                                                         \
      typedef double T;                                                                    \
      __VA_ARGS__;                                                                         \
      break;                                                                               \
    }                                                                                      \
    default:                                                                               \
      return snc::host->error(SN_ERR_TYPE,                                                 \
                              "%s: dtype %s is not supported (float32 and float64 are)",   \
                              snc::op_name(c), snc::dtype_name(dt));                       \
  }

// ---- caching allocator (allocator.cu) ----
int alloc_init(int ndev);
int dev_alloc(int dev, size_t bytes, void **out);
int dev_free(int dev, void *p, size_t bytes);
int64_t dev_live_bytes(int dev);
int64_t dev_cached_bytes(int dev);
int dev_release_cached(int dev);
// "live 1.2 MiB, cached 3.0 MiB" style summary for messages.
void format_bytes(double bytes, char *buf, size_t n);

// ---- GPU kernels of the op families ----
// Each engine/cuda/<family>.cu defines
//   int register_<family>(const sn_host_api *h);
// calling h->register_kernels("OpName", forward, backward) per op, and is
// listed in module.cu (kFamilies).
typedef int (*register_fn)(const sn_host_api *h);

}  // namespace snc

#endif
