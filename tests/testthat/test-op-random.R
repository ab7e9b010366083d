# Random sampling ops: moments on 50000 draws, supports, reproducibility from
# mx.set.seed, aliases, bad parameters.

draw <- function(op, params = list(), n = 50000) {
  params$shape <- n
  as.array(mx.nd.internal.invoke(op, list(), params))
}

test_that("uniform draws lie in [low, high) with the right mean and sd", {
  mx.set.seed(81)
  u <- draw("_random_uniform")
  expect_length(u, 50000)
  expect_true(all(u >= 0 & u < 1))
  expect_lt(abs(mean(u) - 0.5), 0.01)
  expect_lt(abs(sd(u) - sqrt(1 / 12)), 0.01)
  u <- draw("_random_uniform", list(low = -3, high = 5, dtype = "float64"))
  expect_true(all(u >= -3 & u < 5))
  expect_lt(abs(mean(u) - 1), 0.05)
  expect_lt(abs(sd(u) - 8 / sqrt(12)), 0.05)
  # the R wrappers (MXNet R's test_random)
  x <- as.array(mx.runif(50000))
  expect_true(all(x >= 0 & x <= 1))
  expect_lt(abs(mean(x) - 0.5), 0.01)
})

test_that("normal draws have mean loc and sd scale", {
  mx.set.seed(82)
  z <- draw("_random_normal")
  expect_lt(abs(mean(z)), 0.02)
  expect_lt(abs(sd(z) - 1), 0.02)
  z <- draw("_random_normal", list(loc = 5, scale = 0.1))
  expect_lt(abs(mean(z) - 5), 0.01)
  expect_lt(abs(sd(z) - 0.1), 0.01)
  x <- as.array(mx.rnorm(50000, 5, 0.1))
  expect_lt(abs(mean(x) - 5), 0.01)
  expect_lt(abs(sd(x) - 0.1), 0.01)
  # shape is an R-order tuple; the result has those R dims
  a <- mx.nd.internal.invoke("_random_normal", list(), list(shape = c(3, 4, 5), dtype = "float64"))
  expect_equal(dim(a), c(3, 4, 5))
})

test_that("exponential, gamma, poisson and negative binomial moments", {
  mx.set.seed(83)
  e <- draw("_random_exponential", list(lam = 2))
  expect_true(all(e > 0))
  expect_lt(abs(mean(e) - 0.5), 0.01)
  expect_lt(abs(sd(e) - 0.5), 0.015)
  for (ab in list(c(2, 3), c(0.5, 2), c(9, 0.5))) {
    gm <- draw("_random_gamma", list(alpha = ab[1], beta = ab[2]))
    m <- ab[1] * ab[2]
    expect_true(all(gm > 0))
    expect_lt(abs(mean(gm) / m - 1), 0.02)
    expect_lt(abs(var(gm) / (ab[1] * ab[2]^2) - 1), 0.05)
  }
  for (lam in c(0.5, 3, 40)) {
    p <- draw("_random_poisson", list(lam = lam))
    expect_true(all(p >= 0 & p == round(p)))
    expect_lt(abs(mean(p) / lam - 1), 0.02)
    expect_lt(abs(var(p) / lam - 1), 0.05)
  }
  nb <- draw("_random_negative_binomial", list(k = 3, p = 0.4))
  expect_true(all(nb == round(nb)))
  expect_lt(abs(mean(nb) / 4.5 - 1), 0.03)
  expect_lt(abs(var(nb) / 11.25 - 1), 0.07)
  gnb <- draw("_random_generalized_negative_binomial", list(mu = 2, alpha = 0.5))
  expect_lt(abs(mean(gnb) / 2 - 1), 0.03)
  expect_lt(abs(var(gnb) / 4 - 1), 0.07)
})

test_that("randint draws integers in [low, high)", {
  mx.set.seed(84)
  r <- mx.nd.internal.invoke("_random_randint", list(), list(low = -3, high = 5, shape = 40000))
  v <- as.array(r)
  expect_true(all(v >= -3 & v <= 4 & v == round(v)))
  expect_equal(sort(unique(c(v))), -3:4)
  expect_lt(max(abs(table(v) / 40000 - 1 / 8)), 0.01)
  v64 <- as.array(mx.nd.internal.invoke("_random_randint", list(),
                                        list(low = 0, high = 2, shape = 1000, dtype = "int64")))
  expect_true(all(v64 %in% c(0, 1)))
})

test_that("the same seed gives the same numbers; aliases work", {
  mx.set.seed(7)
  a <- draw("_random_uniform", n = 1000)
  mx.set.seed(7)
  b <- draw("random_uniform", n = 1000)
  expect_identical(a, b)
  mx.set.seed(7)
  expect_identical(draw("uniform", n = 1000), a)
  c2 <- draw("_random_uniform", n = 1000)
  expect_false(identical(a, c2))
  mx.set.seed(8)
  n1 <- draw("random_normal", n = 100)
  mx.set.seed(8)
  expect_identical(draw("normal", n = 100), n1)
  mx.set.seed(9)
  g1 <- draw("_random_gamma", list(alpha = 0.7), n = 100)
  mx.set.seed(9)
  expect_identical(draw("random_gamma", list(alpha = 0.7), n = 100), g1)
})

test_that("random ops reject bad parameters", {
  f <- function(op, params) expect_error(mx.nd.internal.invoke(op, list(), params))
  f("_random_uniform", list(low = 2, high = 1, shape = 3))
  f("_random_uniform", list(shape = c(2, 0)))
  f("_random_uniform", list()) # no shape: nothing to infer it from
  f("_random_uniform", list(shape = 3, dtype = "int8"))
  f("_random_normal", list(scale = -1, shape = 3))
  f("_random_exponential", list(lam = 0, shape = 3))
  f("_random_gamma", list(alpha = -1, shape = 3))
  f("_random_poisson", list(lam = -2, shape = 3))
  f("_random_negative_binomial", list(k = 2, p = 1.5, shape = 3))
  f("_random_randint", list(low = 3, high = 3, shape = 3))
  f("_random_randint", list(shape = 3))
})
