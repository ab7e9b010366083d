/* Executors: a symbol bound to arrays on one device.
 *
 * Binding builds one step list: the forward nodes in topological order,
 * then the backward nodes made from each op's gradient kernel (with sums
 * where an entry feeds several consumers), then plans memory over that
 * whole timeline: an entry lives from the step that writes it to the last
 * step that reads it; in-place reuse where an op allows it and its input
 * dies there; otherwise best-fit reuse of freed blocks.  All planned
 * entries live in one arena per executor.  SYMNET_PLAN_MEMORY=0 (or
 * plan_memory = 0) gives every entry its own block, for bisecting. */
#ifndef SN_EXEC_H
#define SN_EXEC_H

#include "graph.h"

typedef struct sn_executor sn_executor;

typedef struct {
  sn_device dev;
  int narg;
  sn_tensor *const *args;  /* per argument, list order */
  sn_tensor *const *grads; /* per argument; NULL entries for req null */
  const int *grad_req;     /* SN_REQ_NULL / WRITE / ADD per argument */
  int naux;
  sn_tensor *const *aux;
  int plan_memory; /* 1: plan + in-place (default), 0: one block per entry */
  int dry_run;     /* plan only: no arena, cannot run */
  int cuda_graphs; /* GPU: capture each pass as a CUDA graph and replay it */
} sn_bind_spec;

typedef struct {
  size_t planned_bytes; /* arena size */
  size_t naive_bytes;   /* one block per planned entry */
  size_t workspace_bytes;
  int nentries, nsteps, ninplace;
} sn_mem_stats;

int sn_executor_bind(const sn_symbol *sym, const sn_bind_spec *spec, sn_executor **out);
int sn_executor_forward(sn_executor *ex, int is_train);
/* head_grads: one per output, NULL entries (or n == 0) mean ones. */
int sn_executor_backward(sn_executor *ex, int n, sn_tensor *const *head_grads);
int sn_executor_num_outputs(const sn_executor *ex);
/* A view of output i (caller releases). */
int sn_executor_output(const sn_executor *ex, int i, sn_tensor *out);
void sn_executor_stats(const sn_executor *ex, sn_mem_stats *st);
void sn_executor_free(sn_executor *ex);

#endif
