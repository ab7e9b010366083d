/* Row-major GEMM for the CPU kernels: C = alpha * op(A) op(B) + beta * C.
 *
 * Which BLAS is used is decided by configure (src/Makevars):
 *   SN_BLAS_CBLAS            cblas_sgemm / cblas_dgemm (OpenBLAS)
 *   SN_BLAS_FORTRAN          dgemm_ of R's BLAS, row-major by solving the
 *                            transposed problem; sgemm_ too when
 *                            SN_BLAS_FORTRAN_SINGLE, else float32 in C
 *   SN_BLAS_NONE             the cache-blocked C loops below for both
 * On CPUs with AVX-512 whose BLAS does not use it (OpenBLAS 0.3.21 on AMD
 * Zen 4/5 picks its AVX2 kernels), float32 runs on the AVX-512 kernels below
 * (see "float32 kernels for AVX-512 CPUs").
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

/* ---- float32 kernels for AVX-512 CPUs ----------------------------------
 * OpenBLAS 0.3.21 runs its AVX2 (Haswell) kernels on AVX-512 CPUs it does
 * not know (AMD Zen 4 / Zen 5), at half the width the hardware has.  Where
 * the CPU has AVX-512F and the BLAS is not known to use it, float32 GEMMs run
 * on the kernels below instead (SYMNET_GEMM=blas turns them off,
 * SYMNET_GEMM=avx512 forces them where the CPU allows; SN_NO_AVX512 at compile
 * time leaves them out).
 *
 * Packed GEMM (GotoBLAS / BLIS scheme): op(B) is packed in blocks of
 * SN_X_KC x SN_X_NC as slivers of 32 columns, op(A) in blocks of SN_X_MC x
 * SN_X_KC as slivers of MR rows (MR = 8, 10 or 12, whichever pads m least),
 * and an MR x 32 micro-kernel keeps 2 * MR accumulators in zmm registers.
 * The k blocks depend on k only, and each element of C is one chain of
 * fused multiply-adds per k block, so an element's value does not depend on
 * m, n or how C is split between threads.
 *
 * A B^T with long k (ta = 0, tb = 1, k >= SN_X_DOT_K: weight gradients of
 * convolutions over large images): both operands are read in place, 4 rows
 * of A x 4-6 rows of B of 16-wide partial dot products, summed per output at
 * the end of each k block of SN_X_DOT_KB. */
#if defined(SN_HAVE_X512)
#include <immintrin.h>

#define SN_X_NR 32
#define SN_X_KC 256
#define SN_X_MC 120 /* a multiple of every MR */
#define SN_X_NC 512
#define SN_X_DOT_K 1024
#define SN_X_DOT_KB 1024

#if defined(__clang__)
#define SN_X_UNROLL _Pragma("unroll")
#else
#define SN_X_UNROLL _Pragma("GCC unroll 16")
#endif

static inline __mmask16 sn_x_mask(int64_t w) {
  return w >= 16 ? (__mmask16)0xFFFF : w <= 0 ? (__mmask16)0 : (__mmask16)((1u << w) - 1);
}

/* C[0..mr) x [0..nr) = alpha * acc + beta * C for an MR x 32 tile. */
#define SN_X_DEFINE_KERNEL(MR)                                                                 \
  SN_X512 static void sn_x_kern_##MR(int64_t kc, const float *ap, const float *bp, float *c,  \
                                     int64_t ldc, int mr, int nr, float alpha, float beta,     \
                                     const float *rb) {                                        \
    __m512 c0[MR], c1[MR];                                                                     \
    SN_X_UNROLL for (int i = 0; i < MR; i++) {                                                 \
      c0[i] = _mm512_setzero_ps();                                                             \
      c1[i] = _mm512_setzero_ps();                                                             \
    }                                                                                          \
    for (int64_t p = 0; p < kc; p++) {                                                         \
      const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);                      \
      SN_X_UNROLL for (int i = 0; i < MR; i++) {                                               \
        const __m512 av = _mm512_set1_ps(ap[i]);                                               \
        c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);                                                \
        c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);                                                \
      }                                                                                        \
      ap += MR;                                                                                \
      bp += SN_X_NR;                                                                           \
    }                                                                                          \
    const __mmask16 m0 = sn_x_mask(nr), m1 = sn_x_mask(nr - 16);                               \
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                        \
    SN_X_UNROLL for (int i = 0; i < MR; i++) {                                                 \
      if (i < mr) {                                                                            \
        float *ci = c + i * ldc;                                                               \
        __m512 r0 = _mm512_mul_ps(va, c0[i]), r1 = _mm512_mul_ps(va, c1[i]);                   \
        if (nr == SN_X_NR) { /* plain moves: masked ones are slow on some CPUs */              \
          if (beta != 0.0f) {                                                                  \
            r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci), r0);                                 \
            r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16), r1);                            \
          }                                                                                    \
          if (rb) {                                                                            \
            r0 = _mm512_add_ps(r0, _mm512_set1_ps(rb[i]));                                     \
            r1 = _mm512_add_ps(r1, _mm512_set1_ps(rb[i]));                                     \
          }                                                                                    \
          _mm512_storeu_ps(ci, r0);                                                            \
          _mm512_storeu_ps(ci + 16, r1);                                                       \
        } else {                                                                               \
          if (beta != 0.0f) {                                                                  \
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), r0);                       \
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), r1);                  \
          }                                                                                    \
          if (rb) {                                                                            \
            r0 = _mm512_add_ps(r0, _mm512_set1_ps(rb[i]));                                     \
            r1 = _mm512_add_ps(r1, _mm512_set1_ps(rb[i]));                                     \
          }                                                                                    \
          _mm512_mask_storeu_ps(ci, m0, r0);                                                   \
          _mm512_mask_storeu_ps(ci + 16, m1, r1);                                              \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }

SN_X_DEFINE_KERNEL(8)
SN_X_DEFINE_KERNEL(10)
SN_X_DEFINE_KERNEL(12)

typedef void (*sn_x_kern)(int64_t, const float *, const float *, float *, int64_t, int, int,
                          float, float, const float *);

static int sn_x_mr(int64_t m) {
  int best = 12;
  int64_t w = (m + 11) / 12 * 12, w10 = (m + 9) / 10 * 10, w8 = (m + 7) / 8 * 8;
  if (w10 < w) {
    best = 10;
    w = w10;
  }
  if (w8 < w) best = 8;
  return best;
}

/* k blocks: as even as possible, at most SN_X_KC long */
static int64_t sn_x_kcs(int64_t k) {
  const int64_t nkb = (k + SN_X_KC - 1) / SN_X_KC;
  return (k + nkb - 1) / nkb;
}

/* In-register transpose of 16 rows of 16 floats. */
SN_X512 static inline void sn_x_transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
    t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
    r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
    r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
  }
}

/* Rows [i0, i0 + mc) of op(A), k range [p0, p0 + kc), as slivers of MR
 * rows laid out [p][MR]; rows past mc are zero.  ap is 64-byte aligned. */
SN_X512 static void sn_x_pack_a(int ta, const float *a, int64_t lda, int64_t i0, int64_t mc,
                                int64_t p0, int64_t kc, int MR, float *ap) {
  const __mmask16 mrm = sn_x_mask(MR);
  for (int64_t s = 0; s < mc; s += MR) {
    const int64_t rows = mc - s < MR ? mc - s : MR;
    float *dst = ap + s * kc;
    if (ta) {
      /* op(A) row i, column p is a[p * lda + i]: MR contiguous floats per p */
      const __mmask16 rm = sn_x_mask(rows);
      const float *src = a + p0 * lda + i0 + s;
      for (int64_t p = 0; p < kc; p++)
        _mm512_mask_storeu_ps(dst + p * MR, mrm, _mm512_maskz_loadu_ps(rm, src + p * lda));
    } else {
      /* rows of A are contiguous along p: transpose 16 x 16 blocks */
      const float *src = a + (i0 + s) * lda + p0;
      for (int64_t p = 0; p < kc; p += 16) {
        const int64_t cols = kc - p < 16 ? kc - p : 16;
        const __mmask16 lm = sn_x_mask(cols);
        __m512 r[16];
        if (cols == 16)
          for (int i = 0; i < 16; i++)
            r[i] = i < rows ? _mm512_loadu_ps(src + i * lda + p) : _mm512_setzero_ps();
        else
          for (int i = 0; i < 16; i++)
            r[i] = i < rows ? _mm512_maskz_loadu_ps(lm, src + i * lda + p) : _mm512_setzero_ps();
        sn_x_transpose16(r);
        for (int64_t q = 0; q < cols; q++) _mm512_mask_storeu_ps(dst + (p + q) * MR, mrm, r[q]);
      }
    }
  }
}

/* Columns [j0, j0 + nc) of op(B), k range [p0, p0 + kc), as slivers of 32
 * columns laid out [p][32]; columns past nc are zero.  bp is 64-byte
 * aligned. */
SN_X512 static void sn_x_pack_b(int tb, const float *b, int64_t ldb, int64_t j0, int64_t nc,
                                int64_t p0, int64_t kc, float *bp) {
  for (int64_t s = 0; s < nc; s += SN_X_NR) {
    const int64_t w = nc - s < SN_X_NR ? nc - s : SN_X_NR;
    float *dst = bp + s * kc;
    if (!tb) {
      const __mmask16 m0 = sn_x_mask(w), m1 = sn_x_mask(w - 16);
      const float *src = b + p0 * ldb + j0 + s;
      if (w == SN_X_NR) {
        for (int64_t p = 0; p < kc; p++) {
          _mm512_store_ps(dst + p * SN_X_NR, _mm512_loadu_ps(src + p * ldb));
          _mm512_store_ps(dst + p * SN_X_NR + 16, _mm512_loadu_ps(src + p * ldb + 16));
        }
      } else {
        for (int64_t p = 0; p < kc; p++) {
          _mm512_store_ps(dst + p * SN_X_NR, _mm512_maskz_loadu_ps(m0, src + p * ldb));
          _mm512_store_ps(dst + p * SN_X_NR + 16, _mm512_maskz_loadu_ps(m1, src + p * ldb + 16));
        }
      }
    } else {
      for (int h = 0; h < 2; h++) {
        const int64_t rows = w - 16 * h < 0 ? 0 : (w - 16 * h > 16 ? 16 : w - 16 * h);
        const float *src = b + (j0 + s + 16 * h) * ldb + p0;
        for (int64_t p = 0; p < kc; p += 16) {
          const int64_t cols = kc - p < 16 ? kc - p : 16;
          const __mmask16 lm = sn_x_mask(cols);
          __m512 r[16];
          if (cols == 16)
            for (int j = 0; j < 16; j++)
              r[j] = j < rows ? _mm512_loadu_ps(src + j * ldb + p) : _mm512_setzero_ps();
          else
            for (int j = 0; j < 16; j++)
              r[j] = j < rows ? _mm512_maskz_loadu_ps(lm, src + j * ldb + p) : _mm512_setzero_ps();
          sn_x_transpose16(r);
          for (int64_t q = 0; q < cols; q++)
            _mm512_store_ps(dst + (p + q) * SN_X_NR + 16 * h, r[q]);
        }
      }
    }
  }
}

/* Floats of packing space the packed GEMM needs (with 64-byte slack). */
static size_t sn_x_work(int64_t m, int64_t n, int64_t k) {
  const int MR = sn_x_mr(m);
  const int64_t kc = sn_x_kcs(k);
  const int64_t mc = m < SN_X_MC ? (m + MR - 1) / MR * MR : SN_X_MC;
  const int64_t nc = (n < SN_X_NC ? n : SN_X_NC) + SN_X_NR - 1;
  return (size_t)(mc * kc + 16) + (size_t)(nc / SN_X_NR * SN_X_NR * kc) + 16;
}

/* work: sn_x_work(m, n, k) floats, 64-byte aligned. */
static void sn_x_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                       float *c, int64_t ldc, float *work, const float *apre,
                       const float *rowbias) {
  const int MR = sn_x_mr(m);
  const sn_x_kern kern = MR == 12 ? sn_x_kern_12 : MR == 10 ? sn_x_kern_10 : sn_x_kern_8;
  const int64_t kcs = sn_x_kcs(k);
  const int64_t mcmax = m < SN_X_MC ? (m + MR - 1) / MR * MR : SN_X_MC;
  const int64_t mpad = (m + MR - 1) / MR * MR;
  float *Ap = work, *Bp = work + ((size_t)(mcmax * kcs) + 15) / 16 * 16;
  for (int64_t jc = 0; jc < n; jc += SN_X_NC) {
    const int64_t nc = n - jc < SN_X_NC ? n - jc : SN_X_NC;
    for (int64_t pc = 0; pc < k; pc += kcs) {
      const int64_t kc = k - pc < kcs ? k - pc : kcs;
      const float bt = pc == 0 ? beta : 1.0f;
      /* C + row bias after the last k block: the values of a GEMM then a bias add */
      const float *rb = pc + kc >= k ? rowbias : NULL;
      sn_x_pack_b(tb, b, ldb, jc, nc, pc, kc, Bp);
      for (int64_t ic = 0; ic < m; ic += SN_X_MC) {
        const int64_t mc = m - ic < SN_X_MC ? m - ic : SN_X_MC;
        const float *ap;
        if (apre) {
          ap = apre + pc * mpad + ic * kc; /* the layout of sn_gemm_f32_packa */
        } else {
          sn_x_pack_a(ta, a, lda, ic, mc, pc, kc, MR, Ap);
          ap = Ap;
        }
        for (int64_t jr = 0; jr < nc; jr += SN_X_NR) {
          const int nr = nc - jr < SN_X_NR ? (int)(nc - jr) : SN_X_NR;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int mr = mc - ir < MR ? (int)(mc - ir) : MR;
            kern(kc, ap + ir * kc, Bp + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, mr, nr,
                 alpha, bt, rb ? rb + ic + ir : NULL);
          }
        }
      }
    }
  }
}

/* C[0..mr) x [0..nr) (+)= alpha * A B^T over k for a 4 x NRD tile; a and b
 * point at the tile's first rows. */
#define SN_X_DEFINE_DOT(NRD)                                                                   \
  SN_X512 static void sn_x_dot_##NRD(int64_t k, const float *a, int64_t lda, const float *b,  \
                                     int64_t ldb, float *c, int64_t ldc, int mr, int nr,       \
                                     float alpha, float beta) {                                \
    __m512 acc[4][NRD];                                                                        \
    const float *ar[4], *br[NRD];                                                              \
    SN_X_UNROLL for (int i = 0; i < 4; i++) ar[i] = a + (i < mr ? i : 0) * lda;                \
    SN_X_UNROLL for (int j = 0; j < NRD; j++) br[j] = b + (j < nr ? j : 0) * ldb;              \
    SN_X_UNROLL for (int i = 0; i < 4; i++) SN_X_UNROLL for (int j = 0; j < NRD; j++)          \
        acc[i][j] = _mm512_setzero_ps();                                                       \
    int64_t p = 0;                                                                             \
    for (; p + 16 <= k; p += 16) {                                                             \
      __m512 av[4];                                                                            \
      SN_X_UNROLL for (int i = 0; i < 4; i++) av[i] = _mm512_loadu_ps(ar[i] + p);              \
      SN_X_UNROLL for (int j = 0; j < NRD; j++) {                                              \
        const __m512 bv = _mm512_loadu_ps(br[j] + p);                                          \
        SN_X_UNROLL for (int i = 0; i < 4; i++) acc[i][j] =                                    \
            _mm512_fmadd_ps(av[i], bv, acc[i][j]);                                             \
      }                                                                                        \
    }                                                                                          \
    if (p < k) {                                                                               \
      const __mmask16 lm = sn_x_mask(k - p);                                                   \
      __m512 av[4];                                                                            \
      SN_X_UNROLL for (int i = 0; i < 4; i++) av[i] = _mm512_maskz_loadu_ps(lm, ar[i] + p);    \
      SN_X_UNROLL for (int j = 0; j < NRD; j++) {                                              \
        const __m512 bv = _mm512_maskz_loadu_ps(lm, br[j] + p);                                \
        SN_X_UNROLL for (int i = 0; i < 4; i++) acc[i][j] =                                    \
            _mm512_fmadd_ps(av[i], bv, acc[i][j]);                                             \
      }                                                                                        \
    }                                                                                          \
    for (int i = 0; i < mr; i++)                                                               \
      for (int j = 0; j < nr; j++) {                                                           \
        const float v = alpha * _mm512_reduce_add_ps(acc[i][j]);                               \
        float *cp = c + i * ldc + j;                                                           \
        *cp = beta == 0.0f ? v : v + beta * *cp;                                               \
      }                                                                                        \
  }

SN_X_DEFINE_DOT(4)
SN_X_DEFINE_DOT(5)
SN_X_DEFINE_DOT(6)

typedef void (*sn_x_dotk)(int64_t, const float *, int64_t, const float *, int64_t, float *,
                          int64_t, int, int, float, float);

static void sn_x_sdot_nt(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                         int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                         int64_t ldc) {
  int nrd = 6;
  int64_t w = (n + 5) / 6 * 6, w5 = (n + 4) / 5 * 5, w4 = (n + 3) / 4 * 4;
  if (w5 < w) {
    nrd = 5;
    w = w5;
  }
  if (w4 < w) nrd = 4;
  const sn_x_dotk f = nrd == 6 ? sn_x_dot_6 : nrd == 5 ? sn_x_dot_5 : sn_x_dot_4;
  for (int64_t p0 = 0; p0 < k; p0 += SN_X_DOT_KB) {
    const int64_t kb = k - p0 < SN_X_DOT_KB ? k - p0 : SN_X_DOT_KB;
    const float bt = p0 == 0 ? beta : 1.0f;
    for (int64_t i = 0; i < m; i += 4)
      for (int64_t j = 0; j < n; j += nrd)
        f(kb, a + i * lda + p0, lda, b + j * ldb + p0, ldb, c + i * ldc + j, ldc,
          m - i < 4 ? (int)(m - i) : 4, n - j < nrd ? (int)(n - j) : nrd, alpha, bt);
  }
}
#endif /* SN_HAVE_X512 */

/* ---- which float32 GEMM ---- */

static int sn_avx512_state; /* 0 unknown, 1 yes, 2 no; accessed atomically */

int sn_cpu_avx512(void) {
  int s = __atomic_load_n(&sn_avx512_state, __ATOMIC_ACQUIRE);
  if (s) return s == 1;
  int yes = 0;
#if defined(SN_HAVE_X512)
  __builtin_cpu_init();
  yes = __builtin_cpu_supports("avx512f") != 0;
#endif
  __atomic_store_n(&sn_avx512_state, yes ? 1 : 2, __ATOMIC_RELEASE);
  return yes;
}

#if defined(SN_HAVE_X512)
#if defined(SN_HAVE_OPENBLAS) && defined(SN_BLAS_CBLAS)
char *openblas_get_corename(void);
#define SN_BLAS_CORENAME() openblas_get_corename()
#elif defined(__GNUC__) && defined(__ELF__)
extern char *openblas_get_corename(void) __attribute__((weak));
#define SN_BLAS_CORENAME() (openblas_get_corename ? openblas_get_corename() : NULL)
#else
#define SN_BLAS_CORENAME() ((char *)NULL)
#endif

static int sn_ieq(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a, y = *b;
    if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return *a == *b;
}

static int sn_x512_state; /* 0 undecided, 1 on, 2 off; accessed atomically */

/* 1 when float32 GEMMs take the AVX-512 kernels. */
static int sn_x512_on(void) {
  int s = __atomic_load_n(&sn_x512_state, __ATOMIC_ACQUIRE);
  if (s) return s == 1;
  int on = 0;
  if (sn_cpu_avx512()) {
    const char *env = getenv("SYMNET_GEMM");
    if (env && sn_ieq(env, "blas")) {
      on = 0;
    } else if (env && sn_ieq(env, "avx512")) {
      on = 1;
    } else {
      /* not when the BLAS already runs AVX-512 kernels */
      const char *core = SN_BLAS_CORENAME();
      on = !(core && (sn_ieq(core, "skylakex") || sn_ieq(core, "cooperlake") ||
                      sn_ieq(core, "sapphirerapids")));
    }
  }
  __atomic_store_n(&sn_x512_state, on ? 1 : 2, __ATOMIC_RELEASE);
  return on;
}
#endif /* SN_HAVE_X512 */

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

size_t sn_gemm_f32_work(int transa, int transb, int64_t m, int64_t n, int64_t k) {
#if defined(SN_HAVE_X512)
  if (m <= 0 || n <= 0 || k <= 0 || !sn_x512_on()) return 0;
  if (!transa && transb && k >= SN_X_DOT_K) return 0;
  return sn_x_work(m, n, k);
#else
  (void)transa;
  (void)transb;
  (void)m;
  (void)n;
  (void)k;
  return 0;
#endif
}

/* ---- op(A) packed once, used by many GEMMs (convolution weights) ----
 * Layout: for each k block (sn_x_kcs(k) long, the last one shorter) the
 * rows as slivers of MR rows, [p][MR] each; block pc starts at pc * mpad. */
size_t sn_gemm_f32_packa_size(int64_t m, int64_t k) {
#if defined(SN_HAVE_X512)
  if (m <= 0 || k <= 0 || !sn_x512_on()) return 0;
  const int MR = sn_x_mr(m);
  return (size_t)((m + MR - 1) / MR * MR) * (size_t)k + 16;
#else
  (void)m;
  (void)k;
  return 0;
#endif
}

size_t sn_gemm_f32_pa_work(int64_t m, int64_t n, int64_t k) {
#if defined(SN_HAVE_X512)
  if (m <= 0 || n <= 0 || k <= 0 || !sn_x512_on()) return 0;
  return sn_x_work(m, n, k);
#else
  (void)m;
  (void)n;
  (void)k;
  return 0;
#endif
}

void sn_gemm_f32_packa(int transa, int64_t m, int64_t k, const float *a, int64_t lda, float *ap) {
#if defined(SN_HAVE_X512)
  const int MR = sn_x_mr(m);
  const int64_t kcs = sn_x_kcs(k), mpad = (m + MR - 1) / MR * MR;
  for (int64_t pc = 0; pc < k; pc += kcs) {
    const int64_t kc = k - pc < kcs ? k - pc : kcs;
    sn_x_pack_a(transa != 0, a, lda, 0, m, pc, kc, MR, ap + pc * mpad);
  }
#else
  (void)transa;
  (void)m;
  (void)k;
  (void)a;
  (void)lda;
  (void)ap;
#endif
}

void sn_gemm_f32_pa(int64_t m, int64_t n, int64_t k, float alpha, const float *ap, int transb,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                    const float *rowbias, float *work) {
#if defined(SN_HAVE_X512)
  if (m <= 0 || n <= 0 || k <= 0) return;
  const size_t need = sn_x_work(m, n, k);
  float *own = NULL;
  if (!work) work = own = (float *)sn_host_alloc(need * sizeof(float));
  if (work) {
    sn_x_sgemm(0, transb != 0, m, n, k, alpha, NULL, 0, b, ldb, beta, c, ldc, work, ap,
               rowbias);
    if (own) sn_host_free(own, need * sizeof(float));
    return;
  }
  /* no memory for packing: unpack A into C's way, row by row (slow, rare) */
  {
    const int MR = sn_x_mr(m);
    const int64_t kcs = sn_x_kcs(k), mpad = (m + MR - 1) / MR * MR;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        float acc = 0.0f;
        for (int64_t p = 0; p < k; p++) {
          const int64_t pc = p / kcs * kcs, kc = k - pc < kcs ? k - pc : kcs;
          const float av = ap[pc * mpad + (i / MR) * MR * kc + (p - pc) * MR + i % MR];
          acc += av * (transb ? b[j * ldb + p] : b[p * ldb + j]);
        }
        c[i * ldc + j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]) +
                         (rowbias ? rowbias[i] : 0.0f);
      }
  }
#else
  (void)m;
  (void)n;
  (void)k;
  (void)alpha;
  (void)ap;
  (void)transb;
  (void)b;
  (void)ldb;
  (void)beta;
  (void)c;
  (void)ldc;
  (void)rowbias;
  (void)work;
#endif
}

void sn_gemm_f32(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc) {
  sn_gemm_f32_w(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

void sn_gemm_f32_w(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc, float *work) {
  if (m <= 0 || n <= 0 || k < 0) return;
  transa = transa != 0;
  transb = transb != 0;
  (void)sn_num_threads(); /* applies the thread budget to OpenBLAS once */
#if defined(SN_HAVE_X512)
  if (k > 0 && alpha != 0.0f && sn_x512_on()) {
    if (!transa && transb && k >= SN_X_DOT_K) {
      sn_x_sdot_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
    const size_t need = sn_x_work(m, n, k);
    float *own = NULL;
    if (!work) work = own = (float *)sn_host_alloc(need * sizeof(float));
    if (work) {
      sn_x_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, work, NULL,
                 NULL);
      if (own) sn_host_free(own, need * sizeof(float));
      return;
    }
    /* no memory for packing: the BLAS below */
  }
#else
  (void)work;
#endif
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

#if defined(SN_HAVE_X512)
#define SN_PAR_HAVE_S_NOW (SN_PAR_HAVE_S || sn_x512_on())
#else
#define SN_PAR_HAVE_S_NOW SN_PAR_HAVE_S
#endif
SN_DEFINE_GEMM_PAR(f32, float, SN_PAR_HAVE_S_NOW)
SN_DEFINE_GEMM_PAR(f64, double, SN_PAR_HAVE_D)
