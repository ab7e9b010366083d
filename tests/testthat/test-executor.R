test_that("forward and backward of an MLP match a plain R computation", {
  set.seed(1)
  data <- mx.symbol.Variable("data")
  fc1 <- mx.symbol.FullyConnected(data, num_hidden = 4, name = "fc1")
  act <- mx.symbol.Activation(fc1, act_type = "tanh", name = "t")
  fc2 <- mx.symbol.FullyConnected(act, num_hidden = 3, name = "fc2")
  sm <- mx.symbol.SoftmaxOutput(fc2, name = "sm")
  x <- matrix(rnorm(5 * 6), 5, 6)           # 5 features x 6 examples
  w1 <- matrix(rnorm(5 * 4), 5, 4); b1 <- rnorm(4)
  w2 <- matrix(rnorm(4 * 3), 4, 3); b2 <- rnorm(3)
  y <- c(0, 1, 2, 1, 0, 2)
  ex <- bind64(sm, list(data = x, fc1_weight = w1, fc1_bias = b1, fc2_weight = w2, fc2_bias = b2, sm_label = y),
               grad = c("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"))
  mx.exec.forward(ex, is.train = TRUE)
  # R reference: R column j is example j
  h <- tanh(t(w1) %*% x + b1)
  z <- t(w2) %*% h + b2
  p <- apply(z, 2, function(v) exp(v - max(v)) / sum(exp(v - max(v))))
  expect_equal(as.array(ex$ref.outputs$sm_output), p, tolerance = 1e-10)
  mx.exec.backward(ex)
  onehot <- sapply(y, function(k) as.numeric(0:2 == k))
  dz <- p - onehot                       # MXNet: no division by batch size
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$fc2_bias)), rowSums(dz), tolerance = 1e-10)
  expect_equal(as.array(ex$ref.grad.arrays$fc2_weight), h %*% t(dz), tolerance = 1e-10)
  dh <- (w2 %*% dz) * (1 - h^2)
  expect_equal(as.array(ex$ref.grad.arrays$fc1_weight), x %*% t(dh), tolerance = 1e-10)
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$fc1_bias)), rowSums(dh), tolerance = 1e-10)
})

test_that("graph gradients match finite differences (shared inputs, broadcasting, several outputs)", {
  set.seed(2)
  a <- mx.symbol.Variable("a"); b <- mx.symbol.Variable("b"); w <- mx.symbol.Variable("w")
  y1 <- mx.symbol.tanh(a * b + a)                 # a used three times
  fc <- mx.symbol.FullyConnected(y1, weight = w, no_bias = TRUE, num_hidden = 2, name = "fc")
  s <- mx.symbol.Group(fc, mx.symbol.sigmoid(y1) * 3)
  vals <- list(a = matrix(rnorm(6), 3, 2), b = matrix(rnorm(6), 3, 2), w = matrix(rnorm(6), 3, 2))
  graph_check_grad(s, vals, c("a", "b", "w"))
  # odd sizes, a reduction and a broadcast
  x <- mx.symbol.Variable("x"); r <- mx.symbol.Variable("r")
  s2 <- mx.symbol.broadcast_add(mx.symbol.sum(mx.symbol.broadcast_mul(x, r), axis = 1, keepdims = TRUE), mx.symbol.exp(x) / 2)
  graph_check_grad(s2, list(x = matrix(rnorm(15), 5, 3), r = matrix(rnorm(3), 1, 3)), c("x", "r"))
  graph_check_grad(s2, list(x = array(rnorm(7), c(7, 1)), r = matrix(rnorm(1), 1, 1)), c("x", "r"))
})

test_that("grad.req add accumulates, null leaves no gradient, BlockGrad stops it", {
  x <- mx.symbol.Variable("x"); v <- mx.symbol.Variable("v")
  s <- x * x + mx.symbol.BlockGrad(v * x)
  ex <- mx.symbol.bind(s, mx.cpu(), list(x = c(1, 2, 3), v = c(1, 1, 1)), grad.reqs = list("add", "write"))
  mx.exec.forward(ex, is.train = TRUE)
  mx.exec.backward(ex)
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$x)), c(2, 4, 6))
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$v)), c(0, 0, 0))
  mx.exec.forward(ex, is.train = TRUE)
  mx.exec.backward(ex)
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$x)), c(4, 8, 12))
  ex2 <- mx.symbol.bind(s, mx.cpu(), list(x = c(1, 2, 3), v = c(1, 1, 1)), grad.reqs = list("null", "null"))
  expect_null(ex2$ref.grad.arrays$x)
})

test_that("head gradients scale a non-loss output; their shape is checked", {
  x <- mx.symbol.Variable("x")
  s <- mx.symbol.square(x)
  ex <- mx.symbol.bind(s, mx.cpu(), list(x = c(1, 2, 3)), grad.reqs = "write")
  mx.exec.forward(ex)
  mx.exec.backward(ex, mx.nd.array(c(1, 10, 100)))
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$x)), c(2, 40, 600))
  mx.exec.backward(ex)  # default head gradient: ones
  expect_equal(as.vector(as.array(ex$ref.grad.arrays$x)), c(2, 4, 6))
  expect_error(mx.exec.backward(ex, mx.nd.array(c(1, 2))), "shape")
})

test_that("backward needs a training forward", {
  x <- mx.symbol.Variable("x")
  ex <- mx.symbol.bind(mx.symbol.square(x), mx.cpu(), list(x = c(1, 2)), grad.reqs = "write")
  mx.exec.forward(ex, is.train = FALSE)
  expect_error(mx.exec.backward(ex), "is.train = TRUE")
})

test_that("simple.bind, update and the executor fields", {
  data <- mx.symbol.Variable("data")
  net <- mx.symbol.LinearRegressionOutput(mx.symbol.FullyConnected(data, num_hidden = 1, no_bias = TRUE, name = "fc"),
                                          name = "lro")
  ex <- mx.simple.bind(net, mx.cpu(), grad.req = "write", data = c(2, 3))
  expect_equal(names(ex$ref.arg.arrays), c("data", "fc_weight", "lro_label"))
  expect_null(ex$ref.grad.arrays$data)
  expect_null(ex$ref.grad.arrays$lro_label)
  expect_false(is.null(ex$ref.grad.arrays$fc_weight))
  x <- array(1:6, c(2, 3)); y <- c(5, 11, 16)
  mx.exec.update.arg.arrays(ex, list(data = mx.nd.array(x), lro_label = mx.nd.array(y)), match.name = TRUE)
  mx.exec.update.arg.arrays(ex, list(NULL, mx.nd.array(matrix(c(1.1, 1.8), 2, 1)), NULL), skip.null = TRUE)
  mx.exec.forward(ex, is.train = TRUE)
  pred <- as.vector(as.array(ex$outputs[[1]]))
  expect_equal(pred, as.vector(t(x) %*% c(1.1, 1.8)), tolerance = 1e-5)
  mx.exec.backward(ex)
  g <- as.vector(as.array(ex$ref.grad.arrays$fc_weight))
  expect_equal(g, as.vector(x %*% (pred - y)), tolerance = 1e-4)
  cp <- ex$arg.arrays$fc_weight
  mx.exec.update.arg.arrays(ex, list(fc_weight = mx.nd.zeros(c(2, 1))), match.name = TRUE)
  expect_equal(as.vector(as.array(cp)), c(1.1, 1.8), tolerance = 1e-6) # copies are not references
  expect_equal(as.vector(as.array(ex$ref.arg.arrays$fc_weight)), c(0, 0))
  expect_error(mx.exec.update.arg.arrays(ex, list(mx.nd.zeros(c(3, 3)))), "arrays given")
  expect_error(mx.exec.update.arg.arrays(ex, list(fc_weight = mx.nd.zeros(c(3, 3))), match.name = TRUE), "shape")
  expect_error(mx.simple.bind(net, mx.cpu(), grad.req = "sometimes", data = c(2, 3)), "grad.req")
  expect_error(mx.simple.bind(net, mx.cpu()), "shapes")
})

test_that("mx.symbol.bind takes arrays by position or name and checks them", {
  a <- mx.symbol.Variable("A"); b <- mx.symbol.Variable("B")
  c <- a + b
  ex <- mx.symbol.bind(c, mx.cpu(), arg.arrays = list(A = mx.nd.ones(c(2, 2)), B = mx.nd.ones(c(2, 2)) * 2),
                       aux.arrays = list(), grad.reqs = list("null", "null"))
  mx.exec.forward(ex)
  expect_equal(as.array(ex$outputs[[1]]), matrix(3, 2, 2))
  ex2 <- mx.symbol.bind(c, mx.cpu(), list(B = matrix(5, 2, 2), A = matrix(1, 2, 2)))
  mx.exec.forward(ex2)
  expect_equal(as.array(ex2$outputs[[1]]), matrix(6, 2, 2))
  expect_error(mx.symbol.bind(c, mx.cpu(), list(mx.nd.ones(2))), "needs 2")
  expect_error(mx.symbol.bind(c, mx.cpu(), list(mx.nd.ones(2), mx.nd.ones(3))), "shape")
})

lenet <- function() {
  data <- mx.symbol.Variable("data")
  c1 <- mx.symbol.Convolution(data, kernel = c(5, 5), num_filter = 20, name = "conv1")
  t1 <- mx.symbol.Activation(c1, act_type = "tanh")
  p1 <- mx.symbol.Pooling(t1, pool_type = "max", kernel = c(2, 2), stride = c(2, 2))
  c2 <- mx.symbol.Convolution(p1, kernel = c(5, 5), num_filter = 50, name = "conv2")
  t2 <- mx.symbol.Activation(c2, act_type = "tanh")
  p2 <- mx.symbol.Pooling(t2, pool_type = "max", kernel = c(2, 2), stride = c(2, 2))
  f <- mx.symbol.Flatten(p2)
  fc1 <- mx.symbol.FullyConnected(f, num_hidden = 500, name = "fc1")
  t3 <- mx.symbol.Activation(fc1, act_type = "tanh")
  fc2 <- mx.symbol.FullyConnected(t3, num_hidden = 10, name = "fc2")
  mx.symbol.SoftmaxOutput(fc2, name = "softmax")
}

test_that("the planner gives bitwise identical results with planning off", {
  net <- lenet()
  run <- function(plan) {
    op <- options(symnet.plan.memory = plan)
    on.exit(options(op))
    ex <- mx.simple.bind(net, mx.cpu(), grad.req = "write", data = c(28, 28, 1, 8))
    mx.set.seed(3)
    vals <- lapply(ex$ref.arg.arrays, function(a) mx.runif(dim(a), -0.2, 0.2))
    vals$softmax_label <- mx.nd.array(c(0:7))
    mx.exec.update.arg.arrays(ex, vals, match.name = TRUE)
    mx.exec.forward(ex, is.train = TRUE)
    mx.exec.backward(ex)
    c(list(out = as.array(ex$ref.outputs[[1]])),
      lapply(Filter(Negate(is.null), ex$ref.grad.arrays), as.array))
  }
  a <- run(TRUE); b <- run(FALSE)
  expect_identical(names(a), names(b))
  for (n in names(a)) expect_identical(a[[n]], b[[n]], info = n)
})

test_that("planned memory is at least 2x below naive for LeNet training and 3x for MLP-20 inference", {
  st <- mx.symbol.memory.plan(lenet(), data = c(28, 28, 1, 100), train = TRUE)
  expect_gte(st[["naive.bytes"]] / st[["planned.bytes"]], 2)
  off <- mx.symbol.memory.plan(lenet(), data = c(28, 28, 1, 100), train = TRUE, plan = FALSE)
  expect_equal(off[["planned.bytes"]], off[["naive.bytes"]])
  net <- mx.symbol.Variable("data")
  for (i in 1:20) net <- mx.symbol.Activation(mx.symbol.FullyConnected(net, num_hidden = 256, name = paste0("fc", i)),
                                             act_type = "relu", name = paste0("relu", i))
  net <- mx.symbol.SoftmaxOutput(net, name = "sm")
  st2 <- mx.symbol.memory.plan(net, data = c(784, 100), train = FALSE)
  expect_gte(st2[["naive.bytes"]] / st2[["planned.bytes"]], 3)
  expect_gt(st2[["inplace"]], 0)
})

test_that("an unused graph branch gets no gradient and costs no error", {
  x <- mx.symbol.Variable("x")
  sl <- mx.symbol.SliceChannel(x, num_outputs = 2, axis = 0)
  s <- mx.symbol.square(sl[[1]])
  ex <- mx.symbol.bind(s, mx.cpu(), list(x = matrix(1:4, 2, 2)), grad.reqs = "write")
  mx.exec.forward(ex)
  mx.exec.backward(ex)
  expect_equal(as.array(ex$ref.grad.arrays$x), matrix(c(2, 4, 0, 0), 2, 2))
})

test_that("planning on and off agree bitwise on a graph of many op kinds", {
  d <- mx.symbol.Variable("data")
  c1 <- mx.symbol.Convolution(d, kernel = c(3, 3), num_filter = 4, pad = c(1, 1), name = "c1")
  bn <- mx.symbol.BatchNorm(c1, fix_gamma = FALSE, name = "bn")
  a1 <- mx.symbol.LeakyReLU(bn, act_type = "leaky", slope = 0.1)
  p1 <- mx.symbol.Pooling(a1, pool_type = "avg", kernel = c(2, 2), stride = c(2, 2))
  sp <- mx.symbol.SliceChannel(p1, num_outputs = 2, axis = 1)
  cc <- mx.symbol.concat(list(mx.symbol.sigmoid(sp[[1]]), mx.symbol.tanh(sp[[2]])), num.args = 2, dim = 1)
  r <- mx.symbol.Reshape(cc, shape = c(-1, 0))
  t1 <- mx.symbol.transpose(r)
  f <- mx.symbol.FullyConnected(mx.symbol.transpose(t1), num_hidden = 5, name = "fc")
  s <- mx.symbol.broadcast_mul(f, mx.symbol.Variable("scale"))
  net <- mx.symbol.SoftmaxOutput(s + mx.symbol.square(f) * 0.1, name = "sm")
  run <- function(plan) {
    op <- options(symnet.plan.memory = plan)
    on.exit(options(op))
    ex <- mx.simple.bind(net, mx.cpu(), grad.req = "write", data = c(8, 8, 2, 6), scale = c(5, 1))
    mx.set.seed(5)
    vals <- lapply(ex$ref.arg.arrays, function(a) mx.runif(dim(a), -0.5, 0.5))
    vals$sm_label <- mx.nd.array(c(0, 1, 2, 3, 4, 0))
    mx.exec.update.arg.arrays(ex, vals, match.name = TRUE)
    mx.exec.update.aux.arrays(ex, list(bn_moving_var = mx.nd.ones(4)), match.name = TRUE)
    mx.exec.forward(ex, is.train = TRUE)
    mx.exec.backward(ex)
    c(list(out = as.array(ex$ref.outputs[[1]])), lapply(Filter(Negate(is.null), ex$ref.grad.arrays), as.array),
      lapply(ex$ref.aux.arrays, as.array))
  }
  a <- run(TRUE); b <- run(FALSE)
  expect_identical(names(a), names(b))
  for (n in names(a)) expect_identical(a[[n]], b[[n]], info = n)
})
