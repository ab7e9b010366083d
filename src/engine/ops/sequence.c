/* Sequence ops (MXNet 1.x): SequenceMask, SequenceLast, SequenceReverse.
 *
 * Data is (T, N, ...) with axis=0 (time first) or (N, T, ...) with axis=1;
 * SequenceReverse supports axis=0 only, as in MXNet.  The optional input
 * `sequence_length` (shape (N,), present only when use_sequence_length=True)
 * holds the length of each sequence; its values are truncated to integers
 * and it may have any numeric dtype.  It gets a zero gradient.
 *
 * SequenceMask: positions t >= length[n] are set to `value` (lengths above T
 *   mask nothing, lengths <= 0 mask everything); gradient: the output
 *   gradient with the masked positions set to 0.
 * SequenceLast: out[n, ...] = data[length[n]-1, n, ...] (T-1 without
 *   lengths); the output drops the time axis.  A length outside [1, T] is an
 *   error (MXNet reads outside the array).
 * SequenceReverse: reverses the first length[n] steps of each sequence and
 *   leaves the padding after them in place; a length outside [0, T] is an
 *   error.  Its gradient is the same permutation of the output gradient. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../cpu.h"
#include "../op.h"

/* Truncates toward zero like a C cast, but defined for NaN (0) and for
 * values beyond the int64 range (saturated). */
static int64_t trunc_i64(double v) {
  if (v != v)
    return 0;
  if (v >= 9.2e18)
    return INT64_MAX;
  if (v <= -9.2e18)
    return INT64_MIN;
  return (int64_t)v;
}

static int64_t len_at(const sn_tensor *t, int64_t i) {
  const void *d = sn_tensor_data(t);
  switch (t->dtype) {
  case SN_F32: return trunc_i64(((const float *)d)[i]);
  case SN_F64: return trunc_i64(((const double *)d)[i]);
  case SN_I32: return (int64_t)((const int32_t *)d)[i];
  case SN_I64: return ((const int64_t *)d)[i];
  case SN_U8: return (int64_t)((const uint8_t *)d)[i];
  case SN_I8: return (int64_t)((const int8_t *)d)[i];
  default: return 0;
  }
}

/* Common parameter positions: use_sequence_length first, axis last. */
enum { P_USE_LEN = 0 };

static int seq_list_inputs(const sn_params *p, const char **names, int cap) {
  int n = 0;
  if (cap > n)
    names[n] = "data";
  n++;
  if (p->v[P_USE_LEN].i) {
    if (cap > n)
      names[n] = "sequence_length";
    n++;
  }
  return n;
}

static int seq_infer_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)nout;
  if (in[0] == SN_DTYPE_UNKNOWN)
    in[0] = out[0];
  else if (out[0] == SN_DTYPE_UNKNOWN)
    out[0] = in[0];
  else if (in[0] != out[0])
    return sn_error(SN_ERR_TYPE, "%s: data has dtype %s but the output has %s",
                    p->op ? p->op->name : "Sequence", sn_dtype_name(in[0]),
                    sn_dtype_name(out[0]));
  if (p->v[P_USE_LEN].i && nin > 1 && in[1] == SN_DTYPE_UNKNOWN)
    in[1] = in[0];
  return SN_OK;
}

/* Checks data rank and axis, and sets the sequence_length shape (N,). */
static int seq_common_shape(const sn_params *p, int axis_idx, int max_axis, sn_shape *in, int nin) {
  const char *name = p->op ? p->op->name : "Sequence";
  const int64_t axis = p->v[axis_idx].i;
  if (axis < 0 || axis > max_axis)
    return sn_error(SN_ERR_ARG, "%s: axis must be %s, got %lld", name,
                    max_axis == 0 ? "0" : "0 or 1", (long long)axis);
  if (in[0].ndim < 0)
    return SN_OK;
  if (in[0].ndim < 2) {
    char b[64];
    return sn_error(SN_ERR_SHAPE, "%s: data must have rank 2 or more, got %s", name,
                    sn_shape_str(&in[0], b, sizeof b));
  }
  if (p->v[P_USE_LEN].i && nin > 1) {
    int64_t nb = axis ? in[0].dim[0] : in[0].dim[1];
    if (nb == 0)
      return SN_OK;
    sn_shape ls = sn_shape_make(1, &nb);
    char what[96];
    snprintf(what, sizeof what, "%s: sequence_length", name);
    SN_TRY(sn_shape_assign(&in[1], &ls, what));
  }
  return SN_OK;
}

/* (d0, d1, rest) view; returns T and N for the axis. */
static void seq_view(const sn_shape *s, int axis, int64_t *tlen, int64_t *nb, int64_t *rest) {
  int64_t r = 1;
  for (int d = 2; d < s->ndim; d++)
    r *= s->dim[d];
  *rest = r;
  *tlen = axis ? s->dim[1] : s->dim[0];
  *nb = axis ? s->dim[0] : s->dim[1];
}

static int64_t seq_off(int axis, int64_t t, int64_t b, int64_t tlen, int64_t nb, int64_t rest) {
  return axis ? (b * tlen + t) * rest : (t * nb + b) * rest;
}

static int seq_check_lengths(const sn_call *c, int64_t nb) {
  if (!c->p->v[P_USE_LEN].i)
    return SN_OK;
  if (c->nin < 2)
    return sn_error(SN_ERR_ARG, "%s: use_sequence_length=True needs the sequence_length input",
                    c->p->op->name);
  if (sn_tensor_size(c->in[1]) != nb)
    return sn_error(SN_ERR_SHAPE, "%s: sequence_length has %lld values for a batch of %lld",
                    c->p->op->name, (long long)sn_tensor_size(c->in[1]), (long long)nb);
  return SN_OK;
}

static void zero_len_grad(sn_call *c) {
  if (c->p->v[P_USE_LEN].i && c->nin > 1 && c->req[1] != SN_REQ_NULL && c->igrad[1] &&
      c->igrad[1]->st)
    memset(sn_tensor_data(c->igrad[1]), 0, sn_tensor_bytes(c->igrad[1]));
}

/* ------------------------------------------------------------------ */
/* SequenceMask                                                        */
/* ------------------------------------------------------------------ */

enum { PM_USE_LEN, PM_VALUE, PM_AXIS };

static const sn_param_spec mask_params[] = {
    {"use_sequence_length", SN_PT_BOOL, "False", NULL,
     "If set to true, this layer takes in an extra input parameter `sequence_length` to specify "
     "variable length sequence"},
    {"value", SN_PT_FLOAT, "0", NULL, "The value to be used as a mask."},
    {"axis", SN_PT_INT, "0", NULL,
     "The sequence axis. Only values of 0 and 1 are currently supported."},
};

static int mask_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nout;
  (void)aux;
  (void)naux;
  SN_TRY(sn_shape_assign(&in[0], &out[0], "SequenceMask: data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "SequenceMask: output"));
  return seq_common_shape(p, PM_AXIS, 1, in, nin);
}

/* Sets positions t >= len of each sequence in buf to v. */
#define SEQ_MASK_APPLY(T, buf, v)                                                      \
  do {                                                                                 \
    SN_PARALLEL_FOR_COST(nb, tlen * rest)                                              \
    for (int64_t b = 0; b < nb; b++) {                                                 \
      int64_t len = len_at(c->in[1], b);                                               \
      if (len < 0)                                                                     \
        len = 0;                                                                       \
      for (int64_t t = len; t < tlen; t++) {                                           \
        T *row = (buf) + seq_off(axis, t, b, tlen, nb, rest);                          \
        for (int64_t r = 0; r < rest; r++)                                             \
          row[r] = (v);                                                                \
      }                                                                                \
    }                                                                                  \
  } while (0)

static int mask_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int axis = (int)c->p->v[PM_AXIS].i;
  int64_t tlen, nb, rest;
  seq_view(&c->in[0]->shape, axis, &tlen, &nb, &rest);
  SN_TRY(seq_check_lengths(c, nb));
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    T *y = SN_PTR(T, c->out[0]);
    if (x != y)
      memcpy(y, x, (size_t)n * sizeof(T));
    if (c->p->v[PM_USE_LEN].i) {
      const T val = (T)c->p->v[PM_VALUE].f;
      SEQ_MASK_APPLY(T, y, val);
    }
  });
  return SN_OK;
}

static int mask_backward(sn_call *c) {
  zero_len_grad(c);
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int axis = (int)c->p->v[PM_AXIS].i;
  int64_t tlen, nb, rest;
  seq_view(&c->ograd[0]->shape, axis, &tlen, &nb, &rest);
  SN_TRY(seq_check_lengths(c, nb));
  const int64_t n = sn_tensor_size(c->ograd[0]);
  SN_DISPATCH_FLOAT(c->ograd[0]->dtype, T, {
    const T *g = SN_PTR(T, c->ograd[0]);
    T *gx = SN_PTR(T, c->igrad[0]);
    if (g != gx)
      memcpy(gx, g, (size_t)n * sizeof(T));
    if (c->p->v[PM_USE_LEN].i)
      SEQ_MASK_APPLY(T, gx, (T)0);
  });
  return SN_OK;
}

static const sn_op op_sequence_mask = {
    .name = "SequenceMask",
    .aliases = "_npx_sequence_mask",
    .doc = "Sets all elements outside the sequence to a constant value: with "
           "use_sequence_length, the steps t >= sequence_length[n] of sequence n (along `axis`, "
           "0 for (T, N, ...) data, 1 for (N, T, ...)) are set to `value`; otherwise the input "
           "is returned unchanged.",
    .params = mask_params,
    .nparams = 3,
    .list_inputs = seq_list_inputs,
    .infer_shape = mask_infer_shape,
    .infer_type = seq_infer_type,
    .forward_cpu = mask_forward,
    .backward_cpu = mask_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

/* ------------------------------------------------------------------ */
/* SequenceLast                                                        */
/* ------------------------------------------------------------------ */

enum { PL_USE_LEN, PL_AXIS };

static const sn_param_spec last_params[] = {
    {"use_sequence_length", SN_PT_BOOL, "False", NULL,
     "If set to true, this layer takes in an extra input parameter `sequence_length` to specify "
     "variable length sequence"},
    {"axis", SN_PT_INT, "0", NULL,
     "The sequence axis. Only values of 0 and 1 are currently supported."},
};

static int last_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                            sn_shape *aux, int naux) {
  (void)nout;
  (void)aux;
  (void)naux;
  SN_TRY(seq_common_shape(p, PL_AXIS, 1, in, nin));
  if (in[0].ndim < 0)
    return SN_OK;
  const int axis = (int)p->v[PL_AXIS].i;
  sn_shape os;
  os.ndim = 0;
  for (int d = 0; d < in[0].ndim; d++)
    if (d != axis)
      os.dim[os.ndim++] = in[0].dim[d];
  return sn_shape_assign(&out[0], &os, "SequenceLast: output");
}

/* Time index of sequence b (error when out of range). */
static int last_index(const sn_call *c, int64_t b, int64_t tlen, int64_t *t) {
  if (!c->p->v[PL_USE_LEN].i) {
    *t = tlen - 1;
    return SN_OK;
  }
  const int64_t len = len_at(c->in[1], b);
  if (len < 1 || len > tlen)
    return sn_error(SN_ERR_ARG, "SequenceLast: sequence_length[%lld] = %lld is outside [1, %lld]",
                    (long long)b, (long long)len, (long long)tlen);
  *t = len - 1;
  return SN_OK;
}

static int last_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int axis = (int)c->p->v[PL_AXIS].i;
  int64_t tlen, nb, rest;
  seq_view(&c->in[0]->shape, axis, &tlen, &nb, &rest);
  SN_TRY(seq_check_lengths(c, nb));
  for (int64_t b = 0; b < nb; b++) {
    int64_t t;
    SN_TRY(last_index(c, b, tlen, &t));
  }
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *x = SN_PTR(T, c->in[0]);
    T *y = SN_PTR(T, c->out[0]);
    for (int64_t b = 0; b < nb; b++) {
      int64_t t = tlen - 1;
      (void)last_index(c, b, tlen, &t);
      memcpy(y + b * rest, x + seq_off(axis, t, b, tlen, nb, rest), (size_t)rest * sizeof(T));
    }
  });
  return SN_OK;
}

static int last_backward(sn_call *c) {
  zero_len_grad(c);
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const int axis = (int)c->p->v[PL_AXIS].i;
  int64_t tlen, nb, rest;
  seq_view(&c->in[0]->shape, axis, &tlen, &nb, &rest);
  SN_TRY(seq_check_lengths(c, nb));
  for (int64_t b = 0; b < nb; b++) {
    int64_t t;
    SN_TRY(last_index(c, b, tlen, &t));
  }
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T *g = SN_PTR(T, c->ograd[0]);
    T *gx = SN_PTR(T, c->igrad[0]);
    memset(gx, 0, sn_tensor_bytes(c->igrad[0]));
    for (int64_t b = 0; b < nb; b++) {
      int64_t t = tlen - 1;
      (void)last_index(c, b, tlen, &t);
      memcpy(gx + seq_off(axis, t, b, tlen, nb, rest), g + b * rest, (size_t)rest * sizeof(T));
    }
  });
  return SN_OK;
}

static const sn_op op_sequence_last = {
    .name = "SequenceLast",
    .aliases = NULL,
    .doc = "Takes the last element of each sequence: data[sequence_length[n]-1, n, ...] for axis "
           "0 (the last step when use_sequence_length is False). The output drops the time "
           "axis.",
    .params = last_params,
    .nparams = 2,
    .list_inputs = seq_list_inputs,
    .infer_shape = last_infer_shape,
    .infer_type = seq_infer_type,
    .forward_cpu = last_forward,
    .backward_cpu = last_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ------------------------------------------------------------------ */
/* SequenceReverse                                                     */
/* ------------------------------------------------------------------ */

enum { PR_USE_LEN, PR_AXIS };

static const sn_param_spec rev_params[] = {
    {"use_sequence_length", SN_PT_BOOL, "False", NULL,
     "If set to true, this layer takes in an extra input parameter `sequence_length` to specify "
     "variable length sequence"},
    {"axis", SN_PT_INT, "0", NULL, "The sequence axis. Only 0 is currently supported."},
};

static int rev_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                           sn_shape *aux, int naux) {
  (void)nout;
  (void)aux;
  (void)naux;
  SN_TRY(sn_shape_assign(&in[0], &out[0], "SequenceReverse: data"));
  SN_TRY(sn_shape_assign(&out[0], &in[0], "SequenceReverse: output"));
  return seq_common_shape(p, PR_AXIS, 0, in, nin);
}

/* dst = src reversed over the first len steps of each sequence (axis 0). */
static int rev_apply(sn_call *c, const sn_tensor *src, sn_tensor *dst) {
  int64_t tlen, nb, rest;
  seq_view(&src->shape, 0, &tlen, &nb, &rest);
  SN_TRY(seq_check_lengths(c, nb));
  const int use_len = (int)c->p->v[PR_USE_LEN].i;
  for (int64_t b = 0; use_len && b < nb; b++) {
    const int64_t len = len_at(c->in[1], b);
    if (len < 0 || len > tlen)
      return sn_error(SN_ERR_ARG,
                      "SequenceReverse: sequence_length[%lld] = %lld is outside [0, %lld]",
                      (long long)b, (long long)len, (long long)tlen);
  }
  const size_t esz = sn_dtype_size(src->dtype);
  const char *s = (const char *)sn_tensor_data(src);
  char *d = (char *)sn_tensor_data(dst);
  if (s == d)
    return sn_error(SN_ERR_INTERNAL, "SequenceReverse: cannot run in place");
  const int64_t steps = tlen * nb;
  SN_PARALLEL_FOR_COST(steps, rest)
  for (int64_t tb = 0; tb < steps; tb++) {
    const int64_t t = tb / nb, b = tb % nb;
    const int64_t len = use_len ? len_at(c->in[1], b) : tlen;
    const int64_t ts = t < len ? len - 1 - t : t;
    memcpy(d + (size_t)((t * nb + b) * rest) * esz, s + (size_t)((ts * nb + b) * rest) * esz,
           (size_t)rest * esz);
  }
  return SN_OK;
}

static int rev_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  return rev_apply(c, c->in[0], c->out[0]);
}

static int rev_backward(sn_call *c) {
  zero_len_grad(c);
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  return rev_apply(c, c->ograd[0], c->igrad[0]);
}

static const sn_op op_sequence_reverse = {
    .name = "SequenceReverse",
    .aliases = NULL,
    .doc = "Reverses the elements of each sequence along axis 0 of (T, N, ...) data: the first "
           "sequence_length[n] steps of sequence n are reversed and the padding after them is "
           "left in place (all T steps without use_sequence_length).",
    .params = rev_params,
    .nparams = 2,
    .list_inputs = seq_list_inputs,
    .infer_shape = rev_infer_shape,
    .infer_type = seq_infer_type,
    .forward_cpu = rev_forward,
    .backward_cpu = rev_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_sequence[] = {&op_sequence_mask, &op_sequence_last,
                                           &op_sequence_reverse, NULL};
