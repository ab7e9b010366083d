/* FullyConnected (MXNet 1.x): out = data * weight^T + bias.
 *
 * flatten = True (default): data (N, d1, ..., dk) is read as the matrix
 * (N, d1 * ... * dk) and out is (N, num_hidden).  flatten = False: the op
 * applies to the last axis, data (..., in) -> out (..., num_hidden).
 * weight is (num_hidden, in), bias (num_hidden); as in MXNet a bias of shape
 * (num_hidden, 1) is accepted too.  Inputs are data, weight[, bias]; bias is
 * absent when no_bias = True.
 *
 * Forward is one GEMM over the bias broadcast into the output; backward is
 * d_data = ograd * W, d_weight = ograd^T * data (GEMMs) and d_bias = column
 * sums of ograd.  Backward reads the inputs, never the output.  The GEMMs are
 * split over the threads by rows or columns of their result (sn_gemm_par),
 * so results do not depend on the thread count. */
#include <string.h>

#include "../cpu.h"
#include "../cpu_par.h"
#include "../op.h"

enum { P_NUM_HIDDEN, P_NO_BIAS, P_FLATTEN };

static const sn_param_spec fc_params[] = {
    {"num_hidden", SN_PT_INT, NULL, NULL, "Number of hidden nodes of the output."},
    {"no_bias", SN_PT_BOOL, "False", NULL, "Whether to disable bias parameter."},
    {"flatten", SN_PT_BOOL, "True", NULL,
     "Whether to collapse all but the first axis of the input data tensor."},
};

static int fc_list_inputs(const sn_params *p, const char **names, int cap) {
  static const char *all[] = {"data", "weight", "bias"};
  int n = p->v[P_NO_BIAS].i ? 2 : 3;
  for (int i = 0; i < n && i < cap; i++) names[i] = all[i];
  return n;
}

static int fc_check_hidden(const sn_params *p, int64_t *H) {
  *H = p->v[P_NUM_HIDDEN].i;
  if (*H < 1)
    return sn_error(SN_ERR_ARG, "FullyConnected: num_hidden must be >= 1, got %lld",
                    (long long)*H);
  return SN_OK;
}

static int fc_infer_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                          sn_shape *aux, int naux) {
  (void)aux;
  (void)naux;
  (void)nout;
  int64_t H;
  char buf[128];
  SN_TRY(fc_check_hidden(p, &H));
  const int flatten = (int)p->v[P_FLATTEN].i, no_bias = (int)p->v[P_NO_BIAS].i;
  if (!no_bias && nin > 2) {
    sn_shape *b = &in[2];
    int ok = b->ndim < 0 || (b->ndim == 1 && (b->dim[0] == 0 || b->dim[0] == H)) ||
             (b->ndim == 2 && (b->dim[0] == 0 || b->dim[0] == H) &&
              (b->dim[1] == 0 || b->dim[1] == 1));
    if (!ok)
      return sn_error(SN_ERR_SHAPE, "FullyConnected: bias has shape %s, expected (%lld)",
                      sn_shape_str(b, buf, sizeof buf), (long long)H);
    if (b->ndim < 0) *b = sn_shape_make(1, &H);
    b->dim[0] = H;
    if (b->ndim == 2) b->dim[1] = 1;
  }
  sn_shape *data = &in[0];
  if (data->ndim < 0) {
    /* the weight still fixes the number of hidden units */
    sn_shape w = sn_shape_make(2, (int64_t[]){H, 0});
    return sn_shape_assign(&in[1], &w, "FullyConnected: weight");
  }
  if (data->ndim < 1)
    return sn_error(SN_ERR_SHAPE, "FullyConnected: data must have at least one dimension");
  int64_t num_input = 0;
  if (!flatten) {
    num_input = data->dim[data->ndim - 1];
    if (num_input == 0 && in[1].ndim == 2 && in[1].dim[1] > 0) {
      num_input = in[1].dim[1];
      data->dim[data->ndim - 1] = num_input;
    }
  } else {
    size_t prod = 1;
    for (int i = 1; i < data->ndim; i++) {
      if (data->dim[i] == 0) {
        prod = 0;
        break;
      }
      if (sn_mul_size(prod, (size_t)data->dim[i], &prod) != SN_OK || prod > (size_t)INT64_MAX)
        return sn_error(SN_ERR_OVERFLOW, "FullyConnected: data %s is too large",
                        sn_shape_str(data, buf, sizeof buf));
    }
    num_input = (int64_t)prod;
  }
  sn_shape w = sn_shape_make(2, (int64_t[]){H, num_input});
  SN_TRY(sn_shape_assign(&in[1], &w, "FullyConnected: weight"));
  sn_shape o;
  if (!flatten) {
    o = *data;
    o.dim[o.ndim - 1] = H;
  } else {
    o = sn_shape_make(2, (int64_t[]){data->dim[0], H});
  }
  SN_TRY(sn_shape_assign(&out[0], &o, "FullyConnected: output"));
  if (out[0].ndim > 0 && data->dim[0] == 0) data->dim[0] = out[0].dim[0];
  if (!flatten && out[0].ndim == data->ndim)
    for (int i = 0; i + 1 < data->ndim; i++)
      if (data->dim[i] == 0) data->dim[i] = out[0].dim[i];
  return SN_OK;
}

/* rows x cols matrix view of data */
static void fc_dims(const sn_call *c, int64_t *rows, int64_t *cols) {
  const sn_shape *s = &c->in[0]->shape;
  const int flatten = (int)c->p->v[P_FLATTEN].i;
  int64_t total = sn_tensor_size(c->in[0]);
  if (flatten) {
    *rows = s->ndim > 0 ? s->dim[0] : 1;
  } else {
    *cols = s->ndim > 0 ? s->dim[s->ndim - 1] : 1;
    *rows = *cols > 0 ? total / *cols : 0;
    return;
  }
  *cols = *rows > 0 ? total / *rows : 0;
}

#define SN_DEFINE_FC(T, SFX, GEMM)                                                             \
  static void fc_fwd_##SFX(const T *x, const T *w, const T *b, T *y, int64_t N, int64_t I,    \
                           int64_t H) {                                                        \
    if (b) {                                                                                   \
      SN_PARALLEL_FOR_COST(N, H)                                                               \
      for (int64_t n = 0; n < N; n++) memcpy(y + n * H, b, sizeof(T) * (size_t)H);             \
    }                                                                                          \
    GEMM(0, 1, N, H, I, (T)1, x, I, w, I, b ? (T)1 : (T)0, y, H);                              \
  }                                                                                            \
  static void fc_bias_grad_##SFX(const T *g, int64_t N, int64_t H, T *db) {                   \
    /* column blocks in parallel, rows summed in order inside a block */                       \
    const int64_t B = 64, nblk = (H + B - 1) / B;                                              \
    SN_PARALLEL_FOR_COST(nblk, N * B)                                                          \
    for (int64_t k = 0; k < nblk; k++) {                                                       \
      const int64_t h0 = k * B, h1 = h0 + B < H ? h0 + B : H;                                  \
      T acc[64];                                                                               \
      for (int64_t h = h0; h < h1; h++) acc[h - h0] = 0;                                       \
      for (int64_t n = 0; n < N; n++) {                                                        \
        const T *r = g + n * H;                                                                \
        for (int64_t h = h0; h < h1; h++) acc[h - h0] += r[h];                                 \
      }                                                                                        \
      for (int64_t h = h0; h < h1; h++) db[h] = acc[h - h0];                                   \
    }                                                                                          \
  }

SN_DEFINE_FC(float, f32, sn_gemm_par_f32)
SN_DEFINE_FC(double, f64, sn_gemm_par_f64)

static int fc_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL) return SN_OK;
  int64_t H, N, I;
  SN_TRY(fc_check_hidden(c->p, &H));
  fc_dims(c, &N, &I);
  const int no_bias = (int)c->p->v[P_NO_BIAS].i;
  const void *b = no_bias ? NULL : sn_tensor_data(c->in[2]);
  if (N == 0) return SN_OK;
  switch (c->in[0]->dtype) {
  case SN_F32:
    fc_fwd_f32(SN_PTR(float, c->in[0]), SN_PTR(float, c->in[1]), (const float *)b,
               SN_PTR(float, c->out[0]), N, I, H);
    break;
  case SN_F64:
    fc_fwd_f64(SN_PTR(double, c->in[0]), SN_PTR(double, c->in[1]), (const double *)b,
               SN_PTR(double, c->out[0]), N, I, H);
    break;
  default:
    return sn_error(SN_ERR_TYPE, "FullyConnected: dtype %s is not supported (float32 or "
                    "float64)", sn_dtype_name(c->in[0]->dtype));
  }
  return SN_OK;
}

static int fc_backward(sn_call *c) {
  int64_t H, N, I;
  SN_TRY(fc_check_hidden(c->p, &H));
  if (!c->ograd || !c->ograd[0])
    return sn_error(SN_ERR_ARG, "FullyConnected: backward needs the output gradient");
  fc_dims(c, &N, &I);
  const int no_bias = (int)c->p->v[P_NO_BIAS].i;
  int need_dx = c->req[0] != SN_REQ_NULL, need_dw = c->req[1] != SN_REQ_NULL;
  int need_db = !no_bias && c->nin > 2 && c->req[2] != SN_REQ_NULL;
  sn_dtype dt = c->in[0]->dtype;
  if (dt != SN_F32 && dt != SN_F64)
    return sn_error(SN_ERR_TYPE, "FullyConnected: dtype %s is not supported (float32 or "
                    "float64)", sn_dtype_name(dt));
  if (N == 0) {
    /* empty batch: gradients of weight and bias are zero */
    if (need_dw) memset(sn_tensor_data(c->igrad[1]), 0, sn_tensor_bytes(c->igrad[1]));
    if (need_db) memset(sn_tensor_data(c->igrad[2]), 0, sn_tensor_bytes(c->igrad[2]));
    return SN_OK;
  }
  if (dt == SN_F32) {
    const float *g = SN_PTR(float, c->ograd[0]);
    if (need_dx)
      sn_gemm_par_f32(0, 0, N, I, H, 1.0f, g, H, SN_PTR(float, c->in[1]), I, 0.0f,
                  SN_PTR(float, c->igrad[0]), I);
    if (need_dw)
      sn_gemm_par_f32(1, 0, H, I, N, 1.0f, g, H, SN_PTR(float, c->in[0]), I, 0.0f,
                  SN_PTR(float, c->igrad[1]), I);
    if (need_db) fc_bias_grad_f32(g, N, H, SN_PTR(float, c->igrad[2]));
  } else {
    const double *g = SN_PTR(double, c->ograd[0]);
    if (need_dx)
      sn_gemm_par_f64(0, 0, N, I, H, 1.0, g, H, SN_PTR(double, c->in[1]), I, 0.0,
                  SN_PTR(double, c->igrad[0]), I);
    if (need_dw)
      sn_gemm_par_f64(1, 0, H, I, N, 1.0, g, H, SN_PTR(double, c->in[0]), I, 0.0,
                  SN_PTR(double, c->igrad[1]), I);
    if (need_db) fc_bias_grad_f64(g, N, H, SN_PTR(double, c->igrad[2]));
  }
  return SN_OK;
}

static const sn_op op_fully_connected = {
    .name = "FullyConnected",
    .aliases = "_npx_fully_connected",
    .doc = "Applies a linear transformation: out = data * weight^T + bias. With flatten = "
           "True the data (batch, d1, ..., dk) is flattened to (batch, d1 * ... * dk) and the "
           "output is (batch, num_hidden); with flatten = False the transformation applies to "
           "the last axis and the other axes are kept. weight has shape (num_hidden, "
           "input_dim) and bias (num_hidden); bias is absent when no_bias is True.",
    .params = fc_params,
    .nparams = (int)(sizeof fc_params / sizeof fc_params[0]),
    .list_inputs = fc_list_inputs,
    .infer_shape = fc_infer_shape,
    .forward_cpu = fc_forward,
    .backward_cpu = fc_backward,
    .flags = SN_DEP_IN,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "fullyconnected",
};

const sn_op *const sn_family_fully_connected[] = {&op_fully_connected, NULL};
