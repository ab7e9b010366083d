# softmax, log_softmax, softmin, SoftmaxActivation: forward against plain R
# along the right axis (C-order axis a is R dim ndim - a), lengths,
# temperature, finite-difference gradients, bad parameters.

# Applies f (vector -> vector of the same length) along R dim `rdim`.
along <- function(x, rdim, f) {
  d <- dim(x)
  nd <- length(d)
  other <- setdiff(seq_len(nd), rdim)
  y <- apply(x, other, f)
  y <- array(y, c(d[rdim], d[other]))
  aperm(y, order(c(rdim, other)))
}
sm <- function(v) { e <- exp(v - max(v)); e / sum(e) }
lsm <- function(v) v - max(v) - log(sum(exp(v - max(v))))

test_that("softmax and log_softmax match R along every axis, float64 and float32", {
  set.seed(21)
  x <- array(rnorm(60, sd = 2), c(5, 4, 3))
  for (axis in c(-1, 0, 1, 2, -2)) {
    rdim <- if (axis < 0) -axis else 3 - axis
    got <- op_forward("softmax", list(x), list(axis = axis))[[1]]
    expect_equal(got, along(x, rdim, sm), tolerance = 1e-12, info = axis)
    got <- op_forward("log_softmax", list(x), list(axis = axis))[[1]]
    expect_equal(got, along(x, rdim, lsm), tolerance = 1e-12, info = axis)
    got <- op_forward("softmin", list(x), list(axis = axis))[[1]]
    expect_equal(got, along(-x, rdim, sm), tolerance = 1e-12, info = axis)
    got32 <- op_forward("softmax", list(x), list(axis = axis), dtype = "float32")[[1]]
    expect_equal(got32, along(x, rdim, sm), tolerance = 1e-6, info = axis)
  }
  # default axis is the last C axis = R's first dim; rows sum to one
  expect_equal(colSums(op_forward("softmax", list(x))[[1]]), matrix(1, 4, 3))
  # large values stay finite
  big <- matrix(c(1000, 1001, 1002, -1000), 2, 2)
  expect_equal(op_forward("softmax", list(big))[[1]], along(big, 1, sm))
})

test_that("temperature divides the logits", {
  x <- matrix(c(1, 2, 3, 0.5, -1, 2), 3, 2)
  for (t in c(0.5, 2, 10)) {
    expect_equal(op_forward("softmax", list(x), list(temperature = t))[[1]],
                 along(x / t, 1, sm), tolerance = 1e-12)
    expect_equal(op_forward("log_softmax", list(x), list(temperature = t))[[1]],
                 along(x / t, 1, lsm), tolerance = 1e-12)
  }
})

test_that("dtype sets the output type", {
  x <- matrix(c(1, 2, 3, 4), 2, 2)
  nd <- mx.nd.array(x, dtype = "float64")
  y <- mx.nd.internal.invoke("softmax", list(nd), list(dtype = "float32"))
  expect_equal(as.array(y), along(x, 1, sm), tolerance = 1e-6)
})

test_that("use_length masks the tail of each line", {
  set.seed(22)
  x <- array(rnorm(5 * 3 * 2), c(5, 3, 2))
  len <- matrix(c(1, 5, 3, 2, 4, 0), 3, 2) # C shape (2, 3): one length per line
  want <- x
  for (i in 1:3) for (j in 1:2) {
    n <- len[i, j]
    v <- rep(0, 5)
    if (n > 0) v[1:n] <- sm(x[1:n, i, j])
    want[, i, j] <- v
  }
  got <- op_forward("softmax", list(x, len), list(use_length = TRUE))[[1]]
  expect_equal(got, want, tolerance = 1e-12)
  # gradient with respect to the data
  op_check_grad("softmax", list(x, len), list(use_length = TRUE), wrt = 1, seed = 201)
  op_check_grad("log_softmax", list(x, len), list(use_length = TRUE), wrt = 1, seed = 202)
  g <- op_backward("softmax", list(x, len), list(array(1, dim(x))), list(use_length = TRUE))
  expect_true(all(g[[2]] == 0))
  # axis 1 (C order) with use_length: the length has C shape (2, 5)
  len2 <- matrix(c(1, 2, 3, 3, 1), 5, 2)
  got2 <- op_forward("softmax", list(x, len2), list(axis = 1, use_length = TRUE))[[1]]
  expect_equal(sum(got2 != 0), sum(len2))
  expect_equal(apply(got2, c(1, 3), sum), matrix(1, 5, 2))
  # wrong length shape
  expect_op_error("softmax", list(x, c(1, 2)), list(use_length = TRUE))
})

test_that("softmax family gradients match finite differences on three shapes", {
  set.seed(23)
  cases <- list(list(7, -1), list(c(4, 3), 0), list(c(3, 2, 4), 1), list(c(2, 3, 2, 2), -2))
  for (cs in cases) {
    x <- array(rnorm(prod(cs[[1]])), cs[[1]])
    for (op in c("softmax", "log_softmax", "softmin"))
      op_check_grad(op, list(x), list(axis = cs[[2]]), seed = 203)
    op_check_grad("softmax", list(x), list(axis = cs[[2]], temperature = 1.7), seed = 204)
    op_check_grad("log_softmax", list(x), list(axis = cs[[2]], temperature = 0.6), seed = 205)
  }
})

test_that("SoftmaxActivation: instance over the last axis, channel over axis 1", {
  set.seed(24)
  x2 <- matrix(rnorm(12), 4, 3)
  expect_equal(op_forward("SoftmaxActivation", list(x2))[[1]], along(x2, 1, sm),
               tolerance = 1e-12)
  x4 <- array(rnorm(2 * 3 * 4 * 2), c(2, 3, 4, 2)) # C (N=2, C=4, H=3, W=2)
  expect_equal(op_forward("SoftmaxActivation", list(x4), list(mode = "channel"))[[1]],
               along(x4, 3, sm), tolerance = 1e-12)
  expect_equal(op_forward("SoftmaxActivation", list(x4), list(mode = "instance"))[[1]],
               along(x4, 1, sm), tolerance = 1e-12)
  op_check_grad("SoftmaxActivation", list(x2), seed = 206)
  op_check_grad("SoftmaxActivation", list(x4), list(mode = "channel"), seed = 207)
  op_check_grad("SoftmaxActivation", list(x4), list(mode = "instance"), seed = 208)
  expect_op_error("SoftmaxActivation", list(x2), list(mode = "channel"))
  expect_op_error("SoftmaxActivation", list(x2), list(mode = "batch"))
})

test_that("softmax rejects bad parameters", {
  x <- matrix(1:6, 2, 3)
  expect_op_error("softmax", list(x), list(axis = 2))
  expect_op_error("softmax", list(x), list(axis = -3))
  expect_op_error("log_softmax", list(x), list(temperature = 0))
  expect_op_error("softmax", list(x), list(use_length = TRUE))
  expect_op_error("softmax", list(x), list(dtype = "int8"))
})
