# Data iterators (R/io.R, src/r_io.c, src/engine/io.c): mx.io.arrayiter,
# mx.io.MNISTIter, mx.io.CSVIter, mx.io.extract and the RefClass protocol
# that custom iterators extend.  Expectations marked "MXNet" are from
# MXNet's R-package/tests/testthat/test_io.R.

# All batches of one pass: list of list(data, label, pad), as R arrays.
io_pass <- function(it) {
  it$reset()
  out <- list()
  while (it$iter.next()) {
    v <- it$value()
    out[[length(out) + 1]] <- list(data = as.array(v$data), label = as.array(v$label), pad = it$num.pad())
  }
  out
}

# MXNet's ArrayDataIter batching, as index vectors into the examples (NA
# for the zeros of a never-filled buffer): one buffer reused per batch, so
# a short last batch keeps the previous batch's tail.
mxnet_array_batches <- function(n, bs, order = seq_len(n)) {
  buf <- rep(NA_integer_, bs)
  out <- list()
  for (begin in seq(1, n, by = bs)) {
    end <- min(n, begin + bs - 1)
    buf[seq_len(end - begin + 1)] <- order[begin:end]
    out[[length(out) + 1]] <- buf
  }
  out
}

fashion_mnist_dir <- function() {
  cands <- c(Sys.getenv("SYMNET_FASHION_MNIST"), "/usr/share/datasets/fashion-mnist",
             "/usr/share/dataset-fashion-mnist")
  for (d in cands[nzchar(cands)])
    if (file.exists(file.path(d, "t10k-images-idx3-ubyte.gz"))) return(d)
  skip("Fashion-MNIST not found (Debian package dataset-fashion-mnist, or set SYMNET_FASHION_MNIST)")
}

# Big-endian idx writer.
be32 <- function(x) as.raw((x %/% 256^(3:0)) %% 256)
write_idx <- function(f, dims, values, magic = NULL, gz = FALSE) {
  if (is.null(magic)) magic <- 0x0800 + length(dims)
  bytes <- c(be32(magic), unlist(lapply(dims, be32)), as.raw(values))
  con <- if (gz) gzfile(f, "wb") else file(f, "wb")
  writeBin(bytes, con)
  close(con)
  f
}

test_that("arrayiter: 100x100 matrix in batches of 20 gives 5 batches (MXNet)", {
  X <- matrix(runif(10000), 100, 100)
  y <- runif(100)
  it <- mx.io.arrayiter(X, y, batch.size = 20)
  b <- io_pass(it)
  expect_length(b, 5)
  expect_equal(dim(b[[1]]$data), c(100, 20))
  expect_equal(as.vector(dim(b[[1]]$label)), 20)
  expect_equal(it$batch.size, 20)
  expect_equal(b[[3]]$data, X[, 41:60], tolerance = 1e-6)
  expect_equal(as.vector(b[[5]]$label), y[81:100], tolerance = 1e-6)
  expect_true(is.mx.dataiter(it))
  expect_false(is.mx.dataiter(X))
})

test_that("arrayiter pads the last batch with the previous batch's rows (MXNet label counts)", {
  y <- round((1:100) / 10)
  X <- matrix(1:200, 2, 100)
  it <- mx.io.arrayiter(X, y, batch.size = 30)
  b <- io_pass(it)
  expect_length(b, 4)
  labels <- unlist(lapply(b, function(x) x$label))
  expect_length(labels, 120)
  expect_equal(as.vector(table(labels)), c(5, 9, 11, 9, 11, 9, 11, 13, 22, 14, 6))
  expect_equal(vapply(b, `[[`, 0, "pad"), c(0, 0, 0, 20))
  ref <- mxnet_array_batches(100, 30)
  for (i in seq_along(b)) {
    expect_equal(as.vector(b[[i]]$label), y[ref[[i]]])
    expect_equal(b[[i]]$data, X[, ref[[i]]])
  }
  # the padding is examples 71..90, left over from the third batch
  expect_equal(b[[4]]$data[1, 11:30], X[1, 71:90])
})

test_that("arrayiter: one short batch is padded with zeros", {
  X <- array(as.numeric(1:(2 * 3 * 5)), c(2, 3, 5))
  it <- mx.io.arrayiter(X, 1:5, batch.size = 8)
  b <- io_pass(it)
  expect_length(b, 1)
  expect_equal(dim(b[[1]]$data), c(2, 3, 8))
  expect_equal(b[[1]]$pad, 3)
  expect_equal(b[[1]]$data[, , 1:5], X)
  expect_true(all(b[[1]]$data[, , 6:8] == 0))
  expect_equal(as.vector(b[[1]]$label), c(1:5, 0, 0, 0))
})

test_that("arrayiter keeps R dims: images c(w, h, c, n), labels with the batch last", {
  X <- array(rnorm(4 * 3 * 2 * 10), c(4, 3, 2, 10))
  Y <- matrix(rnorm(2 * 10), 2, 10)
  it <- mx.io.arrayiter(X, Y, batch.size = 4)
  b <- io_pass(it)
  expect_length(b, 3)
  expect_equal(dim(b[[1]]$data), c(4, 3, 2, 4))
  expect_equal(dim(b[[1]]$label), c(2, 4))
  expect_equal(b[[2]]$data, X[, , , 5:8], tolerance = 1e-6)
  expect_equal(b[[2]]$label, Y[, 5:8], tolerance = 1e-6)
  expect_equal(b[[3]]$pad, 2)
  # a plain vector is one value per example
  it <- mx.io.arrayiter(1:6, 6:1, batch.size = 3)
  b <- io_pass(it)
  expect_equal(as.vector(b[[2]]$data), 4:6)
  expect_equal(as.vector(b[[2]]$label), 3:1)
})

test_that("arrayiter gives MXNet's errors for transposed or inconsistent inputs", {
  X <- matrix(runif(1000), 100, 10) # examples in rows: row major
  expect_error(mx.io.arrayiter(X, 1:100), "Seems X, y was passed in a Row major way")
  expect_error(mx.io.arrayiter(matrix(0, 5, 7), 1:6), "Data and label shape in-consistent")
  expect_error(mx.io.arrayiter(matrix("a", 2, 3), 1:3), "numeric")
  expect_error(mx.io.arrayiter(data.frame(a = 1:3), 1:3), "data frame")
  expect_error(mx.io.arrayiter(matrix(0, 2, 3), c("a", "b", "c")), "numeric")
  expect_error(mx.io.arrayiter(matrix(0, 2, 3), 1:3, batch.size = 0), "batch.size")
  expect_error(mx.io.arrayiter(matrix(0, 2, 3), 1:3, batch.size = -2), "batch.size")
  expect_error(mx.io.arrayiter(matrix(0, 2, 3), 1:3, batch.size = NA), "batch.size")
  expect_error(mx.io.arrayiter(matrix(0, 2, 3), 1:3, batch.size = 2.5), "batch.size")
  expect_error(mx.io.arrayiter(matrix(0, 2, 3), 1:3, shuffle = NA), "shuffle")
  expect_error(mx.io.arrayiter(numeric(0), numeric(0)), "empty")
})

test_that("value() needs a current batch; value() arrays are fresh per batch and stay valid", {
  X <- matrix(as.numeric(1:20), 2, 10)
  it <- mx.io.arrayiter(X, 1:10, batch.size = 4)
  it$reset()
  expect_error(it$value(), "no current batch")
  expect_true(it$iter.next())
  v1 <- it$value()
  expect_identical(it$value()$data, v1$data) # same handles until the next batch
  expect_equal(it$num.pad(), 0)
  expect_true(it$iter.next())
  expect_equal(as.array(v1$data), X[, 1:4]) # batch 1 kept its values
  expect_equal(as.array(it$value()$data), X[, 5:8])
  expect_true(it$iter.next())
  expect_equal(it$num.pad(), 2)
  expect_false(it$iter.next())
  expect_false(it$iter.next())
  expect_error(it$value(), "no current batch")
  expect_equal(it$num.pad(), 0)
  it$reset()
  expect_true(it$iter.next())
  expect_equal(as.vector(as.array(it$value()$label)), 1:4)
  expect_null(it$finalize())
  expect_equal(as.vector(as.array(it$value()$label)), 1:4)
})

test_that("arrayiter shuffle is reproducible with set.seed and keeps data and labels paired", {
  X <- rbind(1:50, (1:50) * 10)
  mk <- function() mx.io.arrayiter(X, 1:50, batch.size = 8, shuffle = TRUE)
  set.seed(42)
  a <- io_pass(mk())
  set.seed(42)
  b <- io_pass(mk())
  set.seed(43)
  c <- io_pass(mk())
  la <- unlist(lapply(a, `[[`, "label"))
  expect_equal(la, unlist(lapply(b, `[[`, "label")))
  expect_false(identical(la, unlist(lapply(c, `[[`, "label"))))
  expect_false(identical(la[1:50], as.numeric(1:50)))
  expect_setequal(la[1:50], 1:50) # a permutation in the first 50 positions
  for (x in a) {
    expect_equal(x$data[1, ], as.vector(x$label))
    expect_equal(x$data[2, ], as.vector(x$label) * 10)
  }
  # the order is drawn once: a second pass repeats it (as in MXNet)
  it <- mk()
  expect_equal(unlist(lapply(io_pass(it), `[[`, "label")), unlist(lapply(io_pass(it), `[[`, "label")))
})

test_that("mx.io.extract joins one pass and removes the padding", {
  X <- array(as.numeric(1:(3 * 2 * 23)), c(3, 2, 23))
  y <- as.numeric(101:123)
  it <- mx.io.arrayiter(X, y, batch.size = 5)
  expect_equal(mx.io.extract(it, "data"), X)
  expect_equal(as.vector(mx.io.extract(it, "label")), y)
  expect_equal(dim(mx.io.extract(it, "label")), 23)
  # it leaves the iterator reset
  expect_true(it$iter.next())
  expect_equal(as.vector(as.array(it$value()$label)), y[1:5])
  set.seed(1)
  it <- mx.io.arrayiter(X, y, batch.size = 5, shuffle = TRUE)
  lab <- as.vector(mx.io.extract(it, "label"))
  expect_setequal(lab, y)
  expect_equal(mx.io.extract(it, "data")[1, 1, ], (lab - 101) * 6 + 1)
  expect_error(mx.io.extract(it, "weights"), "no field")
})

test_that("MNISTIter reads Fashion-MNIST: 600 batches of 100, shapes, ranges, first labels", {
  d <- fashion_mnist_dir()
  img <- file.path(d, "train-images-idx3-ubyte.gz")
  lab <- file.path(d, "train-labels-idx1-ubyte.gz")
  expect_message(it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 100, shuffle = FALSE),
                 "load 60000 images")
  expect_equal(it$batch.size, 100)
  it$reset()
  n <- 0
  while (it$iter.next()) n <- n + 1
  expect_equal(n, 600)
  it$reset()
  expect_true(it$iter.next())
  v <- it$value()
  expect_equal(dim(v$data), c(28, 28, 1, 100))
  expect_equal(as.vector(dim(v$label)), 100)
  x <- as.array(v$data)
  expect_true(all(x >= 0 & x < 1))
  expect_gt(max(x), 0.9)
  first <- as.array(v$label)
  expect_equal(it$num.pad(), 0)
  # the labels and pixels read independently from the idx files
  con <- gzfile(lab, "rb")
  raw_lab <- readBin(con, "raw", 8 + 100)
  close(con)
  expect_equal(as.vector(first), as.integer(raw_lab[9:108]))
  con <- gzfile(img, "rb")
  raw_img <- readBin(con, "raw", 16 + 2 * 784)
  close(con)
  # pixel (row r, col c) of an image is R element [c, r]: the C shape (28, 28) reversed
  expect_equal(x[, , 1, 2], matrix(as.integer(raw_img[16 + 784 + 1:784]), 28, 28) / 256, tolerance = 1e-7)
  # reset repeats the first batch
  it$reset()
  expect_true(it$iter.next())
  expect_equal(as.array(it$value()$label), first)
})

test_that("MNISTIter: shuffle with a seed is reproducible; flat gives c(784, batch)", {
  d <- fashion_mnist_dir()
  img <- file.path(d, "t10k-images-idx3-ubyte.gz")
  lab <- file.path(d, "t10k-labels-idx1-ubyte.gz")
  first_labels <- function(...) {
    it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 50, silent = TRUE, ...)
    it$reset()
    it$iter.next()
    as.array(it$value()$label)
  }
  plain <- first_labels(shuffle = FALSE)
  s1 <- first_labels(shuffle = TRUE, seed = 7)
  expect_equal(first_labels(shuffle = TRUE, seed = 7), s1)
  expect_false(identical(s1, plain))
  expect_false(identical(first_labels(shuffle = TRUE, seed = 8), s1))
  it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 128, flat = TRUE, shuffle = TRUE,
                        seed = 7, silent = TRUE, data.shape = c(784))
  b <- io_pass(it)
  expect_length(b, 78) # 10000 %/% 128: MXNet drops the partial batch
  expect_equal(dim(b[[1]]$data), c(784, 128))
  expect_true(all(vapply(b, `[[`, 0, "pad") == 0))
  # a shuffled pass is a permutation: label counts match the file's
  con <- gzfile(lab, "rb")
  all_lab <- as.integer(readBin(con, "raw", 10008)[-(1:8)])
  close(con)
  it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 100, shuffle = TRUE, seed = 1, silent = TRUE)
  expect_equal(as.vector(table(mx.io.extract(it, "label"))), as.vector(table(all_lab)))
  # round.batch keeps every image, padding the last batch from the start
  it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 3000, shuffle = FALSE, silent = TRUE,
                        round.batch = TRUE)
  b <- io_pass(it)
  expect_equal(vapply(b, `[[`, 0, "pad"), c(0, 0, 0, 2000))
  expect_equal(as.vector(b[[4]]$label[1001:1010]), all_lab[1:10])
  expect_equal(as.vector(mx.io.extract(it, "label")), all_lab)
  expect_error(mx.io.MNISTIter(image = img, label = lab, batch.size = 100, data.shape = c(28, 27),
                               silent = TRUE), "data.shape")
  expect_error(mx.io.MNISTIter(image = img, label = lab, batch.size = 20000, silent = TRUE),
               "larger than the 10000 images")
})

test_that("MNISTIter reads small raw and gzip idx files and parts of them", {
  skip_if_not(mx.io.internal.have.zlib(), "built without zlib")
  dir <- tempfile("idx")
  dir.create(dir)
  pix <- (0:29) * 8 # 5 images of 2 x 3
  for (gz in c(FALSE, TRUE)) {
    img <- write_idx(file.path(dir, paste0("img", gz)), c(5, 2, 3), pix, gz = gz)
    lab <- write_idx(file.path(dir, paste0("lab", gz)), 5, c(9, 8, 7, 6, 5), gz = gz)
    it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 2, shuffle = FALSE, silent = TRUE)
    b <- io_pass(it)
    expect_length(b, 2)
    expect_equal(dim(b[[1]]$data), c(3, 2, 1, 2))
    expect_equal(as.vector(b[[2]]$data), pix[13:24] / 256)
    expect_equal(as.vector(b[[2]]$label), c(7, 6))
    it <- mx.io.MNISTIter(image = img, label = lab, batch.size = 1, shuffle = FALSE, silent = TRUE,
                          num.parts = 2, part.index = 1)
    expect_equal(as.vector(mx.io.extract(it, "label")), c(7, 6, 5)) # images [2.5, 5) -> 2..4
  }
})

test_that("malformed idx files give errors naming the file and the problem", {
  dir <- tempfile("badidx")
  dir.create(dir)
  lab <- write_idx(file.path(dir, "lab"), 4, 0:3)
  good <- write_idx(file.path(dir, "img"), c(4, 2, 2), 0:15)
  mn <- function(image, label = lab) mx.io.MNISTIter(image = image, label = label, batch.size = 2, silent = TRUE)
  expect_silent(mn(good))
  f <- file.path(dir, "trunc")
  writeBin(readBin(good, "raw", 100)[1:25], f)
  expect_error(mn(f), "trunc.*truncated: its header promises 4 images of 2x2 \\(16 bytes\\) but only 9")
  f <- file.path(dir, "garbage")
  writeBin(charToRaw("this is not an idx file at all"), f)
  expect_error(mn(f), "garbage.*not an idx image file")
  f <- file.path(dir, "short")
  writeBin(as.raw(c(0, 0)), f)
  expect_error(mn(f), "too short")
  expect_error(mn(lab, good), "swapped")
  f <- write_idx(file.path(dir, "count"), c(3, 2, 2), 0:11)
  expect_error(mn(f), "holds 3 images but label file .* holds 4 labels")
  f <- file.path(dir, "trail")
  writeBin(c(readBin(good, "raw", 100), as.raw(1:3)), f)
  expect_error(mn(f), "3 bytes after")
  # a header promising 4e9 bytes in a tiny file fails before allocating
  f <- write_idx(file.path(dir, "huge"), c(60000, 200, 300), 0:5)
  expect_error(mn(f), "truncated: its header promises 60000 images of 200x300")
  f <- write_idx(file.path(dir, "zero"), c(0, 2, 2), integer(0))
  expect_error(mn(f), "zero size")
  f <- write_idx(file.path(dir, "float"), c(1, 1, 1), 0:3, magic = 0x0D03)
  expect_error(mn(f), "unsigned-byte")
  expect_error(mn(file.path(dir, "absent")), "does not exist")
  expect_error(mn(dir), "directory")
  expect_error(mx.io.MNISTIter(image = good, label = lab, batch.size = 0, silent = TRUE), "batch.size")
  expect_error(mx.io.MNISTIter(image = good, label = lab, batch.size = 2, num.parts = 2, part.index = 2,
                               silent = TRUE), "part.index")
  skip_if_not(mx.io.internal.have.zlib(), "built without zlib")
  gz <- write_idx(file.path(dir, "img.gz"), c(4, 2, 2), 0:15, gz = TRUE)
  expect_silent(mn(gz))
  f <- file.path(dir, "truncgz")
  bytes <- readBin(gz, "raw", 1000)
  writeBin(bytes[1:(length(bytes) - 12)], f)
  expect_error(mn(f), "truncgz.*truncated")
  f <- file.path(dir, "corruptgz")
  bytes[12:20] <- as.raw(0xff)
  writeBin(bytes, f)
  expect_error(mn(f), "corruptgz")
  f <- write_idx(file.path(dir, "hugegz"), c(60000, 2000, 3000), 0:5, gz = TRUE)
  expect_error(mn(f), "hugegz.*(more than a .*gzip file can hold|truncated)")
})

test_that("CSVIter matches read.csv, pads by wrapping to the start, reads labels", {
  dir <- tempfile("csv")
  dir.create(dir)
  set.seed(3)
  m <- matrix(round(rnorm(10 * 6), 3), 10, 6)
  f <- file.path(dir, "data.csv")
  write.table(m, f, sep = ",", row.names = FALSE, col.names = FALSE)
  ref <- t(as.matrix(read.csv(f, header = FALSE)))
  dimnames(ref) <- NULL
  it <- mx.io.CSVIter(data.csv = f, data.shape = 6, batch.size = 4)
  expect_equal(it$batch.size, 4)
  b <- io_pass(it)
  expect_length(b, 3)
  expect_equal(dim(b[[1]]$data), c(6, 4))
  expect_equal(b[[2]]$data, ref[, 5:8], tolerance = 1e-6)
  expect_equal(vapply(b, `[[`, 0, "pad"), c(0, 0, 2))
  expect_equal(b[[3]]$data, ref[, c(9, 10, 1, 2)], tolerance = 1e-6)
  expect_equal(as.vector(b[[1]]$label), rep(0, 4)) # no label file: zeros
  expect_equal(mx.io.extract(it, "data"), ref, tolerance = 1e-6)
  expect_equal(mx.io.extract(it, "data"), ref, tolerance = 1e-6) # every pass from the first line
  # data.shape in R order
  it <- mx.io.CSVIter(data.csv = f, data.shape = c(3, 2), batch.size = 5)
  b <- io_pass(it)
  expect_equal(dim(b[[1]]$data), c(3, 2, 5))
  expect_equal(b[[1]]$data[, , 2], matrix(m[2, ], 3, 2), tolerance = 1e-6)
  # labels
  lf <- file.path(dir, "label.csv")
  writeLines(as.character(1:10), lf)
  it <- mx.io.CSVIter(data.csv = f, data.shape = 6, batch.size = 3, label.csv = lf)
  expect_equal(as.vector(mx.io.extract(it, "label")), 1:10)
  expect_equal(dim(io_pass(it)[[1]]$label), 3)
  lf2 <- file.path(dir, "label2.csv")
  write.table(cbind(1:10, 11:20), lf2, sep = ",", row.names = FALSE, col.names = FALSE)
  it <- mx.io.CSVIter(data_csv = f, data_shape = 6, batch_size = 3, label_csv = lf2, label_shape = 2)
  expect_equal(io_pass(it)[[2]]$label, rbind(4:6, 14:16))
  # round.batch = FALSE: pad counts the stale tail
  it <- mx.io.CSVIter(data.csv = f, data.shape = 6, batch.size = 4, round.batch = FALSE, label.csv = "NULL")
  expect_equal(vapply(io_pass(it), `[[`, 0, "pad"), c(0, 0, 2))
  # blank lines, CRLF, spaces and a missing final newline are fine
  f2 <- file.path(dir, "messy.csv")
  writeBin(charToRaw("1, 2 ,3\r\n\r\n  4,5,6e-1\r\n\n7,8,-9"), f2)
  expect_equal(mx.io.extract(mx.io.CSVIter(data.csv = f2, data.shape = 3, batch.size = 2), "data"),
               matrix(c(1, 2, 3, 4, 5, 0.6, 7, 8, -9), 3), tolerance = 1e-6)
})

test_that("CSVIter reports malformed files with file, line and value", {
  dir <- tempfile("badcsv")
  dir.create(dir)
  w <- function(name, text) {
    f <- file.path(dir, name)
    writeLines(text, f)
    f
  }
  csv <- function(f, ...) mx.io.CSVIter(data.csv = f, data.shape = 3, batch.size = 2, ...)
  expect_error(csv(w("nan.csv", c("1,2,3", "4,x,6"))), "nan.csv', line 2, value 2: 'x' is not a number")
  expect_error(csv(w("head.csv", c("a,b,c", "1,2,3"))), "line 1.*no header")
  expect_error(csv(w("short.csv", c("1,2,3", "4,5"))), "line 2 has 2 values, but the shape needs 3")
  expect_error(csv(w("long.csv", c("1,2,3,4"))), "line 1 has 4 values")
  expect_error(csv(w("empty.csv", c("1,,3"))), "line 1, value 2")
  expect_error(csv(w("trail.csv", c("1,2,3,"))), "line 1, value 4")
  expect_error(csv(w("none.csv", c("", "  "))), "no data lines")
  good <- w("good.csv", c("1,2,3", "4,5,6"))
  expect_error(csv(good, label.csv = w("lab.csv", c("1", "2", "3"))), "has 2 lines but label.csv .* has 3")
  expect_error(csv(file.path(dir, "absent.csv")), "does not exist")
  expect_error(mx.io.CSVIter(data.csv = good, data.shape = 3), "batch.size")
  expect_error(mx.io.CSVIter(data.csv = good, batch.size = 2), "data.shape")
  expect_error(mx.io.CSVIter(data.csv = good, data.shape = c(3, 0), batch.size = 2), "data.shape")
  expect_error(mx.io.CSVIter(data.csv = good, data.shape = 3, batch.size = -1), "batch.size")
  expect_warning(mx.io.CSVIter(data.csv = good, data.shape = 3, batch.size = 2, bogus = 1), "bogus")
  nul <- file.path(dir, "nul.csv")
  writeBin(as.raw(c(0x31, 0x00, 0x32)), nul)
  expect_error(mx.io.CSVIter(data.csv = nul, data.shape = 1, batch.size = 1), "NUL")
})

test_that("a custom RefClass iterator extending Rcpp_MXArrayDataIter follows the protocol", {
  dir <- tempfile("custom")
  dir.create(dir)
  f <- file.path(dir, "mnist.csv")
  set.seed(5)
  m <- cbind(0:9, matrix(sample(0:255, 10 * 16, replace = TRUE), 10, 16)) # label + 4x4 image
  write.table(m, f, sep = ",", row.names = FALSE, col.names = FALSE)
  # As in MXNet's CustomIterator vignette, defined where users define it.
  gen <- evalq(setRefClass("SymnetTestCSVIter",
    fields = c("iter", "data.csv", "data.shape", "batch.size"),
    contains = "Rcpp_MXArrayDataIter",
    methods = list(
      initialize = function(iter, data.csv, data.shape, batch.size) {
        feature_len <- data.shape * data.shape + 1
        csv_iter <- mx.io.CSVIter(data.csv = data.csv, data.shape = c(feature_len), batch.size = batch.size)
        .self$iter <- csv_iter
        .self$data.csv <- data.csv
        .self$data.shape <- data.shape
        .self$batch.size <- batch.size
        .self
      },
      value = function() {
        val <- as.array(.self$iter$value()$data)
        val.x <- val[-1, ]
        val.y <- val[1, ]
        val.x <- val.x / 255
        dim(val.x) <- c(data.shape, data.shape, 1, ncol(val.x))
        list(data = mx.nd.array(val.x), label = mx.nd.array(val.y))
      },
      iter.next = function() .self$iter$iter.next(),
      reset = function() .self$iter$reset(),
      num.pad = function() .self$iter$num.pad(),
      finalize = function() .self$iter$finalize()
    )), globalenv())
  # objects first: R runs finalize() of reference objects when they are collected
  on.exit({
    rm(list = intersect(c("it", "gen", "bare"), ls()))
    gc()
    methods::removeClass("SymnetTestCSVIter", where = globalenv())
    methods::removeClass("SymnetTestBareIter", where = globalenv())
  }, add = TRUE)
  it <- gen$new(iter = NULL, data.csv = f, data.shape = 4, batch.size = 4)
  expect_true(is.mx.dataiter(it))
  expect_equal(it$batch.size, 4)
  b <- io_pass(it)
  expect_length(b, 3)
  expect_equal(dim(b[[1]]$data), c(4, 4, 1, 4))
  expect_equal(as.vector(b[[2]]$label), 4:7)
  expect_equal(b[[2]]$data[, , 1, 1], matrix(m[5, -1], 4, 4) / 255, tolerance = 1e-6)
  expect_equal(b[[3]]$pad, 2)
  expect_equal(as.vector(mx.io.extract(it, "label")), 0:9)
  expect_equal(dim(mx.io.extract(it, "data")), c(4, 4, 1, 10))
  # a subclass that overrides nothing says so instead of failing obscurely
  bare <- evalq(setRefClass("SymnetTestBareIter", contains = "Rcpp_MXArrayDataIter"), globalenv())
  expect_error(bare$new()$iter.next(), "must define reset")
  expect_null(bare$new()$finalize())
})

test_that("iterators free their memory when garbage collected", {
  gc()
  before <- mx.internal.live.bytes()
  for (i in 1:5) {
    it <- mx.io.arrayiter(matrix(runif(20000), 20, 1000), 1:1000, batch.size = 100)
    it$iter.next()
    v <- it$value()
  }
  rm(it, v)
  gc()
  gc()
  expect_lte(mx.internal.live.bytes(), before)
})

test_that("arrayiter reads R's vectors in place: no copy of the data, R copies before a change", {
  gc()
  x <- matrix(as.numeric(1:400000), 40, 10000)
  before <- mx.internal.live.bytes()
  it <- mx.io.arrayiter(x, rep(1L, 10000), batch.size = 5000)
  # the iterator holds no float copy of the 400,000 values (1.6 MB)
  expect_lt(mx.internal.live.bytes() - before, 200000)
  x[1, 1] <- -1   # copy-on-modify: the iterator still sees the values it was given
  it$reset(); it$iter.next()
  expect_equal(as.array(it$value()$data)[1, 1], 1)
  expect_equal(x[1, 1], -1)
  rm(x); gc()     # the iterator keeps its own reference
  it$reset(); it$iter.next(); it$iter.next()
  expect_equal(as.array(it$value()$data)[, 1], as.numeric(40 * 5000 + 1:40))
})

test_that("arrayiter converts integer and logical data; NA becomes NaN", {
  xi <- matrix(c(1L, NA, 3L, 4L), 2, 2)
  it <- mx.io.arrayiter(xi, c(TRUE, NA), batch.size = 2)
  it$iter.next()
  v <- it$value()
  expect_equal(as.array(v$data), matrix(c(1, NaN, 3, 4), 2, 2))
  expect_equal(as.numeric(as.array(v$label)), c(1, NaN))
  xl <- matrix(c(TRUE, FALSE, NA, TRUE), 2, 2)
  it <- mx.io.arrayiter(xl, 1:2, batch.size = 2)
  it$iter.next()
  expect_equal(as.array(it$value()$data), matrix(c(1, 0, NaN, 1), 2, 2))
})

test_that("shuffled batches of a large arrayiter are the rows of the permutation (threaded gather)", {
  x <- matrix(rnorm(784 * 500), 784, 500)
  set.seed(11)
  it <- mx.io.arrayiter(x, 1:500, batch.size = 200, shuffle = TRUE)
  seen <- integer()
  it$reset()
  while (it$iter.next()) {
    v <- it$value()
    lab <- as.array(v$label)
    d <- as.array(v$data)
    keep <- seq_len(200 - it$num.pad())
    expect_equal(d[, keep], x[, lab[keep]], tolerance = 1e-6)
    seen <- c(seen, lab[keep])
  }
  expect_equal(sort(seen), 1:500)
})
