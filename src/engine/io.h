/* Data iterators: in-memory example stores batched into fresh tensors, and
 * the readers that fill them (MNIST idx files, gzip or raw; CSV files).
 *
 * An iterator holds two fields, data and label.  Each field stores `num`
 * examples of one per-example C shape, contiguously (example i at
 * i * row elements), as float32 or as uint8 scaled to float32 on the way
 * out (MNIST pixels), or borrowed as float64 / int32 values that stay in
 * the caller's memory and are converted per batch (R arrays: no copy of
 * the whole data set when an iterator is made).  A batch is a gather: position p of the batch takes
 * example order[k] for some k, so shuffling is a permutation and batching
 * never copies the store.  Batches come out as fresh float32 CPU tensors
 * of C shape (batch, per-example shape...), so a caller may keep them.
 *
 * The last partial batch of a pass is filled one of three ways (all kept
 * from MXNet, see io.c):
 *   SN_IO_PAD_STALE  the R arrayiter's quirk: positions past the data hold
 *                    the rows of the previous batch at those positions
 *                    (zeros when there is no previous batch);
 *   SN_IO_PAD_WRAP   round_batch: wrap around to the start of the order;
 *   SN_IO_PAD_DROP   MNISTIter: the partial batch is not produced.
 * num_pad is the number of filled positions of the current batch (0 for
 * full batches and for DROP).
 *
 * Readers validate every size against the file before allocating: a
 * malformed, truncated or oversized file is an SN_ERR_FORMAT / SN_ERR_IO
 * error naming the file and the problem, never a crash. */
#ifndef SN_IO_H
#define SN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

typedef enum { SN_IO_PAD_STALE = 0, SN_IO_PAD_WRAP = 1, SN_IO_PAD_DROP = 2 } sn_io_pad;

/* One stored field.  base/bytes is the allocation (sn_host_alloc), ptr
 * the first example inside it (an idx file's payload follows its
 * header).  dtype is SN_F32 or SN_U8; u8 values are multiplied by scale.
 * A borrowed field (sn_io_field_borrow) has base NULL and points into
 * memory its owner keeps alive and unchanged while the iterator lives;
 * its dtype is SN_F64 or SN_I32, and an int32 INT32_MIN (a missing value,
 * R's NA) reads as NaN. */
typedef struct {
  void *base;
  size_t bytes;
  const void *ptr;
  sn_dtype dtype;
  float scale;
  sn_shape shape; /* per-example C shape; ndim 0 for a scalar per example */
  int64_t row;    /* elements per example (product of shape, 1 for ndim 0) */
} sn_io_field;

typedef struct sn_io_iter sn_io_iter;

/* ---- fields ---- */
/* Allocates a float32 field of num examples of shape (uninitialised). */
int sn_io_field_alloc(sn_io_field *f, const sn_shape *shape, int64_t num);
void sn_io_field_free(sn_io_field *f);
/* A field over num examples of shape at ptr (SN_F64 or SN_I32), not
 * copied: see sn_io_field above. */
int sn_io_field_borrow(sn_io_field *f, const sn_shape *shape, int64_t num, sn_dtype dtype,
                       const void *ptr);

/* ---- iterators ---- */
/* Takes ownership of both fields on success (they are cleared); on failure
 * the caller still owns them.  Both must hold num examples. */
int sn_io_iter_new(sn_io_field *data, sn_io_field *label, int64_t num, int64_t batch_size,
                   sn_io_pad pad, sn_io_iter **out);
void sn_io_iter_free(sn_io_iter *it);
/* Sets the visiting order: perm holds each of 0..num-1 exactly once. */
int sn_io_iter_set_order(sn_io_iter *it, const int64_t *perm, int64_t n);
/* Shuffles the current order with a generator seeded by seed (the same
 * seed gives the same order on every platform). */
int sn_io_iter_shuffle(sn_io_iter *it, uint64_t seed);
void sn_io_iter_reset(sn_io_iter *it);
/* Moves to the next batch; *has is 0 at the end of the pass. */
int sn_io_iter_next(sn_io_iter *it, int *has);
/* The current batch as fresh float32 CPU tensors (the caller releases
 * them).  SN_ERR_ARG before the first next() or after the end. */
int sn_io_iter_value(const sn_io_iter *it, sn_tensor *data, sn_tensor *label);
/* Writes the current batch into existing tensors of the same sizes (any
 * dtype or device: float32 CPU tensors are gathered into directly, others
 * through a temporary and sn_tensor_copy).  label may be NULL. */
int sn_io_iter_value_into(const sn_io_iter *it, sn_tensor *data, sn_tensor *label);
int64_t sn_io_iter_num_pad(const sn_io_iter *it);
int64_t sn_io_iter_num(const sn_io_iter *it);
int64_t sn_io_iter_batch_size(const sn_io_iter *it);
/* Batches per pass. */
int64_t sn_io_iter_num_batches(const sn_io_iter *it);
/* Shapes of a batch (C order, batch first). */
void sn_io_iter_batch_shapes(const sn_io_iter *it, sn_shape *data, sn_shape *label);
/* Flattens a label of per-example shape (1,) to a scalar per example, so
 * a batch label is (batch) instead of (batch, 1), as MXNet's C API does. */
void sn_io_iter_squeeze_label(sn_io_iter *it);

/* ---- idx files (MNIST) ----
 * An idx file: 2 zero bytes, type byte (0x08 = uint8), ndim byte, ndim
 * big-endian uint32 sizes, then the values.  Images: magic 2051 (ndim 3),
 * labels: magic 2049 (ndim 1).  The file may be gzip-compressed (detected
 * from its first bytes) when the package was built with zlib. */
typedef struct {
  sn_io_field field; /* uint8, shape = dims[1..], num = dims[0] */
  int64_t num;
} sn_idx;

/* expect_ndim: 3 for images, 1 for labels.  what names the file in
 * messages ("image", "label"). */
int sn_idx_read(const char *path, int expect_ndim, const char *what, sn_idx *out);
int sn_idx_read_mem(const void *buf, size_t len, int expect_ndim, const char *what, sn_idx *out);

/* MNISTIter: images scaled by 1/256 (as MXNet), labels as float.
 * flat: data (batch, rows*cols), else (batch, 1, rows, cols).  shuffle
 * permutes once with seed.  num_parts/part_index keep a contiguous part
 * (as MXNet: [n*k/parts, n*(k+1)/parts)).  pad: SN_IO_PAD_DROP as MXNet,
 * or SN_IO_PAD_WRAP.  If info is not NULL it receives a one-line summary. */
int sn_io_mnist_open(const char *image, const char *label, int64_t batch_size, int flat,
                     int shuffle, uint64_t seed, int num_parts, int part_index, sn_io_pad pad,
                     sn_io_iter **out, char *info, size_t info_len);

/* ---- CSV files ----
 * Numbers separated by commas, one example per line; blank lines are
 * skipped, \r\n is accepted.  Every field must be a number (strtod) and
 * every line must hold exactly the product of shape values. */
int sn_csv_read(const char *path, const sn_shape *shape, const char *what, sn_io_field *out,
                int64_t *num);
int sn_csv_read_mem(const char *buf, size_t len, const sn_shape *shape, const char *what,
                    sn_io_field *out, int64_t *num);

/* CSVIter: label_csv NULL gives zero labels of label_shape. */
int sn_io_csv_open(const char *data_csv, const sn_shape *data_shape, const char *label_csv,
                   const sn_shape *label_shape, int64_t batch_size, sn_io_pad pad, sn_io_iter **out);

/* 1 when gzip-compressed files can be read (built with zlib). */
int sn_io_have_zlib(void);

#endif
