// GPU kernels of the sequence ops (ops/sequence.c): SequenceMask,
// SequenceLast and SequenceReverse, with the CPU's semantics: data (T, N,
// ...) for axis 0 or (N, T, ...) for axis 1 (SequenceReverse: axis 0 only);
// the optional sequence_length input (any numeric dtype, truncated to
// integers, NaN as 0) gets a zero gradient.  SequenceLast (lengths outside
// [1, T]) and SequenceReverse (outside [0, T]) report bad lengths with the
// CPU's message; like the index checks of indexing.cu, that check reads a
// flag back from the device and is skipped (lengths clamped instead) while
// the stream is captured into a CUDA graph or with
// SYMNET_CUDA_INDEX_CHECK=0.
#include <stdlib.h>

#include "kernels.cuh"

namespace snk {
namespace seq {

// ops/sequence.c trunc_i64 / len_at.
__host__ __device__ __forceinline__ int64_t trunc_i64(double v) {
  if (v != v) return 0;
  if (v >= 9.2e18) return INT64_MAX;
  if (v <= -9.2e18) return INT64_MIN;
  return (int64_t)v;
}

struct LenSrc {
  const void *p;
  int dt;
  __device__ __forceinline__ int64_t operator[](int64_t i) const {
    switch (dt) {
      case SN_F32: return trunc_i64(((const float *)p)[i]);
      case SN_F64: return trunc_i64(((const double *)p)[i]);
      case SN_I32: return (int64_t)((const int32_t *)p)[i];
      case SN_I64: return ((const int64_t *)p)[i];
      case SN_U8: return (int64_t)((const uint8_t *)p)[i];
      case SN_I8: return (int64_t)((const int8_t *)p)[i];
      default: return 0;
    }
  }
};

struct View {
  int axis;
  int64_t tlen, nb, rest;
  __host__ __device__ __forceinline__ int64_t off(int64_t t, int64_t b) const {
    return axis ? (b * tlen + t) * rest : (t * nb + b) * rest;
  }
};

View seq_view(const sn_shape *s, int axis) {
  View v;
  int64_t r = 1;
  for (int d = 2; d < s->ndim; d++) r *= s->dim[d];
  v.axis = axis;
  v.rest = r;
  v.tlen = axis ? s->dim[1] : s->dim[0];
  v.nb = axis ? s->dim[0] : s->dim[1];
  return v;
}

int common_params(const sn_call *c, bool *use_len, int *axis) {
  const sn_pval *u, *a;
  SN_TRY(get_param(c, "use_sequence_length", &u));
  SN_TRY(get_param(c, "axis", &a));
  *use_len = u->i != 0;
  *axis = (int)a->i;
  if (a->i < 0 || a->i > 1)
    return host->error(SN_ERR_ARG, "%s: axis must be 0 or 1, got %lld", op_name(c),
                       (long long)a->i);
  return SN_OK;
}

int check_lengths(const sn_call *c, bool use_len, int64_t nb) {
  if (!use_len) return SN_OK;
  if (c->nin < 2 || !c->in[1])
    return host->error(SN_ERR_ARG, "%s: use_sequence_length=True needs the sequence_length input",
                       op_name(c));
  if (nelem(c->in[1]) != nb)
    return host->error(SN_ERR_SHAPE, "%s: sequence_length has %lld values for a batch of %lld",
                       op_name(c), (long long)nelem(c->in[1]), (long long)nb);
  if (c->in[1]->dtype == SN_F16 || dtype_size(c->in[1]->dtype) == 0)
    return host->error(SN_ERR_TYPE, "%s: sequence_length dtype %s is not supported", op_name(c),
                       dtype_name(c->in[1]->dtype));
  return SN_OK;
}

int zero_len_grad(const sn_call *c, cudaStream_t s, bool use_len) {
  if (use_len && c->nin > 1 && c->req[1] != SN_REQ_NULL && c->igrad[1] && c->igrad[1]->st)
    return zero_tensor(c, s, c->igrad[1]);
  return SN_OK;
}

__global__ void len_check_kernel(LenSrc len, int64_t nb, int64_t lo, int64_t hi,
                                 unsigned long long *flag) {
  SNK_LOOP(b, nb) {
    const int64_t l = len[b];
    if (l < lo || l > hi) atomicMin(flag, (unsigned long long)b);
  }
}

bool check_enabled() {
  static int on = -1;
  if (on < 0) {
    const char *e = getenv("SYMNET_CUDA_INDEX_CHECK");
    on = !(e && (!strcmp(e, "0") || !strcmp(e, "false") || !strcmp(e, "FALSE")));
  }
  return on != 0;
}

// Every length in [lo, hi], else the CPU's message for the first bad one.
int validate_lengths(const sn_call *c, cudaStream_t s, int64_t nb, int64_t lo, int64_t hi) {
  const sn_tensor *t = c->in[1];
  if (nb <= 0 || !check_enabled() || capturing(s)) return SN_OK;
  unsigned long long *flag;
  SN_TRY(flag_word(c, &flag));
  SN_TRY(flag_reset(c, s, flag));
  SNK_LAUNCH(grid_for(nb), SNK_BLOCK, s, len_check_kernel)(LenSrc{snc::data(t), (int)t->dtype}, nb,
                                                       lo, hi, flag);
  SN_TRY(check_launch(c, "length check"));
  unsigned long long bad = 0;
  SN_TRY(flag_read(c, s, flag, &bad));
  if (bad == ~0ull) return SN_OK;
  int64_t len;
  if (t->dtype == SN_I64) {
    int64_t v = 0;
    SNC_CHECK(cudaMemcpyAsync(&v, (const int64_t *)snc::data(t) + bad, sizeof v,
                              cudaMemcpyDeviceToHost, s),
              c->dev.id, "cudaMemcpyAsync (length check)");
    SNC_CHECK(cudaStreamSynchronize(s), c->dev.id, "cudaStreamSynchronize (length check)");
    len = v;
  } else {
    double v = 0;
    SN_TRY(read_element(c, s, t, (int64_t)bad, &v));
    len = trunc_i64(v);
  }
  return host->error(SN_ERR_ARG, "%s: sequence_length[%lld] = %lld is outside [%lld, %lld]",
                     op_name(c), (long long)bad, (long long)len, (long long)lo, (long long)hi);
}

// ---------------------------------------------------------------------------
// SequenceMask
// ---------------------------------------------------------------------------
template <typename T>
struct MaskFn {
  const T *x;
  T *y;
  LenSrc len;
  View v;
  T val;
  __device__ __forceinline__ void operator()(int64_t i) const {
    int64_t t, b;
    const int64_t q = i / v.rest;
    if (v.axis) {
      b = q / v.tlen;
      t = q - b * v.tlen;
    } else {
      t = q / v.nb;
      b = q - t * v.nb;
    }
    int64_t l = len[b];
    if (l < 0) l = 0;
    y[i] = t >= l ? val : x[i];
  }
};

int mask_run(sn_call *c, const sn_tensor *src, sn_tensor *dst, bool backward) {
  bool use_len;
  int axis;
  SN_TRY(common_params(c, &use_len, &axis));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (backward) SN_TRY(zero_len_grad(c, s, use_len));
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  const View v = seq_view(&src->shape, axis);
  SN_TRY(check_lengths(c, use_len, v.nb));
  const sn_pval *value;
  SN_TRY(get_param(c, "value", &value));
  const int64_t n = nelem(src);
  SNC_FLOAT_SWITCH(src->dtype, c, T, {
    if (!use_len) return copy_async(c, s, snc::data(dst), snc::data(src), (size_t)n * sizeof(T));
    MaskFn<T> f{snc::ptr<T>(src), snc::ptr<T>(dst), LenSrc{snc::data(c->in[1]), (int)c->in[1]->dtype},
                v, backward ? (T)0 : (T)value->f};
    return launch_flat(c, s, n, f, backward ? "backward" : "forward");
  });
  return SN_OK;
}

int mask_forward(sn_call *c) { return mask_run(c, c->in[0], c->out[0], false); }
int mask_backward(sn_call *c) { return mask_run(c, c->ograd[0], c->igrad[0], true); }

// ---------------------------------------------------------------------------
// SequenceLast
// ---------------------------------------------------------------------------
template <typename T, bool BWD>
struct LastFn {  // forward: y[b, r] = x[t_b, b, r]; backward: gx[t_b, b, r] = g[b, r]
  const T *src;
  T *dst;
  LenSrc len;
  View v;
  bool use_len;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t b = e / v.rest, r = e - b * v.rest;
    int64_t t = v.tlen - 1;
    if (use_len) {
      int64_t l = len[b];
      l = l < 1 ? 1 : (l > v.tlen ? v.tlen : l);
      t = l - 1;
    }
    if (BWD)
      dst[v.off(t, b) + r] = src[e];
    else
      dst[e] = src[v.off(t, b) + r];
  }
};

int last_run(sn_call *c, bool backward) {
  bool use_len;
  int axis;
  SN_TRY(common_params(c, &use_len, &axis));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (backward) SN_TRY(zero_len_grad(c, s, use_len));
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  const View v = seq_view(&c->in[0]->shape, axis);
  SN_TRY(check_lengths(c, use_len, v.nb));
  if (use_len) SN_TRY(validate_lengths(c, s, v.nb, 1, v.tlen));
  const LenSrc len{use_len ? snc::data(c->in[1]) : nullptr, use_len ? (int)c->in[1]->dtype : 0};
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    if (backward) {
      SN_TRY(zero_tensor(c, s, c->igrad[0]));
      LastFn<T, true> f{snc::ptr<T>(c->ograd[0]), snc::ptr<T>(c->igrad[0]), len, v, use_len};
      return launch_flat(c, s, v.nb * v.rest, f, "backward");
    }
    LastFn<T, false> f{snc::ptr<T>(c->in[0]), snc::ptr<T>(c->out[0]), len, v, use_len};
    return launch_flat(c, s, v.nb * v.rest, f, "forward");
  });
  return SN_OK;
}

int last_forward(sn_call *c) { return last_run(c, false); }
int last_backward(sn_call *c) { return last_run(c, true); }

// ---------------------------------------------------------------------------
// SequenceReverse (axis 0; any element size)
// ---------------------------------------------------------------------------
template <typename E>
struct RevFn {
  const E *src;
  E *dst;
  LenSrc len;
  View v;
  bool use_len;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t q = e / v.rest, r = e - q * v.rest;
    const int64_t t = q / v.nb, b = q - t * v.nb;
    int64_t l = v.tlen;
    if (use_len) {
      l = len[b];
      l = l < 0 ? 0 : (l > v.tlen ? v.tlen : l);
    }
    const int64_t ts = t < l ? l - 1 - t : t;
    dst[e] = src[(ts * v.nb + b) * v.rest + r];
  }
};

int rev_apply(sn_call *c, const sn_tensor *src, sn_tensor *dst, bool backward) {
  const sn_pval *u;
  SN_TRY(get_param(c, "use_sequence_length", &u));
  const bool use_len = u->i != 0;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (backward) SN_TRY(zero_len_grad(c, s, use_len));
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  const View v = seq_view(&src->shape, 0);
  SN_TRY(check_lengths(c, use_len, v.nb));
  if (use_len) SN_TRY(validate_lengths(c, s, v.nb, 0, v.tlen));
  if (snc::data(src) == snc::data(dst))
    return host->error(SN_ERR_INTERNAL, "SequenceReverse: cannot run in place");
  const LenSrc len{use_len ? snc::data(c->in[1]) : nullptr, use_len ? (int)c->in[1]->dtype : 0};
  const int64_t n = nelem(src);
  const char *what = backward ? "backward" : "forward";
  switch (dtype_size(src->dtype)) {
    case 1: return launch_flat(c, s, n, RevFn<uint8_t>{snc::ptr<uint8_t>(src), snc::ptr<uint8_t>(dst), len, v, use_len}, what);
    case 2: return launch_flat(c, s, n, RevFn<uint16_t>{snc::ptr<uint16_t>(src), snc::ptr<uint16_t>(dst), len, v, use_len}, what);
    case 4: return launch_flat(c, s, n, RevFn<uint32_t>{snc::ptr<uint32_t>(src), snc::ptr<uint32_t>(dst), len, v, use_len}, what);
    case 8: return launch_flat(c, s, n, RevFn<uint64_t>{snc::ptr<uint64_t>(src), snc::ptr<uint64_t>(dst), len, v, use_len}, what);
    default:
      return host->error(SN_ERR_TYPE, "SequenceReverse: dtype %s is not supported",
                         dtype_name(src->dtype));
  }
}

int rev_forward(sn_call *c) { return rev_apply(c, c->in[0], c->out[0], false); }
int rev_backward(sn_call *c) { return rev_apply(c, c->ograd[0], c->igrad[0], true); }

}  // namespace seq
}  // namespace snk

namespace snc {

int register_sequence(const sn_host_api *h) {
  using namespace snk::seq;
  SN_TRY(h->register_kernels("SequenceMask", mask_forward, mask_backward));
  SN_TRY(h->register_kernels("SequenceLast", last_forward, last_backward));
  SN_TRY(h->register_kernels("SequenceReverse", rev_forward, rev_backward));
  return SN_OK;
}

}  // namespace snc
