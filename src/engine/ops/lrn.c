/* LRN: local response normalisation across channels (MXNet 1.x).
 *
 * For data (N, C, ...) (channels on axis 1):
 *   norm[n,c,.] = knorm + alpha/nsize * sum_{|c'-c| <= nsize/2} x[n,c',.]^2
 *   out = x * norm^(-beta)
 * MXNet divides alpha by nsize and requires an odd nsize; both are kept.  The
 * norm is a hidden output ("tmp_norm") read back by the backward pass:
 *   dx = dy * norm^(-beta)
 *        - 2 beta alpha/nsize * x * sum_{|c'-c| <= nsize/2} dy*x*norm^(-beta-1) [c']
 * MXNet's kernel takes 4-D data only; any rank >= 2 is accepted here, the
 * dimensions after the channel axis being positions. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

/* pow in the precision of T */
#define POWT(T, a, b) (sizeof(T) == sizeof(float) ? (T)powf((float)(a), (float)(b)) : (T)pow((double)(a), (double)(b)))

enum { P_ALPHA, P_BETA, P_KNORM, P_NSIZE };

static const sn_param_spec lrn_params[] = {
    {"alpha", SN_PT_FLOAT, "0.0001", NULL,
     "The variance scaling parameter :math:`\\alpha` in the LRN expression."},
    {"beta", SN_PT_FLOAT, "0.75", NULL, "The power parameter :math:`\\beta` in the LRN expression."},
    {"knorm", SN_PT_FLOAT, "2", NULL, "The parameter :math:`k` in the LRN expression."},
    {"nsize", SN_PT_INT, NULL, NULL, "normalization window width in elements."},
};

static const char *const lrn_inputs[] = {"data", NULL};
static const char *const lrn_outputs[] = {"output", "tmp_norm", NULL};

static int lrn_num_visible(const sn_params *p) {
  (void)p;
  return 1;
}

static int lrn_check(const sn_params *p) {
  const int64_t n = p->v[P_NSIZE].i;
  if (n < 1 || n % 2 != 1 || n > INT32_MAX)
    return sn_error(SN_ERR_ARG, "LRN: nsize must be a positive odd number, got %lld", (long long)n);
  return SN_OK;
}

static int lrn_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)nin;
  (void)aux;
  (void)naux;
  SN_TRY(lrn_check(p));
  for (int k = 0; k < nout; k++)
    SN_TRY(sn_shape_assign(&in[0], &out[k], "LRN: data"));
  for (int k = 0; k < nout; k++)
    SN_TRY(sn_shape_assign(&out[k], &in[0], k == 0 ? "LRN: output" : "LRN: tmp_norm"));
  if (in[0].ndim >= 0 && in[0].ndim < 2) {
    char b[64];
    return sn_error(SN_ERR_SHAPE, "LRN: data must have at least 2 dimensions (N, C, ...), got %s",
                    sn_shape_str(&in[0], b, sizeof b));
  }
  return SN_OK;
}

static int lrn_workspace(const sn_params *p, const sn_shape *in, int nin, const sn_shape *out,
                         int nout, int backward, size_t *bytes) {
  (void)p;
  (void)nin;
  (void)out;
  (void)nout;
  *bytes = 0;
  if (!backward)
    return SN_OK;
  int64_t n;
  SN_TRY(sn_shape_size(&in[0], &n));
  return sn_mul_size((size_t)n, sizeof(double), bytes);
}

static void lrn_view(const sn_shape *s, int64_t *outer, int64_t *ch, int64_t *inner) {
  int64_t in = 1;
  for (int d = 2; d < s->ndim; d++)
    in *= s->dim[d];
  *outer = s->dim[0];
  *ch = s->dim[1];
  *inner = in;
}

static int lrn_forward(sn_call *c) {
  const sn_params *p = c->p;
  SN_TRY(lrn_check(p));
  const sn_tensor *xt = c->in[0];
  if (xt->shape.ndim < 2)
    return sn_error(SN_ERR_SHAPE, "LRN: data must have at least 2 dimensions");
  int64_t outer, ch, inner;
  lrn_view(&xt->shape, &outer, &ch, &inner);
  const int64_t half = p->v[P_NSIZE].i / 2;
  const double salpha = p->v[P_ALPHA].f / (double)p->v[P_NSIZE].i;
  const double knorm = p->v[P_KNORM].f, beta = p->v[P_BETA].f;
  const int want_out = c->req[0] != SN_REQ_NULL;
  const int have_norm = c->nout > 1 && c->req[1] != SN_REQ_NULL && c->out[1] && c->out[1]->st;
  if (!want_out && !have_norm)
    return SN_OK;
  const int64_t rows = outer * ch, n = rows * inner;
  /* The norm goes to the hidden output when it is wanted (training), else to
   * a temporary. */
  void *tmp = NULL;
  size_t tmp_bytes = 0;
  if (!have_norm) {
    SN_TRY(sn_mul_size((size_t)(n > 0 ? n : 1), sn_dtype_size(xt->dtype), &tmp_bytes));
    tmp = sn_host_alloc(tmp_bytes);
    if (!tmp)
      return sn_error(SN_ERR_OOM, "LRN: cannot allocate %zu bytes", tmp_bytes);
  }
  int rc = SN_OK;
  switch (xt->dtype) {
  case SN_F32:
  case SN_F64: {
    SN_DISPATCH_FLOAT(xt->dtype, T, {
      const T *x = SN_PTR(T, xt);
      T *y = want_out ? SN_PTR(T, c->out[0]) : NULL;
      T *norm = have_norm ? SN_PTR(T, c->out[1]) : (T *)tmp;
      SN_PARALLEL_FOR_COST(rows, inner * (2 * half + 3))
      for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r / ch, k = r % ch;
        T *nr = norm + r * inner;
        for (int64_t j = 0; j < inner; j++)
          nr[j] = (T)0;
        const int64_t c0 = k - half < 0 ? 0 : k - half;
        const int64_t c1 = k + half + 1 > ch ? ch : k + half + 1;
        for (int64_t cc = c0; cc < c1; cc++) {
          const T *xc = x + (o * ch + cc) * inner;
          for (int64_t j = 0; j < inner; j++)
            nr[j] += xc[j] * xc[j];
        }
        for (int64_t j = 0; j < inner; j++)
          nr[j] = (T)(knorm + salpha * (double)nr[j]);
      }
      if (y) {
        SN_PARALLEL_FOR_COST(n, 16)
        for (int64_t i = 0; i < n; i++)
          y[i] = x[i] * POWT(T, norm[i], -beta);
      }
    });
    break;
  }
  default:
    rc = sn_error(SN_ERR_TYPE, "LRN: dtype %s is not supported", sn_dtype_name(xt->dtype));
  }
  if (tmp)
    sn_host_free(tmp, tmp_bytes);
  return rc;
}

static int lrn_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_params *p = c->p;
  SN_TRY(lrn_check(p));
  const sn_tensor *xt = c->in[0];
  int64_t outer, ch, inner;
  lrn_view(&xt->shape, &outer, &ch, &inner);
  const int64_t half = p->v[P_NSIZE].i / 2;
  const double salpha = p->v[P_ALPHA].f / (double)p->v[P_NSIZE].i;
  const double beta = p->v[P_BETA].f;
  const int64_t rows = outer * ch, n = rows * inner;
  size_t need;
  SN_TRY(sn_mul_size((size_t)n, sn_dtype_size(xt->dtype), &need));
  void *tmp = c->ws;
  int owned = 0;
  if (!tmp || c->ws_bytes < need) {
    tmp = sn_host_alloc(need > 0 ? need : 1);
    if (!tmp)
      return sn_error(SN_ERR_OOM, "LRN: cannot allocate %zu bytes of workspace", need);
    owned = 1;
  }
  int rc = SN_OK;
  switch (xt->dtype) {
  case SN_F32:
  case SN_F64: {
    SN_DISPATCH_FLOAT(xt->dtype, T, {
      const T *x = SN_PTR(T, xt);
      const T *norm = SN_PTR(T, c->out[1]);
      const T *g = SN_PTR(T, c->ograd[0]);
      T *gx = SN_PTR(T, c->igrad[0]);
      T *t = (T *)tmp;
      SN_PARALLEL_FOR_COST(n, 16)
      for (int64_t i = 0; i < n; i++)
        t[i] = g[i] * x[i] * POWT(T, norm[i], -beta - 1.0);
      const double coef = -2.0 * beta * salpha;
      SN_PARALLEL_FOR_COST(rows, inner * (2 * half + 3))
      for (int64_t r = 0; r < rows; r++) {
        const int64_t o = r / ch, k = r % ch;
        const int64_t c0 = k - half < 0 ? 0 : k - half;
        const int64_t c1 = k + half + 1 > ch ? ch : k + half + 1;
        const T *xr = x + r * inner;
        const T *nr = norm + r * inner;
        const T *gr = g + r * inner;
        T *dr = gx + r * inner;
        for (int64_t j = 0; j < inner; j++) {
          double s = 0;
          for (int64_t cc = c0; cc < c1; cc++)
            s += (double)t[(o * ch + cc) * inner + j];
          dr[j] = (T)((double)gr[j] * (double)POWT(T, nr[j], -beta) + coef * (double)xr[j] * s);
        }
      }
    });
    break;
  }
  default:
    rc = sn_error(SN_ERR_TYPE, "LRN: dtype %s is not supported", sn_dtype_name(xt->dtype));
  }
  if (owned)
    sn_host_free(tmp, need > 0 ? need : 1);
  return rc;
}

static const sn_op op_lrn = {
    .name = "LRN",
    .aliases = NULL,
    .doc = "Applies local response normalization across channels: out = x / (knorm + "
           "alpha/nsize * sum of x^2 over nsize neighbouring channels)^beta.",
    .params = lrn_params,
    .nparams = 4,
    .inputs = lrn_inputs,
    .outputs = lrn_outputs,
    .num_visible = lrn_num_visible,
    .infer_shape = lrn_infer_shape,
    .workspace = lrn_workspace,
    .forward_cpu = lrn_forward,
    .backward_cpu = lrn_backward,
    .flags = SN_DEP_IN | SN_DEP_OUT,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_lrn[] = {&op_lrn, NULL};
