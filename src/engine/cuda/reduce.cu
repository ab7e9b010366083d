// GPU kernels of the reduction ops (ops/reduce.c): sum (sum_axis), mean,
// prod, max (max_axis), min (min_axis), norm, argmax, argmin and
// argmax_channel, with the CPU's MXNet semantics:
//   - axis None or () reduces everything; exclude reduces the axes not
//     listed; negative axes count from the end;
//   - sums, means, products and norms accumulate in double (float32 and
//     float64 alike); max/min propagate NaN and send the gradient to every
//     position equal to the result;
//   - prod's gradient is the product of the other elements, exact with
//     zeros in the group (computed per group in one fused kernel);
//   - norm ord 1 / 2, the ord 2 gradient is 0 where the norm is 0;
//   - argmax/argmin return the first occurrence (the first NaN wins) as a
//     float in the input dtype, no gradient.
// Reductions are deterministic (kernels.cuh: fixed block shapes and
// combination order, no atomics).
#include "kernels.cuh"

namespace snk {
namespace red {

// Fills mask[d] (1 = reduced); axis: an OPT_SHAPE value (None or () = all).
int reduce_mask(const sn_call *c, const sn_pval *axis, int exclude, const sn_shape *ish,
                int mask[SN_MAX_DIMS], int *all) {
  const int nd = ish->ndim;
  char buf[160];
  for (int d = 0; d < SN_MAX_DIMS; d++) mask[d] = 0;
  *all = 0;
  if (!axis->set || axis->s.ndim <= 0) {
    for (int d = 0; d < nd; d++) mask[d] = 1;
    *all = 1;
    return SN_OK;
  }
  for (int k = 0; k < axis->s.ndim; k++) {
    int64_t a = axis->s.dim[k];
    if (a < -(int64_t)nd || a >= nd)
      return host->error(SN_ERR_ARG, "%s: axis %s is out of range for an input of shape %s",
                         op_name(c), axis->str[0] ? axis->str : "?",
                         shape_str(ish, buf, sizeof buf));
    if (a < 0) a += nd;
    if (mask[a])
      return host->error(SN_ERR_ARG, "%s: axis %lld is listed twice (axis=%s)", op_name(c),
                         (long long)a, axis->str[0] ? axis->str : "?");
    mask[a] = 1;
  }
  if (exclude)
    for (int d = 0; d < nd; d++) mask[d] = !mask[d];
  return SN_OK;
}

// The mask of a sum/mean/prod/max/min call (params axis, exclude) or of a
// norm call (axis only).
int call_mask(const sn_call *c, const sn_shape *ish, int mask[SN_MAX_DIMS]) {
  const sn_pval *axis, *ex = param(c, "exclude");
  SN_TRY(get_param(c, "axis", &axis));
  int all;
  return reduce_mask(c, axis, ex ? (int)ex->i : 0, ish, mask, &all);
}

int64_t count_reduced(const sn_shape *s, const int *mask) {
  int64_t n = 1;
  for (int d = 0; d < s->ndim; d++)
    if (mask[d]) n *= s->dim[d];
  return n;
}

// Reduction geometry of a contiguous input of shape s.
void input_geom(const sn_shape *s, const int *mask, RGeomH<1> &g) {
  int64_t n[SNK_MAXD], st[1][SNK_MAXD];
  int red[SNK_MAXD];
  int64_t acc = 1;
  for (int d = s->ndim - 1; d >= 0; d--) {
    n[d] = s->dim[d];
    st[0][d] = acc;
    red[d] = mask[d];
    acc *= s->dim[d];
  }
  rgeom_make<1>(s->ndim, n, st, red, g);
}

// Map geometry over the input: operand 0 the input (contiguous), operand 1
// the output (strides of the kept dims, 0 along reduced dims).
void in_out_geom(const sn_shape *s, const int *mask, Geom<2> &g) {
  g.nd = s->ndim > 0 ? s->ndim : 1;
  if (s->ndim <= 0) {
    g.n[0] = 1;
    g.st[0][0] = g.st[1][0] = 1;
    return;
  }
  int64_t is = 1, os = 1;
  for (int d = s->ndim - 1; d >= 0; d--) {
    g.n[d] = s->dim[d];
    g.st[0][d] = is;
    g.st[1][d] = mask[d] ? 0 : os;
    is *= s->dim[d];
    if (!mask[d]) os *= s->dim[d];
  }
}

enum { FIN_NONE, FIN_SCALE, FIN_SQRT };

template <typename T, typename I>
struct LoadSq {
  const T *x;
  __device__ __forceinline__ double operator()(const I *off) const {
    double v = (double)x[off[0]];
    return v * v;
  }
};
template <typename T, typename I>
struct LoadAbs {
  const T *x;
  __device__ __forceinline__ double operator()(const I *off) const {
    return fabs((double)x[off[0]]);
  }
};
template <typename T>
struct StoreSqrt {
  T *y;
  __device__ __forceinline__ void operator()(int64_t u, double acc) const { y[u] = (T)sqrt(acc); }
};

// sum / mean / prod / max / min forward.
template <typename R>
int fwd_generic(sn_call *c, int fin) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *x = c->in[0];
  sn_tensor *y = c->out[0];
  int mask[SN_MAX_DIMS];
  SN_TRY(call_mask(c, &x->shape, mask));
  if (x->dtype != y->dtype)
    return host->error(SN_ERR_TYPE, "%s (GPU): input dtype %s and output dtype %s differ",
                       op_name(c), dtype_name(x->dtype), dtype_name(y->dtype));
  RGeomH<1> g;
  input_geom(&x->shape, mask, g);
  const double scale = fin == FIN_SCALE ? 1.0 / (double)count_reduced(&x->shape, mask) : 1.0;
  SNC_FLOAT_SWITCH(x->dtype, c, T, {
    const T *xp = snc::ptr<T>(x);
    return reduce_launch<1, R>(c, s, g, LoadOne<T, int32_t>{xp}, LoadOne<T, int64_t>{xp},
                               StoreScaled<T>{snc::ptr<T>(y), scale}, "forward");
  });
  return SN_OK;
}

int sum_forward(sn_call *c) { return fwd_generic<RSum>(c, FIN_NONE); }
int mean_forward(sn_call *c) { return fwd_generic<RSum>(c, FIN_SCALE); }
int prod_forward(sn_call *c) { return fwd_generic<RProd>(c, FIN_NONE); }
int max_forward(sn_call *c) { return fwd_generic<RMax>(c, FIN_NONE); }
int min_forward(sn_call *c) { return fwd_generic<RMin>(c, FIN_NONE); }

// ---- backward of sum / mean: GX = G[oi] * s ----
template <typename T, typename I>
struct SumBwd {
  const T *g;
  T *gx;
  T s;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    gx[off[0]] = g[off[1]] * s;
  }
};

int sum_mean_backward(sn_call *c, bool mean) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  sn_tensor *gx = c->igrad[0];
  int mask[SN_MAX_DIMS];
  SN_TRY(call_mask(c, &gx->shape, mask));
  Geom<2> g;
  in_out_geom(&gx->shape, mask, g);
  const double sc = mean ? 1.0 / (double)count_reduced(&gx->shape, mask) : 1.0;
  SNC_FLOAT_SWITCH(gx->dtype, c, T, {
    const T *gp = snc::ptr<T>(c->ograd[0]);
    T *gxp = snc::ptr<T>(gx);
    return launch_map<2>(c, s, g, SumBwd<T, int32_t>{gp, gxp, (T)sc},
                         SumBwd<T, int64_t>{gp, gxp, (T)sc}, "backward");
  });
  return SN_OK;
}
int sum_backward(sn_call *c) { return sum_mean_backward(c, false); }
int mean_backward(sn_call *c) { return sum_mean_backward(c, true); }

// ---- max / min backward: the gradient goes to every position equal to the result ----
template <typename T, typename I>
struct MinMaxBwd {
  const T *g, *x, *o;
  T *gx;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    gx[off[0]] = x[off[0]] == o[off[1]] ? g[off[1]] : (T)0;
  }
};

int minmax_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *x = c->in[0];
  int mask[SN_MAX_DIMS];
  SN_TRY(call_mask(c, &x->shape, mask));
  Geom<2> g;
  in_out_geom(&x->shape, mask, g);
  SNC_FLOAT_SWITCH(c->igrad[0]->dtype, c, T, {
    const T *gp = snc::ptr<T>(c->ograd[0]), *xp = snc::ptr<T>(x), *op = snc::ptr<T>(c->out[0]);
    T *gxp = snc::ptr<T>(c->igrad[0]);
    return launch_map<2>(c, s, g, MinMaxBwd<T, int32_t>{gp, xp, op, gxp},
                         MinMaxBwd<T, int64_t>{gp, xp, op, gxp}, "backward");
  });
  return SN_OK;
}

// ---- prod backward: per group, the number of zeros and the product of the
// non-zeros, then d out / d x_j = product of the others ----
template <typename T, typename I>
__global__ void prod_bwd_kernel(RGeom<1, I> g, const T *x, const T *go, T *gx) {
  __shared__ double sh[32];
  for (I u = blockIdx.x; u < g.nkept; u += gridDim.x) {
    I base[1], off[1];
    rg_kept<1, I>(g, u, base);
    double nz = 0.0, pnz = 1.0;
    for (I r = threadIdx.x; r < g.nred; r += blockDim.x) {
      rg_red<1, I>(g, r, base, off);
      const double v = (double)x[off[0]];
      nz += v == 0 ? 1.0 : 0.0;
      pnz *= v == 0 ? 1.0 : v;
    }
    nz = block_reduce<RSum>(nz, sh);
    pnz = block_reduce<RProd>(pnz, sh);
    if (threadIdx.x == 0) {
      sh[0] = nz;
      sh[1] = pnz;
    }
    __syncthreads();
    nz = sh[0];
    pnz = sh[1];
    const double gu = (double)go[u];
    for (I r = threadIdx.x; r < g.nred; r += blockDim.x) {
      rg_red<1, I>(g, r, base, off);
      const double xv = (double)x[off[0]];
      gx[off[0]] = (T)(nz == 0 ? gu * (pnz / xv) : (nz == 1 && xv == 0 ? gu * pnz : 0.0));
    }
    __syncthreads();
  }
}

int prod_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *x = c->in[0];
  int mask[SN_MAX_DIMS];
  SN_TRY(call_mask(c, &x->shape, mask));
  RGeomH<1> h;
  input_geom(&x->shape, mask, h);
  if (h.nkept <= 0) return SN_OK;
  int block = 32;
  while (block < 256 && block < h.nred) block <<= 1;
  const unsigned grid = (unsigned)(h.nkept < 65535 ? h.nkept : 65535);
  SNC_FLOAT_SWITCH(x->dtype, c, T, {
    const T *xp = snc::ptr<T>(x), *gp = snc::ptr<T>(c->ograd[0]);
    T *gxp = snc::ptr<T>(c->igrad[0]);
    if (h.fits32)
      SNK_LAUNCH(grid, block, s, prod_bwd_kernel<T, int32_t>)(rgeom_cast<1, int32_t>(h), xp, gp, gxp);
    else
      SNK_LAUNCH(grid, block, s, prod_bwd_kernel<T, int64_t>)(rgeom_cast<1, int64_t>(h), xp, gp, gxp);
    return check_launch(c, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// norm
// ---------------------------------------------------------------------------
int norm_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *ord;
  SN_TRY(get_param(c, "ord", &ord));
  const sn_tensor *x = c->in[0];
  sn_tensor *y = c->out[0];
  if (x->dtype != y->dtype)
    return host->error(SN_ERR_TYPE, "norm (GPU): input dtype %s and output dtype %s differ",
                       dtype_name(x->dtype), dtype_name(y->dtype));
  int mask[SN_MAX_DIMS];
  SN_TRY(call_mask(c, &x->shape, mask));
  RGeomH<1> g;
  input_geom(&x->shape, mask, g);
  const bool ord2 = ord->i == 2;
  SNC_FLOAT_SWITCH(x->dtype, c, T, {
    const T *xp = snc::ptr<T>(x);
    if (ord2)
      return reduce_launch<1, RSum>(c, s, g, LoadSq<T, int32_t>{xp}, LoadSq<T, int64_t>{xp},
                                    StoreSqrt<T>{snc::ptr<T>(y)}, "forward");
    return reduce_launch<1, RSum>(c, s, g, LoadAbs<T, int32_t>{xp}, LoadAbs<T, int64_t>{xp},
                                  StoreScaled<T>{snc::ptr<T>(y), 1.0}, "forward");
  });
  return SN_OK;
}

template <typename T, typename I>
struct NormBwd {
  const T *g, *x, *o;
  T *gx;
  bool ord2;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    const T xv = x[off[0]], ov = o[off[1]], gv = g[off[1]];
    if (ord2)
      gx[off[0]] = ov > 0 ? gv * (xv / ov) : (T)0;
    else
      gx[off[0]] = xv > 0 ? gv : (xv < 0 ? -gv : (T)0);
  }
};

int norm_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *ord;
  SN_TRY(get_param(c, "ord", &ord));
  const sn_tensor *x = c->in[0];
  int mask[SN_MAX_DIMS];
  SN_TRY(call_mask(c, &x->shape, mask));
  Geom<2> g;
  in_out_geom(&x->shape, mask, g);
  const bool ord2 = ord->i == 2;
  SNC_FLOAT_SWITCH(c->igrad[0]->dtype, c, T, {
    const T *gp = snc::ptr<T>(c->ograd[0]), *xp = snc::ptr<T>(x), *op = snc::ptr<T>(c->out[0]);
    T *gxp = snc::ptr<T>(c->igrad[0]);
    return launch_map<2>(c, s, g, NormBwd<T, int32_t>{gp, xp, op, gxp, ord2},
                         NormBwd<T, int64_t>{gp, xp, op, gxp, ord2}, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// argmax / argmin / argmax_channel over the middle axis of (outer, M, inner)
// ---------------------------------------------------------------------------

// Whether (v, i) beats (b, bi): the sequential scan's rule (strictly better,
// a NaN beats a number) made order-independent with the index as tie-break,
// so that the first occurrence (and the first NaN) wins.
template <typename T>
__device__ __forceinline__ bool arg_better(T v, int64_t i, T b, int64_t bi, bool want_max) {
  const bool vn = v != v, bn = b != b;
  if (vn || bn) return vn && (!bn || i < bi);
  if (want_max ? v > b : v < b) return true;
  return v == b && i < bi;
}

// One block per (outer) row when inner == 1.
template <typename T>
__global__ void arg_rows_kernel(const T *x, T *o, int64_t outer, int64_t M, bool want_max) {
  __shared__ T sv[32];
  __shared__ int64_t si[32];
  for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
    const T *xr = x + r * M;
    T b = xr[0];
    int64_t bi = 0;
    for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
      const T v = xr[k];
      if (arg_better(v, k, b, bi, want_max)) {
        b = v;
        bi = k;
      }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      T v = __shfl_down_sync(0xffffffffu, b, off);
      int64_t i = __shfl_down_sync(0xffffffffu, bi, off);
      if (lane + off < 32 && arg_better(v, i, b, bi, want_max)) {
        b = v;
        bi = i;
      }
    }
    if (lane == 0) {
      sv[warp] = b;
      si[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      const int nw = (blockDim.x + 31) >> 5;
      for (int w = 1; w < nw; w++)
        if (arg_better(sv[w], si[w], b, bi, want_max)) {
          b = sv[w];
          bi = si[w];
        }
      o[r] = (T)bi;
    }
    __syncthreads();
  }
}

// One thread per (outer, inner) position, scanning M sequentially.
template <typename T>
__global__ void arg_cols_kernel(const T *x, T *o, int64_t outer, int64_t M, int64_t inner,
                                bool want_max) {
  SNK_LOOP(u, outer * inner) {
    const int64_t oo = u / inner, i = u - oo * inner;
    const T *xo = x + oo * M * inner + i;
    T b = xo[0];
    int64_t bi = 0;
    for (int64_t r = 1; r < M; r++) {
      const T v = xo[r * inner];
      if ((want_max ? v > b : v < b) || (v != v && b == b)) {
        b = v;
        bi = r;
      }
    }
    o[u] = (T)bi;
  }
}

// Resolves the axis: *ax = -1 for a flattened search.
int arg_axis(const sn_call *c, bool set, int64_t axis, const sn_shape *ish, int *ax) {
  char buf[160];
  if (!set || ish->ndim == 1) {
    *ax = -1;
    return SN_OK;
  }
  if (axis < -(int64_t)ish->ndim || axis >= ish->ndim)
    return host->error(SN_ERR_ARG, "%s: axis %lld is out of range for an input of shape %s",
                       op_name(c), (long long)axis, shape_str(ish, buf, sizeof buf));
  *ax = (int)(axis < 0 ? axis + ish->ndim : axis);
  return SN_OK;
}

int arg_run(sn_call *c, bool set, int64_t axis, bool want_max) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_shape *sh = &c->in[0]->shape;
  int ax = 0;
  SN_TRY(arg_axis(c, set, axis, sh, &ax));
  int64_t outer = 1, M = 1, inner = 1;
  for (int d = 0; d < sh->ndim; d++) {
    if (ax < 0) M *= sh->dim[d];
    else if (d < ax) outer *= sh->dim[d];
    else if (d == ax) M = sh->dim[d];
    else inner *= sh->dim[d];
  }
  if (outer * M * inner == 0) return SN_OK;
  if (c->out[0]->dtype != c->in[0]->dtype)
    return host->error(SN_ERR_TYPE, "%s (GPU): input and output dtypes differ", op_name(c));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *xp = snc::ptr<T>(c->in[0]);
    T *op = snc::ptr<T>(c->out[0]);
    if (inner == 1 && (M >= 64 || outer < 4096)) {
      int block = 32;
      while (block < 256 && block < M) block <<= 1;
      const unsigned grid = (unsigned)(outer < 65535 ? outer : 65535);
      SNK_LAUNCH(grid, block, s, arg_rows_kernel<T>)(xp, op, outer, M, want_max);
    } else {
      SNK_LAUNCH(grid_for(outer * inner), SNK_BLOCK, s, arg_cols_kernel<T>)(xp, op, outer, M, inner,
                                                                        want_max);
    }
    return check_launch(c, "forward");
  });
  return SN_OK;
}

int arg_params(const sn_call *c, bool *set, int64_t *axis) {
  const sn_pval *a;
  SN_TRY(get_param(c, "axis", &a));
  *set = a->set != 0;
  *axis = a->i;
  return SN_OK;
}

int argmax_forward(sn_call *c) {
  bool set;
  int64_t axis;
  SN_TRY(arg_params(c, &set, &axis));
  return arg_run(c, set, axis, true);
}
int argmin_forward(sn_call *c) {
  bool set;
  int64_t axis;
  SN_TRY(arg_params(c, &set, &axis));
  return arg_run(c, set, axis, false);
}
int argmax_channel_forward(sn_call *c) { return arg_run(c, true, 1, true); }

}  // namespace red
}  // namespace snk

namespace snc {

int register_reduce(const sn_host_api *h) {
  using namespace snk::red;
  SN_TRY(h->register_kernels("sum", sum_forward, sum_backward));
  SN_TRY(h->register_kernels("mean", mean_forward, mean_backward));
  SN_TRY(h->register_kernels("prod", prod_forward, prod_backward));
  SN_TRY(h->register_kernels("max", max_forward, minmax_backward));
  SN_TRY(h->register_kernels("min", min_forward, minmax_backward));
  SN_TRY(h->register_kernels("norm", norm_forward, norm_backward));
  SN_TRY(h->register_kernels("argmax", argmax_forward, nullptr));
  SN_TRY(h->register_kernels("argmin", argmin_forward, nullptr));
  SN_TRY(h->register_kernels("argmax_channel", argmax_channel_forward, nullptr));
  return SN_OK;
}

}  // namespace snc
