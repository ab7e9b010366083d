// Private helpers of the GPU kernels of the neural-network op families
// (nn_dense.cu, nn_conv.cu, nn_pool.cu, nn_act.cu, nn_loss.cu, nn_bn.cu,
// nn_lrn.cu): parameter lookup by name, dtype dispatch, launch helpers,
// temporary device memory, and a deterministic per-channel reduction.
//
// Rules (common.cuh): every launch goes on snc::stream(dev); no host
// synchronisation and no cudaMalloc per call, so that a pass can be captured
// in a CUDA graph.  Temporary memory comes from the call's workspace (c->ws)
// when it is large enough, otherwise from the module's caching allocator
// (freed right after the launches: the allocator's blocks are stream
// ordered).  While the stream is being captured the fallback is refused with
// a clear error, because a block handed back to the cache would be reused
// while the graph still points at it; the executor then has to size the
// workspace for the GPU (see the nn_* files for what each op needs).
//
// Reductions are deterministic: fixed block shapes, fixed split points and a
// fixed combination order, no atomics.  Sums are accumulated in double as the
// CPU kernels do.
#ifndef SN_CUDA_NN_COMMON_CUH
#define SN_CUDA_NN_COMMON_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

namespace snn {

using snc::host;

#define SNN_BLOCK 256

// ---------------------------------------------------------------------------
// Host-side helpers
// ---------------------------------------------------------------------------

using snc::dtype_name;
using snc::dtype_size;
using snc::nbytes;
using snc::nelem;
using snc::op_name;
using snc::shape_str;
using snc::begin;
using snc::capturing;
using snc::check_launch;
using snc::copy_async;
using snc::param;
using snc::zero_async;
using snc::zero_tensor;

// Reading an environment switch once: "1", "true", "TRUE", "yes" are on.
inline bool env_on(const char *name, bool dflt) {
  const char *e = getenv(name);
  if (!e || !*e) return dflt;
  return !strcmp(e, "1") || !strcmp(e, "true") || !strcmp(e, "TRUE") || !strcmp(e, "yes") ||
         !strcmp(e, "on");
}

// SYMNET_TF32=1 lets cuBLAS and cuDNN use TF32 tensor cores for float32
// (off by default: float32 results then agree with the CPU to ~1e-6).
inline bool tf32_enabled() {
  static const bool on = env_on("SYMNET_TF32", false);
  return on;
}

// ---- errors ----

#ifdef SN_HAVE_CUDNN
inline int cudnn_error(cudnnStatus_t s, int dev, const char *what) {
  int status = s == CUDNN_STATUS_ALLOC_FAILED ? SN_ERR_OOM
               : (s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_ARCH_MISMATCH)
                   ? SN_ERR_UNSUPPORTED
                   : SN_ERR_DEVICE;
  return host->error(status, "%s failed on gpu(%d): %s (cuDNN status %d)", what, dev,
                     cudnnGetErrorString(s), (int)s);
}
#define SNN_CUDNN(expr, dev, what)                                                 \
  do {                                                                             \
    cudnnStatus_t snn_s_ = (expr);                                                 \
    if (snn_s_ != CUDNN_STATUS_SUCCESS) return snn::cudnn_error(snn_s_, (dev), (what)); \
  } while (0)
#endif

#define SNN_CUBLAS(expr, dev, what)                                                \
  do {                                                                             \
    cublasStatus_t snn_b_ = (expr);                                                \
    if (snn_b_ != CUBLAS_STATUS_SUCCESS) return snc::cublas_error(snn_b_, (dev), (what)); \
  } while (0)

// ---- parameters, looked up by name in the op's schema (snc::param) ----

inline int missing_param(const sn_call *c, const char *name) {
  return host->error(SN_ERR_INTERNAL, "%s (GPU): the op has no parameter '%s'", op_name(c), name);
}

inline int p_int(const sn_call *c, const char *name, int64_t *out) {
  const sn_pval *v = param(c, name);
  if (!v) return missing_param(c, name);
  *out = v->i;
  return SN_OK;
}
inline int p_bool(const sn_call *c, const char *name, bool *out) {
  const sn_pval *v = param(c, name);
  if (!v) return missing_param(c, name);
  *out = v->i != 0;
  return SN_OK;
}
inline int p_float(const sn_call *c, const char *name, double *out) {
  const sn_pval *v = param(c, name);
  if (!v) return missing_param(c, name);
  *out = v->f;
  return SN_OK;
}
// OPT_* values: *set is 0 for None.
inline int p_opt_float(const sn_call *c, const char *name, bool *set, double *out) {
  const sn_pval *v = param(c, name);
  if (!v) return missing_param(c, name);
  *set = v->set != 0;
  *out = v->f;
  return SN_OK;
}
inline int p_opt_int(const sn_call *c, const char *name, bool *set, int64_t *out) {
  const sn_pval *v = param(c, name);
  if (!v) return missing_param(c, name);
  *set = v->set != 0;
  *out = v->i;
  return SN_OK;
}
inline int p_shape(const sn_call *c, const char *name, sn_shape *out) {
  const sn_pval *v = param(c, name);
  if (!v) return missing_param(c, name);
  *out = v->s;
  return SN_OK;
}

// An ENUM parameter as the index of its choice name in `names` (n of them):
// the engine's value is the index into the schema's "a|b|c" list, mapped
// here by name.
inline int p_enum(const sn_call *c, const char *name, const char *const *names, int n, int *out) {
  const sn_param_spec *spec = nullptr;
  const sn_pval *v = param(c, name, &spec);
  if (!v || !spec) return missing_param(c, name);
  const char *ch = spec->choices ? spec->choices : "";
  int64_t idx = v->i;
  // the idx-th '|'-separated word
  const char *s = ch;
  for (int64_t k = 0; k < idx && s; k++) {
    s = strchr(s, '|');
    if (s) s++;
  }
  if (!s || idx < 0)
    return host->error(SN_ERR_INTERNAL, "%s (GPU): parameter '%s' has value %lld outside '%s'",
                       op_name(c), name, (long long)idx, ch);
  size_t len = strcspn(s, "|");
  for (int k = 0; k < n; k++)
    if (strlen(names[k]) == len && strncmp(names[k], s, len) == 0) {
      *out = k;
      return SN_OK;
    }
  return host->error(SN_ERR_UNSUPPORTED, "%s (GPU): %s = '%.*s' has no GPU kernel", op_name(c),
                     name, (int)len, s);
}

// ---- launching (begin, check_launch, capturing, copies: common.cuh) ----

inline unsigned grid_for(int64_t n, int block = SNN_BLOCK) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 16384) g = 16384;  // grid-stride loops cover the rest
  return (unsigned)g;
}

// Multiprocessor count of a device (cached).
inline int sm_count(int dev) {
  static int cache[64];
  if (dev < 0 || dev >= 64) return 108;
  int v = __atomic_load_n(&cache[dev], __ATOMIC_RELAXED);
  if (v > 0) return v;
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) {
    (void)cudaGetLastError();
    n = 108;
  }
  __atomic_store_n(&cache[dev], n, __ATOMIC_RELAXED);
  return n;
}



// Requests other than NULL write (ADD only reaches ops with SN_OP_HANDLES_ADD).
inline bool wants(const sn_call *c, int k) { return c->req && c->req[k] != SN_REQ_NULL; }

// Float dispatch: SNC_FLOAT_SWITCH (common.cuh).

#define SNN_LOOP(i, n)                                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);    \
       i += (int64_t)blockDim.x * gridDim.x)

// ---------------------------------------------------------------------------
// Temporary device memory
// ---------------------------------------------------------------------------

struct Scratch {
  void *ptr = nullptr;
  size_t bytes = 0;
  int dev = -1;
  bool owned = false;
  Scratch() {}
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;
  ~Scratch() { release(); }
  void release() {
    if (owned && ptr) snc::dev_free(dev, ptr, bytes);
    owned = false;
    ptr = nullptr;
    bytes = 0;
  }
};

// bytes of temporary memory for the call: c->ws when large enough, else a
// block of the caching allocator (released with the Scratch, after the
// launches were queued).  Refused while the stream is captured.
inline int scratch_get(const sn_call *c, cudaStream_t s, size_t bytes, Scratch *sc) {
  sc->release();
  if (bytes == 0) return SN_OK;
  if (c->ws && c->ws_bytes >= bytes) {
    sc->ptr = c->ws;
    sc->bytes = bytes;
    sc->dev = c->dev.id;
    sc->owned = false;
    return SN_OK;
  }
  if (capturing(s)) {
    char a[32], b[32];
    snc::format_bytes((double)bytes, a, sizeof a);
    snc::format_bytes((double)c->ws_bytes, b, sizeof b);
    return host->error(SN_ERR_UNSUPPORTED,
                       "%s: needs %s of GPU workspace but the call's workspace has %s; temporary "
                       "memory cannot be allocated while a CUDA graph is captured",
                       op_name(c), a, b);
  }
  void *p = nullptr;
  SN_TRY(snc::dev_alloc(c->dev.id, bytes, &p));
  sc->ptr = p;
  sc->bytes = bytes;
  sc->dev = c->dev.id;
  sc->owned = true;
  return SN_OK;
}

// Carves consecutive 256-byte aligned pieces out of one block.
struct Carver {
  size_t off = 0;
  bool overflow = false;
  // Adds a piece of n bytes and returns its offset.
  size_t add(size_t n) {
    size_t o = (off + 255) / 256 * 256;
    if (o < off || o + n < o) overflow = true;
    off = o + n;
    return o;
  }
};

inline int sizes_overflow(const sn_call *c) {
  return host->error(SN_ERR_OVERFLOW, "%s: GPU workspace size overflows", op_name(c));
}

// ---------------------------------------------------------------------------
// Device math in the precision of T (float kernels use float functions, as
// the CPU kernels do)
// ---------------------------------------------------------------------------

__device__ __forceinline__ float d_exp(float x) { return expf(x); }
__device__ __forceinline__ double d_exp(double x) { return exp(x); }
__device__ __forceinline__ float d_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double d_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float d_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double d_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float d_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double d_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float d_erf(float x) { return erff(x); }
__device__ __forceinline__ double d_erf(double x) { return erf(x); }
__device__ __forceinline__ float d_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double d_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float d_cbrt(float x) { return cbrtf(x); }
__device__ __forceinline__ double d_cbrt(double x) { return cbrt(x); }
__device__ __forceinline__ float d_pow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double d_pow(double a, double b) { return pow(a, b); }

// exp of a double argument computed in the precision of T, returned as
// double: the CPU's EXPT(T, v).
template <typename T>
__device__ __forceinline__ double exp_in(double v);
template <>
__device__ __forceinline__ double exp_in<float>(double v) {
  return (double)expf((float)v);
}
template <>
__device__ __forceinline__ double exp_in<double>(double v) {
  return exp(v);
}

template <typename T>
struct Lowest;
template <>
struct Lowest<float> {
  __device__ __forceinline__ static float v() { return -FLT_MAX; }
};
template <>
struct Lowest<double> {
  __device__ __forceinline__ static double v() { return -DBL_MAX; }
};

// ---------------------------------------------------------------------------
// Block reductions over pairs of doubles (fixed order)
// ---------------------------------------------------------------------------

struct D2 {
  double a, b;
};

__device__ __forceinline__ D2 d2_add(D2 x, D2 y) { return D2{x.a + y.a, x.b + y.b}; }

__device__ __forceinline__ D2 warp_sum_d2(D2 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    v.a += __shfl_down_sync(0xffffffffu, v.a, o);
    v.b += __shfl_down_sync(0xffffffffu, v.b, o);
  }
  return v;
}

// Sum over the block; the result is valid in thread 0.  sh: 32 entries.
__device__ __forceinline__ D2 block_sum_d2(D2 v, D2 *sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum_d2(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nw = (blockDim.x + 31) >> 5;
    v = lane < nw ? sh[lane] : D2{0.0, 0.0};
    v = warp_sum_d2(v);
  }
  __syncthreads();
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // every lane holds the sum
}

// NaN never wins (the CPU's `if (v > mx) mx = v`).
__device__ __forceinline__ double warp_max(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    double w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Block-wide sum / max broadcast to every thread.  sh: 33 doubles.
__device__ __forceinline__ double block_sum_all(double v, double *sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nw = (blockDim.x + 31) >> 5;
    double w = lane < nw ? sh[lane] : 0.0;
    w = warp_sum(w);
    if (lane == 0) sh[32] = w;
  }
  __syncthreads();
  v = sh[32];
  __syncthreads();
  return v;
}

__device__ __forceinline__ double block_max_all(double v, double *sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nw = (blockDim.x + 31) >> 5;
    double w = lane < nw ? sh[lane] : -INFINITY;
    w = warp_max(w);
    if (lane == 0) sh[32] = w;
  }
  __syncthreads();
  v = sh[32];
  __syncthreads();
  return v;
}

// ---------------------------------------------------------------------------
// Per-channel reduction of an (outer, C, inner) array
//
// For every channel c, sums F(c, e) (a D2) over the elements
// e = (o * C + c) * inner + j, o < outer, j < inner, then calls
// S(c, sum) once.  Deterministic: fixed split points and combination order.
//   inner == 1: column tiles (32 channels x 8 row groups per block);
//   otherwise:  block (c, split); with several splits the partial sums go to
//               scratch and a second kernel combines them in order.
// F: __device__ D2 operator()(int64_t c, int64_t e) const
// S: __device__ void operator()(int64_t c, D2 sum) const
// ---------------------------------------------------------------------------

template <typename F, typename S>
__global__ void chan_cols_kernel(int64_t outer, int64_t C, F f, S store) {
  __shared__ D2 sh[8][33];
  const int64_t ntile = (C + 31) / 32;
  for (int64_t t = blockIdx.x; t < ntile; t += gridDim.x) {
    const int64_t c = t * 32 + threadIdx.x;
    D2 acc{0.0, 0.0};
    if (c < C)
      for (int64_t o = threadIdx.y; o < outer; o += blockDim.y) acc = d2_add(acc, f(c, o * C + c));
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
      D2 a = sh[0][threadIdx.x];
      for (int y = 1; y < (int)blockDim.y; y++) a = d2_add(a, sh[y][threadIdx.x]);
      store(c, a);
    }
    __syncthreads();
  }
}

// Block (c, s) sums the elements t in [s * per / nsplit, (s + 1) * per / nsplit)
// of channel c (t = o * inner + j).  I: index type of t.
template <typename I, typename F, typename S>
__global__ void chan_split_kernel(int64_t C, I inner, I per, int nsplit, F f, S store, D2 *part) {
  __shared__ D2 sh[32];
  const int64_t nblk = C * nsplit;
  for (int64_t b = blockIdx.x; b < nblk; b += gridDim.x) {
    const int64_t c = b / nsplit;
    const int s = (int)(b - c * nsplit);
    const I t0 = (I)((int64_t)per * s / nsplit), t1 = (I)((int64_t)per * (s + 1) / nsplit);
    D2 acc{0.0, 0.0};
    for (I t = t0 + (I)threadIdx.x; t < t1; t += (I)blockDim.x) {
      const I o = t / inner, j = t - o * inner;
      acc = d2_add(acc, f(c, ((int64_t)o * C + c) * (int64_t)inner + (int64_t)j));
    }
    acc = block_sum_d2(acc, sh);
    if (threadIdx.x == 0) {
      if (nsplit == 1)
        store(c, acc);
      else
        part[b] = acc;
    }
  }
}

template <typename S>
__global__ void chan_combine_kernel(int64_t C, int nsplit, const D2 *part, S store) {
  SNN_LOOP(c, C) {
    D2 a{0.0, 0.0};
    for (int s = 0; s < nsplit; s++) a = d2_add(a, part[c * nsplit + s]);
    store(c, a);
  }
}

// How many splits per channel (1: no scratch needed).
inline int chan_splits(int dev, int64_t outer, int64_t C, int64_t inner) {
  if (inner == 1) return 1;
  const int64_t per = outer * inner;
  const int64_t want = 4 * (int64_t)sm_count(dev);
  if (C >= want / 2 || per < 16384) return 1;
  int64_t s = (want + C - 1) / C;
  int64_t most = per / 8192;
  if (s > most) s = most;
  if (s > 256) s = 256;
  return s < 1 ? 1 : (int)s;
}

// Scratch bytes chan_reduce needs.
inline size_t chan_scratch_bytes(int dev, int64_t outer, int64_t C, int64_t inner) {
  int s = chan_splits(dev, outer, C, inner);
  return s > 1 ? (size_t)C * (size_t)s * sizeof(D2) : 0;
}

// part: scratch of chan_scratch_bytes (may be NULL when that is 0).
template <typename F, typename S>
inline int chan_reduce(const sn_call *c, cudaStream_t st, int64_t outer, int64_t C,
                       int64_t inner, const F &f, const S &store, void *part) {
  if (C <= 0) return SN_OK;
  if (inner == 1) {
    int64_t tiles = (C + 31) / 32;
    unsigned grid = (unsigned)(tiles < 65535 ? tiles : 65535);
    chan_cols_kernel<F, S><<<grid, dim3(32, 8), 0, st>>>(outer, C, f, store);
    return check_launch(c, "channel reduction");
  }
  const int ns = chan_splits(c->dev.id, outer, C, inner);
  const int64_t per = outer * inner;
  const int64_t nblk = C * ns;
  unsigned grid = (unsigned)(nblk < 65535 * 4 ? nblk : 65535 * 4);
  if (ns > 1 && !part)
    return host->error(SN_ERR_INTERNAL, "%s: channel reduction without scratch", op_name(c));
  if (per < ((int64_t)1 << 31))
    chan_split_kernel<uint32_t, F, S><<<grid, SNN_BLOCK, 0, st>>>(C, (uint32_t)inner, (uint32_t)per,
                                                                   ns, f, store, (D2 *)part);
  else
    chan_split_kernel<uint64_t, F, S><<<grid, SNN_BLOCK, 0, st>>>(C, (uint64_t)inner, (uint64_t)per,
                                                                   ns, f, store, (D2 *)part);
  SN_TRY(check_launch(c, "channel reduction"));
  if (ns > 1) {
    chan_combine_kernel<S><<<grid_for(C), SNN_BLOCK, 0, st>>>(C, ns, (const D2 *)part, store);
    SN_TRY(check_launch(c, "channel reduction (combine)"));
  }
  return SN_OK;
}

// ---- host functions shared between the nn_* files ----

// Softmax over lines of an (outer, m, inner) view (nn_act.cu): kind 0
// softmax, 1 log_softmax; negate: softmin.  len (optional): per-line length
// (any numeric dtype, truncated like the CPU).  x has dtype xdt, y ydt.
int softmax_lines(const sn_call *c, cudaStream_t s, const void *x, sn_dtype xdt, void *y,
                  sn_dtype ydt, int64_t outer, int64_t m, int64_t inner, double temp, int kind,
                  int negate, const void *len, sn_dtype ldt);

// x[n, c, s] += bias[c] over (N, C, S) (nn_dense.cu).
int add_channel_bias(const sn_call *c, cudaStream_t s, sn_dtype dt, void *x, int64_t N, int64_t C,
                     int64_t S, const void *bias);
// db[c] = sum over n and s of g[n, c, s] (nn_dense.cu); may need scratch.
int channel_bias_grad(const sn_call *c, cudaStream_t s, sn_dtype dt, const void *g, int64_t N,
                      int64_t C, int64_t S, void *db);

}  // namespace snn

#endif
