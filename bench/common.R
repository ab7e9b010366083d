# Shared pieces of the symnet side of the benchmarks: the networks (LeNet,
# MLP, ResNet-50 v1, an unrolled LSTM), Fashion-MNIST loading, process
# memory and load figures, and the RESULT line the Python drivers read.
# Sourced by bench/symnet-worker.R; not part of the package.

suppressPackageStartupMessages(library(symnet))

# ---- networks --------------------------------------------------------------

# LeNet as in issue 5: conv 5x5x20, tanh, max-pool 2, conv 5x5x50, tanh,
# max-pool 2, fc 500, tanh, fc 10, softmax.
bench.lenet <- function() {
  data <- mx.symbol.Variable("data")
  x <- mx.symbol.Convolution(data, kernel = c(5, 5), num_filter = 20, name = "conv1")
  x <- mx.symbol.Activation(x, act_type = "tanh", name = "tanh1")
  x <- mx.symbol.Pooling(x, pool_type = "max", kernel = c(2, 2), stride = c(2, 2), name = "pool1")
  x <- mx.symbol.Convolution(x, kernel = c(5, 5), num_filter = 50, name = "conv2")
  x <- mx.symbol.Activation(x, act_type = "tanh", name = "tanh2")
  x <- mx.symbol.Pooling(x, pool_type = "max", kernel = c(2, 2), stride = c(2, 2), name = "pool2")
  x <- mx.symbol.Flatten(x, name = "flatten")
  x <- mx.symbol.FullyConnected(x, num_hidden = 500, name = "fc1")
  x <- mx.symbol.Activation(x, act_type = "tanh", name = "tanh3")
  x <- mx.symbol.FullyConnected(x, num_hidden = 10, name = "fc2")
  mx.symbol.SoftmaxOutput(x, name = "softmax")
}

# MLP 784-128-64-10 with ReLU (FullyConnected flattens the 28x28x1 images).
bench.mlp <- function() {
  data <- mx.symbol.Variable("data")
  x <- mx.symbol.FullyConnected(data, num_hidden = 128, name = "fc1")
  x <- mx.symbol.Activation(x, act_type = "relu", name = "relu1")
  x <- mx.symbol.FullyConnected(x, num_hidden = 64, name = "fc2")
  x <- mx.symbol.Activation(x, act_type = "relu", name = "relu2")
  x <- mx.symbol.FullyConnected(x, num_hidden = 10, name = "fc3")
  mx.symbol.SoftmaxOutput(x, name = "softmax")
}

bench.net <- function(model) {
  switch(model, lenet = bench.lenet(), mlp = bench.mlp(),
         stop("unknown model '", model, "' (lenet or mlp)"))
}

# ResNet-50 v1 (He et al. 2015, bottleneck blocks 3-4-6-3, stride on the
# first 1x1 convolution of a stage as in v1), built from Convolution,
# BatchNorm, Activation, Pooling, FullyConnected and elemwise_add.
bench.resnet50 <- function(num.classes = 1000) {
  conv.bn <- function(x, nf, k, s, p, name, relu = TRUE) {
    x <- mx.symbol.Convolution(x, kernel = c(k, k), stride = c(s, s), pad = c(p, p),
                               num_filter = nf, no_bias = TRUE, name = paste0(name, "_conv"))
    x <- mx.symbol.BatchNorm(x, fix_gamma = FALSE, eps = 1e-5, momentum = 0.9, name = paste0(name, "_bn"))
    if (relu) x <- mx.symbol.Activation(x, act_type = "relu", name = paste0(name, "_relu"))
    x
  }
  bottleneck <- function(x, nf, stride, project, name) {
    y <- conv.bn(x, nf, 1, stride, 0, paste0(name, "_a"))
    y <- conv.bn(y, nf, 3, 1, 1, paste0(name, "_b"))
    y <- conv.bn(y, nf * 4, 1, 1, 0, paste0(name, "_c"), relu = FALSE)
    sc <- if (project) conv.bn(x, nf * 4, 1, stride, 0, paste0(name, "_sc"), relu = FALSE) else x
    s <- mx.symbol.elemwise_add(y, sc, name = paste0(name, "_add"))
    mx.symbol.Activation(s, act_type = "relu", name = paste0(name, "_out"))
  }
  x <- mx.symbol.Variable("data")
  x <- conv.bn(x, 64, 7, 2, 3, "stem")
  x <- mx.symbol.Pooling(x, pool_type = "max", kernel = c(3, 3), stride = c(2, 2), pad = c(1, 1),
                         name = "stem_pool")
  stages <- list(c(64, 3, 1), c(128, 4, 2), c(256, 6, 2), c(512, 3, 2))
  for (i in seq_along(stages)) {
    nf <- stages[[i]][1]; n <- stages[[i]][2]; s <- stages[[i]][3]
    for (j in seq_len(n))
      x <- bottleneck(x, nf, if (j == 1) s else 1, j == 1, sprintf("stage%d_unit%d", i, j))
  }
  x <- mx.symbol.Pooling(x, pool_type = "avg", global_pool = TRUE, kernel = c(7, 7), name = "gpool")
  x <- mx.symbol.Flatten(x, name = "flatten")
  x <- mx.symbol.FullyConnected(x, num_hidden = num.classes, name = "fc")
  mx.symbol.SoftmaxOutput(x, name = "softmax")
}

# An LSTM cell from FullyConnected + SliceChannel + Activation + element-wise
# ops, unrolled `steps` times over data of R dims c(input, steps, batch)
# (C shape (batch, steps, input)); weights are shared across steps; the last
# hidden state feeds a 10-way softmax.
bench.lstm <- function(steps = 100, hidden = 256, num.classes = 10) {
  data <- mx.symbol.Variable("data")
  i2h.w <- mx.symbol.Variable("i2h_weight"); i2h.b <- mx.symbol.Variable("i2h_bias")
  h2h.w <- mx.symbol.Variable("h2h_weight"); h2h.b <- mx.symbol.Variable("h2h_bias")
  # One SliceChannel of `steps` outputs would be MXNet's way, but the engine
  # takes at most 64 outputs per node (SN_MAX_IO) and crashed in shape
  # inference beyond that when this was written: cut the sequence in two
  # levels (100 steps = 2 x 50) instead.
  k <- if (steps <= 64) 1 else min(which(steps %% seq_len(64) == 0 & steps / seq_len(64) <= 64))
  xs <- if (k == 1) {
    sl <- mx.symbol.SliceChannel(data, num_outputs = steps, axis = 1, squeeze_axis = TRUE, name = "slice")
    lapply(seq_len(steps), function(t) sl[[t]])
  } else {
    outer <- mx.symbol.SliceChannel(data, num_outputs = k, axis = 1, name = "slice")
    unlist(lapply(seq_len(k), function(j) {
      inner <- mx.symbol.SliceChannel(outer[[j]], num_outputs = steps / k, axis = 1, squeeze_axis = TRUE,
                                      name = sprintf("slice%d", j))
      lapply(seq_len(steps / k), function(t) inner[[t]])
    }))
  }
  h <- NULL; c <- NULL
  for (t in seq_len(steps)) {
    g <- mx.symbol.FullyConnected(xs[[t]], weight = i2h.w, bias = i2h.b, num_hidden = 4 * hidden,
                                  name = sprintf("t%d_i2h", t))
    if (!is.null(h)) {
      hh <- mx.symbol.FullyConnected(h, weight = h2h.w, bias = h2h.b, num_hidden = 4 * hidden,
                                     name = sprintf("t%d_h2h", t))
      g <- mx.symbol.elemwise_add(g, hh, name = sprintf("t%d_gates", t))
    }
    sl <- mx.symbol.SliceChannel(g, num_outputs = 4, axis = 1, name = sprintf("t%d_slice", t))
    in.gate <- mx.symbol.Activation(sl[[1]], act_type = "sigmoid", name = sprintf("t%d_i", t))
    forget <- mx.symbol.Activation(sl[[2]], act_type = "sigmoid", name = sprintf("t%d_f", t))
    cand <- mx.symbol.Activation(sl[[3]], act_type = "tanh", name = sprintf("t%d_g", t))
    out.gate <- mx.symbol.Activation(sl[[4]], act_type = "sigmoid", name = sprintf("t%d_o", t))
    ig <- mx.symbol.elemwise_mul(in.gate, cand, name = sprintf("t%d_ig", t))
    c <- if (is.null(c)) ig else
      mx.symbol.elemwise_add(mx.symbol.elemwise_mul(forget, c, name = sprintf("t%d_fc", t)), ig,
                             name = sprintf("t%d_c", t))
    h <- mx.symbol.elemwise_mul(out.gate, mx.symbol.Activation(c, act_type = "tanh", name = sprintf("t%d_tc", t)),
                                name = sprintf("t%d_h", t))
  }
  x <- mx.symbol.FullyConnected(h, num_hidden = num.classes, name = "fc")
  mx.symbol.SoftmaxOutput(x, name = "softmax")
}

# ---- data ---------------------------------------------------------------------

bench.data <- function(n.train = NULL, n.test = NULL) {
  list(train = mx.data.fashion.mnist(subset = "train", n = n.train),
       test = mx.data.fashion.mnist(subset = "test", n = n.test))
}

# ---- process figures ------------------------------------------------------------

# kB figures from /proc/self/status (VmHWM: peak resident set; VmRSS: now).
bench.status.kb <- function(field) {
  s <- readLines("/proc/self/status")
  l <- s[startsWith(s, paste0(field, ":"))]
  if (!length(l)) return(NA_real_)
  as.numeric(gsub("[^0-9]", "", l))
}

bench.loadavg <- function() as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1:3])

bench.elapsed <- function() proc.time()[["elapsed"]]

# Key=value command-line arguments with defaults.
bench.args <- function(args, defaults) {
  out <- defaults
  for (a in args) {
    kv <- strsplit(a, "=", fixed = TRUE)[[1]]
    if (length(kv) != 2) stop("arguments are key=value, got '", a, "'")
    if (!kv[1] %in% names(defaults)) stop("unknown argument '", kv[1], "'")
    d <- defaults[[kv[1]]]
    out[[kv[1]]] <- if (is.numeric(d)) as.numeric(kv[2]) else kv[2]
  }
  out
}

# The one line the drivers parse.
bench.emit <- function(x) {
  cat("RESULT ", jsonlite::toJSON(x, auto_unbox = TRUE, digits = NA, null = "null"), "\n", sep = "")
}
