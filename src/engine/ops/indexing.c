/* Indexing ops: one_hot, take, pick (alias choose_element_0index),
 * Embedding, where and gather_nd.
 *
 * Index values arrive as numbers of any dtype (floats in MXNet's R API).
 * They are rounded to the nearest integer (MXNet truncates; rounding keeps
 * 2.9999999 from becoming 2) and then mapped per mode:
 *   clip  - below 0 becomes 0, above the last position becomes the last;
 *   wrap  - taken modulo the axis length (negative values count from the end);
 *   raise - (take only) an out-of-range index is an error, as in MXNet 1.6's
 *           CPU take.
 * A NaN index is always an error (never silently clipped); an infinite one
 * clips under clip and is an error under wrap.  one_hot writes an all
 * off_value row for an out-of-range index, as MXNet does.  Embedding clips.
 * gather_nd wraps (MXNet accepts indices in [-n, n)).
 *
 * Gradients: take, Embedding and gather_nd scatter-add the output gradient
 * into the data (weight) gradient; pick routes it to the picked positions;
 * where sends it to x where the condition is non-zero and to y elsewhere.
 * Index and condition inputs get zero gradients.  one_hot has none.
 * Embedding's sparse_grad is accepted and ignored (gradients are dense).
 *
 * dtypes: data/weight/x/y and the outputs are float32 or float64 (one_hot's
 * output may be any numeric dtype); index and condition inputs may be any
 * numeric dtype.  An index input whose dtype is unknown during inference
 * takes the data dtype. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

/* ------------------------------------------------------------------ */
/* Index conversion                                                    */
/* ------------------------------------------------------------------ */

enum { IX_CLIP, IX_WRAP, IX_RAISE, IX_DROP /* out of range -> -1 */ };

typedef struct {
  int64_t *v;
  size_t bytes;
} ixbuf;

static void ixbuf_free(ixbuf *b) {
  if (b->v) sn_host_free(b->v, b->bytes);
  b->v = NULL;
}

/* One index value mapped into [0, m) (or -1 for IX_DROP); returns 0 when
 * the value is not acceptable. */
static inline int ix_map(double v, int64_t m, int mode, int64_t *out) {
  if (v != v) return 0;
  double r = round(v);
  switch (mode) {
  case IX_CLIP:
    *out = r <= 0 ? 0 : (r >= (double)(m - 1) ? m - 1 : (int64_t)r);
    return 1;
  case IX_WRAP: {
    if (isinf(r)) return 0;
    double q = fmod(r, (double)m);
    if (q < 0) q += (double)m;
    int64_t j = (int64_t)q;
    *out = j >= m ? m - 1 : j;
    return 1;
  }
  case IX_RAISE:
    if (r < 0 || r > (double)(m - 1)) return 0;
    *out = (int64_t)r;
    return 1;
  default: /* IX_DROP */
    *out = (r < 0 || r > (double)(m - 1)) ? -1 : (int64_t)r;
    return 1;
  }
}

/* Converts every element of index tensor t into b->v per mode. */
static int ix_load(const char *op, const sn_tensor *t, int64_t m, int mode, ixbuf *b) {
  int64_t n = sn_tensor_size(t);
  b->v = NULL;
  if (t->dtype == SN_F16 || sn_dtype_size(t->dtype) == 0)
    return sn_error(SN_ERR_TYPE, "%s: index dtype %s is not supported", op, sn_dtype_name(t->dtype));
  if (sn_mul_size((size_t)n, sizeof(int64_t), &b->bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: index buffer size overflows", op);
  if (b->bytes == 0) b->bytes = sizeof(int64_t);
  b->v = (int64_t *)sn_host_alloc(b->bytes);
  if (!b->v) return sn_error(SN_ERR_OOM, "%s: cannot allocate %zu bytes", op, b->bytes);
  int64_t bad = -1;
  double badv = 0;
  SN_DISPATCH_ALL(t->dtype, I, {
    const I *src = SN_PTR(I, t);
    for (int64_t i = 0; i < n; i++) {
      double v = (double)src[i];
      if (!ix_map(v, m, mode, &b->v[i])) {
        bad = i;
        badv = v;
        break;
      }
    }
  });
  if (bad >= 0) {
    ixbuf_free(b);
    if (badv != badv) return sn_error(SN_ERR_ARG, "%s: index %lld is NaN", op, (long long)bad);
    return sn_error(SN_ERR_ARG, "%s: index value %g (position %lld) is out of range [0, %lld)",
                    op, badv, (long long)bad, (long long)m);
  }
  return SN_OK;
}

static int check_float(const char *op, sn_dtype dt) {
  if (dt != SN_F32 && dt != SN_F64)
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 and float64 are)", op,
                    sn_dtype_name(dt));
  return SN_OK;
}

/* Zeroes igrad[k] when it is requested (index inputs have no gradient). */
static void zero_grad(sn_call *c, int k) {
  if (c->req[k] != SN_REQ_NULL && c->igrad[k]) memset(sn_tensor_data(c->igrad[k]), 0, sn_tensor_bytes(c->igrad[k]));
}

/* dtype rule for (data, index) ops: output = data dtype; an unknown index
 * dtype takes the data dtype. */
static int data_index_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)p;
  (void)nin;
  (void)nout;
  sn_dtype t = in[0] != SN_DTYPE_UNKNOWN ? in[0] : out[0];
  if (in[0] != SN_DTYPE_UNKNOWN && out[0] != SN_DTYPE_UNKNOWN && in[0] != out[0])
    return sn_error(SN_ERR_TYPE, "data dtype %s and output dtype %s differ", sn_dtype_name(in[0]),
                    sn_dtype_name(out[0]));
  in[0] = out[0] = t;
  if (in[1] == SN_DTYPE_UNKNOWN) in[1] = t;
  return SN_OK;
}

/* ------------------------------------------------------------------ */
/* Gather / scatter-add along the middle axis of (outer, M, inner)     */
/* ------------------------------------------------------------------ */

/* out[o, k, :] = a[o, idx[k], :] */
static int gather_rows(sn_dtype dt, const void *a, void *out, const int64_t *idx, int64_t outer,
                       int64_t M, int64_t K, int64_t inner) {
  size_t es = sn_dtype_size(dt), row = (size_t)inner * es;
  const char *A = (const char *)a;
  char *O = (char *)out;
  SN_PARALLEL_FOR_COST(outer * K, inner)
  for (int64_t u = 0; u < outer * K; u++) {
    int64_t o = u / K, k = u % K;
    memcpy(O + (size_t)u * row, A + (size_t)(o * M + idx[k]) * row, row);
  }
  return SN_OK;
}

#define SCATTER_COLS 256

/* ga[o, idx[k], :] += g[o, k, :]  (ga already zeroed or accumulating) */
#define DEF_SCATTER(NAME, T)                                                                 \
  static void NAME(T *ga, const T *g, const int64_t *idx, int64_t outer, int64_t M, int64_t K, \
                   int64_t inner) {                                                           \
    if (outer > 1) {                                                                          \
      SN_PARALLEL_FOR_COST(outer, K * inner)                                                  \
      for (int64_t o = 0; o < outer; o++)                                                     \
        for (int64_t k = 0; k < K; k++) {                                                     \
          T *dst = ga + (o * M + idx[k]) * inner;                                             \
          const T *src = g + (o * K + k) * inner;                                             \
          for (int64_t i = 0; i < inner; i++) dst[i] += src[i];                               \
        }                                                                                     \
      return;                                                                                 \
    }                                                                                         \
    /* One outer slice: threads own disjoint column blocks. */                                \
    int64_t nb = (inner + SCATTER_COLS - 1) / SCATTER_COLS;                                   \
    SN_PARALLEL_FOR_COST(nb, K * (inner < SCATTER_COLS ? inner : SCATTER_COLS))               \
    for (int64_t b = 0; b < nb; b++) {                                                        \
      int64_t i0 = b * SCATTER_COLS;                                                          \
      int64_t i1 = i0 + SCATTER_COLS < inner ? i0 + SCATTER_COLS : inner;                     \
      for (int64_t k = 0; k < K; k++) {                                                       \
        T *dst = ga + idx[k] * inner;                                                         \
        const T *src = g + k * inner;                                                         \
        for (int64_t i = i0; i < i1; i++) dst[i] += src[i];                                   \
      }                                                                                       \
    }                                                                                         \
  }

DEF_SCATTER(scatter_rows_f32, float)
DEF_SCATTER(scatter_rows_f64, double)

static void scatter_rows(sn_dtype dt, void *ga, const void *g, const int64_t *idx, int64_t outer,
                         int64_t M, int64_t K, int64_t inner) {
  if (dt == SN_F32) scatter_rows_f32((float *)ga, (const float *)g, idx, outer, M, K, inner);
  else scatter_rows_f64((double *)ga, (const double *)g, idx, outer, M, K, inner);
}

/* ------------------------------------------------------------------ */
/* take                                                                */
/* ------------------------------------------------------------------ */

enum { PT_AXIS, PT_MODE };
static const sn_param_spec take_params[] = {
    {"axis", SN_PT_INT, "0", NULL,
     "The axis of the input array to take from (C order; in [-r, r-1] for an input of rank r)."},
    {"mode", SN_PT_ENUM, "clip", "raise|wrap|clip",
     "How out-of-bound indices behave: clip to the range (default), wrap around, or raise "
     "an error."},
};
static const char *const take_inputs[] = {"a", "indices", NULL};

static int take_axis(const sn_params *p, int ndim, int *ax) {
  int64_t a = p->v[PT_AXIS].i;
  if (a < -(int64_t)ndim || a >= ndim)
    return sn_error(SN_ERR_ARG, "axis %lld is out of range [%d, %d] for an input of rank %d",
                    (long long)a, -ndim, ndim - 1, ndim);
  *ax = (int)(a < 0 ? a + ndim : a);
  return SN_OK;
}

static int take_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  const sn_shape *a = &in[0], *ix = &in[1];
  int ax = 0;
  if (a->ndim < 0) return SN_OK;
  if (a->ndim == 0) return sn_error(SN_ERR_SHAPE, "the input 'a' must have at least one dim");
  SN_TRY(take_axis(p, a->ndim, &ax));
  if (ix->ndim < 0) return SN_OK;
  if (a->ndim + ix->ndim - 1 > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "output would have more than %d dims", SN_MAX_DIMS);
  sn_shape o;
  o.ndim = 0;
  for (int d = 0; d < ax; d++) o.dim[o.ndim++] = a->dim[d];
  for (int d = 0; d < ix->ndim; d++) o.dim[o.ndim++] = ix->dim[d];
  for (int d = ax + 1; d < a->ndim; d++) o.dim[o.ndim++] = a->dim[d];
  if (o.ndim == 0) {
    o.ndim = 1;
    o.dim[0] = 1;
  }
  return sn_shape_assign(&out[0], &o, "output");
}

typedef struct {
  int64_t outer, M, K, inner;
} take_geom;

static int take_geometry(sn_call *c, take_geom *g) {
  const sn_shape *a = &c->in[0]->shape;
  int ax = 0;
  SN_TRY(take_axis(c->p, a->ndim, &ax));
  g->outer = g->inner = 1;
  for (int d = 0; d < ax; d++) g->outer *= a->dim[d];
  for (int d = ax + 1; d < a->ndim; d++) g->inner *= a->dim[d];
  g->M = a->dim[ax];
  g->K = sn_tensor_size(c->in[1]);
  return SN_OK;
}

static const int take_modes[] = {IX_RAISE, IX_WRAP, IX_CLIP};

static int take_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(check_float("take", c->in[0]->dtype));
  take_geom g;
  SN_TRY(take_geometry(c, &g));
  ixbuf ix;
  SN_TRY(ix_load("take", c->in[1], g.M, take_modes[c->p->v[PT_MODE].i], &ix));
  gather_rows(c->in[0]->dtype, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]), ix.v, g.outer,
              g.M, g.K, g.inner);
  ixbuf_free(&ix);
  return SN_OK;
}

static int take_backward(sn_call *c) {
  zero_grad(c, 1);
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(check_float("take", c->igrad[0]->dtype));
  take_geom g;
  SN_TRY(take_geometry(c, &g));
  ixbuf ix;
  SN_TRY(ix_load("take", c->in[1], g.M, take_modes[c->p->v[PT_MODE].i], &ix));
  zero_grad(c, 0);
  scatter_rows(c->igrad[0]->dtype, sn_tensor_data(c->igrad[0]), sn_tensor_data(c->ograd[0]), ix.v,
               g.outer, g.M, g.K, g.inner);
  ixbuf_free(&ix);
  return SN_OK;
}

static const sn_op op_take = {
    .name = "take",
    .doc = "Takes elements from an input array along an axis: the output shape is "
           "a.shape[:axis] + indices.shape + a.shape[axis+1:]. Indices are rounded to the "
           "nearest integer and clipped (mode='clip'), wrapped (mode='wrap') or checked "
           "(mode='raise'). The gradient is scatter-added into a; indices get none.",
    .params = take_params,
    .nparams = (int)(sizeof take_params / sizeof take_params[0]),
    .inputs = take_inputs,
    .infer_shape = take_infer_shape,
    .infer_type = data_index_type,
    .forward_cpu = take_forward,
    .backward_cpu = take_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* Embedding                                                           */
/* ------------------------------------------------------------------ */

enum { PE_INPUT_DIM, PE_OUTPUT_DIM, PE_DTYPE, PE_SPARSE };
static const sn_param_spec emb_params[] = {
    {"input_dim", SN_PT_INT, NULL, NULL, "Vocabulary size of the input indices."},
    {"output_dim", SN_PT_INT, NULL, NULL, "Dimension of the embedding vectors."},
    {"dtype", SN_PT_DTYPE, "float32", NULL, "Data type of the weight."},
    {"sparse_grad", SN_PT_BOOL, "False", NULL,
     "Compute a row-sparse gradient (accepted for compatibility; gradients are dense)."},
};
static const char *const emb_inputs[] = {"data", "weight", NULL};

static int emb_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  int64_t idim = p->v[PE_INPUT_DIM].i, odim = p->v[PE_OUTPUT_DIM].i;
  if (idim < 1 || odim < 1)
    return sn_error(SN_ERR_ARG, "input_dim and output_dim must be >= 1, got %lld and %lld",
                    (long long)idim, (long long)odim);
  sn_shape w = sn_shape_make(2, (int64_t[]){idim, odim});
  SN_TRY(sn_shape_assign(&in[1], &w, "weight"));
  if (in[0].ndim < 0) return SN_OK;
  if (in[0].ndim + 1 > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "data has too many dims (%d)", in[0].ndim);
  sn_shape o = in[0];
  o.dim[o.ndim++] = odim;
  return sn_shape_assign(&out[0], &o, "output");
}

static int emb_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)nin;
  (void)nout;
  sn_dtype t = (sn_dtype)p->v[PE_DTYPE].i;
  if (in[1] != SN_DTYPE_UNKNOWN && out[0] != SN_DTYPE_UNKNOWN && in[1] != out[0])
    return sn_error(SN_ERR_TYPE, "weight dtype %s and output dtype %s differ",
                    sn_dtype_name(in[1]), sn_dtype_name(out[0]));
  if (in[1] != SN_DTYPE_UNKNOWN) t = in[1];
  else if (out[0] != SN_DTYPE_UNKNOWN) t = out[0];
  in[1] = out[0] = t;
  if (in[0] == SN_DTYPE_UNKNOWN) in[0] = t;
  return SN_OK;
}

static int emb_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(check_float("Embedding", c->in[1]->dtype));
  int64_t M = c->in[1]->shape.dim[0], D = c->in[1]->shape.dim[1];
  ixbuf ix;
  SN_TRY(ix_load("Embedding", c->in[0], M, IX_CLIP, &ix));
  gather_rows(c->in[1]->dtype, sn_tensor_data(c->in[1]), sn_tensor_data(c->out[0]), ix.v, 1, M,
              sn_tensor_size(c->in[0]), D);
  ixbuf_free(&ix);
  return SN_OK;
}

static int emb_backward(sn_call *c) {
  zero_grad(c, 0);
  if (c->req[1] == SN_REQ_NULL) return SN_OK;
  SN_TRY(check_float("Embedding", c->igrad[1]->dtype));
  int64_t M = c->in[1]->shape.dim[0], D = c->in[1]->shape.dim[1];
  ixbuf ix;
  SN_TRY(ix_load("Embedding", c->in[0], M, IX_CLIP, &ix));
  zero_grad(c, 1);
  scatter_rows(c->igrad[1]->dtype, sn_tensor_data(c->igrad[1]), sn_tensor_data(c->ograd[0]), ix.v,
               1, M, sn_tensor_size(c->in[0]), D);
  ixbuf_free(&ix);
  return SN_OK;
}

static const sn_op op_embedding = {
    .name = "Embedding",
    .doc = "Maps integer indices to vector representations: output[..., :] = "
           "weight[data[...], :], with shape data.shape + (output_dim,). The weight has shape "
           "(input_dim, output_dim) and is inferred from the parameters. Indices are rounded "
           "and clipped to [0, input_dim). The weight gradient is scatter-added; the indices "
           "get none.",
    .params = emb_params,
    .nparams = (int)(sizeof emb_params / sizeof emb_params[0]),
    .inputs = emb_inputs,
    .infer_shape = emb_infer_shape,
    .infer_type = emb_infer_type,
    .forward_cpu = emb_forward,
    .backward_cpu = emb_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "embedding",
};

/* ------------------------------------------------------------------ */
/* pick                                                                */
/* ------------------------------------------------------------------ */

enum { PP_AXIS, PP_KEEPDIMS, PP_MODE };
static const sn_param_spec pick_params[] = {
    {"axis", SN_PT_OPT_INT, "-1", NULL,
     "The axis to pick the elements from (C order, negative counts from the end)."},
    {"keepdims", SN_PT_BOOL, "False", NULL,
     "If True, the picked axis stays in the result as a dimension of size one."},
    {"mode", SN_PT_ENUM, "clip", "wrap|clip",
     "How out-of-bound indices behave: clip to the range (default) or wrap around."},
};
static const char *const pick_inputs[] = {"data", "index", NULL};

static int pick_axis(const sn_params *p, const sn_shape *s, int *ax) {
  char buf[160];
  if (!p->v[PP_AXIS].set) return sn_error(SN_ERR_ARG, "axis=None is not supported; give an axis");
  int64_t a = p->v[PP_AXIS].i;
  if (a < -(int64_t)s->ndim || a >= s->ndim)
    return sn_error(SN_ERR_ARG, "axis %lld is out of range for data of shape %s", (long long)a,
                    sn_shape_str(s, buf, sizeof buf));
  *ax = (int)(a < 0 ? a + s->ndim : a);
  return SN_OK;
}

/* MXNet's ReduceAxisShapeImpl for one axis. */
static sn_shape pick_out_shape(const sn_shape *s, int ax, int keepdims) {
  sn_shape o;
  o.ndim = 0;
  if (s->ndim == 1) {
    o.ndim = 1;
    o.dim[0] = 1;
    return o;
  }
  for (int d = 0; d < s->ndim; d++) {
    if (d != ax) o.dim[o.ndim++] = s->dim[d];
    else if (keepdims) o.dim[o.ndim++] = 1;
  }
  return o;
}

static int pick_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  int ax = 0;
  if (in[0].ndim < 0) return SN_OK;
  if (in[0].ndim == 0) return sn_error(SN_ERR_SHAPE, "data must have at least one dim");
  SN_TRY(pick_axis(p, &in[0], &ax));
  sn_shape o = pick_out_shape(&in[0], ax, (int)p->v[PP_KEEPDIMS].i);
  SN_TRY(sn_shape_assign(&out[0], &o, "output"));
  if (in[1].ndim < 0) return SN_OK;
  sn_shape is = pick_out_shape(&in[0], ax, in[1].ndim == in[0].ndim);
  return sn_shape_assign(&in[1], &is, "index");
}

static void pick_geometry(const sn_shape *s, int ax, int64_t *outer, int64_t *M, int64_t *inner) {
  *outer = *inner = 1;
  for (int d = 0; d < ax; d++) *outer *= s->dim[d];
  for (int d = ax + 1; d < s->ndim; d++) *inner *= s->dim[d];
  *M = s->dim[ax];
}

static int pick_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  int ax = 0;
  int64_t outer, M, inner;
  SN_TRY(pick_axis(c->p, &c->in[0]->shape, &ax));
  pick_geometry(&c->in[0]->shape, ax, &outer, &M, &inner);
  ixbuf ix;
  SN_TRY(ix_load("pick", c->in[1], M, c->p->v[PP_MODE].i == 0 ? IX_WRAP : IX_CLIP, &ix));
  const int64_t *J = ix.v;
  const int64_t n = outer * inner;
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *X = SN_PTR(T, c->in[0]);
    T *O = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t u = 0; u < n; u++) O[u] = X[((u / inner) * M + J[u]) * inner + u % inner];
  });
  ixbuf_free(&ix);
  return SN_OK;
}

static int pick_backward(sn_call *c) {
  zero_grad(c, 1);
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  int ax = 0;
  int64_t outer, M, inner;
  SN_TRY(pick_axis(c->p, &c->in[0]->shape, &ax));
  pick_geometry(&c->in[0]->shape, ax, &outer, &M, &inner);
  ixbuf ix;
  SN_TRY(ix_load("pick", c->in[1], M, c->p->v[PP_MODE].i == 0 ? IX_WRAP : IX_CLIP, &ix));
  zero_grad(c, 0);
  const int64_t *J = ix.v;
  const int64_t n = outer * inner;
  SN_DISPATCH_FLOAT(c->igrad[0]->dtype, T, {
    const T *G = SN_PTR(T, c->ograd[0]);
    T *GX = SN_PTR(T, c->igrad[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t u = 0; u < n; u++) GX[((u / inner) * M + J[u]) * inner + u % inner] = G[u];
  });
  ixbuf_free(&ix);
  return SN_OK;
}

static const sn_op op_pick = {
    .name = "pick",
    .aliases = "choose_element_0index",
    .doc = "Picks elements from an input array along an axis: for data of shape (d0, d1) and "
           "index of shape (d0,), pick(data, index, axis=-1)[i] = data[i, index[i]]. The "
           "index has the data shape without the axis (or with it as size one). Indices are "
           "rounded and clipped (mode='clip') or wrapped (mode='wrap'). The gradient goes to "
           "the picked positions.",
    .params = pick_params,
    .nparams = (int)(sizeof pick_params / sizeof pick_params[0]),
    .inputs = pick_inputs,
    .infer_shape = pick_infer_shape,
    .infer_type = data_index_type,
    .forward_cpu = pick_forward,
    .backward_cpu = pick_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* one_hot                                                             */
/* ------------------------------------------------------------------ */

enum { PO_DEPTH, PO_ON, PO_OFF, PO_DTYPE };
static const sn_param_spec one_hot_params[] = {
    {"depth", SN_PT_INT, NULL, NULL, "Depth of the one hot dimension."},
    {"on_value", SN_PT_FLOAT, "1", NULL,
     "The value assigned to the locations represented by indices."},
    {"off_value", SN_PT_FLOAT, "0", NULL,
     "The value assigned to the locations not represented by indices."},
    {"dtype", SN_PT_DTYPE, "float32", NULL, "DType of the output."},
};
static const char *const one_hot_inputs[] = {"indices", NULL};

static int one_hot_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                               int nout, sn_shape *aux, int naux) {
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  int64_t depth = p->v[PO_DEPTH].i;
  if (depth < 1) return sn_error(SN_ERR_ARG, "depth must be >= 1, got %lld", (long long)depth);
  if (in[0].ndim < 0) return SN_OK;
  if (in[0].ndim + 1 > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "indices have too many dims (%d)", in[0].ndim);
  sn_shape o = in[0];
  o.dim[o.ndim++] = depth;
  return sn_shape_assign(&out[0], &o, "output");
}

static int one_hot_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out,
                              int nout) {
  (void)nin;
  (void)nout;
  sn_dtype t = (sn_dtype)p->v[PO_DTYPE].i;
  if (out[0] != SN_DTYPE_UNKNOWN && out[0] != t)
    return sn_error(SN_ERR_TYPE, "output dtype %s differs from dtype=%s", sn_dtype_name(out[0]),
                    sn_dtype_name(t));
  out[0] = t;
  if (in[0] == SN_DTYPE_UNKNOWN) in[0] = t;
  return SN_OK;
}

static int one_hot_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  int64_t depth = c->p->v[PO_DEPTH].i;
  ixbuf ix;
  SN_TRY(ix_load("one_hot", c->in[0], depth, IX_DROP, &ix));
  const int64_t *J = ix.v;
  const int64_t n = sn_tensor_size(c->in[0]);
  const double on = c->p->v[PO_ON].f, off = c->p->v[PO_OFF].f;
  int rc = SN_OK;
  switch (c->out[0]->dtype) {
#define OH_CASE(DT, T)                                                     \
  case DT: {                                                               \
    T *O = SN_PTR(T, c->out[0]);                                           \
    const T onv = (T)on, offv = (T)off;                                    \
    SN_PARALLEL_FOR_COST(n, depth)                                         \
    for (int64_t u = 0; u < n; u++) {                                      \
      T *row = O + u * depth;                                              \
      for (int64_t j = 0; j < depth; j++) row[j] = offv;                   \
      if (J[u] >= 0) row[J[u]] = onv;                                      \
    }                                                                      \
    break;                                                                 \
  }
    OH_CASE(SN_F32, float)
    OH_CASE(SN_F64, double)
    OH_CASE(SN_U8, uint8_t)
    OH_CASE(SN_I8, int8_t)
    OH_CASE(SN_I32, int32_t)
    OH_CASE(SN_I64, int64_t)
#undef OH_CASE
  default:
    rc = sn_error(SN_ERR_TYPE, "one_hot: output dtype %s is not supported",
                  sn_dtype_name(c->out[0]->dtype));
  }
  ixbuf_free(&ix);
  return rc;
}

static const sn_op op_one_hot = {
    .name = "one_hot",
    .doc = "Returns a one-hot array: output[..., j] = on_value where j equals the (rounded) "
           "index and off_value elsewhere; shape indices.shape + (depth,). An index outside "
           "[0, depth) gives a row of off_value. No gradient.",
    .params = one_hot_params,
    .nparams = (int)(sizeof one_hot_params / sizeof one_hot_params[0]),
    .inputs = one_hot_inputs,
    .infer_shape = one_hot_infer_shape,
    .infer_type = one_hot_infer_type,
    .forward_cpu = one_hot_forward,
    .flags = SN_OP_NO_GRAD,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* where                                                               */
/* ------------------------------------------------------------------ */

static const char *const where_inputs[] = {"condition", "x", "y", NULL};

static int where_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                             sn_shape *aux, int naux) {
  (void)p;
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  char a[160], b[160];
  sn_shape s = sn_shape_unknown();
  SN_TRY(sn_shape_assign(&s, &in[1], "x"));
  SN_TRY(sn_shape_assign(&s, &in[2], "y"));
  SN_TRY(sn_shape_assign(&s, &out[0], "output"));
  SN_TRY(sn_shape_assign(&in[1], &s, "x"));
  SN_TRY(sn_shape_assign(&in[2], &s, "y"));
  SN_TRY(sn_shape_assign(&out[0], &s, "output"));
  if (s.ndim < 0 || in[0].ndim < 0) return SN_OK;
  if (in[0].ndim == s.ndim) return sn_shape_assign(&in[0], &s, "condition");
  if (in[0].ndim == 1 && s.ndim >= 1) {
    if (in[0].dim[0] && s.dim[0] && in[0].dim[0] != s.dim[0])
      return sn_error(SN_ERR_SHAPE,
                      "a 1-D condition must have length x.shape[0]: condition %s, x %s",
                      sn_shape_str(&in[0], a, sizeof a), sn_shape_str(&s, b, sizeof b));
    return SN_OK;
  }
  return sn_error(SN_ERR_SHAPE,
                  "condition must have the shape of x or be 1-D of length x.shape[0]: "
                  "condition %s, x %s",
                  sn_shape_str(&in[0], a, sizeof a), sn_shape_str(&s, b, sizeof b));
}

static int where_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)p;
  (void)nin;
  (void)nout;
  sn_dtype t = SN_DTYPE_UNKNOWN;
  sn_dtype cand[3] = {in[1], in[2], out[0]};
  for (int i = 0; i < 3; i++) {
    if (cand[i] == SN_DTYPE_UNKNOWN) continue;
    if (t != SN_DTYPE_UNKNOWN && cand[i] != t)
      return sn_error(SN_ERR_TYPE, "x, y and the output must share one dtype (%s vs %s)",
                      sn_dtype_name(t), sn_dtype_name(cand[i]));
    t = cand[i];
  }
  in[1] = in[2] = out[0] = t;
  if (in[0] == SN_DTYPE_UNKNOWN) in[0] = t;
  return SN_OK;
}

/* mask[i] = condition[i] != 0, for the n condition elements. */
static int where_mask(const sn_tensor *cond, uint8_t **mask, size_t *bytes) {
  int64_t n = sn_tensor_size(cond);
  if (cond->dtype == SN_F16 || sn_dtype_size(cond->dtype) == 0)
    return sn_error(SN_ERR_TYPE, "where: condition dtype %s is not supported",
                    sn_dtype_name(cond->dtype));
  *bytes = (size_t)n;
  *mask = (uint8_t *)sn_host_alloc(*bytes);
  if (!*mask) return sn_error(SN_ERR_OOM, "where: cannot allocate %zu bytes", *bytes);
  uint8_t *m = *mask;
  SN_DISPATCH_ALL(cond->dtype, C, {
    const C *src = SN_PTR(C, cond);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) m[i] = src[i] != 0;
  });
  return SN_OK;
}

static int where_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  uint8_t *mask;
  size_t mb;
  SN_TRY(check_float("where", c->in[1]->dtype));
  SN_TRY(where_mask(c->in[0], &mask, &mb));
  const int64_t n = sn_tensor_size(c->in[1]);
  /* rowlen = 1 when the condition has x's shape, else the size of one row. */
  const int64_t rowlen = n / (int64_t)mb;
  const uint8_t *M = mask;
  if (c->in[1]->dtype == SN_F32) {
    const float *X = SN_PTR(float, c->in[1]), *Y = SN_PTR(float, c->in[2]);
    float *O = SN_PTR(float, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) O[i] = M[i / rowlen] ? X[i] : Y[i];
  } else {
    const double *X = SN_PTR(double, c->in[1]), *Y = SN_PTR(double, c->in[2]);
    double *O = SN_PTR(double, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) O[i] = M[i / rowlen] ? X[i] : Y[i];
  }
  sn_host_free(mask, mb);
  return SN_OK;
}

static int where_backward(sn_call *c) {
  zero_grad(c, 0);
  if (c->req[1] == SN_REQ_NULL && c->req[2] == SN_REQ_NULL) return SN_OK;
  uint8_t *mask;
  size_t mb;
  SN_TRY(check_float("where", c->ograd[0]->dtype));
  SN_TRY(where_mask(c->in[0], &mask, &mb));
  const int64_t n = sn_tensor_size(c->ograd[0]);
  const int64_t rowlen = n / (int64_t)mb;
  const uint8_t *M = mask;
  const int wx = c->req[1] != SN_REQ_NULL, wy = c->req[2] != SN_REQ_NULL;
  SN_DISPATCH_FLOAT(c->ograd[0]->dtype, T, {
    const T *G = SN_PTR(T, c->ograd[0]);
    T *GX = wx ? SN_PTR(T, c->igrad[1]) : NULL;
    T *GY = wy ? SN_PTR(T, c->igrad[2]) : NULL;
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) {
      int m = M[i / rowlen];
      if (GX) GX[i] = m ? G[i] : (T)0;
      if (GY) GY[i] = m ? (T)0 : G[i];
    }
  });
  sn_host_free(mask, mb);
  return SN_OK;
}

static const sn_op op_where = {
    .name = "where",
    .doc = "Returns elements from x or y depending on condition: output[i] = x[i] if "
           "condition[i] != 0 else y[i]. condition has the shape of x, or is 1-D of length "
           "x.shape[0] and then selects whole rows. The gradient goes to x where the "
           "condition is non-zero and to y elsewhere; the condition gets none.",
    .params = NULL,
    .nparams = 0,
    .inputs = where_inputs,
    .infer_shape = where_infer_shape,
    .infer_type = where_infer_type,
    .forward_cpu = where_forward,
    .backward_cpu = where_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* gather_nd                                                           */
/* ------------------------------------------------------------------ */

static const char *const gather_nd_inputs[] = {"data", "indices", NULL};

static int gather_nd_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                                 int nout, sn_shape *aux, int naux) {
  (void)p;
  (void)nin;
  (void)nout;
  (void)aux;
  (void)naux;
  const sn_shape *d = &in[0], *ix = &in[1];
  char a[160], b[160];
  if (d->ndim < 0 || ix->ndim < 0) return SN_OK;
  if (ix->ndim == 0 || d->ndim == 0)
    return sn_error(SN_ERR_SHAPE, "data and indices need at least one dim");
  int64_t m = ix->dim[0];
  if (m == 0) return SN_OK;
  if (m > d->ndim)
    return sn_error(SN_ERR_SHAPE,
                    "indices.shape[0] (%lld) must not exceed the rank of data: data %s, "
                    "indices %s",
                    (long long)m, sn_shape_str(d, a, sizeof a), sn_shape_str(ix, b, sizeof b));
  sn_shape o;
  o.ndim = 0;
  for (int k = 1; k < ix->ndim; k++) o.dim[o.ndim++] = ix->dim[k];
  for (int k = (int)m; k < d->ndim; k++) {
    if (o.ndim >= SN_MAX_DIMS) return sn_error(SN_ERR_SHAPE, "output has too many dims");
    o.dim[o.ndim++] = d->dim[k];
  }
  if (o.ndim == 0) {
    o.ndim = 1;
    o.dim[0] = 1;
  }
  return sn_shape_assign(&out[0], &o, "output");
}

/* Offsets (in elements of data) of the K gathered slices. */
static int gather_nd_offsets(sn_call *c, int64_t **off, size_t *bytes, int64_t *K,
                             int64_t *slice) {
  const sn_shape *d = &c->in[0]->shape, *is = &c->in[1]->shape;
  int64_t m = is->dim[0];
  int64_t k = sn_tensor_size(c->in[1]) / m;
  int64_t sl = 1;
  for (int j = (int)m; j < d->ndim; j++) sl *= d->dim[j];
  int64_t stride[SN_MAX_DIMS];
  int64_t st = sl;
  for (int j = (int)m - 1; j >= 0; j--) {
    stride[j] = st;
    st *= d->dim[j];
  }
  if (sn_mul_size((size_t)k, sizeof(int64_t), bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "gather_nd: size overflows");
  int64_t *o = (int64_t *)sn_host_alloc(*bytes);
  if (!o) return sn_error(SN_ERR_OOM, "gather_nd: cannot allocate %zu bytes", *bytes);
  for (int64_t q = 0; q < k; q++) o[q] = 0;
  for (int j = 0; j < m; j++) {
    ixbuf ix;
    /* one row of indices at a time: view the j-th row through a temporary
     * tensor header sharing the storage */
    sn_tensor row = *c->in[1];
    row.shape = sn_shape_make(1, (int64_t[]){k});
    row.offset += (size_t)(j * k) * sn_dtype_size(row.dtype);
    int rc = ix_load("gather_nd", &row, d->dim[j], IX_WRAP, &ix);
    if (rc != SN_OK) {
      sn_host_free(o, *bytes);
      return rc;
    }
    for (int64_t q = 0; q < k; q++) o[q] += ix.v[q] * stride[j];
    ixbuf_free(&ix);
  }
  *off = o;
  *K = k;
  *slice = sl;
  return SN_OK;
}

static int gather_nd_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(check_float("gather_nd", c->in[0]->dtype));
  int64_t *off, K, sl;
  size_t bytes;
  SN_TRY(gather_nd_offsets(c, &off, &bytes, &K, &sl));
  size_t es = sn_dtype_size(c->in[0]->dtype), row = (size_t)sl * es;
  const char *D = sn_tensor_data(c->in[0]);
  char *O = sn_tensor_data(c->out[0]);
  SN_PARALLEL_FOR_COST(K, sl)
  for (int64_t q = 0; q < K; q++) memcpy(O + (size_t)q * row, D + (size_t)off[q] * es, row);
  sn_host_free(off, bytes);
  return SN_OK;
}

static int gather_nd_backward(sn_call *c) {
  zero_grad(c, 1);
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(check_float("gather_nd", c->igrad[0]->dtype));
  int64_t *off, K, sl;
  size_t bytes;
  SN_TRY(gather_nd_offsets(c, &off, &bytes, &K, &sl));
  zero_grad(c, 0);
  SN_DISPATCH_FLOAT(c->igrad[0]->dtype, T, {
    const T *G = SN_PTR(T, c->ograd[0]);
    T *GD = SN_PTR(T, c->igrad[0]);
    for (int64_t q = 0; q < K; q++) {
      T *dst = GD + off[q];
      const T *src = G + q * sl;
      for (int64_t i = 0; i < sl; i++) dst[i] += src[i];
    }
  });
  sn_host_free(off, bytes);
  return SN_OK;
}

static const sn_op op_gather_nd = {
    .name = "gather_nd",
    .doc = "Gathers slices of data at the positions given by indices: for indices of shape "
           "(M, Y0, ..., Yk) and data of shape (X0, ..., Xn), output[y0, ..., yk, ...] = "
           "data[indices[0, y...], ..., indices[M-1, y...], ...], with shape (Y0, ..., Yk, "
           "X_M, ..., Xn). Indices wrap (negative values count from the end). The gradient "
           "is scatter-added into data.",
    .params = NULL,
    .nparams = 0,
    .inputs = gather_nd_inputs,
    .infer_shape = gather_nd_infer_shape,
    .infer_type = data_index_type,
    .forward_cpu = gather_nd_forward,
    .backward_cpu = gather_nd_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_indexing[] = {&op_one_hot, &op_take,  &op_pick,      &op_embedding,
                                           &op_where,   &op_gather_nd, NULL};
