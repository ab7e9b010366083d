// Device copies of the engine's counter-based random numbers (cpu.h:
// sn_mix64, sn_rand_uniform, sn_rand_normal), so that a GPU kernel draws
// the same values as the CPU for the same seed and element index.  Keep
// these in step with cpu.h.  The uniform is exact (integer arithmetic and
// one exact scaling); the normal goes through CUDA's log/cos/sqrt, which
// agree with glibc's to within an ulp or two.
#ifndef SN_CUDA_RAND_CUH
#define SN_CUDA_RAND_CUH

#include <stdint.h>

namespace snk {

__host__ __device__ __forceinline__ uint64_t rand_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1), never 0 or 1.
__host__ __device__ __forceinline__ double rand_uniform(uint64_t seed, uint64_t i) {
  const uint64_t r = rand_mix64(seed ^ rand_mix64(i));
  return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

__device__ __forceinline__ double rand_normal(uint64_t seed, uint64_t i) {
  const double u1 = rand_uniform(seed, 2 * i), u2 = rand_uniform(seed, 2 * i + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace snk

#endif
