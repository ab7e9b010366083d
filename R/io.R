# Data iterators.  The built-in iterators keep their examples in the C
# engine (src/engine/io.c) and gather each batch into fresh NDArrays in C;
# on the R side they are reference class objects, like MXNet's Rcpp
# classes, so that user iterators written for MXNet
# (setRefClass(..., contains = "Rcpp_MXArrayDataIter")) work unchanged.
#
# Protocol used by training and prediction: $reset(), $iter.next() ->
# TRUE/FALSE, $value() -> list(data = , label = ) of MXNDArray (the batch
# is the last R dim), $num.pad() -> number of padding examples at the end
# of the current batch, $finalize().  The field batch.size holds the batch
# size.

#' Data iterators
#'
#' Iterators feed batches to [mx.model.FeedForward.create()] and `predict`.
#' Every iterator is a reference class object with the methods
#' `reset()`, `iter.next()` (`TRUE` while there is a batch), `value()` (a
#' named list of NDArrays, `data` and `label`, with the batch in the last
#' dimension), `num.pad()` (how many examples at the end of the current
#' batch are padding, to be ignored) and `finalize()`, and a field
#' `batch.size`.
#'
#' `Rcpp_MXArrayDataIter` is the class of the built-in iterators (named as
#' in MXNet).  A custom iterator extends it with
#' `setRefClass("MyIter", contains = "Rcpp_MXArrayDataIter", methods = list(...))`
#' and overrides the methods; see the example.  Its fields are `handle`
#' (the engine iterator, for built-in ones) and `batch.size`; a subclass
#' may declare fields of these names again.
#'
#' `value()` returns the same NDArrays until the next `iter.next()` or
#' `reset()`, and fresh ones for every batch, so batches may be kept.
#' `finalize()` drops the cached batch; the iterator's memory is released
#' when the object is garbage collected.
#'
#' @name Rcpp_MXArrayDataIter
#' @aliases Rcpp_MXArrayDataIter-class
#' @format A reference class generator.
#' @seealso [mx.io.arrayiter()], [mx.io.MNISTIter()], [mx.io.CSVIter()],
#'   [mx.io.extract()]
#' @examples
#' # An iterator that scales the data of another one.
#' ScaledIter <- setRefClass("ScaledIter", fields = c("iter", "scale"),
#'   contains = "Rcpp_MXArrayDataIter",
#'   methods = list(
#'     value = function() {
#'       v <- .self$iter$value()
#'       list(data = v$data * .self$scale, label = v$label)
#'     },
#'     iter.next = function() .self$iter$iter.next(),
#'     reset = function() .self$iter$reset(),
#'     num.pad = function() .self$iter$num.pad(),
#'     finalize = function() .self$iter$finalize()))
#' base <- mx.io.arrayiter(matrix(1:20, 2, 10), 1:10, batch.size = 4)
#' it <- ScaledIter$new(iter = base, scale = 0.5, batch.size = 4)
#' it$reset()
#' while (it$iter.next()) print(as.array(it$value()$data))
#' @export Rcpp_MXArrayDataIter
#' @exportClass Rcpp_MXArrayDataIter
#' @importFrom methods setRefClass new is
Rcpp_MXArrayDataIter <- setRefClass("Rcpp_MXArrayDataIter",
  fields = list(handle = "ANY", batch.size = "ANY"),
  methods = list(
    # The methods are called from objects of user subclasses too, whose
    # environments do not see this namespace: reach it explicitly.
    reset = function() {
      "Moves to before the first batch."
      asNamespace("symnet")$mx.io.internal.call("reset", handle)
      invisible(NULL)
    },
    iter.next = function() {
      "Moves to the next batch; FALSE at the end of the data."
      asNamespace("symnet")$mx.io.internal.call("next", handle)
    },
    value = function() {
      "The current batch: list(data = , label = ) of MXNDArray."
      asNamespace("symnet")$mx.io.internal.call("value", handle)
    },
    num.pad = function() {
      "How many examples at the end of the current batch are padding."
      asNamespace("symnet")$mx.io.internal.call("num.pad", handle)
    },
    finalize = function() {
      "Drops the cached batch (memory is freed when the object is collected)."
      if (isNamespaceLoaded("symnet")) asNamespace("symnet")$mx.io.internal.call("drop", handle)
      invisible(NULL)
    },
    show = function() {
      asNamespace("symnet")$mx.io.internal.show(.self)
    }
  ))

#' @rdname Rcpp_MXArrayDataIter
#' @export Rcpp_MXNativeDataIter
#' @exportClass Rcpp_MXNativeDataIter
Rcpp_MXNativeDataIter <- setRefClass("Rcpp_MXNativeDataIter", contains = "Rcpp_MXArrayDataIter")

mx.io.internal.call <- function(what, handle) {
  if (typeof(handle) != "externalptr") {
    if (what == "drop") return(invisible(NULL))
    stop("this iterator has no native data behind it: an iterator class extending ",
         "Rcpp_MXArrayDataIter must define reset(), iter.next(), value() and num.pad() itself",
         call. = FALSE)
  }
  switch(what,
    reset = .Call(C_io_reset, handle),
    "next" = .Call(C_io_next, handle),
    value = .Call(C_io_value, handle),
    num.pad = .Call(C_io_num_pad, handle),
    drop = .Call(C_io_drop, handle),
    info = .Call(C_io_info, handle))
}

mx.io.internal.show <- function(x) {
  cls <- class(x)[[1]]
  h <- tryCatch(x$handle, error = function(e) NULL)
  if (is(h, "externalptr")) {
    info <- tryCatch(.Call(C_io_info, h), error = function(e) NULL)
    if (!is.null(info)) {
      cat(sprintf("<%s: %.0f examples, batch.size %.0f (%.0f batches), data %s, label %s>\n", cls,
                  info$num.examples, info$batch.size, info$num.batches,
                  paste(info$data.dim, collapse = "x"), paste(info$label.dim, collapse = "x")))
      return(invisible(x))
    }
  }
  cat(sprintf("<%s data iterator>\n", cls))
  invisible(x)
}

# TRUE for a built-in iterator with a native handle (not a custom iterator
# that extends one and may override its methods).
mx.io.internal.native <- function(iter) {
  class(iter)[[1]] %in% c("Rcpp_MXArrayDataIter", "Rcpp_MXNativeDataIter") &&
    typeof(iter$handle) == "externalptr"
}

mx.io.internal.have.zlib <- function() .Call(C_io_have_zlib)

#' Is this a data iterator?
#'
#' @param x An object.
#' @return `TRUE` for the built-in iterators and custom iterators that extend
#'   `Rcpp_MXArrayDataIter`.
#' @export
is.mx.dataiter <- function(x) {
  inherits(x, "Rcpp_MXNativeDataIter") || inherits(x, "Rcpp_MXArrayDataIter")
}

# ---- argument checks ----

mx.io.internal.count <- function(x, what) {
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || x < 1 || x != round(x) || x > 2^53)
    stop(what, " must be a positive whole number", call. = FALSE)
  as.numeric(x)
}

mx.io.internal.flag <- function(x, what) {
  if ((!is.logical(x) && !is.numeric(x)) || length(x) != 1 || is.na(x))
    stop(what, " must be TRUE or FALSE", call. = FALSE)
  as.logical(x)
}

mx.io.internal.path <- function(x, what) {
  if (!is.character(x) || length(x) != 1 || is.na(x) || !nzchar(x))
    stop(what, " must be a file name", call. = FALSE)
  if (!file.exists(x)) stop(what, " file '", x, "' does not exist", call. = FALSE)
  path.expand(x)
}

mx.io.internal.shape <- function(x, what) {
  if (!is.numeric(x) || length(x) < 1 || anyNA(x) || any(x < 1) || any(x != round(x)))
    stop(what, " must be a vector of positive whole numbers", call. = FALSE)
  as.numeric(x)
}

# Handles the `...` of the iterators that MXNet generated from its C++
# registry: MXNet spellings with "_" of our own arguments are returned for
# the caller to use; MXNet parameters that do not apply here are ignored;
# anything else is a warning.
mx.io.internal.dots <- function(fun, dots, formals, ignore) {
  if (length(dots) == 0) return(list())
  nm <- names(dots)
  if (is.null(nm) || any(nm == "")) stop(fun, " takes key = value arguments only", call. = FALSE)
  nm <- gsub("_", ".", nm, fixed = TRUE)
  names(dots) <- nm
  unknown <- setdiff(nm, c(formals, ignore))
  if (length(unknown))
    warning(fun, ": ignoring unknown arguments: ", paste(unknown, collapse = ", "), call. = FALSE)
  dots[nm %in% formals]
}

mx.io.internal.numeric <- function(x, what) {
  if (is.data.frame(x))
    stop(what, " is a data frame: give a numeric matrix or array with the examples in the last ",
         "dimension, e.g. t(data.matrix(df))", call. = FALSE)
  if (is.mx.ndarray(x)) x <- as.array(x)
  if (!is.numeric(x) && !is.logical(x))
    stop(what, " must be a numeric vector, matrix or array, not ", class(x)[[1]], call. = FALSE)
  if (length(x) == 0) stop(what, " is empty", call. = FALSE)
  x
}

#' Iterate over R arrays in batches
#'
#' Makes an iterator over an R matrix or array and its labels, for
#' training and prediction. As in MXNet R, the examples are the *last*
#' dimension: a matrix is features x examples (`t()` a data-frame-like
#' matrix first), an image array is `c(width, height, channels, examples)`.
#'
#' With `shuffle = TRUE` the examples are put in a random order once, when
#' the iterator is made (drawn from R's random numbers, so `set.seed()`
#' makes it reproducible); every pass uses that order.
#'
#' The last batch of a pass is padded to `batch.size` the way MXNet does
#' it: the positions past the data keep the examples the previous batch
#' had there (zeros when there is only one batch), and `num.pad()` tells
#' how many there are.
#'
#' @param data A numeric matrix or array, examples in the last dimension
#'   (a vector is one value per example).
#' @param label Labels: a vector with one value per example, or an array
#'   with the examples in the last dimension.
#' @param batch.size Examples per batch.
#' @param shuffle Whether to shuffle the examples (once).
#' @return An `Rcpp_MXArrayDataIter`.
#' @details The iterator reads `data` and `label` in place (each batch is
#'   converted to float32 as it is made), so a large data set is not held
#'   twice. Changing `data` afterwards does not change the iterator: R copies
#'   a vector an iterator holds before modifying it.
#' @examples
#' x <- matrix(rnorm(20), 2, 10)   # 2 features, 10 examples
#' it <- mx.io.arrayiter(x, 1:10, batch.size = 4)
#' it$reset()
#' while (it$iter.next()) cat(as.array(it$value()$label), "pad", it$num.pad(), "\n")
#' @export
mx.io.arrayiter <- function(data, label, batch.size = 128, shuffle = FALSE) {
  data <- mx.io.internal.numeric(data, "data")
  label <- mx.io.internal.numeric(label, "label")
  batch.size <- mx.io.internal.count(batch.size, "batch.size")
  shuffle <- mx.io.internal.flag(shuffle, "shuffle")
  ddim <- if (is.null(dim(data))) length(data) else dim(data)
  ldim <- if (is.null(dim(label))) length(label) else dim(label)
  if (ddim[[length(ddim)]] != ldim[[length(ldim)]]) {
    if (ddim[[1]] == ldim[[1]])
      stop("Seems X, y was passed in a Row major way, MXNetR adopts a column major convention.\n",
           "Please pass in transpose of X instead", call. = FALSE)
    stop("Data and label shape in-consistent", call. = FALSE)
  }
  n <- ddim[[length(ddim)]]
  order <- if (shuffle) sample.int(n) else NULL
  h <- .Call(C_io_arrayiter, data, ddim, label, ldim, batch.size, order)
  Rcpp_MXArrayDataIter$new(handle = h, batch.size = batch.size)
}

#' Iterate over MNIST idx files
#'
#' Reads MNIST-format (idx) image and label files, raw or gzip-compressed
#' (as distributed, e.g. `train-images-idx3-ubyte.gz`), so it serves MNIST
#' and Fashion-MNIST alike. Pixels are scaled to \[0, 1) by dividing by 256,
#' as MXNet's MNISTIter does. Data batches are `c(28, 28, 1, batch.size)`
#' (`c(784, batch.size)` with `flat = TRUE`), labels `c(batch.size)`.
#'
#' Following MXNet, `shuffle` puts the images in a random order once, from
#' `seed` (independent of R's random numbers), and only full batches are
#' produced: a last partial batch is dropped unless `round.batch = TRUE`,
#' which fills it from the start of the data (counted by `num.pad()`).
#' Both files are checked against their headers before anything is
#' allocated; a truncated or malformed file is an error naming it.
#'
#' @param image,label The image and label idx files.
#' @param batch.size Images per batch.
#' @param shuffle Whether to shuffle the images (once, with `seed`).
#' @param flat Whether to give each image as a vector of 784 values.
#' @param seed The shuffling seed.
#' @param silent Whether to skip the message describing what was loaded.
#' @param data.shape Optional image shape (as MXNet scripts pass it): it
#'   must have as many values as an image; the batch shape is set by `flat`.
#' @param num.parts,part.index Read only part `part.index` (0-based) of
#'   `num.parts` equal contiguous parts, for data-parallel training.
#' @param round.batch Whether to fill a last partial batch from the start
#'   of the data instead of dropping it (not in MXNet's MNISTIter).
#' @param ... MXNet's parameters that do not apply here (such as
#'   `prefetch.buffer`) are ignored; MXNet spellings with `_` are accepted.
#' @return An `Rcpp_MXNativeDataIter`.
#' @examples
#' f <- "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#' if (file.exists(f)) {
#'   it <- mx.io.MNISTIter(image = f, label = sub("images-idx3", "labels-idx1", f),
#'                         batch.size = 100, shuffle = FALSE, silent = TRUE)
#'   it$iter.next()
#'   dim(it$value()$data)
#' }
#' @export
mx.io.MNISTIter <- function(image = "./train-images-idx3-ubyte", label = "./train-labels-idx1-ubyte",
                            batch.size = 128, shuffle = TRUE, flat = FALSE, seed = 0, silent = FALSE,
                            data.shape = NULL, num.parts = 1, part.index = 0, round.batch = FALSE, ...) {
  extra <- mx.io.internal.dots("mx.io.MNISTIter", list(...), names(formals()),
                               c("prefetch.buffer", "prefetch.capacity", "ctx", "dtype", "input.shape",
                                 "label.width", "preprocess.threads", "verbose", "label.name", "data.name"))
  for (k in names(extra)) assign(k, extra[[k]])
  image <- mx.io.internal.path(image, "image")
  label <- mx.io.internal.path(label, "label")
  batch.size <- mx.io.internal.count(batch.size, "batch.size")
  if (!is.numeric(seed) || length(seed) != 1 || is.na(seed) || seed != round(seed) || abs(seed) > 2^53)
    stop("seed must be a whole number", call. = FALSE)
  num.parts <- mx.io.internal.count(num.parts, "num.parts")
  if (!is.numeric(part.index) || length(part.index) != 1 || is.na(part.index) || part.index < 0 ||
      part.index >= num.parts || part.index != round(part.index))
    stop("part.index must be a whole number in 0..num.parts-1", call. = FALSE)
  opts <- c(batch.size, mx.io.internal.flag(flat, "flat"), mx.io.internal.flag(shuffle, "shuffle"),
            seed, num.parts, part.index, mx.io.internal.flag(round.batch, "round.batch"))
  res <- .Call(C_io_mnist, image, label, as.numeric(opts))
  h <- res[[1]]
  if (!is.null(data.shape)) {
    data.shape <- mx.io.internal.shape(data.shape, "data.shape")
    ddim <- .Call(C_io_info, h)$data.dim
    per <- prod(ddim[-length(ddim)])
    if (prod(data.shape) != per)
      stop("data.shape c(", paste(data.shape, collapse = ", "), ") has ", prod(data.shape),
           " values per image, but the images in '", image, "' have ", per, call. = FALSE)
  }
  if (!mx.io.internal.flag(silent, "silent")) message(res[[2]])
  Rcpp_MXNativeDataIter$new(handle = h, batch.size = batch.size)
}

#' Iterate over CSV files
#'
#' Reads a CSV file of numbers, one example per line, with an optional
#' label file of the same number of lines (without one, every label is 0).
#' The whole file is parsed (in C) and checked when the iterator is made:
#' every value must be a number and every line must hold
#' `prod(data.shape)` values; errors name the file, line and value. Files
#' may be gzip-compressed. There is no header line.
#'
#' `data.shape` is in R order: `c(28, 28, 1)` turns each line of 784
#' values into a 28 x 28 x 1 image (filling the first dimension first), so
#' batches are `c(28, 28, 1, batch.size)`. Labels with `label.shape = 1`
#' come as `c(batch.size)`.
#'
#' A last partial batch is filled from the start of the data
#' (`round.batch = TRUE`, MXNet's default) and `num.pad()` counts the
#' filled positions; each `reset()` starts again at the first line.
#'
#' @param data.csv The data file.
#' @param data.shape The shape of one example, in R order.
#' @param batch.size Examples per batch.
#' @param label.csv The label file, or `NULL` (also `"NULL"`, MXNet's
#'   default) for zero labels.
#' @param label.shape The shape of one label, in R order.
#' @param round.batch Whether to fill the last batch from the start of the
#'   data; if `FALSE` its tail holds stale examples, still counted by
#'   `num.pad()`.
#' @param ... MXNet's parameters that do not apply here are ignored; MXNet
#'   spellings with `_` are accepted.
#' @return An `Rcpp_MXNativeDataIter`.
#' @examples
#' f <- tempfile(fileext = ".csv")
#' write.table(matrix(1:12, 4, 3), f, sep = ",", row.names = FALSE, col.names = FALSE)
#' it <- mx.io.CSVIter(data.csv = f, data.shape = 3, batch.size = 2)
#' it$iter.next()
#' as.array(it$value()$data)
#' @export
mx.io.CSVIter <- function(data.csv, data.shape, batch.size, label.csv = NULL, label.shape = 1,
                          round.batch = TRUE, ...) {
  extra <- mx.io.internal.dots("mx.io.CSVIter", list(...), names(formals()),
                               c("prefetch.buffer", "prefetch.capacity", "ctx", "dtype", "input.shape",
                                 "label.width", "preprocess.threads", "verbose", "silent", "shuffle",
                                 "seed", "label.name", "data.name"))
  for (k in names(extra)) assign(k, extra[[k]])
  if (missing(data.csv)) stop("mx.io.CSVIter needs data.csv", call. = FALSE)
  if (missing(data.shape)) stop("mx.io.CSVIter needs data.shape", call. = FALSE)
  if (missing(batch.size)) stop("mx.io.CSVIter needs batch.size", call. = FALSE)
  data.csv <- mx.io.internal.path(data.csv, "data.csv")
  if (identical(label.csv, "NULL")) label.csv <- NULL
  if (!is.null(label.csv)) label.csv <- mx.io.internal.path(label.csv, "label.csv")
  data.shape <- mx.io.internal.shape(data.shape, "data.shape")
  label.shape <- mx.io.internal.shape(label.shape, "label.shape")
  batch.size <- mx.io.internal.count(batch.size, "batch.size")
  h <- .Call(C_io_csv, data.csv, data.shape, label.csv, label.shape, batch.size,
             mx.io.internal.flag(round.batch, "round.batch"))
  Rcpp_MXNativeDataIter$new(handle = h, batch.size = batch.size)
}

#' Collect one field of an iterator into an R array
#'
#' Runs one pass over the iterator (from `reset()`), drops the padding of
#' each batch and joins the batches along the last dimension.
#'
#' @param iter A data iterator.
#' @param field The name of the field of `value()`, `"data"` or `"label"`.
#' @return An R array with the examples in the last dimension (1-D for
#'   one value per example).
#' @examples
#' it <- mx.io.arrayiter(matrix(1:20, 2, 10), 1:10, batch.size = 4)
#' mx.io.extract(it, "label")
#' @export
mx.io.extract <- function(iter, field) {
  if (!is.character(field) || length(field) != 1) stop("field must be a single name, such as \"data\"", call. = FALSE)
  iter$reset()
  parts <- list()
  rdim <- NULL
  while (iter$iter.next()) {
    v <- iter$value()
    x <- v[[field]]
    if (is.null(x)) stop("the iterator's value() has no field '", field, "'", call. = FALSE)
    x <- as.array(x)
    d <- dim(x)
    if (is.null(d)) d <- length(x)
    nb <- d[[length(d)]]
    pad <- iter$num.pad()
    keep <- nb - pad
    per <- prod(d[-length(d)])
    if (is.null(rdim)) rdim <- d[-length(d)]
    else if (!identical(as.numeric(rdim), as.numeric(d[-length(d)])))
      stop("the batches of field '", field, "' have different shapes", call. = FALSE)
    if (keep > 0) parts[[length(parts) + 1]] <- as.vector(x)[seq_len(per * keep)]
  }
  iter$reset()
  if (is.null(rdim)) stop("the iterator produced no batch", call. = FALSE)
  out <- unlist(parts, use.names = FALSE)
  if (is.null(out)) out <- numeric(0)
  n <- length(out) / max(1, prod(rdim))
  dim(out) <- c(rdim, n)
  out
}
