/* Reductions over axes.
 *
 * sum (alias sum_axis), mean, prod, max (alias max_axis), min (alias
 * min_axis) and norm reduce the input over a set of C-order axes; argmax,
 * argmin and argmax_channel return the position of the extreme value along
 * one axis, as a float in the input dtype (MXNet's convention).
 *
 * MXNet 1.x semantics kept:
 * - axis=None or axis=() reduces over every axis (whatever `exclude` says);
 *   without keepdims the result then has shape (1,), never a 0-d scalar.
 * - exclude=True reduces over the axes NOT listed.  Negative axes count
 *   from the end; duplicates and out-of-range axes are errors.
 * - max/min propagate NaN; their gradient goes to every position equal to
 *   the extreme value (all ties receive the full output gradient).
 * - prod's gradient is the product of the other elements, computed exactly
 *   when the group holds zeros (one zero: only that position gets a
 *   gradient; two or more: all zero).
 * - norm supports ord=1 and ord=2 over any set of axes (a 2-tuple gives the
 *   Frobenius norm for ord=2, as MXNet computes it).  Where the norm is 0
 *   the ord=2 gradient is taken as 0 (MXNet divides by zero there).
 *   out_dtype is accepted when it equals the input dtype.
 * - argmax/argmin return the first occurrence; a NaN counts as the extreme
 *   value (the first NaN wins).  With axis=None the input is flattened and
 *   the result has shape (1,).  A 1-D input always reduces to (1,).
 *   argmax_channel is argmax over axis 1.  None of these has a gradient.
 *
 * Sums, means, products and norms accumulate in double for float32 and
 * float64 alike (max/min are exact in any type).  The input is collapsed
 * to runs of reduced/kept dims; the common patterns (outer, reduce, inner)
 * run as tight vectorised loops (16 independent lanes for a contiguous
 * reduction, four rows per pass over 256-wide column tiles for a strided
 * one), parallel over independent outputs, or split along the reduced axis
 * when there are fewer outputs than threads.  Other patterns (e.g. axes
 * (0, 2) of a 3-D input) use an odometer per output.  Backward walks the
 * input in pieces of rows of its last collapsed dim, in parallel. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

/* ------------------------------------------------------------------ */
/* Axis handling and the collapsed plan                                */
/* ------------------------------------------------------------------ */

/* Fills mask[d] (1 = reduced) for an input of shape ish.  axis: an
 * OPT_SHAPE param value (None or () means all axes). */
static int reduce_mask(const sn_pval *axis, int exclude, const sn_shape *ish,
                       int mask[SN_MAX_DIMS], int *all) {
  int nd = ish->ndim;
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
      return sn_error(SN_ERR_ARG, "axis %s is out of range for an input of shape %s",
                      axis->str[0] ? axis->str : "?", sn_shape_str(ish, buf, sizeof buf));
    if (a < 0) a += nd;
    if (mask[a])
      return sn_error(SN_ERR_ARG, "axis %lld is listed twice (axis=%s)", (long long)a,
                      axis->str[0] ? axis->str : "?");
    mask[a] = 1;
  }
  if (exclude)
    for (int d = 0; d < nd; d++) mask[d] = !mask[d];
  return SN_OK;
}

/* MXNet's output shape of a reduction. */
static sn_shape reduce_out_shape(const sn_shape *ish, const int *mask, int all, int keepdims) {
  sn_shape o;
  o.ndim = 0;
  if (all) {
    if (keepdims && ish->ndim > 0) {
      o.ndim = ish->ndim;
      for (int d = 0; d < o.ndim; d++) o.dim[d] = 1;
    } else {
      o.ndim = 1;
      o.dim[0] = 1;
    }
    return o;
  }
  for (int d = 0; d < ish->ndim; d++) {
    if (keepdims) o.dim[o.ndim++] = mask[d] ? 1 : ish->dim[d];
    else if (!mask[d]) o.dim[o.ndim++] = ish->dim[d];
  }
  if (o.ndim == 0) {
    o.ndim = 1;
    o.dim[0] = 1;
  }
  return o;
}

/* The input collapsed into alternating runs of kept / reduced dims. */
typedef struct {
  int nd;
  int64_t dim[SN_MAX_DIMS];
  int red[SN_MAX_DIMS];
  int64_t istride[SN_MAX_DIMS]; /* input strides of the collapsed dims */
  int64_t ostride[SN_MAX_DIMS]; /* output strides; 0 for reduced dims */
  int64_t n_in, n_out, n_red;
  int fast; /* the pattern is (outer, reduce, inner) */
  int64_t outer, rn, inner;
} rplan;

static void rplan_make(const sn_shape *s, const int *mask, rplan *pl) {
  memset(pl, 0, sizeof *pl);
  pl->n_in = 1;
  pl->n_red = 1;
  for (int d = 0; d < s->ndim; d++) {
    int64_t len = s->dim[d];
    pl->n_in *= len;
    if (mask[d]) pl->n_red *= len;
    if (len == 1) continue;
    int r = mask[d] ? 1 : 0;
    if (pl->nd > 0 && pl->red[pl->nd - 1] == r) {
      pl->dim[pl->nd - 1] *= len;
    } else {
      pl->dim[pl->nd] = len;
      pl->red[pl->nd] = r;
      pl->nd++;
    }
  }
  if (pl->nd == 0) {
    pl->nd = 1;
    pl->dim[0] = 1;
    pl->red[0] = 0;
  }
  pl->n_out = pl->n_in / pl->n_red;
  int64_t is = 1, os = 1;
  for (int d = pl->nd - 1; d >= 0; d--) {
    pl->istride[d] = is;
    is *= pl->dim[d];
    if (pl->red[d]) {
      pl->ostride[d] = 0;
    } else {
      pl->ostride[d] = os;
      os *= pl->dim[d];
    }
  }
  int i = 0;
  pl->outer = pl->rn = pl->inner = 1;
  if (i < pl->nd && !pl->red[i]) pl->outer = pl->dim[i++];
  if (i < pl->nd && pl->red[i]) pl->rn = pl->dim[i++];
  if (i < pl->nd && !pl->red[i]) pl->inner = pl->dim[i++];
  pl->fast = (i == pl->nd);
  if (pl->fast && pl->rn == 1) { /* nothing reduced: one vector loop */
    pl->inner *= pl->outer;
    pl->outer = 1;
  }
}

/* Output offset of the first element of input row q (rows of the last
 * collapsed dim). */
static inline int64_t rplan_row_out(const rplan *pl, int64_t q) {
  int64_t off = 0;
  for (int d = pl->nd - 2; d >= 0; d--) {
    int64_t idx = q % pl->dim[d];
    q /= pl->dim[d];
    off += idx * pl->ostride[d];
  }
  return off;
}

/* ------------------------------------------------------------------ */
/* Forward kernels                                                     */
/* ------------------------------------------------------------------ */

enum { K_SUM, K_PROD, K_MAX, K_MIN, K_SQ, K_ABS, K_NZCNT, K_PNZ, K_NKIND };
enum { FIN_NONE, FIN_SCALE, FIN_SQRT };

#define RLANES 16
#define RTILE 256

/* Ask for vectorisation of a loop (R builds with -O2, where GCC's cheap
 * cost model skips most loops with a runtime trip count). */
#ifdef _OPENMP
#define RSIMD SN_PRAGMA(omp simd)
#else
#define RSIMD
#endif

/* Accumulate x[base + r*inner + i] for r in [r0, r1), i in [i0, i1) into
 * acc[i - i0].  inner == 1 is the contiguous case (i0 = 0, i1 = 1). */
typedef void (*rblk_fn)(const void *x, int64_t base, int64_t inner, int64_t r0, int64_t r1,
                        int64_t i0, int64_t i1, double *acc);

#define U_SUM(a, v) ((a) + (v))
#define U_PROD(a, v) ((a) * (v))
#define U_MAX(a, v) (((v) > (a) || (v) != (v)) ? (v) : (a))
#define U_MIN(a, v) (((v) < (a) || (v) != (v)) ? (v) : (a))
#define U_SQ(a, v) ((a) + (v) * (v))
#define U_ABS(a, v) ((a) + fabs(v))
#define U_NZCNT(a, v) ((a) + ((v) == 0 ? 1.0 : 0.0))
#define U_PNZ(a, v) ((a) * ((v) == 0 ? 1.0 : (v)))
/* Combining two partial accumulators. */
#define C_ADD(a, b) ((a) + (b))
#define C_MUL(a, b) ((a) * (b))

/* LT: the type of the contiguous-case lanes (double for sums and
 * products, the input type for max/min, which need no rounding). */
#define DEF_RBLK(NAME, T, LT, UPD, COMB, INIT)                                              \
  static void NAME(const void *xv, int64_t base, int64_t inner, int64_t r0, int64_t r1,      \
                   int64_t i0, int64_t i1, double *restrict acc) {                           \
    const T *restrict x = (const T *)xv + base;                                              \
    if (inner == 1) {                                                                        \
      LT l[RLANES];                                                                          \
      for (int k = 0; k < RLANES; k++) l[k] = (LT)(INIT);                                    \
      int64_t r = r0;                                                                        \
      for (; r + RLANES <= r1; r += RLANES)                                                  \
        RSIMD for (int k = 0; k < RLANES; k++) {                                             \
          LT v = (LT)x[r + k];                                                               \
          l[k] = UPD(l[k], v);                                                               \
        }                                                                                    \
      double a = acc[0];                                                                     \
      for (int k = 0; k < RLANES; k++) a = COMB(a, (double)l[k]);                            \
      for (; r < r1; r++) {                                                                  \
        double v = (double)x[r];                                                             \
        a = UPD(a, v);                                                                       \
      }                                                                                      \
      acc[0] = a;                                                                            \
      return;                                                                                \
    }                                                                                        \
    int64_t w = i1 - i0;                                                                     \
    int64_t r = r0;                                                                          \
    for (; r + 4 <= r1; r += 4) { /* four rows per pass: a quarter of the acc traffic */    \
      const T *restrict x0 = x + r * inner + i0;                                             \
      const T *restrict x1 = x0 + inner;                                                     \
      const T *restrict x2 = x1 + inner;                                                     \
      const T *restrict x3 = x2 + inner;                                                     \
      RSIMD for (int64_t i = 0; i < w; i++) {                                                \
        double a = acc[i], v;                                                                \
        v = (double)x0[i];                                                                   \
        a = UPD(a, v);                                                                       \
        v = (double)x1[i];                                                                   \
        a = UPD(a, v);                                                                       \
        v = (double)x2[i];                                                                   \
        a = UPD(a, v);                                                                       \
        v = (double)x3[i];                                                                   \
        a = UPD(a, v);                                                                       \
        acc[i] = a;                                                                          \
      }                                                                                      \
    }                                                                                        \
    for (; r < r1; r++) {                                                                    \
      const T *restrict xr = x + r * inner + i0;                                             \
      RSIMD for (int64_t i = 0; i < w; i++) {                                                \
        double v = (double)xr[i];                                                            \
        acc[i] = UPD(acc[i], v);                                                             \
      }                                                                                      \
    }                                                                                        \
  }

#define DEF_RBLK2(KIND, UPD, COMB, INIT)                      \
  DEF_RBLK(rblk_##KIND##_f32, float, double, UPD, COMB, INIT) \
  DEF_RBLK(rblk_##KIND##_f64, double, double, UPD, COMB, INIT)
#define DEF_RBLK2_T(KIND, UPD, COMB, INIT)                   \
  DEF_RBLK(rblk_##KIND##_f32, float, float, UPD, COMB, INIT) \
  DEF_RBLK(rblk_##KIND##_f64, double, double, UPD, COMB, INIT)

DEF_RBLK2(sum, U_SUM, C_ADD, 0.0)
DEF_RBLK2(prod, U_PROD, C_MUL, 1.0)
DEF_RBLK2_T(max, U_MAX, U_MAX, -INFINITY)
DEF_RBLK2_T(min, U_MIN, U_MIN, INFINITY)
DEF_RBLK2(sq, U_SQ, C_ADD, 0.0)
DEF_RBLK2(abs, U_ABS, C_ADD, 0.0)
DEF_RBLK2(nzcnt, U_NZCNT, C_ADD, 0.0)
DEF_RBLK2(pnz, U_PNZ, C_MUL, 1.0)

static const rblk_fn rblk_f32[K_NKIND] = {rblk_sum_f32, rblk_prod_f32, rblk_max_f32,
                                          rblk_min_f32, rblk_sq_f32,   rblk_abs_f32,
                                          rblk_nzcnt_f32, rblk_pnz_f32};
static const rblk_fn rblk_f64[K_NKIND] = {rblk_sum_f64, rblk_prod_f64, rblk_max_f64,
                                          rblk_min_f64, rblk_sq_f64,   rblk_abs_f64,
                                          rblk_nzcnt_f64, rblk_pnz_f64};

static double kind_init(int kind) {
  switch (kind) {
  case K_PROD:
  case K_PNZ: return 1.0;
  case K_MAX: return -INFINITY;
  case K_MIN: return INFINITY;
  default: return 0.0;
  }
}

static double kind_comb(int kind, double a, double b) {
  switch (kind) {
  case K_PROD:
  case K_PNZ: return a * b;
  case K_MAX: return U_MAX(a, b);
  case K_MIN: return U_MIN(a, b);
  default: return a + b;
  }
}

/* Finalise w accumulators and store them at out[off..] in dtype dt. */
static void rstore(sn_dtype dt, void *out, int64_t off, double *acc, int64_t w, int fin,
                   double scale) {
  if (fin == FIN_SCALE)
    for (int64_t i = 0; i < w; i++) acc[i] *= scale;
  else if (fin == FIN_SQRT)
    for (int64_t i = 0; i < w; i++) acc[i] = sqrt(acc[i]);
  if (dt == SN_F32) {
    float *o = (float *)out + off;
    for (int64_t i = 0; i < w; i++) o[i] = (float)acc[i];
  } else {
    double *o = (double *)out + off;
    for (int64_t i = 0; i < w; i++) o[i] = acc[i];
  }
}

/* Reduces x (dtype xt) into out (dtype ot, n_out elements) per plan. */
static int reduce_run(const char *opname, const rplan *pl, int kind, int fin, double scale,
                      sn_dtype xt, const void *x, sn_dtype ot, void *out) {
  if ((xt != SN_F32 && xt != SN_F64) || (ot != SN_F32 && ot != SN_F64))
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 and float64 are)",
                    opname, sn_dtype_name(xt != SN_F32 && xt != SN_F64 ? xt : ot));
  const rblk_fn blk = xt == SN_F32 ? rblk_f32[kind] : rblk_f64[kind];
  const double init = kind_init(kind);
  const int nthr = sn_num_threads();

  if (pl->fast) {
    const int64_t outer = pl->outer, rn = pl->rn, inner = pl->inner;
    const int64_t ntile = (inner + RTILE - 1) / RTILE;
    const int64_t units = outer * ntile;
    const int64_t tw = inner < RTILE ? inner : RTILE;
    (void)tw; /* used by the OpenMP cost clause only */
    if (nthr > 1 && units < nthr && rn >= 2 * nthr && pl->n_in >= 2 * SN_PAR_GRAIN) {
      /* Few outputs: split the reduced axis into chunks, one per thread. */
      const int64_t nch = nthr;
      const int64_t nout = pl->n_out;
      size_t bytes;
      if (sn_mul_size((size_t)(nch * nout), sizeof(double), &bytes) != SN_OK)
        return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", opname);
      double *part = (double *)sn_host_alloc(bytes);
      if (!part) return sn_error(SN_ERR_OOM, "%s: cannot allocate %zu bytes", opname, bytes);
      SN_PARALLEL_FOR_COST(nch, pl->n_in / nch)
      for (int64_t c = 0; c < nch; c++) {
        int64_t r0 = rn * c / nch, r1 = rn * (c + 1) / nch;
        double *pc = part + c * nout;
        for (int64_t k = 0; k < nout; k++) pc[k] = init;
        for (int64_t o = 0; o < outer; o++) blk(x, o * rn * inner, inner, r0, r1, 0, inner, pc + o * inner);
      }
      for (int64_t k = 0; k < nout; k++) {
        double a = part[k];
        for (int64_t c = 1; c < nch; c++) a = kind_comb(kind, a, part[c * nout + k]);
        part[k] = a;
      }
      rstore(ot, out, 0, part, nout, fin, scale);
      sn_host_free(part, bytes);
      return SN_OK;
    }
    SN_PARALLEL_FOR_COST(units, rn * tw)
    for (int64_t u = 0; u < units; u++) {
      double acc[RTILE];
      int64_t o = u / ntile, t = u % ntile;
      int64_t i0 = t * RTILE, i1 = i0 + RTILE < inner ? i0 + RTILE : inner;
      for (int64_t i = 0; i < i1 - i0; i++) acc[i] = init;
      blk(x, o * rn * inner, inner, 0, rn, i0, i1, acc);
      rstore(ot, out, o * inner + i0, acc, i1 - i0, fin, scale);
    }
    return SN_OK;
  }

  /* General pattern: one output at a time, odometer over the reduced dims. */
  int kd[SN_MAX_DIMS], rd[SN_MAX_DIMS], nk = 0, nr = 0;
  for (int d = 0; d < pl->nd; d++) {
    if (pl->red[d]) rd[nr++] = d;
    else kd[nk++] = d;
  }
  const int last = rd[nr - 1];
  const int64_t lr = pl->dim[last], sr = pl->istride[last];
  const int64_t nouter_red = pl->n_red / lr;
  SN_PARALLEL_FOR_COST(pl->n_out, pl->n_red)
  for (int64_t o = 0; o < pl->n_out; o++) {
    int64_t base = 0, q = o;
    for (int j = nk - 1; j >= 0; j--) {
      int64_t len = pl->dim[kd[j]];
      base += (q % len) * pl->istride[kd[j]];
      q /= len;
    }
    double acc = init;
    for (int64_t m = 0; m < nouter_red; m++) {
      int64_t off = base, mm = m;
      for (int j = nr - 2; j >= 0; j--) {
        int64_t len = pl->dim[rd[j]];
        off += (mm % len) * pl->istride[rd[j]];
        mm /= len;
      }
      blk(x, off, sr, 0, lr, 0, 1, &acc);
    }
    rstore(ot, out, o, &acc, 1, fin, scale);
  }
  return SN_OK;
}

/* ------------------------------------------------------------------ */
/* sum / mean / prod / max / min                                       */
/* ------------------------------------------------------------------ */

enum { P_AXIS, P_KEEPDIMS, P_EXCLUDE };

static const sn_param_spec reduce_params[] = {
    {"axis", SN_PT_OPT_SHAPE, "None", NULL,
     "The axis or axes to reduce (C order, negative counts from the end). None or () "
     "reduces over all elements into an array of shape (1,)."},
    {"keepdims", SN_PT_BOOL, "False", NULL,
     "If True, the reduced axes stay in the result as dimensions of size one."},
    {"exclude", SN_PT_BOOL, "False", NULL,
     "If True, reduce over the axes that are NOT listed in axis."},
};

static const char *const data_inputs[] = {"data", NULL};

static int reduce_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                              sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  int mask[SN_MAX_DIMS], all;
  if (in[0].ndim < 0) return SN_OK;
  SN_TRY(reduce_mask(&p->v[P_AXIS], (int)p->v[P_EXCLUDE].i, &in[0], mask, &all));
  sn_shape o = reduce_out_shape(&in[0], mask, all, (int)p->v[P_KEEPDIMS].i);
  return sn_shape_assign(&out[0], &o, "output");
}

/* Builds the plan of a reduce-family call from the input shape. */
static int reduce_plan(const sn_params *p, const sn_shape *ish, rplan *pl) {
  int mask[SN_MAX_DIMS], all;
  SN_TRY(reduce_mask(&p->v[P_AXIS], (int)p->v[P_EXCLUDE].i, ish, mask, &all));
  rplan_make(ish, mask, pl);
  return SN_OK;
}

static int fwd_generic(sn_call *c, int kind, int fin) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  rplan pl;
  SN_TRY(reduce_plan(c->p, &c->in[0]->shape, &pl));
  double scale = fin == FIN_SCALE ? 1.0 / (double)pl.n_red : 1.0;
  return reduce_run(c->p->op->name, &pl, kind, fin, scale, c->in[0]->dtype,
                    sn_tensor_data(c->in[0]), c->out[0]->dtype, sn_tensor_data(c->out[0]));
}

static int sum_forward(sn_call *c) { return fwd_generic(c, K_SUM, FIN_NONE); }
static int mean_forward(sn_call *c) { return fwd_generic(c, K_SUM, FIN_SCALE); }
static int prod_forward(sn_call *c) { return fwd_generic(c, K_PROD, FIN_NONE); }
static int max_forward(sn_call *c) { return fwd_generic(c, K_MAX, FIN_NONE); }
static int min_forward(sn_call *c) { return fwd_generic(c, K_MIN, FIN_NONE); }

/* Backward: walks the input in rows of its last collapsed dim, long rows
 * cut into pieces of RBWD_PIECE elements so that a full reduction's
 * gradient is still spread over the threads; __VA_ARGS__ sets GX[ii] from
 * G[oi] (and the X/O/aux arrays), oi being the output index of input ii. */
#define RBWD_PIECE 8192
#define RBWD_ROWS(pl, ...)                                                     \
  do {                                                                         \
    const int64_t L_ = (pl)->dim[(pl)->nd - 1];                                \
    const int64_t nrows_ = (pl)->n_in / L_;                                    \
    const int64_t npc_ = (L_ + RBWD_PIECE - 1) / RBWD_PIECE;                   \
    const int lastred_ = (pl)->red[(pl)->nd - 1];                              \
    SN_PARALLEL_FOR_COST(nrows_ * npc_, L_ < RBWD_PIECE ? L_ : RBWD_PIECE)     \
    for (int64_t pc = 0; pc < nrows_ * npc_; pc++) {                           \
      const int64_t q = pc / npc_;                                             \
      const int64_t j0 = (pc % npc_) * RBWD_PIECE;                             \
      const int64_t j1 = j0 + RBWD_PIECE < L_ ? j0 + RBWD_PIECE : L_;          \
      const int64_t ob = rplan_row_out((pl), q);                               \
      const int64_t jb = q * L_;                                               \
      if (lastred_) {                                                          \
        for (int64_t j = j0; j < j1; j++) {                                    \
          const int64_t oi = ob;                                               \
          const int64_t ii = jb + j;                                           \
          __VA_ARGS__;                                                         \
        }                                                                      \
      } else {                                                                 \
        for (int64_t j = j0; j < j1; j++) {                                    \
          const int64_t oi = ob + j;                                           \
          const int64_t ii = jb + j;                                           \
          __VA_ARGS__;                                                         \
        }                                                                      \
      }                                                                        \
    }                                                                          \
  } while (0)

static int sum_mean_backward(sn_call *c, int mean) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  rplan pl;
  SN_TRY(reduce_plan(c->p, &c->igrad[0]->shape, &pl));
  SN_DISPATCH_FLOAT(c->igrad[0]->dtype, T, {
    const T *G = SN_PTR(T, c->ograd[0]);
    T *GX = SN_PTR(T, c->igrad[0]);
    const T s = mean ? (T)(1.0 / (double)pl.n_red) : (T)1;
    RBWD_ROWS(&pl, GX[ii] = G[oi] * s);
  });
  return SN_OK;
}

static int sum_backward(sn_call *c) { return sum_mean_backward(c, 0); }
static int mean_backward(sn_call *c) { return sum_mean_backward(c, 1); }

/* max/min: the gradient goes to every position equal to the result. */
static int minmax_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  rplan pl;
  SN_TRY(reduce_plan(c->p, &c->in[0]->shape, &pl));
  SN_DISPATCH_FLOAT(c->igrad[0]->dtype, T, {
    const T *G = SN_PTR(T, c->ograd[0]);
    const T *X = SN_PTR(T, c->in[0]);
    const T *O = SN_PTR(T, c->out[0]);
    T *GX = SN_PTR(T, c->igrad[0]);
    RBWD_ROWS(&pl, GX[ii] = (X[ii] == O[oi]) ? G[oi] : (T)0);
  });
  return SN_OK;
}

/* prod: d out / d x_j = product of the other elements of the group. */
static int prod_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  rplan pl;
  const char *name = c->p->op->name;
  SN_TRY(reduce_plan(c->p, &c->in[0]->shape, &pl));
  sn_dtype dt = c->in[0]->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported", name, sn_dtype_name(dt));
  size_t bytes;
  if (sn_mul_size((size_t)pl.n_out, 2 * sizeof(double), &bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", name);
  double *nz = (double *)sn_host_alloc(bytes);
  if (!nz) return sn_error(SN_ERR_OOM, "%s: cannot allocate %zu bytes", name, bytes);
  double *pnz = nz + pl.n_out;
  const void *xd = sn_tensor_data(c->in[0]);
  int rc = reduce_run(name, &pl, K_NZCNT, FIN_NONE, 1.0, dt, xd, SN_F64, nz);
  if (rc == SN_OK) rc = reduce_run(name, &pl, K_PNZ, FIN_NONE, 1.0, dt, xd, SN_F64, pnz);
  if (rc == SN_OK) {
    if (dt == SN_F32) {
      const float *G = SN_PTR(float, c->ograd[0]), *X = (const float *)xd;
      float *GX = SN_PTR(float, c->igrad[0]);
      RBWD_ROWS(&pl, {
        double xv = X[ii], z = nz[oi];
        GX[ii] = (float)(z == 0 ? G[oi] * (pnz[oi] / xv)
                                : (z == 1 && xv == 0 ? G[oi] * pnz[oi] : 0.0));
      });
    } else {
      const double *G = SN_PTR(double, c->ograd[0]), *X = (const double *)xd;
      double *GX = SN_PTR(double, c->igrad[0]);
      RBWD_ROWS(&pl, {
        double xv = X[ii], z = nz[oi];
        GX[ii] = z == 0 ? G[oi] * (pnz[oi] / xv) : (z == 1 && xv == 0 ? G[oi] * pnz[oi] : 0.0);
      });
    }
  }
  sn_host_free(nz, bytes);
  return rc;
}

#define REDUCE_OP(VAR, NAME, ALIASES, DOC, FWD, BWD, FLAGS)                            \
  static const sn_op VAR = {                                                           \
      .name = NAME,                                                                    \
      .aliases = ALIASES,                                                              \
      .doc = DOC,                                                                      \
      .params = reduce_params,                                                         \
      .nparams = (int)(sizeof reduce_params / sizeof reduce_params[0]),                \
      .inputs = data_inputs,                                                           \
      .infer_shape = reduce_infer_shape,                                               \
      .forward_cpu = FWD,                                                              \
      .backward_cpu = BWD,                                                             \
      .flags = FLAGS,                                                                  \
      .inplace_in = SN_INPLACE(-1),                                                                \
      .inplace_grad = SN_INPLACE(-1),                                                              \
  }

REDUCE_OP(op_sum, "sum", "sum_axis",
          "Computes the sum of array elements over the given axes. axis=None reduces over "
          "all elements into an array of shape (1,); keepdims keeps reduced axes as size "
          "one; exclude reduces over the axes not listed.",
          sum_forward, sum_backward, 0);
REDUCE_OP(op_mean, "mean", NULL,
          "Computes the mean of array elements over the given axes (see sum for axis, "
          "keepdims and exclude).",
          mean_forward, mean_backward, 0);
REDUCE_OP(op_prod, "prod", NULL,
          "Computes the product of array elements over the given axes (see sum for axis, "
          "keepdims and exclude). The gradient handles zeros exactly.",
          prod_forward, prod_backward, SN_DEP_IN);
REDUCE_OP(op_max, "max", "max_axis",
          "Computes the maximum of array elements over the given axes (see sum for axis, "
          "keepdims and exclude). NaN propagates. The gradient goes to every element equal "
          "to the maximum.",
          max_forward, minmax_backward, SN_DEP_IN | SN_DEP_OUT);
REDUCE_OP(op_min, "min", "min_axis",
          "Computes the minimum of array elements over the given axes (see sum for axis, "
          "keepdims and exclude). NaN propagates. The gradient goes to every element equal "
          "to the minimum.",
          min_forward, minmax_backward, SN_DEP_IN | SN_DEP_OUT);

/* ------------------------------------------------------------------ */
/* norm                                                                */
/* ------------------------------------------------------------------ */

enum { PN_ORD, PN_AXIS, PN_OUT_DTYPE, PN_KEEPDIMS };

static const sn_param_spec norm_params[] = {
    {"ord", SN_PT_INT, "2", NULL, "Order of the norm: 1 or 2."},
    {"axis", SN_PT_OPT_SHAPE, "None", NULL,
     "The axis or axes to reduce (C order). None or () computes the norm of all elements "
     "into an array of shape (1,); a 2-tuple gives the Frobenius (ord=2) or entry-wise "
     "(ord=1) norm of the matrices held in those axes."},
    {"out_dtype", SN_PT_ENUM, "None", "None|float16|float32|float64|int64|int32|int8",
     "The data type of the output (only None or the input dtype are supported)."},
    {"keepdims", SN_PT_BOOL, "False", NULL,
     "If True, the reduced axes stay in the result as dimensions of size one."},
};

static const sn_dtype norm_out_types[] = {SN_DTYPE_UNKNOWN, SN_F16, SN_F32, SN_F64,
                                          SN_I64,           SN_I32, SN_I8};

static int norm_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  int mask[SN_MAX_DIMS], all;
  int64_t ord = p->v[PN_ORD].i;
  if (ord != 1 && ord != 2)
    return sn_error(SN_ERR_ARG, "ord must be 1 or 2, got %lld", (long long)ord);
  if (in[0].ndim < 0) return SN_OK;
  SN_TRY(reduce_mask(&p->v[PN_AXIS], 0, &in[0], mask, &all));
  sn_shape o = reduce_out_shape(&in[0], mask, all, (int)p->v[PN_KEEPDIMS].i);
  return sn_shape_assign(&out[0], &o, "output");
}

static int norm_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)nin;
  (void)nout;
  int64_t k = p->v[PN_OUT_DTYPE].i;
  sn_dtype want = (k >= 0 && k < 7) ? norm_out_types[k] : SN_DTYPE_UNKNOWN;
  sn_dtype t = in[0] != SN_DTYPE_UNKNOWN ? in[0] : out[0];
  if (t == SN_DTYPE_UNKNOWN) t = want;
  if (want != SN_DTYPE_UNKNOWN && t != SN_DTYPE_UNKNOWN && want != t)
    return sn_error(SN_ERR_UNSUPPORTED,
                    "out_dtype %s differs from the input dtype %s (not supported)",
                    sn_dtype_name(want), sn_dtype_name(t));
  if (in[0] != SN_DTYPE_UNKNOWN && out[0] != SN_DTYPE_UNKNOWN && in[0] != out[0])
    return sn_error(SN_ERR_TYPE, "input dtype %s and output dtype %s differ",
                    sn_dtype_name(in[0]), sn_dtype_name(out[0]));
  in[0] = out[0] = t;
  return SN_OK;
}

static int norm_plan(const sn_params *p, const sn_shape *ish, rplan *pl) {
  int mask[SN_MAX_DIMS], all;
  SN_TRY(reduce_mask(&p->v[PN_AXIS], 0, ish, mask, &all));
  rplan_make(ish, mask, pl);
  return SN_OK;
}

static int norm_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  rplan pl;
  SN_TRY(norm_plan(c->p, &c->in[0]->shape, &pl));
  int ord2 = c->p->v[PN_ORD].i == 2;
  return reduce_run("norm", &pl, ord2 ? K_SQ : K_ABS, ord2 ? FIN_SQRT : FIN_NONE, 1.0,
                    c->in[0]->dtype, sn_tensor_data(c->in[0]), c->out[0]->dtype,
                    sn_tensor_data(c->out[0]));
}

static int norm_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  rplan pl;
  SN_TRY(norm_plan(c->p, &c->in[0]->shape, &pl));
  int ord2 = c->p->v[PN_ORD].i == 2;
  SN_DISPATCH_FLOAT(c->igrad[0]->dtype, T, {
    const T *G = SN_PTR(T, c->ograd[0]);
    const T *X = SN_PTR(T, c->in[0]);
    const T *O = SN_PTR(T, c->out[0]);
    T *GX = SN_PTR(T, c->igrad[0]);
    if (ord2)
      RBWD_ROWS(&pl, GX[ii] = O[oi] > 0 ? G[oi] * (X[ii] / O[oi]) : (T)0);
    else
      RBWD_ROWS(&pl, GX[ii] = X[ii] > 0 ? G[oi] : (X[ii] < 0 ? -G[oi] : (T)0));
  });
  return SN_OK;
}

static const sn_op op_norm = {
    .name = "norm",
    .doc = "Computes the L1 (ord=1) or L2 (ord=2) norm of the input over the given axes; by "
           "default the L2 norm of all elements, as an array of shape (1,). The ord=2 "
           "gradient is x / norm (0 where the norm is 0); the ord=1 gradient is sign(x).",
    .params = norm_params,
    .nparams = (int)(sizeof norm_params / sizeof norm_params[0]),
    .inputs = data_inputs,
    .infer_shape = norm_infer_shape,
    .infer_type = norm_infer_type,
    .forward_cpu = norm_forward,
    .backward_cpu = norm_backward,
    .flags = SN_DEP_IN | SN_DEP_OUT,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* argmax / argmin / argmax_channel                                    */
/* ------------------------------------------------------------------ */

enum { PA_AXIS, PA_KEEPDIMS };

static const sn_param_spec arg_params[] = {
    {"axis", SN_PT_OPT_INT, "None", NULL,
     "The axis to search along (C order, negative counts from the end). None searches "
     "the flattened input."},
    {"keepdims", SN_PT_BOOL, "False", NULL,
     "If True, the reduced axis stays in the result as a dimension of size one."},
};

/* Resolves the axis: *ax = -1 for a flattened search. */
static int arg_axis(int set, int64_t axis, const sn_shape *ish, int *ax) {
  char buf[160];
  if (!set || ish->ndim == 1) {
    *ax = -1;
    return SN_OK;
  }
  if (axis < -(int64_t)ish->ndim || axis >= ish->ndim)
    return sn_error(SN_ERR_ARG, "axis %lld is out of range for an input of shape %s",
                    (long long)axis, sn_shape_str(ish, buf, sizeof buf));
  *ax = (int)(axis < 0 ? axis + ish->ndim : axis);
  return SN_OK;
}

static int arg_shape(int set, int64_t axis, int keepdims, sn_shape *in,
                     sn_shape *out) {
  int ax = 0;
  if (in->ndim < 0) return SN_OK;
  SN_TRY(arg_axis(set, axis, in, &ax));
  sn_shape o;
  o.ndim = 0;
  if (ax < 0) {
    if (keepdims && in->ndim > 0) {
      o.ndim = in->ndim;
      for (int d = 0; d < o.ndim; d++) o.dim[d] = 1;
    } else {
      o.ndim = 1;
      o.dim[0] = 1;
    }
  } else {
    for (int d = 0; d < in->ndim; d++) {
      if (d != ax) o.dim[o.ndim++] = in->dim[d];
      else if (keepdims) o.dim[o.ndim++] = 1;
    }
    if (o.ndim == 0) {
      o.ndim = 1;
      o.dim[0] = 1;
    }
  }
  return sn_shape_assign(out, &o, "output");
}

static int arg_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  return arg_shape(p->v[PA_AXIS].set, p->v[PA_AXIS].i, (int)p->v[PA_KEEPDIMS].i,
                   &in[0], &out[0]);
}

static int argch_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                             sn_shape *aux, int naux) {
  (void)p;
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  return arg_shape(1, 1, 0, &in[0], &out[0]);
}

/* Position of the max (want_max) or min along the middle axis of
 * (outer, M, inner); first occurrence, NaN counts as extreme. */
#define ARG_BETTER(v, b) \
  ((want_max ? (v) > (b) : (v) < (b)) || ((v) != (v) && (b) == (b)))

#define DEF_ARG(NAME, T)                                                         \
  static void NAME(const T *X, T *O, int64_t outer, int64_t M, int64_t inner,    \
                   int want_max) {                                               \
    const int64_t ntile = (inner + RTILE - 1) / RTILE;                           \
    const int64_t units = outer * ntile;                                         \
    SN_PARALLEL_FOR_COST(units, M * (inner < RTILE ? inner : RTILE))             \
    for (int64_t u = 0; u < units; u++) {                                        \
      int64_t o = u / ntile, t = u % ntile;                                      \
      int64_t i0 = t * RTILE, i1 = i0 + RTILE < inner ? i0 + RTILE : inner;      \
      const T *xo = X + o * M * inner;                                           \
      if (inner == 1) {                                                          \
        T b = xo[0];                                                             \
        int64_t bi = 0;                                                          \
        for (int64_t r = 1; r < M; r++) {                                        \
          T v = xo[r];                                                           \
          if (ARG_BETTER(v, b)) {                                                \
            b = v;                                                               \
            bi = r;                                                              \
          }                                                                      \
        }                                                                        \
        O[o] = (T)bi;                                                            \
      } else {                                                                   \
        T b[RTILE];                                                              \
        int64_t bi[RTILE];                                                       \
        int64_t w = i1 - i0;                                                     \
        for (int64_t i = 0; i < w; i++) {                                        \
          b[i] = xo[i0 + i];                                                     \
          bi[i] = 0;                                                             \
        }                                                                        \
        for (int64_t r = 1; r < M; r++) {                                        \
          const T *xr = xo + r * inner + i0;                                     \
          for (int64_t i = 0; i < w; i++) {                                      \
            T v = xr[i];                                                         \
            if (ARG_BETTER(v, b[i])) {                                           \
              b[i] = v;                                                          \
              bi[i] = r;                                                         \
            }                                                                    \
          }                                                                      \
        }                                                                        \
        for (int64_t i = 0; i < w; i++) O[o * inner + i0 + i] = (T)bi[i];        \
      }                                                                          \
    }                                                                            \
  }

DEF_ARG(arg_kernel_f32, float)
DEF_ARG(arg_kernel_f64, double)

static int arg_run(sn_call *c, int set, int64_t axis, int want_max) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  const sn_shape *s = &c->in[0]->shape;
  int ax = 0;
  SN_TRY(arg_axis(set, axis, s, &ax));
  int64_t outer = 1, M = 1, inner = 1;
  for (int d = 0; d < s->ndim; d++) {
    if (ax < 0) M *= s->dim[d];
    else if (d < ax) outer *= s->dim[d];
    else if (d == ax) M = s->dim[d];
    else inner *= s->dim[d];
  }
  if (c->in[0]->dtype == SN_F32)
    arg_kernel_f32(SN_PTR(float, c->in[0]), SN_PTR(float, c->out[0]), outer, M, inner, want_max);
  else if (c->in[0]->dtype == SN_F64)
    arg_kernel_f64(SN_PTR(double, c->in[0]), SN_PTR(double, c->out[0]), outer, M, inner,
                   want_max);
  else
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported", c->p->op->name,
                    sn_dtype_name(c->in[0]->dtype));
  return SN_OK;
}

static int argmax_forward(sn_call *c) {
  return arg_run(c, c->p->v[PA_AXIS].set, c->p->v[PA_AXIS].i, 1);
}
static int argmin_forward(sn_call *c) {
  return arg_run(c, c->p->v[PA_AXIS].set, c->p->v[PA_AXIS].i, 0);
}
static int argmax_channel_forward(sn_call *c) { return arg_run(c, 1, 1, 1); }

static const sn_op op_argmax = {
    .name = "argmax",
    .doc = "Returns the indices of the maximum values along an axis (the first occurrence), "
           "as floats in the input dtype. axis=None searches the flattened input and returns "
           "shape (1,). No gradient.",
    .params = arg_params,
    .nparams = (int)(sizeof arg_params / sizeof arg_params[0]),
    .inputs = data_inputs,
    .infer_shape = arg_infer_shape,
    .forward_cpu = argmax_forward,
    .flags = SN_OP_NO_GRAD,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

static const sn_op op_argmin = {
    .name = "argmin",
    .doc = "Returns the indices of the minimum values along an axis (the first occurrence), "
           "as floats in the input dtype. axis=None searches the flattened input and returns "
           "shape (1,). No gradient.",
    .params = arg_params,
    .nparams = (int)(sizeof arg_params / sizeof arg_params[0]),
    .inputs = data_inputs,
    .infer_shape = arg_infer_shape,
    .forward_cpu = argmin_forward,
    .flags = SN_OP_NO_GRAD,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

static const sn_op op_argmax_channel = {
    .name = "argmax_channel",
    .doc = "Returns the indices of the maximum values along axis 1 (the channel axis of a "
           "(batch, channel, ...) input), as floats in the input dtype. No gradient.",
    .params = NULL,
    .nparams = 0,
    .inputs = data_inputs,
    .infer_shape = argch_infer_shape,
    .forward_cpu = argmax_channel_forward,
    .flags = SN_OP_NO_GRAD,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_reduce[] = {&op_sum,    &op_mean,   &op_prod,
                                         &op_max,    &op_min,    &op_norm,
                                         &op_argmax, &op_argmin, &op_argmax_channel,
                                         NULL};
