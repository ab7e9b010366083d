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

#if defined(SN_HAVE_X512)
#include <immintrin.h>

/* float32, stride 1 along the width (any pad and dilation): each output row
 * segment of up to 16 columns is one masked load and one masked store (the
 * mask keeps the columns whose input lies inside the row: zeros elsewhere in
 * im2col, untouched in col2im).  Same values as the loops above. */
static inline __mmask16 x_lanes(int64_t lo, int64_t hi) { /* lanes l with lo <= l < hi */
  if (hi > 16) hi = 16;
  if (lo < 0) lo = 0;
  if (hi <= lo) return 0;
  return (__mmask16)(((1u << (hi - lo)) - 1) << lo);
}

#define SN_X_MAXQ 8 /* 16-column chunks of an output row (OW <= 128) */
#define SN_X_MAXKW 32

SN_X512 static void im2col_range_x512(const sn_im2col_geom *g, const tap_ranges *rg,
                                      const float *img, int64_t img_stride, float *col,
                                      int64_t ldcol, int64_t jc0, int64_t jc1) {
  const int64_t C = g->C, IH = g->in[1], IW = g->in[2];
  const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
  const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2];
  const int64_t sd = g->s[0], sh = g->s[1];
  const int64_t plane = OH * OW, kprod = g->kprod, osz = g->out_size, isz = g->in_size;
  const __m512 zero = _mm512_setzero_ps();
  /* narrow rows: R whole output rows per vector; wide rows: NQ chunks */
  const int64_t R = OW <= 16 ? 16 / OW : 1, NQ = (OW + 15) / 16;
  __mmask16 lm[SN_X_MAXKW][SN_X_MAXQ > 16 ? SN_X_MAXQ : 16], sm[SN_X_MAXQ];
  int64_t off[SN_X_MAXKW];
  for (int64_t kw = 0; kw < KW; kw++) {
    int64_t wlo, whi;
    tap_range(g, rg, 2, kw, &wlo, &whi);
    off[kw] = kw * g->d[2] - g->p[2];
    if (OW <= 16)
      for (int64_t r = 0; r < R; r++) lm[kw][r] = (__mmask16)(x_lanes(wlo, whi) << (r * OW));
    else
      for (int64_t q = 0; q < NQ; q++) lm[kw][q] = x_lanes(wlo - 16 * q, whi - 16 * q);
  }
  for (int64_t q = 0; q < NQ; q++) sm[q] = x_lanes(0, OW - 16 * q);
  for (int64_t jc = jc0; jc < jc1; jc++) {
    const int64_t j = jc / C, c = jc % C;
    const float *src = img + j * img_stride + c * isz;
    float *rowbase = col + (c * kprod) * ldcol + j * osz;
    for (int64_t kd = 0; kd < KD; kd++) {
      int64_t offd = kd * g->d[0] - g->p[0], dlo, dhi;
      tap_range(g, rg, 0, kd, &dlo, &dhi);
      for (int64_t kh = 0; kh < KH; kh++) {
        int64_t offh = kh * g->d[1] - g->p[1], hlo, hhi;
        tap_range(g, rg, 1, kh, &hlo, &hhi);
        float *dst = rowbase + ((kd * KH + kh) * KW) * ldcol; /* row of kw = 0 */
        for (int64_t od = 0; od < OD; od++) {
          float *dp = dst + od * plane;
          if (od < dlo || od >= dhi) {
            for (int64_t kw = 0; kw < KW; kw++)
              memset(dp + kw * ldcol, 0, sizeof(float) * (size_t)plane);
            continue;
          }
          const float *sp = src + (od * sd + offd) * IH * IW;
          if (OW <= 16) {
            for (int64_t oh0 = 0; oh0 < OH; oh0 += R) {
              const int64_t nr = OH - oh0 < R ? OH - oh0 : R;
              const __mmask16 st = x_lanes(0, nr * OW);
              const float *rows[16];
              int64_t nv = 0;
              for (int64_t r = 0; r < nr; r++) {
                const int64_t oh = oh0 + r;
                /* lane r * OW + ow <- input column off[kw] + ow of row oh */
                rows[r] = oh < hlo || oh >= hhi ? NULL : sp + (oh * sh + offh) * IW - r * OW;
                nv += rows[r] != NULL;
              }
              if (OW == 8 && nv == 2 && nr == 2) {
                /* two 8-wide rows (LeNet's 8 x 8 maps): two 256-bit loads */
                for (int64_t kw = 0; kw < KW; kw++) {
                  __m512 v;
                  if (lm[kw][0] == 0xFF) {
                    const __m256d lo = _mm256_castps_pd(_mm256_loadu_ps(rows[0] + off[kw]));
                    const __m256d hi = _mm256_castps_pd(_mm256_loadu_ps(rows[1] + 8 + off[kw]));
                    v = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1));
                  } else {
                    v = _mm512_maskz_loadu_ps(lm[kw][0], rows[0] + off[kw]);
                    v = _mm512_mask_loadu_ps(v, lm[kw][1], rows[1] + off[kw]);
                  }
                  _mm512_storeu_ps(dp + kw * ldcol + oh0 * OW, v);
                }
                continue;
              }
              for (int64_t kw = 0; kw < KW; kw++) {
                __m512 v = zero;
                if (nv)
                  for (int64_t r = 0; r < nr; r++)
                    if (rows[r]) v = _mm512_mask_loadu_ps(v, lm[kw][r], rows[r] + off[kw]);
                if (st == 0xFFFF)
                  _mm512_storeu_ps(dp + kw * ldcol + oh0 * OW, v);
                else
                  _mm512_mask_storeu_ps(dp + kw * ldcol + oh0 * OW, st, v);
              }
            }
          } else {
            /* one column row (kw) at a time: sequential stores */
            for (int64_t kw = 0; kw < KW; kw++) {
              for (int64_t oh = 0; oh < OH; oh++) {
                float *dk = dp + kw * ldcol + oh * OW;
                if (oh < hlo || oh >= hhi) {
                  memset(dk, 0, sizeof(float) * (size_t)OW);
                  continue;
                }
                const float *s = sp + (oh * sh + offh) * IW + off[kw];
                for (int64_t q = 0; q < NQ; q++) {
                  /* masked moves are slow on some CPUs: plain ones where full */
                  if (lm[kw][q] == 0xFFFF && sm[q] == 0xFFFF)
                    _mm512_storeu_ps(dk + 16 * q, _mm512_loadu_ps(s + 16 * q));
                  else if (lm[kw][q] == 0xFF && sm[q] == 0xFF)
                    _mm256_storeu_ps(dk + 16 * q, _mm256_loadu_ps(s + 16 * q));
                  else
                    _mm512_mask_storeu_ps(dk + 16 * q, sm[q],
                                          _mm512_maskz_loadu_ps(lm[kw][q], s + 16 * q));
                }
              }
            }
          }
        }
      }
    }
  }
}

/* col2im as a gather: each image row segment of 16 pixels sums, in the
 * order of the loops above (kd, kh, kw), the column entries that map to it,
 * in a register, and is written once (no read-modify-write of the image). */
SN_X512 static void col2im_range_x512(const sn_im2col_geom *g, const tap_ranges *rg,
                                      const float *col, int64_t ldcol, float *img,
                                      int64_t img_stride, int64_t jc0, int64_t jc1) {
  const int64_t C = g->C, ID = g->in[0], IH = g->in[1], IW = g->in[2];
  const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
  const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2];
  const int64_t sd = g->s[0], sh = g->s[1];
  const int64_t plane = OH * OW, kprod = g->kprod, osz = g->out_size, isz = g->in_size;
  __mmask16 mk[SN_X_MAXKW];
  int64_t off[SN_X_MAXKW];
  (void)rg;
  for (int64_t x0 = 0; x0 < IW; x0 += 16) {
    /* pixel x0 + l takes output column x0 + l - off[kw] when that is in [0, OW) */
    const __mmask16 sm = x_lanes(0, IW - x0);
    for (int64_t kw = 0; kw < KW; kw++) {
      off[kw] = kw * g->d[2] - g->p[2];
      mk[kw] = x_lanes(off[kw] - x0, OW + off[kw] - x0) & sm;
    }
    for (int64_t jc = jc0; jc < jc1; jc++) {
      const int64_t j = jc / C, c = jc % C;
      float *dimg = img + j * img_stride + c * isz + x0;
      const float *rowbase = col + (c * kprod) * ldcol + j * osz + x0;
      for (int64_t z = 0; z < ID; z++)
        for (int64_t y = 0; y < IH; y++) {
          __m512 acc = _mm512_setzero_ps();
          for (int64_t kd = 0; kd < KD; kd++) {
            int64_t od = z - (kd * g->d[0] - g->p[0]);
            if (sd != 1) {
              if (od < 0 || od % sd) continue;
              od /= sd;
            }
            if (od < 0 || od >= OD) continue;
            for (int64_t kh = 0; kh < KH; kh++) {
              int64_t oh = y - (kh * g->d[1] - g->p[1]);
              if (sh != 1) {
                if (oh < 0 || oh % sh) continue;
                oh /= sh;
              }
              if (oh < 0 || oh >= OH) continue;
              const float *cp = rowbase + ((kd * KH + kh) * KW) * ldcol + od * plane + oh * OW;
              for (int64_t kw = 0; kw < KW; kw++)
                acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mk[kw], cp + kw * ldcol - off[kw]));
            }
          }
          _mm512_mask_storeu_ps(dimg + (z * IH + y) * IW, sm, acc);
        }
    }
  }
}
#endif

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
/* float32 stride-1 rows take the AVX-512 loops where the CPU has them. */
#if defined(SN_HAVE_X512)
static void im2col_range_f32_any(const sn_im2col_geom *g, const tap_ranges *rg, const float *img,
                                 int64_t img_stride, float *col, int64_t ldcol, int64_t jc0,
                                 int64_t jc1) {
  if (g->s[2] == 1 && g->k[2] <= SN_X_MAXKW && g->out[2] <= 16 * SN_X_MAXQ && sn_cpu_avx512())
    im2col_range_x512(g, rg, img, img_stride, col, ldcol, jc0, jc1);
  else
    im2col_range_f32(g, rg, img, img_stride, col, ldcol, jc0, jc1);
}
static void col2im_range_f32_any(const sn_im2col_geom *g, const tap_ranges *rg, const float *col,
                                 int64_t ldcol, float *img, int64_t img_stride, int64_t jc0,
                                 int64_t jc1) {
  if (g->s[2] == 1 && g->k[2] <= SN_X_MAXKW && sn_cpu_avx512())
    col2im_range_x512(g, rg, col, ldcol, img, img_stride, jc0, jc1);
  else
    col2im_range_f32(g, rg, col, ldcol, img, img_stride, jc0, jc1);
}
#define im2col_range_f32 im2col_range_f32_any
#define col2im_range_f32 col2im_range_f32_any
#endif

SN_DEFINE_IM2COL_API(float, f32)
SN_DEFINE_IM2COL_API(double, f64)
