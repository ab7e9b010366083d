/* Shape ops: Reshape, Flatten, transpose, SwapAxis, expand_dims, squeeze,
 * broadcast_to, broadcast_axis, tile and repeat (MXNet 1.x names, params
 * and semantics).
 *
 * Reshape keeps MXNet's special codes in `shape`: 0 copies the input dim,
 * -1 infers one dim, -2 copies all remaining dims, -3 merges two input dims,
 * -4 splits one input dim into the two values that follow (one may be -1);
 * reverse=True matches the codes from the right (MXNet simply reverses both
 * lists, so -4 keeps its MXNet quirk of needing its two values before it).
 * The legacy target_shape (0 = infer one dim) and keep_highest are kept.
 * Flatten of a 1-D (N) input gives (N, 1) like MXNet.  squeeze of an all-ones
 * shape gives (1).  tile pads the shorter of reps / shape with leading 1s.
 * repeat with axis=None flattens first.
 *
 * Reshape, Flatten, expand_dims and squeeze are pure views: forward is a
 * copy (skipped when the executor aliases output and input), backward copies
 * the output gradient.  The other ops are strided copies, and their
 * backwards are strided sums (broadcast_to, broadcast_axis, tile, repeat).
 *
 * This file also holds the strided copy / accumulate engine shared by the
 * concat_split, slice and pad_upsample families (sn_ops_strided_copy,
 * sn_ops_strided_add): dims of size 1 are dropped and adjacent dims merged
 * when their strides allow, contiguous inner runs are memcpy'd, a transpose
 * (destination contiguous, source contiguous along another dim) goes through
 * 32x32 tiles, and the outer loop is split across OpenMP threads. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu.h"
#include "../error.h"
#include "../op.h"
#include "../tensor.h"

/* ======================================================================
 * Strided copy / accumulate engine (exported for the other shape-like
 * families; declared again in concat_split.c, slice.c, pad_upsample.c).
 * ====================================================================== */

#define SD_MAX 20 /* tile and repeat split dims: 2 * SN_MAX_DIMS + 1 */
#define SD_TILE 32

void sn_ops_strides(const sn_shape *s, int64_t *st);
void sn_ops_strided_copy(int nd, const int64_t *n, const int64_t *ss, const int64_t *ds,
                         const void *src, void *dst, size_t elsize);
int sn_ops_strided_add(sn_dtype dt, int nd, const int64_t *n, const int64_t *ss,
                       const int64_t *ds, const void *src, void *dst);
void sn_ops_copy_bytes(void *dst, const void *src, size_t bytes);
void sn_ops_zero(sn_tensor *t);

/* C-contiguous strides (in elements) of a shape. */
void sn_ops_strides(const sn_shape *s, int64_t *st) {
  int64_t acc = 1;
  for (int i = s->ndim - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s->dim[i];
  }
}

static int sd_threads(int64_t work) {
#ifdef _OPENMP
  if (work < SN_PAR_GRAIN)
    return 1;
  int t = sn_num_threads();
  return t < 1 ? 1 : t;
#else
  (void)work;
  return 1;
#endif
}

/* Drops size-1 dims and merges adjacent dims whose strides chain.
 * Returns the new dim count (>= 1); a zero-size iteration keeps a 0 dim. */
static int sd_collapse(int nd, int64_t *n, int64_t *ss, int64_t *ds) {
  int k = 0;
  for (int i = 0; i < nd; i++) {
    if (n[i] == 0) {
      n[0] = 0;
      ss[0] = ds[0] = 1;
      return 1;
    }
    if (n[i] != 1) {
      n[k] = n[i];
      ss[k] = ss[i];
      ds[k] = ds[i];
      k++;
    }
  }
  if (k == 0) {
    n[0] = 1;
    ss[0] = ds[0] = 1;
    return 1;
  }
  int m = 0;
  for (int i = 1; i < k; i++) {
    if (ss[m] == n[i] * ss[i] && ds[m] == n[i] * ds[i]) {
      n[m] *= n[i];
      ss[m] = ss[i];
      ds[m] = ds[i];
    } else {
      m++;
      n[m] = n[i];
      ss[m] = ss[i];
      ds[m] = ds[i];
    }
  }
  return m + 1;
}

static inline int64_t sd_abs(int64_t x) { return x < 0 ? -x : x; }

/* Copies one row of `len` elements with strides s (source), d (dest). */
static inline void sd_copy_row(char *dst, const char *src, int64_t len, int64_t s, int64_t d,
                               size_t es) {
  if (s == 1 && d == 1) {
    memcpy(dst, src, (size_t)len * es);
    return;
  }
  switch (es) {
  case 1:
    for (int64_t j = 0; j < len; j++)
      ((uint8_t *)dst)[j * d] = ((const uint8_t *)src)[j * s];
    break;
  case 2:
    for (int64_t j = 0; j < len; j++)
      ((uint16_t *)dst)[j * d] = ((const uint16_t *)src)[j * s];
    break;
  case 4:
    for (int64_t j = 0; j < len; j++)
      ((uint32_t *)dst)[j * d] = ((const uint32_t *)src)[j * s];
    break;
  case 8:
    for (int64_t j = 0; j < len; j++)
      ((uint64_t *)dst)[j * d] = ((const uint64_t *)src)[j * s];
    break;
  default:
    for (int64_t j = 0; j < len; j++)
      memcpy(dst + (size_t)(j * d) * es, src + (size_t)(j * s) * es, es);
  }
}

/* 2-D tile transpose: dst[i * di + j] = src[i + j * sj] (element units). */
static void sd_copy_tile(char *dst, const char *src, int64_t ni, int64_t nj, int64_t di,
                         int64_t sj, size_t es) {
#define SD_TILE_LOOP(T)                                                               \
  do {                                                                                \
    T *d_ = (T *)dst;                                                                 \
    const T *s_ = (const T *)src;                                                     \
    for (int64_t j0 = 0; j0 < nj; j0 += SD_TILE) {                                    \
      int64_t j1 = j0 + SD_TILE < nj ? j0 + SD_TILE : nj;                             \
      for (int64_t i = 0; i < ni; i++)                                                \
        for (int64_t j = j0; j < j1; j++)                                             \
          d_[i * di + j] = s_[i + j * sj];                                            \
    }                                                                                 \
  } while (0)
  switch (es) {
  case 1: SD_TILE_LOOP(uint8_t); break;
  case 2: SD_TILE_LOOP(uint16_t); break;
  case 4: SD_TILE_LOOP(uint32_t); break;
  case 8: SD_TILE_LOOP(uint64_t); break;
  default:
    for (int64_t i = 0; i < ni; i++)
      for (int64_t j = 0; j < nj; j++)
        memcpy(dst + (size_t)(i * di + j) * es, src + (size_t)(i + j * sj) * es, es);
  }
#undef SD_TILE_LOOP
}

/* Decodes a linear row index over dims [0, nd) into offsets. */
static inline void sd_decode(int64_t r, int nd, const int64_t *n, const int64_t *ss,
                             const int64_t *ds, int64_t *idx, int64_t *so, int64_t *dof) {
  *so = 0;
  *dof = 0;
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = r % n[d];
    r /= n[d];
    *so += idx[d] * ss[d];
    *dof += idx[d] * ds[d];
  }
}

static inline void sd_next(int nd, const int64_t *n, const int64_t *ss, const int64_t *ds,
                           int64_t *idx, int64_t *so, int64_t *dof) {
  for (int d = nd - 1; d >= 0; d--) {
    idx[d]++;
    *so += ss[d];
    *dof += ds[d];
    if (idx[d] < n[d])
      return;
    *so -= n[d] * ss[d];
    *dof -= n[d] * ds[d];
    idx[d] = 0;
  }
}

/* dst[sum_i k_i ds_i] = src[sum_i k_i ss_i] for all k < n.  Strides are in
 * elements and may be negative or zero on the source side; the destination
 * positions must be distinct. */
void sn_ops_strided_copy(int nd, const int64_t *n_in, const int64_t *ss_in,
                         const int64_t *ds_in, const void *src, void *dst, size_t es) {
  int64_t n[SD_MAX], ss[SD_MAX], ds[SD_MAX];
  if (nd <= 0) {
    memcpy(dst, src, es);
    return;
  }
  if (nd > SD_MAX)
    nd = SD_MAX; /* callers never exceed it */
  memcpy(n, n_in, sizeof(int64_t) * (size_t)nd);
  memcpy(ss, ss_in, sizeof(int64_t) * (size_t)nd);
  memcpy(ds, ds_in, sizeof(int64_t) * (size_t)nd);
  nd = sd_collapse(nd, n, ss, ds);
  if (n[0] == 0)
    return;
  /* Loop in destination order: sort dims by |ds| descending (insertion
   * sort, stable), then merge again. */
  for (int i = 1; i < nd; i++) {
    int64_t tn = n[i], ts = ss[i], td = ds[i];
    int j = i - 1;
    while (j >= 0 && sd_abs(ds[j]) < sd_abs(td)) {
      n[j + 1] = n[j];
      ss[j + 1] = ss[j];
      ds[j + 1] = ds[j];
      j--;
    }
    n[j + 1] = tn;
    ss[j + 1] = ts;
    ds[j + 1] = td;
  }
  nd = sd_collapse(nd, n, ss, ds);
  const char *s0 = (const char *)src;
  char *d0 = (char *)dst;
  int64_t total = 1;
  for (int i = 0; i < nd; i++)
    total *= n[i];

  /* Transpose: destination contiguous in the last dim, source contiguous
   * along another dim q: move q next to last and copy in tiles. */
  int q = -1;
  if (nd >= 2 && ds[nd - 1] == 1 && ss[nd - 1] != 1 && n[nd - 1] >= 4) {
    for (int i = nd - 2; i >= 0; i--)
      if (ss[i] == 1 && n[i] >= 4) {
        q = i;
        break;
      }
  }
  if (q >= 0) {
    int64_t t;
    t = n[q]; n[q] = n[nd - 2]; n[nd - 2] = t;
    t = ss[q]; ss[q] = ss[nd - 2]; ss[nd - 2] = t;
    t = ds[q]; ds[q] = ds[nd - 2]; ds[nd - 2] = t;
    int no = nd - 2; /* outer dims */
    int64_t outer = 1;
    for (int i = 0; i < no; i++)
      outer *= n[i];
    int64_t ni = n[nd - 2], nj = n[nd - 1];
    int64_t nti = (ni + SD_TILE - 1) / SD_TILE;
    int64_t units = outer * nti;
    int nt = sd_threads(total);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
#endif
    for (int64_t u = 0; u < units; u++) {
      int64_t idx[SD_MAX], so, dof;
      int64_t o = u / nti, ti = u % nti;
      sd_decode(o, no, n, ss, ds, idx, &so, &dof);
      int64_t i0 = ti * SD_TILE, i1 = i0 + SD_TILE < ni ? i0 + SD_TILE : ni;
      so += i0 * ss[nd - 2];
      dof += i0 * ds[nd - 2];
      sd_copy_tile(d0 + dof * (int64_t)es, s0 + so * (int64_t)es, i1 - i0, nj, ds[nd - 2],
                   ss[nd - 1], es);
    }
    (void)nt;
    return;
  }

  /* General: rows over the outer dims, inner dim copied per row. */
  int no = nd - 1;
  int64_t rows = total / n[nd - 1], len = n[nd - 1];
  int nt = sd_threads(total);
  int64_t nchunk = nt > 1 ? (rows < nt ? rows : nt) : 1;
  if (nd == 2 && len < 16 && (es == 4 || es == 8)) {
    /* short rows (repeat, broadcast of a small last dim): one typed loop */
    int64_t s0s = ss[0], s1s = ss[1], d0s = ds[0], d1s = ds[1];
#define SD_SHORT(T)                                                                      \
  do {                                                                                   \
    const T *sp = (const T *)src;                                                        \
    T *dp = (T *)dst;                                                                    \
    SN_PRAGMA(omp parallel for schedule(static) num_threads(nt) if (nt > 1))             \
    for (int64_t r = 0; r < rows; r++)                                                   \
      for (int64_t j = 0; j < len; j++)                                                  \
        dp[r * d0s + j * d1s] = sp[r * s0s + j * s1s];                                   \
  } while (0)
    if (es == 4)
      SD_SHORT(uint32_t);
    else
      SD_SHORT(uint64_t);
#undef SD_SHORT
    return;
  }
  if (nchunk == 1 && rows == 1 && nt > 1 && ss[0] == 1 && ds[0] == 1) {
    /* one long contiguous run: split it */
    int64_t parts = nt;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t c = 0; c < parts; c++) {
      int64_t a = len * c / parts, b = len * (c + 1) / parts;
      memcpy(d0 + a * (int64_t)es, s0 + a * (int64_t)es, (size_t)(b - a) * es);
    }
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (nchunk > 1)
#endif
  for (int64_t c = 0; c < nchunk; c++) {
    int64_t r0 = rows * c / nchunk, r1 = rows * (c + 1) / nchunk;
    int64_t idx[SD_MAX], so, dof;
    sd_decode(r0, no, n, ss, ds, idx, &so, &dof);
    for (int64_t r = r0; r < r1; r++) {
      sd_copy_row(d0 + dof * (int64_t)es, s0 + so * (int64_t)es, len, ss[nd - 1], ds[nd - 1],
                  es);
      sd_next(no, n, ss, ds, idx, &so, &dof);
    }
  }
}

/* dst += src over the index space; the destination may have zero strides
 * (a reduction).  Threads split the outermost dim whose destination stride
 * is nonzero, so no two threads write one element. */
#define SD_DEFINE_ADD(T, SUF)                                                             \
  static void sd_add_serial_##SUF(int nd, const int64_t *n, const int64_t *ss,           \
                                  const int64_t *ds, const T *src, T *dst) {             \
    int no = nd - 1;                                                                      \
    int64_t rows = 1;                                                                     \
    for (int i = 0; i < no; i++)                                                          \
      rows *= n[i];                                                                       \
    int64_t len = n[nd - 1], sl = ss[nd - 1], dl = ds[nd - 1];                            \
    int64_t idx[SD_MAX] = {0}, so = 0, dof = 0;                                           \
    for (int64_t r = 0; r < rows; r++) {                                                  \
      const T *s_ = src + so;                                                             \
      T *d_ = dst + dof;                                                                  \
      if (dl == 0) {                                                                      \
        T acc = 0;                                                                        \
        if (sl == 1)                                                                      \
          for (int64_t j = 0; j < len; j++)                                               \
            acc += s_[j];                                                                 \
        else                                                                              \
          for (int64_t j = 0; j < len; j++)                                               \
            acc += s_[j * sl];                                                            \
        d_[0] += acc;                                                                     \
      } else if (dl == 1 && sl == 1) {                                                    \
        for (int64_t j = 0; j < len; j++)                                                 \
          d_[j] += s_[j];                                                                 \
      } else {                                                                            \
        for (int64_t j = 0; j < len; j++)                                                 \
          d_[j * dl] += s_[j * sl];                                                       \
      }                                                                                   \
      sd_next(no, n, ss, ds, idx, &so, &dof);                                             \
    }                                                                                     \
  }                                                                                       \
  static void sd_add_##SUF(int nd, int64_t *n, int64_t *ss, int64_t *ds, const T *src,   \
                           T *dst) {                                                      \
    int64_t total = 1;                                                                    \
    for (int i = 0; i < nd; i++)                                                          \
      total *= n[i];                                                                      \
    int p = -1;                                                                           \
    for (int i = 0; i < nd; i++)                                                          \
      if (ds[i] != 0) {                                                                   \
        p = i;                                                                            \
        break;                                                                            \
      }                                                                                   \
    int nt = sd_threads(total);                                                           \
    if (p < 0 || nt <= 1 || n[p] < 2) {                                                   \
      sd_add_serial_##SUF(nd, n, ss, ds, src, dst);                                       \
      return;                                                                             \
    }                                                                                     \
    int64_t np = n[p], nchunk = np < nt ? np : nt;                                        \
    SN_PRAGMA(omp parallel for schedule(static) num_threads(nt))                          \
    for (int64_t c = 0; c < nchunk; c++) {                                                \
      int64_t a = np * c / nchunk, b = np * (c + 1) / nchunk;                             \
      int64_t nn[SD_MAX];                                                                 \
      memcpy(nn, n, sizeof(int64_t) * (size_t)nd);                                        \
      nn[p] = b - a;                                                                      \
      sd_add_serial_##SUF(nd, nn, ss, ds, src + a * ss[p], dst + a * ds[p]);              \
    }                                                                                     \
  }

SD_DEFINE_ADD(float, f32)
SD_DEFINE_ADD(double, f64)

int sn_ops_strided_add(sn_dtype dt, int nd, const int64_t *n_in, const int64_t *ss_in,
                       const int64_t *ds_in, const void *src, void *dst) {
  int64_t n[SD_MAX], ss[SD_MAX], ds[SD_MAX];
  if (nd <= 0) {
    n[0] = 1;
    ss[0] = ds[0] = 1;
    nd = 1;
  } else {
    if (nd > SD_MAX)
      nd = SD_MAX;
    memcpy(n, n_in, sizeof(int64_t) * (size_t)nd);
    memcpy(ss, ss_in, sizeof(int64_t) * (size_t)nd);
    memcpy(ds, ds_in, sizeof(int64_t) * (size_t)nd);
  }
  nd = sd_collapse(nd, n, ss, ds);
  if (n[0] == 0)
    return SN_OK;
  switch (dt) {
  case SN_F32:
    sd_add_f32(nd, n, ss, ds, (const float *)src, (float *)dst);
    break;
  case SN_F64:
    sd_add_f64(nd, n, ss, ds, (const double *)src, (double *)dst);
    break;
  default:
    return sn_error(SN_ERR_TYPE, "gradient of dtype %s is not supported", sn_dtype_name(dt));
  }
  return SN_OK;
}

/* memcpy split across threads; a no-op when dst == src (aliased view). */
void sn_ops_copy_bytes(void *dst, const void *src, size_t bytes) {
  if (dst == src || bytes == 0)
    return;
  int nt = sd_threads((int64_t)(bytes / 4));
  if (nt <= 1) {
    memcpy(dst, src, bytes);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
  for (int c = 0; c < nt; c++) {
    size_t a = bytes / (size_t)nt * (size_t)c;
    size_t b = c == nt - 1 ? bytes : bytes / (size_t)nt * (size_t)(c + 1);
    memcpy((char *)dst + a, (const char *)src + a, b - a);
  }
}

void sn_ops_zero(sn_tensor *t) {
  size_t b = sn_tensor_bytes(t);
  if (b)
    memset(sn_tensor_data(t), 0, b);
}

/* ======================================================================
 * Shared helpers of this file
 * ====================================================================== */

/* Tuple text of a parameter (may hold negative codes). */
static const char *tup_str(const sn_shape *s, char *buf, size_t n) {
  size_t k = 0;
  if (n == 0)
    return buf;
  buf[0] = '\0';
  k += (size_t)snprintf(buf + k, n - k, "(");
  for (int i = 0; i < s->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)s->dim[i]);
  if (k < n)
    k += (size_t)snprintf(buf + k, n - k, s->ndim == 1 ? ",)" : ")");
  return buf;
}

static const char *shp(const sn_shape *s, char *buf, size_t n) {
  return sn_shape_str(s, buf, n);
}

/* Merges a shape whose unknown dims are 0 into *slot (dim by dim). */
static int merge_shape(sn_shape *slot, const sn_shape *val, const char *op, const char *what) {
  char a[128], b[128];
  if (val->ndim < 0)
    return SN_OK;
  if (slot->ndim < 0) {
    *slot = *val;
    return SN_OK;
  }
  if (slot->ndim != val->ndim)
    return sn_error(SN_ERR_SHAPE, "%s: %s has shape %s, expected %s", op, what,
                    shp(slot, a, sizeof a), shp(val, b, sizeof b));
  for (int i = 0; i < val->ndim; i++) {
    if (val->dim[i] == 0)
      continue;
    if (slot->dim[i] != 0 && slot->dim[i] != val->dim[i])
      return sn_error(SN_ERR_SHAPE, "%s: %s has shape %s, expected %s", op, what,
                      shp(slot, a, sizeof a), shp(val, b, sizeof b));
  }
  for (int i = 0; i < val->ndim; i++)
    if (val->dim[i] != 0)
      slot->dim[i] = val->dim[i];
  return SN_OK;
}

static int norm_axis(int64_t axis, int ndim, const char *op, const char *pname, int *out) {
  *out = 0;
  int64_t a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim)
    return sn_error(SN_ERR_ARG, "%s: %s=%lld is out of range for a %d-D input", op, pname,
                    (long long)axis, ndim);
  *out = (int)a;
  return SN_OK;
}

/* Product of the dims; -1 when it does not fit in int64. */
static int64_t shape_prod(const sn_shape *s) {
  int64_t p = 1;
  for (int i = 0; i < s->ndim; i++)
    if (__builtin_mul_overflow(p, s->dim[i], &p))
      return -1;
  return p;
}

static int size_overflow(const char *op) {
  return sn_error(SN_ERR_OVERFLOW, "%s: the output size does not fit in 64 bits", op);
}

static int count_unknown(const sn_shape *s) {
  int c = 0;
  for (int i = 0; i < s->ndim; i++)
    c += s->dim[i] == 0;
  return c;
}

/* Fills the single unknown dim of *in from the known size of out. */
static int fill_from_size(sn_shape *in, const sn_shape *out, const char *op) {
  char a[128], b[128];
  if (in->ndim < 0 || !sn_shape_known(out) || count_unknown(in) != 1)
    return SN_OK;
  int64_t known = 1, total, k = -1;
  SN_TRY(sn_shape_size(out, &total));
  for (int i = 0; i < in->ndim; i++) {
    if (in->dim[i] == 0)
      k = i;
    else
      known *= in->dim[i];
  }
  if (known <= 0 || total % known != 0)
    return sn_error(SN_ERR_SHAPE, "%s: input shape %s does not fit output shape %s", op,
                    shp(in, a, sizeof a), shp(out, b, sizeof b));
  in->dim[k] = total / known;
  return SN_OK;
}

/* Pure view (Reshape, Flatten, expand_dims, squeeze): same bytes. */
static int view_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  if (sn_tensor_bytes(c->out[0]) != sn_tensor_bytes(c->in[0]))
    return sn_error(SN_ERR_INTERNAL, "%s: input and output sizes differ", c->p->op->name);
  sn_ops_copy_bytes(sn_tensor_data(c->out[0]), sn_tensor_data(c->in[0]),
                    sn_tensor_bytes(c->in[0]));
  return SN_OK;
}

static int view_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  if (sn_tensor_bytes(c->igrad[0]) != sn_tensor_bytes(c->ograd[0]))
    return sn_error(SN_ERR_INTERNAL, "%s: gradient sizes differ", c->p->op->name);
  sn_ops_copy_bytes(sn_tensor_data(c->igrad[0]), sn_tensor_data(c->ograd[0]),
                    sn_tensor_bytes(c->ograd[0]));
  return SN_OK;
}

static const char *const in_data[] = {"data", NULL};

/* ======================================================================
 * Reshape
 * ====================================================================== */

enum { RS_SHAPE, RS_REVERSE, RS_TARGET, RS_KEEP };
static const sn_param_spec reshape_params[] = {
    {"shape", SN_PT_SHAPE, "()", NULL,
     "The target shape. Special codes: 0 copies the input dim, -1 infers it from the "
     "rest, -2 copies all remaining dims, -3 merges two consecutive dims, -4 splits one "
     "dim into the two values that follow (one may be -1)."},
    {"reverse", SN_PT_BOOL, "False", NULL,
     "If true, the special codes are matched from the right instead of the left."},
    {"target_shape", SN_PT_SHAPE, "()", NULL,
     "(Deprecated, use shape) target shape; a 0 marks the one dim to infer."},
    {"keep_highest", SN_PT_BOOL, "False", NULL,
     "(Deprecated, use shape) with target_shape: keep the first dim of the input."},
};

static int reshape_fail(const sn_shape *in, const sn_shape *code) {
  char a[128], b[160];
  return sn_error(SN_ERR_SHAPE, "Reshape: cannot reshape %s into %s", shp(in, a, sizeof a),
                  tup_str(code, b, sizeof b));
}

static void rev_dims(int64_t *d, int n) {
  for (int i = 0, j = n - 1; i < j; i++, j--) {
    int64_t t = d[i];
    d[i] = d[j];
    d[j] = t;
  }
}

/* Output shape of Reshape for a fully known input. */
static int reshape_out(const sn_params *p, const sn_shape *in, sn_shape *out) {
  const sn_shape *code = &p->v[RS_SHAPE].s;
  char a[128], b[160];
  int64_t total = shape_prod(in);
  if (code->ndim > 0) {
    int64_t ds[SN_MAX_DIMS], cs[2 * SN_MAX_DIMS + 4];
    int dn = in->ndim, cn = code->ndim;
    memcpy(ds, in->dim, sizeof(int64_t) * (size_t)dn);
    memcpy(cs, code->dim, sizeof(int64_t) * (size_t)cn);
    if (p->v[RS_REVERSE].i) {
      rev_dims(ds, dn);
      rev_dims(cs, cn);
    }
    int64_t o[SN_MAX_DIMS + 1];
    int on = 0, src = 0, inf = -1;
#define RS_PUSH(v)                                                                        \
  do {                                                                                    \
    if (on >= SN_MAX_DIMS)                                                                \
      return sn_error(SN_ERR_SHAPE, "Reshape: shape %s gives more than %d dims",         \
                      tup_str(code, b, sizeof b), SN_MAX_DIMS);                           \
    o[on++] = (v);                                                                        \
  } while (0)
    for (int i = 0; i < cn; i++) {
      int64_t v = cs[i];
      if (v == 0) {
        if (src >= dn)
          return sn_error(SN_ERR_SHAPE,
                          "Reshape: shape %s copies (0) dim %d but the input %s has only "
                          "%d dims",
                          tup_str(code, b, sizeof b), src, shp(in, a, sizeof a), dn);
        RS_PUSH(ds[src]);
        src++;
      } else if (v == -1) {
        if (inf >= 0)
          return sn_error(SN_ERR_SHAPE,
                          "Reshape: only one dim can be inferred (-1) in shape %s",
                          tup_str(code, b, sizeof b));
        inf = on;
        RS_PUSH(1);
        src++;
      } else if (v == -2) {
        while (src < dn) {
          RS_PUSH(ds[src]);
          src++;
        }
      } else if (v == -3) {
        if (src + 1 >= dn)
          return sn_error(SN_ERR_SHAPE,
                          "Reshape: -3 in shape %s needs two input dims, input is %s",
                          tup_str(code, b, sizeof b), shp(in, a, sizeof a));
        RS_PUSH(ds[src] * ds[src + 1]);
        src += 2;
      } else if (v == -4) {
        if (i + 2 >= cn)
          return sn_error(SN_ERR_SHAPE, "Reshape: -4 in shape %s must be followed by two "
                          "values", tup_str(code, b, sizeof b));
        if (src >= dn)
          return sn_error(SN_ERR_SHAPE, "Reshape: -4 in shape %s has no input dim to split "
                          "in %s", tup_str(code, b, sizeof b), shp(in, a, sizeof a));
        int64_t d0 = ds[src++], d1 = cs[++i], d2 = cs[++i];
        if (d1 == -1 && d2 == -1)
          return sn_error(SN_ERR_SHAPE, "Reshape: split dims after -4 cannot both be -1 in "
                          "shape %s", tup_str(code, b, sizeof b));
        if ((d1 <= 0 && d1 != -1) || (d2 <= 0 && d2 != -1))
          return sn_error(SN_ERR_SHAPE, "Reshape: split dims after -4 must be positive or -1 "
                          "in shape %s", tup_str(code, b, sizeof b));
        if (d1 == -1)
          d1 = d0 / d2;
        if (d2 == -1)
          d2 = d0 / d1;
        int64_t d12;
        if (__builtin_mul_overflow(d1, d2, &d12) || d12 != d0)
          return sn_error(SN_ERR_SHAPE,
                          "Reshape: split dims %lld, %lld do not divide input dim %lld "
                          "(cannot reshape %s into %s)",
                          (long long)d1, (long long)d2, (long long)d0, shp(in, a, sizeof a),
                          tup_str(code, b, sizeof b));
        RS_PUSH(d1);
        RS_PUSH(d2);
      } else if (v > 0) {
        RS_PUSH(v);
        src++;
      } else {
        return sn_error(SN_ERR_ARG, "Reshape: invalid value %lld in shape %s", (long long)v,
                        tup_str(code, b, sizeof b));
      }
    }
#undef RS_PUSH
    if (inf >= 0) {
      int64_t rest = 1;
      for (int i = 0; i < on; i++)
        if (i != inf && __builtin_mul_overflow(rest, o[i], &rest))
          return reshape_fail(in, code);
      if (rest <= 0 || total % rest != 0)
        return reshape_fail(in, code);
      o[inf] = total / rest;
    }
    if (p->v[RS_REVERSE].i)
      rev_dims(o, on);
    *out = sn_shape_make(on, o);
  } else if (p->v[RS_TARGET].s.ndim > 0) {
    const sn_shape *t = &p->v[RS_TARGET].s;
    sn_shape o = *t;
    int start = p->v[RS_KEEP].i ? 1 : 0, nneg = 0, idx = 0;
    if (p->v[RS_KEEP].i) {
      if (in->ndim < 1)
        return reshape_fail(in, t);
      o.dim[0] = in->dim[0];
    }
    for (int i = start; i < o.ndim; i++) {
      if (o.dim[i] < 0)
        return sn_error(SN_ERR_ARG, "Reshape: invalid value in target_shape %s",
                        tup_str(t, b, sizeof b));
      if (o.dim[i] == 0) {
        nneg++;
        idx = i;
      }
    }
    if (nneg > 1)
      return sn_error(SN_ERR_ARG, "Reshape: only one dim of target_shape %s can be 0",
                      tup_str(t, b, sizeof b));
    if (nneg == 1) {
      o.dim[idx] = 1;
      int64_t rest = shape_prod(&o);
      if (rest <= 0 || total % rest != 0)
        return reshape_fail(in, t);
      o.dim[idx] = total / rest;
    }
    *out = o;
    if (shape_prod(out) != total)
      return reshape_fail(in, t);
    return SN_OK;
  } else {
    *out = sn_shape_unknown();
    return SN_OK;
  }
  if (shape_prod(out) != total)
    return reshape_fail(in, code);
  return SN_OK;
}

static int reshape_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                         sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  char a[128], b[128];
  if (sn_shape_known(&in[0])) {
    sn_shape o;
    SN_TRY(reshape_out(p, &in[0], &o));
    if (o.ndim < 0) { /* no shape given: only check against a known output */
      if (sn_shape_known(&out[0]) && shape_prod(&out[0]) != shape_prod(&in[0]))
        return sn_error(SN_ERR_SHAPE, "Reshape: cannot reshape %s into %s",
                        shp(&in[0], a, sizeof a), shp(&out[0], b, sizeof b));
      return SN_OK;
    }
    return sn_shape_assign(&out[0], &o, "Reshape output");
  }
  /* Input not (fully) known: infer it backward when one dim is missing. */
  return fill_from_size(&in[0], &out[0], "Reshape");
}

static const sn_op op_reshape = {
    .name = "Reshape",
    .aliases = "reshape",
    .doc = "Reshapes the input to a new shape with the same number of elements. `shape` "
           "may use MXNet's special codes: 0 keeps a dim, -1 infers one dim, -2 copies the "
           "remaining dims, -3 merges two dims and -4 splits a dim in two; with "
           "reverse=TRUE the codes are matched from the right. The data are not moved.",
    .params = reshape_params,
    .nparams = 4,
    .inputs = in_data,
    .infer_shape = reshape_infer,
    .forward_cpu = view_forward,
    .backward_cpu = view_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

/* ======================================================================
 * Flatten
 * ====================================================================== */

static int flatten_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                         sn_shape *aux, int naux) {
  (void)p, (void)nin, (void)nout, (void)aux, (void)naux;
  if (in[0].ndim < 0) {
    return SN_OK;
  }
  if (in[0].ndim == 0)
    return sn_error(SN_ERR_SHAPE, "Flatten: input must have at least one dim");
  int64_t o[2] = {in[0].dim[0], 1};
  int known = 1;
  for (int i = 1; i < in[0].ndim; i++) {
    if (in[0].dim[i] == 0)
      known = 0;
    o[1] *= in[0].dim[i];
  }
  if (!known)
    o[1] = 0;
  sn_shape os = sn_shape_make(2, o);
  SN_TRY(merge_shape(&out[0], &os, "Flatten", "output"));
  /* backward: the batch dim and a single missing trailing dim */
  if (out[0].ndim == 2 && out[0].dim[0] != 0 && in[0].dim[0] == 0)
    in[0].dim[0] = out[0].dim[0];
  return fill_from_size(&in[0], &out[0], "Flatten");
}

static const sn_op op_flatten = {
    .name = "Flatten",
    .aliases = "flatten",
    .doc = "Flattens the input to 2-D: the first (C-order) dim is kept and all the others "
           "are collapsed, so (d1, d2, ..., dk) becomes (d1, d2*...*dk). In R terms the "
           "last (batch) dim is kept and the others become the first. A 1-D input (N) "
           "gives (N, 1).",
    .params = NULL,
    .nparams = 0,
    .inputs = in_data,
    .infer_shape = flatten_infer,
    .forward_cpu = view_forward,
    .backward_cpu = view_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

/* ======================================================================
 * expand_dims, squeeze
 * ====================================================================== */

enum { ED_AXIS };
static const sn_param_spec expand_dims_params[] = {
    {"axis", SN_PT_INT, NULL, NULL,
     "Position of the new axis (C order, in [-ndim-1, ndim]; negative counts from the "
     "end)."},
};

static int expand_dims_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                             int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  int nd = in[0].ndim >= 0 ? in[0].ndim : (out[0].ndim > 0 ? out[0].ndim - 1 : -1);
  if (nd < 0)
    return SN_OK;
  int64_t axis = p->v[ED_AXIS].i;
  if (axis < -nd - 1 || axis > nd)
    return sn_error(SN_ERR_ARG, "expand_dims: axis=%lld is out of range for a %d-D input",
                    (long long)axis, nd);
  if (nd + 1 > SN_MAX_DIMS)
    return sn_error(SN_ERR_SHAPE, "expand_dims: output would have more than %d dims",
                    SN_MAX_DIMS);
  int ax = (int)(axis < 0 ? axis + nd + 1 : axis);
  if (in[0].ndim >= 0) {
    sn_shape o;
    o.ndim = nd + 1;
    for (int i = 0, k = 0; i < nd + 1; i++)
      o.dim[i] = i == ax ? 1 : in[0].dim[k++];
    SN_TRY(merge_shape(&out[0], &o, "expand_dims", "output"));
  }
  if (out[0].ndim == nd + 1) {
    sn_shape ii;
    ii.ndim = nd;
    for (int i = 0, k = 0; i < nd + 1; i++)
      if (i != ax)
        ii.dim[k++] = out[0].dim[i];
    SN_TRY(merge_shape(&in[0], &ii, "expand_dims", "input"));
  }
  return SN_OK;
}

static const sn_op op_expand_dims = {
    .name = "expand_dims",
    .doc = "Inserts a new axis of size 1 at position `axis` (C order; negative counts from "
           "the end). The data are not moved.",
    .params = expand_dims_params,
    .nparams = 1,
    .inputs = in_data,
    .infer_shape = expand_dims_infer,
    .forward_cpu = view_forward,
    .backward_cpu = view_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

enum { SQ_AXIS };
static const sn_param_spec squeeze_params[] = {
    {"axis", SN_PT_OPT_SHAPE, "None", NULL,
     "Axes of size 1 to remove (C order, negative counts from the end); None removes "
     "every axis of size 1."},
};

static int squeeze_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                         sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  char a[128], b[160];
  if (in[0].ndim < 0)
    return SN_OK;
  int nd = in[0].ndim;
  int drop[SN_MAX_DIMS] = {0};
  if (p->v[SQ_AXIS].set) {
    const sn_shape *ax = &p->v[SQ_AXIS].s;
    for (int i = 0; i < ax->ndim; i++) {
      int k;
      SN_TRY(norm_axis(ax->dim[i], nd, "squeeze", "axis", &k));
      if (drop[k])
        return sn_error(SN_ERR_ARG, "squeeze: axis %s names axis %d twice",
                        tup_str(ax, b, sizeof b), k);
      if (in[0].dim[k] != 1 && in[0].dim[k] != 0)
        return sn_error(SN_ERR_SHAPE,
                        "squeeze: axis %d of input %s has size %lld, not 1 (axis=%s)", k,
                        shp(&in[0], a, sizeof a), (long long)in[0].dim[k],
                        tup_str(ax, b, sizeof b));
      drop[k] = 1;
    }
  } else {
    for (int i = 0; i < nd; i++) {
      if (in[0].dim[i] == 0)
        return SN_OK; /* undecidable yet */
      drop[i] = in[0].dim[i] == 1;
    }
  }
  sn_shape o;
  o.ndim = 0;
  for (int i = 0; i < nd; i++)
    if (!drop[i])
      o.dim[o.ndim++] = in[0].dim[i];
  if (o.ndim == 0) {
    o.ndim = 1;
    o.dim[0] = 1;
  }
  SN_TRY(merge_shape(&out[0], &o, "squeeze", "output"));
  /* backward: unknown kept dims from the output */
  if (out[0].ndim == o.ndim && p->v[SQ_AXIS].set) {
    for (int i = 0, k = 0; i < nd; i++) {
      if (drop[i]) {
        if (in[0].dim[i] == 0)
          in[0].dim[i] = 1;
        continue;
      }
      if (in[0].dim[i] == 0 && k < out[0].ndim)
        in[0].dim[i] = out[0].dim[k];
      k++;
    }
  }
  return SN_OK;
}

static const sn_op op_squeeze = {
    .name = "squeeze",
    .doc = "Removes axes of size 1: those listed in `axis` (an error if one is not of size "
           "1), or all of them when `axis` is None. Squeezing every axis leaves shape (1). "
           "The data are not moved.",
    .params = squeeze_params,
    .nparams = 1,
    .inputs = in_data,
    .infer_shape = squeeze_infer,
    .forward_cpu = view_forward,
    .backward_cpu = view_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(0),
    .inplace_grad = SN_INPLACE(0),
};

/* ======================================================================
 * transpose, SwapAxis
 * ====================================================================== */

enum { TR_AXES };
static const sn_param_spec transpose_params[] = {
    {"axes", SN_PT_SHAPE, "()", NULL,
     "Permutation of the (C-order) axes: output dim i is input dim axes[i]. Empty "
     "reverses all axes."},
};

/* Fills perm for an ndim-D input; out_axes[i] = input axis of output dim i. */
static int transpose_perm(const sn_params *p, int nd, int *perm) {
  const sn_shape *ax = &p->v[TR_AXES].s;
  char b[160];
  if (ax->ndim == 0) {
    for (int i = 0; i < nd; i++)
      perm[i] = nd - 1 - i;
    return SN_OK;
  }
  if (ax->ndim != nd)
    return sn_error(SN_ERR_ARG, "transpose: axes %s has %d entries but the input has %d dims",
                    tup_str(ax, b, sizeof b), ax->ndim, nd);
  int seen[SN_MAX_DIMS] = {0};
  for (int i = 0; i < nd; i++) {
    int k;
    SN_TRY(norm_axis(ax->dim[i], nd, "transpose", "axes", &k));
    if (seen[k])
      return sn_error(SN_ERR_ARG, "transpose: axes %s is not a permutation",
                      tup_str(ax, b, sizeof b));
    seen[k] = 1;
    perm[i] = k;
  }
  return SN_OK;
}

static int perm_infer(const int *perm, sn_shape *in, sn_shape *out, const char *op) {
  int nd = in[0].ndim >= 0 ? in[0].ndim : out[0].ndim;
  sn_shape o, ii;
  o.ndim = ii.ndim = nd;
  if (in[0].ndim >= 0) {
    for (int i = 0; i < nd; i++)
      o.dim[i] = in[0].dim[perm[i]];
    SN_TRY(merge_shape(&out[0], &o, op, "output"));
  }
  if (out[0].ndim == nd) {
    for (int i = 0; i < nd; i++)
      ii.dim[perm[i]] = out[0].dim[i];
    SN_TRY(merge_shape(&in[0], &ii, op, "input"));
  }
  return SN_OK;
}

static int transpose_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                           int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  int nd = in[0].ndim >= 0 ? in[0].ndim : out[0].ndim;
  if (nd < 0)
    return SN_OK;
  int perm[SN_MAX_DIMS];
  SN_TRY(transpose_perm(p, nd, perm));
  return perm_infer(perm, in, out, "transpose");
}

/* out = permute(in): out dim i reads input dim perm[i]. */
static void permute_copy(const int *perm, const sn_tensor *in, sn_tensor *out) {
  int nd = in->shape.ndim;
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], n[SN_MAX_DIMS], ss[SN_MAX_DIMS];
  sn_ops_strides(&in->shape, ist);
  sn_ops_strides(&out->shape, ost);
  for (int i = 0; i < nd; i++) {
    n[i] = out->shape.dim[i];
    ss[i] = ist[perm[i]];
  }
  sn_ops_strided_copy(nd, n, ss, ost, sn_tensor_data(in), sn_tensor_data(out),
                      sn_dtype_size(in->dtype));
}

/* igrad = inverse permute(ograd). */
static void permute_copy_back(const int *perm, const sn_tensor *og, sn_tensor *ig) {
  int nd = og->shape.ndim;
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], n[SN_MAX_DIMS], ds[SN_MAX_DIMS];
  sn_ops_strides(&ig->shape, ist);
  sn_ops_strides(&og->shape, ost);
  for (int i = 0; i < nd; i++) {
    n[i] = og->shape.dim[i];
    ds[i] = ist[perm[i]];
  }
  sn_ops_strided_copy(nd, n, ost, ds, sn_tensor_data(og), sn_tensor_data(ig),
                      sn_dtype_size(og->dtype));
}

static int transpose_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int perm[SN_MAX_DIMS];
  SN_TRY(transpose_perm(c->p, c->in[0]->shape.ndim, perm));
  permute_copy(perm, c->in[0], c->out[0]);
  return SN_OK;
}

static int transpose_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int perm[SN_MAX_DIMS];
  SN_TRY(transpose_perm(c->p, c->ograd[0]->shape.ndim, perm));
  permute_copy_back(perm, c->ograd[0], c->igrad[0]);
  return SN_OK;
}

static const sn_op op_transpose = {
    .name = "transpose",
    .doc = "Permutes the dims of the input: output dim i is input dim axes[i] (C-order "
           "axes). With no axes the dims are reversed, which for a matrix is the usual "
           "transpose.",
    .params = transpose_params,
    .nparams = 1,
    .inputs = in_data,
    .infer_shape = transpose_infer,
    .forward_cpu = transpose_forward,
    .backward_cpu = transpose_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

enum { SW_DIM1, SW_DIM2 };
static const sn_param_spec swapaxis_params[] = {
    {"dim1", SN_PT_INT, "0", NULL, "The first axis to swap (C order)."},
    {"dim2", SN_PT_INT, "0", NULL, "The second axis to swap (C order)."},
};

static int swap_perm(const sn_params *p, int nd, int *perm) {
  int a, b;
  SN_TRY(norm_axis(p->v[SW_DIM1].i, nd, "SwapAxis", "dim1", &a));
  SN_TRY(norm_axis(p->v[SW_DIM2].i, nd, "SwapAxis", "dim2", &b));
  for (int i = 0; i < nd; i++)
    perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return SN_OK;
}

static int swapaxis_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                          sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  int nd = in[0].ndim >= 0 ? in[0].ndim : out[0].ndim;
  if (nd < 0)
    return SN_OK;
  int perm[SN_MAX_DIMS];
  SN_TRY(swap_perm(p, nd, perm));
  return perm_infer(perm, in, out, "SwapAxis");
}

static int swapaxis_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int perm[SN_MAX_DIMS];
  SN_TRY(swap_perm(c->p, c->in[0]->shape.ndim, perm));
  permute_copy(perm, c->in[0], c->out[0]);
  return SN_OK;
}

static int swapaxis_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int perm[SN_MAX_DIMS];
  SN_TRY(swap_perm(c->p, c->ograd[0]->shape.ndim, perm));
  permute_copy_back(perm, c->ograd[0], c->igrad[0]);
  return SN_OK;
}

static const sn_op op_swapaxis = {
    .name = "SwapAxis",
    .aliases = "swapaxes",
    .doc = "Swaps two dims of the input (dim1 and dim2 are C-order axes; negative counts "
           "from the end).",
    .params = swapaxis_params,
    .nparams = 2,
    .inputs = in_data,
    .infer_shape = swapaxis_infer,
    .forward_cpu = swapaxis_forward,
    .backward_cpu = swapaxis_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
    .name_hint = "swapaxis",
};

/* ======================================================================
 * broadcast_to, broadcast_axis
 * ====================================================================== */

/* Forward and backward of a broadcast: input dims are 1 or equal the
 * output dims. */
static int bcast_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *in = c->in[0];
  sn_tensor *out = c->out[0];
  int nd = out->shape.ndim;
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], ss[SN_MAX_DIMS];
  sn_ops_strides(&in->shape, ist);
  sn_ops_strides(&out->shape, ost);
  for (int i = 0; i < nd; i++)
    ss[i] = in->shape.dim[i] == out->shape.dim[i] ? ist[i] : 0;
  sn_ops_strided_copy(nd, out->shape.dim, ss, ost, sn_tensor_data(in), sn_tensor_data(out),
                      sn_dtype_size(in->dtype));
  return SN_OK;
}

static int bcast_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  const sn_tensor *og = c->ograd[0];
  sn_tensor *ig = c->igrad[0];
  int nd = og->shape.ndim;
  int64_t ist[SN_MAX_DIMS], ost[SN_MAX_DIMS], ds[SN_MAX_DIMS];
  sn_ops_strides(&ig->shape, ist);
  sn_ops_strides(&og->shape, ost);
  for (int i = 0; i < nd; i++)
    ds[i] = ig->shape.dim[i] == og->shape.dim[i] ? ist[i] : 0;
  sn_ops_zero(ig);
  return sn_ops_strided_add(og->dtype, nd, og->shape.dim, ost, ds, sn_tensor_data(og),
                            sn_tensor_data(ig));
}

enum { BT_SHAPE };
static const sn_param_spec broadcast_to_params[] = {
    {"shape", SN_PT_SHAPE, "()", NULL,
     "The target shape; dims of the input must be 1 or equal the target dim. A 0 keeps "
     "the input dim."},
};

static int broadcast_to_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                              int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  const sn_shape *t = &p->v[BT_SHAPE].s;
  char a[128], b[160];
  if (in[0].ndim < 0)
    return SN_OK;
  if (t->ndim != in[0].ndim)
    return sn_error(SN_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s (dims differ)",
                    shp(&in[0], a, sizeof a), tup_str(t, b, sizeof b));
  sn_shape o = in[0];
  for (int i = 0; i < t->ndim; i++) {
    int64_t d = in[0].dim[i], s = t->dim[i];
    if (s < 0)
      return sn_error(SN_ERR_ARG, "broadcast_to: invalid shape %s", tup_str(t, b, sizeof b));
    if (s == 0)
      o.dim[i] = d;
    else if (d == 1 || d == s)
      o.dim[i] = s;
    else if (d == 0)
      o.dim[i] = s; /* input dim unknown: it must be 1 or s */
    else
      return sn_error(SN_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s",
                      shp(&in[0], a, sizeof a), tup_str(t, b, sizeof b));
  }
  return merge_shape(&out[0], &o, "broadcast_to", "output");
}

static const sn_op op_broadcast_to = {
    .name = "broadcast_to",
    .doc = "Broadcasts the input to `shape`: dims of size 1 are repeated, a 0 in `shape` "
           "keeps the input dim. The gradient sums over the broadcast dims.",
    .params = broadcast_to_params,
    .nparams = 1,
    .inputs = in_data,
    .infer_shape = broadcast_to_infer,
    .forward_cpu = bcast_forward,
    .backward_cpu = bcast_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

enum { BA_AXIS, BA_SIZE };
static const sn_param_spec broadcast_axis_params[] = {
    {"axis", SN_PT_SHAPE, "()", NULL, "The axes to broadcast (C order, each of size 1)."},
    {"size", SN_PT_SHAPE, "()", NULL, "Target size along each axis in `axis`."},
};

static int broadcast_axis_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out,
                                int nout, sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  const sn_shape *ax = &p->v[BA_AXIS].s, *sz = &p->v[BA_SIZE].s;
  char a[128], b[160], d[160];
  if (ax->ndim != sz->ndim)
    return sn_error(SN_ERR_ARG, "broadcast_axis: axis %s and size %s differ in length",
                    tup_str(ax, b, sizeof b), tup_str(sz, d, sizeof d));
  if (in[0].ndim < 0)
    return SN_OK;
  sn_shape o = in[0];
  for (int i = 0; i < ax->ndim; i++) {
    int k;
    SN_TRY(norm_axis(ax->dim[i], in[0].ndim, "broadcast_axis", "axis", &k));
    if (sz->dim[i] <= 0)
      return sn_error(SN_ERR_ARG, "broadcast_axis: size %s must be positive",
                      tup_str(sz, d, sizeof d));
    if (in[0].dim[k] != 1 && in[0].dim[k] != 0)
      return sn_error(SN_ERR_SHAPE,
                      "broadcast_axis: axis %d of input %s has size %lld; broadcast axes "
                      "must have size 1",
                      k, shp(&in[0], a, sizeof a), (long long)in[0].dim[k]);
    o.dim[k] = sz->dim[i];
  }
  return merge_shape(&out[0], &o, "broadcast_axis", "output");
}

static const sn_op op_broadcast_axis = {
    .name = "broadcast_axis",
    .aliases = "broadcast_axes",
    .doc = "Broadcasts the input along the given axes (C order, each of size 1) to the "
           "given sizes. The gradient sums over those axes.",
    .params = broadcast_axis_params,
    .nparams = 2,
    .inputs = in_data,
    .infer_shape = broadcast_axis_infer,
    .forward_cpu = bcast_forward,
    .backward_cpu = bcast_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * tile
 * ====================================================================== */

enum { TL_REPS };
static const sn_param_spec tile_params[] = {
    {"reps", SN_PT_SHAPE, NULL, NULL,
     "Repetitions per dim. When reps and the input differ in length, the shorter one is "
     "padded with leading 1s."},
};

/* Aligned input dims and reps (both of length nd). */
static int tile_align(const sn_params *p, const sn_shape *in, int *nd, int64_t *d,
                      int64_t *r) {
  const sn_shape *reps = &p->v[TL_REPS].s;
  char b[160];
  int n = in->ndim > reps->ndim ? in->ndim : reps->ndim;
  if (reps->ndim == 0)
    n = in->ndim;
  for (int i = 0; i < reps->ndim; i++)
    if (reps->dim[i] <= 0)
      return sn_error(SN_ERR_ARG, "tile: reps %s must be positive", tup_str(reps, b, sizeof b));
  for (int i = 0; i < n; i++) {
    int ii = i - (n - in->ndim), ri = i - (n - reps->ndim);
    d[i] = ii >= 0 ? in->dim[ii] : 1;
    r[i] = (reps->ndim > 0 && ri >= 0) ? reps->dim[ri] : 1;
  }
  *nd = n;
  return SN_OK;
}

static int tile_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                      sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  if (in[0].ndim < 0)
    return SN_OK;
  int nd;
  int64_t d[SN_MAX_DIMS], r[SN_MAX_DIMS];
  SN_TRY(tile_align(p, &in[0], &nd, d, r));
  sn_shape o;
  o.ndim = nd;
  for (int i = 0; i < nd; i++)
    if (__builtin_mul_overflow(d[i], r[i], &o.dim[i]))
      return size_overflow("tile");
  SN_TRY(merge_shape(&out[0], &o, "tile", "output"));
  /* backward: unknown input dims from the output */
  if (out[0].ndim == nd) {
    int off = nd - in[0].ndim;
    for (int i = 0; i < in[0].ndim; i++)
      if (in[0].dim[i] == 0 && out[0].dim[i + off] != 0 && out[0].dim[i + off] % r[i + off] == 0)
        in[0].dim[i] = out[0].dim[i + off] / r[i + off];
  }
  return SN_OK;
}

/* Split dims (r_i, d_i): source strides (0, ist_i), output strides
 * (d_i * ost_i, ost_i). */
static int tile_dims(const sn_params *p, const sn_shape *ins, const sn_shape *outs,
                     int *nsd, int64_t *n, int64_t *ist2, int64_t *ost2) {
  int nd;
  int64_t d[SN_MAX_DIMS], r[SN_MAX_DIMS], ist[SN_MAX_DIMS], ost[SN_MAX_DIMS];
  SN_TRY(tile_align(p, ins, &nd, d, r));
  sn_shape ina = sn_shape_make(nd, d);
  sn_ops_strides(&ina, ist);
  sn_ops_strides(outs, ost);
  for (int i = 0; i < nd; i++) {
    n[2 * i] = r[i];
    n[2 * i + 1] = d[i];
    ist2[2 * i] = 0;
    ist2[2 * i + 1] = ist[i];
    ost2[2 * i] = d[i] * ost[i];
    ost2[2 * i + 1] = ost[i];
  }
  *nsd = 2 * nd;
  return SN_OK;
}

static int tile_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int nsd;
  int64_t n[2 * SN_MAX_DIMS], is[2 * SN_MAX_DIMS], os[2 * SN_MAX_DIMS];
  SN_TRY(tile_dims(c->p, &c->in[0]->shape, &c->out[0]->shape, &nsd, n, is, os));
  sn_ops_strided_copy(nsd, n, is, os, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]),
                      sn_dtype_size(c->in[0]->dtype));
  return SN_OK;
}

static int tile_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int nsd;
  int64_t n[2 * SN_MAX_DIMS], is[2 * SN_MAX_DIMS], os[2 * SN_MAX_DIMS];
  SN_TRY(tile_dims(c->p, &c->igrad[0]->shape, &c->ograd[0]->shape, &nsd, n, is, os));
  sn_ops_zero(c->igrad[0]);
  return sn_ops_strided_add(c->ograd[0]->dtype, nsd, n, os, is, sn_tensor_data(c->ograd[0]),
                            sn_tensor_data(c->igrad[0]));
}

static const sn_op op_tile = {
    .name = "tile",
    .doc = "Repeats the whole input `reps` times along each dim (numpy.tile). If reps is "
           "shorter than the input's dims it is padded with leading 1s; if longer, the "
           "input shape is padded with leading 1s.",
    .params = tile_params,
    .nparams = 1,
    .inputs = in_data,
    .infer_shape = tile_infer,
    .forward_cpu = tile_forward,
    .backward_cpu = tile_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

/* ======================================================================
 * repeat
 * ====================================================================== */

enum { RP_REPEATS, RP_AXIS };
static const sn_param_spec repeat_params[] = {
    {"repeats", SN_PT_INT, NULL, NULL, "Number of repetitions of each element."},
    {"axis", SN_PT_OPT_INT, "None", NULL,
     "The axis (C order) along which to repeat; None flattens the input first and gives "
     "a 1-D output."},
};

static int repeat_infer(const sn_params *p, sn_shape *in, int nin, sn_shape *out, int nout,
                        sn_shape *aux, int naux) {
  (void)nin, (void)nout, (void)aux, (void)naux;
  int64_t rep = p->v[RP_REPEATS].i;
  if (rep <= 0)
    return sn_error(SN_ERR_ARG, "repeat: repeats=%lld must be positive", (long long)rep);
  if (in[0].ndim < 0)
    return SN_OK;
  sn_shape o;
  if (!p->v[RP_AXIS].set) {
    o.ndim = 1;
    o.dim[0] = 0;
    if (sn_shape_known(&in[0]) && __builtin_mul_overflow(shape_prod(&in[0]), rep, &o.dim[0]))
      return size_overflow("repeat");
    return merge_shape(&out[0], &o, "repeat", "output");
  }
  int k;
  SN_TRY(norm_axis(p->v[RP_AXIS].i, in[0].ndim, "repeat", "axis", &k));
  o = in[0];
  if (__builtin_mul_overflow(o.dim[k], rep, &o.dim[k]))
    return size_overflow("repeat");
  SN_TRY(merge_shape(&out[0], &o, "repeat", "output"));
  if (out[0].ndim == in[0].ndim && in[0].dim[k] == 0 && out[0].dim[k] % rep == 0)
    in[0].dim[k] = out[0].dim[k] / rep;
  return SN_OK;
}

/* Dims (outer, d_axis, repeats, inner) with source / destination strides. */
static int repeat_dims(const sn_params *p, const sn_shape *ins, int64_t *n, int64_t *is,
                       int64_t *os) {
  int64_t rep = p->v[RP_REPEATS].i, outer = 1, d, inner = 1;
  if (!p->v[RP_AXIS].set) {
    d = shape_prod(ins);
  } else {
    int k;
    SN_TRY(norm_axis(p->v[RP_AXIS].i, ins->ndim, "repeat", "axis", &k));
    for (int i = 0; i < k; i++)
      outer *= ins->dim[i];
    d = ins->dim[k];
    for (int i = k + 1; i < ins->ndim; i++)
      inner *= ins->dim[i];
  }
  n[0] = outer, n[1] = d, n[2] = rep, n[3] = inner;
  is[0] = d * inner, is[1] = inner, is[2] = 0, is[3] = 1;
  os[0] = d * rep * inner, os[1] = rep * inner, os[2] = inner, os[3] = 1;
  return SN_OK;
}

static int repeat_forward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int64_t n[4], is[4], os[4];
  SN_TRY(repeat_dims(c->p, &c->in[0]->shape, n, is, os));
  sn_ops_strided_copy(4, n, is, os, sn_tensor_data(c->in[0]), sn_tensor_data(c->out[0]),
                      sn_dtype_size(c->in[0]->dtype));
  return SN_OK;
}

static int repeat_backward(sn_call *c) {
  if (c->req[0] == SN_REQ_NULL)
    return SN_OK;
  int64_t n[4], is[4], os[4];
  SN_TRY(repeat_dims(c->p, &c->igrad[0]->shape, n, is, os));
  sn_ops_zero(c->igrad[0]);
  return sn_ops_strided_add(c->ograd[0]->dtype, 4, n, os, is, sn_tensor_data(c->ograd[0]),
                            sn_tensor_data(c->igrad[0]));
}

static const sn_op op_repeat = {
    .name = "repeat",
    .doc = "Repeats each element `repeats` times along `axis` (numpy.repeat); with "
           "axis=None the input is flattened first.",
    .params = repeat_params,
    .nparams = 2,
    .inputs = in_data,
    .infer_shape = repeat_infer,
    .forward_cpu = repeat_forward,
    .backward_cpu = repeat_backward,
    .flags = 0,
    .inplace_in = SN_INPLACE(-1),
    .inplace_grad = SN_INPLACE(-1),
};

const sn_op *const sn_family_shape[] = {
    &op_reshape,      &op_flatten,        &op_expand_dims, &op_squeeze,
    &op_transpose,    &op_swapaxis,       &op_broadcast_to, &op_broadcast_axis,
    &op_tile,         &op_repeat,         NULL};
