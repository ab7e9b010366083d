// GPU kernels of the indexing ops (ops/indexing.c): one_hot, take, pick,
// Embedding, where and gather_nd, with the CPU's semantics:
//   - index values of any numeric dtype are rounded to the nearest integer,
//     then clipped, wrapped (negative values count from the end) or checked
//     (take mode='raise'); one_hot writes an all off_value row for an index
//     outside [0, depth); gather_nd wraps; Embedding clips;
//   - a NaN index (or an out-of-range one under 'raise', an infinite one
//     under 'wrap') is an error with the CPU's message.  The GPU finds it in
//     a validation pass that reads a flag back from the device (one
//     synchronisation); while the stream is captured into a CUDA graph, or
//     with SYMNET_CUDA_INDEX_CHECK=0, the pass is skipped and such indices
//     are clamped instead, so no kernel ever reads or writes out of bounds;
//   - take, Embedding and gather_nd scatter-add the output gradient with
//     atomicAdd (the order of the additions is not fixed: float results may
//     differ from the CPU in the last bits where indices repeat); pick routes
//     the gradient to the picked positions; where sends it to x or y;
//     index and condition inputs get zero gradients.
// This file also holds the device flag helpers declared in kernels.cuh.
#include <stdlib.h>

#include "kernels.cuh"

namespace snk {

// ---------------------------------------------------------------------------
// Device validation flag (kernels.cuh)
// ---------------------------------------------------------------------------
__device__ unsigned long long g_snk_flag;

int flag_word(const sn_call *c, unsigned long long **out) {
  void *p = nullptr;
  SNC_CHECK(cudaGetSymbolAddress(&p, g_snk_flag), c->dev.id, "cudaGetSymbolAddress");
  *out = (unsigned long long *)p;
  return SN_OK;
}

int flag_reset(const sn_call *c, cudaStream_t s, unsigned long long *flag) {
  SNC_CHECK(cudaMemsetAsync(flag, 0xFF, sizeof *flag, s), c->dev.id, "cudaMemsetAsync");
  return SN_OK;
}

int flag_read(const sn_call *c, cudaStream_t s, unsigned long long *flag,
              unsigned long long *value) {
  unsigned long long v = 0;
  SNC_CHECK(cudaMemcpyAsync(&v, flag, sizeof v, cudaMemcpyDeviceToHost, s), c->dev.id,
            "cudaMemcpyAsync (index check)");
  SNC_CHECK(cudaStreamSynchronize(s), c->dev.id, "cudaStreamSynchronize (index check)");
  *value = v;
  return SN_OK;
}

int read_element(const sn_call *c, cudaStream_t s, const sn_tensor *t, int64_t i, double *out) {
  unsigned char buf[8] = {0};
  const size_t es = dtype_size(t->dtype);
  if (es == 0 || es > 8) return host->error(SN_ERR_TYPE, "%s: bad dtype", op_name(c));
  SNC_CHECK(cudaMemcpyAsync(buf, (const char *)snc::data(t) + (size_t)i * es, es,
                            cudaMemcpyDeviceToHost, s),
            c->dev.id, "cudaMemcpyAsync (index check)");
  SNC_CHECK(cudaStreamSynchronize(s), c->dev.id, "cudaStreamSynchronize (index check)");
  switch (t->dtype) {
    case SN_F32: { float v; memcpy(&v, buf, 4); *out = v; break; }
    case SN_F64: { double v; memcpy(&v, buf, 8); *out = v; break; }
    case SN_U8: *out = buf[0]; break;
    case SN_I8: *out = (int8_t)buf[0]; break;
    case SN_I32: { int32_t v; memcpy(&v, buf, 4); *out = v; break; }
    case SN_I64: { int64_t v; memcpy(&v, buf, 8); *out = (double)v; break; }
    default: *out = 0;
  }
  return SN_OK;
}

namespace ix {

enum { IX_CLIP, IX_WRAP, IX_RAISE, IX_DROP /* out of range -> -1 */ };

// ops/indexing.c ix_map: one value into [0, m) (-1 for DROP); false when
// the value is not acceptable.
__device__ __forceinline__ bool ix_map(double v, int64_t m, int mode, int64_t *out) {
  if (v != v) return false;
  const double r = round(v);
  switch (mode) {
    case IX_CLIP:
      *out = r <= 0 ? 0 : (r >= (double)(m - 1) ? m - 1 : (int64_t)r);
      return true;
    case IX_WRAP: {
      if (isinf(r)) return false;
      double q = fmod(r, (double)m);
      if (q < 0) q += (double)m;
      const int64_t j = (int64_t)q;
      *out = j >= m ? m - 1 : j;
      return true;
    }
    case IX_RAISE:
      if (r < 0 || r > (double)(m - 1)) return false;
      *out = (int64_t)r;
      return true;
    default:
      *out = (r < 0 || r > (double)(m - 1)) ? -1 : (int64_t)r;
      return true;
  }
}

// The index used by the kernels: ix_map, or for values the validation pass
// would have rejected (not run under capture), a clamped one.
__device__ __forceinline__ int64_t ix_safe(double v, int64_t m, int mode) {
  int64_t j = 0;
  if (ix_map(v, m, mode, &j)) return j;
  if (mode == IX_DROP) return -1;
  if (v != v) return 0;
  ix_map(v, m, IX_CLIP, &j);
  return j;
}

struct IdxSrc {
  const void *p;
  int dt;
  __device__ __forceinline__ double operator[](int64_t i) const { return load_as_double(p, dt, i); }
};

// Rows of k index values; row j maps into [0, m[j]).
struct RowMs {
  int64_t m[SN_MAX_DIMS];
};

__global__ void validate_kernel(IdxSrc idx, int64_t n, int64_t k, RowMs ms, int mode,
                                unsigned long long *flag) {
  SNK_LOOP(e, n) {
    const int64_t j = k > 0 ? e / k : 0;
    int64_t out;
    if (!ix_map(idx[e], ms.m[j], mode, &out)) atomicMin(flag, (unsigned long long)e);
  }
}

bool check_enabled() {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("SYMNET_CUDA_INDEX_CHECK");
    on = !(e && (!strcmp(e, "0") || !strcmp(e, "false") || !strcmp(e, "FALSE")));
  }
  return on != 0;
}

int index_dtype_ok(const sn_call *c, const sn_tensor *t, const char *what) {
  if (t->dtype == SN_F16 || dtype_size(t->dtype) == 0)
    return host->error(SN_ERR_TYPE, "%s: %s dtype %s is not supported", op_name(c), what,
                       dtype_name(t->dtype));
  return SN_OK;
}

// Checks every index like the CPU's ix_load (rows of k values, row j into
// [0, ms.m[j])), with the CPU's messages.  Skipped under graph capture.
int validate(const sn_call *c, cudaStream_t s, const sn_tensor *t, int64_t k, const RowMs &ms,
             int nrows, int mode) {
  SN_TRY(index_dtype_ok(c, t, "index"));
  const int64_t n = nelem(t);
  if (n == 0 || !check_enabled() || capturing(s)) return SN_OK;
  unsigned long long *flag;
  SN_TRY(flag_word(c, &flag));
  SN_TRY(flag_reset(c, s, flag));
  SNK_LAUNCH(grid_for(n), SNK_BLOCK, s, validate_kernel)(IdxSrc{snc::data(t), (int)t->dtype}, n,
                                                     nrows > 1 ? k : 0, ms, mode, flag);
  SN_TRY(check_launch(c, "index check"));
  unsigned long long bad = 0;
  SN_TRY(flag_read(c, s, flag, &bad));
  if (bad == ~0ull) return SN_OK;
  double v = 0;
  SN_TRY(read_element(c, s, t, (int64_t)bad, &v));
  const int64_t row = nrows > 1 && k > 0 ? (int64_t)bad / k : 0;
  const int64_t pos = nrows > 1 && k > 0 ? (int64_t)bad % k : (int64_t)bad;
  if (v != v) return host->error(SN_ERR_ARG, "%s: index %lld is NaN", op_name(c), (long long)pos);
  return host->error(SN_ERR_ARG, "%s: index value %g (position %lld) is out of range [0, %lld)",
                     op_name(c), v, (long long)pos, (long long)ms.m[row]);
}

int validate1(const sn_call *c, cudaStream_t s, const sn_tensor *t, int64_t m, int mode) {
  RowMs ms;
  memset(&ms, 0, sizeof ms);
  ms.m[0] = m;
  return validate(c, s, t, nelem(t), ms, 1, mode);
}

// ---------------------------------------------------------------------------
// Gather / scatter-add along the middle axis of (outer, M, inner):
// out[o, k, i] = a[o, idx[k], i]; ga[o, idx[k], i] += g[o, k, i].
// ---------------------------------------------------------------------------
template <typename T>
struct GatherRows {
  const T *a;
  T *out;
  IdxSrc idx;
  int64_t M, K, inner;
  int mode;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t i = e % inner, r = e / inner, k = r % K, o = r / K;
    const int64_t j = ix_safe(idx[k], M, mode);
    out[e] = a[(o * M + j) * inner + i];
  }
};

template <typename T>
struct ScatterRows {
  const T *g;
  T *ga;
  IdxSrc idx;
  int64_t M, K, inner;
  int mode;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t i = e % inner, r = e / inner, k = r % K, o = r / K;
    const int64_t j = ix_safe(idx[k], M, mode);
    atomicAdd(&ga[(o * M + j) * inner + i], g[e]);
  }
};

// ---------------------------------------------------------------------------
// take
// ---------------------------------------------------------------------------
const int take_modes[] = {IX_RAISE, IX_WRAP, IX_CLIP};  // enum raise|wrap|clip

struct TakeGeom {
  int64_t outer, M, K, inner;
  int mode;
};

int take_geometry(const sn_call *c, const sn_shape *a, TakeGeom *g) {
  const sn_pval *axis, *mode;
  SN_TRY(get_param(c, "axis", &axis));
  SN_TRY(get_param(c, "mode", &mode));
  const int nd = a->ndim;
  if (axis->i < -(int64_t)nd || axis->i >= nd)
    return host->error(SN_ERR_ARG, "take: axis %lld is out of range [%d, %d] for an input of rank %d",
                       (long long)axis->i, -nd, nd - 1, nd);
  const int ax = (int)(axis->i < 0 ? axis->i + nd : axis->i);
  g->outer = g->inner = 1;
  for (int d = 0; d < ax; d++) g->outer *= a->dim[d];
  for (int d = ax + 1; d < nd; d++) g->inner *= a->dim[d];
  g->M = a->dim[ax];
  g->K = nelem(c->in[1]);
  if (mode->i < 0 || mode->i > 2) return host->error(SN_ERR_ARG, "take: bad mode");
  g->mode = take_modes[mode->i];
  return SN_OK;
}

int take_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  TakeGeom g;
  SN_TRY(take_geometry(c, &c->in[0]->shape, &g));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SN_TRY(validate1(c, s, c->in[1], g.M, g.mode));
    GatherRows<T> f{snc::ptr<T>(c->in[0]), snc::ptr<T>(c->out[0]),
                    IdxSrc{snc::data(c->in[1]), (int)c->in[1]->dtype}, g.M, g.K, g.inner, g.mode};
    return launch_flat(c, s, g.outer * g.K * g.inner, f, "forward");
  });
  return SN_OK;
}

int take_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[1] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[1]));
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  TakeGeom g;
  SN_TRY(take_geometry(c, &c->igrad[0]->shape, &g));
  SNC_FLOAT_SWITCH(c->igrad[0]->dtype, c, T, {
    SN_TRY(validate1(c, s, c->in[1], g.M, g.mode));
    SN_TRY(zero_tensor(c, s, c->igrad[0]));
    ScatterRows<T> f{snc::ptr<T>(c->ograd[0]), snc::ptr<T>(c->igrad[0]),
                     IdxSrc{snc::data(c->in[1]), (int)c->in[1]->dtype}, g.M, g.K, g.inner, g.mode};
    return launch_flat(c, s, g.outer * g.K * g.inner, f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// Embedding: out[k, :] = weight[clip(data[k]), :]
// ---------------------------------------------------------------------------
int emb_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *w = c->in[1];
  const int64_t M = w->shape.dim[0], D = w->shape.dim[1], K = nelem(c->in[0]);
  SNC_FLOAT_SWITCH(w->dtype, c, T, {
    SN_TRY(validate1(c, s, c->in[0], M, IX_CLIP));
    GatherRows<T> f{snc::ptr<T>(w), snc::ptr<T>(c->out[0]),
                    IdxSrc{snc::data(c->in[0]), (int)c->in[0]->dtype}, M, K, D, IX_CLIP};
    return launch_flat(c, s, K * D, f, "forward");
  });
  return SN_OK;
}

int emb_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[0] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[0]));
  if (c->req[1] == SN_REQ_NULL) return SN_OK;
  const sn_tensor *w = c->in[1];
  const int64_t M = w->shape.dim[0], D = w->shape.dim[1], K = nelem(c->in[0]);
  SNC_FLOAT_SWITCH(c->igrad[1]->dtype, c, T, {
    SN_TRY(validate1(c, s, c->in[0], M, IX_CLIP));
    SN_TRY(zero_tensor(c, s, c->igrad[1]));
    ScatterRows<T> f{snc::ptr<T>(c->ograd[0]), snc::ptr<T>(c->igrad[1]),
                     IdxSrc{snc::data(c->in[0]), (int)c->in[0]->dtype}, M, K, D, IX_CLIP};
    return launch_flat(c, s, K * D, f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// pick: O[u] = X[(u / inner) * M + J[u], u % inner]
// ---------------------------------------------------------------------------
struct PickGeom {
  int64_t outer, M, inner;
  int mode;
};

int pick_geometry(const sn_call *c, const sn_shape *sh, PickGeom *g) {
  const sn_pval *axis, *mode;
  char buf[160];
  SN_TRY(get_param(c, "axis", &axis));
  SN_TRY(get_param(c, "mode", &mode));
  if (!axis->set) return host->error(SN_ERR_ARG, "pick: axis=None is not supported; give an axis");
  if (axis->i < -(int64_t)sh->ndim || axis->i >= sh->ndim)
    return host->error(SN_ERR_ARG, "pick: axis %lld is out of range for data of shape %s",
                       (long long)axis->i, shape_str(sh, buf, sizeof buf));
  const int ax = (int)(axis->i < 0 ? axis->i + sh->ndim : axis->i);
  g->outer = g->inner = 1;
  for (int d = 0; d < ax; d++) g->outer *= sh->dim[d];
  for (int d = ax + 1; d < sh->ndim; d++) g->inner *= sh->dim[d];
  g->M = sh->dim[ax];
  g->mode = mode->i == 0 ? IX_WRAP : IX_CLIP;  // enum wrap|clip
  return SN_OK;
}

template <typename T>
struct PickFwd {
  const T *x;
  T *o;
  IdxSrc idx;
  int64_t M, inner;
  int mode;
  __device__ __forceinline__ void operator()(int64_t u) const {
    const int64_t j = ix_safe(idx[u], M, mode);
    o[u] = x[((u / inner) * M + j) * inner + u % inner];
  }
};

template <typename T>
struct PickBwd {
  const T *g;
  T *gx;
  IdxSrc idx;
  int64_t M, inner;
  int mode;
  __device__ __forceinline__ void operator()(int64_t u) const {
    const int64_t j = ix_safe(idx[u], M, mode);
    gx[((u / inner) * M + j) * inner + u % inner] = g[u];
  }
};

int pick_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  PickGeom g;
  SN_TRY(pick_geometry(c, &c->in[0]->shape, &g));
  const int64_t n = g.outer * g.inner;
  if (nelem(c->in[1]) != n)
    return host->error(SN_ERR_SHAPE, "pick (GPU): the index has %lld values, expected %lld",
                       (long long)nelem(c->in[1]), (long long)n);
  SN_TRY(validate1(c, s, c->in[1], g.M, g.mode));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    PickFwd<T> f{snc::ptr<T>(c->in[0]), snc::ptr<T>(c->out[0]),
                 IdxSrc{snc::data(c->in[1]), (int)c->in[1]->dtype}, g.M, g.inner, g.mode};
    return launch_flat(c, s, n, f, "forward");
  });
  return SN_OK;
}

int pick_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[1] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[1]));
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  PickGeom g;
  SN_TRY(pick_geometry(c, &c->in[0]->shape, &g));
  const int64_t n = g.outer * g.inner;
  if (nelem(c->in[1]) != n)
    return host->error(SN_ERR_SHAPE, "pick (GPU): the index has %lld values, expected %lld",
                       (long long)nelem(c->in[1]), (long long)n);
  SN_TRY(validate1(c, s, c->in[1], g.M, g.mode));
  SN_TRY(zero_tensor(c, s, c->igrad[0]));
  SNC_FLOAT_SWITCH(c->igrad[0]->dtype, c, T, {
    PickBwd<T> f{snc::ptr<T>(c->ograd[0]), snc::ptr<T>(c->igrad[0]),
                 IdxSrc{snc::data(c->in[1]), (int)c->in[1]->dtype}, g.M, g.inner, g.mode};
    return launch_flat(c, s, n, f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// one_hot: O[u, j] = j == index(u) ? on : off (any numeric output dtype)
// ---------------------------------------------------------------------------
template <typename T>
struct OneHot {
  T *o;
  IdxSrc idx;
  int64_t depth;
  T on, off;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t u = e / depth, j = e - u * depth;
    o[e] = ix_safe(idx[u], depth, IX_DROP) == j ? on : off;
  }
};

int one_hot_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *depth, *on, *off;
  SN_TRY(get_param(c, "depth", &depth));
  SN_TRY(get_param(c, "on_value", &on));
  SN_TRY(get_param(c, "off_value", &off));
  SN_TRY(validate1(c, s, c->in[0], depth->i, IX_DROP));
  const int64_t n = nelem(c->in[0]);
  sn_tensor *o = c->out[0];
  switch (o->dtype) {
#define OH_CASE(DT, T)                                                                    \
  case DT: {                                                                              \
    OneHot<T> f{snc::ptr<T>(o), IdxSrc{snc::data(c->in[0]), (int)c->in[0]->dtype},        \
                depth->i, (T)on->f, (T)off->f};                                           \
    return launch_flat(c, s, n * depth->i, f, "forward");                                 \
  }
    OH_CASE(SN_F32, float)
    OH_CASE(SN_F64, double)
    OH_CASE(SN_U8, uint8_t)
    OH_CASE(SN_I8, int8_t)
    OH_CASE(SN_I32, int32_t)
    OH_CASE(SN_I64, int64_t)
#undef OH_CASE
    default:
      return host->error(SN_ERR_TYPE, "one_hot: output dtype %s is not supported",
                         dtype_name(o->dtype));
  }
}

// ---------------------------------------------------------------------------
// where: O[i] = cond[i / rowlen] != 0 ? X[i] : Y[i]
// ---------------------------------------------------------------------------
template <typename T>
struct WhereFwd {
  IdxSrc cond;
  const T *x, *y;
  T *o;
  int64_t rowlen;
  __device__ __forceinline__ void operator()(int64_t i) const {
    o[i] = cond[i / rowlen] != 0 ? x[i] : y[i];
  }
};

template <typename T>
struct WhereBwd {
  IdxSrc cond;
  const T *g;
  T *gx, *gy;
  int64_t rowlen;
  __device__ __forceinline__ void operator()(int64_t i) const {
    const bool m = cond[i / rowlen] != 0;
    if (gx) gx[i] = m ? g[i] : (T)0;
    if (gy) gy[i] = m ? (T)0 : g[i];
  }
};

int where_rowlen(const sn_call *c, const sn_tensor *cond, int64_t n, int64_t *rowlen) {
  if (cond->dtype == SN_F16 || dtype_size(cond->dtype) == 0)
    return host->error(SN_ERR_TYPE, "where: condition dtype %s is not supported",
                       dtype_name(cond->dtype));
  const int64_t nc = nelem(cond);
  if (nc <= 0 || n % nc != 0)
    return host->error(SN_ERR_SHAPE, "where (GPU): the condition has %lld values for %lld",
                       (long long)nc, (long long)n);
  *rowlen = n / nc;
  return SN_OK;
}

int where_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const int64_t n = nelem(c->in[1]);
  SNC_FLOAT_SWITCH(c->in[1]->dtype, c, T, {
    int64_t rowlen;
    SN_TRY(where_rowlen(c, c->in[0], n, &rowlen));
    WhereFwd<T> f{IdxSrc{snc::data(c->in[0]), (int)c->in[0]->dtype}, snc::ptr<T>(c->in[1]),
                  snc::ptr<T>(c->in[2]), snc::ptr<T>(c->out[0]), rowlen};
    return launch_flat(c, s, n, f, "forward");
  });
  return SN_OK;
}

int where_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[0] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[0]));
  if (c->req[1] == SN_REQ_NULL && c->req[2] == SN_REQ_NULL) return SN_OK;
  const sn_tensor *og = c->ograd[0];
  const int64_t n = nelem(og);
  SNC_FLOAT_SWITCH(og->dtype, c, T, {
    int64_t rowlen;
    SN_TRY(where_rowlen(c, c->in[0], n, &rowlen));
    WhereBwd<T> f{IdxSrc{snc::data(c->in[0]), (int)c->in[0]->dtype}, snc::ptr<T>(og),
                  c->req[1] != SN_REQ_NULL ? snc::ptr<T>(c->igrad[1]) : nullptr,
                  c->req[2] != SN_REQ_NULL ? snc::ptr<T>(c->igrad[2]) : nullptr, rowlen};
    return launch_flat(c, s, n, f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// gather_nd: out[q, i] = data[off[q] + i], off[q] = sum_j wrap(ind[j, q]) stride[j]
// ---------------------------------------------------------------------------
struct GndGeom {
  int m;
  int64_t k, sl;
  int64_t dim[SN_MAX_DIMS], stride[SN_MAX_DIMS];
};

int gnd_geometry(const sn_call *c, const sn_shape *d, GndGeom *g) {
  const sn_shape *is = &c->in[1]->shape;
  char a[128], b[128];
  if (is->ndim < 1 || is->dim[0] < 1 || is->dim[0] > d->ndim)
    return host->error(SN_ERR_SHAPE, "gather_nd (GPU): indices %s do not fit data %s",
                       shape_str(is, a, sizeof a), shape_str(d, b, sizeof b));
  g->m = (int)is->dim[0];
  g->k = nelem(c->in[1]) / g->m;
  int64_t sl = 1;
  for (int j = g->m; j < d->ndim; j++) sl *= d->dim[j];
  g->sl = sl;
  int64_t st = sl;
  for (int j = g->m - 1; j >= 0; j--) {
    g->stride[j] = st;
    g->dim[j] = d->dim[j];
    st *= d->dim[j];
  }
  return SN_OK;
}

__device__ __forceinline__ int64_t gnd_offset(const GndGeom &g, const IdxSrc &idx, int64_t q) {
  int64_t off = 0;
  for (int j = 0; j < g.m; j++) off += ix_safe(idx[j * g.k + q], g.dim[j], IX_WRAP) * g.stride[j];
  return off;
}

template <typename T>
struct GndFwd {
  GndGeom g;
  IdxSrc idx;
  const T *d;
  T *o;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t q = e / g.sl, i = e - q * g.sl;
    o[e] = d[gnd_offset(g, idx, q) + i];
  }
};

template <typename T>
struct GndBwd {
  GndGeom g;
  IdxSrc idx;
  const T *go;
  T *gd;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t q = e / g.sl, i = e - q * g.sl;
    atomicAdd(&gd[gnd_offset(g, idx, q) + i], go[e]);
  }
};

int gnd_validate(const sn_call *c, cudaStream_t s, const GndGeom &g) {
  RowMs ms;
  memset(&ms, 0, sizeof ms);
  for (int j = 0; j < g.m; j++) ms.m[j] = g.dim[j];
  return validate(c, s, c->in[1], g.k, ms, g.m > 1 ? g.m : 1, IX_WRAP);
}

int gather_nd_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  GndGeom g;
  SN_TRY(gnd_geometry(c, &c->in[0]->shape, &g));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SN_TRY(gnd_validate(c, s, g));
    GndFwd<T> f{g, IdxSrc{snc::data(c->in[1]), (int)c->in[1]->dtype}, snc::ptr<T>(c->in[0]),
                snc::ptr<T>(c->out[0])};
    return launch_flat(c, s, g.k * g.sl, f, "forward");
  });
  return SN_OK;
}

int gather_nd_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[1] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[1]));
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  GndGeom g;
  SN_TRY(gnd_geometry(c, &c->igrad[0]->shape, &g));
  SNC_FLOAT_SWITCH(c->igrad[0]->dtype, c, T, {
    SN_TRY(gnd_validate(c, s, g));
    SN_TRY(zero_tensor(c, s, c->igrad[0]));
    GndBwd<T> f{g, IdxSrc{snc::data(c->in[1]), (int)c->in[1]->dtype}, snc::ptr<T>(c->ograd[0]),
                snc::ptr<T>(c->igrad[0])};
    return launch_flat(c, s, g.k * g.sl, f, "backward");
  });
  return SN_OK;
}

}  // namespace ix
}  // namespace snk

namespace snc {

int register_indexing(const sn_host_api *h) {
  using namespace snk::ix;
  SN_TRY(h->register_kernels("one_hot", one_hot_forward, nullptr));
  SN_TRY(h->register_kernels("take", take_forward, take_backward));
  SN_TRY(h->register_kernels("pick", pick_forward, pick_backward));
  SN_TRY(h->register_kernels("Embedding", emb_forward, emb_backward));
  SN_TRY(h->register_kernels("where", where_forward, where_backward));
  SN_TRY(h->register_kernels("gather_nd", gather_nd_forward, gather_nd_backward));
  return SN_OK;
}

}  // namespace snc
