skip_if_not(exists("mx.io.arrayiter", asNamespace("symnet")) && exists("mx.opt.create", asNamespace("symnet")),
            "iterators or optimizers not built yet")

toy <- function(n = 200, seed = 1) {
  set.seed(seed)
  x <- matrix(rnorm(2 * n), 2, n)
  y <- as.integer(x[1, ] + x[2, ] > 0)
  list(x = x, y = y)
}

mlp2 <- function() {
  d <- mx.symbol.Variable("data")
  h <- mx.symbol.Activation(mx.symbol.FullyConnected(d, num_hidden = 8, name = "fc1"), act_type = "tanh")
  mx.symbol.SoftmaxOutput(mx.symbol.FullyConnected(h, num_hidden = 2, name = "fc2"), name = "sm")
}

test_that("FeedForward.create learns a separable problem and predict returns one column per example", {
  d <- toy()
  mx.set.seed(0)
  m <- mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, ctx = mx.cpu(), num.round = 20,
                                   array.batch.size = 20, learning.rate = 0.1, momentum = 0.9,
                                   eval.metric = mx.metric.accuracy, verbose = FALSE)
  expect_s3_class(m, "MXFeedForwardModel")
  expect_equal(sort(names(m$arg.params)), sort(c("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")))
  p <- predict(m, d$x)
  expect_equal(dim(p), c(2L, 200L))
  acc <- mean(max.col(t(p)) - 1 == d$y)
  expect_gt(acc, 0.95)
  expect_equal(nrow(m$history), 20)
  expect_gt(m$history$train[20], 0.9)
  expect_equal(ctx(m$arg.params$fc1_weight)$device, "cpu")
  # rowmajor input is detected and gives the same predictions
  expect_message(p2 <- predict(m, t(d$x)), "rowmajor")
  expect_equal(p2, p)
  # batching and padding: 200 is not a multiple of 64
  expect_equal(predict(m, d$x, array.batch.size = 64), p, tolerance = 1e-6)
})

test_that("checkpoints save and load, predictions are identical, serialize survives saveRDS", {
  d <- toy()
  mx.set.seed(1)
  m <- mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, num.round = 2, array.batch.size = 50,
                                   learning.rate = 0.1, verbose = FALSE)
  prefix <- file.path(tempdir(), "toy")
  mx.model.save(m, prefix, 2)
  expect_true(file.exists(paste0(prefix, "-symbol.json")))
  expect_true(file.exists(paste0(prefix, "-0002.params")))
  keys <- names(mx.nd.load(paste0(prefix, "-0002.params")))
  expect_true(all(grepl("^arg:", keys)))
  m2 <- mx.model.load(prefix, 2)
  expect_identical(predict(m2, d$x), predict(m, d$x))
  f <- tempfile(fileext = ".rds")
  saveRDS(mx.serialize(m), f)
  m3 <- readRDS(f)
  expect_true(is.serialized(m3))
  expect_identical(predict(m3, d$x), predict(m, d$x))
  expect_error(mx.model.load(file.path(tempdir(), "nothere"), 1), "no such file|cannot open")
})

test_that("the MXNet-written checkpoint reproduces MXNet's outputs", {
  dir <- test_path("../../../shared/fixtures/mxnet-checkpoint")
  if (!dir.exists(dir)) dir <- file.path(Sys.getenv("SYMNET_FIXTURES", "/work/shared/fixtures"), "mxnet-checkpoint")
  skip_if_not(dir.exists(dir), "MXNet fixture not found")
  imgs <- Sys.glob("/usr/share/*/*fashion*/t10k-images-idx3-ubyte*")
  if (!length(imgs)) imgs <- Sys.glob("/usr/share/dataset-fashion-mnist/t10k-images-idx3-ubyte*")
  skip_if(!length(imgs), "Fashion-MNIST not installed")
  con <- if (grepl("gz$", imgs[[1]])) gzfile(imgs[[1]], "rb") else file(imgs[[1]], "rb")
  readBin(con, "integer", 4, endian = "big")
  px <- readBin(con, "raw", 100 * 784)
  close(con)
  x <- array(as.numeric(px) / 255, c(28, 28, 1, 100))
  m <- mx.model.load(file.path(dir, "fashion-mnist"), 39)
  p <- predict(m, x)
  expected <- as.matrix(utils::read.csv(file.path(dir, "expected-outputs-first100.csv"), header = FALSE))
  if (!is.numeric(expected[1, 1])) expected <- as.matrix(utils::read.csv(file.path(dir, "expected-outputs-first100.csv")))
  expect_equal(dim(p), c(10L, 100L))
  expect_equal(unname(t(p)), unname(expected), tolerance = 1e-5)
})

test_that("wrong-shaped X or y, and bad arguments, are clear errors", {
  d <- toy()
  expect_error(mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y[1:10], num.round = 1, verbose = FALSE),
               "match|in-consistent|Row major")
  expect_error(mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, optimizer = "nope", num.round = 1,
                                           verbose = FALSE), "nope|optimizer")
  expect_error(mx.model.FeedForward.create(mlp2(), X = "a", y = 1, verbose = FALSE), "numeric")
  expect_error(mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, array.layout = "diagonal", verbose = FALSE),
               "array.layout")
  expect_error(mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, num.round = 0, verbose = FALSE), "num.round")
  sq <- matrix(0, 4, 4)
  expect_error(mx.model.FeedForward.create(mlp2(), X = sq, y = 1:4, verbose = FALSE), "auto select")
})

test_that("fixed.param keeps frozen weights unchanged and in the model", {
  d <- toy()
  mx.set.seed(2)
  init <- mx.model.init.params(mlp2(), c(2, 20), 20, mx.init.uniform(0.5), mx.cpu())
  m <- mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, num.round = 2, array.batch.size = 20,
                                   arg.params = init$arg.params, fixed.param = c("fc1_weight", "fc1_bias"),
                                   learning.rate = 0.1, verbose = FALSE)
  expect_identical(as.array(m$arg.params$fc1_weight), as.array(init$arg.params$fc1_weight))
  expect_false(identical(as.array(m$arg.params$fc2_weight), as.array(init$arg.params$fc2_weight)))
})

test_that("an epoch callback returning FALSE stops training; batch callbacks see the env", {
  d <- toy()
  seen <- 0
  m <- mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, num.round = 10, array.batch.size = 50,
                                   eval.metric = mx.metric.accuracy, verbose = FALSE,
                                   batch.end.callback = function(iteration, nbatch, env, verbose) {
                                     seen <<- seen + 1
                                     expect_true(is.environment(env))
                                     TRUE
                                   },
                                   epoch.end.callback = function(iteration, nbatch, env, verbose) iteration < 3)
  expect_equal(nrow(m$history), 3)
  expect_equal(seen, 3 * 4)
})

test_that("mx.mlp trains a classifier and a regression", {
  d <- toy()
  mx.set.seed(3)
  m <- mx.mlp(t(d$x), d$y, hidden_node = 6, out_node = 2, num.round = 10, array.batch.size = 20,
              learning.rate = 0.1, momentum = 0.9, verbose = FALSE, array.layout = "rowmajor")
  expect_gt(mean(max.col(t(predict(m, t(d$x), array.layout = "rowmajor"))) - 1 == d$y), 0.9)
  yr <- d$x[1, ] * 2 + 1
  r <- mx.mlp(t(d$x), yr, hidden_node = 6, out_node = 1, out_activation = "rmse", num.round = 30,
              array.batch.size = 20, learning.rate = 0.01, momentum = 0.9, verbose = FALSE,
              array.layout = "rowmajor")
  pr <- predict(r, t(d$x), array.layout = "rowmajor")
  expect_lt(sqrt(mean((as.vector(pr) - yr)^2)), sd(yr))
  expect_error(mx.mlp(t(d$x), d$y, out_node = 2, out_activation = "tanh"), "out_activation")
})

test_that("print, summary and plot work", {
  d <- toy()
  m <- mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, num.round = 2, array.batch.size = 50,
                                   eval.metric = mx.metric.accuracy, verbose = FALSE,
                                   eval.data = list(data = d$x, label = d$y))
  expect_output(print(m), "MXFeedForwardModel")
  expect_output(print(summary(m)), "fc1_weight")
  expect_true(all(!is.na(m$history$eval)))
  f <- tempfile(fileext = ".pdf")
  pdf(f)
  plot(m)
  dev.off()
  expect_gt(file.size(f), 1000)
})

test_that("graph.viz gives DOT text with shapes", {
  dot <- graph.viz(mlp2(), shape = c(2, 20), type = "dot")
  expect_s3_class(dot, "mx.dot")
  expect_match(unclass(dot), "digraph")
  expect_match(unclass(dot), "FullyConnected")
  expect_match(unclass(dot), "8x20")
})

test_that("a list of contexts splits the batch and gives the same model as one device", {
  d <- toy()
  fit <- function(ctx) {
    mx.set.seed(4)
    it <- mx.io.arrayiter(d$x, d$y, batch.size = 20, shuffle = FALSE)
    mx.model.FeedForward.create(mlp2(), X = it, ctx = ctx, num.round = 2, learning.rate = 0.1,
                                verbose = FALSE, initializer = mx.init.uniform(0.3))
  }
  one <- fit(mx.cpu())
  two <- fit(list(mx.cpu(0), mx.cpu(1)))
  for (n in names(one$arg.params))
    expect_equal(as.array(two$arg.params[[n]]), as.array(one$arg.params[[n]]), tolerance = 1e-5, info = n)
})

test_that("predict matches a plain R forward pass, through the cached executor and without it", {
  d <- toy(n = 203, seed = 4)
  mx.set.seed(1)
  m <- mx.model.FeedForward.create(mlp2(), X = d$x, y = d$y, ctx = mx.cpu(), num.round = 2,
                                   array.batch.size = 20, learning.rate = 0.1, verbose = FALSE)
  ref <- function(m, x) {
    a <- lapply(m$arg.params, as.array)
    h <- tanh(t(a$fc1_weight) %*% x + as.numeric(a$fc1_bias))  # R dims: weight c(in, out)
    z <- t(a$fc2_weight) %*% h + as.numeric(a$fc2_bias)
    e <- exp(sweep(z, 2, apply(z, 2, max)))
    sweep(e, 2, colSums(e), "/")
  }
  want <- ref(m, d$x)
  for (bs in c(1, 7, 50, 203, 500)) {
    p <- predict(m, d$x, array.batch.size = bs)
    expect_equal(dim(p), c(2L, 203L))
    expect_equal(p, want, tolerance = 1e-5, info = paste("batch", bs))
  }
  # the same symbol with other parameters: the cached executor takes them
  m2 <- m
  m2$arg.params$fc2_bias <- mx.nd.array(c(5, -5))
  expect_equal(predict(m2, d$x, array.batch.size = 50), ref(m2, d$x), tolerance = 1e-5)
  expect_equal(predict(m, d$x, array.batch.size = 50), want, tolerance = 1e-5)
  old <- options(symnet.predict.cache = FALSE)
  on.exit(options(old))
  expect_equal(predict(m, d$x, array.batch.size = 50), want, tolerance = 1e-5)
  expect_null(symnet:::mx.internal.predict.cache$entry)
  # a custom iterator goes through the R loop and gives the same values
  it <- mx.io.arrayiter(d$x, d$y, batch.size = 64)
  custom <- setRefClass("PredictTestIter", contains = "Rcpp_MXArrayDataIter",
                        fields = list(inner = "ANY"),
                        methods = list(reset = function() inner$reset(),
                                       iter.next = function() inner$iter.next(),
                                       value = function() inner$value(),
                                       num.pad = function() inner$num.pad()))
  expect_equal(predict(m, custom$new(inner = it)), want, tolerance = 1e-5)
})
