/* Private machinery shared by the element-wise op families
 * (elemwise_unary.c, elemwise_binary.c, elemwise_scalar.c).
 *
 * Kernels are generated from small functor tables by macros: every
 * element-wise loop in the three files is one of the loops written here or
 * in elemwise_binary.c, instantiated per functor and per dtype.
 *
 * - sn_ew_kern: one contiguous run, o[i] = f(g[i], a[i], b[i]) where g is the
 *   output gradient (backward) and a or b may be a single fixed element
 *   (the "vs" / "sv" variants).  Cheap loops are `omp simd`, so they
 *   vectorise at R's default -O2 without restrict (gcc 12 -O2 does not
 *   vectorise loops that need an epilogue or alias checks); in-place use,
 *   o == a, is safe as every element is read before it is written.
 * - sn_ew_plan / sn_ew_run: splits an element-wise broadcast into contiguous
 *   runs (adjacent dimensions with the same broadcast pattern are merged, so
 *   same-shape, row-vector and scalar operands each become a handful of long
 *   runs) and runs them in parallel chunks.
 * - sn_ew_reduce_sum: sums an output-shaped array over the broadcast axes of
 *   an input (the backward of broadcasting).
 * - the binary functor table (forward, d/da, d/db), used by the same-shape,
 *   broadcasting and scalar op families. */
#ifndef SN_OPS_ELEMWISE_H
#define SN_OPS_ELEMWISE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../cpu.h"

#ifdef _OPENMP
#define SN_EW_SIMD SN_PRAGMA(omp simd)
#else
#define SN_EW_SIMD
#endif

/* Loop costs, per element: 1 (an add) ... 16 (pow).  Loops of cost 1 or 2
 * call no libm function and get `omp simd` (clang warns about simd loops
 * it cannot vectorise); F8 is a libm call in float64 but a vectorisable
 * function (below) in float32.  Use: SN_EW_SIMD_IF_##COST(SX), SX the
 * type suffix f32 or f64. */
#define SN_EW_SIMD_IF_1(SX) SN_EW_SIMD
#define SN_EW_SIMD_IF_2(SX) SN_EW_SIMD
#define SN_EW_SIMD_IF_4(SX)
#define SN_EW_SIMD_IF_8(SX)
#define SN_EW_SIMD_IF_16(SX)
#define SN_EW_SIMD_IF_F8(SX) SN_EW_SIMD_IF_F8_##SX
#define SN_EW_SIMD_IF_F8_f32 SN_EW_SIMD
#define SN_EW_SIMD_IF_F8_f64
#define SN_EW_COST_1 1
#define SN_EW_COST_2 2
#define SN_EW_COST_4 4
#define SN_EW_COST_8 8
#define SN_EW_COST_16 16
#define SN_EW_COST_F8 8

/* Elements per parallel task (a run longer than this is split). */
#define SN_EW_CHUNK 8192

/* Inside a generated kernel T is the element type: SN_EW_M(exp)(x) is expf
 * or exp, SN_EW_K(0.5) a constant of type T. */
#define SN_EW_M(fn) _Generic((T)0, float: fn##f, default: fn)
#define SN_EW_K(v) ((T)(v))

/* One contiguous run of n elements.  g: output gradient (NULL in forward);
 * a, b: operands (b NULL for unary kernels); prm: op parameters. */
typedef void (*sn_ew_kern)(void *o, const void *g, const void *a, const void *b, int64_t n,
                           const double *prm);

/* Kernel variants by which operands move along a run. */
enum { SN_EW_VV = 0, SN_EW_VS = 1, SN_EW_SV = 2 };

typedef struct {
  int variant;   /* SN_EW_VV / VS / SV: which of a, b move along a run */
  int64_t inner; /* run length */
  int64_t rows;  /* number of runs */
  int nd;        /* outer dimensions, innermost first */
  int64_t dim[SN_MAX_DIMS], sa[SN_MAX_DIMS], sb[SN_MAX_DIMS]; /* sizes, element strides */
} sn_ew_plan;

/* n contiguous elements: a moves when va, b moves when vb. */
void sn_ew_plan_flat(sn_ew_plan *pl, int64_t n, int va, int vb);
/* out = broadcast(a, b); shapes in C order, left-padded with ones. */
int sn_ew_plan_bcast(sn_ew_plan *pl, const sn_shape *a, const sn_shape *b, const sn_shape *out);
/* Runs k over the plan.  esz: element size; cost: rough per-element cost
 * (1 for an add, ~10 for a transcendental) that decides the threading. */
void sn_ew_run(const sn_ew_plan *pl, sn_ew_kern k, size_t esz, int cost, void *o, const void *g,
               const void *a, const void *b, const double *prm);
/* Runs k over n contiguous elements (unary and scalar ops). */
static inline void sn_ew_run_flat(sn_ew_kern k, size_t esz, int cost, int64_t n, void *o,
                                  const void *g, const void *a, const void *b,
                                  const double *prm, int va, int vb) {
  sn_ew_plan pl;
  sn_ew_plan_flat(&pl, n, va, vb);
  sn_ew_run(&pl, k, esz, cost, o, g, a, b, prm);
}
/* dst (shape small, broadcastable to full) = scale * sum of src (shape full)
 * over the broadcast axes.  float32 or float64. */
int sn_ew_reduce_sum(const void *src, const sn_shape *full, void *dst, const sn_shape *small,
                     sn_dtype dt, double scale);
/* The op's name for messages. */
static inline const char *sn_ew_name(const sn_call *c) {
  return c->p && c->p->op ? c->p->op->name : "element-wise op";
}
/* Index of a floating dtype in the kernel tables (0 float32, 1 float64),
 * SN_ERR_TYPE naming the op otherwise. */
int sn_ew_dtype_index(const char *op, sn_dtype dt, int *ti);

/* c ? b : a on the bits (c is 0 or 1): a select that gcc vectorises even
 * where the operands are results of arithmetic (it will not if-convert a
 * floating-point `?:` whose arms it moved arithmetic into). */
static inline float sn_ew_blendf(int c, float a, float b) {
  const int32_t m = -(int32_t)c;
  int32_t ia, ib, r;
  float f;
  memcpy(&ia, &a, sizeof ia);
  memcpy(&ib, &b, sizeof ib);
  r = (ia & ~m) | (ib & m);
  memcpy(&f, &r, sizeof f);
  return f;
}

/* e^x for float32, vectorisable: x = n ln2 + r with |r| <= ln2 / 2, e^r by
 * its degree-7 Taylor polynomial, 2^n assembled in the exponent bits (as
 * 2 e^r times 2^(n-1), so that n = 128 stays finite).  Within 1.3 ulp of e^x for
 * -86.5 <= x <= 88.72; e^-86.5 below that, +inf above; NaN propagates. */
static inline float sn_ew_expf(float x) {
  float xc = sn_ew_blendf(x < -86.5f, x, -86.5f);
  xc = sn_ew_blendf(xc > 88.72f, xc, 88.72f);
  /* n = round(x / ln2): adding 1.5 * 2^23 leaves it in the low mantissa bits */
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  int32_t bits;
  memcpy(&bits, &t, sizeof bits);
  const float n = (float)(bits - 0x4B400000);
  const float r = (xc - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  /* 2 e^r, so that one product with 2^(n-1) gives e^x */
  float p = 2.0f / 5040.0f;
  p = p * r + 2.0f / 720.0f;
  p = p * r + 2.0f / 120.0f;
  p = p * r + 2.0f / 24.0f;
  p = p * r + 2.0f / 6.0f;
  p = p * r + 1.0f;
  p = p * r + 2.0f;
  p = p * r + 2.0f;
  const int32_t e = (bits - 0x4B400000 + 126) * (1 << 23); /* bits of 2^(n-1) */
  float s;
  memcpy(&s, &e, sizeof s);
  return sn_ew_blendf(x > 88.7228f, p * s, (float)INFINITY);
}

/* Logistic sigmoid 1 / (1 + e^-x): float32 vectorisable (within 2.5 ulp),
 * float64 through libm. */
static inline float sn_ew_sigmoidf(float x) { return 1.0f / (1.0f + sn_ew_expf(-x)); }
static inline double sn_ew_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* tanh: float32 vectorisable (within 1.6 ulp): the odd Taylor series up to
 * x^17 for |x| < 0.55, else sign(x) (1 - 2 / (e^(2|x|) + 1)); float64
 * through libm. */
static inline float sn_ew_tanhf(float x) {
  int32_t sign;
  memcpy(&sign, &x, sizeof sign);
  const float ax = fabsf(x), x2 = x * x;
  float p = 6404582.0f / 10854718875.0f;
  p = p * x2 - 929569.0f / 638512875.0f;
  p = p * x2 + 21844.0f / 6081075.0f;
  p = p * x2 - 1382.0f / 155925.0f;
  p = p * x2 + 62.0f / 2835.0f;
  p = p * x2 - 17.0f / 315.0f;
  p = p * x2 + 2.0f / 15.0f;
  p = p * x2 - 1.0f / 3.0f;
  const float small = x + x * x2 * p;
  const float big = 1.0f - 2.0f / (sn_ew_expf(2.0f * ax) + 1.0f);
  return sn_ew_blendf(ax < 0.55f, sn_ew_blendf(sign < 0, big, -big), small);
}
static inline double sn_ew_tanh(double x) { return tanh(x); }

/* MXNet's mod: computed in double, result takes the divisor's sign
 * (Python / R %% semantics), and x mod 0 is 0. */
static inline double sn_ew_mod(double a, double b) {
  if (b == 0)
    return 0;
  double r = fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}

/* The binary functors: X(ID, f(a, b), gradient for a, gradient for b,
 * constant df/da, constant df/db, cost of f, cost of the gradients), costs
 * in {1, 2, 4, 8, 16}, 1 for an add, >= 4 for a libm call.  The gradients are written in
 * terms of g, the output gradient element (selects such as `a >= b ? g : 0`
 * vectorise where `g * (a >= b)` does not).  A constant derivative
 * (SN_EW_NC when not constant) lets backward skip reading the inputs;
 * comparisons have no gradient.  smooth_l1 (b is sigma) and rpow_y (the
 * gradient of s^x through its output a = s^x, b = s) serve only the scalar
 * family. */
#define SN_EW_NC NAN
#define SN_EW_BINARY_FUNCTORS(X)                                                                   \
  X(ADD, a + b, g, g, 1, 1, 1, 1)                                                                  \
  X(SUB, a - b, g, -g, 1, -1, 1, 1)                                                                \
  X(MUL, a * b, g * b, g * a, SN_EW_NC, SN_EW_NC, 1, 1)                                            \
  X(DIV, a / b, g * (SN_EW_K(1) / b), g * (-a / (b * b)), SN_EW_NC, SN_EW_NC, 1, 1)                \
  X(MOD, sn_ew_mod(a, b), g, g * -SN_EW_M(floor)(a / b), 1, SN_EW_NC, 8, 1)                        \
  X(POWER, SN_EW_M(pow)(a, b), g * (b * SN_EW_M(pow)(a, b - 1)),                                   \
    g * (SN_EW_M(pow)(a, b) * SN_EW_M(log)(a)), SN_EW_NC, SN_EW_NC, 16, 16)                        \
  X(MAXIMUM, a != a ? a : (a > b ? a : b), a >= b ? g : 0, a < b ? g : 0, SN_EW_NC,                \
    SN_EW_NC, 1, 1)                                                                                \
  X(MINIMUM, a != a ? a : (a < b ? a : b), a <= b ? g : 0, a > b ? g : 0, SN_EW_NC,                \
    SN_EW_NC, 1, 1)                                                                                \
  X(HYPOT, SN_EW_M(hypot)(a, b), g * (a / SN_EW_M(hypot)(a, b)),                                   \
    g * (b / SN_EW_M(hypot)(a, b)), SN_EW_NC, SN_EW_NC, 8, 8)                                      \
  X(EQUAL, a == b, 0, 0, 0, 0, 1, 1)                                                               \
  X(NOT_EQUAL, a != b, 0, 0, 0, 0, 1, 1)                                                           \
  X(GREATER, a > b, 0, 0, 0, 0, 1, 1)                                                              \
  X(GREATER_EQUAL, a >= b, 0, 0, 0, 0, 1, 1)                                                       \
  X(LESSER, a < b, 0, 0, 0, 0, 1, 1)                                                               \
  X(LESSER_EQUAL, a <= b, 0, 0, 0, 0, 1, 1)                                                        \
  X(LOGICAL_AND, a != 0 && b != 0, 0, 0, 0, 0, 1, 1)                                               \
  X(LOGICAL_OR, a != 0 || b != 0, 0, 0, 0, 0, 1, 1)                                                \
  X(LOGICAL_XOR, (a != 0) != (b != 0), 0, 0, 0, 0, 1, 1)                                           \
  X(SMOOTH_L1,                                                                                     \
    a > 1 / (b * b) ? a - SN_EW_K(0.5) / (b * b)                                                   \
                    : (a < -1 / (b * b) ? -a - SN_EW_K(0.5) / (b * b)                              \
                                        : SN_EW_K(0.5) * a * a * (b * b)),                         \
    a > 1 / (b * b) ? g : (a < -1 / (b * b) ? -g : g * ((b * b) * a)), 0, SN_EW_NC, 0, 2, 2)       \
  X(RPOW_Y, 0, g * (a * SN_EW_M(log)(b)), 0, SN_EW_NC, 0, 1, 8)

#define SN_EW_ENUM_(ID, ...) SN_EWB_##ID,
enum { SN_EW_BINARY_FUNCTORS(SN_EW_ENUM_) SN_EWB_COUNT };
#undef SN_EW_ENUM_

typedef struct {
  sn_ew_kern fwd[2][3]; /* [dtype index][variant] */
  sn_ew_kern ga[2][3];  /* g * df/da */
  sn_ew_kern gb[2][3];  /* g * df/db */
  double ca, cb;        /* constant derivatives, NAN if not constant */
  int costf, costg;
} sn_ew_binfn;

extern const sn_ew_binfn sn_ew_binfns[SN_EWB_COUNT];

#endif
