/* Pooling (MXNet 1.x): max, avg, sum and Lp pooling over 1-D, 2-D and 3-D
 * windows of NCW / NCHW / NCDHW data, forward and backward.
 *
 * Output size per spatial dim (x input, k kernel, p pad, s stride):
 *   valid (default): floor((x + 2p - k) / s) + 1
 *   full:            ceil((x + 2p - k) / s) + 1  (the last window may run past
 *                    the padded edge; it is clipped)
 *   same (1-D only, pad must be 0): ceil((x + 2p) / s)
 * global_pool = True pools each whole feature map (kernel = input size,
 * stride 1, pad 0) and needs no kernel.  MXNet quirks kept:
 *  - max ignores padding (a window entirely in the padding gives the lowest
 *    finite value of the dtype); backward routes the gradient to the first
 *    element of the window equal to the output (scan order d, h, w);
 *  - avg divides by the window clipped to the padded input (so padding
 *    counts, windows running past the padded edge do not); with
 *    count_include_pad = False it divides by the number of real elements;
 *  - lp (p_value 1, 2 or 3 required): (sum x^p)^(1/p) with no absolute
 *    value, gradient x^(p-1) / out^(p-1) (0 where out is 0);
 *  - stride defaults to 1 and pad to 0 in each dim.
 * count_include_pad is a plain bool defaulting to True (MXNet's None means
 * True).  Backward reads the input and the output (max, lp); the 2x2 stride
 * 2 unpadded max and avg pools have dedicated loops. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

enum {
  P_KERNEL, P_POOL_TYPE, P_GLOBAL_POOL, P_CUDNN_OFF, P_CONVENTION, P_STRIDE, P_PAD, P_P_VALUE,
  P_COUNT_INCLUDE_PAD, P_LAYOUT
};
enum { POOL_MAX, POOL_AVG, POOL_SUM, POOL_LP };
enum { CONV_VALID, CONV_FULL, CONV_SAME };

static const sn_param_spec pool_params[] = {
    {"kernel", SN_PT_SHAPE, "()", NULL, "Pooling kernel size: (w,), (h, w) or (d, h, w)."},
    {"pool_type", SN_PT_ENUM, "max", "max|avg|sum|lp", "Pooling type to be applied."},
    {"global_pool", SN_PT_BOOL, "False", NULL,
     "Ignore kernel size, do global pooling based on current input feature map."},
    {"cudnn_off", SN_PT_BOOL, "False", NULL,
     "Turn off cudnn pooling and use MXNet pooling operator."},
    {"pooling_convention", SN_PT_ENUM, "valid", "valid|full|same",
     "Pooling convention to be applied."},
    {"stride", SN_PT_SHAPE, "()", NULL,
     "Stride: for pooling (w,), (h, w) or (d, h, w). Defaults to 1 for each dimension."},
    {"pad", SN_PT_SHAPE, "()", NULL,
     "Pad for pooling: (w,), (h, w) or (d, h, w). Defaults to no padding."},
    {"p_value", SN_PT_OPT_INT, "None", NULL,
     "Value of p for Lp pooling, can be 1, 2 or 3, required for Lp Pooling."},
    {"count_include_pad", SN_PT_BOOL, "True", NULL,
     "Only used for AvgPool, specify whether to count padding elements for average "
     "calculation. For example, with a 5*5 kernel on a 3*3 corner of a image, the sum of the "
     "9 valid elements will be divided by 25 if this is set to true, or it will be divided "
     "by 9 if this is set to false. Defaults to true."},
    {"layout", SN_PT_ENUM, "None", "None|NCW|NCHW|NCDHW",
     "Set layout for input and output. Empty for default layout: NCW for 1d, NCHW for 2d "
     "and NCDHW for 3d."},
};

typedef struct {
  int nsp; /* spatial dims of the kernel (0 for global pooling without kernel) */
  int64_t k[3], s[3], p[3]; /* C order, nsp entries */
  int type, conv, global, pval, cip;
} pool_param;

static int pool_param_read(const sn_params *p, pool_param *pp) {
  char buf[128];
  const sn_pval *v = p->v;
  memset(pp, 0, sizeof *pp);
  pp->type = (int)v[P_POOL_TYPE].i;
  pp->conv = (int)v[P_CONVENTION].i;
  pp->global = (int)v[P_GLOBAL_POOL].i;
  pp->cip = (int)v[P_COUNT_INCLUDE_PAD].i;
  const sn_shape *ks = &v[P_KERNEL].s;
  if (ks->ndim > 3 || (!pp->global && ks->ndim < 1))
    return sn_error(SN_ERR_ARG, "Pooling: kernel %s must have 1, 2 or 3 entries (or set "
                    "global_pool = True)", sn_shape_str(ks, buf, sizeof buf));
  pp->nsp = ks->ndim;
  for (int i = 0; i < pp->nsp; i++) {
    if (ks->dim[i] < 1 && !pp->global)
      return sn_error(SN_ERR_ARG, "Pooling: kernel %s must be positive",
                      sn_shape_str(ks, buf, sizeof buf));
    pp->k[i] = ks->dim[i];
    pp->s[i] = 1;
    pp->p[i] = 0;
  }
  const sn_shape *ss = &v[P_STRIDE].s, *ps = &v[P_PAD].s;
  if (!pp->global) {
    if (ss->ndim != 0 && ss->ndim != pp->nsp)
      return sn_error(SN_ERR_ARG, "Pooling: stride %s and kernel %s must have the same length",
                      sn_shape_str(ss, buf, sizeof buf), sn_shape_str(ks, buf + 64, 64));
    if (ps->ndim != 0 && ps->ndim != pp->nsp)
      return sn_error(SN_ERR_ARG, "Pooling: pad %s and kernel %s must have the same length",
                      sn_shape_str(ps, buf, sizeof buf), sn_shape_str(ks, buf + 64, 64));
    for (int i = 0; i < ss->ndim; i++) {
      if (ss->dim[i] < 1)
        return sn_error(SN_ERR_ARG, "Pooling: stride %s must be positive",
                        sn_shape_str(ss, buf, sizeof buf));
      pp->s[i] = ss->dim[i];
    }
    for (int i = 0; i < ps->ndim; i++) {
      if (ps->dim[i] < 0)
        return sn_error(SN_ERR_ARG, "Pooling: pad %s must be >= 0",
                        sn_shape_str(ps, buf, sizeof buf));
      pp->p[i] = ps->dim[i];
    }
  }
  if (pp->type == POOL_LP) {
    if (!v[P_P_VALUE].set)
      return sn_error(SN_ERR_ARG, "Pooling: p_value is required for pool_type 'lp'");
    if (v[P_P_VALUE].i < 1 || v[P_P_VALUE].i > 3)
      return sn_error(SN_ERR_ARG, "Pooling: p_value %lld is not supported (1, 2 or 3)",
                      (long long)v[P_P_VALUE].i);
    pp->pval = (int)v[P_P_VALUE].i;
  }
  if (pp->conv == CONV_SAME && !pp->global) {
    if (pp->nsp != 1)
      return sn_error(SN_ERR_ARG, "Pooling: pooling_convention 'same' supports 1-D pooling "
                      "only, got kernel %s", sn_shape_str(ks, buf, sizeof buf));
    if (pp->p[0] != 0)
      return sn_error(SN_ERR_ARG, "Pooling: pooling_convention 'same' does not allow pad");
  }
  return SN_OK;
}

static int pool_check_layout(const sn_params *p, int ndim) {
  int64_t layout = p->v[P_LAYOUT].i; /* 0 None, 1 NCW, 2 NCHW, 3 NCDHW */
  if (layout != 0 && layout + 2 != ndim)
    return sn_error(SN_ERR_ARG, "Pooling: layout %s does not match %dD data",
                    layout == 1 ? "NCW" : layout == 2 ? "NCHW" : "NCDHW", ndim);
  return SN_OK;
}

/* Output size of one spatial dim. */
static int pool_out_size(const pool_param *pp, int i, int64_t x, const sn_shape *data,
                         int64_t *y) {
  char buf[128];
  const int64_t k = pp->k[i], s = pp->s[i], padded = x + 2 * pp->p[i];
  if (k > padded)
    return sn_error(SN_ERR_SHAPE, "Pooling: kernel size (%lld) exceeds input (%lld padded to "
                    "%lld) in spatial dim %d of data %s", (long long)k, (long long)x,
                    (long long)padded, i, sn_shape_str(data, buf, sizeof buf));
  if (pp->conv == CONV_VALID)
    *y = 1 + (padded - k) / s;
  else if (pp->conv == CONV_FULL)
    *y = 1 + (padded - k + s - 1) / s;
  else
    *y = (padded + s - 1) / s;
  return SN_OK;
}

static int pool_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  pool_param pp;
  char buf[128];
  SN_TRY(pool_param_read(p, &pp));
  sn_shape *data = &in[0];
  if (data->ndim < 0) return SN_OK;
  if (data->ndim < 3 || data->ndim > 5)
    return sn_error(SN_ERR_SHAPE, "Pooling: data %s should be 3D (batch, channel, x), 4D "
                    "(batch, channel, y, x) or 5D (batch, channel, d, y, x)",
                    sn_shape_str(data, buf, sizeof buf));
  SN_TRY(pool_check_layout(p, data->ndim));
  if (!pp.global && data->ndim != pp.nsp + 2)
    return sn_error(SN_ERR_SHAPE, "Pooling: a %d-D kernel needs %dD data, got %s", pp.nsp,
                    pp.nsp + 2, sn_shape_str(data, buf, sizeof buf));
  if (pp.conv == CONV_SAME && data->ndim != 3)
    return sn_error(SN_ERR_SHAPE, "Pooling: pooling_convention 'same' supports 3D data "
                    "(1-D pooling) only, got %s", sn_shape_str(data, buf, sizeof buf));
  sn_shape o = *data;
  for (int i = 2; i < data->ndim; i++) {
    if (pp.global) {
      o.dim[i] = 1;
    } else if (data->dim[i] == 0) {
      o.dim[i] = 0;
    } else {
      SN_TRY(pool_out_size(&pp, i - 2, data->dim[i], data, &o.dim[i]));
    }
  }
  SN_TRY(sn_shape_assign(&out[0], &o, "Pooling: output"));
  int64_t back[SN_MAX_DIMS] = {out[0].dim[0], out[0].dim[1]};
  sn_shape b = sn_shape_make(data->ndim, back);
  return sn_shape_assign(data, &b, "Pooling: data");
}

/* ---- geometry of one call ---- */

typedef struct {
  int64_t in[3], out[3], k[3], s[3], p[3];
  int64_t planes, isz, osz;
  int type, pval, cip;
} pool_geom;

static int pool_geom_make(const sn_params *p, const sn_shape *x, const sn_shape *y,
                          pool_geom *g) {
  pool_param pp;
  SN_TRY(pool_param_read(p, &pp));
  const int nsp = x->ndim - 2, off = 3 - nsp;
  if (nsp < 1 || nsp > 3 || y->ndim != x->ndim)
    return sn_error(SN_ERR_SHAPE, "Pooling: unexpected data rank %d", x->ndim);
  memset(g, 0, sizeof *g);
  for (int i = 0; i < 3; i++) {
    g->in[i] = g->out[i] = g->k[i] = g->s[i] = 1;
    g->p[i] = 0;
  }
  for (int i = 0; i < nsp; i++) {
    g->in[off + i] = x->dim[2 + i];
    g->out[off + i] = y->dim[2 + i];
    if (pp.global) {
      g->k[off + i] = x->dim[2 + i];
    } else {
      g->k[off + i] = pp.k[i];
      g->s[off + i] = pp.s[i];
      g->p[off + i] = pp.p[i];
    }
  }
  g->planes = x->dim[0] * x->dim[1];
  g->isz = g->in[0] * g->in[1] * g->in[2];
  g->osz = g->out[0] * g->out[1] * g->out[2];
  g->type = pp.type;
  g->pval = pp.pval;
  g->cip = pp.cip;
  return SN_OK;
}

/* The 2x2, stride 2, unpadded pool whose windows all lie inside the input. */
static int pool_is_2x2(const pool_geom *g) {
  return g->in[0] == 1 && g->k[1] == 2 && g->k[2] == 2 && g->s[1] == 2 && g->s[2] == 2 &&
         g->p[1] == 0 && g->p[2] == 0 && 2 * g->out[1] <= g->in[1] &&
         2 * g->out[2] <= g->in[2] && (g->type == POOL_MAX || g->type == POOL_AVG);
}

#define SN_MAXV(a, b) ((b) > (a) ? (b) : (a))

/* Window of output o along one dim: [lo, hi) inside the input, and the
 * padded extent used by avg pooling. */
#define SN_WINDOW(o, dim)                                                                      \
  const int64_t st##dim = (o) * g->s[dim] - g->p[dim];                                         \
  const int64_t pe##dim = st##dim + g->k[dim] < g->in[dim] + g->p[dim]                         \
                              ? st##dim + g->k[dim]                                            \
                              : g->in[dim] + g->p[dim];                                        \
  const int64_t lo##dim = st##dim > 0 ? st##dim : 0;                                           \
  const int64_t hi##dim = st##dim + g->k[dim] < g->in[dim] ? st##dim + g->k[dim] : g->in[dim];

/* SSE2 versions of the float32 2x2 inner loops (4 windows per step); they
 * return how many outputs of the row they did, the scalar loop does the rest. */
#if defined(__SSE2__)
#include <emmintrin.h>

static int64_t pool2x2_fwd_row_sse(const float *r0, const float *r1, float *o, int64_t OW,
                                   int is_max) {
  int64_t ow = 0;
  const __m128 quarter = _mm_set1_ps(0.25f);
  for (; ow + 4 <= OW; ow += 4) {
    __m128 a0 = _mm_loadu_ps(r0 + 2 * ow), a1 = _mm_loadu_ps(r0 + 2 * ow + 4);
    __m128 b0 = _mm_loadu_ps(r1 + 2 * ow), b1 = _mm_loadu_ps(r1 + 2 * ow + 4);
    __m128 v0, v1, ev, od;
    if (is_max) {
      v0 = _mm_max_ps(a0, b0);
      v1 = _mm_max_ps(a1, b1);
    } else {
      v0 = _mm_add_ps(a0, b0);
      v1 = _mm_add_ps(a1, b1);
    }
    ev = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
    od = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    _mm_storeu_ps(o + ow, is_max ? _mm_max_ps(ev, od) : _mm_mul_ps(_mm_add_ps(ev, od), quarter));
  }
  return ow;
}

/* Gradient of 4 max windows whose 8 input columns per row are a0|a1 (row 0)
 * and b0|b1 (row 1): the first element equal to the max gets the gradient. */
static inline void max2x2_grad_half(__m128 a, __m128 b, __m128 m, __m128 g, __m128 odd,
                                    float *d0, float *d1) {
  __m128 ea = _mm_cmpeq_ps(a, m), eb = _mm_cmpeq_ps(b, m);
  /* prev(x) = [0, x0, 0, x2]: the left neighbour in the window */
  __m128 pa = _mm_and_ps(_mm_shuffle_ps(ea, ea, _MM_SHUFFLE(2, 2, 0, 0)), odd);
  __m128 pb = _mm_and_ps(_mm_shuffle_ps(eb, eb, _MM_SHUFFLE(2, 2, 0, 0)), odd);
  __m128 sa = _mm_andnot_ps(pa, ea);
  __m128 anya = _mm_or_ps(ea, _mm_shuffle_ps(ea, ea, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 sb = _mm_andnot_ps(_mm_or_ps(pb, anya), eb);
  _mm_storeu_ps(d0, _mm_and_ps(sa, g));
  _mm_storeu_ps(d1, _mm_and_ps(sb, g));
}

static int64_t pool2x2_bwd_row_sse(const float *r0, const float *r1, const float *m,
                                   const float *gr, float *d0, float *d1, int64_t OW,
                                   int is_max) {
  int64_t ow = 0;
  const __m128 quarter = _mm_set1_ps(0.25f);
  const __m128 odd = _mm_castsi128_ps(_mm_set_epi32(-1, 0, -1, 0));
  for (; ow + 4 <= OW; ow += 4) {
    __m128 g = _mm_loadu_ps(gr + ow);
    __m128 glo = _mm_unpacklo_ps(g, g), ghi = _mm_unpackhi_ps(g, g);
    if (is_max) {
      __m128 mv = _mm_loadu_ps(m + ow);
      __m128 mlo = _mm_unpacklo_ps(mv, mv), mhi = _mm_unpackhi_ps(mv, mv);
      max2x2_grad_half(_mm_loadu_ps(r0 + 2 * ow), _mm_loadu_ps(r1 + 2 * ow), mlo, glo, odd,
                       d0 + 2 * ow, d1 + 2 * ow);
      max2x2_grad_half(_mm_loadu_ps(r0 + 2 * ow + 4), _mm_loadu_ps(r1 + 2 * ow + 4), mhi, ghi,
                       odd, d0 + 2 * ow + 4, d1 + 2 * ow + 4);
    } else {
      glo = _mm_mul_ps(glo, quarter);
      ghi = _mm_mul_ps(ghi, quarter);
      _mm_storeu_ps(d0 + 2 * ow, glo);
      _mm_storeu_ps(d1 + 2 * ow, glo);
      _mm_storeu_ps(d0 + 2 * ow + 4, ghi);
      _mm_storeu_ps(d1 + 2 * ow + 4, ghi);
    }
  }
  return ow;
}
#define SN_POOL_FWD_ROW_f32(r0, r1, o, OW, is_max) pool2x2_fwd_row_sse(r0, r1, o, OW, is_max)
#define SN_POOL_BWD_ROW_f32(r0, r1, m, gr, d0, d1, OW, is_max) \
  pool2x2_bwd_row_sse(r0, r1, m, gr, d0, d1, OW, is_max)
#else
#define SN_POOL_FWD_ROW_f32(r0, r1, o, OW, is_max) ((int64_t)0)
#define SN_POOL_BWD_ROW_f32(r0, r1, m, gr, d0, d1, OW, is_max) ((int64_t)0)
#endif
#define SN_POOL_FWD_ROW_f64(r0, r1, o, OW, is_max) ((int64_t)0)
#define SN_POOL_BWD_ROW_f64(r0, r1, m, gr, d0, d1, OW, is_max) ((int64_t)0)

#define SN_DEFINE_POOL(T, SFX, LOWEST, SQRT, CBRT)                                             \
  static void pool2x2_fwd_##SFX(const pool_geom *g, const T *x, T *y) {                       \
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];                  \
    const int is_max = g->type == POOL_MAX;                                                    \
    SN_PARALLEL_FOR_COST(g->planes, g->isz)                                                    \
    for (int64_t pl = 0; pl < g->planes; pl++) {                                               \
      const T *xp = x + pl * H * W;                                                            \
      T *yp = y + pl * OH * OW;                                                                \
      for (int64_t oh = 0; oh < OH; oh++) {                                                    \
        const T *r0 = xp + 2 * oh * W, *r1 = r0 + W;                                           \
        T *o = yp + oh * OW;                                                                   \
        const int64_t done = SN_POOL_FWD_ROW_##SFX(r0, r1, o, OW, is_max);                     \
        if (is_max) {                                                                          \
          for (int64_t ow = done; ow < OW; ow++) {                                             \
            T a = SN_MAXV(r0[2 * ow], r0[2 * ow + 1]);                                         \
            T b = SN_MAXV(r1[2 * ow], r1[2 * ow + 1]);                                         \
            o[ow] = SN_MAXV(a, b);                                                             \
          }                                                                                    \
        } else {                                                                               \
          for (int64_t ow = done; ow < OW; ow++)                                               \
            o[ow] = ((r0[2 * ow] + r1[2 * ow]) + (r0[2 * ow + 1] + r1[2 * ow + 1])) * (T)0.25; \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  static void pool2x2_bwd_##SFX(const pool_geom *g, const T *x, const T *y, const T *gy,      \
                                T *gx) {                                                        \
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];                  \
    const int is_max = g->type == POOL_MAX;                                                    \
    SN_PARALLEL_FOR_COST(g->planes, g->isz)                                                    \
    for (int64_t pl = 0; pl < g->planes; pl++) {                                               \
      const T *xp = x + pl * H * W, *yp = y + pl * OH * OW, *gyp = gy + pl * OH * OW;          \
      T *gxp = gx + pl * H * W;                                                                \
      for (int64_t oh = 0; oh < OH; oh++) {                                                    \
        T *d0 = gxp + 2 * oh * W, *d1 = d0 + W;                                                \
        const T *gr = gyp + oh * OW;                                                           \
        const T *r0 = xp + 2 * oh * W, *r1 = r0 + W, *m = yp + oh * OW;                        \
        const int64_t done = SN_POOL_BWD_ROW_##SFX(r0, r1, m, gr, d0, d1, OW, is_max);         \
        if (is_max) {                                                                          \
          for (int64_t ow = done; ow < OW; ow++) {                                             \
            const T mv = m[ow], gv = gr[ow];                                                   \
            const int e0 = r0[2 * ow] == mv;                                                   \
            const int e1 = !e0 & (r0[2 * ow + 1] == mv);                                       \
            const int e2 = !(e0 | e1) & (r1[2 * ow] == mv);                                    \
            const int e3 = !(e0 | e1 | e2) & (r1[2 * ow + 1] == mv);                           \
            d0[2 * ow] = e0 ? gv : (T)0;                                                       \
            d0[2 * ow + 1] = e1 ? gv : (T)0;                                                   \
            d1[2 * ow] = e2 ? gv : (T)0;                                                       \
            d1[2 * ow + 1] = e3 ? gv : (T)0;                                                   \
          }                                                                                    \
        } else {                                                                               \
          for (int64_t ow = done; ow < OW; ow++) {                                             \
            const T gv = gr[ow] * (T)0.25;                                                     \
            d0[2 * ow] = gv;                                                                   \
            d0[2 * ow + 1] = gv;                                                               \
            d1[2 * ow] = gv;                                                                   \
            d1[2 * ow + 1] = gv;                                                               \
          }                                                                                    \
        }                                                                                      \
        for (int64_t w = 2 * OW; w < W; w++) d0[w] = d1[w] = 0;                                \
      }                                                                                        \
      if (2 * OH < H)                                                                          \
        memset(gxp + 2 * OH * W, 0, sizeof(T) * (size_t)((H - 2 * OH) * W));                  \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  static void pool_fwd_##SFX(const pool_geom *g, const T *x, T *y) {                          \
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];                                 \
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];                              \
    const int type = g->type, pval = g->pval, cip = g->cip;                                    \
    (void)ID;                                                                                  \
    SN_PARALLEL_FOR_COST(g->planes, g->isz + g->osz * g->k[0] * g->k[1] * g->k[2])             \
    for (int64_t pl = 0; pl < g->planes; pl++) {                                               \
      const T *xp = x + pl * g->isz;                                                           \
      T *yp = y + pl * g->osz;                                                                 \
      for (int64_t od = 0; od < OD; od++) {                                                    \
        SN_WINDOW(od, 0)                                                                       \
        for (int64_t oh = 0; oh < OH; oh++) {                                                  \
          SN_WINDOW(oh, 1)                                                                     \
          for (int64_t ow = 0; ow < OW; ow++) {                                                \
            SN_WINDOW(ow, 2)                                                                   \
            T r;                                                                               \
            if (type == POOL_MAX) {                                                            \
              r = LOWEST;                                                                      \
              for (int64_t d = lo0; d < hi0; d++)                                              \
                for (int64_t h = lo1; h < hi1; h++) {                                          \
                  const T *row = xp + (d * IH + h) * IW;                                       \
                  for (int64_t w = lo2; w < hi2; w++)                                          \
                    if (row[w] > r) r = row[w];                                                \
                }                                                                              \
            } else {                                                                           \
              T sum = 0;                                                                       \
              for (int64_t d = lo0; d < hi0; d++)                                              \
                for (int64_t h = lo1; h < hi1; h++) {                                          \
                  const T *row = xp + (d * IH + h) * IW;                                       \
                  if (type != POOL_LP || pval == 1) {                                          \
                    for (int64_t w = lo2; w < hi2; w++) sum += row[w];                         \
                  } else if (pval == 2) {                                                      \
                    for (int64_t w = lo2; w < hi2; w++) sum += row[w] * row[w];                \
                  } else {                                                                     \
                    for (int64_t w = lo2; w < hi2; w++) sum += row[w] * row[w] * row[w];       \
                  }                                                                            \
                }                                                                              \
              if (type == POOL_AVG) {                                                          \
                int64_t n = cip ? (pe0 - st0) * (pe1 - st1) * (pe2 - st2)                      \
                                : (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2);                     \
                r = sum / (T)n;                                                                \
              } else if (type == POOL_LP && pval == 2) {                                       \
                r = SQRT(sum);                                                                 \
              } else if (type == POOL_LP && pval == 3) {                                       \
                r = CBRT(sum);                                                                 \
              } else {                                                                         \
                r = sum;                                                                       \
              }                                                                                \
            }                                                                                  \
            yp[(od * OH + oh) * OW + ow] = r;                                                  \
          }                                                                                    \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  static void pool_bwd_##SFX(const pool_geom *g, const T *x, const T *y, const T *gy, T *gx) { \
    const int64_t IH = g->in[1], IW = g->in[2];                                                \
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];                              \
    const int type = g->type, pval = g->pval, cip = g->cip;                                    \
    SN_PARALLEL_FOR_COST(g->planes, g->isz + g->osz * g->k[0] * g->k[1] * g->k[2])             \
    for (int64_t pl = 0; pl < g->planes; pl++) {                                               \
      const T *xp = x ? x + pl * g->isz : NULL;                                                \
      const T *yp = y ? y + pl * g->osz : NULL;                                                \
      const T *gyp = gy + pl * g->osz;                                                         \
      T *gxp = gx + pl * g->isz;                                                               \
      memset(gxp, 0, sizeof(T) * (size_t)g->isz);                                              \
      for (int64_t od = 0; od < OD; od++) {                                                    \
        SN_WINDOW(od, 0)                                                                       \
        for (int64_t oh = 0; oh < OH; oh++) {                                                  \
          SN_WINDOW(oh, 1)                                                                     \
          for (int64_t ow = 0; ow < OW; ow++) {                                                \
            SN_WINDOW(ow, 2)                                                                   \
            const int64_t oi = (od * OH + oh) * OW + ow;                                       \
            const T gv = gyp[oi];                                                              \
            if (type == POOL_MAX) {                                                            \
              const T mv = yp[oi];                                                             \
              int found = 0;                                                                   \
              for (int64_t d = lo0; d < hi0 && !found; d++)                                    \
                for (int64_t h = lo1; h < hi1 && !found; h++) {                                \
                  const int64_t base = (d * IH + h) * IW;                                      \
                  for (int64_t w = lo2; w < hi2; w++)                                          \
                    if (xp[base + w] == mv) {                                                  \
                      gxp[base + w] += gv;                                                     \
                      found = 1;                                                               \
                      break;                                                                   \
                    }                                                                          \
                }                                                                              \
            } else if (type == POOL_LP && pval > 1) {                                          \
              const T mv = yp[oi];                                                             \
              if (mv == 0) continue;                                                           \
              for (int64_t d = lo0; d < hi0; d++)                                              \
                for (int64_t h = lo1; h < hi1; h++) {                                          \
                  const int64_t base = (d * IH + h) * IW;                                      \
                  for (int64_t w = lo2; w < hi2; w++) {                                        \
                    const T q = xp[base + w] / mv;                                             \
                    gxp[base + w] += pval == 2 ? gv * q : gv * q * q;                          \
                  }                                                                            \
                }                                                                              \
            } else {                                                                           \
              T v = gv;                                                                        \
              if (type == POOL_AVG) {                                                          \
                int64_t n = cip ? (pe0 - st0) * (pe1 - st1) * (pe2 - st2)                      \
                                : (hi0 - lo0) * (hi1 - lo1) * (hi2 - lo2);                     \
                v = gv / (T)n;                                                                 \
              }                                                                                \
              for (int64_t d = lo0; d < hi0; d++)                                              \
                for (int64_t h = lo1; h < hi1; h++) {                                          \
                  T *row = gxp + (d * IH + h) * IW;                                            \
                  for (int64_t w = lo2; w < hi2; w++) row[w] += v;                             \
                }                                                                              \
            }                                                                                  \
          }                                                                                    \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }

SN_DEFINE_POOL(float, f32, -FLT_MAX, sqrtf, cbrtf)
SN_DEFINE_POOL(double, f64, -DBL_MAX, sqrt, cbrt)

static int pool_forward(sn_call *c) {
  pool_geom g;
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(pool_geom_make(c->p, &c->in[0]->shape, &c->out[0]->shape, &g));
  const int fast = pool_is_2x2(&g);
  switch (c->in[0]->dtype) {
  case SN_F32:
    (fast ? pool2x2_fwd_f32 : pool_fwd_f32)(&g, SN_PTR(float, c->in[0]),
                                            SN_PTR(float, c->out[0]));
    break;
  case SN_F64:
    (fast ? pool2x2_fwd_f64 : pool_fwd_f64)(&g, SN_PTR(double, c->in[0]),
                                            SN_PTR(double, c->out[0]));
    break;
  default:
    return sn_error(SN_ERR_TYPE, "Pooling: dtype %s is not supported (float32 or float64)",
                    sn_dtype_name(c->in[0]->dtype));
  }
  return SN_OK;
}

static int pool_backward(sn_call *c) {
  pool_geom g;
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  if (!c->ograd || !c->ograd[0])
    return sn_error(SN_ERR_ARG, "Pooling: backward needs the output gradient");
  SN_TRY(pool_geom_make(c->p, &c->in[0]->shape, &c->out[0]->shape, &g));
  const int fast = pool_is_2x2(&g);
  switch (c->in[0]->dtype) {
  case SN_F32:
    (fast ? pool2x2_bwd_f32 : pool_bwd_f32)(&g, SN_PTR(float, c->in[0]),
                                            SN_PTR(float, c->out[0]),
                                            SN_PTR(float, c->ograd[0]),
                                            SN_PTR(float, c->igrad[0]));
    break;
  case SN_F64:
    (fast ? pool2x2_bwd_f64 : pool_bwd_f64)(&g, SN_PTR(double, c->in[0]),
                                            SN_PTR(double, c->out[0]),
                                            SN_PTR(double, c->ograd[0]),
                                            SN_PTR(double, c->igrad[0]));
    break;
  default:
    return sn_error(SN_ERR_TYPE, "Pooling: dtype %s is not supported (float32 or float64)",
                    sn_dtype_name(c->in[0]->dtype));
  }
  return SN_OK;
}

static const char *const pool_inputs[] = {"data", NULL};

static const sn_op op_pooling = {
    .name = "Pooling",
    .aliases = "_npx_pooling",
    .doc = "Performs max, average, sum or Lp pooling over 1-D, 2-D or 3-D windows of data "
           "(batch, channel, ...). Output size per dimension: floor((x + 2 * pad - kernel) / "
           "stride) + 1 for the 'valid' convention, ceil(...) + 1 for 'full' (compatible with "
           "Caffe) and ceil((x + 2 * pad) / stride) for 'same' (1-D only). With global_pool "
           "the whole feature map is pooled to size 1.",
    .params = pool_params,
    .nparams = (int)(sizeof pool_params / sizeof pool_params[0]),
    .inputs = pool_inputs,
    .infer_shape = pool_infer_shape,
    .forward_cpu = pool_forward,
    .backward_cpu = pool_backward,
    .flags = SN_DEP_IN | SN_DEP_OUT,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "pooling",
};

const sn_op *const sn_family_pooling[] = {&op_pooling, NULL};
