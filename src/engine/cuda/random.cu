// GPU kernels of the random ops: the samplers of ops/random.c
// (_random_uniform, _random_normal, _random_exponential, _random_gamma,
// _random_poisson, _random_negative_binomial,
// _random_generalized_negative_binomial, _random_randint) and Dropout
// (ops/dropout.c).
//
// Every value comes from the counter-based generator of ../rand.h, the
// same source the CPU kernels use: value i of a call depends only on (c->seed, i), so the GPU draws
// the same numbers as the CPU for the same seed.  Uniform, randint and the
// dropout masks are bit-identical (the affine steps use _rn intrinsics so
// that nvcc does not fuse them into an FMA the CPU does not use); normal and
// exponential go through CUDA's log/cos, within an ulp or two of glibc's;
// gamma and Poisson are rejection samplers over the same per-element streams
// and agree except where a last-bit difference flips an acceptance test.
// Parameter checks and messages are the CPU's.
//
// Dropout: in training (or with mode='always') each element is kept with
// probability 1-p and scaled by 1/(1-p); the mask (a hidden output of the
// data's shape with `axes` set to 1) holds 0 or 1/(1-p), mask element j
// being (uniform(seed, j) < 1-p); otherwise the op is the identity and the
// mask is ones.  Backward is grad * mask.
#include "kernels.cuh"
#include "../rand.h"

namespace snk {
namespace rnd {

// Per-element streams and the gamma/Poisson samplers: ../rand.h, the
// CPU's own source.

enum { S_UNIFORM, S_NORMAL, S_EXPONENTIAL, S_GAMMA, S_POISSON, S_NEGBIN, S_GENNEGBIN };

template <typename T, int KIND>
struct Sampler {
  T *y;
  uint64_t seed;
  double a, b;
  __device__ void operator()(int64_t i) const {
    double v;
    if (KIND == S_UNIFORM) {
      v = __dadd_rn(a, __dmul_rn(b, sn_rand_uniform(seed, (uint64_t)i)));  // lo + width * u
    } else if (KIND == S_NORMAL) {
      v = __dadd_rn(a, __dmul_rn(b, sn_rand_normal(seed, (uint64_t)i)));  // loc + scale * n
    } else if (KIND == S_EXPONENTIAL) {
      v = -log(sn_rand_uniform(seed, (uint64_t)i)) / a;
    } else {
      sn_rstream s = sn_rs_make(seed, (uint64_t)i);
      if (KIND == S_GAMMA) {
        v = sn_rs_gamma(&s, a) * b;
      } else if (KIND == S_POISSON) {
        v = sn_rs_poisson(&s, a);
      } else if (KIND == S_NEGBIN) {  // a = k, b = (1 - p) / p
        const double lam = b > 0 ? sn_rs_gamma(&s, a) * b : 0.0;
        v = sn_rs_poisson(&s, lam);
      } else {  // a = mu, b = alpha
        const double lam = b == 0 ? a : sn_rs_gamma(&s, 1.0 / b) * b * a;
        v = sn_rs_poisson(&s, lam);
      }
    }
    y[i] = (T)v;
  }
};

template <int KIND>
int sample(sn_call *c, double a, double b) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  sn_tensor *y = c->out[0];
  SNC_FLOAT_SWITCH(y->dtype, c, T, {
    Sampler<T, KIND> f{snc::ptr<T>(y), c->seed, a, b};
    return launch_flat(c, s, nelem(y), f, "sampling");
  });
  return SN_OK;
}

int two_params(const sn_call *c, const char *n0, const char *n1, double *a, double *b) {
  const sn_pval *p0, *p1;
  SN_TRY(get_param(c, n0, &p0));
  SN_TRY(get_param(c, n1, &p1));
  *a = p0->f;
  *b = p1->f;
  return SN_OK;
}

int uniform_forward(sn_call *c) {
  double lo, hi;
  SN_TRY(two_params(c, "low", "high", &lo, &hi));
  if (!(lo <= hi))
    return host->error(SN_ERR_ARG, "_random_uniform: high (%g) must be at least low (%g)", hi, lo);
  return sample<S_UNIFORM>(c, lo, hi - lo);
}

int normal_forward(sn_call *c) {
  double loc, scale;
  SN_TRY(two_params(c, "loc", "scale", &loc, &scale));
  if (!(scale >= 0))
    return host->error(SN_ERR_ARG, "_random_normal: scale must be non-negative, got %g", scale);
  return sample<S_NORMAL>(c, loc, scale);
}

int exponential_forward(sn_call *c) {
  const sn_pval *lam;
  SN_TRY(get_param(c, "lam", &lam));
  if (!(lam->f > 0))
    return host->error(SN_ERR_ARG, "_random_exponential: lam must be positive, got %g", lam->f);
  return sample<S_EXPONENTIAL>(c, lam->f, 0);
}

int gamma_forward(sn_call *c) {
  double alpha, beta;
  SN_TRY(two_params(c, "alpha", "beta", &alpha, &beta));
  if (!(alpha > 0) || !(beta > 0))
    return host->error(SN_ERR_ARG, "_random_gamma: alpha and beta must be positive, got %g and %g",
                       alpha, beta);
  return sample<S_GAMMA>(c, alpha, beta);
}

int poisson_forward(sn_call *c) {
  const sn_pval *lam;
  SN_TRY(get_param(c, "lam", &lam));
  if (!(lam->f >= 0))
    return host->error(SN_ERR_ARG, "_random_poisson: lam must be non-negative, got %g", lam->f);
  return sample<S_POISSON>(c, lam->f, 0);
}

int negbin_forward(sn_call *c) {
  const sn_pval *k, *p;
  SN_TRY(get_param(c, "k", &k));
  SN_TRY(get_param(c, "p", &p));
  if (k->i < 0 || !(p->f > 0 && p->f <= 1))
    return host->error(SN_ERR_ARG,
                       "_random_negative_binomial: need k >= 0 and p in (0, 1], got k = %lld, p = %g",
                       (long long)k->i, p->f);
  return sample<S_NEGBIN>(c, (double)k->i, (1.0 - p->f) / p->f);
}

int gennegbin_forward(sn_call *c) {
  double mu, alpha;
  SN_TRY(two_params(c, "mu", "alpha", &mu, &alpha));
  if (!(mu >= 0) || !(alpha >= 0))
    return host->error(SN_ERR_ARG,
                       "_random_generalized_negative_binomial: mu and alpha must be non-negative");
  return sample<S_GENNEGBIN>(c, mu, alpha);
}

template <typename T>
struct RandInt {
  T *y;
  uint64_t seed;
  int64_t lo;
  double width;
  __device__ void operator()(int64_t i) const {
    y[i] = (T)(lo + (int64_t)floor(__dmul_rn(width, sn_rand_uniform(seed, (uint64_t)i))));
  }
};

int randint_forward(sn_call *c) {
  const sn_pval *plo, *phi;
  SN_TRY(get_param(c, "low", &plo));
  SN_TRY(get_param(c, "high", &phi));
  if (!(plo->i < phi->i))
    return host->error(SN_ERR_ARG, "_random_randint: high (%lld) must be greater than low (%lld)",
                       (long long)phi->i, (long long)plo->i);
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const int64_t lo = plo->i;
  const double width = (double)phi->i - (double)lo;
  sn_tensor *y = c->out[0];
  switch (y->dtype) {
    case SN_I32: {
      if (lo < INT32_MIN || phi->i - 1 > INT32_MAX)
        return host->error(SN_ERR_ARG, "_random_randint: bounds do not fit in int32");
      RandInt<int32_t> f{snc::ptr<int32_t>(y), c->seed, lo, width};
      return launch_flat(c, s, nelem(y), f, "sampling");
    }
    case SN_I64: {
      RandInt<int64_t> f{snc::ptr<int64_t>(y), c->seed, lo, width};
      return launch_flat(c, s, nelem(y), f, "sampling");
    }
    default:
      return host->error(SN_ERR_TYPE, "_random_randint: dtype %s is not supported (int32, int64)",
                         dtype_name(y->dtype));
  }
}

// ---------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------
enum { MODE_TRAINING, MODE_ALWAYS };

int dropout_params(const sn_call *c, double *p, int *mode, const sn_shape **axes) {
  const sn_pval *pp, *pm, *pa;
  SN_TRY(get_param(c, "p", &pp));
  SN_TRY(get_param(c, "mode", &pm));
  SN_TRY(get_param(c, "axes", &pa));
  *p = pp->f;
  *mode = (int)pm->i;
  *axes = &pa->s;
  if (!(*p >= 0.0 && *p < 1.0))
    return host->error(SN_ERR_ARG, "Dropout: p must be in [0, 1), got %g", *p);
  return SN_OK;
}

int mask_shape(const sn_shape *ax, const sn_shape *d, sn_shape *m) {
  *m = *d;
  for (int i = 0; i < ax->ndim; i++) {
    int64_t a = ax->dim[i];
    if (a < -(int64_t)d->ndim || a >= d->ndim)
      return host->error(SN_ERR_ARG,
                         "Dropout: axis %lld in axes is out of range for data of %d dimensions",
                         (long long)a, d->ndim);
    if (a < 0) a += d->ndim;
    m->dim[a] = 1;
  }
  return SN_OK;
}

// Map geometry over the data: operand 0 the data (contiguous), 1 the mask
// (0 along broadcast dims).
void mask_geom(const sn_shape *d, const sn_shape *m, Geom<2> &g) {
  g.nd = d->ndim > 0 ? d->ndim : 1;
  if (d->ndim <= 0) {
    g.n[0] = 1;
    g.st[0][0] = g.st[1][0] = 1;
    return;
  }
  int64_t s = 1, ds = 1;
  for (int k = d->ndim - 1; k >= 0; k--) {
    g.n[k] = d->dim[k];
    g.st[0][k] = ds;
    g.st[1][k] = (m->dim[k] == 1 && d->dim[k] != 1) ? 0 : s;
    s *= m->dim[k];
    ds *= d->dim[k];
  }
}

template <typename T>
struct FillOnes {
  T *p;
  __device__ __forceinline__ void operator()(int64_t i) const { p[i] = (T)1; }
};

template <typename T>
struct DropFused {  // same-shape mask: draw, keep the mask, write the output
  const T *x;
  T *y, *mask;
  uint64_t seed;
  double pkeep;
  T sc;
  __device__ __forceinline__ void operator()(int64_t i) const {
    const T m = sn_rand_uniform(seed, (uint64_t)i) < pkeep ? sc : (T)0;
    if (mask) mask[i] = m;
    if (y) y[i] = x[i] * m;
  }
};

template <typename T, typename I>
struct DropBcast {  // variational: mask element off[1] of data element off[0]
  const T *x;
  T *y;
  uint64_t seed;
  double pkeep;
  T sc;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    const T m = sn_rand_uniform(seed, (uint64_t)off[1]) < pkeep ? sc : (T)0;
    y[off[0]] = x[off[0]] * m;
  }
};

template <typename T, typename I>
struct MaskMul {
  const T *g, *mask;
  T *gx;
  __device__ __forceinline__ void operator()(int64_t, const I *off) const {
    gx[off[0]] = g[off[0]] * mask[off[1]];
  }
};

int dropout_forward(sn_call *c) {
  double p;
  int mode;
  const sn_shape *axes;
  SN_TRY(dropout_params(c, &p, &mode, &axes));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *xt = c->in[0];
  const double pkeep = 1.0 - p;
  const bool active = pkeep < 1.0 && (c->is_train || mode == MODE_ALWAYS);
  const int64_t n = nelem(xt);
  const bool want_out = c->req[0] != SN_REQ_NULL;
  const bool want_mask = c->nout > 1 && c->req[1] != SN_REQ_NULL;
  sn_shape ms;
  SN_TRY(mask_shape(axes, &xt->shape, &ms));
  int64_t mn = 1;
  for (int d = 0; d < ms.ndim; d++) mn *= ms.dim[d];
  if (want_mask && nelem(c->out[1]) != mn)
    return host->error(SN_ERR_INTERNAL, "Dropout: the mask output has the wrong size");
  const double scale = 1.0 / pkeep;
  SNC_FLOAT_SWITCH(xt->dtype, c, T, {
    const T *x = snc::ptr<T>(xt);
    T *y = want_out ? snc::ptr<T>(c->out[0]) : nullptr;
    T *mask = want_mask ? snc::ptr<T>(c->out[1]) : nullptr;
    if (!active) {
      if (y) SN_TRY(copy_async(c, s, y, x, (size_t)n * sizeof(T)));
      if (mask) {
        FillOnes<T> f{mask};
        SN_TRY(launch_flat(c, s, mn, f, "mask fill"));
      }
      return SN_OK;
    }
    const T sc = (T)scale;
    if (mn == n) {
      DropFused<T> f{x, y, mask, c->seed, pkeep, sc};
      return launch_flat(c, s, n, f, "forward");
    }
    if (mask) {
      DropFused<T> f{nullptr, nullptr, mask, c->seed, pkeep, sc};
      SN_TRY(launch_flat(c, s, mn, f, "mask"));
    }
    if (y) {
      Geom<2> g;
      mask_geom(&xt->shape, &ms, g);
      SN_TRY(launch_map<2>(c, s, g, DropBcast<T, int32_t>{x, y, c->seed, pkeep, sc},
                           DropBcast<T, int64_t>{x, y, c->seed, pkeep, sc}, "forward"));
    }
  });
  return SN_OK;
}

int dropout_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  if (c->nout < 2 || !c->out[1] || !c->out[1]->st)
    return host->error(SN_ERR_INTERNAL, "Dropout: the mask is missing in backward");
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *gt = c->ograd[0], *mt = c->out[1];
  const int64_t n = nelem(gt), mn = nelem(mt);
  SNC_FLOAT_SWITCH(gt->dtype, c, T, {
    const T *g = snc::ptr<T>(gt), *mask = snc::ptr<T>(mt);
    T *gx = snc::ptr<T>(c->igrad[0]);
    Geom<2> geo;
    if (mn == n) {
      geo.nd = 1;
      geo.n[0] = n;
      geo.st[0][0] = geo.st[1][0] = 1;
    } else {
      mask_geom(&gt->shape, &mt->shape, geo);
    }
    return launch_map<2>(c, s, geo, MaskMul<T, int32_t>{g, mask, gx},
                         MaskMul<T, int64_t>{g, mask, gx}, "backward");
  });
  return SN_OK;
}

}  // namespace rnd
}  // namespace snk

namespace snc {

int register_random(const sn_host_api *h) {
  using namespace snk::rnd;
  SN_TRY(h->register_kernels("_random_uniform", uniform_forward, nullptr));
  SN_TRY(h->register_kernels("_random_normal", normal_forward, nullptr));
  SN_TRY(h->register_kernels("_random_exponential", exponential_forward, nullptr));
  SN_TRY(h->register_kernels("_random_gamma", gamma_forward, nullptr));
  SN_TRY(h->register_kernels("_random_poisson", poisson_forward, nullptr));
  SN_TRY(h->register_kernels("_random_negative_binomial", negbin_forward, nullptr));
  SN_TRY(h->register_kernels("_random_generalized_negative_binomial", gennegbin_forward, nullptr));
  SN_TRY(h->register_kernels("_random_randint", randint_forward, nullptr));
  SN_TRY(h->register_kernels("Dropout", dropout_forward, dropout_backward));
  return SN_OK;
}

}  // namespace snc
