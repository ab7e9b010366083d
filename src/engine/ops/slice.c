/* Slicing ops (MXNet 1.x names, params and semantics): slice (alias crop:
 * MXNet registers the imperative `crop` as an alias of `slice`; the legacy
 * FCN layer is `Crop`, below), slice_axis, slice_like, Crop, _slice_assign
 * (alias _crop_assign) and _slice_assign_scalar (alias _crop_assign_scalar).
 *
 * slice: begin / end / step are tuples over the leading dims (C order);
 * entries may be None (begin None = 0, or the last index for a negative
 * step; end None = the end, or before the first index for a negative step);
 * negative indices count from the end.  Like MXNet 1.x, begin must lie in
 * the dim, end may not exceed it, begin == end (an empty result) is an error,
 * and the output size is (e - b - 1) / step + 1.  Dims past the tuples are
 * taken whole.  None entries reach the kernel as SN_DIM_NONE (INT64_MIN)
 * from the shape parser.
 *
 * Crop crops the last two dims of a 4-D input to h_w, or to the spatial
 * size of its second input (crop_like, which gets a zero gradient), at
 * `offset` (y, x) or centred.  Inputs are named arg0, arg1 like MXNet.
 *
 * All forwards are strided copies (see shape.c); the backwards scatter the
 * output gradient into a zeroed input gradient and need no forward data. */
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../error.h"
#include "../op.h"
#include "../tensor.h"

#ifndef SN_DIM_NONE
#define SN_DIM_NONE INT64_MIN /* "None" entry of a tuple parameter */
#endif

/* From shape.c: the strided copy engine shared by the shape-like ops. */
void sn_ops_strides(const sn_shape *s, int64_t *st);
void sn_ops_strided_copy(int nd, const int64_t *n, const int64_t *ss, const int64_t *ds,
                         const void *src, void *dst, size_t elsize);
void sn_ops_copy_bytes(void *dst, const void *src, size_t bytes);
void sn_ops_zero(sn_tensor *t);

static const char *shp(const sn_shape *s, char *buf, size_t n) {
  return sn_shape_str(s, buf, n);
}

/* Tuple text of a parameter, None entries included. */
static const char *tup_str(const sn_shape *s, char *buf, size_t n) {
  size_t k = 0;
  if (n == 0)
    return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < s->ndim && k < n; i++) {
    if (s->dim[i] == SN_DIM_NONE)
      k += (size_t)snprintf(buf + k, n - k, i ? ", None" : "None");
    else
      k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s->dim[i]);
  }
  if (k < n)
    snprintf(buf + k, n - k, s->ndim == 1 ? ",)" : ")");
  return buf;
}

static int merge_shape(sn_shape *slot, const sn_shape *val, const char *op, const char *what) {
  char a[128], b[128];
  if (val->ndim < 0)
    return SN_OK;
  if (slot->ndim < 0) {
    *slot = *val;
    return SN_OK;
  }
  int bad = slot->ndim != val->ndim;
  for (int i = 0; !bad && i < val->ndim; i++)
    if (val->dim[i] != 0 && slot->dim[i] != 0 && slot->dim[i] != val->dim[i])
      bad = 1;
  if (bad)
    return sn_error(SN_ERR_SHAPE, "%s: %s has shape %s, expected %s", op, what,
                    shp(slot, a, sizeof a), shp(val, b, sizeof b));
  for (int i = 0; i < val->ndim; i++)
    if (val->dim[i] != 0)
      slot->dim[i] = val->dim[i];
  return SN_OK;
}

static int norm_axis(int64_t axis, int ndim, const char *op, const char *pname, int *out) {
  *out = 0;
  int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    return sn_error(SN_ERR_ARG, "%s: %s=%lld is out of range for a %d-D input", op, pname,
                    (long long)axis, ndim);
  *out = (int)a;
  return SN_OK;
}

/* A box of a tensor: per dim begin, step, and output size. */
typedef struct {
  int nd;
  int64_t b[SN_MAX_DIMS], s[SN_MAX_DIMS], n[SN_MAX_DIMS];
} box;

/* Strided copy between a full tensor (shape fs, data f) and a dense box
 * tensor (data d): dir 0 gathers the box out of f, dir 1 scatters d into f. */
static void box_copy(const box *bx, const sn_shape *fs, void *f, void *d, size_t es, int dir) {
  int64_t fst[SN_MAX_DIMS], dst[SN_MAX_DIMS], fs2[SN_MAX_DIMS];
  sn_shape bs = sn_shape_make(bx->nd, bx->n);
  sn_ops_strides(fs, fst);
  sn_ops_strides(&bs, dst);
  int64_t base = 0;
  for (int i = 0; i < bx->nd; i++) {
    base += bx->b[i] * fst[i];
    fs2[i] = fst[i] * bx->s[i];
  }
  char *fb = (char *)f + base * (int64_t)es;
  if (dir == 0)
    sn_ops_strided_copy(bx->nd, bx->n, fs2, dst, fb, d, es);
  else
    sn_ops_strided_copy(bx->nd, bx->n, dst, fs2, d, fb, es);
}

/* Sets the box of f to the single element at val (zero strides). */
static void box_fill(const box *bx, const sn_shape *fs, void *f, const void *val, size_t es) {
  int64_t fst[SN_MAX_DIMS], fs2[SN_MAX_DIMS], zs[SN_MAX_DIMS];
  sn_ops_strides(fs, fst);
  int64_t base = 0;
  for (int i = 0; i < bx->nd; i++) {
    base += bx->b[i] * fst[i];
    fs2[i] = fst[i] * bx->s[i];
    zs[i] = 0;
  }
  sn_ops_strided_copy(bx->nd, bx->n, zs, fs2, val, (char *)f + base * (int64_t)es, es);
}

/* ======================================================================
 * slice
 * ====================================================================== */

enum { SL_BEGIN, SL_END, SL_STEP };
static const sn_param_spec slice_params[] = {
    {"begin", SN_PT_SHAPE, NULL, NULL,
     "Starting indices (C order) of the slice; negative counts from the end, None means "
     "from the start."},
    {"end", SN_PT_SHAPE, NULL, NULL,
     "Ending indices (exclusive); negative counts from the end, None means to the end."},
    {"step", SN_PT_SHAPE, "()", NULL,
     "Step per dim (may be negative; None or empty means 1)."},
};

/* MXNet's index range over the dims of ds (0 = unknown dim: its output
 * size stays unknown).  Fills bx for the whole ndim. */
static int slice_box(const char *op, const sn_shape *begin, const sn_shape *end,
                     const sn_shape *step, const sn_shape *ds, box *bx) {
  char a[128], b1[160], b2[160];
  int nd = ds->ndim;
  if (begin->ndim != end->ndim)
    return sn_error(SN_ERR_ARG, "%s: begin %s and end %s must have the same length", op,
                    tup_str(begin, b1, sizeof b1), tup_str(end, b2, sizeof b2));
  if (begin->ndim > nd)
    return sn_error(SN_ERR_ARG, "%s: begin %s has more entries than the input %s has dims",
                    op, tup_str(begin, b1, sizeof b1), shp(ds, a, sizeof a));
  if (step->ndim != 0 && step->ndim != begin->ndim)
    return sn_error(SN_ERR_ARG, "%s: step %s and begin %s must have the same length", op,
                    tup_str(step, b1, sizeof b1), tup_str(begin, b2, sizeof b2));
  bx->nd = nd;
  for (int i = 0; i < nd; i++) {
    int64_t len = ds->dim[i];
    if (i >= begin->ndim) {
      bx->b[i] = 0;
      bx->s[i] = 1;
      bx->n[i] = len;
      continue;
    }
    int64_t s = (step->ndim && step->dim[i] != SN_DIM_NONE) ? step->dim[i] : 1;
    if (s == 0)
      return sn_error(SN_ERR_ARG, "%s: step[%d] cannot be 0", op, i);
    bx->s[i] = s;
    if (len == 0) { /* unknown dim */
      bx->b[i] = 0;
      bx->n[i] = 0;
      continue;
    }
    int64_t bb = begin->dim[i] != SN_DIM_NONE ? begin->dim[i] : (s < 0 ? len - 1 : 0);
    int64_t ee = end->dim[i] != SN_DIM_NONE ? end->dim[i] : (s < 0 ? -1 : len);
    if (bb < 0)
      bb += len;
    if (bb < 0 || bb >= len)
      return sn_error(SN_ERR_ARG,
                      "%s: begin[%d]=%lld is out of range for dim %d of size %lld (input %s)",
                      op, i, (long long)begin->dim[i], i, (long long)len, shp(ds, a, sizeof a));
    if (end->dim[i] != SN_DIM_NONE && ee < 0) {
      ee += len;
      if (ee < 0)
        return sn_error(SN_ERR_ARG,
                        "%s: end[%d]=%lld is out of range for dim %d of size %lld (input %s)",
                        op, i, (long long)end->dim[i], i, (long long)len,
                        shp(ds, a, sizeof a));
    }
    if (ee > len)
      return sn_error(SN_ERR_ARG,
                      "%s: end[%d]=%lld is out of range for dim %d of size %lld (input %s)",
                      op, i, (long long)end->dim[i], i, (long long)len, shp(ds, a, sizeof a));
    if (bb == ee)
      return sn_error(SN_ERR_ARG,
                      "%s: begin[%d] = end[%d] = %lld gives an empty slice, which is not "
                      "supported",
                      op, i, i, (long long)ee);
    if (s > 0 && bb > ee)
      return sn_error(SN_ERR_ARG, "%s: begin[%d]=%lld > end[%d]=%lld with step %lld", op, i,
                      (long long)bb, i, (long long)ee, (long long)s);
    if (s < 0 && ee > bb)
      return sn_error(SN_ERR_ARG, "%s: begin[%d]=%lld < end[%d]=%lld with step %lld", op, i,
                      (long long)bb, i, (long long)ee, (long long)s);
    bx->b[i] = bb;
    bx->n[i] = s > 0 ? (ee - bb - 1) / s + 1 : (bb - ee - 1) / (-s) + 1;
  }
  return SN_OK;
}

static int slice_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                       sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  if (in[0].ndim < 0)
    return SN_OK;
  if (in[0].ndim == 0)
    return sn_error(SN_ERR_SHAPE, "slice: the input must have at least one dim");
  box bx;
  SN_TRY(slice_box("slice", &p->v[SL_BEGIN].s, &p->v[SL_END].s, &p->v[SL_STEP].s, &in[0], &bx));
  sn_shape o = sn_shape_make(bx.nd, bx.n);
  return merge_shape(&out[0], &o, "slice", "output");
}

static int slice_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  box bx;
  SN_TRY(slice_box("slice", &c->p->v[SL_BEGIN].s, &c->p->v[SL_END].s, &c->p->v[SL_STEP].s,
                   &c->in[0]->shape, &bx));
  box_copy(&bx, &c->in[0]->shape, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]),
           sn_dtype_size(c->in[0]->dtype), 0);
  return SN_OK;
}

static int slice_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  box bx;
  SN_TRY(slice_box("slice", &c->p->v[SL_BEGIN].s, &c->p->v[SL_END].s, &c->p->v[SL_STEP].s,
                   &c->igrad[0]->shape, &bx));
  sn_ops_zero(c->igrad[0]);
  box_copy(&bx, &c->igrad[0]->shape, sn_tensor_data(c->igrad[0]), sn_tensor_data(c->ograd[0]),
           sn_dtype_size(c->ograd[0]->dtype), 1);
  return SN_OK;
}

static const char *const in_data[] = {"data", NULL};

static const sn_op op_slice = {
    .name = "slice",
    .aliases = "crop",
    .doc = "Takes a slice of the input: for each leading (C-order) dim i, the indices "
           "begin[i], begin[i]+step[i], ... up to but excluding end[i]. Negative indices "
           "count from the end and None takes the whole range; dims past the tuples are "
           "kept whole. `crop` is the same op.",
    .params = slice_params,
    .nparams = 3,
    .inputs = in_data,
    .infer_shape = slice_infer,
    .forward_cpu = slice_forward,
    .backward_cpu = slice_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * slice_axis
 * ====================================================================== */

enum { SA_AXIS, SA_BEGIN, SA_END };
static const sn_param_spec slice_axis_params[] = {
    {"axis", SN_PT_INT, NULL, NULL, "The axis (C order; negative counts from the end)."},
    {"begin", SN_PT_INT, NULL, NULL, "First index (negative counts from the end)."},
    {"end", SN_PT_OPT_INT, NULL, NULL,
     "End index, exclusive (negative counts from the end); None means to the end."},
};

static int slice_axis_box(const sn_params *p, const sn_shape *ds, box *bx) {
  char a[128];
  int ax;
  SN_TRY(norm_axis(p->v[SA_AXIS].i, ds->ndim, "slice_axis", "axis", &ax));
  bx->nd = ds->ndim;
  for (int i = 0; i < ds->ndim; i++) {
    bx->b[i] = 0;
    bx->s[i] = 1;
    bx->n[i] = ds->dim[i];
  }
  int64_t len = ds->dim[ax];
  if (len == 0)
    return SN_OK;
  int64_t b = p->v[SA_BEGIN].i, e = p->v[SA_END].set ? p->v[SA_END].i : len;
  if (b < 0)
    b += len;
  if (e < 0)
    e += len;
  if (b < 0 || b >= len || e <= b || e > len)
    return sn_error(SN_ERR_ARG,
                    "slice_axis: begin=%lld, end=%s%lld is not a valid range for axis %d of "
                    "input %s (size %lld)",
                    (long long)p->v[SA_BEGIN].i, p->v[SA_END].set ? "" : "None=",
                    (long long)(p->v[SA_END].set ? p->v[SA_END].i : len), ax,
                    shp(ds, a, sizeof a), (long long)len);
  bx->b[ax] = b;
  bx->n[ax] = e - b;
  return SN_OK;
}

static int slice_axis_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                            int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  if (in[0].ndim < 0)
    return SN_OK;
  box bx;
  SN_TRY(slice_axis_box(p, &in[0], &bx));
  sn_shape o = sn_shape_make(bx.nd, bx.n);
  SN_TRY(merge_shape(&out[0], &o, "slice_axis", "output"));
  /* other dims flow backward from the output */
  if (out[0].ndim == in[0].ndim) {
    int ax;
    SN_TRY(norm_axis(p->v[SA_AXIS].i, in[0].ndim, "slice_axis", "axis", &ax));
    for (int i = 0; i < in[0].ndim; i++)
      if (i != ax && in[0].dim[i] == 0)
        in[0].dim[i] = out[0].dim[i];
  }
  return SN_OK;
}

static int slice_axis_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  box bx;
  SN_TRY(slice_axis_box(c->p, &c->in[0]->shape, &bx));
  box_copy(&bx, &c->in[0]->shape, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]),
           sn_dtype_size(c->in[0]->dtype), 0);
  return SN_OK;
}

static int slice_axis_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  box bx;
  SN_TRY(slice_axis_box(c->p, &c->igrad[0]->shape, &bx));
  sn_ops_zero(c->igrad[0]);
  box_copy(&bx, &c->igrad[0]->shape, sn_tensor_data(c->igrad[0]), sn_tensor_data(c->ograd[0]),
           sn_dtype_size(c->ograd[0]->dtype), 1);
  return SN_OK;
}

static const sn_op op_slice_axis = {
    .name = "slice_axis",
    .doc = "Slices the input along one axis (C order) from `begin` to `end` (exclusive); "
           "negative indices count from the end and end=None goes to the end.",
    .params = slice_axis_params,
    .nparams = 3,
    .inputs = in_data,
    .infer_shape = slice_axis_infer,
    .forward_cpu = slice_axis_forward,
    .backward_cpu = slice_axis_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * slice_like
 * ====================================================================== */

enum { SLK_AXES };
static const sn_param_spec slice_like_params[] = {
    {"axes", SN_PT_SHAPE, "()", NULL,
     "Axes (C order) to slice to the size of shape_like; empty means all axes."},
};
static const char *const slice_like_inputs[] = {"data", "shape_like", NULL};

static int slice_like_box(const sn_params *p, const sn_shape *ds, const sn_shape *ls, box *bx) {
  char a[128], b[128];
  const sn_shape *axes = &p->v[SLK_AXES].s;
  bx->nd = ds->ndim;
  for (int i = 0; i < ds->ndim; i++) {
    bx->b[i] = 0;
    bx->s[i] = 1;
    bx->n[i] = ds->dim[i];
  }
  if (axes->ndim == 0 && ls->ndim != ds->ndim)
    return sn_error(SN_ERR_SHAPE,
                    "slice_like: with no axes, data %s and shape_like %s must have the same "
                    "number of dims",
                    shp(ds, a, sizeof a), shp(ls, b, sizeof b));
  int n = axes->ndim ? axes->ndim : ds->ndim;
  for (int j = 0; j < n; j++) {
    int ax = j;
    if (axes->ndim) {
      SN_TRY(norm_axis(axes->dim[j], ds->ndim, "slice_like", "axes", &ax));
      if (ax >= ls->ndim)
        return sn_error(SN_ERR_SHAPE, "slice_like: axis %d is out of range for shape_like %s",
                        ax, shp(ls, a, sizeof a));
    }
    int64_t l = ls->dim[ax];
    if (l != 0 && ds->dim[ax] != 0 && l > ds->dim[ax])
      return sn_error(SN_ERR_SHAPE,
                      "slice_like: shape_like %s is larger than data %s in axis %d",
                      shp(ls, a, sizeof a), shp(ds, b, sizeof b), ax);
    bx->n[ax] = l;
  }
  return SN_OK;
}

static int slice_like_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                            int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  if (in[0].ndim < 0 || in[1].ndim < 0)
    return SN_OK;
  box bx;
  SN_TRY(slice_like_box(p, &in[0], &in[1], &bx));
  sn_shape o = sn_shape_make(bx.nd, bx.n);
  return merge_shape(&out[0], &o, "slice_like", "output");
}

static int slice_like_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  box bx;
  SN_TRY(slice_like_box(c->p, &c->in[0]->shape, &c->in[1]->shape, &bx));
  box_copy(&bx, &c->in[0]->shape, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]),
           sn_dtype_size(c->in[0]->dtype), 0);
  return SN_OK;
}

/* Backward of a leading-corner crop: the box is the gradient's own shape. */
static int corner_backward(sn_call *c) {
  if (c->req[0] != SN_REQ_NULL) {
    const sn_tensor *og = c->ograd[0];
    box bx;
    bx.nd = og->shape.ndim;
    for (int i = 0; i < bx.nd; i++) {
      bx.b[i] = 0;
      bx.s[i] = 1;
      bx.n[i] = og->shape.dim[i];
    }
    sn_ops_zero(c->igrad[0]);
    box_copy(&bx, &c->igrad[0]->shape, sn_tensor_data(c->igrad[0]), sn_tensor_data(og),
             sn_dtype_size(og->dtype), 1);
  }
  if (c->nin > 1 && c->req[1] != SN_REQ_NULL)
    sn_ops_zero(c->igrad[1]);
  return SN_OK;
}

static const sn_op op_slice_like = {
    .name = "slice_like",
    .doc = "Slices `data` from the start of each dim to the size of `shape_like` in the "
           "given axes (all axes when `axes` is empty). shape_like gets a zero gradient.",
    .params = slice_like_params,
    .nparams = 1,
    .inputs = slice_like_inputs,
    .infer_shape = slice_like_infer,
    .forward_cpu = slice_like_forward,
    .backward_cpu = corner_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * Crop (legacy layer)
 * ====================================================================== */

enum { CR_NUM_ARGS, CR_OFFSET, CR_HW, CR_CENTER };
static const sn_param_spec crop_params[] = {
    {"num_args", SN_PT_INT, NULL, NULL,
     "1: crop to h_w; 2: crop to the height and width of the second input (crop_like)."},
    {"offset", SN_PT_SHAPE, "(0, 0)", NULL, "Crop offset (y, x) in C order."},
    {"h_w", SN_PT_SHAPE, "(0, 0)", NULL, "Crop height and width (h, w) in C order."},
    {"center_crop", SN_PT_BOOL, "False", NULL,
     "If true, crop the centre (the offset is ignored)."},
};
static const char *const crop_arg_names[] = {"arg0", "arg1", NULL};

static int crop_list_inputs(const sn_params *p, const char **names, int cap) {
  int n = p->v[CR_NUM_ARGS].i == 2 ? 2 : 1;
  for (int i = 0; i < n && i < cap; i++)
    names[i] = crop_arg_names[i];
  return n;
}

/* Output spatial size and offsets for data shape ds (4-D, known). */
static int crop_geom(const sn_params *p, const sn_shape *ds, const sn_shape *like, int64_t *h,
                     int64_t *w, int64_t *oy, int64_t *ox) {
  char a[128], b[128];
  int64_t na = p->v[CR_NUM_ARGS].i;
  if (na < 1 || na > 2)
    return sn_error(SN_ERR_ARG, "Crop: num_args=%lld must be 1 or 2", (long long)na);
  if (ds->ndim != 4)
    return sn_error(SN_ERR_SHAPE, "Crop: data must be 4-D (batch, channel, y, x), got %s",
                    shp(ds, a, sizeof a));
  if (na == 1) {
    const sn_shape *hw = &p->v[CR_HW].s;
    if (hw->ndim != 2)
      return sn_error(SN_ERR_ARG, "Crop: h_w must have 2 entries");
    *h = hw->dim[0];
    *w = hw->dim[1];
    if (*h < 1 || *w < 1)
      return sn_error(SN_ERR_ARG, "Crop: h_w=(%lld, %lld) must be positive with num_args=1",
                      (long long)*h, (long long)*w);
  } else {
    if (!like || like->ndim < 0) {
      *h = *w = 0;
      return SN_OK;
    }
    if (like->ndim != 4)
      return sn_error(SN_ERR_SHAPE, "Crop: crop_like must be 4-D, got %s",
                      shp(like, a, sizeof a));
    *h = like->dim[2];
    *w = like->dim[3];
  }
  if ((ds->dim[2] && *h > ds->dim[2]) || (ds->dim[3] && *w > ds->dim[3]))
    return sn_error(SN_ERR_SHAPE, "Crop: crop size (%lld, %lld) is larger than data %s",
                    (long long)*h, (long long)*w, shp(ds, b, sizeof b));
  if (!ds->dim[2] || !ds->dim[3] || !*h || !*w) {
    *oy = *ox = 0;
    return SN_OK;
  }
  if (p->v[CR_CENTER].i) {
    *oy = (ds->dim[2] - *h) / 2;
    *ox = (ds->dim[3] - *w) / 2;
  } else {
    const sn_shape *off = &p->v[CR_OFFSET].s;
    if (off->ndim != 2)
      return sn_error(SN_ERR_ARG, "Crop: offset must have 2 entries");
    *oy = off->dim[0];
    *ox = off->dim[1];
    if (*oy < 0 || *ox < 0 || *oy > ds->dim[2] - *h || *ox > ds->dim[3] - *w)
      return sn_error(SN_ERR_ARG,
                      "Crop: offset (%lld, %lld) with crop size (%lld, %lld) does not fit "
                      "data %s",
                      (long long)*oy, (long long)*ox, (long long)*h, (long long)*w,
                      shp(ds, b, sizeof b));
  }
  return SN_OK;
}

static int crop_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                      sn_shape *aux, int naux) {
  (void)nout, (void)aux, (void)naux;
  if (nin != (p->v[CR_NUM_ARGS].i == 2 ? 2 : 1))
    return sn_error(SN_ERR_ARG, "Crop: num_args=%lld but %d inputs", (long long)p->v[CR_NUM_ARGS].i,
                    nin);
  if (in[0].ndim < 0)
    return SN_OK;
  int64_t h, w, oy, ox;
  SN_TRY(crop_geom(p, &in[0], nin > 1 ? &in[1] : NULL, &h, &w, &oy, &ox));
  sn_shape o = in[0];
  o.dim[2] = h;
  o.dim[3] = w;
  return merge_shape(&out[0], &o, "Crop", "output");
}

static int crop_box(const sn_call *c, const sn_shape *ds, const sn_shape *os, box *bx) {
  int64_t h, w, oy, ox;
  sn_shape like = *os; /* the output has crop_like's spatial size */
  SN_TRY(crop_geom(c->p, ds, &like, &h, &w, &oy, &ox));
  if (c->p->v[CR_NUM_ARGS].i == 1 && (h != os->dim[2] || w != os->dim[3]))
    return sn_error(SN_ERR_INTERNAL, "Crop: output shape disagrees with h_w");
  bx->nd = 4;
  for (int i = 0; i < 4; i++) {
    bx->b[i] = 0;
    bx->s[i] = 1;
    bx->n[i] = os->dim[i];
  }
  bx->b[2] = oy;
  bx->b[3] = ox;
  return SN_OK;
}

static int crop_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  box bx;
  SN_TRY(crop_box(c, &c->in[0]->shape, &c->out[0]->shape, &bx));
  box_copy(&bx, &c->in[0]->shape, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]),
           sn_dtype_size(c->in[0]->dtype), 0);
  return SN_OK;
}

static int crop_backward(sn_call *c) {
  if (c->req[0] != SN_REQ_NULL) {
    box bx;
    SN_TRY(crop_box(c, &c->igrad[0]->shape, &c->ograd[0]->shape, &bx));
    sn_ops_zero(c->igrad[0]);
    box_copy(&bx, &c->igrad[0]->shape, sn_tensor_data(c->igrad[0]),
             sn_tensor_data(c->ograd[0]), sn_dtype_size(c->ograd[0]->dtype), 1);
  }
  if (c->nin > 1 && c->req[1] != SN_REQ_NULL)
    sn_ops_zero(c->igrad[1]);
  return SN_OK;
}

static const sn_op op_crop = {
    .name = "Crop",
    .doc = "Crops the last two (spatial) dims of a 4-D NCHW input (R: the first two dims) "
           "to h_w, or to the spatial size of a second input `crop_like` when num_args=2, "
           "starting at `offset` (y, x) or at the centre when center_crop=TRUE. Used by "
           "FCN/U-Net skip connections; crop_like gets a zero gradient.",
    .params = crop_params,
    .nparams = 4,
    .list_inputs = crop_list_inputs,
    .infer_shape = crop_infer,
    .forward_cpu = crop_forward,
    .backward_cpu = crop_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * _slice_assign, _slice_assign_scalar
 * ====================================================================== */

static const char *const slice_assign_inputs[] = {"lhs", "rhs", NULL};

static int slice_assign_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                              int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  SN_TRY(merge_shape(&in[0], &out[0], "_slice_assign", "lhs"));
  if (in[0].ndim < 0)
    return SN_OK;
  SN_TRY(merge_shape(&out[0], &in[0], "_slice_assign", "output"));
  box bx;
  SN_TRY(slice_box("_slice_assign", &p->v[SL_BEGIN].s, &p->v[SL_END].s, &p->v[SL_STEP].s,
                   &in[0], &bx));
  sn_shape v = sn_shape_make(bx.nd, bx.n);
  return merge_shape(&in[1], &v, "_slice_assign", "rhs");
}

static int slice_assign_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *lhs = c->in[0], *rhs = c->in[1];
  sn_tensor *out = c->out[0];
  box bx;
  SN_TRY(slice_box("_slice_assign", &c->p->v[SL_BEGIN].s, &c->p->v[SL_END].s,
                   &c->p->v[SL_STEP].s, &lhs->shape, &bx));
  sn_ops_copy_bytes(sn_tensor_data(out), sn_tensor_data(lhs), sn_tensor_bytes(lhs));
  box_copy(&bx, &out->shape, sn_tensor_data(out), sn_tensor_data(rhs), sn_dtype_size(rhs->dtype),
           1);
  return SN_OK;
}

static int slice_assign_backward(sn_call *c) {
  const sn_tensor *og = c->ograd[0];
  size_t es = sn_dtype_size(og->dtype);
  box bx;
  SN_TRY(slice_box("_slice_assign", &c->p->v[SL_BEGIN].s, &c->p->v[SL_END].s,
                   &c->p->v[SL_STEP].s, &og->shape, &bx));
  if (c->req[1] != SN_REQ_NULL) /* rhs: the region of the gradient (first) */
    box_copy(&bx, &og->shape, sn_tensor_data(og), sn_tensor_data(c->igrad[1]), es, 0);
  if (c->req[0] != SN_REQ_NULL) { /* lhs: the gradient outside the region */
    static const uint64_t zero = 0;
    sn_ops_copy_bytes(sn_tensor_data(c->igrad[0]), sn_tensor_data(og), sn_tensor_bytes(og));
    box_fill(&bx, &og->shape, sn_tensor_data(c->igrad[0]), &zero, es);
  }
  return SN_OK;
}

static const sn_op op_slice_assign = {
    .name = "_slice_assign",
    .aliases = "_crop_assign",
    .doc = "Returns a copy of `lhs` whose region begin:end:step (as in `slice`) is replaced "
           "by `rhs`, which must have the region's shape.",
    .params = slice_params,
    .nparams = 3,
    .inputs = slice_assign_inputs,
    .infer_shape = slice_assign_infer,
    .forward_cpu = slice_assign_forward,
    .backward_cpu = slice_assign_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

enum { SAS_SCALAR, SAS_BEGIN, SAS_END, SAS_STEP };
static const sn_param_spec slice_assign_scalar_params[] = {
    {"scalar", SN_PT_FLOAT, "0", NULL, "The value to assign to the region."},
    {"begin", SN_PT_SHAPE, NULL, NULL, "Starting indices of the region (as in slice)."},
    {"end", SN_PT_SHAPE, NULL, NULL, "Ending indices of the region (as in slice)."},
    {"step", SN_PT_SHAPE, "()", NULL, "Steps of the region (as in slice)."},
};

static int slice_assign_scalar_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                                     int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  SN_TRY(merge_shape(&in[0], &out[0], "_slice_assign_scalar", "data"));
  if (in[0].ndim < 0)
    return SN_OK;
  box bx;
  SN_TRY(slice_box("_slice_assign_scalar", &p->v[SAS_BEGIN].s, &p->v[SAS_END].s,
                   &p->v[SAS_STEP].s, &in[0], &bx));
  return merge_shape(&out[0], &in[0], "_slice_assign_scalar", "output");
}

static int slice_assign_scalar_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *in = c->in[0];
  sn_tensor *out = c->out[0];
  box bx;
  SN_TRY(slice_box("_slice_assign_scalar", &c->p->v[SAS_BEGIN].s, &c->p->v[SAS_END].s,
                   &c->p->v[SAS_STEP].s, &in->shape, &bx));
  double v = c->p->v[SAS_SCALAR].f;
  union {
    float f;
    double d;
    uint8_t u8;
    int8_t i8;
    int32_t i32;
    int64_t i64;
    uint64_t pad;
  } val;
  val.pad = 0;
  switch (in->dtype) {
  case SN_F32: val.f = (float)v; break;
  case SN_F64: val.d = v; break;
  case SN_U8: val.u8 = (uint8_t)v; break;
  case SN_I8: val.i8 = (int8_t)v; break;
  case SN_I32: val.i32 = (int32_t)v; break;
  case SN_I64: val.i64 = (int64_t)v; break;
  default:
    return sn_error(SN_ERR_TYPE, "_slice_assign_scalar: dtype %s is not supported",
                    sn_dtype_name(in->dtype));
  }
  sn_ops_copy_bytes(sn_tensor_data(out), sn_tensor_data(in), sn_tensor_bytes(in));
  box_fill(&bx, &out->shape, sn_tensor_data(out), &val, sn_dtype_size(in->dtype));
  return SN_OK;
}

static int slice_assign_scalar_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *og = c->ograd[0];
  box bx;
  SN_TRY(slice_box("_slice_assign_scalar", &c->p->v[SAS_BEGIN].s, &c->p->v[SAS_END].s,
                   &c->p->v[SAS_STEP].s, &og->shape, &bx));
  static const uint64_t zero = 0;
  sn_ops_copy_bytes(sn_tensor_data(c->igrad[0]), sn_tensor_data(og), sn_tensor_bytes(og));
  box_fill(&bx, &og->shape, sn_tensor_data(c->igrad[0]), &zero, sn_dtype_size(og->dtype));
  return SN_OK;
}

static const sn_op op_slice_assign_scalar = {
    .name = "_slice_assign_scalar",
    .aliases = "_crop_assign_scalar",
    .doc = "Returns a copy of the input whose region begin:end:step (as in `slice`) is set "
           "to `scalar`.",
    .params = slice_assign_scalar_params,
    .nparams = 4,
    .inputs = in_data,
    .infer_shape = slice_assign_scalar_infer,
    .forward_cpu = slice_assign_scalar_forward,
    .backward_cpu = slice_assign_scalar_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

const sn_op *const sn_family_slice[] = {&op_slice,        &op_slice_axis,
                                        &op_slice_like,   &op_crop,
                                        &op_slice_assign, &op_slice_assign_scalar,
                                        NULL};
