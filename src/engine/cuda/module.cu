// symnet's CUDA module: the one entry point, devices, streams, copies.
//
// Built into symnet_cuda.so (src/Makevars) and dlopen()ed by gpu_loader.c on
// first GPU use.  The only exported symbol is symnet_cuda_init(), which
// checks the host's interface version, the CUDA driver and the devices,
// registers the GPU kernels of the op families with the host and fills in the
// sn_gpu_api table (device.h).  No R headers here; errors go through
// host->error and come back as status codes.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "common.cuh"

#ifdef SN_HAVE_NCCL
#include <nccl.h>
#endif

namespace snc {

const sn_host_api *host = nullptr;

namespace {

struct Dev {
  std::mutex mu;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
#ifdef SN_HAVE_CUDNN
  cudnnHandle_t dnn = nullptr;
#endif
};

Dev *g_devs = nullptr;  // never freed: nothing may run CUDA at process exit
int g_ndev = 0;
std::once_flag g_describe_once;
char g_describe[2048];

// ---- GPU kernels of the op families -------------------------------------
// GPU op kernels arrive family by family (engine/cuda/<family>.cu, each with
// a register_<family>(host) that calls host->register_kernels(name, fwd,
// bwd)); list them here.  Until then every op runs on the CPU only and the
// executor reports ops without GPU kernels.
}  // namespace
// Neural-network families (nn_*.cu).
int register_nn_dense(const sn_host_api *h);
int register_nn_conv(const sn_host_api *h);
int register_nn_pool(const sn_host_api *h);
int register_nn_act(const sn_host_api *h);
int register_nn_loss(const sn_host_api *h);
int register_nn_bn(const sn_host_api *h);
int register_nn_lrn(const sn_host_api *h);
// Element-wise, reduction, indexing, shape, optimizer, random and sequence
// families (elemwise.cu, reduce.cu, indexing.cu, shape.cu, optimizer.cu,
// random.cu, sequence.cu).
int register_elemwise(const sn_host_api *h);
int register_reduce(const sn_host_api *h);
int register_indexing(const sn_host_api *h);
int register_shape(const sn_host_api *h);
int register_optimizer(const sn_host_api *h);
int register_random(const sn_host_api *h);
int register_sequence(const sn_host_api *h);
namespace {

const register_fn kFamilies[] = {
    register_nn_dense, register_nn_conv, register_nn_pool, register_nn_act,
    register_nn_loss,  register_nn_bn,   register_nn_lrn,
    register_elemwise, register_reduce,  register_indexing, register_shape,
    register_optimizer, register_random, register_sequence,
    nullptr,
};

// Why the runtime has no device: a message for the user.
int runtime_error(cudaError_t e, const char *what) {
  int drv = 0, rt = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  (void)cudaGetLastError();
  const char *text = cudaGetErrorString(e);
  if (e == cudaErrorInsufficientDriver && drv == 0)
    return host->error(SN_ERR_UNSUPPORTED, "no NVIDIA driver was found (%s: %s)", what, text);
  if (e == cudaErrorInsufficientDriver)
    return host->error(SN_ERR_UNSUPPORTED,
                       "the NVIDIA driver supports CUDA %d.%d, older than CUDA %d.%d that symnet "
                       "was built with; update the driver (%s: %s)",
                       drv / 1000, (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10, what, text);
  if (e == cudaErrorNoDevice)
    return host->error(SN_ERR_UNSUPPORTED,
                       "no CUDA device is visible (%s: %s); check CUDA_VISIBLE_DEVICES", what,
                       text);
  return host->error(SN_ERR_UNSUPPORTED, "CUDA could not be initialised (%s: %s, %s)", what, text,
                     cudaGetErrorName(e));
}

int api_device_count(int *n) {
  int c = 0;
  cudaError_t e = cudaGetDeviceCount(&c);
  if (e != cudaSuccess) {
    *n = 0;
    return runtime_error(e, "cudaGetDeviceCount");
  }
  *n = c;
  return SN_OK;
}

int api_alloc(int dev, size_t bytes, void **out) { return dev_alloc(dev, bytes, out); }
int api_free(int dev, void *p, size_t bytes) { return dev_free(dev, p, bytes); }

int api_copy(void *dst, int dst_dev, const void *src, int src_dev, size_t bytes, int kind) {
  if (bytes == 0) return SN_OK;
  if (!dst || !src) return host->error(SN_ERR_ARG, "GPU copy of %zu bytes with a NULL pointer", bytes);
  cudaStream_t s;
  int rc;
  switch (kind) {
    case 0:  // host -> device
      if ((rc = set_device(dst_dev)) != SN_OK || (rc = stream(dst_dev, &s)) != SN_OK) return rc;
      SNC_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s), dst_dev,
                "copy to the GPU (cudaMemcpyAsync)");
      SNC_CHECK(cudaStreamSynchronize(s), dst_dev, "copy to the GPU (cudaStreamSynchronize)");
      return SN_OK;
    case 1:  // device -> host
      if ((rc = set_device(src_dev)) != SN_OK || (rc = stream(src_dev, &s)) != SN_OK) return rc;
      SNC_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s), src_dev,
                "copy from the GPU (cudaMemcpyAsync)");
      SNC_CHECK(cudaStreamSynchronize(s), src_dev, "copy from the GPU (cudaStreamSynchronize)");
      return SN_OK;
    case 2:  // device -> device
      if (dst_dev == src_dev) {
        if ((rc = set_device(src_dev)) != SN_OK || (rc = stream(src_dev, &s)) != SN_OK) return rc;
        SNC_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s), src_dev,
                  "GPU copy (cudaMemcpyAsync)");
        return SN_OK;
      } else {
        // Across devices: finish what both streams hold, copy, wait.
        cudaStream_t sd;
        if ((rc = set_device(dst_dev)) != SN_OK || (rc = stream(dst_dev, &sd)) != SN_OK) return rc;
        SNC_CHECK(cudaStreamSynchronize(sd), dst_dev, "peer copy (cudaStreamSynchronize)");
        if ((rc = set_device(src_dev)) != SN_OK || (rc = stream(src_dev, &s)) != SN_OK) return rc;
        SNC_CHECK(cudaStreamSynchronize(s), src_dev, "peer copy (cudaStreamSynchronize)");
        SNC_CHECK(cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, bytes, s), src_dev,
                  "peer copy (cudaMemcpyPeerAsync)");
        SNC_CHECK(cudaStreamSynchronize(s), src_dev, "peer copy (cudaStreamSynchronize)");
        return SN_OK;
      }
    default:
      return host->error(SN_ERR_ARG, "GPU copy: unknown kind %d (0, 1 or 2)", kind);
  }
}

int api_memset0(int dev, void *p, size_t bytes) {
  if (bytes == 0) return SN_OK;
  cudaStream_t s;
  int rc;
  if ((rc = set_device(dev)) != SN_OK || (rc = stream(dev, &s)) != SN_OK) return rc;
  SNC_CHECK(cudaMemsetAsync(p, 0, bytes, s), dev, "cudaMemsetAsync");
  return SN_OK;
}

// Waits for all work queued on the device (dev < 0: every device).  This is
// where errors of asynchronous kernels surface.
int api_sync(int dev) {
  if (dev < 0) {
    for (int d = 0; d < g_ndev; d++) SN_TRY(api_sync(d));
    return SN_OK;
  }
  cudaStream_t s;
  int rc;
  if ((rc = set_device(dev)) != SN_OK || (rc = stream(dev, &s)) != SN_OK) return rc;
  SNC_CHECK(cudaStreamSynchronize(s), dev, "cudaStreamSynchronize");
  return SN_OK;
}

int64_t api_live_bytes(int dev) { return dev_live_bytes(dev); }
int64_t api_cached_bytes(int dev) { return dev_cached_bytes(dev); }
int api_release_cached(int dev) { return dev_release_cached(dev); }

void build_describe() {
  std::string s;
  char buf[512];
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  snprintf(buf, sizeof buf, "CUDA runtime %d.%d, driver %d.%d", rt / 1000, (rt % 1000) / 10,
           drv / 1000, (drv % 1000) / 10);
  s += buf;
  int ma = 0, mi = 0, pa = 0;
  cublasGetProperty(MAJOR_VERSION, &ma);
  cublasGetProperty(MINOR_VERSION, &mi);
  cublasGetProperty(PATCH_LEVEL, &pa);
  snprintf(buf, sizeof buf, ", cuBLAS %d.%d.%d", ma, mi, pa);
  s += buf;
#ifdef SN_HAVE_CUDNN
  size_t v = cudnnGetVersion();
  if (v >= 10000)  // cuDNN 9: major * 10000 + minor * 100 + patch
    snprintf(buf, sizeof buf, ", cuDNN %zu.%zu.%zu", v / 10000, (v % 10000) / 100, v % 100);
  else
    snprintf(buf, sizeof buf, ", cuDNN %zu.%zu.%zu", v / 1000, (v % 1000) / 100, v % 100);
  s += buf;
#else
  s += ", no cuDNN";
#endif
#ifdef SN_HAVE_NCCL
  int nv = 0;
  if (ncclGetVersion(&nv) == ncclSuccess) {
    snprintf(buf, sizeof buf, ", NCCL %d.%d.%d", nv / 10000, (nv % 10000) / 100, nv % 100);
    s += buf;
  }
#endif
  s += "; built for sm_90 + PTX";
  for (int d = 0; d < g_ndev; d++) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    char mem[32];
    format_bytes((double)prop.totalGlobalMem, mem, sizeof mem);
    snprintf(buf, sizeof buf, "; gpu(%d): %s, sm_%d%d, %s", d, prop.name, prop.major, prop.minor,
             mem);
    s += buf;
  }
  snprintf(g_describe, sizeof g_describe, "%s", s.c_str());
}

const char *api_describe(void) {
  try {
    std::call_once(g_describe_once, build_describe);
  } catch (...) {
    return "CUDA (description unavailable)";
  }
  return g_describe;
}

}  // namespace

int cuda_error(cudaError_t e, int dev, const char *what) {
  (void)cudaGetLastError();  // clear non-sticky errors
  int status = e == cudaErrorMemoryAllocation ? SN_ERR_OOM : SN_ERR_DEVICE;
  return host->error(status, "%s failed on gpu(%d): %s (%s)", what, dev, cudaGetErrorString(e),
                     cudaGetErrorName(e));
}

int cublas_error(cublasStatus_t s, int dev, const char *what) {
  int status = s == CUBLAS_STATUS_ALLOC_FAILED ? SN_ERR_OOM : SN_ERR_DEVICE;
  return host->error(status, "%s failed on gpu(%d): %s (%s)", what, dev, cublasGetStatusString(s),
                     cublasGetStatusName(s));
}

int num_devices() { return g_ndev; }

int set_device(int dev) {
  if (dev < 0 || dev >= g_ndev)
    return host->error(SN_ERR_ARG, "gpu(%d) does not exist (%d CUDA device%s)", dev, g_ndev,
                       g_ndev == 1 ? "" : "s");
  SNC_CHECK(cudaSetDevice(dev), dev, "cudaSetDevice");
  return SN_OK;
}

int stream(int dev, cudaStream_t *out) {
  if (dev < 0 || dev >= g_ndev) return set_device(dev);
  Dev &d = g_devs[dev];
  try {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!d.stream) {
      int rc = set_device(dev);
      if (rc != SN_OK) return rc;
      SNC_CHECK(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), dev,
                "cudaStreamCreateWithFlags");
    }
    *out = d.stream;
    return SN_OK;
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "cannot lock the state of gpu(%d)", dev);
  }
}

int cublas(int dev, cublasHandle_t *out) {
  cudaStream_t s;
  SN_TRY(stream(dev, &s));
  Dev &d = g_devs[dev];
  try {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!d.blas) {
      SN_TRY(set_device(dev));
      cublasHandle_t h;
      cublasStatus_t st = cublasCreate(&h);
      if (st != CUBLAS_STATUS_SUCCESS) return cublas_error(st, dev, "cublasCreate");
      st = cublasSetStream(h, s);
      if (st != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(h);
        return cublas_error(st, dev, "cublasSetStream");
      }
      d.blas = h;
    }
    *out = d.blas;
    return SN_OK;
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "cannot lock the state of gpu(%d)", dev);
  }
}

#ifdef SN_HAVE_CUDNN
int cudnn(int dev, cudnnHandle_t *out) {
  cudaStream_t s;
  SN_TRY(stream(dev, &s));
  Dev &d = g_devs[dev];
  try {
    std::lock_guard<std::mutex> lock(d.mu);
    if (!d.dnn) {
      SN_TRY(set_device(dev));
      cudnnHandle_t h;
      cudnnStatus_t st = cudnnCreate(&h);
      if (st != CUDNN_STATUS_SUCCESS)
        return host->error(st == CUDNN_STATUS_ALLOC_FAILED ? SN_ERR_OOM : SN_ERR_DEVICE,
                           "cudnnCreate failed on gpu(%d): %s", dev, cudnnGetErrorString(st));
      st = cudnnSetStream(h, s);
      if (st != CUDNN_STATUS_SUCCESS) {
        cudnnDestroy(h);
        return host->error(SN_ERR_DEVICE, "cudnnSetStream failed on gpu(%d): %s", dev,
                           cudnnGetErrorString(st));
      }
      d.dnn = h;
    }
    *out = d.dnn;
    return SN_OK;
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "cannot lock the state of gpu(%d)", dev);
  }
}
#endif

}  // namespace snc

namespace {
// CUDA graph capture on the device's stream (the executor captures a whole
// forward or backward pass once and replays it per batch).
int api_graph_begin(int dev) {
  cudaStream_t s;
  SN_TRY(snc::stream(dev, &s));
  SNC_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), dev, "cudaStreamBeginCapture");
  return SN_OK;
}

int api_graph_end(int dev, void **out) {
  cudaStream_t s;
  cudaGraph_t g = nullptr;
  cudaGraphExec_t ge = nullptr;
  *out = nullptr;
  SN_TRY(snc::stream(dev, &s));
  SNC_CHECK(cudaStreamEndCapture(s, &g), dev, "cudaStreamEndCapture");
  cudaError_t e = cudaGraphInstantiate(&ge, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess) return snc::cuda_error(e, dev, "cudaGraphInstantiate");
  *out = ge;
  return SN_OK;
}

int api_graph_launch(int dev, void *graph) {
  cudaStream_t s;
  SN_TRY(snc::stream(dev, &s));
  SNC_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, s), dev, "cudaGraphLaunch");
  return SN_OK;
}

void api_graph_free(void *graph) {
  if (graph) cudaGraphExecDestroy((cudaGraphExec_t)graph);
}
}  // namespace

// The module's entry point (device.h: sn_gpu_init_fn).  Called once, by the
// loader, under its lock.
SNC_EXPORT int symnet_cuda_init(const sn_host_api *h, sn_gpu_api *out) {
  using namespace snc;
  if (!h || !h->error || !out) return SN_ERR_ARG;
  if (h->abi_version != SN_GPU_ABI_VERSION)
    return h->error(SN_ERR_UNSUPPORTED,
                    "the CUDA module has interface version %d, the engine %d (reinstall symnet)",
                    SN_GPU_ABI_VERSION, h->abi_version);
  host = h;
  memset(out, 0, sizeof *out);

  int n = 0;
  SN_TRY(api_device_count(&n));
  if (n <= 0)
    return h->error(SN_ERR_UNSUPPORTED, "no CUDA device is visible; check CUDA_VISIBLE_DEVICES");

  // The kernels are built for sm_90 (Hopper) with PTX for newer devices.
  int usable = 0;
  cudaDeviceProp first;
  memset(&first, 0, sizeof first);
  for (int d = 0; d < n; d++) {
    cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, d);
    if (e != cudaSuccess) return runtime_error(e, "cudaGetDeviceProperties");
    if (d == 0) first = prop;
    if (prop.major >= 9) usable++;
  }
  if (usable == 0)
    return h->error(SN_ERR_UNSUPPORTED,
                    "gpu(0) is a %s with compute capability %d.%d, but symnet's CUDA code is "
                    "built for compute capability 9.0 (Hopper) and newer",
                    first.name, first.major, first.minor);

  if (!g_devs) {
    Dev *devs = new (std::nothrow) Dev[n];
    if (!devs) return h->error(SN_ERR_OOM, "cannot allocate the GPU device table");
    g_devs = devs;
    g_ndev = n;
  }
  SN_TRY(alloc_init(n));

  if (h->register_kernels) {
    for (const register_fn *f = kFamilies; *f; f++) SN_TRY((*f)(h));
  }

  out->abi_version = SN_GPU_ABI_VERSION;
  out->device_count = api_device_count;
  out->alloc = api_alloc;
  out->free = api_free;
  out->copy = api_copy;
  out->memset0 = api_memset0;
  out->sync = api_sync;
  out->live_bytes = api_live_bytes;
  out->cached_bytes = api_cached_bytes;
  out->release_cached = api_release_cached;
  out->describe = api_describe;
  out->graph_begin = api_graph_begin;
  out->graph_end = api_graph_end;
  out->graph_launch = api_graph_launch;
  out->graph_free = api_graph_free;
  return SN_OK;
}
