# Training resumed from a checkpoint in a fresh R process continues exactly
# like an uninterrupted run, and Ctrl-C during training returns a usable
# model.  Both run child R processes with a fixed thread count.

rscript <- function() file.path(R.home("bin"), "Rscript")

child_script <- function(body) {
  f <- tempfile(fileext = ".R")
  writeLines(c("suppressPackageStartupMessages(library(symnet))",
               sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")),
               body), f)
  f
}

run_child <- function(body) {
  out <- system2(rscript(), child_script(body), stdout = TRUE, stderr = TRUE,
                 env = c("SYMNET_NUM_THREADS=1", "OMP_NUM_THREADS=1"))
  status <- attr(out, "status")
  if (!is.null(status) && status != 0) stop(paste(out, collapse = "\n"))
  out
}

common <- function(dir) sprintf('
dir <- "%s"
set.seed(7)
x <- matrix(rnorm(2 * 300), 2, 300)
y <- as.integer(x[1, ] - x[2, ] > 0)
d <- mx.symbol.Variable("data")
h <- mx.symbol.Activation(mx.symbol.FullyConnected(d, num_hidden = 16, name = "fc1"), act_type = "relu")
net <- mx.symbol.SoftmaxOutput(mx.symbol.FullyConnected(h, num_hidden = 2, name = "fc2"), name = "sm")
', dir)

test_that("resuming from a checkpoint in a new process is bitwise identical", {
  skip_on_cran()
  dir <- tempfile("resume")
  dir.create(dir)
  full <- paste0(common(dir), '
mx.set.seed(3); set.seed(11)
it <- mx.io.arrayiter(x, y, batch.size = 30, shuffle = TRUE)
m <- mx.model.FeedForward.create(net, X = it, num.round = 4, learning.rate = 0.2, verbose = FALSE,
  initializer = mx.init.uniform(0.3),
  epoch.end.callback = mx.callback.save.checkpoint(file.path(dir, "full")))
')
  resumed <- paste0(common(dir), '
m2 <- mx.model.load(file.path(dir, "full"), 2)
mx.set.seed(3); set.seed(11)
it <- mx.io.arrayiter(x, y, batch.size = 30, shuffle = TRUE)
m <- mx.model.FeedForward.create(net, X = it, begin.round = 3, num.round = 4, learning.rate = 0.2,
  verbose = FALSE, arg.params = m2$arg.params, aux.params = m2$aux.params,
  epoch.end.callback = mx.callback.save.checkpoint(file.path(dir, "resumed")))
')
  run_child(full)
  run_child(resumed)
  a <- readBin(file.path(dir, "full-0004.params"), "raw", 1e6)
  b <- readBin(file.path(dir, "resumed-0004.params"), "raw", 1e6)
  expect_gt(length(a), 100)
  expect_identical(a, b)
  # and the run did learn something between epochs 2 and 4
  expect_false(identical(a, readBin(file.path(dir, "full-0002.params"), "raw", 1e6)))
})

test_that("an interrupt during training returns within a second with a usable model", {
  skip_on_cran()
  skip_on_os("windows")
  dir <- tempfile("intr")
  dir.create(dir)
  body <- paste0(common(dir), '
x <- matrix(rnorm(784 * 2000), 784, 2000); y <- sample(0:9, 2000, TRUE)
d <- mx.symbol.Variable("data")
for (i in 1:3) d <- mx.symbol.Activation(mx.symbol.FullyConnected(d, num_hidden = 512), act_type = "relu")
net <- mx.symbol.SoftmaxOutput(mx.symbol.FullyConnected(d, num_hidden = 10), name = "sm")
writeLines(as.character(Sys.getpid()), file.path(dir, "pid"))
t <- system.time(m <- mx.model.FeedForward.create(net, X = x, y = y, num.round = 1000, array.batch.size = 50,
  learning.rate = 0.01, verbose = FALSE))
p <- predict(m, x[, 1:10])
cat("RETURNED", t[["elapsed"]], "\n")
cat("PRED", all(is.finite(p)), length(p), "\n")
mx.model.save(m, file.path(dir, "after"), 1)
')
  f <- child_script(body)
  log <- file.path(dir, "log")
  system2(rscript(), f, stdout = log, stderr = log, wait = FALSE,
          env = c("SYMNET_NUM_THREADS=1", "OMP_NUM_THREADS=1"))
  pidf <- file.path(dir, "pid")
  for (i in 1:200) if (file.exists(pidf) && length(readLines(pidf)) == 1) break else Sys.sleep(0.1)
  expect_true(file.exists(pidf))
  Sys.sleep(3)
  t0 <- Sys.time()
  tools::pskill(as.integer(readLines(pidf)), tools::SIGINT)
  for (i in 1:300) if (file.exists(file.path(dir, "after-0001.params"))) break else Sys.sleep(0.1)
  out <- readLines(log)
  expect_true(any(grepl("interrupted", out)), info = paste(out, collapse = "\n"))
  expect_true(any(grepl("PRED TRUE 100", out)), info = paste(out, collapse = "\n"))
  expect_true(file.exists(file.path(dir, "after-0001.params")))
  expect_lt(as.numeric(difftime(Sys.time(), t0, units = "secs")), 10)
})
