// Private helpers of the GPU op kernels (elemwise.cu, reduce.cu, indexing.cu,
// shape.cu, optimizer.cu, random.cu, sequence.cu): parameter lookup by name,
// dtype dispatch, launch helpers, grid-stride loops, collapsed strided index
// math (element-wise maps over up to SNK_MAXD dims with per-operand strides)
// and deterministic segmented reductions (block per output or column tiles).
//
// Rules the kernels follow (see common.cuh): all work goes on
// snc::stream(dev); no host synchronisation and no allocation in a kernel
// call, so an executor can capture a whole pass in a CUDA graph; errors come
// back as status codes through snc::host->error.  Index-validation passes
// (indexing.cu, sequence.cu) are the one exception: they read a flag back
// from the device, and are skipped while the stream is being captured.
#ifndef SN_CUDA_KERNELS_CUH
#define SN_CUDA_KERNELS_CUH

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common.cuh"

namespace snk {

using snc::host;

// Dims of the strided engine: tile splits every dim in two (2 * 8) and a few
// callers add one more.
#define SNK_MAXD 20
#define SNK_BLOCK 256

// ---------------------------------------------------------------------------
// Host-side small helpers
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

// C-contiguous strides (elements) of a shape.
inline void strides_of(const sn_shape *s, int64_t *st) {
  int64_t acc = 1;
  for (int i = s->ndim - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s->dim[i];
  }
}

// ---- parameters, looked up by name in the op's schema (snc::param) ----

// As a status: SN_ERR_INTERNAL naming the op when the schema has no
// such parameter (the GPU kernel and the CPU op disagree).
inline int get_param(const sn_call *c, const char *name, const sn_pval **out) {
  *out = param(c, name);
  if (!*out)
    return host->error(SN_ERR_INTERNAL, "%s (GPU): the op has no parameter '%s'", op_name(c),
                       name);
  return SN_OK;
}

// ---- launching (begin, check_launch, capturing, copies: common.cuh) ----

inline unsigned grid_for(int64_t n, int block = SNK_BLOCK) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 8192) g = 8192;  // grid-stride loops cover the rest
  return (unsigned)g;
}

// Float dispatch: SNC_FLOAT_SWITCH (common.cuh).

// Every numeric dtype (float16 excluded, as on the CPU).
#define SNK_ALL_SWITCH(dt, c, T, ...)                                                      \
  switch (dt) {                                                                            \
    case SN_F32: { typedef float T; __VA_ARGS__; break; }                                  \
    case SN_F64: { typedef double T; __VA_ARGS__; break; }                                 \
    case SN_U8: { typedef uint8_t T; __VA_ARGS__; break; }                                 \
    case SN_I8: { typedef int8_t T; __VA_ARGS__; break; }                                  \
    case SN_I32: { typedef int32_t T; __VA_ARGS__; break; }                                \
    case SN_I64: { typedef int64_t T; __VA_ARGS__; break; }                                \
    default:                                                                               \
      return snk::host->error(SN_ERR_TYPE, "%s: dtype %s is not supported",               \
                              snk::op_name(c), snk::dtype_name(dt));                       \
  }

// Kernel launch on stream S: SNK_LAUNCH(grid, block, S, kernel<...>)(args).
// (One macro for every launch, so that a test harness can redefine it and
// run the kernels on the host, sequentially, with blocks of one thread in
// x; block_reduce allows for that.)
#ifndef SNK_LAUNCH
#define SNK_LAUNCH(G, B, S, ...) __VA_ARGS__<<<(G), (B), 0, (S)>>>
#endif

#define SNK_LOOP(i, n)                                                                     \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);      \
       i += (int64_t)blockDim.x * gridDim.x)

// ---------------------------------------------------------------------------
// Flat element-wise launches: f(i) for i in [0, n)
// ---------------------------------------------------------------------------

template <typename F>
__global__ void flat_kernel(int64_t n, F f) {
  SNK_LOOP(i, n) f(i);
}

template <typename F>
inline int launch_flat(const sn_call *c, cudaStream_t s, int64_t n, const F &f,
                       const char *what) {
  if (n <= 0) return SN_OK;
  SNK_LAUNCH(grid_for(n), SNK_BLOCK, s, flat_kernel<F>)(n, f);
  return check_launch(c, what);
}

// ---------------------------------------------------------------------------
// Strided maps: a row-major index space of up to SNK_MAXD dims and NOP
// operands with their own (possibly zero or negative) element strides.
// ---------------------------------------------------------------------------

template <int NOP>
struct Geom {
  int nd;
  int64_t n[SNK_MAXD];
  int64_t st[NOP][SNK_MAXD];
};

template <int NOP, typename I>
struct GeomI {
  int nd;
  I n[SNK_MAXD];
  I st[NOP][SNK_MAXD];
};

// Drops size-1 dims and merges neighbours whose strides chain for every
// operand.  A zero-size space becomes nd = 1, n[0] = 0.
template <int NOP>
inline void collapse(Geom<NOP> &g) {
  int k = 0;
  for (int i = 0; i < g.nd; i++) {
    if (g.n[i] == 0) {
      g.nd = 1;
      g.n[0] = 0;
      for (int o = 0; o < NOP; o++) g.st[o][0] = 1;
      return;
    }
    if (g.n[i] == 1) continue;
    g.n[k] = g.n[i];
    for (int o = 0; o < NOP; o++) g.st[o][k] = g.st[o][i];
    k++;
  }
  if (k == 0) {
    g.nd = 1;
    g.n[0] = 1;
    for (int o = 0; o < NOP; o++) g.st[o][0] = 1;
    return;
  }
  int m = 0;
  for (int i = 1; i < k; i++) {
    bool chain = true;
    for (int o = 0; o < NOP; o++)
      if (g.st[o][m] != g.n[i] * g.st[o][i]) chain = false;
    if (chain) {
      g.n[m] *= g.n[i];
      for (int o = 0; o < NOP; o++) g.st[o][m] = g.st[o][i];
    } else {
      m++;
      g.n[m] = g.n[i];
      for (int o = 0; o < NOP; o++) g.st[o][m] = g.st[o][i];
    }
  }
  g.nd = m + 1;
}

template <int NOP>
inline int64_t geom_total(const Geom<NOP> &g) {
  int64_t t = 1;
  for (int i = 0; i < g.nd; i++) t *= g.n[i];
  return t;
}

// Whether every index and offset fits in int32 (faster index math).
template <int NOP>
inline bool geom_fits32(const Geom<NOP> &g) {
  const int64_t lim = (int64_t)1 << 30;
  if (geom_total(g) >= lim) return false;
  for (int o = 0; o < NOP; o++) {
    int64_t span = 0;
    for (int i = 0; i < g.nd; i++) {
      int64_t s = g.st[o][i] < 0 ? -g.st[o][i] : g.st[o][i];
      span += (g.n[i] - 1) * s;
      if (span >= lim) return false;
    }
  }
  return true;
}

template <int NOP, typename I>
inline GeomI<NOP, I> geom_cast(const Geom<NOP> &g) {
  GeomI<NOP, I> r;
  memset(&r, 0, sizeof r);
  r.nd = g.nd;
  for (int i = 0; i < g.nd; i++) {
    r.n[i] = (I)g.n[i];
    for (int o = 0; o < NOP; o++) r.st[o][i] = (I)g.st[o][i];
  }
  return r;
}

// Offsets of index i (row-major over g's dims) for every operand.
template <int NOP, typename I>
__host__ __device__ __forceinline__ void geom_offsets(const GeomI<NOP, I> &g, I i, I *off) {
#pragma unroll
  for (int o = 0; o < NOP; o++) off[o] = 0;
  for (int d = g.nd - 1; d > 0; d--) {
    const I q = i / g.n[d];
    const I idx = i - q * g.n[d];
    i = q;
#pragma unroll
    for (int o = 0; o < NOP; o++) off[o] += idx * g.st[o][d];
  }
#pragma unroll
  for (int o = 0; o < NOP; o++) off[o] += i * g.st[o][0];
}

// f(i, off) for every index i of the space, off[o] the offset of operand o.
template <int NOP, typename I, typename F>
__global__ void map_kernel(GeomI<NOP, I> g, int64_t total, F f) {
  SNK_LOOP(i, total) {
    I off[NOP];
    geom_offsets<NOP, I>(g, (I)i, off);
    f(i, off);
  }
}

template <int NOP, typename F32, typename F64>
inline int launch_map(const sn_call *c, cudaStream_t s, Geom<NOP> g, const F32 &f32,
                      const F64 &f64, const char *what) {
  collapse(g);
  const int64_t total = geom_total(g);
  if (total <= 0) return SN_OK;
  if (geom_fits32(g))
    SNK_LAUNCH(grid_for(total), SNK_BLOCK, s, map_kernel<NOP, int32_t, F32>)(
        geom_cast<NOP, int32_t>(g), total, f32);
  else
    SNK_LAUNCH(grid_for(total), SNK_BLOCK, s, map_kernel<NOP, int64_t, F64>)(
        geom_cast<NOP, int64_t>(g), total, f64);
  return check_launch(c, what);
}

// ---------------------------------------------------------------------------
// Strided copy: dst[sum k_d ds_d] = src[sum k_d ss_d] (element units, any
// element size 1/2/4/8).  Source strides may be zero or negative; the
// destination positions must be distinct.  Contiguous copies become one
// cudaMemcpyAsync.
// ---------------------------------------------------------------------------

template <typename E, typename I>
struct CopyFn {
  const E *src;
  E *dst;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    dst[off[0]] = src[off[1]];
  }
};

inline int strided_copy(const sn_call *c, cudaStream_t s, int nd, const int64_t *n,
                        const int64_t *ss, const int64_t *ds, const void *src, void *dst,
                        size_t es) {
  Geom<2> g;
  if (nd > SNK_MAXD)
    return host->error(SN_ERR_INTERNAL, "%s: strided copy over %d dims", op_name(c), nd);
  if (nd <= 0) {
    g.nd = 1;
    g.n[0] = 1;
    g.st[0][0] = g.st[1][0] = 1;
  } else {
    g.nd = nd;
    for (int i = 0; i < nd; i++) {
      g.n[i] = n[i];
      g.st[0][i] = ds[i];
      g.st[1][i] = ss[i];
    }
  }
  collapse(g);
  const int64_t total = geom_total(g);
  if (total <= 0) return SN_OK;
  if (g.nd == 1 && g.st[0][0] == 1 && g.st[1][0] == 1)
    return copy_async(c, s, dst, src, (size_t)total * es);
  switch (es) {
    case 1:
      return launch_map<2>(c, s, g, CopyFn<uint8_t, int32_t>{(const uint8_t *)src, (uint8_t *)dst},
                           CopyFn<uint8_t, int64_t>{(const uint8_t *)src, (uint8_t *)dst},
                           "strided copy");
    case 2:
      return launch_map<2>(c, s, g,
                           CopyFn<uint16_t, int32_t>{(const uint16_t *)src, (uint16_t *)dst},
                           CopyFn<uint16_t, int64_t>{(const uint16_t *)src, (uint16_t *)dst},
                           "strided copy");
    case 4:
      return launch_map<2>(c, s, g,
                           CopyFn<uint32_t, int32_t>{(const uint32_t *)src, (uint32_t *)dst},
                           CopyFn<uint32_t, int64_t>{(const uint32_t *)src, (uint32_t *)dst},
                           "strided copy");
    case 8:
      return launch_map<2>(c, s, g,
                           CopyFn<uint64_t, int32_t>{(const uint64_t *)src, (uint64_t *)dst},
                           CopyFn<uint64_t, int64_t>{(const uint64_t *)src, (uint64_t *)dst},
                           "strided copy");
    default:
      return host->error(SN_ERR_TYPE, "%s: element size %zu is not supported", op_name(c), es);
  }
}

// Fills the strided positions with one value (any element size).
template <typename E, typename I>
struct FillFn {
  E v;
  E *dst;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const { dst[off[0]] = v; }
};

template <typename E>
inline int strided_fill_t(const sn_call *c, cudaStream_t s, const Geom<1> &g, void *dst, E v) {
  return launch_map<1>(c, s, g, FillFn<E, int32_t>{v, (E *)dst}, FillFn<E, int64_t>{v, (E *)dst},
                       "strided fill");
}

// value: the element's bytes (es of them).
inline int strided_fill(const sn_call *c, cudaStream_t s, int nd, const int64_t *n,
                        const int64_t *ds, void *dst, const void *value, size_t es) {
  Geom<1> g;
  if (nd > SNK_MAXD)
    return host->error(SN_ERR_INTERNAL, "%s: strided fill over %d dims", op_name(c), nd);
  g.nd = nd > 0 ? nd : 1;
  for (int i = 0; i < g.nd; i++) {
    g.n[i] = nd > 0 ? n[i] : 1;
    g.st[0][i] = nd > 0 ? ds[i] : 1;
  }
  switch (es) {
    case 1: { uint8_t v; memcpy(&v, value, 1); return strided_fill_t<uint8_t>(c, s, g, dst, v); }
    case 2: { uint16_t v; memcpy(&v, value, 2); return strided_fill_t<uint16_t>(c, s, g, dst, v); }
    case 4: { uint32_t v; memcpy(&v, value, 4); return strided_fill_t<uint32_t>(c, s, g, dst, v); }
    case 8: { uint64_t v; memcpy(&v, value, 8); return strided_fill_t<uint64_t>(c, s, g, dst, v); }
    default:
      return host->error(SN_ERR_TYPE, "%s: element size %zu is not supported", op_name(c), es);
  }
}

// ---------------------------------------------------------------------------
// Segmented reductions.
//
// A "full" index space of up to SNK_MAXD dims is split into kept dims (the
// outputs, row-major, output u contiguous) and reduced dims; NOP operands
// live in the full space with their own strides.  For each output u the
// kernel folds load(offsets) over the reduced indices with a reducer, then
// store(u, acc).  Results are deterministic: a fixed block shape and a fixed
// combination order, no atomics.
//   mode A (the innermost dim of operand 0 is reduced): one block per
//     output, threads stride over the reduced indices (coalesced);
//   mode B (it is kept): 32 consecutive outputs per block in x, 8 rows of
//     threads split the reduced indices, combined in order through shared
//     memory.
// ---------------------------------------------------------------------------

template <int NOP, typename I>
struct RGeom {
  int nk, nr;
  I kn[SNK_MAXD], rn[SNK_MAXD];
  I kst[NOP][SNK_MAXD], rst[NOP][SNK_MAXD];
  I nkept, nred;
};

template <int NOP>
struct RGeomH {
  int nk, nr;
  int64_t kn[SNK_MAXD], rn[SNK_MAXD];
  int64_t kst[NOP][SNK_MAXD], rst[NOP][SNK_MAXD];
  int64_t nkept, nred;
  bool inner_reduced;
  bool fits32;
};

// Builds the reduction geometry of a full space (n[nd], per-operand strides
// st[o][d]) where red[d] marks the reduced dims.
template <int NOP>
inline void rgeom_make(int nd, const int64_t *n, const int64_t (*st)[SNK_MAXD], const int *red,
                       RGeomH<NOP> &g) {
  memset(&g, 0, sizeof g);
  g.nkept = g.nred = 1;
  int64_t minst = INT64_MAX;
  bool min_red = false;
  for (int d = 0; d < nd; d++) {
    if (n[d] == 1) continue;
    int64_t a = st[0][d] < 0 ? -st[0][d] : st[0][d];
    if (a != 0 && a <= minst) {
      // the last dim with the smallest stride: the innermost in memory
      minst = a;
      min_red = red[d] != 0;
    }
    if (red[d]) {
      int k = g.nr;
      if (k > 0) {
        bool chain = true;
        for (int o = 0; o < NOP; o++)
          if (g.rst[o][k - 1] != n[d] * st[o][d]) chain = false;
        if (chain) {
          g.rn[k - 1] *= n[d];
          for (int o = 0; o < NOP; o++) g.rst[o][k - 1] = st[o][d];
          g.nred *= n[d];
          continue;
        }
      }
      g.rn[k] = n[d];
      for (int o = 0; o < NOP; o++) g.rst[o][k] = st[o][d];
      g.nr++;
      g.nred *= n[d];
    } else {
      int k = g.nk;
      if (k > 0) {
        bool chain = true;
        for (int o = 0; o < NOP; o++)
          if (g.kst[o][k - 1] != n[d] * st[o][d]) chain = false;
        if (chain) {
          g.kn[k - 1] *= n[d];
          for (int o = 0; o < NOP; o++) g.kst[o][k - 1] = st[o][d];
          g.nkept *= n[d];
          continue;
        }
      }
      g.kn[k] = n[d];
      for (int o = 0; o < NOP; o++) g.kst[o][k] = st[o][d];
      g.nk++;
      g.nkept *= n[d];
    }
  }
  g.inner_reduced = min_red;
  const int64_t lim = (int64_t)1 << 30;
  bool fits = g.nkept < lim && g.nred < lim && g.nkept * g.nred < lim;
  for (int o = 0; o < NOP && fits; o++) {
    int64_t span = 0;
    for (int d = 0; d < g.nk; d++) span += (g.kn[d] - 1) * (g.kst[o][d] < 0 ? -g.kst[o][d] : g.kst[o][d]);
    for (int d = 0; d < g.nr; d++) span += (g.rn[d] - 1) * (g.rst[o][d] < 0 ? -g.rst[o][d] : g.rst[o][d]);
    if (span >= lim) fits = false;
  }
  g.fits32 = fits;
}

template <int NOP, typename I>
inline RGeom<NOP, I> rgeom_cast(const RGeomH<NOP> &h) {
  RGeom<NOP, I> g;
  memset(&g, 0, sizeof g);
  g.nk = h.nk;
  g.nr = h.nr;
  g.nkept = (I)h.nkept;
  g.nred = (I)h.nred;
  for (int d = 0; d < h.nk; d++) {
    g.kn[d] = (I)h.kn[d];
    for (int o = 0; o < NOP; o++) g.kst[o][d] = (I)h.kst[o][d];
  }
  for (int d = 0; d < h.nr; d++) {
    g.rn[d] = (I)h.rn[d];
    for (int o = 0; o < NOP; o++) g.rst[o][d] = (I)h.rst[o][d];
  }
  return g;
}

template <int NOP, typename I>
__host__ __device__ __forceinline__ void rg_kept(const RGeom<NOP, I> &g, I u, I *off) {
#pragma unroll
  for (int o = 0; o < NOP; o++) off[o] = 0;
  for (int d = g.nk - 1; d >= 0; d--) {
    const I q = u / g.kn[d];
    const I idx = u - q * g.kn[d];
    u = q;
#pragma unroll
    for (int o = 0; o < NOP; o++) off[o] += idx * g.kst[o][d];
  }
}

template <int NOP, typename I>
__host__ __device__ __forceinline__ void rg_red(const RGeom<NOP, I> &g, I r, const I *base, I *off) {
#pragma unroll
  for (int o = 0; o < NOP; o++) off[o] = base[o];
  for (int d = g.nr - 1; d >= 0; d--) {
    const I q = r / g.rn[d];
    const I idx = r - q * g.rn[d];
    r = q;
#pragma unroll
    for (int o = 0; o < NOP; o++) off[o] += idx * g.rst[o][d];
  }
}

// Reducers over double accumulators (sums, products, extremes).
struct RSum {
  __device__ __forceinline__ static double init() { return 0.0; }
  __device__ __forceinline__ static double comb(double a, double b) { return a + b; }
};
struct RProd {
  __device__ __forceinline__ static double init() { return 1.0; }
  __device__ __forceinline__ static double comb(double a, double b) { return a * b; }
};
// max/min propagate NaN (the CPU's U_MAX / U_MIN).
struct RMax {
  __device__ __forceinline__ static double init() { return -INFINITY; }
  __device__ __forceinline__ static double comb(double a, double v) {
    return (v > a || v != v) ? v : a;
  }
};
struct RMin {
  __device__ __forceinline__ static double init() { return INFINITY; }
  __device__ __forceinline__ static double comb(double a, double v) {
    return (v < a || v != v) ? v : a;
  }
};

// Block-wide combination in a fixed order; the result is valid in thread 0.
template <typename R>
__device__ __forceinline__ double block_reduce(double v, double *sh) {
  if (blockDim.x == 1) return v;  // (host emulation runs blocks of one thread)
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    double w = __shfl_down_sync(0xffffffffu, v, o);
    if (lane + o < 32) v = R::comb(v, w);
  }
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int nw = (blockDim.x + 31) >> 5;
    v = lane < nw ? sh[lane] : R::init();
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      double w = __shfl_down_sync(0xffffffffu, v, o);
      if (lane + o < 32) v = R::comb(v, w);
    }
  }
  __syncthreads();
  return v;
}

// Mode A: one block per output (grid-stride over outputs).  Block size is a
// multiple of 32.
template <int NOP, typename I, typename R, typename L, typename S>
__global__ void reduce_a_kernel(RGeom<NOP, I> g, L load, S store) {
  __shared__ double sh[32];
  for (I u = blockIdx.x; u < g.nkept; u += gridDim.x) {
    I base[NOP], off[NOP];
    rg_kept<NOP, I>(g, u, base);
    double acc = R::init();
    for (I r = threadIdx.x; r < g.nred; r += blockDim.x) {
      rg_red<NOP, I>(g, r, base, off);
      acc = R::comb(acc, load(off));
    }
    acc = block_reduce<R>(acc, sh);
    if (threadIdx.x == 0) store((int64_t)u, acc);
  }
}

// Mode B: blockDim (32, 8); x: 32 consecutive outputs, y: reduced rows.
template <int NOP, typename I, typename R, typename L, typename S>
__global__ void reduce_b_kernel(RGeom<NOP, I> g, L load, S store) {
  __shared__ double sh[8][33];
  const I ntile = (g.nkept + 31) / 32;
  for (I t = blockIdx.x; t < ntile; t += gridDim.x) {
    const I u = t * 32 + threadIdx.x;
    double acc = R::init();
    if (u < g.nkept) {
      I base[NOP], off[NOP];
      rg_kept<NOP, I>(g, u, base);
      for (I r = threadIdx.y; r < g.nred; r += blockDim.y) {
        rg_red<NOP, I>(g, r, base, off);
        acc = R::comb(acc, load(off));
      }
    }
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && u < g.nkept) {
      double a = sh[0][threadIdx.x];
      for (int y = 1; y < (int)blockDim.y; y++) a = R::comb(a, sh[y][threadIdx.x]);
      store((int64_t)u, a);
    }
    __syncthreads();
  }
}

// Mode C (short reductions): one thread per output, sequential fold.
template <int NOP, typename I, typename R, typename L, typename S>
__global__ void reduce_c_kernel(RGeom<NOP, I> g, L load, S store) {
  SNK_LOOP(uu, g.nkept) {
    const I u = (I)uu;
    I base[NOP], off[NOP];
    rg_kept<NOP, I>(g, u, base);
    double acc = R::init();
    for (I r = 0; r < g.nred; r++) {
      rg_red<NOP, I>(g, r, base, off);
      acc = R::comb(acc, load(off));
    }
    store((int64_t)u, acc);
  }
}

template <int NOP, typename I, typename R, typename L, typename S>
inline void reduce_launch_i(const RGeomH<NOP> &h, cudaStream_t s, const L &load, const S &store) {
  RGeom<NOP, I> g = rgeom_cast<NOP, I>(h);
  if (h.nred <= 16 && h.nkept >= 4096) {
    SNK_LAUNCH(grid_for(h.nkept), SNK_BLOCK, s, reduce_c_kernel<NOP, I, R, L, S>)(g, load, store);
  } else if (h.inner_reduced || h.nkept < 64) {
    int block = 32;
    while (block < 256 && block < h.nred) block <<= 1;
    int64_t grid = h.nkept < 65535 ? h.nkept : 65535;
    SNK_LAUNCH((unsigned)grid, block, s, reduce_a_kernel<NOP, I, R, L, S>)(g, load, store);
  } else {
    int64_t tiles = (h.nkept + 31) / 32;
    int64_t grid = tiles < 65535 ? tiles : 65535;
    SNK_LAUNCH((unsigned)grid, dim3(32, 8), s, reduce_b_kernel<NOP, I, R, L, S>)(g, load, store);
  }
}

// load / store functors come in int32 and int64 flavours (the offsets' type).
template <int NOP, typename R, typename L32, typename L64, typename S>
inline int reduce_launch(const sn_call *c, cudaStream_t s, const RGeomH<NOP> &h,
                         const L32 &l32, const L64 &l64, const S &store, const char *what) {
  if (h.nkept <= 0) return SN_OK;
  if (h.fits32)
    reduce_launch_i<NOP, int32_t, R>(h, s, l32, store);
  else
    reduce_launch_i<NOP, int64_t, R>(h, s, l64, store);
  return check_launch(c, what);
}

// Loads operand 0 as double.
template <typename T, typename I>
struct LoadOne {
  const T *x;
  __device__ __forceinline__ double operator()(const I *off) const { return (double)x[off[0]]; }
};

// Stores scale * acc as T.
template <typename T>
struct StoreScaled {
  T *y;
  double scale;
  __device__ __forceinline__ void operator()(int64_t u, double acc) const {
    y[u] = (T)(acc * scale);
  }
};

// dst (shape small, broadcastable to full: same rank after left-padding
// with ones) = scale * sum of src (contiguous, shape full) over the
// broadcast axes.  The backward of broadcasting.
template <typename T>
inline int reduce_sum_to(const sn_call *c, cudaStream_t s, const T *src, const sn_shape *full,
                         T *dst, const sn_shape *small, double scale) {
  char a[128], b[128];
  const int nd = full->ndim, off = nd - small->ndim;
  if (off < 0 || nd > SNK_MAXD)
    return host->error(SN_ERR_SHAPE, "%s backward: cannot reduce %s to %s", op_name(c),
                       shape_str(full, a, sizeof a), shape_str(small, b, sizeof b));
  int64_t n[SNK_MAXD], st[1][SNK_MAXD];
  int red[SNK_MAXD];
  int64_t acc = 1;
  for (int d = nd - 1; d >= 0; d--) {
    int64_t D = full->dim[d], sm = d >= off ? small->dim[d - off] : 1;
    if (sm != D && sm != 1)
      return host->error(SN_ERR_SHAPE, "%s backward: cannot reduce %s to %s", op_name(c),
                         shape_str(full, a, sizeof a), shape_str(small, b, sizeof b));
    n[d] = D;
    st[0][d] = acc;
    red[d] = sm != D;
    acc *= D;
  }
  RGeomH<1> g;
  rgeom_make<1>(nd, n, st, red, g);
  return reduce_launch<1, RSum>(c, s, g, LoadOne<T, int32_t>{src}, LoadOne<T, int64_t>{src},
                                StoreScaled<T>{dst, scale}, "broadcast gradient sum");
}

// ---------------------------------------------------------------------------
// Device-side validation flags (indices and lengths).  check_kernel-style
// passes write the smallest bad position into a per-device word with
// atomicMin; the host reads it back after a synchronisation.  Skipped while
// the stream is captured (then the kernels clamp, never reading out of
// bounds).
// ---------------------------------------------------------------------------

// Returns a device pointer to this device's flag word (unsigned long long).
int flag_word(const sn_call *c, unsigned long long **out);
// Sets the flag to ULLONG_MAX on the stream.
int flag_reset(const sn_call *c, cudaStream_t s, unsigned long long *flag);
// Waits for the stream and reads the flag.
int flag_read(const sn_call *c, cudaStream_t s, unsigned long long *flag,
              unsigned long long *value);

// Loads element i of a tensor of any numeric dtype as double.
__device__ __forceinline__ double load_as_double(const void *p, int dt, int64_t i) {
  switch (dt) {
    case SN_F32: return (double)((const float *)p)[i];
    case SN_F64: return ((const double *)p)[i];
    case SN_U8: return (double)((const uint8_t *)p)[i];
    case SN_I8: return (double)((const int8_t *)p)[i];
    case SN_I32: return (double)((const int32_t *)p)[i];
    case SN_I64: return (double)((const int64_t *)p)[i];
    default: return 0.0;
  }
}

// Host copy of one element of a device tensor as double (for messages).
int read_element(const sn_call *c, cudaStream_t s, const sn_tensor *t, int64_t i, double *out);

}  // namespace snk

#endif
