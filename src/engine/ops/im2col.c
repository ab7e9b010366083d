/* im2col / col2im for Convolution and Deconvolution: see im2col.h.
 *
 * For each (kernel offset, output row) the range of output columns whose
 * input pixel lies inside the image is computed once, so the inner loops are
 * plain copies (or adds) with zero fills before and after: no per-element
 * bounds test.  Work is split over (image, channel) pairs (when par is
 * set); two pairs never touch the same column rows or the same image plane,
 * so col2im needs no atomics. */
#include "im2col.h"

#include <string.h>

#include "../cpu.h"
#include "../cpu_par.h"

void sn_im2col_geom_finish(sn_im2col_geom *g) {
  g->kprod = g->k[0] * g->k[1] * g->k[2];
  g->in_size = g->in[0] * g->in[1] * g->in[2];
  g->out_size = g->out[0] * g->out[1] * g->out[2];
}

/* Output positions o in [0, n) read input i = o * s + off; the valid ones
 * (0 <= i < size) are o in [*lo, *hi). */
static void valid_range(int64_t n, int64_t off, int64_t s, int64_t size, int64_t *lo,
                        int64_t *hi) {
  int64_t a, b;
  if (s == 1) {
    a = off >= 0 ? 0 : -off;
    b = size - off <= 0 ? 0 : size - off;
  } else {
    a = off >= 0 ? 0 : (-off + s - 1) / s;
    b = size - off <= 0 ? 0 : (size - off + s - 1) / s;
  }
  if (a > n) a = n;
  if (b > n) b = n;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

/* The valid ranges of every kernel tap of every dim, computed once per call
 * (kernels wider than SN_IM2COL_MAXK taps compute them on the fly). */
#define SN_IM2COL_MAXK 32
typedef struct {
  int table;
  int64_t lo[3][SN_IM2COL_MAXK], hi[3][SN_IM2COL_MAXK];
} tap_ranges;

static void tap_ranges_init(const sn_im2col_geom *g, tap_ranges *r) {
  r->table = g->k[0] <= SN_IM2COL_MAXK && g->k[1] <= SN_IM2COL_MAXK && g->k[2] <= SN_IM2COL_MAXK;
  if (!r->table) return;
  for (int dim = 0; dim < 3; dim++)
    for (int64_t k = 0; k < g->k[dim]; k++)
      valid_range(g->out[dim], k * g->d[dim] - g->p[dim], g->s[dim], g->in[dim], &r->lo[dim][k],
                  &r->hi[dim][k]);
}

static inline void tap_range(const sn_im2col_geom *g, const tap_ranges *r, int dim, int64_t k,
                             int64_t *lo, int64_t *hi) {
  if (r->table) {
    *lo = r->lo[dim][k];
    *hi = r->hi[dim][k];
  } else {
    valid_range(g->out[dim], k * g->d[dim] - g->p[dim], g->s[dim], g->in[dim], lo, hi);
  }
}

/* Short row copies and adds: fixed-size chunks the compiler turns into
 * vector moves (a plain loop becomes scalar code or a memcpy call). */
#define SN_DEFINE_ROWOPS(T, SFX)                                                               \
  static inline void copy_row_##SFX(T *restrict d, const T *restrict s, int64_t n) {          \
    int64_t i = 0;                                                                             \
    for (; i + 8 <= n; i += 8) memcpy(d + i, s + i, 8 * sizeof(T));                            \
    if (i + 4 <= n) {                                                                          \
      memcpy(d + i, s + i, 4 * sizeof(T));                                                     \
      i += 4;                                                                                  \
    }                                                                                          \
    switch (n - i) {                                                                           \
    case 3: d[i + 2] = s[i + 2]; /* fall through */                                            \
    case 2: d[i + 1] = s[i + 1]; /* fall through */                                            \
    case 1: d[i] = s[i]; /* fall through */                                                    \
    default: break;                                                                            \
    }                                                                                          \
  }                                                                                            \
  static inline void zero_row_##SFX(T *d, int64_t n) {                                         \
    if (n > 0) memset(d, 0, (size_t)n * sizeof(T));                                            \
  }                                                                                            \
  static inline void add8_##SFX(T *restrict d, const T *restrict s) {                         \
    for (int k = 0; k < 8; k++) d[k] += s[k];                                                  \
  }                                                                                            \
  static inline void add_row_##SFX(T *restrict d, const T *restrict s, int64_t n) {           \
    int64_t i = 0;                                                                             \
    for (; i + 8 <= n; i += 8) add8_##SFX(d + i, s + i);                                       \
    for (; i < n; i++) d[i] += s[i];                                                           \
  }

SN_DEFINE_ROWOPS(float, f32)
SN_DEFINE_ROWOPS(double, f64)

#define SN_DEFINE_IM2COL(T, SFX)                                                               \
  SN_VEC_CLONES static void im2col_range_##SFX(const sn_im2col_geom *g, const tap_ranges *rgp, const T *img, \
                                 int64_t img_stride, T *col, int64_t ldcol, int64_t jc0,      \
                                 int64_t jc1) {                                               \
    const int64_t C = g->C, IH = g->in[1], IW = g->in[2];                                      \
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];                              \
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2];                                    \
    const int64_t sd = g->s[0], sh = g->s[1], sw = g->s[2];                                    \
    const int64_t plane = OH * OW, kprod = g->kprod, osz = g->out_size, isz = g->in_size;     \
    const tap_ranges rg = *rgp;                                                                \
    for (int64_t jc = jc0; jc < jc1; jc++) {                                                   \
      const int64_t j = jc / C, c = jc % C;                                                    \
      const T *src = img + j * img_stride + c * isz;                                           \
      T *rowbase = col + (c * kprod) * ldcol + j * osz;                                        \
      for (int64_t kd = 0; kd < KD; kd++) {                                                    \
        int64_t offd = kd * g->d[0] - g->p[0], dlo, dhi;                                       \
        tap_range(g, &rg, 0, kd, &dlo, &dhi);                                             \
        for (int64_t kh = 0; kh < KH; kh++) {                                                  \
          int64_t offh = kh * g->d[1] - g->p[1], hlo, hhi;                                     \
          tap_range(g, &rg, 1, kh, &hlo, &hhi);                                           \
          for (int64_t kw = 0; kw < KW; kw++) {                                                \
            int64_t offw = kw * g->d[2] - g->p[2], wlo, whi;                                   \
            tap_range(g, &rg, 2, kw, &wlo, &whi);                                         \
            T *dst = rowbase + ((kd * KH + kh) * KW + kw) * ldcol;                             \
            if (dlo > 0) memset(dst, 0, sizeof(T) * (size_t)(dlo * plane));                    \
            for (int64_t od = dlo; od < dhi; od++) {                                           \
              const T *sp = src + (od * sd + offd) * IH * IW;                                  \
              T *dp = dst + od * plane;                                                        \
              if (hlo > 0) memset(dp, 0, sizeof(T) * (size_t)(hlo * OW));                      \
              for (int64_t oh = hlo; oh < hhi; oh++) {                                         \
                /* s: input pixel of output column wlo (never before the row) */            \
                const T *s = sp + (oh * sh + offh) * IW + (wlo * sw + offw);                   \
                T *d = dp + oh * OW;                                                           \
                if (wlo > 0) zero_row_##SFX(d, wlo);                                           \
                if (sw == 1) {                                                                 \
                  copy_row_##SFX(d + wlo, s, whi - wlo);                                       \
                } else {                                                                       \
                  for (int64_t ow = 0; ow < whi - wlo; ow++) d[wlo + ow] = s[ow * sw];         \
                }                                                                              \
                if (whi < OW) zero_row_##SFX(d + whi, OW - whi);                               \
              }                                                                                \
              if (hhi < OH)                                                                    \
                memset(dp + hhi * OW, 0, sizeof(T) * (size_t)((OH - hhi) * OW));               \
            }                                                                                  \
            if (dhi < OD)                                                                      \
              memset(dst + dhi * plane, 0, sizeof(T) * (size_t)((OD - dhi) * plane));          \
          }                                                                                    \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  SN_VEC_CLONES static void col2im_range_##SFX(const sn_im2col_geom *g, const tap_ranges *rgp, const T *col, \
                                 int64_t ldcol, T *img, int64_t img_stride, int64_t jc0,      \
                                 int64_t jc1) {                                               \
    const int64_t C = g->C, IH = g->in[1], IW = g->in[2];                                      \
    const int64_t OH = g->out[1], OW = g->out[2];                                              \
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2];                                    \
    const int64_t sd = g->s[0], sh = g->s[1], sw = g->s[2];                                    \
    const int64_t plane = OH * OW, kprod = g->kprod, osz = g->out_size, isz = g->in_size;     \
    const tap_ranges rg = *rgp;                                                                \
    for (int64_t jc = jc0; jc < jc1; jc++) {                                                   \
      const int64_t j = jc / C, c = jc % C;                                                    \
      T *dimg = img + j * img_stride + c * isz;                                                \
      const T *rowbase = col + (c * kprod) * ldcol + j * osz;                                  \
      memset(dimg, 0, sizeof(T) * (size_t)isz);                                                \
      for (int64_t kd = 0; kd < KD; kd++) {                                                    \
        int64_t offd = kd * g->d[0] - g->p[0], dlo, dhi;                                       \
        tap_range(g, &rg, 0, kd, &dlo, &dhi);                                             \
        for (int64_t kh = 0; kh < KH; kh++) {                                                  \
          int64_t offh = kh * g->d[1] - g->p[1], hlo, hhi;                                     \
          tap_range(g, &rg, 1, kh, &hlo, &hhi);                                           \
          for (int64_t kw = 0; kw < KW; kw++) {                                                \
            int64_t offw = kw * g->d[2] - g->p[2], wlo, whi;                                   \
            tap_range(g, &rg, 2, kw, &wlo, &whi);                                         \
            const T *srow = rowbase + ((kd * KH + kh) * KW + kw) * ldcol;                      \
            for (int64_t od = dlo; od < dhi; od++) {                                           \
              T *ip = dimg + (od * sd + offd) * IH * IW;                                       \
              const T *cp = srow + od * plane;                                                 \
              for (int64_t oh = hlo; oh < hhi; oh++) {                                         \
                T *d = ip + (oh * sh + offh) * IW + (wlo * sw + offw);                         \
                const T *s = cp + oh * OW + wlo;                                               \
                if (sw == 1) {                                                                 \
                  add_row_##SFX(d, s, whi - wlo);                                              \
                } else {                                                                       \
                  for (int64_t ow = 0; ow < whi - wlo; ow++) d[ow * sw] += s[ow];              \
                }                                                                              \
              }                                                                                \
            }                                                                                  \
          }                                                                                    \
        }                                                                                      \
      }                                                                                        \
    }                                                                                          \
  }

/* The (image, channel) pairs split over the threads when par is set and the
 * work is large enough. */
#define SN_DEFINE_IM2COL_API(T, SFX)                                                           \
  void sn_im2col_##SFX(const sn_im2col_geom *g, const T *img, int64_t img_stride,             \
                       int64_t nimg, T *col, int64_t ldcol, int par) {                        \
    tap_ranges rg;                                                                             \
    tap_ranges_init(g, &rg);                                                                   \
    const int64_t total = nimg * g->C;                                                         \
    if (par && im2col_parallel(g, total)) {                                                    \
      SN_OMP(parallel num_threads(sn_num_threads()))                                           \
      {                                                                                        \
        const int64_t t = sn_thread_id(), nth = sn_par_team_size();                            \
        im2col_range_##SFX(g, &rg, img, img_stride, col, ldcol, total * t / nth,               \
                           total * (t + 1) / nth);                                             \
      }                                                                                        \
    } else {                                                                                   \
      im2col_range_##SFX(g, &rg, img, img_stride, col, ldcol, 0, total);                       \
    }                                                                                          \
  }                                                                                            \
  void sn_col2im_##SFX(const sn_im2col_geom *g, const T *col, int64_t ldcol, int64_t nimg,    \
                       T *img, int64_t img_stride, int par) {                                  \
    tap_ranges rg;                                                                             \
    tap_ranges_init(g, &rg);                                                                   \
    const int64_t total = nimg * g->C;                                                         \
    if (par && im2col_parallel(g, total)) {                                                    \
      SN_OMP(parallel num_threads(sn_num_threads()))                                           \
      {                                                                                        \
        const int64_t t = sn_thread_id(), nth = sn_par_team_size();                            \
        col2im_range_##SFX(g, &rg, col, ldcol, img, img_stride, total * t / nth,               \
                           total * (t + 1) / nth);                                             \
      }                                                                                        \
    } else {                                                                                   \
      col2im_range_##SFX(g, &rg, col, ldcol, img, img_stride, 0, total);                       \
    }                                                                                          \
  }

static int im2col_parallel(const sn_im2col_geom *g, int64_t total) {
  return total > 1 && !sn_in_parallel() && sn_num_threads() > 1 &&
         (double)total * (double)g->kprod * (double)g->out_size >= (double)SN_PAR_GRAIN;
}

SN_DEFINE_IM2COL(float, f32)
SN_DEFINE_IM2COL(double, f64)
SN_DEFINE_IM2COL_API(float, f32)
SN_DEFINE_IM2COL_API(double, f64)
