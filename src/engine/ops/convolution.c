/* Convolution and Deconvolution (MXNet 1.x semantics), 1-D, 2-D and 3-D,
 * NCW / NCHW / NCDHW.
 *
 * Convolution: out[n, f] = bias[f] + sum over the channels c of group(f) of
 * the cross-correlation of data[n, c] with weight[f, c - group offset], with
 * zero padding `pad`, stride `stride` and dilation `dilate`.  Output size
 * per spatial dim: (x + 2 * pad - (dilate * (kernel - 1) + 1)) / stride + 1
 * (floor).  weight is (num_filter, C / num_group, *kernel), bias (num_filter).
 *
 * Deconvolution is the transpose (the gradient of Convolution with respect
 * to its data): data (N, C, ...) -> out (N, num_filter, ...), weight
 * (C, num_filter / num_group, *kernel), output size per dim
 * stride * (x - 1) + dilated kernel - 2 * pad + adj.  When target_shape is
 * given, pad and adj are ignored and computed from it as MXNet does:
 * t = stride * (x - 1) + dilated kernel - target, adj = t % 2,
 * pad = (t + 1) / 2.  MXNet 1.x quirks kept: no_bias defaults to True for
 * Deconvolution (False for Convolution), workspace defaults to 512 (1024),
 * cudnn_tune / cudnn_off / workspace are accepted; workspace (MB) caps the
 * column buffer as it does in MXNet, but never below one image.
 *
 * Implementation: both ops run on one set of routines over "image" (the
 * grid the kernel slides over) and "act" (the grid of window positions):
 * Convolution forward is act = W * im2col(image) per group, its backward is
 * dW = sum act_grad * im2col(image)^T and d_image = col2im(W^T * act_grad);
 * Deconvolution forward is Convolution's data gradient and its backward is
 * Convolution's forward plus weight gradient.  Several images share one GEMM
 * when the output grid is small (columns side by side, then a scatter copy
 * back to NCHW, or for float32 one GEMM per image from the weight packed
 * once per call, straight into the output); a 1x1 / stride 1 / no pad case
 * with a large grid uses the tensors directly with no column buffer.
 * Threads: chunks of images run on different threads with single-threaded
 * GEMMs, weight gradients summed per slot in a fixed order (see conv_plan),
 * so results do not depend on the thread count.  Temporary buffers (per
 * thread column / act / GEMM packing space, slot sums, packed weight) come
 * from the call's workspace, sized by the `workspace` callback for the
 * current thread count. */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../cpu_par.h"
#include "../op.h"
#include "im2col.h"

/* Batching of images per GEMM: at least SN_CONV_MIN_COLS columns (output
 * positions) per GEMM, more while the float32 column buffer stays within
 * SN_CONV_COL_BUDGET bytes (cache-sized), at most SN_CONV_MAX_COLS. */
#define SN_CONV_MIN_COLS 256
#define SN_CONV_MAX_COLS 4096
#define SN_CONV_COL_BUDGET (512 * 1024)
/* Weight-gradient slots: at most SN_CONV_SLOTS, and their sums within
 * SN_CONV_PART_BUDGET bytes (sized for float64). */
#define SN_CONV_SLOTS 16
#define SN_CONV_PART_BUDGET (16.0 * 1048576.0)

enum {
  C_KERNEL, C_STRIDE, C_DILATE, C_PAD, C_NUM_FILTER, C_NUM_GROUP, C_WORKSPACE, C_NO_BIAS,
  C_CUDNN_TUNE, C_CUDNN_OFF, C_LAYOUT
};
enum {
  D_KERNEL, D_STRIDE, D_DILATE, D_PAD, D_ADJ, D_TARGET_SHAPE, D_NUM_FILTER, D_NUM_GROUP,
  D_WORKSPACE, D_NO_BIAS, D_CUDNN_TUNE, D_CUDNN_OFF, D_LAYOUT
};

static const sn_param_spec conv_params[] = {
    {"kernel", SN_PT_SHAPE, NULL, NULL, "Convolution kernel size: (w,), (h, w) or (d, h, w)."},
    {"stride", SN_PT_SHAPE, "()", NULL,
     "Convolution stride: (w,), (h, w) or (d, h, w). Defaults to 1 for each dimension."},
    {"dilate", SN_PT_SHAPE, "()", NULL,
     "Convolution dilate: (w,), (h, w) or (d, h, w). Defaults to 1 for each dimension."},
    {"pad", SN_PT_SHAPE, "()", NULL,
     "Zero pad for convolution: (w,), (h, w) or (d, h, w). Defaults to no padding."},
    {"num_filter", SN_PT_INT, NULL, NULL, "Convolution filter (channel) number."},
    {"num_group", SN_PT_INT, "1", NULL, "Number of group partitions."},
    {"workspace", SN_PT_INT, "1024", NULL,
     "Maximum temporary workspace allowed (MB); on the CPU it bounds how many images share "
     "one GEMM."},
    {"no_bias", SN_PT_BOOL, "False", NULL, "Whether to disable bias parameter."},
    {"cudnn_tune", SN_PT_ENUM, "None", "None|off|limited_workspace|fastest",
     "Whether to pick convolution algo by running performance test (accepted, ignored on "
     "the CPU)."},
    {"cudnn_off", SN_PT_BOOL, "False", NULL, "Turn off cudnn for this layer."},
    {"layout", SN_PT_ENUM, "None", "None|NCW|NCHW|NCDHW",
     "Set layout for input, output and weight. Empty for default layout: NCW for 1d, NCHW "
     "for 2d and NCDHW for 3d."},
};

static const sn_param_spec deconv_params[] = {
    {"kernel", SN_PT_SHAPE, NULL, NULL,
     "Deconvolution kernel size: (w,), (h, w) or (d, h, w). This is same as the kernel size "
     "used for the corresponding convolution."},
    {"stride", SN_PT_SHAPE, "()", NULL,
     "The stride used for the corresponding convolution: (w,), (h, w) or (d, h, w). Defaults "
     "to 1 for each dimension."},
    {"dilate", SN_PT_SHAPE, "()", NULL,
     "Dilation factor for each dimension of the input: (w,), (h, w) or (d, h, w). Defaults "
     "to 1 for each dimension."},
    {"pad", SN_PT_SHAPE, "()", NULL,
     "The amount of implicit zero padding added during convolution for each dimension of "
     "the input: (w,), (h, w) or (d, h, w). (kernel-1)/2 is usually a good choice. If "
     "target_shape is set, pad will be ignored and a padding that will generate the target "
     "shape will be used. Defaults to no padding."},
    {"adj", SN_PT_SHAPE, "()", NULL,
     "Adjustment for output shape: (w,), (h, w) or (d, h, w). If target_shape is set, adj "
     "will be ignored and computed accordingly."},
    {"target_shape", SN_PT_SHAPE, "()", NULL,
     "Shape of the output tensor: (w,), (h, w) or (d, h, w)."},
    {"num_filter", SN_PT_INT, NULL, NULL, "Number of output filters."},
    {"num_group", SN_PT_INT, "1", NULL, "Number of groups partition."},
    {"workspace", SN_PT_INT, "512", NULL,
     "Maximum temporary workspace allowed (MB) in deconvolution; on the CPU it bounds how "
     "many images share one GEMM."},
    {"no_bias", SN_PT_BOOL, "True", NULL, "Whether to disable bias parameter."},
    {"cudnn_tune", SN_PT_ENUM, "None", "None|off|limited_workspace|fastest",
     "Whether to pick convolution algorithm by running performance test (accepted, ignored "
     "on the CPU)."},
    {"cudnn_off", SN_PT_BOOL, "False", NULL, "Turn off cudnn for this layer."},
    {"layout", SN_PT_ENUM, "None", "None|NCW|NCHW|NCDHW",
     "Set layout for input, output and weight. Empty for default layout, NCW for 1d, NCHW "
     "for 2d and NCDHW for 3d."},
};

/* ---- parameters ---- */

typedef struct {
  const char *op; /* "Convolution" / "Deconvolution" */
  int deconv;
  int nsp;        /* spatial dims, 1..3 */
  int64_t k[3], s[3], d[3], p[3], adj[3], target[3]; /* C order, nsp entries */
  int has_target;
  int64_t F, G;
  int no_bias;
  int64_t workspace_mb;
} conv_param;

static int read_tuple(const conv_param *cp, const sn_pval *v, const char *name, int64_t dflt,
                      int64_t minval, int64_t *dst) {
  char buf[128];
  if (v->s.ndim == 0) {
    for (int i = 0; i < cp->nsp; i++) dst[i] = dflt;
    return SN_OK;
  }
  if (v->s.ndim != cp->nsp)
    return sn_error(SN_ERR_ARG, "%s: %s %s must have %d entr%s like kernel", cp->op, name,
                    sn_shape_str(&v->s, buf, sizeof buf), cp->nsp, cp->nsp == 1 ? "y" : "ies");
  for (int i = 0; i < cp->nsp; i++) {
    if (v->s.dim[i] < minval)
      return sn_error(SN_ERR_ARG, "%s: %s %s must be >= %lld", cp->op, name,
                      sn_shape_str(&v->s, buf, sizeof buf), (long long)minval);
    dst[i] = v->s.dim[i];
  }
  return SN_OK;
}

static int conv_param_read(const sn_params *p, int deconv, conv_param *cp) {
  char buf[128];
  memset(cp, 0, sizeof *cp);
  cp->deconv = deconv;
  cp->op = deconv ? "Deconvolution" : "Convolution";
  const sn_pval *v = p->v;
  const sn_shape *ks = &v[deconv ? D_KERNEL : C_KERNEL].s;
  if (ks->ndim < 1 || ks->ndim > 3)
    return sn_error(SN_ERR_ARG, "%s: kernel %s must have 1, 2 or 3 entries", cp->op,
                    sn_shape_str(ks, buf, sizeof buf));
  cp->nsp = ks->ndim;
  for (int i = 0; i < cp->nsp; i++) {
    if (ks->dim[i] < 1)
      return sn_error(SN_ERR_ARG, "%s: kernel %s must be positive", cp->op,
                      sn_shape_str(ks, buf, sizeof buf));
    cp->k[i] = ks->dim[i];
  }
  SN_TRY(read_tuple(cp, &v[deconv ? D_STRIDE : C_STRIDE], "stride", 1, 1, cp->s));
  SN_TRY(read_tuple(cp, &v[deconv ? D_DILATE : C_DILATE], "dilate", 1, 1, cp->d));
  SN_TRY(read_tuple(cp, &v[deconv ? D_PAD : C_PAD], "pad", 0, 0, cp->p));
  if (deconv) {
    SN_TRY(read_tuple(cp, &v[D_ADJ], "adj", 0, 0, cp->adj));
    SN_TRY(read_tuple(cp, &v[D_TARGET_SHAPE], "target_shape", 0, 0, cp->target));
    for (int i = 0; i < cp->nsp; i++)
      if (cp->target[i] != 0) cp->has_target = 1;
  }
  cp->F = v[deconv ? D_NUM_FILTER : C_NUM_FILTER].i;
  cp->G = v[deconv ? D_NUM_GROUP : C_NUM_GROUP].i;
  cp->no_bias = (int)v[deconv ? D_NO_BIAS : C_NO_BIAS].i;
  cp->workspace_mb = v[deconv ? D_WORKSPACE : C_WORKSPACE].i;
  if (cp->F < 1)
    return sn_error(SN_ERR_ARG, "%s: num_filter must be >= 1, got %lld", cp->op,
                    (long long)cp->F);
  if (cp->G < 1)
    return sn_error(SN_ERR_ARG, "%s: num_group must be >= 1, got %lld", cp->op,
                    (long long)cp->G);
  if (cp->F % cp->G != 0)
    return sn_error(SN_ERR_ARG, "%s: num_filter (%lld) must be divisible by num_group (%lld)",
                    cp->op, (long long)cp->F, (long long)cp->G);
  if (cp->workspace_mb < 0)
    return sn_error(SN_ERR_ARG, "%s: workspace must be >= 0", cp->op);
  int64_t layout = v[deconv ? D_LAYOUT : C_LAYOUT].i; /* 0 None, 1 NCW, 2 NCHW, 3 NCDHW */
  if (layout != 0 && layout != cp->nsp)
    return sn_error(SN_ERR_ARG, "%s: layout %s does not match a %d-D kernel", cp->op,
                    layout == 1 ? "NCW" : layout == 2 ? "NCHW" : "NCDHW", cp->nsp);
  if (deconv)
    for (int i = 0; i < cp->nsp; i++)
      if (!cp->has_target && cp->adj[i] > cp->s[i] - 1)
        return sn_error(SN_ERR_ARG, "Deconvolution: adj[%d] = %lld must be smaller than "
                        "stride[%d] = %lld", i, (long long)cp->adj[i], i, (long long)cp->s[i]);
  return SN_OK;
}

static int64_t dilated(const conv_param *cp, int i) { return cp->d[i] * (cp->k[i] - 1) + 1; }

/* Deconvolution pad and adj for input size x in dim i (MXNet's InferPad). */
static int deconv_pad(const conv_param *cp, int i, int64_t x, int64_t *pad, int64_t *adj) {
  if (!cp->has_target) {
    *pad = cp->p[i];
    *adj = cp->adj[i];
    return SN_OK;
  }
  int64_t t = cp->s[i] * (x - 1) + dilated(cp, i);
  if (t < cp->target[i])
    return sn_error(SN_ERR_ARG, "Deconvolution: target_shape[%d] = %lld is too big for input "
                    "size %lld (at most %lld)", i, (long long)cp->target[i], (long long)x,
                    (long long)t);
  t -= cp->target[i];
  *adj = t % 2;
  *pad = (t + 1) / 2;
  if (*adj > cp->s[i] - 1)
    return sn_error(SN_ERR_ARG, "Deconvolution: target_shape[%d] = %lld is not reachable "
                    "with stride %lld", i, (long long)cp->target[i], (long long)cp->s[i]);
  return SN_OK;
}

/* ---- inputs ---- */

static int conv_list_inputs_impl(int no_bias, const char **names, int cap) {
  static const char *all[] = {"data", "weight", "bias"};
  int n = no_bias ? 2 : 3;
  for (int i = 0; i < n && i < cap; i++) names[i] = all[i];
  return n;
}

static int conv_list_inputs(const sn_params *p, const char **names, int cap) {
  return conv_list_inputs_impl((int)p->v[C_NO_BIAS].i, names, cap);
}

static int deconv_list_inputs(const sn_params *p, const char **names, int cap) {
  return conv_list_inputs_impl((int)p->v[D_NO_BIAS].i, names, cap);
}

/* ---- shape inference ---- */

static int conv_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)aux;
  (void)naux;
  (void)nout;
  conv_param cp;
  char buf[128];
  SN_TRY(conv_param_read(p, 0, &cp));
  const int nd = cp.nsp + 2;
  if (!cp.no_bias && nin > 2) {
    sn_shape b = sn_shape_make(1, &cp.F);
    SN_TRY(sn_shape_assign(&in[2], &b, "Convolution: bias"));
  }
  sn_shape *data = &in[0];
  if (data->ndim < 0) return SN_OK;
  if (data->ndim != nd)
    return sn_error(SN_ERR_SHAPE, "Convolution: data has shape %s; a %d-D kernel needs %dD "
                    "data (batch, channel, %s)", sn_shape_str(data, buf, sizeof buf), cp.nsp,
                    nd, cp.nsp == 1 ? "x" : cp.nsp == 2 ? "y, x" : "d, y, x");
  /* channels from the weight when the data does not say */
  if (data->dim[1] == 0 && in[1].ndim == nd && in[1].dim[1] > 0)
    data->dim[1] = in[1].dim[1] * cp.G;
  int64_t C = data->dim[1];
  if (C > 0 && C % cp.G != 0)
    return sn_error(SN_ERR_SHAPE, "Convolution: data channels (%lld) must be divisible by "
                    "num_group (%lld)", (long long)C, (long long)cp.G);
  int64_t wd[SN_MAX_DIMS] = {cp.F, C > 0 ? C / cp.G : 0};
  for (int i = 0; i < cp.nsp; i++) wd[2 + i] = cp.k[i];
  sn_shape w = sn_shape_make(nd, wd);
  SN_TRY(sn_shape_assign(&in[1], &w, "Convolution: weight"));
  int64_t od[SN_MAX_DIMS] = {data->dim[0], cp.F};
  for (int i = 0; i < cp.nsp; i++) {
    int64_t x = data->dim[2 + i];
    od[2 + i] = 0;
    if (x > 0) {
      int64_t padded = x + 2 * cp.p[i];
      if (dilated(&cp, i) > padded)
        return sn_error(SN_ERR_SHAPE, "Convolution: kernel size exceeds input: data %s, "
                        "dilated kernel %lld in spatial dim %d, padded input %lld",
                        sn_shape_str(data, buf, sizeof buf), (long long)dilated(&cp, i), i,
                        (long long)padded);
      od[2 + i] = (padded - dilated(&cp, i)) / cp.s[i] + 1;
    }
  }
  sn_shape o = sn_shape_make(nd, od);
  SN_TRY(sn_shape_assign(&out[0], &o, "Convolution: output"));
  /* back-fill the batch and, for stride 1, the spatial dims of data */
  int64_t dd[SN_MAX_DIMS] = {out[0].dim[0], 0};
  for (int i = 0; i < cp.nsp; i++) {
    int64_t y = out[0].dim[2 + i];
    dd[2 + i] = (y > 0 && cp.s[i] == 1) ? y + dilated(&cp, i) - 1 - 2 * cp.p[i] : 0;
    if (dd[2 + i] < 0) dd[2 + i] = 0;
  }
  sn_shape back = sn_shape_make(nd, dd);
  return sn_shape_assign(data, &back, "Convolution: data");
}

static int deconv_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                              int nout, sn_shape *aux, int naux) {
  (void)aux;
  (void)naux;
  (void)nout;
  conv_param cp;
  char buf[128];
  SN_TRY(conv_param_read(p, 1, &cp));
  const int nd = cp.nsp + 2;
  if (!cp.no_bias && nin > 2) {
    sn_shape b = sn_shape_make(1, &cp.F);
    SN_TRY(sn_shape_assign(&in[2], &b, "Deconvolution: bias"));
  }
  sn_shape *data = &in[0];
  if (data->ndim < 0) return SN_OK;
  if (data->ndim != nd)
    return sn_error(SN_ERR_SHAPE, "Deconvolution: data has shape %s; a %d-D kernel needs %dD "
                    "data (batch, channel, %s)", sn_shape_str(data, buf, sizeof buf), cp.nsp,
                    nd, cp.nsp == 1 ? "x" : cp.nsp == 2 ? "y, x" : "d, y, x");
  if (data->dim[1] == 0 && in[1].ndim == nd && in[1].dim[0] > 0) data->dim[1] = in[1].dim[0];
  int64_t C = data->dim[1];
  if (C > 0 && C % cp.G != 0)
    return sn_error(SN_ERR_SHAPE, "Deconvolution: data channels (%lld) must be divisible by "
                    "num_group (%lld)", (long long)C, (long long)cp.G);
  int64_t wd[SN_MAX_DIMS] = {C, cp.F / cp.G};
  for (int i = 0; i < cp.nsp; i++) wd[2 + i] = cp.k[i];
  sn_shape w = sn_shape_make(nd, wd);
  SN_TRY(sn_shape_assign(&in[1], &w, "Deconvolution: weight"));
  int64_t od[SN_MAX_DIMS] = {data->dim[0], cp.F};
  for (int i = 0; i < cp.nsp; i++) {
    int64_t x = data->dim[2 + i], pad, adj;
    od[2 + i] = 0;
    if (x > 0) {
      SN_TRY(deconv_pad(&cp, i, x, &pad, &adj));
      int64_t y = cp.s[i] * (x - 1) + dilated(&cp, i) - 2 * pad + adj;
      if (y < 1)
        return sn_error(SN_ERR_SHAPE, "Deconvolution: output size %lld in spatial dim %d is "
                        "not positive (data %s, pad %lld)", (long long)y, i,
                        sn_shape_str(data, buf, sizeof buf), (long long)pad);
      if (cp.has_target && cp.target[i] > 0 && cp.target[i] != y)
        return sn_error(SN_ERR_SHAPE, "Deconvolution: target_shape[%d] = %lld is not "
                        "reachable (got %lld)", i, (long long)cp.target[i], (long long)y);
      od[2 + i] = y;
    }
  }
  sn_shape o = sn_shape_make(nd, od);
  SN_TRY(sn_shape_assign(&out[0], &o, "Deconvolution: output"));
  int64_t dd[SN_MAX_DIMS] = {out[0].dim[0], 0};
  sn_shape back = sn_shape_make(nd, dd);
  return sn_shape_assign(data, &back, "Deconvolution: data");
}

/* ---- execution plan ---- */

/* "image": the grid the kernel slides over (Convolution data, Deconvolution
 * output); "act": the grid of window positions (Convolution output,
 * Deconvolution data).  The weight is (Ca, Ci / G, *kernel) in both ops.
 *
 * Threads: the batch is cut into chunks of nb images (one GEMM each, nb
 * depends on the shapes only).  Chunks are independent for the outputs and
 * the data gradient, so they are spread over the threads, each thread with
 * its own column and act buffers from the workspace and single-threaded
 * GEMMs.  The weight gradient is a sum over chunks: the chunks are grouped
 * into nslots contiguous slots (nslots depends on the shapes only), each
 * slot summed in chunk order into its own buffer (slot 0 into the gradient
 * itself), and the slots are then added in slot order.  So every result is
 * the same for any thread count.  When there are fewer chunks than threads
 * (small batches) or the weight is too large for per-slot sums, chunks run
 * one after another and the threads split each im2col / GEMM / col2im. */
typedef struct {
  sn_im2col_geom g;
  int64_t N, G, Ci, Ca, Mg, Kg, Si, Sa;
  int direct; /* 1x1 kernel, stride 1, no pad, large grid: no column buffer */
  int64_t nb; /* images per GEMM */
  int64_t nchunks;
  int64_t nslots;   /* weight-gradient slots; 1: no per-slot sums */
  size_t col_elems, tmp_elems; /* per thread */
  size_t gemm_work; /* per thread: float32 GEMM packing space (floats) */
  size_t wpack_g;   /* float32 weight packed for the GEMMs, per group (floats; 0: none) */
  size_t w_elems;   /* elements of the weight */
} conv_plan;

static int conv_plan_make(const conv_param *cp, const sn_shape *img, const sn_shape *act,
                          const sn_shape *data, conv_plan *pl) {
  memset(pl, 0, sizeof *pl);
  const int off = 3 - cp->nsp;
  sn_im2col_geom *g = &pl->g;
  for (int i = 0; i < 3; i++) {
    g->in[i] = g->out[i] = g->k[i] = g->s[i] = g->d[i] = 1;
    g->p[i] = 0;
  }
  for (int i = 0; i < cp->nsp; i++) {
    g->in[off + i] = img->dim[2 + i];
    g->out[off + i] = act->dim[2 + i];
    g->k[off + i] = cp->k[i];
    g->s[off + i] = cp->s[i];
    g->d[off + i] = cp->d[i];
    if (cp->deconv) {
      int64_t adj;
      SN_TRY(deconv_pad(cp, i, data->dim[2 + i], &g->p[off + i], &adj));
    } else {
      g->p[off + i] = cp->p[i];
    }
  }
  g->C = img->dim[1];
  sn_im2col_geom_finish(g);
  pl->N = img->dim[0];
  pl->G = cp->G;
  pl->Ci = img->dim[1];
  pl->Ca = act->dim[1];
  pl->Mg = pl->Ca / pl->G;
  pl->Kg = (pl->Ci / pl->G) * g->kprod;
  pl->Si = g->in_size;
  pl->Sa = g->out_size;
  if (sn_mul_size((size_t)pl->Ca, (size_t)pl->Kg, &pl->w_elems) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: weight size overflows", cp->op);
  int unit = g->kprod == 1;
  for (int i = 0; i < 3; i++) unit = unit && g->s[i] == 1 && g->p[i] == 0;
  unit = unit && g->in_size == g->out_size;
  if (unit && (pl->Sa >= SN_CONV_MIN_COLS || pl->N == 1)) {
    pl->direct = 1;
    pl->nb = 1;
  } else {
    const double col_img = 4.0 * (double)pl->Ci * (double)g->kprod * (double)pl->Sa;
    double want = floor(SN_CONV_COL_BUDGET / col_img);
    double most = ceil((double)SN_CONV_MAX_COLS / (double)pl->Sa);
    double least = ceil((double)SN_CONV_MIN_COLS / (double)pl->Sa);
    if (want > most) want = most;
    if (want < least) want = least;
    if (want > (double)pl->N) want = (double)pl->N;
    int64_t nb = want < 1 ? 1 : (int64_t)want;
    /* per image: the column block plus, when batching, the act block */
    size_t per_img, a, b;
    const double cap = (double)cp->workspace_mb * 1048576.0;
    if (sn_mul_size((size_t)pl->Ci * (size_t)g->kprod, (size_t)pl->Sa, &a) != SN_OK ||
        sn_add_size(a, (size_t)pl->Ca * (size_t)pl->Sa, &per_img) != SN_OK)
      return sn_error(SN_ERR_OVERFLOW, "%s: column buffer size overflows", cp->op);
    while (nb > 1 && (double)nb * (double)per_img * sizeof(double) > cap) nb--;
    pl->nb = nb;
    if (sn_mul_size(a, (size_t)nb, &pl->col_elems) != SN_OK ||
        sn_mul_size((size_t)pl->Ca * (size_t)pl->Sa, (size_t)nb, &b) != SN_OK)
      return sn_error(SN_ERR_OVERFLOW, "%s: column buffer size overflows", cp->op);
    pl->tmp_elems = nb > 1 ? b : 0;
  }
  pl->nchunks = (pl->N + pl->nb - 1) / pl->nb;
  {
    /* packing space of the largest GEMMs of a chunk (float32) */
    const int64_t nc = pl->nb * pl->Sa;
    size_t w = sn_gemm_f32_work(0, 0, pl->Mg, nc, pl->Kg), w2;
    if ((w2 = sn_gemm_f32_work(0, 1, pl->Mg, pl->Kg, nc)) > w) w = w2;
    if ((w2 = sn_gemm_f32_work(1, 0, pl->Kg, nc, pl->Mg)) > w) w = w2;
    /* with the weight packed once (W for out = W col, W^T for col = W^T act) */
    pl->wpack_g = sn_gemm_f32_packa_size(pl->Mg, pl->Kg);
    if ((w2 = sn_gemm_f32_packa_size(pl->Kg, pl->Mg)) > pl->wpack_g) pl->wpack_g = w2;
    if (pl->wpack_g) {
      if ((w2 = sn_gemm_f32_pa_work(pl->Mg, pl->Sa, pl->Kg)) > w) w = w2;
      if ((w2 = sn_gemm_f32_pa_work(pl->Kg, nc, pl->Mg)) > w) w = w2;
    }
    pl->gemm_work = w;
  }
  int64_t S = pl->nchunks < SN_CONV_SLOTS ? pl->nchunks : SN_CONV_SLOTS;
  const double wbytes = (double)pl->w_elems * sizeof(double);
  if (S > 1 && (double)(S - 1) * wbytes > SN_CONV_PART_BUDGET)
    S = 1 + (int64_t)(SN_CONV_PART_BUDGET / wbytes);
  pl->nslots = S < 2 ? 1 : S;
  return SN_OK;
}

/* Thread buffers worth having for a plan. */
static int conv_want_threads(const conv_plan *pl) {
  int64_t nt = sn_num_threads();
  if (nt > pl->nchunks) nt = pl->nchunks;
  return nt < 1 ? 1 : (int)nt;
}

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

/* Bytes of one thread's buffers and of the slot sums (with_part: the call
 * computes a weight gradient). */
static int conv_ws_parts(const conv_plan *pl, size_t es, int with_part, size_t *tbytes,
                         size_t *pbytes) {
  size_t n, b, g;
  *tbytes = *pbytes = 0;
  if (sn_add_size(pl->col_elems, pl->tmp_elems, &n) != SN_OK ||
      sn_mul_size(n, es, &b) != SN_OK || b > SIZE_MAX - 128 ||
      sn_mul_size(pl->gemm_work, sizeof(float), &g) != SN_OK || g > SIZE_MAX - 128 ||
      sn_add_size(round64(b), round64(g), tbytes) != SN_OK)
    return SN_ERR_OVERFLOW;
  /* shared: the weight-gradient slot sums, then the packed weight */
  size_t parts = 0, wp = 0;
  if (with_part && pl->nslots > 1) {
    if (sn_mul_size(pl->w_elems, (size_t)(pl->nslots - 1), &n) != SN_OK ||
        sn_mul_size(n, es, &parts) != SN_OK || parts > SIZE_MAX - 128)
      return SN_ERR_OVERFLOW;
  }
  if (sn_mul_size(pl->wpack_g, (size_t)pl->G, &n) != SN_OK ||
      sn_mul_size(n, sizeof(float), &wp) != SN_OK || wp > SIZE_MAX - 128 ||
      sn_add_size(round64(parts), round64(wp), pbytes) != SN_OK)
    return SN_ERR_OVERFLOW;
  return SN_OK;
}

static int conv_ws_total(const conv_plan *pl, size_t es, int with_part, int nthr,
                         size_t *bytes) {
  size_t tb, pb, all;
  if (conv_ws_parts(pl, es, with_part, &tb, &pb) != SN_OK ||
      sn_mul_size(tb, (size_t)nthr, &all) != SN_OK || sn_add_size(all, pb, bytes) != SN_OK)
    return SN_ERR_OVERFLOW;
  return SN_OK;
}

/* Workspace bytes: per-thread column / act buffers for the current thread
 * count, plus the weight-gradient slot sums in backward.  The dtype is not
 * known here, so elements are sized for float64 (float32 uses half). */
static int conv_ws_common(const sn_params *p, int deconv, const sn_shape *in, const sn_shape *out,
                          int backward, size_t *bytes) {
  conv_param cp;
  conv_plan pl;
  *bytes = 0;
  SN_TRY(conv_param_read(p, deconv, &cp));
  if (!sn_shape_known(&in[0]) || !sn_shape_known(&out[0])) return SN_OK;
  const sn_shape *img = deconv ? &out[0] : &in[0], *act = deconv ? &in[0] : &out[0];
  SN_TRY(conv_plan_make(&cp, img, act, &in[0], &pl));
  if (conv_ws_total(&pl, sizeof(double), backward, conv_want_threads(&pl), bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", cp.op);
  return SN_OK;
}

static int conv_workspace(const sn_params *p, const sn_shape *in, int nin, const sn_shape *out,
                          int nout, int backward, size_t *bytes) {
  (void)nin;
  (void)nout;
  return conv_ws_common(p, 0, in, out, backward, bytes);
}

static int deconv_workspace(const sn_params *p, const sn_shape *in, int nin,
                            const sn_shape *out, int nout, int backward, size_t *bytes) {
  (void)nin;
  (void)nout;
  return conv_ws_common(p, 1, in, out, backward, bytes);
}

/* ---- typed helpers ---- */

#define AT(ptr, i, es) ((void *)((char *)(ptr) + (size_t)(i) * (es)))

/* par: split over the threads (sn_gemm_par); else one single-threaded GEMM
 * (float32 packing in work, the calling thread's part of the workspace). */
static void gemm(sn_dtype dt, int par, float *work, int ta, int tb, int64_t m, int64_t n,
                 int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
                 void *c, int64_t ldc) {
  if (dt == SN_F32 && par)
    sn_gemm_par_f32(ta, tb, m, n, k, 1.0f, (const float *)a, lda, (const float *)b, ldb,
                    (float)beta, (float *)c, ldc);
  else if (dt == SN_F32)
    sn_gemm_f32_w(ta, tb, m, n, k, 1.0f, (const float *)a, lda, (const float *)b, ldb,
                  (float)beta, (float *)c, ldc, work);
  else
    (par ? sn_gemm_par_f64 : sn_gemm_f64)(ta, tb, m, n, k, 1.0, (const double *)a, lda,
                                          (const double *)b, ldb, beta, (double *)c, ldc);
}

static void im2col(sn_dtype dt, const sn_im2col_geom *g, const void *img, int64_t img_stride,
                   int64_t nimg, void *col, int64_t ldcol, int par) {
  if (dt == SN_F32)
    sn_im2col_f32(g, (const float *)img, img_stride, nimg, (float *)col, ldcol, par);
  else
    sn_im2col_f64(g, (const double *)img, img_stride, nimg, (double *)col, ldcol, par);
}

static void col2im(sn_dtype dt, const sn_im2col_geom *g, const void *col, int64_t ldcol,
                   int64_t nimg, void *img, int64_t img_stride, int par) {
  if (dt == SN_F32)
    sn_col2im_f32(g, (const float *)col, ldcol, nimg, (float *)img, img_stride, par);
  else
    sn_col2im_f64(g, (const double *)col, ldcol, nimg, (double *)img, img_stride, par);
}

/* Runs body(lo, hi) over [0, n): split over the threads when par is set,
 * the caller is not already parallel and n * cost is large enough. */
#define SN_CONV_SPLIT(par, n, cost, ...)                                                       \
  do {                                                                                         \
    const int64_t n_ = (n);                                                                    \
    if ((par) && n_ > 1 && !sn_in_parallel() && sn_num_threads() > 1 &&                        \
        (double)n_ * (double)(cost) >= (double)SN_PAR_GRAIN) {                                 \
      SN_OMP(parallel num_threads(sn_num_threads()))                                           \
      {                                                                                        \
        const int64_t t_ = sn_thread_id(), nth_ = sn_par_team_size();                          \
        const int64_t lo = n_ * t_ / nth_, hi = n_ * (t_ + 1) / nth_;                          \
        __VA_ARGS__;                                                                             \
      }                                                                                        \
    } else {                                                                                   \
      const int64_t lo = 0, hi = n_;                                                           \
      __VA_ARGS__;                                                                               \
    }                                                                                          \
  } while (0)

/* tmp (C x m*S, image j in columns [j*S, (j+1)*S)) <- src images n0.. (C x S each) */
static void gather(const void *src, int64_t m, int64_t C, int64_t S, size_t es, void *tmp,
                   int par) {
  SN_CONV_SPLIT(par, m * C, S, {
    for (int64_t jc = lo; jc < hi; jc++) {
      int64_t j = jc / C, c = jc % C;
      memcpy(AT(tmp, c * m * S + j * S, es), AT(src, (j * C + c) * S, es), (size_t)S * es);
    }
  });
}

/* Row helpers in fixed chunks of 8 so they compile to vector code at -O2. */
#define SN_DEFINE_SCATTER(T, SFX)                                                              \
  static inline void add_const_##SFX(T *restrict d, const T *restrict s, T b, int64_t n) {    \
    int64_t i = 0;                                                                             \
    for (; i + 8 <= n; i += 8)                                                                 \
      for (int k = 0; k < 8; k++) d[i + k] = s[i + k] + b;                                     \
    for (; i < n; i++) d[i] = s[i] + b;                                                        \
  }                                                                                            \
  static inline void add_const_inplace_##SFX(T *restrict d, T b, int64_t n) {                 \
    int64_t i = 0;                                                                             \
    for (; i + 8 <= n; i += 8)                                                                 \
      for (int k = 0; k < 8; k++) d[i + k] += b;                                               \
    for (; i < n; i++) d[i] += b;                                                              \
  }                                                                                            \
  static inline void add_rows_##SFX(T *restrict d, const T *restrict s, int64_t n) {          \
    int64_t i = 0;                                                                             \
    for (; i + 8 <= n; i += 8)                                                                 \
      for (int k = 0; k < 8; k++) d[i + k] += s[i + k];                                        \
    for (; i < n; i++) d[i] += s[i];                                                           \
  }                                                                                            \
  /* Inverse of gather, adding bias[c] when bias is not NULL. */                               \
  static void scatter_##SFX(const T *tmp, int64_t m, int64_t C, int64_t S, const T *bias,     \
                            T *dst, int par) {                                                 \
    SN_CONV_SPLIT(par, m * C, S, {                                                             \
      for (int64_t jc = lo; jc < hi; jc++) {                                                   \
        int64_t j = jc / C, c = jc % C;                                                        \
        const T *s = tmp + c * m * S + j * S;                                                  \
        T *d = dst + (j * C + c) * S;                                                          \
        if (bias)                                                                              \
          add_const_##SFX(d, s, bias[c], S);                                                   \
        else                                                                                   \
          memcpy(d, s, (size_t)S * sizeof(T));                                                 \
      }                                                                                        \
    });                                                                                        \
  }                                                                                            \
  /* x[n, c, :] += bias[c] for m images */                                                     \
  static void add_bias_##SFX(T *x, int64_t m, int64_t C, int64_t S, const T *bias, int par) { \
    SN_CONV_SPLIT(par, m * C, S, {                                                             \
      for (int64_t jc = lo; jc < hi; jc++) add_const_inplace_##SFX(x + jc * S, bias[jc % C], S); \
    });                                                                                        \
  }                                                                                            \
  /* sum of n values with 8 independent accumulators (vectorisable) */                       \
  static inline T sum_row_##SFX(const T *s, int64_t n) {                                      \
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0;                                                \
    int64_t i = 0;                                                                             \
    for (; i + 8 <= n; i += 8)                                                                 \
      for (int k = 0; k < 8; k++) acc[k] += s[i + k];                                          \
    for (; i < n; i++) r += s[i];                                                              \
    return r + (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))); \
  }                                                                                            \
  /* db[c] = sum over n and space of g[n, c, :]; each thread owns a block of channels and   \
   * walks the images in memory order. */                                                      \
  static void bias_grad_##SFX(const T *g, int64_t N, int64_t C, int64_t S, T *db) {           \
    SN_CONV_SPLIT(1, C, N * S, {                                                               \
      for (int64_t c = lo; c < hi; c++) db[c] = 0;                                             \
      for (int64_t n = 0; n < N; n++)                                                          \
        for (int64_t c = lo; c < hi; c++) db[c] += sum_row_##SFX(g + (n * C + c) * S, S);     \
    });                                                                                        \
  }

SN_DEFINE_SCATTER(float, f32)
SN_DEFINE_SCATTER(double, f64)

static void scatter(sn_dtype dt, const void *tmp, int64_t m, int64_t C, int64_t S,
                    const void *bias, void *dst, int par) {
  if (dt == SN_F32)
    scatter_f32((const float *)tmp, m, C, S, (const float *)bias, (float *)dst, par);
  else
    scatter_f64((const double *)tmp, m, C, S, (const double *)bias, (double *)dst, par);
}

static void add_bias(sn_dtype dt, void *x, int64_t m, int64_t C, int64_t S, const void *bias,
                     int par) {
  if (dt == SN_F32)
    add_bias_f32((float *)x, m, C, S, (const float *)bias, par);
  else
    add_bias_f64((double *)x, m, C, S, (const double *)bias, par);
}

static void bias_grad(sn_dtype dt, const void *g, int64_t N, int64_t C, int64_t S, void *db) {
  if (dt == SN_F32)
    bias_grad_f32((const float *)g, N, C, S, (float *)db);
  else
    bias_grad_f64((const double *)g, N, C, S, (double *)db);
}

/* d[i] += s[i] for i in [lo, hi) */
static void add_range(sn_dtype dt, void *d, const void *s, int64_t lo, int64_t hi) {
  if (dt == SN_F32)
    add_rows_f32((float *)d + lo, (const float *)s + lo, hi - lo);
  else
    add_rows_f64((double *)d + lo, (const double *)s + lo, hi - lo);
}

/* ---- the chunked drivers ---- */

typedef struct {
  char *part;     /* nslots - 1 weight-gradient slot sums */
  float *wpack;   /* the packed weight, wpack_g floats per group (NULL: none) */
  char *thr;      /* per-thread buffers, tstride bytes apart */
  size_t tstride;
  int nthr;       /* thread buffers available */
  void *owned;    /* fallback allocation when the call's workspace is short */
  size_t owned_bytes;
} conv_bufs;

static int bufs_get(const sn_call *c, const conv_plan *pl, size_t es, int with_part,
                    const char *op, conv_bufs *b) {
  size_t tb, pb, bytes;
  memset(b, 0, sizeof *b);
  const int want = conv_want_threads(pl);
  if (conv_ws_parts(pl, es, with_part, &tb, &pb) != SN_OK ||
      conv_ws_total(pl, es, with_part, 1, &bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", op);
  char *base = c->ws;
  int nthr = want;
  if (bytes > 0 && (!base || c->ws_bytes < bytes)) {
    /* short workspace (thread count raised after binding, or none): own buffers */
    if (conv_ws_total(pl, es, with_part, want, &bytes) != SN_OK)
      return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", op);
    base = sn_host_alloc(bytes);
    if (!base)
      return sn_error(SN_ERR_OOM, "%s: cannot allocate %zu bytes of workspace", op, bytes);
    b->owned = base;
    b->owned_bytes = bytes;
  } else if (tb > 0) {
    size_t fit = (c->ws_bytes - pb) / tb;
    if (fit < (size_t)nthr) nthr = (int)fit;
  }
  b->part = base;
  b->thr = base ? base + pb : NULL;
  if (base && pl->wpack_g && es == sizeof(float)) {
    size_t parts = 0;
    if (with_part && pl->nslots > 1) parts = pl->w_elems * (size_t)(pl->nslots - 1) * es;
    b->wpack = (float *)(base + round64(parts));
  }
  b->tstride = tb;
  b->nthr = nthr < 1 ? 1 : nthr;
  return SN_OK;
}

static void bufs_release(conv_bufs *b) {
  if (b->owned) sn_host_free(b->owned, b->owned_bytes);
  b->owned = NULL;
}

/* What one call computes.  Pass A (Convolution forward, Deconvolution
 * backward): out = W * im2col(img) (+ bias) and/or dW = sum act *
 * im2col(img)^T.  Pass B (Convolution backward, Deconvolution forward):
 * dW = sum act * im2col(img)^T and/or out = col2im(W^T * act). */
typedef struct {
  sn_dtype dt;
  size_t es;
  const conv_plan *pl;
  const void *W, *img, *act, *bias;
  const float *wp; /* W (pass A) or W^T (pass B) packed per group, for float32 (NULL: none) */
  void *dW, *out;
} conv_job;

/* One thread's buffers. */
typedef struct {
  void *col, *tmp;
  float *work; /* GEMM packing space (NULL: none) */
} conv_tb;

typedef void (*conv_chunk_fn)(const conv_job *j, int64_t ch, const conv_tb *tb, int par,
                              void *dWt, double beta);

/* The column matrix of images [n0, n0 + m): im2col into colb, or the images
 * themselves for the direct 1x1 case.  *ld is its leading dimension. */
static const void *chunk_cols(const conv_job *j, int64_t n0, int64_t m, void *colb, int par,
                              int64_t *ld) {
  const conv_plan *pl = j->pl;
  const void *img = AT(j->img, n0 * pl->Ci * pl->Si, j->es);
  if (pl->direct) {
    *ld = pl->Si;
    return img;
  }
  im2col(j->dt, &pl->g, img, pl->Ci * pl->Si, m, colb, m * pl->Sa, par);
  *ld = m * pl->Sa;
  return colb;
}

/* act of images [n0, n0 + m) as one (Ca, m * Sa) matrix: in place for one
 * image, else gathered into tmpb.  *ld is its leading dimension. */
static const void *chunk_act(const conv_job *j, int64_t n0, int64_t m, void *tmpb, int par,
                             int64_t *ld) {
  const conv_plan *pl = j->pl;
  const void *a = AT(j->act, n0 * pl->Ca * pl->Sa, j->es);
  if (m == 1) {
    *ld = pl->Sa;
    return a;
  }
  gather(a, m, pl->Ca, pl->Sa, j->es, tmpb, par);
  *ld = m * pl->Sa;
  return tmpb;
}

/* dWt = act col^T (+ beta dWt), per group, over ncol columns. */
static void chunk_wgrad(const conv_job *j, const void *a, int64_t lda, const void *col,
                        int64_t ldcol, int64_t ncol, float *wk, int par, void *dWt, double beta) {
  const conv_plan *pl = j->pl;
  const size_t es = j->es;
  for (int64_t gi = 0; gi < pl->G; gi++)
    gemm(j->dt, par, wk, 0, 1, pl->Mg, pl->Kg, ncol, AT(a, gi * pl->Mg * lda, es), lda,
         AT(col, gi * pl->Kg * ldcol, es), ldcol, beta, AT(dWt, gi * pl->Mg * pl->Kg, es), pl->Kg);
}

/* Pass A on chunk ch.  act is read before out is written (they may share tmp). */
static void chunk_a(const conv_job *j, int64_t ch, const conv_tb *tb, int par, void *dWt,
                    double beta) {
  void *colb = tb->col, *tmpb = tb->tmp;
  float *wk = tb->work;
  const conv_plan *pl = j->pl;
  const sn_dtype dt = j->dt;
  const size_t es = j->es;
  const int64_t G = pl->G, Mg = pl->Mg, Kg = pl->Kg, Sa = pl->Sa;
  const int64_t Ca = pl->Ca;
  const int64_t n0 = ch * pl->nb, m = pl->N - n0 < pl->nb ? pl->N - n0 : pl->nb;
  const int64_t ncol = m * Sa;
  int64_t ldcol;
  const void *col = chunk_cols(j, n0, m, colb, par, &ldcol);
  if (dWt) {
    int64_t lda;
    const void *a = chunk_act(j, n0, m, tmpb, par, &lda);
    chunk_wgrad(j, a, lda, col, ldcol, ncol, wk, par, dWt, beta);
  }
  if (j->out && j->wp && !par) {
    /* one GEMM per image from the packed weight, straight into the output */
    for (int64_t jj = 0; jj < m; jj++) {
      float *dst = (float *)AT(j->out, (n0 + jj) * Ca * Sa, es);
      for (int64_t gi = 0; gi < G; gi++)
        sn_gemm_f32_pa(Mg, Sa, Kg, 1.0f, j->wp + gi * pl->wpack_g, 0,
                       (const float *)AT(col, gi * Kg * ldcol + jj * Sa, es), ldcol, 0.0f,
                       dst + gi * Mg * Sa, Sa, j->bias ? (const float *)j->bias + gi * Mg : NULL,
                       wk);
    }
  } else if (j->out) {
    void *dst = AT(j->out, n0 * Ca * Sa, es);
    if (m == 1) {
      for (int64_t gi = 0; gi < G; gi++)
        gemm(dt, par, wk, 0, 0, Mg, ncol, Kg, AT(j->W, gi * Mg * Kg, es), Kg,
             AT(col, gi * Kg * ldcol, es), ldcol, 0.0, AT(dst, gi * Mg * Sa, es), Sa);
      if (j->bias) add_bias(dt, dst, 1, Ca, Sa, j->bias, par);
    } else {
      for (int64_t gi = 0; gi < G; gi++)
        gemm(dt, par, wk, 0, 0, Mg, ncol, Kg, AT(j->W, gi * Mg * Kg, es), Kg,
             AT(col, gi * Kg * ldcol, es), ldcol, 0.0, AT(tmpb, gi * Mg * ncol, es), ncol);
      scatter(dt, tmpb, m, Ca, Sa, j->bias, dst, par);
    }
  }
}

/* Pass B on chunk ch. */
static void chunk_b(const conv_job *j, int64_t ch, const conv_tb *tb, int par, void *dWt,
                    double beta) {
  void *colb = tb->col, *tmpb = tb->tmp;
  float *wk = tb->work;
  const conv_plan *pl = j->pl;
  const sn_dtype dt = j->dt;
  const size_t es = j->es;
  const int64_t G = pl->G, Mg = pl->Mg, Kg = pl->Kg, Sa = pl->Sa, Si = pl->Si;
  const int64_t Ci = pl->Ci;
  const int64_t n0 = ch * pl->nb, m = pl->N - n0 < pl->nb ? pl->N - n0 : pl->nb;
  const int64_t ncol = m * Sa;
  int64_t lda;
  const void *a = chunk_act(j, n0, m, tmpb, par, &lda);
  if (dWt) {
    int64_t ldcol;
    const void *col = chunk_cols(j, n0, m, colb, par, &ldcol);
    chunk_wgrad(j, a, lda, col, ldcol, ncol, wk, par, dWt, beta);
  }
  if (j->out) {
    void *col;
    int64_t ldcol;
    if (pl->direct) {
      col = AT(j->out, n0 * Ci * Si, es);
      ldcol = Si;
    } else {
      col = colb;
      ldcol = ncol;
    }
    for (int64_t gi = 0; gi < G; gi++) {
      if (j->wp && !par)
        sn_gemm_f32_pa(Kg, ncol, Mg, 1.0f, j->wp + gi * pl->wpack_g, 0,
                       (const float *)AT(a, gi * Mg * lda, es), lda, 0.0f,
                       (float *)AT(col, gi * Kg * ldcol, es), ldcol, NULL, wk);
      else
        gemm(dt, par, wk, 1, 0, Kg, ncol, Mg, AT(j->W, gi * Mg * Kg, es), Kg,
             AT(a, gi * Mg * lda, es), lda, 0.0, AT(col, gi * Kg * ldcol, es), ldcol);
    }
    if (!pl->direct)
      col2im(dt, &pl->g, colb, ncol, m, AT(j->out, n0 * Ci * Si, es), Ci * Si, par);
  }
}

/* Thread t's buffers (NULL parts when the plan needs none). */
static conv_tb thread_buf(const conv_job *j, const conv_bufs *b, int t) {
  conv_tb r = {NULL, NULL, NULL};
  if (!b->thr || !b->tstride) return r;
  char *base = b->thr + (size_t)t * b->tstride;
  const size_t cb = j->pl->col_elems * j->es, tb = j->pl->tmp_elems * j->es;
  r.col = base;
  r.tmp = base + cb;
  if (j->pl->gemm_work) r.work = (float *)(base + round64(cb + tb));
  return r;
}

/* Elements per block of the slot reduction. */
#define SN_CONV_RED_BLOCK 4096

/* Runs fn over every chunk (see the comment at conv_plan). */
static void run_chunks(const conv_job *j, conv_chunk_fn fn, const conv_bufs *b) {
  const conv_plan *pl = j->pl;
  const size_t es = j->es;
  const int64_t nch = pl->nchunks;
  if (nch == 0) {
    if (j->dW) memset(j->dW, 0, pl->w_elems * es);
    return;
  }
  int nt = sn_in_parallel() ? 1 : sn_num_threads();
  if (nt > b->nthr) nt = b->nthr;
  if (j->dW && pl->nslots > 1) {
    const int64_t S = pl->nslots, W = (int64_t)pl->w_elems;
    const int64_t nblk = (W + SN_CONV_RED_BLOCK - 1) / SN_CONV_RED_BLOCK;
    if (nt > S) nt = (int)S;
    sn_blas_single();
    SN_OMP(parallel num_threads(nt))
    {
      const conv_tb tb = thread_buf(j, b, sn_thread_id());
      SN_OMP(for schedule(dynamic, 1))
      for (int64_t s = 0; s < S; s++) {
        const int64_t c0 = nch * s / S, c1 = nch * (s + 1) / S;
        void *dWt = s == 0 ? j->dW : (void *)(b->part + (size_t)(s - 1) * pl->w_elems * es);
        for (int64_t ch = c0; ch < c1; ch++)
          fn(j, ch, &tb, 0, dWt, ch == c0 ? 0.0 : 1.0);
      }
      /* slot sums in slot order */
      SN_OMP(for schedule(static))
      for (int64_t k = 0; k < nblk; k++) {
        const int64_t lo = k * SN_CONV_RED_BLOCK;
        const int64_t hi = lo + SN_CONV_RED_BLOCK < W ? lo + SN_CONV_RED_BLOCK : W;
        for (int64_t s = 1; s < S; s++)
          add_range(j->dt, j->dW, b->part + (size_t)(s - 1) * pl->w_elems * es, lo, hi);
      }
    }
    return;
  }
  if (!j->dW && nt > 1 && nch >= nt) {
    sn_blas_single();
    SN_OMP(parallel num_threads(nt))
    {
      const conv_tb tb = thread_buf(j, b, sn_thread_id());
      SN_OMP(for schedule(dynamic, 1))
      for (int64_t ch = 0; ch < nch; ch++) fn(j, ch, &tb, 0, NULL, 0.0);
    }
    return;
  }
  /* one chunk after another, the threads inside each step */
  const conv_tb tb = thread_buf(j, b, 0);
  for (int64_t ch = 0; ch < nch; ch++) fn(j, ch, &tb, 1, j->dW, ch == 0 ? 0.0 : 1.0);
}

/* Packs the weight once per call for the float32 GEMMs of every chunk:
 * W (Mg x Kg per group) for pass A's outputs, W^T for pass B's. */
static void pack_weight(conv_job *j, const conv_bufs *b, int transposed) {
  const conv_plan *pl = j->pl;
  j->wp = NULL;
  if (j->dt != SN_F32 || !b->wpack || !pl->wpack_g || !j->out) return;
  for (int64_t gi = 0; gi < pl->G; gi++) {
    const float *w = (const float *)j->W + gi * pl->Mg * pl->Kg;
    if (transposed)
      sn_gemm_f32_packa(1, pl->Kg, pl->Mg, w, pl->Kg, b->wpack + gi * pl->wpack_g);
    else
      sn_gemm_f32_packa(0, pl->Mg, pl->Kg, w, pl->Kg, b->wpack + gi * pl->wpack_g);
  }
  j->wp = b->wpack;
}

/* ---- kernels ---- */

/* out_shape: the forward output's shape (backward takes it from the output
 * gradient, since the forward output itself is not kept). */
static int conv_setup(sn_call *c, int deconv, const sn_shape *out_shape, conv_param *cp,
                      conv_plan *pl, size_t *es) {
  SN_TRY(conv_param_read(c->p, deconv, cp));
  sn_tensor *data = c->in[0];
  sn_dtype dt = data->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return sn_error(SN_ERR_TYPE, "%s: dtype %s is not supported (float32 or float64)", cp->op,
                    sn_dtype_name(dt));
  *es = sn_dtype_size(dt);
  const sn_shape *img = deconv ? out_shape : &data->shape;
  const sn_shape *act = deconv ? &data->shape : out_shape;
  return conv_plan_make(cp, img, act, &data->shape, pl);
}

static void job_init(conv_job *j, const sn_call *c, const conv_plan *pl, size_t es) {
  memset(j, 0, sizeof *j);
  j->dt = c->in[0]->dtype;
  j->es = es;
  j->pl = pl;
  j->W = sn_tensor_data(c->in[1]);
}

static int conv_forward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
  conv_job j;
  size_t es;
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(conv_setup(c, 0, &c->out[0]->shape, &cp, &pl, &es));
  SN_TRY(bufs_get(c, &pl, es, 0, cp.op, &b));
  job_init(&j, c, &pl, es);
  j.img = sn_tensor_data(c->in[0]);
  j.out = sn_tensor_data(c->out[0]);
  j.bias = cp.no_bias ? NULL : sn_tensor_data(c->in[2]);
  pack_weight(&j, &b, 0);
  run_chunks(&j, chunk_a, &b);
  bufs_release(&b);
  return SN_OK;
}

static int conv_backward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
  conv_job j;
  size_t es;
  if (!c->ograd || !c->ograd[0])
    return sn_error(SN_ERR_ARG, "Convolution: backward needs the output gradient");
  SN_TRY(conv_setup(c, 0, &c->ograd[0]->shape, &cp, &pl, &es));
  sn_dtype dt = c->in[0]->dtype;
  const void *og = sn_tensor_data(c->ograd[0]);
  int need_dx = c->req[0] != SN_REQ_NULL, need_dw = c->req[1] != SN_REQ_NULL;
  int need_db = !cp.no_bias && c->nin > 2 && c->req[2] != SN_REQ_NULL;
  if (need_db) bias_grad(dt, og, pl.N, pl.Ca, pl.Sa, sn_tensor_data(c->igrad[2]));
  if (!need_dx && !need_dw) return SN_OK;
  SN_TRY(bufs_get(c, &pl, es, need_dw, cp.op, &b));
  job_init(&j, c, &pl, es);
  j.act = og;
  j.img = sn_tensor_data(c->in[0]);
  j.dW = need_dw ? sn_tensor_data(c->igrad[1]) : NULL;
  j.out = need_dx ? sn_tensor_data(c->igrad[0]) : NULL;
  pack_weight(&j, &b, 1);
  run_chunks(&j, chunk_b, &b);
  bufs_release(&b);
  return SN_OK;
}

static int deconv_forward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
  conv_job j;
  size_t es;
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(conv_setup(c, 1, &c->out[0]->shape, &cp, &pl, &es));
  SN_TRY(bufs_get(c, &pl, es, 0, cp.op, &b));
  sn_dtype dt = c->in[0]->dtype;
  void *out = sn_tensor_data(c->out[0]);
  job_init(&j, c, &pl, es);
  j.act = sn_tensor_data(c->in[0]);
  j.out = out;
  pack_weight(&j, &b, 1);
  run_chunks(&j, chunk_b, &b);
  if (!cp.no_bias) add_bias(dt, out, pl.N, pl.Ci, pl.Si, sn_tensor_data(c->in[2]), 1);
  bufs_release(&b);
  return SN_OK;
}

static int deconv_backward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
  conv_job j;
  size_t es;
  if (!c->ograd || !c->ograd[0])
    return sn_error(SN_ERR_ARG, "Deconvolution: backward needs the output gradient");
  SN_TRY(conv_setup(c, 1, &c->ograd[0]->shape, &cp, &pl, &es));
  sn_dtype dt = c->in[0]->dtype;
  const void *og = sn_tensor_data(c->ograd[0]);
  int need_dx = c->req[0] != SN_REQ_NULL, need_dw = c->req[1] != SN_REQ_NULL;
  int need_db = !cp.no_bias && c->nin > 2 && c->req[2] != SN_REQ_NULL;
  if (need_db) bias_grad(dt, og, pl.N, pl.Ci, pl.Si, sn_tensor_data(c->igrad[2]));
  if (!need_dx && !need_dw) return SN_OK;
  SN_TRY(bufs_get(c, &pl, es, need_dw, cp.op, &b));
  job_init(&j, c, &pl, es);
  j.img = og;
  j.act = sn_tensor_data(c->in[0]);
  j.dW = need_dw ? sn_tensor_data(c->igrad[1]) : NULL;
  j.out = need_dx ? sn_tensor_data(c->igrad[0]) : NULL;
  pack_weight(&j, &b, 0);
  run_chunks(&j, chunk_a, &b);
  bufs_release(&b);
  return SN_OK;
}

static const sn_op op_convolution = {
    .name = "Convolution",
    .aliases = "_npx_convolution",
    .doc = "Computes 1-D, 2-D or 3-D convolution (cross-correlation) of data (batch, channel, "
           "...) with weight (num_filter, channel / num_group, *kernel) plus bias, with "
           "stride, dilation, zero padding and channel groups. Output spatial size per "
           "dimension: floor((x + 2 * pad - (dilate * (kernel - 1) + 1)) / stride) + 1.",
    .params = conv_params,
    .nparams = (int)(sizeof conv_params / sizeof conv_params[0]),
    .list_inputs = conv_list_inputs,
    .infer_shape = conv_infer_shape,
    .workspace = conv_workspace,
    .forward_cpu = conv_forward,
    .backward_cpu = conv_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "convolution",
};

static const sn_op op_deconvolution = {
    .name = "Deconvolution",
    .aliases = "_npx_deconvolution",
    .doc = "Computes the transposed convolution (the gradient of Convolution with respect "
           "to its input) of data (batch, channel, ...) with weight (channel, num_filter / "
           "num_group, *kernel), plus bias unless no_bias (the default). Output spatial size "
           "per dimension: stride * (x - 1) + dilate * (kernel - 1) + 1 - 2 * pad + adj, or "
           "target_shape when given.",
    .params = deconv_params,
    .nparams = (int)(sizeof deconv_params / sizeof deconv_params[0]),
    .list_inputs = deconv_list_inputs,
    .infer_shape = deconv_infer_shape,
    .workspace = deconv_workspace,
    .forward_cpu = deconv_forward,
    .backward_cpu = deconv_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "deconvolution",
};

const sn_op *const sn_family_convolution[] = {&op_convolution, &op_deconvolution, NULL};
