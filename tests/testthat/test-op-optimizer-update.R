# Fused optimizer updates against their R formulas, for one and two steps.
# The ops return the new weight and update their state inputs in place.

nd64 <- function(x) mx.nd.array(x, dtype = "float64")
clip <- function(x, c) if (c >= 0) pmax(pmin(x, c), -c) else x

# Runs `op` for two steps from weight w with gradients g1, g2 and fresh
# zero states; returns list(w1, w2, states after step 1, states after step 2).
two_steps <- function(op, w, g1, g2, nstates, params, dtype = "float64") {
  st <- lapply(seq_len(nstates), function(i) mx.nd.array(rep(0, length(w)), dtype = dtype))
  win <- mx.nd.array(w, dtype = dtype)
  w1 <- mx.nd.internal.invoke(op, c(list(win, mx.nd.array(g1, dtype = dtype)), st), params)
  s1 <- lapply(st, function(s) c(as.array(s)))
  w2 <- mx.nd.internal.invoke(op, c(list(w1, mx.nd.array(g2, dtype = dtype)), st), params)
  s2 <- lapply(st, function(s) c(as.array(s)))
  list(w1 = c(as.array(w1)), w2 = c(as.array(w2)), s1 = s1, s2 = s2, win = c(as.array(win)))
}

set.seed(91)
w0 <- rnorm(7)
ga <- rnorm(7, sd = 3)
gb <- rnorm(7, sd = 3)

test_that("sgd_update", {
  p <- list(lr = 0.1, wd = 0.01, rescale_grad = 0.5, clip_gradient = 1)
  f <- function(w, g) (1 - 0.1 * 0.01) * w - 0.1 * clip(0.5 * g, 1)
  r <- two_steps("sgd_update", w0, ga, gb, 0, p)
  expect_equal(r$w1, f(w0, ga), tolerance = 1e-12)
  expect_equal(r$w2, f(f(w0, ga), gb), tolerance = 1e-12)
  expect_equal(r$win, w0) # the weight input itself is not changed
  r <- two_steps("sgd_update", w0, ga, gb, 0, list(lr = 0.3))
  expect_equal(r$w2, w0 - 0.3 * ga - 0.3 * gb, tolerance = 1e-12)
  r32 <- two_steps("sgd_update", w0, ga, gb, 0, p, dtype = "float32")
  expect_equal(r32$w2, f(f(w0, ga), gb), tolerance = 1e-6)
})

test_that("sgd_mom_update updates mom in place", {
  lr <- 0.1; mo <- 0.9; wd <- 0.001; rs <- 0.5
  p <- list(lr = lr, momentum = mo, wd = wd, rescale_grad = rs, clip_gradient = 2)
  r <- two_steps("sgd_mom_update", w0, ga, gb, 1, p)
  m1 <- -lr * wd * w0 - lr * clip(rs * ga, 2)
  w1 <- w0 + m1
  m2 <- mo * m1 - lr * wd * w1 - lr * clip(rs * gb, 2)
  expect_equal(r$s1[[1]], m1, tolerance = 1e-12)
  expect_equal(r$w1, w1, tolerance = 1e-12)
  expect_equal(r$s2[[1]], m2, tolerance = 1e-12)
  expect_equal(r$w2, w1 + m2, tolerance = 1e-12)
})

test_that("nag_mom_update", {
  lr <- 0.05; mo <- 0.8; wd <- 0.01
  p <- list(lr = lr, momentum = mo, wd = wd)
  step <- function(w, m, g) {
    gr <- g + wd * w
    m <- mo * m
    list(w = w - m + (mo + 1) * (m - lr * gr), m = m - lr * gr)
  }
  r <- two_steps("nag_mom_update", w0, ga, gb, 1, p)
  s1 <- step(w0, 0, ga)
  s2 <- step(s1$w, s1$m, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$s1[[1]], s1$m, tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2[[1]], s2$m, tolerance = 1e-12)
  # without momentum NAG is plain SGD with weight decay
  r <- two_steps("nag_mom_update", w0, ga, gb, 1, list(lr = 0.1))
  expect_equal(r$w1, w0 - 0.1 * ga, tolerance = 1e-12)
})

test_that("adam_update updates mean and var in place", {
  lr <- 0.01; b1 <- 0.9; b2 <- 0.999; eps <- 1e-8; wd <- 0.1
  p <- list(lr = lr, wd = wd, clip_gradient = 2.5)
  step <- function(w, m, v, g) {
    gr <- clip(g + wd * w, 2.5)
    m <- b1 * m + (1 - b1) * gr
    v <- b2 * v + (1 - b2) * gr^2
    list(w = w - lr * m / (sqrt(v) + eps), m = m, v = v)
  }
  r <- two_steps("adam_update", w0, ga, gb, 2, p)
  s1 <- step(w0, 0, 0, ga)
  s2 <- step(s1$w, s1$m, s1$v, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$s1, list(s1$m, s1$v), tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2, list(s2$m, s2$v), tolerance = 1e-12)
  r32 <- two_steps("adam_update", w0, ga, gb, 2, p, dtype = "float32")
  expect_equal(r32$w2, s2$w, tolerance = 1e-5)
})

test_that("rmsprop_update and rmspropalex_update", {
  lr <- 0.01; g1 <- 0.95; g2 <- 0.9; eps <- 1e-8
  p <- list(lr = lr, rescale_grad = 0.5, clip_weights = 0.9)
  step <- function(w, n, g) {
    gr <- 0.5 * g
    n <- (1 - g1) * gr^2 + g1 * n
    list(w = clip(w - lr * gr / sqrt(n + eps), 0.9), n = n)
  }
  r <- two_steps("rmsprop_update", w0, ga, gb, 1, p)
  s1 <- step(w0, 0, ga)
  s2 <- step(s1$w, s1$n, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2[[1]], s2$n, tolerance = 1e-12)
  stepa <- function(w, n, gg, d, g) {
    gr <- g + 0.01 * w
    n <- (1 - g1) * gr^2 + g1 * n
    gg <- (1 - g1) * gr + g1 * gg
    d <- g2 * d - lr * gr / sqrt(n - gg^2 + 1e-4)
    list(w = w + d, n = n, g = gg, d = d)
  }
  r <- two_steps("rmspropalex_update", w0, ga, gb, 3, list(lr = lr, wd = 0.01, epsilon = 1e-4))
  s1 <- stepa(w0, 0, 0, 0, ga)
  s2 <- stepa(s1$w, s1$n, s1$g, s1$d, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$s1, list(s1$n, s1$g, s1$d), tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2, list(s2$n, s2$g, s2$d), tolerance = 1e-12)
})

test_that("ftrl_update, ftml_update, signsgd_update, signum_update", {
  lr <- 0.1; l1 <- 0.01; beta <- 1; wd <- 0.02
  stepf <- function(w, z, n, g) {
    z <- z + g - (sqrt(n + g^2) - sqrt(n)) * w / lr
    n <- n + g^2
    w <- ifelse(abs(z) > l1, (sign(z) * l1 - z) / ((beta + sqrt(n)) / lr + wd), 0)
    list(w = w, z = z, n = n)
  }
  r <- two_steps("ftrl_update", w0, ga, gb, 2, list(lr = lr, wd = wd))
  s1 <- stepf(w0, 0, 0, ga)
  s2 <- stepf(s1$w, s1$z, s1$n, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2, list(s2$z, s2$n), tolerance = 1e-12)

  b1 <- 0.6; b2 <- 0.999; eps <- 1e-8
  stepm <- function(w, d, v, z, g, t) {
    v <- b2 * v + (1 - b2) * g^2
    dt <- (1 - b1^t) / lr * (sqrt(v / (1 - b2^t)) + eps)
    z <- b1 * z + (1 - b1) * g - (dt - b1 * d) * w
    list(w = -z / dt, d = dt, v = v, z = z)
  }
  st <- lapply(1:3, function(i) nd64(rep(0, 7)))
  w1 <- mx.nd.internal.invoke("ftml_update", c(list(nd64(w0), nd64(ga)), st), list(lr = lr, t = 1))
  w2 <- mx.nd.internal.invoke("ftml_update", c(list(w1, nd64(gb)), st), list(lr = lr, t = 2))
  s1 <- stepm(w0, 0, 0, 0, ga, 1)
  s2 <- stepm(s1$w, s1$d, s1$v, s1$z, gb, 2)
  expect_equal(c(as.array(w1)), s1$w, tolerance = 1e-12)
  expect_equal(c(as.array(w2)), s2$w, tolerance = 1e-12)
  expect_equal(lapply(st, function(s) c(as.array(s))), list(s2$d, s2$v, s2$z), tolerance = 1e-12)

  r <- two_steps("signsgd_update", w0, ga, gb, 0, list(lr = 0.1, wd = 0.5))
  f <- function(w, g) (1 - 0.05) * w - 0.1 * sign(g)
  expect_equal(r$w2, f(f(w0, ga), gb), tolerance = 1e-12)

  mo <- 0.7
  steps <- function(w, m, g) {
    m <- mo * m - (1 - mo) * 0.1 * w - (1 - mo) * g
    list(w = (1 - 0.01 * 0.2) * w + 0.01 * sign(m), m = m)
  }
  r <- two_steps("signum_update", w0, ga, gb, 1, list(lr = 0.01, momentum = mo, wd = 0.1, wd_lh = 0.2))
  s1 <- steps(w0, 0, ga)
  s2 <- steps(s1$w, s1$m, gb)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2[[1]], s2$m, tolerance = 1e-12)
})

test_that("_adagrad_update and _adadelta_update follow the MXNet R optimizers", {
  lr <- 0.05; eps <- 1e-7; wd <- 0.01
  stepg <- function(w, h, g) {
    g <- clip(0.5 * g, 2)
    h <- h + g^2
    list(w = w - lr * (g / sqrt(h + eps) + wd * w), h = h)
  }
  p <- list(lr = lr, wd = wd, rescale_grad = 0.5, clip_gradient = 2)
  r <- two_steps("_adagrad_update", w0, ga, gb, 1, p)
  s1 <- stepg(w0, 0, ga)
  s2 <- stepg(s1$w, s1$h, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2[[1]], s2$h, tolerance = 1e-12)
  expect_equal(two_steps("_sparse_adagrad_update", w0, ga, gb, 1, p)$w2, s2$w, tolerance = 1e-12)

  rho <- 0.9; e2 <- 1e-5
  stepd <- function(w, ag, ad, g) {
    ag <- rho * ag + (1 - rho) * g^2
    d <- sqrt(ad + e2) / sqrt(ag + e2) * g
    ad <- rho * ad + (1 - rho) * d^2
    list(w = w - d - 0.01 * w, ag = ag, ad = ad)
  }
  r <- two_steps("_adadelta_update", w0, ga, gb, 2, list(wd = 0.01))
  s1 <- stepd(w0, 0, 0, ga)
  s2 <- stepd(s1$w, s1$ag, s1$ad, gb)
  expect_equal(r$w1, s1$w, tolerance = 1e-12)
  expect_equal(r$w2, s2$w, tolerance = 1e-12)
  expect_equal(r$s2, list(s2$ag, s2$ad), tolerance = 1e-12)
})

test_that("the output may be written over the weight (out = weight)", {
  w <- nd64(w0)
  mom <- nd64(rep(0, 7))
  y <- mx.nd.internal.invoke("sgd_mom_update", list(w, nd64(ga), mom), list(lr = 0.1, momentum = 0.9))
  expect_equal(c(as.array(y)), w0 - 0.1 * ga, tolerance = 1e-12)
  expect_equal(c(as.array(mom)), -0.1 * ga, tolerance = 1e-12)
})

test_that("optimizer updates reject bad input", {
  expect_op_error("sgd_update", list(w0, ga))                        # lr missing
  expect_op_error("sgd_update", list(w0, ga[1:3]), list(lr = 0.1))   # grad of another shape
  expect_op_error("sgd_mom_update", list(w0, ga, rep(0, 3)), list(lr = 0.1))
  expect_op_error("adam_update", list(w0, ga, rep(0, 7)), list(lr = 0.1)) # var missing
  expect_op_error("ftml_update", list(w0, ga, w0 * 0, w0 * 0, w0 * 0), list(lr = 0.1))
  expect_op_error("ftml_update", list(w0, ga, w0 * 0, w0 * 0, w0 * 0), list(lr = 0.1, t = 0))
  expect_error(op_backward("sgd_update", list(w0, ga), list(w0), list(lr = 0.1)))
})
