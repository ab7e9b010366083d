/* Symbolic graphs.
 *
 * A graph is a DAG of refcounted nodes, nnvm style: a node is an op with
 * parsed parameters and a list of input entries (node, output index); a
 * variable is a node with no op.  A symbol is a list of entries (its
 * outputs) and holds a reference on each of their nodes, so composing
 * symbols shares subgraphs instead of copying them.  An op node's inputs
 * are its op inputs followed by its aux states (BatchNorm: data, gamma,
 * beta, moving_mean, moving_var), as in MXNet's JSON.
 *
 * Names follow MXNet: automatic node names are the lower-cased op name and
 * a counter (fullyconnected0), missing inputs become variables named
 * <node>_<input> (fc1_weight, bn1_moving_mean), outputs are listed as
 * <node>_<output> (fc1_output). */
#ifndef SN_GRAPH_H
#define SN_GRAPH_H

#include "op.h"

typedef struct sn_node sn_node;

typedef struct {
  sn_node *node;
  int index;
} sn_entry;

typedef struct {
  char *key;
  char *val;
} sn_kv;

struct sn_node {
  int refcount;
  const sn_op *op; /* NULL: variable */
  char *name;
  sn_params params;
  int nparam; /* op parameters as given (strings), kept for JSON */
  sn_kv *param;
  int nattr; /* attributes: __shape__, __lr_mult__, __init__, ... */
  sn_kv *attr;
  int nin;
  sn_entry *in;
};

typedef struct {
  int n;
  sn_entry *out;
} sn_symbol;

/* ---- construction ---- */
int sn_symbol_variable(const char *name, sn_symbol **out);
/* An op node.  Inputs: n_in symbols (each must have one output), named by
 * in_names (NULL or NULL entries: positional, in the op's input order).
 * Missing inputs (and aux states) become new variables named
 * <name>_<input>.  name NULL: automatic.  Params as strings. */
int sn_symbol_create(const sn_op *op, const char *name, int nparam, const char *const *keys,
                     const char *const *vals, int n_in, const char *const *in_names,
                     sn_symbol *const *inputs, sn_symbol **out);
int sn_symbol_group(int n, sn_symbol *const *syms, sn_symbol **out);
/* Copy of the graph with variables replaced by name (mx.apply). */
int sn_symbol_compose(const sn_symbol *sym, int n, const char *const *names,
                      sn_symbol *const *syms, sn_symbol **out);
int sn_symbol_copy(const sn_symbol *sym, sn_symbol **out); /* shares nodes */
void sn_symbol_free(sn_symbol *sym);

/* ---- queries (name arrays are malloc'd; strings point into nodes unless
 * stated, so free only the array) ---- */
int sn_symbol_get_output(const sn_symbol *sym, int i, sn_symbol **out);
int sn_symbol_internals(const sn_symbol *sym, sn_symbol **out);
int sn_symbol_children(const sn_symbol *sym, sn_symbol **out); /* NULL *out when none */
int sn_symbol_arguments(const sn_symbol *sym, const char ***names, int *n);
int sn_symbol_aux_states(const sn_symbol *sym, const char ***names, int *n);
/* Output names, each malloc'd: free with sn_free_strings. */
int sn_symbol_outputs(const sn_symbol *sym, char ***names, int *n);
void sn_free_strings(char **s, int n);
/* The attributes of the symbol's single node (NULL kv when none). */
int sn_symbol_attr_get(const sn_symbol *sym, const sn_kv **kv, int *n);
int sn_symbol_attr_set(sn_symbol *sym, const char *key, const char *val);
/* Attributes of every node, "node$key" style keys (list_attr recursive). */

/* ---- topological order ----
 * Nodes reachable from the outputs, inputs before users (iterative DFS,
 * inputs visited in order, as MXNet does). */
int sn_graph_topo(const sn_symbol *sym, sn_node ***order, int *n);

/* ---- JSON (MXNet's symbol format) ---- */
int sn_symbol_from_json(const char *text, size_t len, sn_symbol **out);
int sn_symbol_to_json(const sn_symbol *sym, char **text, size_t *len);

/* ---- shape and dtype inference ----
 * Known shapes of variables by name (C order; 0 dims unknown).  Results per
 * argument, output and aux state in list order.  *complete is 0 when some
 * shape stayed unknown (then the arrays hold what is known). */
typedef struct {
  int narg, nout, naux;
  sn_shape *arg, *out, *aux;
  sn_dtype *arg_type, *out_type, *aux_type;
  int complete;
} sn_infer_result;
int sn_symbol_infer(const sn_symbol *sym, int n, const char *const *names,
                    const sn_shape *shapes, const sn_dtype *types, sn_infer_result *res);
void sn_infer_result_free(sn_infer_result *res);

/* Automatic names: a counter per hint, reset by sn_name_reset(). */
void sn_name_reset(void);

#endif
