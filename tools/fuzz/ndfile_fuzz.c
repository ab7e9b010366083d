/* libFuzzer harness for the NDArray file reader (src/engine/ndfile.c).
 *
 * Each input is loaded with sn_ndfile_load_mem.  A malformed input must give
 * an error status and a message and leave nothing allocated; a well-formed
 * one is saved again with sn_ndfile_save_mem and reloaded, and the second
 * load must give the same names, shapes, dtypes and bytes.  AddressSanitizer
 * and LeakSanitizer catch the memory errors; the checks below catch the
 * logic ones (and the engine's own live-bytes counter must return to zero).
 * Build and run: see README.md in this folder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "ndfile.h"

/* The reader only makes CPU tensors; these stand in for the GPU loader
 * (device.c) when it is not linked. */
__attribute__((weak)) const sn_gpu_api *sn_gpu(void) { return NULL; }
__attribute__((weak)) int sn_device_check(sn_device dev) {
  return dev.type == SN_DEV_CPU ? SN_OK : sn_error(SN_ERR_UNSUPPORTED, "no GPU in the fuzzer");
}

#define FUZZ_CHECK(c)                                                    \
  do {                                                                   \
    if (!(c)) {                                                          \
      fprintf(stderr, "ndfile_fuzz: check failed: %s (line %d)\n", #c, __LINE__); \
      __builtin_trap();                                                  \
    }                                                                    \
  } while (0)

static int same_tensor(const sn_tensor *a, const sn_tensor *b) {
  if ((a->st == NULL) != (b->st == NULL)) return 0;
  if (!a->st) return a->shape.ndim == 0 && b->shape.ndim == 0;
  if (a->dtype != b->dtype || !sn_shape_equal(&a->shape, &b->shape)) return 0;
  return memcmp(sn_tensor_data(a), sn_tensor_data(b), sn_tensor_bytes(a)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sn_ndlist l, l2;
  const sn_tensor **ptrs;
  void *buf = NULL;
  size_t len = 0;
  int rc;

  sn_clear_error();
  rc = sn_ndfile_load_mem(data, size, &l);
  if (rc != SN_OK) {
    const char *msg = sn_last_error();
    FUZZ_CHECK(msg && msg[0] && strcmp(msg, "unknown error") != 0);
    FUZZ_CHECK(l.n == 0 && l.arrays == NULL && l.names == NULL);
    FUZZ_CHECK(sn_host_live_bytes() == 0);
    return 0;
  }
  FUZZ_CHECK(l.n >= 0);
  for (int i = 0; i < l.n; i++) {
    const sn_tensor *t = &l.arrays[i];
    FUZZ_CHECK(t->shape.ndim >= 0 && t->shape.ndim <= SN_MAX_DIMS);
    if (t->st) FUZZ_CHECK(sn_tensor_bytes(t) <= size);
  }

  ptrs = malloc((size_t)(l.n > 0 ? l.n : 1) * sizeof *ptrs);
  FUZZ_CHECK(ptrs != NULL);
  for (int i = 0; i < l.n; i++) ptrs[i] = &l.arrays[i];
  rc = sn_ndfile_save_mem(l.n, ptrs, (const char *const *)l.names, &buf, &len);
  FUZZ_CHECK(rc == SN_OK);
  rc = sn_ndfile_load_mem(buf, len, &l2);
  FUZZ_CHECK(rc == SN_OK);
  FUZZ_CHECK(l2.n == l.n);
  FUZZ_CHECK((l2.names == NULL) == (l.names == NULL));
  for (int i = 0; i < l.n; i++) {
    FUZZ_CHECK(same_tensor(&l.arrays[i], &l2.arrays[i]));
    if (l.names) FUZZ_CHECK(strcmp(l.names[i], l2.names[i]) == 0);
  }
  sn_ndlist_free(&l2);
  free(buf);
  free(ptrs);
  sn_ndlist_free(&l);
  FUZZ_CHECK(l.n == 0 && l.arrays == NULL && l.names == NULL);
  FUZZ_CHECK(sn_host_live_bytes() == 0);
  return 0;
}
