/* Concat, SliceChannel and stack (MXNet 1.x names, params and semantics).
 *
 * concat (alias Concat) joins num_args inputs, named arg0..arg{n-1}, along
 * `dim` (C order, default 1).  Shape inference goes both ways: dims other
 * than `dim` are shared by all inputs and the output, and when the output
 * is known and exactly one input's `dim` is unknown, that one is filled.
 *
 * SliceChannel (alias split) cuts the input along `axis` (default 1) into
 * num_outputs equal parts named output0..output{n-1}; with squeeze_axis the
 * axis is removed (it must then have size num_outputs).  A size that is not
 * divisible by num_outputs is an error.
 *
 * stack joins num_args inputs of one shape along a new axis.
 *
 * All three are strided copies (contiguous runs memcpy'd, see shape.c);
 * their backwards are the reverse copies and need only the output
 * gradients. */
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../error.h"
#include "../op.h"
#include "../tensor.h"

/* From shape.c: the strided copy engine shared by the shape-like ops. */
void sn_ops_strides(const sn_shape *s, int64_t *st);
void sn_ops_strided_copy(int nd, const int64_t *n, const int64_t *ss, const int64_t *ds,
                         const void *src, void *dst, size_t elsize);
void sn_ops_zero(sn_tensor *t);

/* ---- names arg0..arg999, output0..output999 (static storage) ---- */
#define CS_D10(p) p "0", p "1", p "2", p "3", p "4", p "5", p "6", p "7", p "8", p "9"
#define CS_D100(p)                                                                        \
  CS_D10(p "0"), CS_D10(p "1"), CS_D10(p "2"), CS_D10(p "3"), CS_D10(p "4"),              \
      CS_D10(p "5"), CS_D10(p "6"), CS_D10(p "7"), CS_D10(p "8"), CS_D10(p "9")
#define CS_NAMES(p)                                                                       \
  CS_D10(p), CS_D10(p "1"), CS_D10(p "2"), CS_D10(p "3"), CS_D10(p "4"), CS_D10(p "5"),   \
      CS_D10(p "6"), CS_D10(p "7"), CS_D10(p "8"), CS_D10(p "9"), CS_D100(p "1"),         \
      CS_D100(p "2"), CS_D100(p "3"), CS_D100(p "4"), CS_D100(p "5"), CS_D100(p "6"),     \
      CS_D100(p "7"), CS_D100(p "8"), CS_D100(p "9")
static const char *const cs_arg_names[] = {CS_NAMES("arg")};
static const char *const cs_out_names[] = {CS_NAMES("output")};
#define CS_NNAMES ((int)(sizeof cs_arg_names / sizeof cs_arg_names[0]))

static int cs_list(const char *const *tab, int64_t n, const char **names, int cap) {
  if (n > CS_NNAMES)
    n = CS_NNAMES;
  int k = 0;
  for (; k < n && k < cap; k++)
    names[k] = tab[k];
  return (int)n;
}

static const char *shp(const sn_shape *s, char *buf, size_t n) {
  return sn_shape_str(s, buf, n);
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

/* Merges a partially known shape (0 = unknown dim) into *slot. */
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
 * concat
 * ====================================================================== */

enum { CC_NUM_ARGS, CC_DIM };
static const sn_param_spec concat_params[] = {
    {"num_args", SN_PT_INT, NULL, NULL, "Number of inputs to join."},
    {"dim", SN_PT_INT, "1", NULL,
     "The dim (C order; negative counts from the end) along which to join."},
};

static int concat_list_inputs(const sn_params *p, const char **names, int cap) {
  return cs_list(cs_arg_names, p->v[CC_NUM_ARGS].i, names, cap);
}

static int concat_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                        sn_shape *aux, int naux) {
  (void)nout, (void)aux, (void)naux;
  char a[128], b[128], what[32];
  int64_t na = p->v[CC_NUM_ARGS].i;
  if (na < 1)
    return sn_error(SN_ERR_ARG, "concat: num_args=%lld must be at least 1", (long long)na);
  if (nin != na)
    return sn_error(SN_ERR_ARG, "concat: num_args=%lld but %d inputs were given",
                    (long long)na, nin);
  int nd = out[0].ndim;
  for (int i = 0; i < nin && nd < 0; i++)
    nd = in[i].ndim;
  if (nd < 0)
    return SN_OK;
  if (nd == 0)
    return sn_error(SN_ERR_SHAPE, "concat: inputs must have at least one dim");
  int ax;
  SN_TRY(norm_axis(p->v[CC_DIM].i, nd, "concat", "dim", &ax));
  /* common shape, with the concat dim unknown */
  sn_shape common;
  common.ndim = nd;
  for (int i = 0; i < nd; i++)
    common.dim[i] = 0;
  for (int i = -1; i < nin; i++) {
    sn_shape t = i < 0 ? out[0] : in[i];
    if (t.ndim < 0)
      continue;
    if (t.ndim != nd) {
      sn_shape ref = common;
      return sn_error(SN_ERR_SHAPE,
                      "concat: %s%d has shape %s but the other inputs have %d dims (%s)",
                      i < 0 ? "output" : "arg", i < 0 ? 0 : i, shp(&t, a, sizeof a), nd,
                      shp(&ref, b, sizeof b));
    }
    t.dim[ax] = 0;
    for (int k = 0; k < nd; k++) {
      if (t.dim[k] == 0)
        continue;
      if (common.dim[k] != 0 && common.dim[k] != t.dim[k]) {
        /* name the two conflicting shapes */
        int j;
        for (j = 0; j < nin; j++)
          if (j != i && in[j].ndim == nd && in[j].dim[k] == common.dim[k])
            break;
        const sn_shape *o = j < nin ? &in[j] : &out[0];
        return sn_error(SN_ERR_SHAPE,
                        "concat: shapes %s (%s%d) and %s disagree in dim %d; only dim %d "
                        "may differ",
                        shp(i < 0 ? &out[0] : &in[i], a, sizeof a), i < 0 ? "output" : "arg",
                        i < 0 ? 0 : i, shp(o, b, sizeof b), k, ax);
      }
      common.dim[k] = t.dim[k];
    }
  }
  for (int i = 0; i < nin; i++) {
    snprintf(what, sizeof what, "arg%d", i);
    SN_TRY(merge_shape(&in[i], &common, "concat", what));
  }
  SN_TRY(merge_shape(&out[0], &common, "concat", "output"));
  /* the concat dim */
  int64_t sum = 0;
  int unknown = 0, which = -1;
  for (int i = 0; i < nin; i++) {
    if (in[i].dim[ax] == 0) {
      unknown++;
      which = i;
    } else {
      if (__builtin_add_overflow(sum, in[i].dim[ax], &sum))
        return sn_error(SN_ERR_OVERFLOW, "concat: the output size does not fit in 64 bits");
    }
  }
  if (unknown == 0) {
    if (out[0].dim[ax] != 0 && out[0].dim[ax] != sum)
      return sn_error(SN_ERR_SHAPE,
                      "concat: output %s has size %lld in dim %d but the inputs sum to %lld",
                      shp(&out[0], a, sizeof a), (long long)out[0].dim[ax], ax,
                      (long long)sum);
    out[0].dim[ax] = sum;
  } else if (unknown == 1 && out[0].dim[ax] != 0) {
    if (out[0].dim[ax] <= sum)
      return sn_error(SN_ERR_SHAPE,
                      "concat: output %s has size %lld in dim %d, no room for arg%d (the "
                      "others sum to %lld)",
                      shp(&out[0], a, sizeof a), (long long)out[0].dim[ax], ax, which,
                      (long long)sum);
    in[which].dim[ax] = out[0].dim[ax] - sum;
  }
  return SN_OK;
}

/* Copies between input k and its block of the output along axis ax.
 * dir 0: input -> output, 1: output -> input. */
static void concat_block(const sn_shape *os, int ax, int64_t off, const sn_shape *is,
                         const void *src, void *dst, size_t es, int dir) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; i++)
    outer *= os->dim[i];
  for (int i = ax + 1; i < os->ndim; i++)
    inner *= os->dim[i];
  int64_t irow = is->dim[ax] * inner, orow = os->dim[ax] * inner;
  int64_t n[2] = {outer, irow}, s1[2] = {irow, 1}, s2[2] = {orow, 1};
  if (dir == 0)
    sn_ops_strided_copy(2, n, s1, s2, src, (char *)dst + (size_t)(off * inner) * es, es);
  else
    sn_ops_strided_copy(2, n, s2, s1, (const char *)src + (size_t)(off * inner) * es, dst, es);
}

static int concat_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *out = c->out[0];
  int ax;
  SN_TRY(norm_axis(c->p->v[CC_DIM].i, out->shape.ndim, "concat", "dim", &ax));
  size_t es = sn_dtype_size(out->dtype);
  int64_t off = 0;
  for (int k = 0; k < c->nin; k++) {
    concat_block(&out->shape, ax, off, &c->in[k]->shape, sn_tensor_data(c->in[k]),
                 sn_tensor_data(out), es, 0);
    off += c->in[k]->shape.dim[ax];
  }
  return SN_OK;
}

/* Size along ax of input k as seen in backward: from its gradient, else
 * from the forward input when the executor passed it, else 0 (unknown). */
static int64_t concat_part(const sn_call *c, int k, int ax) {
  if (c->igrad && c->igrad[k])
    return c->igrad[k]->shape.dim[ax];
  if (c->in && c->in[k] && c->in[k]->shape.ndim > ax)
    return c->in[k]->shape.dim[ax];
  return 0;
}

static int concat_backward(sn_call *c) {
  const sn_tensor *og = c->ograd[0];
  int ax;
  SN_TRY(norm_axis(c->p->v[CC_DIM].i, og->shape.ndim, "concat", "dim", &ax));
  size_t es = sn_dtype_size(og->dtype);
  int64_t part[1024], known = 0;
  int unknown = -1;
  if (c->nin > 1024)
    return sn_error(SN_ERR_ARG, "concat: too many inputs (%d)", c->nin);
  for (int k = 0; k < c->nin; k++) {
    part[k] = concat_part(c, k, ax);
    if (part[k] == 0) {
      if (unknown >= 0)
        return sn_error(SN_ERR_INTERNAL,
                        "concat: backward cannot place the gradients of arg%d and arg%d "
                        "(no shapes)", unknown, k);
      unknown = k;
    }
    known += part[k];
  }
  if (unknown >= 0)
    part[unknown] = og->shape.dim[ax] - known;
  int64_t off = 0;
  for (int k = 0; k < c->nin; k++) {
    if (c->req[k] != SN_REQ_NULL)
      concat_block(&og->shape, ax, off, &c->igrad[k]->shape, sn_tensor_data(og),
                   sn_tensor_data(c->igrad[k]), es, 1);
    off += part[k];
  }
  return SN_OK;
}

static const sn_op op_concat = {
    .name = "Concat",
    .aliases = "concat",
    .doc = "Joins num_args inputs along `dim` (a C-order axis; dim=1 is the channel axis "
           "of NCHW data, R's third dim of a 4-D array). All other dims must agree.",
    .params = concat_params,
    .nparams = 2,
    .list_inputs = concat_list_inputs,
    .infer_shape = concat_infer,
    .forward_cpu = concat_forward,
    .backward_cpu = concat_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "concat",
};

/* ======================================================================
 * SliceChannel
 * ====================================================================== */

enum { SC_NUM_OUTPUTS, SC_AXIS, SC_SQUEEZE };
static const sn_param_spec slice_channel_params[] = {
    {"num_outputs", SN_PT_INT, NULL, NULL, "Number of equal parts to cut the input into."},
    {"axis", SN_PT_INT, "1", NULL, "The axis (C order) to cut along."},
    {"squeeze_axis", SN_PT_BOOL, "False", NULL,
     "If true, remove the cut axis from the outputs (its size must equal num_outputs)."},
};

static const char *const sc_inputs[] = {"data", NULL};

static int slice_channel_list_outputs(const sn_params *p, const char **names, int cap) {
  return cs_list(cs_out_names, p->v[SC_NUM_OUTPUTS].i, names, cap);
}

static int slice_channel_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                               int nout, sn_shape *aux, int naux) {
  (void)nin, (void)aux, (void)naux;
  char a[128];
  int64_t no = p->v[SC_NUM_OUTPUTS].i;
  int sq = (int)p->v[SC_SQUEEZE].i;
  if (no < 1)
    return sn_error(SN_ERR_ARG, "SliceChannel: num_outputs=%lld must be at least 1",
                    (long long)no);
  if (nout != no)
    return sn_error(SN_ERR_ARG, "SliceChannel: num_outputs=%lld but %d outputs", (long long)no,
                    nout);
  int nd = in[0].ndim;
  for (int i = 0; i < nout && nd < 0; i++)
    if (out[i].ndim >= 0)
      nd = out[i].ndim + sq;
  if (nd < 0)
    return SN_OK;
  int ax;
  SN_TRY(norm_axis(p->v[SC_AXIS].i, nd, "SliceChannel", "axis", &ax));
  /* backward: input from a known output */
  if (in[0].ndim < 0 || in[0].dim[ax] == 0) {
    for (int i = 0; i < nout; i++) {
      if (out[i].ndim < 0)
        continue;
      if (out[i].ndim + sq != nd)
        return sn_error(SN_ERR_SHAPE, "SliceChannel: output%d has shape %s, expected %d dims",
                        i, shp(&out[i], a, sizeof a), nd - sq);
      sn_shape t;
      t.ndim = nd;
      for (int k = 0, j = 0; k < nd; k++)
        t.dim[k] = (sq && k == ax) ? 1 : out[i].dim[j++];
      t.dim[ax] = t.dim[ax] ? t.dim[ax] * no : 0;
      SN_TRY(merge_shape(&in[0], &t, "SliceChannel", "data"));
    }
  }
  if (in[0].ndim < 0)
    return SN_OK;
  int64_t d = in[0].dim[ax];
  if (d != 0 && d % no != 0)
    return sn_error(SN_ERR_SHAPE,
                    "SliceChannel: the size %lld of axis %d of input %s is not divisible by "
                    "num_outputs=%lld",
                    (long long)d, ax, shp(&in[0], a, sizeof a), (long long)no);
  if (sq && d != 0 && d != no)
    return sn_error(SN_ERR_SHAPE,
                    "SliceChannel: squeeze_axis needs axis %d of input %s to have size "
                    "num_outputs=%lld",
                    ax, shp(&in[0], a, sizeof a), (long long)no);
  sn_shape o;
  o.ndim = 0;
  for (int k = 0; k < nd; k++) {
    if (k == ax) {
      if (!sq)
        o.dim[o.ndim++] = d / no;
    } else {
      o.dim[o.ndim++] = in[0].dim[k];
    }
  }
  if (o.ndim == 0) { /* 1-D input squeezed: scalar-like (1) */
    o.ndim = 1;
    o.dim[0] = 1;
  }
  for (int i = 0; i < nout; i++) {
    char what[32];
    snprintf(what, sizeof what, "output%d", i);
    SN_TRY(merge_shape(&out[i], &o, "SliceChannel", what));
  }
  return SN_OK;
}

/* Part k along axis ax of a tensor of shape full (step = part size). */
static void split_block(const sn_shape *full, int ax, int64_t k, int64_t part, const void *src,
                        void *dst, size_t es, int dir) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; i++)
    outer *= full->dim[i];
  for (int i = ax + 1; i < full->ndim; i++)
    inner *= full->dim[i];
  int64_t prow = part * inner, frow = full->dim[ax] * inner;
  int64_t n[2] = {outer, prow}, sf[2] = {frow, 1}, sp[2] = {prow, 1};
  size_t off = (size_t)(k * prow) * es;
  if (dir == 0) /* full -> part */
    sn_ops_strided_copy(2, n, sf, sp, (const char *)src + off, dst, es);
  else /* part -> full */
    sn_ops_strided_copy(2, n, sp, sf, src, (char *)dst + off, es);
}

static int slice_channel_forward(sn_call *c) {
  const sn_tensor *in = c->in[0];
  int ax;
  SN_TRY(norm_axis(c->p->v[SC_AXIS].i, in->shape.ndim, "SliceChannel", "axis", &ax));
  int64_t part = in->shape.dim[ax] / c->nout;
  size_t es = sn_dtype_size(in->dtype);
  for (int k = 0; k < c->nout; k++)
    if (c->req[k] != SN_REQ_NULL)
      split_block(&in->shape, ax, k, part, sn_tensor_data(in), sn_tensor_data(c->out[k]), es,
                  0);
  return SN_OK;
}

static int slice_channel_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *ig = c->igrad[0];
  int ax;
  SN_TRY(norm_axis(c->p->v[SC_AXIS].i, ig->shape.ndim, "SliceChannel", "axis", &ax));
  int64_t no = c->p->v[SC_NUM_OUTPUTS].i, part = ig->shape.dim[ax] / no;
  size_t es = sn_dtype_size(ig->dtype);
  int missing = 0;
  for (int k = 0; k < no; k++)
    missing |= c->ograd[k] == NULL;
  if (missing)
    sn_ops_zero(ig);
  for (int k = 0; k < no; k++)
    if (c->ograd[k])
      split_block(&ig->shape, ax, k, part, sn_tensor_data(c->ograd[k]), sn_tensor_data(ig), es,
                  1);
  return SN_OK;
}

static const sn_op op_slice_channel = {
    .name = "SliceChannel",
    .aliases = "split",
    .doc = "Cuts the input into num_outputs equal parts along `axis` (C order). With "
           "squeeze_axis=TRUE the axis is dropped from the outputs. The size of the axis "
           "must be divisible by num_outputs.",
    .params = slice_channel_params,
    .nparams = 3,
    .inputs = sc_inputs,
    .list_outputs = slice_channel_list_outputs,
    .infer_shape = slice_channel_infer,
    .forward_cpu = slice_channel_forward,
    .backward_cpu = slice_channel_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "slicechannel",
};

/* ======================================================================
 * stack
 * ====================================================================== */

enum { ST_AXIS, ST_NUM_ARGS };
static const sn_param_spec stack_params[] = {
    {"axis", SN_PT_INT, "0", NULL,
     "Position of the new axis in the output (C order; negative counts from the end)."},
    {"num_args", SN_PT_INT, NULL, NULL, "Number of inputs to stack."},
};

static int stack_list_inputs(const sn_params *p, const char **names, int cap) {
  return cs_list(cs_arg_names, p->v[ST_NUM_ARGS].i, names, cap);
}

static int stack_axis(const sn_params *p, int nd, int *ax) {
  *ax = 0;
  int64_t a = p->v[ST_AXIS].i;
  if (a < -(nd + 1) || a > nd)
    return sn_error(SN_ERR_ARG, "stack: axis=%lld is out of range for %d-D inputs",
                    (long long)a, nd);
  *ax = (int)(a < 0 ? a + nd + 1 : a);
  return SN_OK;
}

static int stack_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                       sn_shape *aux, int naux) {
  (void)nout, (void)aux, (void)naux;
  char what[32];
  int64_t na = p->v[ST_NUM_ARGS].i;
  if (na < 1)
    return sn_error(SN_ERR_ARG, "stack: num_args=%lld must be at least 1", (long long)na);
  if (nin != na)
    return sn_error(SN_ERR_ARG, "stack: num_args=%lld but %d inputs were given", (long long)na,
                    nin);
  int nd = out[0].ndim >= 0 ? out[0].ndim - 1 : -1;
  for (int i = 0; i < nin && nd < 0; i++)
    nd = in[i].ndim;
  if (nd < 0)
    return SN_OK;
  if (nd + 1 > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "stack: output would have more than %d dims", SN_MAX_DIMS);
  int ax;
  SN_TRY(stack_axis(p, nd, &ax));
  sn_shape common;
  common.ndim = nd;
  for (int i = 0; i < nd; i++)
    common.dim[i] = 0;
  if (out[0].ndim >= 0) {
    if (out[0].dim[ax] != 0 && out[0].dim[ax] != na) {
      char a[128];
      return sn_error(SN_ERR_SHAPE, "stack: output %s must have size num_args=%lld in dim %d",
                      shp(&out[0], a, sizeof a), (long long)na, ax);
    }
    for (int i = 0, k = 0; i < nd + 1; i++)
      if (i != ax)
        common.dim[k++] = out[0].dim[i];
  }
  for (int i = 0; i < nin; i++) {
    snprintf(what, sizeof what, "arg%d", i);
    /* the first inputs fix the shape; later ones are checked against it */
    SN_TRY(merge_shape(&common, &in[i], "stack", what));
  }
  for (int i = 0; i < nin; i++) {
    snprintf(what, sizeof what, "arg%d", i);
    SN_TRY(merge_shape(&in[i], &common, "stack", what));
  }
  sn_shape o;
  o.ndim = nd + 1;
  for (int i = 0, k = 0; i < nd + 1; i++)
    o.dim[i] = i == ax ? na : common.dim[k++];
  return merge_shape(&out[0], &o, "stack", "output");
}

static void stack_dims(const sn_shape *os, int ax, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < ax; i++)
    *outer *= os->dim[i];
  for (int i = ax + 1; i < os->ndim; i++)
    *inner *= os->dim[i];
}

static int stack_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  sn_tensor *out = c->out[0];
  int ax;
  SN_TRY(stack_axis(c->p, out->shape.ndim - 1, &ax));
  int64_t outer, inner, na = c->nin;
  stack_dims(&out->shape, ax, &outer, &inner);
  size_t es = sn_dtype_size(out->dtype);
  int64_t n[2] = {outer, inner}, si[2] = {inner, 1}, so[2] = {na * inner, 1};
  for (int k = 0; k < c->nin; k++)
    sn_ops_strided_copy(2, n, si, so, sn_tensor_data(c->in[k]),
                        (char *)sn_tensor_data(out) + (size_t)(k * inner) * es, es);
  return SN_OK;
}

static int stack_backward(sn_call *c) {
  const sn_tensor *og = c->ograd[0];
  int ax;
  SN_TRY(stack_axis(c->p, og->shape.ndim - 1, &ax));
  int64_t outer, inner, na = og->shape.dim[ax];
  stack_dims(&og->shape, ax, &outer, &inner);
  size_t es = sn_dtype_size(og->dtype);
  int64_t n[2] = {outer, inner}, si[2] = {inner, 1}, so[2] = {na * inner, 1};
  for (int k = 0; k < c->nin; k++)
    if (c->req[k] != SN_REQ_NULL)
      sn_ops_strided_copy(2, n, so, si, (const char *)sn_tensor_data(og) + (size_t)(k * inner) * es,
                          sn_tensor_data(c->igrad[k]), es);
  return SN_OK;
}

static const sn_op op_stack = {
    .name = "stack",
    .doc = "Joins num_args inputs of the same shape along a new axis at position `axis` "
           "(C order) of the output.",
    .params = stack_params,
    .nparams = 2,
    .list_inputs = stack_list_inputs,
    .infer_shape = stack_infer,
    .forward_cpu = stack_forward,
    .backward_cpu = stack_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_concat_split[] = {&op_concat, &op_slice_channel, &op_stack, NULL};
