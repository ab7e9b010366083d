/* The CPU thread budget and the single-threaded BLAS.
 *
 * sn_num_threads() is the number of threads every SN_PARALLEL_FOR loop and
 * every parallel kernel may use.  Default: the cores this process may run on
 * (omp_get_num_procs(), which honours the CPU affinity mask), or
 * SYMNET_NUM_THREADS when set, and never more than OMP_THREAD_LIMIT (CRAN
 * sets it to 2 on its check machines).  sn_set_num_threads(n) changes it;
 * n <= 0 restores the default.
 *
 * One thread pool: all parallelism is OpenMP.  OpenBLAS is set to one thread
 * at first use (and sn_blas_single() re-asserts it before GEMMs are issued
 * from several threads), so kernels call GEMM from inside OpenMP regions,
 * each thread on its own piece of work, and OpenBLAS's own pool stays idle:
 * at any moment at most sn_num_threads() threads compute, and no OpenBLAS
 * thread spins on a core the OpenMP threads need.  With OpenBLAS linked
 * directly (SN_HAVE_OPENBLAS_THREADS, proven by configure)
 * openblas_set_num_threads is called directly; otherwise a weak reference
 * finds it when R's own BLAS is OpenBLAS, and nothing is done when it is
 * not (reference BLAS is single-threaded anyway).  Note: when R's BLAS is
 * the same OpenBLAS, R's own matrix products also run on one thread after
 * symnet's first GEMM. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"

#include "cpu_par.h"

#if defined(SN_HAVE_OPENBLAS_THREADS)
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
#define SN_BLAS_CTL 1
#elif defined(__GNUC__) && defined(__ELF__)
extern void openblas_set_num_threads(int) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));
#define SN_BLAS_CTL (openblas_set_num_threads && openblas_get_num_threads)
#else
#define SN_BLAS_CTL 0
#endif

/* OpenBLAS to one thread (when it is OpenBLAS and not already there). */
static void sn_blas_one(void) {
#if defined(SN_HAVE_OPENBLAS_THREADS) || (defined(__GNUC__) && defined(__ELF__))
  if (SN_BLAS_CTL && openblas_get_num_threads() != 1) openblas_set_num_threads(1);
#endif
}

static int sn_threads_now; /* 0 until first use; accessed atomically */

/* A positive integer from the environment, or 0. */
static int sn_env_int(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (end == s || v <= 0) return 0;
  while (*end == ' ' || *end == '\t') end++;
  if (*end != '\0' && *end != ',') return 0; /* OMP_NUM_THREADS may be a list */
  return v > INT_MAX ? INT_MAX : (int)v;
}

static int sn_thread_limit(void) {
  int lim = INT_MAX;
#ifdef _OPENMP
  int l = omp_get_thread_limit();
  if (l > 0 && l < lim) lim = l;
#endif
  int e = sn_env_int("OMP_THREAD_LIMIT");
  if (e > 0 && e < lim) lim = e;
  return lim;
}

static int sn_default_threads(void) {
  int n = sn_env_int("SYMNET_NUM_THREADS");
  if (n <= 0) {
#ifdef _OPENMP
    n = omp_get_num_procs();
#else
    long p = sysconf(_SC_NPROCESSORS_ONLN);
    n = p > 0 && p < INT_MAX ? (int)p : 1;
#endif
  }
  if (n <= 0) n = 1;
  return n;
}

static int sn_apply_threads(int n) {
  int lim = sn_thread_limit();
  if (n > lim) n = lim;
  if (n < 1) n = 1;
  if (!sn_in_parallel()) sn_blas_one();
  __atomic_store_n(&sn_threads_now, n, __ATOMIC_RELEASE);
  return n;
}

int sn_num_threads(void) {
  int n = __atomic_load_n(&sn_threads_now, __ATOMIC_ACQUIRE);
  if (n > 0) return n;
  /* First use.  Two threads racing here compute the same value. */
  return sn_apply_threads(sn_default_threads());
}

void sn_set_num_threads(int n) {
  if (n <= 0) n = sn_default_threads();
  sn_apply_threads(n);
}

void sn_blas_single(void) {
  (void)sn_num_threads();
  if (!sn_in_parallel()) sn_blas_one();
}
