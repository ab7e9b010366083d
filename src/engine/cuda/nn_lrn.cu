// GPU kernels of LRN (ops/lrn.c): local response normalisation across
// channels, data (N, C, ...) of any rank >= 2.
//   norm = knorm + alpha/nsize * sum_{|c'-c| <= nsize/2} x[c']^2
//   out  = x * norm^(-beta)
// cuDNN's LRN uses the same convention (it divides alpha by n, which is why
// MXNet hands it alpha unscaled), but it is not used here: the op's
// contract includes the hidden output tmp_norm that the backward pass reads,
// cuDNN does not expose it, and the CPU sums the squares in T in channel
// order — own kernels reproduce that exactly.
// Forward: one thread per element (the window's squares summed in channel
// order, in T).  Backward: one thread per element; the CPU's temporary
// t = dy * x * norm^(-beta-1) (in T) is recomputed for the nsize channels of
// the window instead of stored, so no temporary memory is needed:
//   dx = dy * norm^(-beta) - 2 beta alpha/nsize * x * sum_window t
#include "nn_common.cuh"

namespace snn {

namespace {

struct LrnArgs {
  double salpha, beta, knorm;
  int64_t half, outer, ch, inner;
};

int lrn_args(const sn_call *c, LrnArgs *a) {
  double alpha = 0;
  int64_t nsize = 0;
  SN_TRY(p_float(c, "alpha", &alpha));
  SN_TRY(p_float(c, "beta", &a->beta));
  SN_TRY(p_float(c, "knorm", &a->knorm));
  SN_TRY(p_int(c, "nsize", &nsize));
  if (nsize < 1 || nsize % 2 != 1 || nsize > INT32_MAX)
    return host->error(SN_ERR_ARG, "LRN: nsize must be a positive odd number, got %lld",
                       (long long)nsize);
  const sn_shape *s = &c->in[0]->shape;
  if (s->ndim < 2) return host->error(SN_ERR_SHAPE, "LRN: data must have at least 2 dimensions");
  a->half = nsize / 2;
  a->salpha = alpha / (double)nsize;
  a->outer = s->dim[0];
  a->ch = s->dim[1];
  int64_t in = 1;
  for (int d = 2; d < s->ndim; d++) in *= s->dim[d];
  a->inner = in;
  return SN_OK;
}

template <typename T>
__global__ void lrn_fwd_kernel(const T *x, T *y, T *norm, LrnArgs a, int64_t n) {
  const T nb = (T)(-a.beta);
  SNN_LOOP(i, n) {
    const int64_t j = i % a.inner, r = i / a.inner;
    const int64_t k = r % a.ch, o = r / a.ch;
    const int64_t c0 = k - a.half < 0 ? 0 : k - a.half;
    const int64_t c1 = k + a.half + 1 > a.ch ? a.ch : k + a.half + 1;
    T nr = 0;
    for (int64_t cc = c0; cc < c1; cc++) {
      const T v = x[(o * a.ch + cc) * a.inner + j];
      nr += v * v;
    }
    nr = (T)(a.knorm + a.salpha * (double)nr);
    if (norm) norm[i] = nr;
    if (y) y[i] = x[i] * d_pow(nr, nb);
  }
}

template <typename T>
__global__ void lrn_bwd_kernel(const T *x, const T *norm, const T *g, T *gx, LrnArgs a,
                               int64_t n) {
  const T nb = (T)(-a.beta), nb1 = (T)(-a.beta - 1.0);
  const double coef = -2.0 * a.beta * a.salpha;
  SNN_LOOP(i, n) {
    const int64_t j = i % a.inner, r = i / a.inner;
    const int64_t k = r % a.ch, o = r / a.ch;
    const int64_t c0 = k - a.half < 0 ? 0 : k - a.half;
    const int64_t c1 = k + a.half + 1 > a.ch ? a.ch : k + a.half + 1;
    double s = 0;
    for (int64_t cc = c0; cc < c1; cc++) {
      const int64_t e = (o * a.ch + cc) * a.inner + j;
      const T t = g[e] * x[e] * d_pow(norm[e], nb1);
      s += (double)t;
    }
    gx[i] = (T)((double)g[i] * (double)d_pow(norm[i], nb) + coef * (double)x[i] * s);
  }
}

int lrn_forward(sn_call *c) {
  LrnArgs a;
  SN_TRY(lrn_args(c, &a));
  const bool want_out = wants(c, 0);
  const bool have_norm = c->nout > 1 && wants(c, 1) && c->out[1] && c->out[1]->st;
  if (!want_out && !have_norm) return SN_OK;
  const int64_t n = a.outer * a.ch * a.inner;
  if (n == 0) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    lrn_fwd_kernel<T><<<grid_for(n), SNN_BLOCK, 0, s>>>(
        snc::ptr<T>(c->in[0]), want_out ? snc::ptr<T>(c->out[0]) : nullptr,
        have_norm ? snc::ptr<T>(c->out[1]) : nullptr, a, n);
  });
  return check_launch(c, "LRN");
}

int lrn_backward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  LrnArgs a;
  SN_TRY(lrn_args(c, &a));
  if (c->nout < 2 || !c->out[1] || !c->out[1]->st)
    return host->error(SN_ERR_INTERNAL, "LRN: the saved norm (tmp_norm) is missing");
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "LRN: backward needs the output gradient");
  const int64_t n = a.outer * a.ch * a.inner;
  if (n == 0) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    lrn_bwd_kernel<T><<<grid_for(n), SNN_BLOCK, 0, s>>>(
        snc::ptr<T>(c->in[0]), snc::ptr<T>(c->out[1]), snc::ptr<T>(c->ograd[0]),
        snc::ptr<T>(c->igrad[0]), a, n);
  });
  return check_launch(c, "LRN backward");
}

}  // namespace

}  // namespace snn

namespace snc {

int register_nn_lrn(const sn_host_api *h) {
  return h->register_kernels("LRN", snn::lrn_forward, snn::lrn_backward);
}

}  // namespace snc
