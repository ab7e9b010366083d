# Initializers: MXNet's name rules, distribution statistics (as in MXNet
# R's test_initializer.R), Xavier's fans, seeding, mx.init.create, errors.

arr <- function(x) as.array(x)

test_that("mx.init.uniform", {
  mx.set.seed(1)
  init <- mx.init.uniform(scale = 1)
  expect_equal(typeof(init), "closure")
  expect_equal(arr(init("X_bias", c(1, 100), ctx = mx.ctx.default())), array(0, c(1, 100)))
  w <- arr(init("X_weight", c(5, 10, 1000), ctx = mx.ctx.default()))
  expect_equal(dim(w), c(5, 10, 1000))
  expect_true(all(w >= -1 & w <= 1))
  expect_equal(mean(w), 0, tolerance = 0.01)
  expect_equal(sd(w), sqrt(1 / 3), tolerance = 0.01)
})

test_that("mx.init.normal", {
  mx.set.seed(2)
  init <- mx.init.normal(sd = 0.1)
  expect_equal(arr(init("X_bias", c(1, 100), ctx = mx.ctx.default())), array(0, c(1, 100)))
  w <- arr(init("X_weight", c(5, 10, 1000), ctx = mx.ctx.default()))
  expect_equal(mean(w), 0, tolerance = 0.01)
  expect_equal(sd(w), 0.1, tolerance = 0.01)
})

test_that("mx.init.Xavier for every rnd_type and factor_type", {
  mx.set.seed(3)
  shape <- c(2, 3, 324, 324)
  fan_out <- shape[length(shape)]
  fan_in <- prod(shape[-length(shape)])
  init <- mx.init.Xavier()
  expect_equal(arr(init("X_bias", shape, mx.ctx.default())), array(0, shape))
  w <- arr(init("X_weight", shape, mx.ctx.default()))
  scale <- sqrt(3 / ((fan_in + fan_out) / 2))
  expect_true(all(w >= -scale & w <= scale))
  expect_equal(mean(w), 0, tolerance = 0.01)
  for (rnd in c("gaussian", "uniform")) {
    for (ft in c("in", "out", "avg")) {
      init <- mx.init.Xavier(rnd_type = rnd, factor_type = ft, magnitude = 200)
      w <- arr(init("X_weight", shape, mx.ctx.default()))
      factor_val <- switch(ft, avg = (fan_in + fan_out) / 2, `in` = fan_in, out = fan_out)
      scale <- sqrt(200 / factor_val)
      expect_equal(mean(w), 0, tolerance = 0.01)
      if (rnd == "gaussian") {
        expect_equal(sd(w), scale, tolerance = 0.01)
      } else {
        expect_true(all(w >= -scale & w <= scale))
        expect_equal(sd(w), scale / sqrt(3), tolerance = 0.01)
      }
    }
  }
})

test_that("Xavier's fans: fan_out is the last R dim, fan_in the product of the others", {
  mx.set.seed(4)
  # a FullyConnected weight c(in = 400, out = 10): "out" uses 10, "in" uses 400
  w <- arr(mx.init.Xavier("gaussian", "out", 1)("fc_weight", c(400, 10)))
  expect_equal(sd(w), sqrt(1 / 10), tolerance = 0.02)
  w <- arr(mx.init.Xavier("gaussian", "in", 1)("fc_weight", c(400, 10)))
  expect_equal(sd(w), sqrt(1 / 400), tolerance = 0.02)
  # a Convolution weight c(kw, kh, in, out)
  w <- arr(mx.init.Xavier("uniform", "in", 3)("conv_weight", c(5, 5, 20, 50)))
  expect_equal(max(abs(w)), sqrt(3 / 500), tolerance = 0.01)
  # MSRAPrelu: gaussian Xavier with magnitude 2 / (1 + slope^2)
  w <- arr(mx.init.MSRAPrelu("in", slope = 0)("conv_weight", c(3, 3, 64, 200)))
  expect_equal(sd(w), sqrt(2 / (3 * 3 * 64)), tolerance = 0.01)
  expect_equal(arr(mx.init.MSRAPrelu()("conv_gamma", 4)), array(1, 4))
})

test_that("the default rules for non-weight names", {
  def <- symnet:::mx.init.internal.default
  shape <- c(5, 10, 100)
  expect_equal(arr(def("X_bias", shape, ctx = mx.ctx.default())), array(0, shape))
  expect_equal(arr(def("X_gamma", shape, ctx = mx.ctx.default())), array(1, shape))
  expect_equal(arr(def("X_beta", shape, ctx = mx.ctx.default())), array(0, shape))
  expect_equal(arr(def("X_moving_mean", shape, ctx = mx.ctx.default())), array(0, shape))
  expect_equal(arr(def("X_moving_var", shape, ctx = mx.ctx.default())), array(1, shape))
  expect_error(def("X", shape, ctx = mx.ctx.default()), "Unknown initialization pattern for X")
  expect_null(def("X", shape, ctx = mx.ctx.default(), allow.unknown = TRUE))
  for (init in list(mx.init.uniform(0.1), mx.init.normal(0.1), mx.init.Xavier(),
                    mx.init.MSRAPrelu())) {
    expect_equal(arr(init("bn1_moving_var", 3, mx.cpu())), array(1, 3))
    expect_equal(arr(init("bn1_beta", 3, mx.cpu())), array(0, 3))
    expect_error(init("data", c(2, 2), mx.cpu()), "Unknown initialization pattern for data")
    expect_null(init("data", c(2, 2), mx.cpu(), allow.unknown = TRUE))
  }
})

test_that("a seed repeats the same values", {
  init <- mx.init.Xavier("gaussian")
  mx.set.seed(42)
  a <- arr(init("fc_weight", c(30, 20)))
  b <- arr(init("fc_weight", c(30, 20)))
  mx.set.seed(42)
  c2 <- arr(init("fc_weight", c(30, 20)))
  expect_identical(a, c2)
  expect_false(identical(a, b))
})

test_that("mx.init.create", {
  mx.set.seed(5)
  init <- mx.init.uniform(scale = 1)
  shapes <- list(X_weight = 50000, X_bias = 100, data = c(4, 5), bn_gamma = c(7))
  p <- mx.init.create(init, shapes, ctx = mx.ctx.default())
  expect_equal(names(p), c("X_weight", "X_bias", "bn_gamma")) # unknown "data" skipped
  expect_equal(arr(p$X_bias), array(0, 100))
  expect_equal(arr(p$bn_gamma), array(1, 7))
  w <- arr(p$X_weight)
  expect_true(all(w >= -1 & w <= 1))
  expect_equal(mean(w), 0, tolerance = 0.01)
  expect_true(is.mx.ndarray(p$X_weight))
  expect_error(mx.init.create(init, shapes, skip.unknown = FALSE), "Unknown initialization pattern for data")
  expect_equal(mx.init.create(init, list()), list())
  # the arg shapes of a symbol
  net <- mx.symbol.FullyConnected(mx.symbol.Variable("data"), num_hidden = 3, name = "fc1")
  s <- mx.symbol.infer.shape(net, data = c(4, 8))$arg.shapes
  p <- mx.init.create(mx.init.Xavier(), s, mx.cpu())
  expect_equal(names(p), c("fc1_weight", "fc1_bias"))
  expect_equal(dim(p$fc1_weight), c(4, 3))
})

test_that("bad initializer arguments are errors", {
  expect_error(mx.init.uniform(-1), "scale")
  expect_error(mx.init.normal("a"), "sd")
  expect_error(mx.init.Xavier(rnd_type = "poisson"), "rnd_type")
  expect_error(mx.init.Xavier(factor_type = "mid"), "factor_type")
  expect_error(mx.init.Xavier(magnitude = 0), "magnitude")
  expect_error(mx.init.MSRAPrelu(slope = NA), "slope")
  expect_error(mx.init.create("uniform", list(a_weight = 2)), "initializer must be a function")
  expect_error(mx.init.create(mx.init.uniform(1), list(2, 3)), "named list")
  expect_error(mx.init.uniform(1)(c("a", "b"), 2, mx.cpu()), "name")
})
