/* Fused optimizer updates (MXNet 1.x): sgd_update, sgd_mom_update,
 * nag_mom_update, adam_update, rmsprop_update, rmspropalex_update,
 * ftrl_update, ftml_update, signsgd_update, signum_update, plus two
 * symnet-specific fused steps for the R optimizers that MXNet R builds from
 * symbol arithmetic: _adagrad_update (alias _sparse_adagrad_update, which is
 * the same formula in MXNet for dense arrays) and _adadelta_update.
 *
 * Each op reads weight and grad (and its state arrays), writes the new weight
 * as its output, and UPDATES ITS STATE INPUTS IN PLACE (mom, mean, var, n,
 * g, delta, z, d, v, history, acc_g, acc_delta), like MXNet's mutable inputs.
 * The output may be the weight array itself.  One fused pass over memory,
 * OpenMP-parallel; no gradient (SN_OP_NO_GRAD).  Arithmetic is in the array's
 * type with the float parameters converted to it, as in MXNet's kernels.
 * clip(x) = max(min(x, c), -c) applies when clip_gradient >= 0.
 *
 *   sgd:        w = (1 - lr wd) w - lr clip(rs g)
 *   sgd_mom:    mom = momentum mom - lr wd w - lr clip(rs g); w = w + mom
 *   nag_mom:    gr = clip(rs g) + wd w; mom = momentum mom;
 *               w = w - mom + (momentum+1)(mom - lr gr); mom = mom - lr gr
 *   adam:       gr = clip(rs g + wd w); mean = b1 mean + (1-b1) gr;
 *               var = b2 var + (1-b2) gr^2; w = w - lr mean/(sqrt(var)+eps)
 *               (no bias correction: the caller folds it into lr, as MXNet)
 *   rmsprop:    gr = clip(rs g + wd w); n = (1-g1) gr^2 + g1 n;
 *               w = w - lr gr/sqrt(n + eps), clipped to clip_weights if >= 0
 *   rmspropalex: gr as rmsprop; n as rmsprop; g = (1-g1) gr + g1 g;
 *               delta = g2 delta - lr gr/sqrt(n - g^2 + eps); w = w + delta
 *   ftrl:       gr = clip(rs g); z += gr - (sqrt(n + gr^2) - sqrt(n)) w/lr;
 *               n += gr^2; w = (sign(z) lamda1 - z)/((beta + sqrt(n))/lr + wd)
 *               if |z| > lamda1 else 0
 *   ftml:       gr = clip(rs g + wd w); v = b2 v + (1-b2) gr^2;
 *               d_t = (1-b1^t)/lr (sqrt(v/(1-b2^t)) + eps);
 *               z = b1 z + (1-b1) gr - (d_t - b1 d) w; d = d_t; w = -z/d_t
 *   signsgd:    w = (1 - lr wd) w - lr sign(g)
 *   signum:     mom = momentum mom - (1-momentum)(wd w + clip(rs g));
 *               w = (1 - lr wd_lh) w + lr sign(mom)
 *   _adagrad:   gr = clip(rs g); history += gr^2;
 *               w = w - lr (gr/sqrt(history + eps) + wd w)
 *   _adadelta:  gr = clip(rs g); acc_g = rho acc_g + (1-rho) gr^2;
 *               delta = sqrt(acc_delta + eps)/sqrt(acc_g + eps) gr;
 *               acc_delta = rho acc_delta + (1-rho) delta^2; w = w - delta - wd w */
#include <math.h>
#include <string.h>

#include "../cpu.h"
#include "../cpu_par.h"
#include "../op.h"
#include "elemwise.h"

#define CLIP(T, x, c) ((x) > (c) ? (c) : ((x) < -(c) ? -(c) : (x)))
#define SQRTT(T, x) (sizeof(T) == sizeof(float) ? (T)sqrtf((float)(x)) : (T)sqrt((double)(x)))
#define SIGNT(T, x) ((T)(((x) > (T)0) - ((x) < (T)0)))

#define LR_DOC "Learning rate"
#define WD_DOC                                                                         \
  "Weight decay augments the objective function with a regularization term that penalizes " \
  "large weights. The penalty scales with the square of the magnitude of each weight."
#define RS_DOC "Rescale gradient to grad = rescale_grad*grad."
#define CLIP_DOC                                                                       \
  "Clip gradient to the range of [-clip_gradient, clip_gradient] If clip_gradient <= 0, "  \
  "gradient clipping is turned off. grad = max(min(grad, clip_gradient), -clip_gradient)."
#define LAZY_DOC "If true, lazy updates are applied if gradient's stype is row_sparse."
#define CLIPW_DOC                                                                      \
  "Clip weights to the range of [-clip_weights, clip_weights] If clip_weights <= 0, weight " \
  "clipping is turned off. weights = max(min(weights, clip_weights), -clip_weights)."

static const char *const in_wg[] = {"weight", "grad", NULL};
static const char *const in_wgm[] = {"weight", "grad", "mom", NULL};
static const char *const in_adam[] = {"weight", "grad", "mean", "var", NULL};
static const char *const in_rmsprop[] = {"weight", "grad", "n", NULL};
static const char *const in_rmspropalex[] = {"weight", "grad", "n", "g", "delta", NULL};
static const char *const in_ftrl[] = {"weight", "grad", "z", "n", NULL};
static const char *const in_ftml[] = {"weight", "grad", "d", "v", "z", NULL};
static const char *const in_adagrad[] = {"weight", "grad", "history", NULL};
static const char *const in_adadelta[] = {"weight", "grad", "acc_g", "acc_delta", NULL};

/* All inputs are the weight's shape and dtype; the output too. */
static int upd_check(const sn_call *c) {
  const int64_t n = sn_tensor_size(c->in[0]);
  for (int i = 1; i < c->nin; i++)
    if (sn_tensor_size(c->in[i]) != n || c->in[i]->dtype != c->in[0]->dtype)
      return sn_error(SN_ERR_SHAPE, "%s: input %d does not match the weight's shape and dtype",
                      c->p->op->name, i + 1);
  if (c->out[0]->dtype != c->in[0]->dtype || sn_tensor_size(c->out[0]) != n)
    return sn_error(SN_ERR_SHAPE, "%s: the output does not match the weight", c->p->op->name);
  return SN_OK;
}

#define UPD_OP(VAR, NAME, ALIASES, INPUTS, NPARAMS, DOC)                               \
  static const sn_op VAR = {                                                           \
      .name = NAME,                                                                    \
      .aliases = ALIASES,                                                              \
      .doc = DOC,                                                                      \
      .params = VAR##_params,                                                          \
      .nparams = NPARAMS,                                                              \
      .inputs = INPUTS,                                                                \
      .infer_shape = sn_infer_same_shape,                                              \
      .forward_cpu = VAR##_forward,                                                    \
      .flags = SN_OP_NO_GRAD,                                                          \
      .inplace_in = SN_INPLACE(0),                                                                 \
      .inplace_grad = SN_INPLACE(-1),                                                              \
  }

/* ------------------------------------------------------------------ */
/* sgd_update                                                          */
/* ------------------------------------------------------------------ */

static const sn_param_spec sgd_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
    {"lazy_update", SN_PT_BOOL, "True", NULL, LAZY_DOC},
};

static int sgd_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, wd = (T)p->v[1].f, rs = (T)p->v[2].f, cg = (T)p->v[3].f;
    const int clip = p->v[3].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) {
      const T gr = clip ? CLIP(T, rs * g[i], cg) : rs * g[i];
      out[i] = ((T)1 - lr * wd) * w[i] - lr * gr;
    }
  });
  return SN_OK;
}

UPD_OP(sgd, "sgd_update", NULL, in_wg, 5,
       "Update function for Stochastic Gradient Descent (SGD): weight = (1 - lr*wd)*weight - "
       "lr*clip(rescale_grad*grad). Returns the new weight.");

/* ------------------------------------------------------------------ */
/* sgd_mom_update                                                      */
/* ------------------------------------------------------------------ */

static const sn_param_spec sgd_mom_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"momentum", SN_PT_FLOAT, "0", NULL, "The decay rate of momentum estimates at each epoch."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
    {"lazy_update", SN_PT_BOOL, "True", NULL, LAZY_DOC},
};

/* The common case (float32, no clipping) as one vectorised run per block:
 * the same arithmetic as the generic loop below, element by element. */
SN_VEC_CLONES static void sgd_mom_run_f32(float *out, float *mom, const float *w, const float *g,
                                          int64_t n, float lr, float mo, float wd, float rs) {
  SN_EW_SIMD
  for (int64_t i = 0; i < n; i++) {
    const float gr = rs * g[i];
    const float m = mo * mom[i] - lr * wd * w[i] - lr * gr;
    mom[i] = m;
    out[i] = w[i] + m;
  }
}

#define SN_UPD_BLOCK 8192

static int sgd_mom_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  if (c->in[0]->dtype == SN_F32 && !(p->v[4].f >= 0)) {
    const float lr = (float)p->v[0].f, mo = (float)p->v[1].f, wd = (float)p->v[2].f,
                rs = (float)p->v[3].f;
    const float *w = SN_PTR(float, c->in[0]), *g = SN_PTR(float, c->in[1]);
    float *mom = SN_PTR(float, c->in[2]), *out = SN_PTR(float, c->out[0]);
    SN_FOR_BLOCKS(n, SN_UPD_BLOCK, lo, len,
                  sgd_mom_run_f32(out + lo, mom + lo, w + lo, g + lo, len, lr, mo, wd, rs));
    return SN_OK;
  }
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, mo = (T)p->v[1].f, wd = (T)p->v[2].f, rs = (T)p->v[3].f,
            cg = (T)p->v[4].f;
    const int clip = p->v[4].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *mom = SN_PTR(T, c->in[2]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) {
      const T gr = clip ? CLIP(T, rs * g[i], cg) : rs * g[i];
      const T m = mo * mom[i] - lr * wd * w[i] - lr * gr;
      mom[i] = m;
      out[i] = w[i] + m;
    }
  });
  return SN_OK;
}

UPD_OP(sgd_mom, "sgd_mom_update", NULL, in_wgm, 6,
       "Momentum update function for SGD: mom = momentum*mom - lr*wd*weight - "
       "lr*clip(rescale_grad*grad); weight = weight + mom. Returns the new weight and updates "
       "`mom` in place.");

/* ------------------------------------------------------------------ */
/* nag_mom_update                                                      */
/* ------------------------------------------------------------------ */

static const sn_param_spec nag_mom_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"momentum", SN_PT_FLOAT, "0", NULL, "The decay rate of momentum estimates at each epoch."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
};

static int nag_mom_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, mo = (T)p->v[1].f, wd = (T)p->v[2].f, rs = (T)p->v[3].f,
            cg = (T)p->v[4].f;
    const int clip = p->v[4].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *mom = SN_PTR(T, c->in[2]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) {
      const T gr = (clip ? CLIP(T, rs * g[i], cg) : rs * g[i]) + wd * w[i];
      const T m = mo * mom[i];
      const T wi = w[i];
      mom[i] = m - lr * gr;
      out[i] = wi - m + (mo + (T)1) * (m - lr * gr);
    }
  });
  return SN_OK;
}

UPD_OP(nag_mom, "nag_mom_update", NULL, in_wgm, 5,
       "Update function for Nesterov Accelerated Gradient (NAG) with momentum. Returns the new "
       "weight and updates `mom` in place.");

/* ------------------------------------------------------------------ */
/* adam_update                                                         */
/* ------------------------------------------------------------------ */

static const sn_param_spec adam_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"beta1", SN_PT_FLOAT, "0.9", NULL, "The decay rate for the 1st moment estimates."},
    {"beta2", SN_PT_FLOAT, "0.999", NULL, "The decay rate for the 2nd moment estimates."},
    {"epsilon", SN_PT_FLOAT, "1e-08", NULL, "A small constant for numerical stability."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
    {"lazy_update", SN_PT_BOOL, "True", NULL, LAZY_DOC},
};

static int adam_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, b1 = (T)p->v[1].f, b2 = (T)p->v[2].f, eps = (T)p->v[3].f,
            wd = (T)p->v[4].f, rs = (T)p->v[5].f, cg = (T)p->v[6].f;
    const int clip = p->v[6].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *mean = SN_PTR(T, c->in[2]);
    T *var = SN_PTR(T, c->in[3]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++) {
      T gr = rs * g[i] + wd * w[i];
      if (clip)
        gr = CLIP(T, gr, cg);
      const T m = b1 * mean[i] + ((T)1 - b1) * gr;
      const T v = b2 * var[i] + ((T)1 - b2) * gr * gr;
      mean[i] = m;
      var[i] = v;
      out[i] = w[i] - lr * m / (SQRTT(T, v) + eps);
    }
  });
  return SN_OK;
}

UPD_OP(adam, "adam_update", NULL, in_adam, 8,
       "Update function for the Adam optimizer (without bias correction, which the caller "
       "folds into lr). Returns the new weight and updates `mean` and `var` in place.");

/* ------------------------------------------------------------------ */
/* rmsprop_update                                                      */
/* ------------------------------------------------------------------ */

static const sn_param_spec rmsprop_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"gamma1", SN_PT_FLOAT, "0.95", NULL, "The decay rate of the running average."},
    {"epsilon", SN_PT_FLOAT, "1e-08", NULL, "A small constant for numerical stability."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
    {"clip_weights", SN_PT_FLOAT, "-1", NULL, CLIPW_DOC},
};

static int rmsprop_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, g1 = (T)p->v[1].f, eps = (T)p->v[2].f, wd = (T)p->v[3].f,
            rs = (T)p->v[4].f, cg = (T)p->v[5].f, cw = (T)p->v[6].f;
    const int clip = p->v[5].f >= 0, clipw = p->v[6].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *st = SN_PTR(T, c->in[2]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++) {
      T gr = rs * g[i] + wd * w[i];
      if (clip)
        gr = CLIP(T, gr, cg);
      const T s = ((T)1 - g1) * (gr * gr) + g1 * st[i];
      st[i] = s;
      T nw = w[i] - lr * (gr / SQRTT(T, s + eps));
      if (clipw)
        nw = CLIP(T, nw, cw);
      out[i] = nw;
    }
  });
  return SN_OK;
}

UPD_OP(rmsprop, "rmsprop_update", NULL, in_rmsprop, 7,
       "Update function for the RMSProp optimizer (Tieleman and Hinton). Returns the new weight "
       "and updates `n` in place.");

/* ------------------------------------------------------------------ */
/* rmspropalex_update                                                  */
/* ------------------------------------------------------------------ */

static const sn_param_spec rmspropalex_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"gamma1", SN_PT_FLOAT, "0.95", NULL, "Decay rate."},
    {"gamma2", SN_PT_FLOAT, "0.9", NULL, "Decay rate."},
    {"epsilon", SN_PT_FLOAT, "1e-08", NULL, "A small constant for numerical stability."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
    {"clip_weights", SN_PT_FLOAT, "-1", NULL, CLIPW_DOC},
};

static int rmspropalex_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, g1 = (T)p->v[1].f, g2 = (T)p->v[2].f, eps = (T)p->v[3].f,
            wd = (T)p->v[4].f, rs = (T)p->v[5].f, cg = (T)p->v[6].f, cw = (T)p->v[7].f;
    const int clip = p->v[6].f >= 0, clipw = p->v[7].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *sn = SN_PTR(T, c->in[2]);
    T *sg = SN_PTR(T, c->in[3]);
    T *dl = SN_PTR(T, c->in[4]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++) {
      T gr = rs * g[i] + wd * w[i];
      if (clip)
        gr = CLIP(T, gr, cg);
      const T nn = ((T)1 - g1) * gr * gr + g1 * sn[i];
      const T gg = ((T)1 - g1) * gr + g1 * sg[i];
      const T d = g2 * dl[i] - lr * gr / SQRTT(T, nn - gg * gg + eps);
      sn[i] = nn;
      sg[i] = gg;
      dl[i] = d;
      T nw = w[i] + d;
      if (clipw)
        nw = CLIP(T, nw, cw);
      out[i] = nw;
    }
  });
  return SN_OK;
}

UPD_OP(rmspropalex, "rmspropalex_update", NULL, in_rmspropalex, 8,
       "Update function for the centered RMSProp optimizer (Graves 2013). Returns the new weight "
       "and updates `n`, `g` and `delta` in place.");

/* ------------------------------------------------------------------ */
/* ftrl_update                                                         */
/* ------------------------------------------------------------------ */

static const sn_param_spec ftrl_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"lamda1", SN_PT_FLOAT, "0.01", NULL, "The L1 regularization coefficient."},
    {"beta", SN_PT_FLOAT, "1", NULL, "Per-Coordinate Learning Rate beta."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
};

static int ftrl_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, l1 = (T)p->v[1].f, beta = (T)p->v[2].f, wd = (T)p->v[3].f,
            rs = (T)p->v[4].f, cg = (T)p->v[5].f;
    const int clip = p->v[5].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *z = SN_PTR(T, c->in[2]);
    T *nn = SN_PTR(T, c->in[3]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 6)
    for (int64_t i = 0; i < n; i++) {
      T gr = rs * g[i];
      if (clip)
        gr = CLIP(T, gr, cg);
      const T zi = z[i] + gr - (SQRTT(T, nn[i] + gr * gr) - SQRTT(T, nn[i])) * w[i] / lr;
      const T ni = nn[i] + gr * gr;
      z[i] = zi;
      nn[i] = ni;
      const T az = zi < (T)0 ? -zi : zi;
      out[i] = az > l1 ? (SIGNT(T, zi) * l1 - zi) / ((beta + SQRTT(T, ni)) / lr + wd) : (T)0;
    }
  });
  return SN_OK;
}

UPD_OP(ftrl, "ftrl_update", NULL, in_ftrl, 6,
       "Update function for the Ftrl optimizer (McMahan et al. 2013). Returns the new weight "
       "and updates `z` and `n` in place.");

/* ------------------------------------------------------------------ */
/* ftml_update                                                         */
/* ------------------------------------------------------------------ */

static const sn_param_spec ftml_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, "Learning rate."},
    {"beta1", SN_PT_FLOAT, "0.6", NULL, "Generally close to 0.5."},
    {"beta2", SN_PT_FLOAT, "0.999", NULL, "Generally close to 1."},
    {"epsilon", SN_PT_FLOAT, "1e-08", NULL, "Epsilon to prevent div 0."},
    {"t", SN_PT_INT, NULL, NULL, "Number of update."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_grad", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
};

static int ftml_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  if (!(p->v[1].f >= 0 && p->v[1].f <= 1) || !(p->v[2].f >= 0 && p->v[2].f <= 1))
    return sn_error(SN_ERR_ARG, "ftml_update: beta1 and beta2 must be in [0, 1]");
  if (p->v[4].i < 1)
    return sn_error(SN_ERR_ARG, "ftml_update: t must be at least 1, got %lld",
                    (long long)p->v[4].i);
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, b1 = (T)p->v[1].f, b2 = (T)p->v[2].f, eps = (T)p->v[3].f,
            wd = (T)p->v[5].f, rs = (T)p->v[6].f, cg = (T)p->v[7].f;
    const T b1t = (T)pow(p->v[1].f, (double)p->v[4].i), b2t = (T)pow(p->v[2].f, (double)p->v[4].i);
    const int clip = p->v[7].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *d = SN_PTR(T, c->in[2]);
    T *v = SN_PTR(T, c->in[3]);
    T *z = SN_PTR(T, c->in[4]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 6)
    for (int64_t i = 0; i < n; i++) {
      T gr = rs * g[i] + wd * w[i];
      if (clip)
        gr = CLIP(T, gr, cg);
      const T vi = b2 * v[i] + ((T)1 - b2) * gr * gr;
      const T dt = ((T)1 - b1t) / lr * (SQRTT(T, vi / ((T)1 - b2t)) + eps);
      const T zi = b1 * z[i] + ((T)1 - b1) * gr - (dt - b1 * d[i]) * w[i];
      v[i] = vi;
      z[i] = zi;
      d[i] = dt;
      out[i] = -zi / dt;
    }
  });
  return SN_OK;
}

UPD_OP(ftml, "ftml_update", NULL, in_ftml, 8,
       "Update function for the FTML optimizer (Zheng and Kwok 2017). Returns the new weight and "
       "updates `d`, `v` and `z` in place.");

/* ------------------------------------------------------------------ */
/* signsgd_update / signum_update                                      */
/* ------------------------------------------------------------------ */

static const sn_param_spec signsgd_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
};

static int signsgd_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, wd = (T)p->v[1].f;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++)
      out[i] = ((T)1 - lr * wd) * w[i] - lr * SIGNT(T, g[i]);
  });
  return SN_OK;
}

UPD_OP(signsgd, "signsgd_update", NULL, in_wg, 4,
       "Update function for SignSGD: weight = (1 - lr*wd)*weight - lr*sign(grad) "
       "(clip_gradient has no effect).");

static const sn_param_spec signum_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"momentum", SN_PT_FLOAT, "0", NULL, "The decay rate of momentum estimates at each epoch."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
    {"wd_lh", SN_PT_FLOAT, "0", NULL,
     "The amount of weight decay that does not go into gradient/momentum calculations "
     "otherwise do weight decay algorithmically only."},
};

static int signum_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, mo = (T)p->v[1].f, wd = (T)p->v[2].f, rs = (T)p->v[3].f,
            cg = (T)p->v[4].f, wdlh = (T)p->v[5].f;
    const int clip = p->v[4].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *mom = SN_PTR(T, c->in[2]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) {
      const T gr = clip ? CLIP(T, rs * g[i], cg) : rs * g[i];
      const T m = mo * mom[i] - ((T)1 - mo) * wd * w[i] - ((T)1 - mo) * gr;
      mom[i] = m;
      out[i] = ((T)1 - lr * wdlh) * w[i] + lr * SIGNT(T, m);
    }
  });
  return SN_OK;
}

UPD_OP(signum, "signum_update", NULL, in_wgm, 6,
       "SIGN momentUM (Signum) optimizer: mom = momentum*mom - (1-momentum)*(wd*weight + "
       "clip(rescale_grad*grad)); weight = (1 - lr*wd_lh)*weight + lr*sign(mom). Updates `mom` "
       "in place.");

/* ------------------------------------------------------------------ */
/* _adagrad_update                                                     */
/* ------------------------------------------------------------------ */

static const sn_param_spec adagrad_params[] = {
    {"lr", SN_PT_FLOAT, NULL, NULL, LR_DOC},
    {"epsilon", SN_PT_FLOAT, "1e-07", NULL, "epsilon"},
    {"wd", SN_PT_FLOAT, "0", NULL, "weight decay"},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
};

static int adagrad_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T lr = (T)p->v[0].f, eps = (T)p->v[1].f, wd = (T)p->v[2].f, rs = (T)p->v[3].f,
            cg = (T)p->v[4].f;
    const int clip = p->v[4].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *h = SN_PTR(T, c->in[2]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 4)
    for (int64_t i = 0; i < n; i++) {
      const T gr = clip ? CLIP(T, rs * g[i], cg) : rs * g[i];
      const T hi = h[i] + gr * gr;
      h[i] = hi;
      out[i] = w[i] - lr * (gr / SQRTT(T, hi + eps) + wd * w[i]);
    }
  });
  return SN_OK;
}

UPD_OP(adagrad, "_adagrad_update", "_sparse_adagrad_update", in_adagrad, 5,
       "Update function for AdaGrad (dense): history += g^2; weight -= lr*(g/sqrt(history + "
       "epsilon) + wd*weight), g = clip(rescale_grad*grad). Updates `history` in place.");

/* ------------------------------------------------------------------ */
/* _adadelta_update                                                    */
/* ------------------------------------------------------------------ */

static const sn_param_spec adadelta_params[] = {
    {"rho", SN_PT_FLOAT, "0.9", NULL, "Decay rate for both squared gradients and delta."},
    {"epsilon", SN_PT_FLOAT, "1e-05", NULL, "A small constant for numerical stability."},
    {"wd", SN_PT_FLOAT, "0", NULL, WD_DOC},
    {"rescale_grad", SN_PT_FLOAT, "1", NULL, RS_DOC},
    {"clip_gradient", SN_PT_FLOAT, "-1", NULL, CLIP_DOC},
};

static int adadelta_forward(sn_call *c) {
  SN_TRY(upd_check(c));
  const sn_params *p = c->p;
  const int64_t n = sn_tensor_size(c->in[0]);
  SN_DISPATCH_FLOAT(c->in[0]->dtype, T, {
    const T rho = (T)p->v[0].f, eps = (T)p->v[1].f, wd = (T)p->v[2].f, rs = (T)p->v[3].f,
            cg = (T)p->v[4].f;
    const int clip = p->v[4].f >= 0;
    const T *w = SN_PTR(T, c->in[0]);
    const T *g = SN_PTR(T, c->in[1]);
    T *ag = SN_PTR(T, c->in[2]);
    T *ad = SN_PTR(T, c->in[3]);
    T *out = SN_PTR(T, c->out[0]);
    SN_PARALLEL_FOR_COST(n, 6)
    for (int64_t i = 0; i < n; i++) {
      const T gr = clip ? CLIP(T, rs * g[i], cg) : rs * g[i];
      const T agi = rho * ag[i] + ((T)1 - rho) * gr * gr;
      const T delta = SQRTT(T, ad[i] + eps) / SQRTT(T, agi + eps) * gr;
      ag[i] = agi;
      ad[i] = rho * ad[i] + ((T)1 - rho) * delta * delta;
      out[i] = w[i] - delta - wd * w[i];
    }
  });
  return SN_OK;
}

UPD_OP(adadelta, "_adadelta_update", NULL, in_adadelta, 5,
       "Update function for AdaDelta (Zeiler 2012), fused: acc_g and acc_delta are updated in "
       "place and the new weight is returned.");

const sn_op *const sn_family_optimizer_update[] = {
    &sgd,  &sgd_mom, &nag_mom, &adam,   &rmsprop,  &rmspropalex, &ftrl,
    &ftml, &signsgd, &signum,  &adagrad, &adadelta, NULL};
