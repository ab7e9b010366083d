/* Loss output layers (MXNet 1.x): SoftmaxOutput (alias Softmax),
 * LinearRegressionOutput, LogisticRegressionOutput, MAERegressionOutput and
 * MakeLoss (alias make_loss).
 *
 * Their backward passes ignore the output gradient (SN_OP_NO_OGRAD): they
 * are the heads of a training graph and produce the gradient of their loss.
 *
 * SoftmaxOutput(data, label): the forward pass is a softmax over axis 1 of
 * data viewed as (N, size/N) (the whole example is flattened, as MXNet
 * does), over the last axis with preserve_shape, or over axis 1 of
 * (N, C, rest) with multi_output.  Backward: (p - onehot(label)) * grad_scale,
 * label values truncated to integers and compared as in MXNet (an
 * out-of-range label gives p); use_ignore zeroes the rows whose label is
 * ignore_label; normalization batch divides by N, valid by the number of
 * labels different from ignore_label (at least 1).  With multi_output the
 * "null" and "batch" modes also divide by the spatial size (MXNet's quirk).
 * smooth_alpha (not with multi_output) takes alpha from the true class and
 * spreads it over the others.  A label of the same shape as data holds
 * probabilities: grad = (p - label) * grad_scale, never normalised (MXNet).
 * out_grad=True multiplies by the output gradient; that needs the executor
 * to pass it (an error otherwise).  The label gets a zero gradient.
 *
 * Regression outputs: forward identity (Linear, MAE) or sigmoid (Logistic);
 * backward grad_scale/num_output * (out - label), or sign(out - label) for
 * MAE (MXNet's sign: +1 when out > label, else -1), num_output being
 * label.size / label.shape[0] (the outputs per example, not the batch).
 * The label may be (N,) for data (N, 1).
 *
 * MakeLoss(data): forward identity; backward grad_scale, divided by N for
 * normalization=batch, or by the count of data elements above valid_thresh
 * (at least 1) for normalization=valid. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

#define EXPT(T, v) (sizeof(T) == sizeof(float) ? (double)expf((float)(v)) : exp((double)(v)))

static const char *const data_label_inputs[] = {"data", "label", NULL};
static const char *const data_input[] = {"data", NULL};

/* A label value as MXNet's static_cast<int>, defined for NaN and for values
 * outside the int range (both map to INT_MIN, which matches no class). */
static int label_int(double v) {
  if (!(v > -2147483648.0 && v < 2147483648.0))
    return INT32_MIN;
  return (int)v;
}

static void zero_tensor(sn_tensor *t) {
  if (t && t->st)
    memset(sn_tensor_data(t), 0, sn_tensor_bytes(t));
}

/* Zero gradient for the label when it is requested. */
static void zero_label_grad(sn_call *c) {
  if (c->nin > 1 && c->req[1] != SN_REQ_NULL && c->igrad && c->igrad[1])
    zero_tensor(c->igrad[1]);
}

/* ------------------------------------------------------------------ */
/* SoftmaxOutput                                                       */
/* ------------------------------------------------------------------ */

enum {
  PSO_GRAD_SCALE,
  PSO_IGNORE_LABEL,
  PSO_MULTI_OUTPUT,
  PSO_USE_IGNORE,
  PSO_PRESERVE_SHAPE,
  PSO_NORMALIZATION,
  PSO_OUT_GRAD,
  PSO_SMOOTH_ALPHA
};
enum { NORM_NULL, NORM_BATCH, NORM_VALID };

static const sn_param_spec so_params[] = {
    {"grad_scale", SN_PT_FLOAT, "1", NULL, "Scales the gradient by a float factor."},
    {"ignore_label", SN_PT_FLOAT, "-1", NULL,
     "The instances whose `labels` == `ignore_label` will be ignored during backward, if "
     "`use_ignore` is set to ``true``)."},
    {"multi_output", SN_PT_BOOL, "False", NULL,
     "If set to ``true``, the softmax function will be computed along axis ``1``. This is "
     "applied when the shape of input array differs from the shape of label array."},
    {"use_ignore", SN_PT_BOOL, "False", NULL,
     "If set to ``true``, the `ignore_label` value will not contribute to the backward "
     "gradient."},
    {"preserve_shape", SN_PT_BOOL, "False", NULL,
     "If set to ``true``, the softmax function will be computed along the last axis (``-1``)."},
    {"normalization", SN_PT_ENUM, "null", "null|batch|valid", "Normalizes the gradient."},
    {"out_grad", SN_PT_BOOL, "False", NULL,
     "Multiplies gradient with output gradient element-wise."},
    {"smooth_alpha", SN_PT_FLOAT, "0", NULL,
     "Constant for computing a label smoothed version of cross-entropy for the backwards pass. "
     "This constant gets subtracted from the one-hot encoding of the gold label and "
     "distributed uniformly to all other labels."},
};

static int so_check_params(const sn_params *p) {
  const double a = p->v[PSO_SMOOTH_ALPHA].f;
  if (!(a >= 0.0 && a <= 1.0))
    return sn_error(SN_ERR_ARG, "SoftmaxOutput: smooth_alpha must be in [0, 1], got %g", a);
  return SN_OK;
}

static int so_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                          sn_shape *aux, int naux) {
  (void)aux;
  (void)naux;
  (void)nin;
  (void)nout;
  SN_TRY(so_check_params(p));
  SN_TRY(sn_shape_assign(&in[0], &out[0], "SoftmaxOutput: data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "SoftmaxOutput: output"));
  const sn_shape *d = &in[0];
  if (!sn_shape_known(d))
    return SN_OK;
  if (d->ndim < 1)
    return sn_error(SN_ERR_SHAPE, "SoftmaxOutput: data must have at least 1 dimension");
  if (sn_shape_equal(&in[1], d))
    return SN_OK; /* probabilities as labels */
  char b1[96], b2[96];
  if (p->v[PSO_MULTI_OUTPUT].i) {
    if (d->ndim < 2)
      return sn_error(SN_ERR_SHAPE, "SoftmaxOutput: multi_output needs data of at least 2 "
                                    "dimensions, got %s",
                      sn_shape_str(d, b1, sizeof b1));
    int64_t n = d->dim[0], total;
    SN_TRY(sn_shape_size(d, &total));
    int64_t l1d[2] = {n, total / n / d->dim[1]};
    sn_shape l1 = sn_shape_make(2, l1d);
    sn_shape l2, l3 = *d;
    l2.ndim = d->ndim - 1;
    l2.dim[0] = n;
    for (int i = 2; i < d->ndim; i++)
      l2.dim[i - 1] = d->dim[i];
    l3.dim[1] = 1;
    if (in[1].ndim < 0) {
      in[1] = l1;
      return SN_OK;
    }
    if (sn_shape_equal(&in[1], &l1) || sn_shape_equal(&in[1], &l2) || sn_shape_equal(&in[1], &l3))
      return SN_OK;
    char b3[96], b4[96];
    return sn_error(SN_ERR_SHAPE, "SoftmaxOutput: label has shape %s; expecting %s or %s for data %s",
                    sn_shape_str(&in[1], b1, sizeof b1), sn_shape_str(&l1, b2, sizeof b2),
                    sn_shape_str(&l2, b3, sizeof b3), sn_shape_str(d, b4, sizeof b4));
  }
  sn_shape ls;
  ls.ndim = d->ndim - 1;
  for (int i = 0; i + 1 < d->ndim; i++)
    ls.dim[i] = d->dim[i];
  if (in[1].ndim >= 0 && sn_shape_known(&in[1]) && !sn_shape_equal(&in[1], &ls)) {
    char b3[96];
    return sn_error(SN_ERR_SHAPE, "SoftmaxOutput: label has shape %s, expected %s for data %s",
                    sn_shape_str(&in[1], b1, sizeof b1), sn_shape_str(&ls, b2, sizeof b2),
                    sn_shape_str(d, b3, sizeof b3));
  }
  return sn_shape_assign(&in[1], &ls, "SoftmaxOutput: label");
}

/* (outer, K, inner): softmax over K */
static void so_view(const sn_params *p, const sn_shape *s, int64_t *outer, int64_t *k,
                    int64_t *inner) {
  int64_t total = 1;
  for (int d = 0; d < s->ndim; d++)
    total *= s->dim[d];
  if (s->ndim == 0) {
    *outer = 1, *k = 1, *inner = 1;
  } else if (p->v[PSO_MULTI_OUTPUT].i && s->ndim >= 2) {
    *outer = s->dim[0];
    *k = s->dim[1];
    *inner = total / (s->dim[0] * s->dim[1]);
  } else if (p->v[PSO_PRESERVE_SHAPE].i) {
    *k = s->dim[s->ndim - 1];
    *outer = total / *k;
    *inner = 1;
  } else {
    *outer = s->dim[0];
    *k = total / s->dim[0];
    *inner = 1;
  }
}

static int so_forward(sn_call *c) {
  SN_TRY(so_check_params(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int64_t outer, k, inner;
  so_view(c->p, &c->in[0]->shape, &outer, &k, &inner);
  const int64_t lines = outer * inner;
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(lines, k * 4)
    for (int64_t l = 0; l < lines; l++) {
      const int64_t o = l / inner, i = l % inner;
      const T *xl = x + o * k * inner + i;
      T *yl = y + o * k * inner + i;
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < k; j++)
        if ((double)xl[j * inner] > mx)
          mx = (double)xl[j * inner];
      for (int64_t j = 0; j < k; j++) {
        const double e = EXPT(T, (double)xl[j * inner] - mx);
        sum += e;
        yl[j * inner] = (T)e;
      }
      const T r = (T)(1.0 / sum);
      for (int64_t j = 0; j < k; j++)
        yl[j * inner] *= r;
    }
  });
  return SN_OK;
}

static int so_backward(sn_call *c) {
  const sn_params *p = c->p;
  SN_TRY(so_check_params(p));
  zero_label_grad(c);
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double grad_scale = p->v[PSO_GRAD_SCALE].f;
  const int ignore = label_int(p->v[PSO_IGNORE_LABEL].f);
  const int use_ignore = (int)p->v[PSO_USE_IGNORE].i;
  const int norm = (int)p->v[PSO_NORMALIZATION].i;
  const int multi = (int)p->v[PSO_MULTI_OUTPUT].i;
  const double alpha = p->v[PSO_SMOOTH_ALPHA].f;
  const sn_tensor *out = c->out[0], *lab = c->in[1];
  const sn_tensor *og = NULL;
  if (p->v[PSO_OUT_GRAD].i) {
    og = c->ograd ? c->ograd[0] : NULL;
    if (!og)
      return sn_error(SN_ERR_UNSUPPORTED,
                      "SoftmaxOutput: out_grad=True needs the output gradient, which was not "
                      "given to this loss op");
  }
  const int64_t total = sn_tensor_size(out), nlab = sn_tensor_size(lab);
  if (sn_shape_equal(&lab->shape, &out->shape)) {
    /* probability labels: (p - label) * grad_scale, no normalisation */
    SN_DISPATCH_FLOAT(out->dtype, T, {
      const T *y = SN_PTR(T, out);
      const T *lb = SN_PTR(T, lab);
      const T *g = og ? SN_PTR(T, og) : NULL;
      T *gx = SN_PTR(T, c->igrad[0]);
      SN_PARALLEL_FOR(total)
      for (int64_t i = 0; i < total; i++) {
        const double v = ((double)y[i] - (double)lb[i]) * grad_scale;
        gx[i] = (T)(g ? v * (double)g[i] : v);
      }
    });
    return SN_OK;
  }
  int64_t outer, k, inner;
  so_view(p, &out->shape, &outer, &k, &inner);
  const int64_t lines = outer * inner;
  if (nlab != lines) {
    char b1[96], b2[96];
    return sn_error(SN_ERR_SHAPE,
                    "SoftmaxOutput: label has shape %s (%lld values) but the output %s has %lld "
                    "rows",
                    sn_shape_str(&lab->shape, b1, sizeof b1), (long long)nlab,
                    sn_shape_str(&out->shape, b2, sizeof b2), (long long)lines);
  }
  SN_DISPATCH_FLOAT(out->dtype, T, {
    const T *y = SN_PTR(T, out);
    const T *lb = SN_PTR(T, lab);
    const T *g = og ? SN_PTR(T, og) : NULL;
    T *gx = SN_PTR(T, c->igrad[0]);
    /* the divisor */
    double valid_cnt = 1;
    if (norm == NORM_BATCH) {
      valid_cnt = (double)outer;
    } else if (norm == NORM_VALID) {
      int64_t cnt = nlab;
      for (int64_t i = 0; i < nlab; i++)
        if (label_int((double)lb[i]) == ignore)
          cnt--;
      valid_cnt = cnt == 0 ? 1.0 : (double)cnt;
    }
    double scale = grad_scale / valid_cnt;
    if (multi && norm != NORM_VALID)
      scale /= (double)inner;
    const double smooth = (!multi && alpha != 0.0 && k > 1) ? alpha / (double)(k - 1) : 0.0;
    const double a = (!multi) ? alpha : 0.0;
    SN_PARALLEL_FOR_COST(lines, k)
    for (int64_t l = 0; l < lines; l++) {
      const int64_t o = l / inner, i = l % inner;
      const int64_t base = o * k * inner + i;
      const int lbl = label_int((double)lb[l]);
      if (use_ignore && lbl == ignore) {
        for (int64_t j = 0; j < k; j++)
          gx[base + j * inner] = (T)0;
        continue;
      }
      for (int64_t j = 0; j < k; j++) {
        const int64_t e = base + j * inner;
        double v = (double)y[e];
        if (j == (int64_t)lbl && lbl >= 0)
          v -= 1.0 - a;
        else
          v -= smooth;
        v *= scale;
        if (g)
          v *= (double)g[e];
        gx[e] = (T)v;
      }
    }
  });
  return SN_OK;
}

static const sn_op op_softmax_output = {
    .name = "SoftmaxOutput",
    .aliases = "Softmax",
    .doc = "Computes the softmax of the input (over axis 1 of each example, flattened) for the "
           "forward pass and, in backward, the gradient of the cross-entropy loss with respect "
           "to the input: (softmax - onehot(label)) * grad_scale, optionally normalised by the "
           "batch size or the number of valid labels, ignoring rows labelled ignore_label when "
           "use_ignore is set.",
    .params = so_params,
    .nparams = 8,
    .inputs = data_label_inputs,
    .infer_shape = so_infer_shape,
    .forward_cpu = so_forward,
    .backward_cpu = so_backward,
    .flags = SN_DEP_IN | SN_DEP_OUT | SN_OP_NO_OGRAD,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* Regression outputs                                                  */
/* ------------------------------------------------------------------ */

enum { PR_GRAD_SCALE };
enum { REG_LINEAR, REG_LOGISTIC, REG_MAE };

static const sn_param_spec reg_params[] = {
    {"grad_scale", SN_PT_FLOAT, "1", NULL, "Scale the gradient by a float factor"},
};

static int reg_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)p;
  (void)aux;
  (void)naux;
  (void)nin;
  (void)nout;
  const char *name = p->op ? p->op->name : "RegressionOutput";
  SN_TRY(sn_shape_assign(&in[0], &out[0], "data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "output"));
  const sn_shape *d = &in[0];
  if (!sn_shape_known(d))
    return SN_OK;
  if (in[1].ndim < 0) {
    if (d->ndim == 2 && d->dim[1] == 1) {
      int64_t n = d->dim[0];
      in[1] = sn_shape_make(1, &n);
    } else {
      in[1] = *d;
    }
    return SN_OK;
  }
  if (!sn_shape_known(&in[1])) {
    /* fill unknown dims of a label of the data's rank */
    if (in[1].ndim == d->ndim)
      return sn_shape_assign(&in[1], d, "label");
    if (d->ndim == 2 && d->dim[1] == 1 && in[1].ndim == 1) {
      int64_t n = d->dim[0];
      sn_shape l = sn_shape_make(1, &n);
      return sn_shape_assign(&in[1], &l, "label");
    }
    return SN_OK;
  }
  int64_t ls, ds;
  SN_TRY(sn_shape_size(&in[1], &ls));
  SN_TRY(sn_shape_size(d, &ds));
  if (in[1].ndim < 1 || d->ndim < 1 || in[1].dim[0] != d->dim[0] || ls != ds) {
    char b1[96], b2[96];
    return sn_error(SN_ERR_SHAPE, "%s: label has shape %s, inconsistent with data %s", name,
                    sn_shape_str(&in[1], b1, sizeof b1), sn_shape_str(d, b2, sizeof b2));
  }
  return SN_OK;
}

static int reg_forward_impl(sn_call *c, int kind) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    T *y = SN_PTR(T, c->out[0]);
    if (kind == REG_LOGISTIC) {
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        y[i] = (T)(1.0 / (1.0 + EXPT(T, -(double)x[i])));
    } else if (x != y) {
      memcpy(y, x, (size_t)n * sizeof(T));
    }
  });
  return SN_OK;
}

static int reg_backward_impl(sn_call *c, int kind) {
  zero_label_grad(c);
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *out = c->out[0], *lab = c->in[1];
  const int64_t n = sn_tensor_size(out);
  if (sn_tensor_size(lab) != n || lab->shape.ndim < 1)
    return sn_error(SN_ERR_SHAPE, "%s: label has %lld values, the output %lld", c->p->op->name,
                    (long long)sn_tensor_size(lab), (long long)n);
  const double num_output = (double)(sn_tensor_size(lab) / lab->shape.dim[0]);
  const double scale = c->p->v[PR_GRAD_SCALE].f / num_output;
  SN_DISPATCH_FLOAT(out->dtype, T, {
    const T *y = SN_PTR(T, out);
    const T *lb = SN_PTR(T, lab);
    T *gx = SN_PTR(T, c->igrad[0]);
    if (kind == REG_MAE) {
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++)
        gx[i] = (T)(((double)y[i] - (double)lb[i] > 0 ? 1.0 : -1.0) * scale);
    } else {
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++)
        gx[i] = (T)(((double)y[i] - (double)lb[i]) * scale);
    }
  });
  return SN_OK;
}

static int linreg_fwd(sn_call *c) { return reg_forward_impl(c, REG_LINEAR); }
static int linreg_bwd(sn_call *c) { return reg_backward_impl(c, REG_LINEAR); }
static int logreg_fwd(sn_call *c) { return reg_forward_impl(c, REG_LOGISTIC); }
static int logreg_bwd(sn_call *c) { return reg_backward_impl(c, REG_LOGISTIC); }
static int maereg_fwd(sn_call *c) { return reg_forward_impl(c, REG_MAE); }
static int maereg_bwd(sn_call *c) { return reg_backward_impl(c, REG_MAE); }

#define REG_OP_COMMON                                                                  \
  .params = reg_params, .nparams = 1, .inputs = data_label_inputs,                     \
  .infer_shape = reg_infer_shape, .flags = SN_DEP_IN | SN_DEP_OUT | SN_OP_NO_OGRAD,    \
  .inplace_in = SN_INPLACE(0), .inplace_grad = SN_INPLACE(-1)

static const sn_op op_linreg = {
    .name = "LinearRegressionOutput",
    .aliases = NULL,
    .doc = "Computes and optimizes for squared loss: the forward pass is the identity; the "
           "gradient is (output - label) * grad_scale / num_output, num_output being the number "
           "of outputs per example.",
    .forward_cpu = linreg_fwd,
    .backward_cpu = linreg_bwd,
    REG_OP_COMMON,
};

static const sn_op op_logreg = {
    .name = "LogisticRegressionOutput",
    .aliases = NULL,
    .doc = "Applies a logistic function to the input (forward) and gives the gradient of the "
           "log loss, (sigmoid(data) - label) * grad_scale / num_output.",
    .forward_cpu = logreg_fwd,
    .backward_cpu = logreg_bwd,
    REG_OP_COMMON,
};

static const sn_op op_maereg = {
    .name = "MAERegressionOutput",
    .aliases = NULL,
    .doc = "Computes mean absolute error: the forward pass is the identity; the gradient is "
           "sign(output - label) * grad_scale / num_output (with sign(0) = -1, as in MXNet).",
    .forward_cpu = maereg_fwd,
    .backward_cpu = maereg_bwd,
    REG_OP_COMMON,
};

/* ------------------------------------------------------------------ */
/* MakeLoss                                                            */
/* ------------------------------------------------------------------ */

enum { PM_GRAD_SCALE, PM_VALID_THRESH, PM_NORMALIZATION };

static const sn_param_spec ml_params[] = {
    {"grad_scale", SN_PT_FLOAT, "1", NULL,
     "Gradient scale as a supplement to unary and binary operators"},
    {"valid_thresh", SN_PT_FLOAT, "0", NULL,
     "clip each element in the array to 0 when it is less than ``valid_thresh``. This is used "
     "when ``normalization`` is set to ``'valid'``."},
    {"normalization", SN_PT_ENUM, "null", "null|batch|valid",
     "If this is set to null, the output gradient will not be normalized. If this is set to "
     "batch, the output gradient will be divided by the batch size. If this is set to valid, "
     "the output gradient will be divided by the number of valid input elements."},
};

static int ml_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const void *x = sn_tensor_data(c->in[0]);
  void *y = sn_tensor_data(c->out[0]);
  if (x != y)
    memcpy(y, x, sn_tensor_bytes(c->in[0]));
  return SN_OK;
}

static int ml_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_params *p = c->p;
  const sn_tensor *x = c->in[0];
  const int64_t n = sn_tensor_size(x);
  double v = p->v[PM_GRAD_SCALE].f;
  const int norm = (int)p->v[PM_NORMALIZATION].i;
  SN_DISPATCH_FLOAT(x->dtype, T, {
    if (norm == NORM_BATCH) {
      v /= (double)(x->shape.ndim > 0 ? x->shape.dim[0] : 1);
    } else if (norm == NORM_VALID) {
      const T *xd = SN_PTR(T, x);
      const double th = p->v[PM_VALID_THRESH].f;
      int64_t cnt = 0;
      for (int64_t i = 0; i < n; i++)
        if (th < (double)xd[i])
          cnt++;
      v /= (double)(cnt < 1 ? 1 : cnt);
    }
    T *gx = SN_PTR(T, c->igrad[0]);
    const T tv = (T)v;
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++)
      gx[i] = tv;
  });
  return SN_OK;
}

static const sn_op op_make_loss = {
    .name = "MakeLoss",
    .aliases = "make_loss",
    .doc = "Makes the input a loss: the forward pass is the identity, and the gradient is "
           "grad_scale (divided by the batch size for normalization='batch', or by the number "
           "of elements above valid_thresh for normalization='valid'), whatever the output "
           "gradient.",
    .params = ml_params,
    .nparams = 3,
    .inputs = data_input,
    .infer_shape = sn_infer_same_shape,
    .forward_cpu = ml_forward,
    .backward_cpu = ml_backward,
    .flags = SN_DEP_IN | SN_OP_NO_OGRAD,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_loss[] = {&op_softmax_output, &op_linreg,     &op_logreg,
                                       &op_maereg,         &op_make_loss, NULL};
