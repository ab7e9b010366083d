// GPU kernels of the element-wise op families (ops/elemwise_unary.c,
// ops/elemwise_binary.c, ops/elemwise_scalar.c), same semantics as the CPU
// kernels:
//   - unary math ops y = f(x) and their gradients (written in terms of the
//     input, the output or nothing, exactly as the CPU table says), clip and
//     hard_sigmoid with float32-rounded parameters, the copy-like ops _copy,
//     BlockGrad, zeros_like, ones_like and Cast (any dtype; conversions go
//     through double like sn_tensor_copy);
//   - binary ops, same-shape and broadcasting, with the functor table of
//     ops/elemwise.h (MXNet's mod with the divisor's sign and x mod 0 = 0,
//     computed in double; NaN-propagating maximum/minimum with the gradient
//     to lhs on ties; comparisons as 0/1); the backward of broadcasting sums
//     over the stretched axes in one fused pass (no temporary), igrad[1]
//     first because igrad[0] may share ograd[0];
//   - scalar ops (the scalar converted to the data's dtype first) and
//     smooth_l1, reusing the binary functors with one operand fixed;
//   - add_n (the executor's gradient sums), summed left to right in the
//     data's type.
// float32 tanh/sigmoid use CUDA's tanhf/expf where the CPU uses its own
// vectorisable approximations (both within a few ulp).
#include "kernels.cuh"

namespace snk {
namespace ew {

// ---------------------------------------------------------------------------
// Math wrappers: float and double overloads of the libm functions.
// ---------------------------------------------------------------------------
#define EWM1(fn)                                                                       \
  __device__ __forceinline__ float m_##fn(float x) { return fn##f(x); }                \
  __device__ __forceinline__ double m_##fn(double x) { return fn(x); }
EWM1(sqrt) EWM1(cbrt) EWM1(exp) EWM1(expm1) EWM1(log) EWM1(log1p) EWM1(log2) EWM1(log10)
EWM1(fabs) EWM1(tanh) EWM1(sin) EWM1(cos) EWM1(tan) EWM1(asin) EWM1(acos) EWM1(atan)
EWM1(sinh) EWM1(cosh) EWM1(asinh) EWM1(acosh) EWM1(atanh) EWM1(floor) EWM1(ceil)
EWM1(round) EWM1(trunc) EWM1(erf)
#undef EWM1
__device__ __forceinline__ float m_pow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double m_pow(double a, double b) { return pow(a, b); }
__device__ __forceinline__ float m_hypot(float a, float b) { return hypotf(a, b); }
__device__ __forceinline__ double m_hypot(double a, double b) { return hypot(a, b); }
__device__ __forceinline__ float m_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ double m_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// MXNet's mod (ops/elemwise.h sn_ew_mod): in double, the divisor's sign,
// x mod 0 = 0.
__device__ __forceinline__ double ew_mod(double a, double b) {
  if (b == 0) return 0;
  double r = fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

#define K(v) ((T)(v))

// ---------------------------------------------------------------------------
// Unary ops: X(id, gradient kind, f(x), gradient(g, x or y)); p0, p1 are the
// op's first two float parameters rounded to float32 (clip, hard_sigmoid).
// Kinds as in elemwise_unary.c: IN (gradient reads x), OUT (reads y),
// CONST (reads nothing), NONE (no gradient).
// ---------------------------------------------------------------------------
#define EWU_OPS(X)                                                                         \
  X(sqrt, OUT, m_sqrt(x), g * (K(0.5) / y))                                                \
  X(rsqrt, OUT, K(1) / m_sqrt(x), g * (K(-0.5) * y * y * y))                               \
  X(cbrt, OUT, m_cbrt(x), g * (K(1) / (K(3) * y * y)))                                     \
  X(rcbrt, OUT, K(1) / m_cbrt(x), g * (-(y * y * y * y) / K(3)))                           \
  X(exp, OUT, m_exp(x), g * y)                                                             \
  X(expm1, OUT, m_expm1(x), g * (y + 1))                                                   \
  X(log, IN, m_log(x), g * (K(1) / x))                                                     \
  X(log1p, IN, m_log1p(x), g * (K(1) / (1 + x)))                                           \
  X(log2, IN, m_log2(x), g * (K(1.4426950408889634) / x))                                  \
  X(log10, IN, m_log10(x), g * (K(0.4342944819032518) / x))                                \
  X(abs, IN, m_fabs(x), x > 0 ? g : (x < 0 ? -g : K(0)))                                   \
  X(sign, NONE, x > 0 ? K(1) : (x < 0 ? K(-1) : K(0)), K(0))                               \
  X(square, IN, x * x, g * (2 * x))                                                        \
  X(reciprocal, OUT, K(1) / x, g * -(y * y))                                               \
  X(negative, CONST, -x, -g)                                                               \
  X(tanh, OUT, m_tanh(x), g * (1 - y * y))                                                 \
  X(sigmoid, OUT, m_sigmoid(x), g * (y * (1 - y)))                                         \
  X(relu, OUT, (x > 0 || x != x) ? x : K(0), y > 0 ? g : (y == y ? K(0) : y))              \
  X(softsign, IN, x / (1 + m_fabs(x)), g / ((1 + m_fabs(x)) * (1 + m_fabs(x))))            \
  X(sin, IN, m_sin(x), g * m_cos(x))                                                       \
  X(cos, IN, m_cos(x), g * -m_sin(x))                                                      \
  X(tan, OUT, m_tan(x), g * (1 + y * y))                                                   \
  X(arcsin, IN, m_asin(x), g * (K(1) / m_sqrt(1 - x * x)))                                 \
  X(arccos, IN, m_acos(x), g * (K(-1) / m_sqrt(1 - x * x)))                                \
  X(arctan, IN, m_atan(x), g * (K(1) / (1 + x * x)))                                       \
  X(sinh, IN, m_sinh(x), g * m_cosh(x))                                                    \
  X(cosh, IN, m_cosh(x), g * m_sinh(x))                                                    \
  X(arcsinh, IN, m_asinh(x), g * (K(1) / m_hypot(x, K(1))))                                \
  X(arccosh, IN, m_acosh(x), g * (K(1) / m_sqrt(x * x - 1)))                               \
  X(arctanh, IN, m_atanh(x), g * (K(1) / (1 - x * x)))                                     \
  X(degrees, CONST, K(57.29577951308232) * x, g * K(57.29577951308232))                    \
  X(radians, CONST, K(0.017453292519943295) * x, g * K(0.017453292519943295))              \
  X(floor, NONE, m_floor(x), K(0))                                                         \
  X(ceil, NONE, m_ceil(x), K(0))                                                           \
  X(round, NONE, m_round(x), K(0))                                                         \
  X(rint, NONE, x - m_floor(x) <= m_ceil(x) - x ? m_floor(x) : m_ceil(x), K(0))            \
  X(trunc, NONE, m_trunc(x), K(0))                                                         \
  X(fix, NONE, m_trunc(x), K(0))                                                           \
  X(erf, IN, m_erf(x), g * (K(1.1283791670955126) * m_exp(-x * x)))                        \
  X(logical_not, NONE, x != 0 ? K(0) : K(1), K(0))                                         \
  X(clip, IN, x > p1 ? p1 : (x < p0 ? p0 : x), (x > p1 || x < p0) ? K(0) : g)              \
  X(hard_sigmoid, IN, p0 * x + p1 > 1 ? K(1) : (p0 * x + p1 < 0 ? K(0) : p0 * x + p1),     \
    (p0 * x + p1 > 0 && p0 * x + p1 < 1) ? g * p0 : K(0))

enum { KIND_IN, KIND_OUT, KIND_CONST, KIND_NONE };

#define EWU_FUNCTOR(ID, KIND, F, G)                                                        \
  struct U_##ID {                                                                          \
    static const int kind = KIND_##KIND;                                                   \
    template <typename T>                                                                  \
    __device__ __forceinline__ static T f(T x, T p0, T p1) {                               \
      (void)p0;                                                                            \
      (void)p1;                                                                            \
      return (T)(F);                                                                       \
    }                                                                                      \
    template <typename T>                                                                  \
    __device__ __forceinline__ static T grad(T g, T v, T p0, T p1) {                       \
      const T x = v, y = v;                                                                \
      (void)x;                                                                             \
      (void)y;                                                                             \
      (void)g;                                                                             \
      (void)p0;                                                                            \
      (void)p1;                                                                            \
      return (T)(G);                                                                       \
    }                                                                                      \
  };
EWU_OPS(EWU_FUNCTOR)

template <typename Fn, typename T>
struct UnaryFwd {
  const T *x;
  T *y;
  T p0, p1;
  __device__ __forceinline__ void operator()(int64_t i) const { y[i] = Fn::f(x[i], p0, p1); }
};

template <typename Fn, typename T>
struct UnaryBwd {
  const T *g, *v;
  T *gx;
  T p0, p1;
  __device__ __forceinline__ void operator()(int64_t i) const {
    gx[i] = Fn::grad(g[i], v[i], p0, p1);
  }
};

// The op's first two float parameters, rounded to float32 (MXNet's real_t),
// read by name: a_min / a_max for clip, alpha / beta for hard_sigmoid.
int unary_params(const sn_call *c, double prm[2]) {
  prm[0] = prm[1] = 0;
  const sn_op *op = c->p ? c->p->op : nullptr;
  if (!op) return SN_OK;
  const char *n0 = nullptr, *n1 = nullptr;
  if (strcmp(op->name, "clip") == 0) {
    n0 = "a_min";
    n1 = "a_max";
  } else if (strcmp(op->name, "hard_sigmoid") == 0) {
    n0 = "alpha";
    n1 = "beta";
  } else {
    return SN_OK;
  }
  const sn_pval *a, *b;
  SN_TRY(get_param(c, n0, &a));
  SN_TRY(get_param(c, n1, &b));
  prm[0] = (float)a->f;
  prm[1] = (float)b->f;
  return SN_OK;
}

template <typename Fn>
int unary_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  double prm[2];
  SN_TRY(unary_params(c, prm));
  const sn_tensor *x = c->in[0];
  sn_tensor *y = c->out[0];
  SNC_FLOAT_SWITCH(y->dtype, c, T, {
    UnaryFwd<Fn, T> f{snc::ptr<T>(x), snc::ptr<T>(y), (T)prm[0], (T)prm[1]};
    return launch_flat(c, s, nelem(y), f, "forward");
  });
  return SN_OK;
}

template <typename Fn>
int unary_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  double prm[2];
  SN_TRY(unary_params(c, prm));
  const sn_tensor *og = c->ograd[0];
  sn_tensor *ig = c->igrad[0];
  // CONST derivatives read nothing: the output gradient stands in for v.
  const sn_tensor *v = Fn::kind == KIND_IN ? c->in[0] : (Fn::kind == KIND_OUT ? c->out[0] : og);
  if (!v || !v->st)
    return host->error(SN_ERR_INTERNAL, "%s backward (GPU): the forward %s is missing",
                       op_name(c), Fn::kind == KIND_IN ? "input" : "output");
  SNC_FLOAT_SWITCH(og->dtype, c, T, {
    UnaryBwd<Fn, T> f{snc::ptr<T>(og), snc::ptr<T>(v), snc::ptr<T>(ig), (T)prm[0], (T)prm[1]};
    return launch_flat(c, s, nelem(og), f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// Copy-like ops
// ---------------------------------------------------------------------------

__device__ __forceinline__ void store_double(void *p, int dt, int64_t i, double v) {
  switch (dt) {
    case SN_F32: ((float *)p)[i] = (float)v; break;
    case SN_F64: ((double *)p)[i] = v; break;
    case SN_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case SN_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case SN_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case SN_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    default: break;
  }
}

struct ConvertFn {
  const void *src;
  void *dst;
  int st, dt;
  __device__ __forceinline__ void operator()(int64_t i) const {
    store_double(dst, dt, i, load_as_double(src, st, i));
  }
};

// dst = src (same size); a dtype conversion goes through double like the
// CPU's sn_tensor_copy (float16 is not converted).
int copy_tensor(const sn_call *c, cudaStream_t s, sn_tensor *dst, const sn_tensor *src) {
  const int64_t n = nelem(src);
  if (nelem(dst) != n) {
    char a[128], b[128];
    return host->error(SN_ERR_SHAPE, "%s (GPU): cannot copy %s into %s: sizes differ",
                       op_name(c), shape_str(&src->shape, a, sizeof a),
                       shape_str(&dst->shape, b, sizeof b));
  }
  if (dst->dtype == src->dtype) return copy_async(c, s, snc::data(dst), snc::data(src), nbytes(src));
  if (dtype_size(src->dtype) == 0 || dtype_size(dst->dtype) == 0 || src->dtype == SN_F16 ||
      dst->dtype == SN_F16)
    return host->error(SN_ERR_TYPE, "%s (GPU): cannot convert %s to %s", op_name(c),
                       dtype_name(src->dtype), dtype_name(dst->dtype));
  ConvertFn f{snc::data(src), snc::data(dst), (int)src->dtype, (int)dst->dtype};
  return launch_flat(c, s, n, f, "dtype conversion");
}

int copy_fwd(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  return copy_tensor(c, s, c->out[0], c->in[0]);
}

int copy_bwd(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  return copy_tensor(c, s, c->igrad[0], c->ograd[0]);
}

int zeros_fwd(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  return zero_tensor(c, s, c->out[0]);
}

template <typename T>
struct FillValue {
  T *y;
  T v;
  __device__ __forceinline__ void operator()(int64_t i) const { y[i] = v; }
};

int ones_fwd(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  sn_tensor *y = c->out[0];
  SNK_ALL_SWITCH(y->dtype, c, T, {
    FillValue<T> f{snc::ptr<T>(y), (T)1};
    return launch_flat(c, s, nelem(y), f, "fill");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// Binary functors (ops/elemwise.h SN_EW_BINARY_FUNCTORS):
// X(id, f(a, b), g * df/da, g * df/db, df/da constant?, value, df/db
// constant?, value).
// ---------------------------------------------------------------------------
#define EWB_FUNCTORS(X)                                                                     \
  X(ADD, a + b, g, g, 1, 1, 1, 1)                                                           \
  X(SUB, a - b, g, -g, 1, 1, 1, -1)                                                         \
  X(MUL, a * b, g * b, g * a, 0, 0, 0, 0)                                                   \
  X(DIV, a / b, g * (K(1) / b), g * (-a / (b * b)), 0, 0, 0, 0)                             \
  X(MOD, (T)ew_mod((double)a, (double)b), g, g * -m_floor(a / b), 1, 1, 0, 0)               \
  X(POWER, m_pow(a, b), g * (b * m_pow(a, b - 1)), g * (m_pow(a, b) * m_log(a)), 0, 0, 0, 0) \
  X(MAXIMUM, a != a ? a : (a > b ? a : b), a >= b ? g : K(0), a < b ? g : K(0), 0, 0, 0, 0) \
  X(MINIMUM, a != a ? a : (a < b ? a : b), a <= b ? g : K(0), a > b ? g : K(0), 0, 0, 0, 0) \
  X(HYPOT, m_hypot(a, b), g * (a / m_hypot(a, b)), g * (b / m_hypot(a, b)), 0, 0, 0, 0)     \
  X(EQUAL, a == b, K(0), K(0), 1, 0, 1, 0)                                                  \
  X(NOT_EQUAL, a != b, K(0), K(0), 1, 0, 1, 0)                                              \
  X(GREATER, a > b, K(0), K(0), 1, 0, 1, 0)                                                 \
  X(GREATER_EQUAL, a >= b, K(0), K(0), 1, 0, 1, 0)                                          \
  X(LESSER, a < b, K(0), K(0), 1, 0, 1, 0)                                                  \
  X(LESSER_EQUAL, a <= b, K(0), K(0), 1, 0, 1, 0)                                           \
  X(LOGICAL_AND, a != 0 && b != 0, K(0), K(0), 1, 0, 1, 0)                                  \
  X(LOGICAL_OR, a != 0 || b != 0, K(0), K(0), 1, 0, 1, 0)                                   \
  X(LOGICAL_XOR, (a != 0) != (b != 0), K(0), K(0), 1, 0, 1, 0)                              \
  X(SMOOTH_L1,                                                                              \
    a > 1 / (b * b) ? a - K(0.5) / (b * b)                                                  \
                    : (a < -1 / (b * b) ? -a - K(0.5) / (b * b) : K(0.5) * a * a * (b * b)), \
    a > 1 / (b * b) ? g : (a < -1 / (b * b) ? -g : g * ((b * b) * a)), K(0), 0, 0, 1, 0)    \
  X(RPOW_Y, K(0), g * (a * m_log(b)), K(0), 0, 0, 1, 0)

#define EWB_FUNCTOR(ID, F, GA, GB, CA_K, CA, CB_K, CB)                                    \
  struct B_##ID {                                                                          \
    static const bool ca_const = CA_K, cb_const = CB_K;                                    \
    static constexpr double ca = CA, cb = CB;                                              \
    template <typename T>                                                                  \
    __device__ __forceinline__ static T f(T a, T b) {                                      \
      return (T)(F);                                                                       \
    }                                                                                      \
    template <typename T>                                                                  \
    __device__ __forceinline__ static T ga(T g, T a, T b) {                                \
      (void)g;                                                                             \
      (void)a;                                                                             \
      (void)b;                                                                             \
      return (T)(GA);                                                                      \
    }                                                                                      \
    template <typename T>                                                                  \
    __device__ __forceinline__ static T gb(T g, T a, T b) {                                \
      (void)g;                                                                             \
      (void)a;                                                                             \
      (void)b;                                                                             \
      return (T)(GB);                                                                      \
    }                                                                                      \
  };
EWB_FUNCTORS(EWB_FUNCTOR)

// ---- forward ----
template <typename Fn, typename T>
struct BinFlat {
  const T *a, *b;
  T *o;
  __device__ __forceinline__ void operator()(int64_t i) const { o[i] = Fn::f(a[i], b[i]); }
};

template <typename Fn, typename T, typename I>
struct BinMap {  // operands: 0 out, 1 a, 2 b
  const T *a, *b;
  T *o;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    o[off[0]] = Fn::f(a[off[1]], b[off[2]]);
  }
};

// Broadcast geometry over the output shape: operand 0 the output
// (contiguous), 1 lhs, 2 rhs (stride 0 along stretched dims).  Checks the
// shapes like sn_ew_plan_bcast.
int bcast_geom(const sn_call *c, const sn_shape *a, const sn_shape *b, const sn_shape *out,
               Geom<3> &g) {
  char s1[128], s2[128], s3[128];
  const int nd = out->ndim, oa = nd - a->ndim, ob = nd - b->ndim;
  if (oa < 0 || ob < 0 || nd > SNK_MAXD) goto bad;
  {
    int64_t so = 1, sa = 1, sb = 1;
    g.nd = nd > 0 ? nd : 1;
    if (nd == 0) {
      g.n[0] = 1;
      g.st[0][0] = g.st[1][0] = g.st[2][0] = 1;
      return SN_OK;
    }
    for (int d = nd - 1; d >= 0; d--) {
      int64_t D = out->dim[d], da = d >= oa ? a->dim[d - oa] : 1, db = d >= ob ? b->dim[d - ob] : 1;
      if ((da != D && da != 1) || (db != D && db != 1)) goto bad;
      g.n[d] = D;
      g.st[0][d] = so;
      g.st[1][d] = da == D ? sa : 0;
      g.st[2][d] = db == D ? sb : 0;
      so *= D;
      sa *= da;
      sb *= db;
    }
  }
  return SN_OK;
bad:
  return host->error(SN_ERR_SHAPE, "%s (GPU): cannot broadcast %s and %s to %s", op_name(c),
                     shape_str(a, s1, sizeof s1), shape_str(b, s2, sizeof s2),
                     shape_str(out, s3, sizeof s3));
}

template <typename Fn>
int binary_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *a = c->in[0], *b = c->in[1];
  sn_tensor *o = c->out[0];
  const int64_t n = nelem(o);
  SNC_FLOAT_SWITCH(o->dtype, c, T, {
    if (nelem(a) == n && nelem(b) == n) {
      BinFlat<Fn, T> f{snc::ptr<T>(a), snc::ptr<T>(b), snc::ptr<T>(o)};
      return launch_flat(c, s, n, f, "forward");
    }
    Geom<3> g;
    SN_TRY(bcast_geom(c, &a->shape, &b->shape, &o->shape, g));
    return launch_map<3>(c, s, g, BinMap<Fn, T, int32_t>{snc::ptr<T>(a), snc::ptr<T>(b), snc::ptr<T>(o)},
                         BinMap<Fn, T, int64_t>{snc::ptr<T>(a), snc::ptr<T>(b), snc::ptr<T>(o)},
                         "broadcast forward");
  });
  return SN_OK;
}

// ---- backward ----
template <typename T>
struct ScaleCopy {
  const T *src;
  T *dst;
  T k;
  __device__ __forceinline__ void operator()(int64_t i) const { dst[i] = src[i] * k; }
};

// dst = scale * src (a plain copy when scale is 1).
template <typename T>
int scale_copy(const sn_call *c, cudaStream_t s, T *dst, const T *src, int64_t n, double scale) {
  if (scale == 1) return copy_async(c, s, dst, src, (size_t)n * sizeof(T));
  ScaleCopy<T> f{src, dst, (T)scale};
  return launch_flat(c, s, n, f, "gradient scale");
}

// operands: 0 og / igrad (same shape), 1 a, 2 b
template <typename Fn, int SIDE, typename T, typename I>
struct BinGradMap {
  const T *g, *a, *b;
  T *o;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    o[off[0]] = SIDE == 0 ? Fn::ga(g[off[0]], a[off[1]], b[off[2]])
                          : Fn::gb(g[off[0]], a[off[1]], b[off[2]]);
  }
};

template <typename Fn, int SIDE, typename T, typename I>
struct BinGradLoad {
  const T *g, *a, *b;
  __device__ __forceinline__ double operator()(const I *off) const {
    return (double)(SIDE == 0 ? Fn::ga(g[off[0]], a[off[1]], b[off[2]])
                              : Fn::gb(g[off[0]], a[off[1]], b[off[2]]));
  }
};

template <typename Fn, int SIDE, typename T>
int binary_grad_side(const sn_call *c, cudaStream_t s, sn_tensor *gk) {
  const sn_tensor *og = c->ograd[0];
  const int64_t no = nelem(og);
  const bool full = nelem(gk) == no;
  constexpr bool is_const = SIDE == 0 ? Fn::ca_const : Fn::cb_const;
  constexpr double cst = SIDE == 0 ? Fn::ca : Fn::cb;
  if constexpr (is_const) {
    // constant derivative: the inputs are not read
    if (full) return scale_copy<T>(c, s, snc::ptr<T>(gk), snc::ptr<T>(og), no, cst);
    return reduce_sum_to<T>(c, s, snc::ptr<T>(og), &og->shape, snc::ptr<T>(gk), &gk->shape, cst);
  } else {
    const sn_tensor *a = c->in[0], *b = c->in[1];
    if (!a || !b || !a->st || !b->st)
      return host->error(SN_ERR_INTERNAL, "%s backward (GPU): the forward inputs are missing",
                         op_name(c));
    Geom<3> g;
    SN_TRY(bcast_geom(c, &a->shape, &b->shape, &og->shape, g));
    const T *gp = snc::ptr<T>(og), *ap = snc::ptr<T>(a), *bp = snc::ptr<T>(b);
    if (full)
      return launch_map<3>(c, s, g, BinGradMap<Fn, SIDE, T, int32_t>{gp, ap, bp, snc::ptr<T>(gk)},
                           BinGradMap<Fn, SIDE, T, int64_t>{gp, ap, bp, snc::ptr<T>(gk)},
                           "backward");
    // fused: G over the output's space, summed over the stretched axes of gk
    const sn_shape *ks = &gk->shape;
    const int nd = og->shape.ndim, off = nd - ks->ndim;
    char s1[128], s2[128];
    if (off < 0)
      return host->error(SN_ERR_SHAPE, "%s backward (GPU): cannot reduce %s to %s", op_name(c),
                         shape_str(&og->shape, s1, sizeof s1), shape_str(ks, s2, sizeof s2));
    int red[SNK_MAXD];
    for (int d = 0; d < nd; d++) {
      int64_t D = og->shape.dim[d], sm = d >= off ? ks->dim[d - off] : 1;
      if (sm != D && sm != 1)
        return host->error(SN_ERR_SHAPE, "%s backward (GPU): cannot reduce %s to %s",
                           op_name(c), shape_str(&og->shape, s1, sizeof s1),
                           shape_str(ks, s2, sizeof s2));
      red[d] = sm != D;
    }
    RGeomH<3> h;
    rgeom_make<3>(g.nd, g.n, g.st, red, h);
    return reduce_launch<3, RSum>(c, s, h, BinGradLoad<Fn, SIDE, T, int32_t>{gp, ap, bp},
                                  BinGradLoad<Fn, SIDE, T, int64_t>{gp, ap, bp},
                                  StoreScaled<T>{snc::ptr<T>(gk), 1.0}, "broadcast backward");
  }
}

template <typename Fn>
int binary_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  // igrad[1] first: igrad[0] may share ograd[0]
  for (int k = 1; k >= 0; k--) {
    if (c->req[k] == SN_REQ_NULL) continue;
    sn_tensor *gk = c->igrad[k];
    SNC_FLOAT_SWITCH(og->dtype, c, T, {
      if (k == 1)
        SN_TRY((binary_grad_side<Fn, 1, T>(c, s, gk)));
      else
        SN_TRY((binary_grad_side<Fn, 0, T>(c, s, gk)));
    });
  }
  return SN_OK;
}

// ---------------------------------------------------------------------------
// Scalar ops (elemwise_scalar.c): forward f(x, s) or f(s, x); the gradient
// uses functor GF on side A (d/da, b = s) or B (d/db, a = s) with v the
// input, the output or (NONE) the output gradient.
// ---------------------------------------------------------------------------
enum { DEP_NONE, DEP_IN, DEP_OUT };

template <typename Fn, int REV, typename T>
struct ScalarFwd {
  const T *x;
  T *y;
  T s;
  __device__ __forceinline__ void operator()(int64_t i) const {
    y[i] = REV ? Fn::f(s, x[i]) : Fn::f(x[i], s);
  }
};

template <typename Fn, int SIDE_B, typename T>
struct ScalarBwd {
  const T *g, *v;
  T *gx;
  T s;
  __device__ __forceinline__ void operator()(int64_t i) const {
    gx[i] = SIDE_B ? Fn::gb(g[i], s, v[i]) : Fn::ga(g[i], v[i], s);
  }
};

template <typename Fn, int REV>
int scalar_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *sc;
  SN_TRY(get_param(c, "scalar", &sc));
  sn_tensor *y = c->out[0];
  SNC_FLOAT_SWITCH(y->dtype, c, T, {
    ScalarFwd<Fn, REV, T> f{snc::ptr<T>(c->in[0]), snc::ptr<T>(y), (T)sc->f};
    return launch_flat(c, s, nelem(y), f, "forward");
  });
  return SN_OK;
}

template <typename GF, int SIDE_B, int DEP>
int scalar_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *sc;
  SN_TRY(get_param(c, "scalar", &sc));
  const sn_tensor *og = c->ograd[0];
  const sn_tensor *v = DEP == DEP_IN ? c->in[0] : (DEP == DEP_OUT ? c->out[0] : og);
  if (!v || !v->st)
    return host->error(SN_ERR_INTERNAL, "%s backward (GPU): the forward data is missing",
                       op_name(c));
  SNC_FLOAT_SWITCH(og->dtype, c, T, {
    ScalarBwd<GF, SIDE_B, T> f{snc::ptr<T>(og), snc::ptr<T>(v), snc::ptr<T>(c->igrad[0]),
                               (T)sc->f};
    return launch_flat(c, s, nelem(og), f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// add_n
// ---------------------------------------------------------------------------
template <typename T>
struct AddN {
  const T *in[SN_MAX_IO];
  int nin;
  T *o;
  __device__ __forceinline__ void operator()(int64_t i) const {
    T acc = in[0][i] + in[1][i];
    for (int k = 2; k < nin; k++) acc = acc + in[k][i];
    o[i] = acc;
  }
};

int addn_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  sn_tensor *o = c->out[0];
  const int64_t n = nelem(o);
  if (c->nin < 1 || c->nin > SN_MAX_IO)
    return host->error(SN_ERR_ARG, "add_n (GPU): %d inputs (1 to %d)", c->nin, SN_MAX_IO);
  SNC_FLOAT_SWITCH(o->dtype, c, T, {
    if (c->nin == 1) return copy_async(c, s, snc::data(o), snc::data(c->in[0]), (size_t)n * sizeof(T));
    AddN<T> f;
    memset(&f, 0, sizeof f);
    for (int k = 0; k < c->nin; k++) {
      if (nelem(c->in[k]) != n)
        return host->error(SN_ERR_SHAPE, "add_n (GPU): input %d has %lld elements, expected %lld",
                           k + 1, (long long)nelem(c->in[k]), (long long)n);
      f.in[k] = snc::ptr<T>(c->in[k]);
    }
    f.nin = c->nin;
    f.o = snc::ptr<T>(o);
    return launch_flat(c, s, n, f, "forward");
  });
  return SN_OK;
}

int addn_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  for (int k = c->nin - 1; k >= 0; k--)  // igrad[0] last: it may share ograd[0]
    if (c->req[k] != SN_REQ_NULL)
      SN_TRY(copy_async(c, s, snc::data(c->igrad[k]), snc::data(og), nbytes(og)));
  return SN_OK;
}

}  // namespace ew
}  // namespace snk

// ---------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------
namespace snc {

int register_elemwise(const sn_host_api *h) {
  using namespace snk;
  using namespace snk::ew;
#define REG(name, f, b) SN_TRY(h->register_kernels(name, f, b))
  // unary
#define EWU_BWD_IN(ID) unary_backward<U_##ID>
#define EWU_BWD_OUT(ID) unary_backward<U_##ID>
#define EWU_BWD_CONST(ID) unary_backward<U_##ID>
#define EWU_BWD_NONE(ID) nullptr
#define EWU_REG(ID, KIND, F, G) REG(#ID, unary_forward<U_##ID>, EWU_BWD_##KIND(ID));
  EWU_OPS(EWU_REG)
#undef EWU_REG
  REG("_copy", copy_fwd, copy_bwd);
  REG("BlockGrad", copy_fwd, nullptr);
  REG("zeros_like", zeros_fwd, nullptr);
  REG("ones_like", ones_fwd, nullptr);
  REG("Cast", copy_fwd, copy_bwd);

  // binary, same shape and broadcasting
#define EWB_REG(ID, NAME, BNAME)                                                           \
  REG(NAME, binary_forward<B_##ID>, binary_backward<B_##ID>);                              \
  REG(BNAME, binary_forward<B_##ID>, binary_backward<B_##ID>);
#define EWB_REG_NG(ID, NAME, BNAME)                                                        \
  REG(NAME, binary_forward<B_##ID>, nullptr);                                              \
  REG(BNAME, binary_forward<B_##ID>, nullptr);
  EWB_REG(ADD, "elemwise_add", "broadcast_add")
  EWB_REG(SUB, "elemwise_sub", "broadcast_sub")
  EWB_REG(MUL, "elemwise_mul", "broadcast_mul")
  EWB_REG(DIV, "elemwise_div", "broadcast_div")
  EWB_REG(MOD, "_mod", "broadcast_mod")
  EWB_REG(POWER, "_power", "broadcast_power")
  EWB_REG(MAXIMUM, "_maximum", "broadcast_maximum")
  EWB_REG(MINIMUM, "_minimum", "broadcast_minimum")
  EWB_REG(HYPOT, "_hypot", "broadcast_hypot")
  EWB_REG_NG(EQUAL, "_equal", "broadcast_equal")
  EWB_REG_NG(NOT_EQUAL, "_not_equal", "broadcast_not_equal")
  EWB_REG_NG(GREATER, "_greater", "broadcast_greater")
  EWB_REG_NG(GREATER_EQUAL, "_greater_equal", "broadcast_greater_equal")
  EWB_REG_NG(LESSER, "_lesser", "broadcast_lesser")
  EWB_REG_NG(LESSER_EQUAL, "_lesser_equal", "broadcast_lesser_equal")
  EWB_REG_NG(LOGICAL_AND, "_logical_and", "broadcast_logical_and")
  EWB_REG_NG(LOGICAL_OR, "_logical_or", "broadcast_logical_or")
  EWB_REG_NG(LOGICAL_XOR, "_logical_xor", "broadcast_logical_xor")
#undef EWB_REG
#undef EWB_REG_NG
  REG("add_n", addn_forward, addn_backward);

  // scalar: (name, forward functor, reversed, gradient functor, side B, what backward reads)
#define EWS_REG(NAME, FN, REV, GFN, SIDEB, DEP) \
  REG(NAME, (scalar_forward<B_##FN, REV>), (scalar_backward<B_##GFN, SIDEB, DEP>));
#define EWS_REG_NG(NAME, FN) REG(NAME, (scalar_forward<B_##FN, 0>), nullptr);
  EWS_REG("_plus_scalar", ADD, 0, ADD, 0, DEP_NONE)
  EWS_REG("_minus_scalar", SUB, 0, SUB, 0, DEP_NONE)
  EWS_REG("_rminus_scalar", SUB, 1, SUB, 1, DEP_NONE)
  EWS_REG("_mul_scalar", MUL, 0, MUL, 0, DEP_NONE)
  EWS_REG("_div_scalar", DIV, 0, DIV, 0, DEP_NONE)
  EWS_REG("_rdiv_scalar", DIV, 1, DIV, 1, DEP_IN)
  EWS_REG("_mod_scalar", MOD, 0, MOD, 0, DEP_NONE)
  EWS_REG("_rmod_scalar", MOD, 1, MOD, 1, DEP_IN)
  EWS_REG("_power_scalar", POWER, 0, POWER, 0, DEP_IN)
  EWS_REG("_rpower_scalar", POWER, 1, RPOW_Y, 0, DEP_OUT)
  EWS_REG("_maximum_scalar", MAXIMUM, 0, MAXIMUM, 0, DEP_IN)
  EWS_REG("_minimum_scalar", MINIMUM, 0, MINIMUM, 0, DEP_IN)
  EWS_REG("_hypot_scalar", HYPOT, 0, HYPOT, 0, DEP_IN)
  EWS_REG_NG("_equal_scalar", EQUAL)
  EWS_REG_NG("_not_equal_scalar", NOT_EQUAL)
  EWS_REG_NG("_greater_scalar", GREATER)
  EWS_REG_NG("_greater_equal_scalar", GREATER_EQUAL)
  EWS_REG_NG("_lesser_scalar", LESSER)
  EWS_REG_NG("_lesser_equal_scalar", LESSER_EQUAL)
  EWS_REG_NG("_logical_and_scalar", LOGICAL_AND)
  EWS_REG_NG("_logical_or_scalar", LOGICAL_OR)
  EWS_REG_NG("_logical_xor_scalar", LOGICAL_XOR)
  EWS_REG("smooth_l1", SMOOTH_L1, 0, SMOOTH_L1, 0, DEP_IN)
#undef EWS_REG
#undef EWS_REG_NG
#undef REG
  return SN_OK;
}

}  // namespace snc
