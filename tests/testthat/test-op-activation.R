# Activation and LeakyReLU: forward against plain R, finite-difference
# gradients, rrelu's random slopes, bad parameters.

# Values kept away from 0 so that finite differences never straddle a kink.
away_from_zero <- function(n, sd = 2) {
  r <- rnorm(n, sd = sd)
  sign(r) * (0.05 + abs(r))
}

act_ref <- list(
  relu = function(x) pmax(x, 0),
  sigmoid = function(x) 1 / (1 + exp(-x)),
  tanh = tanh,
  softrelu = function(x) ifelse(x > 20, x, log1p(exp(x))),
  softsign = function(x) x / (1 + abs(x))
)

test_that("Activation forward matches R for every act_type, float64 and float32", {
  set.seed(11)
  x <- array(rnorm(60, sd = 3), c(5, 4, 3))
  x[1] <- 25 # softrelu's large-input branch
  for (a in names(act_ref)) {
    want <- act_ref[[a]](x)
    got <- op_forward("Activation", list(x), list(act_type = a))[[1]]
    expect_equal(got, want, tolerance = 1e-12, info = a)
    got32 <- op_forward("Activation", list(x), list(act_type = a), dtype = "float32")[[1]]
    expect_equal(got32, want, tolerance = 1e-6, info = a)
  }
})

test_that("Activation handles NaN and infinities like MXNet", {
  x <- c(NaN, -Inf, Inf, -1e6, 1e6, 0)
  for (dt in c("float64", "float32")) {
    r <- c(op_forward("Activation", list(x), list(act_type = "relu"), dtype = dt)[[1]])
    expect_true(is.nan(r[1]))
    expect_equal(r[-1], c(0, Inf, 0, 1e6, 0))
    expect_equal(c(op_forward("Activation", list(x[-1]), list(act_type = "tanh"), dtype = dt)[[1]]),
                 c(-1, 1, -1, 1, 0))
    expect_equal(c(op_forward("Activation", list(x[-1]), list(act_type = "sigmoid"), dtype = dt)[[1]]),
                 c(0, 1, 0, 1, 0.5))
    expect_equal(c(op_forward("Activation", list(x[-1]), list(act_type = "softsign"), dtype = dt)[[1]]),
                 c(-1, 1, -1e6 / (1 + 1e6), 1e6 / (1 + 1e6), 0), tolerance = 1e-7)
  }
})

test_that("Activation gradients match finite differences on three shapes", {
  set.seed(12)
  shapes <- list(7, c(3, 5), c(2, 3, 2, 2))
  for (s in shapes) {
    x <- array(away_from_zero(prod(s)), s)
    for (a in names(act_ref))
      op_check_grad("Activation", list(x), list(act_type = a), seed = 101)
  }
})

test_that("Activation backward values are the closed forms", {
  x <- c(-2, -0.5, 0.5, 3)
  g <- c(1, 2, 3, 4)
  y <- 1 / (1 + exp(-x))
  expect_equal(c(op_backward("Activation", list(x), list(g), list(act_type = "sigmoid"))[[1]]),
               g * y * (1 - y), tolerance = 1e-12)
  expect_equal(c(op_backward("Activation", list(x), list(g), list(act_type = "relu"))[[1]]),
               g * (x > 0), tolerance = 1e-12)
  expect_equal(c(op_backward("Activation", list(x), list(g), list(act_type = "softsign"))[[1]]),
               g / (1 + abs(x))^2, tolerance = 1e-12)
  expect_equal(c(op_backward("Activation", list(x), list(g), list(act_type = "softrelu"))[[1]]),
               g / (1 + exp(-x)), tolerance = 1e-12)
})

test_that("Activation rejects unknown or missing act_type", {
  expect_op_error("Activation", list(1:3), list(act_type = "swish"))
  expect_op_error("Activation", list(1:3), list())
  expect_op_error("Activation", list(1:3), list(act_type = "relu", slope = 2))
})

selu_l <- 1.0507009873554804934193349852946
selu_a <- 1.6732632423543772848170429916717
lrelu_ref <- list(
  leaky = function(x, s) ifelse(x > 0, x, s * x),
  elu = function(x, s) ifelse(x > 0, x, s * (exp(x) - 1)),
  selu = function(x, s) selu_l * ifelse(x > 0, x, selu_a * (exp(x) - 1)),
  gelu = function(x, s) x * pnorm(x)
)

test_that("LeakyReLU forward matches R (leaky, elu, selu, gelu, default slope 0.25)", {
  set.seed(13)
  x <- array(rnorm(24, sd = 2), c(4, 3, 2))
  for (a in names(lrelu_ref)) {
    got <- op_forward("LeakyReLU", list(x), list(act_type = a))[[1]]
    expect_equal(got, lrelu_ref[[a]](x, 0.25), tolerance = 1e-12, info = a)
    got <- op_forward("LeakyReLU", list(x), list(act_type = a, slope = 0.1))[[1]]
    expect_equal(got, lrelu_ref[[a]](x, 0.1), tolerance = 1e-12, info = a)
  }
  # default act_type is leaky
  expect_equal(op_forward("LeakyReLU", list(x))[[1]], lrelu_ref$leaky(x, 0.25))
  got32 <- op_forward("LeakyReLU", list(x), list(act_type = "gelu"), dtype = "float32")[[1]]
  expect_equal(got32, lrelu_ref$gelu(x), tolerance = 1e-6)
})

test_that("LeakyReLU gradients match finite differences on three shapes", {
  set.seed(14)
  for (s in list(9, c(4, 3), c(3, 2, 2, 2))) {
    x <- array(away_from_zero(prod(s)), s)
    for (a in names(lrelu_ref))
      op_check_grad("LeakyReLU", list(x), list(act_type = a, slope = 0.3), seed = 102)
  }
})

test_that("prelu uses one slope per channel (C-order axis 1) and learns it", {
  set.seed(15)
  # R dims c(W, H, C, N) = C-order (N, C, H, W); channels are R's 3rd dim
  x <- array(away_from_zero(2 * 3 * 4 * 2), c(2, 3, 4, 2))
  gam <- c(0.1, 0.2, 0.3, 0.4)
  gfull <- array(rep(gam, each = 6), dim(x))
  got <- op_forward("LeakyReLU", list(x, gam), list(act_type = "prelu"))[[1]]
  expect_equal(got, ifelse(x > 0, x, gfull * x), tolerance = 1e-12)
  op_check_grad("LeakyReLU", list(x, gam), list(act_type = "prelu"), seed = 103)
  # 2-D data: channels are R's first dim
  x2 <- matrix(away_from_zero(12), 3, 4)
  got2 <- op_forward("LeakyReLU", list(x2, c(0.5, 0.25, 2)), list(act_type = "prelu"))[[1]]
  expect_equal(got2, ifelse(x2 > 0, x2, c(0.5, 0.25, 2) * x2))
  op_check_grad("LeakyReLU", list(x2, c(0.5, 0.25, 2)), list(act_type = "prelu"), seed = 104)
  # one shared slope
  op_check_grad("LeakyReLU", list(x2, 0.3), list(act_type = "prelu"), seed = 105)
  expect_equal(op_forward("LeakyReLU", list(x2, 0.3), list(act_type = "prelu"))[[1]],
               ifelse(x2 > 0, x2, 0.3 * x2))
  # closed-form gamma gradient
  g <- array(runif(length(x)), dim(x))
  gr <- op_backward("LeakyReLU", list(x, gam), list(g), list(act_type = "prelu"))
  expect_equal(c(gr[[2]]), apply(g * pmin(x, 0), 3, sum), tolerance = 1e-12)
  expect_op_error("LeakyReLU", list(x, c(1, 2)), list(act_type = "prelu"))
})

test_that("rrelu: mean slope in inference, random slopes in [lower, upper) in training", {
  x <- c(-1, -2, 3, -4, 5, -6)
  got <- op_forward("LeakyReLU", list(x), list(act_type = "rrelu"))[[1]]
  expect_equal(c(got), ifelse(x > 0, x, x * (0.125 + 0.334) / 2))
  got <- op_forward("LeakyReLU", list(x),
                    list(act_type = "rrelu", lower_bound = 0.2, upper_bound = 0.4))[[1]]
  expect_equal(c(got), ifelse(x > 0, x, 0.3 * x))
  # training: the gradient is the slope that was drawn for each negative entry
  xn <- -seq(0.5, 20, length.out = 4000)
  s <- op_backward("LeakyReLU", list(xn), list(rep(1, 4000)), list(act_type = "rrelu"))[[1]]
  expect_true(all(s >= 0.125 & s < 0.334))
  expect_gt(sd(s), 0.05)
  expect_equal(mean(s), (0.125 + 0.334) / 2, tolerance = 0.01)
  # positive entries have slope 1
  sp <- op_backward("LeakyReLU", list(abs(xn)), list(rep(1, 4000)), list(act_type = "rrelu"))[[1]]
  expect_true(all(sp == 1))
})

test_that("LeakyReLU rejects bad parameters", {
  expect_op_error("LeakyReLU", list(1:3), list(act_type = "swish"))
  expect_op_error("LeakyReLU", list(1:3), list(act_type = "leaky", slope = "abc"))
  expect_error(op_backward("LeakyReLU", list(c(-1, 2)), list(c(1, 1)),
                           list(act_type = "rrelu", lower_bound = 0.5, upper_bound = 0.1)))
})
