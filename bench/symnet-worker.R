# The symnet side of the benchmarks: one task per process, run by the Python
# drivers (bench/compare.py, bench/graphs.py, bench/profile.py,
# bench/sweep.py), which alternate it with bench/torch_worker.py.  Prints
# progress on stderr and one line "RESULT {json}" on stdout.
#
#   Rscript bench/symnet-worker.R train model=lenet|mlp [seed=1 n.train=60000 ...]
#   Rscript bench/symnet-worker.R plan
#   Rscript bench/symnet-worker.R bind [size=224 batch=32 reps=3]
#   Rscript bench/symnet-worker.R profile model=lenet|mlp [block.secs=0.05]
#   Rscript bench/symnet-worker.R sweep batch=128 [n.train=10000 n.test=10000]
#
# Threads: symnet's default (SYMNET_NUM_THREADS or all cores of the
# process); the drivers leave it alone.

args <- commandArgs(trailingOnly = TRUE)
here <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(f)) dirname(normalizePath(f[1])) else "bench"
})
source(file.path(here, "common.R"))
if (!length(args)) stop("usage: symnet-worker.R TASK [key=value ...]")
task <- args[1]
args <- args[-1]
say <- function(...) message(sprintf(...))

rss.start <- bench.status.kb("VmRSS")

# Accuracy of softmax outputs (10 x n) against 0-based labels.
accuracy <- function(prob, y) mean(max.col(t(prob), ties.method = "first") - 1L == y)

# Times predict() over the test set at batch `bs`: one untimed warm-up call,
# then calls until `min.secs` have passed (at least `min.reps`).  Returns
# images/s and the warm-up's predictions.
time.predict <- function(model, x, bs, min.secs, min.reps = 2) {
  p <- predict(model, x, array.batch.size = bs)
  n <- utils::tail(dim(x), 1)
  reps <- 0; t0 <- bench.elapsed()
  repeat {
    predict(model, x, array.batch.size = bs)
    reps <- reps + 1
    el <- bench.elapsed() - t0
    if (reps >= min.reps && el >= min.secs) break
  }
  list(ips = reps * n / el, secs = el, reps = reps, prob = p)
}

task.train <- function(a) {
  a <- bench.args(a, list(model = "lenet", seed = 1, n.train = 60000, n.test = 10000, batch = 100,
                          lr = NA, momentum = 0.9, infer.batch = 1000, infer.secs = 3))
  if (is.na(a$lr)) a$lr <- if (a$model == "lenet") 0.05 else 0.1
  d <- bench.data(a$n.train, a$n.test)
  rss.data <- bench.status.kb("VmRSS")
  net <- bench.net(a$model)
  mx.set.seed(a$seed); set.seed(a$seed)
  load0 <- bench.loadavg()
  say("symnet %s: training one epoch on %d images", a$model, a$n.train)
  t0 <- bench.elapsed(); c0 <- proc.time()
  model <- mx.model.FeedForward.create(net, X = d$train$x, y = d$train$y, ctx = mx.cpu(),
                                       num.round = 1, array.batch.size = a$batch,
                                       optimizer = "sgd", learning.rate = a$lr, momentum = a$momentum,
                                       initializer = mx.init.Xavier(), verbose = FALSE)
  train.secs <- bench.elapsed() - t0
  train.cpu <- sum((proc.time() - c0)[c("user.self", "sys.self")])
  rss.train <- bench.status.kb("VmHWM")
  say("symnet %s: %.1f s, %.0f images/s; inference", a$model, train.secs, a$n.train / train.secs)
  inf <- time.predict(model, d$test$x, a$infer.batch, a$infer.secs)
  acc <- accuracy(inf$prob, d$test$y)
  bench.emit(list(framework = "symnet", task = "train", model = a$model, seed = a$seed,
                  n.train = a$n.train, n.test = a$n.test, batch = a$batch, lr = a$lr,
                  train.secs = train.secs, train.cpu.secs = train.cpu,
                  train.ips = a$n.train / train.secs,
                  infer.ips = inf$ips, infer.secs = inf$secs, infer.reps = inf$reps,
                  infer.batch = a$infer.batch, test.acc = acc,
                  rss.start.kb = rss.start, rss.data.kb = rss.data, hwm.train.kb = rss.train,
                  hwm.kb = bench.status.kb("VmHWM"),
                  load.before = load0, load.after = bench.loadavg()))
}

task.plan <- function(a) {
  a <- bench.args(a, list(train.batch = 100, infer.batch = 1000))
  out <- list(framework = "symnet", task = "plan")
  for (m in c("lenet", "mlp")) {
    net <- bench.net(m)
    tr <- mx.symbol.memory.plan(net, data = c(28, 28, 1, a$train.batch), softmax_label = a$train.batch,
                                train = TRUE)
    inf <- mx.symbol.memory.plan(net, data = c(28, 28, 1, a$infer.batch), softmax_label = a$infer.batch,
                                 train = FALSE)
    out[[m]] <- list(train = as.list(tr), infer = as.list(inf),
                     train.batch = a$train.batch, infer.batch = a$infer.batch)
  }
  bench.emit(out)
}

# Builds the graph (timed), then binds it `reps` times for training
# (grad.req = "write") and for inference, timing mx.simple.bind alone.
bind.one <- function(build, shapes, reps) {
  gc()
  t0 <- bench.elapsed(); sym <- build(); build.secs <- bench.elapsed() - t0
  time.bind <- function(req) {
    secs <- numeric(reps); mem <- NULL
    for (r in seq_len(reps)) {
      gc()
      t0 <- bench.elapsed()
      ex <- do.call(mx.simple.bind, c(list(sym, mx.cpu(), grad.req = req), shapes))
      secs[r] <- bench.elapsed() - t0
      mem <- as.list(mx.exec.memory(ex))
      rm(ex)
    }
    gc()
    list(secs = secs, median = stats::median(secs), memory = mem)
  }
  tr <- time.bind("write")
  inf <- time.bind("null")
  list(nodes = length(internals(sym)), arguments = length(arguments(sym)),
       build.secs = build.secs, train = tr, infer = inf)
}

task.bind <- function(a) {
  a <- bench.args(a, list(size = 224, batch = 32, reps = 3, steps = 100, hidden = 256, input = 256))
  say("symnet: ResNet-50 at %dx%d, batch %d", a$size, a$size, a$batch)
  rn <- bind.one(function() bench.resnet50(), list(data = c(a$size, a$size, 3, a$batch),
                                                   softmax_label = a$batch), a$reps)
  rn$hwm.kb <- bench.status.kb("VmHWM")
  say("symnet: LSTM %d steps, hidden %d, batch %d", a$steps, a$hidden, a$batch)
  ls <- bind.one(function() bench.lstm(a$steps, a$hidden),
                 list(data = c(a$input, a$steps, a$batch), softmax_label = a$batch), a$reps)
  bench.emit(list(framework = "symnet", task = "bind", size = a$size, batch = a$batch,
                  steps = a$steps, hidden = a$hidden, input = a$input,
                  resnet50 = rn, lstm = ls, hwm.kb = bench.status.kb("VmHWM"),
                  load = bench.loadavg()))
}

# ---- per-op profile --------------------------------------------------------------

# Single-layer symbols with the shapes they have inside the network (R dims
# of their input), each bound alone with mx.simple.bind.  need.grad: whether
# the layer's input gets a gradient in the full network.
layers.of <- function(model) {
  v <- mx.symbol.Variable("data")
  if (model == "lenet") list(
    conv1 = list(mx.symbol.Convolution(v, kernel = c(5, 5), num_filter = 20, name = "l"), c(28, 28, 1), FALSE),
    tanh1 = list(mx.symbol.Activation(v, act_type = "tanh", name = "l"), c(24, 24, 20), TRUE),
    pool1 = list(mx.symbol.Pooling(v, pool_type = "max", kernel = c(2, 2), stride = c(2, 2), name = "l"),
                 c(24, 24, 20), TRUE),
    conv2 = list(mx.symbol.Convolution(v, kernel = c(5, 5), num_filter = 50, name = "l"), c(12, 12, 20), TRUE),
    tanh2 = list(mx.symbol.Activation(v, act_type = "tanh", name = "l"), c(8, 8, 50), TRUE),
    pool2 = list(mx.symbol.Pooling(v, pool_type = "max", kernel = c(2, 2), stride = c(2, 2), name = "l"),
                 c(8, 8, 50), TRUE),
    flatten = list(mx.symbol.Flatten(v, name = "l"), c(4, 4, 50), TRUE),
    fc1 = list(mx.symbol.FullyConnected(v, num_hidden = 500, name = "l"), c(800), TRUE),
    tanh3 = list(mx.symbol.Activation(v, act_type = "tanh", name = "l"), c(500), TRUE),
    fc2 = list(mx.symbol.FullyConnected(v, num_hidden = 10, name = "l"), c(500), TRUE),
    softmax = list(mx.symbol.SoftmaxOutput(v, name = "l"), c(10), TRUE))
  else list(
    fc1 = list(mx.symbol.FullyConnected(v, num_hidden = 128, name = "l"), c(28, 28, 1), FALSE),
    relu1 = list(mx.symbol.Activation(v, act_type = "relu", name = "l"), c(128), TRUE),
    fc2 = list(mx.symbol.FullyConnected(v, num_hidden = 64, name = "l"), c(128), TRUE),
    relu2 = list(mx.symbol.Activation(v, act_type = "relu", name = "l"), c(64), TRUE),
    fc3 = list(mx.symbol.FullyConnected(v, num_hidden = 10, name = "l"), c(64), TRUE),
    softmax = list(mx.symbol.SoftmaxOutput(v, name = "l"), c(10), TRUE))
}

# Median seconds per call of f: 2 warm-up calls, then 5 blocks of calls,
# each block at least `block.secs` long (the clock has 1 ms resolution).
time.calls <- function(f, block.secs = 0.05) {
  f(); f()
  n <- 0; t0 <- bench.elapsed()
  while (bench.elapsed() - t0 < block.secs) { f(); n <- n + 1 }
  out <- numeric(5)
  for (b in 1:5) {
    t0 <- bench.elapsed()
    for (i in seq_len(n)) f()
    out[b] <- (bench.elapsed() - t0) / n
  }
  stats::median(out)
}

rand.fill <- function(ex, dims) {
  for (n in names(ex$ref.arg.arrays)) {
    a <- ex$ref.arg.arrays[[n]]
    d <- dim(a)
    v <- if (grepl("label$", n)) floor(stats::runif(prod(d)) * 10) else stats::runif(prod(d), -0.1, 0.1)
    mx.exec.update.arg.arrays(ex, stats::setNames(list(array(v, d)), n), match.name = TRUE)
  }
}

task.profile <- function(a) {
  a <- bench.args(a, list(model = "lenet", batch = 100, infer.batch = 1000, block.secs = 0.05, seed = 1))
  set.seed(a$seed); mx.set.seed(a$seed)
  layers <- layers.of(a$model)
  rows <- list()
  for (nm in names(layers)) {
    L <- layers[[nm]]
    sym <- L[[1]]; dims <- L[[2]]; need.grad <- L[[3]]
    shapes <- list(data = c(dims, a$batch))
    if ("l_label" %in% arguments(sym)) shapes$l_label <- a$batch
    req <- stats::setNames(as.list(rep("write", length(arguments(sym)))), arguments(sym))
    req$data <- if (need.grad) "write" else "null"
    if (!is.null(req$l_label)) req$l_label <- "null"
    ex <- do.call(mx.simple.bind, c(list(sym, mx.cpu(), grad.req = req), shapes))
    rand.fill(ex, shapes)
    fwd <- time.calls(function() .Call(symnet:::C_exec_forward, ex$handle, TRUE), a$block.secs)
    fb <- time.calls(function() {
      .Call(symnet:::C_exec_forward, ex$handle, TRUE)
      .Call(symnet:::C_exec_backward, ex$handle, list())
    }, a$block.secs)
    shapes.i <- list(data = c(dims, a$infer.batch))
    if ("l_label" %in% arguments(sym)) shapes.i$l_label <- a$infer.batch
    exi <- do.call(mx.simple.bind, c(list(sym, mx.cpu(), grad.req = "null"), shapes.i))
    rand.fill(exi, shapes.i)
    inf <- time.calls(function() .Call(symnet:::C_exec_forward, exi$handle, FALSE), a$block.secs)
    rows[[nm]] <- list(layer = nm, fwd.ms = 1e3 * fwd, bwd.ms = 1e3 * (fb - fwd), fwdbwd.ms = 1e3 * fb,
                       infer.ms = 1e3 * inf)
    say("%-8s fwd %7.3f ms  fwd+bwd %7.3f ms  infer(b=%d) %7.3f ms", nm, 1e3 * fwd, 1e3 * fb,
        a$infer.batch, 1e3 * inf)
    rm(ex, exi)
  }
  # The whole network in one executor, the optimizer update, the iterator and
  # the per-batch copy in: the parts of a FeedForward.create step.
  net <- bench.net(a$model)
  shapes <- list(data = c(28, 28, 1, a$batch), softmax_label = a$batch)
  ex <- do.call(mx.simple.bind, c(list(net, mx.cpu(), grad.req = "write"), shapes))
  rand.fill(ex, shapes)
  step <- time.calls(function() {
    .Call(symnet:::C_exec_forward, ex$handle, TRUE)
    .Call(symnet:::C_exec_backward, ex$handle, list())
  }, a$block.secs)
  trained <- setdiff(arguments(net), c("data", "softmax_label"))
  opt <- mx.opt.create("sgd", learning.rate = 0.01, momentum = 0.9, rescale.grad = 1 / a$batch)
  upd <- mx.opt.get.updater(opt, ex$ref.arg.arrays[trained], mx.cpu())
  w <- ex$ref.arg.arrays[trained]; g <- ex$ref.grad.arrays[trained]
  update <- time.calls(function() upd(w, g), a$block.secs)
  n.it <- 20 * a$batch
  x <- array(stats::runif(784 * n.it), c(28, 28, 1, n.it))
  y <- floor(stats::runif(n.it) * 10)
  it <- mx.io.arrayiter(x, y, batch.size = a$batch, shuffle = TRUE)
  it$reset()
  # The batch as FeedForward.create feeds it: written straight into the
  # executor's inputs for a built-in iterator, else value() + copy.
  native <- get0("mx.io.internal.native", asNamespace("symnet"))
  iter <- time.calls(function() {
    if (!it$iter.next()) { it$reset(); it$iter.next() }
    if (!is.null(native) && native(it)) {
      .Call(symnet:::C_io_value_into, it$handle, ex$ref.arg.arrays$data, ex$ref.arg.arrays$softmax_label)
    } else {
      b <- it$value()
      .Call(symnet:::C_nd_copy_into, ex$ref.arg.arrays$data, b$data)
      .Call(symnet:::C_nd_copy_into, ex$ref.arg.arrays$softmax_label, b$label)
    }
  }, a$block.secs)
  # One whole step of FeedForward.create's loop (iterator, forward, backward,
  # update), through the package's internal step function when it has one.
  train.step <- tryCatch({
    params <- mx.model.init.params(net, list(data = c(28, 28, 1, a$batch)), list(softmax_label = a$batch),
                                   mx.init.Xavier(), mx.cpu())
    tr <- symnet:::mx.internal.trainer(net, list(mx.cpu()), list(data = c(28, 28, 1, a$batch),
                                       softmax_label = a$batch), "data", "softmax_label", NULL, params, opt)
    feed <- c(data = "data", softmax_label = "label")
    # the direct feed FeedForward.create sets up once per fit, where the package has it
    df <- get0("mx.internal.direct.feed", asNamespace("symnet"))
    direct <- if (is.null(df)) NULL else df(tr, it, feed)
    time.calls(function() {
      if (!it$iter.next()) { it$reset(); it$iter.next() }
      if (is.null(df)) symnet:::mx.internal.train.batch(tr, it, feed, "label")
      else symnet:::mx.internal.train.batch(tr, it, feed, "label", direct)
    }, a$block.secs)
  }, error = function(e) { say("train step not timed: %s", conditionMessage(e)); NA_real_ })
  exi <- mx.simple.bind(net, mx.cpu(), grad.req = "null", data = c(28, 28, 1, a$infer.batch),
                        softmax_label = a$infer.batch)
  rand.fill(exi, list())
  infer <- time.calls(function() .Call(symnet:::C_exec_forward, exi$handle, FALSE), a$block.secs)
  total <- list(net.fwdbwd.ms = 1e3 * step, update.ms = 1e3 * update, iter.copy.ms = 1e3 * iter,
                train.step.ms = 1e3 * train.step,
                net.infer.ms = 1e3 * infer)
  say("net fwd+bwd %.3f ms, update %.3f ms, iterator+copy %.3f ms, whole step %.3f ms, net infer %.3f ms",
      1e3 * step, 1e3 * update, 1e3 * iter, 1e3 * train.step, 1e3 * infer)
  bench.emit(list(framework = "symnet", task = "profile", model = a$model, batch = a$batch,
                  infer.batch = a$infer.batch, layers = unname(rows), total = total,
                  load = bench.loadavg()))
}

# ---- batch-size sweep point ---------------------------------------------------------

task.sweep <- function(a) {
  a <- bench.args(a, list(model = "lenet", batch = 128, n.train = 10000, n.test = 10000, seed = 1,
                          lr = 0.05, momentum = 0.9, infer.secs = 2))
  d <- bench.data(a$n.train, a$n.test)
  net <- bench.net(a$model)
  mx.set.seed(a$seed); set.seed(a$seed)
  t0 <- bench.elapsed()
  model <- mx.model.FeedForward.create(net, X = d$train$x, y = d$train$y, ctx = mx.cpu(),
                                       num.round = 1, array.batch.size = a$batch,
                                       optimizer = "sgd", learning.rate = a$lr, momentum = a$momentum,
                                       initializer = mx.init.Xavier(), verbose = FALSE)
  train.secs <- bench.elapsed() - t0
  inf <- time.predict(model, d$test$x, a$batch, a$infer.secs)
  bench.emit(list(framework = "symnet", task = "sweep", model = a$model, batch = a$batch,
                  n.train = a$n.train, n.test = a$n.test,
                  train.ips = a$n.train / train.secs, infer.ips = inf$ips,
                  test.acc = accuracy(inf$prob, d$test$y), load = bench.loadavg()))
}

switch(task,
  train = task.train(args),
  plan = task.plan(args),
  bind = task.bind(args),
  profile = task.profile(args),
  sweep = task.sweep(args),
  stop("unknown task '", task, "'"))
