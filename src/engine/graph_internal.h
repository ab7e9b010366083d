/* Node-level helpers shared by graph.c and symbol_json.c only. */
#ifndef SN_GRAPH_INTERNAL_H
#define SN_GRAPH_INTERNAL_H

#include "graph.h"

char *sn_graph_strdup(const char *s);
int sn_graph_kv_copy(sn_kv **dst, int n, const char *const *keys, const char *const *vals);
sn_node *sn_graph_node_new(const char *name); /* refcount 1 */
void sn_graph_node_release(sn_node *n);
int sn_graph_symbol_alloc(int n, sn_symbol **out);

#endif
