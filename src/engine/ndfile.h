/* MXNet's NDArray file format (`mx.nd.save` / `mx.nd.load`, `.params`
 * checkpoints), read and written by the engine.
 *
 * Layout (little-endian): uint64 0x112, uint64 reserved, uint64 count,
 * count records, uint64 nnames (0 or count), nnames x (uint64 len + bytes).
 * Records are written as MXNet 1.x writes them (magic 0xF993FAC9, dense,
 * cpu(0)); the older and newer record versions MXNet ever wrote are read
 * too.  See ndfile.c for the record layouts and the checks made.
 *
 * A record MXNet saved for a "none" NDArray loads as a tensor with no
 * storage (st == NULL), ndim 0, dtype SN_F32; saving such a tensor writes a
 * "none" record again.  A 0-d tensor with storage (a scalar) is written as a
 * numpy-shape (0xF993FACA) record, the only form that can hold it. */
#ifndef SN_NDFILE_H
#define SN_NDFILE_H

#include <stddef.h>

#include "tensor.h"

typedef struct { int n; sn_tensor *arrays; char **names; /* names NULL when the file has none */ } sn_ndlist;

int sn_ndfile_load(const char *path, sn_ndlist *out);          /* CPU tensors */
int sn_ndfile_load_mem(const void *buf, size_t len, sn_ndlist *out);
int sn_ndfile_save(const char *path, int n, const sn_tensor *const *arrays, const char *const *names /* may be NULL */);
int sn_ndfile_save_mem(int n, const sn_tensor *const *arrays, const char *const *names, void **buf, size_t *len); /* buf from malloc, caller frees */
void sn_ndlist_free(sn_ndlist *l);

#endif
