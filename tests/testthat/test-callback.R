# Callbacks, driven with a fake training-loop environment.

# the messages a call gives
messages_of <- function(expr) {
  msgs <- character()
  withCallingHandlers(expr, message = function(m) {
    msgs <<- c(msgs, conditionMessage(m))
    invokeRestart("muffleMessage")
  })
  msgs
}

fake_env <- function(train.value = NULL, eval.value = NULL) {
  env <- new.env()
  # a metric whose state is its value: get() returns it unchanged
  env$metric <- mx.metric.custom("rmse", function(label, pred) 0)
  if (!is.null(train.value)) env$train.metric <- c(1, train.value)
  if (!is.null(eval.value)) env$eval.metric <- c(1, eval.value)
  env$end.of.epoch <- FALSE
  env
}

test_that("log.train.metric reports every period and fills the logger", {
  lg <- mx.metric.logger()
  cb <- mx.callback.log.train.metric(2, lg)
  env <- fake_env(0.5, 0.7)
  msgs <- messages_of(expect_true(cb(1, 2, env, verbose = TRUE)))
  expect_equal(msgs, c("Batch [2] Train-rmse=0.5\n", "Batch [2] Validation-rmse=0.7\n"))
  expect_silent(expect_true(cb(1, 3, env, verbose = TRUE)))   # not a multiple of period
  env$train.metric <- c(2, 0.8)
  expect_silent(cb(1, 4, env, verbose = FALSE))
  expect_equal(lg$train, c(0.5, 0.4))
  expect_equal(lg$eval, c(0.7, 0.7))
  # as an epoch callback (nbatch 0): logs without a message
  expect_silent(cb(2, 0, env, verbose = TRUE))
  expect_equal(length(lg$train), 3)
  # the loop marks an epoch end with env$end.of.epoch (any nbatch): logs every time, silently
  env$end.of.epoch <- TRUE
  expect_silent(cb(2, 7, env, verbose = TRUE))
  expect_equal(length(lg$train), 4)
  expect_equal(length(lg$eval), 4)
  env$end.of.epoch <- FALSE
  # no eval metric: only train is logged
  lg2 <- mx.metric.logger$new()
  cb2 <- mx.callback.log.train.metric(1, lg2)
  cb2(1, 0, fake_env(0.1), verbose = FALSE)
  expect_equal(lg2$train, 0.1)
  expect_equal(lg2$eval, numeric())
  # no metric at all: nothing happens
  env0 <- new.env()
  expect_true(cb2(1, 1, env0, verbose = TRUE))
  expect_equal(lg2$train, 0.1)
  expect_error(mx.callback.log.train.metric(1, logger = list()), "Invalid mx.metric.logger")
  expect_error(mx.callback.log.train.metric(0), "period")
})

test_that("log.speedometer reports samples per second every frequency batches", {
  cb <- mx.callback.log.speedometer(batch.size = 10, frequency = 2)
  env <- fake_env(0.25)
  expect_silent(cb(1, 1, env, verbose = TRUE)) # starts the clock
  Sys.sleep(0.05)
  expect_message(cb(1, 2, env, verbose = TRUE), "Batch \\[2\\] Speed: .* samples/sec Train-rmse=0.25")
  expect_silent(cb(1, 3, env, verbose = TRUE))
  msg <- messages_of(cb(1, 4, env, verbose = TRUE))
  speed <- as.numeric(sub(".*Speed: ([0-9.e+]+) samples.*", "\\1", msg))
  expect_true(is.finite(speed) && speed > 0)
  # a new epoch (batch number going back) restarts the clock without a report
  expect_silent(cb(2, 1, env, verbose = TRUE))
  expect_silent(cb(2, 2, env, verbose = FALSE))
  expect_error(mx.callback.log.speedometer(0), "batch.size")
})

test_that("early.stop on thresholds", {
  cb <- mx.callback.early.stop(train.metric = 0.1)
  expect_true(cb(1, 0, fake_env(0.5), verbose = FALSE))
  expect_false(cb(2, 0, fake_env(0.05), verbose = FALSE))
  cb <- mx.callback.early.stop(eval.metric = 0.9, maximize = TRUE)
  expect_true(cb(1, 0, fake_env(0.99, 0.8), verbose = FALSE))
  expect_false(cb(2, 0, fake_env(0.99, 0.95), verbose = FALSE))
  expect_true(cb(3, 0, fake_env(0.99), verbose = FALSE)) # no eval metric: no eval threshold
  expect_true(mx.callback.early.stop(train.metric = 0.1)(1, 0, new.env(), FALSE))
})

test_that("early.stop after bad.steps epochs without improvement, state in the closure", {
  vals <- c(0.9, 0.7, 0.8, 0.75, 0.72, 0.6, 0.65, 0.66, 0.7)
  run <- function(cb) {
    for (i in seq_along(vals)) if (!cb(i, 0, fake_env(0.1, vals[i]), verbose = FALSE)) return(i)
    NA
  }
  cb <- mx.callback.early.stop(bad.steps = 3)
  expect_equal(run(cb), 5) # best 0.7 at 2; 3, 4, 5 worse
  # a second run with the same callback starts afresh
  expect_equal(run(cb), 5)
  expect_equal(run(mx.callback.early.stop(bad.steps = 1)), 3)
  expect_equal(run(mx.callback.early.stop(bad.steps = 4)), NA)
  # two callbacks at once keep separate records
  a <- mx.callback.early.stop(bad.steps = 2)
  b <- mx.callback.early.stop(bad.steps = 2, maximize = TRUE)
  expect_true(a(1, 0, fake_env(0, 0.5), FALSE))
  expect_true(b(1, 0, fake_env(0, 0.5), FALSE))
  expect_true(a(2, 0, fake_env(0, 0.4), FALSE))   # a improves, b gets worse
  expect_true(b(2, 0, fake_env(0, 0.4), FALSE))
  expect_true(a(3, 0, fake_env(0, 0.45), FALSE))
  expect_false(b(3, 0, fake_env(0, 0.45), FALSE))  # b: two epochs below 0.5
  expect_false(a(4, 0, fake_env(0, 0.45), FALSE))  # a: two epochs above 0.4
  expect_false(exists("mx.best.iter", envir = globalenv()))
  expect_message(mx.callback.early.stop(train.metric = 1, verbose = TRUE)(1, 0, fake_env(0.5), TRUE),
                 "Early stop")
  expect_error(mx.callback.early.stop(bad.steps = 0), "bad.steps")
  expect_error(mx.callback.early.stop(train.metric = "a"), "train.metric")
})

test_that("save.checkpoint calls mx.model.save every period", {
  skip_if_not(exists("mx.model.save", envir = asNamespace("symnet")), "mx.model.save not written yet")
  net <- mx.symbol.FullyConnected(mx.symbol.Variable("data"), num_hidden = 2, name = "fc1")
  model <- structure(list(symbol = net,
                          arg.params = list(fc1_weight = mx.nd.array(matrix(1:6, 3, 2)),
                                            fc1_bias = mx.nd.array(c(1, 2))),
                          aux.params = list()), class = "MXFeedForwardModel")
  env <- fake_env(0.1)
  env$model <- model
  prefix <- file.path(tempdir(), "cbtest")
  cb <- mx.callback.save.checkpoint(prefix, period = 2)
  expect_true(cb(1, 0, env, verbose = FALSE))
  expect_false(file.exists(sprintf("%s-%04d.params", prefix, 1)))
  expect_message(cb(2, 0, env, verbose = TRUE), "cbtest-0002.params")
  expect_true(file.exists(sprintf("%s-%04d.params", prefix, 2)))
  expect_true(file.exists(paste0(prefix, "-symbol.json")))
  p <- mx.nd.load(sprintf("%s-%04d.params", prefix, 2))
  expect_equal(as.array(p[["arg:fc1_weight"]]), matrix(1:6, 3, 2))
  unlink(c(sprintf("%s-%04d.params", prefix, 2), paste0(prefix, "-symbol.json")))
})

test_that("save.checkpoint checks its arguments", {
  expect_error(mx.callback.save.checkpoint(1), "prefix")
  expect_error(mx.callback.save.checkpoint("a", period = 0), "period")
})
