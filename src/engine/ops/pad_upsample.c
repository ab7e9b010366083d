/* Pad and UpSampling (MXNet 1.x names, params and semantics).
 *
 * Pad (alias pad) pads a 4-D or 5-D input.  pad_width is numpy's pad_width
 * flattened in C order, (before_0, after_0, ..., before_k, after_k), and,
 * like MXNet, the first two dims (batch, channel) may not be padded.  Modes:
 * constant (constant_value), edge (repeat the border value) and reflect
 * (mirror without repeating the border, numpy's "reflect"; the widths must
 * then be smaller than the dim).  The gradient sums the output gradient of
 * every output position into the input position it was read from.
 *
 * UpSampling, sample_type nearest: each of the num_args NCHW inputs (named
 * arg0..) is upsampled to (H0 * scale_h, W0 * scale_w), H0, W0 being the
 * first input's size (each input's own factor is that size over its own),
 * then the results are concatenated along channels (multi_input_mode concat,
 * the default) or summed (sum).  scale is an int or a tuple (h, w) like
 * MXNet's later versions.  The gradient sums each block.
 * sample_type bilinear: inputs data and weight (C, 1, k, k) with
 * k = 2 * scale - scale % 2; the output is the depthwise transposed
 * convolution with stride scale and pad ceil((scale - 1) / 2), which is what
 * MXNet computes (the weight is usually initialised to a bilinear kernel);
 * num_filter must equal the number of channels.  Gradients go to data and
 * weight.  workspace is accepted and ignored. */
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../error.h"
#include "../op.h"
#include "../tensor.h"

/* From shape.c. */
void sn_ops_zero(sn_tensor *t);

static const char *shp(const sn_shape *s, char *buf, size_t n) {
  return sn_shape_str(s, buf, n);
}

static const char *tup_str(const sn_shape *s, char *buf, size_t n) {
  size_t k = 0;
  if (n == 0)
    return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < s->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s->dim[i]);
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

/* ======================================================================
 * Pad
 * ====================================================================== */

enum { PD_MODE, PD_WIDTH, PD_VALUE };
enum { PAD_CONSTANT, PAD_EDGE, PAD_REFLECT };
static const sn_param_spec pad_params[] = {
    {"mode", SN_PT_ENUM, NULL, "constant|edge|reflect",
     "Padding type: \"constant\" pads with constant_value, \"edge\" repeats the border "
     "values, \"reflect\" mirrors the values next to the border."},
    {"pad_width", SN_PT_SHAPE, NULL, NULL,
     "Widths (before_1, after_1, ..., before_k, after_k) for each of the k dims in C "
     "order (numpy's pad_width flattened); the first four (batch and channel) must be 0."},
    {"constant_value", SN_PT_FLOAT, "0", NULL, "The value used by mode \"constant\"."},
};

/* Spatial geometry as (D, H, W) with D = 1 for 4-D inputs. */
typedef struct {
  int64_t planes;       /* N * C */
  int64_t in[3], out[3]; /* D, H, W */
  int64_t before[3];
} pad_geom;

static int pad_check(const sn_params *p, const sn_shape *ds, pad_geom *g) {
  char a[128], b[160];
  const sn_shape *pw = &p->v[PD_WIDTH].s;
  int nd = ds->ndim;
  if (nd != 4 && nd != 5)
    return sn_error(SN_ERR_SHAPE,
                    "Pad: only 4-D or 5-D inputs are supported (padding the dims after the "
                    "first two), got %s",
                    shp(ds, a, sizeof a));
  if (pw->ndim != 2 * nd)
    return sn_error(SN_ERR_ARG,
                    "Pad: pad_width %s must have 2 * ndim = %d entries for input %s",
                    tup_str(pw, b, sizeof b), 2 * nd, shp(ds, a, sizeof a));
  for (int i = 0; i < 4; i++)
    if (pw->dim[i] != 0)
      return sn_error(SN_ERR_ARG,
                      "Pad: pad_width %s pads the batch or channel dim; only the dims after "
                      "the first two can be padded",
                      tup_str(pw, b, sizeof b));
  for (int i = 0; i < pw->ndim; i++)
    if (pw->dim[i] < 0)
      return sn_error(SN_ERR_ARG, "Pad: pad_width %s must not be negative",
                      tup_str(pw, b, sizeof b));
  g->planes = ds->dim[0] * ds->dim[1];
  int ns = nd - 2, off = 3 - ns;
  for (int k = 0; k < 3; k++) {
    g->in[k] = g->out[k] = 1;
    g->before[k] = 0;
  }
  for (int k = 0; k < ns; k++) {
    int64_t len = ds->dim[2 + k], pb = pw->dim[2 * (2 + k)], pa = pw->dim[2 * (2 + k) + 1];
    if (p->v[PD_MODE].i == PAD_REFLECT && len != 0 && (pb >= len || pa >= len))
      return sn_error(SN_ERR_ARG,
                      "Pad: reflect padding (%lld, %lld) of dim %d must be smaller than its "
                      "size %lld (input %s)",
                      (long long)pb, (long long)pa, 2 + k, (long long)len, shp(ds, a, sizeof a));
    g->in[off + k] = len;
    g->out[off + k] = 0;
    if (len && (__builtin_add_overflow(len, pb, &g->out[off + k]) ||
                __builtin_add_overflow(g->out[off + k], pa, &g->out[off + k])))
      return sn_error(SN_ERR_OVERFLOW, "Pad: the output size does not fit in 64 bits");
    g->before[off + k] = pb;
  }
  return SN_OK;
}

static int pad_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                     sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  if (in[0].ndim < 0)
    return SN_OK;
  pad_geom g;
  SN_TRY(pad_check(p, &in[0], &g));
  const sn_shape *pw = &p->v[PD_WIDTH].s;
  sn_shape o = in[0];
  for (int i = 0; i < o.ndim; i++)
    if (o.dim[i])
      o.dim[i] += pw->dim[2 * i] + pw->dim[2 * i + 1]; /* checked in pad_check */
  SN_TRY(merge_shape(&out[0], &o, "Pad", "output"));
  /* backward */
  for (int i = 0; i < o.ndim; i++)
    if (in[0].dim[i] == 0 && out[0].dim[i] != 0) {
      int64_t v = out[0].dim[i] - pw->dim[2 * i] - pw->dim[2 * i + 1];
      if (v <= 0) {
        char a[128];
        return sn_error(SN_ERR_SHAPE, "Pad: output %s is too small for pad_width",
                        shp(&out[0], a, sizeof a));
      }
      in[0].dim[i] = v;
    }
  return SN_OK;
}

/* Input index read by output index o of a dim (-1: the constant). */
static inline int64_t pad_src(int64_t o, int64_t before, int64_t len, int mode) {
  int64_t i = o - before;
  if (i >= 0 && i < len)
    return i;
  if (mode == PAD_CONSTANT)
    return -1;
  if (mode == PAD_EDGE)
    return i < 0 ? 0 : len - 1;
  /* reflect (widths < len) */
  return i < 0 ? -i : 2 * (len - 1) - i;
}

static int pad_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  pad_geom g;
  SN_TRY(pad_check(c->p, &c->in[0]->shape, &g));
  int mode = (int)c->p->v[PD_MODE].i;
  double cv = c->p->v[PD_VALUE].f;
  int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
  int64_t bd = g.before[0], bh = g.before[1], bw = g.before[2];
  int64_t planes = g.planes, ostride = OD * OH * OW, istride = ID * IH * IW;
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *src = SN_PTR(T, c->in[0]);
    T *dst = SN_PTR(T, c->out[0]);
    const T val = (T)cv;
    SN_PARALLEL_FOR_COST(planes * OD, OH * OW)
    for (int64_t pz = 0; pz < planes * OD; pz++) {
      int64_t pl = pz / OD;
      int64_t oz = pz % OD;
      int64_t iz = pad_src(oz, bd, ID, mode);
      T *orow = dst + pl * ostride + oz * OH * OW;
      for (int64_t oy = 0; oy < OH; oy++, orow += OW) {
        int64_t iy = pad_src(oy, bh, IH, mode);
        if (iz < 0 || iy < 0) {
          for (int64_t ox = 0; ox < OW; ox++)
            orow[ox] = val;
          continue;
        }
        const T *irow = src + pl * istride + (iz * IH + iy) * IW;
        for (int64_t ox = 0; ox < bw; ox++) {
          int64_t ix = pad_src(ox, bw, IW, mode);
          orow[ox] = ix < 0 ? val : irow[ix];
        }
        memcpy(orow + bw, irow, sizeof(T) * (size_t)IW);
        for (int64_t ox = bw + IW; ox < OW; ox++) {
          int64_t ix = pad_src(ox, bw, IW, mode);
          orow[ox] = ix < 0 ? val : irow[ix];
        }
      }
    }
  });
  return SN_OK;
}

static int pad_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  pad_geom g;
  SN_TRY(pad_check(c->p, &c->igrad[0]->shape, &g));
  int mode = (int)c->p->v[PD_MODE].i;
  int64_t ID = g.in[0], IH = g.in[1], IW = g.in[2];
  int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
  int64_t bd = g.before[0], bh = g.before[1], bw = g.before[2];
  int64_t planes = g.planes, ostride = OD * OH * OW, istride = ID * IH * IW;
  sn_ops_zero(c->igrad[0]);
  SN_DISPATCH_FLOAT(c->ograd[0]->dtype, T, {
    const T *og = SN_PTR(T, c->ograd[0]);
    T *ig = SN_PTR(T, c->igrad[0]);
    SN_PARALLEL_FOR_COST(planes, ostride)
    for (int64_t pl = 0; pl < planes; pl++) {
      const T *op_ = og + pl * ostride;
      T *ip = ig + pl * istride;
      for (int64_t oz = 0; oz < OD; oz++) {
        int64_t iz = pad_src(oz, bd, ID, mode);
        if (iz < 0)
          continue;
        for (int64_t oy = 0; oy < OH; oy++) {
          int64_t iy = pad_src(oy, bh, IH, mode);
          if (iy < 0)
            continue;
          const T *orow = op_ + (oz * OH + oy) * OW;
          T *irow = ip + (iz * IH + iy) * IW;
          for (int64_t ox = 0; ox < bw; ox++) {
            int64_t ix = pad_src(ox, bw, IW, mode);
            if (ix >= 0)
              irow[ix] += orow[ox];
          }
          for (int64_t ix = 0; ix < IW; ix++)
            irow[ix] += orow[bw + ix];
          for (int64_t ox = bw + IW; ox < OW; ox++) {
            int64_t ix = pad_src(ox, bw, IW, mode);
            if (ix >= 0)
              irow[ix] += orow[ox];
          }
        }
      }
    }
  });
  return SN_OK;
}

static const char *const in_data[] = {"data", NULL};

static const sn_op op_pad = {
    .name = "Pad",
    .aliases = "pad",
    .doc = "Pads a 4-D or 5-D input along its spatial dims (all but the first two in C "
           "order; R's leading dims). pad_width lists (before, after) for every dim in C "
           "order, the first four entries being 0. mode is constant (constant_value), edge "
           "or reflect.",
    .params = pad_params,
    .nparams = 3,
    .inputs = in_data,
    .infer_shape = pad_infer,
    .forward_cpu = pad_forward,
    .backward_cpu = pad_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * UpSampling
 * ====================================================================== */

enum { UP_SCALE, UP_NUM_FILTER, UP_SAMPLE_TYPE, UP_MULTI, UP_NUM_ARGS, UP_WORKSPACE };
enum { UP_NEAREST, UP_BILINEAR };
enum { UP_CONCAT, UP_SUM };
static const sn_param_spec upsampling_params[] = {
    {"scale", SN_PT_SHAPE, NULL, NULL,
     "Up sampling scale: an integer, or (h, w) in C order (nearest only)."},
    {"num_filter", SN_PT_INT, "0", NULL,
     "Number of channels; used by bilinear only, where it must equal the input channels."},
    {"sample_type", SN_PT_ENUM, NULL, "nearest|bilinear", "The upsampling method."},
    {"multi_input_mode", SN_PT_ENUM, "concat", "concat|sum",
     "With several inputs (nearest): concatenate the upsampled inputs along channels, or "
     "sum them."},
    {"num_args", SN_PT_INT, NULL, NULL,
     "Number of inputs: 1..N for nearest (all upsampled to the first's size times "
     "scale), 2 for bilinear (data and weight)."},
    {"workspace", SN_PT_INT, "512", NULL, "Temporary workspace in MB (ignored)."},
};

/* arg0..arg99 */
#define UP_D10(p) p "0", p "1", p "2", p "3", p "4", p "5", p "6", p "7", p "8", p "9"
static const char *const up_arg_names[] = {
    UP_D10("arg"),   UP_D10("arg1"), UP_D10("arg2"), UP_D10("arg3"), UP_D10("arg4"),
    UP_D10("arg5"), UP_D10("arg6"), UP_D10("arg7"), UP_D10("arg8"), UP_D10("arg9")};
static const char *const up_bilinear_names[] = {"data", "weight"};

static int upsampling_list_inputs(const sn_params *p, const char **names, int cap) {
  if (p->v[UP_SAMPLE_TYPE].i == UP_BILINEAR) {
    for (int i = 0; i < 2 && i < cap; i++)
      names[i] = up_bilinear_names[i];
    return 2;
  }
  int64_t n = p->v[UP_NUM_ARGS].i;
  if (n > 100)
    n = 100;
  if (n < 1)
    n = 1;
  for (int i = 0; i < n && i < cap; i++)
    names[i] = up_arg_names[i];
  return (int)n;
}

static int up_scale(const sn_params *p, int64_t *sh, int64_t *sw) {
  const sn_shape *s = &p->v[UP_SCALE].s;
  char b[160];
  if (s->ndim == 1) {
    *sh = *sw = s->dim[0];
  } else if (s->ndim == 2) {
    *sh = s->dim[0];
    *sw = s->dim[1];
  } else if (s->ndim == 4) {
    *sh = s->dim[2];
    *sw = s->dim[3];
  } else {
    *sh = *sw = 1;
    return sn_error(SN_ERR_ARG, "UpSampling: scale %s must have 1, 2 or 4 entries",
                    tup_str(s, b, sizeof b));
  }
  if (*sh < 1 || *sw < 1 || *sh > 1000 || *sw > 1000)
    return sn_error(SN_ERR_ARG, "UpSampling: scale %s must be positive and at most 1000",
                    tup_str(s, b, sizeof b));
  return SN_OK;
}

static int64_t bil_kernel(int64_t s) { return 2 * s - s % 2; }
static int64_t bil_pad(int64_t s) { return s / 2; } /* = ceil((s - 1) / 2) */

static int upsampling_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nout, (void)aux, (void)naux;
  char a[128], b[128];
  int64_t sh, sw;
  SN_TRY(up_scale(p, &sh, &sw));
  if (p->v[UP_SAMPLE_TYPE].i == UP_BILINEAR) {
    if (nin != 2)
      return sn_error(SN_ERR_ARG, "UpSampling: bilinear takes 2 inputs (data, weight), got %d",
                      nin);
    if (sh != sw)
      return sn_error(SN_ERR_ARG, "UpSampling: bilinear needs the same scale in both dims");
    if (in[0].ndim < 0)
      return SN_OK;
    if (in[0].ndim != 4)
      return sn_error(SN_ERR_SHAPE,
                      "UpSampling: data must be 4-D (batch, channel, y, x), got %s",
                      shp(&in[0], a, sizeof a));
    int64_t C = in[0].dim[1];
    if (C != 0 && p->v[UP_NUM_FILTER].i != C)
      return sn_error(SN_ERR_ARG,
                      "UpSampling: bilinear needs num_filter (%lld) equal to the number of "
                      "channels of data %s",
                      (long long)p->v[UP_NUM_FILTER].i, shp(&in[0], a, sizeof a));
    int64_t k = bil_kernel(sh);
    int64_t wd[4] = {C, 1, k, k};
    sn_shape ws = sn_shape_make(4, wd);
    SN_TRY(merge_shape(&in[1], &ws, "UpSampling", "weight"));
    sn_shape o = in[0];
    if (__builtin_mul_overflow(o.dim[2], sh, &o.dim[2]) ||
        __builtin_mul_overflow(o.dim[3], sw, &o.dim[3]))
      return sn_error(SN_ERR_OVERFLOW, "UpSampling: the output size does not fit in 64 bits");
    return merge_shape(&out[0], &o, "UpSampling", "output");
  }
  int64_t na = p->v[UP_NUM_ARGS].i;
  if (na < 1 || nin != na)
    return sn_error(SN_ERR_ARG, "UpSampling: num_args=%lld but %d inputs", (long long)na, nin);
  if (in[0].ndim < 0)
    return SN_OK;
  for (int i = 0; i < nin; i++)
    if (in[i].ndim >= 0 && in[i].ndim != 4)
      return sn_error(SN_ERR_SHAPE,
                      "UpSampling: input arg%d must be 4-D (batch, channel, y, x), got %s", i,
                      shp(&in[i], a, sizeof a));
  int64_t oh, ow;
  if (__builtin_mul_overflow(in[0].dim[2], sh, &oh) || __builtin_mul_overflow(in[0].dim[3], sw, &ow))
    return sn_error(SN_ERR_OVERFLOW, "UpSampling: the output size does not fit in 64 bits");
  int64_t ch = 0;
  int chknown = 1;
  for (int i = 0; i < nin; i++) {
    if (in[i].ndim < 0) {
      chknown = 0;
      continue;
    }
    if (oh && in[i].dim[2] && oh % in[i].dim[2] != 0)
      return sn_error(SN_ERR_SHAPE,
                      "UpSampling: input height %lld of arg%d %s does not divide the output "
                      "height %lld",
                      (long long)in[i].dim[2], i, shp(&in[i], a, sizeof a), (long long)oh);
    if (ow && in[i].dim[3] && ow % in[i].dim[3] != 0)
      return sn_error(SN_ERR_SHAPE,
                      "UpSampling: input width %lld of arg%d %s does not divide the output "
                      "width %lld",
                      (long long)in[i].dim[3], i, shp(&in[i], a, sizeof a), (long long)ow);
    if (in[i].dim[0] && in[0].dim[0] && in[i].dim[0] != in[0].dim[0])
      return sn_error(SN_ERR_SHAPE, "UpSampling: arg%d %s and arg0 %s differ in batch size",
                      i, shp(&in[i], a, sizeof a), shp(&in[0], b, sizeof b));
    if (in[i].dim[1] == 0)
      chknown = 0;
    if (p->v[UP_MULTI].i == UP_SUM && nin > 1) {
      if (ch && in[i].dim[1] && ch != in[i].dim[1])
        return sn_error(SN_ERR_SHAPE,
                        "UpSampling: with multi_input_mode=sum all inputs need the same "
                        "number of channels (arg%d %s)",
                        i, shp(&in[i], a, sizeof a));
      if (in[i].dim[1])
        ch = in[i].dim[1];
    } else {
      ch += in[i].dim[1];
    }
  }
  if (!(p->v[UP_MULTI].i == UP_SUM && nin > 1) && !chknown)
    ch = 0;
  int64_t od[4] = {in[0].dim[0], ch, oh, ow};
  sn_shape o = sn_shape_make(4, od);
  return merge_shape(&out[0], &o, "UpSampling", "output");
}

/* Channels of input k in backward (from its gradient, else its input). */
static int64_t up_channels(const sn_call *c, int k) {
  if (c->igrad && c->igrad[k])
    return c->igrad[k]->shape.dim[1];
  if (c->in && c->in[k])
    return c->in[k]->shape.dim[1];
  return 0;
}

static int nearest_forward(sn_call *c) {
  sn_tensor *out = c->out[0];
  int64_t N = out->shape.dim[0], OC = out->shape.dim[1], OH = out->shape.dim[2],
          OW = out->shape.dim[3];
  int sum = c->p->v[UP_MULTI].i == UP_SUM && c->nin > 1;
  int64_t coff = 0;
  for (int k = 0; k < c->nin; k++) {
    const sn_tensor *in = c->in[k];
    int64_t C = in->shape.dim[1], H = in->shape.dim[2], W = in->shape.dim[3];
    int64_t sh = OH / H, sw = OW / W;
    int add = sum && k > 0;
    SN_DISPATCH_FLOAT(in->dtype, T, {
      const T *src = SN_PTR(T, in);
      T *dst = SN_PTR(T, out);
      SN_PARALLEL_FOR_COST(N * C, OH * OW)
      for (int64_t pc = 0; pc < N * C; pc++) {
        int64_t n = pc / C;
        int64_t ch = pc % C;
        const T *ip = src + pc * H * W;
        T *op_ = dst + ((n * OC + (sum ? 0 : coff) + ch) * OH) * OW;
        for (int64_t iy = 0; iy < H; iy++) {
          T *row = op_ + iy * sh * OW;
          const T *irow = ip + iy * W;
          if (add) {
            for (int64_t r = 0; r < sh; r++)
              for (int64_t ox = 0; ox < OW; ox++)
                row[r * OW + ox] += irow[ox / sw];
          } else {
            if (sw == 1)
              memcpy(row, irow, sizeof(T) * (size_t)W);
            else
              for (int64_t ix = 0; ix < W; ix++)
                for (int64_t r = 0; r < sw; r++)
                  row[ix * sw + r] = irow[ix];
            for (int64_t r = 1; r < sh; r++)
              memcpy(row + r * OW, row, sizeof(T) * (size_t)OW);
          }
        }
      }
    });
    coff += C;
  }
  return SN_OK;
}

static int nearest_backward(sn_call *c) {
  const sn_tensor *og = c->ograd[0];
  int64_t N = og->shape.dim[0], OC = og->shape.dim[1], OH = og->shape.dim[2],
          OW = og->shape.dim[3];
  int sum = c->p->v[UP_MULTI].i == UP_SUM && c->nin > 1;
  int64_t coff = 0;
  for (int k = 0; k < c->nin; k++) {
    int64_t C = up_channels(c, k);
    if (C == 0) {
      if (c->req[k] == SN_REQ_NULL && (sum || k == c->nin - 1))
        continue;
      return sn_error(SN_ERR_INTERNAL, "UpSampling: backward cannot place arg%d (no shape)", k);
    }
    if (c->req[k] != SN_REQ_NULL) {
      sn_tensor *ig = c->igrad[k];
      int64_t H = ig->shape.dim[2], W = ig->shape.dim[3];
      int64_t sh = OH / H, sw = OW / W;
      SN_DISPATCH_FLOAT(og->dtype, T, {
        const T *src = SN_PTR(T, og);
        T *dst = SN_PTR(T, ig);
        SN_PARALLEL_FOR_COST(N * C, OH * OW)
        for (int64_t pc = 0; pc < N * C; pc++) {
          int64_t n = pc / C;
        int64_t ch = pc % C;
          const T *op_ = src + ((n * OC + (sum ? 0 : coff) + ch) * OH) * OW;
          T *ip = dst + pc * H * W;
          for (int64_t iy = 0; iy < H; iy++) {
            T *irow = ip + iy * W;
            for (int64_t ix = 0; ix < W; ix++)
              irow[ix] = 0;
            for (int64_t r = 0; r < sh; r++) {
              const T *orow = op_ + (iy * sh + r) * OW;
              for (int64_t ox = 0; ox < OW; ox++)
                irow[ox / sw] += orow[ox];
            }
          }
        }
      });
    }
    coff += C;
  }
  return SN_OK;
}

/* Depthwise transposed convolution: out[oy, ox] = sum in[iy, ix] w[ky, kx]
 * over oy = iy * s - pad + ky, ox = ix * s - pad + kx. */
static int bilinear_forward(sn_call *c) {
  const sn_tensor *in = c->in[0], *wt = c->in[1];
  sn_tensor *out = c->out[0];
  int64_t s, s2;
  SN_TRY(up_scale(c->p, &s, &s2));
  int64_t N = in->shape.dim[0], C = in->shape.dim[1], H = in->shape.dim[2],
          W = in->shape.dim[3], OH = out->shape.dim[2], OW = out->shape.dim[3];
  int64_t K = bil_kernel(s), pad = bil_pad(s);
  SN_DISPATCH_FLOAT(in->dtype, T, {
    const T *src = SN_PTR(T, in);
    const T *w = SN_PTR(T, wt);
    T *dst = SN_PTR(T, out);
    SN_PARALLEL_FOR_COST(N * C, OH * OW * 4)
    for (int64_t pc = 0; pc < N * C; pc++) {
      int64_t ch = pc % C;
      const T *ip = src + pc * H * W;
      const T *wk = w + ch * K * K;
      T *op_ = dst + pc * OH * OW;
      for (int64_t oy = 0; oy < OH; oy++) {
        int64_t ky0 = (oy + pad) % s;
        for (int64_t ox = 0; ox < OW; ox++) {
          int64_t kx0 = (ox + pad) % s;
          T acc = 0;
          for (int64_t ky = ky0; ky < K; ky += s) {
            int64_t iy = (oy + pad - ky) / s;
            if (oy + pad - ky < 0 || iy >= H)
              continue;
            for (int64_t kx = kx0; kx < K; kx += s) {
              int64_t ix = (ox + pad - kx) / s;
              if (ox + pad - kx < 0 || ix >= W)
                continue;
              acc += ip[iy * W + ix] * wk[ky * K + kx];
            }
          }
          op_[oy * OW + ox] = acc;
        }
      }
    }
  });
  return SN_OK;
}

static int bilinear_backward(sn_call *c) {
  const sn_tensor *og = c->ograd[0], *in = c->in[0], *wt = c->in[1];
  int64_t s, s2;
  SN_TRY(up_scale(c->p, &s, &s2));
  int64_t N = in->shape.dim[0], C = in->shape.dim[1], H = in->shape.dim[2],
          W = in->shape.dim[3], OH = og->shape.dim[2], OW = og->shape.dim[3];
  int64_t K = bil_kernel(s), pad = bil_pad(s);
  SN_DISPATCH_FLOAT(og->dtype, T, {
    const T *g = SN_PTR(T, og);
    const T *x = SN_PTR(T, in);
    const T *w = SN_PTR(T, wt);
    if (c->req[0] != SN_REQ_NULL) {
      T *gx = SN_PTR(T, c->igrad[0]);
      SN_PARALLEL_FOR_COST(N * C, H * W * K * K)
      for (int64_t pc = 0; pc < N * C; pc++) {
        int64_t ch = pc % C;
        const T *gp = g + pc * OH * OW;
        const T *wk = w + ch * K * K;
        T *ip = gx + pc * H * W;
        for (int64_t iy = 0; iy < H; iy++)
          for (int64_t ix = 0; ix < W; ix++) {
            T acc = 0;
            for (int64_t ky = 0; ky < K; ky++) {
              int64_t oy = iy * s - pad + ky;
              if (oy < 0 || oy >= OH)
                continue;
              for (int64_t kx = 0; kx < K; kx++) {
                int64_t ox = ix * s - pad + kx;
                if (ox < 0 || ox >= OW)
                  continue;
                acc += gp[oy * OW + ox] * wk[ky * K + kx];
              }
            }
            ip[iy * W + ix] = acc;
          }
      }
    }
    if (c->req[1] != SN_REQ_NULL) {
      T *gw = SN_PTR(T, c->igrad[1]);
      SN_PARALLEL_FOR_COST(C, N * H * W * K * K)
      for (int64_t ch = 0; ch < C; ch++) {
        T *wk = gw + ch * K * K;
        for (int64_t k = 0; k < K * K; k++)
          wk[k] = 0;
        for (int64_t n = 0; n < N; n++) {
          const T *gp = g + (n * C + ch) * OH * OW;
          const T *xp = x + (n * C + ch) * H * W;
          for (int64_t iy = 0; iy < H; iy++)
            for (int64_t ix = 0; ix < W; ix++) {
              T xv = xp[iy * W + ix];
              for (int64_t ky = 0; ky < K; ky++) {
                int64_t oy = iy * s - pad + ky;
                if (oy < 0 || oy >= OH)
                  continue;
                for (int64_t kx = 0; kx < K; kx++) {
                  int64_t ox = ix * s - pad + kx;
                  if (ox < 0 || ox >= OW)
                    continue;
                  wk[ky * K + kx] += xv * gp[oy * OW + ox];
                }
              }
            }
        }
      }
    }
  });
  return SN_OK;
}

static int upsampling_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  if (c->p->v[UP_SAMPLE_TYPE].i == UP_BILINEAR)
    return bilinear_forward(c);
  return nearest_forward(c);
}

static int upsampling_backward(sn_call *c) {
  if (c->p->v[UP_SAMPLE_TYPE].i == UP_BILINEAR)
    return bilinear_backward(c);
  return nearest_backward(c);
}

static const sn_op op_upsampling = {
    .name = "UpSampling",
    .doc = "Upsamples NCHW inputs. nearest: each input is repeated to the first input's "
           "size times scale, and several inputs are concatenated along channels or summed "
           "(multi_input_mode). bilinear: a depthwise transposed convolution of `data` with "
           "`weight` (C, 1, k, k), k = 2*scale - scale % 2, stride scale; the weight is "
           "normally a fixed bilinear kernel.",
    .params = upsampling_params,
    .nparams = 6,
    .list_inputs = upsampling_list_inputs,
    .infer_shape = upsampling_infer,
    .forward_cpu = upsampling_forward,
    .backward_cpu = upsampling_backward,
    /* bilinear reads data and weight in backward; flags are per op, so nearest
     * keeps its inputs too */
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_pad_upsample[] = {&op_pad, &op_upsampling, NULL};
