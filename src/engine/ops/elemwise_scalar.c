/* Element-wise ops between an array and a scalar parameter: _plus_scalar,
 * _minus_scalar, _rminus_scalar (scalar - x), _mul_scalar, _div_scalar,
 * _rdiv_scalar (scalar / x), _mod_scalar, _rmod_scalar, _power_scalar,
 * _rpower_scalar (scalar ^ x), _maximum_scalar, _minimum_scalar,
 * _hypot_scalar, the comparisons _equal_scalar ... _lesser_equal_scalar,
 * the logical _logical_and_scalar / _or / _xor, and smooth_l1.
 *
 * They reuse the binary functors of elemwise.h with one operand fixed.
 * Parameters follow MXNet 1.9's NumpyBinaryScalarParam: `scalar` (default
 * 1; MXNet <= 1.7 required it) and `is_int`, accepted so that newer JSON
 * loads, and without effect on floating-point data.  The scalar is
 * converted to the data's dtype before use, as in MXNet.
 *
 * MXNet semantics kept: mod takes the divisor's sign and x mod 0 = 0;
 * maximum/minimum send the gradient to x on ties; comparisons give 0/1 in
 * the input dtype with no gradient; the gradient of scalar ^ x is computed
 * from the output as y * log(scalar); smooth_l1 with sigma = scalar is
 * 0.5 (sigma x)^2 where |x| < 1 / sigma^2 and |x| - 0.5 / sigma^2
 * elsewhere. */
#include <string.h>

#include "../cpu.h"
#include "../op.h"
#include "elemwise.h"

enum { P_SCALAR, P_IS_INT };
#define EWS_IS_INT                                                                                 \
  {"is_int", SN_PT_BOOL, "True", NULL,                                                             \
   "Indicate whether scalar input is int type (written by MXNet >= 1.8; no effect on "             \
   "floating-point data)"}
static const sn_param_spec ews_params[] = {
    {"scalar", SN_PT_FLOAT, "1", NULL, "Scalar input value"},
    EWS_IS_INT,
};
static const sn_param_spec ews_params_sl1[] = {
    {"scalar", SN_PT_FLOAT, "1", NULL, "sigma: the quadratic region is |x| < 1 / sigma^2"},
    EWS_IS_INT,
};

/* What backward reads: nothing (the output gradient stands in for the
 * unused operand), the input, the output; or no gradient at all. */
enum { EWS_NONE, EWS_IN, EWS_OUT, EWS_NOGRAD };
/* Side of the gradient kernel: A = d/da with b the scalar, B = d/db with a
 * the scalar. */
enum { EWS_A, EWS_B };

typedef struct {
  int fn;   /* forward functor */
  int rev;  /* 0: f(x, s), 1: f(s, x) */
  int dep;  /* EWS_* */
  int gfn;  /* functor whose gradient is used */
  int side; /* EWS_A / EWS_B */
} ews_def;

/* X(id, name, aliases, functor, reversed, backward reads, gradient functor,
 *   side, what it computes) */
#define EWS_OPS(X)                                                                                 \
  X(plus, "_plus_scalar", "_PlusScalar", ADD, 0, NONE, ADD, A, "x + scalar")                       \
  X(minus, "_minus_scalar", "_MinusScalar", SUB, 0, NONE, SUB, A, "x - scalar")                    \
  X(rminus, "_rminus_scalar", "_RMinusScalar", SUB, 1, NONE, SUB, B, "scalar - x")                 \
  X(mul, "_mul_scalar", "_MulScalar", MUL, 0, NONE, MUL, A, "x * scalar")                          \
  X(div, "_div_scalar", "_DivScalar", DIV, 0, NONE, DIV, A, "x / scalar")                          \
  X(rdiv, "_rdiv_scalar", "_RDivScalar", DIV, 1, IN, DIV, B, "scalar / x")                         \
  X(mod, "_mod_scalar", "_ModScalar", MOD, 0, NONE, MOD, A,                                        \
    "x modulo scalar (the sign of scalar, like R's %%; x mod 0 is 0)")                             \
  X(rmod, "_rmod_scalar", "_RModScalar", MOD, 1, IN, MOD, B,                                       \
    "scalar modulo x (the sign of x, like R's %%; scalar mod 0 is 0)")                             \
  X(power, "_power_scalar", "_PowerScalar", POWER, 0, IN, POWER, A, "x ^ scalar")                  \
  X(rpower, "_rpower_scalar", "_RPowerScalar", POWER, 1, OUT, RPOW_Y, A, "scalar ^ x")             \
  X(maximum, "_maximum_scalar", "_MaximumScalar", MAXIMUM, 0, IN, MAXIMUM, A,                      \
    "max(x, scalar) (the gradient goes to x where x >= scalar)")                                   \
  X(minimum, "_minimum_scalar", "_MinimumScalar", MINIMUM, 0, IN, MINIMUM, A,                      \
    "min(x, scalar) (the gradient goes to x where x <= scalar)")                                   \
  X(hypot, "_hypot_scalar", "_HypotScalar", HYPOT, 0, IN, HYPOT, A, "sqrt(x^2 + scalar^2)")        \
  X(equal, "_equal_scalar", "_EqualScalar", EQUAL, 0, NOGRAD, EQUAL, A,                            \
    "x == scalar as 1 or 0 in x's dtype (no gradient)")                                            \
  X(not_equal, "_not_equal_scalar", "_NotEqualScalar", NOT_EQUAL, 0, NOGRAD, NOT_EQUAL, A,         \
    "x != scalar as 1 or 0 in x's dtype (no gradient)")                                            \
  X(greater, "_greater_scalar", "_GreaterScalar", GREATER, 0, NOGRAD, GREATER, A,                  \
    "x > scalar as 1 or 0 in x's dtype (no gradient)")                                             \
  X(greater_equal, "_greater_equal_scalar", "_GreaterEqualScalar", GREATER_EQUAL, 0, NOGRAD,       \
    GREATER_EQUAL, A, "x >= scalar as 1 or 0 in x's dtype (no gradient)")                          \
  X(lesser, "_lesser_scalar", "_LesserScalar", LESSER, 0, NOGRAD, LESSER, A,                       \
    "x < scalar as 1 or 0 in x's dtype (no gradient)")                                             \
  X(lesser_equal, "_lesser_equal_scalar", "_LesserEqualScalar", LESSER_EQUAL, 0, NOGRAD,           \
    LESSER_EQUAL, A, "x <= scalar as 1 or 0 in x's dtype (no gradient)")                           \
  X(logical_and, "_logical_and_scalar", "_LogicalAndScalar", LOGICAL_AND, 0, NOGRAD,               \
    LOGICAL_AND, A, "logical x and scalar (nonzero is true) as 1 or 0 (no gradient)")              \
  X(logical_or, "_logical_or_scalar", "_LogicalOrScalar", LOGICAL_OR, 0, NOGRAD, LOGICAL_OR,       \
    A, "logical x or scalar (nonzero is true) as 1 or 0 (no gradient)")                            \
  X(logical_xor, "_logical_xor_scalar", "_LogicalXorScalar", LOGICAL_XOR, 0, NOGRAD,               \
    LOGICAL_XOR, A, "logical x xor scalar (nonzero is true) as 1 or 0 (no gradient)")

/* The scalar in the data's dtype; *sp points at it. */
typedef union {
  float f;
  double d;
} ews_scalar;
static const void *ews_scalar_ptr(const sn_call *c, int ti, ews_scalar *s) {
  const double v = c->p->v[P_SCALAR].f;
  if (ti) {
    s->d = v;
    return &s->d;
  }
  s->f = (float)v;
  return &s->f;
}

static int ews_forward(sn_call *c, const ews_def *d) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *y = c->out[0];
  const sn_ew_binfn *f = &sn_ew_binfns[d->fn];
  ews_scalar sv;
  int ti = 0;
  SN_TRY(sn_ew_dtype_index(sn_ew_name(c), y->dtype, &ti));
  const void *s = ews_scalar_ptr(c, ti, &sv), *x = sn_tensor_data(c->in[0]);
  sn_ew_run_flat(f->fwd[ti][d->rev ? SN_EW_SV : SN_EW_VS], sn_dtype_size(y->dtype), f->costf,
                 sn_tensor_size(y), sn_tensor_data(y), NULL, d->rev ? s : x, d->rev ? x : s,
                 NULL, !d->rev, d->rev);
  return SN_OK;
}

static int ews_backward(sn_call *c, const ews_def *d) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *og = c->ograd[0], *ig = c->igrad[0];
  const sn_ew_binfn *f = &sn_ew_binfns[d->gfn];
  const sn_tensor *v = d->dep == EWS_IN ? c->in[0] : (d->dep == EWS_OUT ? c->out[0] : og);
  ews_scalar sv;
  int ti = 0;
  SN_TRY(sn_ew_dtype_index(sn_ew_name(c), og->dtype, &ti));
  const void *s = ews_scalar_ptr(c, ti, &sv), *vp = sn_tensor_data(v);
  const int a_moves = d->side == EWS_A;
  const sn_ew_kern k = a_moves ? f->ga[ti][SN_EW_VS] : f->gb[ti][SN_EW_SV];
  sn_ew_run_flat(k, sn_dtype_size(og->dtype), f->costg, sn_tensor_size(og), sn_tensor_data(ig),
                 sn_tensor_data(og), a_moves ? vp : s, a_moves ? s : vp, NULL, a_moves,
                 !a_moves);
  return SN_OK;
}

static const char *const ews_inputs[] = {"data", NULL};

#define EWS_FLAGS_NONE 0
#define EWS_FLAGS_IN SN_DEP_IN
#define EWS_FLAGS_OUT SN_DEP_OUT
#define EWS_FLAGS_NOGRAD SN_OP_NO_GRAD
#define EWS_OP_T(ID, NAME, ALIASES, PARAMS, DEP, DOC)                                              \
  static int ews_fwd_##ID(sn_call *c) { return ews_forward(c, &ews_def_##ID); }                    \
  static int ews_bwd_##ID(sn_call *c) { return ews_backward(c, &ews_def_##ID); }                   \
  static const sn_op ews_op_##ID = {                                                               \
      .name = NAME,                                                                                \
      .aliases = ALIASES,                                                                          \
      .doc = DOC,                                                                                  \
      .params = PARAMS,                                                                            \
      .nparams = 2,                                                                                \
      .inputs = ews_inputs,                                                                        \
      .infer_shape = sn_infer_same_shape,                                                          \
      .forward_cpu = ews_fwd_##ID,                                                                 \
      .backward_cpu = EWS_##DEP == EWS_NOGRAD ? NULL : ews_bwd_##ID,                               \
      .flags = EWS_FLAGS_##DEP,                                                                    \
      .inplace_in = SN_INPLACE(0),                                                                             \
      .inplace_grad = SN_INPLACE(EWS_##DEP == EWS_NOGRAD ? -1 : 1)};
#define EWS_OP(ID, NAME, ALIASES, FN, REV, DEP, GFN, SIDE, WHAT)                                   \
  static const ews_def ews_def_##ID = {SN_EWB_##FN, REV, EWS_##DEP, SN_EWB_##GFN, EWS_##SIDE};     \
  EWS_OP_T(ID, NAME, ALIASES, ews_params, DEP, "Element-wise " WHAT ", for an array x and "        \
           "the scalar parameter `scalar`.")
EWS_OPS(EWS_OP)

static const ews_def ews_def_smooth_l1 = {SN_EWB_SMOOTH_L1, 0, EWS_IN, SN_EWB_SMOOTH_L1, EWS_A};
EWS_OP_T(smooth_l1, "smooth_l1", NULL, ews_params_sl1, IN,
         "Smooth L1 loss of each element, with sigma = scalar: f(x) = 0.5 (sigma x)^2 where "
         "|x| < 1 / sigma^2, else |x| - 0.5 / sigma^2. The gradient is sigma^2 x inside that "
         "region and sign(x) outside.")

#define EWS_LIST(ID, ...) &ews_op_##ID,
const sn_op *const sn_family_elemwise_scalar[] = {EWS_OPS(EWS_LIST) &ews_op_smooth_l1, NULL};
