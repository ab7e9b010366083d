# Metrics against plain R, with R arrays and NDArrays as inputs, batch
# averaging, MXNet-1.x style custom metrics, the logger, and errors.

one_batch <- function(m, label, pred) m$get(m$update(label, pred, m$init()))$value

set.seed(7)
ncls <- 4
nb <- 25
pred <- matrix(runif(ncls * nb), ncls, nb)
pred <- sweep(pred, 2, colSums(pred), "/")
label <- sample(0:(ncls - 1), nb, replace = TRUE)

test_that("accuracy and top_k_accuracy match plain R", {
  want <- mean(apply(pred, 2, which.max) - 1 == label)
  expect_equal(one_batch(mx.metric.accuracy, label, pred), want)
  expect_equal(one_batch(mx.metric.accuracy, mx.nd.array(label), mx.nd.array(pred)), want,
               tolerance = 1e-6)
  expect_equal(mx.metric.accuracy$get(mx.metric.accuracy$init())$name, "accuracy")
  # ties go to the first class, like argmax
  expect_equal(one_batch(mx.metric.accuracy, c(0, 1), matrix(c(0.5, 0.5, 0.2, 0.2), 2)), 0.5)
  # top-5 of 10 classes
  p10 <- matrix(runif(10 * nb), 10, nb)
  l10 <- sample(0:9, nb, replace = TRUE)
  want <- mean(vapply(seq_len(nb), function(j) (l10[j] + 1) %in% order(p10[, j], decreasing = TRUE)[1:5], TRUE))
  expect_equal(one_batch(mx.metric.top_k_accuracy, l10, p10), want)
  # with 4 classes every label is in the top 5
  expect_equal(one_batch(mx.metric.top_k_accuracy, label, pred), 1)
})

test_that("accuracy on multi-output predictions (classes on R dim length(dim) - 1)", {
  p <- array(runif(3 * 4 * 5 * 2), c(3, 4, 5, 2)) # W x H x classes x batch
  l <- array(sample(0:4, 3 * 4 * 2, replace = TRUE), c(3, 4, 2))
  cls <- apply(p, c(1, 2, 4), which.max) - 1
  expect_equal(one_batch(mx.metric.accuracy, l, p), mean(cls == l))
})

test_that("regression metrics match plain R", {
  y <- rnorm(30)
  p <- y + rnorm(30, sd = 0.3)
  expect_equal(one_batch(mx.metric.mse, y, p), mean((y - p)^2))
  expect_equal(one_batch(mx.metric.rmse, y, p), sqrt(mean((y - p)^2)))
  expect_equal(one_batch(mx.metric.mae, y, p), mean(abs(y - p)))
  ya <- abs(y); pa <- abs(p)
  expect_equal(one_batch(mx.metric.rmsle, ya, pa), sqrt(mean((log1p(pa) - log1p(ya))^2)))
  # a 1 x n prediction against n labels, NDArrays in
  expect_equal(one_batch(mx.metric.rmse, mx.nd.array(y, dtype = "float64"),
                         mx.nd.array(matrix(p, 1), dtype = "float64")), sqrt(mean((y - p)^2)))
  expect_equal(mx.metric.rmse$get(c(1, 1))$name, "rmse")
})

test_that("logloss, logistic_acc and Perplexity match plain R", {
  y <- rbinom(40, 1, 0.5)
  p <- runif(40)
  p[1] <- 0
  pc <- pmin(pmax(p, 1e-15), 1 - 1e-15)
  expect_equal(one_batch(mx.metric.logloss, y, p), -mean(y * log(pc) + (1 - y) * log(1 - pc)))
  expect_equal(one_batch(mx.metric.logistic_acc, y, p), mean(y == (p > 0.5)))
  expect_equal(mx.metric.logistic_acc$get(c(1, 1))$name, "accuracy")
  probs <- pred[cbind(label + 1, seq_len(nb))]
  expect_equal(one_batch(mx.metric.Perplexity, label, pred), exp(-mean(log(probs))))
  # labels equal to -1 are left out
  l2 <- label
  l2[1:5] <- -1
  expect_equal(one_batch(mx.metric.Perplexity, l2, pred), exp(-mean(log(probs[-(1:5)]))))
})

test_that("the value is the mean of the batch values", {
  m <- mx.metric.rmse
  st <- m$init()
  expect_equal(st, c(0, 0))
  st <- m$update(c(1, 2), c(1, 4), st)    # rmse sqrt(2)
  st <- m$update(c(0, 0, 0), c(3, 3, 3), st) # rmse 3
  expect_equal(st[[1]], 2)
  expect_equal(m$get(st)$value, (sqrt(2) + 3) / 2)
})

test_that("custom metrics: plain R fevals and MXNet 1.x fevals with mx.nd ops", {
  f <- function(label, pred) mean(abs(label - pred))
  m <- mx.metric.custom("mae", f)
  expect_s3_class(m, "mx.metric")
  expect_equal(one_batch(m, mx.nd.array(c(1, 2, 3)), mx.nd.array(c(2, 2, 5))), 1)
  expect_output(print(m), "mae")
  # MXNet R 1.x vignette style: NDArray ops inside, an NDArray returned
  m2 <- mx.metric.custom("mae", function(label, pred) {
    pred <- mx.nd.reshape(pred, shape = -1)
    mx.nd.mean(mx.nd.abs(label - pred))
  })
  expect_equal(one_batch(m2, c(1, 2, 3), matrix(c(2, 2, 5), 1)), 1, tolerance = 1e-6)
  expect_equal(one_batch(m2, mx.nd.array(c(1, 2, 3)), mx.nd.array(matrix(c(2, 2, 5), 1))), 1,
               tolerance = 1e-6)
  # a feval must return one number
  m3 <- mx.metric.custom("bad", function(label, pred) c(1, 2))
  expect_error(m3$update(1, 1, m3$init()), "one number")
  expect_error(mx.metric.custom("x", 1), "feval")
  expect_error(mx.metric.custom(1, f), "name")
})

test_that("mismatched labels and predictions are errors", {
  expect_error(one_batch(mx.metric.accuracy, c(0, 1, 2), pred), "accuracy: the label has 3 values")
  expect_error(one_batch(mx.metric.accuracy, c(0, 1), c(0.2, 0.4)), "class axis")
  expect_error(one_batch(mx.metric.mse, 1:3, 1:4), "mse: the label has 3 values")
})

test_that("mx.metric.logger is a RefClass with train and eval", {
  lg <- mx.metric.logger()
  expect_s4_class(lg, "mx.metric.logger")
  expect_equal(lg$train, numeric())
  lg$train <- c(lg$train, 0.5)
  lg$eval <- c(lg$eval, 0.25)
  expect_equal(lg$train, 0.5)
  expect_equal(lg$eval, 0.25)
  lg2 <- mx.metric.logger$new()
  expect_s4_class(lg2, "mx.metric.logger")
  expect_equal(lg2$train, numeric())
})

test_that("custom fevals see one value per example as plain vectors", {
  m <- mx.metric.custom("mae", function(label, pred) mean(abs(label - pred)))
  st <- m$update(mx.nd.array(array(1:3, 3)), mx.nd.array(matrix(c(2, 2, 5), 1, 3)), m$init())
  expect_equal(m$get(st)$value, mean(abs(1:3 - c(2, 2, 5))))
})
