/* im2col / col2im for Convolution and Deconvolution (private to ops/).
 *
 * An "image" is C channels of a 1-D, 2-D or 3-D spatial grid, stored
 * channel-major (C, D, H, W); 1-D and 2-D images use D = H = 1 (and D = 1).
 * The column matrix of one image has C * kprod rows, row
 * r = c * kprod + (kd * KH + kh) * KW + kw, and one column per output
 * position (od * OH + oh) * OW + ow.  Several images go side by side: image j
 * of a batch of nimg occupies columns [j * out_size, (j + 1) * out_size) of a
 * matrix whose rows are ldcol elements apart, so one GEMM covers them all.
 *
 * im2col writes every element of the column block (zeros where the window
 * falls into the padding).  col2im overwrites the images with the sum of the
 * column entries that map to each pixel (pixels no window reaches get 0).
 * Both split the work over (image, channel) pairs with OpenMP when par is
 * nonzero and the work is large enough; with par = 0 they run on the calling
 * thread (for callers that are already inside a parallel region, each
 * thread on its own images).  They never call BLAS. */
#ifndef SN_OPS_IM2COL_H
#define SN_OPS_IM2COL_H

#include <stdint.h>

typedef struct {
  int64_t C;                      /* channels of the image */
  int64_t in[3];                  /* image grid (D, H, W); 1 for unused dims */
  int64_t out[3];                 /* output grid (OD, OH, OW) */
  int64_t k[3], s[3], p[3], d[3]; /* kernel, stride, pad, dilate per dim */
  int64_t kprod;                  /* k[0] * k[1] * k[2] */
  int64_t in_size;                /* in[0] * in[1] * in[2] */
  int64_t out_size;               /* out[0] * out[1] * out[2] */
} sn_im2col_geom;

/* Fills kprod, in_size and out_size from the other fields. */
void sn_im2col_geom_finish(sn_im2col_geom *g);

/* img points at nimg images, img_stride elements apart (usually C * in_size);
 * col at the first element of a (C * kprod) x (nimg * out_size) block with
 * row stride ldcol. */
void sn_im2col_f32(const sn_im2col_geom *g, const float *img, int64_t img_stride, int64_t nimg,
                   float *col, int64_t ldcol, int par);
void sn_im2col_f64(const sn_im2col_geom *g, const double *img, int64_t img_stride, int64_t nimg,
                   double *col, int64_t ldcol, int par);
void sn_col2im_f32(const sn_im2col_geom *g, const float *col, int64_t ldcol, int64_t nimg,
                   float *img, int64_t img_stride, int par);
void sn_col2im_f64(const sn_im2col_geom *g, const double *col, int64_t ldcol, int64_t nimg,
                   double *img, int64_t img_stride, int par);

#endif
