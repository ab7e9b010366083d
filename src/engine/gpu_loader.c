/* Loading the CUDA module (device.h).
 *
 * symnet_cuda.so is dlopen()ed (RTLD_NOW | RTLD_LOCAL) on first GPU use.  Its
 * one exported symbol, symnet_cuda_init, receives the host API (sn_error for
 * messages, sn_op_set_gpu to attach GPU kernels) and fills in sn_gpu_api.
 * Every way this can fail (file missing, a CUDA library missing, no NVIDIA
 * driver, a driver older than the runtime, no visible device, a module from
 * another build) ends in SN_ERR_UNSUPPORTED with a message saying which, and
 * never in a crash.
 *
 * The load happens once, under a mutex.  A failure before the module's code
 * ran (file missing, dlopen error) may be retried by a later call; once the
 * module was initialised its verdict is final (the library is never closed:
 * unloading the CUDA runtime is not safe), and later calls get the same
 * message again. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "device.h"
#include "error.h"
#include "op.h"

#define SN_LOADER_MSG 1024

static pthread_mutex_t sn_gpu_mutex = PTHREAD_MUTEX_INITIALIZER;
static sn_gpu_api sn_gpu_table;
static const sn_gpu_api *sn_gpu_ptr; /* atomic; non-NULL once loaded */
static int sn_gpu_ndev;              /* devices seen at load */
static int sn_gpu_failed;            /* final failure status, or 0 */
static char sn_gpu_failmsg[SN_LOADER_MSG];
static sn_host_api sn_gpu_host;

/* Records a final failure and reports it. */
static int sn_gpu_fail_final(void) {
  sn_gpu_failed = SN_ERR_UNSUPPORTED;
  snprintf(sn_gpu_failmsg, sizeof sn_gpu_failmsg, "%s", sn_last_error());
  return SN_ERR_UNSUPPORTED;
}

static int sn_gpu_load_locked(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return sn_error(SN_ERR_UNSUPPORTED,
                    "GPU support is not available: the CUDA module %s was not found "
                    "(this symnet was built without CUDA, or its installation is incomplete)",
                    path);

  dlerror();
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    if (!e) e = "unknown dlopen error";
    if (strstr(e, "libcuda.so"))
      return sn_error(SN_ERR_UNSUPPORTED,
                      "GPU support is not available: no NVIDIA driver was found (%s)", e);
    if (strstr(e, "libcudart") || strstr(e, "libcublas") || strstr(e, "libcudnn") ||
        strstr(e, "libnccl"))
      return sn_error(SN_ERR_UNSUPPORTED,
                      "GPU support is not available: a CUDA library of the toolkit symnet was "
                      "built with could not be loaded; add its folder to LD_LIBRARY_PATH (%s)",
                      e);
    return sn_error(SN_ERR_UNSUPPORTED,
                    "GPU support is not available: the CUDA module could not be loaded (%s)", e);
  }

  /* From here on the module's constructors ran: never dlclose it. */
  sn_gpu_init_fn init;
  void *sym = dlsym(h, "symnet_cuda_init");
  memcpy(&init, &sym, sizeof init); /* object pointer -> function pointer */
  if (!sym) {
    sn_error(SN_ERR_UNSUPPORTED,
             "GPU support is not available: %s is not a symnet CUDA module "
             "(no symbol symnet_cuda_init)",
             path);
    return sn_gpu_fail_final();
  }

  sn_gpu_host.abi_version = SN_GPU_ABI_VERSION;
  sn_gpu_host.error = sn_error;
  sn_gpu_host.register_kernels = sn_op_set_gpu;
  sn_gpu_api api;
  memset(&api, 0, sizeof api);
  sn_clear_error();
  int rc = init(&sn_gpu_host, &api);
  if (rc != SN_OK) {
    sn_error_context(SN_ERR_UNSUPPORTED, "GPU support is not available");
    return sn_gpu_fail_final();
  }
  if (api.abi_version != SN_GPU_ABI_VERSION) {
    sn_error(SN_ERR_UNSUPPORTED,
             "GPU support is not available: the CUDA module %s has interface version %d, "
             "this symnet needs %d (reinstall symnet)",
             path, api.abi_version, SN_GPU_ABI_VERSION);
    return sn_gpu_fail_final();
  }
  if (!api.device_count || !api.alloc || !api.free || !api.copy || !api.memset0 || !api.sync ||
      !api.live_bytes || !api.cached_bytes || !api.release_cached || !api.describe) {
    sn_error(SN_ERR_UNSUPPORTED,
             "GPU support is not available: the CUDA module %s is incomplete", path);
    return sn_gpu_fail_final();
  }
  int n = 0;
  sn_clear_error();
  rc = api.device_count(&n);
  if (rc != SN_OK) {
    sn_error_context(SN_ERR_UNSUPPORTED, "GPU support is not available");
    return sn_gpu_fail_final();
  }
  if (n <= 0) {
    sn_error(SN_ERR_UNSUPPORTED, "GPU support is not available: no CUDA device is visible "
                                 "(check CUDA_VISIBLE_DEVICES and nvidia-smi)");
    return sn_gpu_fail_final();
  }
  sn_gpu_table = api;
  sn_gpu_ndev = n;
  __atomic_store_n(&sn_gpu_ptr, &sn_gpu_table, __ATOMIC_RELEASE);
  return SN_OK;
}

int sn_gpu_load(const char *path) {
  if (__atomic_load_n(&sn_gpu_ptr, __ATOMIC_ACQUIRE)) return SN_OK;
  if (!path || !*path) return sn_error(SN_ERR_ARG, "sn_gpu_load: empty path to the CUDA module");
  int rc;
  if (pthread_mutex_lock(&sn_gpu_mutex) != 0)
    return sn_error(SN_ERR_INTERNAL, "sn_gpu_load: cannot take the loader lock");
  if (__atomic_load_n(&sn_gpu_ptr, __ATOMIC_ACQUIRE))
    rc = SN_OK;
  else if (sn_gpu_failed)
    rc = sn_error(sn_gpu_failed, "%s", sn_gpu_failmsg);
  else
    rc = sn_gpu_load_locked(path);
  pthread_mutex_unlock(&sn_gpu_mutex);
  return rc;
}

const sn_gpu_api *sn_gpu(void) { return __atomic_load_n(&sn_gpu_ptr, __ATOMIC_ACQUIRE); }

int sn_device_check(sn_device dev) {
  if (dev.type == SN_DEV_CPU) return SN_OK;
  if (dev.type != SN_DEV_GPU)
    return sn_error(SN_ERR_ARG, "unknown device type %d (1 is cpu, 2 is gpu)", dev.type);
  if (!sn_gpu()) {
    int failed;
    char msg[SN_LOADER_MSG];
    msg[0] = '\0';
    pthread_mutex_lock(&sn_gpu_mutex);
    failed = sn_gpu_failed;
    if (failed) snprintf(msg, sizeof msg, "%s", sn_gpu_failmsg);
    pthread_mutex_unlock(&sn_gpu_mutex);
    if (failed) return sn_error(SN_ERR_UNSUPPORTED, "gpu(%d) cannot be used: %s", dev.id, msg);
    return sn_error(SN_ERR_UNSUPPORTED,
                    "gpu(%d) cannot be used: GPU support has not been loaded", dev.id);
  }
  if (dev.id < 0 || dev.id >= sn_gpu_ndev)
    return sn_error(SN_ERR_ARG, "gpu(%d) does not exist: this machine shows %d CUDA device%s",
                    dev.id, sn_gpu_ndev, sn_gpu_ndev == 1 ? " (gpu(0))" : "s");
  return SN_OK;
}
