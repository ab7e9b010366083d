// GPU kernels of the fused optimizer updates (ops/optimizer_update.c):
// sgd_update, sgd_mom_update, nag_mom_update, adam_update, rmsprop_update,
// rmspropalex_update, ftrl_update, ftml_update, signsgd_update,
// signum_update, _adagrad_update and _adadelta_update.  One element-wise
// pass each; the state inputs (mom, mean, var, n, g, delta, z, d, v,
// history, acc_g, acc_delta) are updated in place and the new weight is
// written to the output (which may be the weight itself).  Arithmetic is in
// the array's type with the float parameters converted to it, and the
// formulas are the CPU's, term for term (see the CPU file's header).
#include "kernels.cuh"

namespace snk {
namespace opt {

#define CLIPV(x, c) ((x) > (c) ? (c) : ((x) < -(c) ? -(c) : (x)))

__device__ __forceinline__ float sqrtt(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrtt(double x) { return sqrt(x); }
template <typename T>
__device__ __forceinline__ T signt(T x) {
  return (T)((x > (T)0) - (x < (T)0));
}

// All inputs have the weight's size and dtype; the output too.
int upd_check(const sn_call *c) {
  const int64_t n = nelem(c->in[0]);
  for (int i = 1; i < c->nin; i++)
    if (nelem(c->in[i]) != n || c->in[i]->dtype != c->in[0]->dtype)
      return host->error(SN_ERR_SHAPE, "%s: input %d does not match the weight's shape and dtype",
                         op_name(c), i + 1);
  if (c->out[0]->dtype != c->in[0]->dtype || nelem(c->out[0]) != n)
    return host->error(SN_ERR_SHAPE, "%s: the output does not match the weight", op_name(c));
  return SN_OK;
}

// Reads the named float parameters (n of them) into v.
int read_params(const sn_call *c, const char *const *names, int n, double *v) {
  for (int i = 0; i < n; i++) {
    const sn_pval *p;
    SN_TRY(get_param(c, names[i], &p));
    v[i] = p->f;
  }
  return SN_OK;
}

template <typename T>
struct Sgd {
  const T *w, *g;
  T *out;
  T lr, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T gr = clip ? CLIPV(rs * g[i], cg) : rs * g[i];
    out[i] = ((T)1 - lr * wd) * w[i] - lr * gr;
  }
};

template <typename T>
struct SgdMom {
  const T *w, *g;
  T *mom, *out;
  T lr, mo, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T gr = clip ? CLIPV(rs * g[i], cg) : rs * g[i];
    const T wi = w[i];
    const T m = mo * mom[i] - lr * wd * wi - lr * gr;
    mom[i] = m;
    out[i] = wi + m;
  }
};

template <typename T>
struct NagMom {
  const T *w, *g;
  T *mom, *out;
  T lr, mo, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    const T gr = (clip ? CLIPV(rs * g[i], cg) : rs * g[i]) + wd * wi;
    const T m = mo * mom[i];
    mom[i] = m - lr * gr;
    out[i] = wi - m + (mo + (T)1) * (m - lr * gr);
  }
};

template <typename T>
struct Adam {
  const T *w, *g;
  T *mean, *var, *out;
  T lr, b1, b2, eps, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    T gr = rs * g[i] + wd * wi;
    if (clip) gr = CLIPV(gr, cg);
    const T m = b1 * mean[i] + ((T)1 - b1) * gr;
    const T v = b2 * var[i] + ((T)1 - b2) * gr * gr;
    mean[i] = m;
    var[i] = v;
    out[i] = wi - lr * m / (sqrtt(v) + eps);
  }
};

template <typename T>
struct RmsProp {
  const T *w, *g;
  T *st, *out;
  T lr, g1, eps, wd, rs, cg, cw;
  bool clip, clipw;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    T gr = rs * g[i] + wd * wi;
    if (clip) gr = CLIPV(gr, cg);
    const T s = ((T)1 - g1) * (gr * gr) + g1 * st[i];
    st[i] = s;
    T nw = wi - lr * (gr / sqrtt(s + eps));
    if (clipw) nw = CLIPV(nw, cw);
    out[i] = nw;
  }
};

template <typename T>
struct RmsPropAlex {
  const T *w, *g;
  T *sn, *sg, *dl, *out;
  T lr, g1, g2, eps, wd, rs, cg, cw;
  bool clip, clipw;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    T gr = rs * g[i] + wd * wi;
    if (clip) gr = CLIPV(gr, cg);
    const T nn = ((T)1 - g1) * gr * gr + g1 * sn[i];
    const T gg = ((T)1 - g1) * gr + g1 * sg[i];
    const T d = g2 * dl[i] - lr * gr / sqrtt(nn - gg * gg + eps);
    sn[i] = nn;
    sg[i] = gg;
    dl[i] = d;
    T nw = wi + d;
    if (clipw) nw = CLIPV(nw, cw);
    out[i] = nw;
  }
};

template <typename T>
struct Ftrl {
  const T *w, *g;
  T *z, *nn, *out;
  T lr, l1, beta, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    T gr = rs * g[i];
    if (clip) gr = CLIPV(gr, cg);
    const T n0 = nn[i];
    const T zi = z[i] + gr - (sqrtt(n0 + gr * gr) - sqrtt(n0)) * wi / lr;
    const T ni = n0 + gr * gr;
    z[i] = zi;
    nn[i] = ni;
    const T az = zi < (T)0 ? -zi : zi;
    out[i] = az > l1 ? (signt(zi) * l1 - zi) / ((beta + sqrtt(ni)) / lr + wd) : (T)0;
  }
};

template <typename T>
struct Ftml {
  const T *w, *g;
  T *d, *v, *z, *out;
  T lr, b1, b2, eps, wd, rs, cg, b1t, b2t;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    T gr = rs * g[i] + wd * wi;
    if (clip) gr = CLIPV(gr, cg);
    const T vi = b2 * v[i] + ((T)1 - b2) * gr * gr;
    const T dt = ((T)1 - b1t) / lr * (sqrtt(vi / ((T)1 - b2t)) + eps);
    const T zi = b1 * z[i] + ((T)1 - b1) * gr - (dt - b1 * d[i]) * wi;
    v[i] = vi;
    z[i] = zi;
    d[i] = dt;
    out[i] = -zi / dt;
  }
};

template <typename T>
struct SignSgd {
  const T *w, *g;
  T *out;
  T lr, wd;
  __device__ void operator()(int64_t i) const {
    out[i] = ((T)1 - lr * wd) * w[i] - lr * signt(g[i]);
  }
};

template <typename T>
struct Signum {
  const T *w, *g;
  T *mom, *out;
  T lr, mo, wd, rs, cg, wdlh;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    const T gr = clip ? CLIPV(rs * g[i], cg) : rs * g[i];
    const T m = mo * mom[i] - ((T)1 - mo) * wd * wi - ((T)1 - mo) * gr;
    mom[i] = m;
    out[i] = ((T)1 - lr * wdlh) * wi + lr * signt(m);
  }
};

template <typename T>
struct Adagrad {
  const T *w, *g;
  T *h, *out;
  T lr, eps, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    const T gr = clip ? CLIPV(rs * g[i], cg) : rs * g[i];
    const T hi = h[i] + gr * gr;
    h[i] = hi;
    out[i] = wi - lr * (gr / sqrtt(hi + eps) + wd * wi);
  }
};

template <typename T>
struct Adadelta {
  const T *w, *g;
  T *ag, *ad, *out;
  T rho, eps, wd, rs, cg;
  bool clip;
  __device__ void operator()(int64_t i) const {
    const T wi = w[i];
    const T gr = clip ? CLIPV(rs * g[i], cg) : rs * g[i];
    const T agi = rho * ag[i] + ((T)1 - rho) * gr * gr;
    const T adi = ad[i];
    const T delta = sqrtt(adi + eps) / sqrtt(agi + eps) * gr;
    ag[i] = agi;
    ad[i] = rho * adi + ((T)1 - rho) * delta * delta;
    out[i] = wi - delta - wd * wi;
  }
};

#define OPT_PROLOGUE(NAMES)                                                               \
  SN_TRY(upd_check(c));                                                                   \
  cudaStream_t s;                                                                         \
  SN_TRY(begin(c, &s));                                                                   \
  static const char *const names_[] = NAMES;                                              \
  double v[sizeof names_ / sizeof names_[0]];                                             \
  SN_TRY(read_params(c, names_, (int)(sizeof names_ / sizeof names_[0]), v));             \
  const int64_t n = nelem(c->in[0]);
#define NAMES(...) {__VA_ARGS__}
#define IN(T, k) snc::ptr<T>(c->in[k])
#define OUT(T) snc::ptr<T>(c->out[0])

int sgd_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Sgd<T> f{IN(T, 0), IN(T, 1), OUT(T), (T)v[0], (T)v[1], (T)v[2], (T)v[3], v[3] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int sgd_mom_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "momentum", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SgdMom<T> f{IN(T, 0), IN(T, 1), IN(T, 2), OUT(T), (T)v[0], (T)v[1], (T)v[2], (T)v[3],
                (T)v[4], v[4] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int nag_mom_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "momentum", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    NagMom<T> f{IN(T, 0), IN(T, 1), IN(T, 2), OUT(T), (T)v[0], (T)v[1], (T)v[2], (T)v[3],
                (T)v[4], v[4] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int adam_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "beta1", "beta2", "epsilon", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Adam<T> f{IN(T, 0), IN(T, 1), IN(T, 2), IN(T, 3), OUT(T), (T)v[0], (T)v[1], (T)v[2],
              (T)v[3], (T)v[4], (T)v[5], (T)v[6], v[6] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int rmsprop_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "gamma1", "epsilon", "wd", "rescale_grad", "clip_gradient",
                     "clip_weights"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    RmsProp<T> f{IN(T, 0), IN(T, 1), IN(T, 2), OUT(T), (T)v[0], (T)v[1], (T)v[2], (T)v[3],
                 (T)v[4], (T)v[5], (T)v[6], v[5] >= 0, v[6] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int rmspropalex_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "gamma1", "gamma2", "epsilon", "wd", "rescale_grad", "clip_gradient",
                     "clip_weights"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    RmsPropAlex<T> f{IN(T, 0), IN(T, 1), IN(T, 2), IN(T, 3), IN(T, 4), OUT(T), (T)v[0],
                     (T)v[1], (T)v[2], (T)v[3], (T)v[4], (T)v[5], (T)v[6], (T)v[7], v[6] >= 0,
                     v[7] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int ftrl_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "lamda1", "beta", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Ftrl<T> f{IN(T, 0), IN(T, 1), IN(T, 2), IN(T, 3), OUT(T), (T)v[0], (T)v[1], (T)v[2],
              (T)v[3], (T)v[4], (T)v[5], v[5] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int ftml_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "beta1", "beta2", "epsilon", "wd", "rescale_grad", "clip_grad"))
  const sn_pval *t;
  SN_TRY(get_param(c, "t", &t));
  if (!(v[1] >= 0 && v[1] <= 1) || !(v[2] >= 0 && v[2] <= 1))
    return host->error(SN_ERR_ARG, "ftml_update: beta1 and beta2 must be in [0, 1]");
  if (t->i < 1)
    return host->error(SN_ERR_ARG, "ftml_update: t must be at least 1, got %lld", (long long)t->i);
  const double b1t = pow(v[1], (double)t->i), b2t = pow(v[2], (double)t->i);
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Ftml<T> f{IN(T, 0), IN(T, 1), IN(T, 2), IN(T, 3), IN(T, 4), OUT(T), (T)v[0], (T)v[1],
              (T)v[2], (T)v[3], (T)v[4], (T)v[5], (T)v[6], (T)b1t, (T)b2t, v[6] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int signsgd_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "wd"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SignSgd<T> f{IN(T, 0), IN(T, 1), OUT(T), (T)v[0], (T)v[1]};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int signum_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "momentum", "wd", "rescale_grad", "clip_gradient", "wd_lh"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Signum<T> f{IN(T, 0), IN(T, 1), IN(T, 2), OUT(T), (T)v[0], (T)v[1], (T)v[2], (T)v[3],
                (T)v[4], (T)v[5], v[4] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int adagrad_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("lr", "epsilon", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Adagrad<T> f{IN(T, 0), IN(T, 1), IN(T, 2), OUT(T), (T)v[0], (T)v[1], (T)v[2], (T)v[3],
                 (T)v[4], v[4] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

int adadelta_forward(sn_call *c) {
  OPT_PROLOGUE(NAMES("rho", "epsilon", "wd", "rescale_grad", "clip_gradient"))
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    Adadelta<T> f{IN(T, 0), IN(T, 1), IN(T, 2), IN(T, 3), OUT(T), (T)v[0], (T)v[1], (T)v[2],
                  (T)v[3], (T)v[4], v[4] >= 0};
    return launch_flat(c, s, n, f, "update");
  });
  return SN_OK;
}

#undef OPT_PROLOGUE
#undef NAMES
#undef IN
#undef OUT

}  // namespace opt
}  // namespace snk

namespace snc {

int register_optimizer(const sn_host_api *h) {
  using namespace snk::opt;
  SN_TRY(h->register_kernels("sgd_update", sgd_forward, nullptr));
  SN_TRY(h->register_kernels("sgd_mom_update", sgd_mom_forward, nullptr));
  SN_TRY(h->register_kernels("nag_mom_update", nag_mom_forward, nullptr));
  SN_TRY(h->register_kernels("adam_update", adam_forward, nullptr));
  SN_TRY(h->register_kernels("rmsprop_update", rmsprop_forward, nullptr));
  SN_TRY(h->register_kernels("rmspropalex_update", rmspropalex_forward, nullptr));
  SN_TRY(h->register_kernels("ftrl_update", ftrl_forward, nullptr));
  SN_TRY(h->register_kernels("ftml_update", ftml_forward, nullptr));
  SN_TRY(h->register_kernels("signsgd_update", signsgd_forward, nullptr));
  SN_TRY(h->register_kernels("signum_update", signum_forward, nullptr));
  SN_TRY(h->register_kernels("_adagrad_update", adagrad_forward, nullptr));
  SN_TRY(h->register_kernels("_adadelta_update", adadelta_forward, nullptr));
  return SN_OK;
}

}  // namespace snc
