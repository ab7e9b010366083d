/* Symbol graphs: nodes, composition, queries, topological order.
 * See graph.h. */
#include "graph.h"
#include "graph_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small utilities ---- */
char *sn_graph_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void sn_free_strings(char **s, int n) {
  if (!s) return;
  for (int i = 0; i < n; i++) free(s[i]);
  free(s);
}

static void sn_kv_free(sn_kv *kv, int n) {
  for (int i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].val);
  }
  free(kv);
}

int sn_graph_kv_copy(sn_kv **dst, int n, const char *const *keys, const char *const *vals) {
  *dst = NULL;
  if (n == 0) return SN_OK;
  sn_kv *kv = calloc((size_t)n, sizeof *kv);
  if (!kv) return sn_error(SN_ERR_OOM, "out of memory");
  for (int i = 0; i < n; i++) {
    kv[i].key = sn_graph_strdup(keys[i]);
    kv[i].val = sn_graph_strdup(vals[i]);
    if (!kv[i].key || !kv[i].val) {
      sn_kv_free(kv, n);
      return sn_error(SN_ERR_OOM, "out of memory");
    }
  }
  *dst = kv;
  return SN_OK;
}

/* ---- nodes ---- */
static void sn_node_free_one(sn_node *n) {
  free(n->name);
  sn_kv_free(n->param, n->nparam);
  sn_kv_free(n->attr, n->nattr);
  free(n->in);
  free(n);
}

static void sn_node_retain(sn_node *n) { n->refcount++; }

/* Releases iteratively: deep graphs (unrolled RNNs) must not recurse. */
void sn_graph_node_release(sn_node *root) {
  size_t cap = 64, top = 0;
  sn_node **stack = malloc(cap * sizeof *stack);
  if (!stack) return; /* leak rather than crash */
  stack[top++] = root;
  while (top > 0) {
    sn_node *n = stack[--top];
    if (--n->refcount > 0) continue;
    for (int i = 0; i < n->nin; i++) {
      if (top == cap) {
        sn_node **s2 = realloc(stack, 2 * cap * sizeof *stack);
        if (!s2) break;
        stack = s2;
        cap *= 2;
      }
      stack[top++] = n->in[i].node;
    }
    sn_node_free_one(n);
  }
  free(stack);
}

sn_node *sn_graph_node_new(const char *name) {
  sn_node *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->refcount = 1;
  n->name = sn_graph_strdup(name);
  if (!n->name) {
    free(n);
    return NULL;
  }
  return n;
}

/* ---- symbols ---- */
int sn_graph_symbol_alloc(int n, sn_symbol **out) {
  sn_symbol *s = calloc(1, sizeof *s);
  if (!s) return sn_error(SN_ERR_OOM, "out of memory");
  s->out = calloc((size_t)(n > 0 ? n : 1), sizeof *s->out);
  if (!s->out) {
    free(s);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  s->n = n;
  *out = s;
  return SN_OK;
}

void sn_symbol_free(sn_symbol *sym) {
  if (!sym) return;
  for (int i = 0; i < sym->n; i++)
    if (sym->out[i].node) sn_graph_node_release(sym->out[i].node);
  free(sym->out);
  free(sym);
}

int sn_symbol_variable(const char *name, sn_symbol **out) {
  if (!name || !*name) return sn_error(SN_ERR_ARG, "a variable needs a non-empty name");
  SN_TRY(sn_graph_symbol_alloc(1, out));
  (*out)->out[0].node = sn_graph_node_new(name);
  if (!(*out)->out[0].node) {
    sn_symbol_free(*out);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  return SN_OK;
}

int sn_symbol_copy(const sn_symbol *sym, sn_symbol **out) {
  SN_TRY(sn_graph_symbol_alloc(sym->n, out));
  for (int i = 0; i < sym->n; i++) {
    (*out)->out[i] = sym->out[i];
    sn_node_retain(sym->out[i].node);
  }
  return SN_OK;
}

/* ---- automatic names ---- */
#define SN_MAX_HINTS 512
static struct {
  char hint[64];
  int count;
} sn_hints[SN_MAX_HINTS];
static int sn_nhints;

void sn_name_reset(void) { sn_nhints = 0; }

static void sn_auto_name(const sn_op *op, char *buf, size_t n) {
  char hint[64];
  const char *src = op->name_hint ? op->name_hint : op->name;
  size_t i = 0;
  for (; src[i] && i < sizeof hint - 1; i++) hint[i] = (char)tolower((unsigned char)src[i]);
  hint[i] = '\0';
  for (int k = 0; k < sn_nhints; k++)
    if (strcmp(sn_hints[k].hint, hint) == 0) {
      snprintf(buf, n, "%s%d", hint, sn_hints[k].count++);
      return;
    }
  if (sn_nhints < SN_MAX_HINTS) {
    snprintf(sn_hints[sn_nhints].hint, sizeof sn_hints[0].hint, "%s", hint);
    sn_hints[sn_nhints].count = 1;
    sn_nhints++;
  }
  snprintf(buf, n, "%s0", hint);
}

/* ---- op nodes ---- */
int sn_symbol_create(const sn_op *op, const char *name, int nparam, const char *const *keys,
                     const char *const *vals, int n_in, const char *const *in_names,
                     sn_symbol *const *inputs, sn_symbol **out) {
  sn_params p;
  const char *names[SN_MAX_IO];
  char autoname[128], vname[512];
  int nattr = 0, nreal = 0;
  const char *ak[SN_MAX_PARAMS * 2], *av[SN_MAX_PARAMS * 2], *pk[SN_MAX_PARAMS * 2], *pv[SN_MAX_PARAMS * 2];
  *out = NULL;
  if (nparam > SN_MAX_PARAMS * 2) return sn_error(SN_ERR_ARG, "%s: too many parameters", op->name);
  SN_TRY(sn_params_parse(op, nparam, keys, vals, &p));
  /* Split "__attr__" keys from parameters. */
  for (int i = 0; i < nparam; i++) {
    if (strncmp(keys[i], "__", 2) == 0) {
      ak[nattr] = keys[i];
      av[nattr++] = vals[i];
    } else {
      pk[nreal] = keys[i];
      pv[nreal++] = vals[i];
    }
  }
  int nin = sn_op_inputs(op, &p, names, SN_MAX_IO);
  int naux = sn_op_num_aux(op);
  if (nin + naux > SN_MAX_IO)
    return sn_error(SN_ERR_ARG, "%s: too many inputs (%d)", op->name, nin + naux);
  for (int a = 0; a < naux; a++) names[nin + a] = op->aux[a];
  int total = nin + naux;
  sn_entry slots[SN_MAX_IO];
  memset(slots, 0, sizeof slots);
  if (!name || !*name) {
    sn_auto_name(op, autoname, sizeof autoname);
    name = autoname;
  }
  int next = 0;
  for (int i = 0; i < n_in; i++) {
    int k;
    const sn_symbol *s = inputs[i];
    if (in_names && in_names[i]) {
      for (k = 0; k < total; k++)
        if (strcmp(names[k], in_names[i]) == 0) break;
      if (k == total) {
        char list[512];
        size_t len = 0;
        list[0] = '\0';
        for (int j = 0; j < total && len < sizeof list; j++)
          len += (size_t)snprintf(list + len, sizeof list - len, j ? ", %s" : "%s", names[j]);
        return sn_error(SN_ERR_ARG, "%s (%s) has no input '%s' (inputs: %s)", name, op->name,
                        in_names[i], total ? list : "none");
      }
    } else {
      while (next < total && slots[next].node) next++;
      k = next;
      if (k >= total)
        return sn_error(SN_ERR_ARG, "%s (%s) takes %d input%s, got more", name, op->name, total,
                        total == 1 ? "" : "s");
    }
    if (slots[k].node)
      return sn_error(SN_ERR_ARG, "%s (%s): input '%s' is given twice", name, op->name, names[k]);
    if (s->n != 1)
      return sn_error(SN_ERR_ARG,
                      "%s (%s): input '%s' is a symbol with %d outputs; pick one with sym[[i]]",
                      name, op->name, names[k], s->n);
    slots[k] = s->out[0];
  }
  sn_node *node = sn_graph_node_new(name);
  if (!node) return sn_error(SN_ERR_OOM, "out of memory");
  node->op = op;
  node->params = p;
  int rc = sn_graph_kv_copy(&node->param, nreal, pk, pv);
  if (rc == SN_OK) node->nparam = nreal;
  if (rc == SN_OK) rc = sn_graph_kv_copy(&node->attr, nattr, ak, av);
  if (rc == SN_OK) node->nattr = nattr;
  if (rc == SN_OK && total > 0) {
    node->in = calloc((size_t)total, sizeof *node->in);
    if (!node->in) rc = sn_error(SN_ERR_OOM, "out of memory");
  }
  for (int k = 0; rc == SN_OK && k < total; k++) {
    if (slots[k].node) {
      node->in[k] = slots[k];
      sn_node_retain(slots[k].node);
    } else {
      snprintf(vname, sizeof vname, "%s_%s", name, names[k]);
      node->in[k].node = sn_graph_node_new(vname);
      node->in[k].index = 0;
      if (!node->in[k].node) rc = sn_error(SN_ERR_OOM, "out of memory");
    }
    if (rc == SN_OK) node->nin = k + 1;
  }
  if (rc == SN_OK) {
    int nvis = sn_op_num_visible(op, &p);
    rc = sn_graph_symbol_alloc(nvis, out);
    for (int i = 0; rc == SN_OK && i < nvis; i++) {
      (*out)->out[i].node = node;
      (*out)->out[i].index = i;
      if (i > 0) sn_node_retain(node);
    }
    if (rc == SN_OK && nvis == 0) sn_graph_node_release(node);
  }
  if (rc != SN_OK) sn_graph_node_release(node);
  return rc;
}

int sn_symbol_group(int n, sn_symbol *const *syms, sn_symbol **out) {
  int total = 0;
  for (int i = 0; i < n; i++) total += syms[i]->n;
  if (total == 0) return sn_error(SN_ERR_ARG, "mx.symbol.Group needs at least one symbol");
  SN_TRY(sn_graph_symbol_alloc(total, out));
  int k = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < syms[i]->n; j++) {
      (*out)->out[k] = syms[i]->out[j];
      sn_node_retain(syms[i]->out[j].node);
      k++;
    }
  return SN_OK;
}

/* ---- pointer set and topological order ---- */
typedef struct {
  size_t cap, n;
  const void **key;
  int *val;
} sn_pmap;

static int sn_pmap_init(sn_pmap *m, size_t expect) {
  m->cap = 64;
  while (m->cap < expect * 2) m->cap *= 2;
  m->n = 0;
  m->key = calloc(m->cap, sizeof *m->key);
  m->val = calloc(m->cap, sizeof *m->val);
  if (!m->key || !m->val) {
    free(m->key);
    free(m->val);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  return SN_OK;
}

static void sn_pmap_free(sn_pmap *m) {
  free(m->key);
  free(m->val);
}

static size_t sn_pmap_slot(const sn_pmap *m, const void *k) {
  size_t h = ((uintptr_t)k >> 4) * 0x9E3779B97F4A7C15ull;
  size_t i = h & (m->cap - 1);
  while (m->key[i] && m->key[i] != k) i = (i + 1) & (m->cap - 1);
  return i;
}

static int sn_pmap_get(const sn_pmap *m, const void *k, int *v) {
  size_t i = sn_pmap_slot(m, k);
  if (!m->key[i]) return 0;
  if (v) *v = m->val[i];
  return 1;
}

static int sn_pmap_put(sn_pmap *m, const void *k, int v) {
  if (2 * (m->n + 1) > m->cap) {
    sn_pmap old = *m;
    if (sn_pmap_init(m, old.cap) != SN_OK) {
      *m = old;
      return SN_ERR_OOM;
    }
    for (size_t i = 0; i < old.cap; i++)
      if (old.key[i]) {
        size_t j = sn_pmap_slot(m, old.key[i]);
        m->key[j] = old.key[i];
        m->val[j] = old.val[i];
        m->n++;
      }
    sn_pmap_free(&old);
  }
  size_t i = sn_pmap_slot(m, k);
  if (!m->key[i]) m->n++;
  m->key[i] = k;
  m->val[i] = v;
  return SN_OK;
}

int sn_graph_topo(const sn_symbol *sym, sn_node ***order, int *n) {
  sn_pmap seen;
  size_t cap = 64, cnt = 0, scap = 64, top = 0;
  sn_node **ord = malloc(cap * sizeof *ord);
  struct frame {
    sn_node *node;
    int next;
  } *stack = malloc(scap * sizeof *stack);
  int rc = (ord && stack) ? sn_pmap_init(&seen, 64) : sn_error(SN_ERR_OOM, "out of memory");
  if (rc != SN_OK) {
    free(ord);
    free(stack);
    return rc;
  }
  for (int h = 0; rc == SN_OK && h < sym->n; h++) {
    sn_node *root = sym->out[h].node;
    if (sn_pmap_get(&seen, root, NULL)) continue;
    rc = sn_pmap_put(&seen, root, 0);
    stack[top].node = root;
    stack[top].next = 0;
    top++;
    while (rc == SN_OK && top > 0) {
      struct frame *f = &stack[top - 1];
      if (f->next < f->node->nin) {
        sn_node *c = f->node->in[f->next++].node;
        if (sn_pmap_get(&seen, c, NULL)) continue;
        rc = sn_pmap_put(&seen, c, 0);
        if (top == scap) {
          struct frame *s2 = realloc(stack, 2 * scap * sizeof *stack);
          if (!s2) {
            rc = sn_error(SN_ERR_OOM, "out of memory");
            break;
          }
          stack = s2;
          scap *= 2;
        }
        stack[top].node = c;
        stack[top].next = 0;
        top++;
      } else {
        if (cnt == cap) {
          sn_node **o2 = realloc(ord, 2 * cap * sizeof *ord);
          if (!o2) {
            rc = sn_error(SN_ERR_OOM, "out of memory");
            break;
          }
          ord = o2;
          cap *= 2;
        }
        ord[cnt++] = f->node;
        top--;
      }
    }
  }
  sn_pmap_free(&seen);
  free(stack);
  if (rc != SN_OK) {
    free(ord);
    return rc;
  }
  *order = ord;
  *n = (int)cnt;
  return SN_OK;
}

/* Number of op inputs (the rest of node->in are aux states). */
static int sn_node_num_inputs(const sn_node *n) {
  return n->op ? n->nin - sn_op_num_aux(n->op) : 0;
}

/* Marks, by topo position, the variables that feed aux slots. */
static int sn_aux_marks(sn_node **ord, int n, char **is_aux) {
  sn_pmap pos;
  *is_aux = calloc((size_t)(n > 0 ? n : 1), 1);
  if (!*is_aux) return sn_error(SN_ERR_OOM, "out of memory");
  int rc = sn_pmap_init(&pos, (size_t)n);
  for (int i = 0; rc == SN_OK && i < n; i++) rc = sn_pmap_put(&pos, ord[i], i);
  for (int i = 0; rc == SN_OK && i < n; i++) {
    sn_node *nd = ord[i];
    for (int k = sn_node_num_inputs(nd); nd->op && k < nd->nin; k++) {
      int j;
      if (sn_pmap_get(&pos, nd->in[k].node, &j) && !nd->in[k].node->op) (*is_aux)[j] = 1;
    }
  }
  if (rc == SN_OK) sn_pmap_free(&pos);
  else free(*is_aux);
  return rc;
}

static int sn_list_vars(const sn_symbol *sym, int want_aux, const char ***names, int *n) {
  sn_node **ord;
  int cnt;
  char *is_aux;
  SN_TRY(sn_graph_topo(sym, &ord, &cnt));
  int rc = sn_aux_marks(ord, cnt, &is_aux);
  if (rc != SN_OK) {
    free(ord);
    return rc;
  }
  const char **res = malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof *res);
  int k = 0;
  if (!res) rc = sn_error(SN_ERR_OOM, "out of memory");
  for (int i = 0; rc == SN_OK && i < cnt; i++)
    if (!ord[i]->op && (is_aux[i] != 0) == (want_aux != 0)) res[k++] = ord[i]->name;
  free(ord);
  free(is_aux);
  if (rc != SN_OK) return rc;
  *names = res;
  *n = k;
  return SN_OK;
}

int sn_symbol_arguments(const sn_symbol *sym, const char ***names, int *n) {
  return sn_list_vars(sym, 0, names, n);
}

int sn_symbol_aux_states(const sn_symbol *sym, const char ***names, int *n) {
  return sn_list_vars(sym, 1, names, n);
}

static char *sn_entry_name(const sn_entry *e) {
  const sn_node *nd = e->node;
  char buf[512];
  if (!nd->op) return sn_graph_strdup(nd->name);
  const char *onames[SN_MAX_IO];
  int no = sn_op_outputs(nd->op, &nd->params, onames, SN_MAX_IO);
  snprintf(buf, sizeof buf, "%s_%s", nd->name, e->index < no && e->index < SN_MAX_IO ? onames[e->index] : "output");
  return sn_graph_strdup(buf);
}

int sn_symbol_outputs(const sn_symbol *sym, char ***names, int *n) {
  char **res = calloc((size_t)(sym->n > 0 ? sym->n : 1), sizeof *res);
  if (!res) return sn_error(SN_ERR_OOM, "out of memory");
  for (int i = 0; i < sym->n; i++) {
    res[i] = sn_entry_name(&sym->out[i]);
    if (!res[i]) {
      sn_free_strings(res, i);
      return sn_error(SN_ERR_OOM, "out of memory");
    }
  }
  *names = res;
  *n = sym->n;
  return SN_OK;
}

int sn_symbol_get_output(const sn_symbol *sym, int i, sn_symbol **out) {
  if (i < 0 || i >= sym->n)
    return sn_error(SN_ERR_ARG, "output index %d is out of range (the symbol has %d output%s)",
                    i + 1, sym->n, sym->n == 1 ? "" : "s");
  SN_TRY(sn_graph_symbol_alloc(1, out));
  (*out)->out[0] = sym->out[i];
  sn_node_retain(sym->out[i].node);
  return SN_OK;
}

int sn_symbol_internals(const sn_symbol *sym, sn_symbol **out) {
  sn_node **ord;
  int cnt, total = 0;
  SN_TRY(sn_graph_topo(sym, &ord, &cnt));
  for (int i = 0; i < cnt; i++) total += ord[i]->op ? sn_op_num_visible(ord[i]->op, &ord[i]->params) : 1;
  int rc = sn_graph_symbol_alloc(total, out);
  int k = 0;
  for (int i = 0; rc == SN_OK && i < cnt; i++) {
    int nv = ord[i]->op ? sn_op_num_visible(ord[i]->op, &ord[i]->params) : 1;
    for (int j = 0; j < nv; j++) {
      (*out)->out[k].node = ord[i];
      (*out)->out[k].index = j;
      sn_node_retain(ord[i]);
      k++;
    }
  }
  free(ord);
  return rc;
}

int sn_symbol_children(const sn_symbol *sym, sn_symbol **out) {
  int total = 0;
  *out = NULL;
  for (int h = 0; h < sym->n; h++) total += sym->out[h].node->nin;
  if (total == 0) return SN_OK;
  SN_TRY(sn_graph_symbol_alloc(total, out));
  int k = 0;
  for (int h = 0; h < sym->n; h++)
    for (int i = 0; i < sym->out[h].node->nin; i++) {
      (*out)->out[k] = sym->out[h].node->in[i];
      sn_node_retain((*out)->out[k].node);
      k++;
    }
  return SN_OK;
}

int sn_symbol_attr_get(const sn_symbol *sym, const sn_kv **kv, int *n) {
  *kv = NULL;
  *n = 0;
  if (sym->n != 1) return SN_OK;
  *kv = sym->out[0].node->attr;
  *n = sym->out[0].node->nattr;
  return SN_OK;
}

int sn_symbol_attr_set(sn_symbol *sym, const char *key, const char *val) {
  for (int h = 0; h < sym->n; h++) {
    sn_node *nd = sym->out[h].node;
    int i;
    for (i = 0; i < nd->nattr; i++)
      if (strcmp(nd->attr[i].key, key) == 0) break;
    char *v = sn_graph_strdup(val);
    if (!v) return sn_error(SN_ERR_OOM, "out of memory");
    if (i < nd->nattr) {
      free(nd->attr[i].val);
      nd->attr[i].val = v;
      continue;
    }
    sn_kv *kv = realloc(nd->attr, (size_t)(nd->nattr + 1) * sizeof *kv);
    char *k = sn_graph_strdup(key);
    if (!kv || !k) {
      free(v);
      free(k);
      if (kv) nd->attr = kv;
      return sn_error(SN_ERR_OOM, "out of memory");
    }
    nd->attr = kv;
    nd->attr[nd->nattr].key = k;
    nd->attr[nd->nattr].val = v;
    nd->nattr++;
  }
  return SN_OK;
}

/* ---- composition (mx.apply) ---- */
int sn_symbol_compose(const sn_symbol *sym, int n, const char *const *names,
                      sn_symbol *const *syms, sn_symbol **out) {
  sn_node **ord;
  int cnt, rc;
  sn_pmap map;
  for (int i = 0; i < n; i++)
    if (syms[i]->n != 1)
      return sn_error(SN_ERR_ARG, "the symbol given for '%s' has %d outputs; pick one with sym[[i]]",
                      names[i], syms[i]->n);
  SN_TRY(sn_graph_topo(sym, &ord, &cnt));
  sn_node **copy = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof *copy);
  sn_entry *subst = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof *subst);
  char *used = calloc((size_t)(n > 0 ? n : 1), 1);
  rc = (copy && subst && used) ? sn_pmap_init(&map, (size_t)cnt) : sn_error(SN_ERR_OOM, "out of memory");
  if (rc != SN_OK) goto done_nomap;
  for (int i = 0; rc == SN_OK && i < cnt; i++) {
    sn_node *o = ord[i];
    rc = sn_pmap_put(&map, o, i);
    if (!o->op) {
      int k;
      for (k = 0; k < n; k++)
        if (strcmp(names[k], o->name) == 0) break;
      if (k < n) {
        subst[i] = syms[k]->out[0];
        used[k] = 1;
        continue;
      }
    }
    sn_node *c = sn_graph_node_new(o->name);
    if (!c) {
      rc = sn_error(SN_ERR_OOM, "out of memory");
      break;
    }
    c->op = o->op;
    c->params = o->params;
    const char *kk[256], *vv[256];
    for (int j = 0; j < o->nparam && j < 256; j++) { kk[j] = o->param[j].key; vv[j] = o->param[j].val; }
    rc = sn_graph_kv_copy(&c->param, o->nparam, kk, vv);
    if (rc == SN_OK) c->nparam = o->nparam;
    for (int j = 0; j < o->nattr && j < 256; j++) { kk[j] = o->attr[j].key; vv[j] = o->attr[j].val; }
    if (rc == SN_OK) rc = sn_graph_kv_copy(&c->attr, o->nattr, kk, vv);
    if (rc == SN_OK) c->nattr = o->nattr;
    if (rc == SN_OK && o->nin) {
      c->in = calloc((size_t)o->nin, sizeof *c->in);
      if (!c->in) rc = sn_error(SN_ERR_OOM, "out of memory");
    }
    for (int j = 0; rc == SN_OK && j < o->nin; j++) {
      int p;
      sn_pmap_get(&map, o->in[j].node, &p);
      c->in[j] = copy[p] ? (sn_entry){copy[p], o->in[j].index} : subst[p];
      sn_node_retain(c->in[j].node);
      c->nin = j + 1;
    }
    copy[i] = c;
  }
  for (int k = 0; rc == SN_OK && k < n; k++)
    if (!used[k]) rc = sn_error(SN_ERR_ARG, "the symbol has no argument named '%s'", names[k]);
  if (rc == SN_OK) rc = sn_graph_symbol_alloc(sym->n, out);
  for (int h = 0; rc == SN_OK && h < sym->n; h++) {
    int p;
    sn_pmap_get(&map, sym->out[h].node, &p);
    (*out)->out[h] = copy[p] ? (sn_entry){copy[p], sym->out[h].index} : subst[p];
    sn_node_retain((*out)->out[h].node);
  }
  sn_pmap_free(&map);
done_nomap:
  for (int i = 0; copy && i < cnt; i++)
    if (copy[i]) sn_graph_node_release(copy[i]);
  free(copy);
  free(subst);
  free(used);
  free(ord);
  return rc;
}
