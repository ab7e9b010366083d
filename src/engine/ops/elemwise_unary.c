/* Unary element-wise ops: y = f(x) for math functions (sqrt, exp, log,
 * tanh, sigmoid, relu, trigonometric, rounding, erf ...), clip and
 * hard_sigmoid, and the copy-like ops _copy (identity), BlockGrad
 * (stop_gradient), zeros_like, ones_like and Cast.
 *
 * Backward reads the output where the derivative is naturally written in
 * terms of it (exp, expm1, sqrt, rsqrt, cbrt, rcbrt, reciprocal, tanh,
 * sigmoid, relu, tan), so the planner may free the input; otherwise it
 * reads the input.  Rounding ops, sign, logical_not, BlockGrad, zeros_like
 * and ones_like have no gradient.
 *
 * MXNet quirks kept:
 * - round rounds halves away from zero (R's round() rounds them to even);
 *   rint rounds halves down (rint(2.5) = 2, rint(-2.5) = -3); fix = trunc.
 * - sign(NaN) = 0; relu and its gradient propagate NaN.
 * - clip's a_min / a_max and hard_sigmoid's alpha / beta are float32
 *   values even for float64 data; clip passes the gradient where
 *   a_min <= x <= a_max.
 * - Cast's gradient is the output gradient cast back to the input dtype.
 *
 * float32 tanh and sigmoid use vectorisable approximations (elemwise.h,
 * within 2.5 ulp); float64 and every other transcendental use libm. */
#include <string.h>

#include "../cpu.h"
#include "../op.h"
#include "elemwise.h"

/* X(id, name, aliases, gradient kind, cost of f, cost of the gradient,
 *   params, f(x), gradient, doc); costs in {1, 2, 4, 8, 16}, >= 4 for a
 *   libm call.
 * The gradient is the input gradient given g, the output gradient element
 * (selects such as `x > 0 ? g : 0` vectorise where `g * (x > 0)` does not).
 * Gradient kinds: IN (written in terms of x), OUT (in terms of y),
 * CONST (a constant), NONE (no gradient).  p0 and p1 are the op's first
 * two parameters (float32-rounded, as MXNet's real_t). */
#define EWU_OPS(X)                                                                                 \
  X(sqrt, "sqrt", NULL, OUT, 4, 1, none, SN_EW_M(sqrt)(x), g * (SN_EW_K(0.5) / y),                 \
    "Element-wise square root, sqrt(x).")                                                          \
  X(rsqrt, "rsqrt", NULL, OUT, 4, 1, none, SN_EW_K(1) / SN_EW_M(sqrt)(x),                          \
    g * (SN_EW_K(-0.5) * y * y * y), "Element-wise reciprocal square root, 1 / sqrt(x).")          \
  X(cbrt, "cbrt", NULL, OUT, 8, 1, none, SN_EW_M(cbrt)(x),                                         \
    g * (SN_EW_K(1) / (SN_EW_K(3) * y * y)),                                                       \
    "Element-wise cube root, x^(1/3).")                                                            \
  X(rcbrt, "rcbrt", NULL, OUT, 8, 1, none, SN_EW_K(1) / SN_EW_M(cbrt)(x),                          \
    g * (-(y * y * y * y) / SN_EW_K(3)), "Element-wise reciprocal cube root, 1 / x^(1/3).")        \
  X(exp, "exp", NULL, OUT, 8, 1, none, SN_EW_M(exp)(x), g * y, "Element-wise exponential, e^x.")   \
  X(expm1, "expm1", NULL, OUT, 8, 1, none, SN_EW_M(expm1)(x), g * (y + 1),                         \
    "Element-wise exp(x) - 1, accurate for small x.")                                              \
  X(log, "log", NULL, IN, 8, 1, none, SN_EW_M(log)(x), g * (SN_EW_K(1) / x),                       \
    "Element-wise natural logarithm.")                                                             \
  X(log1p, "log1p", NULL, IN, 8, 1, none, SN_EW_M(log1p)(x), g * (SN_EW_K(1) / (1 + x)),           \
    "Element-wise log(1 + x), accurate for small x.")                                              \
  X(log2, "log2", NULL, IN, 8, 1, none, SN_EW_M(log2)(x), g * (SN_EW_K(1.4426950408889634) / x),   \
    "Element-wise base-2 logarithm.")                                                              \
  X(log10, "log10", NULL, IN, 8, 1, none, SN_EW_M(log10)(x),                                       \
    g * (SN_EW_K(0.4342944819032518) / x),                                                         \
    "Element-wise base-10 logarithm.")                                                             \
  X(abs, "abs", NULL, IN, 1, 1, none, SN_EW_M(fabs)(x), x > 0 ? g : (x < 0 ? -g : 0),              \
    "Element-wise absolute value.")                                                                \
  X(sign, "sign", NULL, NONE, 1, 1, none, x > 0 ? 1 : (x < 0 ? -1 : 0), 0,                         \
    "Element-wise sign: -1, 0 or 1 (0 for NaN). No gradient.")                                     \
  X(square, "square", NULL, IN, 1, 1, none, x * x, g * (2 * x), "Element-wise square, x^2.")       \
  X(reciprocal, "reciprocal", NULL, OUT, 1, 1, none, SN_EW_K(1) / x, g * -(y * y),                 \
    "Element-wise reciprocal, 1 / x.")                                                             \
  X(negative, "negative", NULL, CONST, 1, 1, none, -x, -g, "Element-wise negation, -x.")           \
  X(tanh, "tanh", NULL, OUT, F8, 1, none, SN_EW_M(sn_ew_tanh)(x), g * (1 - y * y),                 \
    "Element-wise hyperbolic tangent.")                                                            \
  X(sigmoid, "sigmoid", NULL, OUT, F8, 1, none, SN_EW_M(sn_ew_sigmoid)(x), g * (y * (1 - y)),      \
    "Element-wise logistic sigmoid, 1 / (1 + exp(-x)).")                                           \
  X(relu, "relu", NULL, OUT, 1, 1, none, (x > 0 || x != x) ? x : 0,                                \
    y > 0 ? g : (y == y ? 0 : y),                                                                  \
    "Element-wise rectified linear unit, max(x, 0) (NaN propagates).")                             \
  X(softsign, "softsign", NULL, IN, 2, 2, none, x / (1 + SN_EW_M(fabs)(x)),                        \
    g / ((1 + SN_EW_M(fabs)(x)) * (1 + SN_EW_M(fabs)(x))),                                         \
    "Element-wise softsign, x / (1 + |x|).")                                                       \
  X(sin, "sin", NULL, IN, 8, 8, none, SN_EW_M(sin)(x), g * SN_EW_M(cos)(x), "Element-wise sine.")  \
  X(cos, "cos", NULL, IN, 8, 8, none, SN_EW_M(cos)(x), g * -SN_EW_M(sin)(x),                       \
    "Element-wise cosine.")                                                                        \
  X(tan, "tan", NULL, OUT, 8, 1, none, SN_EW_M(tan)(x), g * (1 + y * y), "Element-wise tangent.")  \
  X(arcsin, "arcsin", NULL, IN, 8, 4, none, SN_EW_M(asin)(x),                                      \
    g * (SN_EW_K(1) / SN_EW_M(sqrt)(1 - x * x)), "Element-wise inverse sine.")                     \
  X(arccos, "arccos", NULL, IN, 8, 4, none, SN_EW_M(acos)(x),                                      \
    g * (SN_EW_K(-1) / SN_EW_M(sqrt)(1 - x * x)), "Element-wise inverse cosine.")                  \
  X(arctan, "arctan", NULL, IN, 8, 1, none, SN_EW_M(atan)(x), g * (SN_EW_K(1) / (1 + x * x)),      \
    "Element-wise inverse tangent.")                                                               \
  X(sinh, "sinh", NULL, IN, 8, 8, none, SN_EW_M(sinh)(x), g * SN_EW_M(cosh)(x),                    \
    "Element-wise hyperbolic sine.")                                                               \
  X(cosh, "cosh", NULL, IN, 8, 8, none, SN_EW_M(cosh)(x), g * SN_EW_M(sinh)(x),                    \
    "Element-wise hyperbolic cosine.")                                                             \
  X(arcsinh, "arcsinh", NULL, IN, 8, 4, none, SN_EW_M(asinh)(x),                                   \
    g * (SN_EW_K(1) / SN_EW_M(hypot)(x, SN_EW_K(1))), "Element-wise inverse hyperbolic sine.")     \
  X(arccosh, "arccosh", NULL, IN, 8, 4, none, SN_EW_M(acosh)(x),                                   \
    g * (SN_EW_K(1) / SN_EW_M(sqrt)(x * x - 1)), "Element-wise inverse hyperbolic cosine.")        \
  X(arctanh, "arctanh", NULL, IN, 8, 1, none, SN_EW_M(atanh)(x), g * (SN_EW_K(1) / (1 - x * x)),   \
    "Element-wise inverse hyperbolic tangent.")                                                    \
  X(degrees, "degrees", NULL, CONST, 1, 1, none, SN_EW_K(57.29577951308232) * x,                   \
    g * SN_EW_K(57.29577951308232), "Element-wise conversion from radians to degrees.")            \
  X(radians, "radians", NULL, CONST, 1, 1, none, SN_EW_K(0.017453292519943295) * x,                \
    g * SN_EW_K(0.017453292519943295), "Element-wise conversion from degrees to radians.")         \
  X(floor, "floor", NULL, NONE, 1, 1, none, SN_EW_M(floor)(x), 0,                                  \
    "Element-wise floor, the largest integer <= x. No gradient.")                                  \
  X(ceil, "ceil", NULL, NONE, 1, 1, none, SN_EW_M(ceil)(x), 0,                                     \
    "Element-wise ceiling, the smallest integer >= x. No gradient.")                               \
  X(round, "round", NULL, NONE, 1, 1, none, SN_EW_M(round)(x), 0,                                  \
    "Element-wise rounding to the nearest integer, halves away from zero (unlike R's "             \
    "round()). No gradient.")                                                                      \
  X(rint, "rint", NULL, NONE, 1, 1, none,                                                          \
    x - SN_EW_M(floor)(x) <= SN_EW_M(ceil)(x) - x ? SN_EW_M(floor)(x) : SN_EW_M(ceil)(x), 0,       \
    "Element-wise rounding to the nearest integer, halves down (rint(2.5) = 2, rint(-2.5) = "      \
    "-3), as MXNet does. No gradient.")                                                            \
  X(trunc, "trunc", NULL, NONE, 1, 1, none, SN_EW_M(trunc)(x), 0,                                  \
    "Element-wise truncation towards zero. No gradient.")                                          \
  X(fix, "fix", NULL, NONE, 1, 1, none, SN_EW_M(trunc)(x), 0,                                      \
    "Element-wise rounding towards zero (same as trunc). No gradient.")                            \
  X(erf, "erf", NULL, IN, 8, 8, none, SN_EW_M(erf)(x),                                             \
    g * (SN_EW_K(1.1283791670955126) * SN_EW_M(exp)(-x * x)),                                      \
    "Element-wise Gauss error function.")                                                          \
  X(logical_not, "logical_not", NULL, NONE, 1, 1, none, x != 0 ? 0 : 1, 0,                         \
    "Element-wise logical not: 1 where x is 0, else 0. No gradient.")                              \
  X(clip, "clip", NULL, IN, 1, 1, clip, x > p1 ? p1 : (x < p0 ? p0 : x),                           \
    (x > p1 || x < p0) ? 0 : g,                                                                    \
    "Clips values to [a_min, a_max]: x > a_max gives a_max, x < a_min gives a_min. The "           \
    "gradient passes where a_min <= x <= a_max and is zero elsewhere.")                            \
  X(hard_sigmoid, "hard_sigmoid", NULL, IN, 1, 1, hsig,                                            \
    p0 * x + p1 > 1 ? 1 : (p0 * x + p1 < 0 ? 0 : p0 * x + p1),                                     \
    (p0 * x + p1 > 0 && p0 * x + p1 < 1) ? g * p0 : 0,                                             \
    "Element-wise hard sigmoid, max(0, min(1, alpha * x + beta)).")

/* ---- parameters ---- */
#define ewu_params_none NULL
enum { ewu_nparams_none = 0, ewu_nparams_clip = 2, ewu_nparams_hsig = 2 };
static const sn_param_spec ewu_params_clip[] = {
    {"a_min", SN_PT_FLOAT, NULL, NULL, "Minimum value"},
    {"a_max", SN_PT_FLOAT, NULL, NULL, "Maximum value"},
};
static const sn_param_spec ewu_params_hsig[] = {
    {"alpha", SN_PT_FLOAT, "0.2", NULL, "Slope of hard sigmoid"},
    {"beta", SN_PT_FLOAT, "0.5", NULL, "Bias of hard sigmoid."},
};

/* ---- kernels ---- */
#define EWU_PROLOGUE(TY)                                                                           \
  typedef TY T;                                                                                    \
  T *o = o_;                                                                                       \
  const T *gp = g_, *a = a_;                                                                       \
  const T p0 = (T)prm[0], p1 = (T)prm[1];                                                          \
  (void)gp;                                                                                        \
  (void)b_;                                                                                        \
  (void)p0;                                                                                        \
  (void)p1;
#define EWU_KSIG                                                                                   \
  (void *o_, const void *g_, const void *a_, const void *b_, int64_t n, const double *prm)
/* forward: o = f(x) */
#define EWU_FWD_T(ID, TY, SX, CF, F)                                                               \
  static void ewu_kf_##ID##_##SX EWU_KSIG {                                                        \
    EWU_PROLOGUE(TY)                                                                               \
    SN_EW_SIMD_IF_##CF(SX) for (int64_t i = 0; i < n; i++) {                                       \
      const T x = a[i];                                                                            \
      o[i] = (T)(F);                                                                               \
    }                                                                                              \
  }
/* backward: o = G(g, v), v the input or the output */
#define EWU_GRAD_T(ID, TY, SX, CG, V, G)                                                           \
  static void ewu_kg_##ID##_##SX EWU_KSIG {                                                        \
    EWU_PROLOGUE(TY)                                                                               \
    SN_EW_SIMD_IF_##CG(SX) for (int64_t i = 0; i < n; i++) {                                       \
      const T V = a[i], g = gp[i];                                                                 \
      (void)V;                                                                                     \
      o[i] = (T)(G);                                                                               \
    }                                                                                              \
  }
#define EWU_GRADK_IN(ID, TY, SX, CG, G) EWU_GRAD_T(ID, TY, SX, CG, x, G)
#define EWU_GRADK_OUT(ID, TY, SX, CG, G) EWU_GRAD_T(ID, TY, SX, CG, y, G)
#define EWU_GRADK_CONST(ID, TY, SX, CG, G) EWU_GRAD_T(ID, TY, SX, CG, x, G)
#define EWU_GRADK_NONE(ID, TY, SX, CG, G)
#define EWU_KERNELS(ID, NAME, ALIASES, KIND, CF, CG, PT, F, G, DOC)                                \
  EWU_FWD_T(ID, float, f32, CF, F)                                                                 \
  EWU_FWD_T(ID, double, f64, CF, F)                                                                \
  EWU_GRADK_##KIND(ID, float, f32, CG, G)                                                          \
  EWU_GRADK_##KIND(ID, double, f64, CG, G)
EWU_OPS(EWU_KERNELS)

/* ---- op glue ---- */
enum { EWU_IN, EWU_OUT, EWU_CONST, EWU_NONE };

typedef struct {
  sn_ew_kern fwd[2], bwd[2]; /* [dtype index] */
  int kind, costf, costg;
} ewu_fn;

/* The op's first two float parameters, rounded to float32 like MXNet's real_t. */
static void ewu_prm(const sn_params *p, double prm[2]) {
  prm[0] = prm[1] = 0;
  for (int k = 0; p && k < 2 && k < p->n; k++)
    prm[k] = (float)p->v[k].f;
}

static int ewu_forward(sn_call *c, const ewu_fn *f) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *y = c->out[0];
  double prm[2];
  int ti = 0;
  SN_TRY(sn_ew_dtype_index(sn_ew_name(c), y->dtype, &ti));
  ewu_prm(c->p, prm);
  sn_ew_run_flat(f->fwd[ti], sn_dtype_size(y->dtype), f->costf, sn_tensor_size(y),
                 sn_tensor_data(y), NULL, sn_tensor_data(c->in[0]), NULL, prm, 1, 0);
  return SN_OK;
}

static int ewu_backward(sn_call *c, const ewu_fn *f) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *ig = c->igrad[0], *og = c->ograd[0];
  /* CONST derivatives read nothing: the output gradient stands in for v */
  const sn_tensor *v = f->kind == EWU_IN ? c->in[0] : (f->kind == EWU_OUT ? c->out[0] : og);
  double prm[2];
  int ti = 0;
  SN_TRY(sn_ew_dtype_index(sn_ew_name(c), og->dtype, &ti));
  ewu_prm(c->p, prm);
  sn_ew_run_flat(f->bwd[ti], sn_dtype_size(og->dtype), f->costg, sn_tensor_size(og),
                 sn_tensor_data(ig), sn_tensor_data(og), sn_tensor_data(v), NULL, prm, 1, 0);
  return SN_OK;
}

static const char *const ewu_inputs[] = {"data", NULL};

#define EWU_BWDK_IN(ID) {ewu_kg_##ID##_f32, ewu_kg_##ID##_f64}
#define EWU_BWDK_OUT(ID) EWU_BWDK_IN(ID)
#define EWU_BWDK_CONST(ID) EWU_BWDK_IN(ID)
#define EWU_BWDK_NONE(ID) {NULL, NULL}
#define EWU_BWD_IN(ID) ewu_bwd_##ID
#define EWU_BWD_OUT(ID) ewu_bwd_##ID
#define EWU_BWD_CONST(ID) ewu_bwd_##ID
#define EWU_BWD_NONE(ID) NULL
#define EWU_BWDFN_IN(ID)                                                                           \
  static int ewu_bwd_##ID(sn_call *c) { return ewu_backward(c, &ewu_fn_##ID); }
#define EWU_BWDFN_OUT(ID) EWU_BWDFN_IN(ID)
#define EWU_BWDFN_CONST(ID) EWU_BWDFN_IN(ID)
#define EWU_BWDFN_NONE(ID)
#define EWU_FLAGS_IN SN_DEP_IN
#define EWU_FLAGS_OUT SN_DEP_OUT
#define EWU_FLAGS_CONST 0
#define EWU_FLAGS_NONE SN_OP_NO_GRAD
#define EWU_IPG_IN 1
#define EWU_IPG_OUT 1
#define EWU_IPG_CONST 1
#define EWU_IPG_NONE -1

/* An op with one input, "data", whose output has the input's shape;
 * extra designated initializers may follow. */
#define EWU_SNOP(NAME, ALIASES, DOC, FWD, BWD, FLAGS, INPLACE_IN, INPLACE_GRAD, ...)               \
  {.name = NAME,                                                                                   \
   .aliases = ALIASES,                                                                             \
   .doc = DOC,                                                                                     \
   .inputs = ewu_inputs,                                                                           \
   .infer_shape = sn_infer_same_shape,                                                             \
   .forward_cpu = FWD,                                                                             \
   .backward_cpu = BWD,                                                                            \
   .flags = FLAGS,                                                                                 \
   .inplace_in = SN_INPLACE(INPLACE_IN),                                                                       \
   .inplace_grad = SN_INPLACE(INPLACE_GRAD),                                                                   \
   __VA_ARGS__}

#define EWU_OP(ID, NAME, ALIASES, KIND, CF, CG, PT, F, G, DOC)                                     \
  static const ewu_fn ewu_fn_##ID = {{ewu_kf_##ID##_f32, ewu_kf_##ID##_f64},                       \
                                     EWU_BWDK_##KIND(ID), EWU_##KIND, SN_EW_COST_##CF,             \
                                     SN_EW_COST_##CG};                                             \
  static int ewu_fwd_##ID(sn_call *c) { return ewu_forward(c, &ewu_fn_##ID); }                     \
  EWU_BWDFN_##KIND(ID)                                                                             \
  static const sn_op ewu_op_##ID =                                                                 \
      EWU_SNOP(NAME, ALIASES, DOC, ewu_fwd_##ID, EWU_BWD_##KIND(ID), EWU_FLAGS_##KIND, 0,          \
               EWU_IPG_##KIND, .params = ewu_params_##PT, .nparams = ewu_nparams_##PT);
EWU_OPS(EWU_OP)

/* ---- copy-like ops: any dtype ---- */

static int ewc_copy(sn_tensor *dst, const sn_tensor *src) {
  if (dst->dtype != src->dtype)
    return sn_tensor_copy(dst, src);
  if (sn_tensor_data(dst) != sn_tensor_data(src))
    memcpy(sn_tensor_data(dst), sn_tensor_data(src), sn_tensor_bytes(src));
  return SN_OK;
}

static int ewc_copy_fwd(sn_call *c) {
  return c->req[0] == SN_REQ_NULL ? SN_OK : ewc_copy(c->out[0], c->in[0]);
}
static int ewc_copy_bwd(sn_call *c) {
  return c->req[0] == SN_REQ_NULL ? SN_OK : ewc_copy(c->igrad[0], c->ograd[0]);
}
static int ewc_zeros_fwd(sn_call *c) {
  if (c->req[0] != SN_REQ_NULL)
    memset(sn_tensor_data(c->out[0]), 0, sn_tensor_bytes(c->out[0]));
  return SN_OK;
}
static int ewc_ones_fwd(sn_call *c) {
  return c->req[0] == SN_REQ_NULL ? SN_OK : sn_tensor_fill(c->out[0], 1.0);
}

static const sn_param_spec ewc_cast_params[] = {
    {"dtype", SN_PT_DTYPE, NULL, NULL, "Output data type."},
};

static int ewc_cast_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)in;
  (void)nin;
  (void)nout;
  const sn_dtype want = (sn_dtype)p->v[0].i;
  if (out[0] != SN_DTYPE_UNKNOWN && out[0] != want)
    return sn_error(SN_ERR_TYPE, "Cast: output dtype %s conflicts with dtype = %s",
                    sn_dtype_name(out[0]), sn_dtype_name(want));
  out[0] = want;
  return SN_OK;
}

static const sn_op ewc_copy_op =
    EWU_SNOP("_copy", "identity",
             "Returns a copy of the input (identity); the gradient passes through unchanged.",
             ewc_copy_fwd, ewc_copy_bwd, 0, 0, 1, );
static const sn_op ewc_blockgrad_op =
    EWU_SNOP("BlockGrad", "stop_gradient",
             "Returns the input unchanged and stops the gradient: nothing flows back to the "
             "input, whose gradient is zero.",
             ewc_copy_fwd, NULL, SN_OP_NO_GRAD, 0, -1, );
static const sn_op ewc_zeros_op =
    EWU_SNOP("zeros_like", NULL,
             "Returns an array of zeros with the shape and dtype of the input. No gradient.",
             ewc_zeros_fwd, NULL, SN_OP_NO_GRAD, -1, -1, );
static const sn_op ewc_ones_op =
    EWU_SNOP("ones_like", NULL,
             "Returns an array of ones with the shape and dtype of the input. No gradient.",
             ewc_ones_fwd, NULL, SN_OP_NO_GRAD, -1, -1, );
static const sn_op ewc_cast_op =
    EWU_SNOP("Cast", "cast",
             "Casts all elements of the input to a new dtype. The gradient is the output "
             "gradient cast back to the input's dtype.",
             ewc_copy_fwd, ewc_copy_bwd, 0, -1, 1, .params = ewc_cast_params, .nparams = 1,
             .infer_type = ewc_cast_type);

#define EWU_LIST(ID, ...) &ewu_op_##ID,
const sn_op *const sn_family_elemwise_unary[] = {
    EWU_OPS(EWU_LIST) &ewc_copy_op, &ewc_blockgrad_op, &ewc_zeros_op, &ewc_ones_op, &ewc_cast_op,
    NULL};
