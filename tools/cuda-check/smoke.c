/* Smoke test of symnet_cuda.so without R: loads the module through the
 * engine's own loader (src/engine/gpu_loader.c) and, when a GPU is there,
 * exercises the allocator, copies, memset and the counters.
 * Exit status: 0 pass, 1 failure, 2 GPU not available (the clear message is
 * printed; this is the expected result on machines without a driver).
 * Built and run by tools/cuda-check/check.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "error.h"
#include "op.h"

static int nreg;
int sn_op_set_gpu(const char *name, sn_kernel fwd, sn_kernel bwd) {
  (void)name;
  (void)fwd;
  (void)bwd;
  nreg++;
  return SN_OK;
}

static int fails;
#define CHECK(cond, ...)                    \
  do {                                      \
    if (!(cond)) {                          \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                  \
      printf("\n");                         \
      fails++;                              \
    }                                       \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: smoke PATH/symnet_cuda.so\n");
    return 1;
  }
  int rc = sn_gpu_load(argv[1]);
  if (rc != SN_OK) {
    printf("load: status %d: %s\n", rc, sn_last_error());
    return rc == SN_ERR_UNSUPPORTED ? 2 : 1;
  }
  const sn_gpu_api *g = sn_gpu();
  printf("loaded: %s\n", g->describe());
  printf("kernels registered: %d\n", nreg);
  int n = 0;
  CHECK(g->device_count(&n) == SN_OK && n > 0, "device_count");
  sn_device bad = {SN_DEV_GPU, n};
  CHECK(sn_device_check(bad) != SN_OK, "gpu(%d) should not exist", n);
  if (sn_device_check(bad) != SN_OK) printf("expected error: %s\n", sn_last_error());

  const int dev = 0;
  const size_t N = 1000; /* floats: 4000 bytes, class 4096 */
  float *h = malloc(N * sizeof(float)), *back = malloc(N * sizeof(float));
  if (!h || !back) return 1;
  for (size_t i = 0; i < N; i++) h[i] = (float)i * 0.5f;
  void *p = NULL, *q = NULL;
  CHECK(g->alloc(dev, N * sizeof(float), &p) == SN_OK && p, "alloc p: %s", sn_last_error());
  CHECK(g->alloc(dev, N * sizeof(float), &q) == SN_OK && q, "alloc q: %s", sn_last_error());
  CHECK(g->live_bytes(dev) == (int64_t)(2 * N * sizeof(float)), "live %lld",
        (long long)g->live_bytes(dev));
  CHECK(g->copy(p, dev, h, 0, N * sizeof(float), 0) == SN_OK, "h2d: %s", sn_last_error());
  CHECK(g->copy(q, dev, p, dev, N * sizeof(float), 2) == SN_OK, "d2d: %s", sn_last_error());
  CHECK(g->copy(back, 0, q, dev, N * sizeof(float), 1) == SN_OK, "d2h: %s", sn_last_error());
  CHECK(memcmp(h, back, N * sizeof(float)) == 0, "round trip differs");
  CHECK(g->memset0(dev, q, N * sizeof(float)) == SN_OK, "memset0: %s", sn_last_error());
  CHECK(g->copy(back, 0, q, dev, N * sizeof(float), 1) == SN_OK, "d2h: %s", sn_last_error());
  int zeros = 1;
  for (size_t i = 0; i < N; i++) zeros &= back[i] == 0.0f;
  CHECK(zeros, "memset0 left non-zeros");
  CHECK(g->sync(dev) == SN_OK, "sync: %s", sn_last_error());

  CHECK(g->free(dev, p, N * sizeof(float)) == SN_OK, "free p");
  CHECK(g->live_bytes(dev) == (int64_t)(N * sizeof(float)), "live after free %lld",
        (long long)g->live_bytes(dev));
  CHECK(g->cached_bytes(dev) == 4096, "cached %lld", (long long)g->cached_bytes(dev));
  void *p2 = NULL;
  CHECK(g->alloc(dev, 3900, &p2) == SN_OK && p2 == p, "same class should reuse the block");
  CHECK(g->cached_bytes(dev) == 0, "cached after reuse %lld", (long long)g->cached_bytes(dev));
  CHECK(g->free(dev, p2, 3900) == SN_OK, "free p2");
  CHECK(g->free(dev, q, N * sizeof(float)) == SN_OK, "free q");
  CHECK(g->free(dev, (char *)q + 1, 1) != SN_OK, "free of a foreign pointer must fail");

  void *big = NULL;
  size_t bigsz = (size_t)300 << 20; /* 300 MiB: class 320 MiB */
  CHECK(g->alloc(dev, bigsz, &big) == SN_OK, "alloc 300 MiB: %s", sn_last_error());
  CHECK(g->free(dev, big, bigsz) == SN_OK, "free big");
  CHECK(g->cached_bytes(dev) == 4096 + ((int64_t)320 << 20), "cached %lld",
        (long long)g->cached_bytes(dev));
  CHECK(g->release_cached(dev) == SN_OK, "release_cached: %s", sn_last_error());
  CHECK(g->cached_bytes(dev) == 0 && g->live_bytes(dev) == 0, "after release: live %lld cached %lld",
        (long long)g->live_bytes(dev), (long long)g->cached_bytes(dev));

  /* Out of memory: a clear SN_ERR_OOM, and the device still works. */
  void *huge = NULL;
  rc = g->alloc(dev, (size_t)1 << 50, &huge);
  CHECK(rc == SN_ERR_OOM && huge == NULL, "1 PiB alloc gave %d", rc);
  printf("expected error: %s\n", sn_last_error());
  CHECK(g->alloc(dev, 64, &p) == SN_OK, "alloc after OOM: %s", sn_last_error());
  CHECK(g->free(dev, p, 64) == SN_OK, "free after OOM");
  CHECK(g->release_cached(-1) == SN_OK, "release all");
  free(h);
  free(back);
  printf("%s (%d failure%s)\n", fails ? "FAIL" : "PASS", fails, fails == 1 ? "" : "s");
  return fails ? 1 : 0;
}
