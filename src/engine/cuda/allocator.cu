// Caching device allocator, one pool per GPU.
//
// cudaMalloc and cudaFree are slow and cudaFree synchronises the device, so
// freed blocks are kept in a per-device cache and handed to the next request
// of the same size class:
//   - up to 1 MiB: sizes rounded up to a multiple of 512 bytes;
//   - larger: eight classes per power of two (2^k, 1.125 * 2^k, ...,
//     1.875 * 2^k), so at most 12.5% of a block is slack.
// A freed block may be reused at once: all work on a device is ordered on its
// one stream (common.cuh).
//
// Counters are exact: live bytes is the sum of the sizes the engine asked for
// and has not freed; cached bytes is the sum of the (rounded) blocks held in
// the cache.  release_cached() gives the cache back to the driver (the host
// calls it through sn_gpu()->release_cached).  When cudaMalloc
// fails, the cache of that device is released and the allocation retried
// once before SN_ERR_OOM is reported.
//
// SYMNET_CUDA_CACHE=0 turns caching off (every free goes to cudaFree), for
// bisecting memory errors.
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#include "common.cuh"

namespace snc {

namespace {

const size_t kSmallLimit = (size_t)1 << 20;
const size_t kSmallStep = 512;

struct Pool {
  std::mutex mu;
  std::unordered_map<void *, std::pair<size_t, size_t> > live;  // ptr -> (block, requested)
  std::multimap<size_t, void *> cached;                          // block size -> ptr
  int64_t live_bytes = 0;
  int64_t cached_bytes = 0;
  int64_t peak_live = 0;
};

Pool *g_pools = nullptr;  // never freed: nothing may run CUDA at exit
int g_npools = 0;
bool g_caching = true;

// Size class of a request, 0 when it cannot be represented.
size_t size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  size_t step;
  if (bytes <= kSmallLimit) {
    step = kSmallStep;
  } else {
    int lg = 63 - __builtin_clzll((unsigned long long)bytes);  // 2^lg <= bytes
    step = (size_t)1 << (lg - 3);
  }
  if (bytes > SIZE_MAX - (step - 1)) return 0;
  return (bytes + step - 1) / step * step;
}

// Frees every cached block of a pool (lock held).
int release_locked(Pool &p, int dev) {
  if (p.cached.empty()) return SN_OK;
  int rc = set_device(dev);
  if (rc != SN_OK) return rc;
  cudaError_t first = cudaSuccess;
  for (auto &kv : p.cached) {
    cudaError_t e = cudaFree(kv.second);
    if (e != cudaSuccess && first == cudaSuccess) first = e;
    p.cached_bytes -= (int64_t)kv.first;
  }
  p.cached.clear();
  if (first != cudaSuccess) return cuda_error(first, dev, "cudaFree (releasing the cache)");
  return SN_OK;
}

int check_dev(int dev) {
  if (dev < 0 || dev >= g_npools || !g_pools)
    return host->error(SN_ERR_ARG, "gpu(%d) does not exist (%d CUDA device%s)", dev, g_npools,
                       g_npools == 1 ? "" : "s");
  return SN_OK;
}

}  // namespace

void format_bytes(double b, char *buf, size_t n) {
  const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, n, "%.0f bytes", b);
  else
    snprintf(buf, n, "%.1f %s", b, unit[u]);
}

int alloc_init(int ndev) {
  if (g_pools) return SN_OK;
  const char *e = getenv("SYMNET_CUDA_CACHE");
  g_caching = !(e && (!strcmp(e, "0") || !strcmp(e, "false") || !strcmp(e, "FALSE")));
  Pool *p = new (std::nothrow) Pool[ndev > 0 ? ndev : 1];
  if (!p) return host->error(SN_ERR_OOM, "cannot allocate the GPU memory pools");
  g_pools = p;
  g_npools = ndev;
  return SN_OK;
}

int dev_alloc(int dev, size_t bytes, void **out) {
  *out = nullptr;
  int rc = check_dev(dev);
  if (rc != SN_OK) return rc;
  size_t cls = size_class(bytes);
  if (cls == 0)
    return host->error(SN_ERR_OOM, "cannot allocate %zu bytes on gpu(%d): size too large", bytes,
                       dev);
  Pool &p = g_pools[dev];
  try {
    std::lock_guard<std::mutex> lock(p.mu);
    void *ptr = nullptr;
    auto it = p.cached.find(cls);
    if (it != p.cached.end()) {
      ptr = it->second;
      p.cached.erase(it);
      p.cached_bytes -= (int64_t)cls;
    } else {
      rc = set_device(dev);
      if (rc != SN_OK) return rc;
      cudaError_t e = cudaMalloc(&ptr, cls);
      if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();  // clear it before retrying
        int64_t had = p.cached_bytes;
        rc = release_locked(p, dev);
        if (rc != SN_OK) return rc;
        e = cudaMalloc(&ptr, cls);
        if (e == cudaErrorMemoryAllocation) {
          (void)cudaGetLastError();
          size_t fr = 0, tot = 0;
          cudaMemGetInfo(&fr, &tot);
          char a[32], b[32], c[32], d[32], f[32];
          format_bytes((double)bytes, a, sizeof a);
          format_bytes((double)p.live_bytes, b, sizeof b);
          format_bytes((double)had, c, sizeof c);
          format_bytes((double)fr, d, sizeof d);
          format_bytes((double)tot, f, sizeof f);
          return host->error(SN_ERR_OOM,
                             "out of GPU memory on gpu(%d): cannot allocate %s (symnet holds %s "
                             "in live arrays; %s of cached blocks were released; the device "
                             "has %s free of %s)",
                             dev, a, b, c, d, f);
        }
      }
      if (e != cudaSuccess) return cuda_error(e, dev, "cudaMalloc");
    }
    try {
      p.live.emplace(ptr, std::make_pair(cls, bytes));
    } catch (...) {
      if (set_device(dev) == SN_OK) cudaFree(ptr);
      throw;
    }
    p.live_bytes += (int64_t)bytes;
    if (p.live_bytes > p.peak_live) p.peak_live = p.live_bytes;
    *out = ptr;
    return SN_OK;
  } catch (const std::bad_alloc &) {
    return host->error(SN_ERR_OOM, "out of host memory in the GPU allocator of gpu(%d)", dev);
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "unexpected failure in the GPU allocator of gpu(%d)", dev);
  }
}

int dev_free(int dev, void *ptr, size_t bytes) {
  (void)bytes;  // the size recorded at allocation is authoritative
  if (!ptr) return SN_OK;
  int rc = check_dev(dev);
  if (rc != SN_OK) return rc;
  Pool &p = g_pools[dev];
  try {
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.live.find(ptr);
    if (it == p.live.end())
      return host->error(SN_ERR_INTERNAL,
                         "GPU free of %p on gpu(%d): not a block allocated by symnet there", ptr,
                         dev);
    size_t cls = it->second.first, req = it->second.second;
    p.live.erase(it);
    p.live_bytes -= (int64_t)req;
    if (g_caching) {
      p.cached.emplace(cls, ptr);
      p.cached_bytes += (int64_t)cls;
      return SN_OK;
    }
    rc = set_device(dev);
    if (rc != SN_OK) return rc;
    SNC_CHECK(cudaFree(ptr), dev, "cudaFree");
    return SN_OK;
  } catch (const std::bad_alloc &) {
    // The block could not be cached: give it back to the driver instead.
    if (set_device(dev) == SN_OK) cudaFree(ptr);
    return SN_OK;
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "unexpected failure in the GPU allocator of gpu(%d)", dev);
  }
}

int64_t dev_live_bytes(int dev) {
  if (!g_pools) return 0;
  if (dev < 0) {
    int64_t s = 0;
    for (int d = 0; d < g_npools; d++) s += dev_live_bytes(d);
    return s;
  }
  if (dev >= g_npools) return 0;
  try {
    std::lock_guard<std::mutex> lock(g_pools[dev].mu);
    return g_pools[dev].live_bytes;
  } catch (...) {
    return 0;
  }
}

int64_t dev_cached_bytes(int dev) {
  if (!g_pools) return 0;
  if (dev < 0) {
    int64_t s = 0;
    for (int d = 0; d < g_npools; d++) s += dev_cached_bytes(d);
    return s;
  }
  if (dev >= g_npools) return 0;
  try {
    std::lock_guard<std::mutex> lock(g_pools[dev].mu);
    return g_pools[dev].cached_bytes;
  } catch (...) {
    return 0;
  }
}

// dev < 0: every device.
int dev_release_cached(int dev) {
  if (!g_pools) return SN_OK;
  if (dev < 0) {
    int rc = SN_OK;
    for (int d = 0; d < g_npools; d++) {
      int r = dev_release_cached(d);
      if (r != SN_OK && rc == SN_OK) rc = r;
    }
    return rc;
  }
  int rc = check_dev(dev);
  if (rc != SN_OK) return rc;
  try {
    std::lock_guard<std::mutex> lock(g_pools[dev].mu);
    return release_locked(g_pools[dev], dev);
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "unexpected failure releasing the GPU cache of gpu(%d)",
                       dev);
  }
}

}  // namespace snc
