/* Indexed graphs and shape/dtype inference.  See igraph.h and graph.h. */
#include "igraph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sn_igraph_free(sn_igraph *g) {
  free(g->node);
  free(g->out_ptr);
  free(g->nvis);
  free(g->in_ptr);
  free(g->in_entry);
  free(g->nin_op);
  free(g->head);
  free(g->arg_node);
  free(g->aux_node);
  memset(g, 0, sizeof *g);
}

struct sn_ptr_index {
  const sn_node *p;
  int i;
};

static int sn_cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const struct sn_ptr_index *)a)->p;
  uintptr_t y = (uintptr_t)((const struct sn_ptr_index *)b)->p;
  return x < y ? -1 : x > y;
}

int sn_igraph_build(const sn_symbol *sym, sn_igraph *g) {
  memset(g, 0, sizeof *g);
  SN_TRY(sn_graph_topo(sym, &g->node, &g->nnodes));
  int n = g->nnodes, rc = SN_OK;
  g->out_ptr = calloc((size_t)n + 1, sizeof(int));
  g->nvis = calloc((size_t)n + 1, sizeof(int));
  g->in_ptr = calloc((size_t)n + 1, sizeof(int));
  g->nin_op = calloc((size_t)n + 1, sizeof(int));
  g->head = calloc((size_t)sym->n + 1, sizeof(int));
  g->arg_node = calloc((size_t)n + 1, sizeof(int));
  g->aux_node = calloc((size_t)n + 1, sizeof(int));
  char *is_aux = calloc((size_t)n + 1, 1);
  if (!g->out_ptr || !g->nvis || !g->in_ptr || !g->nin_op || !g->head || !g->arg_node ||
      !g->aux_node || !is_aux) {
    free(is_aux);
    sn_igraph_free(g);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  int total_in = 0;
  for (int i = 0; i < n; i++) {
    sn_node *nd = g->node[i];
    int nout = 1;
    if (nd->op) {
      const char *tmp[SN_MAX_IO];
      nout = sn_op_outputs(nd->op, &nd->params, tmp, SN_MAX_IO);
      g->nvis[i] = sn_op_num_visible(nd->op, &nd->params);
      g->nin_op[i] = nd->nin - sn_op_num_aux(nd->op);
    } else {
      g->nvis[i] = 1;
    }
    g->out_ptr[i + 1] = g->out_ptr[i] + nout;
    g->in_ptr[i + 1] = g->in_ptr[i] + nd->nin;
    total_in += nd->nin;
  }
  g->nentries = g->out_ptr[n];
  g->in_entry = calloc((size_t)total_in + 1, sizeof(int));
  if (!g->in_entry) {
    free(is_aux);
    sn_igraph_free(g);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  /* Map node pointer -> index with a sorted array and binary search. */
  struct sn_ptr_index *sorted = malloc(sizeof *sorted * ((size_t)n + 1));
  if (!sorted) {
    free(is_aux);
    sn_igraph_free(g);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    sorted[i].p = g->node[i];
    sorted[i].i = i;
  }
  qsort(sorted, (size_t)n, sizeof *sorted, sn_cmp_ptr);
#define SN_FIND(ptr, res)                                      \
  do {                                                         \
    int lo_ = 0, hi_ = n - 1;                                  \
    res = -1;                                                  \
    while (lo_ <= hi_) {                                       \
      int mid_ = (lo_ + hi_) / 2;                              \
      if ((uintptr_t)sorted[mid_].p == (uintptr_t)(ptr)) {     \
        res = sorted[mid_].i;                                  \
        break;                                                 \
      }                                                        \
      if ((uintptr_t)sorted[mid_].p < (uintptr_t)(ptr))        \
        lo_ = mid_ + 1;                                        \
      else                                                     \
        hi_ = mid_ - 1;                                        \
    }                                                          \
  } while (0)
  for (int i = 0; i < n; i++) {
    sn_node *nd = g->node[i];
    for (int k = 0; k < nd->nin; k++) {
      int j;
      SN_FIND(nd->in[k].node, j);
      if (j < 0) {
        rc = sn_error(SN_ERR_INTERNAL, "graph index: input not found");
        break;
      }
      g->in_entry[g->in_ptr[i] + k] = g->out_ptr[j] + nd->in[k].index;
      if (k >= g->nin_op[i] && !g->node[j]->op) is_aux[j] = 1;
    }
  }
  for (int h = 0; rc == SN_OK && h < sym->n; h++) {
    int j;
    SN_FIND(sym->out[h].node, j);
    g->head[h] = g->out_ptr[j] + sym->out[h].index;
  }
#undef SN_FIND
  g->nheads = sym->n;
  for (int i = 0; i < n; i++) {
    if (g->node[i]->op) continue;
    if (is_aux[i]) g->aux_node[g->naux++] = i;
    else g->arg_node[g->narg++] = i;
  }
  free(sorted);
  free(is_aux);
  if (rc != SN_OK) sn_igraph_free(g);
  return rc;
}

/* Merges a node-local result back into the entry table. */
static int sn_merge_shape(sn_shape *slot, const sn_shape *val, const sn_node *nd, const char *kind,
                          const char *what, int *changed) {
  sn_shape before = *slot;
  char ctx[300];
  snprintf(ctx, sizeof ctx, "operator %s (%s), %s '%s'", nd->name, nd->op->name, kind, what);
  int rc = sn_shape_assign(slot, val, ctx);
  if (rc != SN_OK) return rc;
  if (!sn_shape_equal(&before, slot) || (before.ndim >= 0 && memcmp(before.dim, slot->dim, sizeof before.dim) != 0))
    *changed = 1;
  return SN_OK;
}

static int sn_merge_type(sn_dtype *slot, sn_dtype val, const sn_node *nd, const char *kind,
                         const char *what, int *changed) {
  if (val == SN_DTYPE_UNKNOWN) return SN_OK;
  if (*slot == SN_DTYPE_UNKNOWN) {
    *slot = val;
    *changed = 1;
    return SN_OK;
  }
  if (*slot != val)
    return sn_error(SN_ERR_TYPE, "operator %s (%s), %s '%s': dtype %s does not match %s", nd->name,
                    nd->op->name, kind, what, sn_dtype_name(val), sn_dtype_name(*slot));
  return SN_OK;
}

static int sn_infer_node(const sn_igraph *g, int i, sn_shape *shape, sn_dtype *type, int *changed) {
  const sn_node *nd = g->node[i];
  const sn_op *op = nd->op;
  int nin = g->nin_op[i], naux = nd->nin - nin;
  int nout = g->out_ptr[i + 1] - g->out_ptr[i];
  sn_shape in[SN_MAX_IO], aux[SN_MAX_IO], out[SN_MAX_IO];
  sn_dtype tin[SN_MAX_IO], tout[SN_MAX_IO];
  const char *inames[SN_MAX_IO], *onames[SN_MAX_IO];
  sn_op_inputs(op, &nd->params, inames, SN_MAX_IO);
  sn_op_outputs(op, &nd->params, onames, SN_MAX_IO);
  const int *ie = g->in_entry + g->in_ptr[i];
  for (int k = 0; k < nin; k++) {
    in[k] = shape[ie[k]];
    tin[k] = type[ie[k]];
  }
  for (int k = 0; k < naux; k++) aux[k] = shape[ie[nin + k]];
  for (int k = 0; k < nout; k++) {
    out[k] = shape[g->out_ptr[i] + k];
    tout[k] = type[g->out_ptr[i] + k];
  }
  int rc = op->infer_shape(&nd->params, in, nin, out, nout, aux, naux);
  if (rc != SN_OK) return sn_error_context(rc, "operator %s (%s)", nd->name, op->name);
  for (int k = 0; k < nin; k++)
    SN_TRY(sn_merge_shape(&shape[ie[k]], &in[k], nd, "input", inames[k], changed));
  for (int k = 0; k < naux; k++)
    SN_TRY(sn_merge_shape(&shape[ie[nin + k]], &aux[k], nd, "aux state", op->aux[k], changed));
  for (int k = 0; k < nout; k++)
    SN_TRY(sn_merge_shape(&shape[g->out_ptr[i] + k], &out[k], nd, "output", onames[k], changed));
  rc = (op->infer_type ? op->infer_type : sn_infer_same_type)(&nd->params, tin, nin, tout, nout);
  if (rc != SN_OK) return sn_error_context(rc, "operator %s (%s)", nd->name, op->name);
  for (int k = 0; k < nin; k++)
    SN_TRY(sn_merge_type(&type[ie[k]], tin[k], nd, "input", inames[k], changed));
  /* aux states take the data dtype */
  for (int k = 0; k < naux; k++)
    SN_TRY(sn_merge_type(&type[ie[nin + k]], nin ? tin[0] : SN_DTYPE_UNKNOWN, nd, "aux state", op->aux[k], changed));
  for (int k = 0; k < nout; k++)
    SN_TRY(sn_merge_type(&type[g->out_ptr[i] + k], tout[k], nd, "output", onames[k], changed));
  return SN_OK;
}

int sn_igraph_infer(const sn_igraph *g, sn_shape *shape, sn_dtype *type) {
  for (int iter = 0; iter < 16; iter++) {
    int changed = 0;
    for (int i = 0; i < g->nnodes; i++)
      if (g->node[i]->op) SN_TRY(sn_infer_node(g, i, shape, type, &changed));
    for (int i = g->nnodes - 1; i >= 0; i--)
      if (g->node[i]->op) SN_TRY(sn_infer_node(g, i, shape, type, &changed));
    if (!changed) break;
  }
  return SN_OK;
}

/* ---- symbol-level inference ---- */
void sn_infer_result_free(sn_infer_result *res) {
  free(res->arg);
  free(res->out);
  free(res->aux);
  free(res->arg_type);
  free(res->out_type);
  free(res->aux_type);
  memset(res, 0, sizeof *res);
}

static const char *sn_node_attr(const sn_node *nd, const char *key) {
  for (int i = 0; i < nd->nattr; i++)
    if (strcmp(nd->attr[i].key, key) == 0) return nd->attr[i].val;
  return NULL;
}

/* Initial shapes/dtypes of variables: given ones, else __shape__/__dtype__ hints. */
int sn_igraph_seed(const sn_igraph *g, int n, const char *const *names, const sn_shape *shapes,
                   const sn_dtype *types, sn_shape *shape, sn_dtype *type);
int sn_igraph_seed(const sn_igraph *g, int n, const char *const *names, const sn_shape *shapes,
                   const sn_dtype *types, sn_shape *shape, sn_dtype *type) {
  for (int e = 0; e < g->nentries; e++) {
    shape[e] = sn_shape_unknown();
    type[e] = SN_DTYPE_UNKNOWN;
  }
  for (int i = 0; i < g->nnodes; i++) {
    const sn_node *nd = g->node[i];
    if (nd->op) continue;
    const char *hint = sn_node_attr(nd, "__shape__");
    sn_shape s;
    if (hint && sn_parse_shape(hint, &s) && s.ndim > 0) shape[g->out_ptr[i]] = s;
    const char *dt = sn_node_attr(nd, "__dtype__");
    if (dt) {
      int code = atoi(dt);
      if (code >= SN_F32 && code <= SN_I64) type[g->out_ptr[i]] = (sn_dtype)code;
    }
  }
  for (int k = 0; k < n; k++) {
    int found = 0;
    for (int i = 0; i < g->nnodes && !found; i++) {
      const sn_node *nd = g->node[i];
      if (nd->op || strcmp(nd->name, names[k]) != 0) continue;
      found = 1;
      if (shapes && shapes[k].ndim >= 0) {
        char what[300];
        snprintf(what, sizeof what, "argument '%s'", nd->name);
        sn_shape given = shapes[k];
        /* The given shape wins over a partial __shape__ hint of another rank. */
        if (shape[g->out_ptr[i]].ndim != given.ndim) shape[g->out_ptr[i]] = given;
        else SN_TRY(sn_shape_assign(&shape[g->out_ptr[i]], &given, what));
      }
      if (types && types[k] != SN_DTYPE_UNKNOWN) type[g->out_ptr[i]] = types[k];
    }
    if (!found) return sn_error(SN_ERR_ARG, "'%s' is not an argument or aux state of the symbol", names[k]);
  }
  return SN_OK;
}

int sn_symbol_infer(const sn_symbol *sym, int n, const char *const *names, const sn_shape *shapes,
                    const sn_dtype *types, sn_infer_result *res) {
  sn_igraph g;
  memset(res, 0, sizeof *res);
  SN_TRY(sn_igraph_build(sym, &g));
  sn_shape *shape = malloc(sizeof *shape * ((size_t)g.nentries + 1));
  sn_dtype *type = malloc(sizeof *type * ((size_t)g.nentries + 1));
  int rc = (shape && type) ? SN_OK : sn_error(SN_ERR_OOM, "out of memory");
  if (rc == SN_OK) rc = sn_igraph_seed(&g, n, names, shapes, types, shape, type);
  if (rc == SN_OK) rc = sn_igraph_infer(&g, shape, type);
  if (rc == SN_OK) {
    res->narg = g.narg;
    res->naux = g.naux;
    res->nout = g.nheads;
    res->arg = calloc((size_t)g.narg + 1, sizeof(sn_shape));
    res->aux = calloc((size_t)g.naux + 1, sizeof(sn_shape));
    res->out = calloc((size_t)g.nheads + 1, sizeof(sn_shape));
    res->arg_type = calloc((size_t)g.narg + 1, sizeof(sn_dtype));
    res->aux_type = calloc((size_t)g.naux + 1, sizeof(sn_dtype));
    res->out_type = calloc((size_t)g.nheads + 1, sizeof(sn_dtype));
    if (!res->arg || !res->aux || !res->out || !res->arg_type || !res->aux_type || !res->out_type)
      rc = sn_error(SN_ERR_OOM, "out of memory");
  }
  if (rc == SN_OK) {
    int complete = 1;
    for (int k = 0; k < g.narg; k++) {
      int e = g.out_ptr[g.arg_node[k]];
      res->arg[k] = shape[e];
      res->arg_type[k] = type[e] == SN_DTYPE_UNKNOWN ? SN_F32 : type[e];
      complete &= sn_shape_known(&shape[e]);
    }
    for (int k = 0; k < g.naux; k++) {
      int e = g.out_ptr[g.aux_node[k]];
      res->aux[k] = shape[e];
      res->aux_type[k] = type[e] == SN_DTYPE_UNKNOWN ? SN_F32 : type[e];
      complete &= sn_shape_known(&shape[e]);
    }
    for (int k = 0; k < g.nheads; k++) {
      res->out[k] = shape[g.head[k]];
      res->out_type[k] = type[g.head[k]] == SN_DTYPE_UNKNOWN ? SN_F32 : type[g.head[k]];
      complete &= sn_shape_known(&shape[g.head[k]]);
    }
    res->complete = complete;
  }
  free(shape);
  free(type);
  sn_igraph_free(&g);
  if (rc != SN_OK) sn_infer_result_free(res);
  return rc;
}
