# BatchNorm: inference against plain R, training statistics, moving-average
# updates, gradients in both modes, bad parameters.

# v (one value per channel) laid out like x, channels on R dim rc.
bcast <- function(v, x, rc) array(v[slice.index(x, rc)], dim(x))
bn_apply <- function(x, gamma, beta, mean, var, eps, rc)
  (x - bcast(mean, x, rc)) / sqrt(bcast(var, x, rc) + eps) * bcast(gamma, x, rc) +
    bcast(beta, x, rc)
batch_mean <- function(x, rc) apply(x, rc, mean)
batch_var <- function(x, rc) apply(x, rc, function(a) mean((a - mean(a))^2)) # biased
bn_train <- function(x, gamma, beta, eps, rc)
  bn_apply(x, gamma, beta, batch_mean(x, rc), batch_var(x, rc), eps, rc)

# Central differences of sum(w * f(...)) with respect to argument k of args.
num_grad <- function(f, args, k, w, eps = 1e-6) {
  x <- args[[k]]
  vapply(seq_along(x), function(j) {
    ap <- args; ap[[k]][j] <- x[j] + eps
    am <- args; am[[k]][j] <- x[j] - eps
    (sum(w * do.call(f, ap)) - sum(w * do.call(f, am))) / (2 * eps)
  }, 0)
}

test_that("BatchNorm inference uses the moving statistics", {
  set.seed(41)
  x <- array(rnorm(2 * 3 * 4 * 2, 1, 2), c(2, 3, 4, 2)) # C (N=2, C=4, H=3, W=2)
  g <- c(0.5, 1, 1.5, 2)
  b <- c(0, 0.1, -0.2, 0.3)
  mm <- c(0.1, -0.2, 0.3, 0)
  mv <- c(1, 2, 0.5, 4)
  got <- op_forward("BatchNorm", list(x, g, b, mm, mv), list(fix_gamma = FALSE))[[1]]
  expect_equal(got, bn_apply(x, g, b, mm, mv, 1e-3, 3), tolerance = 1e-12)
  # fix_gamma (the default) ignores gamma
  got <- op_forward("BatchNorm", list(x, g, b, mm, mv))[[1]]
  expect_equal(got, bn_apply(x, rep(1, 4), b, mm, mv, 1e-3, 3), tolerance = 1e-12)
  got <- op_forward("BatchNorm", list(x, g, b, mm, mv), list(fix_gamma = FALSE, eps = 0.1),
                    dtype = "float32")[[1]]
  expect_equal(got, bn_apply(x, g, b, mm, mv, 0.1, 3), tolerance = 1e-5)
  # other axes: C axis 3 is R dim 1 (size 2); axis -1 too
  g2 <- c(2, 3); b2 <- c(1, -1); mm2 <- c(0.5, -0.5); mv2 <- c(2, 3)
  for (ax in list(3, -1)) {
    got <- op_forward("BatchNorm", list(x, g2, b2, mm2, mv2), list(fix_gamma = FALSE, axis = ax))[[1]]
    expect_equal(got, bn_apply(x, g2, b2, mm2, mv2, 1e-3, 1), tolerance = 1e-12)
  }
  # 2-D data (FullyConnected output): channels are R's first dim
  x2 <- matrix(rnorm(12), 3, 4)
  got <- op_forward("BatchNorm", list(x2, g[1:3], b[1:3], mm[1:3], mv[1:3]),
                    list(fix_gamma = FALSE))[[1]]
  expect_equal(got, bn_apply(x2, g[1:3], b[1:3], mm[1:3], mv[1:3], 1e-3, 1), tolerance = 1e-12)
})

test_that("output_mean_var exposes the mean and the inverse std", {
  x <- matrix(rnorm(12), 3, 4)
  res <- op_forward("BatchNorm", list(x, rep(1, 3), rep(0, 3), c(1, 2, 3), c(4, 5, 6)),
                    list(output_mean_var = TRUE))
  expect_length(res, 3)
  expect_equal(c(res[[2]]), c(1, 2, 3))
  expect_equal(c(res[[3]]), 1 / sqrt(c(4, 5, 6) + 1e-3))
  expect_length(op_forward("BatchNorm", list(x, rep(1, 3), rep(0, 3), rep(0, 3), rep(1, 3))), 1)
})

test_that("training updates the moving averages with the biased batch variance", {
  set.seed(42)
  x <- array(rnorm(3 * 2 * 5, 2, 3), c(3, 2, 5)) # C (N=5, C=2, W=3)
  mm <- mx.nd.array(c(0.5, -1), dtype = "float64")
  mv <- mx.nd.array(c(2, 3), dtype = "float64")
  op_backward("BatchNorm", list(x, c(1, 1), c(0, 0), mm, mv), list(array(1, dim(x))),
              list(momentum = 0.8))
  expect_equal(c(as.array(mm)), 0.8 * c(0.5, -1) + 0.2 * batch_mean(x, 2), tolerance = 1e-12)
  expect_equal(c(as.array(mv)), 0.8 * c(2, 3) + 0.2 * batch_var(x, 2), tolerance = 1e-12)
  # a second step from the updated values, default momentum 0.9
  m1 <- c(as.array(mm)); v1 <- c(as.array(mv))
  op_backward("BatchNorm", list(2 * x, c(1, 1), c(0, 0), mm, mv), list(array(1, dim(x))))
  expect_equal(c(as.array(mm)), 0.9 * m1 + 0.1 * batch_mean(2 * x, 2), tolerance = 1e-12)
  expect_equal(c(as.array(mv)), 0.9 * v1 + 0.1 * batch_var(2 * x, 2), tolerance = 1e-12)
  # use_global_stats leaves them alone
  op_backward("BatchNorm", list(x, c(1, 1), c(0, 0), mm, mv), list(array(1, dim(x))),
              list(use_global_stats = TRUE))
  expect_equal(c(as.array(mm)), 0.9 * m1 + 0.1 * batch_mean(2 * x, 2), tolerance = 1e-12)
  # inference leaves them alone
  op_forward("BatchNorm", list(x, c(1, 1), c(0, 0), mm, mv))
  expect_equal(c(as.array(mv)), 0.9 * v1 + 0.1 * batch_var(2 * x, 2), tolerance = 1e-12)
})

test_that("training gradients match finite differences of the batch-statistics formula", {
  set.seed(43)
  cases <- list(list(c(3, 4), 1, 1), list(c(2, 3, 4), 1, 2), list(c(2, 2, 3, 2), 1, 3),
                list(c(3, 2, 4), -1, 1))
  for (cs in cases) {
    d <- cs[[1]]; axis <- cs[[2]]; rc <- cs[[3]]
    x <- array(rnorm(prod(d), 1, 2), d)
    k <- d[rc]
    g <- runif(k, 0.5, 2); b <- rnorm(k)
    w <- array(runif(prod(d), -1, 1), d)
    f <- function(x, g, b) bn_train(x, g, b, 1e-3, rc)
    got <- op_backward("BatchNorm", list(x, g, b, rep(0, k), rep(1, k)), list(w),
                       list(fix_gamma = FALSE, axis = axis))
    for (i in 1:3) {
      num <- num_grad(f, list(x, g, b), i, w)
      expect_equal(c(got[[i]]), num, tolerance = 1e-6, info = paste(i, paste(d, collapse = "x")))
    }
    # fix_gamma: gamma has no gradient, and gamma is treated as 1
    got <- op_backward("BatchNorm", list(x, g, b, rep(0, k), rep(1, k)), list(w),
                       list(axis = axis))
    expect_true(all(got[[2]] == 0))
    f1 <- function(x, b) bn_train(x, rep(1, k), b, 1e-3, rc)
    expect_equal(c(got[[1]]), num_grad(f1, list(x, b), 1, w), tolerance = 1e-6)
    expect_equal(c(got[[3]]), num_grad(f1, list(x, b), 2, w), tolerance = 1e-6)
  }
})

test_that("use_global_stats gradients match finite differences", {
  set.seed(44)
  for (d in list(c(3, 5), c(2, 3, 4), c(2, 2, 2, 3))) {
    x <- array(rnorm(prod(d)), d)
    k <- d[length(d) - 1]
    op_check_grad("BatchNorm", list(x, runif(k, 0.5, 2), rnorm(k), rnorm(k), runif(k, 0.5, 2)),
                  list(fix_gamma = FALSE, use_global_stats = TRUE), seed = 401)
  }
})

test_that("BatchNorm training forward uses the batch statistics (executor)", {
  ns <- asNamespace("symnet")
  skip_if_not(exists("mx.simple.bind", envir = ns) && exists("mx.symbol.Variable", envir = ns),
              "no executor API")
  set.seed(45)
  x <- array(rnorm(2 * 3 * 4, 1, 2), c(2, 3, 4)) # C (N=4, C=3, W=2)
  bn <- mx.symbol.internal.create("BatchNorm", list(data = mx.symbol.Variable("data")),
                                  list(fix_gamma = FALSE), name = "bn")
  ex <- mx.simple.bind(bn, mx.cpu(), data = dim(x), grad.req = "write")
  mx.exec.update.arg.arrays(ex, list(data = mx.nd.array(x), bn_gamma = mx.nd.array(c(1, 2, 3)),
                                     bn_beta = mx.nd.array(c(0, 1, 0))), match.name = TRUE)
  mx.exec.update.aux.arrays(ex, list(bn_moving_mean = mx.nd.array(rep(0, 3)),
                                     bn_moving_var = mx.nd.array(rep(1, 3))), match.name = TRUE)
  mx.exec.forward(ex, is.train = TRUE)
  expect_equal(as.array(ex$outputs[[1]]), bn_train(x, c(1, 2, 3), c(0, 1, 0), 1e-3, 2),
               tolerance = 1e-5)
  expect_equal(c(as.array(ex$aux.arrays[[1]])), 0.1 * batch_mean(x, 2), tolerance = 1e-5)
  expect_equal(c(as.array(ex$aux.arrays[[2]])), 0.9 + 0.1 * batch_var(x, 2), tolerance = 1e-5)
  mx.exec.forward(ex, is.train = FALSE)
  expect_equal(as.array(ex$outputs[[1]]),
               bn_apply(x, c(1, 2, 3), c(0, 1, 0), 0.1 * batch_mean(x, 2),
                        0.9 + 0.1 * batch_var(x, 2), 1e-3, 2), tolerance = 1e-5)
})

test_that("BatchNorm rejects bad parameters and shapes", {
  x <- array(rnorm(24), c(2, 3, 4))
  ok <- list(x, rep(1, 3), rep(0, 3), rep(0, 3), rep(1, 3))
  expect_op_error("BatchNorm", ok, list(axis = 3))
  expect_op_error("BatchNorm", ok, list(axis = -4))
  expect_op_error("BatchNorm", list(x, rep(1, 4), rep(0, 3), rep(0, 3), rep(1, 3)))
  expect_op_error("BatchNorm", list(x, rep(1, 3), rep(0, 3), rep(0, 3), rep(1, 2)))
  expect_op_error("BatchNorm", list(x, rep(1, 3), rep(0, 3))) # aux states missing
  expect_op_error("BatchNorm", ok, list(fix_gamma = "maybe"))
})
