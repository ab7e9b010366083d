/* .Call glue for data iterators (engine/io.h).
 *
 * An iterator is an external pointer tagged "MXDataIter" with a finalizer
 * that frees the engine iterator and its example store.  Its protected
 * slot is a list of two: the current batch, once value() has made it, so
 * repeated value() calls return the same NDArrays (next() and reset() drop
 * it; the arrays stay valid for whoever still holds them), and the R
 * vectors an array iterator reads its examples from.  Those are borrowed,
 * not copied (a data set is not held twice), so they are kept alive here
 * and marked not mutable: R copies them before any change. */
#include <string.h>

#include "engine/exec.h"
#include "engine/io.h"
#include "r_glue.h"

static SEXP io_tag(void) { return Rf_install("MXDataIter"); }

static void io_finalize(SEXP x) {
  sn_io_iter *it = R_ExternalPtrAddr(x);
  if (!it) return;
  sn_io_iter_free(it);
  R_ClearExternalPtr(x);
}

/* Wraps it, keeping `sources` (R_NilValue or the borrowed vectors) alive;
 * frees it when an R allocation fails. */
static SEXP io_wrap(sn_io_iter *it, SEXP sources) {
  PROTECT(sources);
  SEXP ptr = PROTECT(R_MakeExternalPtr(it, io_tag(), R_NilValue));
  R_RegisterCFinalizerEx(ptr, io_finalize, TRUE);
  SEXP slot = Rf_allocVector(VECSXP, 2); /* the finalizer frees it if this fails */
  SET_VECTOR_ELT(slot, 1, sources);
  R_SetExternalPtrProtected(ptr, slot);
  UNPROTECT(2);
  return ptr;
}

/* The cached current batch (R_NilValue when none). */
static SEXP io_cached(SEXP h) {
  SEXP slot = R_ExternalPtrProtected(h);
  return TYPEOF(slot) == VECSXP && XLENGTH(slot) == 2 ? VECTOR_ELT(slot, 0) : R_NilValue;
}
static void io_set_cached(SEXP h, SEXP v) {
  SEXP slot = R_ExternalPtrProtected(h);
  if (TYPEOF(slot) == VECSXP && XLENGTH(slot) == 2) SET_VECTOR_ELT(slot, 0, v);
}

sn_io_iter *sn_r_io(SEXP x) {
  if (TYPEOF(x) != EXTPTRSXP || R_ExternalPtrTag(x) != io_tag())
    Rf_error("not a native data iterator handle (a custom iterator must define reset(), iter.next(), "
             "value() and num.pad() itself)");
  sn_io_iter *it = R_ExternalPtrAddr(x);
  if (!it)
    Rf_error("this data iterator is no longer valid (restored from saveRDS or a previous session?); "
             "create it again");
  return it;
}

static double io_num(SEXP x, const char *what) {
  if ((!Rf_isReal(x) && !Rf_isInteger(x) && !Rf_isLogical(x)) || XLENGTH(x) != 1)
    Rf_error("%s must be a single number", what);
  double v = Rf_asReal(x);
  if (ISNAN(v)) Rf_error("%s must not be NA", what);
  return v;
}

static int64_t io_count(SEXP x, const char *what) {
  double v = io_num(x, what);
  if (!(v >= 1) || v != (double)(int64_t)v || v > 9.0e15)
    Rf_error("%s must be a positive whole number, got %g", what, v);
  return (int64_t)v;
}

/* R values (double, integer or logical) with R dims as a borrowed field
 * (read in place, converted to float32 per batch; the caller keeps x
 * alive): the last R dim is the example count, the others (reversed) the
 * example shape. */
static void io_field_from_r(SEXP x, SEXP dim, const char *what, sn_io_field *f, int64_t *num) {
  if (!Rf_isReal(x) && !Rf_isInteger(x) && !Rf_isLogical(x))
    Rf_error("%s must be numeric, not %s", what, Rf_type2char(TYPEOF(x)));
  R_xlen_t nd = XLENGTH(dim);
  if (nd < 1) Rf_error("%s has no dimensions", what);
  if (nd > SN_MAX_DIMS) Rf_error("%s has %ld dimensions, at most %d are supported", what, (long)nd, SN_MAX_DIMS);
  double d[SN_MAX_DIMS];
  for (R_xlen_t i = 0; i < nd; i++) {
    d[i] = Rf_isInteger(dim) ? (INTEGER(dim)[i] == NA_INTEGER ? -1 : INTEGER(dim)[i]) : REAL(dim)[i];
    if (!(d[i] >= 1) || d[i] != (double)(int64_t)d[i] || d[i] > 9.0e15)
      Rf_error("%s has a dimension of size %g: every dimension must be at least 1", what, d[i]);
  }
  sn_shape ex;
  memset(&ex, 0, sizeof ex);
  ex.ndim = (int)nd - 1;
  for (int i = 0; i < ex.ndim; i++) ex.dim[ex.ndim - 1 - i] = (int64_t)d[i];
  *num = (int64_t)d[nd - 1];
  int64_t row;
  SN_R_TRY(sn_shape_size(&ex, &row));
  if (row > INT64_MAX / *num || (int64_t)XLENGTH(x) != row * *num)
    Rf_error("%s has %lld values but its dim needs %g", what, (long long)XLENGTH(x), (double)row * (double)*num);
  /* INTEGER() of a logical vector: R's logicals are ints with the same NA */
  const void *ptr = Rf_isReal(x) ? (const void *)REAL(x) : (const void *)INTEGER(x);
  SN_R_TRY(sn_io_field_borrow(f, &ex, *num, Rf_isReal(x) ? SN_F64 : SN_I32, ptr));
}

/* order: NULL or a 1-based permutation (integer or double). */
SEXP C_io_arrayiter(SEXP data, SEXP ddim, SEXP label, SEXP ldim, SEXP batch_size, SEXP order) {
  sn_io_field fd, fl;
  int64_t nd, nl;
  int64_t batch = io_count(batch_size, "batch.size");
  /* made first: no R allocation may fail once the engine iterator exists */
  SEXP sources = PROTECT(Rf_allocVector(VECSXP, 2));
  io_field_from_r(data, ddim, "data", &fd, &nd);
  /* label after data: free data if the label is bad */
  if (!Rf_isReal(label) && !Rf_isInteger(label) && !Rf_isLogical(label)) {
    sn_io_field_free(&fd);
    Rf_error("label must be numeric, not %s", Rf_type2char(TYPEOF(label)));
  }
  io_field_from_r(label, ldim, "label", &fl, &nl);
  if (nd != nl) {
    sn_io_field_free(&fd);
    sn_io_field_free(&fl);
    Rf_error("Data and label shape in-consistent: %lld examples of data, %lld labels", (long long)nd, (long long)nl);
  }
  int64_t *perm = NULL;
  if (!Rf_isNull(order)) {
    if ((!Rf_isInteger(order) && !Rf_isReal(order)) || (int64_t)XLENGTH(order) != nd) {
      sn_io_field_free(&fd);
      sn_io_field_free(&fl);
      Rf_error("the order must be a permutation of 1..%lld", (long long)nd);
    }
    perm = (int64_t *)R_alloc((size_t)nd, sizeof(int64_t));
    for (int64_t i = 0; i < nd; i++) {
      double v = Rf_isInteger(order) ? (INTEGER(order)[i] == NA_INTEGER ? -1 : INTEGER(order)[i]) : REAL(order)[i];
      perm[i] = (v >= 1 && v <= (double)nd) ? (int64_t)v - 1 : -1;
    }
  }
  sn_io_iter *it;
  int rc = sn_io_iter_new(&fd, &fl, nd, batch, SN_IO_PAD_STALE, &it);
  if (rc != SN_OK) {
    sn_io_field_free(&fd);
    sn_io_field_free(&fl);
    sn_r_fail(rc);
  }
  SET_VECTOR_ELT(sources, 0, data);
  SET_VECTOR_ELT(sources, 1, label);
  MARK_NOT_MUTABLE(data); /* R copies them before a change: the iterator reads them in place */
  MARK_NOT_MUTABLE(label);
  SEXP ptr = PROTECT(io_wrap(it, sources));
  if (perm) SN_R_TRY(sn_io_iter_set_order(it, perm, nd)); /* it is owned by ptr now */
  UNPROTECT(2);
  return ptr;
}

/* opts: c(batch.size, flat, shuffle, seed, num.parts, part.index, round.batch) */
SEXP C_io_mnist(SEXP image, SEXP label, SEXP opts) {
  if (!Rf_isReal(opts) || XLENGTH(opts) != 7) Rf_error("internal: MNISTIter options must be 7 numbers");
  const double *o = REAL(opts);
  for (int i = 0; i < 7; i++)
    if (ISNAN(o[i])) Rf_error("MNISTIter options must not be NA");
  if (!(o[0] >= 1) || o[0] != (double)(int64_t)o[0] || o[0] > 9.0e15)
    Rf_error("batch.size must be a positive whole number, got %g", o[0]);
  if (o[4] < 1 || o[4] > 1e9 || o[4] != (int)o[4]) Rf_error("num.parts must be a positive whole number");
  if (o[5] < 0 || o[5] > 1e9 || o[5] != (int)o[5]) Rf_error("part.index must be a whole number >= 0");
  if (o[3] != (double)(int64_t)o[3] || o[3] < -9.0e18 || o[3] > 9.0e18) Rf_error("seed must be a whole number");
  /* R_ExpandFileName returns a static buffer: copy each result */
  char img[4096], lab[4096];
  snprintf(img, sizeof img, "%s", R_ExpandFileName(sn_r_string(image, "image")));
  snprintf(lab, sizeof lab, "%s", R_ExpandFileName(sn_r_string(label, "label")));
  char info[256] = "";
  sn_io_iter *it;
  SN_R_TRY(sn_io_mnist_open(img, lab, (int64_t)o[0], o[1] != 0, o[2] != 0,
                            (uint64_t)(int64_t)o[3], (int)o[4], (int)o[5],
                            o[6] != 0 ? SN_IO_PAD_WRAP : SN_IO_PAD_DROP, &it, info, sizeof info));
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 2));
  SET_VECTOR_ELT(res, 0, io_wrap(it, R_NilValue));
  SET_VECTOR_ELT(res, 1, Rf_mkString(info));
  UNPROTECT(1);
  return res;
}

static void io_shape_arg(SEXP dim, const char *what, sn_shape *s) {
  if ((!Rf_isReal(dim) && !Rf_isInteger(dim)) || XLENGTH(dim) < 1)
    Rf_error("%s must be a vector of positive whole numbers", what);
  if (XLENGTH(dim) > SN_MAX_DIMS - 1) Rf_error("%s may have at most %d dimensions", what, SN_MAX_DIMS - 1);
  if (sn_r_shape_from_dim(dim, s) != SN_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", sn_last_error());
    sn_clear_error();
    Rf_error("%s: %s", what, msg);
  }
}

SEXP C_io_csv(SEXP data_csv, SEXP data_shape, SEXP label_csv, SEXP label_shape, SEXP batch_size,
              SEXP round_batch) {
  sn_shape ds, ls;
  int64_t batch = io_count(batch_size, "batch.size");
  io_shape_arg(data_shape, "data.shape", &ds);
  io_shape_arg(label_shape, "label.shape", &ls);
  char dbuf[4096]; /* R_ExpandFileName returns a static buffer: copy it */
  snprintf(dbuf, sizeof dbuf, "%s", R_ExpandFileName(sn_r_string(data_csv, "data.csv")));
  const char *lpath = NULL;
  if (!Rf_isNull(label_csv)) lpath = R_ExpandFileName(sn_r_string(label_csv, "label.csv"));
  int rb = Rf_asLogical(round_batch);
  if (rb == NA_LOGICAL) Rf_error("round.batch must be TRUE or FALSE");
  sn_io_iter *it;
  SN_R_TRY(sn_io_csv_open(dbuf, &ds, lpath, &ls, batch, rb ? SN_IO_PAD_WRAP : SN_IO_PAD_STALE, &it));
  return io_wrap(it, R_NilValue);
}

SEXP C_io_reset(SEXP h) {
  sn_io_iter *it = sn_r_io(h);
  sn_io_iter_reset(it);
  io_set_cached(h, R_NilValue);
  return R_NilValue;
}

SEXP C_io_next(SEXP h) {
  sn_io_iter *it = sn_r_io(h);
  int has;
  io_set_cached(h, R_NilValue);
  SN_R_TRY(sn_io_iter_next(it, &has));
  return Rf_ScalarLogical(has);
}

SEXP C_io_value(SEXP h) {
  sn_io_iter *it = sn_r_io(h);
  SEXP cached = io_cached(h);
  if (!Rf_isNull(cached)) return cached;
  sn_tensor d, l;
  SN_R_TRY(sn_io_iter_value(it, &d, &l));
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 2));
  SEXP names = PROTECT(Rf_allocVector(STRSXP, 2));
  SET_STRING_ELT(names, 0, Rf_mkChar("data"));
  SET_STRING_ELT(names, 1, Rf_mkChar("label"));
  Rf_setAttrib(res, R_NamesSymbol, names);
  SET_VECTOR_ELT(res, 0, sn_r_tensor_wrap(&d));
  SET_VECTOR_ELT(res, 1, sn_r_tensor_wrap(&l));
  io_set_cached(h, res);
  UNPROTECT(2);
  return res;
}

/* Writes the current batch into existing NDArrays (label may be NULL). */
SEXP C_io_value_into(SEXP h, SEXP data, SEXP label) {
  sn_io_iter *it = sn_r_io(h);
  sn_tensor *d = sn_r_tensor(data, "data");
  sn_tensor *l = Rf_isNull(label) ? NULL : sn_r_tensor(label, "label");
  SN_R_TRY(sn_io_iter_value_into(it, d, l));
  return R_NilValue;
}

SEXP C_io_num_pad(SEXP h) { return Rf_ScalarInteger((int)sn_io_iter_num_pad(sn_r_io(h))); }

/* Drops the cached batch (the arrays stay valid for their holders). */
SEXP C_io_drop(SEXP h) {
  if (TYPEOF(h) == EXTPTRSXP && R_ExternalPtrTag(h) == io_tag()) io_set_cached(h, R_NilValue);
  return R_NilValue;
}

SEXP C_io_info(SEXP h) {
  sn_io_iter *it = sn_r_io(h);
  sn_shape ds, ls;
  sn_io_iter_batch_shapes(it, &ds, &ls);
  SEXP res = PROTECT(Rf_allocVector(VECSXP, 5));
  SEXP names = PROTECT(Rf_allocVector(STRSXP, 5));
  const char *nm[] = {"num.examples", "batch.size", "num.batches", "data.dim", "label.dim"};
  for (int i = 0; i < 5; i++) SET_STRING_ELT(names, i, Rf_mkChar(nm[i]));
  Rf_setAttrib(res, R_NamesSymbol, names);
  SET_VECTOR_ELT(res, 0, Rf_ScalarReal((double)sn_io_iter_num(it)));
  SET_VECTOR_ELT(res, 1, Rf_ScalarReal((double)sn_io_iter_batch_size(it)));
  SET_VECTOR_ELT(res, 2, Rf_ScalarReal((double)sn_io_iter_num_batches(it)));
  SET_VECTOR_ELT(res, 3, sn_r_dim_from_shape(&ds));
  SET_VECTOR_ELT(res, 4, sn_r_dim_from_shape(&ls));
  UNPROTECT(2);
  return res;
}

SEXP C_io_have_zlib(void) { return Rf_ScalarLogical(sn_io_have_zlib()); }

/* predict() over a native iterator: for every batch, the batch is written
 * into `data` (an argument array of the executor), the executor runs
 * forward (inference), and output `index` (0-based), less the padding of
 * the last batch, is converted into one R double array of dim
 * c(<output dims>, examples).  No R code runs per batch. */
SEXP C_exec_predict(SEXP exh, SEXP ith, SEXP data, SEXP index) {
  sn_executor *ex = sn_r_exec(exh);
  sn_io_iter *it = sn_r_io(ith);
  sn_tensor *d = sn_r_tensor(data, "data");
  int oi = Rf_asInteger(index);
  if (oi == NA_INTEGER || oi < 0 || oi >= sn_executor_num_outputs(ex)) Rf_error("no output %d", oi);
  sn_tensor o;
  SN_R_TRY(sn_executor_output(ex, oi, &o));
  const int64_t batch = sn_io_iter_batch_size(it), num = sn_io_iter_num(it);
  const int64_t size = sn_tensor_size(&o);
  sn_shape os = o.shape;
  sn_tensor_release(&o);
  if (os.ndim < 1 || os.dim[0] != batch)
    Rf_error("output %d does not have the batch (%lld) as its first dimension", oi, (long long)batch);
  const int64_t row = size / batch;
  if (row > 0 && num > (int64_t)R_XLEN_T_MAX / row) Rf_error("the predictions are too large for an R vector");
  SEXP out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)(num * row)));
  os.dim[0] = num;
  Rf_setAttrib(out, R_DimSymbol, sn_r_dim_from_shape(&os));
  double *dst = REAL(out);
  io_set_cached(ith, R_NilValue);
  sn_io_iter_reset(it);
  int64_t done = 0;
  for (;;) {
    int has;
    SN_R_TRY(sn_io_iter_next(it, &has));
    if (!has) break;
    SN_R_TRY(sn_io_iter_value_into(it, d, NULL));
    SN_R_TRY(sn_executor_forward(ex, 0));
    int64_t keep = batch - sn_io_iter_num_pad(it);
    if (keep > num - done) keep = num - done;
    SN_R_TRY(sn_executor_output(ex, oi, &o)); /* a view; the executor keeps it */
    if (o.dtype == SN_F32 && sn_tensor_device(&o).type == SN_DEV_CPU) {
      const float *src = sn_tensor_data(&o);
      for (int64_t i = 0; i < keep * row; i++) dst[done * row + i] = src[i];
      sn_tensor_release(&o);
    } else {
      sn_tensor host;
      int rc = sn_tensor_clone(&host, &o, SN_F64, sn_cpu());
      sn_tensor_release(&o);
      SN_R_TRY(rc);
      memcpy(dst + done * row, sn_tensor_data(&host), (size_t)(keep * row) * sizeof(double));
      sn_tensor_release(&host);
    }
    done += keep;
    R_CheckUserInterrupt();
  }
  sn_io_iter_reset(it);
  UNPROTECT(1);
  return out;
}
