/* The indexed form of a graph that passes work on: nodes in topological
 * order and every output of every node numbered as an entry. */
#ifndef SN_IGRAPH_H
#define SN_IGRAPH_H

#include "graph.h"

typedef struct {
  int nnodes;
  sn_node **node;  /* topological order */
  int *out_ptr;    /* node i owns entries out_ptr[i] .. out_ptr[i+1]-1 (hidden outputs too) */
  int *nvis;       /* visible outputs per node */
  int nentries;
  int *in_ptr;     /* node i reads entries in_entry[in_ptr[i] .. in_ptr[i+1]-1] */
  int *in_entry;
  int *nin_op;     /* op inputs per node (the rest are aux) */
  int nheads;
  int *head;       /* entry ids of the symbol's outputs */
  int narg, naux;
  int *arg_node;   /* node ids of arguments, in list order */
  int *aux_node;   /* node ids of aux states, in list order */
} sn_igraph;

int sn_igraph_build(const sn_symbol *sym, sn_igraph *g);
void sn_igraph_free(sn_igraph *g);
/* Runs shape and dtype inference over entries (arrays of g->nentries,
 * pre-filled with what is known).  Returns an error naming the node, its
 * op and the argument when shapes or dtypes disagree. */
int sn_igraph_infer(const sn_igraph *g, sn_shape *shape, sn_dtype *type);

#endif
