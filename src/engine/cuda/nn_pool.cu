// GPU kernels of Pooling (ops/pooling.c): max, avg, sum and lp pooling over
// 1-D, 2-D and 3-D windows, global pooling, the valid / full / same output
// conventions (the output shape comes from shape inference), and
// count_include_pad.
//
// Own kernels, not cuDNN: cuDNN has no sum or lp pooling and no "full"
// convention (windows clipped at the padded edge), and its max backward
// does not promise MXNet's tie rule.  The CPU semantics are kept exactly:
//   - max ignores padding (an all-padding window gives the lowest finite
//     value) and NaN never wins; backward gives the gradient to the first
//     element of the window equal to the output (scan order d, h, w);
//   - avg divides by the window clipped to the padded input (count_include_pad)
//     or by the number of real elements;
//   - lp: (sum x^p)^(1/p) with no absolute value, gradient x^(p-1)/out^(p-1)
//     (nothing where out is 0);
//   - sums run in the window's scan order, in T, like the CPU.
// Forward: one thread per output.  Backward is a gather (one thread per
// input element, visiting the covering windows in output order, so the
// additions happen in the CPU's order and no atomics are needed), except max
// pooling with non-overlapping windows (stride >= kernel or a single window
// along each dim, as in global pooling):
// zero fill, then one thread per output writes its winner.  No temporary
// memory.
#include "nn_common.cuh"

namespace snn {

namespace {

enum { POOL_MAX, POOL_AVG, POOL_SUM, POOL_LP };
const char *const kPoolTypes[] = {"max", "avg", "sum", "lp"};

struct PoolGeom {
  int64_t in[3], out[3], k[3], s[3], p[3];
  int64_t planes, isz, osz;
  int type, pval, cip;
};

int pool_geom(const sn_call *c, const sn_shape *x, const sn_shape *y, PoolGeom *g) {
  char buf[128];
  int type = 0;
  bool global = false, cip = true, pset = false;
  int64_t pval = 0;
  sn_shape ks = {0, {0}}, ss = {0, {0}}, ps = {0, {0}};
  SN_TRY(p_enum(c, "pool_type", kPoolTypes, 4, &type));
  SN_TRY(p_bool(c, "global_pool", &global));
  SN_TRY(p_bool(c, "count_include_pad", &cip));
  SN_TRY(p_opt_int(c, "p_value", &pset, &pval));
  SN_TRY(p_shape(c, "kernel", &ks));
  SN_TRY(p_shape(c, "stride", &ss));
  SN_TRY(p_shape(c, "pad", &ps));
  const int nsp = x->ndim - 2, off = 3 - nsp;
  if (nsp < 1 || nsp > 3 || y->ndim != x->ndim)
    return host->error(SN_ERR_SHAPE, "Pooling: unexpected data rank %d", x->ndim);
  if (!global && ks.ndim != nsp)
    return host->error(SN_ERR_SHAPE, "Pooling: a kernel %s needs %dD data, got %s",
                       shape_str(&ks, buf, 64), ks.ndim + 2, shape_str(x, buf + 64, 64));
  if (!global && ((ss.ndim != 0 && ss.ndim != nsp) || (ps.ndim != 0 && ps.ndim != nsp)))
    return host->error(SN_ERR_ARG, "Pooling: stride and pad must have as many entries as kernel");
  if (type == POOL_LP) {
    if (!pset) return host->error(SN_ERR_ARG, "Pooling: p_value is required for pool_type 'lp'");
    if (pval < 1 || pval > 3)
      return host->error(SN_ERR_ARG, "Pooling: p_value %lld is not supported (1, 2 or 3)",
                         (long long)pval);
  }
  memset(g, 0, sizeof *g);
  for (int i = 0; i < 3; i++) {
    g->in[i] = g->out[i] = g->k[i] = g->s[i] = 1;
    g->p[i] = 0;
  }
  for (int i = 0; i < nsp; i++) {
    g->in[off + i] = x->dim[2 + i];
    g->out[off + i] = y->dim[2 + i];
    if (global) {
      g->k[off + i] = x->dim[2 + i];
    } else {
      g->k[off + i] = ks.dim[i];
      g->s[off + i] = ss.ndim ? ss.dim[i] : 1;
      g->p[off + i] = ps.ndim ? ps.dim[i] : 0;
      if (g->k[off + i] < 1 || g->s[off + i] < 1 || g->p[off + i] < 0)
        return host->error(SN_ERR_ARG, "Pooling: kernel and stride must be positive, pad >= 0");
    }
  }
  g->planes = x->dim[0] * x->dim[1];
  g->isz = g->in[0] * g->in[1] * g->in[2];
  g->osz = g->out[0] * g->out[1] * g->out[2];
  g->type = type;
  g->pval = (int)pval;
  g->cip = cip ? 1 : 0;
  return SN_OK;
}

// Window of output o along dim d: [lo, hi) inside the input, st the start
// (may be negative), pe the end clipped to the padded input.
struct Win {
  int64_t st, pe, lo, hi;
};

__device__ __forceinline__ Win window(const PoolGeom &g, int d, int64_t o) {
  Win w;
  w.st = o * g.s[d] - g.p[d];
  w.pe = w.st + g.k[d] < g.in[d] + g.p[d] ? w.st + g.k[d] : g.in[d] + g.p[d];
  w.lo = w.st > 0 ? w.st : 0;
  w.hi = w.st + g.k[d] < g.in[d] ? w.st + g.k[d] : g.in[d];
  return w;
}

__device__ __forceinline__ int64_t avg_count(const PoolGeom &g, const Win &a, const Win &b,
                                             const Win &c) {
  return g.cip ? (a.pe - a.st) * (b.pe - b.st) * (c.pe - c.st)
               : (a.hi - a.lo) * (b.hi - b.lo) * (c.hi - c.lo);
}

template <typename T>
__global__ void pool_fwd_kernel(PoolGeom g, const T *x, T *y) {
  const int64_t total = g.planes * g.osz;
  const int64_t IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  SNN_LOOP(t, total) {
    const int64_t pl = t / g.osz, oi = t - pl * g.osz;
    const int64_t ow = oi % OW, oh = (oi / OW) % OH, od = oi / (OW * OH);
    const Win w0 = window(g, 0, od), w1 = window(g, 1, oh), w2 = window(g, 2, ow);
    const T *xp = x + pl * g.isz;
    T r;
    if (g.type == POOL_MAX) {
      r = Lowest<T>::v();
      for (int64_t d = w0.lo; d < w0.hi; d++)
        for (int64_t h = w1.lo; h < w1.hi; h++) {
          const T *row = xp + (d * IH + h) * IW;
          for (int64_t w = w2.lo; w < w2.hi; w++)
            if (row[w] > r) r = row[w];
        }
    } else {
      T sum = 0;
      const int pv = g.type == POOL_LP ? g.pval : 1;
      for (int64_t d = w0.lo; d < w0.hi; d++)
        for (int64_t h = w1.lo; h < w1.hi; h++) {
          const T *row = xp + (d * IH + h) * IW;
          if (pv == 1) {
            for (int64_t w = w2.lo; w < w2.hi; w++) sum += row[w];
          } else if (pv == 2) {
            for (int64_t w = w2.lo; w < w2.hi; w++) sum += row[w] * row[w];
          } else {
            for (int64_t w = w2.lo; w < w2.hi; w++) sum += row[w] * row[w] * row[w];
          }
        }
      if (g.type == POOL_AVG)
        r = sum / (T)avg_count(g, w0, w1, w2);
      else if (g.type == POOL_LP && g.pval == 2)
        r = d_sqrt(sum);
      else if (g.type == POOL_LP && g.pval == 3)
        r = d_cbrt(sum);
      else
        r = sum;
    }
    y[pl * g.osz + oi] = r;
  }
}

// Index (within the plane) of the first element of the window equal to mv,
// or -1.
template <typename T>
__device__ __forceinline__ int64_t first_match(const PoolGeom &g, const T *xp, const Win &w0,
                                               const Win &w1, const Win &w2, T mv) {
  const int64_t IH = g.in[1], IW = g.in[2];
  for (int64_t d = w0.lo; d < w0.hi; d++)
    for (int64_t h = w1.lo; h < w1.hi; h++) {
      const int64_t base = (d * IH + h) * IW;
      for (int64_t w = w2.lo; w < w2.hi; w++)
        if (xp[base + w] == mv) return base + w;
    }
  return -1;
}

// Max backward, non-overlapping windows: gx zeroed before.
template <typename T>
__global__ void pool_max_scatter_kernel(PoolGeom g, const T *x, const T *y, const T *gy, T *gx) {
  const int64_t total = g.planes * g.osz;
  const int64_t OH = g.out[1], OW = g.out[2];
  SNN_LOOP(t, total) {
    const int64_t pl = t / g.osz, oi = t - pl * g.osz;
    const int64_t ow = oi % OW, oh = (oi / OW) % OH, od = oi / (OW * OH);
    const Win w0 = window(g, 0, od), w1 = window(g, 1, oh), w2 = window(g, 2, ow);
    const int64_t idx = first_match(g, x + pl * g.isz, w0, w1, w2, y[t]);
    if (idx >= 0) gx[pl * g.isz + idx] += gy[t];
  }
}

// Outputs o along dim d whose window contains input i: [lo, hi].
__device__ __forceinline__ void covering(const PoolGeom &g, int d, int64_t i, int64_t *lo,
                                         int64_t *hi) {
  const int64_t a = i + g.p[d] - g.k[d] + 1;
  *lo = a <= 0 ? 0 : (a + g.s[d] - 1) / g.s[d];
  int64_t h = (i + g.p[d]) / g.s[d];
  *hi = h < g.out[d] - 1 ? h : g.out[d] - 1;
}

// Gather backward: one thread per input element.
template <typename T>
__global__ void pool_gather_kernel(PoolGeom g, const T *x, const T *y, const T *gy, T *gx) {
  const int64_t total = g.planes * g.isz;
  const int64_t IH = g.in[1], IW = g.in[2], OH = g.out[1], OW = g.out[2];
  SNN_LOOP(t, total) {
    const int64_t pl = t / g.isz, ii = t - pl * g.isz;
    const int64_t iw = ii % IW, ih = (ii / IW) % IH, id = ii / (IW * IH);
    int64_t lo0, hi0, lo1, hi1, lo2, hi2;
    covering(g, 0, id, &lo0, &hi0);
    covering(g, 1, ih, &lo1, &hi1);
    covering(g, 2, iw, &lo2, &hi2);
    const T *xp = x ? x + pl * g.isz : nullptr;
    const T *yp = y ? y + pl * g.osz : nullptr;
    const T *gyp = gy + pl * g.osz;
    T acc = 0;
    for (int64_t od = lo0; od <= hi0; od++) {
      const Win w0 = window(g, 0, od);
      for (int64_t oh = lo1; oh <= hi1; oh++) {
        const Win w1 = window(g, 1, oh);
        for (int64_t ow = lo2; ow <= hi2; ow++) {
          const int64_t oi = (od * OH + oh) * OW + ow;
          const T gv = gyp[oi];
          if (g.type == POOL_MAX) {
            const Win w2 = window(g, 2, ow);
            if (first_match(g, xp, w0, w1, w2, yp[oi]) == ii) acc += gv;
          } else if (g.type == POOL_LP && g.pval > 1) {
            const T mv = yp[oi];
            if (mv == (T)0) continue;
            const T q = xp[ii] / mv;
            acc += g.pval == 2 ? gv * q : gv * q * q;
          } else if (g.type == POOL_AVG) {
            const Win w2 = window(g, 2, ow);
            acc += gv / (T)avg_count(g, w0, w1, w2);
          } else {
            acc += gv;
          }
        }
      }
    }
    gx[t] = acc;
  }
}

int pool_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  PoolGeom g;
  SN_TRY(pool_geom(c, &c->in[0]->shape, &c->out[0]->shape, &g));
  const int64_t total = g.planes * g.osz;
  if (total == 0) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    pool_fwd_kernel<T><<<grid_for(total), SNN_BLOCK, 0, s>>>(g, snc::ptr<T>(c->in[0]),
                                                             snc::ptr<T>(c->out[0]));
  });
  return check_launch(c, "pooling");
}

int pool_backward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "Pooling: backward needs the output gradient");
  PoolGeom g;
  SN_TRY(pool_geom(c, &c->in[0]->shape, &c->out[0]->shape, &g));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const int64_t itotal = g.planes * g.isz, ototal = g.planes * g.osz;
  if (itotal == 0) return SN_OK;
  // each input in at most one window: stride >= kernel, or a single window
  // along the dim (global pooling)
  bool disjoint = true;
  for (int d = 0; d < 3; d++) disjoint = disjoint && (g.s[d] >= g.k[d] || g.out[d] == 1);
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *x = snc::ptr<T>(c->in[0]);
    const T *y = snc::ptr<T>(c->out[0]);
    const T *gy = snc::ptr<T>(c->ograd[0]);
    T *gx = snc::ptr<T>(c->igrad[0]);
    if (g.type == POOL_MAX && disjoint) {
      SN_TRY(zero_async(c, s, gx, (size_t)itotal * sizeof(T)));
      if (ototal > 0)
        pool_max_scatter_kernel<T><<<grid_for(ototal), SNN_BLOCK, 0, s>>>(g, x, y, gy, gx);
    } else {
      pool_gather_kernel<T><<<grid_for(itotal), SNN_BLOCK, 0, s>>>(g, x, y, gy, gx);
    }
  });
  return check_launch(c, "pooling backward");
}

}  // namespace

}  // namespace snn

namespace snc {

int register_nn_pool(const sn_host_api *h) {
  return h->register_kernels("Pooling", snn::pool_forward, snn::pool_backward);
}

}  // namespace snc
