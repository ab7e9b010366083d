# FullyConnected: out = data %*% t(weight) + bias in C terms, against plain
# R (flatten TRUE / FALSE, no_bias, float32), gradients, shape inference and
# bad parameters.
#
# R arrays are the reverse of C shapes: data of R dim c(d_k, ..., d_1, N) is
# the C tensor (N, d_1, ..., d_k); the weight R matrix c(in, num_hidden) is
# the C (num_hidden, in) and the output R dim is c(num_hidden, N).

fc_ref <- function(x, w, b = NULL, flatten = TRUE) {
  d <- dim(x)
  if (is.null(d)) d <- length(x)
  nin <- nrow(w)
  if (flatten) {
    n <- d[length(d)]
    xm <- matrix(x, ncol = n)
    odim <- c(ncol(w), n)
  } else {
    xm <- matrix(x, nrow = nin)
    odim <- c(ncol(w), d[-1])
  }
  y <- crossprod(w, xm)                       # (num_hidden, rows)
  if (!is.null(b)) y <- y + as.numeric(b)
  array(y, odim)
}

test_that("FullyConnected forward matches R", {
  set.seed(201)
  x <- matrix(rnorm(7 * 5), 7, 5)             # C (N=5, in=7)
  w <- matrix(rnorm(7 * 3), 7, 3)             # C (3, 7)
  b <- rnorm(3)
  got <- op_forward("FullyConnected", list(x, w, b), list(num_hidden = 3))[[1]]
  expect_equal(dim(got), c(3, 5))
  expect_equal(got, fc_ref(x, w, b), tolerance = 1e-12)
  # flatten: C (N=2, 3, 4, 5) -> (2, 60)
  x4 <- array(rnorm(5 * 4 * 3 * 2), c(5, 4, 3, 2))
  w4 <- matrix(rnorm(60 * 6), 60, 6)
  got <- op_forward("FullyConnected", list(x4, w4), list(num_hidden = 6, no_bias = TRUE))[[1]]
  expect_equal(dim(got), c(6, 2))
  expect_equal(got, fc_ref(x4, w4), tolerance = 1e-12)
  # flatten = FALSE: the last C axis (R's first) is transformed, the rest kept
  x3 <- array(rnorm(4 * 3 * 2), c(4, 3, 2))   # C (2, 3, 4)
  w3 <- matrix(rnorm(4 * 5), 4, 5)
  b3 <- rnorm(5)
  got <- op_forward("FullyConnected", list(x3, w3, b3), list(num_hidden = 5, flatten = FALSE))[[1]]
  expect_equal(dim(got), c(5, 3, 2))
  expect_equal(got, fc_ref(x3, w3, b3, flatten = FALSE), tolerance = 1e-12)
  # a bias of shape (num_hidden, 1) is accepted, as in MXNet
  got <- op_forward("FullyConnected", list(x, w, matrix(b, 1, 3)), list(num_hidden = 3))[[1]]
  expect_equal(got, fc_ref(x, w, b), tolerance = 1e-12)
  # float32, and a size large enough for threaded GEMM
  xl <- matrix(rnorm(300 * 130), 300, 130)
  wl <- matrix(rnorm(300 * 90), 300, 90)
  bl <- rnorm(90)
  expect_equal(op_forward("FullyConnected", list(xl, wl, bl), list(num_hidden = 90),
                          dtype = "float32")[[1]], fc_ref(xl, wl, bl), tolerance = 1e-5)
  expect_equal(op_forward("FullyConnected", list(xl, wl, bl), list(num_hidden = 90))[[1]],
               fc_ref(xl, wl, bl), tolerance = 1e-12)
})

test_that("FullyConnected backward matches the closed form", {
  set.seed(202)
  x <- array(rnorm(3 * 4 * 6), c(3, 4, 6))    # C (6, 4, 3) flattened to (6, 12)
  w <- matrix(rnorm(12 * 5), 12, 5)
  b <- rnorm(5)
  og <- matrix(rnorm(5 * 6), 5, 6)
  g <- op_backward("FullyConnected", list(x, w, b), list(og), list(num_hidden = 5))
  xm <- matrix(x, ncol = 6)
  expect_equal(g[[1]], array(w %*% og, dim(x)), tolerance = 1e-12)       # d data
  expect_equal(g[[2]], xm %*% t(og), tolerance = 1e-12)                  # d weight
  expect_equal(as.numeric(g[[3]]), rowSums(og), tolerance = 1e-12)       # d bias
  g32 <- op_backward("FullyConnected", list(x, w, b), list(og), list(num_hidden = 5),
                     dtype = "float32")
  expect_equal(g32[[2]], xm %*% t(og), tolerance = 1e-5)
  expect_equal(as.numeric(g32[[3]]), rowSums(og), tolerance = 1e-5)
})

test_that("FullyConnected gradients match finite differences", {
  set.seed(203)
  op_check_grad("FullyConnected", list(matrix(rnorm(12), 4, 3), matrix(rnorm(8), 4, 2), rnorm(2)),
                list(num_hidden = 2), seed = 2031)
  op_check_grad("FullyConnected", list(array(rnorm(30), c(3, 5, 2)), matrix(rnorm(45), 15, 3)),
                list(num_hidden = 3, no_bias = TRUE), seed = 2032)
  op_check_grad("FullyConnected", list(array(rnorm(24), c(4, 3, 2)), matrix(rnorm(20), 4, 5),
                                       rnorm(5)),
                list(num_hidden = 5, flatten = FALSE), seed = 2033)
  op_check_grad("FullyConnected", list(array(rnorm(7), 7), matrix(rnorm(3), 1, 3), rnorm(3)),
                list(num_hidden = 3), seed = 2034)     # 1-D data: (7) -> (7, 1)
})

test_that("FullyConnected rejects bad parameters and shapes", {
  x <- matrix(rnorm(12), 4, 3)
  w <- matrix(rnorm(8), 4, 2)
  expect_op_error("FullyConnected", list(x, w, rnorm(2)), list(), "num_hidden")
  expect_op_error("FullyConnected", list(x, w, rnorm(2)), list(num_hidden = 0), "num_hidden")
  expect_op_error("FullyConnected", list(x, w, rnorm(3)), list(num_hidden = 3), "weight")
  expect_op_error("FullyConnected", list(x, matrix(rnorm(10), 5, 2), rnorm(2)),
                  list(num_hidden = 2), "weight")
  expect_op_error("FullyConnected", list(x, w, rnorm(3)), list(num_hidden = 2), "bias")
  # no_bias: a bias input is one input too many
  expect_op_error("FullyConnected", list(x, w, rnorm(2)), list(num_hidden = 2, no_bias = TRUE))
  expect_op_error("FullyConnected", list(x, w), list(num_hidden = 2, flatten = "maybe"))
})
