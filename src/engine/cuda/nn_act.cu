// GPU kernels of Activation and LeakyReLU (ops/activation.c) and of softmax,
// log_softmax, softmin and SoftmaxActivation (ops/softmax.c).
//
// Own kernels (no cuDNN): the CPU semantics are kept exactly, including the
// quirks documented there — relu passes NaN through, softrelu is x itself
// above 20, softsign of +-Inf is +-1, the backward passes of Activation read
// only the output, LeakyReLU reads the input (selu/elu use the true
// derivative), prelu's gamma gradient is a per-channel sum in double of
// g * x where x <= 0, rrelu draws its slopes with the engine's counter-based
// generator (sn_rand_uniform of ../rand.h, the CPU's source), so CPU and GPU give
// the same mask for the same seed.  Float kernels use float math.
//
// Softmax: per line of the (outer, m, inner) view around the axis, max and
// sums in double, exp in the input's precision, then (softmax) the stored
// exp times (TO)(1/sum) — the CPU's order of operations.  Lines with
// inner == 1 use a warp per line (m <= 1024) or a block per line; other
// lines a thread each (consecutive threads read consecutive addresses).  All
// kernels are safe in place (each element is read and written by one thread,
// after the line's reductions).  use_length: the length input (any numeric
// dtype, truncated like a C cast) is copied into the hidden output, which
// backward reads; the length gradient is zero.
//
// Temporary memory: prelu's gamma gradient may need
// ch * splits * 16 bytes (chan_reduce); nothing else.
#include "../rand.h"
#include "nn_common.cuh"

namespace snn {

namespace {

// ---------------------------------------------------------------------------
// Activation
// ---------------------------------------------------------------------------

enum { ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTRELU, ACT_SOFTSIGN };
const char *const kActNames[] = {"relu", "sigmoid", "tanh", "softrelu", "softsign"};

template <typename T, int A>
__global__ void act_fwd_kernel(const T *x, T *y, int64_t n) {
  SNN_LOOP(i, n) {
    const T v = x[i];
    T r;
    if (A == ACT_RELU) {
      r = (v > (T)0 || v != v) ? v : (T)0;
    } else if (A == ACT_SIGMOID) {
      r = (T)1 / ((T)1 + d_exp(-v));
    } else if (A == ACT_TANH) {
      r = d_tanh(v);
    } else if (A == ACT_SOFTRELU) {
      r = v > (T)20 ? v : d_log1p(d_exp(v));
    } else {
      const T a = v < (T)0 ? -v : v;
      r = isinf(a) ? (v < (T)0 ? (T)-1 : (T)1) : v / ((T)1 + a);
    }
    y[i] = r;
  }
}

template <typename T, int A>
__global__ void act_bwd_kernel(const T *y, const T *g, T *gx, int64_t n) {
  SNN_LOOP(i, n) {
    const T v = y[i], gv = g[i];
    T r;
    if (A == ACT_RELU) {
      r = v != v ? gv * v : (v > (T)0 ? gv : (T)0);
    } else if (A == ACT_SIGMOID) {
      r = gv * v * ((T)1 - v);
    } else if (A == ACT_TANH) {
      r = gv * ((T)1 - v * v);
    } else if (A == ACT_SOFTRELU) {
      r = -gv * d_expm1(-v);
    } else {
      const T d = (T)1 - (v < (T)0 ? -v : v);
      r = gv * d * d;
    }
    gx[i] = r;
  }
}

template <typename T>
int act_fwd_launch(const sn_call *c, cudaStream_t s, int type, const T *x, T *y, int64_t n) {
  const unsigned g = grid_for(n);
  switch (type) {
    case ACT_RELU: act_fwd_kernel<T, ACT_RELU><<<g, SNN_BLOCK, 0, s>>>(x, y, n); break;
    case ACT_SIGMOID: act_fwd_kernel<T, ACT_SIGMOID><<<g, SNN_BLOCK, 0, s>>>(x, y, n); break;
    case ACT_TANH: act_fwd_kernel<T, ACT_TANH><<<g, SNN_BLOCK, 0, s>>>(x, y, n); break;
    case ACT_SOFTRELU: act_fwd_kernel<T, ACT_SOFTRELU><<<g, SNN_BLOCK, 0, s>>>(x, y, n); break;
    default: act_fwd_kernel<T, ACT_SOFTSIGN><<<g, SNN_BLOCK, 0, s>>>(x, y, n); break;
  }
  return check_launch(c, "activation");
}

template <typename T>
int act_bwd_launch(const sn_call *c, cudaStream_t s, int type, const T *y, const T *gy, T *gx,
                   int64_t n) {
  const unsigned g = grid_for(n);
  switch (type) {
    case ACT_RELU: act_bwd_kernel<T, ACT_RELU><<<g, SNN_BLOCK, 0, s>>>(y, gy, gx, n); break;
    case ACT_SIGMOID: act_bwd_kernel<T, ACT_SIGMOID><<<g, SNN_BLOCK, 0, s>>>(y, gy, gx, n); break;
    case ACT_TANH: act_bwd_kernel<T, ACT_TANH><<<g, SNN_BLOCK, 0, s>>>(y, gy, gx, n); break;
    case ACT_SOFTRELU: act_bwd_kernel<T, ACT_SOFTRELU><<<g, SNN_BLOCK, 0, s>>>(y, gy, gx, n); break;
    default: act_bwd_kernel<T, ACT_SOFTSIGN><<<g, SNN_BLOCK, 0, s>>>(y, gy, gx, n); break;
  }
  return check_launch(c, "activation backward");
}

int act_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  int type = 0;
  SN_TRY(p_enum(c, "act_type", kActNames, 5, &type));
  const int64_t n = nelem(c->in[0]);
  if (n == 0) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SN_TRY(act_fwd_launch<T>(c, s, type, snc::ptr<T>(c->in[0]), snc::ptr<T>(c->out[0]), n));
  });
  return SN_OK;
}

int act_backward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "Activation: backward needs the output gradient");
  int type = 0;
  SN_TRY(p_enum(c, "act_type", kActNames, 5, &type));
  const int64_t n = nelem(c->out[0]);
  if (n == 0) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SNC_FLOAT_SWITCH(c->out[0]->dtype, c, T, {
    SN_TRY(act_bwd_launch<T>(c, s, type, snc::ptr<T>(c->out[0]), snc::ptr<T>(c->ograd[0]),
                             snc::ptr<T>(c->igrad[0]), n));
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// LeakyReLU
// ---------------------------------------------------------------------------

enum { LR_RRELU, LR_LEAKY, LR_PRELU, LR_ELU, LR_SELU, LR_GELU };
const char *const kLreluNames[] = {"rrelu", "leaky", "prelu", "elu", "selu", "gelu"};

#define SELU_LAMBDA 1.0507009873554804934193349852946
#define SELU_ALPHA 1.6732632423543772848170429916717

template <typename T, int K>
__global__ void lrelu_fwd_kernel(const T *x, T *y, int64_t n, T slope) {
  SNN_LOOP(i, n) {
    const T v = x[i];
    T r;
    if (K == LR_LEAKY) {
      r = v > (T)0 ? v : v * slope;
    } else if (K == LR_ELU) {
      r = v > (T)0 ? v : slope * d_expm1(v);
    } else if (K == LR_SELU) {
      r = v > (T)0 ? (T)SELU_LAMBDA * v : (T)(SELU_LAMBDA * SELU_ALPHA) * d_expm1(v);
    } else {  // gelu
      r = (T)0.5 * v * ((T)1 + d_erf(v * (T)0.70710678118654752440));
    }
    y[i] = r;
  }
}

template <typename T, int K>
__global__ void lrelu_bwd_kernel(const T *x, const T *g, T *gx, int64_t n, T slope) {
  SNN_LOOP(i, n) {
    const T v = x[i], gv = g[i];
    T r;
    if (K == LR_LEAKY) {
      r = v > (T)0 ? gv : gv * slope;
    } else if (K == LR_ELU) {
      r = v > (T)0 ? gv : gv * slope * d_exp(v);
    } else if (K == LR_SELU) {
      r = v > (T)0 ? gv * (T)SELU_LAMBDA : gv * (T)(SELU_LAMBDA * SELU_ALPHA) * d_exp(v);
    } else {  // gelu
      const T d = (T)0.5 * ((T)1 + d_erf(v * (T)0.70710678118654752440)) +
                  v * (T)0.39894228040143267794 * d_exp((T)-0.5 * v * v);
      r = gv * d;
    }
    gx[i] = r;
  }
}

// prelu: slope gam[gn == 1 ? 0 : (i / inner) % ch]
template <typename T>
__global__ void prelu_fwd_kernel(const T *x, T *y, const T *gam, int64_t gn, int64_t ch,
                                 int64_t inner, int64_t n) {
  SNN_LOOP(i, n) {
    const T sl = gam[gn == 1 ? 0 : (i / inner) % ch];
    const T v = x[i];
    y[i] = v > (T)0 ? v : v * sl;
  }
}

template <typename T>
__global__ void prelu_bwd_kernel(const T *x, const T *g, T *gx, const T *gam, int64_t gn,
                                 int64_t ch, int64_t inner, int64_t n) {
  SNN_LOOP(i, n) {
    const T sl = gam[gn == 1 ? 0 : (i / inner) % ch];
    gx[i] = x[i] > (T)0 ? g[i] : g[i] * sl;
  }
}

template <typename T>
struct PreluGammaLoad {
  const T *x, *g;
  __device__ __forceinline__ D2 operator()(int64_t, int64_t e) const {
    const T v = x[e];
    return D2{!(v > (T)0) ? (double)g[e] * (double)v : 0.0, 0.0};
  }
};

template <typename T>
struct StoreA {
  T *out;
  __device__ __forceinline__ void operator()(int64_t ch, D2 s) const { out[ch] = (T)s.a; }
};

template <typename T>
__global__ void rrelu_fwd_kernel(const T *x, T *y, T *mask, int64_t n, int train, uint64_t seed,
                                 double lo, double width, double mid) {
  SNN_LOOP(i, n) {
    const T sl = train ? (T)(lo + width * sn_rand_uniform(seed, (uint64_t)i)) : (T)mid;
    if (mask) mask[i] = sl;
    if (y) {
      const T v = x[i];
      y[i] = v > (T)0 ? v : v * sl;
    }
  }
}

template <typename T>
__global__ void rrelu_bwd_kernel(const T *x, const T *g, const T *mask, T *gx, int64_t n) {
  SNN_LOOP(i, n) { gx[i] = x[i] > (T)0 ? g[i] : g[i] * mask[i]; }
}

void prelu_view(const sn_shape *s, int64_t *outer, int64_t *ch, int64_t *inner) {
  *outer = s->ndim >= 1 ? s->dim[0] : 1;
  *ch = s->ndim >= 2 ? s->dim[1] : 1;
  int64_t r = 1;
  for (int d = 2; d < s->ndim; d++) r *= s->dim[d];
  *inner = r;
}

int lrelu_forward(sn_call *c) {
  int type = 0;
  double slope = 0, lo = 0, hi = 0;
  SN_TRY(p_enum(c, "act_type", kLreluNames, 6, &type));
  SN_TRY(p_float(c, "slope", &slope));
  SN_TRY(p_float(c, "lower_bound", &lo));
  SN_TRY(p_float(c, "upper_bound", &hi));
  const int64_t n = nelem(c->in[0]);
  const bool want_out = wants(c, 0);
  if (type == LR_RRELU && hi < lo)
    return host->error(SN_ERR_ARG, "LeakyReLU(rrelu): upper_bound %g is below lower_bound %g", hi,
                       lo);
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const unsigned grid = grid_for(n);
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *x = snc::ptr<T>(c->in[0]);
    T *y = want_out ? snc::ptr<T>(c->out[0]) : nullptr;
    switch (type) {
      case LR_LEAKY:
      case LR_ELU:
      case LR_SELU:
      case LR_GELU:
        if (!want_out || n == 0) break;
        if (type == LR_LEAKY)
          lrelu_fwd_kernel<T, LR_LEAKY><<<grid, SNN_BLOCK, 0, s>>>(x, y, n, (T)slope);
        else if (type == LR_ELU)
          lrelu_fwd_kernel<T, LR_ELU><<<grid, SNN_BLOCK, 0, s>>>(x, y, n, (T)slope);
        else if (type == LR_SELU)
          lrelu_fwd_kernel<T, LR_SELU><<<grid, SNN_BLOCK, 0, s>>>(x, y, n, (T)slope);
        else
          lrelu_fwd_kernel<T, LR_GELU><<<grid, SNN_BLOCK, 0, s>>>(x, y, n, (T)slope);
        SN_TRY(check_launch(c, "LeakyReLU"));
        break;
      case LR_PRELU: {
        if (!want_out) break;
        int64_t outer, ch, inner;
        prelu_view(&c->in[0]->shape, &outer, &ch, &inner);
        const int64_t gn = nelem(c->in[1]);
        if (gn != 1 && gn != ch)
          return host->error(SN_ERR_SHAPE,
                             "LeakyReLU(prelu): gamma has %lld elements, data has %lld channels",
                             (long long)gn, (long long)ch);
        if (n == 0) break;
        prelu_fwd_kernel<T><<<grid, SNN_BLOCK, 0, s>>>(x, y, snc::ptr<T>(c->in[1]), gn, ch,
                                                       inner > 0 ? inner : 1, n);
        SN_TRY(check_launch(c, "LeakyReLU(prelu)"));
        break;
      }
      case LR_RRELU: {
        T *mask = c->nout > 1 && wants(c, 1) ? snc::ptr<T>(c->out[1]) : nullptr;
        if (n == 0 || (!mask && !y)) break;
        rrelu_fwd_kernel<T><<<grid, SNN_BLOCK, 0, s>>>(x, y, mask, n, c->is_train ? 1 : 0, c->seed,
                                                       lo, hi - lo, (lo + hi) / 2.0);
        SN_TRY(check_launch(c, "LeakyReLU(rrelu)"));
        break;
      }
      default:
        return host->error(SN_ERR_ARG, "LeakyReLU: unknown act_type %d", type);
    }
  });
  return SN_OK;
}

int lrelu_backward(sn_call *c) {
  int type = 0;
  double slope = 0;
  SN_TRY(p_enum(c, "act_type", kLreluNames, 6, &type));
  SN_TRY(p_float(c, "slope", &slope));
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "LeakyReLU: backward needs the output gradient");
  const int64_t n = nelem(c->in[0]);
  const bool want_x = wants(c, 0);
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const unsigned grid = grid_for(n);
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *x = snc::ptr<T>(c->in[0]);
    const T *g = snc::ptr<T>(c->ograd[0]);
    T *gx = want_x ? snc::ptr<T>(c->igrad[0]) : nullptr;
    switch (type) {
      case LR_LEAKY:
      case LR_ELU:
      case LR_SELU:
      case LR_GELU:
        if (!want_x || n == 0) break;
        if (type == LR_LEAKY)
          lrelu_bwd_kernel<T, LR_LEAKY><<<grid, SNN_BLOCK, 0, s>>>(x, g, gx, n, (T)slope);
        else if (type == LR_ELU)
          lrelu_bwd_kernel<T, LR_ELU><<<grid, SNN_BLOCK, 0, s>>>(x, g, gx, n, (T)slope);
        else if (type == LR_SELU)
          lrelu_bwd_kernel<T, LR_SELU><<<grid, SNN_BLOCK, 0, s>>>(x, g, gx, n, (T)slope);
        else
          lrelu_bwd_kernel<T, LR_GELU><<<grid, SNN_BLOCK, 0, s>>>(x, g, gx, n, (T)slope);
        SN_TRY(check_launch(c, "LeakyReLU backward"));
        break;
      case LR_PRELU: {
        int64_t outer, ch, inner;
        prelu_view(&c->in[0]->shape, &outer, &ch, &inner);
        const T *gam = snc::ptr<T>(c->in[1]);
        const int64_t gn = nelem(c->in[1]);
        if (gn != 1 && gn != ch)
          return host->error(SN_ERR_SHAPE,
                             "LeakyReLU(prelu): gamma has %lld elements, data has %lld channels",
                             (long long)gn, (long long)ch);
        // gamma's gradient first: igrad[0] may share the output gradient
        if (c->nin > 1 && wants(c, 1)) {
          T *gg = snc::ptr<T>(c->igrad[1]);
          if (n == 0) {
            SN_TRY(zero_tensor(c, s, c->igrad[1]));
          } else {
            const int64_t ro = gn == 1 ? 1 : outer, rc = gn == 1 ? 1 : ch,
                          ri = gn == 1 ? n : inner;
            Scratch sc;
            SN_TRY(scratch_get(c, s, chan_scratch_bytes(c->dev.id, ro, rc, ri), &sc));
            SN_TRY(chan_reduce(c, s, ro, rc, ri, PreluGammaLoad<T>{x, g}, StoreA<T>{gg}, sc.ptr));
          }
        }
        if (want_x && n > 0) {
          prelu_bwd_kernel<T><<<grid, SNN_BLOCK, 0, s>>>(x, g, gx, gam, gn, ch,
                                                         inner > 0 ? inner : 1, n);
          SN_TRY(check_launch(c, "LeakyReLU(prelu) backward"));
        }
        break;
      }
      case LR_RRELU: {
        if (!want_x || n == 0) break;
        if (c->nout < 2 || !c->out[1] || !c->out[1]->st)
          return host->error(SN_ERR_INTERNAL, "LeakyReLU(rrelu): the saved mask is missing");
        rrelu_bwd_kernel<T><<<grid, SNN_BLOCK, 0, s>>>(x, g, snc::ptr<T>(c->out[1]), gx, n);
        SN_TRY(check_launch(c, "LeakyReLU(rrelu) backward"));
        break;
      }
      default:
        return host->error(SN_ERR_ARG, "LeakyReLU: unknown act_type %d", type);
    }
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// Softmax lines
// ---------------------------------------------------------------------------

// A C-cast to int64 that is defined for NaN (0) and saturates.
__device__ __forceinline__ int64_t trunc_i64(double v) {
  if (v != v) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN;
  return (int64_t)v;
}

// Number of positions of line l taking part.
__device__ __forceinline__ int64_t line_len(const void *len, int ldt, int64_t l, int64_t m) {
  if (!len) return m;
  int64_t n;
  switch (ldt) {
    case SN_F32: n = trunc_i64((double)((const float *)len)[l]); break;
    case SN_F64: n = trunc_i64(((const double *)len)[l]); break;
    case SN_I32: n = (int64_t)((const int32_t *)len)[l]; break;
    case SN_I64: n = ((const int64_t *)len)[l]; break;
    case SN_U8: n = (int64_t)((const uint8_t *)len)[l]; break;
    case SN_I8: n = (int64_t)((const int8_t *)len)[l]; break;
    default: n = 0; break;
  }
  if (n < 0) n = 0;
  if (n > m) n = m;
  return n;
}

struct SmArgs {
  int64_t outer, m, inner;
  double inv_t, sgn;
  const void *len;
  int ldt;
};

// One thread per line (inner > 1): base = o * m * inner + i, stride inner.
template <typename TI, typename TO, int KIND>
__global__ void sm_fwd_thread(const TI *x, TO *y, SmArgs a) {
  const int64_t lines = a.outer * a.inner;
  SNN_LOOP(l, lines) {
    const int64_t o = l / a.inner, i = l - o * a.inner;
    const int64_t base = o * a.m * a.inner + i, st = a.inner;
    const TI *xl = x + base;
    TO *yl = y + base;
    const int64_t n = line_len(a.len, a.ldt, l, a.m);
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
      const double v = a.sgn * (double)xl[j * st];
      if (v > mx) mx = v;
    }
    double sum = 0;
    if (KIND == 0) {
      for (int64_t j = 0; j < n; j++) {
        const double e = exp_in<TI>((a.sgn * (double)xl[j * st] - mx) * a.inv_t);
        sum += e;
        yl[j * st] = (TO)e;
      }
      const TO r = (TO)(1.0 / sum);
      for (int64_t j = 0; j < n; j++) yl[j * st] *= r;
    } else {
      for (int64_t j = 0; j < n; j++) sum += exp_in<TI>((a.sgn * (double)xl[j * st] - mx) * a.inv_t);
      const double ls = log(sum);
      for (int64_t j = 0; j < n; j++)
        yl[j * st] = (TO)((a.sgn * (double)xl[j * st] - mx) * a.inv_t - ls);
    }
    for (int64_t j = n; j < a.m; j++) yl[j * st] = (TO)0;
  }
}

// One warp per line (inner == 1).
template <typename TI, typename TO, int KIND>
__global__ void sm_fwd_warp(const TI *x, TO *y, SmArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t w0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t nw = ((int64_t)blockDim.x * gridDim.x) >> 5;
  for (int64_t l = w0; l < a.outer; l += nw) {
    const TI *xl = x + l * a.m;
    TO *yl = y + l * a.m;
    const int64_t n = line_len(a.len, a.ldt, l, a.m);
    double mx = -INFINITY;
    for (int64_t j = lane; j < n; j += 32) {
      const double v = a.sgn * (double)xl[j];
      if (v > mx) mx = v;
    }
    mx = warp_max(mx);
    double sum = 0;
    if (KIND == 0) {
      for (int64_t j = lane; j < n; j += 32) {
        const double e = exp_in<TI>((a.sgn * (double)xl[j] - mx) * a.inv_t);
        sum += e;
        yl[j] = (TO)e;
      }
      sum = warp_sum(sum);
      const TO r = (TO)(1.0 / sum);
      for (int64_t j = lane; j < n; j += 32) yl[j] *= r;
    } else {
      for (int64_t j = lane; j < n; j += 32)
        sum += exp_in<TI>((a.sgn * (double)xl[j] - mx) * a.inv_t);
      sum = warp_sum(sum);
      const double ls = log(sum);
      for (int64_t j = lane; j < n; j += 32)
        yl[j] = (TO)((a.sgn * (double)xl[j] - mx) * a.inv_t - ls);
    }
    for (int64_t j = n + lane; j < a.m; j += 32) yl[j] = (TO)0;
  }
}

// One block per line (inner == 1, long lines).
template <typename TI, typename TO, int KIND>
__global__ void sm_fwd_block(const TI *x, TO *y, SmArgs a) {
  __shared__ double sh[33];
  for (int64_t l = blockIdx.x; l < a.outer; l += gridDim.x) {
    const TI *xl = x + l * a.m;
    TO *yl = y + l * a.m;
    const int64_t n = line_len(a.len, a.ldt, l, a.m);
    double mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      const double v = a.sgn * (double)xl[j];
      if (v > mx) mx = v;
    }
    mx = block_max_all(mx, sh);
    double sum = 0;
    if (KIND == 0) {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const double e = exp_in<TI>((a.sgn * (double)xl[j] - mx) * a.inv_t);
        sum += e;
        yl[j] = (TO)e;
      }
      sum = block_sum_all(sum, sh);
      const TO r = (TO)(1.0 / sum);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) yl[j] *= r;
    } else {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        sum += exp_in<TI>((a.sgn * (double)xl[j] - mx) * a.inv_t);
      sum = block_sum_all(sum, sh);
      const double ls = log(sum);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        yl[j] = (TO)((a.sgn * (double)xl[j] - mx) * a.inv_t - ls);
    }
    for (int64_t j = n + threadIdx.x; j < a.m; j += blockDim.x) yl[j] = (TO)0;
  }
}

// Backward: gx (TI) from g and y (TO); scale = sgn / temp (in inv_t).
template <typename TI, typename TO, int KIND>
__global__ void sm_bwd_thread(const TO *y, const TO *g, TI *gx, SmArgs a) {
  const int64_t lines = a.outer * a.inner;
  SNN_LOOP(l, lines) {
    const int64_t o = l / a.inner, i = l - o * a.inner;
    const int64_t base = o * a.m * a.inner + i, st = a.inner;
    const TO *yl = y + base;
    const TO *gl = g + base;
    TI *gxl = gx + base;
    const int64_t n = line_len(a.len, a.ldt, l, a.m);
    double sum = 0;
    if (KIND == 0) {
      for (int64_t j = 0; j < n; j++) sum += (double)gl[j * st] * (double)yl[j * st];
      for (int64_t j = 0; j < n; j++)
        gxl[j * st] = (TI)((double)yl[j * st] * ((double)gl[j * st] - sum) * a.inv_t);
    } else {
      for (int64_t j = 0; j < n; j++) sum += (double)gl[j * st];
      for (int64_t j = 0; j < n; j++)
        gxl[j * st] = (TI)(((double)gl[j * st] - exp_in<TO>((double)yl[j * st]) * sum) * a.inv_t);
    }
    for (int64_t j = n; j < a.m; j++) gxl[j * st] = (TI)0;
  }
}

template <typename TI, typename TO, int KIND>
__global__ void sm_bwd_warp(const TO *y, const TO *g, TI *gx, SmArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t w0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t nw = ((int64_t)blockDim.x * gridDim.x) >> 5;
  for (int64_t l = w0; l < a.outer; l += nw) {
    const TO *yl = y + l * a.m;
    const TO *gl = g + l * a.m;
    TI *gxl = gx + l * a.m;
    const int64_t n = line_len(a.len, a.ldt, l, a.m);
    double sum = 0;
    if (KIND == 0) {
      for (int64_t j = lane; j < n; j += 32) sum += (double)gl[j] * (double)yl[j];
      sum = warp_sum(sum);
      for (int64_t j = lane; j < n; j += 32)
        gxl[j] = (TI)((double)yl[j] * ((double)gl[j] - sum) * a.inv_t);
    } else {
      for (int64_t j = lane; j < n; j += 32) sum += (double)gl[j];
      sum = warp_sum(sum);
      for (int64_t j = lane; j < n; j += 32)
        gxl[j] = (TI)(((double)gl[j] - exp_in<TO>((double)yl[j]) * sum) * a.inv_t);
    }
    for (int64_t j = n + lane; j < a.m; j += 32) gxl[j] = (TI)0;
  }
}

template <typename TI, typename TO, int KIND>
__global__ void sm_bwd_block(const TO *y, const TO *g, TI *gx, SmArgs a) {
  __shared__ double sh[33];
  for (int64_t l = blockIdx.x; l < a.outer; l += gridDim.x) {
    const TO *yl = y + l * a.m;
    const TO *gl = g + l * a.m;
    TI *gxl = gx + l * a.m;
    const int64_t n = line_len(a.len, a.ldt, l, a.m);
    double sum = 0;
    if (KIND == 0) {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += (double)gl[j] * (double)yl[j];
      sum = block_sum_all(sum, sh);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        gxl[j] = (TI)((double)yl[j] * ((double)gl[j] - sum) * a.inv_t);
    } else {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += (double)gl[j];
      sum = block_sum_all(sum, sh);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        gxl[j] = (TI)(((double)gl[j] - exp_in<TO>((double)yl[j]) * sum) * a.inv_t);
    }
    for (int64_t j = n + threadIdx.x; j < a.m; j += blockDim.x) gxl[j] = (TI)0;
  }
}

template <typename TI, typename TO, int KIND>
void sm_fwd_launch(cudaStream_t s, const void *x, void *y, const SmArgs &a) {
  if (a.inner > 1) {
    sm_fwd_thread<TI, TO, KIND><<<grid_for(a.outer * a.inner), SNN_BLOCK, 0, s>>>(
        (const TI *)x, (TO *)y, a);
  } else if (a.m <= 1024) {
    sm_fwd_warp<TI, TO, KIND><<<grid_for(a.outer * 32), SNN_BLOCK, 0, s>>>((const TI *)x, (TO *)y,
                                                                          a);
  } else {
    const unsigned g = (unsigned)(a.outer < 65535 * 4 ? a.outer : 65535 * 4);
    sm_fwd_block<TI, TO, KIND><<<g, 512, 0, s>>>((const TI *)x, (TO *)y, a);
  }
}

template <typename TI, typename TO, int KIND>
void sm_bwd_launch(cudaStream_t s, const void *y, const void *g, void *gx, const SmArgs &a) {
  if (a.inner > 1) {
    sm_bwd_thread<TI, TO, KIND><<<grid_for(a.outer * a.inner), SNN_BLOCK, 0, s>>>(
        (const TO *)y, (const TO *)g, (TI *)gx, a);
  } else if (a.m <= 1024) {
    sm_bwd_warp<TI, TO, KIND><<<grid_for(a.outer * 32), SNN_BLOCK, 0, s>>>(
        (const TO *)y, (const TO *)g, (TI *)gx, a);
  } else {
    const unsigned gr = (unsigned)(a.outer < 65535 * 4 ? a.outer : 65535 * 4);
    sm_bwd_block<TI, TO, KIND><<<gr, 512, 0, s>>>((const TO *)y, (const TO *)g, (TI *)gx, a);
  }
}

bool is_float(sn_dtype t) { return t == SN_F32 || t == SN_F64; }

// Backward of the lines (gx has dtype gdt = the input's, y and g ydt).
int softmax_lines_bwd(const sn_call *c, cudaStream_t s, const void *y, const void *g,
                      sn_dtype ydt, void *gx, sn_dtype gdt, int64_t outer, int64_t m,
                      int64_t inner, double temp, int kind, int negate, const void *len,
                      sn_dtype ldt) {
  if (!is_float(ydt) || !is_float(gdt))
    return host->error(SN_ERR_TYPE, "%s: dtype %s / %s is not supported (float32 or float64)",
                       op_name(c), dtype_name(gdt), dtype_name(ydt));
  if (outer * m * inner == 0) return SN_OK;
  SmArgs a{outer, m, inner, (negate ? -1.0 : 1.0) / temp, 1.0, len, (int)ldt};
  const bool f32i = gdt == SN_F32, f32o = ydt == SN_F32;
#define SNN_SM_BWD(TI, TO)                                              \
  (kind == 0 ? sm_bwd_launch<TI, TO, 0>(s, y, g, gx, a)                 \
             : sm_bwd_launch<TI, TO, 1>(s, y, g, gx, a))
  if (f32i && f32o)
    SNN_SM_BWD(float, float);
  else if (f32i)
    SNN_SM_BWD(float, double);
  else if (f32o)
    SNN_SM_BWD(double, float);
  else
    SNN_SM_BWD(double, double);
#undef SNN_SM_BWD
  return check_launch(c, "softmax backward");
}

}  // namespace

int softmax_lines(const sn_call *c, cudaStream_t s, const void *x, sn_dtype xdt, void *y,
                  sn_dtype ydt, int64_t outer, int64_t m, int64_t inner, double temp, int kind,
                  int negate, const void *len, sn_dtype ldt) {
  if (!is_float(xdt) || !is_float(ydt))
    return host->error(SN_ERR_TYPE, "%s: dtype %s / %s is not supported (float32 or float64)",
                       op_name(c), dtype_name(xdt), dtype_name(ydt));
  if (outer * m * inner == 0) return SN_OK;
  SmArgs a{outer, m, inner, 1.0 / temp, negate ? -1.0 : 1.0, len, (int)ldt};
  const bool f32i = xdt == SN_F32, f32o = ydt == SN_F32;
#define SNN_SM_FWD(TI, TO)                                        \
  (kind == 0 ? sm_fwd_launch<TI, TO, 0>(s, x, y, a) : sm_fwd_launch<TI, TO, 1>(s, x, y, a))
  if (f32i && f32o)
    SNN_SM_FWD(float, float);
  else if (f32i)
    SNN_SM_FWD(float, double);
  else if (f32o)
    SNN_SM_FWD(double, float);
  else
    SNN_SM_FWD(double, double);
#undef SNN_SM_FWD
  return check_launch(c, "softmax");
}

namespace {

// ---------------------------------------------------------------------------
// softmax / log_softmax / softmin
// ---------------------------------------------------------------------------

int norm_axis(const sn_call *c, int64_t axis, int ndim, int *out) {
  if (axis < -(int64_t)ndim || axis >= ndim)
    return host->error(SN_ERR_ARG, "%s: axis %lld is out of range for an array of %d dimensions",
                       op_name(c), (long long)axis, ndim);
  *out = (int)(axis < 0 ? axis + ndim : axis);
  return SN_OK;
}

void axis_view(const sn_shape *s, int axis, int64_t *outer, int64_t *m, int64_t *inner) {
  int64_t o = 1, in = 1;
  for (int d = 0; d < axis; d++) o *= s->dim[d];
  for (int d = axis + 1; d < s->ndim; d++) in *= s->dim[d];
  *outer = o;
  *m = s->ndim > 0 ? s->dim[axis] : 1;
  *inner = in;
}

int softmax_common_fwd(sn_call *c, int kind, int negate) {
  int64_t axis_p = -1;
  bool temp_set = false, use_length = false;
  double temp = 1.0;
  SN_TRY(p_int(c, "axis", &axis_p));
  SN_TRY(p_opt_float(c, "temperature", &temp_set, &temp));
  SN_TRY(p_bool(c, "use_length", &use_length));
  int axis = 0;
  SN_TRY(norm_axis(c, axis_p, c->in[0]->shape.ndim, &axis));
  if (!temp_set) temp = 1.0;
  if (!(temp != 0.0)) return host->error(SN_ERR_ARG, "%s: temperature must not be 0", op_name(c));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *len = nullptr;
  if (use_length) {
    if (c->nin < 2)
      return host->error(SN_ERR_ARG, "%s: use_length=True needs the length input", op_name(c));
    len = c->in[1];
    if (c->nout >= 2 && wants(c, 1)) {
      if (c->out[1]->dtype != len->dtype || nelem(c->out[1]) != nelem(len))
        return host->error(SN_ERR_INTERNAL, "%s: hidden length output does not match the input",
                           op_name(c));
      SN_TRY(copy_async(c, s, snc::data(c->out[1]), snc::data(len), nbytes(len)));
    }
  }
  if (!wants(c, 0)) return SN_OK;
  int64_t outer, m, inner;
  axis_view(&c->in[0]->shape, axis, &outer, &m, &inner);
  if (len && nelem(len) != outer * inner)
    return host->error(SN_ERR_SHAPE, "%s: length has %lld elements, expected %lld", op_name(c),
                       (long long)nelem(len), (long long)(outer * inner));
  return softmax_lines(c, s, snc::data(c->in[0]), c->in[0]->dtype, snc::data(c->out[0]),
                       c->out[0]->dtype, outer, m, inner, temp, kind, negate,
                       len ? snc::data(len) : nullptr, len ? len->dtype : SN_F32);
}

int softmax_common_bwd(sn_call *c, int kind, int negate) {
  int64_t axis_p = -1;
  bool temp_set = false, use_length = false;
  double temp = 1.0;
  SN_TRY(p_int(c, "axis", &axis_p));
  SN_TRY(p_opt_float(c, "temperature", &temp_set, &temp));
  SN_TRY(p_bool(c, "use_length", &use_length));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *len = nullptr;
  if (use_length) {
    if (c->nin >= 2 && wants(c, 1) && c->igrad[1]) SN_TRY(zero_tensor(c, s, c->igrad[1]));
    if (c->nout < 2)
      return host->error(SN_ERR_INTERNAL, "%s: the hidden length output is missing", op_name(c));
    len = c->out[1];
  }
  if (!wants(c, 0)) return SN_OK;
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "%s: backward needs the output gradient", op_name(c));
  int axis = 0;
  SN_TRY(norm_axis(c, axis_p, c->out[0]->shape.ndim, &axis));
  if (!temp_set) temp = 1.0;
  int64_t outer, m, inner;
  axis_view(&c->out[0]->shape, axis, &outer, &m, &inner);
  return softmax_lines_bwd(c, s, snc::data(c->out[0]), snc::data(c->ograd[0]), c->out[0]->dtype,
                           snc::data(c->igrad[0]), c->igrad[0]->dtype, outer, m, inner, temp,
                           kind, negate, len ? snc::data(len) : nullptr,
                           len ? len->dtype : SN_F32);
}

int softmax_fwd(sn_call *c) { return softmax_common_fwd(c, 0, 0); }
int softmax_bwd(sn_call *c) { return softmax_common_bwd(c, 0, 0); }
int log_softmax_fwd(sn_call *c) { return softmax_common_fwd(c, 1, 0); }
int log_softmax_bwd(sn_call *c) { return softmax_common_bwd(c, 1, 0); }
int softmin_fwd(sn_call *c) { return softmax_common_fwd(c, 0, 1); }
int softmin_bwd(sn_call *c) { return softmax_common_bwd(c, 0, 1); }

// ---------------------------------------------------------------------------
// SoftmaxActivation
// ---------------------------------------------------------------------------

const char *const kSaModes[] = {"instance", "channel"};

int sa_axis(const sn_call *c, const sn_shape *s, int *axis) {
  int mode = 0;
  SN_TRY(p_enum(c, "mode", kSaModes, 2, &mode));
  if (s->ndim < 1)
    return host->error(SN_ERR_SHAPE, "SoftmaxActivation: data must have at least 1 dimension");
  if (mode == 1) {
    if (s->ndim < 3)
      return host->error(SN_ERR_SHAPE,
                         "SoftmaxActivation: mode=channel needs data of at least 3 dimensions");
    *axis = 1;
  } else {
    *axis = s->ndim - 1;
  }
  return SN_OK;
}

int sa_fwd(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  int axis = 0;
  SN_TRY(sa_axis(c, &c->in[0]->shape, &axis));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int64_t outer, m, inner;
  axis_view(&c->in[0]->shape, axis, &outer, &m, &inner);
  return softmax_lines(c, s, snc::data(c->in[0]), c->in[0]->dtype, snc::data(c->out[0]),
                       c->out[0]->dtype, outer, m, inner, 1.0, 0, 0, nullptr, SN_F32);
}

int sa_bwd(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "SoftmaxActivation: backward needs the output gradient");
  int axis = 0;
  SN_TRY(sa_axis(c, &c->out[0]->shape, &axis));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int64_t outer, m, inner;
  axis_view(&c->out[0]->shape, axis, &outer, &m, &inner);
  return softmax_lines_bwd(c, s, snc::data(c->out[0]), snc::data(c->ograd[0]), c->out[0]->dtype,
                           snc::data(c->igrad[0]), c->igrad[0]->dtype, outer, m, inner, 1.0, 0, 0,
                           nullptr, SN_F32);
}

}  // namespace

}  // namespace snn

namespace snc {

int register_nn_act(const sn_host_api *h) {
  SN_TRY(h->register_kernels("Activation", snn::act_forward, snn::act_backward));
  SN_TRY(h->register_kernels("LeakyReLU", snn::lrelu_forward, snn::lrelu_backward));
  SN_TRY(h->register_kernels("softmax", snn::softmax_fwd, snn::softmax_bwd));
  SN_TRY(h->register_kernels("log_softmax", snn::log_softmax_fwd, snn::log_softmax_bwd));
  SN_TRY(h->register_kernels("softmin", snn::softmin_fwd, snn::softmin_bwd));
  SN_TRY(h->register_kernels("SoftmaxActivation", snn::sa_fwd, snn::sa_bwd));
  return SN_OK;
}

}  // namespace snc
