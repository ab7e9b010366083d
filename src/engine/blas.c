/* Row-major GEMM for the CPU kernels: C = alpha * op(A) op(B) + beta * C.
 *
 * Which BLAS is used is decided by configure (src/Makevars):
 *   SN_BLAS_CBLAS            cblas_sgemm / cblas_dgemm (OpenBLAS)
 *   SN_BLAS_FORTRAN          dgemm_ of R's BLAS, row-major by solving the
 *                            transposed problem; sgemm_ too when
 *                            SN_BLAS_FORTRAN_SINGLE, else float32 in C
 *   SN_BLAS_NONE             the cache-blocked C loops below for both
 * The C loops are also used whenever a size or leading dimension does not fit
 * the BLAS integer type, or the leading dimensions are not ones BLAS accepts
 * (its error handler may end the process; R's calls Rf_error).
 *
 * The BLAS runs single-threaded (threads.c); kernels call these functions
 * from inside OpenMP regions, each thread on its own piece of work.
 * sn_gemm_par_f32/f64 (cpu_par.h) split one large product over the threads
 * by rows or columns of C, never along k, so each element of C is computed
 * the same way whatever the thread count.  (The C fallback splits rows of C
 * itself and runs serially when called inside a parallel region.) */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "cpu_par.h"

#if defined(SN_BLAS_CBLAS)
#if defined(SN_BLAS_OWN_PROTOS)
typedef int sn_blasint;
enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int, int, int, sn_blasint, sn_blasint, sn_blasint, float, const float *,
                 sn_blasint, const float *, sn_blasint, float, float *, sn_blasint);
void cblas_dgemm(int, int, int, sn_blasint, sn_blasint, sn_blasint, double, const double *,
                 sn_blasint, const double *, sn_blasint, double, double *, sn_blasint);
#define SN_CBLAS_T(t) ((t) ? CblasTrans : CblasNoTrans)
#else
#include <cblas.h>
#if defined(OPENBLAS_VERSION) || defined(OPENBLAS_CONST)
typedef blasint sn_blasint; /* int, or int64 for an INTERFACE64 build */
#else
typedef int sn_blasint;
#endif
#define SN_CBLAS_T(t) ((t) ? CblasTrans : CblasNoTrans)
#endif
#define SN_HAVE_BLAS_D 1
#define SN_HAVE_BLAS_S 1
#elif defined(SN_BLAS_FORTRAN)
typedef int sn_blasint;
/* Trailing arguments: the hidden lengths of the character arguments
 * (gfortran ABI); harmless for BLAS libraries written in C. */
void dgemm_(const char *, const char *, const int *, const int *, const int *, const double *,
            const double *, const int *, const double *, const int *, const double *, double *,
            const int *, size_t, size_t);
#define SN_HAVE_BLAS_D 1
#if defined(SN_BLAS_FORTRAN_SINGLE)
void sgemm_(const char *, const char *, const int *, const int *, const int *, const float *,
            const float *, const int *, const float *, const int *, const float *, float *,
            const int *, size_t, size_t);
#define SN_HAVE_BLAS_S 1
#endif
#endif

/* ---- the C fallback ------------------------------------------------------
 * Blocks of op(B) (KB x NB) are packed row-major into a buffer; each thread
 * packs a block of op(A) (MB x KB) on its stack and runs a 4-row kernel whose
 * inner loop runs over contiguous columns.  Rows of C are split between
 * threads, so results do not depend on the thread count. */
#ifdef _OPENMP
#define SN_SIMD _Pragma("omp simd")
#else
#define SN_SIMD
#endif
#define SN_GEMM_MB 32
#define SN_GEMM_KB 128
#define SN_GEMM_NB 512

#define SN_DEFINE_GEMM_C(NAME, T)                                                             \
  static void NAME##_scale(int64_t m, int64_t n, T beta, T *c, int64_t ldc) {                 \
    if (beta == (T)1) return;                                                                 \
    SN_PARALLEL_FOR_COST(m, n)                                                                \
    for (int64_t i = 0; i < m; i++) {                                                         \
      T *ci = c + i * ldc;                                                                    \
      if (beta == (T)0)                                                                       \
        for (int64_t j = 0; j < n; j++) ci[j] = (T)0;                                         \
      else                                                                                    \
        for (int64_t j = 0; j < n; j++) ci[j] *= beta;                                        \
    }                                                                                         \
  }                                                                                           \
  /* Unblocked, allocation-free: used when the pack buffer cannot be had. */                  \
  static void NAME##_simple(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha,         \
                            const T *a, int64_t lda, const T *b, int64_t ldb, T *c,           \
                            int64_t ldc) {                                                    \
    SN_PARALLEL_FOR_COST(m, n * k)                                                            \
    for (int64_t i = 0; i < m; i++) {                                                         \
      T *ci = c + i * ldc;                                                                    \
      for (int64_t p = 0; p < k; p++) {                                                       \
        T av = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);                                \
        if (tb)                                                                               \
          for (int64_t j = 0; j < n; j++) ci[j] += av * b[j * ldb + p];                       \
        else                                                                                  \
          for (int64_t j = 0; j < n; j++) ci[j] += av * b[p * ldb + j];                       \
      }                                                                                       \
    }                                                                                         \
  }                                                                                           \
  static void NAME(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a,      \
                   int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {         \
    NAME##_scale(m, n, beta, c, ldc);                                                         \
    if (k <= 0 || alpha == (T)0) return;                                                      \
    int64_t nb_max = n < SN_GEMM_NB ? n : SN_GEMM_NB;                                         \
    int64_t kb_max = k < SN_GEMM_KB ? k : SN_GEMM_KB;                                         \
    size_t bbytes = (size_t)nb_max * (size_t)kb_max * sizeof(T);                              \
    T *bp = (T *)sn_host_alloc(bbytes);                                                       \
    if (!bp) {                                                                                \
      NAME##_simple(ta, tb, m, n, k, alpha, a, lda, b, ldb, c, ldc);                          \
      return;                                                                                 \
    }                                                                                         \
    for (int64_t j0 = 0; j0 < n; j0 += SN_GEMM_NB) {                                          \
      int64_t nb = n - j0 < SN_GEMM_NB ? n - j0 : SN_GEMM_NB;                                 \
      for (int64_t p0 = 0; p0 < k; p0 += SN_GEMM_KB) {                                        \
        int64_t kb = k - p0 < SN_GEMM_KB ? k - p0 : SN_GEMM_KB;                               \
        /* bp[p][j] = op(B)[p0 + p][j0 + j] */                                                \
        for (int64_t p = 0; p < kb; p++) {                                                    \
          T *dst = bp + p * nb;                                                               \
          if (tb)                                                                             \
            for (int64_t j = 0; j < nb; j++) dst[j] = b[(j0 + j) * ldb + p0 + p];             \
          else                                                                                \
            memcpy(dst, b + (p0 + p) * ldb + j0, (size_t)nb * sizeof(T));                     \
        }                                                                                     \
        int64_t nblk = (m + SN_GEMM_MB - 1) / SN_GEMM_MB;                                     \
        SN_PARALLEL_FOR_COST(nblk, SN_GEMM_MB * nb * kb)                                      \
        for (int64_t blk = 0; blk < nblk; blk++) {                                            \
          T ap[SN_GEMM_MB * SN_GEMM_KB];                                                      \
          int64_t i0 = blk * SN_GEMM_MB;                                                      \
          int64_t mb = m - i0 < SN_GEMM_MB ? m - i0 : SN_GEMM_MB;                             \
          /* ap[i][p] = alpha * op(A)[i0 + i][p0 + p] */                                      \
          for (int64_t i = 0; i < mb; i++)                                                    \
            for (int64_t p = 0; p < kb; p++)                                                  \
              ap[i * kb + p] =                                                                \
                  alpha * (ta ? a[(p0 + p) * lda + i0 + i] : a[(i0 + i) * lda + p0 + p]);     \
          int64_t i = 0;                                                                      \
          for (; i + 4 <= mb; i += 4) {                                                       \
            T *c0 = c + (i0 + i) * ldc + j0, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;  \
            const T *a0 = ap + i * kb, *a1 = a0 + kb, *a2 = a1 + kb, *a3 = a2 + kb;           \
            for (int64_t p = 0; p < kb; p++) {                                                \
              const T *bq = bp + p * nb;                                                      \
              T x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];                               \
              SN_SIMD                                                                         \
              for (int64_t j = 0; j < nb; j++) {                                              \
                T bv = bq[j];                                                                 \
                c0[j] += x0 * bv;                                                             \
                c1[j] += x1 * bv;                                                             \
                c2[j] += x2 * bv;                                                             \
                c3[j] += x3 * bv;                                                             \
              }                                                                               \
            }                                                                                 \
          }                                                                                   \
          for (; i < mb; i++) {                                                               \
            T *c0 = c + (i0 + i) * ldc + j0;                                                  \
            const T *a0 = ap + i * kb;                                                        \
            for (int64_t p = 0; p < kb; p++) {                                                \
              const T *bq = bp + p * nb;                                                      \
              T x0 = a0[p];                                                                   \
              SN_SIMD                                                                         \
              for (int64_t j = 0; j < nb; j++) c0[j] += x0 * bq[j];                           \
            }                                                                                 \
          }                                                                                   \
        }                                                                                     \
      }                                                                                       \
    }                                                                                         \
    sn_host_free(bp, bbytes);                                                                 \
  }

SN_DEFINE_GEMM_C(sn_gemm_c_f32, float)
SN_DEFINE_GEMM_C(sn_gemm_c_f64, double)

/* ---- choosing BLAS or C ---- */

#if defined(SN_HAVE_BLAS_D) || defined(SN_HAVE_BLAS_S)
static int sn_fits_blasint(int64_t v) {
  if (v < 0) return 0;
  if (sizeof(sn_blasint) >= sizeof(int64_t)) return 1;
  return v <= (int64_t)INT_MAX;
}

static int64_t sn_max1(int64_t v) { return v > 1 ? v : 1; }

/* Sizes fit the BLAS integers and the leading dimensions are ones BLAS
 * accepts for a row-major problem. */
static int sn_blas_ok(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                      int64_t ldc) {
  if (!sn_fits_blasint(m) || !sn_fits_blasint(n) || !sn_fits_blasint(k) ||
      !sn_fits_blasint(lda) || !sn_fits_blasint(ldb) || !sn_fits_blasint(ldc))
    return 0;
  if (lda < sn_max1(ta ? m : k)) return 0;
  if (ldb < sn_max1(tb ? k : n)) return 0;
  if (ldc < sn_max1(n)) return 0;
  return 1;
}
#endif

void sn_gemm_f32(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc) {
  if (m <= 0 || n <= 0 || k < 0) return;
  transa = transa != 0;
  transb = transb != 0;
  (void)sn_num_threads(); /* applies the thread budget to OpenBLAS once */
#if defined(SN_HAVE_BLAS_S)
  if (k > 0 && alpha != 0.0f && sn_blas_ok(transa, transb, m, n, k, lda, ldb, ldc)) {
#if defined(SN_BLAS_CBLAS)
    cblas_sgemm(CblasRowMajor, SN_CBLAS_T(transa), SN_CBLAS_T(transb), (sn_blasint)m,
                (sn_blasint)n, (sn_blasint)k, alpha, a, (sn_blasint)lda, b, (sn_blasint)ldb, beta,
                c, (sn_blasint)ldc);
#else
    /* Row-major C (m x n) is column-major C^T (n x m) = op(B)^T op(A)^T. */
    int M = (int)n, N = (int)m, K = (int)k, LDA = (int)ldb, LDB = (int)lda, LDC = (int)ldc;
    sgemm_(transb ? "T" : "N", transa ? "T" : "N", &M, &N, &K, &alpha, b, &LDA, a, &LDB, &beta, c,
           &LDC, 1, 1);
#endif
    return;
  }
#endif
  sn_gemm_c_f32(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sn_gemm_f64(int transa, int transb, int64_t m, int64_t n, int64_t k, double alpha,
                 const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                 double *c, int64_t ldc) {
  if (m <= 0 || n <= 0 || k < 0) return;
  transa = transa != 0;
  transb = transb != 0;
  (void)sn_num_threads();
#if defined(SN_HAVE_BLAS_D)
  if (k > 0 && alpha != 0.0 && sn_blas_ok(transa, transb, m, n, k, lda, ldb, ldc)) {
#if defined(SN_BLAS_CBLAS)
    cblas_dgemm(CblasRowMajor, SN_CBLAS_T(transa), SN_CBLAS_T(transb), (sn_blasint)m,
                (sn_blasint)n, (sn_blasint)k, alpha, a, (sn_blasint)lda, b, (sn_blasint)ldb, beta,
                c, (sn_blasint)ldc);
#else
    int M = (int)n, N = (int)m, K = (int)k, LDA = (int)ldb, LDB = (int)lda, LDC = (int)ldc;
    dgemm_(transb ? "T" : "N", transa ? "T" : "N", &M, &N, &K, &alpha, b, &LDA, a, &LDB, &beta, c,
           &LDC, 1, 1);
#endif
    return;
  }
#endif
  sn_gemm_c_f64(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- one GEMM split over the threads ---- */

/* Pieces of C are multiples of this many rows or columns (64-byte aligned
 * column blocks, whole register tiles of the BLAS kernels). */
#define SN_GEMM_PAR_ALIGN 16

/* Threads for a split of len rows/columns of an m x n x k product: 1 when
 * the caller is already parallel, the product is small, or there is no
 * BLAS (the C fallback splits itself). */
static int sn_gemm_par_threads(int have_blas, int64_t m, int64_t n, int64_t k, int64_t len) {
#ifndef _OPENMP
  return 1;
#endif
  if (!have_blas || sn_in_parallel()) return 1;
  int nt = sn_num_threads();
  if (nt <= 1) return 1;
  const double work = (double)m * (double)n * (double)(k > 0 ? k : 1);
  if (work < SN_GEMM_PAR_MIN) return 1;
  /* at least half the threshold per piece, at least one aligned block */
  double most = work / (0.5 * SN_GEMM_PAR_MIN);
  if ((double)nt > most) nt = (int)most;
  int64_t units = (len + SN_GEMM_PAR_ALIGN - 1) / SN_GEMM_PAR_ALIGN;
  if ((int64_t)nt > units) nt = (int)units;
  return nt < 1 ? 1 : nt;
}

#if defined(SN_HAVE_BLAS_S)
#define SN_PAR_HAVE_S 1
#else
#define SN_PAR_HAVE_S 0
#endif
#if defined(SN_HAVE_BLAS_D)
#define SN_PAR_HAVE_D 1
#else
#define SN_PAR_HAVE_D 0
#endif

#define SN_DEFINE_GEMM_PAR(SFX, T, HAVE)                                                       \
  void sn_gemm_par_##SFX(int ta, int tb, int64_t m, int64_t n, int64_t k, T alpha, const T *a, \
                         int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {   \
    if (m <= 0 || n <= 0 || k < 0) return;                                                     \
    ta = ta != 0;                                                                              \
    tb = tb != 0;                                                                              \
    /* split the longer side: the shorter operand is packed by every thread */                 \
    const int split_n = n >= m;                                                                \
    const int64_t len = split_n ? n : m;                                                       \
    const int nt = sn_gemm_par_threads(HAVE, m, n, k, len);                                    \
    if (nt <= 1) {                                                                             \
      sn_gemm_##SFX(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);                     \
      return;                                                                                  \
    }                                                                                          \
    sn_blas_single();                                                                          \
    const int64_t units = (len + SN_GEMM_PAR_ALIGN - 1) / SN_GEMM_PAR_ALIGN;                   \
    SN_OMP(parallel num_threads(nt))                                                           \
    {                                                                                          \
      const int64_t t = sn_thread_id(), nth = sn_par_team_size();                              \
      const int64_t i0 = units * t / nth * SN_GEMM_PAR_ALIGN;                                  \
      int64_t i1 = units * (t + 1) / nth * SN_GEMM_PAR_ALIGN;                                  \
      if (i1 > len) i1 = len;                                                                  \
      if (i1 > i0) {                                                                           \
        if (split_n)                                                                           \
          sn_gemm_##SFX(ta, tb, m, i1 - i0, k, alpha, a, lda, tb ? b + i0 * ldb : b + i0, ldb, \
                        beta, c + i0, ldc);                                                    \
        else                                                                                   \
          sn_gemm_##SFX(ta, tb, i1 - i0, n, k, alpha, ta ? a + i0 : a + i0 * lda, lda, b, ldb, \
                        beta, c + i0 * ldc, ldc);                                              \
      }                                                                                        \
    }                                                                                          \
  }

SN_DEFINE_GEMM_PAR(f32, float, SN_PAR_HAVE_S)
SN_DEFINE_GEMM_PAR(f64, double, SN_PAR_HAVE_D)
