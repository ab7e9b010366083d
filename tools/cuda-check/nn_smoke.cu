// GPU smoke test of the neural-network op kernels (src/engine/cuda/nn_*.cu)
// without R: every case runs the op's CPU kernel and its GPU kernel on the
// same random inputs, through sn_call structs built by hand, and compares
// every output (hidden outputs and updated aux states included) and, for
// backward, every input gradient.  The CPU kernels are the reference: the
// GPU kernels must reproduce their semantics.  Prints PASS/FAIL per case.
// Exit status: 0 all passed, 1 a failure, 2 no GPU (the loader's message is
// printed).
//
// Build (from the repository root; the engine is compiled as plain C without
// BLAS or zlib, so only gcc and the CUDA toolkit are needed):
//   mkdir -p /tmp/nn_smoke && for f in src/engine/*.c src/engine/ops/*.c; do
//     gcc -std=gnu11 -O2 -fopenmp -Isrc/engine -c $f -o /tmp/nn_smoke/$(basename $f .c).o || break
//   done
//   nvcc -O2 -std=c++17 -Isrc/engine tools/cuda-check/nn_smoke.cu /tmp/nn_smoke/*.o \
//     -Xcompiler -fopenmp -ldl -lpthread -lm -o /tmp/nn_smoke/nn_smoke
// Run:
//   /tmp/nn_smoke/nn_smoke PATH/TO/symnet_cuda.so [filter]
// (symnet_cuda.so: src/ after a build, or the installed package's
// libs/cuda/).  `filter` keeps the cases whose name contains it.
// SYMNET_CUDNN_DETERMINISTIC / SYMNET_TF32 / SYMNET_CUDNN_AUTOTUNE apply.
// NN_SMOKE_SELFTEST=1 runs the CPU kernels on both sides (checks the harness
// and the cases where there is no GPU; every case must then pass).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

extern "C" {
#include "device.h"
#include "error.h"
#include "op.h"
#include "tensor.h"
}

namespace {

// ---- random values ----
uint64_t g_rng = 0x1234567ull;
double urand() {  // [0, 1)
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

enum Gen {
  G_UNIFORM,  // U(-1, 1)
  G_POS,      // U(0.5, 1.5)
  G_LABEL,      // integer class in [0, k) (k = Case::k)
  G_LABEL_IGN,  // as G_LABEL, about one in five is the ignore label -1
  G_LENGTH,   // integer in [0, k]
  G_PROB,     // U(0, 1)
};

struct Case {
  std::string name;
  const char *op;
  std::vector<std::pair<std::string, std::string> > params;
  std::vector<sn_shape> shapes;  // shapes of leading inputs; the rest inferred
  std::vector<int> gens;         // generator per input (default uniform)
  int64_t k = 0;                 // classes / max length for the label generators
  int is_train = 1;
  bool backward = true;
  bool pass_ograd = false;       // loss ops: give the output gradient anyway
  bool req_add = false;          // SN_OP_HANDLES_ADD ops: test req = add
  bool gpu_ws = false;           // give the GPU call a large workspace
  double rtol32 = 2e-4, atol32 = 2e-5;
};

sn_shape shp(std::initializer_list<int64_t> d) {
  sn_shape s;
  memset(&s, 0, sizeof s);
  s.ndim = (int)d.size();
  int i = 0;
  for (int64_t v : d) s.dim[i++] = v;
  return s;
}

const sn_device kCpu = {SN_DEV_CPU, 0};
sn_device kGpu = {SN_DEV_GPU, 0};
// NN_SMOKE_SELFTEST=1: the "GPU" side runs the CPU kernels on the CPU, to
// check the harness and the cases on a machine without a GPU.
bool g_self = false;

sn_kernel fwd_of(const sn_op *op) { return g_self ? op->forward_cpu : op->forward_gpu; }
sn_kernel bwd_of(const sn_op *op) { return g_self ? op->backward_cpu : op->backward_gpu; }
int gpu_sync() { return g_self ? SN_OK : sn_gpu()->sync(0); }

int g_fail = 0, g_pass = 0;

void fill(sn_tensor *t, int gen, int64_t k) {
  const int64_t n = sn_tensor_size(t);
  for (int64_t i = 0; i < n; i++) {
    double v;
    switch (gen) {
      case G_POS: v = 0.5 + urand(); break;
      case G_LABEL: v = floor(urand() * (double)k); break;
      case G_LABEL_IGN: v = urand() < 0.2 ? -1.0 : floor(urand() * (double)k); break;
      case G_LENGTH: v = floor(urand() * (double)(k + 1)); break;
      case G_PROB: v = urand(); break;
      default: v = 2.0 * urand() - 1.0; break;
    }
    if (t->dtype == SN_F32)
      ((float *)sn_tensor_data(t))[i] = (float)v;
    else
      ((double *)sn_tensor_data(t))[i] = v;
  }
}

double at(const sn_tensor *t, int64_t i) {
  return t->dtype == SN_F32 ? (double)((const float *)sn_tensor_data(t))[i]
                            : ((const double *)sn_tensor_data(t))[i];
}

// Compares a CPU tensor with a GPU tensor; returns true when close.
bool compare(const char *what, const sn_tensor *cpu, const sn_tensor *gpu, double rtol,
             double atol, std::string *msg) {
  sn_tensor back;
  memset(&back, 0, sizeof back);
  if (sn_tensor_clone(&back, gpu, gpu->dtype, kCpu) != SN_OK) {
    *msg += std::string(what) + ": copy back failed: " + sn_last_error() + "; ";
    return false;
  }
  const int64_t n = sn_tensor_size(cpu);
  double worst = 0;
  int64_t wi = -1;
  for (int64_t i = 0; i < n; i++) {
    const double a = at(cpu, i), b = at(&back, i);
    if (a != a && b != b) continue;
    if (a == b) continue;
    const double err = fabs(a - b), lim = atol + rtol * fabs(a);
    if (!(err <= lim) && (wi < 0 || err / (lim > 0 ? lim : 1) > worst)) {
      worst = err / (lim > 0 ? lim : 1);
      wi = i;
    }
  }
  bool ok = wi < 0;
  if (!ok) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s[%lld]: cpu %.9g gpu %.9g; ", what, (long long)wi, at(cpu, wi),
             at(&back, wi));
    *msg += buf;
  }
  sn_tensor_release(&back);
  return ok;
}

struct Side {
  std::vector<sn_tensor> in, aux, out, og, ig;
  void *ws = nullptr;
  size_t ws_bytes = 0;
  bool ws_gpu = false;
};

void release(Side &s) {
  for (auto *v : {&s.in, &s.aux, &s.out, &s.og, &s.ig})
    for (auto &t : *v) sn_tensor_release(&t);
  if (s.ws && !s.ws_gpu) sn_host_free(s.ws, s.ws_bytes);
  if (s.ws && s.ws_gpu) {
    if (g_self)
      sn_host_free(s.ws, s.ws_bytes);
    else
      sn_gpu()->free(0, s.ws, s.ws_bytes);
  }
}

int clone_to(std::vector<sn_tensor> &dst, const std::vector<sn_tensor> &src, sn_device dev) {
  dst.resize(src.size());
  for (size_t i = 0; i < src.size(); i++) {
    memset(&dst[i], 0, sizeof dst[i]);
    if (!src[i].st) continue;
    SN_TRY(sn_tensor_clone(&dst[i], &src[i], src[i].dtype, dev));
  }
  return SN_OK;
}

void run_case(const Case &cs, sn_dtype dt, const char *filter) {
  std::string label = cs.name + (dt == SN_F32 ? " float32" : " float64");
  if (filter && !strstr(label.c_str(), filter)) return;
  const double rtol = dt == SN_F32 ? cs.rtol32 : 1e-9, atol = dt == SN_F32 ? cs.atol32 : 1e-11;
  std::string msg;
  bool ok = true;
  Side C, G;
  const sn_op *op = sn_op_find(cs.op);
  sn_params p;
  std::vector<const char *> keys, vals;
  const char *inames[SN_MAX_IO], *onames[SN_MAX_IO];
  int nin = 0, naux = 0, nout = 0, nvis = 0;
  std::vector<sn_shape> ishape, oshape, ashape;
  std::vector<int> req;
  sn_call cc, gc;
  auto fail = [&](const std::string &m) {
    msg += m;
    ok = false;
  };
  if (!op) {
    fail("no such op");
    goto done;
  }
  if (!fwd_of(op)) {
    fail("no GPU forward kernel registered");
    goto done;
  }
  for (auto &kv : cs.params) {
    keys.push_back(kv.first.c_str());
    vals.push_back(kv.second.c_str());
  }
  if (sn_params_parse(op, (int)keys.size(), keys.data(), vals.data(), &p) != SN_OK) {
    fail(std::string("params: ") + sn_last_error());
    goto done;
  }
  nin = sn_op_inputs(op, &p, inames, SN_MAX_IO);
  naux = sn_op_num_aux(op);
  nout = sn_op_outputs(op, &p, onames, SN_MAX_IO);
  nvis = sn_op_num_visible(op, &p);
  ishape.assign(nin, sn_shape_unknown());
  ashape.assign(naux > 0 ? naux : 1, sn_shape_unknown());
  oshape.assign(nout, sn_shape_unknown());
  for (size_t i = 0; i < cs.shapes.size() && (int)i < nin; i++) ishape[i] = cs.shapes[i];
  if (op->infer_shape(&p, ishape.data(), nin, oshape.data(), nout, ashape.data(), naux) != SN_OK) {
    fail(std::string("infer_shape: ") + sn_last_error());
    goto done;
  }
  for (int i = 0; i < nin; i++)
    if (!sn_shape_known(&ishape[i])) {
      fail(std::string("input shape unknown: ") + inames[i]);
      goto done;
    }
  // inputs, aux, outputs on the CPU
  C.in.resize(nin);
  for (int i = 0; i < nin; i++) {
    memset(&C.in[i], 0, sizeof C.in[i]);
    if (sn_tensor_alloc(&C.in[i], dt, &ishape[i], kCpu) != SN_OK) {
      fail("alloc");
      goto done;
    }
    fill(&C.in[i], i < (int)cs.gens.size() ? cs.gens[i] : G_UNIFORM, cs.k);
  }
  C.aux.resize(naux);
  for (int i = 0; i < naux; i++) {
    memset(&C.aux[i], 0, sizeof C.aux[i]);
    sn_tensor_alloc(&C.aux[i], dt, &ashape[i], kCpu);
    fill(&C.aux[i], i == 1 ? G_POS : G_UNIFORM, 0);  // moving_var positive
  }
  C.out.resize(nout);
  for (int i = 0; i < nout; i++) {
    memset(&C.out[i], 0, sizeof C.out[i]);
    // softmax's dtype parameter may change the output type
    sn_dtype odt = dt;
    if (op->infer_type) {
      std::vector<sn_dtype> it(nin, dt), ot(nout, SN_DTYPE_UNKNOWN);
      if (op->infer_type(&p, it.data(), nin, ot.data(), nout) == SN_OK &&
          ot[i] != SN_DTYPE_UNKNOWN)
        odt = ot[i];
    }
    if (!sn_shape_known(&oshape[i]) || sn_tensor_zeros(&C.out[i], odt, &oshape[i], kCpu) != SN_OK) {
      fail("output alloc");
      goto done;
    }
  }
  if (clone_to(G.in, C.in, kGpu) != SN_OK || clone_to(G.aux, C.aux, kGpu) != SN_OK ||
      clone_to(G.out, C.out, kGpu) != SN_OK) {
    fail(std::string("GPU copies: ") + sn_last_error());
    goto done;
  }
  if (op->workspace) {
    size_t b1 = 0, b2 = 0;
    op->workspace(&p, ishape.data(), nin, oshape.data(), nout, 0, &b1);
    op->workspace(&p, ishape.data(), nin, oshape.data(), nout, 1, &b2);
    C.ws_bytes = b1 > b2 ? b1 : b2;
    if (C.ws_bytes) C.ws = sn_host_alloc(C.ws_bytes);
  }
  if (cs.gpu_ws) {
    G.ws_bytes = (size_t)64 << 20;
    if (g_self)
      G.ws = sn_host_alloc(G.ws_bytes);
    else if (sn_gpu()->alloc(0, G.ws_bytes, &G.ws) != SN_OK)
      G.ws = nullptr;
    G.ws_gpu = true;
  }
  req.assign(SN_MAX_IO, SN_REQ_WRITE);
  {
    std::vector<sn_tensor *> ci, ca, co, gi, ga, go;
    for (auto &t : C.in) ci.push_back(&t);
    for (auto &t : C.aux) ca.push_back(&t);
    for (auto &t : C.out) co.push_back(&t);
    for (auto &t : G.in) gi.push_back(&t);
    for (auto &t : G.aux) ga.push_back(&t);
    for (auto &t : G.out) go.push_back(&t);
    const uint64_t seed = 0xC0FFEEull + (uint64_t)g_rng;
    memset(&cc, 0, sizeof cc);
    cc.p = &p;
    cc.in = ci.data();
    cc.nin = nin;
    cc.out = co.data();
    cc.nout = nout;
    cc.aux = ca.data();
    cc.naux = naux;
    cc.req = req.data();
    cc.is_train = cs.is_train;
    cc.ws = C.ws;
    cc.ws_bytes = C.ws_bytes;
    cc.seed = seed;
    cc.dev = kCpu;
    gc = cc;
    gc.in = gi.data();
    gc.out = go.data();
    gc.aux = ga.data();
    gc.ws = G.ws;
    gc.ws_bytes = G.ws ? G.ws_bytes : 0;
    gc.dev = kGpu;
    if (op->forward_cpu(&cc) != SN_OK) {
      fail(std::string("CPU forward: ") + sn_last_error());
      goto done;
    }
    if (fwd_of(op)(&gc) != SN_OK || gpu_sync() != SN_OK) {
      fail(std::string("GPU forward: ") + sn_last_error());
      goto done;
    }
    for (int i = 0; i < nout; i++) {
      std::string w = std::string("out:") + onames[i];
      if (!compare(w.c_str(), &C.out[i], &G.out[i], rtol, atol, &msg)) ok = false;
    }
    for (int i = 0; i < naux; i++)
      if (!compare("aux", &C.aux[i], &G.aux[i], rtol, atol, &msg)) ok = false;
    if (!cs.backward || !op->backward_cpu) goto done;
    if (!bwd_of(op)) {
      fail("no GPU backward kernel registered");
      goto done;
    }
    // output gradients (visible outputs; none for loss ops unless asked)
    const bool loss = (op->flags & SN_OP_NO_OGRAD) != 0;
    C.og.resize(nout);
    std::vector<sn_tensor *> cog(nout, nullptr), gog(nout, nullptr);
    for (int i = 0; i < nout; i++) {
      memset(&C.og[i], 0, sizeof C.og[i]);
      if (i >= nvis || (loss && !cs.pass_ograd)) continue;
      sn_tensor_alloc(&C.og[i], C.out[i].dtype, &oshape[i], kCpu);
      fill(&C.og[i], G_UNIFORM, 0);
    }
    if (clone_to(G.og, C.og, kGpu) != SN_OK) {
      fail("ograd copies");
      goto done;
    }
    for (int i = 0; i < nout; i++)
      if (C.og[i].st) {
        cog[i] = &C.og[i];
        gog[i] = &G.og[i];
      }
    C.ig.resize(nin);
    for (int i = 0; i < nin; i++) {
      memset(&C.ig[i], 0, sizeof C.ig[i]);
      sn_tensor_alloc(&C.ig[i], C.in[i].dtype, &ishape[i], kCpu);
      fill(&C.ig[i], G_UNIFORM, 0);  // garbage, or the base of req = add
    }
    if (clone_to(G.ig, C.ig, kGpu) != SN_OK) {
      fail("igrad copies");
      goto done;
    }
    std::vector<sn_tensor *> cig, gig;
    for (auto &t : C.ig) cig.push_back(&t);
    for (auto &t : G.ig) gig.push_back(&t);
    std::vector<int> breq(SN_MAX_IO, cs.req_add ? SN_REQ_ADD : SN_REQ_WRITE);
    sn_call cb = cc, gb = gc;
    cb.ograd = cog.data();
    cb.igrad = cig.data();
    cb.req = breq.data();
    cb.is_train = 1;
    gb.ograd = gog.data();
    gb.igrad = gig.data();
    gb.req = breq.data();
    gb.is_train = 1;
    if (op->backward_cpu(&cb) != SN_OK) {
      fail(std::string("CPU backward: ") + sn_last_error());
      goto done;
    }
    if (bwd_of(op)(&gb) != SN_OK || gpu_sync() != SN_OK) {
      fail(std::string("GPU backward: ") + sn_last_error());
      goto done;
    }
    for (int i = 0; i < nin; i++) {
      std::string w = std::string("grad:") + inames[i];
      if (!compare(w.c_str(), &C.ig[i], &G.ig[i], rtol, atol, &msg)) ok = false;
    }
  }
done:
  release(C);
  release(G);
  if (ok) {
    g_pass++;
    printf("PASS %s\n", label.c_str());
  } else {
    g_fail++;
    printf("FAIL %s: %s\n", label.c_str(), msg.c_str());
  }
  fflush(stdout);
}

typedef std::vector<std::pair<std::string, std::string> > P;

std::vector<Case> make_cases() {
  std::vector<Case> v;
  auto add = [&](const std::string &name, const char *op, P params,
                 std::vector<sn_shape> shapes) -> Case & {
    Case c;
    c.name = name;
    c.op = op;
    c.params = params;
    c.shapes = shapes;
    v.push_back(c);
    return v.back();
  };
  // ---- FullyConnected / dot / batch_dot ----
  add("FullyConnected", "FullyConnected", {{"num_hidden", "7"}}, {shp({5, 3, 4})});
  add("FullyConnected no_bias", "FullyConnected", {{"num_hidden", "6"}, {"no_bias", "True"}},
      {shp({4, 9})});
  add("FullyConnected flatten=False", "FullyConnected", {{"num_hidden", "5"}, {"flatten", "False"}},
      {shp({2, 3, 6})});
  add("FullyConnected large", "FullyConnected", {{"num_hidden", "300"}}, {shp({129, 257})})
      .rtol32 = 1e-3;
  add("dot", "dot", {}, {shp({4, 5}), shp({5, 3})});
  add("dot transpose_a", "dot", {{"transpose_a", "True"}}, {shp({5, 4}), shp({5, 3})});
  add("dot transpose_b", "dot", {{"transpose_b", "True"}}, {shp({4, 5}), shp({3, 5})});
  add("dot both", "dot", {{"transpose_a", "True"}, {"transpose_b", "True"}},
      {shp({5, 4}), shp({3, 5})});
  add("dot vectors", "dot", {}, {shp({7}), shp({7})});
  add("dot N-D", "dot", {}, {shp({2, 3, 4}), shp({4, 5, 2})});
  add("dot req=add", "dot", {}, {shp({4, 5}), shp({5, 3})}).req_add = true;
  add("batch_dot", "batch_dot", {}, {shp({3, 4, 5}), shp({3, 5, 2})});
  add("batch_dot ta", "batch_dot", {{"transpose_a", "True"}}, {shp({3, 5, 4}), shp({3, 5, 2})});
  add("batch_dot tb", "batch_dot", {{"transpose_b", "True"}}, {shp({3, 4, 5}), shp({3, 2, 5})});
  add("batch_dot 4-D ta tb", "batch_dot", {{"transpose_a", "True"}, {"transpose_b", "True"}},
      {shp({2, 2, 5, 4}), shp({2, 2, 3, 5})});
  add("batch_dot req=add", "batch_dot", {}, {shp({3, 4, 5}), shp({3, 5, 2})}).req_add = true;
  // ---- Convolution / Deconvolution ----
  add("Convolution 2-D", "Convolution",
      {{"kernel", "(3, 3)"}, {"num_filter", "4"}, {"pad", "(1, 1)"}, {"stride", "(2, 1)"},
       {"dilate", "(1, 2)"}},
      {shp({2, 3, 9, 8})});
  add("Convolution groups", "Convolution",
      {{"kernel", "(3, 2)"}, {"num_filter", "6"}, {"num_group", "2"}, {"no_bias", "True"}},
      {shp({2, 4, 7, 6})})
      .gpu_ws = true;
  add("Convolution 1-D", "Convolution", {{"kernel", "(3,)"}, {"num_filter", "5"}, {"pad", "(2,)"}},
      {shp({3, 2, 10})});
  add("Convolution 3-D", "Convolution",
      {{"kernel", "(2, 3, 2)"}, {"num_filter", "3"}, {"stride", "(1, 2, 1)"}},
      {shp({2, 2, 5, 6, 7})});
  add("Convolution 1x1", "Convolution", {{"kernel", "(1, 1)"}, {"num_filter", "8"}},
      {shp({4, 16, 5, 5})});
  add("Convolution tune=off", "Convolution",
      {{"kernel", "(5, 5)"}, {"num_filter", "20"}, {"cudnn_tune", "off"}}, {shp({8, 1, 28, 28})});
  add("Convolution lenet2", "Convolution", {{"kernel", "(5, 5)"}, {"num_filter", "50"}},
      {shp({16, 20, 12, 12})})
      .rtol32 = 1e-3;
  add("Deconvolution", "Deconvolution",
      {{"kernel", "(3, 3)"}, {"num_filter", "3"}, {"stride", "(2, 2)"}, {"pad", "(1, 1)"},
       {"adj", "(1, 0)"}, {"no_bias", "False"}},
      {shp({2, 4, 5, 6})});
  add("Deconvolution target_shape", "Deconvolution",
      {{"kernel", "(4, 4)"}, {"num_filter", "2"}, {"stride", "(2, 2)"},
       {"target_shape", "(10, 9)"}},
      {shp({2, 3, 5, 5})});
  add("Deconvolution groups dilate", "Deconvolution",
      {{"kernel", "(3, 3)"}, {"num_filter", "4"}, {"num_group", "2"}, {"dilate", "(2, 1)"},
       {"no_bias", "False"}},
      {shp({2, 4, 4, 5})})
      .gpu_ws = true;
  add("Deconvolution 1-D", "Deconvolution", {{"kernel", "(3,)"}, {"num_filter", "2"}, {"stride", "(3,)"}},
      {shp({2, 3, 6})});
  // ---- Pooling ----
  add("Pooling max 2x2", "Pooling", {{"kernel", "(2, 2)"}, {"stride", "(2, 2)"}},
      {shp({2, 3, 8, 7})});
  add("Pooling max 3x3 s2 p1", "Pooling",
      {{"kernel", "(3, 3)"}, {"stride", "(2, 2)"}, {"pad", "(1, 1)"}}, {shp({2, 3, 9, 8})});
  add("Pooling avg cip", "Pooling",
      {{"kernel", "(3, 3)"}, {"pool_type", "avg"}, {"pad", "(1, 1)"}}, {shp({2, 2, 6, 5})});
  add("Pooling avg no cip full", "Pooling",
      {{"kernel", "(3, 2)"}, {"pool_type", "avg"}, {"pad", "(1, 1)"}, {"stride", "(2, 2)"},
       {"count_include_pad", "False"}, {"pooling_convention", "full"}},
      {shp({2, 2, 7, 6})});
  add("Pooling max full", "Pooling",
      {{"kernel", "(3, 3)"}, {"stride", "(2, 2)"}, {"pooling_convention", "full"}},
      {shp({1, 2, 8, 8})});
  add("Pooling sum", "Pooling", {{"kernel", "(2, 3)"}, {"pool_type", "sum"}}, {shp({2, 2, 5, 6})});
  add("Pooling lp1", "Pooling", {{"kernel", "(2, 2)"}, {"pool_type", "lp"}, {"p_value", "1"}},
      {shp({2, 2, 5, 6})});
  add("Pooling lp2", "Pooling",
      {{"kernel", "(2, 2)"}, {"pool_type", "lp"}, {"p_value", "2"}, {"stride", "(1, 2)"}},
      {shp({2, 2, 5, 6})});
  add("Pooling lp3", "Pooling", {{"kernel", "(3, 3)"}, {"pool_type", "lp"}, {"p_value", "3"}},
      {shp({1, 2, 5, 6})})
      .gens = {G_POS};
  add("Pooling global max", "Pooling", {{"global_pool", "True"}}, {shp({3, 4, 5, 6})});
  add("Pooling global avg", "Pooling", {{"global_pool", "True"}, {"pool_type", "avg"}},
      {shp({3, 4, 5, 6})});
  add("Pooling 1-D same", "Pooling",
      {{"kernel", "(3,)"}, {"stride", "(2,)"}, {"pooling_convention", "same"}}, {shp({2, 3, 9})});
  add("Pooling 3-D avg", "Pooling",
      {{"kernel", "(2, 2, 2)"}, {"pool_type", "avg"}, {"stride", "(1, 2, 2)"}},
      {shp({1, 2, 4, 5, 6})});
  // ---- Activation / LeakyReLU ----
  for (const char *a : {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    add(std::string("Activation ") + a, "Activation", {{"act_type", a}}, {shp({3, 4, 5})});
  for (const char *a : {"leaky", "elu", "selu", "gelu"})
    add(std::string("LeakyReLU ") + a, "LeakyReLU", {{"act_type", a}, {"slope", "0.3"}},
        {shp({3, 4, 5})});
  add("LeakyReLU prelu", "LeakyReLU", {{"act_type", "prelu"}}, {shp({3, 4, 5, 2})});
  add("LeakyReLU prelu shared", "LeakyReLU", {{"act_type", "prelu"}}, {shp({3, 4, 5}), shp({1})});
  add("LeakyReLU prelu big", "LeakyReLU", {{"act_type", "prelu"}}, {shp({16, 3, 64, 64})})
      .rtol32 = 1e-3;
  add("LeakyReLU rrelu train", "LeakyReLU", {{"act_type", "rrelu"}}, {shp({3, 4, 5})});
  add("LeakyReLU rrelu inference", "LeakyReLU", {{"act_type", "rrelu"}}, {shp({3, 4, 5})})
      .is_train = 0;
  // ---- softmax family ----
  add("softmax", "softmax", {}, {shp({4, 10})});
  add("softmax axis 1", "softmax", {{"axis", "1"}}, {shp({2, 5, 3, 4})});
  add("softmax temperature", "softmax", {{"temperature", "2.5"}}, {shp({3, 7})});
  add("softmax long", "softmax", {}, {shp({3, 3000})});
  add("softmax use_length", "softmax", {{"use_length", "True"}, {"axis", "-1"}},
      {shp({3, 4, 6}), shp({3, 4})})
      .gens = {G_UNIFORM, G_LENGTH};
  v.back().k = 6;
  add("softmax use_length axis 0", "softmax", {{"use_length", "True"}, {"axis", "0"}},
      {shp({5, 4}), shp({4})})
      .gens = {G_UNIFORM, G_LENGTH};
  v.back().k = 5;
  add("log_softmax", "log_softmax", {}, {shp({4, 10})});
  add("log_softmax axis 1 long", "log_softmax", {{"axis", "1"}}, {shp({2, 1500})});
  add("log_softmax axis 0", "log_softmax", {{"axis", "0"}}, {shp({6, 5})});
  add("softmin", "softmin", {{"temperature", "0.5"}}, {shp({4, 9})});
  add("SoftmaxActivation instance", "SoftmaxActivation", {}, {shp({4, 3, 5})});
  add("SoftmaxActivation channel", "SoftmaxActivation", {{"mode", "channel"}}, {shp({2, 4, 3, 3})});
  // ---- losses ----
  add("SoftmaxOutput", "SoftmaxOutput", {}, {shp({6, 10})}).gens = {G_UNIFORM, G_LABEL};
  v.back().k = 10;
  add("SoftmaxOutput batch scale", "SoftmaxOutput",
      {{"normalization", "batch"}, {"grad_scale", "0.5"}}, {shp({6, 7})})
      .gens = {G_UNIFORM, G_LABEL};
  v.back().k = 6;
  add("SoftmaxOutput ignore valid", "SoftmaxOutput",
      {{"use_ignore", "True"}, {"normalization", "valid"}}, {shp({8, 5})})
      .gens = {G_UNIFORM, G_LABEL_IGN};
  v.back().k = 5;
  add("SoftmaxOutput multi_output", "SoftmaxOutput", {{"multi_output", "True"}},
      {shp({2, 4, 3, 2})})
      .gens = {G_UNIFORM, G_LABEL};
  v.back().k = 4;
  add("SoftmaxOutput multi valid ignore", "SoftmaxOutput",
      {{"multi_output", "True"}, {"use_ignore", "True"}, {"normalization", "valid"}},
      {shp({2, 4, 5})})
      .gens = {G_UNIFORM, G_LABEL_IGN};
  v.back().k = 4;
  add("SoftmaxOutput preserve_shape smooth", "SoftmaxOutput",
      {{"preserve_shape", "True"}, {"smooth_alpha", "0.1"}}, {shp({2, 3, 5})})
      .gens = {G_UNIFORM, G_LABEL};
  v.back().k = 5;
  add("SoftmaxOutput prob labels out_grad", "SoftmaxOutput", {{"out_grad", "True"}},
      {shp({4, 6}), shp({4, 6})})
      .gens = {G_UNIFORM, G_PROB};
  v.back().pass_ograd = true;
  add("LinearRegressionOutput", "LinearRegressionOutput", {{"grad_scale", "2"}}, {shp({5, 3})});
  add("LogisticRegressionOutput", "LogisticRegressionOutput", {}, {shp({5, 1}), shp({5})})
      .gens = {G_UNIFORM, G_PROB};
  add("MAERegressionOutput", "MAERegressionOutput", {}, {shp({4, 3})});
  add("MakeLoss", "MakeLoss", {{"grad_scale", "3"}}, {shp({4, 3})});
  add("MakeLoss batch", "MakeLoss", {{"normalization", "batch"}}, {shp({4, 3})});
  add("MakeLoss valid", "MakeLoss", {{"normalization", "valid"}, {"valid_thresh", "0.2"}},
      {shp({4, 3})});
  // ---- BatchNorm ----
  add("BatchNorm train", "BatchNorm", {{"fix_gamma", "False"}}, {shp({4, 3, 5, 6})});
  add("BatchNorm train fix_gamma", "BatchNorm", {}, {shp({4, 3, 5, 6})});
  add("BatchNorm train split", "BatchNorm", {{"fix_gamma", "False"}, {"momentum", "0.8"}},
      {shp({8, 3, 64, 64})})
      .rtol32 = 1e-3;
  add("BatchNorm train 2-D", "BatchNorm", {{"fix_gamma", "False"}}, {shp({16, 7})});
  add("BatchNorm axis -1", "BatchNorm", {{"fix_gamma", "False"}, {"axis", "-1"}},
      {shp({3, 4, 5})});
  add("BatchNorm inference", "BatchNorm", {{"fix_gamma", "False"}, {"output_mean_var", "True"}},
      {shp({4, 3, 5, 6})})
      .is_train = 0;
  v.back().backward = false;
  add("BatchNorm use_global_stats", "BatchNorm",
      {{"fix_gamma", "False"}, {"use_global_stats", "True"}}, {shp({4, 3, 5, 6})});
  // ---- LRN ----
  add("LRN 5", "LRN", {{"nsize", "5"}}, {shp({2, 6, 3, 4})});
  add("LRN 3 alpha", "LRN", {{"nsize", "3"}, {"alpha", "0.01"}, {"beta", "0.5"}, {"knorm", "1"}},
      {shp({2, 4, 5})});
  return v;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: nn_smoke PATH/symnet_cuda.so [filter]\n");
    return 1;
  }
  const char *self = getenv("NN_SMOKE_SELFTEST");
  g_self = self && !strcmp(self, "1");
  if (g_self) {
    kGpu = kCpu;
    printf("self test: CPU kernels on both sides\n");
  } else {
    int rc = sn_gpu_load(argv[1]);
    if (rc != SN_OK) {
      printf("load: status %d: %s\n", rc, sn_last_error());
      return rc == SN_ERR_UNSUPPORTED ? 2 : 1;
    }
    printf("loaded: %s\n", sn_gpu()->describe());
  }
  const char *filter = argc > 2 ? argv[2] : nullptr;
  std::vector<Case> cases = make_cases();
  for (const Case &cs : cases) {
    run_case(cs, SN_F32, filter);
    run_case(cs, SN_F64, filter);
  }
  printf("%d passed, %d failed; GPU live bytes at the end: %lld\n", g_pass, g_fail,
         g_self ? 0LL : (long long)sn_gpu()->live_bytes(0));
  return g_fail ? 1 : 0;
}
