/* MXNet's symbol JSON: reading (1.x "attrs", and 0.x "param"/"attr" with
 * backward_source_id) and writing (1.x layout, attributes sorted by key as
 * MXNet's std::map writes them).  Loading validates everything: indices in
 * range and pointing backwards (so no cycles), known ops, parameters that
 * parse, input counts that match the op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "graph_internal.h"
#include "json.h"

#define SN_MXNET_VERSION 10600

static int sn_json_int(const sn_json *v, int64_t *out) {
  if (!v || v->type != SN_JSON_NUMBER || v->number != (double)(int64_t)v->number) return 0;
  *out = (int64_t)v->number;
  return 1;
}

/* Collects string-valued members of an object into key/value arrays. */
static int sn_json_strings(const sn_json *obj, const char *where, const char ***k, const char ***v, int *n) {
  *n = 0;
  *k = *v = NULL;
  if (!obj) return SN_OK;
  if (obj->type != SN_JSON_OBJECT) return sn_error(SN_ERR_FORMAT, "%s: attributes must be an object", where);
  *k = malloc(sizeof(char *) * (obj->n + 1));
  *v = malloc(sizeof(char *) * (obj->n + 1));
  if (!*k || !*v) {
    free(*k);
    free(*v);
    return sn_error(SN_ERR_OOM, "out of memory");
  }
  for (size_t i = 0; i < obj->n; i++) {
    if (obj->items[i]->type != SN_JSON_STRING) {
      free(*k);
      free(*v);
      return sn_error(SN_ERR_FORMAT, "%s: attribute '%s' must be a string", where, obj->keys[i]);
    }
    (*k)[i] = obj->keys[i];
    (*v)[i] = obj->items[i]->string;
  }
  *n = (int)obj->n;
  return SN_OK;
}

/* One node from its JSON object; nodes[0..idx-1] are built already. */
static int sn_json_node(const sn_json *jn, int idx, sn_node **nodes, int *nouts, sn_node **out) {
  char where[300];
  const sn_json *op = sn_json_get(jn, "op"), *name = sn_json_get(jn, "name");
  const sn_json *inputs = sn_json_get(jn, "inputs");
  *out = NULL;
  if (!jn || jn->type != SN_JSON_OBJECT) return sn_error(SN_ERR_FORMAT, "node %d is not an object", idx);
  if (!op || op->type != SN_JSON_STRING) return sn_error(SN_ERR_FORMAT, "node %d has no \"op\"", idx);
  if (!name || name->type != SN_JSON_STRING) return sn_error(SN_ERR_FORMAT, "node %d has no \"name\"", idx);
  snprintf(where, sizeof where, "node %d ('%s')", idx, name->string);
  const sn_op *o = NULL;
  if (strcmp(op->string, "null") != 0) {
    o = sn_op_find(op->string);
    if (!o) return sn_error(SN_ERR_FORMAT, "%s: unknown operator '%s'", where, op->string);
  }
  /* Parameters and attributes: 1.x puts both in "attrs"; 0.x has "param"
   * (op parameters) and "attr" (attributes, upgraded to __key__). */
  const char **ak = NULL, **av = NULL, **pk = NULL, **pv = NULL, **lk = NULL, **lv = NULL;
  int na = 0, np = 0, nl = 0, rc;
  rc = sn_json_strings(sn_json_get(jn, "attrs"), where, &ak, &av, &na);
  if (rc == SN_OK) rc = sn_json_strings(sn_json_get(jn, "param"), where, &pk, &pv, &np);
  if (rc == SN_OK) rc = sn_json_strings(sn_json_get(jn, "attr"), where, &lk, &lv, &nl);
  int total = na + np + nl;
  const char **keys = malloc(sizeof(char *) * ((size_t)total + 1));
  const char **vals = malloc(sizeof(char *) * ((size_t)total + 1));
  char (*upgraded)[128] = malloc(sizeof *upgraded * ((size_t)nl + 1));
  if (rc == SN_OK && (!keys || !vals || !upgraded)) rc = sn_error(SN_ERR_OOM, "out of memory");
  int nparam = 0, nattr = 0;
  const char **attr_k = NULL, **attr_v = NULL;
  if (rc == SN_OK) {
    attr_k = malloc(sizeof(char *) * ((size_t)total + 1));
    attr_v = malloc(sizeof(char *) * ((size_t)total + 1));
    if (!attr_k || !attr_v) rc = sn_error(SN_ERR_OOM, "out of memory");
  }
  for (int i = 0; rc == SN_OK && i < total; i++) {
    const char *k = i < na ? ak[i] : i < na + np ? pk[i - na] : lk[i - na - np];
    const char *v = i < na ? av[i] : i < na + np ? pv[i - na] : lv[i - na - np];
    if (i >= na + np && strncmp(k, "__", 2) != 0) {
      snprintf(upgraded[i - na - np], 128, "__%s__", k);
      k = upgraded[i - na - np];
    }
    if (strncmp(k, "__", 2) == 0 || !o) {
      attr_k[nattr] = k;
      attr_v[nattr++] = v;
    } else {
      keys[nparam] = k;
      vals[nparam++] = v;
    }
  }
  sn_node *nd = NULL;
  if (rc == SN_OK) {
    nd = sn_graph_node_new(name->string);
    if (!nd) rc = sn_error(SN_ERR_OOM, "out of memory");
  }
  if (rc == SN_OK && o) {
    nd->op = o;
    rc = sn_params_parse(o, nparam, keys, vals, &nd->params);
    if (rc != SN_OK) sn_error_context(rc, "%s", where);
  }
  if (rc == SN_OK) rc = sn_graph_kv_copy(&nd->param, nparam, keys, vals);
  if (rc == SN_OK) nd->nparam = nparam;
  if (rc == SN_OK) rc = sn_graph_kv_copy(&nd->attr, nattr, attr_k, attr_v);
  if (rc == SN_OK) nd->nattr = nattr;
  /* Inputs. */
  if (rc == SN_OK && (!inputs || inputs->type != SN_JSON_ARRAY))
    rc = sn_error(SN_ERR_FORMAT, "%s has no \"inputs\" array", where);
  if (rc == SN_OK && inputs->n > 0) {
    if (!o) rc = sn_error(SN_ERR_FORMAT, "%s is a variable but has inputs", where);
    else if (inputs->n > SN_MAX_IO) rc = sn_error(SN_ERR_FORMAT, "%s has too many inputs", where);
    else {
      const char *names[SN_MAX_IO];
      int want = sn_op_inputs(o, &nd->params, names, SN_MAX_IO) + sn_op_num_aux(o);
      if ((int)inputs->n != want)
        rc = sn_error(SN_ERR_FORMAT, "%s: %s takes %d inputs (aux states included), the file gives %d",
                      where, o->name, want, (int)inputs->n);
      if (rc == SN_OK) {
        nd->in = calloc(inputs->n, sizeof *nd->in);
        if (!nd->in) rc = sn_error(SN_ERR_OOM, "out of memory");
      }
      for (size_t k = 0; rc == SN_OK && k < inputs->n; k++) {
        const sn_json *e = inputs->items[k];
        int64_t src, oi;
        if (!e || e->type != SN_JSON_ARRAY || e->n < 2 || e->n > 3 || !sn_json_int(e->items[0], &src) ||
            !sn_json_int(e->items[1], &oi)) {
          rc = sn_error(SN_ERR_FORMAT, "%s: input %d must be [node, output, version]", where, (int)k + 1);
          break;
        }
        if (src < 0 || src >= idx) {
          rc = sn_error(SN_ERR_FORMAT, "%s: input %d refers to node %lld, which is not an earlier node (a cycle or a bad index)",
                        where, (int)k + 1, (long long)src);
          break;
        }
        if (oi < 0 || oi >= nouts[src]) {
          rc = sn_error(SN_ERR_FORMAT, "%s: input %d refers to output %lld of node %lld, which has %d outputs",
                        where, (int)k + 1, (long long)oi, (long long)src, nouts[src]);
          break;
        }
        nd->in[k].node = nodes[src];
        nd->in[k].index = (int)oi;
        nodes[src]->refcount++;
        nd->nin = (int)k + 1;
      }
    }
  } else if (rc == SN_OK && o) {
    const char *names[SN_MAX_IO];
    int want = sn_op_inputs(o, &nd->params, names, SN_MAX_IO) + sn_op_num_aux(o);
    if (want != 0) rc = sn_error(SN_ERR_FORMAT, "%s: %s takes %d inputs, the file gives none", where, o->name, want);
  }
  free(ak); free(av); free(pk); free(pv); free(lk); free(lv);
  free(keys); free(vals); free(upgraded); free(attr_k); free(attr_v);
  if (rc != SN_OK) {
    if (nd) sn_graph_node_release(nd);
    return rc;
  }
  *out = nd;
  return SN_OK;
}

int sn_symbol_from_json(const char *text, size_t len, sn_symbol **out) {
  sn_json *root = NULL;
  *out = NULL;
  int rc = sn_json_parse(text, len, &root);
  if (rc != SN_OK) return sn_error_context(rc, "symbol JSON");
  const sn_json *nodes = sn_json_get(root, "nodes"), *heads = sn_json_get(root, "heads");
  if (!nodes || nodes->type != SN_JSON_ARRAY || nodes->n == 0) {
    sn_json_free(root);
    return sn_error(SN_ERR_FORMAT, "symbol JSON: no \"nodes\" array");
  }
  if (!heads || heads->type != SN_JSON_ARRAY || heads->n == 0) {
    sn_json_free(root);
    return sn_error(SN_ERR_FORMAT, "symbol JSON: no \"heads\" array");
  }
  size_t n = nodes->n;
  sn_node **built = calloc(n, sizeof *built);
  int *nouts = calloc(n, sizeof *nouts);
  if (!built || !nouts) rc = sn_error(SN_ERR_OOM, "out of memory");
  for (size_t i = 0; rc == SN_OK && i < n; i++) {
    rc = sn_json_node(nodes->items[i], (int)i, built, nouts, &built[i]);
    if (rc == SN_OK) {
      const char *tmp[SN_MAX_IO];
      nouts[i] = built[i]->op ? sn_op_outputs(built[i]->op, &built[i]->params, tmp, SN_MAX_IO) : 1;
    }
  }
  if (rc == SN_OK) rc = sn_graph_symbol_alloc((int)heads->n, out);
  for (size_t h = 0; rc == SN_OK && h < heads->n; h++) {
    const sn_json *e = heads->items[h];
    int64_t src, oi;
    if (!e || e->type != SN_JSON_ARRAY || e->n < 2 || !sn_json_int(e->items[0], &src) ||
        !sn_json_int(e->items[1], &oi) || src < 0 || (size_t)src >= n || oi < 0 || oi >= nouts[src]) {
      rc = sn_error(SN_ERR_FORMAT, "symbol JSON: head %d is not a valid [node, output] pair", (int)h + 1);
      break;
    }
    (*out)->out[h].node = built[src];
    (*out)->out[h].index = (int)oi;
    built[src]->refcount++;
  }
  for (size_t i = 0; built && i < n; i++)
    if (built[i]) sn_graph_node_release(built[i]);
  if (rc != SN_OK && *out) {
    /* heads hold references only once assigned */
    for (int h = 0; h < (*out)->n; h++) if (!(*out)->out[h].node) (*out)->n = h;
    sn_symbol_free(*out);
    *out = NULL;
  }
  free(built);
  free(nouts);
  sn_json_free(root);
  return rc;
}

/* ---- writing ---- */
static sn_json *sn_jstr(const char *s) {
  sn_json *v = sn_json_new(SN_JSON_STRING);
  if (v && sn_json_set_string(v, s) != SN_OK) {
    sn_json_free(v);
    return NULL;
  }
  return v;
}

static sn_json *sn_jnum(double x) {
  sn_json *v = sn_json_new(SN_JSON_NUMBER);
  if (v && sn_json_set_number(v, x) != SN_OK) {
    sn_json_free(v);
    return NULL;
  }
  return v;
}

static sn_json *sn_jtriple(int a, int b, int c) {
  sn_json *arr = sn_json_new(SN_JSON_ARRAY);
  if (!arr) return NULL;
  if (sn_json_append(arr, sn_jnum(a)) || sn_json_append(arr, sn_jnum(b)) || sn_json_append(arr, sn_jnum(c))) {
    sn_json_free(arr);
    return NULL;
  }
  return arr;
}

static int sn_cmp_kv(const void *a, const void *b) {
  return strcmp(((const sn_kv *)a)->key, ((const sn_kv *)b)->key);
}

#define SN_J(expr)                                           \
  do {                                                       \
    if ((expr) != SN_OK) {                                   \
      rc = sn_error(SN_ERR_OOM, "out of memory writing JSON"); \
      goto fail;                                             \
    }                                                        \
  } while (0)

int sn_symbol_to_json(const sn_symbol *sym, char **text, size_t *len) {
  sn_node **ord = NULL;
  int n = 0, rc;
  SN_TRY(sn_graph_topo(sym, &ord, &n));
  sn_json *root = sn_json_new(SN_JSON_OBJECT), *nodes = sn_json_new(SN_JSON_ARRAY);
  sn_json *args = sn_json_new(SN_JSON_ARRAY), *rows = sn_json_new(SN_JSON_ARRAY), *heads = sn_json_new(SN_JSON_ARRAY);
  int *rowp = calloc((size_t)n + 1, sizeof(int));
  rc = (root && nodes && args && rows && heads && rowp) ? SN_OK : sn_error(SN_ERR_OOM, "out of memory");
  if (rc != SN_OK) goto fail;
  for (int i = 0; i < n; i++) {
    const sn_node *nd = ord[i];
    const char *tmp[SN_MAX_IO];
    sn_json *obj = sn_json_new(SN_JSON_OBJECT);
    if (!obj) SN_J(SN_ERR_OOM);
    SN_J(sn_json_append(nodes, obj));
    SN_J(sn_json_put(obj, "op", sn_jstr(nd->op ? nd->op->name : "null")));
    SN_J(sn_json_put(obj, "name", sn_jstr(nd->name)));
    int nkv = nd->nparam + nd->nattr;
    if (nkv > 0) {
      sn_kv *all = malloc(sizeof *all * (size_t)nkv);
      sn_json *attrs = sn_json_new(SN_JSON_OBJECT);
      if (!all || !attrs) {
        free(all);
        sn_json_free(attrs);
        SN_J(SN_ERR_OOM);
      }
      memcpy(all, nd->param, sizeof *all * (size_t)nd->nparam);
      memcpy(all + nd->nparam, nd->attr, sizeof *all * (size_t)nd->nattr);
      qsort(all, (size_t)nkv, sizeof *all, sn_cmp_kv);
      for (int k = 0; k < nkv; k++)
        if (sn_json_put(attrs, all[k].key, sn_jstr(all[k].val)) != SN_OK) {
          free(all);
          sn_json_free(attrs);
          SN_J(SN_ERR_OOM);
        }
      free(all);
      SN_J(sn_json_put(obj, "attrs", attrs));
    }
    sn_json *ins = sn_json_new(SN_JSON_ARRAY);
    if (!ins) SN_J(SN_ERR_OOM);
    SN_J(sn_json_put(obj, "inputs", ins));
    for (int k = 0; k < nd->nin; k++) {
      int j = 0;
      while (j < i && ord[j] != nd->in[k].node) j++;
      SN_J(sn_json_append(ins, sn_jtriple(j, nd->in[k].index, 0)));
    }
    if (!nd->op) SN_J(sn_json_append(args, sn_jnum(i)));
    rowp[i + 1] = rowp[i] + (nd->op ? sn_op_outputs(nd->op, &nd->params, tmp, SN_MAX_IO) : 1);
  }
  for (int i = 0; i <= n; i++) SN_J(sn_json_append(rows, sn_jnum(rowp[i])));
  for (int h = 0; h < sym->n; h++) {
    int j = 0;
    while (j < n && ord[j] != sym->out[h].node) j++;
    SN_J(sn_json_append(heads, sn_jtriple(j, sym->out[h].index, 0)));
  }
  SN_J(sn_json_put(root, "nodes", nodes));
  nodes = NULL;
  SN_J(sn_json_put(root, "arg_nodes", args));
  args = NULL;
  SN_J(sn_json_put(root, "node_row_ptr", rows));
  rows = NULL;
  SN_J(sn_json_put(root, "heads", heads));
  heads = NULL;
  {
    sn_json *attrs = sn_json_new(SN_JSON_OBJECT), *ver = sn_json_new(SN_JSON_ARRAY);
    if (!attrs || !ver) {
      sn_json_free(attrs);
      sn_json_free(ver);
      SN_J(SN_ERR_OOM);
    }
    SN_J(sn_json_put(root, "attrs", attrs));
    SN_J(sn_json_put(attrs, "mxnet_version", ver));
    SN_J(sn_json_append(ver, sn_jstr("int")));
    SN_J(sn_json_append(ver, sn_jnum(SN_MXNET_VERSION)));
  }
  rc = sn_json_write(root, 2, text, len);
fail:
  sn_json_free(root);
  sn_json_free(nodes);
  sn_json_free(args);
  sn_json_free(rows);
  sn_json_free(heads);
  free(rowp);
  free(ord);
  return rc;
}
