// GPU kernels of Convolution and Deconvolution (ops/convolution.c) on cuDNN.
//
// Both ops are one cuDNN convolution problem between an "image" (the grid the
// kernel slides over: Convolution's data, Deconvolution's output) and an
// "act" (the window positions: Convolution's output, Deconvolution's data)
// with the filter (act channels, image channels / num_group, *kernel), as on
// the CPU:
//   Convolution   forward  = cudnnConvolutionForward (image -> act) + bias
//                 backward = BackwardData (act grad -> image grad),
//                            BackwardFilter, bias gradient;
//   Deconvolution forward  = BackwardData (data -> output) + bias
//                 backward = Forward (output grad -> data grad),
//                            BackwardFilter, bias gradient.
// Deconvolution's pad and adj come from target_shape when it is given
// (MXNet's rule, as in the CPU file); adj only lengthens the image, which
// cuDNN accepts because floor((y + 2p - dk) / s) + 1 is still the act size.
// 1-D problems are 2-D ones with a unit height.  Bias add and bias gradient
// are own kernels (nn_dense.cu; the gradient is a deterministic sum in
// double).  cudnn_off is accepted and ignored (there is no other GPU path).
//
// Algorithms are chosen once per (device, dtype, shapes, kernel, stride,
// pad, dilation, groups, tuning settings) and cached in a host-side map with
// the descriptors:
//   cudnn_tune = off, or SYMNET_CUDNN_AUTOTUNE=0 with cudnn_tune = None:
//     cuDNN's heuristics (cudnnGet*_v7), the first algorithm whose
//     workspace fits the limit;
//   otherwise (MXNet's default, limited_workspace, fastest): cudnnFind*Ex,
//     timing the algorithms on the call's own buffers, the fastest whose
//     workspace fits the limit.  It synchronises once per new shape, so
//     while the stream is being captured the heuristics are used instead.
// The limit is the op's `workspace` parameter in MB (MXNet's meaning), none
// for fastest; when no algorithm fits it, the heuristics' best is used.
// SYMNET_CUDNN_DETERMINISTIC=1 keeps only deterministic algorithms.  TF32
// is off (CUDNN_FMA_MATH) unless SYMNET_TF32=1.
//
// Workspace: the chosen algorithms' size (backward: the larger of data and
// filter), taken from c->ws when large enough, otherwise from the caching
// allocator for the duration of the call; algorithm search borrows up to
// the limit from the caching allocator, once per shape.  Bias gradient:
// see channel_bias_grad.
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "nn_common.cuh"

#ifdef SN_HAVE_CUDNN

namespace snn {

namespace {

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2 };
enum { TUNE_NONE, TUNE_OFF, TUNE_LIMITED, TUNE_FASTEST };
const char *const kTuneNames[] = {"None", "off", "limited_workspace", "fastest"};

struct ConvParam {
  const char *op;
  bool deconv;
  int nsp;
  int64_t k[3], s[3], d[3], p[3], adj[3], target[3];
  bool has_target;
  int64_t F, G;
  bool no_bias;
  int64_t workspace_mb;
  int tune;
};

int read_tuple(const sn_call *c, const ConvParam &cp, const char *name, int64_t dflt,
               int64_t minval, int64_t *dst) {
  sn_shape v = {0, {0}};
  char buf[128];
  SN_TRY(p_shape(c, name, &v));
  if (v.ndim == 0) {
    for (int i = 0; i < cp.nsp; i++) dst[i] = dflt;
    return SN_OK;
  }
  if (v.ndim != cp.nsp)
    return host->error(SN_ERR_ARG, "%s: %s %s must have %d entr%s like kernel", cp.op, name,
                       shape_str(&v, buf, sizeof buf), cp.nsp, cp.nsp == 1 ? "y" : "ies");
  for (int i = 0; i < cp.nsp; i++) {
    if (v.dim[i] < minval)
      return host->error(SN_ERR_ARG, "%s: %s %s must be >= %lld", cp.op, name,
                         shape_str(&v, buf, sizeof buf), (long long)minval);
    dst[i] = v.dim[i];
  }
  return SN_OK;
}

int conv_param(const sn_call *c, bool deconv, ConvParam *cp) {
  char buf[128];
  memset(cp, 0, sizeof *cp);
  cp->deconv = deconv;
  cp->op = deconv ? "Deconvolution" : "Convolution";
  sn_shape ks = {0, {0}};
  SN_TRY(p_shape(c, "kernel", &ks));
  if (ks.ndim < 1 || ks.ndim > 3)
    return host->error(SN_ERR_ARG, "%s: kernel %s must have 1, 2 or 3 entries", cp->op,
                       shape_str(&ks, buf, sizeof buf));
  cp->nsp = ks.ndim;
  for (int i = 0; i < cp->nsp; i++) {
    if (ks.dim[i] < 1)
      return host->error(SN_ERR_ARG, "%s: kernel %s must be positive", cp->op,
                         shape_str(&ks, buf, sizeof buf));
    cp->k[i] = ks.dim[i];
  }
  SN_TRY(read_tuple(c, *cp, "stride", 1, 1, cp->s));
  SN_TRY(read_tuple(c, *cp, "dilate", 1, 1, cp->d));
  SN_TRY(read_tuple(c, *cp, "pad", 0, 0, cp->p));
  if (deconv) {
    SN_TRY(read_tuple(c, *cp, "adj", 0, 0, cp->adj));
    SN_TRY(read_tuple(c, *cp, "target_shape", 0, 0, cp->target));
    for (int i = 0; i < cp->nsp; i++)
      if (cp->target[i] != 0) cp->has_target = true;
  }
  SN_TRY(p_int(c, "num_filter", &cp->F));
  SN_TRY(p_int(c, "num_group", &cp->G));
  SN_TRY(p_bool(c, "no_bias", &cp->no_bias));
  SN_TRY(p_int(c, "workspace", &cp->workspace_mb));
  SN_TRY(p_enum(c, "cudnn_tune", kTuneNames, 4, &cp->tune));
  if (cp->F < 1 || cp->G < 1 || cp->F % cp->G != 0)
    return host->error(SN_ERR_ARG, "%s: num_filter (%lld) must be a positive multiple of "
                       "num_group (%lld)", cp->op, (long long)cp->F, (long long)cp->G);
  if (cp->workspace_mb < 0) return host->error(SN_ERR_ARG, "%s: workspace must be >= 0", cp->op);
  return SN_OK;
}

int64_t dilated(const ConvParam &cp, int i) { return cp.d[i] * (cp.k[i] - 1) + 1; }

// Deconvolution pad for input size x in dim i (MXNet's InferPad).
int deconv_pad(const ConvParam &cp, int i, int64_t x, int64_t *pad) {
  if (!cp.has_target) {
    *pad = cp.p[i];
    return SN_OK;
  }
  int64_t t = cp.s[i] * (x - 1) + dilated(cp, i);
  if (t < cp.target[i])
    return host->error(SN_ERR_ARG, "Deconvolution: target_shape[%d] = %lld is too big for input "
                       "size %lld (at most %lld)", i, (long long)cp.target[i], (long long)x,
                       (long long)t);
  t -= cp.target[i];
  *pad = (t + 1) / 2;
  return SN_OK;
}

// ---- the cuDNN problem ----

struct Problem {
  cudnnDataType_t dt;
  int nbdims;  // 4 or 5
  int img[5], act[5], filt[5];
  int pad[3], stride[3], dil[3];
  int groups;
};

int to_int(const sn_call *c, int64_t v, int *out) {
  if (v < 0 || v > INT32_MAX)
    return host->error(SN_ERR_UNSUPPORTED, "%s: size %lld is too large for cuDNN", op_name(c),
                       (long long)v);
  *out = (int)v;
  return SN_OK;
}

// img/act: the engine shapes of the image and act tensors.
int make_problem(const sn_call *c, const ConvParam &cp, const sn_shape *img,
                 const sn_shape *act, const sn_shape *data, sn_dtype dtype, Problem *pr) {
  char a[96], b[96];
  memset(pr, 0, sizeof *pr);
  const int nd = cp.nsp + 2;
  if (img->ndim != nd || act->ndim != nd)
    return host->error(SN_ERR_SHAPE, "%s: shapes %s and %s do not match a %d-D kernel", cp.op,
                       shape_str(img, a, sizeof a), shape_str(act, b, sizeof b), cp.nsp);
  pr->dt = dtype == SN_F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  const int csp = cp.nsp == 1 ? 2 : cp.nsp;  // cuDNN spatial dims
  const int off = csp - cp.nsp;              // leading unit dims (1-D)
  pr->nbdims = csp + 2;
  pr->groups = (int)cp.G;
  for (int i = 0; i < 2; i++) {
    SN_TRY(to_int(c, img->dim[i], &pr->img[i]));
    SN_TRY(to_int(c, act->dim[i], &pr->act[i]));
  }
  SN_TRY(to_int(c, act->dim[1], &pr->filt[0]));
  SN_TRY(to_int(c, img->dim[1] / cp.G, &pr->filt[1]));
  for (int i = 0; i < csp; i++) {
    pr->img[2 + i] = pr->act[2 + i] = pr->filt[2 + i] = 1;
    pr->pad[i] = 0;
    pr->stride[i] = pr->dil[i] = 1;
  }
  for (int i = 0; i < cp.nsp; i++) {
    int64_t pad = cp.p[i];
    if (cp.deconv) SN_TRY(deconv_pad(cp, i, data->dim[2 + i], &pad));
    SN_TRY(to_int(c, img->dim[2 + i], &pr->img[2 + off + i]));
    SN_TRY(to_int(c, act->dim[2 + i], &pr->act[2 + off + i]));
    SN_TRY(to_int(c, cp.k[i], &pr->filt[2 + off + i]));
    SN_TRY(to_int(c, pad, &pr->pad[off + i]));
    SN_TRY(to_int(c, cp.s[i], &pr->stride[off + i]));
    SN_TRY(to_int(c, cp.d[i], &pr->dil[off + i]));
  }
  // cuDNN's legacy API counts elements in int
  int64_t ni = 1, na = 1, nf = 1;
  for (int i = 0; i < pr->nbdims; i++) {
    ni *= pr->img[i];
    na *= pr->act[i];
    nf *= pr->filt[i];
  }
  if (ni > INT32_MAX || na > INT32_MAX || nf > INT32_MAX)
    return host->error(SN_ERR_UNSUPPORTED, "%s: tensors of %s and %s are too large for cuDNN "
                       "(2^31 elements at most)", cp.op, shape_str(img, a, sizeof a),
                       shape_str(act, b, sizeof b));
  return SN_OK;
}

struct Settings {
  bool autotune, deterministic, tf32;
  size_t limit;
};

struct Entry {
  cudnnTensorDescriptor_t img = nullptr, act = nullptr;
  cudnnFilterDescriptor_t filt = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool have[3] = {false, false, false};
  int algo[3] = {0, 0, 0};
  size_t ws[3] = {0, 0, 0};
  cudnnMathType_t math[3] = {CUDNN_FMA_MATH, CUDNN_FMA_MATH, CUDNN_FMA_MATH};
};

struct Cache {
  std::mutex mu;
  std::unordered_map<std::string, Entry *> map;
};

Cache *cache_of(int dev) {
  static Cache *caches[64];
  static std::mutex mu;
  if (dev < 0 || dev >= 64) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (!caches[dev]) caches[dev] = new (std::nothrow) Cache;
  return caches[dev];
}

std::string key_of(const Problem &pr, const Settings &st) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%d|%d|%d|%d%d%d|", (int)pr.dt, pr.nbdims, pr.groups,
                   st.autotune, st.deterministic, st.tf32);
  std::string k(buf, n > 0 ? (size_t)n : 0);
  for (int i = 0; i < pr.nbdims; i++) {
    snprintf(buf, sizeof buf, "%d,%d,%d;", pr.img[i], pr.act[i], pr.filt[i]);
    k += buf;
  }
  for (int i = 0; i < pr.nbdims - 2; i++) {
    snprintf(buf, sizeof buf, "%d,%d,%d;", pr.pad[i], pr.stride[i], pr.dil[i]);
    k += buf;
  }
  snprintf(buf, sizeof buf, "%zu", st.limit);
  k += buf;
  return k;
}

void packed_strides(const int *dims, int nb, int *st) {
  st[nb - 1] = 1;
  for (int i = nb - 2; i >= 0; i--) st[i] = st[i + 1] * dims[i + 1];
}

void entry_destroy(Entry *e) {
  if (e->img) cudnnDestroyTensorDescriptor(e->img);
  if (e->act) cudnnDestroyTensorDescriptor(e->act);
  if (e->filt) cudnnDestroyFilterDescriptor(e->filt);
  if (e->conv) cudnnDestroyConvolutionDescriptor(e->conv);
  delete e;
}

int entry_make(const sn_call *c, const Problem &pr, Entry **out) {
  const int dev = c->dev.id;
  Entry *e = new (std::nothrow) Entry;
  if (!e) return host->error(SN_ERR_OOM, "%s: out of host memory", op_name(c));
  int st[5];
  cudnnStatus_t s = cudnnCreateTensorDescriptor(&e->img);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateTensorDescriptor(&e->act);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateFilterDescriptor(&e->filt);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnCreateConvolutionDescriptor(&e->conv);
  if (s == CUDNN_STATUS_SUCCESS) {
    packed_strides(pr.img, pr.nbdims, st);
    s = cudnnSetTensorNdDescriptor(e->img, pr.dt, pr.nbdims, pr.img, st);
  }
  if (s == CUDNN_STATUS_SUCCESS) {
    packed_strides(pr.act, pr.nbdims, st);
    s = cudnnSetTensorNdDescriptor(e->act, pr.dt, pr.nbdims, pr.act, st);
  }
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnSetFilterNdDescriptor(e->filt, pr.dt, CUDNN_TENSOR_NCHW, pr.nbdims, pr.filt);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnSetConvolutionNdDescriptor(e->conv, pr.nbdims - 2, pr.pad, pr.stride, pr.dil,
                                        CUDNN_CROSS_CORRELATION, pr.dt);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnSetConvolutionGroupCount(e->conv, pr.groups);
  if (s == CUDNN_STATUS_SUCCESS) {
    // cuDNN must agree that act is the output of img with this filter
    int od[5];
    s = cudnnGetConvolutionNdForwardOutputDim(e->conv, e->img, e->filt, pr.nbdims, od);
    if (s == CUDNN_STATUS_SUCCESS)
      for (int i = 0; i < pr.nbdims; i++)
        if (od[i] != pr.act[i]) {
          entry_destroy(e);
          return host->error(SN_ERR_INTERNAL, "%s: cuDNN computes output dim %d = %d, the "
                             "engine %d", op_name(c), i, od[i], pr.act[i]);
        }
  }
  if (s != CUDNN_STATUS_SUCCESS) {
    entry_destroy(e);
    return cudnn_error(s, dev, "cuDNN convolution descriptors");
  }
  *out = e;
  return SN_OK;
}

bool math_ok(const Settings &st, cudnnDataType_t dt, cudnnMathType_t m) {
  if (st.tf32 || dt != CUDNN_DATA_FLOAT) return true;
  return m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The math type to set before running an algorithm.
cudnnMathType_t run_math(const Settings &st, cudnnMathType_t found) {
  return st.tf32 ? found : CUDNN_FMA_MATH;
}

// Picks the first acceptable result of a perf list (sorted best first).
template <typename P>
bool pick(const P *perf, int n, const Settings &st, cudnnDataType_t dt, size_t cap, int *algo,
          size_t *ws, cudnnMathType_t *math) {
  for (int i = 0; i < n; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (perf[i].memory > cap) continue;
    if (st.deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (!math_ok(st, dt, perf[i].mathType)) continue;
    *algo = (int)perf[i].algo;
    *ws = perf[i].memory;
    *math = perf[i].mathType;
    return true;
  }
  return false;
}

// Buffers of one direction for cudnnFind*Ex.
struct Bufs {
  const void *img, *act, *w;  // inputs as the direction reads them
  void *out;                  // the direction's output
};

size_t ws_size(cudnnHandle_t h, const Entry *e, int dir, int algo) {
  size_t sz = 0;
  cudnnStatus_t s;
  if (dir == DIR_FWD)
    s = cudnnGetConvolutionForwardWorkspaceSize(h, e->img, e->filt, e->conv, e->act,
                                                (cudnnConvolutionFwdAlgo_t)algo, &sz);
  else if (dir == DIR_BWD_DATA)
    s = cudnnGetConvolutionBackwardDataWorkspaceSize(h, e->filt, e->act, e->conv, e->img,
                                                     (cudnnConvolutionBwdDataAlgo_t)algo, &sz);
  else
    s = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, e->img, e->act, e->conv, e->filt,
                                                       (cudnnConvolutionBwdFilterAlgo_t)algo, &sz);
  return s == CUDNN_STATUS_SUCCESS ? sz : SIZE_MAX;
}

const int kAlgoCount[3] = {CUDNN_CONVOLUTION_FWD_ALGO_COUNT, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT};
const char *const kDirNames[3] = {"forward", "backward data", "backward filter"};

int find_heuristic(const sn_call *c, cudnnHandle_t h, Entry *e, int dir, const Settings &st,
                   cudnnDataType_t dt, bool *found) {
  const int dev = c->dev.id;
  int n = 0;
  *found = false;
  if (dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    SNN_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(h, e->img, e->filt, e->conv, e->act,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
              dev, "cudnnGetConvolutionForwardAlgorithm_v7");
    *found = pick(perf, n, st, dt, st.limit, &e->algo[dir], &e->ws[dir], &e->math[dir]);
  } else if (dir == DIR_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    SNN_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, e->filt, e->act, e->conv, e->img,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                          &n, perf),
              dev, "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    *found = pick(perf, n, st, dt, st.limit, &e->algo[dir], &e->ws[dir], &e->math[dir]);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    SNN_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                  h, e->img, e->act, e->conv, e->filt, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
                  &n, perf),
              dev, "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    *found = pick(perf, n, st, dt, st.limit, &e->algo[dir], &e->ws[dir], &e->math[dir]);
  }
  if (*found) {
    // the heuristics' memory estimate may be 0 for "unknown": ask
    size_t sz = ws_size(h, e, dir, e->algo[dir]);
    if (sz != SIZE_MAX && sz > e->ws[dir]) e->ws[dir] = sz;
  }
  return SN_OK;
}

int find_timed(const sn_call *c, cudnnHandle_t h, Entry *e, int dir, const Settings &st,
               cudnnDataType_t dt, const Bufs &b, bool *found) {
  const int dev = c->dev.id;
  *found = false;
  // the largest workspace any algorithm within the limit needs
  size_t want = 0;
  for (int a = 0; a < kAlgoCount[dir]; a++) {
    size_t sz = ws_size(h, e, dir, a);
    if (sz != SIZE_MAX && sz <= st.limit && sz > want) want = sz;
  }
  void *ws = nullptr;
  size_t have = want;
  while (have > 0) {
    if (snc::dev_alloc(dev, have, &ws) == SN_OK) break;
    ws = nullptr;
    have /= 2;  // out of memory: search with less
  }
  int n = 0;
  cudnnStatus_t s;
  if (dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    s = cudnnFindConvolutionForwardAlgorithmEx(h, e->img, b.img, e->filt, b.w, e->conv, e->act,
                                               b.out, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf,
                                               ws, have);
    if (s == CUDNN_STATUS_SUCCESS)
      *found = pick(perf, n, st, dt, have, &e->algo[dir], &e->ws[dir], &e->math[dir]);
  } else if (dir == DIR_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    s = cudnnFindConvolutionBackwardDataAlgorithmEx(h, e->filt, b.w, e->act, b.act, e->conv,
                                                    e->img, b.out,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n,
                                                    perf, ws, have);
    if (s == CUDNN_STATUS_SUCCESS)
      *found = pick(perf, n, st, dt, have, &e->algo[dir], &e->ws[dir], &e->math[dir]);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    s = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, e->img, b.img, e->act, b.act, e->conv,
                                                      e->filt, b.out,
                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n,
                                                      perf, ws, have);
    if (s == CUDNN_STATUS_SUCCESS)
      *found = pick(perf, n, st, dt, have, &e->algo[dir], &e->ws[dir], &e->math[dir]);
  }
  if (ws) snc::dev_free(dev, ws, have);
  if (s != CUDNN_STATUS_SUCCESS && s != CUDNN_STATUS_NOT_SUPPORTED) {
    char what[96];
    snprintf(what, sizeof what, "cuDNN algorithm search (%s)", kDirNames[dir]);
    return cudnn_error(s, dev, what);
  }
  return SN_OK;
}

// Makes sure the entry has an algorithm for dir.
int ensure_algo(const sn_call *c, cudaStream_t stream, cudnnHandle_t h, Entry *e, int dir,
                const Settings &st, cudnnDataType_t dt, const Bufs &b) {
  if (e->have[dir]) return SN_OK;
  // the search runs with the math type the algorithms will run with
  SNN_CUDNN(cudnnSetConvolutionMathType(e->conv, st.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
            c->dev.id, "cudnnSetConvolutionMathType");
  bool found = false;
  if (st.autotune && !capturing(stream)) SN_TRY(find_timed(c, h, e, dir, st, dt, b, &found));
  if (!found) SN_TRY(find_heuristic(c, h, e, dir, st, dt, &found));
  if (!found && st.limit != SIZE_MAX) {
    // nothing fits the workspace limit: take the heuristics' best anyway
    Settings any = st;
    any.limit = SIZE_MAX;
    SN_TRY(find_heuristic(c, h, e, dir, any, dt, &found));
  }
  if (!found)
    return host->error(SN_ERR_UNSUPPORTED, "%s: cuDNN has no %s%s algorithm for this problem "
                       "within a workspace of %zu bytes", op_name(c),
                       st.deterministic ? "deterministic " : "", kDirNames[dir], st.limit);
  e->have[dir] = true;
  return SN_OK;
}

// Finds or makes the cache entry of a problem, with algorithms for the
// directions in dirs (bit mask), searching on the given buffers.
int lookup(const sn_call *c, cudaStream_t stream, cudnnHandle_t h, const Problem &pr,
           const Settings &st, unsigned dirs, const Bufs *bufs, Entry **out) {
  Cache *cache = cache_of(c->dev.id);
  if (!cache) return host->error(SN_ERR_OOM, "%s: cannot allocate the cuDNN cache", op_name(c));
  try {
    std::string key = key_of(pr, st);
    std::lock_guard<std::mutex> lock(cache->mu);
    Entry *e;
    auto it = cache->map.find(key);
    if (it != cache->map.end()) {
      e = it->second;
    } else {
      SN_TRY(entry_make(c, pr, &e));
      try {
        cache->map.emplace(key, e);
      } catch (...) {
        entry_destroy(e);
        throw;
      }
    }
    for (int d = 0; d < 3; d++)
      if (dirs & (1u << d)) SN_TRY(ensure_algo(c, stream, h, e, d, st, pr.dt, bufs[d]));
    *out = e;
    return SN_OK;
  } catch (const std::bad_alloc &) {
    return host->error(SN_ERR_OOM, "%s: out of host memory in the cuDNN cache", op_name(c));
  } catch (...) {
    return host->error(SN_ERR_INTERNAL, "%s: unexpected failure in the cuDNN cache", op_name(c));
  }
}

Settings settings_of(const ConvParam &cp) {
  static const bool autotune_env = env_on("SYMNET_CUDNN_AUTOTUNE", true);
  static const bool det = env_on("SYMNET_CUDNN_DETERMINISTIC", false);
  Settings st;
  st.autotune = cp.tune == TUNE_LIMITED || cp.tune == TUNE_FASTEST ||
                (cp.tune == TUNE_NONE && autotune_env);
  st.deterministic = det;
  st.tf32 = tf32_enabled();
  if (cp.tune == TUNE_FASTEST)
    st.limit = SIZE_MAX;
  else
    st.limit = (size_t)cp.workspace_mb << 20;
  return st;
}

// ---- running one direction ----

struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  const void *one(cudnnDataType_t dt) const { return dt == CUDNN_DATA_FLOAT ? (const void *)&f1 : (const void *)&d1; }
  const void *zero(cudnnDataType_t dt) const { return dt == CUDNN_DATA_FLOAT ? (const void *)&f0 : (const void *)&d0; }
};

int run_dir(const sn_call *c, cudnnHandle_t h, Entry *e, int dir, const Settings &st,
            cudnnDataType_t dt, const Bufs &b, void *ws, size_t ws_bytes) {
  const int dev = c->dev.id;
  Scalars k;
  SNN_CUDNN(cudnnSetConvolutionMathType(e->conv, run_math(st, e->math[dir])), dev,
            "cudnnSetConvolutionMathType");
  if (dir == DIR_FWD)
    SNN_CUDNN(cudnnConvolutionForward(h, k.one(dt), e->img, b.img, e->filt, b.w, e->conv,
                                      (cudnnConvolutionFwdAlgo_t)e->algo[dir], ws, ws_bytes,
                                      k.zero(dt), e->act, b.out),
              dev, "cudnnConvolutionForward");
  else if (dir == DIR_BWD_DATA)
    SNN_CUDNN(cudnnConvolutionBackwardData(h, k.one(dt), e->filt, b.w, e->act, b.act, e->conv,
                                           (cudnnConvolutionBwdDataAlgo_t)e->algo[dir], ws,
                                           ws_bytes, k.zero(dt), e->img, b.out),
              dev, "cudnnConvolutionBackwardData");
  else
    SNN_CUDNN(cudnnConvolutionBackwardFilter(h, k.one(dt), e->img, b.img, e->act, b.act, e->conv,
                                             (cudnnConvolutionBwdFilterAlgo_t)e->algo[dir], ws,
                                             ws_bytes, k.zero(dt), e->filt, b.out),
              dev, "cudnnConvolutionBackwardFilter");
  return SN_OK;
}

int64_t spatial(const sn_shape *s) {
  int64_t n = 1;
  for (int i = 2; i < s->ndim; i++) n *= s->dim[i];
  return n;
}

bool empty(const sn_shape *s) {
  for (int i = 0; i < s->ndim; i++)
    if (s->dim[i] == 0) return true;
  return false;
}

// Runs the directions in dirs (bit mask) with their buffers.
int run_dirs(const sn_call *c, cudaStream_t s, const ConvParam &cp, const Problem &pr,
             unsigned dirs, const Bufs *b) {
  cudnnHandle_t h;
  SN_TRY(snc::cudnn(c->dev.id, &h));
  const Settings st = settings_of(cp);
  Entry *e = nullptr;
  SN_TRY(lookup(c, s, h, pr, st, dirs, b, &e));
  size_t need = 0;
  for (int d = 0; d < 3; d++)
    if ((dirs & (1u << d)) && e->ws[d] > need) need = e->ws[d];
  Scratch sc;
  SN_TRY(scratch_get(c, s, need, &sc));
  for (int d = 0; d < 3; d++)
    if (dirs & (1u << d)) SN_TRY(run_dir(c, h, e, d, st, pr.dt, b[d], sc.ptr, need));
  return SN_OK;
}

int check_dtype(const sn_call *c, const ConvParam &cp) {
  const sn_dtype dt = c->in[0]->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return host->error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 or float64)", cp.op,
                       dtype_name(dt));
  return SN_OK;
}

// ---- the four kernels ----

int conv_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  ConvParam cp;
  SN_TRY(conv_param(c, false, &cp));
  SN_TRY(check_dtype(c, cp));
  const sn_shape *img = &c->in[0]->shape, *act = &c->out[0]->shape;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (empty(act)) return SN_OK;
  if (empty(img)) return zero_tensor(c, s, c->out[0]);
  Problem pr;
  SN_TRY(make_problem(c, cp, img, act, img, c->in[0]->dtype, &pr));
  Bufs b[3] = {};
  b[DIR_FWD] = Bufs{snc::data(c->in[0]), nullptr, snc::data(c->in[1]), snc::data(c->out[0])};
  SN_TRY(run_dirs(c, s, cp, pr, 1u << DIR_FWD, b));
  if (!cp.no_bias)
    SN_TRY(add_channel_bias(c, s, c->in[0]->dtype, snc::data(c->out[0]), act->dim[0], act->dim[1],
                            spatial(act), snc::data(c->in[2])));
  return SN_OK;
}

int conv_backward(sn_call *c) {
  ConvParam cp;
  SN_TRY(conv_param(c, false, &cp));
  SN_TRY(check_dtype(c, cp));
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "Convolution: backward needs the output gradient");
  const bool need_dx = wants(c, 0), need_dw = wants(c, 1);
  const bool need_db = !cp.no_bias && c->nin > 2 && wants(c, 2);
  const sn_shape *img = &c->in[0]->shape, *act = &c->ograd[0]->shape;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_dtype dt = c->in[0]->dtype;
  if (need_db)
    SN_TRY(channel_bias_grad(c, s, dt, snc::data(c->ograd[0]), act->dim[0], act->dim[1],
                             spatial(act), snc::data(c->igrad[2])));
  if (!need_dx && !need_dw) return SN_OK;
  if (empty(img) || empty(act)) {
    if (need_dx) SN_TRY(zero_tensor(c, s, c->igrad[0]));
    if (need_dw) SN_TRY(zero_tensor(c, s, c->igrad[1]));
    return SN_OK;
  }
  Problem pr;
  SN_TRY(make_problem(c, cp, img, act, img, dt, &pr));
  Bufs b[3] = {};
  unsigned dirs = 0;
  if (need_dx) {
    dirs |= 1u << DIR_BWD_DATA;
    b[DIR_BWD_DATA] = Bufs{nullptr, snc::data(c->ograd[0]), snc::data(c->in[1]),
                           snc::data(c->igrad[0])};
  }
  if (need_dw) {
    dirs |= 1u << DIR_BWD_FILTER;
    b[DIR_BWD_FILTER] = Bufs{snc::data(c->in[0]), snc::data(c->ograd[0]), nullptr,
                             snc::data(c->igrad[1])};
  }
  return run_dirs(c, s, cp, pr, dirs, b);
}

int deconv_forward(sn_call *c) {
  if (!wants(c, 0)) return SN_OK;
  ConvParam cp;
  SN_TRY(conv_param(c, true, &cp));
  SN_TRY(check_dtype(c, cp));
  const sn_shape *act = &c->in[0]->shape, *img = &c->out[0]->shape;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (empty(img)) return SN_OK;
  const sn_dtype dt = c->in[0]->dtype;
  if (empty(act)) {
    SN_TRY(zero_tensor(c, s, c->out[0]));
  } else {
    Problem pr;
    SN_TRY(make_problem(c, cp, img, act, act, dt, &pr));
    Bufs b[3] = {};
    b[DIR_BWD_DATA] = Bufs{nullptr, snc::data(c->in[0]), snc::data(c->in[1]),
                           snc::data(c->out[0])};
    SN_TRY(run_dirs(c, s, cp, pr, 1u << DIR_BWD_DATA, b));
  }
  if (!cp.no_bias)
    SN_TRY(add_channel_bias(c, s, dt, snc::data(c->out[0]), img->dim[0], img->dim[1],
                            spatial(img), snc::data(c->in[2])));
  return SN_OK;
}

int deconv_backward(sn_call *c) {
  ConvParam cp;
  SN_TRY(conv_param(c, true, &cp));
  SN_TRY(check_dtype(c, cp));
  if (!c->ograd || !c->ograd[0])
    return host->error(SN_ERR_ARG, "Deconvolution: backward needs the output gradient");
  const bool need_dx = wants(c, 0), need_dw = wants(c, 1);
  const bool need_db = !cp.no_bias && c->nin > 2 && wants(c, 2);
  const sn_shape *act = &c->in[0]->shape, *img = &c->ograd[0]->shape;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_dtype dt = c->in[0]->dtype;
  if (need_db)
    SN_TRY(channel_bias_grad(c, s, dt, snc::data(c->ograd[0]), img->dim[0], img->dim[1],
                             spatial(img), snc::data(c->igrad[2])));
  if (!need_dx && !need_dw) return SN_OK;
  if (empty(img) || empty(act)) {
    if (need_dx) SN_TRY(zero_tensor(c, s, c->igrad[0]));
    if (need_dw) SN_TRY(zero_tensor(c, s, c->igrad[1]));
    return SN_OK;
  }
  Problem pr;
  SN_TRY(make_problem(c, cp, img, act, act, dt, &pr));
  Bufs b[3] = {};
  unsigned dirs = 0;
  if (need_dx) {
    dirs |= 1u << DIR_FWD;
    b[DIR_FWD] = Bufs{snc::data(c->ograd[0]), nullptr, snc::data(c->in[1]),
                      snc::data(c->igrad[0])};
  }
  if (need_dw) {
    dirs |= 1u << DIR_BWD_FILTER;
    b[DIR_BWD_FILTER] = Bufs{snc::data(c->ograd[0]), snc::data(c->in[0]), nullptr,
                             snc::data(c->igrad[1])};
  }
  return run_dirs(c, s, cp, pr, dirs, b);
}

}  // namespace

}  // namespace snn

#endif  // SN_HAVE_CUDNN

namespace snc {

// Without cuDNN the convolution ops have no GPU kernels (the executor then
// reports them at bind time).
int register_nn_conv(const sn_host_api *h) {
#ifdef SN_HAVE_CUDNN
  SN_TRY(h->register_kernels("Convolution", snn::conv_forward, snn::conv_backward));
  SN_TRY(h->register_kernels("Deconvolution", snn::deconv_forward, snn::deconv_backward));
#else
  (void)h;
#endif
  return SN_OK;
}

}  // namespace snc
