// Smoke test of the GPU op kernels of symnet_cuda.so, without R and without
// the engine: loads the module with dlopen, gives it a minimal host API
// (error messages, and a register_kernels that records each op's GPU
// forward/backward), builds sn_tensor / sn_call structs by hand on gpu(0),
// runs each kernel on small inputs and compares with a plain host reference
// in double precision.  Prints one PASS/FAIL line per check and a summary.
//
// Build and run (from the repository root; host code only, no CUDA
// libraries needed at build time):
//   nvcc -std=c++17 -O1 -Isrc/engine -o /tmp/kernels_smoke tools/cuda-check/kernels_smoke.cu -ldl
//   /tmp/kernels_smoke PATH/TO/symnet_cuda.so
// (or g++ -std=c++17 -O1 -x c++ ... with the same arguments).
// Exit status: 0 all passed, 1 a check failed, 2 no GPU (clear message).
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include "device.h"
#include "error.h"
#include "op.h"
#include "tensor.h"
}

// ---------------------------------------------------------------------------
// Minimal host side
// ---------------------------------------------------------------------------
static char g_err[4096];
static int host_error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  return status;
}

struct Kern {
  sn_kernel fwd, bwd;
};
static std::map<std::string, Kern> g_kernels;
static int host_register(const char *op, sn_kernel f, sn_kernel b) {
  g_kernels[op] = Kern{f, b};
  return SN_OK;
}

static sn_gpu_api g_api;
static int g_fail, g_pass;
static const int DEV = 0;

static void report(bool ok, const std::string &what, const char *detail = "") {
  printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what.c_str(), detail[0] ? ": " : "", detail);
  if (ok)
    g_pass++;
  else
    g_fail++;
}

// ---------------------------------------------------------------------------
// Tensors on gpu(0)
// ---------------------------------------------------------------------------
static size_t dsize(sn_dtype t) {
  switch (t) {
    case SN_F32: return 4;
    case SN_F64: return 8;
    case SN_U8: return 1;
    case SN_I8: return 1;
    case SN_I32: return 4;
    case SN_I64: return 8;
    default: return 0;
  }
}

struct Tensor {
  sn_tensor t;
  sn_storage st;
  int64_t n = 0;
  Tensor() { memset(&t, 0, sizeof t); memset(&st, 0, sizeof st); }
  Tensor(const Tensor &) = delete;
  ~Tensor() {
    if (st.data) g_api.free(DEV, st.data, st.bytes);
  }
};

static void put(void *p, sn_dtype dt, int64_t i, double v) {
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
static double get(const void *p, sn_dtype dt, int64_t i) {
  switch (dt) {
    case SN_F32: return ((const float *)p)[i];
    case SN_F64: return ((const double *)p)[i];
    case SN_U8: return ((const uint8_t *)p)[i];
    case SN_I8: return ((const int8_t *)p)[i];
    case SN_I32: return ((const int32_t *)p)[i];
    case SN_I64: return (double)((const int64_t *)p)[i];
    default: return 0;
  }
}

typedef std::vector<int64_t> Shape;
typedef std::vector<double> Vals;

static Tensor *mk(const Shape &shape, sn_dtype dt, const Vals &vals = Vals()) {
  Tensor *x = new Tensor;
  x->t.dtype = dt;
  x->t.shape.ndim = (int)shape.size();
  x->n = 1;
  for (size_t i = 0; i < shape.size(); i++) {
    x->t.shape.dim[i] = shape[i];
    x->n *= shape[i];
  }
  size_t bytes = (size_t)x->n * dsize(dt);
  if (bytes == 0) bytes = 8;
  void *p = nullptr;
  if (g_api.alloc(DEV, bytes, &p) != SN_OK) {
    printf("alloc failed: %s\n", g_err);
    return x;
  }
  x->st.refcount = 1;
  x->st.data = p;
  x->st.bytes = bytes;
  x->st.dev.type = SN_DEV_GPU;
  x->st.dev.id = DEV;
  x->st.owns = 0;
  x->t.st = &x->st;
  x->t.offset = 0;
  std::vector<unsigned char> h(bytes, 0);
  for (int64_t i = 0; i < x->n && i < (int64_t)vals.size(); i++) put(h.data(), dt, i, vals[i]);
  if (vals.empty())  // poison: NaN for floats, so that unwritten outputs show
    for (int64_t i = 0; i < x->n; i++) put(h.data(), dt, i, dt == SN_F32 || dt == SN_F64 ? NAN : 77);
  g_api.copy(p, DEV, h.data(), 0, bytes, 0);
  return x;
}

static Vals fetch_now(const Tensor *x) {
  std::vector<unsigned char> h(x->st.bytes);
  g_api.sync(DEV);
  g_api.copy(h.data(), 0, x->st.data, DEV, x->st.bytes, 1);
  Vals v((size_t)x->n);
  for (int64_t i = 0; i < x->n; i++) v[i] = get(h.data(), x->t.dtype, i);
  return v;
}

// fetch(x) reads the tensor back when the value is used, not when the
// expression is evaluated: in expect(what, call(...), fetch(y), ...) the
// order in which arguments are evaluated is unspecified, so the read must
// wait until expect runs, after the kernel call.
struct Fetch {
  const Tensor *t;
  operator Vals() const { return fetch_now(t); }
};
static Fetch fetch(const Tensor *x) { return Fetch{x}; }

// ---------------------------------------------------------------------------
// Parameters: a fake op with a schema of the given names
// ---------------------------------------------------------------------------
struct Params {
  std::vector<sn_param_spec> specs;
  std::vector<sn_pval> vals;
  sn_op op;
  sn_params p;
  explicit Params(const char *name) {
    memset(&op, 0, sizeof op);
    op.name = name;
  }
  sn_pval &add(const char *name) {
    sn_param_spec s;
    memset(&s, 0, sizeof s);
    s.name = name;
    specs.push_back(s);
    sn_pval v;
    memset(&v, 0, sizeof v);
    v.set = 1;
    vals.push_back(v);
    return vals.back();
  }
  Params &i(const char *name, int64_t v) {
    add(name).i = v;
    return *this;
  }
  Params &f(const char *name, double v) {
    add(name).f = v;
    return *this;
  }
  Params &s(const char *name, const Shape &v) {
    sn_pval &pv = add(name);
    pv.s.ndim = (int)v.size();
    for (size_t k = 0; k < v.size(); k++) pv.s.dim[k] = v[k];
    snprintf(pv.str, sizeof pv.str, "(...)");
    return *this;
  }
  Params &none(const char *name) {
    sn_pval &pv = add(name);
    pv.set = 0;
    pv.s.ndim = -1;
    return *this;
  }
  const sn_params *get() {
    op.params = specs.data();
    op.nparams = (int)specs.size();
    memset(&p, 0, sizeof p);
    p.op = &op;
    p.n = (int)vals.size();
    for (size_t k = 0; k < vals.size(); k++) p.v[k] = vals[k];
    return &p;
  }
};

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------
typedef std::vector<Tensor *> TL;

static int call(const char *name, bool backward, Params &pr, const TL &in, const TL &out,
                const TL &og = TL(), const TL &ig = TL(), std::vector<int> req = {},
                uint64_t seed = 0, int is_train = 1) {
  auto it = g_kernels.find(name);
  if (it == g_kernels.end() || !(backward ? it->second.bwd : it->second.fwd)) {
    snprintf(g_err, sizeof g_err, "no GPU %s kernel registered for %s",
             backward ? "backward" : "forward", name);
    return SN_ERR_UNSUPPORTED;
  }
  std::vector<sn_tensor *> vin, vout, vog, vig;
  for (auto *t : in) vin.push_back(t ? &t->t : nullptr);
  for (auto *t : out) vout.push_back(t ? &t->t : nullptr);
  for (auto *t : og) vog.push_back(t ? &t->t : nullptr);
  for (auto *t : ig) vig.push_back(t ? &t->t : nullptr);
  size_t nreq = backward ? ig.size() : out.size();
  if (req.empty()) req.assign(nreq, SN_REQ_WRITE);
  sn_call c;
  memset(&c, 0, sizeof c);
  c.p = pr.get();
  c.in = vin.data();
  c.nin = (int)vin.size();
  c.out = vout.data();
  c.nout = (int)vout.size();
  c.ograd = backward ? vog.data() : nullptr;
  c.igrad = backward ? vig.data() : nullptr;
  c.req = req.data();
  c.is_train = is_train;
  c.seed = seed;
  c.dev.type = SN_DEV_GPU;
  c.dev.id = DEV;
  int rc = (backward ? it->second.bwd : it->second.fwd)(&c);
  if (rc == SN_OK) rc = g_api.sync(DEV);
  return rc;
}

static bool close_to(double a, double b, double rtol, double atol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= atol + rtol * std::fabs(b);
}

static void expect(const std::string &what, int rc, const Fetch &lazy, const Vals &want,
                   double rtol = 1e-5, double atol = 1e-6) {
  char buf[4400];
  if (rc != SN_OK) {
    snprintf(buf, sizeof buf, "status %d: %s", rc, g_err);
    report(false, what, buf);
    return;
  }
  const Vals got = lazy;
  if (got.size() != want.size()) {
    snprintf(buf, sizeof buf, "%zu values, expected %zu", got.size(), want.size());
    report(false, what, buf);
    return;
  }
  for (size_t i = 0; i < got.size(); i++)
    if (!close_to(got[i], want[i], rtol, atol)) {
      snprintf(buf, sizeof buf, "element %zu: got %.9g, expected %.9g", i, got[i], want[i]);
      report(false, what, buf);
      return;
    }
  report(true, what);
}

static void expect_error(const std::string &what, int rc, const char *needle) {
  char buf[4400];
  if (rc == SN_OK) {
    report(false, what, "expected an error, got SN_OK");
    return;
  }
  if (needle && !strstr(g_err, needle)) {
    snprintf(buf, sizeof buf, "message '%s' lacks '%s'", g_err, needle);
    report(false, what, buf);
    return;
  }
  report(true, what);
}

// Deterministic test data.
static Vals seq(int64_t n, double lo, double hi, uint64_t salt = 1) {
  Vals v((size_t)n);
  uint64_t x = 0x12345678ull * salt + 7;
  for (int64_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = lo + (hi - lo) * ((double)(x >> 11) / 9007199254740992.0);
  }
  return v;
}
static int64_t prod(const Shape &s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}
static const char *tn(sn_dtype dt) { return dt == SN_F32 ? "f32" : "f64"; }
static double rt(sn_dtype dt) { return dt == SN_F32 ? 2e-5 : 1e-10; }

static std::vector<int64_t> unlin(const Shape &s, int64_t i) {
  std::vector<int64_t> ix(s.size());
  for (int d = (int)s.size() - 1; d >= 0; d--) {
    ix[d] = i % s[d];
    i /= s[d];
  }
  return ix;
}

// ---------------------------------------------------------------------------
// Element-wise
// ---------------------------------------------------------------------------
// X(name, lo, hi, f(x), gradient dy/dx (using x and y); NONE: no gradient
#define UNARY_TESTS(X)                                                          \
  X(sqrt, 0.2, 3, std::sqrt(x), 0.5 / y)                                        \
  X(rsqrt, 0.2, 3, 1 / std::sqrt(x), -0.5 * y * y * y)                          \
  X(cbrt, 0.2, 3, std::cbrt(x), 1 / (3 * y * y))                                \
  X(rcbrt, 0.2, 3, 1 / std::cbrt(x), -(y * y * y * y) / 3)                      \
  X(exp, -2, 2, std::exp(x), y)                                                 \
  X(expm1, -2, 2, std::expm1(x), y + 1)                                         \
  X(log, 0.2, 3, std::log(x), 1 / x)                                            \
  X(log1p, -0.5, 3, std::log1p(x), 1 / (1 + x))                                 \
  X(log2, 0.2, 3, std::log2(x), 1.4426950408889634 / x)                         \
  X(log10, 0.2, 3, std::log10(x), 0.4342944819032518 / x)                       \
  X(abs, -2, 2, std::fabs(x), x > 0 ? 1 : (x < 0 ? -1 : 0))                     \
  X(square, -2, 2, x *x, 2 * x)                                                 \
  X(reciprocal, 0.5, 3, 1 / x, -(y * y))                                        \
  X(negative, -2, 2, -x, -1)                                                    \
  X(tanh, -2, 2, std::tanh(x), 1 - y * y)                                       \
  X(sigmoid, -3, 3, 1 / (1 + std::exp(-x)), y * (1 - y))                        \
  X(relu, -2, 2, x > 0 ? x : 0, y > 0 ? 1 : 0)                                  \
  X(softsign, -2, 2, x / (1 + std::fabs(x)), 1 / ((1 + std::fabs(x)) * (1 + std::fabs(x)))) \
  X(sin, -2, 2, std::sin(x), std::cos(x))                                       \
  X(cos, -2, 2, std::cos(x), -std::sin(x))                                      \
  X(tan, -1, 1, std::tan(x), 1 + y * y)                                         \
  X(arcsin, -0.9, 0.9, std::asin(x), 1 / std::sqrt(1 - x * x))                  \
  X(arccos, -0.9, 0.9, std::acos(x), -1 / std::sqrt(1 - x * x))                 \
  X(arctan, -2, 2, std::atan(x), 1 / (1 + x * x))                               \
  X(sinh, -2, 2, std::sinh(x), std::cosh(x))                                    \
  X(cosh, -2, 2, std::cosh(x), std::sinh(x))                                    \
  X(arcsinh, -2, 2, std::asinh(x), 1 / std::hypot(x, 1.0))                      \
  X(arccosh, 1.2, 3, std::acosh(x), 1 / std::sqrt(x * x - 1))                   \
  X(arctanh, -0.9, 0.9, std::atanh(x), 1 / (1 - x * x))                         \
  X(degrees, -2, 2, 57.29577951308232 * x, 57.29577951308232)                   \
  X(radians, -2, 2, 0.017453292519943295 * x, 0.017453292519943295)            \
  X(erf, -2, 2, std::erf(x), 1.1283791670955126 * std::exp(-x * x))

#define UNARY_NOGRAD_TESTS(X)                                                   \
  X(sign, x > 0 ? 1 : (x < 0 ? -1 : 0))                                         \
  X(floor, std::floor(x))                                                       \
  X(ceil, std::ceil(x))                                                         \
  X(round, std::round(x))                                                       \
  X(rint, x - std::floor(x) <= std::ceil(x) - x ? std::floor(x) : std::ceil(x)) \
  X(trunc, std::trunc(x))                                                       \
  X(fix, std::trunc(x))                                                         \
  X(logical_not, x != 0 ? 0 : 1)

static void test_unary(sn_dtype dt) {
  const Shape sh = {3, 7};
  const int64_t n = prod(sh);
#define UT(NAME, LO, HI, F, G)                                                                \
  {                                                                                           \
    Vals xs = seq(n, LO, HI, 3), ys(n), gs = seq(n, -1, 1, 5), gx(n);                         \
    for (int64_t i = 0; i < n; i++) {                                                         \
      double x = xs[i];                                                                       \
      if (dt == SN_F32) x = (float)x;                                                         \
      xs[i] = x;                                                                              \
      double y = (F);                                                                         \
      ys[i] = y;                                                                              \
      if (dt == SN_F32) {                                                                     \
        y = (float)y;                                                                         \
        gs[i] = (float)gs[i];                                                                 \
      }                                                                                       \
      gx[i] = gs[i] * (G);                                                                    \
    }                                                                                         \
    Tensor *X_ = mk(sh, dt, xs), *Y_ = mk(sh, dt), *G_ = mk(sh, dt, gs), *GX_ = mk(sh, dt);   \
    Params p(#NAME);                                                                          \
    expect(std::string(#NAME " forward ") + tn(dt), call(#NAME, false, p, {X_}, {Y_}),        \
           fetch(Y_), ys, dt == SN_F32 ? 1e-5 : 1e-12, 1e-6);                                 \
    expect(std::string(#NAME " backward ") + tn(dt),                                          \
           call(#NAME, true, p, {X_}, {Y_}, {G_}, {GX_}), fetch(GX_), gx,                     \
           dt == SN_F32 ? 1e-4 : 1e-10, 1e-5);                                                \
    delete X_, delete Y_, delete G_, delete GX_;                                              \
  }
  UNARY_TESTS(UT)
#undef UT
#define UN(NAME, F)                                                                           \
  {                                                                                           \
    Vals xs = seq(n, -3, 3, 4), ys(n);                                                        \
    xs[0] = 2.5, xs[1] = -2.5, xs[2] = 0, xs[3] = 0.5;                                        \
    for (int64_t i = 0; i < n; i++) {                                                         \
      double x = dt == SN_F32 ? (float)xs[i] : xs[i];                                         \
      xs[i] = x;                                                                              \
      ys[i] = (F);                                                                            \
    }                                                                                         \
    Tensor *X_ = mk(sh, dt, xs), *Y_ = mk(sh, dt);                                            \
    Params p(#NAME);                                                                          \
    expect(std::string(#NAME " forward ") + tn(dt), call(#NAME, false, p, {X_}, {Y_}),        \
           fetch(Y_), ys, 0, 0);                                                              \
    delete X_, delete Y_;                                                                     \
  }
  UNARY_NOGRAD_TESTS(UN)
#undef UN
  // clip: a_min / a_max rounded to float32
  {
    Vals xs = seq(n, -2, 2, 9), ys(n), gs = seq(n, -1, 1, 2), gx(n);
    const double lo = (float)-0.7, hi = (float)0.9;
    for (int64_t i = 0; i < n; i++) {
      if (dt == SN_F32) xs[i] = (float)xs[i], gs[i] = (float)gs[i];
      ys[i] = xs[i] > hi ? hi : (xs[i] < lo ? lo : xs[i]);
      gx[i] = (xs[i] > hi || xs[i] < lo) ? 0 : gs[i];
    }
    Tensor *X_ = mk(sh, dt, xs), *Y_ = mk(sh, dt), *G_ = mk(sh, dt, gs), *GX_ = mk(sh, dt);
    Params p("clip");
    p.f("a_min", -0.7).f("a_max", 0.9);
    expect(std::string("clip forward ") + tn(dt), call("clip", false, p, {X_}, {Y_}), fetch(Y_), ys);
    expect(std::string("clip backward ") + tn(dt), call("clip", true, p, {X_}, {Y_}, {G_}, {GX_}),
           fetch(GX_), gx);
    delete X_, delete Y_, delete G_, delete GX_;
  }
  // Cast float -> int32 -> float, ones_like, zeros_like
  if (dt == SN_F64) {
    Vals xs = {1.7, -2.2, 3.0, 250.9};
    Tensor *X_ = mk({4}, SN_F64, xs), *Y_ = mk({4}, SN_I32), *Z_ = mk({4}, SN_F32);
    Params p("Cast");
    p.i("dtype", SN_I32);
    expect("Cast float64->int32", call("Cast", false, p, {X_}, {Y_}), fetch(Y_), {1, -2, 3, 250}, 0, 0);
    Params p2("Cast");
    p2.i("dtype", SN_F32);
    expect("Cast int32->float32", call("Cast", false, p2, {Y_}, {Z_}), fetch(Z_), {1, -2, 3, 250}, 0, 0);
    Params p3("ones_like");
    expect("ones_like int32", call("ones_like", false, p3, {Y_}, {Y_}), fetch(Y_), {1, 1, 1, 1}, 0, 0);
    Params p4("zeros_like");
    expect("zeros_like float64", call("zeros_like", false, p4, {X_}, {X_}), fetch(X_), {0, 0, 0, 0}, 0, 0);
    delete X_, delete Y_, delete Z_;
  }
}

static double host_mod(double a, double b) {
  if (b == 0) return 0;
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

struct BinRef {
  const char *same, *bcast;
  std::function<double(double, double)> f, da, db;  // da/db: derivatives (NULL: no grad)
  double lo, hi;
};

static void test_binary(sn_dtype dt) {
  std::vector<BinRef> ops = {
      {"elemwise_add", "broadcast_add", [](double a, double b) { return a + b; },
       [](double, double) { return 1.0; }, [](double, double) { return 1.0; }, -2, 2},
      {"elemwise_sub", "broadcast_sub", [](double a, double b) { return a - b; },
       [](double, double) { return 1.0; }, [](double, double) { return -1.0; }, -2, 2},
      {"elemwise_mul", "broadcast_mul", [](double a, double b) { return a * b; },
       [](double, double b) { return b; }, [](double a, double) { return a; }, -2, 2},
      {"elemwise_div", "broadcast_div", [](double a, double b) { return a / b; },
       [](double, double b) { return 1 / b; }, [](double a, double b) { return -a / (b * b); }, 0.5, 2},
      {"_mod", "broadcast_mod", host_mod, [](double, double) { return 1.0; },
       [](double a, double b) { return -std::floor(a / b); }, -3, 3},
      {"_power", "broadcast_power", [](double a, double b) { return std::pow(a, b); },
       [](double a, double b) { return b * std::pow(a, b - 1); },
       [](double a, double b) { return std::pow(a, b) * std::log(a); }, 0.5, 2},
      {"_maximum", "broadcast_maximum", [](double a, double b) { return a > b ? a : b; },
       [](double a, double b) { return a >= b ? 1.0 : 0.0; },
       [](double a, double b) { return a < b ? 1.0 : 0.0; }, -2, 2},
      {"_minimum", "broadcast_minimum", [](double a, double b) { return a < b ? a : b; },
       [](double a, double b) { return a <= b ? 1.0 : 0.0; },
       [](double a, double b) { return a > b ? 1.0 : 0.0; }, -2, 2},
      {"_hypot", "broadcast_hypot", [](double a, double b) { return std::hypot(a, b); },
       [](double a, double b) { return a / std::hypot(a, b); },
       [](double a, double b) { return b / std::hypot(a, b); }, -2, 2},
      {"_greater", "broadcast_greater", [](double a, double b) { return a > b ? 1.0 : 0.0; },
       nullptr, nullptr, -2, 2},
      {"_logical_xor", "broadcast_logical_xor",
       [](double a, double b) { return (a != 0) != (b != 0) ? 1.0 : 0.0; }, nullptr, nullptr, -1, 1},
  };
  const Shape so = {2, 3, 4}, sa = {2, 3, 4}, sb = {3, 1};
  const double tol = dt == SN_F32 ? 1e-4 : 1e-10;
  for (auto &op : ops) {
    for (int bc = 0; bc < 2; bc++) {
      const Shape sbb = bc ? sb : so;
      const int64_t n = prod(so), nb = prod(sbb);
      Vals a = seq(n, op.lo, op.hi, 11), b = seq(nb, op.lo, op.hi, 13), g = seq(n, -1, 1, 17);
      if (!op.da) {  // comparisons: make some ties
        for (int64_t i = 0; i < nb; i += 2) b[i] = 0;
        for (int64_t i = 0; i < n; i += 3) a[i] = 0;
      }
      if (dt == SN_F32) {
        for (auto &v : a) v = (float)v;
        for (auto &v : b) v = (float)v;
        for (auto &v : g) v = (float)v;
      }
      Vals y(n), ga(n, 0.0), gb(nb, 0.0);
      for (int64_t i = 0; i < n; i++) {
        auto ix = unlin(so, i);
        int64_t j = bc ? ix[1] : i;
        y[i] = op.f(a[i], b[j]);
        if (op.da) {
          ga[i] += g[i] * op.da(a[i], b[j]);
          gb[j] += g[i] * op.db(a[i], b[j]);
        }
      }
      const char *name = bc ? op.bcast : op.same;
      Tensor *A = mk(sa, dt, a), *B = mk(sbb, dt, b), *Y = mk(so, dt), *G = mk(so, dt, g),
             *GA = mk(sa, dt), *GB = mk(sbb, dt);
      Params p(name);
      expect(std::string(name) + " forward " + tn(dt), call(name, false, p, {A, B}, {Y}), fetch(Y), y, tol, 1e-6);
      if (op.da) {
        int rc = call(name, true, p, {A, B}, {Y}, {G}, {GA, GB});
        expect(std::string(name) + " backward lhs " + tn(dt), rc, fetch(GA), ga, tol, 1e-5);
        expect(std::string(name) + " backward rhs " + tn(dt), rc, fetch(GB), gb, tol, 1e-5);
      }
      delete A, delete B, delete Y, delete G, delete GA, delete GB;
    }
  }
  // scalar ops
  struct SRef {
    const char *name;
    std::function<double(double, double)> f, d;  // d/dx
    double lo, hi;
  };
  std::vector<SRef> sops = {
      {"_plus_scalar", [](double x, double s) { return x + s; }, [](double, double) { return 1.0; }, -2, 2},
      {"_rminus_scalar", [](double x, double s) { return s - x; }, [](double, double) { return -1.0; }, -2, 2},
      {"_rdiv_scalar", [](double x, double s) { return s / x; }, [](double x, double s) { return -s / (x * x); }, 0.5, 2},
      {"_mod_scalar", host_mod, [](double, double) { return 1.0; }, -3, 3},
      {"_rmod_scalar", [](double x, double s) { return host_mod(s, x); },
       [](double x, double s) { return -std::floor(s / x); }, 0.3, 2},
      {"_power_scalar", [](double x, double s) { return std::pow(x, s); },
       [](double x, double s) { return s * std::pow(x, s - 1); }, 0.5, 2},
      {"_rpower_scalar", [](double x, double s) { return std::pow(s, x); },
       [](double x, double s) { return std::pow(s, x) * std::log(s); }, -1, 1},
      {"_maximum_scalar", [](double x, double s) { return x > s ? x : s; },
       [](double x, double s) { return x >= s ? 1.0 : 0.0; }, -2, 2},
      {"smooth_l1",
       [](double x, double s) {
         double s2 = s * s;
         return x > 1 / s2 ? x - 0.5 / s2 : (x < -1 / s2 ? -x - 0.5 / s2 : 0.5 * x * x * s2);
       },
       [](double x, double s) {
         double s2 = s * s;
         return x > 1 / s2 ? 1.0 : (x < -1 / s2 ? -1.0 : s2 * x);
       },
       -2, 2},
  };
  const double sc = 1.5;
  for (auto &op : sops) {
    const Shape sh = {5, 3};
    const int64_t n = prod(sh);
    Vals x = seq(n, op.lo, op.hi, 21), g = seq(n, -1, 1, 23), y(n), gx(n);
    for (int64_t i = 0; i < n; i++) {
      if (dt == SN_F32) x[i] = (float)x[i], g[i] = (float)g[i];
      y[i] = op.f(x[i], sc);
      gx[i] = g[i] * op.d(x[i], sc);
    }
    Tensor *X = mk(sh, dt, x), *Y = mk(sh, dt), *G = mk(sh, dt, g), *GX = mk(sh, dt);
    Params p(op.name);
    p.f("scalar", sc).i("is_int", 0);
    expect(std::string(op.name) + " forward " + tn(dt), call(op.name, false, p, {X}, {Y}), fetch(Y), y, tol, 1e-6);
    expect(std::string(op.name) + " backward " + tn(dt), call(op.name, true, p, {X}, {Y}, {G}, {GX}),
           fetch(GX), gx, tol, 1e-5);
    delete X, delete Y, delete G, delete GX;
  }
  // add_n
  {
    const Shape sh = {4, 5};
    const int64_t n = prod(sh);
    Vals a = seq(n, -1, 1, 1), b = seq(n, -1, 1, 2), c = seq(n, -1, 1, 3), y(n);
    if (dt == SN_F32)
      for (Vals *v : {&a, &b, &c})
        for (auto &e : *v) e = (float)e;
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i] + c[i];
    Tensor *A = mk(sh, dt, a), *B = mk(sh, dt, b), *C = mk(sh, dt, c), *Y = mk(sh, dt),
           *GA = mk(sh, dt), *GB = mk(sh, dt), *GC = mk(sh, dt);
    Params p("add_n");
    p.i("num_args", 3);
    expect(std::string("add_n forward ") + tn(dt), call("add_n", false, p, {A, B, C}, {Y}), fetch(Y), y, tol, 1e-6);
    int rc = call("add_n", true, p, {A, B, C}, {Y}, {A}, {GA, GB, GC});
    expect(std::string("add_n backward ") + tn(dt), rc, fetch(GC), a, 0, 0);
    delete A, delete B, delete C, delete Y, delete GA, delete GB, delete GC;
  }
}

// ---------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------
// Reference: out[kept index] = fold over reduced dims.
static Vals host_reduce(const Shape &s, const Vals &x, const std::vector<int> &mask,
                        std::function<double(double, double)> comb, double init, Shape *os) {
  Shape o;
  for (size_t d = 0; d < s.size(); d++)
    if (!mask[d]) o.push_back(s[d]);
  if (o.empty()) o.push_back(1);
  *os = o;
  Vals out((size_t)prod(o), init);
  for (int64_t i = 0; i < prod(s); i++) {
    auto ix = unlin(s, i);
    int64_t j = 0;
    for (size_t d = 0; d < s.size(); d++)
      if (!mask[d]) j = j * s[d] + ix[d];
    out[j] = comb(out[j], x[i]);
  }
  return out;
}

static void test_reduce(sn_dtype dt) {
  const double tol = dt == SN_F32 ? 1e-5 : 1e-11;
  struct Case {
    Shape s;
    std::vector<int> mask;
    Shape axis;
  };
  std::vector<Case> cases = {
      {{4, 5, 6}, {0, 1, 0}, {1}},      {{4, 5, 6}, {1, 0, 1}, {0, 2}}, {{4, 5, 6}, {1, 1, 1}, {}},
      {{3, 70000}, {0, 1}, {1}},        {{20000, 3}, {0, 1}, {1}},      {{3000, 70}, {1, 0}, {0}},
      {{7, 3, 5, 2}, {0, 1, 0, 1}, {1, 3}},
  };
  for (auto &cs : cases) {
    const int64_t n = prod(cs.s);
    Vals x = seq(n, -1, 1, 31);
    if (dt == SN_F32)
      for (auto &v : x) v = (float)v;
    Shape os;
    char what[128];
    snprintf(what, sizeof what, "sum %lldx..(%zu dims) mask %d%d%d", (long long)cs.s[0], cs.s.size(),
             cs.mask[0], cs.mask.size() > 1 ? cs.mask[1] : 0, cs.mask.size() > 2 ? cs.mask[2] : 0);
    Vals ref = host_reduce(cs.s, x, cs.mask, [](double a, double v) { return a + v; }, 0, &os);
    Vals refmax = host_reduce(cs.s, x, cs.mask, [](double a, double v) { return v > a ? v : a; }, -INFINITY, &os);
    Tensor *X = mk(cs.s, dt, x), *Y = mk(os, dt), *M = mk(os, dt), *GX = mk(cs.s, dt);
    Params p("sum");
    if (cs.axis.empty())
      p.none("axis");
    else
      p.s("axis", cs.axis);
    p.i("keepdims", 0).i("exclude", 0);
    expect(std::string(what) + " forward " + tn(dt), call("sum", false, p, {X}, {Y}), fetch(Y), ref,
           tol, 1e-6 * std::sqrt((double)n));
    Params pm("max");
    if (cs.axis.empty())
      pm.none("axis");
    else
      pm.s("axis", cs.axis);
    pm.i("keepdims", 0).i("exclude", 0);
    expect(std::string("max ") + (what + 4) + " " + tn(dt), call("max", false, pm, {X}, {M}), fetch(M),
           refmax, 0, 0);
    // sum backward: broadcast of the output gradient; max backward: to the argmax positions
    Vals g = seq((int64_t)ref.size(), -1, 1, 37), gx(n), gxm(n);
    if (dt == SN_F32)
      for (auto &v : g) v = (float)v;
    Tensor *G = mk(os, dt, g);
    Vals mres = fetch(M);
    for (int64_t i = 0; i < n; i++) {
      auto ix = unlin(cs.s, i);
      int64_t j = 0;
      for (size_t d = 0; d < cs.s.size(); d++)
        if (!cs.mask[d]) j = j * cs.s[d] + ix[d];
      gx[i] = g[j];
      gxm[i] = x[i] == mres[j] ? g[j] : 0;
    }
    expect(std::string(what) + " backward " + tn(dt), call("sum", true, p, {X}, {Y}, {G}, {GX}), fetch(GX), gx, 0, 0);
    expect(std::string("max ") + (what + 4) + " backward " + tn(dt), call("max", true, pm, {X}, {M}, {G}, {GX}),
           fetch(GX), gxm, 0, 0);
    delete X, delete Y, delete M, delete GX, delete G;
  }
  // mean over everything, prod with zeros, norm, argmax / argmin
  {
    const Shape s = {3, 4};
    Vals x = seq(12, 0.5, 1.5, 41);
    x[5] = 0;  // one zero in row 1
    x[8] = 0, x[9] = 0;  // two zeros in row 2
    if (dt == SN_F32)
      for (auto &v : x) v = (float)v;
    Tensor *X = mk(s, dt, x), *Y = mk({3}, dt), *G = mk({3}, dt, {1.0, 2.0, 3.0}), *GX = mk(s, dt);
    Params p("prod");
    p.s("axis", {1}).i("keepdims", 0).i("exclude", 0);
    Vals y(3, 1.0), gx(12);
    for (int r = 0; r < 3; r++)
      for (int k = 0; k < 4; k++) y[r] *= x[r * 4 + k];
    for (int r = 0; r < 3; r++)
      for (int k = 0; k < 4; k++) {
        double o = 1;
        for (int q = 0; q < 4; q++)
          if (q != k) o *= x[r * 4 + q];
        gx[r * 4 + k] = (r + 1) * o;
      }
    expect(std::string("prod forward ") + tn(dt), call("prod", false, p, {X}, {Y}), fetch(Y), y, tol, 1e-7);
    expect(std::string("prod backward (zeros) ") + tn(dt), call("prod", true, p, {X}, {Y}, {G}, {GX}),
           fetch(GX), gx, tol, 1e-7);
    Tensor *N = mk({1}, dt);
    Params pn("norm");
    pn.i("ord", 2).none("axis").i("out_dtype", 0).i("keepdims", 0);
    double ss = 0;
    for (auto v : x) ss += v * v;
    expect(std::string("norm ord=2 forward ") + tn(dt), call("norm", false, pn, {X}, {N}), fetch(N),
           {std::sqrt(ss)}, tol, 1e-7);
    Tensor *A = mk({3}, dt);
    Params pa("argmax");
    pa.i("axis", 1).i("keepdims", 0);
    Vals am(3);
    for (int r = 0; r < 3; r++) {
      int best = 0;
      for (int k = 1; k < 4; k++)
        if (x[r * 4 + k] > x[r * 4 + best]) best = k;
      am[r] = best;
    }
    expect(std::string("argmax axis=1 ") + tn(dt), call("argmax", false, pa, {X}, {A}), fetch(A), am, 0, 0);
    Tensor *A1 = mk({1}, dt);
    Params pi("argmin");
    pi.none("axis").i("keepdims", 0);
    expect(std::string("argmin flattened (first of tied zeros) ") + tn(dt),
           call("argmin", false, pi, {X}, {A1}), fetch(A1), {5}, 0, 0);
    Tensor *M = mk({1}, dt);
    Params pm("mean");
    pm.none("axis").i("keepdims", 0).i("exclude", 0);
    double sm = 0;
    for (auto v : x) sm += v;
    expect(std::string("mean all ") + tn(dt), call("mean", false, pm, {X}, {M}), fetch(M), {sm / 12}, tol, 1e-7);
    delete X, delete Y, delete G, delete GX, delete N, delete A, delete A1, delete M;
  }
  // argmax over a long row (block reduction, NaN wins)
  {
    const int64_t n = 5000;
    Vals x = seq(n, -1, 1, 43);
    x[1234] = 5, x[4321] = 5;
    Tensor *X = mk({2, n}, dt, [&] { Vals v = x; v.insert(v.end(), x.begin(), x.end()); v[n + 777] = NAN; return v; }());
    Tensor *A = mk({2}, dt);
    Params pa("argmax");
    pa.i("axis", 1).i("keepdims", 0);
    expect(std::string("argmax long rows (ties, NaN) ") + tn(dt), call("argmax", false, pa, {X}, {A}), fetch(A),
           {1234, 777}, 0, 0);
    delete X, delete A;
  }
}

// ---------------------------------------------------------------------------
// Indexing
// ---------------------------------------------------------------------------
static void test_indexing(sn_dtype dt) {
  // take axis 0, clip, repeated indices
  {
    const Shape sa = {5, 3};
    Vals a = seq(15, -1, 1, 51), idx = {4, 0, 4, 9, -2};  // 9 -> 4, -2 -> 0 (clip)
    if (dt == SN_F32)
      for (auto &v : a) v = (float)v;
    Tensor *A = mk(sa, dt, a), *I = mk({5}, SN_F32, idx), *Y = mk({5, 3}, dt), *G = mk({5, 3}, dt, seq(15, -1, 1, 3)),
           *GA = mk(sa, dt), *GI = mk({5}, SN_F32);
    Vals g = fetch(G);
    const int m[5] = {4, 0, 4, 4, 0};
    Vals y(15), ga(15, 0.0);
    for (int k = 0; k < 5; k++)
      for (int i = 0; i < 3; i++) {
        y[k * 3 + i] = a[m[k] * 3 + i];
        ga[m[k] * 3 + i] += g[k * 3 + i];
      }
    Params p("take");
    p.i("axis", 0).i("mode", 2);
    expect(std::string("take clip forward ") + tn(dt), call("take", false, p, {A, I}, {Y}), fetch(Y), y, 0, 0);
    int rc = call("take", true, p, {A, I}, {Y}, {G}, {GA, GI});
    expect(std::string("take clip backward ") + tn(dt), rc, fetch(GA), ga, 1e-6, 1e-6);
    expect(std::string("take index gradient is zero ") + tn(dt), rc, fetch(GI), Vals(5, 0.0), 0, 0);
    Params pr("take");
    pr.i("axis", 0).i("mode", 0);
    expect_error(std::string("take raise: out-of-range index is an error ") + tn(dt),
                 call("take", false, pr, {A, I}, {Y}), "out of range");
    Tensor *In = mk({2}, SN_F64, {1, NAN});
    Tensor *Yn = mk({2, 3}, dt);
    expect_error(std::string("take: NaN index is an error ") + tn(dt), call("take", false, p, {A, In}, {Yn}), "NaN");
    delete A, delete I, delete Y, delete G, delete GA, delete GI, delete In, delete Yn;
  }
  // Embedding
  {
    Vals w = seq(12, -1, 1, 61), d = {2, 0, 2.6};  // 2.6 rounds to 3
    if (dt == SN_F32)
      for (auto &v : w) v = (float)v;
    Tensor *D = mk({3}, SN_I32, {2, 0, 3}), *W = mk({4, 3}, dt, w), *Y = mk({3, 3}, dt);
    Tensor *Df = mk({3}, SN_F64, d);
    Params p("Embedding");
    p.i("input_dim", 4).i("output_dim", 3).i("dtype", dt).i("sparse_grad", 0);
    Vals y(9);
    const int m[3] = {2, 0, 3};
    for (int k = 0; k < 3; k++)
      for (int i = 0; i < 3; i++) y[k * 3 + i] = w[m[k] * 3 + i];
    expect(std::string("Embedding forward (int32 indices) ") + tn(dt), call("Embedding", false, p, {D, W}, {Y}),
           fetch(Y), y, 0, 0);
    expect(std::string("Embedding forward (rounded float indices) ") + tn(dt),
           call("Embedding", false, p, {Df, W}, {Y}), fetch(Y), y, 0, 0);
    Tensor *G = mk({3, 3}, dt, seq(9, -1, 1, 7)), *GW = mk({4, 3}, dt), *GD = mk({3}, SN_I32);
    Vals g = fetch(G), gw(12, 0.0);
    for (int k = 0; k < 3; k++)
      for (int i = 0; i < 3; i++) gw[m[k] * 3 + i] += g[k * 3 + i];
    expect(std::string("Embedding backward ") + tn(dt), call("Embedding", true, p, {D, W}, {Y}, {G}, {GD, GW}),
           fetch(GW), gw, 1e-6, 1e-7);
    delete D, delete W, delete Y, delete Df, delete G, delete GW, delete GD;
  }
  // pick axis -1 wrap; one_hot; where; gather_nd
  {
    Vals x = seq(12, -1, 1, 71);
    if (dt == SN_F32)
      for (auto &v : x) v = (float)v;
    Tensor *X = mk({3, 4}, dt, x), *I = mk({3}, SN_F32, {1, -1, 5}), *Y = mk({3}, dt);
    Params p("pick");
    p.i("axis", -1).i("keepdims", 0).i("mode", 0);
    expect(std::string("pick wrap forward ") + tn(dt), call("pick", false, p, {X, I}, {Y}), fetch(Y),
           {x[1], x[4 + 3], x[8 + 1]}, 0, 0);
    Tensor *G = mk({3}, dt, {1, 2, 3}), *GX = mk({3, 4}, dt), *GI = mk({3}, SN_F32);
    Vals gx(12, 0.0);
    gx[1] = 1, gx[7] = 2, gx[9] = 3;
    expect(std::string("pick backward ") + tn(dt), call("pick", true, p, {X, I}, {Y}, {G}, {GX, GI}), fetch(GX),
           gx, 0, 0);
    Tensor *OH = mk({3, 4}, dt);
    Params po("one_hot");
    po.i("depth", 4).f("on_value", 2).f("off_value", -1).i("dtype", dt);
    Tensor *OI = mk({3}, SN_I64, {3, 7, 0});
    expect(std::string("one_hot (out-of-range row is off) ") + tn(dt), call("one_hot", false, po, {OI}, {OH}),
           fetch(OH), {-1, -1, -1, 2, -1, -1, -1, -1, 2, -1, -1, -1}, 0, 0);
    Tensor *C = mk({3}, SN_U8, {1, 0, 1}), *Yw = mk({3, 4}, dt), *Z = mk({3, 4}, dt, Vals(12, 9.0));
    Vals yw = x;
    for (int i = 4; i < 8; i++) yw[i] = 9;
    Params pw("where");
    expect(std::string("where (row condition) ") + tn(dt), call("where", false, pw, {C, X, Z}, {Yw}), fetch(Yw),
           yw, 0, 0);
    // gather_nd: data (3, 4), indices (2, 2) -> picks (2, 1) and (-1 -> 2, 3)
    Tensor *GI2 = mk({2, 2}, SN_F32, {2, -1, 1, 3}), *GY = mk({2}, dt);
    Params pg("gather_nd");
    expect(std::string("gather_nd forward (wrap) ") + tn(dt), call("gather_nd", false, pg, {X, GI2}, {GY}),
           fetch(GY), {x[2 * 4 + 1], x[2 * 4 + 3]}, 0, 0);
    Tensor *GG = mk({2}, dt, {1, 10}), *GD = mk({3, 4}, dt), *GGI = mk({2, 2}, SN_F32);
    Vals gd(12, 0.0);
    gd[9] = 1, gd[11] = 10;
    expect(std::string("gather_nd backward ") + tn(dt),
           call("gather_nd", true, pg, {X, GI2}, {GY}, {GG}, {GD, GGI}), fetch(GD), gd, 0, 0);
    delete X, delete I, delete Y, delete G, delete GX, delete GI, delete OH, delete OI, delete C, delete Yw,
        delete Z, delete GI2, delete GY, delete GG, delete GD, delete GGI;
  }
}

// ---------------------------------------------------------------------------
// Shape ops
// ---------------------------------------------------------------------------
static void test_shape(sn_dtype dt) {
  const Shape s = {2, 3, 4};
  Vals x = seq(24, -1, 1, 81);
  if (dt == SN_F32)
    for (auto &v : x) v = (float)v;
  Tensor *X = mk(s, dt, x);
  // transpose axes (2, 0, 1): out (4, 2, 3)
  {
    Tensor *Y = mk({4, 2, 3}, dt), *GX = mk(s, dt);
    Vals y(24);
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 2; j++)
        for (int k = 0; k < 3; k++) y[(i * 2 + j) * 3 + k] = x[(j * 3 + k) * 4 + i];
    Params p("transpose");
    p.s("axes", {2, 0, 1});
    expect(std::string("transpose forward ") + tn(dt), call("transpose", false, p, {X}, {Y}), fetch(Y), y, 0, 0);
    expect(std::string("transpose backward ") + tn(dt), call("transpose", true, p, {X}, {Y}, {Y}, {GX}), fetch(GX), x,
           0, 0);
    delete Y, delete GX;
  }
  // broadcast_to (2, 1, 4) -> (2, 3, 4) and its backward
  {
    Vals b = seq(8, -1, 1, 83);
    if (dt == SN_F32)
      for (auto &v : b) v = (float)v;
    Tensor *B = mk({2, 1, 4}, dt, b), *Y = mk(s, dt), *GB = mk({2, 1, 4}, dt);
    Vals y(24), gb(8, 0.0);
    for (int i = 0; i < 24; i++) {
      auto ix = unlin(s, i);
      y[i] = b[ix[0] * 4 + ix[2]];
      gb[ix[0] * 4 + ix[2]] += x[i];
    }
    Params p("broadcast_to");
    p.s("shape", {2, 3, 4});
    expect(std::string("broadcast_to forward ") + tn(dt), call("broadcast_to", false, p, {B}, {Y}), fetch(Y), y, 0, 0);
    expect(std::string("broadcast_to backward ") + tn(dt), call("broadcast_to", true, p, {B}, {Y}, {X}, {GB}),
           fetch(GB), gb, 1e-6, 1e-6);
    delete B, delete Y, delete GB;
  }
  // tile reps (2, 1, 2) and repeat 2 along axis 1
  {
    Tensor *Y = mk({4, 3, 8}, dt), *GX = mk(s, dt);
    Vals y(96), gx(24, 0.0);
    Vals g = seq(96, -1, 1, 85);
    if (dt == SN_F32)
      for (auto &v : g) v = (float)v;
    Tensor *G = mk({4, 3, 8}, dt, g);
    for (int i = 0; i < 96; i++) {
      auto ix = unlin({4, 3, 8}, i);
      int64_t src = ((ix[0] % 2) * 3 + ix[1]) * 4 + ix[2] % 4;
      y[i] = x[src];
      gx[src] += g[i];
    }
    Params p("tile");
    p.s("reps", {2, 1, 2});
    expect(std::string("tile forward ") + tn(dt), call("tile", false, p, {X}, {Y}), fetch(Y), y, 0, 0);
    expect(std::string("tile backward ") + tn(dt), call("tile", true, p, {X}, {Y}, {G}, {GX}), fetch(GX), gx, 1e-6,
           1e-6);
    Tensor *R = mk({2, 6, 4}, dt), *GR = mk({2, 6, 4}, dt, seq(48, -1, 1, 87));
    Vals r(48), gr = fetch(GR), gxr(24, 0.0);
    for (int i = 0; i < 48; i++) {
      auto ix = unlin({2, 6, 4}, i);
      int64_t src = (ix[0] * 3 + ix[1] / 2) * 4 + ix[2];
      r[i] = x[src];
      gxr[src] += gr[i];
    }
    Params pr("repeat");
    pr.i("repeats", 2).i("axis", 1);
    expect(std::string("repeat forward ") + tn(dt), call("repeat", false, pr, {X}, {R}), fetch(R), r, 0, 0);
    expect(std::string("repeat backward ") + tn(dt), call("repeat", true, pr, {X}, {R}, {GR}, {GX}), fetch(GX), gxr,
           1e-6, 1e-6);
    delete Y, delete GX, delete G, delete R, delete GR;
  }
  // Concat dim 1 of (2,3,4) and (2,1,4); SliceChannel; stack
  {
    Vals b = seq(8, 5, 6, 89);
    if (dt == SN_F32)
      for (auto &v : b) v = (float)v;
    Tensor *B = mk({2, 1, 4}, dt, b), *Y = mk({2, 4, 4}, dt), *GX = mk(s, dt), *GB = mk({2, 1, 4}, dt);
    Vals y(32);
    for (int i = 0; i < 32; i++) {
      auto ix = unlin({2, 4, 4}, i);
      y[i] = ix[1] < 3 ? x[(ix[0] * 3 + ix[1]) * 4 + ix[2]] : b[ix[0] * 4 + ix[2]];
    }
    Params p("Concat");
    p.i("num_args", 2).i("dim", 1);
    expect(std::string("Concat forward ") + tn(dt), call("Concat", false, p, {X, B}, {Y}), fetch(Y), y, 0, 0);
    int rc = call("Concat", true, p, {X, B}, {Y}, {Y}, {GX, GB});
    expect(std::string("Concat backward arg0 ") + tn(dt), rc, fetch(GX), x, 0, 0);
    expect(std::string("Concat backward arg1 ") + tn(dt), rc, fetch(GB), b, 0, 0);
    Tensor *S0 = mk({2, 3, 2}, dt), *S1 = mk({2, 3, 2}, dt);
    Params ps("SliceChannel");
    ps.i("num_outputs", 2).i("axis", 2).i("squeeze_axis", 0);
    Vals s1(12);
    for (int i = 0; i < 12; i++) {
      auto ix = unlin({2, 3, 2}, i);
      s1[i] = x[(ix[0] * 3 + ix[1]) * 4 + 2 + ix[2]];
    }
    expect(std::string("SliceChannel forward ") + tn(dt), call("SliceChannel", false, ps, {X}, {S0, S1}),
           fetch(S1), s1, 0, 0);
    Vals gx = x;
    for (int i = 0; i < 24; i++)
      if (i % 4 < 2) gx[i] = 0;
    expect(std::string("SliceChannel backward (missing ograd zeroed) ") + tn(dt),
           call("SliceChannel", true, ps, {X}, {S0, S1}, {nullptr, S1}, {GX}), fetch(GX), gx, 0, 0);
    Tensor *ST = mk({2, 2, 3, 4}, dt);
    Params pst("stack");
    pst.i("axis", 1).i("num_args", 2);
    Vals st(48);
    for (int i = 0; i < 48; i++) {
      auto ix = unlin({2, 2, 3, 4}, i);
      st[i] = x[(ix[0] * 3 + ix[2]) * 4 + ix[3]];
    }
    expect(std::string("stack forward ") + tn(dt), call("stack", false, pst, {X, X}, {ST}), fetch(ST), st, 0, 0);
    delete B, delete Y, delete GX, delete GB, delete S0, delete S1, delete ST;
  }
  // slice with negative step; _slice_assign_scalar; Pad; UpSampling
  {
    Tensor *Y = mk({2, 2, 4}, dt), *GX = mk(s, dt);
    Params p("slice");
    p.s("begin", {INT64_MIN, 2}).s("end", {INT64_MIN, 0}).s("step", {1, -1});
    Vals y(16), gx(24, 0.0);
    for (int i = 0; i < 16; i++) {
      auto ix = unlin({2, 2, 4}, i);
      int64_t src = (ix[0] * 3 + (2 - ix[1])) * 4 + ix[2];
      y[i] = x[src];
      gx[src] = x[src];
    }
    expect(std::string("slice step -1 forward ") + tn(dt), call("slice", false, p, {X}, {Y}), fetch(Y), y, 0, 0);
    Tensor *GY = mk({2, 2, 4}, dt, y);
    expect(std::string("slice backward ") + tn(dt), call("slice", true, p, {X}, {Y}, {GY}, {GX}), fetch(GX), gx, 0, 0);
    Tensor *SA = mk(s, dt);
    Params pa("_slice_assign_scalar");
    pa.f("scalar", 7).s("begin", {1, 1}).s("end", {2, 3}).s("step", {});
    Vals sa = x;
    for (int i = 0; i < 24; i++) {
      auto ix = unlin(s, i);
      if (ix[0] == 1 && ix[1] >= 1) sa[i] = 7;
    }
    expect(std::string("_slice_assign_scalar forward ") + tn(dt), call("_slice_assign_scalar", false, pa, {X}, {SA}),
           fetch(SA), sa, 0, 0);
    delete Y, delete GX, delete GY, delete SA;
  }
  for (int mode = 0; mode < 3; mode++) {
    const Shape si = {1, 2, 3, 4}, so = {1, 2, 5, 7};
    Tensor *Xi = mk(si, dt, x), *Y = mk(so, dt), *G = mk(so, dt, seq(70, -1, 1, 91)), *GX = mk(si, dt);
    Vals g = fetch(G), y(70), gx(24, 0.0);
    auto src = [&](int64_t o, int64_t before, int64_t len) -> int64_t {
      int64_t i = o - before;
      if (i >= 0 && i < len) return i;
      if (mode == 0) return -1;
      if (mode == 1) return i < 0 ? 0 : len - 1;
      return i < 0 ? -i : 2 * (len - 1) - i;
    };
    for (int i = 0; i < 70; i++) {
      auto ix = unlin(so, i);
      int64_t yy = src(ix[2], 1, 3), xx = src(ix[3], 2, 4);
      if (yy < 0 || xx < 0) {
        y[i] = 0.25;
      } else {
        int64_t j = (ix[1] * 3 + yy) * 4 + xx;
        y[i] = x[j];
        gx[j] += g[i];
      }
    }
    Params p("Pad");
    p.i("mode", mode).s("pad_width", {0, 0, 0, 0, 1, 1, 2, 1}).f("constant_value", 0.25);
    const char *mn[] = {"constant", "edge", "reflect"};
    expect(std::string("Pad ") + mn[mode] + " forward " + tn(dt), call("Pad", false, p, {Xi}, {Y}), fetch(Y), y, 0, 0);
    expect(std::string("Pad ") + mn[mode] + " backward " + tn(dt), call("Pad", true, p, {Xi}, {Y}, {G}, {GX}),
           fetch(GX), gx, 1e-6, 1e-6);
    delete Xi, delete Y, delete G, delete GX;
  }
  {
    const Shape si = {1, 2, 3, 4}, so = {1, 2, 6, 8};
    Tensor *Xi = mk(si, dt, x), *Y = mk(so, dt), *G = mk(so, dt, seq(96, -1, 1, 93)), *GX = mk(si, dt);
    Vals g = fetch(G), y(96), gx(24, 0.0);
    for (int i = 0; i < 96; i++) {
      auto ix = unlin(so, i);
      int64_t j = (ix[1] * 3 + ix[2] / 2) * 4 + ix[3] / 2;
      y[i] = x[j];
      gx[j] += g[i];
    }
    Params p("UpSampling");
    p.s("scale", {2}).i("num_filter", 0).i("sample_type", 0).i("multi_input_mode", 0).i("num_args", 1).i("workspace", 512);
    expect(std::string("UpSampling nearest forward ") + tn(dt), call("UpSampling", false, p, {Xi}, {Y}), fetch(Y), y,
           0, 0);
    expect(std::string("UpSampling nearest backward ") + tn(dt), call("UpSampling", true, p, {Xi}, {Y}, {G}, {GX}),
           fetch(GX), gx, 1e-6, 1e-6);
    delete Xi, delete Y, delete G, delete GX;
  }
  delete X;
}

// ---------------------------------------------------------------------------
// Optimizers, random, sequence
// ---------------------------------------------------------------------------
static void test_optimizer(sn_dtype dt) {
  const int64_t n = 50;
  Vals w = seq(n, -1, 1, 101), g = seq(n, -3, 3, 103), m = seq(n, -0.1, 0.1, 107), v = seq(n, 0, 0.1, 109);
  if (dt == SN_F32)
    for (Vals *a : {&w, &g, &m, &v})
      for (auto &e : *a) e = (float)e;
  {
    Tensor *W = mk({n}, dt, w), *G = mk({n}, dt, g), *M = mk({n}, dt, m), *O = mk({n}, dt);
    const double lr = 0.1, mo = 0.9, wd = 0.01, rs = 0.5, cg = 1.0;
    Vals mo2(n), o(n);
    for (int64_t i = 0; i < n; i++) {
      double gr = rs * g[i];
      gr = gr > cg ? cg : (gr < -cg ? -cg : gr);
      mo2[i] = mo * m[i] - lr * wd * w[i] - lr * gr;
      o[i] = w[i] + mo2[i];
    }
    Params p("sgd_mom_update");
    p.f("lr", lr).f("momentum", mo).f("wd", wd).f("rescale_grad", rs).f("clip_gradient", cg).i("lazy_update", 1);
    int rc = call("sgd_mom_update", false, p, {W, G, M}, {O});
    expect(std::string("sgd_mom_update weight ") + tn(dt), rc, fetch(O), o, rt(dt) * 10, 1e-7);
    expect(std::string("sgd_mom_update mom (in place) ") + tn(dt), rc, fetch(M), mo2, rt(dt) * 10, 1e-7);
    delete W, delete G, delete M, delete O;
  }
  {
    Tensor *W = mk({n}, dt, w), *G = mk({n}, dt, g), *M = mk({n}, dt, m), *V = mk({n}, dt, v);
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.001;
    Vals o(n), m2(n), v2(n);
    for (int64_t i = 0; i < n; i++) {
      double gr = g[i] + wd * w[i];
      m2[i] = b1 * m[i] + (1 - b1) * gr;
      v2[i] = b2 * v[i] + (1 - b2) * gr * gr;
      o[i] = w[i] - lr * m2[i] / (std::sqrt(v2[i]) + eps);
    }
    Params p("adam_update");
    p.f("lr", lr).f("beta1", b1).f("beta2", b2).f("epsilon", eps).f("wd", wd).f("rescale_grad", 1).f("clip_gradient", -1).i("lazy_update", 1);
    int rc = call("adam_update", false, p, {W, G, M, V}, {W});  // output aliases the weight
    expect(std::string("adam_update weight (in place) ") + tn(dt), rc, fetch(W), o, rt(dt) * 10, 1e-7);
    expect(std::string("adam_update var ") + tn(dt), rc, fetch(V), v2, rt(dt) * 10, 1e-9);
    delete W, delete G, delete M, delete V;
  }
}

static uint64_t h_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
static double h_uniform(uint64_t seed, uint64_t i) {
  uint64_t r = h_mix64(seed ^ h_mix64(i));
  return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double h_normal(uint64_t seed, uint64_t i) {
  double u1 = h_uniform(seed, 2 * i), u2 = h_uniform(seed, 2 * i + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

static void test_random(sn_dtype dt) {
  const uint64_t seed = 0xC0FFEE1234ull;
  const int64_t n = 1000;
  Tensor *Y = mk({n}, dt);
  Vals u(n), z(n);
  for (int64_t i = 0; i < n; i++) {
    u[i] = -1 + 3 * h_uniform(seed, i);
    z[i] = 0.5 + 2 * h_normal(seed, i);
    if (dt == SN_F32) u[i] = (float)u[i], z[i] = (float)z[i];
  }
  Params p("_random_uniform");
  p.f("low", -1).f("high", 2).s("shape", {n}).add("ctx");
  p.i("dtype", 0);
  expect(std::string("_random_uniform = CPU generator (bit-exact) ") + tn(dt),
         call("_random_uniform", false, p, {}, {Y}, {}, {}, {}, seed), fetch(Y), u, 0, 0);
  Params pn("_random_normal");
  pn.f("loc", 0.5).f("scale", 2).s("shape", {n}).add("ctx");
  pn.i("dtype", 0);
  expect(std::string("_random_normal = CPU generator ") + tn(dt),
         call("_random_normal", false, pn, {}, {Y}, {}, {}, {}, seed), fetch(Y), z, dt == SN_F32 ? 1e-6 : 1e-12, 1e-12);
  Params pg("_random_gamma");
  pg.f("alpha", 2).f("beta", 3).s("shape", {n}).add("ctx");
  pg.i("dtype", 0);
  int rc = call("_random_gamma", false, pg, {}, {Y}, {}, {}, {}, seed);
  Vals gv = fetch(Y);
  double mean = 0;
  for (auto e : gv) mean += e / n;
  report(rc == SN_OK && std::fabs(mean - 6) < 0.6, std::string("_random_gamma mean ~ 6 ") + tn(dt));
  // Dropout: mask element i = (u(seed, i) < 1 - p) / (1 - p)
  {
    const Shape s = {10, 20};
    Vals x = seq(200, -1, 1, 111), y(200), mask(200);
    const double pk = 0.7;
    for (int i = 0; i < 200; i++) {
      if (dt == SN_F32) x[i] = (float)x[i];
      double m = h_uniform(seed, i) < pk ? 1.0 / pk : 0.0;
      if (dt == SN_F32) m = (float)m;
      mask[i] = m;
      y[i] = dt == SN_F32 ? (double)((float)x[i] * (float)m) : x[i] * m;
    }
    Tensor *X = mk(s, dt, x), *O = mk(s, dt), *M = mk(s, dt), *GX = mk(s, dt);
    Params pd("Dropout");
    pd.f("p", 0.3).i("mode", 0).s("axes", {}).i("cudnn_off", 0);
    rc = call("Dropout", false, pd, {X}, {O, M}, {}, {}, {}, seed, 1);
    expect(std::string("Dropout forward ") + tn(dt), rc, fetch(O), y, 0, 0);
    expect(std::string("Dropout mask ") + tn(dt), rc, fetch(M), mask, 0, 0);
    expect(std::string("Dropout backward ") + tn(dt), call("Dropout", true, pd, {X}, {O, M}, {X, nullptr}, {GX}),
           fetch(GX), y, 0, 0);
    rc = call("Dropout", false, pd, {X}, {O, M}, {}, {}, {}, seed, 0);
    expect(std::string("Dropout inference is identity ") + tn(dt), rc, fetch(O), x, 0, 0);
    // variational: axes (0,) -> mask (1, 20)
    Tensor *MV = mk({1, 20}, dt);
    Params pv("Dropout");
    pv.f("p", 0.3).i("mode", 0).s("axes", {0}).i("cudnn_off", 0);
    Vals yv(200);
    for (int i = 0; i < 200; i++) {
      double m = h_uniform(seed, i % 20) < pk ? 1.0 / pk : 0.0;
      if (dt == SN_F32) m = (float)m;
      yv[i] = dt == SN_F32 ? (double)((float)x[i] * (float)m) : x[i] * m;
    }
    expect(std::string("Dropout axes=(0,) forward ") + tn(dt), call("Dropout", false, pv, {X}, {O, MV}, {}, {}, {}, seed, 1),
           fetch(O), yv, 0, 0);
    delete X, delete O, delete M, delete GX, delete MV;
  }
  delete Y;
}

static void test_sequence(sn_dtype dt) {
  const Shape s = {4, 3, 2};  // (T, N, rest)
  Vals x = seq(24, -1, 1, 121);
  if (dt == SN_F32)
    for (auto &v : x) v = (float)v;
  Tensor *X = mk(s, dt, x), *L = mk({3}, SN_F32, {2, 4, 1}), *Y = mk(s, dt), *Yl = mk({3, 2}, dt);
  const int len[3] = {2, 4, 1};
  Vals ym(24), yl(6), yr(24);
  for (int i = 0; i < 24; i++) {
    auto ix = unlin(s, i);
    ym[i] = ix[0] >= len[ix[1]] ? -5 : x[i];
    int64_t t = ix[0], l = len[ix[1]];
    int64_t ts = t < l ? l - 1 - t : t;
    yr[i] = x[(ts * 3 + ix[1]) * 2 + ix[2]];
  }
  for (int b = 0; b < 3; b++)
    for (int r = 0; r < 2; r++) yl[b * 2 + r] = x[((len[b] - 1) * 3 + b) * 2 + r];
  Params pm("SequenceMask");
  pm.i("use_sequence_length", 1).f("value", -5).i("axis", 0);
  expect(std::string("SequenceMask forward ") + tn(dt), call("SequenceMask", false, pm, {X, L}, {Y}), fetch(Y), ym, 0, 0);
  Params pl("SequenceLast");
  pl.i("use_sequence_length", 1).i("axis", 0);
  expect(std::string("SequenceLast forward ") + tn(dt), call("SequenceLast", false, pl, {X, L}, {Yl}), fetch(Yl), yl, 0, 0);
  Params pr("SequenceReverse");
  pr.i("use_sequence_length", 1).i("axis", 0);
  expect(std::string("SequenceReverse forward ") + tn(dt), call("SequenceReverse", false, pr, {X, L}, {Y}), fetch(Y),
         yr, 0, 0);
  Tensor *Lbad = mk({3}, SN_I32, {2, 9, 1});
  expect_error(std::string("SequenceLast: length outside [1, T] is an error ") + tn(dt),
               call("SequenceLast", false, pl, {X, Lbad}, {Yl}), "sequence_length[1] = 9");
  delete X, delete L, delete Y, delete Yl, delete Lbad;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kernels_smoke PATH/symnet_cuda.so\n");
    return 1;
  }
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    printf("cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  sn_gpu_init_fn init;
  void *sym = dlsym(h, "symnet_cuda_init");
  memcpy(&init, &sym, sizeof init);
  if (!sym) {
    printf("%s has no symnet_cuda_init\n", argv[1]);
    return 1;
  }
  static sn_host_api host;
  host.abi_version = SN_GPU_ABI_VERSION;
  host.error = host_error;
  host.register_kernels = host_register;
  memset(&g_api, 0, sizeof g_api);
  int rc = init(&host, &g_api);
  if (rc != SN_OK) {
    printf("GPU not available: %s\n", g_err);
    return rc == SN_ERR_UNSUPPORTED ? 2 : 1;
  }
  printf("module: %s\n", g_api.describe());
  printf("GPU kernels registered: %zu ops\n", g_kernels.size());
  for (sn_dtype dt : {SN_F32, SN_F64}) {
    test_unary(dt);
    test_binary(dt);
    test_reduce(dt);
    test_indexing(dt);
    test_shape(dt);
    test_optimizer(dt);
    test_random(dt);
    test_sequence(dt);
  }
  printf("live bytes after the tests: %lld (expected 0)\n", (long long)g_api.live_bytes(DEV));
  if (g_api.live_bytes(DEV) != 0) g_fail++;
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
