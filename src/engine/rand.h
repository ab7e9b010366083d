/* The engine's counter-based random numbers, one source for the CPU
 * kernels and the CUDA kernels (compiled as __host__ __device__ by nvcc),
 * so both draw the same values for the same seed and element index.
 *
 * Value i of a call with seed s depends only on (s, i), so results do not
 * depend on the thread count or on the device.  The uniform is exact
 * (integer arithmetic and one exact scaling); values that go through
 * log/cos/sqrt (normal, exponential, gamma, Poisson) agree between glibc
 * and CUDA's device math to within an ulp or two.
 *
 * sn_rstream: a per-element stream for samplers that need several uniforms
 * per value (rejection samplers): element i of a call draws
 * sn_rand_uniform(mix(seed, i), 0, 1, 2, ...). */
#ifndef SN_RAND_H
#define SN_RAND_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SN_RAND_FN __host__ __device__ inline
#else
#define SN_RAND_FN static inline
#endif

SN_RAND_FN uint64_t sn_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
/* Uniform in (0, 1), never 0 or 1. */
SN_RAND_FN double sn_rand_uniform(uint64_t seed, uint64_t i) {
  uint64_t r = sn_mix64(seed ^ sn_mix64(i));
  return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
SN_RAND_FN double sn_rand_normal(uint64_t seed, uint64_t i) {
  double u1 = sn_rand_uniform(seed, 2 * i), u2 = sn_rand_uniform(seed, 2 * i + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

typedef struct {
  uint64_t seed, k;
} sn_rstream;

SN_RAND_FN sn_rstream sn_rs_make(uint64_t seed, uint64_t i) {
  sn_rstream s = {sn_mix64(seed ^ sn_mix64(i ^ 0xA5A5A5A5DEADBEEFull)), 0};
  return s;
}
SN_RAND_FN double sn_rs_uniform(sn_rstream *s) { return sn_rand_uniform(s->seed, s->k++); }
SN_RAND_FN double sn_rs_normal(sn_rstream *s) {
  const double u1 = sn_rs_uniform(s), u2 = sn_rs_uniform(s);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Gamma(shape a, scale 1), Marsaglia and Tsang (2000). */
SN_RAND_FN double sn_rs_gamma(sn_rstream *s, double a) {
  if (a <= 0) return 0.0;
  double boost = 1.0;
  if (a < 1.0) {
    boost = pow(sn_rs_uniform(s), 1.0 / a);
    a += 1.0;
  }
  const double d = a - 1.0 / 3.0, cc = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = sn_rs_normal(s);
      v = 1.0 + cc * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = sn_rs_uniform(s);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * boost;
    if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v * boost;
  }
}

/* Poisson(lam): Knuth below 12; above, PTRS, W. Hormann, "The transformed
 * rejection method for generating Poisson random variables" (1993). */
SN_RAND_FN double sn_rs_poisson(sn_rstream *s, double lam) {
  if (lam <= 0) return 0.0;
  if (lam < 12.0) {
    const double l = exp(-lam);
    double p = 1.0;
    int64_t k = 0;
    for (;;) {
      p *= sn_rs_uniform(s);
      if (p <= l) return (double)k;
      k++;
    }
  }
  const double slam = sqrt(lam), loglam = log(lam);
  const double b = 0.931 + 2.53 * slam, a = -0.059 + 0.02483 * b;
  const double invalpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2.0);
  for (;;) {
    const double u = sn_rs_uniform(s) - 0.5, v = sn_rs_uniform(s);
    const double us = 0.5 - fabs(u);
    const double k = floor((2.0 * a / us + b) * u + lam + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (log(v) + log(invalpha) - log(a / (us * us) + b) <= -lam + k * loglam - lgamma(k + 1.0))
      return k;
  }
}

#endif
