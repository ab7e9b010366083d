// GPU kernels of the loss output layers (ops/loss.c): SoftmaxOutput,
// LinearRegressionOutput, LogisticRegressionOutput, MAERegressionOutput and
// MakeLoss.  Own kernels with the CPU's semantics, quirks included:
//   - SoftmaxOutput: softmax over axis 1 of (N, size/N), the last axis with
//     preserve_shape, axis 1 of (N, C, rest) with multi_output (the softmax
//     lines of nn_act.cu); backward (p - onehot(label)) * grad_scale with
//     labels truncated like a C cast (NaN / out of int range match no
//     class), use_ignore zeroing the ignored rows, normalization batch (/N)
//     or valid (/ number of labels != ignore_label, at least 1; counted on
//     the device, no host synchronisation), multi_output dividing null and
//     batch by the spatial size, smooth_alpha, probability labels of the
//     data's shape (never normalised), out_grad; the label gets a zero
//     gradient;
//   - regression outputs: identity or sigmoid forward, backward
//     grad_scale / num_output * (out - label) or MXNet's sign (+1 when
//     out > label, else -1) for MAE;
//   - MakeLoss: identity forward, backward grad_scale (/ N for batch, / the
//     count of elements above valid_thresh for valid, at least 1).
// Temporary memory: 8 bytes (the valid count) for normalization = valid.
#include "nn_common.cuh"

namespace snn {

namespace {

enum { NORM_NULL, NORM_BATCH, NORM_VALID };
const char *const kNormNames[] = {"null", "batch", "valid"};

__device__ __forceinline__ int label_int(double v) {
  if (!(v > -2147483648.0 && v < 2147483648.0)) return INT32_MIN;
  return (int)v;
}

// Counts how many of the n values satisfy the predicate (one block).
template <typename T>
__global__ void count_labels_kernel(const T *lb, int64_t n, int ignore,
                                    unsigned long long *out) {
  __shared__ unsigned long long sh[32];
  unsigned long long cnt = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    if (label_int((double)lb[i]) != ignore) cnt++;
  for (int o = 16; o > 0; o >>= 1) cnt += __shfl_down_sync(0xffffffffu, cnt, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = cnt;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long t = 0;
    for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++) t += sh[w];
    *out = t;
  }
}

template <typename T>
__global__ void count_above_kernel(const T *x, int64_t n, double th, unsigned long long *out) {
  __shared__ unsigned long long sh[32];
  unsigned long long cnt = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    if (th < (double)x[i]) cnt++;
  for (int o = 16; o > 0; o >>= 1) cnt += __shfl_down_sync(0xffffffffu, cnt, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = cnt;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long t = 0;
    for (int w = 0; w < (int)(blockDim.x + 31) / 32; w++) t += sh[w];
    *out = t;
  }
}

// ---------------------------------------------------------------------------
// SoftmaxOutput
// ---------------------------------------------------------------------------

struct SoArgs {
  double grad_scale = 1;
  int ignore, use_ignore;
  int64_t k, inner;
  double host_valid;                   // divisor when cnt is NULL
  const unsigned long long *cnt;       // valid count (normalization = valid)
  int div_inner;                       // multi_output and not valid
  double alpha, smooth;
};

template <typename T>
__global__ void so_grad_kernel(const T *y, const T *lb, const T *g, T *gx, int64_t total,
                               SoArgs a) {
  double valid = a.host_valid;
  if (a.cnt) {
    const unsigned long long c = *a.cnt;
    valid = c == 0 ? 1.0 : (double)c;
  }
  double scale = a.grad_scale / valid;
  if (a.div_inner) scale /= (double)a.inner;
  const int64_t ki = a.k * a.inner;
  SNN_LOOP(e, total) {
    const int64_t o = e / ki, r = e - o * ki;
    const int64_t j = r / a.inner, i = r - j * a.inner;
    const int lbl = label_int((double)lb[o * a.inner + i]);
    if (a.use_ignore && lbl == a.ignore) {
      gx[e] = (T)0;
      continue;
    }
    double v = (double)y[e];
    if (j == (int64_t)lbl && lbl >= 0)
      v -= 1.0 - a.alpha;
    else
      v -= a.smooth;
    v *= scale;
    if (g) v *= (double)g[e];
    gx[e] = (T)v;
  }
}

template <typename T>
__global__ void so_prob_grad_kernel(const T *y, const T *lb, const T *g, T *gx, int64_t n,
                                    double grad_scale) {
  SNN_LOOP(i, n) {
    const double v = ((double)y[i] - (double)lb[i]) * grad_scale;
    gx[i] = (T)(g ? v * (double)g[i] : v);
  }
}

struct SoParams {
  double grad_scale, ignore_label, smooth_alpha;
  bool multi, use_ignore, preserve, out_grad;
  int norm;
};

int so_params(const sn_call *c, SoParams *p) {
  SN_TRY(p_float(c, "grad_scale", &p->grad_scale));
  SN_TRY(p_float(c, "ignore_label", &p->ignore_label));
  SN_TRY(p_bool(c, "multi_output", &p->multi));
  SN_TRY(p_bool(c, "use_ignore", &p->use_ignore));
  SN_TRY(p_bool(c, "preserve_shape", &p->preserve));
  SN_TRY(p_enum(c, "normalization", kNormNames, 3, &p->norm));
  SN_TRY(p_bool(c, "out_grad", &p->out_grad));
  SN_TRY(p_float(c, "smooth_alpha", &p->smooth_alpha));
  const double a = p->smooth_alpha;
  if (!(a >= 0.0 && a <= 1.0))
    return host->error(SN_ERR_ARG, "SoftmaxOutput: smooth_alpha must be in [0, 1], got %g", a);
  return SN_OK;
}

void so_view(const SoParams &p, const sn_shape *s, int64_t *outer, int64_t *k, int64_t *inner) {
  int64_t total = 1;
  for (int d = 0; d < s->ndim; d++) total *= s->dim[d];
  if (s->ndim == 0) {
    *outer = 1, *k = 1, *inner = 1;
  } else if (p.multi && s->ndim >= 2) {
    *outer = s->dim[0];
    *k = s->dim[1];
    *inner = (s->dim[0] != 0 && s->dim[1] != 0) ? total / (s->dim[0] * s->dim[1]) : 0;
  } else if (p.preserve) {
    *k = s->dim[s->ndim - 1];
    *outer = *k ? total / *k : 0;
    *inner = 1;
  } else {
    *outer = s->dim[0];
    *k = s->dim[0] ? total / s->dim[0] : 0;
    *inner = 1;
  }
}

// The label gets a zero gradient when it is requested.
int zero_label_grad(const sn_call *c, cudaStream_t s) {
  if (c->nin > 1 && wants(c, 1) && c->igrad && c->igrad[1]) return zero_tensor(c, s, c->igrad[1]);
  return SN_OK;
}

int so_forward(sn_call *c) {
  SoParams p;
  SN_TRY(so_params(c, &p));
  if (!wants(c, 0)) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int64_t outer, k, inner;
  so_view(p, &c->in[0]->shape, &outer, &k, &inner);
  const sn_dtype dt = c->in[0]->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return host->error(SN_ERR_TYPE, "SoftmaxOutput: dtype %s is not supported (float32 or "
                       "float64)", dtype_name(dt));
  return softmax_lines(c, s, snc::data(c->in[0]), dt, snc::data(c->out[0]), dt, outer, k, inner,
                       1.0, 0, 0, nullptr, SN_F32);
}

bool same_shape(const sn_shape *a, const sn_shape *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

int so_backward(sn_call *c) {
  SoParams p;
  SN_TRY(so_params(c, &p));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SN_TRY(zero_label_grad(c, s));
  if (!wants(c, 0)) return SN_OK;
  const sn_tensor *out = c->out[0], *lab = c->in[1];
  const sn_tensor *og = nullptr;
  if (p.out_grad) {
    og = c->ograd ? c->ograd[0] : nullptr;
    if (!og)
      return host->error(SN_ERR_UNSUPPORTED,
                         "SoftmaxOutput: out_grad=True needs the output gradient, which was not "
                         "given to this loss op");
  }
  if (lab->dtype != out->dtype)
    return host->error(SN_ERR_TYPE, "SoftmaxOutput: label has dtype %s, data %s (GPU kernels "
                       "need one dtype)", dtype_name(lab->dtype), dtype_name(out->dtype));
  const int64_t total = nelem(out), nlab = nelem(lab);
  if (same_shape(&lab->shape, &out->shape)) {
    if (total == 0) return SN_OK;
    SNC_FLOAT_SWITCH(out->dtype, c, T, {
      so_prob_grad_kernel<T><<<grid_for(total), SNN_BLOCK, 0, s>>>(
          snc::ptr<T>(out), snc::ptr<T>(lab), og ? snc::ptr<T>(og) : nullptr,
          snc::ptr<T>(c->igrad[0]), total, p.grad_scale);
    });
    return check_launch(c, "SoftmaxOutput backward");
  }
  int64_t outer, k, inner;
  so_view(p, &out->shape, &outer, &k, &inner);
  const int64_t lines = outer * inner;
  if (nlab != lines) {
    char b1[96], b2[96];
    return host->error(SN_ERR_SHAPE,
                       "SoftmaxOutput: label has shape %s (%lld values) but the output %s has "
                       "%lld rows",
                       shape_str(&lab->shape, b1, sizeof b1), (long long)nlab,
                       shape_str(&out->shape, b2, sizeof b2), (long long)lines);
  }
  // label_int of the ignore label (a host copy of the device function)
  const double il = p.ignore_label;
  const int ignore = !(il > -2147483648.0 && il < 2147483648.0) ? INT32_MIN : (int)il;
  SoArgs a;
  a.grad_scale = p.grad_scale;
  a.ignore = ignore;
  a.use_ignore = p.use_ignore ? 1 : 0;
  a.k = k;
  a.inner = inner;
  a.host_valid = p.norm == NORM_BATCH ? (double)outer : 1.0;
  a.cnt = nullptr;
  a.div_inner = p.multi && p.norm != NORM_VALID;
  a.alpha = p.multi ? 0.0 : p.smooth_alpha;
  a.smooth = (!p.multi && p.smooth_alpha != 0.0 && k > 1) ? p.smooth_alpha / (double)(k - 1) : 0.0;
  if (total == 0) return SN_OK;
  Scratch sc;
  if (p.norm == NORM_VALID) {
    SN_TRY(scratch_get(c, s, sizeof(unsigned long long), &sc));
    a.cnt = (const unsigned long long *)sc.ptr;
  }
  SNC_FLOAT_SWITCH(out->dtype, c, T, {
    if (a.cnt) {
      count_labels_kernel<T><<<1, 1024, 0, s>>>(snc::ptr<T>(lab), nlab, ignore,
                                                (unsigned long long *)sc.ptr);
      SN_TRY(check_launch(c, "SoftmaxOutput valid count"));
    }
    so_grad_kernel<T><<<grid_for(total), SNN_BLOCK, 0, s>>>(
        snc::ptr<T>(out), snc::ptr<T>(lab), og ? snc::ptr<T>(og) : nullptr,
        snc::ptr<T>(c->igrad[0]), total, a);
  });
  return check_launch(c, "SoftmaxOutput backward");
}

// ---------------------------------------------------------------------------
// Regression outputs
// ---------------------------------------------------------------------------

enum { REG_LINEAR, REG_LOGISTIC, REG_MAE };

template <typename T>
__global__ void logistic_kernel(const T *x, T *y, int64_t n) {
  SNN_LOOP(i, n) { y[i] = (T)(1.0 / (1.0 + exp_in<T>(-(double)x[i]))); }
}

template <typename T, int MAE>
__global__ void reg_grad_kernel(const T *y, const T *lb, T *gx, int64_t n, double scale) {
  SNN_LOOP(i, n) {
    const double d = (double)y[i] - (double)lb[i];
    gx[i] = MAE ? (T)((d > 0 ? 1.0 : -1.0) * scale) : (T)(d * scale);
  }
}

int reg_forward_impl(sn_call *c, int kind) {
  if (!wants(c, 0)) return SN_OK;
  const int64_t n = nelem(c->in[0]);
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *x = snc::ptr<T>(c->in[0]);
    T *y = snc::ptr<T>(c->out[0]);
    if (kind == REG_LOGISTIC) {
      if (n > 0) {
        logistic_kernel<T><<<grid_for(n), SNN_BLOCK, 0, s>>>(x, y, n);
        SN_TRY(check_launch(c, "LogisticRegressionOutput"));
      }
    } else {
      SN_TRY(copy_async(c, s, y, x, (size_t)n * sizeof(T)));
    }
  });
  return SN_OK;
}

int reg_backward_impl(sn_call *c, int kind) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SN_TRY(zero_label_grad(c, s));
  if (!wants(c, 0)) return SN_OK;
  const sn_tensor *out = c->out[0], *lab = c->in[1];
  const int64_t n = nelem(out);
  if (nelem(lab) != n || lab->shape.ndim < 1)
    return host->error(SN_ERR_SHAPE, "%s: label has %lld values, the output %lld", op_name(c),
                       (long long)nelem(lab), (long long)n);
  if (lab->dtype != out->dtype)
    return host->error(SN_ERR_TYPE, "%s: label has dtype %s, data %s (GPU kernels need one "
                       "dtype)", op_name(c), dtype_name(lab->dtype), dtype_name(out->dtype));
  if (n == 0) return SN_OK;
  double grad_scale = 1;
  SN_TRY(p_float(c, "grad_scale", &grad_scale));
  const double num_output = (double)(nelem(lab) / lab->shape.dim[0]);
  const double scale = grad_scale / num_output;
  SNC_FLOAT_SWITCH(out->dtype, c, T, {
    if (kind == REG_MAE)
      reg_grad_kernel<T, 1><<<grid_for(n), SNN_BLOCK, 0, s>>>(
          snc::ptr<T>(out), snc::ptr<T>(lab), snc::ptr<T>(c->igrad[0]), n, scale);
    else
      reg_grad_kernel<T, 0><<<grid_for(n), SNN_BLOCK, 0, s>>>(
          snc::ptr<T>(out), snc::ptr<T>(lab), snc::ptr<T>(c->igrad[0]), n, scale);
  });
  return check_launch(c, "regression output backward");
}

int linreg_fwd(sn_call *c) { return reg_forward_impl(c, REG_LINEAR); }
int linreg_bwd(sn_call *c) { return reg_backward_impl(c, REG_LINEAR); }
int logreg_fwd(sn_call *c) { return reg_forward_impl(c, REG_LOGISTIC); }
int logreg_bwd(sn_call *c) { return reg_backward_impl(c, REG_LOGISTIC); }
int maereg_fwd(sn_call *c) { return reg_forward_impl(c, REG_MAE); }
int maereg_bwd(sn_call *c) { return reg_backward_impl(c, REG_MAE); }

// ---------------------------------------------------------------------------
// MakeLoss
// ---------------------------------------------------------------------------

// gx[i] = (T)(v / max(cnt, 1)) when cnt is given, else (T)v.
template <typename T>
__global__ void ml_fill_kernel(T *gx, int64_t n, double v, const unsigned long long *cnt) {
  double w = v;
  if (cnt) {
    const unsigned long long k = *cnt;
    w /= (double)(k < 1 ? 1 : k);
  }
  const T tv = (T)w;
  SNN_LOOP(i, n) gx[i] = tv;
}

int ml_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  return copy_async(c, s, snc::data(c->out[0]), snc::data(c->in[0]), nbytes(c->in[0]));
}

int ml_backward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  double v = 0, th = 0;
  int norm = 0;
  SN_TRY(p_float(c, "grad_scale", &v));
  SN_TRY(p_float(c, "valid_thresh", &th));
  SN_TRY(p_enum(c, "normalization", kNormNames, 3, &norm));
  const sn_tensor *x = c->in[0];
  const int64_t n = nelem(x);
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (n == 0) return SN_OK;
  Scratch sc;
  if (norm == NORM_BATCH) v /= (double)(x->shape.ndim > 0 ? x->shape.dim[0] : 1);
  if (norm == NORM_VALID) SN_TRY(scratch_get(c, s, sizeof(unsigned long long), &sc));
  SNC_FLOAT_SWITCH(x->dtype, c, T, {
    if (norm == NORM_VALID) {
      count_above_kernel<T><<<1, 1024, 0, s>>>(snc::ptr<T>(x), n, th, (unsigned long long *)sc.ptr);
      SN_TRY(check_launch(c, "MakeLoss valid count"));
    }
    ml_fill_kernel<T><<<grid_for(n), SNN_BLOCK, 0, s>>>(
        snc::ptr<T>(c->igrad[0]), n, v,
        norm == NORM_VALID ? (const unsigned long long *)sc.ptr : nullptr);
  });
  return check_launch(c, "MakeLoss backward");
}

}  // namespace

}  // namespace snn

namespace snc {

int register_nn_loss(const sn_host_api *h) {
  SN_TRY(h->register_kernels("SoftmaxOutput", snn::so_forward, snn::so_backward));
  SN_TRY(h->register_kernels("LinearRegressionOutput", snn::linreg_fwd, snn::linreg_bwd));
  SN_TRY(h->register_kernels("LogisticRegressionOutput", snn::logreg_fwd, snn::logreg_bwd));
  SN_TRY(h->register_kernels("MAERegressionOutput", snn::maereg_fwd, snn::maereg_bwd));
  SN_TRY(h->register_kernels("MakeLoss", snn::ml_forward, snn::ml_backward));
  return SN_OK;
}

}  // namespace snc
