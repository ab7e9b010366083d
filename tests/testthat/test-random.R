test_that("mx.runif and mx.rnorm have the right moments", {
  mx.set.seed(42)
  u <- as.array(mx.runif(50000))
  expect_true(all(u >= 0 & u <= 1))
  expect_equal(mean(u), 0.5, tolerance = 0.01)
  n <- as.array(mx.rnorm(50000, 5, 0.1))
  expect_equal(mean(n), 5, tolerance = 0.01)
  expect_equal(sd(n), 0.1, tolerance = 0.01)
  r <- as.array(mx.runif(c(2, 3), -10, 10))
  expect_equal(dim(r), c(2L, 3L))
  expect_true(all(r >= -10 & r <= 10))
})

test_that("mx.set.seed makes draws repeat", {
  mx.set.seed(10)
  a <- as.array(mx.runif(c(5, 5)))
  mx.set.seed(10)
  b <- as.array(mx.runif(c(5, 5)))
  expect_identical(a, b)
  c <- as.array(mx.runif(c(5, 5)))
  expect_false(identical(a, c))
})

test_that("bad random arguments are errors", {
  expect_error(mx.runif(c(2, 2), 1, 0), "min <= max")
  expect_error(mx.rnorm(c(2, 2), 0, -1), "non-negative")
  expect_error(mx.set.seed("x"), "number")
})
