// GPU kernels of FullyConnected, dot and batch_dot (ops/fully_connected.c,
// ops/matrix.c): cuBLAS GEMMs on row-major data (C^T = op(B)^T op(A)^T in
// cuBLAS's column-major terms), the same geometry, transposes and req
// handling as the CPU kernels (dot and batch_dot handle req == add with
// beta = 1; FullyConnected writes).  The bias gradient is a deterministic
// column reduction accumulated in double.
//
// TF32 is off by default (CUBLAS_DEFAULT_MATH: float32 GEMMs in full float32);
// SYMNET_TF32=1 switches the handle to CUBLAS_TF32_TENSOR_OP_MATH.  The math
// and pointer modes are set before every call because the handle is shared
// with the other op families.
//
// Also here: the bias helpers shared with nn_conv.cu (add_channel_bias,
// channel_bias_grad).  Temporary memory: channel_bias_grad needs
// C * splits * 16 bytes when the reduction is split (large per-channel sizes
// with few channels, see chan_splits in nn_common.cuh); nothing else.
#include "nn_common.cuh"

namespace snn {

namespace {

// ---- cuBLAS ----

int blas_begin(const sn_call *c, cublasHandle_t *h) {
  SN_TRY(snc::cublas(c->dev.id, h));
  SNN_CUBLAS(cublasSetMathMode(*h, tf32_enabled() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
             c->dev.id, "cublasSetMathMode");
  SNN_CUBLAS(cublasSetPointerMode(*h, CUBLAS_POINTER_MODE_HOST), c->dev.id, "cublasSetPointerMode");
  return SN_OK;
}

inline cublasOperation_t op_of(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

cublasStatus_t gemm_cm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                       int64_t n, int64_t k, float alpha, const float *A, int64_t lda,
                       const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  return cublasSgemm_64(h, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc);
}
cublasStatus_t gemm_cm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int64_t m,
                       int64_t n, int64_t k, double alpha, const double *A, int64_t lda,
                       const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
  return cublasDgemm_64(h, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc);
}
cublasStatus_t gemm_cm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                               int64_t m, int64_t n, int64_t k, float alpha, const float *A,
                               int64_t lda, long long sa, const float *B, int64_t ldb,
                               long long sb, float beta, float *C, int64_t ldc, long long sc,
                               int64_t batch) {
  return cublasSgemmStridedBatched_64(h, ta, tb, m, n, k, &alpha, A, lda, sa, B, ldb, sb, &beta,
                                      C, ldc, sc, batch);
}
cublasStatus_t gemm_cm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                               int64_t m, int64_t n, int64_t k, double alpha, const double *A,
                               int64_t lda, long long sa, const double *B, int64_t ldb,
                               long long sb, double beta, double *C, int64_t ldc, long long sc,
                               int64_t batch) {
  return cublasDgemmStridedBatched_64(h, ta, tb, m, n, k, &alpha, A, lda, sa, B, ldb, sb, &beta,
                                      C, ldc, sc, batch);
}

// Row-major C (m x n, row length ldc) = op(A) op(B) + beta C, A and B stored
// with row lengths lda / ldb; batch > 1: strided batches.  k == 0 gives
// beta * C (zero for a write).
template <typename T>
int gemm_rm(const sn_call *c, cudaStream_t s, cublasHandle_t h, bool ta, bool tb, int64_t m,
            int64_t n, int64_t k, const T *A, int64_t lda, int64_t sa, const T *B, int64_t ldb,
            int64_t sb, T beta, T *C, int64_t ldc, int64_t sc, int64_t batch, const char *what) {
  if (m <= 0 || n <= 0 || batch <= 0) return SN_OK;
  if (k <= 0) {
    if (beta != (T)0) return SN_OK;  // C += 0
    if (ldc == n && (batch == 1 || sc == m * n))
      return zero_async(c, s, C, (size_t)(m * n * batch) * sizeof(T));
    return host->error(SN_ERR_INTERNAL, "%s: empty GEMM with a strided output", op_name(c));
  }
  if (lda < 1) lda = 1;
  if (ldb < 1) ldb = 1;
  if (ldc < 1) ldc = 1;
  cublasStatus_t st;
  if (batch == 1)
    st = gemm_cm(h, op_of(tb), op_of(ta), n, m, k, (T)1, B, ldb, A, lda, beta, C, ldc);
  else
    st = gemm_cm_batched(h, op_of(tb), op_of(ta), n, m, k, (T)1, B, ldb, (long long)sb, A, lda,
                         (long long)sa, beta, C, ldc, (long long)sc, batch);
  if (st != CUBLAS_STATUS_SUCCESS) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s: %s (m=%lld, n=%lld, k=%lld, batch=%lld)", op_name(c), what,
             (long long)m, (long long)n, (long long)k, (long long)batch);
    return snc::cublas_error(st, c->dev.id, buf);
  }
  return SN_OK;
}

// ---- bias helpers ----

template <typename T, typename I>
__global__ void bias_add_kernel(T *x, const T *b, I total, I S, I C) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)blockDim.x * gridDim.x) {
    const I ch = (i / S) % C;
    x[i] += b[ch];
  }
}

// y[n, h] = b[h]
template <typename T, typename I>
__global__ void bias_fill_kernel(T *y, const T *b, I total, I H) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)blockDim.x * gridDim.x)
    y[i] = b[i % H];
}

template <typename T>
struct LoadPlain {
  const T *g;
  __device__ __forceinline__ D2 operator()(int64_t, int64_t e) const {
    return D2{(double)g[e], 0.0};
  }
};

template <typename T>
struct StoreSumA {
  T *out;
  __device__ __forceinline__ void operator()(int64_t ch, D2 s) const { out[ch] = (T)s.a; }
};

}  // namespace

int add_channel_bias(const sn_call *c, cudaStream_t s, sn_dtype dt, void *x, int64_t N, int64_t C,
                     int64_t S, const void *bias) {
  const int64_t total = N * C * S;
  if (total <= 0) return SN_OK;
  SNC_FLOAT_SWITCH(dt, c, T, {
    if (total < ((int64_t)1 << 31))
      bias_add_kernel<T, uint32_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
          (T *)x, (const T *)bias, (uint32_t)total, (uint32_t)S, (uint32_t)C);
    else
      bias_add_kernel<T, uint64_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
          (T *)x, (const T *)bias, (uint64_t)total, (uint64_t)S, (uint64_t)C);
  });
  return check_launch(c, "bias add");
}

int channel_bias_grad(const sn_call *c, cudaStream_t s, sn_dtype dt, const void *g, int64_t N,
                      int64_t C, int64_t S, void *db) {
  if (C <= 0) return SN_OK;
  if (N * S <= 0) return zero_async(c, s, db, (size_t)C * dtype_size(dt));
  Scratch sc;
  SN_TRY(scratch_get(c, s, chan_scratch_bytes(c->dev.id, N, C, S), &sc));
  SNC_FLOAT_SWITCH(dt, c, T, {
    SN_TRY(chan_reduce(c, s, N, C, S, LoadPlain<T>{(const T *)g}, StoreSumA<T>{(T *)db}, sc.ptr));
  });
  return SN_OK;
}

namespace {

// ---------------------------------------------------------------------------
// FullyConnected
// ---------------------------------------------------------------------------

struct FcArgs {
  int64_t H, N, I;
  bool no_bias, flatten;
};

int fc_args(const sn_call *c, FcArgs *a) {
  SN_TRY(p_int(c, "num_hidden", &a->H));
  SN_TRY(p_bool(c, "no_bias", &a->no_bias));
  SN_TRY(p_bool(c, "flatten", &a->flatten));
  if (a->H < 1)
    return host->error(SN_ERR_ARG, "FullyConnected: num_hidden must be >= 1, got %lld",
                       (long long)a->H);
  const sn_shape *s = &c->in[0]->shape;
  const int64_t total = nelem(c->in[0]);
  if (a->flatten) {
    a->N = s->ndim > 0 ? s->dim[0] : 1;
    a->I = a->N > 0 ? total / a->N : 0;
  } else {
    a->I = s->ndim > 0 ? s->dim[s->ndim - 1] : 1;
    a->N = a->I > 0 ? total / a->I : 0;
  }
  return SN_OK;
}

int fc_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  FcArgs a;
  SN_TRY(fc_args(c, &a));
  if (a.N == 0) return SN_OK;
  cudaStream_t s;
  cublasHandle_t h;
  SN_TRY(begin(c, &s));
  SN_TRY(blas_begin(c, &h));
  const void *b = a.no_bias ? nullptr : snc::data(c->in[2]);
  const int64_t total = a.N * a.H;
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    T *y = snc::ptr<T>(c->out[0]);
    if (b) {
      if (total < ((int64_t)1 << 31))
        bias_fill_kernel<T, uint32_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
            y, (const T *)b, (uint32_t)total, (uint32_t)a.H);
      else
        bias_fill_kernel<T, uint64_t><<<grid_for(total), SNN_BLOCK, 0, s>>>(
            y, (const T *)b, (uint64_t)total, (uint64_t)a.H);
      SN_TRY(check_launch(c, "bias fill"));
    }
    SN_TRY(gemm_rm<T>(c, s, h, false, true, a.N, a.H, a.I, snc::ptr<T>(c->in[0]), a.I, 0,
                      snc::ptr<T>(c->in[1]), a.I, 0, b ? (T)1 : (T)0, y, a.H, 0, 1, "forward GEMM"));
  });
  return SN_OK;
}

int fc_backward(sn_call *c) {
  FcArgs a;
  SN_TRY(fc_args(c, &a));
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "FullyConnected: backward needs the output gradient");
  const bool need_dx = wants(c, 0), need_dw = wants(c, 1);
  const bool need_db = !a.no_bias && c->nin > 2 && wants(c, 2);
  const sn_dtype dt = c->in[0]->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return host->error(SN_ERR_TYPE, "FullyConnected: dtype %s is not supported (float32 or "
                       "float64)", dtype_name(dt));
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (a.N == 0) {
    if (need_dw) SN_TRY(zero_tensor(c, s, c->igrad[1]));
    if (need_db) SN_TRY(zero_tensor(c, s, c->igrad[2]));
    return SN_OK;
  }
  cublasHandle_t h;
  SN_TRY(blas_begin(c, &h));
  SNC_FLOAT_SWITCH(dt, c, T, {
    const T *g = snc::ptr<T>(c->ograd[0]);
    if (need_dx)
      SN_TRY(gemm_rm<T>(c, s, h, false, false, a.N, a.I, a.H, g, a.H, 0, snc::ptr<T>(c->in[1]),
                        a.I, 0, (T)0, snc::ptr<T>(c->igrad[0]), a.I, 0, 1, "data gradient GEMM"));
    if (need_dw)
      SN_TRY(gemm_rm<T>(c, s, h, true, false, a.H, a.I, a.N, g, a.H, 0, snc::ptr<T>(c->in[0]),
                        a.I, 0, (T)0, snc::ptr<T>(c->igrad[1]), a.I, 0, 1,
                        "weight gradient GEMM"));
    if (need_db) SN_TRY(channel_bias_grad(c, s, dt, g, a.N, a.H, 1, snc::data(c->igrad[2])));
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// dot / batch_dot
// ---------------------------------------------------------------------------

int64_t prod_dims(const sn_shape *s, int from, int to) {
  int64_t p = 1;
  for (int d = from; d < to; d++) p *= s->dim[d];
  return p;
}

struct DotGeom {
  bool ta = false, tb = false;
  int64_t m, n, k;
};

void dot_geometry(const sn_shape *l, const sn_shape *r, bool ta, bool tb, DotGeom *g) {
  g->ta = ta;
  g->tb = tb;
  if (l->ndim == 1 && r->ndim == 1) {
    g->m = g->n = 1;
    g->k = l->dim[0];
    g->ta = g->tb = false;
    return;
  }
  if (!ta) {
    g->m = prod_dims(l, 0, l->ndim - 1);
    g->k = l->dim[l->ndim - 1];
  } else {
    g->k = l->dim[0];
    g->m = prod_dims(l, 1, l->ndim);
  }
  if (!tb)
    g->n = prod_dims(r, 1, r->ndim);
  else
    g->n = prod_dims(r, 0, r->ndim - 1);
}

int dot_begin(sn_call *c, const char *name, bool *ta, bool *tb, cudaStream_t *s,
              cublasHandle_t *h) {
  SN_TRY(p_bool(c, "transpose_a", ta));
  SN_TRY(p_bool(c, "transpose_b", tb));
  const sn_dtype dt = c->in[0]->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return host->error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 and float64 are)",
                       name, dtype_name(dt));
  SN_TRY(begin(c, s));
  return blas_begin(c, h);
}

int dot_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  bool ta = false, tb = false;
  cudaStream_t s;
  cublasHandle_t h;
  SN_TRY(dot_begin(c, "dot", &ta, &tb, &s, &h));
  DotGeom g;
  dot_geometry(&c->in[0]->shape, &c->in[1]->shape, ta, tb, &g);
  const int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  const bool add = c->req[0] == SN_REQ_ADD;
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SN_TRY(gemm_rm<T>(c, s, h, g.ta, g.tb, g.m, g.n, g.k, snc::ptr<T>(c->in[0]), lda, 0,
                      snc::ptr<T>(c->in[1]), ldb, 0, add ? (T)1 : (T)0, snc::ptr<T>(c->out[0]), g.n,
                      0, 1, "GEMM"));
  });
  return SN_OK;
}

int dot_backward(sn_call *c) {
  bool ta = false, tb = false;
  cudaStream_t s;
  cublasHandle_t h;
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "dot: backward needs the output gradient");
  SN_TRY(dot_begin(c, "dot", &ta, &tb, &s, &h));
  DotGeom g;
  dot_geometry(&c->in[0]->shape, &c->in[1]->shape, ta, tb, &g);
  const int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *A = snc::ptr<T>(c->in[0]), *B = snc::ptr<T>(c->in[1]);
    const T *G = snc::ptr<T>(c->ograd[0]);
    if (wants(c, 0)) {
      const T beta = c->req[0] == SN_REQ_ADD ? (T)1 : (T)0;
      T *GA = snc::ptr<T>(c->igrad[0]);
      if (!g.ta)  // dA (m, k) = G (m, n) op(B)^T (n, k)
        SN_TRY(gemm_rm<T>(c, s, h, false, !g.tb, g.m, g.k, g.n, G, g.n, 0, B, ldb, 0, beta, GA,
                          g.k, 0, 1, "lhs gradient GEMM"));
      else  // dA stored (k, m) = op(B) (k, n) G^T (n, m)
        SN_TRY(gemm_rm<T>(c, s, h, g.tb, true, g.k, g.m, g.n, B, ldb, 0, G, g.n, 0, beta, GA,
                          g.m, 0, 1, "lhs gradient GEMM"));
    }
    if (wants(c, 1)) {
      const T beta = c->req[1] == SN_REQ_ADD ? (T)1 : (T)0;
      T *GB = snc::ptr<T>(c->igrad[1]);
      if (!g.tb)  // dB (k, n) = op(A)^T (k, m) G (m, n)
        SN_TRY(gemm_rm<T>(c, s, h, !g.ta, false, g.k, g.n, g.m, A, lda, 0, G, g.n, 0, beta, GB,
                          g.n, 0, 1, "rhs gradient GEMM"));
      else  // dB stored (n, k) = G^T (n, m) op(A) (m, k)
        SN_TRY(gemm_rm<T>(c, s, h, true, g.ta, g.n, g.k, g.m, G, g.n, 0, A, lda, 0, beta, GB,
                          g.k, 0, 1, "rhs gradient GEMM"));
    }
  });
  return SN_OK;
}

struct BdotGeom {
  bool ta = false, tb = false;
  int64_t batch, m, n, k, lda, ldb, sa, sb, sc;
};

void bdot_geometry(const sn_shape *l, const sn_shape *r, bool ta, bool tb, BdotGeom *g) {
  const int nd = l->ndim;
  g->ta = ta;
  g->tb = tb;
  g->batch = prod_dims(l, 0, nd - 2);
  g->m = ta ? l->dim[nd - 1] : l->dim[nd - 2];
  g->k = ta ? l->dim[nd - 2] : l->dim[nd - 1];
  g->n = tb ? r->dim[nd - 2] : r->dim[nd - 1];
  g->lda = l->dim[nd - 1];
  g->ldb = r->dim[nd - 1];
  g->sa = g->m * g->k;
  g->sb = g->k * g->n;
  g->sc = g->m * g->n;
}

int batch_dot_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  bool ta = false, tb = false;
  cudaStream_t s;
  cublasHandle_t h;
  SN_TRY(dot_begin(c, "batch_dot", &ta, &tb, &s, &h));
  if (c->in[0]->shape.ndim < 3)
    return host->error(SN_ERR_SHAPE, "batch_dot: inputs must have at least 3 dimensions");
  BdotGeom g;
  bdot_geometry(&c->in[0]->shape, &c->in[1]->shape, ta, tb, &g);
  const bool add = c->req[0] == SN_REQ_ADD;
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    SN_TRY(gemm_rm<T>(c, s, h, g.ta, g.tb, g.m, g.n, g.k, snc::ptr<T>(c->in[0]), g.lda, g.sa,
                      snc::ptr<T>(c->in[1]), g.ldb, g.sb, add ? (T)1 : (T)0,
                      snc::ptr<T>(c->out[0]), g.n, g.sc, g.batch, "batched GEMM"));
  });
  return SN_OK;
}

int batch_dot_backward(sn_call *c) {
  bool ta = false, tb = false;
  cudaStream_t s;
  cublasHandle_t h;
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "batch_dot: backward needs the output gradient");
  SN_TRY(dot_begin(c, "batch_dot", &ta, &tb, &s, &h));
  if (c->in[0]->shape.ndim < 3)
    return host->error(SN_ERR_SHAPE, "batch_dot: inputs must have at least 3 dimensions");
  BdotGeom g;
  bdot_geometry(&c->in[0]->shape, &c->in[1]->shape, ta, tb, &g);
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    const T *A = snc::ptr<T>(c->in[0]), *B = snc::ptr<T>(c->in[1]);
    const T *G = snc::ptr<T>(c->ograd[0]);
    if (wants(c, 0)) {
      const T beta = c->req[0] == SN_REQ_ADD ? (T)1 : (T)0;
      T *GA = snc::ptr<T>(c->igrad[0]);
      if (!g.ta)
        SN_TRY(gemm_rm<T>(c, s, h, false, !g.tb, g.m, g.k, g.n, G, g.n, g.sc, B, g.ldb, g.sb,
                          beta, GA, g.k, g.sa, g.batch, "lhs gradient GEMM"));
      else
        SN_TRY(gemm_rm<T>(c, s, h, g.tb, true, g.k, g.m, g.n, B, g.ldb, g.sb, G, g.n, g.sc,
                          beta, GA, g.m, g.sa, g.batch, "lhs gradient GEMM"));
    }
    if (wants(c, 1)) {
      const T beta = c->req[1] == SN_REQ_ADD ? (T)1 : (T)0;
      T *GB = snc::ptr<T>(c->igrad[1]);
      if (!g.tb)
        SN_TRY(gemm_rm<T>(c, s, h, !g.ta, false, g.k, g.n, g.m, A, g.lda, g.sa, G, g.n, g.sc,
                          beta, GB, g.n, g.sb, g.batch, "rhs gradient GEMM"));
      else
        SN_TRY(gemm_rm<T>(c, s, h, true, g.ta, g.n, g.k, g.m, G, g.n, g.sc, A, g.lda, g.sa,
                          beta, GB, g.k, g.sb, g.batch, "rhs gradient GEMM"));
    }
  });
  return SN_OK;
}

}  // namespace

}  // namespace snn

namespace snc {

int register_nn_dense(const sn_host_api *h) {
  SN_TRY(h->register_kernels("FullyConnected", snn::fc_forward, snn::fc_backward));
  SN_TRY(h->register_kernels("dot", snn::dot_forward, snn::dot_backward));
  SN_TRY(h->register_kernels("batch_dot", snn::batch_dot_forward, snn::batch_dot_backward));
  return SN_OK;
}

}  // namespace snc
