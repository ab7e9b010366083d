# Data loaders: the bundled MNIST digits and Fashion-MNIST.

# Writes an idx file of unsigned bytes (gzipped unless gz = FALSE).
write_idx <- function(path, magic, dims, bytes, gz = TRUE, extra = raw(0)) {
  con <- if (gz) gzfile(path, "wb") else file(path, "wb")
  on.exit(close(con))
  writeBin(as.integer(c(magic, dims)), con, size = 4L, endian = "big")
  writeBin(c(as.raw(bytes), extra), con)
}

# Reads the first n bytes (default: all) of a (gzipped) file, independently
# of the package.
read_all <- function(path, n = Inf) {
  con <- gzfile(path, "rb")
  on.exit(close(con))
  out <- list()
  got <- 0
  while (got < n) {
    b <- readBin(con, "raw", min(1e7, n - got))
    got <- got + length(b)
    if (!length(b)) break
    out[[length(out) + 1]] <- b
  }
  do.call(c, out)
}

# A directory of small synthetic MNIST-like files: n images whose pixel
# (row r, col c) of image i is (i + 3 r + 7 c) %% 256, labels (i - 1) %% 10.
fake_mnist_dir <- function(n = 3, prefixes = c("train", "t10k"), gz = TRUE) {
  d <- tempfile("mnist-")
  dir.create(d)
  pix <- unlist(lapply(seq_len(n), function(i)
    as.vector(t(outer(0:27, 0:27, function(r, c) (i + 3 * r + 7 * c) %% 256)))))
  ext <- if (gz) ".gz" else ""
  for (p in prefixes) {
    write_idx(file.path(d, paste0(p, "-images-idx3-ubyte", ext)), 2051, c(n, 28, 28), pix, gz)
    write_idx(file.path(d, paste0(p, "-labels-idx1-ubyte", ext)), 2049, n, (seq_len(n) - 1) %% 10, gz)
  }
  d
}

# The bundled digits, read once for the tests below.
mnist_cache <- new.env()
bundled_mnist <- function() {
  if (is.null(mnist_cache$d)) mnist_cache$d <- mx.data.mnist()
  mnist_cache$d
}

test_that("bundled MNIST has the documented shapes, ranges and classes", {
  d <- mx.data.mnist()
  mnist_cache$d <- d
  expect_named(d, c("train.x", "train.y", "test.x", "test.y"))
  expect_identical(dim(d$train.x), c(28L, 28L, 1L, 8000L))
  expect_identical(dim(d$test.x), c(28L, 28L, 1L, 2000L))
  expect_type(d$train.x, "double")
  expect_type(d$train.y, "integer")
  expect_type(d$test.y, "integer")
  expect_length(d$train.y, 8000)
  expect_length(d$test.y, 2000)
  expect_equal(range(d$train.x), c(0, 1))
  expect_equal(range(d$test.x), c(0, 1))
  # pixels are bytes / 255, with the full range of grey levels in use
  bytes <- d$train.x * 255
  expect_lt(max(abs(bytes - round(bytes))), 1e-9)
  expect_true(all(tabulate(as.integer(round(bytes)) + 1L, 256) > 0))
  # stratified 80/20 split of the npm package's class counts
  expect_identical(as.vector(table(factor(d$train.y, 0:9))),
                   c(801L, 902L, 793L, 826L, 784L, 690L, 811L, 856L, 755L, 782L))
  expect_identical(as.vector(table(factor(d$test.y, 0:9))),
                   c(200L, 225L, 198L, 206L, 196L, 173L, 203L, 214L, 189L, 196L))
  # real digits: about a fifth of the pixels are ink, blank borders
  expect_gt(mean(d$train.x > 0.5), 0.08)
  expect_lt(mean(d$train.x > 0.5), 0.2)
  expect_lt(mean(d$train.x[c(1, 28), , , ]), 1e-3)
  expect_lt(mean(d$train.x[, c(1, 28), , ]), 1e-3)
  # the first images, as tools/make-mnist-subset.R reports them
  expect_identical(d$train.y[1], 3L)
  expect_equal(sum(d$train.x[, , 1, 1]) * 255, 19054)
  expect_identical(d$test.y[1], 9L)
  expect_equal(sum(d$test.x[, , 1, 1]) * 255, 36963)
})

test_that("bundled MNIST train and test sets do not overlap", {
  d <- bundled_mnist()
  # fingerprint each image by two projections of its pixels
  w <- cbind(1, sin(seq_len(784)))
  fp <- rbind(crossprod(matrix(d$train.x, 784), w), crossprod(matrix(d$test.x, 784), w))
  expect_identical(dim(fp), c(10000L, 2L))
  expect_false(any(duplicated(round(fp, 6))))
})

test_that("MNIST images keep the idx layout (x[, , 1, i] is image i transposed)", {
  d <- bundled_mnist()
  f <- system.file("extdata", "mnist", "train-images-idx3-ubyte.gz", package = "symnet")
  raw <- read_all(f)
  expect_identical(as.integer(raw[1:16]), c(0L, 0L, 8L, 3L, 0L, 0L, 31L, 64L, 0L, 0L, 0L, 28L, 0L, 0L, 0L, 28L))
  expect_identical(as.vector(round(d$train.x * 255)), as.numeric(as.integer(raw[-(1:16)])))
  labels <- read_all(system.file("extdata", "mnist", "train-labels-idx1-ubyte.gz", package = "symnet"))
  expect_identical(d$train.y, as.integer(labels[-(1:8)]))
  # MNIST training image 0, a 5, has row 5 (from 0) = 0 x 12, then these
  # intensities in columns 12..23: find it and check its orientation.
  row5 <- c(3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127)
  hit <- which(apply(round(d$train.x[13:24, 6, 1, ] * 255), 2, function(v) all(v == row5)))
  expect_length(hit, 1)
  expect_identical(d$train.y[hit], 5L)
  img <- t(round(d$train.x[, , 1, hit] * 255))   # rows of the picture
  expect_equal(img[6, 13:24], row5)
  expect_equal(img[6, 1:12], rep(0, 12))
})

test_that("mx.data.mnist reads a directory of standard MNIST files, gzipped or not", {
  for (gz in c(TRUE, FALSE)) {
    dir <- fake_mnist_dir(n = 3, gz = gz)
    d <- mx.data.mnist(dir)
    expect_identical(dim(d$train.x), c(28L, 28L, 1L, 3L))
    expect_identical(d$train.y, 0:2)
    expect_identical(d$test.y, 0:2)
    # pixel (row r, col c) of image i sits at x[c + 1, r + 1, 1, i]
    expect_equal(d$train.x[8, 3, 1, 2] * 255, (2 + 3 * 2 + 7 * 7) %% 256)
    expect_equal(d$test.x[1, 28, 1, 3] * 255, (3 + 3 * 27) %% 256)
    unlink(dir, recursive = TRUE)
  }
  dir <- fake_mnist_dir(n = 2, prefixes = c("train", "test"))
  expect_identical(dim(mx.data.mnist(dir)$test.x), c(28L, 28L, 1L, 2L))
})

test_that("bad directories give clear errors", {
  missing <- file.path(tempdir(), "no-such-mnist-dir")
  expect_error(mx.data.mnist(missing), "does not exist")
  expect_error(mx.data.fashion.mnist(missing), "Fashion-MNIST: directory .* does not exist")
  expect_error(mx.data.mnist(c("a", "b")), "one directory")
  empty <- tempfile("empty-")
  dir.create(empty)
  expect_error(mx.data.mnist(empty), "no images-idx3-ubyte file in .*train-images-idx3-ubyte\\[\\.gz\\]")
  expect_error(mx.data.fashion.mnist(empty, "test"), "t10k-images-idx3-ubyte\\[\\.gz\\]")
  # images present, labels missing
  dir <- fake_mnist_dir(n = 2)
  file.remove(file.path(dir, "train-labels-idx1-ubyte.gz"))
  expect_error(mx.data.fashion.mnist(dir), "no labels-idx1-ubyte file")
  # the search for Fashion-MNIST names where it looked and how to install it
  err <- tryCatch(symnet:::mx.internal.find.fashion.mnist("train", c(empty, missing)),
                  error = conditionMessage)
  expect_match(err, empty, fixed = TRUE)
  expect_match(err, missing, fixed = TRUE)
  expect_match(err, "apt-get install dataset-fashion-mnist", fixed = TRUE)
  expect_match(err, "zalandoresearch/fashion-mnist", fixed = TRUE)
  expect_error(mx.data.fashion.mnist(empty, subset = "validation"), "should be one of")
  expect_error(mx.data.fashion.mnist(dir, n = -1), "non-negative whole number")
})

test_that("the Fashion-MNIST search honours the option and the environment variable", {
  dir <- fake_mnist_dir(n = 4)
  old <- options(symnet.fashion.mnist.dir = dir)
  on.exit(options(old), add = TRUE)
  expect_identical(symnet:::mx.internal.fashion.mnist.dirs()[1], dir)
  f <- mx.data.fashion.mnist(subset = "test")
  expect_identical(f$y, 0:3)
  options(symnet.fashion.mnist.dir = NULL)
  old_env <- Sys.getenv("SYMNET_FASHION_MNIST", NA)
  Sys.setenv(SYMNET_FASHION_MNIST = dir)
  on.exit(if (is.na(old_env)) Sys.unsetenv("SYMNET_FASHION_MNIST")
          else Sys.setenv(SYMNET_FASHION_MNIST = old_env), add = TRUE)
  expect_identical(symnet:::mx.internal.fashion.mnist.dirs()[1], dir)
  expect_identical(dim(mx.data.fashion.mnist(n = 2)$x), c(28L, 28L, 1L, 2L))
})

test_that("corrupted idx files give clear errors", {
  dir <- tempfile("bad-")
  dir.create(dir)
  imgs <- file.path(dir, "train-images-idx3-ubyte.gz")
  labs <- file.path(dir, "train-labels-idx1-ubyte.gz")
  good_pix <- rep(0:255, length.out = 2 * 784)
  write_labels <- function(lab = c(1, 2)) write_idx(labs, 2049, length(lab), lab)
  write_labels()

  write_idx(imgs, 2049, c(2, 28, 28), good_pix)
  expect_error(mx.data.fashion.mnist(dir), "magic number 2049 .*expected 2051")
  write_idx(imgs, 2051, c(3, 28, 28), good_pix)
  expect_error(mx.data.fashion.mnist(dir), "truncated: header says 3 x 28 x 28 \\(2352 bytes")
  write_idx(imgs, 2051, c(2, 28, 28), good_pix, extra = as.raw(1:5))
  expect_error(mx.data.fashion.mnist(dir), "longer than its header says")
  write_idx(imgs, 2051, c(2, 14, 56), good_pix)
  expect_error(mx.data.fashion.mnist(dir), "14 x 56 images, expected 28 x 28")
  writeBin(as.raw(c(0, 0)), imgs)
  expect_error(mx.data.fashion.mnist(dir), "shorter than its 4-byte magic number")
  writeBin(as.raw(c(0, 0, 8, 3, 0, 0, 0, 2, 0, 0)), imgs)
  expect_error(mx.data.fashion.mnist(dir), "truncated header")
  writeBin(charToRaw("<html>not found</html>"), imgs)
  expect_error(mx.data.fashion.mnist(dir), "magic number .*bytes 3c 68 74 6d")
  # a header claiming 2^32 - 1 images must not allocate them
  writeBin(as.raw(c(0, 0, 8, 3, 255, 255, 255, 255, 0, 0, 0, 28, 0, 0, 0, 28, 1:9)), imgs)
  expect_error(mx.data.fashion.mnist(dir), "truncated: header says 4294967295 x 28 x 28")
  # damaged gzip stream: flip a byte of the CRC, cut the stream short
  write_idx(imgs, 2051, c(2, 28, 28), good_pix)
  b <- readBin(imgs, "raw", file.size(imgs))
  bad <- b
  bad[length(b) - 6] <- xor(bad[length(b) - 6], as.raw(1))
  writeBin(bad, imgs)
  expect_error(mx.data.fashion.mnist(dir), "idx file '.*train-images-idx3-ubyte.gz'")
  writeBin(b[1:(length(b) %/% 2)], imgs)
  expect_error(mx.data.fashion.mnist(dir), "truncated")

  write_idx(imgs, 2051, c(2, 28, 28), good_pix)
  expect_identical(mx.data.fashion.mnist(dir)$y, 1:2)
  write_labels(c(1, 2, 3))
  expect_error(mx.data.fashion.mnist(dir), "holds 2 images but .* holds 3 labels")
  write_labels(c(1, 12))
  expect_error(mx.data.fashion.mnist(dir), "labels outside 0..9 \\(max 12\\)")
  write_labels()
  expect_error(mx.data.fashion.mnist(dir, n = 3), "asked for 3 items but the file holds 2")
  expect_identical(mx.data.fashion.mnist(dir, n = 0)$y, integer(0))
})

fashion_dir <- function() {
  d <- "/usr/share/datasets/fashion-mnist"
  if (!file.exists(file.path(d, "t10k-images-idx3-ubyte.gz")))
    skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
  d
}

test_that("Fashion-MNIST test set matches the bytes of the files", {
  d <- fashion_dir()
  f <- mx.data.fashion.mnist(subset = "test")
  expect_identical(dim(f$x), c(28L, 28L, 1L, 10000L))
  img <- read_all(file.path(d, "t10k-images-idx3-ubyte.gz"))
  lab <- read_all(file.path(d, "t10k-labels-idx1-ubyte.gz"))
  expect_identical(length(img), 16L + 10000L * 784L)
  expect_identical(f$x, array(as.integer(img[-(1:16)]) / 255, c(28, 28, 1, 10000)))
  expect_identical(f$y, as.integer(lab[-(1:8)]))
  expect_identical(as.vector(table(f$y)), rep(1000L, 10))
  expect_identical(head(f$y), c(9L, 2L, 1L, 1L, 6L, 1L))
  expect_identical(mx.data.fashion.mnist.labels()[f$y[1] + 1], "Ankle boot")
  expect_identical(f, mx.data.fashion.mnist(dir = d, subset = "test"))
})

test_that("Fashion-MNIST training set reads in full and in part", {
  d <- fashion_dir()
  part <- mx.data.fashion.mnist(subset = "train", n = 100)
  expect_identical(dim(part$x), c(28L, 28L, 1L, 100L))
  img <- read_all(file.path(d, "train-images-idx3-ubyte.gz"), 16 + 100 * 784)
  expect_identical(as.vector(part$x), as.integer(img[-(1:16)]) / 255)
  expect_identical(head(part$y), c(9L, 0L, 0L, 3L, 0L, 2L))
  full <- mx.data.fashion.mnist(subset = "train")
  expect_identical(dim(full$x), c(28L, 28L, 1L, 60000L))
  expect_identical(as.vector(table(full$y)), rep(6000L, 10))
  expect_identical(full$x[, , , 1:100, drop = FALSE], part$x)
  expect_identical(full$y[1:100], part$y)
})

test_that("Fashion-MNIST class names", {
  l <- mx.data.fashion.mnist.labels()
  expect_length(l, 10)
  expect_identical(l[c(1, 10)], c("T-shirt/top", "Ankle boot"))
  expect_false(anyDuplicated(l) > 0)
})
