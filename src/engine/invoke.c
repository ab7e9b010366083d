/* Imperative invocation of a single op (mx.nd.* and the op tests), the
 * kernel dispatch by device, and the global random seed. */
#include <stdio.h>
#include <string.h>

#include "cpu.h"
#include "op.h"

static uint64_t sn_seed_base = 0x5EEDull;
static uint64_t sn_seed_counter;

void sn_rng_seed(uint64_t seed) {
  __atomic_store_n(&sn_seed_base, sn_mix64(seed), __ATOMIC_RELAXED);
  __atomic_store_n(&sn_seed_counter, 0, __ATOMIC_RELAXED);
}

uint64_t sn_rng_next_seed(void) {
  uint64_t k = __atomic_fetch_add(&sn_seed_counter, 1, __ATOMIC_RELAXED);
  return sn_mix64(__atomic_load_n(&sn_seed_base, __ATOMIC_RELAXED) ^ sn_mix64(k + 1));
}

int sn_run_forward(const sn_op *op, sn_call *c) {
  sn_kernel k = c->dev.type == SN_DEV_CPU ? op->forward_cpu : op->forward_gpu;
  if (!k)
    return sn_error(SN_ERR_UNSUPPORTED, "%s has no %s forward kernel", op->name,
                    c->dev.type == SN_DEV_CPU ? "CPU" : "GPU");
  return k(c);
}

int sn_run_backward(const sn_op *op, sn_call *c) {
  sn_kernel k = c->dev.type == SN_DEV_CPU ? op->backward_cpu : op->backward_gpu;
  if (!k)
    return sn_error(SN_ERR_UNSUPPORTED, "%s has no %s backward kernel", op->name,
                    c->dev.type == SN_DEV_CPU ? "CPU" : "GPU");
  return k(c);
}

/* Prefixes the op name to the current message unless it names it already. */
static int sn_op_error_context(const sn_op *op, int rc) {
  if (strncmp(sn_last_error(), op->name, strlen(op->name)) == 0) return rc;
  return sn_error_context(rc, "%s", op->name);
}

/* Everything one imperative call holds, released in one place. */
typedef struct {
  int nin, naux, nout, nvis;
  sn_tensor out[SN_MAX_IO];
  sn_tensor ws;
  sn_shape in_shape[SN_MAX_IO], out_shape[SN_MAX_IO], aux_shape[SN_MAX_IO];
  sn_dtype in_type[SN_MAX_IO], out_type[SN_MAX_IO];
  sn_tensor *in_ptr[SN_MAX_IO], *aux_ptr[SN_MAX_IO], *out_ptr[SN_MAX_IO];
  int req[SN_MAX_IO];
  sn_device dev;
} sn_icall;

static void sn_icall_release(sn_icall *ic) {
  for (int i = 0; i < ic->nout; i++) sn_tensor_release(&ic->out[i]);
  sn_tensor_release(&ic->ws);
}

/* Checks arity, infers shapes and dtypes, allocates outputs and workspace. */
static int sn_icall_prepare(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin,
                            sn_device dev, int backward, sn_icall *ic) {
  const char *names[SN_MAX_IO], *onames[SN_MAX_IO];
  char buf[160];
  memset(ic, 0, sizeof *ic);
  ic->nin = sn_op_inputs(op, p, names, SN_MAX_IO);
  ic->naux = sn_op_num_aux(op);
  ic->nout = sn_op_outputs(op, p, onames, SN_MAX_IO);
  ic->nvis = sn_op_num_visible(op, p);
  if (ic->nin > SN_MAX_IO || ic->nout > SN_MAX_IO || ic->naux > SN_MAX_IO)
    return sn_error(SN_ERR_ARG, "%s: too many inputs or outputs", op->name);
  if (nin != ic->nin + ic->naux)
    return sn_error(SN_ERR_ARG, "%s takes %d input%s%s, got %d", op->name, ic->nin + ic->naux,
                    ic->nin + ic->naux == 1 ? "" : "s", ic->naux ? " (aux states last)" : "", nin);
  ic->dev = nin > 0 ? sn_tensor_device(in[0]) : dev;
  for (int i = 0; i < nin; i++) {
    if (!in[i] || !in[i]->st)
      return sn_error(SN_ERR_ARG, "%s: input %d is empty", op->name, i + 1);
    if (!sn_device_equal(sn_tensor_device(in[i]), ic->dev))
      return sn_error(SN_ERR_ARG, "%s: inputs live on different devices", op->name);
  }
  for (int i = 0; i < ic->nin; i++) {
    ic->in_shape[i] = in[i]->shape;
    ic->in_type[i] = in[i]->dtype;
    ic->in_ptr[i] = in[i];
  }
  for (int i = 0; i < ic->naux; i++) {
    ic->aux_shape[i] = in[ic->nin + i]->shape;
    ic->aux_ptr[i] = in[ic->nin + i];
  }
  for (int i = 0; i < ic->nout; i++) {
    ic->out_shape[i] = sn_shape_unknown();
    ic->out_type[i] = SN_DTYPE_UNKNOWN;
  }
  if (!op->infer_shape) return sn_error(SN_ERR_INTERNAL, "%s has no shape inference", op->name);
  int rc = op->infer_shape(p, ic->in_shape, ic->nin, ic->out_shape, ic->nout, ic->aux_shape, ic->naux);
  if (rc != SN_OK) return sn_op_error_context(op, rc);
  for (int i = 0; i < ic->nin; i++)
    if (!sn_shape_equal(&ic->in_shape[i], &in[i]->shape))
      return sn_error(SN_ERR_SHAPE, "%s: input '%s' has shape %s, expected %s", op->name,
                      names[i], sn_shape_str(&in[i]->shape, buf, sizeof buf),
                      sn_shape_str(&ic->in_shape[i], buf + 80, 80));
  rc = (op->infer_type ? op->infer_type : sn_infer_same_type)(p, ic->in_type, ic->nin,
                                                                ic->out_type, ic->nout);
  if (rc != SN_OK) return sn_op_error_context(op, rc);
  for (int i = 0; i < ic->nout; i++) {
    if (ic->out_type[i] == SN_DTYPE_UNKNOWN) ic->out_type[i] = SN_F32;
    if (!sn_shape_known(&ic->out_shape[i]))
      return sn_error(SN_ERR_SHAPE, "%s: cannot infer the shape of output '%s' (got %s)", op->name,
                      i < ic->nout ? onames[i] : "?",
                      sn_shape_str(&ic->out_shape[i], buf, sizeof buf));
  }
  for (int i = 0; i < ic->nout; i++) {
    SN_TRY(sn_tensor_alloc(&ic->out[i], ic->out_type[i], &ic->out_shape[i], ic->dev));
    ic->out_ptr[i] = &ic->out[i];
    ic->req[i] = SN_REQ_WRITE;
  }
  if (op->workspace) {
    size_t bytes = 0, b2 = 0;
    SN_TRY(op->workspace(p, ic->in_shape, ic->nin, ic->out_shape, ic->nout, 0, &bytes));
    if (backward) SN_TRY(op->workspace(p, ic->in_shape, ic->nin, ic->out_shape, ic->nout, 1, &b2));
    if (b2 > bytes) bytes = b2;
    if (bytes) {
      sn_shape s = sn_shape_make(1, (int64_t[]){(int64_t)bytes});
      SN_TRY(sn_tensor_alloc(&ic->ws, SN_U8, &s, ic->dev));
    }
  }
  return SN_OK;
}

static void sn_icall_fill(const sn_params *p, sn_icall *ic, int is_train, sn_call *c) {
  memset(c, 0, sizeof *c);
  c->p = p;
  c->in = ic->in_ptr;
  c->nin = ic->nin;
  c->out = ic->out_ptr;
  c->nout = ic->nout;
  c->aux = ic->aux_ptr;
  c->naux = ic->naux;
  c->req = ic->req;
  c->is_train = is_train;
  c->ws = ic->ws.st ? sn_tensor_data(&ic->ws) : NULL;
  c->ws_bytes = ic->ws.st ? ic->ws.st->bytes : 0;
  c->seed = sn_rng_next_seed();
  c->dev = ic->dev;
}

int sn_invoke(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin, sn_device dev,
              sn_tensor *out, int *nout) {
  sn_icall ic;
  sn_call c;
  *nout = 0;
  SN_TRY(sn_device_check(nin > 0 && in[0] ? sn_tensor_device(in[0]) : dev));
  int rc = sn_icall_prepare(op, p, in, nin, dev, 0, &ic);
  if (rc == SN_OK) {
    sn_icall_fill(p, &ic, 0, &c);
    rc = sn_run_forward(op, &c);
  }
  if (rc != SN_OK) {
    sn_icall_release(&ic);
    return rc;
  }
  for (int i = 0; i < ic.nvis; i++) {
    out[i] = ic.out[i];
    memset(&ic.out[i], 0, sizeof ic.out[i]);
  }
  *nout = ic.nvis;
  sn_icall_release(&ic);
  return SN_OK;
}

int sn_invoke_backward(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin,
                       sn_tensor *const *ograd, int nograd, sn_tensor *igrad, int *ngrad) {
  sn_icall ic;
  sn_call c;
  sn_tensor *og[SN_MAX_IO] = {0}, *ig[SN_MAX_IO] = {0};
  int greq[SN_MAX_IO];
  int rc, made = 0;
  *ngrad = 0;
  if (op->flags & SN_OP_NO_GRAD) return sn_error(SN_ERR_UNSUPPORTED, "%s has no gradient", op->name);
  SN_TRY(sn_device_check(nin > 0 && in[0] ? sn_tensor_device(in[0]) : sn_cpu()));
  rc = sn_icall_prepare(op, p, in, nin, sn_cpu(), 1, &ic);
  if (rc == SN_OK && nograd != ic.nvis && !(op->flags & SN_OP_NO_OGRAD))
    rc = sn_error(SN_ERR_ARG, "%s has %d output%s, got %d output gradients", op->name, ic.nvis,
                  ic.nvis == 1 ? "" : "s", nograd);
  for (int i = 0; rc == SN_OK && i < nograd && i < ic.nvis; i++) {
    if (!ograd[i]) continue;
    if (!sn_shape_equal(&ograd[i]->shape, &ic.out_shape[i]) || ograd[i]->dtype != ic.out_type[i]) {
      char a[160], b[160];
      rc = sn_error(SN_ERR_SHAPE, "%s: output gradient %d has shape %s, expected %s", op->name,
                    i + 1, sn_shape_str(&ograd[i]->shape, a, sizeof a),
                    sn_shape_str(&ic.out_shape[i], b, sizeof b));
    }
    og[i] = ograd[i];
  }
  if (rc == SN_OK) {
    sn_icall_fill(p, &ic, 1, &c);
    rc = sn_run_forward(op, &c);
  }
  for (; rc == SN_OK && made < ic.nin; made++) {
    rc = sn_tensor_zeros(&igrad[made], ic.in_type[made], &ic.in_shape[made], ic.dev);
    if (rc != SN_OK) break;
    ig[made] = &igrad[made];
    greq[made] = SN_REQ_WRITE;
  }
  if (rc == SN_OK) {
    c.ograd = og;
    c.igrad = ig;
    c.req = greq;
    rc = sn_run_backward(op, &c);
  }
  sn_icall_release(&ic);
  if (rc != SN_OK) {
    for (int i = 0; i < made; i++) sn_tensor_release(&igrad[i]);
    return rc;
  }
  *ngrad = ic.nin;
  return SN_OK;
}

int sn_invoke_into(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin,
                   sn_tensor *const *out, int nout) {
  sn_icall ic;
  sn_call c;
  char a[160], b[160];
  SN_TRY(sn_device_check(nin > 0 && in[0] ? sn_tensor_device(in[0]) : sn_cpu()));
  int rc = sn_icall_prepare(op, p, in, nin, sn_cpu(), 0, &ic);
  if (rc == SN_OK && nout != ic.nvis)
    rc = sn_error(SN_ERR_ARG, "%s has %d outputs, %d targets given", op->name, ic.nvis, nout);
  for (int i = 0; rc == SN_OK && i < nout; i++) {
    if (!sn_shape_equal(&out[i]->shape, &ic.out_shape[i]) || out[i]->dtype != ic.out_type[i])
      rc = sn_error(SN_ERR_SHAPE, "%s: target %d is %s %s, the output is %s %s", op->name, i + 1,
                    sn_dtype_name(out[i]->dtype), sn_shape_str(&out[i]->shape, a, sizeof a),
                    sn_dtype_name(ic.out_type[i]), sn_shape_str(&ic.out_shape[i], b, sizeof b));
    else if (!sn_device_equal(sn_tensor_device(out[i]), ic.dev))
      rc = sn_error(SN_ERR_ARG, "%s: target %d is on another device", op->name, i + 1);
  }
  if (rc == SN_OK) {
    sn_tensor *ptr[SN_MAX_IO];
    for (int i = 0; i < ic.nout; i++) ptr[i] = i < nout ? out[i] : &ic.out[i];
    sn_icall_fill(p, &ic, 0, &c);
    c.out = ptr;
    rc = sn_run_forward(op, &c);
  }
  sn_icall_release(&ic);
  return rc;
}
