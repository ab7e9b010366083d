/* softmax, log_softmax, softmin and SoftmaxActivation (MXNet 1.x).
 *
 * softmax(data, axis=-1, temperature=None, dtype=None, use_length=False):
 *   out_j = exp((x_j - max x)/t) / sum_k exp((x_k - max x)/t) along `axis`.
 * log_softmax: the log of that; softmin: softmax of -x.  With use_length an
 * extra input `length` (shape of data without `axis`) gives, per line, how
 * many leading positions take part; the rest get 0 (and a 0 gradient).  The
 * length values are copied into a hidden output so that the backward pass
 * reads only outputs (SN_DEP_OUT): grad = out*(g - sum(g*out))/t for softmax,
 * g - exp(out)*sum(g) (/t) for log_softmax, negated for softmin.  `dtype`
 * sets the output type (float32/float64; the input keeps its own).
 *
 * SoftmaxActivation(mode=instance|channel): "channel" is a softmax over axis 1
 * of an (N, C, ...) array (at least 3-D, as in MXNet); "instance" is what
 * MXNet's kernel computes, a softmax over the last axis (the same as over all
 * features for the usual 2-D input).  MXNet's backward for "instance" on
 * arrays of more than 2 dimensions reduces over axis 1 instead, which is not
 * the gradient of its forward; here the backward matches the forward.
 *
 * Sums are accumulated in double; the kernels are safe in place (out may be
 * data), each line being read fully before it is written. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

/* exp in the precision of T */
#define EXPT(T, v) (sizeof(T) == sizeof(float) ? (double)expf((float)(v)) : exp((double)(v)))

/* Truncates toward zero like a C cast, but defined for NaN (0) and for
 * values beyond the int64 range (saturated). */
static int64_t trunc_i64(double v) {
  if (v != v)
    return 0;
  if (v >= 9.2e18)
    return INT64_MAX;
  if (v <= -9.2e18)
    return INT64_MIN;
  return (int64_t)v;
}

/* The value i of an integer or floating tensor, truncated like MXNet's
 * static_cast<index_t>. */
static int64_t len_at(const sn_tensor *t, int64_t i) {
  const void *d = sn_tensor_data(t);
  switch (t->dtype) {
  case SN_F32: return trunc_i64(((const float *)d)[i]);
  case SN_F64: return trunc_i64(((const double *)d)[i]);
  case SN_I32: return (int64_t)((const int32_t *)d)[i];
  case SN_I64: return ((const int64_t *)d)[i];
  case SN_U8: return (int64_t)((const uint8_t *)d)[i];
  case SN_I8: return (int64_t)((const int8_t *)d)[i];
  default: return 0;
  }
}

static int norm_axis(int64_t axis, int ndim, const char *op, int *out) {
  if (axis < -(int64_t)ndim || axis >= ndim)
    return sn_error(SN_ERR_ARG, "%s: axis %lld is out of range for an array of %d dimensions", op,
                    (long long)axis, ndim);
  *out = (int)(axis < 0 ? axis + ndim : axis);
  return SN_OK;
}

/* (outer, M, inner) view around axis */
static void axis_view(const sn_shape *s, int axis, int64_t *outer, int64_t *m, int64_t *inner) {
  int64_t o = 1, in = 1;
  for (int d = 0; d < axis; d++)
    o *= s->dim[d];
  for (int d = axis + 1; d < s->ndim; d++)
    in *= s->dim[d];
  *outer = o;
  *m = s->ndim > 0 ? s->dim[axis] : 1;
  *inner = in;
}

enum { K_SOFTMAX, K_LOG_SOFTMAX };

/* Forward over lines of an (outer, M, inner) view. */
static int softmax_lines_fwd(const sn_tensor *xin, sn_tensor *yout, int64_t outer, int64_t m,
                             int64_t inner, double temp, int kind, int negate,
                             const sn_tensor *len) {
  const int64_t lines = outer * inner;
  const double inv_t = 1.0 / temp;
  const double sgn = negate ? -1.0 : 1.0;
  SN_DISPATCH_FLOAT(xin->dtype, TI, SN_DISPATCH_FLOAT(yout->dtype, TO, {
    const TI *x = SN_PTR(TI, xin);
    TO *y = SN_PTR(TO, yout);
    SN_PARALLEL_FOR_COST(lines, m * 4)
    for (int64_t l = 0; l < lines; l++) {
      const int64_t o = l / inner, i = l % inner;
      const TI *xl = x + o * m * inner + i;
      TO *yl = y + o * m * inner + i;
      int64_t n = m;
      if (len) {
        n = len_at(len, l);
        if (n < 0)
          n = 0;
        if (n > m)
          n = m;
      }
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; j++) {
        const double v = sgn * (double)xl[j * inner];
        if (v > mx)
          mx = v;
      }
      double sum = 0;
      if (kind == K_SOFTMAX) {
        /* one exp per element: store it, then scale (safe in place: x[j]
         * is not read again once the maximum is known) */
        for (int64_t j = 0; j < n; j++) {
          const double e = EXPT(TI, (sgn * (double)xl[j * inner] - mx) * inv_t);
          sum += e;
          yl[j * inner] = (TO)e;
        }
        const TO r = (TO)(1.0 / sum);
        for (int64_t j = 0; j < n; j++)
          yl[j * inner] *= r;
      } else {
        for (int64_t j = 0; j < n; j++)
          sum += EXPT(TI, (sgn * (double)xl[j * inner] - mx) * inv_t);
        const double ls = log(sum);
        for (int64_t j = 0; j < n; j++)
          yl[j * inner] = (TO)((sgn * (double)xl[j * inner] - mx) * inv_t - ls);
      }
      for (int64_t j = n; j < m; j++)
        yl[j * inner] = (TO)0;
    }
  }));
  return SN_OK;
}

/* Backward: igrad (input dtype) from ograd and out (output dtype). */
static int softmax_lines_bwd(const sn_tensor *yout, const sn_tensor *gout, sn_tensor *gin,
                             int64_t outer, int64_t m, int64_t inner, double temp, int kind,
                             int negate, const sn_tensor *len) {
  const int64_t lines = outer * inner;
  const double scale = (negate ? -1.0 : 1.0) / temp;
  SN_DISPATCH_FLOAT(gin->dtype, TI, SN_DISPATCH_FLOAT(yout->dtype, TO, {
    const TO *y = SN_PTR(TO, yout);
    const TO *g = SN_PTR(TO, gout);
    TI *gx = SN_PTR(TI, gin);
    SN_PARALLEL_FOR_COST(lines, m * 3)
    for (int64_t l = 0; l < lines; l++) {
      const int64_t o = l / inner, i = l % inner;
      const int64_t base = o * m * inner + i;
      const TO *yl = y + base;
      const TO *gl = g + base;
      TI *gxl = gx + base;
      int64_t n = m;
      if (len) {
        n = len_at(len, l);
        if (n < 0)
          n = 0;
        if (n > m)
          n = m;
      }
      double sum = 0;
      if (kind == K_SOFTMAX) {
        for (int64_t j = 0; j < n; j++)
          sum += (double)gl[j * inner] * (double)yl[j * inner];
        for (int64_t j = 0; j < n; j++)
          gxl[j * inner] = (TI)((double)yl[j * inner] * ((double)gl[j * inner] - sum) * scale);
      } else {
        for (int64_t j = 0; j < n; j++)
          sum += (double)gl[j * inner];
        for (int64_t j = 0; j < n; j++)
          gxl[j * inner] =
              (TI)(((double)gl[j * inner] - EXPT(TO, (double)yl[j * inner]) * sum) * scale);
      }
      for (int64_t j = n; j < m; j++)
        gxl[j * inner] = (TI)0;
    }
  }));
  return SN_OK;
}

/* ------------------------------------------------------------------ */
/* softmax / log_softmax / softmin                                     */
/* ------------------------------------------------------------------ */

enum { PS_AXIS, PS_TEMPERATURE, PS_DTYPE, PS_USE_LENGTH };

static const sn_param_spec softmax_params[] = {
    {"axis", SN_PT_INT, "-1", NULL, "The axis along which to compute softmax."},
    {"temperature", SN_PT_OPT_FLOAT, "None", NULL, "Temperature parameter in softmax"},
    {"dtype", SN_PT_ENUM, "None", "None|float16|float32|float64",
     "DType of the output in case this can't be inferred. Defaults to the same as input's "
     "dtype if not defined (dtype=None)."},
    {"use_length", SN_PT_BOOL, "False", NULL,
     "Whether to use the length input as a mask over the data input."},
};

static int softmax_list_inputs(const sn_params *p, const char **names, int cap) {
  int n = 0;
  if (cap > n)
    names[n] = "data";
  n++;
  if (p->v[PS_USE_LENGTH].i) {
    if (cap > n)
      names[n] = "length";
    n++;
  }
  return n;
}

static int softmax_list_outputs(const sn_params *p, const char **names, int cap) {
  int n = 0;
  if (cap > n)
    names[n] = "output";
  n++;
  if (p->v[PS_USE_LENGTH].i) {
    if (cap > n)
      names[n] = "length";
    n++;
  }
  return n;
}

static int softmax_num_visible(const sn_params *p) {
  (void)p;
  return 1;
}

static int softmax_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                               int nout, sn_shape *aux, int naux) {
  (void)aux;
  (void)naux;
  const char *name = p->op ? p->op->name : "softmax";
  SN_TRY(sn_shape_assign(&in[0], &out[0], "softmax: data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "softmax: output"));
  if (in[0].ndim >= 0) {
    int axis = 0;
    SN_TRY(norm_axis(p->v[PS_AXIS].i, in[0].ndim, name, &axis));
    if (p->v[PS_USE_LENGTH].i && nin >= 2) {
      sn_shape ls;
      if (in[0].ndim <= 1) {
        int64_t one = 1;
        ls = sn_shape_make(1, &one);
      } else {
        ls.ndim = 0;
        for (int d = 0; d < in[0].ndim; d++)
          if (d != axis)
            ls.dim[ls.ndim++] = in[0].dim[d];
      }
      SN_TRY(sn_shape_assign(&in[1], &ls, "softmax: length"));
    }
  }
  if (p->v[PS_USE_LENGTH].i && nin >= 2 && nout >= 2) {
    SN_TRY(sn_shape_assign(&out[1], &in[1], "softmax: length"));
    SN_TRY(sn_shape_assign(&in[1], &out[1], "softmax: length"));
  }
  return SN_OK;
}

static const sn_dtype softmax_dtype_of[] = {SN_DTYPE_UNKNOWN, SN_F16, SN_F32, SN_F64};

static int softmax_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out,
                              int nout) {
  const int64_t d = p->v[PS_DTYPE].i;
  if (d > 0) {
    if (out[0] != SN_DTYPE_UNKNOWN && out[0] != softmax_dtype_of[d])
      return sn_error(SN_ERR_TYPE, "softmax: output dtype %s does not match dtype=%s",
                      sn_dtype_name(out[0]), sn_dtype_name(softmax_dtype_of[d]));
    out[0] = softmax_dtype_of[d];
    if (in[0] == SN_DTYPE_UNKNOWN)
      in[0] = out[0];
  } else {
    if (in[0] == SN_DTYPE_UNKNOWN)
      in[0] = out[0];
    else if (out[0] == SN_DTYPE_UNKNOWN)
      out[0] = in[0];
    else if (out[0] != in[0])
      return sn_error(SN_ERR_TYPE, "softmax: data has dtype %s but the output has %s",
                      sn_dtype_name(in[0]), sn_dtype_name(out[0]));
  }
  if (p->v[PS_USE_LENGTH].i && nin >= 2) {
    if (in[1] == SN_DTYPE_UNKNOWN)
      in[1] = nout >= 2 && out[1] != SN_DTYPE_UNKNOWN ? out[1] : in[0];
    if (nout >= 2)
      out[1] = in[1];
  }
  return SN_OK;
}

static int softmax_common_fwd(sn_call *c, int kind, int negate) {
  const sn_params *p = c->p;
  const char *name = p->op ? p->op->name : "softmax";
  int axis = 0;
  SN_TRY(norm_axis(p->v[PS_AXIS].i, c->in[0]->shape.ndim, name, &axis));
  const double temp = p->v[PS_TEMPERATURE].set ? p->v[PS_TEMPERATURE].f : 1.0;
  if (!(temp != 0.0))
    return sn_error(SN_ERR_ARG, "%s: temperature must not be 0", name);
  const sn_tensor *len = NULL;
  if (p->v[PS_USE_LENGTH].i) {
    if (c->nin < 2)
      return sn_error(SN_ERR_ARG, "%s: use_length=True needs the length input", name);
    len = c->in[1];
    if (c->nout >= 2 && c->req[1] != SN_REQ_NULL) {
      if (c->out[1]->dtype != len->dtype || sn_tensor_size(c->out[1]) != sn_tensor_size(len))
        return sn_error(SN_ERR_INTERNAL, "%s: hidden length output does not match the input", name);
      memmove(sn_tensor_data(c->out[1]), sn_tensor_data(len), sn_tensor_bytes(len));
    }
  }
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int64_t outer, m, inner;
  axis_view(&c->in[0]->shape, axis, &outer, &m, &inner);
  if (len && sn_tensor_size(len) != outer * inner)
    return sn_error(SN_ERR_SHAPE, "%s: length has %lld elements, expected %lld", name,
                    (long long)sn_tensor_size(len), (long long)(outer * inner));
  return softmax_lines_fwd(c->in[0], c->out[0], outer, m, inner, temp, kind, negate, len);
}

static int softmax_common_bwd(sn_call *c, int kind, int negate) {
  const sn_params *p = c->p;
  const char *name = p->op ? p->op->name : "softmax";
  const sn_tensor *len = NULL;
  if (p->v[PS_USE_LENGTH].i) {
    if (c->nin >= 2 && c->req[1] != SN_REQ_NULL && c->igrad[1])
      memset(sn_tensor_data(c->igrad[1]), 0, sn_tensor_bytes(c->igrad[1]));
    if (c->nout < 2)
      return sn_error(SN_ERR_INTERNAL, "%s: the hidden length output is missing", name);
    len = c->out[1];
  }
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int axis = 0;
  SN_TRY(norm_axis(p->v[PS_AXIS].i, c->out[0]->shape.ndim, name, &axis));
  const double temp = p->v[PS_TEMPERATURE].set ? p->v[PS_TEMPERATURE].f : 1.0;
  int64_t outer, m, inner;
  axis_view(&c->out[0]->shape, axis, &outer, &m, &inner);
  return softmax_lines_bwd(c->out[0], c->ograd[0], c->igrad[0], outer, m, inner, temp, kind,
                           negate, len);
}

static int softmax_fwd(sn_call *c) { return softmax_common_fwd(c, K_SOFTMAX, 0); }
static int softmax_bwd(sn_call *c) { return softmax_common_bwd(c, K_SOFTMAX, 0); }
static int log_softmax_fwd(sn_call *c) { return softmax_common_fwd(c, K_LOG_SOFTMAX, 0); }
static int log_softmax_bwd(sn_call *c) { return softmax_common_bwd(c, K_LOG_SOFTMAX, 0); }
static int softmin_fwd(sn_call *c) { return softmax_common_fwd(c, K_SOFTMAX, 1); }
static int softmin_bwd(sn_call *c) { return softmax_common_bwd(c, K_SOFTMAX, 1); }

#define SOFTMAX_OP_COMMON                                                              \
  .params = softmax_params, .nparams = 4, .list_inputs = softmax_list_inputs,          \
  .list_outputs = softmax_list_outputs, .num_visible = softmax_num_visible,            \
  .infer_shape = softmax_infer_shape, .infer_type = softmax_infer_type,                \
  .flags = SN_DEP_OUT, .inplace_in = SN_INPLACE(0), .inplace_grad = SN_INPLACE(0)

static const sn_op op_softmax = {
    .name = "softmax",
    .aliases = "_npx_softmax",
    .doc = "Applies the softmax function along `axis`: exp(x/t) normalised to sum to 1, t being "
           "the temperature (1 by default). With use_length, only the first length[i] entries "
           "of each line take part and the rest are set to 0.",
    .forward_cpu = softmax_fwd,
    .backward_cpu = softmax_bwd,
    SOFTMAX_OP_COMMON,
};

static const sn_op op_log_softmax = {
    .name = "log_softmax",
    .aliases = "_npx_log_softmax",
    .doc = "Computes the log of the softmax along `axis`: x/t - log(sum(exp(x/t))), computed "
           "stably.",
    .forward_cpu = log_softmax_fwd,
    .backward_cpu = log_softmax_bwd,
    SOFTMAX_OP_COMMON,
};

static const sn_op op_softmin = {
    .name = "softmin",
    .aliases = NULL,
    .doc = "Applies the softmin function along `axis`: the softmax of -x/t.",
    .forward_cpu = softmin_fwd,
    .backward_cpu = softmin_bwd,
    SOFTMAX_OP_COMMON,
};

/* ------------------------------------------------------------------ */
/* SoftmaxActivation                                                   */
/* ------------------------------------------------------------------ */

enum { SA_INSTANCE, SA_CHANNEL };
enum { PSA_MODE };

static const sn_param_spec sa_params[] = {
    {"mode", SN_PT_ENUM, "instance", "instance|channel",
     "Specifies how to compute the softmax. If set to ``instance``, it computes softmax for "
     "each instance. If set to ``channel``, It computes cross channel softmax for each position "
     "of each instance."},
};

static const char *const sa_inputs[] = {"data", NULL};

static int sa_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                          sn_shape *aux, int naux) {
  SN_TRY(sn_infer_same_shape(p, in, nin, out, nout, aux, naux));
  if (p->v[PSA_MODE].i == SA_CHANNEL && in[0].ndim >= 0 && in[0].ndim < 3) {
    char b[64];
    return sn_error(SN_ERR_SHAPE,
                    "SoftmaxActivation: mode=channel needs data of at least 3 dimensions, got %s",
                    sn_shape_str(&in[0], b, sizeof b));
  }
  return SN_OK;
}

static int sa_axis(const sn_call *c, const sn_shape *s, int *axis) {
  if (s->ndim < 1)
    return sn_error(SN_ERR_SHAPE, "SoftmaxActivation: data must have at least 1 dimension");
  if (c->p->v[PSA_MODE].i == SA_CHANNEL) {
    if (s->ndim < 3)
      return sn_error(SN_ERR_SHAPE,
                      "SoftmaxActivation: mode=channel needs data of at least 3 dimensions");
    *axis = 1;
  } else {
    *axis = s->ndim - 1;
  }
  return SN_OK;
}

static int sa_fwd(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int axis = 0;
  SN_TRY(sa_axis(c, &c->in[0]->shape, &axis));
  int64_t outer, m, inner;
  axis_view(&c->in[0]->shape, axis, &outer, &m, &inner);
  return softmax_lines_fwd(c->in[0], c->out[0], outer, m, inner, 1.0, K_SOFTMAX, 0, NULL);
}

static int sa_bwd(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int axis = 0;
  SN_TRY(sa_axis(c, &c->out[0]->shape, &axis));
  int64_t outer, m, inner;
  axis_view(&c->out[0]->shape, axis, &outer, &m, &inner);
  return softmax_lines_bwd(c->out[0], c->ograd[0], c->igrad[0], outer, m, inner, 1.0, K_SOFTMAX,
                           0, NULL);
}

static const sn_op op_softmax_activation = {
    .name = "SoftmaxActivation",
    .aliases = NULL,
    .doc = "Applies softmax activation to the input (deprecated in MXNet in favour of softmax). "
           "mode=instance: softmax over the last axis of each instance; mode=channel: softmax "
           "over axis 1 (channels) at each position of an (N, C, ...) array.",
    .params = sa_params,
    .nparams = 1,
    .inputs = sa_inputs,
    .infer_shape = sa_infer_shape,
    .forward_cpu = sa_fwd,
    .backward_cpu = sa_bwd,
    .flags = SN_DEP_OUT,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

const sn_op *const sn_family_softmax[] = {&op_softmax, &op_log_softmax, &op_softmin,
                                          &op_softmax_activation, NULL};
