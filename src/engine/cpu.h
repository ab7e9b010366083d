/* Helpers for CPU kernels: dtype dispatch, OpenMP loops, counter-based
 * random numbers and the BLAS entry points.
 *
 * Threads: OpenMP loops use sn_num_threads() threads; OpenBLAS is pinned to
 * the same budget and never runs inside an OpenMP region, so the two never
 * oversubscribe the cores (see threads.c). */
#ifndef SN_CPU_H
#define SN_CPU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "op.h"
#include "rand.h"
#include "tensor.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Loops shorter than this run on one thread (thread start-up dominates). */
#define SN_PAR_GRAIN 32768

int sn_num_threads(void);
void sn_set_num_threads(int n);

#define SN_PRAGMA(x) _Pragma(#x)
#ifdef _OPENMP
/* for (int64_t i = 0; i < n; i++) in parallel when n is large. */
#define SN_PARALLEL_FOR(n) \
  SN_PRAGMA(omp parallel for schedule(static) if ((n) >= SN_PAR_GRAIN) num_threads(sn_num_threads()))
#define SN_PARALLEL_FOR_COST(n, cost) \
  SN_PRAGMA(omp parallel for schedule(static) if ((int64_t)(n) * (cost) >= SN_PAR_GRAIN) num_threads(sn_num_threads()))
#else
#define SN_PARALLEL_FOR(n)
#define SN_PARALLEL_FOR_COST(n, cost)
#endif

/* Runs the body (the remaining arguments, so declarations with commas may
 * appear in it) with T typedef'd to the C type of a floating dtype; other
 * dtypes return SN_ERR_TYPE from the enclosing function. */
#define SN_DISPATCH_FLOAT(dtype, T, ...)                                               \
  switch (dtype) {                                                                     \
  case SN_F32: {                                                                       \
    typedef float T;                                                                   \
    __VA_ARGS__;                                                                       \
    break;                                                                             \
  }                                                                                    \
  case SN_F64: {                                                                       \
    typedef double T;                                                                  \
    __VA_ARGS__;                                                                       \
    break;                                                                             \
  }                                                                                    \
  default:                                                                             \
    return sn_error(SN_ERR_TYPE, "dtype %s is not supported here", sn_dtype_name(dtype)); \
  }

/* Same, for every numeric dtype (copies, comparisons, casts). */
#define SN_DISPATCH_ALL(dtype, T, BODY)                                                \
  switch (dtype) {                                                                     \
  case SN_F32: { typedef float T; BODY; break; }                                       \
  case SN_F64: { typedef double T; BODY; break; }                                      \
  case SN_U8: { typedef uint8_t T; BODY; break; }                                      \
  case SN_I8: { typedef int8_t T; BODY; break; }                                       \
  case SN_I32: { typedef int32_t T; BODY; break; }                                     \
  case SN_I64: { typedef int64_t T; BODY; break; }                                     \
  default:                                                                             \
    return sn_error(SN_ERR_TYPE, "dtype %s is not supported here", sn_dtype_name(dtype)); \
  }

/* Typed data pointer of a tensor. */
#define SN_PTR(T, t) ((T *)sn_tensor_data(t))

/* ---- counter-based random numbers: rand.h (shared with the CUDA kernels) ---- */

/* ---- BLAS ----
 * Row-major GEMM C = alpha * op(A) op(B) + beta * C for float and double,
 * through OpenBLAS (or R's BLAS when OpenBLAS is absent).  Called only
 * outside OpenMP regions. */
void sn_gemm_f32(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);
void sn_gemm_f64(int transa, int transb, int64_t m, int64_t n, int64_t k, double alpha,
                 const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                 double *c, int64_t ldc);

/* ---- broadcasting ----
 * Output shape of broadcasting a and b (numpy rules on C-order shapes). */
int sn_broadcast_shape(const sn_shape *a, const sn_shape *b, sn_shape *out);

#endif
