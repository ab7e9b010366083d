/* The op registry.
 *
 * One sn_op per operator: its name (and MXNet aliases), a typed parameter
 * schema, input/output/aux names, shape inference, dtype inference, CPU and
 * GPU kernels, what backward needs, in-place options and workspace needs.
 * The same table drives the imperative API (mx.nd.*), the symbolic API
 * (mx.symbol.*), the JSON reader, the generated R wrappers and their docs.
 *
 * An op family lives in src/engine/ops/<family>.c and exports
 * `const sn_op *const sn_family_<family>[]` (NULL-terminated), listed in
 * registry.c.  GPU kernels are attached at run time by the CUDA module. */
#ifndef SN_OP_H
#define SN_OP_H

#include <stdint.h>

#include "device.h"
#include "tensor.h"

#define SN_MAX_PARAMS 24
#define SN_MAX_IO 64 /* inputs or outputs of one node (concat: more via fn) */
#define SN_PSTR 64

/* ---- parameter schema ---- */
typedef enum {
  SN_PT_INT,       /* 64-bit integer */
  SN_PT_FLOAT,     /* double */
  SN_PT_BOOL,      /* True/False/1/0/true/false */
  SN_PT_ENUM,      /* one of choices "a|b|c"; value is the index */
  SN_PT_SHAPE,     /* tuple "(a, b)", "[a,b]", "a" or "()"; may be negative */
  SN_PT_OPT_INT,   /* INT or "None" */
  SN_PT_OPT_FLOAT, /* FLOAT or "None" */
  SN_PT_OPT_SHAPE, /* SHAPE or "None" */
  SN_PT_DTYPE,     /* float32, float64, uint8, int32, int8, int64, float16 */
  SN_PT_STRING     /* free text, at most SN_PSTR-1 bytes */
} sn_ptype;

typedef struct {
  const char *name;
  sn_ptype type;
  const char *dflt; /* NULL: required; "None" for optional types */
  const char *choices; /* ENUM: "a|b|c" */
  const char *doc;
} sn_param_spec;

typedef struct {
  int set; /* 0 only for an OPT_* left at None */
  int64_t i; /* INT, BOOL, ENUM index, DTYPE value */
  double f;
  sn_shape s;
  char str[SN_PSTR];
} sn_pval;

struct sn_op;
typedef struct {
  const struct sn_op *op;
  int n;
  sn_pval v[SN_MAX_PARAMS];
} sn_params;

/* ---- kernels ----
 * Forward: in[nin] -> out[nout] (all outputs, hidden ones included), aux
 * states may be updated in training.  req[k] says what to do with out[k].
 * Backward: ograd[nout] (gradients of the outputs; NULL for hidden outputs
 * and for loss ops), in/out are the forward tensors (present when the op
 * declares SN_DEP_IN / SN_DEP_OUT), igrad[nin] receive input gradients and
 * req[k] applies to igrad[k].  Kernels honour SN_REQ_NULL (skip) and
 * SN_REQ_WRITE; the executor implements SN_REQ_ADD around them, unless the
 * op sets SN_OP_HANDLES_ADD. */
enum { SN_REQ_NULL = 0, SN_REQ_WRITE = 1, SN_REQ_ADD = 2, SN_REQ_INPLACE = 3 };

typedef struct sn_call {
  const sn_params *p;
  sn_tensor **in;
  int nin;
  sn_tensor **out;
  int nout;
  sn_tensor **aux;
  int naux;
  sn_tensor **ograd; /* backward only */
  sn_tensor **igrad; /* backward only */
  const int *req;
  int is_train;
  void *ws; /* temporary workspace, ws_bytes long */
  size_t ws_bytes;
  uint64_t seed; /* fresh per call, for random ops */
  sn_device dev;
} sn_call;

/* ---- flags ---- */
enum {
  SN_DEP_IN = 1u << 0,       /* backward reads forward inputs */
  SN_DEP_OUT = 1u << 1,      /* backward reads forward outputs */
  SN_OP_NO_OGRAD = 1u << 2,  /* loss op: backward ignores output gradients */
  SN_OP_RANDOM = 1u << 3,    /* uses c->seed */
  SN_OP_NO_GRAD = 1u << 4,   /* gradient is zero / not defined (argmax...) */
  SN_OP_HANDLES_ADD = 1u << 5,
  SN_OP_AUX_UPDATE = 1u << 6 /* forward(is_train) writes aux states */
};

#define SN_INPLACE(k) ((k) < 0 ? 0 : (k) + 1)

typedef struct sn_op {
  const char *name;
  const char *aliases; /* "|a|b|" style list without outer bars: "a|b" */
  const char *doc;     /* one paragraph, used for the R help page */
  const sn_param_spec *params;
  int nparams;
  /* Inputs: either a static NULL-terminated list or a function (variable
   * arity, optional inputs).  The function writes up to cap names and
   * returns the count. */
  const char *const *inputs;
  int (*list_inputs)(const sn_params *p, const char **names, int cap);
  /* Outputs: default {"output"}.  num_outputs counts hidden ones too;
   * num_visible (default: all) are the ones a symbol exposes. */
  const char *const *outputs;
  int (*list_outputs)(const sn_params *p, const char **names, int cap);
  int (*num_visible)(const sn_params *p);
  const char *const *aux; /* aux state names, NULL-terminated, or NULL */
  /* Shape inference: fills unknown entries of in/out/aux, checks the
   * known ones; leaves what it cannot decide unknown and returns SN_OK. */
  int (*infer_shape)(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                     sn_shape *aux, int naux);
  /* dtype inference; NULL: every input, output and aux has one dtype. */
  int (*infer_type)(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout);
  /* Temporary workspace in bytes (NULL: none). */
  int (*workspace)(const sn_params *p, const sn_shape *in, int nin, const sn_shape *out,
                   int nout, int backward, size_t *bytes);
  sn_kernel forward_cpu, backward_cpu;
  sn_kernel forward_gpu, backward_gpu; /* set by the CUDA module */
  unsigned flags;
  /* In-place options, opt-in so that an op that says nothing is never run
   * in place: SN_INPLACE(k) lets out[0] share the storage of in[k];
   * inplace_grad = SN_INPLACE(0) lets igrad[0] share ograd[0] in backward
   * (element-wise ops).  0 (the default), or SN_INPLACE(-1): never. */
  int inplace_in;
  int inplace_grad;
  const char *name_hint; /* auto-name prefix; NULL: lower-cased name */
} sn_op;

/* ---- registry ---- */
const sn_op *sn_op_find(const char *name); /* name or alias */
int sn_op_count(void);
const sn_op *sn_op_at(int i);
/* Attach GPU kernels (called by the CUDA module through sn_host_api). */
int sn_op_set_gpu(const char *name, sn_kernel fwd, sn_kernel bwd);

/* ---- params ---- */
/* Defaults, then key/value strings.  Keys starting with "__" are symbol
 * attributes and are skipped.  Unknown keys, bad values and missing
 * required parameters are errors naming the op and parameter. */
int sn_params_parse(const sn_op *op, int n, const char *const *keys, const char *const *vals,
                    sn_params *out);
int sn_param_index(const sn_op *op, const char *name); /* -1 if none */
/* Canonical text of a value ("(5, 5)", "True", "0.5", "None"). */
const char *sn_param_format(const sn_param_spec *spec, const sn_pval *v, char *buf, size_t n);
/* Parses one shape literal; used by params and by JSON "__shape__". */
int sn_parse_shape(const char *text, sn_shape *out);

/* ---- op descriptions ---- */
int sn_op_inputs(const sn_op *op, const sn_params *p, const char **names, int cap);
int sn_op_outputs(const sn_op *op, const sn_params *p, const char **names, int cap);
int sn_op_num_visible(const sn_op *op, const sn_params *p);
int sn_op_num_aux(const sn_op *op);

/* ---- shape-inference helpers ----
 * Merge val into *slot: unknown dims (0) and unknown shapes take val's;
 * known ones must agree, else SN_ERR_SHAPE naming `what` and both shapes. */
int sn_shape_assign(sn_shape *slot, const sn_shape *val, const char *what);
/* Element-wise: all inputs and output 0 share one shape. */
int sn_infer_same_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                        sn_shape *aux, int naux);
/* Default dtype rule: everything takes the first known dtype. */
int sn_infer_same_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout);

/* ---- imperative invocation ----
 * Infers shapes and dtypes from the inputs, allocates the outputs on dev
 * (the inputs' device when there are inputs), runs forward with
 * is_train = 0.  out must have room for SN_MAX_IO tensors; *nout receives
 * the number of visible outputs (hidden ones are released).  aux states,
 * when the op has them, are passed as trailing inputs. */
int sn_invoke(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin,
              sn_device dev, sn_tensor *out, int *nout);
/* Like sn_invoke, but writes the visible outputs into existing tensors
 * (shapes and dtypes must match what inference gives); an output may be
 * one of the inputs for element-wise ops (in-place optimizer updates). */
int sn_invoke_into(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin,
                   sn_tensor *const *out, int nout);
/* Imperative gradient (tests, custom training loops): forward with
 * is_train = 1, then backward with ograd (one per visible output, NULL
 * entries allowed) and req WRITE for every non-aux input.  igrad must have
 * room for the op's non-aux inputs; *ngrad receives their count. */
int sn_invoke_backward(const sn_op *op, const sn_params *p, sn_tensor *const *in, int nin,
                       sn_tensor *const *ograd, int nograd, sn_tensor *igrad, int *ngrad);
/* Runs the kernel for a prepared call on the call's device. */
int sn_run_forward(const sn_op *op, sn_call *c);
int sn_run_backward(const sn_op *op, sn_call *c);
/* Global seed (mx.set.seed) and a fresh per-call seed. */
void sn_rng_seed(uint64_t seed);
uint64_t sn_rng_next_seed(void);

#endif
