/* Binary element-wise ops: same-shape (elemwise_add, _mul, _power,
 * _greater, ...), numpy-style broadcasting (broadcast_add, ...) and add_n.
 *
 * out = f(lhs, rhs) for the functors of elemwise.h.  The elemwise_* / _*
 * ops require equal shapes; broadcast_* follow MXNet's BinaryBroadcastShape:
 * shapes are aligned at the last dimension, the shorter one is padded with
 * ones on the left, and a dimension of size 1 stretches to the other's size.
 * Backward of broadcasting sums the gradient over the stretched axes.
 *
 * MXNet semantics kept:
 * - mod: the result has the divisor's sign (like R's %%), x mod 0 = 0, and
 *   it is computed in double; d/drhs = -floor(lhs / rhs).
 * - maximum / minimum: a NaN lhs propagates; the gradient goes to lhs on
 *   ties (lhs >= rhs for maximum, lhs <= rhs for minimum).
 * - comparisons and logical ops return 0/1 in the inputs' dtype and have no
 *   gradient.
 * - add_n (ElementWiseSum) takes num_args inputs named arg0, arg1, ...
 *
 * This file also holds the shared element-wise machinery declared in
 * elemwise.h: the run planner and driver, the broadcast reduction and the
 * binary functor kernels, and sn_broadcast_shape (cpu.h). */
#include <string.h>

#include "../cpu.h"
#include "../op.h"
#include "elemwise.h"

/* ------------------------------------------------------------------ */
/* Binary functor kernels                                               */
/* ------------------------------------------------------------------ */

#define EWB_APPLY_FWD(FN, G, A, B) FN(A, B)
#define EWB_APPLY_GRAD(FN, G, A, B) FN(G, A, B)

/* The three run variants of o[i] = APPLY(FN, g[i], a[i], b[i]). */
#define EWB_RUNS(NAME, TY, SX, FN, MODE, COST)                                                     \
  static void NAME##_vv(void *o_, const void *g_, const void *a_, const void *b_, int64_t n,       \
                        const double *prm) {                                                       \
    TY *o = o_;                                                                                    \
    const TY *g = g_, *a = a_, *b = b_;                                                            \
    (void)g;                                                                                       \
    (void)prm;                                                                                     \
    SN_EW_SIMD_IF_##COST(SX) for (int64_t i = 0; i < n; i++)                                       \
      o[i] = EWB_APPLY_##MODE(FN, g[i], a[i], b[i]);                                               \
  }                                                                                                \
  static void NAME##_vs(void *o_, const void *g_, const void *a_, const void *b_, int64_t n,       \
                        const double *prm) {                                                       \
    TY *o = o_;                                                                                    \
    const TY *g = g_, *a = a_, bs = *(const TY *)b_;                                               \
    (void)g;                                                                                       \
    (void)prm;                                                                                     \
    SN_EW_SIMD_IF_##COST(SX) for (int64_t i = 0; i < n; i++)                                       \
      o[i] = EWB_APPLY_##MODE(FN, g[i], a[i], bs);                                                 \
  }                                                                                                \
  static void NAME##_sv(void *o_, const void *g_, const void *a_, const void *b_, int64_t n,       \
                        const double *prm) {                                                       \
    TY *o = o_;                                                                                    \
    const TY *g = g_, as = *(const TY *)a_, *b = b_;                                               \
    (void)g;                                                                                       \
    (void)prm;                                                                                     \
    SN_EW_SIMD_IF_##COST(SX) for (int64_t i = 0; i < n; i++)                                       \
      o[i] = EWB_APPLY_##MODE(FN, g[i], as, b[i]);                                                 \
  }

/* Scalar functions f(a, b) and the gradients g -> g * df/da, g * df/db
 * (see elemwise.h), and their run kernels, for one type. */
#define EWB_SCALAR_FN(NAME, TY, EXPR)                                                              \
  static inline TY NAME(TY a, TY b) {                                                              \
    typedef TY T;                                                                                  \
    (void)a;                                                                                       \
    (void)b;                                                                                       \
    return (T)(EXPR);                                                                              \
  }
#define EWB_GRAD_FN(NAME, TY, EXPR)                                                                \
  static inline TY NAME(TY g, TY a, TY b) {                                                        \
    typedef TY T;                                                                                  \
    (void)g;                                                                                       \
    (void)a;                                                                                       \
    (void)b;                                                                                       \
    return (T)(EXPR);                                                                              \
  }
#define EWB_DEFINE_T(ID, TY, SX, F, GA, GB, CF, CG)                                                \
  EWB_SCALAR_FN(ewb_f_##ID##_##SX, TY, F)                                                          \
  EWB_GRAD_FN(ewb_ga_##ID##_##SX, TY, GA)                                                          \
  EWB_GRAD_FN(ewb_gb_##ID##_##SX, TY, GB)                                                          \
  EWB_RUNS(ewb_kf_##ID##_##SX, TY, SX, ewb_f_##ID##_##SX, FWD, CF)                                 \
  EWB_RUNS(ewb_kga_##ID##_##SX, TY, SX, ewb_ga_##ID##_##SX, GRAD, CG)                              \
  EWB_RUNS(ewb_kgb_##ID##_##SX, TY, SX, ewb_gb_##ID##_##SX, GRAD, CG)
#define EWB_DEFINE(ID, F, GA, GB, CA, CB, CF, CG)                                                  \
  EWB_DEFINE_T(ID, float, f32, F, GA, GB, CF, CG)                                                  \
  EWB_DEFINE_T(ID, double, f64, F, GA, GB, CF, CG)
SN_EW_BINARY_FUNCTORS(EWB_DEFINE)

#define EWB_V3(K, ID, SX) {K##_##ID##_##SX##_vv, K##_##ID##_##SX##_vs, K##_##ID##_##SX##_sv}
#define EWB_TYPES(K, ID) {EWB_V3(K, ID, f32), EWB_V3(K, ID, f64)}
#define EWB_ENTRY(ID, F, GA, GB, CA, CB, CF, CG)                                                   \
  [SN_EWB_##ID] = {EWB_TYPES(ewb_kf, ID), EWB_TYPES(ewb_kga, ID), EWB_TYPES(ewb_kgb, ID), CA,      \
                   CB, SN_EW_COST_##CF, SN_EW_COST_##CG},
const sn_ew_binfn sn_ew_binfns[SN_EWB_COUNT] = {SN_EW_BINARY_FUNCTORS(EWB_ENTRY)};

/* ------------------------------------------------------------------ */
/* Shapes, run plans and the run driver                                 */
/* ------------------------------------------------------------------ */

int sn_broadcast_shape(const sn_shape *a, const sn_shape *b, sn_shape *out) {
  char sa[128], sb[128];
  if (a->ndim < 0 || b->ndim < 0) {
    *out = sn_shape_unknown();
    return SN_OK;
  }
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  out->ndim = nd;
  for (int d = 0; d < nd; d++) {
    int ia = d - (nd - a->ndim), ib = d - (nd - b->ndim);
    int64_t l = ia >= 0 ? a->dim[ia] : 1, r = ib >= 0 ? b->dim[ib] : 1;
    if (l == 0 || r == 0) { /* unknown: decided later */
      out->dim[d] = 0;
    } else if (l == r || r == 1) {
      out->dim[d] = l;
    } else if (l == 1) {
      out->dim[d] = r;
    } else {
      return sn_error(SN_ERR_SHAPE, "operands could not be broadcast together with shapes %s %s",
                      sn_shape_str(a, sa, sizeof sa), sn_shape_str(b, sb, sizeof sb));
    }
  }
  return SN_OK;
}

int sn_ew_dtype_index(const char *op, sn_dtype dt, int *ti) {
  if (dt == SN_F32) {
    *ti = 0;
  } else if (dt == SN_F64) {
    *ti = 1;
  } else {
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 or float64 only)",
                    op ? op : "element-wise op", sn_dtype_name(dt));
  }
  return SN_OK;
}

static int ew_variant(int va, int vb) { return va && vb ? SN_EW_VV : (va ? SN_EW_VS : SN_EW_SV); }

void sn_ew_plan_flat(sn_ew_plan *pl, int64_t n, int va, int vb) {
  memset(pl, 0, sizeof *pl);
  pl->variant = ew_variant(va, vb);
  pl->inner = n;
  pl->rows = 1;
}

int sn_ew_plan_bcast(sn_ew_plan *pl, const sn_shape *a, const sn_shape *b, const sn_shape *out) {
  char s1[128], s2[128], s3[128];
  int nd = out->ndim, oa = nd - a->ndim, ob = nd - b->ndim;
  /* collapsed dimensions, innermost first: size, whether a / b move, strides */
  int64_t cd[SN_MAX_DIMS], csa[SN_MAX_DIMS], csb[SN_MAX_DIMS];
  int cva[SN_MAX_DIMS], cvb[SN_MAX_DIMS], m = 0;
  int64_t sta = 1, stb = 1;
  if (oa < 0 || ob < 0)
    goto bad;
  for (int d = nd - 1; d >= 0; d--) {
    int64_t D = out->dim[d], da = d >= oa ? a->dim[d - oa] : 1, db = d >= ob ? b->dim[d - ob] : 1;
    if ((da != D && da != 1) || (db != D && db != 1))
      goto bad;
    if (D == 1)
      continue;
    int va = da != 1, vb = db != 1;
    if (m > 0 && cva[m - 1] == va && cvb[m - 1] == vb) {
      cd[m - 1] *= D;
    } else {
      cd[m] = D;
      cva[m] = va;
      cvb[m] = vb;
      csa[m] = va ? sta : 0;
      csb[m] = vb ? stb : 0;
      m++;
    }
    if (va)
      sta *= D;
    if (vb)
      stb *= D;
  }
  memset(pl, 0, sizeof *pl);
  pl->rows = 1;
  if (m == 0) { /* every dimension is 1 */
    pl->variant = SN_EW_VV;
    pl->inner = 1;
    return SN_OK;
  }
  pl->variant = ew_variant(cva[0], cvb[0]);
  pl->inner = cd[0];
  pl->nd = m - 1;
  for (int j = 1; j < m; j++) {
    pl->dim[j - 1] = cd[j];
    pl->sa[j - 1] = csa[j];
    pl->sb[j - 1] = csb[j];
    pl->rows *= cd[j];
  }
  return SN_OK;
bad:
  return sn_error(SN_ERR_SHAPE, "cannot broadcast %s and %s to %s", sn_shape_str(a, s1, sizeof s1),
                  sn_shape_str(b, s2, sizeof s2), sn_shape_str(out, s3, sizeof s3));
}

/* Offsets of the first run of row r (odometer start). */
static void ew_row_start(const sn_ew_plan *pl, int64_t r, int64_t *coord, int64_t *oa,
                         int64_t *ob) {
  *oa = *ob = 0;
  for (int d = 0; d < pl->nd; d++) {
    coord[d] = r % pl->dim[d];
    r /= pl->dim[d];
    *oa += coord[d] * pl->sa[d];
    *ob += coord[d] * pl->sb[d];
  }
}

static void ew_row_next(const sn_ew_plan *pl, int64_t *coord, int64_t *oa, int64_t *ob) {
  for (int d = 0; d < pl->nd; d++) {
    *oa += pl->sa[d];
    *ob += pl->sb[d];
    if (++coord[d] < pl->dim[d])
      return;
    *oa -= pl->sa[d] * pl->dim[d];
    *ob -= pl->sb[d] * pl->dim[d];
    coord[d] = 0;
  }
}

void sn_ew_run(const sn_ew_plan *pl, sn_ew_kern k, size_t esz, int cost, void *o, const void *g,
               const void *a, const void *b, const double *prm) {
  const int64_t inner = pl->inner, rows = pl->rows;
  if (inner <= 0 || rows <= 0)
    return;
  const int64_t va = pl->variant != SN_EW_SV, vb = pl->variant != SN_EW_VS;
  /* A task is either a piece of one long run or a block of short runs. */
  int64_t rpt, ppr, plen;
  if (inner >= SN_EW_CHUNK) {
    rpt = 1;
    ppr = (inner + SN_EW_CHUNK - 1) / SN_EW_CHUNK;
    plen = SN_EW_CHUNK;
  } else {
    rpt = SN_EW_CHUNK / inner;
    ppr = 1;
    plen = inner;
  }
  const int64_t ntasks = ((rows + rpt - 1) / rpt) * ppr, work = rpt * plen * (cost > 0 ? cost : 1);
  (void)work; /* unused without OpenMP */
  char *ob = o;
  const char *gp = g, *ap = a, *bp = b;
  SN_PARALLEL_FOR_COST(ntasks, work)
  for (int64_t t = 0; t < ntasks; t++) {
    const int64_t r0 = (t / ppr) * rpt, i0 = (t % ppr) * plen;
    const int64_t r1 = rows - r0 < rpt ? rows : r0 + rpt;
    const int64_t len = inner - i0 < plen ? inner - i0 : plen;
    int64_t coord[SN_MAX_DIMS], offa, offb;
    ew_row_start(pl, r0, coord, &offa, &offb);
    for (int64_t r = r0; r < r1; r++) {
      const int64_t oo = r * inner + i0;
      k(ob + oo * (int64_t)esz, gp ? gp + oo * (int64_t)esz : NULL,
        ap ? ap + (offa + i0 * va) * (int64_t)esz : NULL,
        bp ? bp + (offb + i0 * vb) * (int64_t)esz : NULL, len, prm);
      ew_row_next(pl, coord, &offa, &offb);
    }
  }
}

/* ------------------------------------------------------------------ */
/* Reduction over broadcast axes                                        */
/* ------------------------------------------------------------------ */

/* Per-type helpers of the reduction: d += s over a run, sum of a run,
 * d = scale * d, d = v. */
typedef struct {
  void (*acc)(void *d, const void *s, int64_t n);
  double (*sum)(const void *s, int64_t n);
  void (*scale)(void *d, int64_t n, double scale);
  void (*set)(void *d, int64_t i, double v);
} ew_red_ops;

#ifdef _OPENMP
#define EW_SIMD_SUM SN_PRAGMA(omp simd reduction(+ : acc))
#else
#define EW_SIMD_SUM
#endif
#define EW_RED_OPS(TY, SX)                                                                         \
  static void ew_acc_##SX(void *d_, const void *s_, int64_t n) {                                   \
    TY *d = d_;                                                                                    \
    const TY *s = s_;                                                                              \
    SN_EW_SIMD for (int64_t i = 0; i < n; i++) d[i] += s[i];                                       \
  }                                                                                                \
  static double ew_sum_##SX(const void *s_, int64_t n) {                                           \
    const TY *s = s_;                                                                              \
    double acc = 0;                                                                                \
    EW_SIMD_SUM for (int64_t i = 0; i < n; i++) acc += s[i];                                       \
    return acc;                                                                                    \
  }                                                                                                \
  static void ew_scale_##SX(void *d_, int64_t n, double scale) {                                   \
    TY *d = d_;                                                                                    \
    const TY c = (TY)scale;                                                                        \
    SN_EW_SIMD for (int64_t i = 0; i < n; i++) d[i] *= c;                                          \
  }                                                                                                \
  static void ew_set_##SX(void *d, int64_t i, double v) { ((TY *)d)[i] = (TY)v; }                  \
  static const ew_red_ops ew_red_##SX = {ew_acc_##SX, ew_sum_##SX, ew_scale_##SX, ew_set_##SX};
EW_RED_OPS(float, f32)
EW_RED_OPS(double, f64)

/* Dimensions of one kind (kept or reduced), innermost first, with their
 * strides in the full (source) array. */
typedef struct {
  int n;
  int64_t dim[SN_MAX_DIMS], st[SN_MAX_DIMS], count;
} ew_dims;

static int64_t ew_dims_offset(const ew_dims *q, int64_t idx) {
  int64_t off = 0;
  for (int j = 0; j < q->n; j++) {
    off += (idx % q->dim[j]) * q->st[j];
    idx /= q->dim[j];
  }
  return off;
}

static void ew_dims_next(const ew_dims *q, int64_t *coord, int64_t *off) {
  for (int j = 0; j < q->n; j++) {
    *off += q->st[j];
    if (++coord[j] < q->dim[j])
      return;
    *off -= q->st[j] * q->dim[j];
    coord[j] = 0;
  }
}

/* Sum of the runs of one output element u, split into at most 64 pieces
 * summed in parallel and combined in a fixed order (deterministic). */
static double ew_sum_runs(const char *src, size_t esz, const ew_red_ops *ops, const ew_dims *red,
                          int64_t base, int64_t L) {
  enum { NP = 64 };
  double part[NP];
  const int64_t total = red->count * L;
  int64_t np = (total + SN_EW_CHUNK - 1) / SN_EW_CHUNK;
  if (np > NP)
    np = NP;
  if (np < 1)
    np = 1;
  const int64_t per = (total + np - 1) / np;
  SN_PARALLEL_FOR_COST(np, per)
  for (int64_t p = 0; p < np; p++) {
    int64_t f = p * per, end = f + per < total ? f + per : total;
    double acc = 0;
    while (f < end) {
      int64_t r = f / L, i = f % L, len = L - i < end - f ? L - i : end - f;
      acc += ops->sum(src + (base + ew_dims_offset(red, r) + i) * (int64_t)esz, len);
      f += len;
    }
    part[p] = acc;
  }
  double acc = 0;
  for (int64_t p = 0; p < np; p++)
    acc += part[p];
  return acc;
}

int sn_ew_reduce_sum(const void *src, const sn_shape *full, void *dst, const sn_shape *small,
                     sn_dtype dt, double scale) {
  char s1[128], s2[128];
  const ew_red_ops *ops = dt == SN_F32 ? &ew_red_f32 : (dt == SN_F64 ? &ew_red_f64 : NULL);
  if (!ops)
    return sn_error(SN_ERR_TYPE, "broadcast gradient: dtype %s is not supported",
                    sn_dtype_name(dt));
  const size_t esz = sn_dtype_size(dt);
  const int nd = full->ndim, off = nd - small->ndim;
  int64_t cd[SN_MAX_DIMS], cst[SN_MAX_DIMS], sst = 1;
  int ck[SN_MAX_DIMS], m = 0;
  if (off < 0)
    goto bad;
  for (int d = nd - 1; d >= 0; d--) {
    int64_t D = full->dim[d], s = d >= off ? small->dim[d - off] : 1;
    if (s != D && s != 1)
      goto bad;
    if (D == 1)
      continue;
    int kept = s == D;
    if (m > 0 && ck[m - 1] == kept) {
      cd[m - 1] *= D;
    } else {
      cd[m] = D;
      ck[m] = kept;
      cst[m] = sst;
      m++;
    }
    sst *= D;
  }
  /* Innermost run of length L (kept or reduced); outer dims by kind. */
  const int64_t L = m > 0 ? cd[0] : 1;
  const int inner_kept = m == 0 || ck[0];
  ew_dims keep = {0, {0}, {0}, 1}, red = {0, {0}, {0}, 1};
  for (int j = 1; j < m; j++) {
    ew_dims *q = ck[j] ? &keep : &red;
    q->dim[q->n] = cd[j];
    q->st[q->n] = cst[j];
    q->n++;
    q->count *= cd[j];
  }
  const char *s = src;
  char *d = dst;
  if (inner_kept) {
    /* dst rows of L contiguous elements, each the sum of red.count rows */
    const int64_t ppr = (L + SN_EW_CHUNK - 1) / SN_EW_CHUNK, plen = ppr > 1 ? SN_EW_CHUNK : L;
    const int64_t ntasks = keep.count * ppr;
    SN_PARALLEL_FOR_COST(ntasks, plen * red.count)
    for (int64_t t = 0; t < ntasks; t++) {
      const int64_t u = t / ppr, i0 = (t % ppr) * plen, len = L - i0 < plen ? L - i0 : plen;
      const int64_t base = ew_dims_offset(&keep, u) + i0;
      char *dp = d + (u * L + i0) * (int64_t)esz;
      int64_t coord[SN_MAX_DIMS] = {0}, roff = 0;
      memset(dp, 0, (size_t)len * esz);
      for (int64_t r = 0; r < red.count; r++) {
        ops->acc(dp, s + (base + roff) * (int64_t)esz, len);
        ew_dims_next(&red, coord, &roff);
      }
      if (scale != 1)
        ops->scale(dp, len, scale);
    }
  } else if (keep.count >= 64) {
    /* many outputs, each a sum of red.count contiguous runs of length L */
    SN_PARALLEL_FOR_COST(keep.count, L * red.count)
    for (int64_t u = 0; u < keep.count; u++) {
      const int64_t base = ew_dims_offset(&keep, u);
      int64_t coord[SN_MAX_DIMS] = {0}, roff = 0;
      double acc = 0;
      for (int64_t r = 0; r < red.count; r++) {
        acc += ops->sum(s + (base + roff) * (int64_t)esz, L);
        ew_dims_next(&red, coord, &roff);
      }
      ops->set(d, u, acc * scale);
    }
  } else {
    /* few outputs: split each one's sum across threads */
    for (int64_t u = 0; u < keep.count; u++)
      ops->set(d, u, scale * ew_sum_runs(s, esz, ops, &red, ew_dims_offset(&keep, u), L));
  }
  return SN_OK;
bad:
  return sn_error(SN_ERR_SHAPE, "broadcast gradient: cannot reduce %s to %s",
                  sn_shape_str(full, s1, sizeof s1), sn_shape_str(small, s2, sizeof s2));
}

/* ------------------------------------------------------------------ */
/* Ops                                                                  */
/* ------------------------------------------------------------------ */

static int ewb_forward(sn_call *c, int fn) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *a = c->in[0], *b = c->in[1];
  sn_tensor *o = c->out[0];
  const sn_ew_binfn *f = &sn_ew_binfns[fn];
  int ti = 0;
  sn_ew_plan pl;
  SN_TRY(sn_ew_dtype_index(sn_ew_name(c), o->dtype, &ti));
  SN_TRY(sn_ew_plan_bcast(&pl, &a->shape, &b->shape, &o->shape));
  sn_ew_run(&pl, f->fwd[ti][pl.variant], sn_dtype_size(o->dtype), f->costf, sn_tensor_data(o),
            NULL, sn_tensor_data(a), sn_tensor_data(b), NULL);
  return SN_OK;
}

/* dst = scale * src, n elements (a copy when scale is 1). */
static void ewb_scale_copy(void *dst, const void *src, int64_t n, sn_dtype dt, double scale) {
  const size_t esz = sn_dtype_size(dt);
  if (dst != src)
    memcpy(dst, src, (size_t)n * esz);
  if (scale != 1) {
    const ew_red_ops *ops = dt == SN_F32 ? &ew_red_f32 : &ew_red_f64;
    ops->scale(dst, n, scale);
  }
}

/* Input gradients.  igrad[1] is done first: igrad[0] may share ograd[0]. */
static int ewb_backward(sn_call *c, int fn) {
  const sn_ew_binfn *f = &sn_ew_binfns[fn];
  const sn_tensor *og = c->ograd[0];
  const sn_dtype dt = og->dtype;
  const size_t esz = sn_dtype_size(dt);
  const int64_t no = sn_tensor_size(og);
  int ti = 0;
  SN_TRY(sn_ew_dtype_index(sn_ew_name(c), dt, &ti));
  for (int k = 1; k >= 0; k--) {
    if (c->req[k] == SN_REQ_NULL)
      continue;
    sn_tensor *gk = c->igrad[k];
    const int full = sn_tensor_size(gk) == no;
    const double cst = k ? f->cb : f->ca;
    if (!isnan(cst)) { /* constant derivative: inputs not needed */
      if (full)
        ewb_scale_copy(sn_tensor_data(gk), sn_tensor_data(og), no, dt, cst);
      else
        SN_TRY(sn_ew_reduce_sum(sn_tensor_data(og), &og->shape, sn_tensor_data(gk), &gk->shape,
                                dt, cst));
      continue;
    }
    const sn_tensor *a = c->in[0], *b = c->in[1];
    sn_ew_plan pl;
    SN_TRY(sn_ew_plan_bcast(&pl, &a->shape, &b->shape, &og->shape));
    const sn_ew_kern kern = (k ? f->gb : f->ga)[ti][pl.variant];
    void *dst = sn_tensor_data(gk);
    size_t tbytes = 0;
    if (!full) {
      if (sn_mul_size((size_t)no, esz, &tbytes) != SN_OK)
        return sn_error(SN_ERR_OVERFLOW, "%s backward: temporary size overflows", sn_ew_name(c));
      dst = sn_host_alloc(tbytes);
      if (!dst)
        return sn_error(SN_ERR_OOM, "%s backward: cannot allocate %zu bytes", sn_ew_name(c),
                        tbytes);
    }
    sn_ew_run(&pl, kern, esz, f->costg, dst, sn_tensor_data(og), sn_tensor_data(a),
              sn_tensor_data(b), NULL);
    if (!full) {
      int st = sn_ew_reduce_sum(dst, &og->shape, sn_tensor_data(gk), &gk->shape, dt, 1);
      sn_host_free(dst, tbytes);
      SN_TRY(st);
    }
  }
  return SN_OK;
}

static int ewb_infer_bcast(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  sn_shape s;
  if (in[0].ndim < 0 || in[1].ndim < 0)
    return SN_OK;
  int st = sn_broadcast_shape(&in[0], &in[1], &s);
  if (st != SN_OK)
    return sn_error_context(st, "%s", p && p->op ? p->op->name : "broadcast");
  return sn_shape_assign(&out[0], &s, "output");
}

static const char *const ewb_inputs[] = {"lhs", "rhs", NULL};

#define EWB_BCAST_DOC                                                                              \
  " with broadcasting: shapes are aligned at their last C-order dimension (the first R "           \
  "dimension), the shorter shape is padded with 1s, and a dimension of size 1 is stretched "       \
  "to the other operand's size; the gradient is summed over stretched dimensions."
#define EWB_SAME_DOC " of two arrays with the same shape."

/* X(functor, same-shape name, aliases, broadcast name, aliases, flags, what) */
#define EWB_OPS(X)                                                                                 \
  X(ADD, "elemwise_add", "_plus|_add|_Plus", "broadcast_add", "broadcast_plus", 0,                 \
    "Element-wise sum lhs + rhs")                                                                  \
  X(SUB, "elemwise_sub", "_minus|_sub|_Minus", "broadcast_sub", "broadcast_minus", 0,              \
    "Element-wise difference lhs - rhs")                                                           \
  X(MUL, "elemwise_mul", "_mul|_Mul", "broadcast_mul", NULL, SN_DEP_IN,                            \
    "Element-wise product lhs * rhs")                                                              \
  X(DIV, "elemwise_div", "_div|_Div", "broadcast_div", NULL, SN_DEP_IN,                            \
    "Element-wise quotient lhs / rhs")                                                             \
  X(MOD, "_mod", "_Mod", "broadcast_mod", NULL, SN_DEP_IN,                                         \
    "Element-wise lhs modulo rhs (the result takes the sign of rhs like R's %%, and x mod 0 "      \
    "is 0)")                                                                                       \
  X(POWER, "_power", "_Power", "broadcast_power", NULL, SN_DEP_IN,                                 \
    "Element-wise power lhs ^ rhs")                                                                \
  X(MAXIMUM, "_maximum", "_Maximum", "broadcast_maximum", NULL, SN_DEP_IN,                         \
    "Element-wise maximum of lhs and rhs (a NaN lhs propagates; on ties the gradient goes to "     \
    "lhs)")                                                                                        \
  X(MINIMUM, "_minimum", "_Minimum", "broadcast_minimum", NULL, SN_DEP_IN,                         \
    "Element-wise minimum of lhs and rhs (a NaN lhs propagates; on ties the gradient goes to "     \
    "lhs)")                                                                                        \
  X(HYPOT, "_hypot", "_Hypot", "broadcast_hypot", NULL, SN_DEP_IN,                                 \
    "Element-wise hypotenuse sqrt(lhs^2 + rhs^2)")                                                 \
  X(EQUAL, "_equal", "_Equal", "broadcast_equal", NULL, SN_OP_NO_GRAD,                             \
    "Element-wise lhs == rhs as 1 or 0 in the inputs' dtype (no gradient)")                        \
  X(NOT_EQUAL, "_not_equal", "_Not_Equal", "broadcast_not_equal", NULL, SN_OP_NO_GRAD,             \
    "Element-wise lhs != rhs as 1 or 0 in the inputs' dtype (no gradient)")                        \
  X(GREATER, "_greater", "_Greater", "broadcast_greater", NULL, SN_OP_NO_GRAD,                     \
    "Element-wise lhs > rhs as 1 or 0 in the inputs' dtype (no gradient)")                         \
  X(GREATER_EQUAL, "_greater_equal", "_Greater_Equal", "broadcast_greater_equal", NULL,            \
    SN_OP_NO_GRAD, "Element-wise lhs >= rhs as 1 or 0 in the inputs' dtype (no gradient)")         \
  X(LESSER, "_lesser", "_Lesser", "broadcast_lesser", NULL, SN_OP_NO_GRAD,                         \
    "Element-wise lhs < rhs as 1 or 0 in the inputs' dtype (no gradient)")                         \
  X(LESSER_EQUAL, "_lesser_equal", "_Lesser_Equal", "broadcast_lesser_equal", NULL,                \
    SN_OP_NO_GRAD, "Element-wise lhs <= rhs as 1 or 0 in the inputs' dtype (no gradient)")         \
  X(LOGICAL_AND, "_logical_and", "_Logical_And", "broadcast_logical_and", NULL,                    \
    SN_OP_NO_GRAD, "Element-wise logical and of lhs and rhs (nonzero is true) as 1 or 0 (no "      \
                   "gradient)")                                                                    \
  X(LOGICAL_OR, "_logical_or", "_Logical_Or", "broadcast_logical_or", NULL, SN_OP_NO_GRAD,         \
    "Element-wise logical or of lhs and rhs (nonzero is true) as 1 or 0 (no gradient)")            \
  X(LOGICAL_XOR, "_logical_xor", "_Logical_Xor", "broadcast_logical_xor", NULL,                    \
    SN_OP_NO_GRAD, "Element-wise logical xor of lhs and rhs (nonzero is true) as 1 or 0 (no "      \
                   "gradient)")

#define EWB_BWD_PTR(ID, FLAGS) (((FLAGS)&SN_OP_NO_GRAD) ? NULL : ewb_bwd_##ID)
#define EWB_SNOP(ID, NAME, ALIASES, DOC, INFER, FLAGS)                                             \
  {.name = NAME,                                                                                   \
   .aliases = ALIASES,                                                                             \
   .doc = DOC,                                                                                     \
   .inputs = ewb_inputs,                                                                           \
   .infer_shape = INFER,                                                                           \
   .forward_cpu = ewb_fwd_##ID,                                                                    \
   .backward_cpu = EWB_BWD_PTR(ID, FLAGS),                                                         \
   .flags = FLAGS,                                                                                 \
   .inplace_in = SN_INPLACE(0),                                                                                \
   .inplace_grad = SN_INPLACE(((FLAGS)&SN_OP_NO_GRAD) ? -1 : 1)}
#define EWB_OP(ID, NAME, ALIASES, BNAME, BALIASES, FLAGS, WHAT)                                    \
  static int ewb_fwd_##ID(sn_call *c) { return ewb_forward(c, SN_EWB_##ID); }                      \
  static int ewb_bwd_##ID(sn_call *c) { return ewb_backward(c, SN_EWB_##ID); }                     \
  static const sn_op ewb_op_##ID =                                                                 \
      EWB_SNOP(ID, NAME, ALIASES, WHAT EWB_SAME_DOC, sn_infer_same_shape, FLAGS);                  \
  static const sn_op ewb_bop_##ID =                                                                \
      EWB_SNOP(ID, BNAME, BALIASES, WHAT EWB_BCAST_DOC, ewb_infer_bcast, FLAGS);
EWB_OPS(EWB_OP)

/* ---- add_n ---- */

enum { P_NUM_ARGS };
static const sn_param_spec addn_params[] = {
    {"num_args", SN_PT_INT, NULL, NULL, "Number of inputs to be summed."},
};

#define EWB_ARG10(d)                                                                               \
  "arg" #d "0", "arg" #d "1", "arg" #d "2", "arg" #d "3", "arg" #d "4", "arg" #d "5",              \
      "arg" #d "6", "arg" #d "7", "arg" #d "8", "arg" #d "9"
static const char *const addn_names[SN_MAX_IO] = {
    "arg0",     "arg1",     "arg2",     "arg3",     "arg4",     "arg5",    "arg6",
    "arg7",     "arg8",     "arg9",     EWB_ARG10(1), EWB_ARG10(2), EWB_ARG10(3), EWB_ARG10(4),
    EWB_ARG10(5), "arg60",  "arg61",    "arg62",    "arg63"};

static int addn_list_inputs(const sn_params *p, const char **names, int cap) {
  int64_t n = p->v[P_NUM_ARGS].i;
  if (n < 0)
    n = 0;
  if (n > cap)
    n = cap;
  if (n > SN_MAX_IO)
    n = SN_MAX_IO;
  for (int i = 0; i < (int)n; i++)
    names[i] = addn_names[i];
  return (int)n;
}

static int addn_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                      sn_shape *aux, int naux) {
  int64_t n = p->v[P_NUM_ARGS].i;
  if (n < 1 || n > SN_MAX_IO || n != nin)
    return sn_error(SN_ERR_ARG, "add_n: num_args = %lld must be between 1 and %d and match the "
                    "%d inputs given", (long long)n, SN_MAX_IO, nin);
  return sn_infer_same_shape(p, in, nin, out, nout, aux, naux);
}

static int addn_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *o = c->out[0];
  int ti = 0;
  SN_TRY(sn_ew_dtype_index("add_n", o->dtype, &ti));
  const size_t esz = sn_dtype_size(o->dtype);
  const int64_t n = sn_tensor_size(o), nch = (n + SN_EW_CHUNK - 1) / SN_EW_CHUNK;
  const int nin = c->nin;
  const sn_ew_kern add = sn_ew_binfns[SN_EWB_ADD].fwd[ti][SN_EW_VV];
  char *op = sn_tensor_data(o);
  if (nin == 1) {
    if (op != sn_tensor_data(c->in[0]))
      memcpy(op, sn_tensor_data(c->in[0]), (size_t)n * esz);
    return SN_OK;
  }
  /* chunk by chunk, so each chunk of the output stays in cache */
  SN_PARALLEL_FOR_COST(nch, (int64_t)SN_EW_CHUNK * nin)
  for (int64_t ch = 0; ch < nch; ch++) {
    const int64_t i0 = ch * SN_EW_CHUNK, len = n - i0 < SN_EW_CHUNK ? n - i0 : SN_EW_CHUNK;
    char *oc = op + i0 * (int64_t)esz;
    add(oc, NULL, (const char *)sn_tensor_data(c->in[0]) + i0 * (int64_t)esz,
        (const char *)sn_tensor_data(c->in[1]) + i0 * (int64_t)esz, len, NULL);
    for (int k = 2; k < nin; k++)
      add(oc, NULL, oc, (const char *)sn_tensor_data(c->in[k]) + i0 * (int64_t)esz, len, NULL);
  }
  return SN_OK;
}

static int addn_backward(sn_call *c) {
  const sn_tensor *og = c->ograd[0];
  for (int k = c->nin - 1; k >= 0; k--) /* igrad[0] last: it may share ograd[0] */
    if (c->req[k] != SN_REQ_NULL && sn_tensor_data(c->igrad[k]) != sn_tensor_data(og))
      memcpy(sn_tensor_data(c->igrad[k]), sn_tensor_data(og), sn_tensor_bytes(og));
  return SN_OK;
}

static const sn_op addn_op = {
    .name = "add_n",
    .aliases = "ElementWiseSum",
    .doc = "Adds all input arguments element-wise: add_n(a1, a2, ..., an) = a1 + a2 + ... + an. "
           "All inputs must have the same shape; the gradient of each input is the output "
           "gradient.",
    .params = addn_params,
    .nparams = 1,
    .list_inputs = addn_list_inputs,
    .infer_shape = addn_infer,
    .forward_cpu = addn_forward,
    .backward_cpu = addn_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(1),
};

#define EWB_LIST(ID, ...) &ewb_op_##ID, &ewb_bop_##ID,
const sn_op *const sn_family_elemwise_binary[] = {EWB_OPS(EWB_LIST) &addn_op, NULL};
