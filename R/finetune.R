# Reusing trained networks: the activations of internal layers
# (mx.model.features) and fine-tuning in one call (mx.model.finetune).
#
# Both cut the model's symbol at an internal output (internals(symbol)),
# the way MXNet R users did it by hand (see the CatsDogsFinetune and
# classifyRealImageWithPretrainedModel vignettes), and work with any
# MXFeedForwardModel, including checkpoints written by MXNet.
#
# Fine-tuning keeps frozen BatchNorm layers in inference mode: their
# moving statistics are used and not updated (use_global_stats), so frozen
# parts of the network are bit-for-bit unchanged after training.  The flag
# is set on a copy of the symbol made through its JSON (a small JSON reader
# and writer live at the end of this file); the returned model has the
# symbol without it.

# ---- layers -----------------------------------------------------------

mx.internal.ft.model <- function(model) {
  if (is.serialized(model)) model <- mx.unserialize(model)
  if (!inherits(model, "MXFeedForwardModel") || !is.mx.symbol(model$symbol))
    stop("model must be an MXFeedForwardModel (see mx.model.load)", call. = FALSE)
  model
}

# The outputs of the ops of a symbol (internals without its variables).
mx.internal.ft.layer.outputs <- function(symbol, int = internals(symbol)) {
  setdiff(outputs(int), c(arguments(symbol), symbol$auxiliary.states))
}

mx.internal.ft.list <- function(x, max = 40) {
  if (length(x) <= max) return(paste(x, collapse = ", "))
  paste0(paste(x[seq_len(max)], collapse = ", "), ", ... and ", length(x) - max,
         " more (see outputs(internals(model$symbol)))")
}

# Full internal output names for the layer names given: an output name
# ("flatten0_output"), a node name ("flatten0", meaning its output), or a
# variable ("data").
mx.internal.ft.resolve <- function(symbol, layer, int = internals(symbol)) {
  if (!is.character(layer) || !length(layer) || anyNA(layer) || any(!nzchar(layer)))
    stop("layer must name internal outputs, e.g. \"flatten0_output\" or \"flatten0\"", call. = FALSE)
  outs <- outputs(int)
  vapply(layer, function(l) {
    if (l %in% outs) return(l)
    o <- paste0(l, "_output")
    if (o %in% outs) return(o)
    multi <- outs[startsWith(outs, o) & grepl("^[0-9]+$", substring(outs, nchar(o) + 1L))]
    if (length(multi))
      stop("layer '", l, "' has several outputs (", paste(multi, collapse = ", "), "); name one of them",
           call. = FALSE)
    stop("the network has no internal output named '", l, "'; its layer outputs are: ",
         mx.internal.ft.list(mx.internal.ft.layer.outputs(symbol, int)), call. = FALSE)
  }, "", USE.NAMES = FALSE)
}

# The symbol of the internal outputs `outs` (full names).
mx.internal.ft.cut <- function(int, outs) {
  idx <- match(outs, outputs(int))
  if (length(idx) == 1) return(int[[idx]])
  mx.symbol.Group(lapply(idx, function(i) int[[i]]))
}

# ---- features ---------------------------------------------------------

#' Activations of internal layers
#'
#' Runs the network of `model` up to one or more internal outputs and
#' returns their values for every example of `X`: the features a trained
#' network computes, for use by other models or for inspection. Works with
#' any `MXFeedForwardModel`, including one loaded from an MXNet checkpoint
#' with [mx.model.load()].
#'
#' A layer is named by its internal output (`"flatten0_output"`,
#' `"fc1_output"`) or by its node name (`"flatten0"`, `"fc1"`), which means
#' the node's output; `outputs(internals(model$symbol))` lists them, and a
#' wrong name gives an error that lists them too. The network runs in
#' inference mode (Dropout off, BatchNorm with its moving statistics), in
#' batches; the padding of the last batch is removed.
#'
#' @param model An `MXFeedForwardModel` (or a serialized one).
#' @param X An R array or matrix with the examples in the last dimension
#'   (see `array.layout` for matrices), or a data iterator.
#' @param layer The name of an internal output, or a character vector of
#'   several.
#' @param ctx The device (by default [mx.ctx.default()]).
#' @param array.batch.size Batch size for array input.
#' @param array.layout `"auto"`, `"colmajor"` (features x examples) or
#'   `"rowmajor"` (examples x features) for matrix input.
#' @return For one layer, an R array of its activations with the examples
#'   in the last dimension (e.g. `c(800, n)` after a Flatten,
#'   `c(12, 12, 20, n)` after a pooling layer). For several layers, a list
#'   of such arrays named by `layer`.
#' @seealso [mx.model.finetune()] to train a new head on top of a layer.
#' @examples
#' mx.set.seed(0)
#' data <- mx.symbol.Variable("data")
#' fc1 <- mx.symbol.FullyConnected(data, num_hidden = 8, name = "fc1")
#' act <- mx.symbol.Activation(fc1, act_type = "relu", name = "relu1")
#' fc2 <- mx.symbol.FullyConnected(act, num_hidden = 2, name = "fc2")
#' net <- mx.symbol.SoftmaxOutput(fc2, name = "sm")
#' x <- matrix(rnorm(4 * 50), 4, 50)
#' y <- as.integer(x[1, ] > 0)
#' model <- mx.model.FeedForward.create(net, X = x, y = y, num.round = 2,
#'                                      array.batch.size = 10, verbose = FALSE)
#' f <- mx.model.features(model, x, "relu1")
#' dim(f)
#' str(mx.model.features(model, x, c("fc1", "relu1_output")))
#' @export
mx.model.features <- function(model, X, layer, ctx = NULL, array.batch.size = 128, array.layout = "auto") {
  model <- mx.internal.ft.model(model)
  if (!array.layout %in% c("auto", "colmajor", "rowmajor"))
    stop("array.layout must be \"auto\", \"colmajor\" or \"rowmajor\"", call. = FALSE)
  ctx <- mx.internal.ctx(ctx)
  int <- internals(model$symbol)
  full <- mx.internal.ft.resolve(model$symbol, layer, int)
  uniq <- unique(full)
  sym <- mx.internal.ft.cut(int, uniq)
  iter <- mx.internal.ft.iter(X, list(symbol = sym, arg.params = model$arg.params), array.batch.size,
                              array.layout)
  args <- arguments(sym)
  input <- mx.internal.ft.input(args, names(model$arg.params), uniq)
  missing <- setdiff(args[!grepl("(data|label)$", args) & args != input], names(model$arg.params))
  if (length(missing)) stop("the model lacks parameters: ", paste(missing, collapse = ", "), call. = FALSE)
  params <- model$arg.params[intersect(names(model$arg.params), args)]
  aux <- model$aux.params[intersect(names(model$aux.params), sym$auxiliary.states)]
  ex <- NULL
  bind <- function(shape) {
    e <- do.call(mx.simple.bind, c(list(sym, ctx, grad.req = "null"), stats::setNames(list(shape), input)))
    mx.exec.update.arg.arrays(e, params, match.name = TRUE)
    mx.exec.update.aux.arrays(e, aux, match.name = TRUE)
    e
  }
  res <- vector("list", length(uniq))
  iter$reset()
  while (iter$iter.next()) {
    b <- iter$value()
    d <- mx.internal.as.nd(b$data)
    if (is.null(ex) || !identical(as.numeric(dim(d)), as.numeric(dim(ex$ref.arg.arrays[[input]]))))
      ex <- bind(dim(d))
    .Call(C_nd_copy_into, ex$ref.arg.arrays[[input]], d)
    .Call(C_exec_forward, ex$handle, FALSE)
    pad <- iter$num.pad()
    for (k in seq_along(uniq)) {
      o <- as.array(ex$ref.outputs[[k]])
      if (is.null(dim(o))) dim(o) <- length(o)
      if (pad > 0) {
        dd <- dim(o)
        keep <- dd[[length(dd)]] - pad
        o <- array(o[seq_len(prod(dd[-length(dd)]) * keep)], c(dd[-length(dd)], keep))
      }
      res[[k]] <- c(res[[k]], list(o))
    }
  }
  if (is.null(ex)) stop("X gives no batch", call. = FALSE)
  res <- lapply(res, mx.internal.bind.last)
  out <- res[match(full, uniq)]
  if (length(layer) == 1) return(out[[1]])
  stats::setNames(out, layer)
}

# The data input: "data", else the one argument that is neither a
# parameter of the model nor a label.
mx.internal.ft.input <- function(args, params, outs) {
  if ("data" %in% args) return("data")
  cand <- args[!args %in% params & !grepl("label$", args)]
  if (length(cand) == 1) return(cand)
  stop("cannot tell the data input of ", paste(outs, collapse = ", "), " among its arguments ",
       paste(args, collapse = ", "), call. = FALSE)
}

# An iterator over X (arrays get dummy labels), as predict() does.
mx.internal.ft.iter <- function(X, model, batch.size, layout) {
  if (is.mx.dataiter(X)) return(X)
  if (is.data.frame(X)) X <- data.matrix(X)
  if (!is.numeric(X) && !is.logical(X)) stop("X must be a numeric array, matrix or an iterator", call. = FALSE)
  if (is.null(dim(X))) dim(X) <- c(length(X), 1)
  if (is.matrix(X)) {
    if (layout == "auto") layout <- mx.model.select.layout.predict(X, model)
    if (layout == "rowmajor") X <- t(X)
  }
  n <- utils::tail(dim(X), 1)
  mx.io.arrayiter(X, rep(0, n), batch.size = min(n, batch.size), shuffle = FALSE)
}

# ---- fine-tuning ------------------------------------------------------

#' Fine-tune a trained network on new data
#'
#' Cuts the network of `model` at the internal output `layer`, puts a new
#' head on top, and trains it on `X`/`y` with
#' [mx.model.FeedForward.create()], starting from the trained parameters of
#' the kept part: transfer learning in one call. Only the parameters of the
#' new head are initialised (with `initializer`); with `freeze = TRUE` the
#' kept parameters are not trained at all, so only the head learns and the
#' network below `layer` serves as a fixed feature extractor.
#'
#' The default head is `FullyConnected(num_hidden = num.classes)`
#' (named `finetune_fc`) followed by `SoftmaxOutput` (`finetune_softmax`),
#' for classification into `num.classes` classes labelled 0 to
#' `num.classes - 1`. `head = function(x) ...` builds any other head on the
#' cut symbol `x`, e.g. a regression output or several layers; it must end
#' in a loss. Parameters it creates are new, even when their names were
#' used above the cut in the original network.
#'
#' `freeze` says which of the kept (pre-trained) parameters stay fixed:
#' `TRUE` all, `FALSE` none, or a character vector whose elements are each
#' an exact parameter name (`"conv1_weight"`), the name of an internal
#' output of the kept part (`"pool1_output"`: every parameter that output
#' depends on, i.e. everything up to and including that layer), or a
#' regular expression matched against the parameter names (`"^conv"`,
#' `"conv1"`).
#'
#' Frozen parameters are passed to `FeedForward.create` as `fixed.param`:
#' they get no gradient, no update and no weight decay, and they are in the
#' returned model unchanged. A BatchNorm layer whose `gamma` and `beta` are
#' both frozen is run in inference mode during training (as if
#' `use_global_stats = TRUE`): it normalises with its moving statistics and
#' does not update them, so a frozen part of the network computes exactly
#' what it computed before; the returned model's symbol does not carry that
#' flag. Unfrozen BatchNorm layers use and update batch statistics as usual.
#'
#' Works with any `MXFeedForwardModel`, including one read from an MXNet
#' checkpoint with [mx.model.load()].
#'
#' @param model A trained `MXFeedForwardModel` (or a serialized one).
#' @param X Training data: an R array/matrix with the examples in the last
#'   dimension, or a data iterator.
#' @param y Labels when `X` is an array: integers 0 to `num.classes - 1`
#'   (or a factor) for the default head, whatever the head's loss needs
#'   otherwise.
#' @param layer The internal output to cut at: an output name such as
#'   `"flatten0_output"` or a node name such as `"flatten0"`; see
#'   [mx.model.features()].
#' @param num.classes The number of classes of the default head; by default
#'   `nlevels(y)` for a factor and `max(y) + 1` otherwise. Ignored when
#'   `head` is given.
#' @param freeze `TRUE`, `FALSE`, or a character vector of parameter names,
#'   layer outputs and regular expressions (see Details).
#' @param head `NULL` for the default classification head, or a
#'   `function(x)` returning a new symbol (ending in a loss) built on the
#'   cut symbol `x`.
#' @param eval.data Validation data: an iterator or `list(data =, label =)`.
#' @param initializer The initializer of the new parameters.
#' @param ... Passed to [mx.model.FeedForward.create()]: `num.round`,
#'   `learning.rate`, `momentum`, `wd`, `optimizer`, `array.batch.size`,
#'   `ctx`, `eval.metric` (by default [mx.metric.accuracy] with the default
#'   head), `epoch.end.callback`, `verbose`, ...
#' @return The trained `MXFeedForwardModel`: the cut network with its new
#'   head, all parameters (frozen ones unchanged), aux states, and the
#'   training `history`.
#' @seealso [mx.model.features()]; [mx.model.FeedForward.create()].
#' @examples
#' # A network trained on one task...
#' mx.set.seed(0); set.seed(0)
#' x <- matrix(rnorm(10 * 200), 10, 200)
#' data <- mx.symbol.Variable("data")
#' fc1 <- mx.symbol.FullyConnected(data, num_hidden = 16, name = "fc1")
#' act1 <- mx.symbol.Activation(fc1, act_type = "tanh", name = "tanh1")
#' fc2 <- mx.symbol.FullyConnected(act1, num_hidden = 2, name = "fc2")
#' net <- mx.symbol.SoftmaxOutput(fc2, name = "sm")
#' model <- mx.model.FeedForward.create(net, X = x, y = as.integer(x[1, ] > 0),
#'                                      num.round = 5, array.batch.size = 20,
#'                                      learning.rate = 0.1, verbose = FALSE)
#' # ...reused for another one: a new 3-class head on the hidden layer
#' y3 <- (x[1, ] > 0) + (x[2, ] > 0)
#' tuned <- mx.model.finetune(model, x, y3, layer = "tanh1", num.round = 5,
#'                            array.batch.size = 20, learning.rate = 0.1,
#'                            verbose = FALSE)
#' names(tuned$arg.params)
#' identical(as.array(tuned$arg.params$fc1_weight), as.array(model$arg.params$fc1_weight))
#' tuned$history
#' @export
mx.model.finetune <- function(model, X, y = NULL, layer, num.classes = NULL, freeze = TRUE, head = NULL,
                              eval.data = NULL, initializer = mx.init.Xavier(), ...) {
  model <- mx.internal.ft.model(model)
  if (missing(layer)) stop("layer is needed: the internal output to cut the network at", call. = FALSE)
  if (length(layer) != 1) stop("layer must be one internal output name", call. = FALSE)
  dots <- list(...)
  taken <- intersect(names(dots), c("symbol", "arg.params", "aux.params", "fixed.param", "allow.extra.params"))
  if (length(taken))
    stop("mx.model.finetune sets ", paste(taken, collapse = ", "), " itself; use freeze = to choose ",
         "the fixed parameters", call. = FALSE)
  int <- internals(model$symbol)
  out <- mx.internal.ft.resolve(model$symbol, layer, int)
  cut <- mx.internal.ft.cut(int, out)
  body.args <- arguments(cut)
  input <- if (is.null(dots[["input.names"]])) "data" else dots[["input.names"]]
  if (!all(input %in% body.args))
    stop("the output '", out, "' does not depend on the input ", paste0("'", input, "'", collapse = ", "),
         if (is.null(dots[["input.names"]])) " (give input.names = for another input)", call. = FALSE)
  body.params <- body.args[!grepl("label$", body.args) & !body.args %in% input]
  missing <- setdiff(body.params, names(model$arg.params))
  if (length(missing))
    stop("the model lacks parameters of the kept network: ", paste(missing, collapse = ", "), call. = FALSE)
  # The new head.
  if (is.null(head)) {
    if (is.null(num.classes)) num.classes <- mx.internal.ft.num.classes(y)
    if (!is.numeric(num.classes) || length(num.classes) != 1 || is.na(num.classes) || num.classes < 1 ||
        num.classes != round(num.classes))
      stop("num.classes must be one positive whole number", call. = FALSE)
    taken.names <- mx.internal.ft.node.names(cut)
    fc.name <- mx.internal.ft.fresh("finetune_fc", taken.names)
    sm.name <- mx.internal.ft.fresh("finetune_softmax", taken.names)
    net <- mx.symbol.FullyConnected(cut, num_hidden = num.classes, name = fc.name)
    net <- mx.symbol.SoftmaxOutput(net, name = sm.name)
    if (is.null(dots[["eval.metric"]])) dots[["eval.metric"]] <- mx.metric.accuracy
  } else {
    if (!is.function(head))
      stop("head must be NULL or a function(x) that builds the new head on the cut symbol x", call. = FALSE)
    net <- head(cut)
    if (!is.mx.symbol(net)) stop("head(x) must return an MXSymbol", call. = FALSE)
  }
  fixed <- mx.internal.ft.frozen(freeze, body.params, cut)
  train.sym <- mx.internal.ft.bn.fixed(net, fixed)
  aux <- model$aux.params[intersect(names(model$aux.params), cut$auxiliary.states)]
  fit <- do.call(mx.model.FeedForward.create,
                 c(list(symbol = train.sym, X = X, y = y, eval.data = eval.data, initializer = initializer,
                        arg.params = model$arg.params[body.params], aux.params = aux, fixed.param = fixed),
                   dots))
  fit$symbol <- net
  fit
}

mx.internal.ft.num.classes <- function(y) {
  if (is.null(y)) stop("num.classes is needed when X is an iterator", call. = FALSE)
  if (is.factor(y)) return(nlevels(y))
  if (!is.numeric(y) || !length(y) || anyNA(y) || any(y < 0) || any(y != round(y)))
    stop("y must hold class labels 0, 1, ... (or be a factor) for the default head; ",
         "use head = for other tasks", call. = FALSE)
  max(y) + 1
}

mx.internal.ft.node.names <- function(symbol) .Call(C_sym_nodes, symbol)$name

mx.internal.ft.fresh <- function(name, taken) {
  cand <- name
  i <- 1L
  while (cand %in% taken || any(startsWith(taken, paste0(cand, "_")))) {
    cand <- paste0(name, i)
    i <- i + 1L
  }
  cand
}

# The names of the frozen parameters among `params` (those of the kept part).
mx.internal.ft.frozen <- function(freeze, params, cut) {
  if (isTRUE(freeze)) return(params)
  if (is.null(freeze) || isFALSE(freeze)) return(character())
  if (!is.character(freeze) || anyNA(freeze) || !length(freeze))
    stop("freeze must be TRUE, FALSE, or a character vector of parameter names, layer outputs ",
         "or regular expressions", call. = FALSE)
  int <- internals(cut)
  layers <- mx.internal.ft.layer.outputs(cut, int)
  res <- character()
  for (f in freeze) {
    hit <- if (f %in% params) {
      f
    } else if (f %in% layers) {
      intersect(params, arguments(int[[match(f, outputs(int))]]))
    } else {
      m <- tryCatch(grepl(f, params), error = function(e)
        stop("freeze: '", f, "' is not a parameter name, a layer output or a valid regular expression (",
             conditionMessage(e), ")", call. = FALSE), warning = function(w) grepl(f, params, fixed = TRUE))
      params[m]
    }
    if (!length(hit))
      stop("freeze: '", f, "' matches none of the pre-trained parameters kept (",
           mx.internal.ft.list(params), "), nor is it a layer output of the kept network", call. = FALSE)
    res <- union(res, hit)
  }
  params[params %in% res]
}

# A copy of `symbol` in which the BatchNorm layers whose gamma and beta are
# both in `fixed` use (and do not update) their moving statistics.
mx.internal.ft.bn.fixed <- function(symbol, fixed) {
  if (!length(fixed)) return(symbol)
  js <- mx.internal.json.parse(.Call(C_sym_to_json, symbol))
  nodes <- js$nodes
  names <- vapply(nodes, function(n) n$name, "")
  ops <- vapply(nodes, function(n) n$op, "")
  changed <- FALSE
  for (i in which(ops == "BatchNorm")) {
    nd <- nodes[[i]]
    ins <- vapply(nd$inputs, function(e) as.numeric(e[[1]]), 0) + 1
    if (length(ins) < 3) next
    gb <- ins[2:3]
    if (!all(ops[gb] == "null") || !all(names[gb] %in% fixed)) next
    ugs <- nd$attrs$use_global_stats
    if (!is.null(ugs) && tolower(ugs) %in% c("true", "1")) next
    if (is.null(nd$attrs)) nd$attrs <- structure(list(), names = character())
    nd$attrs$use_global_stats <- "True"
    nodes[[i]] <- nd
    changed <- TRUE
  }
  if (!changed) return(symbol)
  js$nodes <- nodes
  mx.symbol.load.json(mx.internal.json.write(js))
}

# ---- a small JSON reader and writer (for symbol JSON) --------------------
# Objects become named lists, arrays unnamed lists, strings character,
# numbers double, true/false logical, null NULL (kept in lists).

mx.internal.json.parse <- function(txt) {
  tok <- regmatches(txt, gregexpr('"(?:[^"\\\\]|\\\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null|[][{}:,]',
                                  txt, perl = TRUE))[[1]]
  n <- length(tok)
  pos <- 0L
  nxt <- function() {
    pos <<- pos + 1L
    if (pos > n) stop("symbol JSON: unexpected end", call. = FALSE)
    tok[[pos]]
  }
  peek <- function() if (pos < n) tok[[pos + 1L]] else ""
  expect <- function(t) {
    got <- nxt()
    if (got != t) stop("symbol JSON: expected '", t, "' but found '", got, "'", call. = FALSE)
  }
  value <- function() {
    t <- nxt()
    if (t == "{") {
      out <- list()
      keys <- character()
      if (peek() == "}") {
        nxt()
        return(structure(list(), names = character()))
      }
      repeat {
        k <- nxt()
        if (!startsWith(k, "\"")) stop("symbol JSON: expected a key but found '", k, "'", call. = FALSE)
        expect(":")
        out[length(out) + 1L] <- list(value())
        keys <- c(keys, mx.internal.json.unescape(k))
        s <- nxt()
        if (s == "}") break
        if (s != ",") stop("symbol JSON: expected ',' or '}' but found '", s, "'", call. = FALSE)
      }
      names(out) <- keys
      return(out)
    }
    if (t == "[") {
      out <- list()
      if (peek() == "]") {
        nxt()
        return(out)
      }
      repeat {
        out[length(out) + 1L] <- list(value())
        s <- nxt()
        if (s == "]") break
        if (s != ",") stop("symbol JSON: expected ',' or ']' but found '", s, "'", call. = FALSE)
      }
      return(out)
    }
    if (startsWith(t, "\"")) return(mx.internal.json.unescape(t))
    if (t == "true") return(TRUE)
    if (t == "false") return(FALSE)
    if (t == "null") return(NULL)
    v <- suppressWarnings(as.numeric(t))
    if (is.na(v)) stop("symbol JSON: unexpected '", t, "'", call. = FALSE)
    v
  }
  res <- value()
  if (pos != n) stop("symbol JSON: text after the end", call. = FALSE)
  res
}

mx.internal.json.unescape <- function(s) {
  s <- substr(s, 2L, nchar(s) - 1L)
  if (!grepl("\\", s, fixed = TRUE)) return(s)
  m <- gregexpr("\\\\(u[0-9a-fA-F]{4}|.)", s, perl = TRUE)
  regmatches(s, m) <- list(vapply(regmatches(s, m)[[1]], function(e) {
    c1 <- substr(e, 2L, 2L)
    switch(c1, n = "\n", t = "\t", r = "\r", b = "\b", f = "\f",
           u = intToUtf8(strtoi(substr(e, 3L, 6L), 16L)), c1)
  }, ""))
  s
}

mx.internal.json.escape <- function(s) {
  s <- gsub("\\", "\\\\", s, fixed = TRUE)
  s <- gsub("\"", "\\\"", s, fixed = TRUE)
  s <- gsub("\n", "\\n", s, fixed = TRUE)
  s <- gsub("\t", "\\t", s, fixed = TRUE)
  s <- gsub("\r", "\\r", s, fixed = TRUE)
  paste0("\"", s, "\"")
}

mx.internal.json.write <- function(x) {
  if (is.null(x)) return("null")
  if (is.list(x)) {
    parts <- vapply(x, mx.internal.json.write, "", USE.NAMES = FALSE)
    if (!length(x)) return(if (is.null(names(x))) "[]" else "{}")
    if (!is.null(names(x)))
      return(paste0("{", paste0(mx.internal.json.escape(names(x)), ": ", parts, collapse = ", "), "}"))
    return(paste0("[", paste(parts, collapse = ", "), "]"))
  }
  if (is.character(x)) return(mx.internal.json.escape(x))
  if (is.logical(x)) return(if (isTRUE(x)) "true" else "false")
  if (x == round(x) && abs(x) < 2^53) return(sprintf("%.0f", x))
  format(x, digits = 17)
}
