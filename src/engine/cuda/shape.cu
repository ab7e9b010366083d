// GPU kernels of the shape-like op families, same semantics as the CPU:
//   ops/shape.c        Reshape, Flatten, expand_dims, squeeze (copies, skipped
//                      when the executor aliases output and input), transpose,
//                      SwapAxis, broadcast_to, broadcast_axis, tile, repeat;
//   ops/concat_split.c Concat, SliceChannel, stack;
//   ops/slice.c        slice, slice_axis, slice_like, Crop, _slice_assign,
//                      _slice_assign_scalar;
//   ops/pad_upsample.c Pad (constant, edge, reflect) and UpSampling (nearest
//                      with concat/sum of several inputs; bilinear as the
//                      depthwise transposed convolution MXNet computes).
// Forwards are strided copies (kernels.cuh strided_copy: one
// cudaMemcpyAsync when contiguous); backwards of broadcasting ops (the
// CPU's strided adds into a zeroed gradient) are deterministic gathered
// sums (kernels.cuh reductions), and Pad's backward gathers, for each input
// position, the output positions that read it in the CPU's order.  The
// parameter checks and messages are the CPU's; parameters are read by name.
#include "kernels.cuh"

#ifndef SN_DIM_NONE
#define SN_DIM_NONE INT64_MIN /* "None" entry of a tuple parameter */
#endif

namespace snk {
namespace shp {

// Tuple text of a parameter (None entries included).
const char *tup_str(const sn_shape *s, char *buf, size_t n) {
  size_t k = 0;
  if (n == 0) return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < s->ndim && k < n; i++) {
    if (s->dim[i] == SN_DIM_NONE)
      k += (size_t)snprintf(buf + k, n - k, i ? ", None" : "None");
    else
      k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s->dim[i]);
  }
  if (k < n) snprintf(buf + k, n - k, s->ndim == 1 ? ",)" : ")");
  return buf;
}

int norm_axis(int64_t axis, int ndim, const char *op, const char *pname, int *out) {
  *out = 0;
  int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    return host->error(SN_ERR_ARG, "%s: %s=%lld is out of range for a %d-D input", op, pname,
                       (long long)axis, ndim);
  *out = (int)a;
  return SN_OK;
}

// ---------------------------------------------------------------------------
// Views: Reshape, Flatten, expand_dims, squeeze
// ---------------------------------------------------------------------------
int view_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (nbytes(c->out[0]) != nbytes(c->in[0]))
    return host->error(SN_ERR_INTERNAL, "%s: input and output sizes differ", op_name(c));
  return copy_async(c, s, snc::data(c->out[0]), snc::data(c->in[0]), nbytes(c->in[0]));
}

int view_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (nbytes(c->igrad[0]) != nbytes(c->ograd[0]))
    return host->error(SN_ERR_INTERNAL, "%s: gradient sizes differ", op_name(c));
  return copy_async(c, s, snc::data(c->igrad[0]), snc::data(c->ograd[0]), nbytes(c->ograd[0]));
}

// ---------------------------------------------------------------------------
// transpose, SwapAxis
// ---------------------------------------------------------------------------
int transpose_perm(const sn_call *c, int nd, int *perm) {
  const sn_pval *axes;
  SN_TRY(get_param(c, "axes", &axes));
  const sn_shape *ax = &axes->s;
  char b[160];
  if (ax->ndim <= 0) {
    for (int i = 0; i < nd; i++) perm[i] = nd - 1 - i;
    return SN_OK;
  }
  if (ax->ndim != nd)
    return host->error(SN_ERR_ARG, "transpose: axes %s has %d entries but the input has %d dims",
                       tup_str(ax, b, sizeof b), ax->ndim, nd);
  int seen[SN_MAX_DIMS] = {0};
  for (int i = 0; i < nd; i++) {
    int k;
    SN_TRY(norm_axis(ax->dim[i], nd, "transpose", "axes", &k));
    if (seen[k])
      return host->error(SN_ERR_ARG, "transpose: axes %s is not a permutation",
                         tup_str(ax, b, sizeof b));
    seen[k] = 1;
    perm[i] = k;
  }
  return SN_OK;
}

int swap_perm(const sn_call *c, int nd, int *perm) {
  const sn_pval *d1, *d2;
  SN_TRY(get_param(c, "dim1", &d1));
  SN_TRY(get_param(c, "dim2", &d2));
  int a, b;
  SN_TRY(norm_axis(d1->i, nd, "SwapAxis", "dim1", &a));
  SN_TRY(norm_axis(d2->i, nd, "SwapAxis", "dim2", &b));
  for (int i = 0; i < nd; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return SN_OK;
}

// out = permute(in): out dim i reads input dim perm[i].
int permute_copy(const sn_call *c, cudaStream_t s, const int *perm, const sn_tensor *in,
                 sn_tensor *out) {
  const int nd = in->shape.ndim;
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], n[SN_MAX_DIMS], ss[SN_MAX_DIMS];
  strides_of(&in->shape, ist);
  strides_of(&out->shape, ost);
  for (int i = 0; i < nd; i++) {
    n[i] = out->shape.dim[i];
    ss[i] = ist[perm[i]];
  }
  return strided_copy(c, s, nd, n, ss, ost, snc::data(in), snc::data(out), dtype_size(in->dtype));
}

// igrad = inverse permute(ograd).
int permute_copy_back(const sn_call *c, cudaStream_t s, const int *perm, const sn_tensor *og,
                      sn_tensor *ig) {
  const int nd = og->shape.ndim;
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], n[SN_MAX_DIMS], ds[SN_MAX_DIMS];
  strides_of(&ig->shape, ist);
  strides_of(&og->shape, ost);
  for (int i = 0; i < nd; i++) {
    n[i] = og->shape.dim[i];
    ds[i] = ist[perm[i]];
  }
  return strided_copy(c, s, nd, n, ost, ds, snc::data(og), snc::data(ig), dtype_size(og->dtype));
}

template <bool SWAP>
int perm_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int perm[SN_MAX_DIMS];
  if (SWAP)
    SN_TRY(swap_perm(c, c->in[0]->shape.ndim, perm));
  else
    SN_TRY(transpose_perm(c, c->in[0]->shape.ndim, perm));
  return permute_copy(c, s, perm, c->in[0], c->out[0]);
}

template <bool SWAP>
int perm_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int perm[SN_MAX_DIMS];
  if (SWAP)
    SN_TRY(swap_perm(c, c->ograd[0]->shape.ndim, perm));
  else
    SN_TRY(transpose_perm(c, c->ograd[0]->shape.ndim, perm));
  return permute_copy_back(c, s, perm, c->ograd[0], c->igrad[0]);
}

// ---------------------------------------------------------------------------
// Strided sums: dst (contiguous over the kept dims, in order) = sum over
// the reduced dims of src (strides st over the full space n).
// ---------------------------------------------------------------------------
int strided_sum(const sn_call *c, cudaStream_t s, int nd, const int64_t *n, const int64_t *st,
                const int *red, const void *src, void *dst, sn_dtype dt) {
  if (nd > SNK_MAXD)
    return host->error(SN_ERR_INTERNAL, "%s: strided sum over %d dims", op_name(c), nd);
  int64_t stt[1][SNK_MAXD];
  for (int i = 0; i < nd; i++) stt[0][i] = st[i];
  RGeomH<1> g;
  rgeom_make<1>(nd, n, stt, red, g);
  SNC_FLOAT_SWITCH(dt, c, T, {
    const T *sp = (const T *)src;
    return reduce_launch<1, RSum>(c, s, g, LoadOne<T, int32_t>{sp}, LoadOne<T, int64_t>{sp},
                                  StoreScaled<T>{(T *)dst, 1.0}, "gradient sum");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// broadcast_to, broadcast_axis
// ---------------------------------------------------------------------------
int bcast_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *in = c->in[0];
  sn_tensor *out = c->out[0];
  const int nd = out->shape.ndim;
  if (in->shape.ndim != nd)
    return host->error(SN_ERR_SHAPE, "%s (GPU): input and output ranks differ", op_name(c));
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], ss[SN_MAX_DIMS];
  strides_of(&in->shape, ist);
  strides_of(&out->shape, ost);
  for (int i = 0; i < nd; i++) ss[i] = in->shape.dim[i] == out->shape.dim[i] ? ist[i] : 0;
  return strided_copy(c, s, nd, out->shape.dim, ss, ost, snc::data(in), snc::data(out),
                      dtype_size(in->dtype));
}

int bcast_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  sn_tensor *ig = c->igrad[0];
  const int nd = og->shape.ndim;
  if (ig->shape.ndim != nd)
    return host->error(SN_ERR_SHAPE, "%s (GPU): gradient ranks differ", op_name(c));
  int64_t ost[SN_MAX_DIMS];
  int red[SN_MAX_DIMS];
  strides_of(&og->shape, ost);
  for (int i = 0; i < nd; i++) red[i] = ig->shape.dim[i] != og->shape.dim[i];
  return strided_sum(c, s, nd, og->shape.dim, ost, red, snc::data(og), snc::data(ig), og->dtype);
}

// ---------------------------------------------------------------------------
// tile
// ---------------------------------------------------------------------------
int tile_align(const sn_call *c, const sn_shape *in, int *nd, int64_t *d, int64_t *r) {
  const sn_pval *rp;
  SN_TRY(get_param(c, "reps", &rp));
  const sn_shape *reps = &rp->s;
  char b[160];
  int n = in->ndim > reps->ndim ? in->ndim : reps->ndim;
  if (reps->ndim == 0) n = in->ndim;
  for (int i = 0; i < reps->ndim; i++)
    if (reps->dim[i] <= 0)
      return host->error(SN_ERR_ARG, "tile: reps %s must be positive", tup_str(reps, b, sizeof b));
  for (int i = 0; i < n; i++) {
    int ii = i - (n - in->ndim), ri = i - (n - reps->ndim);
    d[i] = ii >= 0 ? in->dim[ii] : 1;
    r[i] = (reps->ndim > 0 && ri >= 0) ? reps->dim[ri] : 1;
  }
  *nd = n;
  return SN_OK;
}

// Split dims (r_i, d_i): source strides (0, ist_i), output strides
// (d_i * ost_i, ost_i).
int tile_dims(const sn_call *c, const sn_shape *ins, const sn_shape *outs, int *nsd, int64_t *n,
              int64_t *ist2, int64_t *ost2) {
  int nd;
  int64_t d[SN_MAX_DIMS], r[SN_MAX_DIMS], ist[SN_MAX_DIMS], ost[SN_MAX_DIMS];
  SN_TRY(tile_align(c, ins, &nd, d, r));
  if (outs->ndim != nd)
    return host->error(SN_ERR_SHAPE, "tile (GPU): the output has %d dims, expected %d",
                       outs->ndim, nd);
  sn_shape ina;
  ina.ndim = nd;
  for (int i = 0; i < nd; i++) ina.dim[i] = d[i];
  strides_of(&ina, ist);
  strides_of(outs, ost);
  for (int i = 0; i < nd; i++) {
    n[2 * i] = r[i];
    n[2 * i + 1] = d[i];
    ist2[2 * i] = 0;
    ist2[2 * i + 1] = ist[i];
    ost2[2 * i] = d[i] * ost[i];
    ost2[2 * i + 1] = ost[i];
  }
  *nsd = 2 * nd;
  return SN_OK;
}

int tile_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int nsd;
  int64_t n[2 * SN_MAX_DIMS], is[2 * SN_MAX_DIMS], os[2 * SN_MAX_DIMS];
  SN_TRY(tile_dims(c, &c->in[0]->shape, &c->out[0]->shape, &nsd, n, is, os));
  return strided_copy(c, s, nsd, n, is, os, snc::data(c->in[0]), snc::data(c->out[0]),
                      dtype_size(c->in[0]->dtype));
}

int tile_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int nsd;
  int64_t n[2 * SN_MAX_DIMS], is[2 * SN_MAX_DIMS], os[2 * SN_MAX_DIMS];
  SN_TRY(tile_dims(c, &c->igrad[0]->shape, &c->ograd[0]->shape, &nsd, n, is, os));
  int red[2 * SN_MAX_DIMS];
  for (int i = 0; i < nsd; i++) red[i] = is[i] == 0;  // the repetition dims
  return strided_sum(c, s, nsd, n, os, red, snc::data(c->ograd[0]), snc::data(c->igrad[0]),
                     c->ograd[0]->dtype);
}

// ---------------------------------------------------------------------------
// repeat: dims (outer, d_axis, repeats, inner)
// ---------------------------------------------------------------------------
int repeat_dims(const sn_call *c, const sn_shape *ins, int64_t *n, int64_t *is, int64_t *os) {
  const sn_pval *rp, *axis;
  SN_TRY(get_param(c, "repeats", &rp));
  SN_TRY(get_param(c, "axis", &axis));
  int64_t rep = rp->i, outer = 1, d, inner = 1;
  if (!axis->set) {
    d = 1;
    for (int i = 0; i < ins->ndim; i++) d *= ins->dim[i];
  } else {
    int k;
    SN_TRY(norm_axis(axis->i, ins->ndim, "repeat", "axis", &k));
    for (int i = 0; i < k; i++) outer *= ins->dim[i];
    d = ins->dim[k];
    for (int i = k + 1; i < ins->ndim; i++) inner *= ins->dim[i];
  }
  n[0] = outer, n[1] = d, n[2] = rep, n[3] = inner;
  is[0] = d * inner, is[1] = inner, is[2] = 0, is[3] = 1;
  os[0] = d * rep * inner, os[1] = rep * inner, os[2] = inner, os[3] = 1;
  return SN_OK;
}

int repeat_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int64_t n[4], is[4], os[4];
  SN_TRY(repeat_dims(c, &c->in[0]->shape, n, is, os));
  return strided_copy(c, s, 4, n, is, os, snc::data(c->in[0]), snc::data(c->out[0]),
                      dtype_size(c->in[0]->dtype));
}

int repeat_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  int64_t n[4], is[4], os[4];
  SN_TRY(repeat_dims(c, &c->igrad[0]->shape, n, is, os));
  const int red[4] = {0, 0, 1, 0};
  return strided_sum(c, s, 4, n, os, red, snc::data(c->ograd[0]), snc::data(c->igrad[0]),
                     c->ograd[0]->dtype);
}

// ---------------------------------------------------------------------------
// Concat, SliceChannel, stack
// ---------------------------------------------------------------------------

// Copies between input k and its block of the output along axis ax.
// dir 0: input -> output, 1: output -> input.
int concat_block(const sn_call *c, cudaStream_t s, const sn_shape *os, int ax, int64_t off,
                 const sn_shape *is, const void *src, void *dst, size_t es, int dir) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; i++) outer *= os->dim[i];
  for (int i = ax + 1; i < os->ndim; i++) inner *= os->dim[i];
  int64_t irow = is->dim[ax] * inner, orow = os->dim[ax] * inner;
  int64_t n[2] = {outer, irow}, s1[2] = {irow, 1}, s2[2] = {orow, 1};
  if (dir == 0)
    return strided_copy(c, s, 2, n, s1, s2, src, (char *)dst + (size_t)(off * inner) * es, es);
  return strided_copy(c, s, 2, n, s2, s1, (const char *)src + (size_t)(off * inner) * es, dst, es);
}

int concat_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *dim;
  SN_TRY(get_param(c, "dim", &dim));
  sn_tensor *out = c->out[0];
  int ax;
  SN_TRY(norm_axis(dim->i, out->shape.ndim, "concat", "dim", &ax));
  const size_t es = dtype_size(out->dtype);
  int64_t off = 0;
  for (int k = 0; k < c->nin; k++) {
    SN_TRY(concat_block(c, s, &out->shape, ax, off, &c->in[k]->shape, snc::data(c->in[k]),
                        snc::data(out), es, 0));
    off += c->in[k]->shape.dim[ax];
  }
  return SN_OK;
}

int64_t concat_part(const sn_call *c, int k, int ax) {
  if (c->igrad && c->igrad[k]) return c->igrad[k]->shape.dim[ax];
  if (c->in && c->in[k] && c->in[k]->shape.ndim > ax) return c->in[k]->shape.dim[ax];
  return 0;
}

int concat_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *dim;
  SN_TRY(get_param(c, "dim", &dim));
  const sn_tensor *og = c->ograd[0];
  int ax;
  SN_TRY(norm_axis(dim->i, og->shape.ndim, "concat", "dim", &ax));
  const size_t es = dtype_size(og->dtype);
  int64_t part[1024], known = 0;
  int unknown = -1;
  if (c->nin > 1024) return host->error(SN_ERR_ARG, "concat: too many inputs (%d)", c->nin);
  for (int k = 0; k < c->nin; k++) {
    part[k] = concat_part(c, k, ax);
    if (part[k] == 0) {
      if (unknown >= 0)
        return host->error(SN_ERR_INTERNAL,
                           "concat: backward cannot place the gradients of arg%d and arg%d "
                           "(no shapes)",
                           unknown, k);
      unknown = k;
    }
    known += part[k];
  }
  if (unknown >= 0) part[unknown] = og->shape.dim[ax] - known;
  int64_t off = 0;
  for (int k = 0; k < c->nin; k++) {
    if (c->req[k] != SN_REQ_NULL)
      SN_TRY(concat_block(c, s, &og->shape, ax, off, &c->igrad[k]->shape, snc::data(og),
                          snc::data(c->igrad[k]), es, 1));
    off += part[k];
  }
  return SN_OK;
}

// Part k along axis ax of a tensor of shape full (step = part size).
int split_block(const sn_call *c, cudaStream_t s, const sn_shape *full, int ax, int64_t k,
                int64_t part, const void *src, void *dst, size_t es, int dir) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; i++) outer *= full->dim[i];
  for (int i = ax + 1; i < full->ndim; i++) inner *= full->dim[i];
  int64_t prow = part * inner, frow = full->dim[ax] * inner;
  int64_t n[2] = {outer, prow}, sf[2] = {frow, 1}, sp[2] = {prow, 1};
  size_t off = (size_t)(k * prow) * es;
  if (dir == 0) return strided_copy(c, s, 2, n, sf, sp, (const char *)src + off, dst, es);
  return strided_copy(c, s, 2, n, sp, sf, src, (char *)dst + off, es);
}

int slice_channel_forward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *axis;
  SN_TRY(get_param(c, "axis", &axis));
  const sn_tensor *in = c->in[0];
  int ax;
  SN_TRY(norm_axis(axis->i, in->shape.ndim, "SliceChannel", "axis", &ax));
  if (c->nout < 1) return SN_OK;
  const int64_t part = in->shape.dim[ax] / c->nout;
  const size_t es = dtype_size(in->dtype);
  for (int k = 0; k < c->nout; k++)
    if (c->req[k] != SN_REQ_NULL)
      SN_TRY(split_block(c, s, &in->shape, ax, k, part, snc::data(in), snc::data(c->out[k]), es, 0));
  return SN_OK;
}

int slice_channel_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_pval *axis, *nout;
  SN_TRY(get_param(c, "axis", &axis));
  SN_TRY(get_param(c, "num_outputs", &nout));
  sn_tensor *ig = c->igrad[0];
  int ax;
  SN_TRY(norm_axis(axis->i, ig->shape.ndim, "SliceChannel", "axis", &ax));
  const int64_t no = nout->i;
  if (no < 1) return host->error(SN_ERR_ARG, "SliceChannel: num_outputs must be positive");
  const int64_t part = ig->shape.dim[ax] / no;
  const size_t es = dtype_size(ig->dtype);
  int missing = 0;
  for (int64_t k = 0; k < no; k++) missing |= c->ograd[k] == NULL;
  if (missing) SN_TRY(zero_tensor(c, s, ig));
  for (int64_t k = 0; k < no; k++)
    if (c->ograd[k])
      SN_TRY(split_block(c, s, &ig->shape, ax, k, part, snc::data(c->ograd[k]), snc::data(ig),
                         es, 1));
  return SN_OK;
}

int stack_axis(const sn_call *c, int nd, int *ax) {
  const sn_pval *axis;
  SN_TRY(get_param(c, "axis", &axis));
  *ax = 0;
  int64_t a = axis->i;
  if (a < -(nd + 1) || a > nd)
    return host->error(SN_ERR_ARG, "stack: axis=%lld is out of range for %d-D inputs",
                       (long long)a, nd);
  *ax = (int)(a < 0 ? a + nd + 1 : a);
  return SN_OK;
}

void stack_dims(const sn_shape *os, int ax, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < ax; i++) *outer *= os->dim[i];
  for (int i = ax + 1; i < os->ndim; i++) *inner *= os->dim[i];
}

int stack_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  sn_tensor *out = c->out[0];
  int ax;
  SN_TRY(stack_axis(c, out->shape.ndim - 1, &ax));
  int64_t outer, inner, na = c->nin;
  stack_dims(&out->shape, ax, &outer, &inner);
  const size_t es = dtype_size(out->dtype);
  int64_t n[2] = {outer, inner}, si[2] = {inner, 1}, so[2] = {na * inner, 1};
  for (int k = 0; k < c->nin; k++)
    SN_TRY(strided_copy(c, s, 2, n, si, so, snc::data(c->in[k]),
                        (char *)snc::data(out) + (size_t)(k * inner) * es, es));
  return SN_OK;
}

int stack_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  int ax;
  SN_TRY(stack_axis(c, og->shape.ndim - 1, &ax));
  int64_t outer, inner, na = og->shape.dim[ax];
  stack_dims(&og->shape, ax, &outer, &inner);
  const size_t es = dtype_size(og->dtype);
  int64_t n[2] = {outer, inner}, si[2] = {inner, 1}, so[2] = {na * inner, 1};
  for (int k = 0; k < c->nin; k++)
    if (c->req[k] != SN_REQ_NULL)
      SN_TRY(strided_copy(c, s, 2, n, so, si,
                          (const char *)snc::data(og) + (size_t)(k * inner) * es,
                          snc::data(c->igrad[k]), es));
  return SN_OK;
}

// ---------------------------------------------------------------------------
// slice family: boxes (per dim begin, step, size) of a full tensor
// ---------------------------------------------------------------------------
struct Box {
  int nd;
  int64_t b[SN_MAX_DIMS], s[SN_MAX_DIMS], n[SN_MAX_DIMS];
};

// dir 0 gathers the box out of f into the dense d, dir 1 scatters d into f.
int box_copy(const sn_call *c, cudaStream_t s, const Box *bx, const sn_shape *fs, void *f,
             void *d, size_t es, int dir) {
  int64_t fst[SN_MAX_DIMS], dst[SN_MAX_DIMS], fs2[SN_MAX_DIMS];
  sn_shape bs;
  bs.ndim = bx->nd;
  for (int i = 0; i < bx->nd; i++) bs.dim[i] = bx->n[i];
  strides_of(fs, fst);
  strides_of(&bs, dst);
  int64_t base = 0;
  for (int i = 0; i < bx->nd; i++) {
    base += bx->b[i] * fst[i];
    fs2[i] = fst[i] * bx->s[i];
  }
  char *fb = (char *)f + base * (int64_t)es;
  if (dir == 0) return strided_copy(c, s, bx->nd, bx->n, fs2, dst, fb, d, es);
  return strided_copy(c, s, bx->nd, bx->n, dst, fs2, d, fb, es);
}

// Sets the box of f to one value (es bytes at val).
int box_fill(const sn_call *c, cudaStream_t s, const Box *bx, const sn_shape *fs, void *f,
             const void *val, size_t es) {
  int64_t fst[SN_MAX_DIMS], fs2[SN_MAX_DIMS];
  strides_of(fs, fst);
  int64_t base = 0;
  for (int i = 0; i < bx->nd; i++) {
    base += bx->b[i] * fst[i];
    fs2[i] = fst[i] * bx->s[i];
  }
  return strided_fill(c, s, bx->nd, bx->n, fs2, (char *)f + base * (int64_t)es, val, es);
}

// MXNet's slice range (ops/slice.c slice_box).
int slice_box(const char *op, const sn_shape *begin, const sn_shape *end, const sn_shape *step,
              const sn_shape *ds, Box *bx) {
  char a[128], b1[160], b2[160];
  const int nd = ds->ndim;
  if (begin->ndim != end->ndim)
    return host->error(SN_ERR_ARG, "%s: begin %s and end %s must have the same length", op,
                       tup_str(begin, b1, sizeof b1), tup_str(end, b2, sizeof b2));
  if (begin->ndim > nd)
    return host->error(SN_ERR_ARG, "%s: begin %s has more entries than the input %s has dims",
                       op, tup_str(begin, b1, sizeof b1), shape_str(ds, a, sizeof a));
  if (step->ndim != 0 && step->ndim != begin->ndim)
    return host->error(SN_ERR_ARG, "%s: step %s and begin %s must have the same length", op,
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
    int64_t st = (step->ndim && step->dim[i] != SN_DIM_NONE) ? step->dim[i] : 1;
    if (st == 0) return host->error(SN_ERR_ARG, "%s: step[%d] cannot be 0", op, i);
    bx->s[i] = st;
    if (len == 0) {
      bx->b[i] = 0;
      bx->n[i] = 0;
      continue;
    }
    int64_t bb = begin->dim[i] != SN_DIM_NONE ? begin->dim[i] : (st < 0 ? len - 1 : 0);
    int64_t ee = end->dim[i] != SN_DIM_NONE ? end->dim[i] : (st < 0 ? -1 : len);
    if (bb < 0) bb += len;
    if (bb < 0 || bb >= len)
      return host->error(SN_ERR_ARG,
                         "%s: begin[%d]=%lld is out of range for dim %d of size %lld (input %s)",
                         op, i, (long long)begin->dim[i], i, (long long)len,
                         shape_str(ds, a, sizeof a));
    if (end->dim[i] != SN_DIM_NONE && ee < 0) {
      ee += len;
      if (ee < 0)
        return host->error(SN_ERR_ARG,
                           "%s: end[%d]=%lld is out of range for dim %d of size %lld (input %s)",
                           op, i, (long long)end->dim[i], i, (long long)len,
                           shape_str(ds, a, sizeof a));
    }
    if (ee > len)
      return host->error(SN_ERR_ARG,
                         "%s: end[%d]=%lld is out of range for dim %d of size %lld (input %s)",
                         op, i, (long long)end->dim[i], i, (long long)len,
                         shape_str(ds, a, sizeof a));
    if (bb == ee)
      return host->error(SN_ERR_ARG,
                         "%s: begin[%d] = end[%d] = %lld gives an empty slice, which is not "
                         "supported",
                         op, i, i, (long long)ee);
    if (st > 0 && bb > ee)
      return host->error(SN_ERR_ARG, "%s: begin[%d]=%lld > end[%d]=%lld with step %lld", op, i,
                         (long long)bb, i, (long long)ee, (long long)st);
    if (st < 0 && ee > bb)
      return host->error(SN_ERR_ARG, "%s: begin[%d]=%lld < end[%d]=%lld with step %lld", op, i,
                         (long long)bb, i, (long long)ee, (long long)st);
    bx->b[i] = bb;
    bx->n[i] = st > 0 ? (ee - bb - 1) / st + 1 : (bb - ee - 1) / (-st) + 1;
  }
  return SN_OK;
}

int call_slice_box(const sn_call *c, const char *op, const sn_shape *ds, Box *bx) {
  const sn_pval *b, *e, *st;
  SN_TRY(get_param(c, "begin", &b));
  SN_TRY(get_param(c, "end", &e));
  SN_TRY(get_param(c, "step", &st));
  return slice_box(op, &b->s, &e->s, &st->s, ds, bx);
}

int slice_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  Box bx;
  SN_TRY(call_slice_box(c, "slice", &c->in[0]->shape, &bx));
  return box_copy(c, s, &bx, &c->in[0]->shape, snc::data(c->in[0]), snc::data(c->out[0]),
                  dtype_size(c->in[0]->dtype), 0);
}

int slice_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  Box bx;
  SN_TRY(call_slice_box(c, "slice", &c->igrad[0]->shape, &bx));
  SN_TRY(zero_tensor(c, s, c->igrad[0]));
  return box_copy(c, s, &bx, &c->igrad[0]->shape, snc::data(c->igrad[0]), snc::data(c->ograd[0]),
                  dtype_size(c->ograd[0]->dtype), 1);
}

int slice_axis_box(const sn_call *c, const sn_shape *ds, Box *bx) {
  const sn_pval *axis, *pb, *pe;
  SN_TRY(get_param(c, "axis", &axis));
  SN_TRY(get_param(c, "begin", &pb));
  SN_TRY(get_param(c, "end", &pe));
  char a[128];
  int ax;
  SN_TRY(norm_axis(axis->i, ds->ndim, "slice_axis", "axis", &ax));
  bx->nd = ds->ndim;
  for (int i = 0; i < ds->ndim; i++) {
    bx->b[i] = 0;
    bx->s[i] = 1;
    bx->n[i] = ds->dim[i];
  }
  int64_t len = ds->dim[ax];
  if (len == 0) return SN_OK;
  int64_t b = pb->i, e = pe->set ? pe->i : len;
  if (b < 0) b += len;
  if (e < 0) e += len;
  if (b < 0 || b >= len || e <= b || e > len)
    return host->error(SN_ERR_ARG,
                       "slice_axis: begin=%lld, end=%s%lld is not a valid range for axis %d of "
                       "input %s (size %lld)",
                       (long long)pb->i, pe->set ? "" : "None=",
                       (long long)(pe->set ? pe->i : len), ax, shape_str(ds, a, sizeof a),
                       (long long)len);
  bx->b[ax] = b;
  bx->n[ax] = e - b;
  return SN_OK;
}

int slice_axis_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  Box bx;
  SN_TRY(slice_axis_box(c, &c->in[0]->shape, &bx));
  return box_copy(c, s, &bx, &c->in[0]->shape, snc::data(c->in[0]), snc::data(c->out[0]),
                  dtype_size(c->in[0]->dtype), 0);
}

int slice_axis_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  Box bx;
  SN_TRY(slice_axis_box(c, &c->igrad[0]->shape, &bx));
  SN_TRY(zero_tensor(c, s, c->igrad[0]));
  return box_copy(c, s, &bx, &c->igrad[0]->shape, snc::data(c->igrad[0]), snc::data(c->ograd[0]),
                  dtype_size(c->ograd[0]->dtype), 1);
}

int slice_like_box(const sn_call *c, const sn_shape *ds, const sn_shape *ls, Box *bx) {
  const sn_pval *pa;
  SN_TRY(get_param(c, "axes", &pa));
  const sn_shape *axes = &pa->s;
  char a[128], b[128];
  bx->nd = ds->ndim;
  for (int i = 0; i < ds->ndim; i++) {
    bx->b[i] = 0;
    bx->s[i] = 1;
    bx->n[i] = ds->dim[i];
  }
  if (axes->ndim == 0 && ls->ndim != ds->ndim)
    return host->error(SN_ERR_SHAPE,
                       "slice_like: with no axes, data %s and shape_like %s must have the same "
                       "number of dims",
                       shape_str(ds, a, sizeof a), shape_str(ls, b, sizeof b));
  int n = axes->ndim ? axes->ndim : ds->ndim;
  for (int j = 0; j < n; j++) {
    int ax = j;
    if (axes->ndim) {
      SN_TRY(norm_axis(axes->dim[j], ds->ndim, "slice_like", "axes", &ax));
      if (ax >= ls->ndim)
        return host->error(SN_ERR_SHAPE, "slice_like: axis %d is out of range for shape_like %s",
                           ax, shape_str(ls, a, sizeof a));
    }
    int64_t l = ls->dim[ax];
    if (l != 0 && ds->dim[ax] != 0 && l > ds->dim[ax])
      return host->error(SN_ERR_SHAPE,
                         "slice_like: shape_like %s is larger than data %s in axis %d",
                         shape_str(ls, a, sizeof a), shape_str(ds, b, sizeof b), ax);
    bx->n[ax] = l;
  }
  return SN_OK;
}

int slice_like_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  Box bx;
  SN_TRY(slice_like_box(c, &c->in[0]->shape, &c->in[1]->shape, &bx));
  return box_copy(c, s, &bx, &c->in[0]->shape, snc::data(c->in[0]), snc::data(c->out[0]),
                  dtype_size(c->in[0]->dtype), 0);
}

// Backward of a leading-corner crop (slice_like): the box is the gradient's shape.
int corner_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[0] != SN_REQ_NULL) {
    const sn_tensor *og = c->ograd[0];
    Box bx;
    bx.nd = og->shape.ndim;
    for (int i = 0; i < bx.nd; i++) {
      bx.b[i] = 0;
      bx.s[i] = 1;
      bx.n[i] = og->shape.dim[i];
    }
    SN_TRY(zero_tensor(c, s, c->igrad[0]));
    SN_TRY(box_copy(c, s, &bx, &c->igrad[0]->shape, snc::data(c->igrad[0]), snc::data(og),
                    dtype_size(og->dtype), 1));
  }
  if (c->nin > 1 && c->req[1] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[1]));
  return SN_OK;
}

// ---- Crop (legacy layer) ----
int crop_geom(const sn_call *c, const sn_shape *ds, const sn_shape *like, int64_t *h, int64_t *w,
              int64_t *oy, int64_t *ox) {
  const sn_pval *pna, *poff, *phw, *pcenter;
  SN_TRY(get_param(c, "num_args", &pna));
  SN_TRY(get_param(c, "offset", &poff));
  SN_TRY(get_param(c, "h_w", &phw));
  SN_TRY(get_param(c, "center_crop", &pcenter));
  char a[128], b[128];
  int64_t na = pna->i;
  if (na < 1 || na > 2)
    return host->error(SN_ERR_ARG, "Crop: num_args=%lld must be 1 or 2", (long long)na);
  if (ds->ndim != 4)
    return host->error(SN_ERR_SHAPE, "Crop: data must be 4-D (batch, channel, y, x), got %s",
                       shape_str(ds, a, sizeof a));
  if (na == 1) {
    const sn_shape *hw = &phw->s;
    if (hw->ndim != 2) return host->error(SN_ERR_ARG, "Crop: h_w must have 2 entries");
    *h = hw->dim[0];
    *w = hw->dim[1];
    if (*h < 1 || *w < 1)
      return host->error(SN_ERR_ARG, "Crop: h_w=(%lld, %lld) must be positive with num_args=1",
                         (long long)*h, (long long)*w);
  } else {
    if (!like || like->ndim < 0) {
      *h = *w = 0;
      return SN_OK;
    }
    if (like->ndim != 4)
      return host->error(SN_ERR_SHAPE, "Crop: crop_like must be 4-D, got %s",
                         shape_str(like, a, sizeof a));
    *h = like->dim[2];
    *w = like->dim[3];
  }
  if ((ds->dim[2] && *h > ds->dim[2]) || (ds->dim[3] && *w > ds->dim[3]))
    return host->error(SN_ERR_SHAPE, "Crop: crop size (%lld, %lld) is larger than data %s",
                       (long long)*h, (long long)*w, shape_str(ds, b, sizeof b));
  if (!ds->dim[2] || !ds->dim[3] || !*h || !*w) {
    *oy = *ox = 0;
    return SN_OK;
  }
  if (pcenter->i) {
    *oy = (ds->dim[2] - *h) / 2;
    *ox = (ds->dim[3] - *w) / 2;
  } else {
    const sn_shape *off = &poff->s;
    if (off->ndim != 2) return host->error(SN_ERR_ARG, "Crop: offset must have 2 entries");
    *oy = off->dim[0];
    *ox = off->dim[1];
    if (*oy < 0 || *ox < 0 || *oy > ds->dim[2] - *h || *ox > ds->dim[3] - *w)
      return host->error(SN_ERR_ARG,
                         "Crop: offset (%lld, %lld) with crop size (%lld, %lld) does not fit "
                         "data %s",
                         (long long)*oy, (long long)*ox, (long long)*h, (long long)*w,
                         shape_str(ds, b, sizeof b));
  }
  return SN_OK;
}

int crop_box(const sn_call *c, const sn_shape *ds, const sn_shape *os, Box *bx) {
  int64_t h, w, oy, ox;
  sn_shape like = *os;  // the output has crop_like's spatial size
  SN_TRY(crop_geom(c, ds, &like, &h, &w, &oy, &ox));
  const sn_pval *pna;
  SN_TRY(get_param(c, "num_args", &pna));
  if (pna->i == 1 && (h != os->dim[2] || w != os->dim[3]))
    return host->error(SN_ERR_INTERNAL, "Crop: output shape disagrees with h_w");
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

int crop_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  Box bx;
  SN_TRY(crop_box(c, &c->in[0]->shape, &c->out[0]->shape, &bx));
  return box_copy(c, s, &bx, &c->in[0]->shape, snc::data(c->in[0]), snc::data(c->out[0]),
                  dtype_size(c->in[0]->dtype), 0);
}

int crop_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  if (c->req[0] != SN_REQ_NULL) {
    Box bx;
    SN_TRY(crop_box(c, &c->igrad[0]->shape, &c->ograd[0]->shape, &bx));
    SN_TRY(zero_tensor(c, s, c->igrad[0]));
    SN_TRY(box_copy(c, s, &bx, &c->igrad[0]->shape, snc::data(c->igrad[0]),
                    snc::data(c->ograd[0]), dtype_size(c->ograd[0]->dtype), 1));
  }
  if (c->nin > 1 && c->req[1] != SN_REQ_NULL) SN_TRY(zero_tensor(c, s, c->igrad[1]));
  return SN_OK;
}

// ---- _slice_assign, _slice_assign_scalar ----
int slice_assign_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *lhs = c->in[0], *rhs = c->in[1];
  sn_tensor *out = c->out[0];
  Box bx;
  SN_TRY(call_slice_box(c, "_slice_assign", &lhs->shape, &bx));
  SN_TRY(copy_async(c, s, snc::data(out), snc::data(lhs), nbytes(lhs)));
  return box_copy(c, s, &bx, &out->shape, snc::data(out), snc::data(rhs), dtype_size(rhs->dtype), 1);
}

int slice_assign_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  const size_t es = dtype_size(og->dtype);
  Box bx;
  SN_TRY(call_slice_box(c, "_slice_assign", &og->shape, &bx));
  if (c->req[1] != SN_REQ_NULL)  // rhs: the region of the gradient (first)
    SN_TRY(box_copy(c, s, &bx, &og->shape, snc::data(og), snc::data(c->igrad[1]), es, 0));
  if (c->req[0] != SN_REQ_NULL) {  // lhs: the gradient outside the region
    const uint64_t zero = 0;
    SN_TRY(copy_async(c, s, snc::data(c->igrad[0]), snc::data(og), nbytes(og)));
    SN_TRY(box_fill(c, s, &bx, &og->shape, snc::data(c->igrad[0]), &zero, es));
  }
  return SN_OK;
}

int slice_assign_scalar_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *in = c->in[0];
  sn_tensor *out = c->out[0];
  const sn_pval *sc;
  SN_TRY(get_param(c, "scalar", &sc));
  Box bx;
  SN_TRY(call_slice_box(c, "_slice_assign_scalar", &in->shape, &bx));
  const double v = sc->f;
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
      return host->error(SN_ERR_TYPE, "_slice_assign_scalar: dtype %s is not supported",
                         dtype_name(in->dtype));
  }
  SN_TRY(copy_async(c, s, snc::data(out), snc::data(in), nbytes(in)));
  return box_fill(c, s, &bx, &out->shape, snc::data(out), &val, dtype_size(in->dtype));
}

int slice_assign_scalar_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  Box bx;
  SN_TRY(call_slice_box(c, "_slice_assign_scalar", &og->shape, &bx));
  const uint64_t zero = 0;
  SN_TRY(copy_async(c, s, snc::data(c->igrad[0]), snc::data(og), nbytes(og)));
  return box_fill(c, s, &bx, &og->shape, snc::data(c->igrad[0]), &zero, dtype_size(og->dtype));
}

// ---------------------------------------------------------------------------
// Pad
// ---------------------------------------------------------------------------
enum { PAD_CONSTANT, PAD_EDGE, PAD_REFLECT };

struct PadGeom {
  int64_t planes;
  int64_t in[3], out[3], before[3];
};

int pad_check(const sn_call *c, const sn_shape *ds, PadGeom *g, int *mode, double *cv) {
  const sn_pval *pm, *pwv, *pcv;
  SN_TRY(get_param(c, "mode", &pm));
  SN_TRY(get_param(c, "pad_width", &pwv));
  SN_TRY(get_param(c, "constant_value", &pcv));
  *mode = (int)pm->i;
  *cv = pcv->f;
  char a[128], b[160];
  const sn_shape *pw = &pwv->s;
  const int nd = ds->ndim;
  if (nd != 4 && nd != 5)
    return host->error(SN_ERR_SHAPE,
                       "Pad: only 4-D or 5-D inputs are supported (padding the dims after the "
                       "first two), got %s",
                       shape_str(ds, a, sizeof a));
  if (pw->ndim != 2 * nd)
    return host->error(SN_ERR_ARG, "Pad: pad_width %s must have 2 * ndim = %d entries for input %s",
                       tup_str(pw, b, sizeof b), 2 * nd, shape_str(ds, a, sizeof a));
  for (int i = 0; i < 4; i++)
    if (pw->dim[i] != 0)
      return host->error(SN_ERR_ARG,
                         "Pad: pad_width %s pads the batch or channel dim; only the dims after "
                         "the first two can be padded",
                         tup_str(pw, b, sizeof b));
  for (int i = 0; i < pw->ndim; i++)
    if (pw->dim[i] < 0)
      return host->error(SN_ERR_ARG, "Pad: pad_width %s must not be negative",
                         tup_str(pw, b, sizeof b));
  g->planes = ds->dim[0] * ds->dim[1];
  const int ns = nd - 2, off = 3 - ns;
  for (int k = 0; k < 3; k++) {
    g->in[k] = g->out[k] = 1;
    g->before[k] = 0;
  }
  for (int k = 0; k < ns; k++) {
    int64_t len = ds->dim[2 + k], pb = pw->dim[2 * (2 + k)], pa = pw->dim[2 * (2 + k) + 1];
    if (*mode == PAD_REFLECT && len != 0 && (pb >= len || pa >= len))
      return host->error(SN_ERR_ARG,
                         "Pad: reflect padding (%lld, %lld) of dim %d must be smaller than its "
                         "size %lld (input %s)",
                         (long long)pb, (long long)pa, 2 + k, (long long)len,
                         shape_str(ds, a, sizeof a));
    g->in[off + k] = len;
    g->out[off + k] = len + pb + pa;
    g->before[off + k] = pb;
  }
  return SN_OK;
}

// Input index read by output index o of a dim (-1: the constant).
__device__ __forceinline__ int64_t pad_src(int64_t o, int64_t before, int64_t len, int mode) {
  int64_t i = o - before;
  if (i >= 0 && i < len) return i;
  if (mode == PAD_CONSTANT) return -1;
  if (mode == PAD_EDGE) return i < 0 ? 0 : len - 1;
  return i < 0 ? -i : 2 * (len - 1) - i;  // reflect (widths < len)
}

template <typename T>
struct PadFwd {
  PadGeom g;
  int mode;
  T val;
  const T *src;
  T *dst;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t OW = g.out[2], OH = g.out[1], OD = g.out[0];
    int64_t r = e;
    const int64_t ox = r % OW;
    r /= OW;
    const int64_t oy = r % OH;
    r /= OH;
    const int64_t oz = r % OD;
    const int64_t pl = r / OD;
    const int64_t iz = pad_src(oz, g.before[0], g.in[0], mode);
    const int64_t iy = pad_src(oy, g.before[1], g.in[1], mode);
    const int64_t ix = pad_src(ox, g.before[2], g.in[2], mode);
    dst[e] = (iz < 0 || iy < 0 || ix < 0)
                 ? val
                 : src[((pl * g.in[0] + iz) * g.in[1] + iy) * g.in[2] + ix];
  }
};

// The output indices of one dim that read input index i, as up to three
// ascending ranges [lo, hi).
struct Ranges {
  int n;
  int64_t lo[3], hi[3];
};

__device__ __forceinline__ void pad_ranges(int64_t i, int64_t before, int64_t len, int64_t out,
                                           int mode, Ranges *r) {
  r->n = 0;
  const int64_t mid = i + before;
  if (mode == PAD_EDGE) {
    if (i == 0 && before > 0) {
      r->lo[r->n] = 0;
      r->hi[r->n++] = before;
    }
    r->lo[r->n] = mid;
    r->hi[r->n++] = mid + 1;
    if (i == len - 1 && before + len < out) {
      r->lo[r->n] = before + len;
      r->hi[r->n++] = out;
    }
  } else if (mode == PAD_REFLECT) {
    if (i >= 1 && i <= before) {  // o - before = -i
      r->lo[r->n] = before - i;
      r->hi[r->n++] = before - i + 1;
    }
    r->lo[r->n] = mid;
    r->hi[r->n++] = mid + 1;
    const int64_t o2 = before + 2 * (len - 1) - i;  // o - before = 2 (len - 1) - i >= len
    if (i <= len - 2 && o2 < out) {
      r->lo[r->n] = o2;
      r->hi[r->n++] = o2 + 1;
    }
  } else {
    r->lo[0] = mid;
    r->hi[0] = mid + 1;
    r->n = 1;
  }
}

// ig[i] = sum of og over the output positions reading i, in ascending
// output order (the CPU's order of additions).
template <typename T>
struct PadBwd {
  PadGeom g;
  int mode;
  const T *og;
  T *ig;
  __device__ __forceinline__ void operator()(int64_t e) const {
    const int64_t IW = g.in[2], IH = g.in[1], ID = g.in[0];
    const int64_t OW = g.out[2], OH = g.out[1], OD = g.out[0];
    int64_t r = e;
    const int64_t ix = r % IW;
    r /= IW;
    const int64_t iy = r % IH;
    r /= IH;
    const int64_t iz = r % ID;
    const int64_t pl = r / ID;
    Ranges rz, ry, rx;
    pad_ranges(iz, g.before[0], ID, OD, mode, &rz);
    pad_ranges(iy, g.before[1], IH, OH, mode, &ry);
    pad_ranges(ix, g.before[2], IW, OW, mode, &rx);
    const T *op = og + pl * OD * OH * OW;
    T acc = 0;
    for (int a = 0; a < rz.n; a++)
      for (int64_t oz = rz.lo[a]; oz < rz.hi[a]; oz++)
        for (int b = 0; b < ry.n; b++)
          for (int64_t oy = ry.lo[b]; oy < ry.hi[b]; oy++) {
            const T *orow = op + (oz * OH + oy) * OW;
            for (int q = 0; q < rx.n; q++)
              for (int64_t ox = rx.lo[q]; ox < rx.hi[q]; ox++) acc += orow[ox];
          }
    ig[e] = acc;
  }
};

int pad_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  PadGeom g;
  int mode;
  double cv;
  SN_TRY(pad_check(c, &c->in[0]->shape, &g, &mode, &cv));
  const int64_t n = g.planes * g.out[0] * g.out[1] * g.out[2];
  SNC_FLOAT_SWITCH(c->in[0]->dtype, c, T, {
    PadFwd<T> f{g, mode, (T)cv, snc::ptr<T>(c->in[0]), snc::ptr<T>(c->out[0])};
    return launch_flat(c, s, n, f, "forward");
  });
  return SN_OK;
}

int pad_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  PadGeom g;
  int mode;
  double cv;
  SN_TRY(pad_check(c, &c->igrad[0]->shape, &g, &mode, &cv));
  const int64_t n = g.planes * g.in[0] * g.in[1] * g.in[2];
  SNC_FLOAT_SWITCH(c->ograd[0]->dtype, c, T, {
    PadBwd<T> f{g, mode, snc::ptr<T>(c->ograd[0]), snc::ptr<T>(c->igrad[0])};
    return launch_flat(c, s, n, f, "backward");
  });
  return SN_OK;
}

// ---------------------------------------------------------------------------
// UpSampling
// ---------------------------------------------------------------------------
enum { UP_NEAREST, UP_BILINEAR };
enum { UP_CONCAT, UP_SUM };

int up_scale(const sn_call *c, int64_t *sh, int64_t *sw) {
  const sn_pval *ps;
  SN_TRY(get_param(c, "scale", &ps));
  const sn_shape *s = &ps->s;
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
    return host->error(SN_ERR_ARG, "UpSampling: scale %s must have 1, 2 or 4 entries",
                       tup_str(s, b, sizeof b));
  }
  if (*sh < 1 || *sw < 1 || *sh > 1000 || *sw > 1000)
    return host->error(SN_ERR_ARG, "UpSampling: scale %s must be positive and at most 1000",
                       tup_str(s, b, sizeof b));
  return SN_OK;
}

inline int64_t bil_kernel(int64_t s) { return 2 * s - s % 2; }
inline int64_t bil_pad(int64_t s) { return s / 2; }

// Input k into its channel block of the output (or added to it).
template <typename T>
struct NearestFwd {
  const T *src;
  T *dst;
  int64_t C, H, W, OC, OH, OW, coff, sh, sw;
  bool add;
  __device__ __forceinline__ void operator()(int64_t e) const {
    int64_t r = e;
    const int64_t ox = r % OW;
    r /= OW;
    const int64_t oy = r % OH;
    r /= OH;
    const int64_t ch = r % C;
    const int64_t n = r / C;
    const T v = src[((n * C + ch) * H + oy / sh) * W + ox / sw];
    T *d = dst + ((n * OC + coff + ch) * OH + oy) * OW + ox;
    if (add)
      *d += v;
    else
      *d = v;
  }
};

template <typename T>
struct NearestBwd {
  const T *og;
  T *ig;
  int64_t C, H, W, OC, OH, OW, coff, sh, sw;
  __device__ __forceinline__ void operator()(int64_t e) const {
    int64_t r = e;
    const int64_t ix = r % W;
    r /= W;
    const int64_t iy = r % H;
    r /= H;
    const int64_t ch = r % C;
    const int64_t n = r / C;
    const T *op = og + ((n * OC + coff + ch) * OH) * OW;
    T acc = 0;
    for (int64_t q = 0; q < sh; q++) {
      const T *orow = op + (iy * sh + q) * OW + ix * sw;
      for (int64_t t = 0; t < sw; t++) acc += orow[t];
    }
    ig[e] = acc;
  }
};

int nearest_forward(sn_call *c, bool sum_mode) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  sn_tensor *out = c->out[0];
  const int64_t OC = out->shape.dim[1], OH = out->shape.dim[2], OW = out->shape.dim[3];
  const bool sum = sum_mode && c->nin > 1;
  int64_t coff = 0;
  for (int k = 0; k < c->nin; k++) {
    const sn_tensor *in = c->in[k];
    const int64_t N = in->shape.dim[0], C = in->shape.dim[1], H = in->shape.dim[2],
                  W = in->shape.dim[3];
    const int64_t sh = OH / H, sw = OW / W;
    SNC_FLOAT_SWITCH(in->dtype, c, T, {
      NearestFwd<T> f{snc::ptr<T>(in), snc::ptr<T>(out), C, H, W, OC, OH, OW,
                      sum ? 0 : coff, sh, sw, sum && k > 0};
      SN_TRY(launch_flat(c, s, N * C * OH * OW, f, "forward"));
    });
    coff += C;
  }
  return SN_OK;
}

int64_t up_channels(const sn_call *c, int k) {
  if (c->igrad && c->igrad[k]) return c->igrad[k]->shape.dim[1];
  if (c->in && c->in[k]) return c->in[k]->shape.dim[1];
  return 0;
}

int nearest_backward(sn_call *c, bool sum_mode) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0];
  const int64_t N = og->shape.dim[0], OC = og->shape.dim[1], OH = og->shape.dim[2],
                OW = og->shape.dim[3];
  const bool sum = sum_mode && c->nin > 1;
  int64_t coff = 0;
  for (int k = 0; k < c->nin; k++) {
    const int64_t C = up_channels(c, k);
    if (C == 0) {
      if (c->req[k] == SN_REQ_NULL && (sum || k == c->nin - 1)) continue;
      return host->error(SN_ERR_INTERNAL, "UpSampling: backward cannot place arg%d (no shape)", k);
    }
    if (c->req[k] != SN_REQ_NULL) {
      sn_tensor *ig = c->igrad[k];
      const int64_t H = ig->shape.dim[2], W = ig->shape.dim[3];
      const int64_t sh = OH / H, sw = OW / W;
      SNC_FLOAT_SWITCH(og->dtype, c, T, {
        NearestBwd<T> f{snc::ptr<T>(og), snc::ptr<T>(ig), C, H, W, OC, OH, OW,
                        sum ? 0 : coff, sh, sw};
        SN_TRY(launch_flat(c, s, N * C * H * W, f, "backward"));
      });
    }
    coff += C;
  }
  return SN_OK;
}

// Depthwise transposed convolution: out[oy, ox] = sum in[iy, ix] w[ky, kx]
// over oy = iy * s - pad + ky, ox = ix * s - pad + kx.
template <typename T>
struct BilinearFwd {
  const T *src, *w;
  T *dst;
  int64_t C, H, W, OH, OW, K, pad, s;
  __device__ __forceinline__ void operator()(int64_t e) const {
    int64_t r = e;
    const int64_t ox = r % OW;
    r /= OW;
    const int64_t oy = r % OH;
    const int64_t pc = r / OH;
    const int64_t ch = pc % C;
    const T *ip = src + pc * H * W;
    const T *wk = w + ch * K * K;
    const int64_t ky0 = (oy + pad) % s, kx0 = (ox + pad) % s;
    T acc = 0;
    for (int64_t ky = ky0; ky < K; ky += s) {
      const int64_t iy = (oy + pad - ky) / s;
      if (oy + pad - ky < 0 || iy >= H) continue;
      for (int64_t kx = kx0; kx < K; kx += s) {
        const int64_t ix = (ox + pad - kx) / s;
        if (ox + pad - kx < 0 || ix >= W) continue;
        acc += ip[iy * W + ix] * wk[ky * K + kx];
      }
    }
    dst[e] = acc;
  }
};

template <typename T>
struct BilinearBwdData {
  const T *g, *w;
  T *gx;
  int64_t C, H, W, OH, OW, K, pad, s;
  __device__ __forceinline__ void operator()(int64_t e) const {
    int64_t r = e;
    const int64_t ix = r % W;
    r /= W;
    const int64_t iy = r % H;
    const int64_t pc = r / H;
    const int64_t ch = pc % C;
    const T *gp = g + pc * OH * OW;
    const T *wk = w + ch * K * K;
    T acc = 0;
    for (int64_t ky = 0; ky < K; ky++) {
      const int64_t oy = iy * s - pad + ky;
      if (oy < 0 || oy >= OH) continue;
      for (int64_t kx = 0; kx < K; kx++) {
        const int64_t ox = ix * s - pad + kx;
        if (ox < 0 || ox >= OW) continue;
        acc += gp[oy * OW + ox] * wk[ky * K + kx];
      }
    }
    gx[e] = acc;
  }
};

// One block per weight element (ch, ky, kx): sum over n, iy, ix of x * g.
template <typename T>
__global__ void bilinear_wgrad_kernel(const T *g, const T *x, T *gw, int64_t N, int64_t C,
                                      int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t K,
                                      int64_t pad, int64_t s) {
  __shared__ double sh[32];
  const int64_t nw = C * K * K, per = N * H * W;
  for (int64_t u = blockIdx.x; u < nw; u += gridDim.x) {
    const int64_t kx = u % K, ky = (u / K) % K, ch = u / (K * K);
    double acc = 0;
    for (int64_t e = threadIdx.x; e < per; e += blockDim.x) {
      const int64_t ix = e % W, iy = (e / W) % H, n = e / (W * H);
      const int64_t oy = iy * s - pad + ky, ox = ix * s - pad + kx;
      if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
      acc += (double)(x[((n * C + ch) * H + iy) * W + ix] * g[((n * C + ch) * OH + oy) * OW + ox]);
    }
    acc = block_reduce<RSum>(acc, sh);
    if (threadIdx.x == 0) gw[u] = (T)acc;
  }
}

int bilinear_forward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *in = c->in[0], *wt = c->in[1];
  sn_tensor *out = c->out[0];
  int64_t sc, sc2;
  SN_TRY(up_scale(c, &sc, &sc2));
  const int64_t N = in->shape.dim[0], C = in->shape.dim[1], H = in->shape.dim[2],
                W = in->shape.dim[3], OH = out->shape.dim[2], OW = out->shape.dim[3];
  const int64_t K = bil_kernel(sc), pad = bil_pad(sc);
  SNC_FLOAT_SWITCH(in->dtype, c, T, {
    BilinearFwd<T> f{snc::ptr<T>(in), snc::ptr<T>(wt), snc::ptr<T>(out), C, H, W, OH, OW, K, pad, sc};
    return launch_flat(c, s, N * C * OH * OW, f, "forward");
  });
  return SN_OK;
}

int bilinear_backward(sn_call *c) {
  cudaStream_t s;
  SN_TRY(begin(c, &s));
  const sn_tensor *og = c->ograd[0], *in = c->in[0], *wt = c->in[1];
  if (!in || !wt || !in->st || !wt->st)
    return host->error(SN_ERR_INTERNAL, "UpSampling backward (GPU): the forward inputs are missing");
  int64_t sc, sc2;
  SN_TRY(up_scale(c, &sc, &sc2));
  const int64_t N = in->shape.dim[0], C = in->shape.dim[1], H = in->shape.dim[2],
                W = in->shape.dim[3], OH = og->shape.dim[2], OW = og->shape.dim[3];
  const int64_t K = bil_kernel(sc), pad = bil_pad(sc);
  SNC_FLOAT_SWITCH(og->dtype, c, T, {
    if (c->req[0] != SN_REQ_NULL) {
      BilinearBwdData<T> f{snc::ptr<T>(og), snc::ptr<T>(wt), snc::ptr<T>(c->igrad[0]), C, H, W,
                           OH, OW, K, pad, sc};
      SN_TRY(launch_flat(c, s, N * C * H * W, f, "backward (data)"));
    }
    if (c->req[1] != SN_REQ_NULL) {
      const int64_t nw = C * K * K;
      if (nw > 0) {
        int block = 32;
        while (block < 256 && block < N * H * W) block <<= 1;
        const unsigned grid = (unsigned)(nw < 65535 ? nw : 65535);
        SNK_LAUNCH(grid, block, s, bilinear_wgrad_kernel<T>)(
            snc::ptr<T>(og), snc::ptr<T>(in), snc::ptr<T>(c->igrad[1]), N, C, H, W, OH, OW, K,
            pad, sc);
        SN_TRY(check_launch(c, "backward (weight)"));
      }
    }
  });
  return SN_OK;
}

int upsampling_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  const sn_pval *st, *mm;
  SN_TRY(get_param(c, "sample_type", &st));
  SN_TRY(get_param(c, "multi_input_mode", &mm));
  if (st->i == UP_BILINEAR) return bilinear_forward(c);
  return nearest_forward(c, mm->i == UP_SUM);
}

int upsampling_backward(sn_call *c) {
  const sn_pval *st, *mm;
  SN_TRY(get_param(c, "sample_type", &st));
  SN_TRY(get_param(c, "multi_input_mode", &mm));
  if (st->i == UP_BILINEAR) return bilinear_backward(c);
  return nearest_backward(c, mm->i == UP_SUM);
}

}  // namespace shp
}  // namespace snk

namespace snc {

int register_shape(const sn_host_api *h) {
  using namespace snk::shp;
#define REG(name, f, b) SN_TRY(h->register_kernels(name, f, b))
  // ops/shape.c
  REG("Reshape", view_forward, view_backward);
  REG("Flatten", view_forward, view_backward);
  REG("expand_dims", view_forward, view_backward);
  REG("squeeze", view_forward, view_backward);
  REG("transpose", perm_forward<false>, perm_backward<false>);
  REG("SwapAxis", perm_forward<true>, perm_backward<true>);
  REG("broadcast_to", bcast_forward, bcast_backward);
  REG("broadcast_axis", bcast_forward, bcast_backward);
  REG("tile", tile_forward, tile_backward);
  REG("repeat", repeat_forward, repeat_backward);
  // ops/concat_split.c
  REG("Concat", concat_forward, concat_backward);
  REG("SliceChannel", slice_channel_forward, slice_channel_backward);
  REG("stack", stack_forward, stack_backward);
  // ops/slice.c
  REG("slice", slice_forward, slice_backward);
  REG("slice_axis", slice_axis_forward, slice_axis_backward);
  REG("slice_like", slice_like_forward, corner_backward);
  REG("Crop", crop_forward, crop_backward);
  REG("_slice_assign", slice_assign_forward, slice_assign_backward);
  REG("_slice_assign_scalar", slice_assign_scalar_forward, slice_assign_scalar_backward);
  // ops/pad_upsample.c
  REG("Pad", pad_forward, pad_backward);
  REG("UpSampling", upsampling_forward, upsampling_backward);
#undef REG
  return SN_OK;
}

}  // namespace snc
