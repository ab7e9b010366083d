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
 * back to NCHW); a 1x1 / stride 1 / no pad case with a large grid uses the
 * tensors directly with no column buffer.  Temporary buffers come from the
 * call's workspace (sized by the `workspace` callback). */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"
#include "im2col.h"

/* Batching of images per GEMM: at least SN_CONV_MIN_COLS columns (output
 * positions) per GEMM, more while the float32 column buffer stays within
 * SN_CONV_COL_BUDGET bytes (cache-sized), at most SN_CONV_MAX_COLS. */
#define SN_CONV_MIN_COLS 256
#define SN_CONV_MAX_COLS 4096
#define SN_CONV_COL_BUDGET (512 * 1024)

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
 * Deconvolution data).  The weight is (Ca, Ci / G, *kernel) in both ops. */
typedef struct {
  sn_im2col_geom g;
  int64_t N, G, Ci, Ca, Mg, Kg, Si, Sa;
  int direct; /* 1x1 kernel, stride 1, no pad, large grid: no column buffer */
  int64_t nb; /* images per GEMM */
  size_t col_elems, tmp_elems;
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
  int unit = g->kprod == 1;
  for (int i = 0; i < 3; i++) unit = unit && g->s[i] == 1 && g->p[i] == 0;
  unit = unit && g->in_size == g->out_size;
  if (unit && (pl->Sa >= SN_CONV_MIN_COLS || pl->N == 1)) {
    pl->direct = 1;
    pl->nb = 1;
    return SN_OK;
  }
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
  return SN_OK;
}

/* Workspace bytes; the dtype is not known here, so elements are sized for
 * float64 (float32 uses half of it). */
static int conv_ws_common(const sn_params *p, int deconv, const sn_shape *in, const sn_shape *out,
                          size_t *bytes) {
  conv_param cp;
  conv_plan pl;
  *bytes = 0;
  SN_TRY(conv_param_read(p, deconv, &cp));
  if (!sn_shape_known(&in[0]) || !sn_shape_known(&out[0])) return SN_OK;
  const sn_shape *img = deconv ? &out[0] : &in[0], *act = deconv ? &in[0] : &out[0];
  SN_TRY(conv_plan_make(&cp, img, act, &in[0], &pl));
  size_t n;
  if (sn_add_size(pl.col_elems, pl.tmp_elems, &n) != SN_OK ||
      sn_mul_size(n, sizeof(double), bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", cp.op);
  return SN_OK;
}

static int conv_workspace(const sn_params *p, const sn_shape *in, int nin, const sn_shape *out,
                          int nout, int backward, size_t *bytes) {
  (void)nin;
  (void)nout;
  (void)backward;
  return conv_ws_common(p, 0, in, out, bytes);
}

static int deconv_workspace(const sn_params *p, const sn_shape *in, int nin,
                            const sn_shape *out, int nout, int backward, size_t *bytes) {
  (void)nin;
  (void)nout;
  (void)backward;
  return conv_ws_common(p, 1, in, out, bytes);
}

/* ---- typed helpers ---- */

#define AT(ptr, i, es) ((void *)((char *)(ptr) + (size_t)(i) * (es)))

static void gemm(sn_dtype dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const void *a,
                 int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  if (dt == SN_F32)
    sn_gemm_f32(ta, tb, m, n, k, 1.0f, (const float *)a, lda, (const float *)b, ldb,
                (float)beta, (float *)c, ldc);
  else
    sn_gemm_f64(ta, tb, m, n, k, 1.0, (const double *)a, lda, (const double *)b, ldb, beta,
                (double *)c, ldc);
}

static void im2col(sn_dtype dt, const sn_im2col_geom *g, const void *img, int64_t img_stride,
                   int64_t nimg, void *col, int64_t ldcol) {
  if (dt == SN_F32)
    sn_im2col_f32(g, (const float *)img, img_stride, nimg, (float *)col, ldcol);
  else
    sn_im2col_f64(g, (const double *)img, img_stride, nimg, (double *)col, ldcol);
}

static void col2im(sn_dtype dt, const sn_im2col_geom *g, const void *col, int64_t ldcol,
                   int64_t nimg, void *img, int64_t img_stride) {
  if (dt == SN_F32)
    sn_col2im_f32(g, (const float *)col, ldcol, nimg, (float *)img, img_stride);
  else
    sn_col2im_f64(g, (const double *)col, ldcol, nimg, (double *)img, img_stride);
}

/* tmp (C x m*S, image j in columns [j*S, (j+1)*S)) <- src images n0.. (C x S each) */
static void gather(const void *src, int64_t m, int64_t C, int64_t S, size_t es, void *tmp) {
  const int64_t total = m * C;
  SN_PARALLEL_FOR_COST(total, S)
  for (int64_t jc = 0; jc < total; jc++) {
    int64_t j = jc / C, c = jc % C;
    memcpy(AT(tmp, c * m * S + j * S, es), AT(src, (j * C + c) * S, es), (size_t)S * es);
  }
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
  /* Inverse of gather, adding bias[c] when bias is not NULL. */                               \
  static void scatter_##SFX(const T *tmp, int64_t m, int64_t C, int64_t S, const T *bias,     \
                            T *dst) {                                                           \
    const int64_t total = m * C;                                                               \
    SN_PARALLEL_FOR_COST(total, S)                                                             \
    for (int64_t jc = 0; jc < total; jc++) {                                                   \
      int64_t j = jc / C, c = jc % C;                                                          \
      const T *s = tmp + c * m * S + j * S;                                                    \
      T *d = dst + (j * C + c) * S;                                                            \
      if (bias)                                                                                \
        add_const_##SFX(d, s, bias[c], S);                                                     \
      else                                                                                     \
        memcpy(d, s, (size_t)S * sizeof(T));                                                   \
    }                                                                                          \
  }                                                                                            \
  /* x[n, c, :] += bias[c] for m images */                                                     \
  static void add_bias_##SFX(T *x, int64_t m, int64_t C, int64_t S, const T *bias) {          \
    const int64_t total = m * C;                                                               \
    SN_PARALLEL_FOR_COST(total, S)                                                             \
    for (int64_t jc = 0; jc < total; jc++) add_const_inplace_##SFX(x + jc * S, bias[jc % C], S); \
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
    int64_t nt = sn_num_threads();                                                             \
    if (nt > C) nt = C;                                                                        \
    if (nt < 1) nt = 1;                                                                        \
    SN_PARALLEL_FOR_COST(nt, N * C * S / nt)                                                   \
    for (int64_t t = 0; t < nt; t++) {                                                         \
      const int64_t c0 = t * C / nt, c1 = (t + 1) * C / nt;                                    \
      for (int64_t c = c0; c < c1; c++) db[c] = 0;                                             \
      for (int64_t n = 0; n < N; n++)                                                          \
        for (int64_t c = c0; c < c1; c++) db[c] += sum_row_##SFX(g + (n * C + c) * S, S);     \
    }                                                                                          \
  }

SN_DEFINE_SCATTER(float, f32)
SN_DEFINE_SCATTER(double, f64)

static void scatter(sn_dtype dt, const void *tmp, int64_t m, int64_t C, int64_t S,
                    const void *bias, void *dst) {
  if (dt == SN_F32)
    scatter_f32((const float *)tmp, m, C, S, (const float *)bias, (float *)dst);
  else
    scatter_f64((const double *)tmp, m, C, S, (const double *)bias, (double *)dst);
}

static void add_bias(sn_dtype dt, void *x, int64_t m, int64_t C, int64_t S, const void *bias) {
  if (dt == SN_F32)
    add_bias_f32((float *)x, m, C, S, (const float *)bias);
  else
    add_bias_f64((double *)x, m, C, S, (const double *)bias);
}

static void bias_grad(sn_dtype dt, const void *g, int64_t N, int64_t C, int64_t S, void *db) {
  if (dt == SN_F32)
    bias_grad_f32((const float *)g, N, C, S, (float *)db);
  else
    bias_grad_f64((const double *)g, N, C, S, (double *)db);
}

/* ---- the two chunked drivers ---- */

typedef struct {
  void *col, *tmp; /* workspace parts */
  void *owned;     /* fallback allocation when the call's workspace is short */
  size_t owned_bytes;
} conv_bufs;

static int bufs_get(const sn_call *c, const conv_plan *pl, size_t es, const char *op,
                    conv_bufs *b) {
  size_t n, bytes;
  memset(b, 0, sizeof *b);
  if (sn_add_size(pl->col_elems, pl->tmp_elems, &n) != SN_OK ||
      sn_mul_size(n, es, &bytes) != SN_OK)
    return sn_error(SN_ERR_OVERFLOW, "%s: workspace size overflows", op);
  if (bytes == 0) return SN_OK;
  void *base = c->ws;
  if (!base || c->ws_bytes < bytes) {
    base = sn_host_alloc(bytes);
    if (!base)
      return sn_error(SN_ERR_OOM, "%s: cannot allocate %zu bytes of workspace", op, bytes);
    b->owned = base;
    b->owned_bytes = bytes;
  }
  b->col = base;
  b->tmp = AT(base, pl->col_elems, es);
  return SN_OK;
}

static void bufs_release(conv_bufs *b) {
  if (b->owned) sn_host_free(b->owned, b->owned_bytes);
  b->owned = NULL;
}

/* Pass A: act_out = W * im2col(img) (+ bias), and/or dW = sum act_dw * im2col(img)^T.
 * act_dw is read before act_out is written (they may share tmp). */
static void pass_a(sn_dtype dt, size_t es, const conv_plan *pl, const conv_bufs *b,
                   const void *W, const void *img, const void *act_dw, void *dW, void *act_out,
                   const void *bias) {
  const int64_t N = pl->N, G = pl->G, Mg = pl->Mg, Kg = pl->Kg, Sa = pl->Sa, Si = pl->Si;
  const int64_t Ci = pl->Ci, Ca = pl->Ca;
  for (int64_t n0 = 0; n0 < N; n0 += pl->nb) {
    const int64_t m = N - n0 < pl->nb ? N - n0 : pl->nb;
    const int64_t ncol = m * Sa;
    const void *col;
    int64_t ldcol;
    if (pl->direct) {
      col = AT(img, n0 * Ci * Si, es);
      ldcol = Si;
    } else {
      im2col(dt, &pl->g, AT(img, n0 * Ci * Si, es), Ci * Si, m, b->col, ncol);
      col = b->col;
      ldcol = ncol;
    }
    if (dW) {
      const void *a;
      int64_t lda;
      if (m == 1) {
        a = AT(act_dw, n0 * Ca * Sa, es);
        lda = Sa;
      } else {
        gather(AT(act_dw, n0 * Ca * Sa, es), m, Ca, Sa, es, b->tmp);
        a = b->tmp;
        lda = ncol;
      }
      for (int64_t gi = 0; gi < G; gi++)
        gemm(dt, 0, 1, Mg, Kg, ncol, AT(a, gi * Mg * lda, es), lda,
             AT(col, gi * Kg * ldcol, es), ldcol, n0 == 0 ? 0.0 : 1.0,
             AT(dW, gi * Mg * Kg, es), Kg);
    }
    if (act_out) {
      void *dst = AT(act_out, n0 * Ca * Sa, es);
      if (m == 1) {
        for (int64_t gi = 0; gi < G; gi++)
          gemm(dt, 0, 0, Mg, ncol, Kg, AT(W, gi * Mg * Kg, es), Kg,
               AT(col, gi * Kg * ldcol, es), ldcol, 0.0, AT(dst, gi * Mg * Sa, es), Sa);
        if (bias) add_bias(dt, dst, 1, Ca, Sa, bias);
      } else {
        for (int64_t gi = 0; gi < G; gi++)
          gemm(dt, 0, 0, Mg, ncol, Kg, AT(W, gi * Mg * Kg, es), Kg,
               AT(col, gi * Kg * ldcol, es), ldcol, 0.0, AT(b->tmp, gi * Mg * ncol, es), ncol);
        scatter(dt, b->tmp, m, Ca, Sa, bias, dst);
      }
    }
  }
}

/* Pass B: dW = sum act * im2col(img_dw)^T and/or img_out = col2im(W^T * act). */
static void pass_b(sn_dtype dt, size_t es, const conv_plan *pl, const conv_bufs *b,
                   const void *W, const void *act, const void *img_dw, void *dW,
                   void *img_out) {
  const int64_t N = pl->N, G = pl->G, Mg = pl->Mg, Kg = pl->Kg, Sa = pl->Sa, Si = pl->Si;
  const int64_t Ci = pl->Ci, Ca = pl->Ca;
  for (int64_t n0 = 0; n0 < N; n0 += pl->nb) {
    const int64_t m = N - n0 < pl->nb ? N - n0 : pl->nb;
    const int64_t ncol = m * Sa;
    const void *a;
    int64_t lda;
    if (m == 1) {
      a = AT(act, n0 * Ca * Sa, es);
      lda = Sa;
    } else {
      gather(AT(act, n0 * Ca * Sa, es), m, Ca, Sa, es, b->tmp);
      a = b->tmp;
      lda = ncol;
    }
    if (dW) {
      const void *col;
      int64_t ldcol;
      if (pl->direct) {
        col = AT(img_dw, n0 * Ci * Si, es);
        ldcol = Si;
      } else {
        im2col(dt, &pl->g, AT(img_dw, n0 * Ci * Si, es), Ci * Si, m, b->col, ncol);
        col = b->col;
        ldcol = ncol;
      }
      for (int64_t gi = 0; gi < G; gi++)
        gemm(dt, 0, 1, Mg, Kg, ncol, AT(a, gi * Mg * lda, es), lda,
             AT(col, gi * Kg * ldcol, es), ldcol, n0 == 0 ? 0.0 : 1.0,
             AT(dW, gi * Mg * Kg, es), Kg);
    }
    if (img_out) {
      void *col;
      int64_t ldcol;
      if (pl->direct) {
        col = AT(img_out, n0 * Ci * Si, es);
        ldcol = Si;
      } else {
        col = b->col;
        ldcol = ncol;
      }
      for (int64_t gi = 0; gi < G; gi++)
        gemm(dt, 1, 0, Kg, ncol, Mg, AT(W, gi * Mg * Kg, es), Kg, AT(a, gi * Mg * lda, es),
             lda, 0.0, AT(col, gi * Kg * ldcol, es), ldcol);
      if (!pl->direct)
        col2im(dt, &pl->g, b->col, ncol, m, AT(img_out, n0 * Ci * Si, es), Ci * Si);
    }
  }
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

static int conv_forward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
  size_t es;
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(conv_setup(c, 0, &c->out[0]->shape, &cp, &pl, &es));
  SN_TRY(bufs_get(c, &pl, es, cp.op, &b));
  sn_dtype dt = c->in[0]->dtype;
  pass_a(dt, es, &pl, &b, sn_tensor_data(c->in[1]), sn_tensor_data(c->in[0]), NULL, NULL,
         sn_tensor_data(c->out[0]), cp.no_bias ? NULL : sn_tensor_data(c->in[2]));
  bufs_release(&b);
  return SN_OK;
}

static int conv_backward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
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
  SN_TRY(bufs_get(c, &pl, es, cp.op, &b));
  pass_b(dt, es, &pl, &b, sn_tensor_data(c->in[1]), og, sn_tensor_data(c->in[0]),
         need_dw ? sn_tensor_data(c->igrad[1]) : NULL,
         need_dx ? sn_tensor_data(c->igrad[0]) : NULL);
  bufs_release(&b);
  return SN_OK;
}

static int deconv_forward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
  size_t es;
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  SN_TRY(conv_setup(c, 1, &c->out[0]->shape, &cp, &pl, &es));
  SN_TRY(bufs_get(c, &pl, es, cp.op, &b));
  sn_dtype dt = c->in[0]->dtype;
  void *out = sn_tensor_data(c->out[0]);
  pass_b(dt, es, &pl, &b, sn_tensor_data(c->in[1]), sn_tensor_data(c->in[0]), NULL, NULL, out);
  if (!cp.no_bias) add_bias(dt, out, pl.N, pl.Ci, pl.Si, sn_tensor_data(c->in[2]));
  bufs_release(&b);
  return SN_OK;
}

static int deconv_backward(sn_call *c) {
  conv_param cp;
  conv_plan pl;
  conv_bufs b;
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
  SN_TRY(bufs_get(c, &pl, es, cp.op, &b));
  pass_a(dt, es, &pl, &b, sn_tensor_data(c->in[1]), og, sn_tensor_data(c->in[0]),
         need_dw ? sn_tensor_data(c->igrad[1]) : NULL,
         need_dx ? sn_tensor_data(c->igrad[0]) : NULL, NULL);
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
