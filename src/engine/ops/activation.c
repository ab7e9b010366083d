/* Activation and LeakyReLU: element-wise non-linearities (MXNet 1.x).
 *
 * Activation(act_type): relu max(x, 0) (NaN passes through, as in MXNet),
 * sigmoid 1/(1+e^-x), tanh, softrelu log(1+e^x) (x itself above 20, as in
 * MXNet), softsign x/(1+|x|).  The backward pass reads only the output:
 * relu 1[y>0], sigmoid y(1-y), tanh 1-y^2, softrelu 1-e^-y, and softsign
 * (1-|y|)^2.  MXNet computes the softsign gradient from the input as
 * 1/(1+|x|)^2; that is the same value, written here in terms of the output so
 * that the op needs only SN_DEP_OUT and its output may overwrite its input.
 *
 * LeakyReLU(act_type, slope, lower_bound, upper_bound):
 *   leaky  y = x > 0 ? x : slope*x
 *   elu    y = x > 0 ? x : slope*(e^x - 1)
 *   selu   y = lambda*(x > 0 ? x : alpha*(e^x - 1)), MXNet's lambda/alpha
 *   gelu   y = x/2 (1 + erf(x/sqrt 2))
 *   prelu  y = x > 0 ? x : gamma[c]*x with a learnt `gamma` input of shape
 *          (C,) (or (1,)) over axis 1 of the data; gamma gets a gradient
 *   rrelu  training: slope ~ U(lower_bound, upper_bound) per element, kept
 *          in the hidden output "mask"; inference: (lower+upper)/2.
 * The LeakyReLU backward pass uses the input (x > 0 picks the branch) and
 * the true derivatives; MXNet reads the output for leaky/elu/selu, which
 * agrees for positive slopes, and its selu gradient lambda*(alpha + y) for
 * x <= 0 is not the derivative (lambda*alpha*e^x).  The rrelu slopes drawn
 * in training are read back from the hidden output, so the op declares
 * SN_DEP_IN | SN_DEP_OUT and never runs in place.  MXNet exposes rrelu's mask
 * as a second visible output; here it is hidden (one visible output for
 * every act_type).
 *
 * Float kernels use float math; float32 tanh and sigmoid are the
 * vectorisable sn_ew_tanhf / sn_ew_sigmoidf of elemwise.h (within 2.5 ulp,
 * the same values as the tanh and sigmoid element-wise ops), compiled also
 * for AVX2 / AVX-512 (cpu_par.h) with identical results; softsign of +-Inf
 * is +-1 (MXNet's formula gives NaN).  Activation splits its loops over the
 * threads in blocks, each block one vectorised run. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../cpu_par.h"
#include "../op.h"
#include "elemwise.h"

/* Math in the precision of T (float kernels call the float functions). */
#define F32(T) (sizeof(T) == sizeof(float))
#define EXPT(T, v) (F32(T) ? (T)expf((float)(v)) : (T)exp((double)(v)))
#define EXPM1T(T, v) (F32(T) ? (T)expm1f((float)(v)) : (T)expm1((double)(v)))
/* float32 tanh takes the vectorised act_tanh_run_f32 below */
#define TANHT(T, v) (F32(T) ? (T)tanhf((float)(v)) : (T)tanh((double)(v)))
#define LOG1PT(T, v) (F32(T) ? (T)log1pf((float)(v)) : (T)log1p((double)(v)))
#define ERFT(T, v) (F32(T) ? (T)erff((float)(v)) : (T)erf((double)(v)))

/* ------------------------------------------------------------------ */
/* Activation                                                          */
/* ------------------------------------------------------------------ */

/* Vectorised runs for the common float32 cases and the backward passes
 * (x may equal y: every element is read before it is written). */
SN_VEC_CLONES static void act_tanh_run_f32(float *y, const float *x, int64_t n) {
  SN_EW_SIMD
  for (int64_t i = 0; i < n; i++) y[i] = sn_ew_tanhf(x[i]);
}
SN_VEC_CLONES static void act_sigmoid_run_f32(float *y, const float *x, int64_t n) {
  SN_EW_SIMD
  for (int64_t i = 0; i < n; i++) y[i] = sn_ew_sigmoidf(x[i]);
}
#define SN_DEFINE_ACT_RUNS(T, SFX)                                                             \
  SN_VEC_CLONES static void act_relu_run_##SFX(T *y, const T *x, int64_t n) {                  \
    SN_EW_SIMD                                                                                 \
    for (int64_t i = 0; i < n; i++) {                                                          \
      const T v = x[i];                                                                        \
      y[i] = (v > (T)0 || v != v) ? v : (T)0;                                                  \
    }                                                                                          \
  }                                                                                            \
  SN_VEC_CLONES static void act_relu_grad_##SFX(T *gx, const T *g, const T *y, int64_t n) {    \
    SN_EW_SIMD                                                                                 \
    for (int64_t i = 0; i < n; i++) {                                                          \
      const T v = y[i];                                                                        \
      gx[i] = v != v ? g[i] * v : (v > (T)0 ? g[i] : (T)0);                                    \
    }                                                                                          \
  }                                                                                            \
  SN_VEC_CLONES static void act_sigmoid_grad_##SFX(T *gx, const T *g, const T *y, int64_t n) { \
    SN_EW_SIMD                                                                                 \
    for (int64_t i = 0; i < n; i++) gx[i] = g[i] * y[i] * ((T)1 - y[i]);                       \
  }                                                                                            \
  SN_VEC_CLONES static void act_tanh_grad_##SFX(T *gx, const T *g, const T *y, int64_t n) {    \
    SN_EW_SIMD                                                                                 \
    for (int64_t i = 0; i < n; i++) gx[i] = g[i] * ((T)1 - y[i] * y[i]);                       \
  }                                                                                            \
  SN_VEC_CLONES static void act_softsign_grad_##SFX(T *gx, const T *g, const T *y,             \
                                                    int64_t n) {                               \
    SN_EW_SIMD                                                                                 \
    for (int64_t i = 0; i < n; i++) {                                                          \
      const T d = (T)1 - (y[i] < (T)0 ? -y[i] : y[i]);                                         \
      gx[i] = g[i] * d * d;                                                                    \
    }                                                                                          \
  }
SN_DEFINE_ACT_RUNS(float, f32)
SN_DEFINE_ACT_RUNS(double, f64)

/* Elements per block (cpu_par.h's SN_FOR_BLOCKS splits them over the
 * threads). */
#define SN_ACT_BLOCK 8192

/* run(y + lo, x + lo, len) over blocks of [0, n) */
#define SN_ACT_SPLIT(n, run, y, x) SN_FOR_BLOCKS(n, SN_ACT_BLOCK, lo_, len_, run((y) + lo_, (x) + lo_, len_))
/* run(gx + lo, g + lo, y + lo, len) over blocks of [0, n) */
#define SN_ACT_SPLIT_GRAD(n, run, gx, g, y) \
  SN_FOR_BLOCKS(n, SN_ACT_BLOCK, lo_, len_, run((gx) + lo_, (g) + lo_, (y) + lo_, len_))

enum { ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTRELU, ACT_SOFTSIGN };
enum { PA_ACT_TYPE };

static const sn_param_spec act_params[] = {
    {"act_type", SN_PT_ENUM, NULL, "relu|sigmoid|tanh|softrelu|softsign",
     "Activation function to be applied."},
};

static const char *const act_inputs[] = {"data", NULL};

static int act_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int type = (int)c->p->v[PA_ACT_TYPE].i;
  const int64_t n = sn_tensor_size(c->in[0]);
  /* vectorised runs: relu, and float32 sigmoid and tanh */
  if (type == ACT_RELU && c->in[0]->dtype == SN_F64) {
    SN_ACT_SPLIT(n, act_relu_run_f64, SN_PTR(double, c->out[0]), SN_PTR(double, c->in[0]));
    return SN_OK;
  }
  if (c->in[0]->dtype == SN_F32 && (type == ACT_RELU || type == ACT_SIGMOID || type == ACT_TANH)) {
    const float *x = SN_PTR(float, c->in[0]);
    float *y = SN_PTR(float, c->out[0]);
    if (type == ACT_RELU)
      SN_ACT_SPLIT(n, act_relu_run_f32, y, x);
    else if (type == ACT_SIGMOID)
      SN_ACT_SPLIT(n, act_sigmoid_run_f32, y, x);
    else
      SN_ACT_SPLIT(n, act_tanh_run_f32, y, x);
    return SN_OK;
  }
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    T *y = SN_PTR(T, c->out[0]);
    switch (type) {
    case ACT_RELU: /* not reached: the vectorised runs above */
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        y[i] = (v > (T)0 || v != v) ? v : (T)0;
      }
      break;
    case ACT_SIGMOID:
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        y[i] = (T)1 / ((T)1 + EXPT(T, -x[i]));
      break;
    case ACT_TANH:
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        y[i] = TANHT(T, x[i]);
      break;
    case ACT_SOFTRELU:
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        y[i] = v > (T)20 ? v : LOG1PT(T, EXPT(T, v));
      }
      break;
    case ACT_SOFTSIGN:
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++) {
        const T a = x[i] < (T)0 ? -x[i] : x[i];
        /* the limit +-1 for infinite input (MXNet's formula gives NaN) */
        y[i] = a == (T)INFINITY ? (x[i] < (T)0 ? (T)-1 : (T)1) : x[i] / ((T)1 + a);
      }
      break;
    default:
      return sn_error(SN_ERR_ARG, "Activation: unknown act_type %d", type);
    }
  });
  return SN_OK;
}

static int act_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int type = (int)c->p->v[PA_ACT_TYPE].i;
  const int64_t n = sn_tensor_size(c->out[0]);
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    const T *y = SN_PTR(T, c->out[0]);
    const T *g = SN_PTR(T, c->ograd[0]);
    T *gx = SN_PTR(T, c->igrad[0]);
    const int f32 = F32(T);
    switch (type) {
    case ACT_RELU:
      if (f32)
        SN_ACT_SPLIT_GRAD(n, act_relu_grad_f32, (float *)gx, (const float *)g, (const float *)y);
      else
        SN_ACT_SPLIT_GRAD(n, act_relu_grad_f64, (double *)gx, (const double *)g,
                          (const double *)y);
      break;
    case ACT_SIGMOID:
      if (f32)
        SN_ACT_SPLIT_GRAD(n, act_sigmoid_grad_f32, (float *)gx, (const float *)g,
                          (const float *)y);
      else
        SN_ACT_SPLIT_GRAD(n, act_sigmoid_grad_f64, (double *)gx, (const double *)g,
                          (const double *)y);
      break;
    case ACT_TANH:
      if (f32)
        SN_ACT_SPLIT_GRAD(n, act_tanh_grad_f32, (float *)gx, (const float *)g, (const float *)y);
      else
        SN_ACT_SPLIT_GRAD(n, act_tanh_grad_f64, (double *)gx, (const double *)g,
                          (const double *)y);
      break;
    case ACT_SOFTRELU:
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        gx[i] = -g[i] * EXPM1T(T, -y[i]);
      break;
    case ACT_SOFTSIGN:
      if (f32)
        SN_ACT_SPLIT_GRAD(n, act_softsign_grad_f32, (float *)gx, (const float *)g,
                          (const float *)y);
      else
        SN_ACT_SPLIT_GRAD(n, act_softsign_grad_f64, (double *)gx, (const double *)g,
                          (const double *)y);
      break;
    default:
      return sn_error(SN_ERR_ARG, "Activation: unknown act_type %d", type);
    }
  });
  return SN_OK;
}

static const sn_op op_activation = {
    .name = "Activation",
    .aliases = "_npx_activation",
    .doc = "Applies an activation function element-wise to the input: relu max(x, 0), "
           "sigmoid 1/(1+exp(-x)), tanh, softrelu log(1+exp(x)) or softsign x/(1+|x|).",
    .params = act_params,
    .nparams = 1,
    .inputs = act_inputs,
    .infer_shape = sn_infer_same_shape,
    .forward_cpu = act_forward,
    .backward_cpu = act_backward,
    .flags = SN_DEP_OUT,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

/* ------------------------------------------------------------------ */
/* LeakyReLU                                                           */
/* ------------------------------------------------------------------ */

enum { LR_RRELU, LR_LEAKY, LR_PRELU, LR_ELU, LR_SELU, LR_GELU };
enum { PL_ACT_TYPE, PL_SLOPE, PL_LOWER, PL_UPPER };

static const sn_param_spec lrelu_params[] = {
    {"act_type", SN_PT_ENUM, "leaky", "rrelu|leaky|prelu|elu|selu|gelu",
     "Activation function to be applied."},
    {"slope", SN_PT_FLOAT, "0.25", NULL, "Init slope for the activation. (For leaky and elu only)"},
    {"lower_bound", SN_PT_FLOAT, "0.125", NULL, "Lower bound of random slope. (For rrelu only)"},
    {"upper_bound", SN_PT_FLOAT, "0.334", NULL, "Upper bound of random slope. (For rrelu only)"},
};

#define SELU_LAMBDA 1.0507009873554804934193349852946
#define SELU_ALPHA 1.6732632423543772848170429916717

static int lrelu_list_inputs(const sn_params *p, const char **names, int cap) {
  int n = 0;
  if (cap > n)
    names[n] = "data";
  n++;
  if (p->v[PL_ACT_TYPE].i == LR_PRELU) {
    if (cap > n)
      names[n] = "gamma";
    n++;
  }
  return n;
}

static int lrelu_list_outputs(const sn_params *p, const char **names, int cap) {
  int n = 0;
  if (cap > n)
    names[n] = "output";
  n++;
  if (p->v[PL_ACT_TYPE].i == LR_RRELU) {
    if (cap > n)
      names[n] = "mask";
    n++;
  }
  return n;
}

static int lrelu_num_visible(const sn_params *p) {
  (void)p;
  return 1;
}

static int lrelu_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                             sn_shape *aux, int naux) {
  (void)aux;
  (void)naux;
  const int type = (int)p->v[PL_ACT_TYPE].i;
  /* output(s) and data share one shape, either direction */
  for (int k = 0; k < nout; k++) {
    SN_TRY(sn_shape_assign(&in[0], &out[k], "LeakyReLU: data"));
  }
  for (int k = 0; k < nout; k++) {
    SN_TRY(sn_shape_assign(&out[k], &in[0], k == 0 ? "LeakyReLU: output" : "LeakyReLU: mask"));
  }
  if (type == LR_PRELU && nin >= 2 && in[0].ndim >= 1) {
    if (in[0].ndim >= 2 && in[0].dim[1] == 0)
      return SN_OK; /* channel count unknown yet */
    int64_t ch = in[0].ndim >= 2 ? in[0].dim[1] : 1;
    if (in[1].ndim == 1 && in[1].dim[0] == 1)
      return SN_OK; /* one shared slope */
    if (in[1].ndim == 1 && in[1].dim[0] != 0 && in[1].dim[0] != ch) {
      char b1[64], b2[64];
      return sn_error(SN_ERR_SHAPE,
                      "LeakyReLU(prelu): gamma has shape %s, expected (%lld,) or (1,) for data %s",
                      sn_shape_str(&in[1], b1, sizeof b1), (long long)ch,
                      sn_shape_str(&in[0], b2, sizeof b2));
    }
    if (in[1].ndim > 1) {
      char b1[64];
      return sn_error(SN_ERR_SHAPE, "LeakyReLU(prelu): gamma must be 1-D, got %s",
                      sn_shape_str(&in[1], b1, sizeof b1));
    }
    sn_shape g = sn_shape_make(1, &ch);
    SN_TRY(sn_shape_assign(&in[1], &g, "LeakyReLU: gamma"));
  }
  return SN_OK;
}

/* Data viewed as (outer, C, inner) around axis 1 for prelu. */
static void lrelu_channel_view(const sn_shape *s, int64_t *outer, int64_t *ch, int64_t *inner) {
  *outer = s->ndim >= 1 ? s->dim[0] : 1;
  *ch = s->ndim >= 2 ? s->dim[1] : 1;
  int64_t r = 1;
  for (int d = 2; d < s->ndim; d++)
    r *= s->dim[d];
  *inner = r;
}

static int lrelu_forward(sn_call *c) {
  const sn_params *p = c->p;
  const int type = (int)p->v[PL_ACT_TYPE].i;
  const double slope = p->v[PL_SLOPE].f;
  const double lo = p->v[PL_LOWER].f, hi = p->v[PL_UPPER].f;
  const int64_t n = sn_tensor_size(c->in[0]);
  const int want_out = c->req[0] != SN_REQ_NULL;
  if (type == LR_RRELU && hi < lo)
    return sn_error(SN_ERR_ARG, "LeakyReLU(rrelu): upper_bound %g is below lower_bound %g", hi, lo);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    T *y = SN_PTR(T, c->out[0]);
    switch (type) {
    case LR_LEAKY: {
      if (!want_out)
        break;
      const T s = (T)slope;
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > (T)0 ? x[i] : x[i] * s;
      break;
    }
    case LR_ELU: {
      if (!want_out)
        break;
      const T s = (T)slope;
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > (T)0 ? x[i] : s * EXPM1T(T, x[i]);
      break;
    }
    case LR_SELU: {
      if (!want_out)
        break;
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > (T)0 ? (T)SELU_LAMBDA * x[i] : (T)(SELU_LAMBDA * SELU_ALPHA) * EXPM1T(T, x[i]);
      break;
    }
    case LR_GELU: {
      if (!want_out)
        break;
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        y[i] = (T)0.5 * v * ((T)1 + ERFT(T, v * (T)0.70710678118654752440));
      }
      break;
    }
    case LR_PRELU: {
      if (!want_out)
        break;
      int64_t outer, ch, inner;
      lrelu_channel_view(&c->in[0]->shape, &outer, &ch, &inner);
      const T *gam = SN_PTR(T, c->in[1]);
      const int64_t gn = sn_tensor_size(c->in[1]);
      if (gn != 1 && gn != ch)
        return sn_error(SN_ERR_SHAPE, "LeakyReLU(prelu): gamma has %lld elements, data has %lld channels",
                        (long long)gn, (long long)ch);
      const int64_t rows = outer * ch;
      SN_PARALLEL_FOR_COST(rows, inner)
      for (int64_t r = 0; r < rows; r++) {
        const T s = gam[gn == 1 ? 0 : r % ch];
        const T *xr = x + r * inner;
        T *yr = y + r * inner;
        for (int64_t j = 0; j < inner; j++)
          yr[j] = xr[j] > (T)0 ? xr[j] : xr[j] * s;
      }
      break;
    }
    case LR_RRELU: {
      T *mask = c->nout > 1 && c->req[1] != SN_REQ_NULL ? SN_PTR(T, c->out[1]) : NULL;
      if (c->is_train) {
        const uint64_t seed = c->seed;
        const double width = hi - lo;
        SN_PARALLEL_FOR_COST(n, 4)
        for (int64_t i = 0; i < n; i++) {
          const T s = (T)(lo + width * sn_rand_uniform(seed, (uint64_t)i));
          if (mask)
            mask[i] = s;
          if (want_out)
            y[i] = x[i] > (T)0 ? x[i] : x[i] * s;
        }
      } else {
        const T s = (T)((lo + hi) / 2.0);
        SN_PARALLEL_FOR(n)
        for (int64_t i = 0; i < n; i++) {
          if (mask)
            mask[i] = s;
          if (want_out)
            y[i] = x[i] > (T)0 ? x[i] : x[i] * s;
        }
      }
      break;
    }
    default:
      return sn_error(SN_ERR_ARG, "LeakyReLU: unknown act_type %d", type);
    }
  });
  return SN_OK;
}

static int lrelu_backward(sn_call *c) {
  const sn_params *p = c->p;
  const int type = (int)p->v[PL_ACT_TYPE].i;
  const double slope = p->v[PL_SLOPE].f;
  const int64_t n = sn_tensor_size(c->in[0]);
  const int want_x = c->req[0] != SN_REQ_NULL;
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->ograd[0]);
    T *gx = want_x ? SN_PTR(T, c->igrad[0]) : NULL;
    switch (type) {
    case LR_LEAKY: {
      if (!want_x)
        break;
      const T s = (T)slope;
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++)
        gx[i] = x[i] > (T)0 ? g[i] : g[i] * s;
      break;
    }
    case LR_ELU: {
      if (!want_x)
        break;
      const T s = (T)slope;
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        gx[i] = x[i] > (T)0 ? g[i] : g[i] * s * EXPT(T, x[i]);
      break;
    }
    case LR_SELU: {
      if (!want_x)
        break;
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++)
        gx[i] = x[i] > (T)0 ? g[i] * (T)SELU_LAMBDA : g[i] * (T)(SELU_LAMBDA * SELU_ALPHA) * EXPT(T, x[i]);
      break;
    }
    case LR_GELU: {
      if (!want_x)
        break;
      SN_PARALLEL_FOR_COST(n, 8)
      for (int64_t i = 0; i < n; i++) {
        const T v = x[i];
        const T d = (T)0.5 * ((T)1 + ERFT(T, v * (T)0.70710678118654752440)) +
                    v * (T)0.39894228040143267794 * EXPT(T, (T)-0.5 * v * v);
        gx[i] = g[i] * d;
      }
      break;
    }
    case LR_PRELU: {
      int64_t outer, ch, inner;
      lrelu_channel_view(&c->in[0]->shape, &outer, &ch, &inner);
      const T *gam = SN_PTR(T, c->in[1]);
      const int64_t gn = sn_tensor_size(c->in[1]);
      if (gn != 1 && gn != ch)
        return sn_error(SN_ERR_SHAPE, "LeakyReLU(prelu): gamma has %lld elements, data has %lld channels",
                        (long long)gn, (long long)ch);
      /* gamma's gradient first: igrad[0] may share the output gradient */
      if (c->nin > 1 && c->req[1] != SN_REQ_NULL) {
        T *gg = SN_PTR(T, c->igrad[1]);
        if (gn == 1) {
          double acc = 0;
          for (int64_t i = 0; i < n; i++)
            if (!(x[i] > (T)0))
              acc += (double)g[i] * (double)x[i];
          gg[0] = (T)acc;
        } else {
          /* d gamma[k] = sum over (outer, inner) of g * x where x <= 0 */
          SN_PARALLEL_FOR_COST(ch, outer * inner)
          for (int64_t k = 0; k < ch; k++) {
            double acc = 0;
            for (int64_t o = 0; o < outer; o++) {
              const T *xr = x + (o * ch + k) * inner;
              const T *gr = g + (o * ch + k) * inner;
              for (int64_t j = 0; j < inner; j++)
                if (!(xr[j] > (T)0))
                  acc += (double)gr[j] * (double)xr[j];
            }
            gg[k] = (T)acc;
          }
        }
      }
      if (want_x) {
        const int64_t rows = outer * ch;
        SN_PARALLEL_FOR_COST(rows, inner)
        for (int64_t r = 0; r < rows; r++) {
          const T s = gam[gn == 1 ? 0 : r % ch];
          const T *xr = x + r * inner;
          const T *gr = g + r * inner;
          T *gxr = gx + r * inner;
          for (int64_t j = 0; j < inner; j++)
            gxr[j] = xr[j] > (T)0 ? gr[j] : gr[j] * s;
        }
      }
      break;
    }
    case LR_RRELU: {
      if (!want_x)
        break;
      const T *mask = SN_PTR(T, c->out[1]);
      SN_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++)
        gx[i] = x[i] > (T)0 ? g[i] : g[i] * mask[i];
      break;
    }
    default:
      return sn_error(SN_ERR_ARG, "LeakyReLU: unknown act_type %d", type);
    }
  });
  return SN_OK;
}

static const sn_op op_leaky_relu = {
    .name = "LeakyReLU",
    .aliases = "_npx_leaky_relu",
    .doc = "Applies a leaky rectified linear unit element-wise: leaky (x > 0 ? x : slope*x), "
           "elu (x > 0 ? x : slope*(exp(x)-1)), selu, gelu, prelu (a learnt slope `gamma` per "
           "channel of axis 1) or rrelu (a random slope in [lower_bound, upper_bound) in "
           "training, their mean in inference).",
    .params = lrelu_params,
    .nparams = 4,
    .list_inputs = lrelu_list_inputs,
    .list_outputs = lrelu_list_outputs,
    .num_visible = lrelu_num_visible,
    .infer_shape = lrelu_infer_shape,
    .forward_cpu = lrelu_forward,
    .backward_cpu = lrelu_backward,
    .flags = SN_DEP_IN | SN_DEP_OUT | SN_OP_RANDOM,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(0),
};

const sn_op *const sn_family_activation[] = {&op_activation, &op_leaky_relu, NULL};
