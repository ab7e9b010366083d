# Dropout: identity in inference, Bernoulli masks scaled by 1/(1-p) in
# training (seen through the gradient, which is grad * mask), reproducible
# from mx.set.seed, variational axes, mode = "always", bad parameters.

mask_of <- function(x, params = list(), dtype = "float64")
  op_backward("Dropout", list(x), list(array(1, dim(x))), params, dtype = dtype)[[1]]

test_that("Dropout is the identity in inference", {
  set.seed(51)
  x <- array(rnorm(60), c(3, 4, 5))
  expect_equal(op_forward("Dropout", list(x))[[1]], x)
  expect_equal(op_forward("Dropout", list(x), list(p = 0.9))[[1]], x)
  expect_equal(op_forward("Dropout", list(x), dtype = "float32")[[1]], x, tolerance = 1e-6)
})

test_that("training keeps about 1-p of the entries, scaled by 1/(1-p)", {
  n <- 40000
  x <- array(1, c(200, n / 200))
  for (p in c(0.5, 0.2, 0.8)) {
    m <- mask_of(x, list(p = p))
    kept <- m != 0
    expect_lt(abs(mean(kept) - (1 - p)), 0.01) # 40000 draws: sd <= 0.0025
    expect_equal(unique(m[kept]), 1 / (1 - p), tolerance = 1e-12, info = p)
    expect_true(all(m[!kept] == 0))
  }
  m32 <- mask_of(x, list(p = 0.3), dtype = "float32")
  expect_lt(abs(mean(m32 != 0) - 0.7), 0.01)
  expect_equal(unique(m32[m32 != 0]), 1 / 0.7, tolerance = 1e-6)
  # the gradient is grad * mask
  set.seed(52)
  g <- array(runif(n), dim(x))
  mx.set.seed(3)
  m <- mask_of(x, list(p = 0.4))
  mx.set.seed(3)
  gx <- op_backward("Dropout", list(x), list(g), list(p = 0.4))[[1]]
  expect_equal(gx, g * m, tolerance = 1e-12)
  # p = 0: nothing is dropped
  expect_true(all(mask_of(x, list(p = 0)) == 1))
})

test_that("the same seed gives the same mask", {
  x <- array(1, c(50, 40))
  mx.set.seed(42)
  m1 <- mask_of(x)
  mx.set.seed(42)
  m2 <- mask_of(x)
  expect_identical(m1, m2)
  m3 <- mask_of(x) # next call: a fresh mask
  expect_false(identical(m1, m3))
  mx.set.seed(43)
  expect_false(identical(m1, mask_of(x)))
})

test_that("mode = 'always' drops in inference too", {
  set.seed(53)
  x <- array(runif(20000, 1, 2), c(100, 200))
  y <- op_forward("Dropout", list(x), list(p = 0.25, mode = "always"))[[1]]
  kept <- y != 0
  expect_lt(abs(mean(kept) - 0.75), 0.015) # 20000 draws: sd 0.003
  expect_equal(y[kept], x[kept] / 0.75, tolerance = 1e-12)
})

test_that("axes share one draw along the given axes (variational dropout)", {
  x <- array(1, c(4, 50, 30)) # C (30, 50, 4)
  # C axis 1 is R dim 2: the mask is constant along R dim 2
  y <- op_forward("Dropout", list(x), list(p = 0.5, mode = "always", axes = 1))[[1]]
  expect_true(all(apply(y, c(1, 3), function(v) length(unique(c(v))) == 1)))
  expect_lt(abs(mean(y != 0) - 0.5), 0.2) # 120 draws: sd 0.046
  expect_true(all(y[y != 0] == 2))
  # two axes: C axes 0 and 2 (R dims 3 and 1): constant over both
  y <- op_forward("Dropout", list(x), list(p = 0.5, mode = "always", axes = c(0, 2)))[[1]]
  expect_true(all(apply(y, 2, function(v) length(unique(c(v))) == 1)))
  expect_gt(length(unique(y[1, , 1])), 1)
  # training gradient with axes
  m <- mask_of(x, list(p = 0.5, axes = 1))
  expect_true(all(apply(m, c(1, 3), function(v) length(unique(c(v))) == 1)))
  g <- array(runif(length(x)), dim(x))
  mx.set.seed(9)
  m <- mask_of(x, list(p = 0.5, axes = c(0, 2)))
  mx.set.seed(9)
  gx <- op_backward("Dropout", list(x), list(g), list(p = 0.5, axes = c(0, 2)))[[1]]
  expect_equal(gx, g * m, tolerance = 1e-12)
})

test_that("Dropout rejects bad parameters", {
  x <- array(1, c(3, 4))
  expect_op_error("Dropout", list(x), list(p = 1))
  expect_op_error("Dropout", list(x), list(p = 1.5))
  expect_op_error("Dropout", list(x), list(p = -0.1))
  expect_op_error("Dropout", list(x), list(mode = "sometimes"))
  expect_op_error("Dropout", list(x), list(axes = 2))
})
