# Optimizers and learning-rate schedulers: MXNet R's one-step reference
# numbers, several steps against plain R formulas, in-place behaviour,
# schedulers, and bad input.

# MXNet R's test_optimizer.R: one step on a no-bias FullyConnected(1) +
# LinearRegressionOutput; the gradient of fc1_weight is (-0.3, -0.8).
mxnet_one_step <- function(name, ...) {
  data <- mx.symbol.Variable("data")
  label <- mx.symbol.Variable("label")
  fc <- mx.symbol.FullyConnected(data = data, num_hidden = 1, no_bias = TRUE, name = "fc1")
  loss <- mx.symbol.LinearRegressionOutput(data = fc, label = label, name = "loss")
  x <- mx.nd.array(array(1:6, dim = c(2, 3)))
  y <- mx.nd.array(c(5, 11, 16))
  w1 <- mx.nd.array(array(c(1.1, 1.8), dim = c(2, 1)))
  exec <- mx.symbol.bind(symbol = loss, ctx = mx.cpu(),
                         arg.arrays = list(data = x, fc1_weight = w1, label = y),
                         aux.arrays = NULL, grad.reqs = c("null", "write", "null"))
  optimizer <- mx.opt.create(name, ...)
  updaters <- mx.opt.get.updater(optimizer, exec$ref.arg.arrays, ctx = mx.cpu())
  mx.exec.forward(exec, is.train = TRUE)
  mx.exec.backward(exec)
  arg.blocks <- updaters(exec$ref.arg.arrays, exec$ref.grad.arrays)
  mx.exec.update.arg.arrays(exec, arg.blocks, skip.null = TRUE)
  as.numeric(as.array(exec$ref.arg.arrays$fc1_weight))
}

test_that("one step gives MXNet's numbers (test_optimizer.R)", {
  expect_equal(mxnet_one_step("sgd", learning.rate = 1, momentum = 0, wd = 0, rescale.grad = 1,
                              clip_gradient = -1), c(1.4, 2.6), tolerance = 0.05)
  expect_equal(mxnet_one_step("rmsprop", learning.rate = 1, centered = TRUE, gamma1 = 0.95,
                              gamma2 = 0.9, epsilon = 1e-4, wd = 0, rescale.grad = 1,
                              clip_gradient = -1), c(5.64, 6.38), tolerance = 0.1)
  expect_equal(mxnet_one_step("adam", learning.rate = 1, beta1 = 0.9, beta2 = 0.999,
                              epsilon = 1e-8, wd = 0, rescale.grad = 1, clip_gradient = -1),
               c(4.26, 4.96), tolerance = 0.1)
  expect_equal(mxnet_one_step("adagrad", learning.rate = 1, epsilon = 1e-8, wd = 0,
                              rescale.grad = 1, clip_gradient = -1), c(2.1, 2.8), tolerance = 0.1)
  expect_equal(mxnet_one_step("adadelta", rho = 0.9, epsilon = 1e-5, wd = 0, rescale.grad = 1,
                              clip_gradient = -1), c(1.11, 1.81), tolerance = 0.1)
  expect_equal(mxnet_one_step("nag", learning.rate = 1, momentum = 0, wd = 0, rescale.grad = 1,
                              clip_gradient = -1), c(1.4, 2.6), tolerance = 0.05)
  expect_equal(mxnet_one_step("nag", learning.rate = 1, momentum = 0.1, wd = 0, rescale.grad = 1,
                              clip_gradient = 5), c(1.45, 2.65), tolerance = 0.1)
  # the same, tighter, against the formulas
  g <- c(-0.3, -0.8)
  w <- c(1.1, 1.8)
  expect_equal(mxnet_one_step("sgd", learning.rate = 1), w - g, tolerance = 1e-5)
  expect_equal(mxnet_one_step("adam", learning.rate = 1),
               w - 0.1 * g / (sqrt(0.001 * g^2) + 1e-8), tolerance = 1e-5)
  expect_equal(mxnet_one_step("rmsprop", learning.rate = 1),
               w - g / sqrt(0.05 * g^2 - (0.05 * g)^2 + 1e-4), tolerance = 1e-5)
  expect_equal(mxnet_one_step("nag", learning.rate = 1, momentum = 0.1, clip_gradient = 5),
               w - 1.1 * g, tolerance = 1e-5)
})

# Runs `steps` updates of optimizer `opt` on float64 weights from the given
# gradients (a list of vectors, one per step); returns the weights after
# each step.
run_steps <- function(opt, w0, grads) {
  w <- list(mx.nd.array(w0, dtype = "float64"))
  upd <- mx.opt.get.updater(opt, w)
  out <- list()
  for (g in grads) {
    w <- upd(w, list(mx.nd.array(g, dtype = "float64")))
    out[[length(out) + 1]] <- as.numeric(as.array(w[[1]]))
  }
  out
}

clipv <- function(x, c) if (c >= 0) pmax(pmin(x, c), -c) else x

set.seed(20)
w0 <- rnorm(6)
grads <- replicate(4, rnorm(6, sd = 4), simplify = FALSE)

test_that("sgd with momentum, wd, rescale.grad and clip_gradient follows its formula", {
  lr <- 0.1; mo <- 0.9; wd <- 0.01; rs <- 0.5; cg <- 1.5
  got <- run_steps(mx.opt.create("sgd", learning.rate = lr, momentum = mo, wd = wd,
                                 rescale.grad = rs, clip_gradient = cg), w0, grads)
  w <- w0; mom <- 0
  for (k in seq_along(grads)) {
    mom <- mo * mom - lr * (clipv(rs * grads[[k]], cg) + wd * w)
    w <- w + mom
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
  # without momentum
  got <- run_steps(mx.opt.create("sgd", learning.rate = lr, wd = wd, rescale.grad = rs), w0, grads)
  w <- w0
  for (k in seq_along(grads)) {
    w <- (1 - lr * wd) * w - lr * rs * grads[[k]]
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
})

test_that("nag follows MXNet's nag_mom_update", {
  lr <- 0.05; mo <- 0.8; wd <- 0.02; rs <- 0.25; cg <- 0.7
  got <- run_steps(mx.opt.create("nag", learning.rate = lr, momentum = mo, wd = wd,
                                 rescale.grad = rs, clip_gradient = cg), w0, grads)
  w <- w0; mom <- 0
  for (k in seq_along(grads)) {
    gr <- clipv(rs * grads[[k]], cg) + wd * w
    m <- mo * mom
    w <- w - m + (1 + mo) * (m - lr * gr)
    mom <- m - lr * gr
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
  # with wd = 0 this is MXNet R's symbolic NAG: mom = mo mom + g; w -= lr (mo mom + g)
  got <- run_steps(mx.opt.create("nag", learning.rate = lr, momentum = mo), w0, grads)
  w <- w0; mom <- 0
  for (k in seq_along(grads)) {
    mom <- mo * mom + grads[[k]]
    w <- w - lr * (mo * mom + grads[[k]])
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
})

test_that("adam, rmsprop, adagrad and adadelta follow their formulas", {
  lr <- 0.01; wd <- 0.001; rs <- 0.5; cg <- 1
  # adam (no bias correction, as MXNet R); wd and clipping apply to rs*g + wd*w
  got <- run_steps(mx.opt.create("adam", learning.rate = lr, beta1 = 0.8, beta2 = 0.99,
                                 epsilon = 1e-6, wd = wd, rescale.grad = rs, clip_gradient = cg),
                   w0, grads)
  w <- w0; m <- 0; v <- 0
  for (k in seq_along(grads)) {
    g <- clipv(rs * grads[[k]] + wd * w, cg)
    m <- 0.8 * m + 0.2 * g
    v <- 0.99 * v + 0.01 * g^2
    w <- w - lr * m / (sqrt(v) + 1e-6)
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
  # centered rmsprop (Graves)
  got <- run_steps(mx.opt.create("rmsprop", learning.rate = lr, wd = wd, rescale.grad = rs,
                                 clip_gradient = cg), w0, grads)
  w <- w0; n <- 0; gg <- 0; d <- 0
  for (k in seq_along(grads)) {
    g <- clipv(rs * grads[[k]] + wd * w, cg)
    n <- 0.05 * g^2 + 0.95 * n
    gg <- 0.05 * g + 0.95 * gg
    d <- 0.9 * d - lr * g / sqrt(n - gg^2 + 1e-4)
    w <- w + d
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
  # plain rmsprop (Tieleman and Hinton)
  got <- run_steps(mx.opt.create("rmsprop", learning.rate = lr, centered = FALSE, gamma1 = 0.9,
                                 epsilon = 1e-3), w0, grads)
  w <- w0; n <- 0
  for (k in seq_along(grads)) {
    g <- grads[[k]]
    n <- 0.1 * g^2 + 0.9 * n
    w <- w - lr * g / sqrt(n + 1e-3)
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
  # adagrad
  got <- run_steps(mx.opt.create("adagrad", learning.rate = 0.1, epsilon = 1e-7, wd = wd,
                                 rescale.grad = rs, clip_gradient = cg), w0, grads)
  w <- w0; h <- 0
  for (k in seq_along(grads)) {
    g <- clipv(rs * grads[[k]], cg)
    h <- h + g^2
    w <- w - 0.1 * (g / sqrt(h + 1e-7) + wd * w)
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
  # adadelta
  got <- run_steps(mx.opt.create("adadelta", rho = 0.95, epsilon = 1e-6, wd = wd,
                                 rescale.grad = rs, clip_gradient = cg), w0, grads)
  w <- w0; ag <- 0; ad <- 0
  for (k in seq_along(grads)) {
    g <- clipv(rs * grads[[k]], cg)
    ag <- 0.95 * ag + 0.05 * g^2
    delta <- sqrt(ad + 1e-6) / sqrt(ag + 1e-6) * g
    ad <- 0.95 * ad + 0.05 * delta^2
    w <- w - delta - wd * w
    expect_equal(got[[k]], w, tolerance = 1e-12)
  }
})

test_that("float32 weights work and state follows the weight's dtype", {
  opt <- mx.opt.create("adam", learning.rate = 0.01)
  w <- list(mx.nd.array(w0))
  upd <- mx.opt.get.updater(opt, w)
  w <- upd(w, list(mx.nd.array(grads[[1]])))
  expect_equal(mx.nd.dtype(w[[1]]), "float32")
  g <- grads[[1]]
  expect_equal(as.numeric(as.array(w[[1]])),
               w0 - 0.01 * 0.1 * g / (sqrt(0.001 * g^2) + 1e-8), tolerance = 1e-5)
})

test_that("the update is in place and NULL gradients are skipped", {
  a <- mx.nd.array(c(1, 2, 3), dtype = "float64")
  b <- mx.nd.array(c(10, 20), dtype = "float64")
  opt <- mx.opt.create("sgd", learning.rate = 0.5, momentum = 0.5)
  upd <- mx.opt.get.updater(opt, list(a = a, b = b, c = NULL))
  ga <- mx.nd.array(c(1, 1, 1), dtype = "float64")
  res <- upd(list(a = a, b = b, c = NULL), list(ga, NULL, NULL))
  expect_length(res, 3)
  expect_null(res$b)
  expect_null(res$c)
  expect_equal(as.numeric(as.array(a)), c(0.5, 1.5, 2.5)) # the weight array itself changed
  expect_equal(as.numeric(as.array(res$a)), c(0.5, 1.5, 2.5))
  expect_equal(as.numeric(as.array(b)), c(10, 20))
  res <- upd(list(a = a, b = b, c = NULL), list(ga, mx.nd.array(c(2, 2), dtype = "float64"), NULL))
  expect_equal(as.numeric(as.array(a)), c(0.5, 1.5, 2.5) - 0.75)  # mom = 0.5*(-0.5) - 0.5
  expect_equal(as.numeric(as.array(b)), c(9, 19))                  # b's first step: mom = -1
  expect_error(upd(list(a, b), list(ga, NULL)), "made for 3 weights")
})

test_that("the learning-rate scheduler is applied per update", {
  sched <- mx.lr_scheduler.FactorScheduler(step = 2, factor_val = 0.5, verbose = FALSE)
  opt <- mx.opt.create("sgd", learning.rate = 1, lr_scheduler = sched)
  w <- list(mx.nd.array(0, dtype = "float64"), mx.nd.array(0, dtype = "float64"))
  upd <- mx.opt.get.updater(opt, w)
  g <- list(mx.nd.array(-1, dtype = "float64"), mx.nd.array(-1, dtype = "float64"))
  prev <- 0
  steps <- numeric()
  for (k in 1:7) {
    w <- upd(w, g)
    cur <- as.numeric(as.array(w[[1]]))
    steps <- c(steps, cur - prev)
    prev <- cur
    expect_equal(as.numeric(as.array(w[[2]])), cur) # both weights see the same lr
  }
  expect_equal(steps, c(1, 1, 0.5, 0.5, 0.25, 0.25, 0.125))
  expect_equal(opt$env$num_update, 7)
  expect_equal(opt$env$lr, 0.125)
  expect_output(print(opt), "sgd")
})

test_that("FactorScheduler and MultiFactorScheduler give MXNet's lr sequences", {
  run <- function(s, n, lr = 1) {
    env <- new.env()
    env$lr <- lr; env$count <- 0; env$num_update <- 0
    vapply(seq_len(n), function(k) { env$num_update <- k; s(env); env$lr }, 0)
  }
  expect_equal(run(mx.lr_scheduler.FactorScheduler(3, 0.1, verbose = FALSE), 10),
               c(1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001))
  expect_equal(run(mx.lr_scheduler.FactorScheduler(1, 0.5, stop_factor_lr = 0.2, verbose = FALSE), 5),
               c(1, 0.5, 0.25, 0.2, 0.2))
  expect_equal(run(mx.lr_scheduler.MultiFactorScheduler(c(2, 5), 0.5, verbose = FALSE), 7),
               c(1, 1, 0.5, 0.5, 0.5, 0.25, 0.25))
  expect_message(run(mx.lr_scheduler.FactorScheduler(1, 0.5), 2), "learning rate is changed to 0.5")
  expect_error(mx.lr_scheduler.FactorScheduler(0, 0.5), "greater or equal than 1")
  expect_error(mx.lr_scheduler.FactorScheduler(2, 1.5), "no more than 1")
  expect_error(mx.lr_scheduler.MultiFactorScheduler(c(5, 2), 0.5), "increasing")
  expect_error(mx.lr_scheduler.MultiFactorScheduler(c(0, 2), 0.5), "greater or equal than 1")
})

test_that("optimizers from MXNet R 0.x (create.state/update returning a list) work", {
  opt <- list(
    create.state = function(index, weight) mx.nd.zeros(dim(weight), ctx(weight), "float64"),
    update = function(index, weight, grad, state) {
      state <- state + grad
      list(weight = weight - state, state = state)
    })
  w <- list(mx.nd.array(c(1, 1), dtype = "float64"))
  upd <- mx.opt.get.updater(opt, w)
  g <- list(mx.nd.array(c(1, 2), dtype = "float64"))
  w <- upd(w, g)
  w <- upd(w, g)
  expect_equal(as.numeric(as.array(w[[1]])), c(1, 1) - c(1, 2) - c(2, 4))
})

test_that("bad optimizer names and parameters are errors", {
  expect_error(mx.opt.create("sgdd"), "Unknown optimizer 'sgdd'.*sgd, nag, adam, rmsprop, adagrad, adadelta")
  expect_error(mx.opt.create(1), "optimizer's name")
  expect_error(mx.opt.create("sgd", learning.rate = -0.1), "learning.rate must be in")
  expect_error(mx.opt.create("sgd", momentum = 1), "momentum must be in")
  expect_error(mx.opt.create("nag", momentum = -0.5), "momentum must be in")
  expect_error(mx.opt.create("sgd", learning.rate = NA), "finite number")
  expect_error(mx.opt.create("adam", beta1 = 1), "beta1")
  expect_error(mx.opt.create("rmsprop", centered = "yes"), "centered")
  expect_error(mx.opt.create("adadelta", learning.rate = 0.1), "no parameter 'learning.rate'.*rho")
  expect_error(mx.opt.create("sgd", lr_scheduler = 3), "lr_scheduler")
  expect_error(mx.opt.create("sgd", momentom = 0.9), "no parameter 'momentom'")
  expect_s3_class(mx.opt.create("SGD", mom = 0.9), "mx.optimizer") # partial names, any case
  expect_error(mx.opt.get.updater(list(), list()), "mx.opt.create")
  upd <- mx.opt.get.updater(mx.opt.create("sgd"), list(mx.nd.zeros(2)))
  expect_error(upd(list(mx.nd.zeros(2)), list(mx.nd.zeros(3))), "sgd_update.*shape")
})

test_that("every optimizer drives a bound executor towards the least-squares fit", {
  set.seed(3)
  n <- 40
  x <- matrix(rnorm(2 * n), 2, n)
  y <- as.numeric(c(2, -1) %*% x)
  data <- mx.symbol.Variable("data")
  fc <- mx.symbol.FullyConnected(data = data, num_hidden = 1, no_bias = TRUE, name = "fc1")
  loss <- mx.symbol.LinearRegressionOutput(data = fc, label = mx.symbol.Variable("label"))
  cases <- list(list("sgd", learning.rate = 0.1, momentum = 0.5),
                list("nag", learning.rate = 0.1, momentum = 0.5),
                list("adam", learning.rate = 0.05),
                list("rmsprop", learning.rate = 0.01),
                list("rmsprop", learning.rate = 0.01, centered = FALSE),
                list("adagrad", learning.rate = 0.5),
                list("adadelta", rho = 0.9, epsilon = 1e-3))
  for (cs in cases) {
    exec <- mx.symbol.bind(loss, mx.cpu(),
                           list(data = x, fc1_weight = matrix(0, 2, 1), label = y),
                           list(), c("null", "write", "null"))
    opt <- do.call(mx.opt.create, c(cs, list(rescale.grad = 1 / n)))
    upd <- mx.opt.get.updater(opt, exec$ref.arg.arrays)
    for (k in 1:300) {
      mx.exec.forward(exec, is.train = TRUE)
      mx.exec.backward(exec)
      mx.exec.update.arg.arrays(exec, upd(exec$ref.arg.arrays, exec$ref.grad.arrays), skip.null = TRUE)
    }
    w <- as.numeric(as.array(exec$ref.arg.arrays$fc1_weight))
    expect_equal(w, c(2, -1), tolerance = 0.05, label = paste(cs[[1]], "weights"))
  }
})

test_that("the updater's one-call path gives the values and counts of update() per weight", {
  set.seed(3)
  shapes <- list(c(7, 5), 5, c(3, 2, 2), 40000) # 40000: the threaded, vectorised blocks
  for (dt in c("float32", "float64")) for (cfg in list(
      list("sgd", learning.rate = 0.1, momentum = 0.9, wd = 0.01, rescale.grad = 0.5),
      list("sgd", learning.rate = 0.1, momentum = 0.9, clip_gradient = 0.3),
      list("sgd", learning.rate = 0.2),
      list("adam", learning.rate = 0.01),
      list("rmsprop", learning.rate = 0.01))) {
    w0 <- lapply(shapes, function(s) array(rnorm(prod(s)), s))
    gs <- lapply(1:3, function(k) lapply(shapes, function(s) array(rnorm(prod(s)), s)))
    sched <- mx.lr_scheduler.FactorScheduler(step = 2, factor_val = 0.5, verbose = FALSE)
    # the one-call path: every weight and gradient an NDArray
    opt1 <- do.call(mx.opt.create, c(cfg, list(lr_scheduler = sched)))
    w1 <- lapply(w0, mx.nd.array, dtype = dt)
    upd1 <- mx.opt.get.updater(opt1, w1)
    # one update() per weight, by hand, with the same optimizer settings
    sched2 <- mx.lr_scheduler.FactorScheduler(step = 2, factor_val = 0.5, verbose = FALSE)
    opt2 <- do.call(mx.opt.create, c(cfg, list(lr_scheduler = sched2)))
    w2 <- lapply(w0, mx.nd.array, dtype = dt)
    st2 <- lapply(seq_along(w2), function(i) opt2$create.state(i, w2[[i]]))
    for (k in 1:3) {
      g <- lapply(gs[[k]], mx.nd.array, dtype = dt)
      upd1(w1, g)
      for (i in seq_along(w2)) opt2$update(i, w2[[i]], g[[i]], st2[[i]])
    }
    for (i in seq_along(w1))
      expect_identical(as.array(w1[[i]]), as.array(w2[[i]]), info = paste(cfg[[1]], dt, i))
    expect_equal(opt1$env$num_update, 3)
    expect_identical(opt1$env$index.count, opt2$env$index.count)
    expect_identical(opt1$env$lr, opt2$env$lr)
  }
})

test_that("an optimizer whose update() was replaced is called per weight", {
  opt <- mx.opt.create("sgd", learning.rate = 1)
  calls <- 0
  base <- opt$update
  opt$update <- function(index, weight, grad, state) {
    calls <<- calls + 1
    base(index, weight, grad, state)
  }
  w <- list(mx.nd.array(c(1, 2)), mx.nd.array(3))
  upd <- mx.opt.get.updater(opt, w)
  upd(w, list(mx.nd.array(c(1, 1)), mx.nd.array(1)))
  upd(w, list(mx.nd.array(c(1, 1)), mx.nd.array(1)))
  expect_equal(calls, 4)
  expect_equal(as.numeric(as.array(w[[1]])), c(-1, 0))
  expect_equal(as.numeric(as.array(w[[2]])), 1)
})
