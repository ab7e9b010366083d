/* Dropout (MXNet 1.x).
 *
 * In training (or always, with mode="always") each element is kept with
 * probability 1-p and scaled by 1/(1-p), else set to 0: out = x * mask, the
 * mask holding 0 or 1/(1-p).  Otherwise (inference, or p = 0) the op is the
 * identity.  `axes` gives variational dropout: the mask has size 1 along
 * those axes and is broadcast over them (one draw per slice).  The mask is a
 * hidden output of the mask's shape (data's shape with `axes` set to 1, as in
 * MXNet); the backward pass is grad * mask (ones after a pass-through).
 *
 * Random numbers come from the counter-based generator of cpu.h: mask value
 * j is (sn_rand_uniform(seed, j) < 1-p), so a given seed gives the same mask
 * whatever the number of threads.  p must lie in [0, 1). */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

enum { P_P, P_MODE, P_AXES, P_CUDNN_OFF };
enum { MODE_TRAINING, MODE_ALWAYS };

static const sn_param_spec dropout_params[] = {
    {"p", SN_PT_FLOAT, "0.5", NULL,
     "Fraction of the input that gets dropped out during training time."},
    {"mode", SN_PT_ENUM, "training", "training|always",
     "Whether to only turn on dropout during training or to also turn on for inference."},
    {"axes", SN_PT_SHAPE, "()", NULL, "Axes for variational dropout kernel."},
    {"cudnn_off", SN_PT_BOOL, "False", NULL,
     "Whether to turn off cudnn in dropout operator. This option is ignored if axes is "
     "specified."},
};

static const char *const dropout_inputs[] = {"data", NULL};
static const char *const dropout_outputs[] = {"output", "mask", NULL};

static int dropout_num_visible(const sn_params *p) {
  (void)p;
  return 1;
}

static int dropout_check_p(const sn_params *p) {
  const double v = p->v[P_P].f;
  if (!(v >= 0.0 && v < 1.0))
    return sn_error(SN_ERR_ARG, "Dropout: p must be in [0, 1), got %g", v);
  return SN_OK;
}

/* Mask shape: data shape with the dropout axes set to 1. */
static int dropout_mask_shape(const sn_params *p, const sn_shape *d, sn_shape *m) {
  const sn_shape *ax = &p->v[P_AXES].s;
  *m = *d;
  for (int i = 0; i < ax->ndim; i++) {
    int64_t a = ax->dim[i];
    if (a < -(int64_t)d->ndim || a >= d->ndim)
      return sn_error(SN_ERR_ARG, "Dropout: axis %lld in axes is out of range for data of %d "
                                  "dimensions",
                      (long long)a, d->ndim);
    if (a < 0)
      a += d->ndim;
    m->dim[a] = 1;
  }
  return SN_OK;
}

static int dropout_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                               int nout, sn_shape *aux, int naux) {
  (void)nin;
  (void)aux;
  (void)naux;
  SN_TRY(dropout_check_p(p));
  SN_TRY(sn_shape_assign(&in[0], &out[0], "Dropout: data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "Dropout: output"));
  if (in[0].ndim >= 0 && nout > 1) {
    sn_shape m;
    SN_TRY(dropout_mask_shape(p, &in[0], &m));
    SN_TRY(sn_shape_assign(&out[1], &m, "Dropout: mask"));
  }
  return SN_OK;
}

/* Strides of the mask for each data dimension (0 where broadcast). */
static void mask_strides(const sn_shape *d, const sn_shape *m, int64_t *ms) {
  int64_t s = 1;
  for (int k = d->ndim - 1; k >= 0; k--) {
    ms[k] = (m->dim[k] == 1 && d->dim[k] != 1) ? 0 : s;
    s *= m->dim[k];
  }
}

/* Mask offset of the first element of data row r (rows over all but the
 * last dimension). */
static int64_t mask_row_base(int64_t r, const sn_shape *d, const int64_t *ms) {
  int64_t off = 0;
  for (int k = d->ndim - 2; k >= 0; k--) {
    const int64_t idx = r % d->dim[k];
    r /= d->dim[k];
    off += idx * ms[k];
  }
  return off;
}

static int dropout_forward(sn_call *c) {
  const sn_params *p = c->p;
  SN_TRY(dropout_check_p(p));
  const sn_tensor *xt = c->in[0];
  const double pkeep = 1.0 - p->v[P_P].f;
  const int active = pkeep < 1.0 && (c->is_train || p->v[P_MODE].i == MODE_ALWAYS);
  const int64_t n = sn_tensor_size(xt);
  const int want_out = c->req[0] != SN_REQ_NULL;
  const int want_mask = c->nout > 1 && c->req[1] != SN_REQ_NULL;
  sn_shape ms;
  SN_TRY(dropout_mask_shape(p, &xt->shape, &ms));
  int64_t mn;
  SN_TRY(sn_shape_size(&ms, &mn));
  if (want_mask && sn_tensor_size(c->out[1]) != mn)
    return sn_error(SN_ERR_INTERNAL, "Dropout: the mask output has the wrong size");
  const uint64_t seed = c->seed;
  const double scale = 1.0 / pkeep;
  SN_DISPATCH_FLOAT(xt->dtype, T, {
    const T *x = SN_PTR(T, xt);
    T *y = want_out ? SN_PTR(T, c->out[0]) : NULL;
    T *mask = want_mask ? SN_PTR(T, c->out[1]) : NULL;
    if (!active) {
      if (y && y != x)
        memcpy(y, x, (size_t)n * sizeof(T));
      if (mask) {
        SN_PARALLEL_FOR(mn)
        for (int64_t j = 0; j < mn; j++)
          mask[j] = (T)1;
      }
    } else {
      const T sc = (T)scale;
      if (mn == n) {
        /* one fused pass: draw, keep the mask, write the output */
        SN_PARALLEL_FOR_COST(n, 4)
        for (int64_t i = 0; i < n; i++) {
          const T m = sn_rand_uniform(seed, (uint64_t)i) < pkeep ? sc : (T)0;
          if (mask)
            mask[i] = m;
          if (y)
            y[i] = x[i] * m;
        }
      } else if (mask) {
        SN_PARALLEL_FOR_COST(mn, 4)
        for (int64_t j = 0; j < mn; j++)
          mask[j] = sn_rand_uniform(seed, (uint64_t)j) < pkeep ? sc : (T)0;
      }
      if (y && mn != n) {
        const sn_shape *d = &xt->shape;
        int64_t mstr[SN_MAX_DIMS];
        mask_strides(d, &ms, mstr);
        const int64_t last = d->ndim > 0 ? d->dim[d->ndim - 1] : 1;
        const int64_t rows = last > 0 ? n / last : 0;
        const int64_t lstep = d->ndim > 0 ? mstr[d->ndim - 1] : 0;
        SN_PARALLEL_FOR_COST(rows, last * 2)
        for (int64_t r = 0; r < rows; r++) {
          const int64_t mb = mask_row_base(r, d, mstr);
          const T *xr = x + r * last;
          T *yr = y + r * last;
          for (int64_t j = 0; j < last; j++) {
            const int64_t mj = mb + j * lstep;
            const T mv = mask ? mask[mj]
                              : (sn_rand_uniform(seed, (uint64_t)mj) < pkeep ? sc : (T)0);
            yr[j] = xr[j] * mv;
          }
        }
      }
    }
  });
  return SN_OK;
}

static int dropout_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  if (c->nout < 2 || !c->out[1])
    return sn_error(SN_ERR_INTERNAL, "Dropout: the mask is missing in backward");
  const sn_tensor *gt = c->ograd[0];
  const sn_tensor *mt = c->out[1];
  const int64_t n = sn_tensor_size(gt), mn = sn_tensor_size(mt);
  SN_DISPATCH_FLOAT(gt->dtype, T, {
    const T *g = SN_PTR(T, gt);
    const T *mask = SN_PTR(T, mt);
    T *gx = SN_PTR(T, c->igrad[0]);
    if (mn == n) {
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++)
        gx[i] = g[i] * mask[i];
    } else {
      const sn_shape *d = &gt->shape;
      int64_t mstr[SN_MAX_DIMS];
      mask_strides(d, &mt->shape, mstr);
      const int64_t last = d->ndim > 0 ? d->dim[d->ndim - 1] : 1;
      const int64_t rows = last > 0 ? n / last : 0;
      const int64_t lstep = d->ndim > 0 ? mstr[d->ndim - 1] : 0;
      SN_PARALLEL_FOR_COST(rows, last)
      for (int64_t r = 0; r < rows; r++) {
        const int64_t mb = mask_row_base(r, d, mstr);
        for (int64_t j = 0; j < last; j++)
          gx[r * last + j] = g[r * last + j] * mask[mb + j * lstep];
      }
    }
  });
  return SN_OK;
}

static const sn_op op_dropout = {
    .name = "Dropout",
    .aliases = "_npx_dropout",
    .doc = "Applies dropout to the input: during training each element is set to zero with "
           "probability p and the others are scaled by 1/(1-p); in inference the input passes "
           "through unchanged (unless mode='always'). `axes` shares one draw along the given "
           "axes (variational dropout).",
    .params = dropout_params,
    .nparams = 4,
    .inputs = dropout_inputs,
    .outputs = dropout_outputs,
    .num_visible = dropout_num_visible,
    .infer_shape = dropout_infer_shape,
    .forward_cpu = dropout_forward,
    .backward_cpu = dropout_backward,
    .flags = SN_DEP_OUT | SN_OP_RANDOM,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

const sn_op *const sn_family_dropout[] = {&op_dropout, NULL};
