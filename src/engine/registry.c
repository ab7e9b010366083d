/* The op registry: the table of families, lookup by name or alias, the
 * descriptions derived from each op (inputs, outputs, aux), and the shared
 * shape/dtype inference helpers.  See op.h. */
#include <stdio.h>
#include <string.h>

#include "op.h"

#define SN_FAMILY(name) extern const sn_op *const sn_family_##name[];
#include "families.h"
#undef SN_FAMILY

static const sn_op *const *const sn_families[] = {
#define SN_FAMILY(name) sn_family_##name,
#include "families.h"
#undef SN_FAMILY
};

#define SN_MAX_OPS 1024
static sn_op *sn_ops[SN_MAX_OPS];
static int sn_nops = -1;

/* The op tables are const in their files; GPU kernels are attached later,
 * so the registry keeps writable copies made once at start-up. */
static sn_op sn_op_store[SN_MAX_OPS];

static void sn_registry_init(void) {
  if (sn_nops >= 0) return;
  int n = 0;
  for (size_t f = 0; f < sizeof sn_families / sizeof sn_families[0]; f++)
    for (const sn_op *const *p = sn_families[f]; *p && n < SN_MAX_OPS; p++) {
      sn_op_store[n] = **p;
      sn_ops[n] = &sn_op_store[n];
      n++;
    }
  sn_nops = n;
}

static int sn_alias_match(const char *aliases, const char *name) {
  size_t len = strlen(name);
  const char *a = aliases;
  while (a && *a) {
    const char *bar = strchr(a, '|');
    size_t l = bar ? (size_t)(bar - a) : strlen(a);
    if (l == len && strncmp(a, name, len) == 0) return 1;
    a = bar ? bar + 1 : NULL;
  }
  return 0;
}

const sn_op *sn_op_find(const char *name) {
  sn_registry_init();
  for (int i = 0; i < sn_nops; i++)
    if (strcmp(sn_ops[i]->name, name) == 0) return sn_ops[i];
  for (int i = 0; i < sn_nops; i++)
    if (sn_alias_match(sn_ops[i]->aliases, name)) return sn_ops[i];
  return NULL;
}

int sn_op_count(void) {
  sn_registry_init();
  return sn_nops;
}

const sn_op *sn_op_at(int i) {
  sn_registry_init();
  return (i >= 0 && i < sn_nops) ? sn_ops[i] : NULL;
}

int sn_op_set_gpu(const char *name, sn_kernel fwd, sn_kernel bwd) {
  sn_registry_init();
  for (int i = 0; i < sn_nops; i++)
    if (strcmp(sn_ops[i]->name, name) == 0) {
      sn_ops[i]->forward_gpu = fwd;
      sn_ops[i]->backward_gpu = bwd;
      return SN_OK;
    }
  return sn_error(SN_ERR_ARG, "GPU kernels for unknown op '%s'", name);
}

/* ---- descriptions ---- */
static int sn_list_static(const char *const *list, const char **names, int cap) {
  int n = 0;
  for (; list && list[n]; n++)
    if (n < cap) names[n] = list[n];
  return n;
}

int sn_op_inputs(const sn_op *op, const sn_params *p, const char **names, int cap) {
  if (op->list_inputs) return op->list_inputs(p, names, cap);
  return sn_list_static(op->inputs, names, cap);
}

static const char *const sn_default_outputs[] = {"output", NULL};

int sn_op_outputs(const sn_op *op, const sn_params *p, const char **names, int cap) {
  if (op->list_outputs) return op->list_outputs(p, names, cap);
  return sn_list_static(op->outputs ? op->outputs : sn_default_outputs, names, cap);
}

int sn_op_num_visible(const sn_op *op, const sn_params *p) {
  if (op->num_visible) return op->num_visible(p);
  const char *tmp[SN_MAX_IO];
  return sn_op_outputs(op, p, tmp, SN_MAX_IO);
}

int sn_op_num_aux(const sn_op *op) { return sn_list_static(op->aux, NULL, 0); }

/* ---- inference helpers ---- */
int sn_shape_assign(sn_shape *slot, const sn_shape *val, const char *what) {
  char a[200], b[200];
  if (val->ndim < 0) return SN_OK;
  if (slot->ndim < 0) {
    *slot = *val;
    return SN_OK;
  }
  if (slot->ndim != val->ndim) goto mismatch;
  for (int i = 0; i < val->ndim; i++) {
    if (val->dim[i] == 0) continue;
    if (slot->dim[i] == 0)
      slot->dim[i] = val->dim[i];
    else if (slot->dim[i] != val->dim[i])
      goto mismatch;
  }
  return SN_OK;
mismatch:
  return sn_error(SN_ERR_SHAPE, "%s: expected shape %s, got %s", what,
                  sn_shape_str(val, a, sizeof a), sn_shape_str(slot, b, sizeof b));
}

int sn_infer_same_shape(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                        sn_shape *aux, int naux) {
  (void)p;
  (void)aux;
  (void)naux;
  sn_shape s = sn_shape_unknown();
  char what[64];
  for (int i = 0; i < nin; i++) {
    snprintf(what, sizeof what, "input %d", i + 1);
    SN_TRY(sn_shape_assign(&s, &in[i], what));
  }
  for (int i = 0; i < nout; i++) SN_TRY(sn_shape_assign(&s, &out[i], "output"));
  for (int i = 0; i < nin; i++) SN_TRY(sn_shape_assign(&in[i], &s, "input"));
  for (int i = 0; i < nout; i++) SN_TRY(sn_shape_assign(&out[i], &s, "output"));
  return SN_OK;
}

int sn_infer_same_type(const sn_params *p, sn_dtype *in, int nin, sn_dtype *out, int nout) {
  (void)p;
  sn_dtype t = SN_DTYPE_UNKNOWN;
  for (int i = 0; i < nin && t == SN_DTYPE_UNKNOWN; i++) t = in[i];
  for (int i = 0; i < nout && t == SN_DTYPE_UNKNOWN; i++) t = out[i];
  if (t == SN_DTYPE_UNKNOWN) return SN_OK;
  for (int i = 0; i < nin; i++) {
    if (in[i] == SN_DTYPE_UNKNOWN) in[i] = t;
    else if (in[i] != t)
      return sn_error(SN_ERR_TYPE, "input %d has dtype %s, expected %s", i + 1,
                      sn_dtype_name(in[i]), sn_dtype_name(t));
  }
  for (int i = 0; i < nout; i++) {
    if (out[i] == SN_DTYPE_UNKNOWN) out[i] = t;
    else if (out[i] != t)
      return sn_error(SN_ERR_TYPE, "output %d has dtype %s, expected %s", i + 1,
                      sn_dtype_name(out[i]), sn_dtype_name(t));
  }
  return SN_OK;
}
