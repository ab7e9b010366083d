/* Executors: gradient construction, memory planning and running.
 * See exec.h for the model. */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "igraph.h"

enum { SN_STEP_FWD, SN_STEP_BWD, SN_STEP_SUM, SN_STEP_ZERO };
enum { SN_E_ARENA, SN_E_ARG, SN_E_AUX, SN_E_GRAD, SN_E_HEADGRAD };

typedef struct {
  int kind;
  int node;      /* igraph node (FWD/BWD) */
  int nin, nout; /* FWD: op inputs/outputs; BWD: fwd inputs/outputs; SUM: addends/1 */
  int *in;       /* entry ids */
  int *out;      /* FWD: outputs; BWD: igrads (-1 none); SUM/ZERO: 1 */
  int *ograd;    /* BWD: per fwd output (-1 none) */
  int *req;      /* per out */
  sn_params sum_params;
} sn_step;

typedef struct {
  sn_shape shape;
  sn_dtype dtype;
  int cls, ext; /* storage class and its index (argument, aux, head) */
  size_t bytes, offset;
  int block;
  sn_tensor t;
} sn_xentry;

struct sn_executor {
  sn_igraph g;
  sn_device dev;
  int nent, cap_ent;
  sn_xentry *ent;
  int nsteps, cap_steps, nfwd;
  sn_step *steps;
  int *head_grad_entry; /* per head */
  sn_tensor arena, ws, *head_grads;
  sn_tensor *args, *grads, *aux;
  int narg, naux;
  int trained; /* forward(is_train = 1) ran since bind */
  int dry;
  int *zero_args; /* arguments with req write and no gradient path */
  int nzero_args;
  sn_mem_stats stats;
  const sn_op *sum_op;
  /* CUDA graphs (GPU only): the first pass of each kind runs eagerly, the
   * second is captured, later ones replay the capture. */
  int graphs_ok;
  int runs[3];    /* forward infer, forward train, backward */
  void *graph[3];
};

enum { SN_PASS_INFER, SN_PASS_TRAIN, SN_PASS_BWD };

/* ---- building ---- */
static int sn_new_entry(sn_executor *ex, const sn_shape *s, sn_dtype t, int cls, int ext) {
  if (ex->nent == ex->cap_ent) {
    int cap = ex->cap_ent ? 2 * ex->cap_ent : 256;
    sn_xentry *e = realloc(ex->ent, (size_t)cap * sizeof *e);
    if (!e) return -1;
    ex->ent = e;
    ex->cap_ent = cap;
  }
  sn_xentry *e = &ex->ent[ex->nent];
  memset(e, 0, sizeof *e);
  e->shape = *s;
  e->dtype = t;
  e->cls = cls;
  e->ext = ext;
  e->block = -1;
  return ex->nent++;
}

static sn_step *sn_new_step(sn_executor *ex, int kind, int node, int nin, int nout) {
  if (ex->nsteps == ex->cap_steps) {
    int cap = ex->cap_steps ? 2 * ex->cap_steps : 128;
    sn_step *s = realloc(ex->steps, (size_t)cap * sizeof *s);
    if (!s) return NULL;
    ex->steps = s;
    ex->cap_steps = cap;
  }
  sn_step *st = &ex->steps[ex->nsteps];
  memset(st, 0, sizeof *st);
  st->kind = kind;
  st->node = node;
  st->nin = nin;
  st->nout = nout;
  st->in = calloc((size_t)nin + 1, sizeof(int));
  st->out = calloc((size_t)nout + 1, sizeof(int));
  st->req = calloc((size_t)nout + 1, sizeof(int));
  if (kind == SN_STEP_BWD) st->ograd = calloc((size_t)nout + 1, sizeof(int));
  if (!st->in || !st->out || !st->req || (kind == SN_STEP_BWD && !st->ograd)) {
    free(st->in);
    free(st->out);
    free(st->req);
    free(st->ograd);
    return NULL;
  }
  ex->nsteps++;
  return st;
}

/* Gradient contributions per entry: small growable lists. */
typedef struct {
  int n, cap;
  int *id;
} sn_ilist;

static int sn_ilist_push(sn_ilist *l, int v) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 4;
    int *p = realloc(l->id, (size_t)cap * sizeof *p);
    if (!p) return sn_error(SN_ERR_OOM, "out of memory");
    l->id = p;
    l->cap = cap;
  }
  l->id[l->n++] = v;
  return SN_OK;
}

/* One entry holding the sum of the contributions (a SUM step), or the
 * single contribution, or -1 for none.  target >= 0 makes the sum write
 * into that existing entry. */
static int sn_reduce_grads(sn_executor *ex, const sn_ilist *l, const sn_shape *s, sn_dtype t,
                           int target, int *res) {
  if (l->n == 0) {
    *res = -1;
    return SN_OK;
  }
  if (l->n == 1 && target < 0) {
    *res = l->id[0];
    return SN_OK;
  }
  char num[32];
  snprintf(num, sizeof num, "%d", l->n);
  const char *k[] = {"num_args"}, *v[] = {num};
  sn_step *st = sn_new_step(ex, SN_STEP_SUM, -1, l->n, 1);
  if (!st) return sn_error(SN_ERR_OOM, "out of memory");
  SN_TRY(sn_params_parse(ex->sum_op, 1, k, v, &st->sum_params));
  for (int i = 0; i < l->n; i++) st->in[i] = l->id[i];
  int e = target >= 0 ? target : sn_new_entry(ex, s, t, SN_E_ARENA, -1);
  if (e < 0) return sn_error(SN_ERR_OOM, "out of memory");
  st = &ex->steps[ex->nsteps - 1];
  st->out[0] = e;
  st->req[0] = SN_REQ_WRITE;
  *res = e;
  return SN_OK;
}

static int sn_build_steps(sn_executor *ex, const sn_bind_spec *spec, const sn_shape *shape,
                          const sn_dtype *type) {
  sn_igraph *g = &ex->g;
  int rc = SN_OK;
  /* Forward entries are the igraph entries, same ids. */
  for (int i = 0; i < g->nnodes; i++)
    for (int e = g->out_ptr[i]; e < g->out_ptr[i + 1]; e++)
      if (sn_new_entry(ex, &shape[e], type[e], SN_E_ARENA, -1) != e) return sn_error(SN_ERR_OOM, "out of memory");
  for (int k = 0; k < g->narg; k++) {
    ex->ent[g->out_ptr[g->arg_node[k]]].cls = SN_E_ARG;
    ex->ent[g->out_ptr[g->arg_node[k]]].ext = k;
  }
  for (int k = 0; k < g->naux; k++) {
    ex->ent[g->out_ptr[g->aux_node[k]]].cls = SN_E_AUX;
    ex->ent[g->out_ptr[g->aux_node[k]]].ext = k;
  }
  for (int i = 0; i < g->nnodes; i++) {
    sn_node *nd = g->node[i];
    if (!nd->op) continue;
    int nin = g->nin_op[i], nout = g->out_ptr[i + 1] - g->out_ptr[i];
    sn_step *st = sn_new_step(ex, SN_STEP_FWD, i, nd->nin, nout);
    if (!st) return sn_error(SN_ERR_OOM, "out of memory");
    for (int k = 0; k < nd->nin; k++) st->in[k] = g->in_entry[g->in_ptr[i] + k];
    for (int k = 0; k < nout; k++) {
      st->out[k] = g->out_ptr[i] + k;
      st->req[k] = SN_REQ_WRITE;
    }
    (void)nin;
  }
  ex->nfwd = ex->nsteps;

  /* Which entries need a gradient. */
  int any_grad = 0;
  char *needs = calloc((size_t)g->nentries + 1, 1);
  sn_ilist *contrib = calloc((size_t)g->nentries + 1, sizeof *contrib);
  if (!needs || !contrib) {
    free(needs);
    free(contrib);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  for (int k = 0; k < g->narg; k++)
    if (spec->grad_req && spec->grad_req[k] != SN_REQ_NULL) {
      needs[g->out_ptr[g->arg_node[k]]] = 1;
      any_grad = 1;
    }
  for (int i = 0; any_grad && i < g->nnodes; i++) {
    sn_node *nd = g->node[i];
    if (!nd->op || (nd->op->flags & SN_OP_NO_GRAD)) continue;
    int need = 0;
    for (int k = 0; k < g->nin_op[i]; k++) need |= needs[g->in_entry[g->in_ptr[i] + k]];
    for (int e = g->out_ptr[i]; e < g->out_ptr[i + 1]; e++) needs[e] = (char)need;
  }
  ex->head_grad_entry = calloc((size_t)g->nheads + 1, sizeof(int));
  if (!ex->head_grad_entry) rc = sn_error(SN_ERR_OOM, "out of memory");
  for (int h = 0; rc == SN_OK && h < g->nheads; h++) {
    int e = g->head[h];
    ex->head_grad_entry[h] = -1;
    if (!any_grad || !needs[e]) continue;
    int hg = sn_new_entry(ex, &shape[e], type[e], SN_E_HEADGRAD, h);
    if (hg < 0) rc = sn_error(SN_ERR_OOM, "out of memory");
    else {
      ex->head_grad_entry[h] = hg;
      rc = sn_ilist_push(&contrib[e], hg);
    }
  }
  /* Backward steps in reverse topological order. */
  for (int i = g->nnodes - 1; rc == SN_OK && any_grad && i >= 0; i--) {
    sn_node *nd = g->node[i];
    if (!nd->op || (nd->op->flags & SN_OP_NO_GRAD)) continue;
    int nin = g->nin_op[i], nout = g->out_ptr[i + 1] - g->out_ptr[i];
    int any_in = 0;
    for (int k = 0; k < nin; k++) any_in |= needs[g->in_entry[g->in_ptr[i] + k]];
    if (!any_in) continue;
    int og[SN_MAX_IO], have = 0;
    for (int k = 0; rc == SN_OK && k < nout; k++) {
      int e = g->out_ptr[i] + k;
      og[k] = -1;
      if (k < g->nvis[i]) rc = sn_reduce_grads(ex, &contrib[e], &shape[e], type[e], -1, &og[k]);
      if (og[k] >= 0) have = 1;
    }
    if (rc != SN_OK) break;
    int no_ograd = (nd->op->flags & SN_OP_NO_OGRAD) != 0;
    if (!have && !no_ograd) continue; /* no path from this node to a loss */
    if (!no_ograd) /* outputs without a gradient get zeros */
      for (int k = 0; rc == SN_OK && k < g->nvis[i]; k++) {
        if (og[k] >= 0) continue;
        int e = g->out_ptr[i] + k;
        int z = sn_new_entry(ex, &shape[e], type[e], SN_E_ARENA, -1);
        sn_step *zs = z >= 0 ? sn_new_step(ex, SN_STEP_ZERO, -1, 0, 1) : NULL;
        if (!zs) rc = sn_error(SN_ERR_OOM, "out of memory");
        else {
          zs->out[0] = z;
          zs->req[0] = SN_REQ_WRITE;
          og[k] = z;
        }
      }
    sn_step *st = rc == SN_OK ? sn_new_step(ex, SN_STEP_BWD, i, nd->nin, nout) : NULL;
    if (!st) {
      if (rc == SN_OK) rc = sn_error(SN_ERR_OOM, "out of memory");
      break;
    }
    for (int k = 0; k < nd->nin; k++) st->in[k] = g->in_entry[g->in_ptr[i] + k];
    for (int k = 0; k < nout; k++) st->ograd[k] = no_ograd ? -1 : og[k];
    /* st->out holds igrad entries for the op inputs (not aux) */
    for (int k = 0; k < nd->nin; k++) {
      st->out[k] = -1;
      st->req[k] = SN_REQ_NULL;
    }
    st->nout = nd->nin; /* igrad slots, aux ones stay -1 */
    free(st->out);
    free(st->req);
    st->out = calloc((size_t)nd->nin + 1, sizeof(int));
    st->req = calloc((size_t)nd->nin + 1, sizeof(int));
    if (!st->out || !st->req) {
      rc = sn_error(SN_ERR_OOM, "out of memory");
      break;
    }
    int step_index = ex->nsteps - 1;
    for (int k = 0; rc == SN_OK && k < nd->nin; k++) {
      ex->steps[step_index].out[k] = -1;
      int e = g->in_entry[g->in_ptr[i] + k];
      if (k >= nin || !needs[e]) continue;
      int ge = sn_new_entry(ex, &shape[e], type[e], SN_E_ARENA, -1);
      if (ge < 0) {
        rc = sn_error(SN_ERR_OOM, "out of memory");
        break;
      }
      ex->steps[step_index].out[k] = ge;
      ex->steps[step_index].req[k] = SN_REQ_WRITE;
      rc = sn_ilist_push(&contrib[e], ge);
    }
    /* the forward outputs ride along in ograd's twin: recorded at run */
  }
  /* Argument gradients. */
  ex->zero_args = calloc((size_t)g->narg + 1, sizeof(int));
  if (!ex->zero_args && rc == SN_OK) rc = sn_error(SN_ERR_OOM, "out of memory");
  for (int k = 0; rc == SN_OK && k < g->narg; k++) {
    int req = spec->grad_req ? spec->grad_req[k] : SN_REQ_NULL;
    if (req == SN_REQ_NULL) continue;
    int e = g->out_ptr[g->arg_node[k]];
    sn_ilist *l = &contrib[e];
    if (l->n == 0) {
      if (req == SN_REQ_WRITE) ex->zero_args[ex->nzero_args++] = k;
      continue;
    }
    if (req == SN_REQ_WRITE && l->n == 1) {
      ex->ent[l->id[0]].cls = SN_E_GRAD; /* written straight into the grad array */
      ex->ent[l->id[0]].ext = k;
      continue;
    }
    int target = sn_new_entry(ex, &shape[e], type[e], SN_E_GRAD, k);
    if (target < 0) {
      rc = sn_error(SN_ERR_OOM, "out of memory");
      break;
    }
    if (req == SN_REQ_ADD) {
      /* old gradient + new contributions, summed in place */
      int old = sn_new_entry(ex, &shape[e], type[e], SN_E_GRAD, k);
      sn_ilist l2 = {0, 0, NULL};
      rc = old < 0 ? sn_error(SN_ERR_OOM, "out of memory") : sn_ilist_push(&l2, old);
      for (int j = 0; rc == SN_OK && j < l->n; j++) rc = sn_ilist_push(&l2, l->id[j]);
      int res;
      if (rc == SN_OK) rc = sn_reduce_grads(ex, &l2, &shape[e], type[e], target, &res);
      free(l2.id);
    } else {
      int res;
      rc = sn_reduce_grads(ex, l, &shape[e], type[e], target, &res);
    }
  }
  for (int e = 0; e < g->nentries; e++) free(contrib[e].id);
  free(contrib);
  free(needs);
  return rc;
}

/* ---- memory planning ---- */
static size_t sn_align64(size_t x) { return (x + 63) & ~(size_t)63; }

typedef struct {
  size_t offset, size;
  int refs; /* live entries in this block */
} sn_block;

/* A free block for `need` bytes: the smallest free block that fits; else
 * the free blocks at the end of the arena merged and grown; else a new
 * block at the end.  Blocks stay in offset order. */
static int sn_plan_alloc(sn_block *blocks, int *nblocks, size_t *end, size_t need, int reuse) {
  int best = -1, n = *nblocks;
  need = sn_align64(need ? need : 1);
  if (reuse) {
    for (int b = 0; b < n; b++)
      if (blocks[b].refs == 0 && blocks[b].size >= need && (best < 0 || blocks[b].size < blocks[best].size))
        best = b;
    if (best >= 0) return best;
    int m = n;
    while (m > 0 && blocks[m - 1].refs == 0) m--;
    if (m < n) {
      size_t have = *end - blocks[m].offset;
      blocks[m].size = have > need ? have : need;
      *nblocks = m + 1;
      *end = blocks[m].offset + blocks[m].size;
      return m;
    }
  }
  blocks[n].offset = *end;
  blocks[n].size = need;
  blocks[n].refs = 0;
  *end += need;
  *nblocks = n + 1;
  return n;
}

/* Entries a step reads. */
static int sn_step_reads(const sn_executor *ex, const sn_step *st, int *ids, int cap) {
  int n = 0;
  if (st->kind == SN_STEP_FWD || st->kind == SN_STEP_SUM) {
    for (int k = 0; k < st->nin && n < cap; k++) ids[n++] = st->in[k];
    return n;
  }
  if (st->kind == SN_STEP_BWD) {
    const sn_igraph *g = &ex->g;
    const sn_op *op = g->node[st->node]->op;
    int nout = g->out_ptr[st->node + 1] - g->out_ptr[st->node];
    for (int k = 0; k < nout && n < cap; k++)
      if (st->ograd[k] >= 0) ids[n++] = st->ograd[k];
    int nin = g->nin_op[st->node];
    if (op->flags & SN_DEP_IN)
      for (int k = 0; k < nin && n < cap; k++) ids[n++] = st->in[k];
    for (int k = nin; k < st->nin && n < cap; k++) ids[n++] = st->in[k]; /* aux */
    if (op->flags & SN_DEP_OUT)
      for (int k = 0; k < nout && n < cap; k++) ids[n++] = g->out_ptr[st->node] + k;
  }
  return n;
}

static int sn_step_writes(const sn_step *st, int *ids, int cap) {
  int n = 0;
  for (int k = 0; k < st->nout && n < cap; k++)
    if (st->out[k] >= 0) ids[n++] = st->out[k];
  return n;
}

static int sn_plan(sn_executor *ex, int plan) {
  int nent = ex->nent, rc = SN_OK;
  int *last = malloc(sizeof(int) * ((size_t)nent + 1));
  sn_block *blocks = malloc(sizeof *blocks * ((size_t)nent + 1));
  int nblocks = 0;
  size_t end = 0, peak = 0;
  int *ids = malloc(sizeof(int) * (4 * SN_MAX_IO + 8));
  if (!last || !blocks || !ids) {
    free(last);
    free(blocks);
    free(ids);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  for (int e = 0; e < nent; e++) {
    last[e] = -1;
    SN_TRY(sn_shape_bytes(&ex->ent[e].shape, ex->ent[e].dtype, &ex->ent[e].bytes));
  }
  for (int s = 0; s < ex->nsteps; s++) {
    int n = sn_step_reads(ex, &ex->steps[s], ids, 4 * SN_MAX_IO + 8);
    for (int j = 0; j < n; j++) last[ids[j]] = s;
  }
  for (int h = 0; h < ex->g.nheads; h++) last[ex->g.head[h]] = ex->nsteps; /* outputs stay */
  size_t naive = 0;
  for (int e = 0; e < nent; e++)
    if (ex->ent[e].cls == SN_E_ARENA) naive += sn_align64(ex->ent[e].bytes);
  for (int s = 0; s < ex->nsteps && rc == SN_OK; s++) {
    sn_step *st = &ex->steps[s];
    int w[2 * SN_MAX_IO + 2];
    int nw = sn_step_writes(st, w, 2 * SN_MAX_IO + 2);
    for (int j = 0; j < nw; j++) {
      sn_xentry *e = &ex->ent[w[j]];
      if (e->cls != SN_E_ARENA || e->block >= 0) continue;
      /* In place: FWD out[0] over in[inplace_in]; BWD igrad[0] over ograd[0]. */
      int src = -1;
      if (plan && j == 0 && w[j] == st->out[0]) {
        const sn_op *op = st->kind == SN_STEP_FWD || st->kind == SN_STEP_BWD ? ex->g.node[st->node]->op : NULL;
        if (st->kind == SN_STEP_FWD && op->inplace_in > 0 && op->inplace_in - 1 < st->nin)
          src = st->in[op->inplace_in - 1];
        else if (st->kind == SN_STEP_BWD && op->inplace_grad > 0 && st->ograd[0] >= 0)
          src = st->ograd[0];
        else if (st->kind == SN_STEP_SUM)
          src = st->in[0];
        if (src >= 0) {
          int uses = 0;
          for (int k = 0; k < st->nin; k++) uses += st->in[k] == src;
          if (st->kind == SN_STEP_BWD) uses = 1; /* ograd is read once */
          sn_xentry *se = &ex->ent[src];
          if (se->cls != SN_E_ARENA || se->block < 0 || last[src] != s || uses != 1 ||
              se->bytes != e->bytes || se->dtype != e->dtype || blocks[se->block].refs != 1)
            src = -1;
          /* BWD: if the op also reads its inputs/outputs, ograd may alias them? no: distinct */
        }
      }
      if (src >= 0) {
        e->block = ex->ent[src].block;
        e->offset = ex->ent[src].offset;
        blocks[e->block].refs++;
        ex->stats.ninplace++;
        continue;
      }
      int best = sn_plan_alloc(blocks, &nblocks, &end, e->bytes, plan);
      e->offset = blocks[best].offset;
      if (end > peak) peak = end;
      e->block = best;
      blocks[best].refs++;
    }
    /* Free what died at this step (and outputs nobody reads). */
    int r[4 * SN_MAX_IO + 8];
    int nr = sn_step_reads(ex, st, r, 4 * SN_MAX_IO + 8);
    for (int j = 0; j < nr + nw; j++) {
      int id = j < nr ? r[j] : w[j - nr];
      sn_xentry *e = &ex->ent[id];
      if (e->cls != SN_E_ARENA || e->block < 0) continue;
      if (last[id] > s || (last[id] < 0 && j < nr)) continue;
      if (last[id] == -2) continue; /* already released */
      last[id] = -2;
      blocks[e->block].refs--;
    }
  }
  ex->stats.planned_bytes = peak;
  ex->stats.naive_bytes = naive;
  ex->stats.nentries = nent;
  ex->stats.nsteps = ex->nsteps;
  free(last);
  free(blocks);
  free(ids);
  return rc;
}

/* ---- binding ---- */
static int sn_workspace(sn_executor *ex, size_t *bytes) {
  *bytes = 0;
  for (int s = 0; s < ex->nsteps; s++) {
    sn_step *st = &ex->steps[s];
    if (st->kind != SN_STEP_FWD && st->kind != SN_STEP_BWD) continue;
    const sn_node *nd = ex->g.node[st->node];
    if (!nd->op->workspace) continue;
    int nin = ex->g.nin_op[st->node], nout = ex->g.out_ptr[st->node + 1] - ex->g.out_ptr[st->node];
    sn_shape in[SN_MAX_IO], out[SN_MAX_IO];
    for (int k = 0; k < nin; k++) in[k] = ex->ent[st->in[k]].shape;
    for (int k = 0; k < nout; k++) out[k] = ex->ent[ex->g.out_ptr[st->node] + k].shape;
    size_t b = 0;
    SN_TRY(nd->op->workspace(&nd->params, in, nin, out, nout, st->kind == SN_STEP_BWD, &b));
    if (b > *bytes) *bytes = b;
  }
  return SN_OK;
}

void sn_executor_free(sn_executor *ex) {
  if (!ex) return;
  for (int e = 0; e < ex->nent; e++) sn_tensor_release(&ex->ent[e].t);
  for (int s = 0; s < ex->nsteps; s++) {
    free(ex->steps[s].in);
    free(ex->steps[s].out);
    free(ex->steps[s].req);
    free(ex->steps[s].ograd);
  }
  for (int h = 0; ex->head_grads && h < ex->g.nheads; h++) sn_tensor_release(&ex->head_grads[h]);
  for (int k = 0; ex->args && k < ex->narg; k++) sn_tensor_release(&ex->args[k]);
  for (int k = 0; ex->grads && k < ex->narg; k++) sn_tensor_release(&ex->grads[k]);
  for (int k = 0; ex->aux && k < ex->naux; k++) sn_tensor_release(&ex->aux[k]);
  free(ex->head_grads);
  free(ex->args);
  free(ex->grads);
  free(ex->aux);
  free(ex->ent);
  free(ex->steps);
  free(ex->head_grad_entry);
  free(ex->zero_args);
  for (int k = 0; k < 3; k++)
    if (ex->graph[k] && sn_gpu()) sn_gpu()->graph_free(ex->graph[k]);
  sn_tensor_release(&ex->arena);
  sn_tensor_release(&ex->ws);
  sn_igraph_free(&ex->g);
  free(ex);
}

static int sn_check_array(const char *kind, const char *name, const sn_tensor *t,
                          const sn_shape *s, sn_dtype dt, sn_device dev) {
  char a[160], b[160];
  if (!t || !t->st) return sn_error(SN_ERR_ARG, "%s '%s' is missing", kind, name);
  if (!sn_shape_equal(&t->shape, s))
    return sn_error(SN_ERR_SHAPE, "%s '%s' has shape %s, the graph needs %s", kind, name,
                    sn_shape_str(&t->shape, a, sizeof a), sn_shape_str(s, b, sizeof b));
  if (t->dtype != dt)
    return sn_error(SN_ERR_TYPE, "%s '%s' has dtype %s, the graph needs %s", kind, name,
                    sn_dtype_name(t->dtype), sn_dtype_name(dt));
  if (!sn_device_equal(sn_tensor_device(t), dev))
    return sn_error(SN_ERR_ARG, "%s '%s' is on another device than the executor", kind, name);
  return SN_OK;
}

int sn_igraph_seed(const sn_igraph *g, int n, const char *const *names, const sn_shape *shapes,
                   const sn_dtype *types, sn_shape *shape, sn_dtype *type);

/* Every step must have a kernel for the executor's device: a missing GPU
 * kernel is an error at bind time, never a silent copy to the CPU. */
static int sn_check_kernels(const sn_executor *ex, sn_device dev) {
  int gpu = dev.type == SN_DEV_GPU;
  for (int s = 0; s < ex->nsteps; s++) {
    const sn_step *st = &ex->steps[s];
    const sn_op *op = st->kind == SN_STEP_SUM ? ex->sum_op : st->node >= 0 ? ex->g.node[st->node]->op : NULL;
    if (!op) continue;
    int bwd = st->kind == SN_STEP_BWD;
    sn_kernel k = gpu ? (bwd ? op->backward_gpu : op->forward_gpu) : (bwd ? op->backward_cpu : op->forward_cpu);
    if (!k)
      return sn_error(SN_ERR_UNSUPPORTED, "operator %s (%s) has no %s %s kernel",
                      st->node >= 0 ? ex->g.node[st->node]->name : "gradient sum", op->name,
                      gpu ? "GPU" : "CPU", bwd ? "backward" : "forward");
  }
  return SN_OK;
}

static int sn_bind_impl(sn_executor *ex, const sn_symbol *sym, const sn_bind_spec *spec) {
  sn_igraph *g = &ex->g;
  char buf[160];
  SN_TRY(sn_igraph_build(sym, g));
  if (spec->narg != g->narg)
    return sn_error(SN_ERR_ARG, "the symbol has %d arguments, %d arrays were given", g->narg, spec->narg);
  if (spec->naux != g->naux)
    return sn_error(SN_ERR_ARG, "the symbol has %d aux states, %d arrays were given", g->naux, spec->naux);
  ex->sum_op = sn_op_find("add_n");
  if (!ex->sum_op) return sn_error(SN_ERR_INTERNAL, "the add_n op is missing");
  /* Shapes from the given arrays. */
  int nk = g->narg + g->naux;
  const char **names = malloc(sizeof(char *) * ((size_t)nk + 1));
  sn_shape *given = malloc(sizeof(sn_shape) * ((size_t)nk + 1));
  sn_dtype *gtype = malloc(sizeof(sn_dtype) * ((size_t)nk + 1));
  sn_shape *shape = malloc(sizeof(sn_shape) * ((size_t)g->nentries + 1));
  sn_dtype *type = malloc(sizeof(sn_dtype) * ((size_t)g->nentries + 1));
  int rc = (names && given && gtype && shape && type) ? SN_OK : sn_error(SN_ERR_OOM, "out of memory");
  for (int k = 0; rc == SN_OK && k < nk; k++) {
    const sn_tensor *t = k < g->narg ? spec->args[k] : spec->aux[k - g->narg];
    names[k] = g->node[k < g->narg ? g->arg_node[k] : g->aux_node[k - g->narg]]->name;
    if (!t || !t->st) {
      rc = sn_error(SN_ERR_ARG, "%s '%s' has no array", k < g->narg ? "argument" : "aux state", names[k]);
      break;
    }
    given[k] = t->shape;
    gtype[k] = t->dtype;
  }
  if (rc == SN_OK) rc = sn_igraph_seed(g, nk, names, given, gtype, shape, type);
  if (rc == SN_OK) rc = sn_igraph_infer(g, shape, type);
  for (int e = 0; rc == SN_OK && e < g->nentries; e++) {
    if (type[e] == SN_DTYPE_UNKNOWN) type[e] = SN_F32;
    if (!sn_shape_known(&shape[e])) {
      int i = 0;
      while (i + 1 <= g->nnodes && g->out_ptr[i + 1] <= e) i++;
      rc = sn_error(SN_ERR_SHAPE, "cannot infer the shape of an output of %s (got %s)",
                    g->node[i]->name, sn_shape_str(&shape[e], buf, sizeof buf));
    }
  }
  for (int k = 0; rc == SN_OK && k < nk; k++)
    if (!sn_shape_equal(&given[k], &shape[g->out_ptr[k < g->narg ? g->arg_node[k] : g->aux_node[k - g->narg]]]))
      rc = sn_error(SN_ERR_SHAPE, "array '%s' has shape %s, the graph needs %s", names[k],
                    sn_shape_str(&given[k], buf, 80),
                    sn_shape_str(&shape[g->out_ptr[k < g->narg ? g->arg_node[k] : g->aux_node[k - g->narg]]], buf + 80, 80));
  if (rc == SN_OK) rc = sn_build_steps(ex, spec, shape, type);
  for (int k = 0; rc == SN_OK && k < g->narg; k++) {
    int req = spec->grad_req ? spec->grad_req[k] : SN_REQ_NULL;
    if (req != SN_REQ_NULL)
      rc = sn_check_array("gradient of", names[k], spec->grads ? spec->grads[k] : NULL,
                          &shape[g->out_ptr[g->arg_node[k]]], type[g->out_ptr[g->arg_node[k]]], spec->dev);
  }
  for (int k = 0; rc == SN_OK && k < nk; k++) {
    const sn_tensor *t = k < g->narg ? spec->args[k] : spec->aux[k - g->narg];
    if (!sn_device_equal(sn_tensor_device(t), spec->dev))
      rc = sn_error(SN_ERR_ARG, "array '%s' is on another device than the executor", names[k]);
  }
  free(names);
  free(given);
  free(gtype);
  free(shape);
  free(type);
  if (rc != SN_OK) return rc;
  SN_TRY(sn_check_kernels(ex, spec->dev));
  ex->graphs_ok = spec->dev.type == SN_DEV_GPU && spec->cuda_graphs;
  for (int s = 0; s < ex->nsteps; s++)
    if (ex->steps[s].node >= 0 && (ex->g.node[ex->steps[s].node]->op->flags & SN_OP_RANDOM))
      ex->graphs_ok = 0; /* a replayed graph would reuse one random seed */
  SN_TRY(sn_plan(ex, spec->plan_memory));
  size_t wsb;
  SN_TRY(sn_workspace(ex, &wsb));
  ex->stats.workspace_bytes = wsb;
  if (spec->dry_run) return SN_OK;
  /* Storage. */
  ex->narg = g->narg;
  ex->naux = g->naux;
  ex->args = calloc((size_t)g->narg + 1, sizeof(sn_tensor));
  ex->grads = calloc((size_t)g->narg + 1, sizeof(sn_tensor));
  ex->aux = calloc((size_t)g->naux + 1, sizeof(sn_tensor));
  ex->head_grads = calloc((size_t)g->nheads + 1, sizeof(sn_tensor));
  if (!ex->args || !ex->grads || !ex->aux || !ex->head_grads) return sn_error(SN_ERR_OOM, "out of memory");
  for (int k = 0; k < g->narg; k++) {
    sn_tensor_view(&ex->args[k], spec->args[k]);
    if (spec->grad_req && spec->grad_req[k] != SN_REQ_NULL) sn_tensor_view(&ex->grads[k], spec->grads[k]);
  }
  for (int k = 0; k < g->naux; k++) sn_tensor_view(&ex->aux[k], spec->aux[k]);
  sn_shape as = sn_shape_make(1, (int64_t[]){(int64_t)(ex->stats.planned_bytes ? ex->stats.planned_bytes : 64)});
  SN_TRY(sn_tensor_alloc(&ex->arena, SN_U8, &as, spec->dev));
  if (wsb) {
    sn_shape ws = sn_shape_make(1, (int64_t[]){(int64_t)wsb});
    SN_TRY(sn_tensor_alloc(&ex->ws, SN_U8, &ws, spec->dev));
  }
  for (int e = 0; e < ex->nent; e++) {
    sn_xentry *x = &ex->ent[e];
    switch (x->cls) {
    case SN_E_ARG: sn_tensor_view(&x->t, &ex->args[x->ext]); break;
    case SN_E_AUX: sn_tensor_view(&x->t, &ex->aux[x->ext]); break;
    case SN_E_GRAD: sn_tensor_view(&x->t, &ex->grads[x->ext]); break;
    case SN_E_HEADGRAD:
      if (!ex->head_grads[x->ext].st) {
        SN_TRY(sn_tensor_alloc(&ex->head_grads[x->ext], x->dtype, &x->shape, spec->dev));
      }
      sn_tensor_view(&x->t, &ex->head_grads[x->ext]);
      break;
    default:
      if (x->block < 0) continue; /* never written (unused hidden slot) */
      sn_tensor_view(&x->t, &ex->arena);
      x->t.offset = x->offset;
      x->t.shape = x->shape;
      x->t.dtype = x->dtype;
      break;
    }
  }
  return SN_OK;
}

int sn_executor_bind(const sn_symbol *sym, const sn_bind_spec *spec, sn_executor **out) {
  sn_executor *ex = calloc(1, sizeof *ex);
  *out = NULL;
  if (!ex) return sn_error(SN_ERR_OOM, "out of memory");
  ex->dev = spec->dev;
  ex->dry = spec->dry_run;
  int rc = sn_device_check(spec->dev);
  if (rc == SN_OK) rc = sn_bind_impl(ex, sym, spec);
  if (rc != SN_OK) {
    sn_executor_free(ex);
    return rc;
  }
  *out = ex;
  return SN_OK;
}

/* ---- running ---- */
/* Zero fill; on the GPU an asynchronous memset on the device's stream, so
 * it can be captured in a CUDA graph. */
static int sn_fill_zero(sn_tensor *t) {
  sn_device d = sn_tensor_device(t);
  if (d.type == SN_DEV_GPU) return sn_gpu()->memset0(d.id, sn_tensor_data(t), sn_tensor_bytes(t));
  return sn_tensor_fill(t, 0.0);
}

/* Runs steps [from, to) through a CUDA graph when allowed (see above). */
static int sn_run_steps(sn_executor *ex, int from, int to, int pass, int is_train);

static int sn_run_pass(sn_executor *ex, int from, int to, int pass, int is_train) {
  if (!ex->graphs_ok || ex->runs[pass]++ == 0) return sn_run_steps(ex, from, to, pass, is_train);
  const sn_gpu_api *gpu = sn_gpu();
  int dev = ex->dev.id;
  if (!ex->graph[pass]) {
    SN_TRY(gpu->graph_begin(dev));
    int rc = sn_run_steps(ex, from, to, pass, is_train);
    void *graph = NULL;
    int rc2 = gpu->graph_end(dev, &graph);
    if (rc != SN_OK || rc2 != SN_OK) {
      /* Not capturable (a kernel needed to allocate or synchronise, and
       * refused under capture): nothing ran, so run this pass eagerly and
       * stop capturing. */
      if (graph) gpu->graph_free(graph);
      ex->graphs_ok = 0;
      sn_clear_error();
      return sn_run_steps(ex, from, to, pass, is_train);
    }
    ex->graph[pass] = graph;
  }
  return gpu->graph_launch(dev, ex->graph[pass]);
}

int sn_executor_forward(sn_executor *ex, int is_train) {
  if (ex->dry) return sn_error(SN_ERR_ARG, "this executor was made for planning only");
  SN_TRY(sn_run_pass(ex, 0, ex->nfwd, is_train ? SN_PASS_TRAIN : SN_PASS_INFER, is_train));
  ex->trained = is_train ? 1 : ex->trained;
  return SN_OK;
}

static int sn_run_forward_step(sn_executor *ex, sn_step *st, int is_train) {
  sn_tensor *in[SN_MAX_IO], *out[SN_MAX_IO], *aux[SN_MAX_IO];
  const sn_node *nd = ex->g.node[st->node];
  int nin = ex->g.nin_op[st->node];
  sn_call c;
  memset(&c, 0, sizeof c);
  for (int k = 0; k < nin; k++) in[k] = &ex->ent[st->in[k]].t;
  for (int k = nin; k < st->nin; k++) aux[k - nin] = &ex->ent[st->in[k]].t;
  for (int k = 0; k < st->nout; k++) out[k] = &ex->ent[st->out[k]].t;
  c.p = &nd->params;
  c.in = in;
  c.nin = nin;
  c.out = out;
  c.nout = st->nout;
  c.aux = aux;
  c.naux = st->nin - nin;
  c.req = st->req;
  c.is_train = is_train;
  c.ws = ex->ws.st ? sn_tensor_data(&ex->ws) : NULL;
  c.ws_bytes = ex->ws.st ? ex->ws.st->bytes : 0;
  c.seed = sn_rng_next_seed();
  c.dev = ex->dev;
  int rc = sn_run_forward(nd->op, &c);
  if (rc != SN_OK) return sn_error_context(rc, "forward of %s (%s)", nd->name, nd->op->name);
  return SN_OK;
}

int sn_executor_backward(sn_executor *ex, int n, sn_tensor *const *head_grads) {
  if (ex->dry) return sn_error(SN_ERR_ARG, "this executor was made for planning only");
  if (!ex->trained) return sn_error(SN_ERR_ARG, "call forward with is.train = TRUE before backward");
  if (n != 0 && n != ex->g.nheads)
    return sn_error(SN_ERR_ARG, "backward needs %d head gradients (one per output), got %d", ex->g.nheads, n);
  for (int h = 0; h < ex->g.nheads; h++) {
    sn_tensor *hg = &ex->head_grads[h];
    if (!hg->st) continue;
    if (n > 0 && head_grads[h]) {
      if (!sn_shape_equal(&head_grads[h]->shape, &hg->shape)) {
        char a[160], b[160];
        return sn_error(SN_ERR_SHAPE, "head gradient %d has shape %s, the output has %s", h + 1,
                        sn_shape_str(&head_grads[h]->shape, a, sizeof a), sn_shape_str(&hg->shape, b, sizeof b));
      }
      SN_TRY(sn_tensor_copy(hg, head_grads[h]));
    } else {
      SN_TRY(sn_tensor_fill(hg, 1.0));
    }
  }
  for (int k = 0; k < ex->nzero_args; k++) SN_TRY(sn_fill_zero(&ex->grads[ex->zero_args[k]]));
  return sn_run_pass(ex, ex->nfwd, ex->nsteps, SN_PASS_BWD, 1);
}

static int sn_run_steps(sn_executor *ex, int from, int to, int pass, int is_train) {
  sn_tensor *in[SN_MAX_IO], *out[SN_MAX_IO], *aux[SN_MAX_IO], *og[SN_MAX_IO], *ig[SN_MAX_IO];
  (void)pass;
  for (int s = from; s < to; s++) {
    sn_step *st = &ex->steps[s];
    int rc;
    if (st->kind == SN_STEP_FWD) {
      SN_TRY(sn_run_forward_step(ex, st, is_train));
      continue;
    }
    sn_call c;
    memset(&c, 0, sizeof c);
    c.dev = ex->dev;
    c.ws = ex->ws.st ? sn_tensor_data(&ex->ws) : NULL;
    c.ws_bytes = ex->ws.st ? ex->ws.st->bytes : 0;
    c.seed = sn_rng_next_seed();
    c.is_train = 1;
    if (st->kind == SN_STEP_ZERO) {
      SN_TRY(sn_fill_zero(&ex->ent[st->out[0]].t));
      continue;
    }
    if (st->kind == SN_STEP_SUM) {
      for (int k = 0; k < st->nin; k++) in[k] = &ex->ent[st->in[k]].t;
      out[0] = &ex->ent[st->out[0]].t;
      c.p = &st->sum_params;
      c.in = in;
      c.nin = st->nin;
      c.out = out;
      c.nout = 1;
      c.req = st->req;
      rc = sn_run_forward(ex->sum_op, &c);
      if (rc != SN_OK) return sn_error_context(rc, "gradient sum");
      continue;
    }
    const sn_node *nd = ex->g.node[st->node];
    int nin = ex->g.nin_op[st->node];
    int nout = ex->g.out_ptr[st->node + 1] - ex->g.out_ptr[st->node];
    for (int k = 0; k < nin; k++) in[k] = &ex->ent[st->in[k]].t;
    for (int k = nin; k < st->nin; k++) aux[k - nin] = &ex->ent[st->in[k]].t;
    for (int k = 0; k < nout; k++) {
      out[k] = &ex->ent[ex->g.out_ptr[st->node] + k].t;
      og[k] = st->ograd[k] >= 0 ? &ex->ent[st->ograd[k]].t : NULL;
    }
    for (int k = 0; k < nin; k++) ig[k] = st->out[k] >= 0 ? &ex->ent[st->out[k]].t : NULL;
    c.p = &nd->params;
    c.in = in;
    c.nin = nin;
    c.out = out;
    c.nout = nout;
    c.aux = aux;
    c.naux = st->nin - nin;
    c.ograd = og;
    c.igrad = ig;
    c.req = st->req;
    rc = sn_run_backward(nd->op, &c);
    if (rc != SN_OK) return sn_error_context(rc, "backward of %s (%s)", nd->name, nd->op->name);
  }
  return SN_OK;
}

int sn_executor_num_outputs(const sn_executor *ex) { return ex->g.nheads; }

int sn_executor_output(const sn_executor *ex, int i, sn_tensor *out) {
  if (i < 0 || i >= ex->g.nheads) return sn_error(SN_ERR_ARG, "output %d is out of range", i + 1);
  if (ex->dry) return sn_error(SN_ERR_ARG, "this executor was made for planning only");
  sn_tensor_view(out, &ex->ent[ex->g.head[i]].t);
  return SN_OK;
}

void sn_executor_stats(const sn_executor *ex, sn_mem_stats *st) { *st = ex->stats; }
