# The MXNet R training workflow: FeedForward.create, predict, checkpoints.
# The loop is R code over one .Call per step (copy in, forward, backward,
# update), so callbacks, metrics and interrupts stay in R.

#' Initialise the parameters of a symbol
#'
#' @param symbol An `MXSymbol`.
#' @param input.shape R dims of the data input, or a named list of input dims.
#' @param output.shape R dims of the label, a named list, or `NULL`.
#' @param initializer An initializer such as [mx.init.uniform()].
#' @param ctx The device of the parameters.
#' @return `list(arg.params, aux.params)`, named lists of NDArrays.
#' @export
mx.model.init.params <- function(symbol, input.shape, output.shape, initializer, ctx = mx.cpu()) {
  if (!is.list(input.shape)) input.shape <- list(data = input.shape)
  if (!is.null(output.shape) && !is.list(output.shape)) output.shape <- list(label = output.shape)
  shapes <- c(input.shape, output.shape)
  shapes <- shapes[names(shapes) %in% c(arguments(symbol), symbol$auxiliary.states)]
  inferred <- do.call(mx.symbol.infer.shape, c(list(symbol), shapes))
  if (is.null(inferred)) stop("the input shapes do not determine every parameter shape", call. = FALSE)
  skip <- c(names(input.shape), names(output.shape))
  arg <- inferred$arg.shapes[setdiff(names(inferred$arg.shapes), skip)]
  arg <- arg[!grepl("label$", names(arg))]
  arg.params <- mx.init.create(initializer, arg, ctx, skip.unknown = FALSE)
  aux.params <- mx.init.create(initializer, inferred$aux.shapes, ctx, skip.unknown = FALSE)
  list(arg.params = arg.params, aux.params = aux.params)
}

# Matrices: which layout?  "colmajor" is features x examples (MXNet R's
# native layout), "rowmajor" is examples x features (R's usual data frame
# layout), which is transposed.
mx.model.select.layout.train <- function(X, y) {
  if (is.null(y)) stop("y is needed when X is an array", call. = FALSE)
  d <- dim(X)
  ny <- if (is.null(dim(y))) length(y) else utils::tail(dim(y), 1)
  if (length(d) != 2) return("colmajor")
  if (d[[2]] == ny && d[[1]] != ny) return("colmajor")
  if (d[[1]] == ny && d[[2]] != ny) {
    message("Auto detect layout of input matrix, use rowmajor..")
    return("rowmajor")
  }
  if (d[[1]] == ny && d[[2]] == ny)
    stop("Cannot auto select array.layout, please specify this parameter", call. = FALSE)
  stop("the number of examples in X (", d[[2]], " columns or ", d[[1]], " rows) does not match y (", ny, ")",
       call. = FALSE)
}

mx.internal.as.array.iter <- function(X, y, array.layout, batch.size, shuffle) {
  if (is.data.frame(X)) X <- data.matrix(X)
  if (!is.numeric(X) && !is.logical(X)) stop("X must be a numeric array, matrix or an iterator", call. = FALSE)
  if (is.null(dim(X))) dim(X) <- c(1, length(X))
  if (is.matrix(X)) {
    if (array.layout == "auto") array.layout <- mx.model.select.layout.train(X, y)
    if (array.layout == "rowmajor") X <- t(X)
  }
  if (is.null(y)) stop("y is needed when X is an array", call. = FALSE)
  if (is.factor(y)) y <- as.integer(y) - 1L
  mx.io.arrayiter(X, y, batch.size = batch.size, shuffle = shuffle)
}

mx.internal.iter.first <- function(iter) {
  iter$reset()
  if (!iter$iter.next()) stop("the data iterator gives no batch", call. = FALSE)
  v <- iter$value()
  iter$reset()
  v
}

#' Train a feed-forward model
#'
#' MXNet R's training entry point: binds `symbol`, initialises the
#' parameters, and runs `num.round` epochs of minibatch training, with
#' metrics, evaluation, callbacks and a progress display.
#'
#' @param symbol An `MXSymbol` ending in a loss (e.g. `SoftmaxOutput`).
#' @param X Training data: an R array/matrix (the batch is the last R
#'   dim; see `array.layout`) or a data iterator.
#' @param y Labels when `X` is an array.
#' @param ctx A context or a list of contexts (the batch is split across
#'   them and their gradients are summed).
#' @param begin.round,num.round First and last epoch numbers.
#' @param optimizer A name for [mx.opt.create()] or an optimizer object.
#' @param initializer Used for parameters not given in `arg.params`.
#' @param eval.data Validation data: an iterator or `list(data =, label =)`.
#' @param eval.metric A metric such as [mx.metric.accuracy].
#' @param epoch.end.callback,batch.end.callback Functions
#'   `function(iteration, nbatch, env, verbose)`; an epoch callback
#'   returning `FALSE` stops training.
#' @param array.batch.size Batch size for array input.
#' @param array.layout `"auto"`, `"colmajor"` (features x examples) or
#'   `"rowmajor"` (examples x features) for matrix input.
#' @param kvstore Accepted for compatibility; gradients of several devices
#'   are summed locally.
#' @param verbose Print progress and metrics.
#' @param arg.params,aux.params Initial parameters (named lists of
#'   NDArrays); they replace the initialised ones of the same name.
#' @param input.names,output.names Names of the data and label inputs
#'   (default `"data"` and the arguments ending in `label`).
#' @param fixed.param Names of parameters that are not trained; they are
#'   kept in the returned model.
#' @param allow.extra.params Allow `arg.params` the symbol does not use.
#' @param metric_cpu Accepted for compatibility (metrics run on the CPU).
#' @param ... Passed to [mx.opt.create()] (`learning.rate`, `momentum`,
#'   `wd`, ...).
#' @return An `MXFeedForwardModel`: `symbol`, `arg.params`, `aux.params`
#'   (on the CPU) and `history` (per-epoch metrics; see [plot.MXFeedForwardModel()]).
#' @export
mx.model.FeedForward.create <- function(symbol, X, y = NULL, ctx = NULL, begin.round = 1, num.round = 10,
                                        optimizer = "sgd", initializer = mx.init.uniform(0.01),
                                        eval.data = NULL, eval.metric = NULL, epoch.end.callback = NULL,
                                        batch.end.callback = NULL, array.batch.size = 128,
                                        array.layout = "auto", kvstore = "local", verbose = TRUE,
                                        arg.params = NULL, aux.params = NULL, input.names = NULL,
                                        output.names = NULL, fixed.param = NULL, allow.extra.params = FALSE,
                                        metric_cpu = TRUE, ...) {
  if (!is.mx.symbol(symbol)) stop("symbol must be an MXSymbol", call. = FALSE)
  if (!array.layout %in% c("auto", "colmajor", "rowmajor"))
    stop("array.layout must be \"auto\", \"colmajor\" or \"rowmajor\"", call. = FALSE)
  if (!is.numeric(num.round) || num.round < begin.round) stop("num.round must be >= begin.round", call. = FALSE)
  if (is.null(ctx)) ctx <- mx.ctx.default()
  ctxs <- if (is.mx.context(ctx)) list(ctx) else ctx
  if (!is.list(ctxs) || !length(ctxs) || !all(vapply(ctxs, is.mx.context, TRUE)))
    stop("ctx must be an MXContext or a list of them", call. = FALSE)
  for (c in ctxs) mx.internal.ctx(c)
  train.iter <- if (is.mx.dataiter(X)) X else
    mx.internal.as.array.iter(X, y, array.layout, array.batch.size, shuffle = TRUE)
  if (!is.null(eval.data) && !is.mx.dataiter(eval.data)) {
    if (!is.list(eval.data) || is.null(eval.data$data) || is.null(eval.data$label))
      stop("eval.data must be an iterator or list(data = , label = )", call. = FALSE)
    eval.data <- mx.internal.as.array.iter(eval.data$data, eval.data$label, array.layout,
                                           array.batch.size, shuffle = FALSE)
  }
  first <- mx.internal.iter.first(train.iter)
  args <- arguments(symbol)
  if (is.null(input.names)) input.names <- "data"
  if (is.null(output.names)) output.names <- args[grepl("label$", args)]
  feed <- mx.internal.feed.map(first, input.names, output.names)
  batch.size <- utils::tail(dim(first[[feed[[1]]]]), 1)
  shapes <- lapply(feed, function(k) dim(first[[k]]))
  # Parameters: initialise, then take the given ones.
  params <- mx.model.init.params(symbol, shapes[input.names], shapes[output.names], initializer, mx.cpu())
  if (!is.null(arg.params)) {
    extra <- setdiff(names(arg.params), args)
    if (length(extra) && !allow.extra.params)
      stop("arg.params has parameters the symbol does not use: ", paste(extra, collapse = ", "),
           " (set allow.extra.params = TRUE)", call. = FALSE)
    keep <- intersect(names(arg.params), names(params$arg.params))
    params$arg.params[keep] <- arg.params[keep]
  }
  if (!is.null(aux.params)) {
    keep <- intersect(names(aux.params), names(params$aux.params))
    params$aux.params[keep] <- aux.params[keep]
  }
  if (is.character(optimizer)) {
    opt.args <- list(...)
    if (is.null(opt.args$rescale.grad)) opt.args$rescale.grad <- 1 / batch.size
    optimizer <- do.call(mx.opt.create, c(list(optimizer), opt.args))
  } else if (length(list(...))) {
    warning("arguments in ... are ignored when optimizer is an object", call. = FALSE)
  }
  trainer <- mx.internal.trainer(symbol, ctxs, shapes, input.names, output.names, fixed.param,
                                 params, optimizer)
  env <- mx.internal.fit(trainer, train.iter, eval.data, eval.metric, begin.round, num.round,
                         epoch.end.callback, batch.end.callback, verbose, batch.size, input.names,
                         output.names, feed)
  env$model
}

# Which field of the iterator's value() feeds each input: the field of the
# same name, else "data" for a single data input and "label" for a single
# label (so an iterator's label feeds softmax_label).
mx.internal.feed.map <- function(first, input.names, output.names) {
  pick <- function(n, fallback) {
    if (!is.null(first[[n]])) return(n)
    if (!is.null(fallback) && !is.null(first[[fallback]])) return(fallback)
    stop("the iterator gives no '", n, "' (its value() has ", paste(names(first), collapse = ", "), ")",
         call. = FALSE)
  }
  ins <- vapply(input.names, function(n) pick(n, if (length(input.names) == 1) "data"), "")
  outs <- vapply(output.names, function(n) pick(n, if (length(output.names) == 1) "label"), "")
  stats::setNames(c(ins, outs), c(input.names, output.names))
}

# Binds one executor per device (the batch split along the last dim) and
# makes the updater over the first device's weights.
mx.internal.trainer <- function(symbol, ctxs, shapes, input.names, output.names, fixed.param, params,
                                optimizer) {
  nd <- length(ctxs)
  batch <- utils::tail(shapes[[1]], 1)
  if (batch < nd) stop("the batch is smaller than the number of devices", call. = FALSE)
  sizes <- rep(batch %/% nd, nd) + c(rep(1, batch %% nd), rep(0, nd - batch %% nd))
  args <- arguments(symbol)
  req <- ifelse(args %in% c(input.names, output.names, fixed.param), "null", "write")
  names(req) <- args
  execs <- lapply(seq_len(nd), function(i) {
    sh <- lapply(shapes, function(s) c(s[-length(s)], sizes[[i]]))
    ex <- do.call(mx.simple.bind, c(list(symbol, ctxs[[i]], grad.req = as.list(req)), sh))
    mx.exec.update.arg.arrays(ex, params$arg.params, match.name = TRUE)
    mx.exec.update.aux.arrays(ex, params$aux.params, match.name = TRUE)
    ex
  })
  trained <- args[req == "write"]
  weights <- execs[[1]]$ref.arg.arrays[trained]
  updater <- mx.opt.get.updater(optimizer, weights, ctxs[[1]])
  list(symbol = symbol, execs = execs, sizes = sizes, trained = trained, updater = updater,
       ctxs = ctxs, fixed.param = fixed.param)
}

# Copies one batch in, runs forward and backward on every device, sums the
# gradients into the first device and updates its weights in place, then
# copies them to the other devices.
mx.internal.train.step <- function(tr, batch, feed) {
  execs <- tr$execs
  nd <- length(execs)
  start <- 0
  for (i in seq_len(nd)) {
    ex <- execs[[i]]
    for (n in names(feed)) {
      src <- batch[[feed[[n]]]]
      if (nd > 1) src <- mx.internal.slice.last(src, start, start + tr$sizes[[i]])
      .Call(C_nd_copy_into, ex$ref.arg.arrays[[n]], src)
    }
    start <- start + tr$sizes[[i]]
    .Call(C_exec_forward, ex$handle, TRUE)
    .Call(C_exec_backward, ex$handle, list())
  }
  w <- execs[[1]]$ref.arg.arrays[tr$trained]
  g <- execs[[1]]$ref.grad.arrays[tr$trained]
  if (nd > 1) {
    for (i in 2:nd) for (n in tr$trained)
      .Call(C_nd_copy_into, g[[n]], g[[n]] + mx.nd.copyto(execs[[i]]$ref.grad.arrays[[n]], tr$ctxs[[1]]))
  }
  tr$updater(w, g)
  if (nd > 1) for (i in 2:nd) for (n in tr$trained)
    .Call(C_nd_copy_into, execs[[i]]$ref.arg.arrays[[n]], mx.nd.copyto(w[[n]], tr$ctxs[[i]]))
  invisible(NULL)
}

# How the training loop feeds a built-in iterator to a single executor:
# each batch written straight into the executor's data and label arrays (no
# intermediate arrays, no R code between the engine calls); NULL when the
# loop must go through value() (custom iterators, several devices, other
# inputs).  Decided once per fit.
mx.internal.direct.feed <- function(tr, iter, feed) {
  if (length(tr$execs) != 1 || length(feed) > 2 || !identical(unname(feed[[1]]), "data") ||
      (length(feed) == 2 && !identical(unname(feed[[2]]), "label")) || !mx.io.internal.native(iter))
    return(NULL)
  ex <- tr$execs[[1]]
  args <- ex$ref.arg.arrays
  list(iter = iter$handle, exec = ex$handle, data = args[[names(feed)[[1]]]],
       label = if (length(feed) == 2) args[[names(feed)[[2]]]] else NULL,
       weights = args[tr$trained], grads = ex$ref.grad.arrays[tr$trained])
}

# One training batch from the iterator; returns the batch's label array.
mx.internal.train.batch <- function(tr, iter, feed, label.name, direct = NULL) {
  if (!is.null(direct)) {
    .Call(C_io_value_into, direct$iter, direct$data, direct$label)
    .Call(C_exec_forward, direct$exec, TRUE)
    .Call(C_exec_backward, direct$exec, list())
    tr$updater(direct$weights, direct$grads)
    return(direct$label)
  }
  batch <- iter$value()
  mx.internal.train.step(tr, batch, feed)
  if (is.null(label.name)) NULL else batch[[label.name]]
}

mx.internal.slice.last <- function(nd, begin, end) {
  mx.nd.slice.axis(nd, axis = 0, begin = begin, end = end)
}

mx.internal.forward.eval <- function(tr, batch, feed) {
  ex <- tr$execs[[1]]
  for (n in names(feed)) .Call(C_nd_copy_into, ex$ref.arg.arrays[[n]], batch[[feed[[n]]]])
  .Call(C_exec_forward, ex$handle, FALSE)
  ex$ref.outputs
}

# The model as it stands: parameters copied to the CPU (fixed ones kept).
mx.internal.snapshot <- function(tr, history = NULL) {
  ex <- tr$execs[[1]]
  keep <- setdiff(names(ex$ref.arg.arrays), tr$skip)
  arg.params <- lapply(ex$ref.arg.arrays[keep], function(a) mx.nd.copyto(a, mx.cpu()))
  aux.params <- lapply(ex$ref.aux.arrays, function(a) mx.nd.copyto(a, mx.cpu()))
  structure(list(symbol = tr$symbol, arg.params = arg.params, aux.params = aux.params, history = history),
            class = "MXFeedForwardModel")
}

mx.internal.metric.value <- function(metric, state) {
  if (is.null(metric) || is.null(state)) return(NULL)
  metric$get(state)
}

mx.internal.fit <- function(tr, train.iter, eval.iter, metric, begin.round, num.round,
                            epoch.end.callback, batch.end.callback, verbose, batch.size,
                            input.names, output.names, feed) {
  env <- new.env()
  tr$skip <- c(input.names, output.names)
  label.name <- if (length(output.names)) feed[[output.names[[1]]]] else NULL
  in.feed <- feed[input.names]
  direct <- mx.internal.direct.feed(tr, train.iter, feed)
  history <- data.frame(epoch = integer(), train = numeric(), eval = numeric(), seconds = numeric())
  metric.name <- NA_character_
  env$model <- mx.internal.snapshot(tr, history)
  show.bar <- isTRUE(verbose) && !isTRUE(getOption("knitr.in.progress")) && (interactive() || isatty(stdout()))
  stop.now <- FALSE
  iteration <- begin.round
  nbatch <- 0
  # Ctrl-C anywhere in training (a batch, an evaluation, a callback) ends it
  # with the model of the last completed batch; a batch itself is applied
  # whole or not at all (suspendInterrupts), so no half-updated weights.
  res <- tryCatch({
    for (iteration in begin.round:num.round) {
      t0 <- proc.time()[["elapsed"]]
      train.iter$reset()
      state <- if (!is.null(metric)) metric$init() else NULL
      nbatch <- 0
      last.draw <- 0
      while (if (is.null(direct)) train.iter$iter.next() else .Call(C_io_next, direct$iter)) {
        label <- suspendInterrupts(mx.internal.train.batch(tr, train.iter, feed, label.name, direct))
        nbatch <- nbatch + 1
        if (!is.null(metric) && !is.null(label))
          state <- metric$update(label, tr$execs[[1]]$ref.outputs[[1]], state)
        env$metric <- metric
        env$train.metric <- state
        env$end.of.epoch <- FALSE
        if (!is.null(batch.end.callback)) {
          cb <- mx.internal.call.callbacks(batch.end.callback, iteration, nbatch, env, verbose)
          if (identical(cb, FALSE)) { stop.now <- TRUE; break }
        }
        if (show.bar && proc.time()[["elapsed"]] - last.draw > 0.25) {
          last.draw <- proc.time()[["elapsed"]]
          mx.internal.progress(iteration, nbatch, batch.size, last.draw - t0, metric, state)
        }
      }
      train.value <- mx.internal.metric.value(metric, state)
      if (show.bar) cat("\r\033[K")
      if (!is.null(train.value)) {
        metric.name <- train.value$name
        if (isTRUE(verbose)) message(sprintf("[%d] Train-%s=%s", iteration, train.value$name, format(train.value$value)))
      }
      eval.value <- NULL
      if (!is.null(eval.iter) && !is.null(metric)) {
        eval.iter$reset()
        es <- metric$init()
        while (eval.iter$iter.next()) {
          b <- eval.iter$value()
          out <- mx.internal.forward.eval(tr, b, in.feed)
          es <- metric$update(b[[label.name]], out[[1]], es)
        }
        eval.value <- metric$get(es)
        env$eval.metric <- es
        if (isTRUE(verbose)) message(sprintf("[%d] Validation-%s=%s", iteration, eval.value$name, format(eval.value$value)))
      }
      secs <- proc.time()[["elapsed"]] - t0
      if (show.bar) message(sprintf("[%d] %d batches in %.1f s (%.0f samples/s)", iteration, nbatch, secs,
                                    nbatch * batch.size / max(secs, 1e-9)))
      history[nrow(history) + 1, ] <- list(iteration, if (is.null(train.value)) NA else train.value$value,
                                           if (is.null(eval.value)) NA else eval.value$value, secs)
      attr(history, "metric") <- metric.name
      env$model <- mx.internal.snapshot(tr, history)
      env$end.of.epoch <- TRUE
      if (stop.now) break
      if (!is.null(epoch.end.callback)) {
        cb <- mx.internal.call.callbacks(epoch.end.callback, iteration, 0, env, verbose)
        if (identical(cb, FALSE)) break
      }
    }
    "done"
  }, interrupt = function(e) "interrupted")
  interrupted <- identical(res, "interrupted")
  if (interrupted) {
    if (show.bar) cat("\n")
    message(sprintf("Training interrupted in epoch %d after %d batches; the model holds the parameters of the last completed batch.",
                    iteration, nbatch))
  }
  if (interrupted) env$model <- mx.internal.snapshot(tr, history)
  env
}

mx.internal.call.callbacks <- function(cb, iteration, nbatch, env, verbose) {
  if (is.function(cb)) return(cb(iteration, nbatch, env, verbose))
  res <- TRUE
  for (f in cb) if (identical(f(iteration, nbatch, env, verbose), FALSE)) res <- FALSE
  res
}

mx.internal.progress <- function(iteration, nbatch, batch.size, secs, metric, state) {
  v <- mx.internal.metric.value(metric, state)
  m <- if (is.null(v)) "" else sprintf("  %s=%.4f", v$name, v$value)
  cat(sprintf("\r[%d] %5d batches  %8.0f samples/s%s", iteration, nbatch,
              nbatch * batch.size / max(secs, 1e-9), m))
  utils::flush.console()
}

#' Predict with a feed-forward model
#'
#' @param object An `MXFeedForwardModel`.
#' @param X An R array/matrix (batch last; see `array.layout`) or an iterator.
#' @param ctx The device.
#' @param array.batch.size Batch size for array input.
#' @param array.layout `"auto"`, `"colmajor"` or `"rowmajor"` for matrices.
#' @param allow.extra.params Ignore parameters the symbol does not use.
#' @param ... Ignored.
#' @return An R array of the first output, one column (last dim) per example.
#' @details With an R array or a built-in iterator the whole loop runs in
#'   the engine: each batch is written straight into the bound executor and
#'   each output straight into the result. The inference executor is kept
#'   for the next call with the same symbol, device and batch shape (the
#'   parameters are copied in on every call), so repeated predictions skip
#'   binding; `options(symnet.predict.cache = FALSE)` binds afresh each time
#'   and keeps no executor (and its memory) between calls.
#' @export
predict.MXFeedForwardModel <- function(object, X, ctx = NULL, array.batch.size = 128, array.layout = "auto",
                                       allow.extra.params = FALSE, ...) {
  model <- object
  if (is.serialized(model)) model <- mx.unserialize(model)
  if (is.null(ctx)) ctx <- mx.ctx.default()
  ctx <- mx.internal.ctx(ctx)
  if (!is.mx.dataiter(X)) {
    if (is.data.frame(X)) X <- data.matrix(X)
    if (!is.numeric(X) && !is.logical(X)) stop("X must be a numeric array, matrix or an iterator", call. = FALSE)
    if (is.null(dim(X))) dim(X) <- c(length(X), 1)
    if (is.matrix(X)) {
      if (array.layout == "auto") array.layout <- mx.model.select.layout.predict(X, model)
      if (array.layout == "rowmajor") X <- t(X)
    }
    n <- utils::tail(dim(X), 1)
    X <- mx.io.arrayiter(X, rep(0, n), batch.size = min(n, array.batch.size), shuffle = FALSE)
  }
  native <- mx.io.internal.native(X)
  # a built-in iterator knows its batch shape without making a batch
  shape <- if (native) .Call(C_io_info, X$handle)$data.dim else dim(mx.internal.iter.first(X)$data)
  args <- arguments(model$symbol)
  extra <- setdiff(names(model$arg.params), args)
  if (length(extra) && !allow.extra.params)
    stop("the model has parameters its symbol does not use: ", paste(extra, collapse = ", "),
         " (set allow.extra.params = TRUE)", call. = FALSE)
  missing <- setdiff(args[!grepl("(data|label)$", args)], names(model$arg.params))
  if (length(missing)) stop("the model lacks parameters: ", paste(missing, collapse = ", "), call. = FALSE)
  ex <- mx.internal.predict.executor(model$symbol, ctx, shape)
  mx.exec.update.arg.arrays(ex, model$arg.params[intersect(names(model$arg.params), args)], match.name = TRUE)
  mx.exec.update.aux.arrays(ex, model$aux.params, match.name = TRUE)
  data <- ex$ref.arg.arrays$data
  if (native) {
    # Built-in iterators: the whole loop runs in C, each batch written
    # straight into the executor and each output straight into the result.
    return(.Call(C_exec_predict, ex$handle, X$handle, data, 0L))
  }
  outs <- list()
  X$reset()
  while (X$iter.next()) {
    b <- X$value()
    .Call(C_nd_copy_into, data, b$data)
    .Call(C_exec_forward, ex$handle, FALSE)
    o <- as.array(ex$ref.outputs[[1]])
    pad <- X$num.pad()
    if (pad > 0) {
      d <- dim(o)
      keep <- d[[length(d)]] - pad
      o <- array(o[seq_len(prod(d[-length(d)]) * keep)], c(d[-length(d)], keep))
    }
    outs[[length(outs) + 1]] <- o
  }
  mx.internal.bind.last(outs)
}

# The inference executor predict() uses: bound once and kept for the next
# call with the same symbol, device and data shape (the parameters are
# copied in on every call), so repeated predictions skip binding and
# planning.  One executor is kept; options(symnet.predict.cache = FALSE)
# binds afresh each time and keeps nothing.
mx.internal.predict.cache <- new.env(parent = emptyenv())

mx.internal.predict.executor <- function(symbol, ctx, shape) {
  keep <- !isFALSE(getOption("symnet.predict.cache"))
  e <- mx.internal.predict.cache$entry
  if (keep && !is.null(e) && identical(e$symbol, symbol) && identical(e$ctx, ctx) &&
      identical(e$shape, shape))
    return(e$ex)
  rm(list = ls(mx.internal.predict.cache), envir = mx.internal.predict.cache)
  ex <- mx.simple.bind(symbol, ctx, grad.req = "null", data = shape)
  if (keep) mx.internal.predict.cache$entry <- list(symbol = symbol, ctx = ctx, shape = shape, ex = ex)
  ex
}

# Concatenates arrays along their last dim.
mx.internal.bind.last <- function(arrays) {
  d <- dim(arrays[[1]])
  lead <- d[-length(d)]
  n <- sum(vapply(arrays, function(a) utils::tail(dim(a), 1), 0))
  array(unlist(arrays, use.names = FALSE), c(lead, n))
}

mx.model.select.layout.predict <- function(X, model) {
  d <- dim(X)
  # A layout fits when shape inference succeeds and gives the shapes of the
  # model's parameters.
  ok <- function(shape) {
    inf <- tryCatch(mx.symbol.infer.shape(model$symbol, data = shape), error = function(e) NULL)
    if (is.null(inf)) return(FALSE)
    for (n in intersect(names(model$arg.params), names(inf$arg.shapes)))
      if (!identical(as.integer(inf$arg.shapes[[n]]), as.integer(dim(model$arg.params[[n]])))) return(FALSE)
    TRUE
  }
  col <- ok(c(d[[1]], d[[2]]))
  row <- ok(c(d[[2]], d[[1]]))
  if (col && !row) return("colmajor")
  if (row && !col) {
    message("Auto detect layout of input matrix, use rowmajor..")
    return("rowmajor")
  }
  if (col && row) stop("Cannot auto select array.layout, please specify this parameter", call. = FALSE)
  stop("X does not fit the model's data input in either layout", call. = FALSE)
}

#' Save and load checkpoints
#'
#' `mx.model.save` writes `prefix-symbol.json` and `prefix-%04d.params`
#' (arrays keyed `arg:<name>` and `aux:<name>`), the files MXNet's
#' `save_checkpoint` writes, so checkpoints move between MXNet and symnet.
#' Writes are atomic.
#'
#' @param model An `MXFeedForwardModel`.
#' @param prefix File name prefix.
#' @param iteration The epoch number in the file name.
#' @return `mx.model.load` returns an `MXFeedForwardModel`.
#' @export
mx.model.save <- function(model, prefix, iteration) {
  if (is.serialized(model)) model <- mx.unserialize(model)
  if (!inherits(model, "MXFeedForwardModel")) stop("model must be an MXFeedForwardModel", call. = FALSE)
  mx.symbol.save(model$symbol, paste0(prefix, "-symbol.json"))
  params <- c(model$arg.params, model$aux.params)
  names(params) <- c(sprintf("arg:%s", names(model$arg.params)), sprintf("aux:%s", names(model$aux.params)))
  mx.nd.save(params, sprintf("%s-%04d.params", prefix, as.integer(iteration)))
  invisible(NULL)
}

#' @rdname mx.model.save
#' @export
mx.model.load <- function(prefix, iteration) {
  symbol <- mx.symbol.load(paste0(prefix, "-symbol.json"))
  f <- sprintf("%s-%04d.params", prefix, as.integer(iteration))
  params <- mx.nd.load(f)
  nm <- names(params)
  if (is.null(nm) || !all(grepl("^(arg|aux):", nm)))
    stop("'", f, "' is not a checkpoint: its arrays must be named arg:<name> or aux:<name>", call. = FALSE)
  arg <- params[startsWith(nm, "arg:")]
  aux <- params[startsWith(nm, "aux:")]
  names(arg) <- substring(names(arg), 5)
  names(aux) <- substring(names(aux), 5)
  structure(list(symbol = symbol, arg.params = arg, aux.params = aux), class = "MXFeedForwardModel")
}

#' Serialize a model for saveRDS
#'
#' Handles (symbols, arrays) do not survive `saveRDS`; `mx.serialize`
#' turns a model into plain R data (the symbol JSON and R arrays) and
#' `mx.unserialize` turns it back. `predict` unserializes by itself.
#'
#' @param model An `MXFeedForwardModel`.
#' @return The converted model.
#' @export
mx.serialize <- function(model) {
  if (is.serialized(model)) return(model)
  structure(list(symbol_json = model$symbol$as.json(),
                 arg.params = lapply(model$arg.params, as.array),
                 aux.params = lapply(model$aux.params, as.array),
                 history = model$history, is.serialized = TRUE),
            class = "MXFeedForwardModel")
}

#' @rdname mx.serialize
#' @export
mx.unserialize <- function(model) {
  if (!is.serialized(model)) return(model)
  structure(list(symbol = mx.symbol.load.json(model$symbol_json),
                 arg.params = lapply(model$arg.params, mx.nd.array),
                 aux.params = lapply(model$aux.params, mx.nd.array),
                 history = model$history),
            class = "MXFeedForwardModel")
}

#' @rdname mx.serialize
#' @export
is.serialized <- function(model) isTRUE(model$is.serialized)

#' @export
print.MXFeedForwardModel <- function(x, ...) {
  if (is.serialized(x)) {
    cat("<MXFeedForwardModel, serialized>\n")
    return(invisible(x))
  }
  n <- sum(vapply(x$arg.params, length, 0))
  cat("MXFeedForwardModel\n")
  cat("  outputs:    ", paste(outputs(x$symbol), collapse = ", "), "\n", sep = "")
  cat("  parameters: ", length(x$arg.params), " arrays, ", format(n, big.mark = ","), " values\n", sep = "")
  if (length(x$aux.params)) cat("  aux states: ", length(x$aux.params), " arrays\n", sep = "")
  h <- x$history
  if (!is.null(h) && nrow(h)) {
    last <- h[nrow(h), ]
    cat(sprintf("  trained:    %d epochs; last train %s %s%s\n", nrow(h), attr(h, "metric"),
                format(last$train, digits = 4),
                if (!is.na(last$eval)) paste0(", validation ", format(last$eval, digits = 4)) else ""))
  }
  invisible(x)
}

#' @export
summary.MXFeedForwardModel <- function(object, ...) {
  m <- if (is.serialized(object)) mx.unserialize(object) else object
  p <- data.frame(name = names(m$arg.params),
                  shape = vapply(m$arg.params, function(a) paste(dim(a), collapse = "x"), ""),
                  size = vapply(m$arg.params, length, 0), row.names = NULL)
  structure(list(params = p, history = m$history, outputs = outputs(m$symbol)), class = "summary.MXFeedForwardModel")
}

#' @export
print.summary.MXFeedForwardModel <- function(x, ...) {
  cat("Outputs:", paste(x$outputs, collapse = ", "), "\n\nParameters:\n")
  print(x$params, row.names = FALSE)
  cat("Total:", format(sum(x$params$size), big.mark = ","), "values\n")
  if (!is.null(x$history) && nrow(x$history)) {
    cat("\nHistory:\n")
    print(x$history, row.names = FALSE)
  }
  invisible(x)
}

#' Plot a model's learning curves
#'
#' @param x An `MXFeedForwardModel` trained by [mx.model.FeedForward.create()].
#' @param ... Passed to [graphics::plot()].
#' @return `x`, invisibly.
#' @export
plot.MXFeedForwardModel <- function(x, ...) {
  h <- x$history
  if (is.null(h) || !nrow(h)) stop("this model has no training history", call. = FALSE)
  yl <- range(c(h$train, h$eval), na.rm = TRUE)
  graphics::plot(h$epoch, h$train, type = "b", pch = 19, ylim = yl, xlab = "epoch",
                 ylab = attr(h, "metric"), ...)
  if (any(!is.na(h$eval))) graphics::lines(h$epoch, h$eval, type = "b", pch = 17, lty = 2, col = "firebrick")
  graphics::legend("bottomright", legend = c("train", "validation")[c(TRUE, any(!is.na(h$eval)))],
                   pch = c(19, 17)[c(TRUE, any(!is.na(h$eval)))], lty = c(1, 2)[c(TRUE, any(!is.na(h$eval)))],
                   col = c("black", "firebrick")[c(TRUE, any(!is.na(h$eval)))], bty = "n")
  invisible(x)
}

#' A multi-layer perceptron in one call
#'
#' @param data,label Training data and labels.
#' @param hidden_node Sizes of the hidden layers.
#' @param out_node Size of the output layer.
#' @param dropout Dropout probability after each hidden layer, or `NULL`.
#' @param activation Activation of the hidden layers.
#' @param out_activation `"softmax"`, `"rmse"` or `"logistic"`.
#' @param ctx The device.
#' @param ... Passed to [mx.model.FeedForward.create()].
#' @return An `MXFeedForwardModel`.
#' @export
mx.mlp <- function(data, label, hidden_node = 1, out_node, dropout = NULL, activation = "tanh",
                   out_activation = "softmax", ctx = mx.ctx.default(), ...) {
  m <- length(hidden_node)
  if (!is.null(dropout) && (!is.numeric(dropout) || dropout < 0 || dropout >= 1))
    stop("dropout must be in [0, 1)", call. = FALSE)
  act <- rep(activation, length.out = m)
  net <- mx.symbol.Variable("data")
  for (i in seq_len(m)) {
    net <- mx.symbol.FullyConnected(net, num_hidden = hidden_node[[i]], name = paste0("fc", i))
    net <- mx.symbol.Activation(net, act_type = act[[i]], name = paste0(act[[i]], i))
    if (!is.null(dropout)) net <- mx.symbol.Dropout(net, p = dropout)
  }
  net <- mx.symbol.FullyConnected(net, num_hidden = out_node, name = paste0("fc", m + 1))
  out <- switch(out_activation,
                softmax = mx.symbol.SoftmaxOutput(net, name = "sm"),
                rmse = mx.symbol.LinearRegressionOutput(net, name = "lro"),
                logistic = mx.symbol.LogisticRegressionOutput(net, name = "lro"),
                stop("out_activation must be \"softmax\", \"rmse\" or \"logistic\"", call. = FALSE))
  mx.model.FeedForward.create(out, X = data, y = label, ctx = ctx, ...)
}
