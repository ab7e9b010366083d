/* Matrix products: dot and batch_dot, through the BLAS GEMM.
 *
 * dot(lhs, rhs) follows MXNet 1.x: an N-D lhs is viewed as a matrix whose
 * columns are its last axis (rows: all the others) and an N-D rhs as a
 * matrix whose rows are its first axis, so dot contracts the last axis of
 * lhs with the first axis of rhs; the output shape is lhs.shape[:-1] +
 * rhs.shape[1:].  transpose_a views lhs as (shape[0], rest) and contracts
 * its first axis instead (output dims lhs.shape[1:]); transpose_b views rhs
 * as (rest, shape[-1]) and contracts its last axis (output dims
 * rhs.shape[:-1]).  The contracted sizes must agree.  1-D . 1-D is the
 * inner product with shape (1,) (transposes are errors there); a 1-D
 * operand contributes no output dims.
 *
 * Because R's dim is the reverse of the C shape, mx.nd.dot(t(a), t(b)) in R
 * equals t(a %*% b).
 *
 * batch_dot(lhs, rhs): both N-D with N >= 3 and equal leading (batch) dims;
 * per batch element out = op(lhs) op(rhs) on the last two axes.
 *
 * Both handle req == add themselves (GEMM with beta = 1).  dot splits its
 * GEMM over the threads by rows or columns of the result; batch_dot runs
 * batch items on different threads when each is small.  Neither splits a
 * contraction, so results do not depend on the thread count.  forward_stype is
 * accepted for compatibility and ignored (everything is dense). */
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../cpu_par.h"
#include "../op.h"

enum { P_TA, P_TB, P_STYPE };

static const sn_param_spec dot_params[] = {
    {"transpose_a", SN_PT_BOOL, "False", NULL, "If true then transpose the first input before dot."},
    {"transpose_b", SN_PT_BOOL, "False", NULL, "If true then transpose the second input before dot."},
    {"forward_stype", SN_PT_ENUM, "None", "None|default|row_sparse|csr",
     "Desired storage type of the output (accepted for compatibility; outputs are dense)."},
};

static const char *const dot_inputs[] = {"lhs", "rhs", NULL};

/* C = op(A) op(B) + beta C in dtype dt, split over the threads (by rows or
 * columns of C; serial inside a parallel region or for small products). */
static void gemm(sn_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
                 int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  if (dt == SN_F32)
    sn_gemm_par_f32(ta, tb, m, n, k, 1.0f, (const float *)a, lda, (const float *)b, ldb,
                    (float)beta, (float *)c, ldc);
  else
    sn_gemm_par_f64(ta, tb, m, n, k, 1.0, (const double *)a, lda, (const double *)b, ldb, beta,
                    (double *)c, ldc);
}

/* Runs body for every batch item i: over the threads (each item one serial
 * GEMM) when there are several items and each is too small to split. */
#define SN_BDOT_LOOP(g, ...)                                                                   \
  do {                                                                                         \
    const double work_ = (double)(g).m * (double)(g).n * (double)((g).k > 0 ? (g).k : 1);      \
    const int nt_ = sn_in_parallel() ? 1 : sn_num_threads();                                   \
    if (nt_ > 1 && (g).batch > 1 && work_ < SN_GEMM_PAR_MIN &&                                 \
        work_ * (double)(g).batch >= SN_GEMM_PAR_MIN) {                                        \
      sn_blas_single();                                                                        \
      SN_OMP(parallel for schedule(static) num_threads(nt_))                                   \
      for (int64_t i = 0; i < (g).batch; i++) { __VA_ARGS__; }                                 \
    } else {                                                                                   \
      for (int64_t i = 0; i < (g).batch; i++) { __VA_ARGS__; }                                 \
    }                                                                                          \
  } while (0)

static int check_float(const char *op, sn_dtype dt) {
  if (dt != SN_F32 && dt != SN_F64)
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 and float64 are)", op,
                    sn_dtype_name(dt));
  return SN_OK;
}

static int64_t prod_dims(const sn_shape *s, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= s->dim[d];
  return p;
}

/* ---- dot ---- */

/* The 2-D view of a dot: lhs stored (ra, ca), rhs stored (rb, cb);
 * out (m, n) = op(lhs)(m, k) op(rhs)(k, n). */
typedef struct {
  int ta, tb;
  int64_t m, n, k, ka, kb;
} dot_geom;

static void dot_geometry(const sn_shape *l, const sn_shape *r, int ta, int tb, dot_geom *g) {
  g->ta = ta;
  g->tb = tb;
  if (l->ndim == 1 && r->ndim == 1) {
    g->m = 1;
    g->n = 1;
    g->ka = l->dim[0];
    g->kb = r->dim[0];
    g->k = g->ka;
    g->ta = g->tb = 0;
    return;
  }
  /* lhs: not ta -> (prod(shape[:-1]), shape[-1]); ta -> (shape[0], prod(shape[1:])) */
  if (!ta) {
    g->m = prod_dims(l, 0, l->ndim - 1);
    g->ka = l->dim[l->ndim - 1];
  } else {
    g->ka = l->dim[0];
    g->m = prod_dims(l, 1, l->ndim);
  }
  if (!tb) {
    g->kb = r->dim[0];
    g->n = prod_dims(r, 1, r->ndim);
  } else {
    g->n = prod_dims(r, 0, r->ndim - 1);
    g->kb = r->dim[r->ndim - 1];
  }
  g->k = g->ka;
}

static int dot_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  const sn_shape *l = &in[0], *r = &in[1];
  int ta = (int)p->v[P_TA].i, tb = (int)p->v[P_TB].i;
  char a[160], b[160];
  if (l->ndim < 0 || r->ndim < 0) return SN_OK;
  if (l->ndim == 0 || r->ndim == 0)
    return sn_error(SN_ERR_SHAPE, "scalar (0-d) inputs are not supported (lhs %s, rhs %s)",
                    sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b));
  sn_shape o;
  o.ndim = 0;
  if (l->ndim == 1 && r->ndim == 1) {
    if (ta || tb) return sn_error(SN_ERR_ARG, "cannot transpose vectors");
    if (l->dim[0] && r->dim[0] && l->dim[0] != r->dim[0])
      return sn_error(SN_ERR_SHAPE, "shape mismatch: lhs %s X rhs %s",
                      sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b));
    o.ndim = 1;
    o.dim[0] = 1;
    return sn_shape_assign(&out[0], &o, "output");
  }
  if (l->ndim + r->ndim - 2 > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "output of lhs %s X rhs %s has more than %d dims",
                    sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b), SN_MAX_DIMS);
  /* Contracted sizes (0 while a dim is unknown). */
  int64_t kl = ta ? l->dim[0] : l->dim[l->ndim - 1];
  int64_t kr = tb ? r->dim[r->ndim - 1] : r->dim[0];
  if (l->ndim == 1) kl = l->dim[0];
  if (r->ndim == 1) kr = r->dim[0];
  if (kl && kr && kl != kr)
    return sn_error(SN_ERR_SHAPE,
                    "shape mismatch: lhs %s X rhs %s (transpose_a=%d, transpose_b=%d): "
                    "contracted sizes %lld and %lld differ",
                    sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b), ta, tb,
                    (long long)kl, (long long)kr);
  if (l->ndim > 1) {
    int from = ta ? 1 : 0, to = ta ? l->ndim : l->ndim - 1;
    for (int d = from; d < to; d++) o.dim[o.ndim++] = l->dim[d];
  }
  if (r->ndim > 1) {
    int from = tb ? 0 : 1, to = tb ? r->ndim - 1 : r->ndim;
    for (int d = from; d < to; d++) o.dim[o.ndim++] = r->dim[d];
  }
  return sn_shape_assign(&out[0], &o, "output");
}

static int dot_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  sn_dtype dt = c->in[0]->dtype;
  SN_TRY(check_float("dot", dt));
  dot_geom g;
  dot_geometry(&c->in[0]->shape, &c->in[1]->shape, (int)c->p->v[P_TA].i, (int)c->p->v[P_TB].i,
               &g);
  double beta = c->req[0] == SN_REQ_ADD ? 1.0 : 0.0;
  /* lda/ldb: the stored row lengths. */
  int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  gemm(dt, g.ta, g.tb, g.m, g.n, g.k, sn_tensor_data(c->in[0]), lda, sn_tensor_data(c->in[1]),
       ldb, beta, sn_tensor_data(c->out[0]), g.n);
  return SN_OK;
}

static int dot_backward(sn_call *c) {
  sn_dtype dt = c->in[0]->dtype;
  SN_TRY(check_float("dot", dt));
  dot_geom g;
  dot_geometry(&c->in[0]->shape, &c->in[1]->shape, (int)c->p->v[P_TA].i, (int)c->p->v[P_TB].i,
               &g);
  const void *A = sn_tensor_data(c->in[0]), *B = sn_tensor_data(c->in[1]);
  const void *G = sn_tensor_data(c->ograd[0]); /* (m, n) */
  int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  if (c->req[0] != SN_REQ_NULL) {
    double beta = c->req[0] == SN_REQ_ADD ? 1.0 : 0.0;
    void *GA = sn_tensor_data(c->igrad[0]);
    if (!g.ta) /* dA (m, k) = G (m, n) op(B)^T (n, k) */
      gemm(dt, 0, !g.tb, g.m, g.k, g.n, G, g.n, B, ldb, beta, GA, g.k);
    else /* dA stored (k, m) = op(B) (k, n) G^T (n, m) */
      gemm(dt, g.tb, 1, g.k, g.m, g.n, B, ldb, G, g.n, beta, GA, g.m);
  }
  if (c->req[1] != SN_REQ_NULL) {
    double beta = c->req[1] == SN_REQ_ADD ? 1.0 : 0.0;
    void *GB = sn_tensor_data(c->igrad[1]);
    if (!g.tb) /* dB (k, n) = op(A)^T (k, m) G (m, n) */
      gemm(dt, !g.ta, 0, g.k, g.n, g.m, A, lda, G, g.n, beta, GB, g.n);
    else /* dB stored (n, k) = G^T (n, m) op(A) (m, k) */
      gemm(dt, 1, g.ta, g.n, g.k, g.m, G, g.n, A, lda, beta, GB, g.k);
  }
  return SN_OK;
}

static const sn_op op_dot = {
    .name = "dot",
    .doc = "Dot product of two arrays (MXNet semantics): contracts the last axis of lhs with "
           "the first axis of rhs (transpose_a / transpose_b contract the first axis of lhs / "
           "the last axis of rhs instead); output shape lhs.shape[:-1] + rhs.shape[1:]. Two "
           "vectors give their inner product with shape (1,). In R's reversed dims, "
           "mx.nd.dot(t(a), t(b)) equals t(a %*% b). Computed with the BLAS GEMM.",
    .params = dot_params,
    .nparams = (int)(sizeof dot_params / sizeof dot_params[0]),
    .inputs = dot_inputs,
    .infer_shape = dot_infer_shape,
    .forward_cpu = dot_forward,
    .backward_cpu = dot_backward,
    .flags = SN_DEP_IN | SN_OP_HANDLES_ADD,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ---- batch_dot ---- */

static int batch_dot_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                                 int nout, sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  const sn_shape *l = &in[0], *r = &in[1];
  int ta = (int)p->v[P_TA].i, tb = (int)p->v[P_TB].i;
  char a[160], b[160];
  if (l->ndim < 0 || r->ndim < 0) return SN_OK;
  if (l->ndim < 3 || r->ndim < 3 || l->ndim != r->ndim)
    return sn_error(SN_ERR_SHAPE,
                    "both inputs must have the same number (>= 3) of dims, got lhs "
                    "%s and rhs %s",
                    sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b));
  int nd = l->ndim;
  sn_shape o;
  o.ndim = nd;
  for (int d = 0; d < nd - 2; d++) {
    if (l->dim[d] && r->dim[d] && l->dim[d] != r->dim[d])
      return sn_error(SN_ERR_SHAPE,
                      "the leading (batch) dims must be equal: lhs %s X rhs %s",
                      sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b));
    o.dim[d] = l->dim[d] ? l->dim[d] : r->dim[d];
  }
  int64_t m = ta ? l->dim[nd - 1] : l->dim[nd - 2];
  int64_t kl = ta ? l->dim[nd - 2] : l->dim[nd - 1];
  int64_t n = tb ? r->dim[nd - 2] : r->dim[nd - 1];
  int64_t kr = tb ? r->dim[nd - 1] : r->dim[nd - 2];
  if (kl && kr && kl != kr)
    return sn_error(SN_ERR_SHAPE,
                    "shape mismatch: lhs %s X rhs %s (transpose_a=%d, "
                    "transpose_b=%d): contracted sizes %lld and %lld differ",
                    sn_shape_str(l, a, sizeof a), sn_shape_str(r, b, sizeof b), ta, tb,
                    (long long)kl, (long long)kr);
  o.dim[nd - 2] = m;
  o.dim[nd - 1] = n;
  return sn_shape_assign(&out[0], &o, "output");
}

typedef struct {
  int ta, tb;
  int64_t batch, m, n, k;
  int64_t lda, ldb; /* stored row lengths */
  int64_t sa, sb, sc; /* elements per batch item */
} bdot_geom;

static void bdot_geometry(const sn_shape *l, const sn_shape *r, int ta, int tb, bdot_geom *g) {
  int nd = l->ndim;
  g->ta = ta;
  g->tb = tb;
  g->batch = prod_dims(l, 0, nd - 2);
  g->m = ta ? l->dim[nd - 1] : l->dim[nd - 2];
  g->k = ta ? l->dim[nd - 2] : l->dim[nd - 1];
  g->n = tb ? r->dim[nd - 2] : r->dim[nd - 1];
  g->lda = l->dim[nd - 1];
  g->ldb = r->dim[nd - 1];
  g->sa = g->m * g->k;
  g->sb = g->k * g->n;
  g->sc = g->m * g->n;
}

static int batch_dot_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  sn_dtype dt = c->in[0]->dtype;
  SN_TRY(check_float("batch_dot", dt));
  bdot_geom g;
  bdot_geometry(&c->in[0]->shape, &c->in[1]->shape, (int)c->p->v[P_TA].i,
                (int)c->p->v[P_TB].i, &g);
  size_t es = sn_dtype_size(dt);
  const char *A = sn_tensor_data(c->in[0]), *B = sn_tensor_data(c->in[1]);
  char *C = sn_tensor_data(c->out[0]);
  double beta = c->req[0] == SN_REQ_ADD ? 1.0 : 0.0;
  SN_BDOT_LOOP(g, gemm(dt, g.ta, g.tb, g.m, g.n, g.k, A + (size_t)(i * g.sa) * es, g.lda,
                       B + (size_t)(i * g.sb) * es, g.ldb, beta, C + (size_t)(i * g.sc) * es,
                       g.n));
  return SN_OK;
}

static int batch_dot_backward(sn_call *c) {
  sn_dtype dt = c->in[0]->dtype;
  SN_TRY(check_float("batch_dot", dt));
  bdot_geom g;
  bdot_geometry(&c->in[0]->shape, &c->in[1]->shape, (int)c->p->v[P_TA].i,
                (int)c->p->v[P_TB].i, &g);
  size_t es = sn_dtype_size(dt);
  const char *A = sn_tensor_data(c->in[0]), *B = sn_tensor_data(c->in[1]);
  const char *G = sn_tensor_data(c->ograd[0]);
  if (c->req[0] != SN_REQ_NULL) {
    double beta = c->req[0] == SN_REQ_ADD ? 1.0 : 0.0;
    char *GA = sn_tensor_data(c->igrad[0]);
    SN_BDOT_LOOP(g, {
      const char *Bi = B + (size_t)(i * g.sb) * es, *Gi = G + (size_t)(i * g.sc) * es;
      char *GAi = GA + (size_t)(i * g.sa) * es;
      if (!g.ta)
        gemm(dt, 0, !g.tb, g.m, g.k, g.n, Gi, g.n, Bi, g.ldb, beta, GAi, g.k);
      else
        gemm(dt, g.tb, 1, g.k, g.m, g.n, Bi, g.ldb, Gi, g.n, beta, GAi, g.m);
    });
  }
  if (c->req[1] != SN_REQ_NULL) {
    double beta = c->req[1] == SN_REQ_ADD ? 1.0 : 0.0;
    char *GB = sn_tensor_data(c->igrad[1]);
    SN_BDOT_LOOP(g, {
      const char *Ai = A + (size_t)(i * g.sa) * es, *Gi = G + (size_t)(i * g.sc) * es;
      char *GBi = GB + (size_t)(i * g.sb) * es;
      if (!g.tb)
        gemm(dt, !g.ta, 0, g.k, g.n, g.m, Ai, g.lda, Gi, g.n, beta, GBi, g.n);
      else
        gemm(dt, 1, g.ta, g.n, g.k, g.m, Gi, g.n, Ai, g.lda, beta, GBi, g.k);
    });
  }
  return SN_OK;
}

static const sn_op op_batch_dot = {
    .name = "batch_dot",
    .doc = "Batchwise dot product: for lhs of shape (b, m, k) and rhs of shape (b, k, n) (or "
           "N-D inputs with equal leading batch dims) out[i] = dot(lhs[i], rhs[i]) over the "
           "last two axes, with optional transposes of either operand. Computed with one "
           "BLAS GEMM per batch element.",
    .params = dot_params,
    .nparams = (int)(sizeof dot_params / sizeof dot_params[0]),
    .inputs = dot_inputs,
    .infer_shape = batch_dot_infer_shape,
    .forward_cpu = batch_dot_forward,
    .backward_cpu = batch_dot_backward,
    .flags = SN_DEP_IN | SN_OP_HANDLES_ADD,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_matrix[] = {&op_dot, &op_batch_dot, NULL};
