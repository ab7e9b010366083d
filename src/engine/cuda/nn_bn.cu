// GPU kernels of BatchNorm (ops/batch_norm.c).
//
// Own kernels rather than cuDNN: cuDNN updates the running variance with the
// unbiased variance and needs eps >= 1e-5, while the CPU kernel (and so
// symnet) uses the biased variance for both the normalisation and the
// moving average, and any eps.  Semantics kept exactly:
//   training (is_train and not use_global_stats): per-channel mean and
//     biased variance of the batch (two passes, double accumulation),
//     invstd = 1/sqrt(var + eps) (0 when var and eps are both 0),
//     moving_mean/var = moving * momentum + batch * (1 - momentum) in the
//     forward pass;
//   otherwise the moving statistics;
//   hidden outputs mean and var hold the mean and the invstd used, in T,
//     which the backward pass reads back;
//   fix_gamma: gamma treated as 1, zero gamma gradient;
//   backward: the batch-statistics formula unless use_global_stats.
// Channel sums use the deterministic chan_reduce of nn_common.cuh (block per
// channel and split, partial sums combined in a fixed order).
//
// Temporary memory: forward training 16 * C bytes plus the reduction's
// C * splits * 16; backward 24 * C bytes plus the same (see chan_splits).
// Inference needs none.
#include "nn_common.cuh"

namespace snn {

namespace {

struct BnArgs {
  double eps, mom;
  bool fix_gamma, use_global;
  int axis;
  int64_t outer, ch, inner, m;
};

int bn_args(const sn_call *c, BnArgs *a) {
  int64_t axis = 1;
  SN_TRY(p_float(c, "eps", &a->eps));
  SN_TRY(p_float(c, "momentum", &a->mom));
  SN_TRY(p_bool(c, "fix_gamma", &a->fix_gamma));
  SN_TRY(p_bool(c, "use_global_stats", &a->use_global));
  SN_TRY(p_int(c, "axis", &axis));
  const sn_shape *s = &c->in[0]->shape;
  const int nd = s->ndim;
  if (nd < 1 || axis < -(int64_t)nd || axis >= nd)
    return host->error(SN_ERR_ARG,
                       "BatchNorm: channel axis %lld is out of range for data of %d dimensions",
                       (long long)axis, nd);
  a->axis = (int)(axis < 0 ? axis + nd : axis);
  int64_t o = 1, in = 1;
  for (int d = 0; d < a->axis; d++) o *= s->dim[d];
  for (int d = a->axis + 1; d < nd; d++) in *= s->dim[d];
  a->outer = o;
  a->ch = s->dim[a->axis];
  a->inner = in;
  a->m = o * in;
  return SN_OK;
}

// ---- forward ----

template <typename T>
struct LoadX {
  const T *x;
  __device__ __forceinline__ D2 operator()(int64_t, int64_t e) const {
    return D2{(double)x[e], 0.0};
  }
};

struct StoreMean {
  double *mean;
  int64_t m;
  __device__ __forceinline__ void operator()(int64_t c, D2 s) const {
    mean[c] = m > 0 ? s.a / (double)m : 0.0;
  }
};

template <typename T>
struct LoadSqDev {
  const T *x;
  const double *mean;
  __device__ __forceinline__ D2 operator()(int64_t c, int64_t e) const {
    const double d = (double)x[e] - mean[c];
    return D2{d * d, 0.0};
  }
};

// Finishes the batch statistics of channel c: aux update, hidden outputs,
// the affine coefficients of the output.
template <typename T>
struct StoreFinal {
  const double *mean;
  double *coef;  // 2 per channel
  T *mm, *mv, *smean, *sinv;
  const T *gamma, *beta;
  double eps, mom;
  int64_t m;
  int fix_gamma;
  __device__ __forceinline__ void operator()(int64_t c, D2 s) const {
    const double mu = mean[c], ss = s.a;
    const double var = m > 0 ? ss / (double)m : 0.0;
    const double invstd = (ss == 0 && eps == 0) ? 0.0 : 1.0 / sqrt(var + eps);
    mm[c] = (T)((double)mm[c] * mom + mu * (1.0 - mom));
    mv[c] = (T)((double)mv[c] * mom + var * (1.0 - mom));
    if (smean) smean[c] = (T)mu;
    if (sinv) sinv[c] = (T)invstd;
    const double w = fix_gamma ? 1.0 : (double)gamma[c];
    const double a = invstd * w;
    coef[2 * c] = a;
    coef[2 * c + 1] = (double)beta[c] - mu * a;
  }
};

template <typename T, typename I>
__global__ void bn_apply_kernel(const T *x, T *y, const double *coef, I total, I inner, I ch) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)blockDim.x * gridDim.x) {
    const I c = (i / inner) % ch;
    y[i] = (T)((double)x[i] * coef[2 * c] + coef[2 * c + 1]);
  }
}

// Moving statistics (inference / use_global_stats).
template <typename T, typename I>
__global__ void bn_apply_global_kernel(const T *x, T *y, const T *mm, const T *mv, const T *gamma,
                                       const T *beta, double eps, int fix_gamma, I total, I inner,
                                       I ch) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)blockDim.x * gridDim.x) {
    const I c = (i / inner) % ch;
    const double mean = (double)mm[c];
    const double invstd = 1.0 / sqrt((double)mv[c] + eps);
    const double w = fix_gamma ? 1.0 : (double)gamma[c];
    const double a = invstd * w;
    const double b = (double)beta[c] - mean * a;
    y[i] = (T)((double)x[i] * a + b);
  }
}

template <typename T>
__global__ void bn_global_stats_kernel(const T *mm, const T *mv, double eps, T *smean, T *sinv,
                                       int64_t ch) {
  SNN_LOOP(c, ch) {
    if (smean) smean[c] = mm[c];
    if (sinv) sinv[c] = (T)(1.0 / sqrt((double)mv[c] + eps));
  }
}

int bn_forward(sn_call *c) {
  BnArgs a;
  SN_TRY(bn_args(c, &a));
  const sn_tensor *xt = c->in[0];
  if (c->naux < 2)
    return host->error(SN_ERR_ARG, "BatchNorm: the aux states moving_mean and moving_var are "
                       "missing");
  for (int i = 1; i < 3; i++)
    if (nelem(c->in[i]) != a.ch)
      return host->error(SN_ERR_SHAPE, "BatchNorm: %s has %lld values, data has %lld channels",
                         i == 1 ? "gamma" : "beta", (long long)nelem(c->in[i]), (long long)a.ch);
  for (int i = 0; i < 2; i++)
    if (nelem(c->aux[i]) != a.ch || c->aux[i]->dtype != xt->dtype)
      return host->error(SN_ERR_SHAPE, "BatchNorm: %s must have %lld values of dtype %s",
                         i == 0 ? "moving_mean" : "moving_var", (long long)a.ch,
                         dtype_name(xt->dtype));
  const bool batch_stats = c->is_train && !a.use_global;
  const bool want_out = wants(c, 0);
  const bool want_mean = c->nout > 1 && wants(c, 1);
  const bool want_var = c->nout > 2 && wants(c, 2);
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const int64_t total = a.m * a.ch;
  const bool i32 = total < ((int64_t)1 << 31);
  SNC_FLOAT_SWITCH(xt->dtype, c, T, {
    const T *x = snc::ptr<T>(xt);
    const T *gamma = snc::ptr<T>(c->in[1]);
    const T *beta = snc::ptr<T>(c->in[2]);
    T *mm = snc::ptr<T>(c->aux[0]);
    T *mv = snc::ptr<T>(c->aux[1]);
    T *y = want_out ? snc::ptr<T>(c->out[0]) : nullptr;
    T *smean = want_mean ? snc::ptr<T>(c->out[1]) : nullptr;
    T *sinv = want_var ? snc::ptr<T>(c->out[2]) : nullptr;
    if (a.ch == 0) break;
    if (batch_stats) {
      Carver cv;
      const size_t o_mean = cv.add((size_t)a.ch * sizeof(double));
      const size_t o_coef = cv.add((size_t)a.ch * 2 * sizeof(double));
      const size_t o_part = cv.add(chan_scratch_bytes(c->dev.id, a.outer, a.ch, a.inner));
      if (cv.overflow) return sizes_overflow(c);
      Scratch sc;
      SN_TRY(scratch_get(c, s, cv.off, &sc));
      char *base = (char *)sc.ptr;
      double *mean = (double *)(base + o_mean), *coef = (double *)(base + o_coef);
      void *part = base + o_part;
      SN_TRY(chan_reduce(c, s, a.outer, a.ch, a.inner, LoadX<T>{x}, StoreMean{mean, a.m}, part));
      StoreFinal<T> fin{mean, coef, mm, mv, smean, sinv, gamma, beta, a.eps, a.mom, a.m,
                        a.fix_gamma ? 1 : 0};
      SN_TRY(chan_reduce(c, s, a.outer, a.ch, a.inner, LoadSqDev<T>{x, mean}, fin, part));
      if (y && total > 0) {
        if (i32)
          bn_apply_kernel<T, uint32_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              x, y, coef, (uint32_t)total, (uint32_t)a.inner, (uint32_t)a.ch);
        else
          bn_apply_kernel<T, uint64_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              x, y, coef, (uint64_t)total, (uint64_t)a.inner, (uint64_t)a.ch);
        SN_TRY(check_launch(c, "BatchNorm"));
      }
    } else {
      if (smean || sinv) {
        bn_global_stats_kernel<T><<<grid_for(a.ch), SNN_BLOCK, 0, s>>>(mm, mv, a.eps, smean, sinv,
                                                                      a.ch);
        SN_TRY(check_launch(c, "BatchNorm statistics"));
      }
      if (y && total > 0) {
        const int fg = a.fix_gamma ? 1 : 0;
        if (i32)
          bn_apply_global_kernel<T, uint32_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              x, y, mm, mv, gamma, beta, a.eps, fg, (uint32_t)total, (uint32_t)a.inner,
              (uint32_t)a.ch);
        else
          bn_apply_global_kernel<T, uint64_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              x, y, mm, mv, gamma, beta, a.eps, fg, (uint64_t)total, (uint64_t)a.inner,
              (uint64_t)a.ch);
        SN_TRY(check_launch(c, "BatchNorm"));
      }
    }
  });
  return SN_OK;
}

// ---- backward ----

template <typename T>
struct LoadGrad {
  const T *x, *dy, *smean;
  __device__ __forceinline__ D2 operator()(int64_t c, int64_t e) const {
    const double g = (double)dy[e];
    return D2{g, ((double)x[e] - (double)smean[c]) * g};
  }
};

template <typename T>
struct StoreGrad {
  const T *sinv, *gamma;
  T *dg, *db;
  double *coef;  // 3 per channel: gm, kk, iw
  int64_t m;
  int fix_gamma, batch_stats;
  __device__ __forceinline__ void operator()(int64_t c, D2 s) const {
    const double sum_dy = s.a, dotp = s.b, invstd = (double)sinv[c];
    const double w = fix_gamma ? 1.0 : (double)gamma[c];
    if (dg) dg[c] = fix_gamma ? (T)0 : (T)(dotp * invstd);
    if (db) db[c] = (T)sum_dy;
    if (coef) {
      if (batch_stats && m > 0) {
        coef[3 * c] = sum_dy / (double)m;
        coef[3 * c + 1] = dotp * invstd * invstd / (double)m;
      } else {
        coef[3 * c] = coef[3 * c + 1] = 0.0;
      }
      coef[3 * c + 2] = invstd * w;
    }
  }
};

template <typename T, typename I>
__global__ void bn_dx_kernel(const T *x, const T *dy, const T *smean, const double *coef, T *dx,
                             I total, I inner, I ch) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)blockDim.x * gridDim.x) {
    const I c = (i / inner) % ch;
    const double gm = coef[3 * c], kk = coef[3 * c + 1], iw = coef[3 * c + 2];
    dx[i] = (T)(((double)dy[i] - gm - ((double)x[i] - (double)smean[c]) * kk) * iw);
  }
}

template <typename T, typename I>
__global__ void bn_dx_global_kernel(const T *dy, const T *sinv, const T *gamma, int fix_gamma,
                                    T *dx, I total, I inner, I ch) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)blockDim.x * gridDim.x) {
    const I c = (i / inner) % ch;
    const double iw = (double)sinv[c] * (fix_gamma ? 1.0 : (double)gamma[c]);
    dx[i] = (T)((double)dy[i] * iw);
  }
}

int bn_backward(sn_call *c) {
  BnArgs a;
  SN_TRY(bn_args(c, &a));
  if (c->nout < 3 || !c->out[1] || !c->out[2] || !c->out[1]->st || !c->out[2]->st)
    return host->error(SN_ERR_INTERNAL, "BatchNorm: the saved mean and inverse std are missing");
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "BatchNorm: backward needs the output gradient");
  const bool batch_stats = !a.use_global;
  const bool want_x = wants(c, 0);
  const bool want_g = c->nin > 1 && wants(c, 1);
  const bool want_b = c->nin > 2 && wants(c, 2);
  if (!want_x && !want_g && !want_b) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const int64_t total = a.m * a.ch;
  const bool i32 = total < ((int64_t)1 << 31);
  const int fg = a.fix_gamma ? 1 : 0;
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *x = snc::ptr<T>(c->in[0]);
    const T *gamma = snc::ptr<T>(c->in[1]);
    const T *smean = snc::ptr<T>(c->out[1]);
    const T *sinv = snc::ptr<T>(c->out[2]);
    const T *dy = snc::ptr<T>(c->ograd[0]);
    T *dx = want_x ? snc::ptr<T>(c->igrad[0]) : nullptr;
    T *dg = want_g ? snc::ptr<T>(c->igrad[1]) : nullptr;
    T *db = want_b ? snc::ptr<T>(c->igrad[2]) : nullptr;
    if (a.ch == 0) break;
    const bool need_sums = want_g || want_b || (want_x && batch_stats);
    Scratch sc;
    double *coef = nullptr;
    if (need_sums) {
      Carver cv;
      const size_t o_coef = cv.add((size_t)a.ch * 3 * sizeof(double));
      const size_t o_part = cv.add(chan_scratch_bytes(c->dev.id, a.outer, a.ch, a.inner));
      if (cv.overflow) return sizes_overflow(c);
      SN_TRY(scratch_get(c, s, cv.off, &sc));
      char *base = (char *)sc.ptr;
      coef = want_x && batch_stats ? (double *)(base + o_coef) : nullptr;
      StoreGrad<T> st{sinv, gamma, dg, db, coef, a.m, fg, batch_stats ? 1 : 0};
      SN_TRY(chan_reduce(c, s, a.outer, a.ch, a.inner, LoadGrad<T>{x, dy, smean}, st,
                         base + o_part));
    }
    if (dx && total > 0) {
      if (batch_stats) {
        if (i32)
          bn_dx_kernel<T, uint32_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              x, dy, smean, coef, dx, (uint32_t)total, (uint32_t)a.inner, (uint32_t)a.ch);
        else
          bn_dx_kernel<T, uint64_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              x, dy, smean, coef, dx, (uint64_t)total, (uint64_t)a.inner, (uint64_t)a.ch);
      } else {
        if (i32)
          bn_dx_global_kernel<T, uint32_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              dy, sinv, gamma, fg, dx, (uint32_t)total, (uint32_t)a.inner, (uint32_t)a.ch);
        else
          bn_dx_global_kernel<T, uint64_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
              dy, sinv, gamma, fg, dx, (uint64_t)total, (uint64_t)a.inner, (uint64_t)a.ch);
      }
      SN_TRY(check_launch(c, "BatchNorm backward"));
    }
  });
  return SN_OK;
}

}  // namespace

}  // namespace snn

namespace snc {

int register_nn_bn(const sn_host_api *h) {
  return h->register_kernels("BatchNorm", snn::bn_forward, snn::bn_backward);
}

}  // namespace snc
