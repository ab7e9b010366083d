# mx.model.features and mx.model.finetune (R/finetune.R).

skip_if_not(exists("mx.model.finetune", asNamespace("symnet")), "finetune not built yet")

ft_arr <- function(a) as.array(a)

# Two blobs in 6 dims; labels are the sign of x1 + x2 (task A) and of x3
# (task B, for fine-tuning).
ft_toy <- function(n = 240, seed = 1) {
  set.seed(seed)
  x <- matrix(rnorm(6 * n), 6, n)
  list(x = x, a = as.integer(x[1, ] + x[2, ] > 0), b = as.integer(x[3, ] > 0))
}

ft_mlp <- function() {
  d <- mx.symbol.Variable("data")
  fc1 <- mx.symbol.FullyConnected(d, num_hidden = 16, name = "fc1")
  h1 <- mx.symbol.Activation(fc1, act_type = "tanh", name = "tanh1")
  fc2 <- mx.symbol.FullyConnected(h1, num_hidden = 12, name = "fc2")
  h2 <- mx.symbol.Activation(fc2, act_type = "tanh", name = "tanh2")
  fc3 <- mx.symbol.FullyConnected(h2, num_hidden = 2, name = "fc3")
  mx.symbol.SoftmaxOutput(fc3, name = "sm")
}

ft_trained <- local({
  cache <- NULL
  function() {
    if (is.null(cache)) {
      d <- ft_toy()
      mx.set.seed(0)
      set.seed(0)
      cache <<- mx.model.FeedForward.create(ft_mlp(), X = d$x, y = d$a, num.round = 8, array.batch.size = 20,
                                            learning.rate = 0.1, momentum = 0.9, verbose = FALSE,
                                            initializer = mx.init.Xavier())
    }
    cache
  }
})

ft_same <- function(m1, m2, names) {
  for (n in names) expect_identical(ft_arr(m1$arg.params[[n]]), ft_arr(m2$arg.params[[n]]), label = n)
}

test_that("features equal a manual forward through internals() and plain R", {
  m <- ft_trained()
  d <- ft_toy(n = 37, seed = 5)
  f <- mx.model.features(m, d$x, "tanh1", array.batch.size = 10)   # 37 = 3 x 10 + 7: padding dropped
  expect_equal(dim(f), c(16L, 37L))
  # manual: bind the internal output and run it on all examples at once
  int <- internals(m$symbol)
  sym <- int[[match("tanh1_output", outputs(int))]]
  ex <- mx.simple.bind(sym, mx.cpu(), grad.req = "null", data = dim(d$x))
  mx.exec.update.arg.arrays(ex, m$arg.params[c("fc1_weight", "fc1_bias")], match.name = TRUE)
  mx.exec.update.arg.arrays(ex, list(data = d$x), match.name = TRUE)
  mx.exec.forward(ex, is.train = FALSE)
  expect_identical(f, ft_arr(ex$outputs[[1]]))
  # plain R: tanh(W x + b); the R dims of fc1_weight are c(in, out)
  w <- ft_arr(m$arg.params$fc1_weight)
  b <- ft_arr(m$arg.params$fc1_bias)
  expect_equal(f, tanh(t(w) %*% d$x + as.vector(b)), tolerance = 1e-5, ignore_attr = TRUE)
  # "tanh1" and "tanh1_output" name the same output; the last one is predict()
  expect_identical(mx.model.features(m, d$x, "tanh1_output"), f)
  expect_equal(mx.model.features(m, d$x, "sm_output", array.batch.size = 8), predict(m, d$x), tolerance = 1e-6)
})

test_that("features of several layers, of 4-d input, from iterators and row-major matrices", {
  m <- ft_trained()
  d <- ft_toy(n = 25, seed = 6)
  both <- mx.model.features(m, d$x, c("fc2", "tanh1_output", "fc2"), array.batch.size = 7)
  expect_named(both, c("fc2", "tanh1_output", "fc2"))
  expect_equal(dim(both$fc2), c(12L, 25L))
  expect_identical(both$tanh1_output, mx.model.features(m, d$x, "tanh1"))
  expect_identical(both[[1]], both[[3]])
  # fc2 = W2 tanh1 + b2
  w2 <- ft_arr(m$arg.params$fc2_weight)
  expect_equal(both$fc2, t(w2) %*% both$tanh1_output + as.vector(ft_arr(m$arg.params$fc2_bias)),
               tolerance = 1e-5, ignore_attr = TRUE)
  it <- mx.io.arrayiter(d$x, rep(0, 25), batch.size = 10)
  expect_equal(mx.model.features(m, it, "fc2"), both$fc2, tolerance = 1e-6)
  expect_equal(suppressMessages(mx.model.features(m, t(d$x), "fc2")), both$fc2, tolerance = 1e-6)
  expect_equal(mx.model.features(m, t(d$x), "fc2", array.layout = "rowmajor"), both$fc2, tolerance = 1e-6)
  # a convolutional network: 4-d activations, batch last
  mx.set.seed(3)
  data <- mx.symbol.Variable("data")
  conv <- mx.symbol.Convolution(data, kernel = c(3, 3), num_filter = 4, name = "conv1")
  pool <- mx.symbol.Pooling(conv, kernel = c(2, 2), stride = c(2, 2), pool_type = "max", name = "pool1")
  flat <- mx.symbol.Flatten(pool, name = "flat")
  net <- mx.symbol.SoftmaxOutput(mx.symbol.FullyConnected(flat, num_hidden = 3, name = "fc"), name = "sm")
  p <- mx.model.init.params(net, c(10, 10, 1, 5), NULL, mx.init.uniform(0.3), mx.cpu())
  cm <- structure(list(symbol = net, arg.params = p$arg.params, aux.params = p$aux.params),
                  class = "MXFeedForwardModel")
  x <- array(runif(10 * 10 * 9), c(10, 10, 1, 9))
  fp <- mx.model.features(cm, x, "pool1", array.batch.size = 4)
  expect_equal(dim(fp), c(4L, 4L, 4L, 9L))
  ff <- mx.model.features(cm, x, "flat")
  expect_equal(as.vector(ff), as.vector(fp), tolerance = 1e-6)
  # pooling of the convolution, in R, for example 9 filter 2
  cv <- mx.model.features(cm, x, "conv1")
  expect_equal(fp[2, 3, 2, 9], max(cv[3:4, 5:6, 2, 9]), tolerance = 1e-6)
  # serialized models work too
  expect_identical(mx.model.features(mx.serialize(cm), x, "pool1"), mx.model.features(cm, x, "pool1"))
})

test_that("wrong layer names give errors that list the available outputs", {
  m <- ft_trained()
  d <- ft_toy(n = 10)
  expect_error(mx.model.features(m, d$x, "fc9"), "no internal output named 'fc9'.*tanh1_output.*fc3_output")
  expect_error(mx.model.features(m, d$x, c("fc1", "nope")), "'nope'")
  expect_error(mx.model.features(m, d$x, character()), "layer must name")
  expect_error(mx.model.features(list(), d$x, "fc1"), "MXFeedForwardModel")
  expect_error(mx.model.finetune(m, d$x, d$b, layer = "fc9", verbose = FALSE), "fc9.*tanh2_output")
  expect_error(mx.model.finetune(m, d$x, d$b, verbose = FALSE), "layer is needed")
  # a multi-output node must be named by output
  data <- mx.symbol.Variable("data")
  sl <- mx.symbol.SliceChannel(mx.symbol.FullyConnected(data, num_hidden = 4, name = "fc"), num_outputs = 2,
                               name = "sl")
  net <- mx.symbol.SoftmaxOutput(sl[[2]], name = "sm")
  p <- mx.model.init.params(net, c(3, 5), NULL, mx.init.uniform(0.3), mx.cpu())
  sm <- structure(list(symbol = net, arg.params = p$arg.params, aux.params = list()), class = "MXFeedForwardModel")
  x <- matrix(rnorm(15), 3, 5)
  expect_error(mx.model.features(sm, x, "sl"), "several outputs.*sl_output0, sl_output1")
  f <- mx.model.features(sm, x, c("sl_output1", "fc"))
  expect_equal(f$sl_output1, f$fc[3:4, ], tolerance = 1e-6)
})

test_that("finetune keeps frozen parameters bit-identical and present, and the new head learns", {
  m <- ft_trained()
  d <- ft_toy(seed = 2)
  before <- lapply(m$arg.params, ft_arr)
  mx.set.seed(1)
  set.seed(1)
  ft <- mx.model.finetune(m, d$x, d$b, layer = "tanh2", num.round = 15, array.batch.size = 20,
                          learning.rate = 0.2, momentum = 0.9, verbose = FALSE)
  expect_s3_class(ft, "MXFeedForwardModel")
  expect_setequal(names(ft$arg.params), c("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                          "finetune_fc_weight", "finetune_fc_bias"))
  expect_false("fc3_weight" %in% names(ft$arg.params))
  ft_same(ft, m, c("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"))
  # the input model is untouched
  expect_identical(lapply(m$arg.params, ft_arr), before)
  expect_equal(dim(ft$arg.params$finetune_fc_weight), c(12L, 2L))
  expect_equal(outputs(ft$symbol), "finetune_softmax_output")
  # the head learned task B (chance is about 0.5) with frozen task-A features
  test <- ft_toy(n = 400, seed = 3)
  acc <- mean(max.col(t(predict(ft, test$x))) - 1 == test$b)
  expect_gt(acc, 0.62)
  expect_equal(nrow(ft$history), 15)
  expect_identical(attr(ft$history, "metric"), "accuracy")      # default metric with the default head
  expect_gt(ft$history$train[15], ft$history$train[1])
  # it saves and loads like any model
  prefix <- file.path(tempdir(), "ft-model")
  mx.model.save(ft, prefix, 1)
  back <- mx.model.load(prefix, 1)
  expect_identical(predict(back, test$x), predict(ft, test$x))
})

test_that("freeze = FALSE trains every parameter; names, regexes and layer outputs freeze parts", {
  m <- ft_trained()
  d <- ft_toy(seed = 2)
  args <- list(m, d$x, d$b, layer = "tanh2", num.round = 2, array.batch.size = 20, learning.rate = 0.2,
               verbose = FALSE)
  all <- do.call(mx.model.finetune, c(args, freeze = FALSE))
  for (n in c("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"))
    expect_false(identical(ft_arr(all$arg.params[[n]]), ft_arr(m$arg.params[[n]])), label = n)
  rx <- do.call(mx.model.finetune, c(args, freeze = "^fc1_"))
  ft_same(rx, m, c("fc1_weight", "fc1_bias"))
  for (n in c("fc2_weight", "fc2_bias"))
    expect_false(identical(ft_arr(rx$arg.params[[n]]), ft_arr(m$arg.params[[n]])), label = n)
  nm <- do.call(mx.model.finetune, c(args, list(freeze = c("fc1_weight", "fc2_bias"))))
  ft_same(nm, m, c("fc1_weight", "fc2_bias"))
  expect_false(identical(ft_arr(nm$arg.params$fc1_bias), ft_arr(m$arg.params$fc1_bias)))
  # a layer output freezes everything it depends on
  up <- do.call(mx.model.finetune, c(args, freeze = "tanh1_output"))
  ft_same(up, m, c("fc1_weight", "fc1_bias"))
  expect_false(identical(ft_arr(up$arg.params$fc2_weight), ft_arr(m$arg.params$fc2_weight)))
  expect_error(do.call(mx.model.finetune, c(args, freeze = "conv")), "'conv' matches none.*fc1_weight")
  expect_error(do.call(mx.model.finetune, c(args, freeze = "fc3_weight")), "matches none")
  expect_error(do.call(mx.model.finetune, c(args, freeze = 3)), "freeze must be")
  expect_error(do.call(mx.model.finetune, c(args, fixed.param = "fc1_weight")), "sets fixed.param itself")
})

test_that("custom heads: regression, extra layers, reused names are new parameters", {
  m <- ft_trained()
  d <- ft_toy(seed = 4)
  target <- d$x[3, ] - d$x[4, ]
  mx.set.seed(5)
  set.seed(5)
  reg <- mx.model.finetune(m, d$x, target, layer = "tanh1", freeze = FALSE,
                           head = function(x) {
                             h <- mx.symbol.FullyConnected(x, num_hidden = 1, name = "fc3")
                             mx.symbol.LinearRegressionOutput(h, name = "lro")
                           },
                           num.round = 30, array.batch.size = 20, learning.rate = 0.05, momentum = 0.9,
                           eval.metric = mx.metric.rmse, verbose = FALSE)
  expect_equal(dim(reg$arg.params$fc3_weight), c(16L, 1L))   # not the old fc3 (12 x 2)
  expect_false("fc2_weight" %in% names(reg$arg.params))
  p <- as.vector(predict(reg, d$x))
  expect_lt(sqrt(mean((p - target)^2)), 0.6 * stats::sd(target))
  expect_error(mx.model.finetune(m, d$x, d$b, layer = "tanh1", head = "fc", verbose = FALSE), "head must be")
  expect_error(mx.model.finetune(m, d$x, d$b, layer = "tanh1", head = function(x) 1, verbose = FALSE),
               "must return an MXSymbol")
  # num.classes from a factor, and explicitly
  f3 <- mx.model.finetune(m, d$x, factor(c("u", "v", "w"))[1 + (d$x[1, ] > 0) + (d$x[2, ] > 0)],
                          layer = "fc2", num.round = 1, array.batch.size = 20, verbose = FALSE)
  expect_equal(dim(f3$arg.params$finetune_fc_weight), c(12L, 3L))
  f5 <- mx.model.finetune(m, d$x, d$b, layer = "fc2", num.classes = 5, num.round = 1, array.batch.size = 20,
                          verbose = FALSE)
  expect_equal(dim(predict(f5, d$x)), c(5L, 240L))
})

test_that("frozen BatchNorm layers keep their moving statistics; unfrozen ones update them", {
  mx.set.seed(0)
  set.seed(0)
  n <- 160
  x <- array(rnorm(8 * 8 * n), c(8, 8, 1, n))
  y <- as.integer(apply(x[1:4, , 1, ], 3, mean) > 0)
  data <- mx.symbol.Variable("data")
  c1 <- mx.symbol.Convolution(data, kernel = c(3, 3), num_filter = 4, name = "conv1")
  b1 <- mx.symbol.BatchNorm(c1, name = "bn1")
  a1 <- mx.symbol.Activation(b1, act_type = "relu", name = "relu1")
  c2 <- mx.symbol.Convolution(a1, kernel = c(3, 3), num_filter = 4, name = "conv2")
  b2 <- mx.symbol.BatchNorm(c2, name = "bn2", fix_gamma = FALSE)
  fl <- mx.symbol.Flatten(b2, name = "flat")
  net <- mx.symbol.SoftmaxOutput(mx.symbol.FullyConnected(fl, num_hidden = 2, name = "fc1"), name = "sm")
  m <- mx.model.FeedForward.create(net, x, y, num.round = 2, array.batch.size = 20, learning.rate = 0.1,
                                   verbose = FALSE)
  aux <- lapply(m$aux.params, ft_arr)
  expect_false(all(aux$bn1_moving_var == 1))   # trained: the statistics moved
  run <- function(freeze) mx.model.finetune(m, x, y, layer = "flat", freeze = freeze, num.round = 2,
                                            array.batch.size = 20, learning.rate = 0.1, verbose = FALSE)
  fr <- run(TRUE)
  expect_identical(lapply(fr$aux.params, ft_arr), aux)
  ft_same(fr, m, c("conv1_weight", "bn1_gamma", "bn1_beta", "conv2_weight", "bn2_gamma", "bn2_beta"))
  # the returned symbol is the plain one, without use_global_stats
  expect_false(grepl("use_global_stats", fr$symbol$as.json()))
  # frozen features are what the original network computes in inference mode
  expect_equal(mx.model.features(fr, x[, , , 1:10, drop = FALSE], "flat"),
               mx.model.features(m, x[, , , 1:10, drop = FALSE], "flat"))
  part <- run("relu1_output")
  expect_identical(ft_arr(part$aux.params$bn1_moving_mean), aux$bn1_moving_mean)
  expect_identical(ft_arr(part$aux.params$bn1_moving_var), aux$bn1_moving_var)
  expect_false(identical(ft_arr(part$aux.params$bn2_moving_mean), aux$bn2_moving_mean))
  all <- run(FALSE)
  expect_false(identical(ft_arr(all$aux.params$bn1_moving_mean), aux$bn1_moving_mean))
})

test_that("the symbol JSON reader and writer round-trip", {
  m <- ft_trained()
  js <- m$symbol$as.json()
  parsed <- symnet:::mx.internal.json.parse(js)
  expect_identical(symnet:::mx.internal.json.parse(symnet:::mx.internal.json.write(parsed)), parsed)
  expect_identical(parsed$nodes[[4]]$name, "fc1")
  expect_identical(parsed$nodes[[4]]$attrs$num_hidden, "16")
  x <- symnet:::mx.internal.json.parse('{"a": [1, -2.5e3, "q\\"\\\\\\n\\u00e9"], "b": {}, "c": [], "d": true, "e": null}')
  expect_identical(x$a[[3]], "q\"\\\n\u00e9")
  expect_identical(x$a[[2]], -2500)
  expect_identical(x$c, list())
  expect_named(x$b, character())
  expect_true(x$d)
  expect_true("e" %in% names(x))
  expect_identical(symnet:::mx.internal.json.parse(symnet:::mx.internal.json.write(x)), x)
  expect_identical(mx.symbol.load.json(symnet:::mx.internal.json.write(symnet:::mx.internal.json.parse(js)))$as.json(),
                   js)
  expect_error(symnet:::mx.internal.json.parse('{"a": [1, 2}'), "symbol JSON")
})

test_that("fine-tuning an MXNet-written checkpoint on Fashion-MNIST", {
  dir <- test_path("../../../shared/fixtures/mxnet-checkpoint")
  if (!dir.exists(dir)) dir <- file.path(Sys.getenv("SYMNET_FIXTURES", "/work/shared/fixtures"), "mxnet-checkpoint")
  skip_if_not(dir.exists(dir), "MXNet fixture not found")
  train <- tryCatch(mx.data.fashion.mnist(subset = "train", n = 400), error = function(e) NULL)
  test <- tryCatch(mx.data.fashion.mnist(subset = "test", n = 300), error = function(e) NULL)
  skip_if(is.null(train) || is.null(test), "Fashion-MNIST not installed")
  m <- mx.model.load(file.path(dir, "fashion-mnist"), 39)
  # features of the MXNet model: the pooled convolution
  f <- mx.model.features(m, test$x[, , , 1:20, drop = FALSE], "hybridsequential16_pool0_fwd")
  expect_equal(dim(f), c(12L, 12L, 8L, 20L))
  # and its output layer is what predict gives
  expect_equal(mx.model.features(m, test$x[, , , 1:20, drop = FALSE], "hybridsequential16_dense1_tanh_fwd_output"),
               predict(m, test$x[, , , 1:20, drop = FALSE]), tolerance = 1e-6)
  mx.set.seed(7)
  set.seed(7)
  ft <- mx.model.finetune(m, train$x, train$y, layer = "hybridsequential16_pool0_fwd_output",
                          eval.data = list(data = test$x, label = test$y),
                          num.round = 4, array.batch.size = 50, learning.rate = 0.1, momentum = 0.9,
                          verbose = FALSE)
  frozen <- c("hybridsequential16_conv0_weight", "hybridsequential16_conv0_bias")
  expect_setequal(names(ft$arg.params), c(frozen, "finetune_fc_weight", "finetune_fc_bias"))
  ft_same(ft, m, frozen)
  acc <- mean(max.col(t(predict(ft, test$x))) - 1 == test$y)
  expect_gt(acc, 0.55)            # chance is 0.1; the MXNet model's own head gets about 0.37
  expect_equal(ft$history$eval[4], acc, tolerance = 1e-9)
})
