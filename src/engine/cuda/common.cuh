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
#include <string.h>
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

// ---- helpers every kernel family uses (kernels.cuh, nn_common.cuh) ----
// An op parameter by name (the engine fills p->v[i] for schema entry
// p->op->params[i]; by name, the GPU kernels do not depend on the order of
// the CPU file's schema table); *spec, when asked, gets its schema entry.
inline const sn_pval *param(const sn_call *c, const char *name, const sn_param_spec **spec = nullptr) {
  const sn_params *p = c ? c->p : nullptr;
  if (!p || !p->op || !p->op->params) return nullptr;
  for (int i = 0; i < p->op->nparams && i < p->n && i < SN_MAX_PARAMS; i++)
    if (p->op->params[i].name && strcmp(p->op->params[i].name, name) == 0) {
      if (spec) *spec = &p->op->params[i];
      return &p->v[i];
    }
  return nullptr;
}

// The device and stream of a call.
inline int begin(const sn_call *c, cudaStream_t *s) {
  if (c->dev.type != SN_DEV_GPU)
    return host->error(SN_ERR_INTERNAL, "%s: GPU kernel called for a non-GPU device", op_name(c));
  SN_TRY(snc::set_device(c->dev.id));
  return snc::stream(c->dev.id, s);
}

// Reports a failed launch (bad configuration, sticky errors).
inline int check_launch(const sn_call *c, const char *what) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s: %s kernel launch", op_name(c), what);
    return snc::cuda_error(e, c->dev.id, buf);
  }
  return SN_OK;
}

// Whether the stream is being captured into a CUDA graph.
inline bool capturing(cudaStream_t s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &st) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return st != cudaStreamCaptureStatusNone;
}

// Stream-ordered device copies and zero fills.
inline int copy_async(const sn_call *c, cudaStream_t s, void *dst, const void *src, size_t bytes) {
  if (bytes == 0 || dst == src) return SN_OK;
  SNC_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), c->dev.id,
            "GPU copy (cudaMemcpyAsync)");
  return SN_OK;
}
inline int zero_async(const sn_call *c, cudaStream_t s, void *dst, size_t bytes) {
  if (bytes == 0 || !dst) return SN_OK;
  SNC_CHECK(cudaMemsetAsync(dst, 0, bytes, s), c->dev.id, "GPU zero fill (cudaMemsetAsync)");
  return SN_OK;
}
inline int zero_tensor(const sn_call *c, cudaStream_t s, const sn_tensor *t) {
  return t && t->st ? zero_async(c, s, snc::data(t), nbytes(t)) : SN_OK;
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
