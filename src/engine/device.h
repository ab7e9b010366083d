/* The GPU boundary.
 *
 * All CUDA code lives in a separate shared object (symnet_cuda.so) that is
 * dlopen()ed on first GPU use, so the package loads and runs on the CPU on
 * machines with no NVIDIA driver.  The module exports one symbol,
 * symnet_cuda_init(), which receives the host's API (error reporting, kernel
 * registration) and fills in the device API below.  Nothing in the engine
 * calls CUDA directly; everything goes through sn_gpu(). */
#ifndef SN_DEVICE_H
#define SN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

struct sn_call;
typedef int (*sn_kernel)(struct sn_call *c);

#define SN_GPU_ABI_VERSION 2

/* What the host offers the module. */
typedef struct {
  int abi_version;
  int (*error)(int status, const char *fmt, ...);
  /* Installs GPU kernels for a registered op; SN_ERR_ARG if unknown op. */
  int (*register_kernels)(const char *op, sn_kernel forward, sn_kernel backward);
} sn_host_api;

/* What the module offers the host.  Every function returns a status and
 * reports failures through host->error. */
typedef struct {
  int abi_version;
  int (*device_count)(int *n);
  int (*alloc)(int dev, size_t bytes, void **out);
  int (*free)(int dev, void *p, size_t bytes);
  /* kind: 0 host->dev, 1 dev->host, 2 dev->dev (same or peer) */
  int (*copy)(void *dst, int dst_dev, const void *src, int src_dev, size_t bytes, int kind);
  int (*memset0)(int dev, void *p, size_t bytes);
  int (*sync)(int dev);
  int64_t (*live_bytes)(int dev);
  int64_t (*cached_bytes)(int dev);
  int (*release_cached)(int dev);
  const char *(*describe)(void); /* runtime, driver, cuDNN versions */
  /* CUDA graphs: capture the work queued on dev's stream between begin and
   * end into an executable graph, replay it with launch. */
  int (*graph_begin)(int dev);
  int (*graph_end)(int dev, void **graph);
  int (*graph_launch)(int dev, void *graph);
  void (*graph_free)(void *graph);
} sn_gpu_api;

typedef int (*sn_gpu_init_fn)(const sn_host_api *host, sn_gpu_api *out);

/* Loads the module from path (once).  SN_ERR_UNSUPPORTED with a clear
 * message when the file is missing, the driver is absent or no device is
 * visible. */
int sn_gpu_load(const char *path);
/* NULL until sn_gpu_load succeeded. */
const sn_gpu_api *sn_gpu(void);
/* Checks that dev is usable (cpu always; gpu needs the module and the id). */
int sn_device_check(sn_device dev);

#endif
