/* Random sampling ops without inputs (MXNet 1.x): _random_uniform,
 * _random_normal, _random_exponential, _random_gamma, _random_poisson,
 * _random_negative_binomial, _random_generalized_negative_binomial and
 * _random_randint, with MXNet's aliases (random_uniform, uniform, ...).
 *
 * Every value comes from the counter-based generator of cpu.h: value i of a
 * call depends only on the call's seed and i, so results do not depend on
 * the number of threads; mx.set.seed makes them reproducible.  Samplers that
 * need a variable number of uniforms (gamma, Poisson) draw them from a
 * stream of their own per element (seed mixed with i).  Gamma uses
 * Marsaglia-Tsang (with the alpha < 1 boost), Poisson Knuth's product method
 * below 12 and Hormann's transformed rejection (PTRS) above.  `shape` is the
 * output shape ("()" leaves it to shape inference, as in MXNet), `ctx` is
 * accepted and ignored (the caller picks the device), `dtype` None means
 * float32 (int32 for randint).  Parameters are checked: e.g. high < low or a
 * non-positive rate is an error. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

static const char *const no_inputs[] = {NULL};

#define DTYPE_DOC                                                                      \
  "DType of the output in case this can't be inferred. Defaults to float32 if not defined " \
  "(dtype=None)."
#define CTX_DOC                                                                        \
  "Context of output, in format [cpu|gpu|cpu_pinned](n). Only used for imperative calls."
#define SHAPE_DOC "Shape of the output."

/* float dtype enum shared by the float samplers */
static const sn_dtype float_dtype_of[] = {SN_DTYPE_UNKNOWN, SN_F32, SN_F64, SN_F16};
static const sn_dtype int_dtype_of[] = {SN_DTYPE_UNKNOWN, SN_I32, SN_I64};

/* Per-element streams (sn_rstream) and the gamma/Poisson samplers: rand.h,
 * shared with the CUDA kernels. */

/* ---- shared shape/type inference ---- */

/* Parameter index of `shape` and `dtype` differ per op; they are passed in
 * through these small wrappers. */
static int sample_shape(const sn_params *p, int ishape, sn_shape *out) {
  const sn_shape *s = &p->v[ishape].s;
  const char *name = p->op ? p->op->name : "_random";
  if (s->ndim <= 0)
    return SN_OK; /* "()": left to inference */
  for (int d = 0; d < s->ndim; d++)
    if (s->dim[d] <= 0)
      return sn_error(SN_ERR_ARG, "%s: shape dimensions must be positive", name);
  return sn_shape_assign(out, s, "output");
}

static int sample_type(const sn_params *p, int idtype, const sn_dtype *table, sn_dtype dflt,
                       sn_dtype *out) {
  const int64_t d = p->v[idtype].i;
  const char *name = p->op ? p->op->name : "_random";
  if (d > 0) {
    if (*out != SN_DTYPE_UNKNOWN && *out != table[d])
      return sn_error(SN_ERR_TYPE, "%s: output type %s does not match requested type %s", name,
                      sn_dtype_name(*out), sn_dtype_name(table[d]));
    *out = table[d];
  } else if (*out == SN_DTYPE_UNKNOWN) {
    *out = dflt;
  }
  return SN_OK;
}

/* Every float sampler has (two params), shape, ctx, dtype. */
#define SAMPLER_INFER(NAME, ISHAPE, IDTYPE)                                            \
  static int NAME##_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, \
                                int nout, sn_shape *aux, int naux) {                   \
    (void)in, (void)nin, (void)nout, (void)aux, (void)naux;                            \
    SN_TRY(NAME##_check(p));                                                           \
    return sample_shape(p, ISHAPE, &out[0]);                                           \
  }                                                                                    \
  static int NAME##_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, \
                               int nout) {                                             \
    (void)in, (void)nin, (void)nout;                                                   \
    return sample_type(p, IDTYPE, float_dtype_of, SN_F32, &out[0]);                    \
  }

#define FLOAT_DTYPE_PARAM                                                              \
  { "dtype", SN_PT_ENUM, "None", "None|float32|float64|float16", DTYPE_DOC }

#define SAMPLER_OP(VAR, NAME, ALIASES, DOC, NPARAMS)                                   \
  static const sn_op VAR = {                                                           \
      .name = NAME,                                                                    \
      .aliases = ALIASES,                                                              \
      .doc = DOC,                                                                      \
      .params = VAR##_params,                                                          \
      .nparams = NPARAMS,                                                              \
      .inputs = no_inputs,                                                             \
      .infer_shape = VAR##_infer_shape,                                                \
      .infer_type = VAR##_infer_type,                                                  \
      .forward_cpu = VAR##_forward,                                                    \
      .flags = SN_OP_RANDOM | SN_OP_NO_GRAD,                                           \
      .inplace_in = SN_INPLACE(-1),                                                                \
      .inplace_grad = SN_INPLACE(-1),                                                              \
      .name_hint = NAME,                                                               \
  }

/* ------------------------------------------------------------------ */
/* uniform                                                             */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_uniform_params[] = {
    {"low", SN_PT_FLOAT, "0", NULL, "Lower bound of the distribution."},
    {"high", SN_PT_FLOAT, "1", NULL, "Upper bound of the distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_uniform_check(const sn_params *p) {
  if (!(p->v[0].f <= p->v[1].f))
    return sn_error(SN_ERR_ARG, "_random_uniform: high (%g) must be at least low (%g)", p->v[1].f,
                    p->v[0].f);
  return SN_OK;
}
SAMPLER_INFER(op_uniform, 2, 4)

static int op_uniform_forward(sn_call *c) {
  SN_TRY(op_uniform_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double lo = c->p->v[0].f, width = c->p->v[1].f - c->p->v[0].f;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++)
      y[i] = (T)(lo + width * sn_rand_uniform(seed, (uint64_t)i));
  });
  return SN_OK;
}

SAMPLER_OP(op_uniform, "_random_uniform", "uniform|random_uniform",
           "Draws samples from a uniform distribution on [low, high).", 5);

/* ------------------------------------------------------------------ */
/* normal                                                              */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_normal_params[] = {
    {"loc", SN_PT_FLOAT, "0", NULL, "Mean of the distribution."},
    {"scale", SN_PT_FLOAT, "1", NULL, "Standard deviation of the distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_normal_check(const sn_params *p) {
  if (!(p->v[1].f >= 0))
    return sn_error(SN_ERR_ARG, "_random_normal: scale must be non-negative, got %g", p->v[1].f);
  return SN_OK;
}
SAMPLER_INFER(op_normal, 2, 4)

static int op_normal_forward(sn_call *c) {
  SN_TRY(op_normal_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double loc = c->p->v[0].f, scale = c->p->v[1].f;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 16)
    for (int64_t i = 0; i < n; i++)
      y[i] = (T)(loc + scale * sn_rand_normal(seed, (uint64_t)i));
  });
  return SN_OK;
}

SAMPLER_OP(op_normal, "_random_normal", "normal|random_normal",
           "Draws samples from a normal (Gaussian) distribution with mean loc and standard "
           "deviation scale.",
           5);

/* ------------------------------------------------------------------ */
/* exponential                                                         */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_exponential_params[] = {
    {"lam", SN_PT_FLOAT, "1", NULL, "Lambda parameter (rate) of the exponential distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_exponential_check(const sn_params *p) {
  if (!(p->v[0].f > 0))
    return sn_error(SN_ERR_ARG, "_random_exponential: lam must be positive, got %g", p->v[0].f);
  return SN_OK;
}
SAMPLER_INFER(op_exponential, 1, 3)

static int op_exponential_forward(sn_call *c) {
  SN_TRY(op_exponential_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double lam = c->p->v[0].f;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 8)
    for (int64_t i = 0; i < n; i++)
      y[i] = (T)(-log(sn_rand_uniform(seed, (uint64_t)i)) / lam);
  });
  return SN_OK;
}

SAMPLER_OP(op_exponential, "_random_exponential", "random_exponential",
           "Draws samples from an exponential distribution with rate lam (mean 1/lam).", 4);

/* ------------------------------------------------------------------ */
/* gamma                                                               */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_gamma_params[] = {
    {"alpha", SN_PT_FLOAT, "1", NULL, "Alpha parameter (shape) of the gamma distribution."},
    {"beta", SN_PT_FLOAT, "1", NULL, "Beta parameter (scale) of the gamma distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_gamma_check(const sn_params *p) {
  if (!(p->v[0].f > 0) || !(p->v[1].f > 0))
    return sn_error(SN_ERR_ARG, "_random_gamma: alpha and beta must be positive, got %g and %g",
                    p->v[0].f, p->v[1].f);
  return SN_OK;
}
SAMPLER_INFER(op_gamma, 2, 4)

static int op_gamma_forward(sn_call *c) {
  SN_TRY(op_gamma_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double alpha = c->p->v[0].f, beta = c->p->v[1].f;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 32)
    for (int64_t i = 0; i < n; i++) {
      sn_rstream s = sn_rs_make(seed, (uint64_t)i);
      y[i] = (T)(sn_rs_gamma(&s, alpha) * beta);
    }
  });
  return SN_OK;
}

SAMPLER_OP(op_gamma, "_random_gamma", "random_gamma",
           "Draws samples from a gamma distribution with shape alpha and scale beta (mean "
           "alpha*beta).",
           5);

/* ------------------------------------------------------------------ */
/* poisson                                                             */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_poisson_params[] = {
    {"lam", SN_PT_FLOAT, "1", NULL, "Lambda parameter (rate) of the Poisson distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_poisson_check(const sn_params *p) {
  if (!(p->v[0].f >= 0))
    return sn_error(SN_ERR_ARG, "_random_poisson: lam must be non-negative, got %g", p->v[0].f);
  return SN_OK;
}
SAMPLER_INFER(op_poisson, 1, 3)

static int op_poisson_forward(sn_call *c) {
  SN_TRY(op_poisson_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double lam = c->p->v[0].f;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 32)
    for (int64_t i = 0; i < n; i++) {
      sn_rstream s = sn_rs_make(seed, (uint64_t)i);
      y[i] = (T)sn_rs_poisson(&s, lam);
    }
  });
  return SN_OK;
}

SAMPLER_OP(op_poisson, "_random_poisson", "random_poisson",
           "Draws samples from a Poisson distribution with rate lam (values are integers stored "
           "in a floating type).",
           4);

/* ------------------------------------------------------------------ */
/* negative binomial                                                   */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_negbin_params[] = {
    {"k", SN_PT_INT, "1", NULL, "Limit of unsuccessful experiments."},
    {"p", SN_PT_FLOAT, "1", NULL, "Failure probability in each experiment."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_negbin_check(const sn_params *p) {
  if (p->v[0].i < 0 || !(p->v[1].f > 0 && p->v[1].f <= 1))
    return sn_error(SN_ERR_ARG,
                    "_random_negative_binomial: need k >= 0 and p in (0, 1], got k = %lld, p = %g",
                    (long long)p->v[0].i, p->v[1].f);
  return SN_OK;
}
SAMPLER_INFER(op_negbin, 2, 4)

static int op_negbin_forward(sn_call *c) {
  SN_TRY(op_negbin_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double k = (double)c->p->v[0].i, prob = c->p->v[1].f;
  const double scale = (1.0 - prob) / prob;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 64)
    for (int64_t i = 0; i < n; i++) {
      sn_rstream s = sn_rs_make(seed, (uint64_t)i);
      const double lam = scale > 0 ? sn_rs_gamma(&s, k) * scale : 0.0;
      y[i] = (T)sn_rs_poisson(&s, lam);
    }
  });
  return SN_OK;
}

SAMPLER_OP(op_negbin, "_random_negative_binomial", "random_negative_binomial",
           "Draws samples from a negative binomial distribution with parameters k and p, as "
           "MXNet does: a Poisson draw whose rate is a gamma draw of shape k and scale "
           "(1-p)/p (mean k(1-p)/p). Values are integers stored in a floating type.",
           5);

/* ------------------------------------------------------------------ */
/* generalized negative binomial                                       */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_gennegbin_params[] = {
    {"mu", SN_PT_FLOAT, "1", NULL, "Mean of the negative binomial distribution."},
    {"alpha", SN_PT_FLOAT, "1", NULL,
     "Alpha (dispersion) parameter of the negative binomial distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    FLOAT_DTYPE_PARAM,
};

static int op_gennegbin_check(const sn_params *p) {
  if (!(p->v[0].f >= 0) || !(p->v[1].f >= 0))
    return sn_error(SN_ERR_ARG,
                    "_random_generalized_negative_binomial: mu and alpha must be non-negative");
  return SN_OK;
}
SAMPLER_INFER(op_gennegbin, 2, 4)

static int op_gennegbin_forward(sn_call *c) {
  SN_TRY(op_gennegbin_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const double mu = c->p->v[0].f, alpha = c->p->v[1].f;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  SN_DISPATCH_FLOAT(c->out[0]->dtype, T, {
    T *y = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 64)
    for (int64_t i = 0; i < n; i++) {
      sn_rstream s = sn_rs_make(seed, (uint64_t)i);
      const double lam = alpha == 0 ? mu : sn_rs_gamma(&s, 1.0 / alpha) * alpha * mu;
      y[i] = (T)sn_rs_poisson(&s, lam);
    }
  });
  return SN_OK;
}

SAMPLER_OP(op_gennegbin, "_random_generalized_negative_binomial",
           "random_generalized_negative_binomial",
           "Draws samples from a generalized negative binomial distribution with mean mu and "
           "dispersion alpha (variance mu + alpha*mu^2; Poisson when alpha is 0).",
           5);

/* ------------------------------------------------------------------ */
/* randint                                                             */
/* ------------------------------------------------------------------ */

static const sn_param_spec op_randint_params[] = {
    {"low", SN_PT_INT, NULL, NULL, "Lower bound of the distribution."},
    {"high", SN_PT_INT, NULL, NULL, "Upper bound of the distribution."},
    {"shape", SN_PT_SHAPE, "()", NULL, SHAPE_DOC},
    {"ctx", SN_PT_STRING, "", NULL, CTX_DOC},
    {"dtype", SN_PT_ENUM, "None", "None|int32|int64",
     "DType of the output in case this can't be inferred. Defaults to int32 if not defined "
     "(dtype=None)."},
};

static int op_randint_check(const sn_params *p) {
  if (!(p->v[0].i < p->v[1].i))
    return sn_error(SN_ERR_ARG, "_random_randint: high (%lld) must be greater than low (%lld)",
                    (long long)p->v[1].i, (long long)p->v[0].i);
  return SN_OK;
}

static int op_randint_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                                  int nout, sn_shape *aux, int naux) {
  (void)in, (void)nin, (void)nout, (void)aux, (void)naux;
  SN_TRY(op_randint_check(p));
  return sample_shape(p, 2, &out[0]);
}

static int op_randint_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out,
                                 int nout) {
  (void)in, (void)nin, (void)nout;
  return sample_type(p, 4, int_dtype_of, SN_I32, &out[0]);
}

static int op_randint_forward(sn_call *c) {
  SN_TRY(op_randint_check(c->p));
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int64_t lo = c->p->v[0].i;
  const double width = (double)c->p->v[1].i - (double)lo;
  const int64_t n = sn_tensor_size(c->out[0]);
  const uint64_t seed = c->seed;
  switch (c->out[0]->dtype) {
  case SN_I32: {
    if (lo < INT32_MIN || c->p->v[1].i - 1 > INT32_MAX)
      return sn_error(SN_ERR_ARG, "_random_randint: bounds do not fit in int32");
    int32_t *y = SN_PTR(int32_t, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++)
      y[i] = (int32_t)(lo + (int64_t)floor(width * sn_rand_uniform(seed, (uint64_t)i)));
    break;
  }
  case SN_I64: {
    int64_t *y = SN_PTR(int64_t, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++)
      y[i] = lo + (int64_t)floor(width * sn_rand_uniform(seed, (uint64_t)i));
    break;
  }
  default:
    return sn_error(SN_ERR_TYPE, "_random_randint: dtype %s is not supported (int32, int64)",
                    sn_dtype_name(c->out[0]->dtype));
  }
  return SN_OK;
}

SAMPLER_OP(op_randint, "_random_randint", "random_randint",
           "Draws integer samples uniformly from [low, high).", 5);

const sn_op *const sn_family_random[] = {&op_uniform, &op_normal,    &op_exponential,
                                         &op_gamma,   &op_poisson,   &op_negbin,
                                         &op_gennegbin, &op_randint, NULL};
