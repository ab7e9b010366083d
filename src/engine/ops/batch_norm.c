/* BatchNorm (MXNet 1.x): batch normalisation over every axis but `axis`.
 *
 *   out = (x - mean[c]) * invstd[c] * gamma[c] + beta[c],
 *   invstd = 1 / sqrt(var + eps).
 *
 * Training (is_train and not use_global_stats): mean and var are the batch
 * statistics of channel c (var is the biased variance, divided by the count),
 * and the aux states are updated in the forward pass (SN_OP_AUX_UPDATE):
 *   moving_mean = moving_mean * momentum + mean * (1 - momentum)
 *   moving_var  = moving_var  * momentum + var  * (1 - momentum)
 * with the same biased var (MXNet's CPU kernel does this update in its
 * backward pass; the value is the same).  Inference or use_global_stats: the
 * moving statistics are used.  fix_gamma=True treats gamma as 1 and gives it
 * a zero gradient (MXNet also overwrites the gamma array with ones; symnet
 * leaves it alone).
 *
 * Outputs: output, mean and var; mean and var are hidden unless
 * output_mean_var=True.  As in MXNet, "var" holds the inverse standard
 * deviation 1/sqrt(var + eps) actually used (batch or moving), which the
 * backward pass reads back instead of recomputing it.  The backward pass
 * applies the batch-statistics formula unless use_global_stats is set (it
 * assumes the forward pass ran in training mode):
 *   dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean)))
 *        * invstd * gamma
 *   dgamma = sum(dy * (x - mean)) * invstd,  dbeta = sum(dy).
 * Statistics are accumulated in double. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

enum {
  P_EPS,
  P_MOMENTUM,
  P_FIX_GAMMA,
  P_USE_GLOBAL_STATS,
  P_OUTPUT_MEAN_VAR,
  P_AXIS,
  P_CUDNN_OFF,
  P_MIN_CALIB,
  P_MAX_CALIB
};

static const sn_param_spec bn_params[] = {
    {"eps", SN_PT_FLOAT, "0.001", NULL,
     "Epsilon to prevent div 0. Must be no less than CUDNN_BN_MIN_EPSILON defined in cudnn.h "
     "when using cudnn (usually 1e-5)"},
    {"momentum", SN_PT_FLOAT, "0.9", NULL, "Momentum for moving average"},
    {"fix_gamma", SN_PT_BOOL, "True", NULL, "Fix gamma while training"},
    {"use_global_stats", SN_PT_BOOL, "False", NULL,
     "Whether use global moving statistics instead of local batch-norm. This will force change "
     "batch-norm into a scale shift operator."},
    {"output_mean_var", SN_PT_BOOL, "False", NULL, "Output the mean and inverse std "},
    {"axis", SN_PT_INT, "1", NULL, "Specify which shape axis the channel is specified"},
    {"cudnn_off", SN_PT_BOOL, "False", NULL, "Do not select CUDNN operator, if available"},
    {"min_calib_range", SN_PT_OPT_FLOAT, "None", NULL,
     "The minimum scalar value in the form of float32 obtained through calibration (used by "
     "quantized batch norm; ignored here)."},
    {"max_calib_range", SN_PT_OPT_FLOAT, "None", NULL,
     "The maximum scalar value in the form of float32 obtained through calibration (used by "
     "quantized batch norm; ignored here)."},
};

static const char *const bn_inputs[] = {"data", "gamma", "beta", NULL};
static const char *const bn_outputs[] = {"output", "mean", "var", NULL};
static const char *const bn_aux[] = {"moving_mean", "moving_var", NULL};

static int bn_num_visible(const sn_params *p) { return p->v[P_OUTPUT_MEAN_VAR].i ? 3 : 1; }

static int bn_axis(const sn_params *p, int ndim, int *axis) {
  const int64_t a = p->v[P_AXIS].i;
  if (ndim < 1 || a < -(int64_t)ndim || a >= ndim)
    return sn_error(SN_ERR_ARG, "BatchNorm: channel axis %lld is out of range for data of %d "
                                "dimensions",
                    (long long)a, ndim);
  *axis = (int)(a < 0 ? a + ndim : a);
  return SN_OK;
}

static int bn_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                          sn_shape *aux, int naux) {
  SN_TRY(sn_shape_assign(&in[0], &out[0], "BatchNorm: data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "BatchNorm: output"));
  if (in[0].ndim < 0)
    return SN_OK;
  int axis = 0;
  SN_TRY(bn_axis(p, in[0].ndim, &axis));
  const int64_t ch = in[0].dim[axis];
  if (ch == 0)
    return SN_OK;
  const sn_shape cs = sn_shape_make(1, &ch);
  static const char *const what[] = {"BatchNorm: data", "BatchNorm: gamma", "BatchNorm: beta"};
  for (int i = 1; i < nin && i < 3; i++)
    SN_TRY(sn_shape_assign(&in[i], &cs, what[i]));
  if (naux > 0)
    SN_TRY(sn_shape_assign(&aux[0], &cs, "BatchNorm: moving_mean"));
  if (naux > 1)
    SN_TRY(sn_shape_assign(&aux[1], &cs, "BatchNorm: moving_var"));
  if (nout > 1)
    SN_TRY(sn_shape_assign(&out[1], &cs, "BatchNorm: mean"));
  if (nout > 2)
    SN_TRY(sn_shape_assign(&out[2], &cs, "BatchNorm: var"));
  return SN_OK;
}

static void bn_view(const sn_shape *s, int axis, int64_t *outer, int64_t *ch, int64_t *inner) {
  int64_t o = 1, in = 1;
  for (int d = 0; d < axis; d++)
    o *= s->dim[d];
  for (int d = axis + 1; d < s->ndim; d++)
    in *= s->dim[d];
  *outer = o;
  *ch = s->dim[axis];
  *inner = in;
}

static int bn_forward(sn_call *c) {
  const sn_params *p = c->p;
  const sn_tensor *xt = c->in[0];
  int axis = 0;
  SN_TRY(bn_axis(p, xt->shape.ndim, &axis));
  int64_t outer, ch, inner;
  bn_view(&xt->shape, axis, &outer, &ch, &inner);
  if (c->naux < 2)
    return sn_error(SN_ERR_ARG, "BatchNorm: the aux states moving_mean and moving_var are missing");
  for (int i = 1; i < 3; i++)
    if (sn_tensor_size(c->in[i]) != ch)
      return sn_error(SN_ERR_SHAPE, "BatchNorm: %s has %lld values, data has %lld channels",
                      i == 1 ? "gamma" : "beta", (long long)sn_tensor_size(c->in[i]),
                      (long long)ch);
  for (int i = 0; i < 2; i++)
    if (sn_tensor_size(c->aux[i]) != ch || c->aux[i]->dtype != xt->dtype)
      return sn_error(SN_ERR_SHAPE, "BatchNorm: %s must have %lld values of dtype %s",
                      i == 0 ? "moving_mean" : "moving_var", (long long)ch,
                      sn_dtype_name(xt->dtype));
  const double eps = p->v[P_EPS].f;
  const double mom = p->v[P_MOMENTUM].f;
  const int fix_gamma = (int)p->v[P_FIX_GAMMA].i;
  const int batch_stats = c->is_train && !p->v[P_USE_GLOBAL_STATS].i;
  const int64_t m = outer * inner;
  const int want_out = c->req[0] != SN_REQ_NULL;
  const int want_mean = c->nout > 1 && c->req[1] != SN_REQ_NULL;
  const int want_var = c->nout > 2 && c->req[2] != SN_REQ_NULL;
  SN_DISPATCH_FLOAT(xt->dtype, T, {
    const T *x = SN_PTR(T, xt);
    const T *gamma = SN_PTR(T, c->in[1]);
    const T *beta = SN_PTR(T, c->in[2]);
    T *mm = SN_PTR(T, c->aux[0]);
    T *mv = SN_PTR(T, c->aux[1]);
    T *y = want_out ? SN_PTR(T, c->out[0]) : NULL;
    T *smean = want_mean ? SN_PTR(T, c->out[1]) : NULL;
    T *sinv = want_var ? SN_PTR(T, c->out[2]) : NULL;
    SN_PARALLEL_FOR_COST(ch, m * 3)
    for (int64_t k = 0; k < ch; k++) {
      double mean, invstd;
      if (batch_stats) {
        double s = 0;
        for (int64_t o = 0; o < outer; o++) {
          const T *xr = x + (o * ch + k) * inner;
          for (int64_t j = 0; j < inner; j++)
            s += (double)xr[j];
        }
        mean = m > 0 ? s / (double)m : 0.0;
        double ss = 0;
        for (int64_t o = 0; o < outer; o++) {
          const T *xr = x + (o * ch + k) * inner;
          for (int64_t j = 0; j < inner; j++) {
            const double d = (double)xr[j] - mean;
            ss += d * d;
          }
        }
        const double var = m > 0 ? ss / (double)m : 0.0;
        invstd = (ss == 0 && eps == 0) ? 0.0 : 1.0 / sqrt(var + eps);
        mm[k] = (T)((double)mm[k] * mom + mean * (1.0 - mom));
        mv[k] = (T)((double)mv[k] * mom + var * (1.0 - mom));
      } else {
        mean = (double)mm[k];
        invstd = 1.0 / sqrt((double)mv[k] + eps);
      }
      if (smean)
        smean[k] = (T)mean;
      if (sinv)
        sinv[k] = (T)invstd;
      if (y) {
        const double w = fix_gamma ? 1.0 : (double)gamma[k];
        const double a = invstd * w;
        const double b = (double)beta[k] - mean * a;
        for (int64_t o = 0; o < outer; o++) {
          const T *xr = x + (o * ch + k) * inner;
          T *yr = y + (o * ch + k) * inner;
          for (int64_t j = 0; j < inner; j++)
            yr[j] = (T)((double)xr[j] * a + b);
        }
      }
    }
  });
  return SN_OK;
}

static int bn_backward(sn_call *c) {
  const sn_params *p = c->p;
  const sn_tensor *xt = c->in[0];
  int axis = 0;
  SN_TRY(bn_axis(p, xt->shape.ndim, &axis));
  int64_t outer, ch, inner;
  bn_view(&xt->shape, axis, &outer, &ch, &inner);
  if (c->nout < 3)
    return sn_error(SN_ERR_INTERNAL, "BatchNorm: the saved mean and inverse std are missing");
  const int fix_gamma = (int)p->v[P_FIX_GAMMA].i;
  const int batch_stats = !p->v[P_USE_GLOBAL_STATS].i;
  const int64_t m = outer * inner;
  const int want_x = c->req[0] != SN_REQ_NULL;
  const int want_g = c->nin > 1 && c->req[1] != SN_REQ_NULL;
  const int want_b = c->nin > 2 && c->req[2] != SN_REQ_NULL;
  SN_DISPATCH_FLOAT(xt->dtype, T, {
    const T *x = SN_PTR(T, xt);
    const T *gamma = SN_PTR(T, c->in[1]);
    const T *smean = SN_PTR(T, c->out[1]);
    const T *sinv = SN_PTR(T, c->out[2]);
    const T *dy = SN_PTR(T, c->ograd[0]);
    T *dx = want_x ? SN_PTR(T, c->igrad[0]) : NULL;
    T *dg = want_g ? SN_PTR(T, c->igrad[1]) : NULL;
    T *db = want_b ? SN_PTR(T, c->igrad[2]) : NULL;
    SN_PARALLEL_FOR_COST(ch, m * 4)
    for (int64_t k = 0; k < ch; k++) {
      const double mean = (double)smean[k], invstd = (double)sinv[k];
      const double w = fix_gamma ? 1.0 : (double)gamma[k];
      double sum_dy = 0, dotp = 0;
      for (int64_t o = 0; o < outer; o++) {
        const T *xr = x + (o * ch + k) * inner;
        const T *gr = dy + (o * ch + k) * inner;
        for (int64_t j = 0; j < inner; j++) {
          sum_dy += (double)gr[j];
          dotp += ((double)xr[j] - mean) * (double)gr[j];
        }
      }
      if (dx) {
        const double iw = invstd * w;
        if (batch_stats && m > 0) {
          const double kk = dotp * invstd * invstd / (double)m;
          const double gm = sum_dy / (double)m;
          for (int64_t o = 0; o < outer; o++) {
            const T *xr = x + (o * ch + k) * inner;
            const T *gr = dy + (o * ch + k) * inner;
            T *dr = dx + (o * ch + k) * inner;
            for (int64_t j = 0; j < inner; j++)
              dr[j] = (T)(((double)gr[j] - gm - ((double)xr[j] - mean) * kk) * iw);
          }
        } else {
          for (int64_t o = 0; o < outer; o++) {
            const T *gr = dy + (o * ch + k) * inner;
            T *dr = dx + (o * ch + k) * inner;
            for (int64_t j = 0; j < inner; j++)
              dr[j] = (T)((double)gr[j] * iw);
          }
        }
      }
      if (dg)
        dg[k] = fix_gamma ? (T)0 : (T)(dotp * invstd);
      if (db)
        db[k] = (T)sum_dy;
    }
  });
  return SN_OK;
}

static const sn_op op_batch_norm = {
    .name = "BatchNorm",
    .aliases = "_npx_batch_norm",
    .doc = "Batch normalization: normalizes each channel (along `axis`) of the input by the mean "
           "and variance of the batch in training, or by the moving statistics in inference or "
           "with use_global_stats, then scales by gamma (fixed to 1 when fix_gamma) and shifts "
           "by beta. Training updates moving_mean and moving_var with `momentum`.",
    .params = bn_params,
    .nparams = 9,
    .inputs = bn_inputs,
    .outputs = bn_outputs,
    .num_visible = bn_num_visible,
    .aux = bn_aux,
    .infer_shape = bn_infer_shape,
    .forward_cpu = bn_forward,
    .backward_cpu = bn_backward,
    .flags = SN_DEP_IN | SN_DEP_OUT | SN_OP_AUX_UPDATE,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_batch_norm[] = {&op_batch_norm, NULL};
