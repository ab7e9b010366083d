/* Private helpers for multi-threaded CPU kernels (one OpenMP thread pool).
 *
 * The engine computes with OpenMP threads only: BLAS is kept single-threaded
 * (threads.c sets OpenBLAS to 1 thread at first use and sn_blas_single()
 * re-asserts it), and every parallel region splits independent work, each
 * piece calling the single-threaded GEMM.  So at most sn_num_threads()
 * threads compute at any time, and OpenBLAS's own threads never spin next to
 * the OpenMP ones.
 *
 * sn_gemm_par_f32/f64: the sn_gemm_f32/f64 contract (row-major
 * C = alpha op(A) op(B) + beta C).  When the product is large enough and the
 * caller is not already inside a parallel region, the rows or the columns of
 * C are split over the threads, each piece one single-threaded GEMM; the
 * contraction (k) is never split, so an element of C is computed the same way
 * whatever the thread count.
 *
 * sn_gemm_f32_w / sn_gemm_f32_pa: float32 GEMMs with packing space supplied
 * by the caller (a thread's part of an op's workspace) and with op(A) packed
 * once for many calls (a convolution's weights); on CPUs with AVX-512 whose
 * BLAS does not use it they run on symnet's own kernels (blas.c).
 *
 * SN_X512 / sn_cpu_avx512(): AVX-512 code paths compiled into the portable
 * build and chosen at run time.
 *
 * SN_VEC_CLONES: put before a serial, vectorisable leaf function (a kernel
 * over one contiguous run) to also compile it for AVX2 and AVX-512 and pick
 * the best at load time (GCC/clang function multi-versioning on x86-64
 * glibc; nothing elsewhere).  FMA is not enabled in the clones, so every
 * clone computes bit-identical results; only the vector width changes. */
#ifndef SN_CPU_PAR_H
#define SN_CPU_PAR_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"

/* Work (multiply-adds) below which a GEMM is not split. */
#define SN_GEMM_PAR_MIN ((double)(1 << 20))

void sn_gemm_par_f32(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc);
void sn_gemm_par_f64(int transa, int transb, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc);

/* float32 GEMM (sn_gemm_f32's contract) with caller-provided packing space:
 * work is NULL (allocated when needed) or at least
 * sn_gemm_f32_work(transa, transb, m, n, k) floats, 64-byte aligned.  For
 * kernels that call many GEMMs from inside a parallel region, each thread
 * with its own part of the workspace. */
size_t sn_gemm_f32_work(int transa, int transb, int64_t m, int64_t n, int64_t k);
void sn_gemm_f32_w(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                   int64_t ldc, float *work);

/* op(A) packed once for many float32 GEMMs (a convolution's weights):
 * sn_gemm_f32_packa_size(m, k) floats (0: not available, use sn_gemm_f32),
 * filled by sn_gemm_f32_packa; sn_gemm_f32_pa then computes
 * C = alpha op(A) op(B) + beta C (+ rowbias[i] on row i when rowbias is not
 * NULL, the same values as a separate add) from it (k > 0; work NULL or
 * sn_gemm_f32_pa_work(m, n, k) floats, 64-byte aligned). */
size_t sn_gemm_f32_packa_size(int64_t m, int64_t k);
size_t sn_gemm_f32_pa_work(int64_t m, int64_t n, int64_t k);
void sn_gemm_f32_packa(int transa, int64_t m, int64_t k, const float *a, int64_t lda, float *ap);
void sn_gemm_f32_pa(int64_t m, int64_t n, int64_t k, float alpha, const float *ap, int transb,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                    const float *rowbias, float *work);

/* Keeps the BLAS single-threaded (call outside parallel regions, before
 * calling GEMM from several threads): cheap when it already is. */
void sn_blas_single(void);

/* 1 inside an active OpenMP parallel region. */
static inline int sn_in_parallel(void) {
#ifdef _OPENMP
  return omp_in_parallel();
#else
  return 0;
#endif
}

/* The calling thread's index inside a parallel region (0 outside). */
static inline int sn_thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/* An OpenMP pragma, dropped (with the region running on the calling thread
 * alone) when OpenMP is off: code inside regions must work for any team
 * size, 1 included. */
#ifdef _OPENMP
#define SN_OMP(x) SN_PRAGMA(omp x)
#else
#define SN_OMP(x)
#endif

/* Runs BODY for the blocks of `block` elements that cover [0, n), with
 * int64_t lo (first element) and len (its length) in scope; the blocks are
 * split over the threads when n >= SN_PAR_GRAIN.  For vectorised leaf
 * kernels over one contiguous run (SN_VEC_CLONES): each block is one call. */
#define SN_FOR_BLOCKS(n, block, lo, len, ...)                                                  \
  do {                                                                                         \
    const int64_t sn_n_ = (n), sn_nblk_ = (sn_n_ + (block) - 1) / (block);                     \
    SN_OMP(parallel for schedule(static) if (sn_n_ >= SN_PAR_GRAIN)                            \
               num_threads(sn_num_threads()))                                                  \
    for (int64_t sn_b_ = 0; sn_b_ < sn_nblk_; sn_b_++) {                                       \
      const int64_t lo = sn_b_ * (block);                                                      \
      const int64_t len = sn_n_ - lo < (block) ? sn_n_ - lo : (block);                         \
      __VA_ARGS__;                                                                             \
    }                                                                                          \
  } while (0)

/* The number of threads of the current team (1 outside parallel regions). */
static inline int sn_par_team_size(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/* AVX-512 code paths: functions marked SN_X512 use AVX-512F intrinsics and
 * run only where sn_cpu_avx512() says the CPU (and OS) support them. */
#if defined(__x86_64__) && !defined(_WIN32) && !defined(SN_NO_AVX512) &&  \
    ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 7) || \
     (defined(__clang__) && __clang_major__ >= 8))
#define SN_HAVE_X512 1
#define SN_X512 __attribute__((target("avx512f")))
#endif
int sn_cpu_avx512(void);

#if defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && !defined(_WIN32) && \
    !defined(SN_NO_VEC_CLONES)
#if defined(__clang__) && __clang_major__ >= 14
/* clang: AVX2 without FMA (its AVX-512 target would contract a * b + c) */
#define SN_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define SN_VEC_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#endif
#endif
#ifndef SN_VEC_CLONES
#define SN_VEC_CLONES
#endif

#endif
