# Caffe import: the network structure from a .prototxt (protobuf text
# format, parsed here in R) and the weights from a binary .caffemodel (a
# NetParameter, read with the C protobuf reader in src/engine/protobuf.c).
# Both the current "layer" (LayerParameter) and the legacy "layers"
# (V1LayerParameter) formats are read.

# ---------------------------------------------------------------------------
# Protobuf text format
# ---------------------------------------------------------------------------

# Parses protobuf text format into a named list whose names may repeat (one
# element per field occurrence, in order): scalars are character strings
# (quotes removed, escapes decoded), nested messages are such lists.
mx.internal.prototxt.parse <- function(text, what = "prototxt") {
  text <- paste(text, collapse = "\n")
  pat <- paste0("\"(?:[^\"\\\\\n]|\\\\.)*\"|'(?:[^'\\\\\n]|\\\\.)*'|#[^\n]*|[{}\\[\\]:,;<>]|",
                "[^][[:space:]{}:,;<>\"'#]+|[\"']")
  m <- gregexpr(pat, text, perl = TRUE)[[1]]
  if (m[[1]] == -1) return(list())
  toks <- regmatches(text, list(m))[[1]]
  nl <- gregexpr("\n", text, fixed = TRUE)[[1]]
  nl <- if (nl[[1]] == -1) integer(0) else as.integer(nl)
  lines <- findInterval(as.integer(m), nl) + 1L
  keep <- !startsWith(toks, "#")
  toks <- toks[keep]
  lines <- lines[keep]
  n <- length(toks)
  pos <- 1L
  fail <- function(msg) {
    ln <- if (pos <= n) lines[[pos]] else if (n) lines[[n]] else 1L
    stop(what, " line ", ln, ": ", msg, call. = FALSE)
  }
  is.str <- function(t) nchar(t) >= 2 && (startsWith(t, "\"") && endsWith(t, "\"") || startsWith(t, "'") && endsWith(t, "'"))
  unquote <- function(t) {
    s <- substr(t, 2, nchar(t) - 1)
    if (!grepl("\\", s, fixed = TRUE)) return(s)
    ch <- strsplit(s, "", fixed = TRUE)[[1]]
    out <- character()
    i <- 1L
    while (i <= length(ch)) {
      cc <- ch[[i]]
      if (cc != "\\") { out <- c(out, cc); i <- i + 1L; next }
      if (i == length(ch)) fail(paste0("bad escape in string ", t))
      e <- ch[[i + 1L]]
      i <- i + 2L
      simple <- c(n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v")
      if (e %in% names(simple)) out <- c(out, simple[[e]])
      else if (e %in% c("\\", "\"", "'", "?")) out <- c(out, e)
      else if (grepl("[0-7]", e)) {
        d <- e
        while (nchar(d) < 3 && i <= length(ch) && grepl("[0-7]", ch[[i]])) { d <- paste0(d, ch[[i]]); i <- i + 1L }
        out <- c(out, rawToChar(as.raw(strtoi(d, 8L) %% 256)))
      } else if (e == "x") {
        d <- ""
        while (nchar(d) < 2 && i <= length(ch) && grepl("[0-9A-Fa-f]", ch[[i]])) { d <- paste0(d, ch[[i]]); i <- i + 1L }
        if (!nzchar(d)) fail(paste0("bad escape in string ", t))
        out <- c(out, rawToChar(as.raw(strtoi(d, 16L))))
      } else fail(paste0("bad escape \\", e, " in string ", t))
    }
    paste(out, collapse = "")
  }
  ident <- function(t) grepl("^[A-Za-z_][A-Za-z0-9_.]*$", t)
  scalar <- function() {
    if (pos > n) fail("a value is missing at the end")
    t <- toks[[pos]]
    if (t %in% c("{", "}", "[", "]", ":", ",", ";", "<", ">")) fail(paste0("expected a value, found '", t, "'"))
    if (t %in% c("\"", "'")) fail("unterminated string")
    pos <<- pos + 1L
    if (is.str(t)) {
      s <- unquote(t)
      # adjacent strings are concatenated
      while (pos <= n && is.str(toks[[pos]])) {
        s <- paste0(s, unquote(toks[[pos]]))
        pos <<- pos + 1L
      }
      return(s)
    }
    t
  }
  message <- function(close, depth) {
    if (depth > 100) fail("messages nested too deeply")
    out <- list()
    keys <- character()
    repeat {
      if (pos > n) {
        if (is.null(close)) break
        fail(paste0("missing '", close, "' at the end of the text"))
      }
      t <- toks[[pos]]
      if (!is.null(close) && t == close) {
        pos <<- pos + 1L
        break
      }
      if (t %in% c(",", ";")) {
        pos <<- pos + 1L
        next
      }
      if (!ident(t)) fail(paste0("expected a field name, found '", t, "'"))
      pos <<- pos + 1L
      colon <- pos <= n && toks[[pos]] == ":"
      if (colon) pos <<- pos + 1L
      if (pos > n) fail(paste0("field '", t, "' has no value"))
      nx <- toks[[pos]]
      vals <- list()
      if (nx %in% c("{", "<")) {
        pos <<- pos + 1L
        vals <- list(message(if (nx == "{") "}" else ">", depth + 1))
      } else if (nx == "[") {
        pos <<- pos + 1L
        repeat {
          if (pos > n) fail("missing ']'")
          if (toks[[pos]] == "]") { pos <<- pos + 1L; break }
          if (toks[[pos]] == ",") { pos <<- pos + 1L; next }
          if (toks[[pos]] %in% c("{", "<")) {
            cl <- if (toks[[pos]] == "{") "}" else ">"
            pos <<- pos + 1L
            vals[[length(vals) + 1]] <- message(cl, depth + 1)
          } else vals[[length(vals) + 1]] <- scalar()
        }
      } else {
        if (!colon) fail(paste0("expected ':' or '{' after '", t, "'"))
        vals <- list(scalar())
      }
      for (v in vals) {
        out[[length(out) + 1]] <- v
        keys <- c(keys, t)
      }
    }
    names(out) <- keys
    out
  }
  message(NULL, 0)
}

# All values of a field (a list), the last value of a field, and numbers.
mx.internal.pt.all <- function(msg, key) if (is.null(msg)) list() else unname(msg[names(msg) == key])
mx.internal.pt.one <- function(msg, key, default = NULL) {
  v <- mx.internal.pt.all(msg, key)
  if (!length(v)) default else v[[length(v)]]
}
mx.internal.pt.num <- function(msg, key, default = NULL, what = key) {
  v <- mx.internal.pt.all(msg, key)
  if (!length(v)) return(default)
  x <- suppressWarnings(as.numeric(unlist(v)))
  if (anyNA(x)) stop("prototxt: ", what, " must be a number (got '", unlist(v)[is.na(x)][[1]], "')", call. = FALSE)
  x
}
mx.internal.pt.bool <- function(msg, key, default) {
  v <- mx.internal.pt.one(msg, key)
  if (is.null(v)) return(default)
  if (tolower(v) %in% c("true", "1", "t")) return(TRUE)
  if (tolower(v) %in% c("false", "0", "f")) return(FALSE)
  stop("prototxt: ", key, " must be true or false (got '", v, "')", call. = FALSE)
}

# ---------------------------------------------------------------------------
# Binary weights
# ---------------------------------------------------------------------------

mx.internal.caffe.schema <- function() {
  if (is.null(mx.internal.pb.cache$caffe))
    mx.internal.pb.cache$caffe <- mx.internal.pb.schema(list(
      NetParameter = c("name 1 string", "layers 2 V1LayerParameter*", "input 3 string*", "input_dim 4 int32*",
                       "input_shape 8 BlobShape*", "layer 100 LayerParameter*"),
      LayerParameter = c("name 1 string", "type 2 string", "bottom 3 string*", "top 4 string*",
                         "blobs 7 BlobProto*"),
      V1LayerParameter = c("bottom 2 string*", "top 3 string*", "name 4 string", "type 5 enum",
                           "blobs 6 BlobProto*", "layer 1 V0LayerParameter"),
      V0LayerParameter = c("name 1 string", "type 2 string", "blobs 50 BlobProto*"),
      BlobProto = c("num 1 int32", "channels 2 int32", "height 3 int32", "width 4 int32", "data 5 float+",
                    "shape 7 BlobShape", "double_data 8 double+"),
      BlobShape = c("dim 1 int64+")))
  mx.internal.pb.cache$caffe
}

# Layer name -> list of blobs (list(dims, values)) from a .caffemodel.
mx.internal.caffe.weights <- function(file) {
  raw <- mx.internal.read.raw(file, "caffemodel")
  net <- tryCatch(mx.internal.pb.decode(raw, mx.internal.caffe.schema(), "NetParameter"),
                  error = function(e) stop("mx.caffe.import: '", file, "' is not a valid caffemodel: ",
                                           conditionMessage(e), call. = FALSE))
  out <- list()
  blob <- function(b, lname) {
    vals <- if (!is.null(b$data)) b$data else if (!is.null(b$double_data)) b$double_data else numeric(0)
    legacy <- list(b$num, b$channels, b$height, b$width)
    dims <- if (!is.null(b$shape)) {
      if (is.null(b$shape$dim)) numeric(0) else b$shape$dim
    } else if (any(!vapply(legacy, is.null, TRUE))) {
      vapply(legacy, function(v) if (is.null(v)) 1 else v, 0)
    } else length(vals)
    if (prod(dims) != length(vals))
      stop("mx.caffe.import: a blob of layer '", lname, "' has ", length(vals), " values but shape (",
           paste(dims, collapse = ", "), ")", call. = FALSE)
    list(dims = dims, values = vals)
  }
  add <- function(name, blobs) {
    if (is.null(name) || !length(blobs)) return()
    out[[name]] <<- lapply(blobs, blob, name)
  }
  for (l in net$layer) add(l$name, l$blobs)
  for (l in net$layers) {
    if (!is.null(l$layer) && !length(l$blobs)) add(l$layer$name, l$layer$blobs)
    else add(l$name, l$blobs)
  }
  out
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

mx.internal.caffe.v1.types <- c(
  CONVOLUTION = "Convolution", POOLING = "Pooling", INNER_PRODUCT = "InnerProduct", RELU = "ReLU",
  SIGMOID = "Sigmoid", TANH = "TanH", LRN = "LRN", DROPOUT = "Dropout", SOFTMAX = "Softmax",
  SOFTMAX_LOSS = "SoftmaxWithLoss", CONCAT = "Concat", ELTWISE = "Eltwise", FLATTEN = "Flatten",
  SPLIT = "Split", DATA = "Data", IMAGE_DATA = "ImageData", MEMORY_DATA = "MemoryData",
  HDF5_DATA = "HDF5Data", DUMMY_DATA = "DummyData", WINDOW_DATA = "WindowData", ACCURACY = "Accuracy",
  SILENCE = "Silence", ABSVAL = "AbsVal", POWER = "Power", EXP = "Exp", BNLL = "BNLL",
  DECONVOLUTION = "Deconvolution", EUCLIDEAN_LOSS = "EuclideanLoss", MVN = "MVN", SLICE = "Slice",
  THRESHOLD = "Threshold", ARGMAX = "ArgMax", HINGE_LOSS = "HingeLoss", INFOGAIN_LOSS = "InfogainLoss",
  MULTINOMIAL_LOGISTIC_LOSS = "MultinomialLogisticLoss", SIGMOID_CROSS_ENTROPY_LOSS = "SigmoidCrossEntropyLoss",
  CONTRASTIVE_LOSS = "ContrastiveLoss", HDF5_OUTPUT = "HDF5Output", IM2COL = "Im2col")

#' Import a Caffe model
#'
#' Builds a symnet model from a Caffe network description (`.prototxt`,
#' protobuf text format) and its trained weights (`.caffemodel`, binary).
#' Layers are matched to weights by name; both the current (`layer`) and
#' the legacy (`layers`, V1) formats are read, and blobs may have a `shape`
#' or the legacy num/channels/height/width.
#'
#' Supported layers: Input (and the net-level `input`/`input_dim`/
#' `input_shape`; data layers give a `data` input), Convolution (groups,
#' dilation, per-dimension kernel/stride/pad), Pooling (MAX and AVE with
#' Caffe's ceil rounding, global pooling), InnerProduct, ReLU (with
#' negative_slope), Sigmoid, TanH, LRN (across channels), Dropout, Softmax,
#' SoftmaxWithLoss (becomes `SoftmaxOutput`), BatchNorm (followed by Scale,
#' or alone), Scale, Concat, Eltwise (SUM with coefficients, PROD, MAX),
#' Flatten and Split.  Accuracy and Silence layers and layers excluded from
#' the TEST phase are skipped.  Other layers give an error naming the layer.
#'
#' Names follow MXNet's Caffe converter: a layer `conv1` gives the node
#' `conv1` and parameters `conv1_weight`, `conv1_bias`; BatchNorm gives
#' `<name>_gamma`, `<name>_beta` and the aux states `<name>_moving_mean`,
#' `<name>_moving_var`.  The data input is named `data`.
#'
#' @param prototxt The network description (`deploy.prototxt`).
#' @param caffemodel The trained weights; `NULL` gives a model whose
#'   parameters are initialised with `initializer` instead.
#' @param input.shape Optional R dims of the data input (batch last),
#'   needed when the prototxt declares none.
#' @param initializer Used when `caffemodel` is `NULL`.
#' @return An `MXFeedForwardModel`.
#' @examples
#' \dontrun{
#' model <- mx.caffe.import("deploy.prototxt", "bvlc_alexnet.caffemodel")
#' prob <- predict(model, images)
#' }
#' @export
mx.caffe.import <- function(prototxt, caffemodel = NULL, input.shape = NULL, initializer = mx.init.uniform(0.01)) {
  if (!is.character(prototxt) || length(prototxt) != 1) stop("prototxt must be a file name", call. = FALSE)
  if (!file.exists(prototxt)) stop("cannot open '", prototxt, "': no such file", call. = FALSE)
  net <- mx.internal.prototxt.parse(readLines(prototxt, warn = FALSE), basename(prototxt))
  weights <- if (is.null(caffemodel)) NULL else mx.internal.caffe.weights(caffemodel)
  mx.internal.caffe.build(net, weights, input.shape, initializer)
}

mx.internal.caffe.fail <- function(layer, ...) {
  stop("mx.caffe.import: layer '", layer$name, "' (", layer$type, "): ", ..., call. = FALSE)
}

mx.internal.caffe.build <- function(net, weights, input.shape, initializer) {
  st <- new.env(parent = emptyenv())
  st$blobs <- list()      # Caffe blob name -> symbol
  st$consumed <- character()
  st$produced <- character()
  st$arg <- list()
  st$aux <- list()
  st$data.shape <- NULL   # C order
  st$weights <- weights
  st$used.weights <- character()
  if (!is.null(input.shape)) st$data.shape <- rev(as.numeric(input.shape))

  add.input <- function(name, shape) {
    if (length(st$blobs) == 0 && is.null(st$data.shape) && !is.null(shape)) st$data.shape <- shape
    if (name %in% names(st$blobs)) return()
    vname <- if (!length(st$produced)) "data" else name
    st$blobs[[name]] <- mx.symbol.Variable(vname)
    st$produced <- c(st$produced, name)
  }
  # Net-level inputs.
  ins <- unlist(mx.internal.pt.all(net, "input"))
  if (length(ins)) {
    dims <- mx.internal.pt.num(net, "input_dim")
    shapes <- mx.internal.pt.all(net, "input_shape")
    for (i in seq_along(ins)) {
      shape <- if (length(shapes) >= i) mx.internal.pt.num(shapes[[i]], "dim")
               else if (length(dims) >= 4 * i) dims[(4 * i - 3):(4 * i)] else NULL
      add.input(ins[[i]], shape)
    }
  }
  layers <- mx.internal.pt.all(net, "layer")
  v1 <- FALSE
  if (!length(layers)) {
    layers <- mx.internal.pt.all(net, "layers")
    v1 <- TRUE
  }
  if (!length(layers)) stop("mx.caffe.import: the prototxt has no layers", call. = FALSE)
  # Normalise: name, type, bottoms, tops; drop TRAIN-only layers.
  norm <- lapply(seq_along(layers), function(i) {
    l <- layers[[i]]
    type <- mx.internal.pt.one(l, "type", "")
    if (v1 || grepl("^[A-Z0-9_]+$", type) && !is.na(mx.internal.caffe.v1.types[type])) {
      t2 <- mx.internal.caffe.v1.types[type]
      if (!is.na(t2)) type <- unname(t2)
    }
    name <- mx.internal.pt.one(l, "name", paste0("layer", i))
    include <- mx.internal.pt.all(l, "include")
    exclude <- mx.internal.pt.all(l, "exclude")
    phase.ok <- function(r) { p <- mx.internal.pt.one(r, "phase"); is.null(p) || p %in% c("TEST", "1") }
    keep <- (!length(include) || any(vapply(include, phase.ok, TRUE))) &&
            !any(vapply(exclude, function(r) { p <- mx.internal.pt.one(r, "phase"); !is.null(p) && p %in% c("TEST", "1") }, TRUE))
    list(name = name, type = type, bottom = unlist(mx.internal.pt.all(l, "bottom")),
         top = unlist(mx.internal.pt.all(l, "top")), msg = l, keep = keep)
  })
  norm <- Filter(function(l) l$keep, norm)
  skip.next <- FALSE
  for (i in seq_along(norm)) {
    if (skip.next) { skip.next <- FALSE; next }
    l <- norm[[i]]
    nxt <- if (i < length(norm)) norm[[i + 1]] else NULL
    fused <- mx.internal.caffe.layer(st, l, nxt, add.input)
    if (isTRUE(fused)) skip.next <- TRUE
  }
  # Outputs: blobs produced and never consumed.
  outs <- setdiff(unique(st$produced), st$consumed)
  outs <- outs[outs %in% names(st$blobs)]
  if (!length(outs)) stop("mx.caffe.import: the network has no output", call. = FALSE)
  syms <- lapply(outs, function(o) st$blobs[[o]])
  symbol <- if (length(syms) == 1) syms[[1]] else mx.symbol.Group(syms)
  args <- arguments(symbol)
  aux <- symbol$auxiliary.states
  arg.params <- lapply(st$arg[intersect(names(st$arg), args)], mx.nd.array)
  aux.params <- lapply(st$aux[intersect(names(st$aux), aux)], mx.nd.array)
  if (!is.null(weights)) {
    unused <- setdiff(names(weights), st$used.weights)
    if (length(unused)) warning("mx.caffe.import: the caffemodel has weights for layers not in the network: ",
                                paste(utils::head(unused, 5), collapse = ", "), call. = FALSE)
  }
  # Parameters without weights (no caffemodel): initialise them.
  if (is.null(weights) && !is.null(st$data.shape)) {
    p <- mx.model.init.params(symbol, list(data = rev(st$data.shape)), NULL, initializer)
    fill <- setdiff(names(p$arg.params), names(arg.params))
    arg.params[fill] <- p$arg.params[fill]
    fillx <- setdiff(names(p$aux.params), names(aux.params))
    aux.params[fillx] <- p$aux.params[fillx]
  }
  model <- structure(list(symbol = symbol, arg.params = arg.params, aux.params = aux.params),
                     class = "MXFeedForwardModel")
  # Check the weights against the shapes the network infers.
  if (!is.null(st$data.shape) && "data" %in% args) {
    inf <- tryCatch(mx.symbol.infer.shape(symbol, data = rev(st$data.shape)), error = function(e) e)
    if (inherits(inf, "error")) stop("mx.caffe.import: ", conditionMessage(inf), call. = FALSE)
    if (!is.null(inf)) {
      for (n in intersect(names(arg.params), names(inf$arg.shapes)))
        if (!identical(as.numeric(dim(arg.params[[n]])), as.numeric(inf$arg.shapes[[n]])))
          stop("mx.caffe.import: parameter '", n, "' has shape (", paste(rev(dim(arg.params[[n]])), collapse = ", "),
               ") but the network needs (", paste(rev(inf$arg.shapes[[n]]), collapse = ", "), ")", call. = FALSE)
    }
  }
  model
}

# The blobs of a layer from the caffemodel.
mx.internal.caffe.blobs <- function(st, l, n.min = 0) {
  if (is.null(st$weights)) return(NULL)
  b <- st$weights[[l$name]]
  if (length(b) < n.min)
    mx.internal.caffe.fail(l, "the caffemodel has ", length(b), " blobs for this layer, expected ", n.min)
  st$used.weights <- c(st$used.weights, l$name)
  b
}

mx.internal.caffe.param <- function(st, name, blob, dims, aux = FALSE) {
  if (!is.null(blob)) {
    if (!is.null(dims) && length(blob$values) != prod(dims))
      stop("mx.caffe.import: blob for '", name, "' has ", length(blob$values), " values, expected ",
           prod(dims), " (", paste(dims, collapse = " x "), ")", call. = FALSE)
    if (is.null(dims)) dims <- blob$dims
    arr <- if (length(dims) == 1) array(blob$values, dims) else array(blob$values, rev(dims))
    if (aux) st$aux[[name]] <- arr else st$arg[[name]] <- arr
  }
  if (is.null(dims)) return(mx.symbol.Variable(name))
  mx.symbol.Variable(name, attr = list("__shape__" = mx.internal.onnx.tuple(dims)))
}

mx.internal.caffe.shape <- function(st, sym) {
  if (is.null(st$data.shape)) return(NULL)
  shapes <- list(data = rev(st$data.shape))
  for (a in c(arguments(sym), sym$auxiliary.states)) {
    if (!is.null(st$arg[[a]])) shapes[[a]] <- dim(st$arg[[a]])
    if (!is.null(st$aux[[a]])) shapes[[a]] <- dim(st$aux[[a]])
  }
  shapes <- shapes[names(shapes) %in% c(arguments(sym), sym$auxiliary.states)]
  inf <- tryCatch(do.call(mx.symbol.infer.shape, c(list(sym), shapes)), error = function(e) NULL)
  if (is.null(inf)) return(NULL)
  rev(as.numeric(inf$out.shapes[[1]]))
}

# Kernel/stride/pad of Convolution and Pooling in C order: from the _h/_w
# fields when given, else from the repeated field (one value for every
# spatial dim, or one per dim).
mx.internal.caffe.hw <- function(p, key, hkey, wkey, default, nsp = 2) {
  h <- mx.internal.pt.num(p, hkey)
  w <- mx.internal.pt.num(p, wkey)
  if (!is.null(h) || !is.null(w)) return(c(if (is.null(h)) default else h, if (is.null(w)) default else w))
  v <- mx.internal.pt.num(p, key)
  if (is.null(v)) return(rep(default, nsp))
  if (length(v) == 1) rep(v, nsp) else v
}

mx.internal.caffe.layer <- function(st, l, nxt, add.input) {
  p.of <- function(key) mx.internal.pt.one(l$msg, key)
  bottoms <- l$bottom
  get.bottom <- function(k = 1) {
    b <- bottoms[[k]]
    s <- st$blobs[[b]]
    if (is.null(s)) mx.internal.caffe.fail(l, "bottom blob '", b, "' is not produced by an earlier layer")
    st$consumed <- c(st$consumed, b)
    s
  }
  set.top <- function(sym, k = 1) {
    if (length(l$top) < k) mx.internal.caffe.fail(l, "the layer has no top")
    st$blobs[[l$top[[k]]]] <- sym
    st$produced <- c(st$produced, l$top[[k]])
  }
  op <- function(name, inputs, params = list())
    tryCatch(mx.symbol.internal.create(name, inputs, params, l$name),
             error = function(e) mx.internal.caffe.fail(l, conditionMessage(e)))
  tuple <- mx.internal.onnx.tuple
  num <- mx.internal.onnx.num
  switch(l$type,
    Input = {
      shapes <- mx.internal.pt.all(p.of("input_param"), "shape")
      for (k in seq_along(l$top)) {
        sh <- if (length(shapes) >= k) mx.internal.pt.num(shapes[[k]], "dim") else if (length(shapes)) mx.internal.pt.num(shapes[[1]], "dim")
        add.input(l$top[[k]], sh)
      }
    },
    Data = , ImageData = , MemoryData = , HDF5Data = , DummyData = , WindowData = {
      if (length(l$top)) add.input(l$top[[1]], NULL) # a label top is not an input of the model
    },
    Accuracy = , Silence = { st$consumed <- c(st$consumed, bottoms) },
    Split = {
      x <- get.bottom()
      for (k in seq_along(l$top)) set.top(x, k)
    },
    Convolution = {
      p <- p.of("convolution_param")
      if (mx.internal.pt.num(p, "axis", 1) != 1) mx.internal.caffe.fail(l, "only axis 1 is supported")
      nout <- mx.internal.pt.num(p, "num_output")
      if (is.null(nout)) mx.internal.caffe.fail(l, "num_output is missing")
      k <- mx.internal.caffe.hw(p, "kernel_size", "kernel_h", "kernel_w", NA, 2)
      if (anyNA(k)) mx.internal.caffe.fail(l, "kernel_size is missing")
      nsp <- length(k)
      s <- mx.internal.caffe.hw(p, "stride", "stride_h", "stride_w", 1, nsp)
      pad <- mx.internal.caffe.hw(p, "pad", "pad_h", "pad_w", 0, nsp)
      d <- mx.internal.pt.num(p, "dilation", 1)
      d <- if (length(d) == 1) rep(d, nsp) else d
      g <- mx.internal.pt.num(p, "group", 1)
      bias <- mx.internal.pt.bool(p, "bias_term", TRUE)
      x <- get.bottom()
      xs <- mx.internal.caffe.shape(st, x)
      blobs <- mx.internal.caffe.blobs(st, l, if (bias) 2 else 1)
      cin <- if (!is.null(xs)) xs[[2]] else if (!is.null(blobs)) length(blobs[[1]]$values) / (nout * prod(k)) * g else NULL
      wd <- if (!is.null(cin)) c(nout, cin / g, k)
      w <- mx.internal.caffe.param(st, paste0(l$name, "_weight"), blobs[[1]], wd)
      b <- if (bias) mx.internal.caffe.param(st, paste0(l$name, "_bias"), if (length(blobs) > 1) blobs[[2]], nout)
      set.top(op("Convolution", list(data = x, weight = w, bias = b),
                 list(kernel = tuple(k), stride = tuple(s), pad = tuple(pad), dilate = tuple(d), num_filter = nout,
                      num_group = g, no_bias = !bias)))
    },
    Pooling = {
      p <- p.of("pooling_param")
      pool <- mx.internal.pt.one(p, "pool", "MAX")
      type <- switch(pool, MAX = , "0" = "max", AVE = , "1" = "avg",
                     mx.internal.caffe.fail(l, "pooling method ", pool, " is not supported"))
      x <- get.bottom()
      if (mx.internal.pt.bool(p, "global_pooling", FALSE)) {
        set.top(op("Pooling", list(x), list(kernel = tuple(c(1, 1)), pool_type = type, global_pool = TRUE)))
        return(invisible(FALSE))
      }
      k <- mx.internal.caffe.hw(p, "kernel_size", "kernel_h", "kernel_w", NA)
      if (anyNA(k) || length(k) != 2) mx.internal.caffe.fail(l, "kernel_size is missing")
      s <- mx.internal.caffe.hw(p, "stride", "stride_h", "stride_w", 1)
      pad <- mx.internal.caffe.hw(p, "pad", "pad_h", "pad_w", 0)
      conv <- "full"
      xs <- mx.internal.caffe.shape(st, x)
      if (!is.null(xs)) {
        xsp <- xs[3:4]
        n <- ceiling((xsp + 2 * pad - k) / s) + 1
        # Caffe: the last window must start inside the image or its padding
        n.caffe <- ifelse(pad > 0 & (n - 1) * s >= xsp + pad, n - 1, n)
        if (any(n.caffe != n)) {
          if (all(floor((xsp + 2 * pad - k) / s) + 1 == n.caffe)) conv <- "valid"
          else mx.internal.caffe.fail(l, "Caffe's output size rule cannot be reproduced here")
        }
      }
      set.top(op("Pooling", list(x), list(kernel = tuple(k), stride = tuple(s), pad = tuple(pad), pool_type = type,
                                         pooling_convention = conv)))
    },
    InnerProduct = {
      p <- p.of("inner_product_param")
      if (mx.internal.pt.num(p, "axis", 1) != 1) mx.internal.caffe.fail(l, "only axis 1 is supported")
      nout <- mx.internal.pt.num(p, "num_output")
      if (is.null(nout)) mx.internal.caffe.fail(l, "num_output is missing")
      bias <- mx.internal.pt.bool(p, "bias_term", TRUE)
      tr <- mx.internal.pt.bool(p, "transpose", FALSE)
      x <- get.bottom()
      blobs <- mx.internal.caffe.blobs(st, l, if (bias) 2 else 1)
      wb <- if (length(blobs)) blobs[[1]]
      if (!is.null(wb)) {
        nin <- length(wb$values) / nout
        if (nin != round(nin)) mx.internal.caffe.fail(l, "the weight blob does not hold num_output rows")
        if (tr) wb$values <- as.vector(t(matrix(wb$values, nrow = nout)))
        wd <- c(nout, nin)
      } else wd <- NULL
      w <- mx.internal.caffe.param(st, paste0(l$name, "_weight"), wb, wd)
      b <- if (bias) mx.internal.caffe.param(st, paste0(l$name, "_bias"), if (length(blobs) > 1) blobs[[2]], nout)
      set.top(op("FullyConnected", list(data = x, weight = w, bias = b),
                 list(num_hidden = nout, no_bias = !bias, flatten = TRUE)))
    },
    ReLU = {
      slope <- mx.internal.pt.num(p.of("relu_param"), "negative_slope", 0)
      x <- get.bottom()
      set.top(if (slope == 0) op("Activation", list(x), list(act_type = "relu"))
              else op("LeakyReLU", list(x), list(act_type = "leaky", slope = num(slope))))
    },
    Sigmoid = set.top(op("Activation", list(get.bottom()), list(act_type = "sigmoid"))),
    TanH = set.top(op("Activation", list(get.bottom()), list(act_type = "tanh"))),
    LRN = {
      p <- p.of("lrn_param")
      region <- mx.internal.pt.one(p, "norm_region", "ACROSS_CHANNELS")
      if (!region %in% c("ACROSS_CHANNELS", "0")) mx.internal.caffe.fail(l, "norm_region ", region, " is not supported")
      size <- mx.internal.pt.num(p, "local_size", 5)
      if (size %% 2 != 1) mx.internal.caffe.fail(l, "local_size must be odd")
      set.top(op("LRN", list(get.bottom()), list(nsize = size, alpha = num(mx.internal.pt.num(p, "alpha", 1)),
                                                 beta = num(mx.internal.pt.num(p, "beta", 0.75)),
                                                 knorm = num(mx.internal.pt.num(p, "k", 1)))))
    },
    Dropout = set.top(op("Dropout", list(get.bottom()),
                         list(p = num(mx.internal.pt.num(p.of("dropout_param"), "dropout_ratio", 0.5))))),
    Softmax = set.top(op("softmax", list(get.bottom()), list(axis = mx.internal.pt.num(p.of("softmax_param"), "axis", 1)))),
    SoftmaxWithLoss = {
      x <- get.bottom()
      if (length(bottoms) > 1) st$consumed <- c(st$consumed, bottoms[-1])
      set.top(op("SoftmaxOutput", list(data = x), list()))
    },
    BatchNorm = {
      p <- p.of("batch_norm_param")
      eps <- mx.internal.pt.num(p, "eps", 1e-5)
      x <- get.bottom()
      xs <- mx.internal.caffe.shape(st, x)
      blobs <- mx.internal.caffe.blobs(st, l, 3)
      C <- if (!is.null(blobs)) length(blobs[[1]]$values) else if (!is.null(xs)) xs[[2]] else
        mx.internal.caffe.fail(l, "the channel count is unknown")
      fused <- !is.null(nxt) && nxt$type == "Scale" && length(nxt$bottom) == 1 && nxt$bottom[[1]] %in% l$top
      gamma <- rep(1, C)
      beta <- rep(0, C)
      if (fused) {
        sp <- mx.internal.pt.one(nxt$msg, "scale_param")
        sb <- mx.internal.caffe.blobs(st, nxt, if (mx.internal.pt.bool(sp, "bias_term", FALSE)) 2 else 1)
        if (!is.null(sb)) {
          gamma <- sb[[1]]$values
          if (length(sb) > 1) beta <- sb[[2]]$values
        }
        if (!mx.internal.pt.bool(sp, "bias_term", FALSE)) beta <- rep(0, C)
      }
      if (!is.null(blobs)) {
        f <- blobs[[3]]$values[[1]]
        f <- if (f == 0) 0 else 1 / f
        mean <- list(values = blobs[[1]]$values * f)
        var <- list(values = blobs[[2]]$values * f)
      } else mean <- var <- NULL
      nm <- l$name
      g <- mx.internal.caffe.param(st, paste0(nm, "_gamma"), if (!is.null(blobs) || fused) list(values = gamma), C)
      b <- mx.internal.caffe.param(st, paste0(nm, "_beta"), if (!is.null(blobs) || fused) list(values = beta), C)
      mm <- mx.internal.caffe.param(st, paste0(nm, "_moving_mean"), mean, C, aux = TRUE)
      mv <- mx.internal.caffe.param(st, paste0(nm, "_moving_var"), var, C, aux = TRUE)
      y <- op("BatchNorm", list(data = x, gamma = g, beta = b, moving_mean = mm, moving_var = mv),
              list(eps = num(eps), fix_gamma = FALSE))
      if (fused) {
        st$blobs[[nxt$top[[1]]]] <- y
        st$produced <- c(st$produced, l$top[[1]], nxt$top[[1]])
        if (!(nxt$top[[1]] %in% l$top)) st$consumed <- c(st$consumed, l$top[[1]])
        st$blobs[[l$top[[1]]]] <- y
        return(invisible(TRUE))
      }
      set.top(y)
    },
    Scale = {
      p <- p.of("scale_param")
      if (length(bottoms) != 1) mx.internal.caffe.fail(l, "a Scale with two bottoms is not supported")
      if (mx.internal.pt.num(p, "axis", 1) != 1 || mx.internal.pt.num(p, "num_axes", 1) != 1)
        mx.internal.caffe.fail(l, "only axis 1 and num_axes 1 are supported")
      bias <- mx.internal.pt.bool(p, "bias_term", FALSE)
      x <- get.bottom()
      xs <- mx.internal.caffe.shape(st, x)
      blobs <- mx.internal.caffe.blobs(st, l, if (bias) 2 else 1)
      C <- if (!is.null(blobs)) length(blobs[[1]]$values) else if (!is.null(xs)) xs[[2]] else
        mx.internal.caffe.fail(l, "the channel count is unknown")
      r <- if (!is.null(xs)) length(xs) else 4
      shp <- c(C, rep(1, r - 2))
      g <- mx.internal.caffe.param(st, paste0(l$name, "_gamma"), if (!is.null(blobs)) blobs[[1]], shp)
      y <- tryCatch(mx.symbol.internal.create("broadcast_mul", list(x, g), list(), if (bias) paste0(l$name, "_mul") else l$name),
                    error = function(e) mx.internal.caffe.fail(l, conditionMessage(e)))
      if (bias) {
        b <- mx.internal.caffe.param(st, paste0(l$name, "_beta"), if (length(blobs) > 1) blobs[[2]], shp)
        y <- op("broadcast_add", list(y, b))
      }
      set.top(y)
    },
    Concat = {
      p <- p.of("concat_param")
      axis <- mx.internal.pt.num(p, "axis", mx.internal.pt.num(p, "concat_dim", 1))
      xs <- lapply(seq_along(bottoms), get.bottom)
      set.top(op("Concat", xs, list(num_args = length(xs), dim = axis)))
    },
    Eltwise = {
      p <- p.of("eltwise_param")
      oper <- mx.internal.pt.one(p, "operation", "SUM")
      coeff <- mx.internal.pt.num(p, "coeff")
      xs <- lapply(seq_along(bottoms), get.bottom)
      if (length(xs) < 2) mx.internal.caffe.fail(l, "needs at least two bottoms")
      if (!is.null(coeff) && length(coeff) != length(xs)) mx.internal.caffe.fail(l, "coeff needs one value per bottom")
      inner <- function(k) paste0(l$name, "_", k)
      mk <- function(o, ins, name) tryCatch(mx.symbol.internal.create(o, ins, list(), name),
                                            error = function(e) mx.internal.caffe.fail(l, conditionMessage(e)))
      if (oper %in% c("SUM", "1")) {
        if (!is.null(coeff) && any(coeff != 1))
          xs <- lapply(seq_along(xs), function(k) if (coeff[[k]] == 1) xs[[k]] else
            mx.symbol.internal.create("_mul_scalar", list(xs[[k]]), list(scalar = num(coeff[[k]])), inner(paste0("coeff", k))))
        set.top(op("add_n", xs, list(num_args = length(xs))))
      } else if (oper %in% c("PROD", "0", "MAX", "2")) {
        o <- if (oper %in% c("PROD", "0")) "elemwise_mul" else "_maximum"
        y <- xs[[1]]
        for (k in 2:length(xs)) y <- mk(o, list(y, xs[[k]]), if (k == length(xs)) l$name else inner(k))
        set.top(y)
      } else mx.internal.caffe.fail(l, "operation ", oper, " is not supported")
    },
    Flatten = {
      p <- p.of("flatten_param")
      axis <- mx.internal.pt.num(p, "axis", 1)
      end <- mx.internal.pt.num(p, "end_axis", -1)
      x <- get.bottom()
      if (axis == 1 && end == -1) return(set.top(op("Flatten", list(x))))
      xs <- mx.internal.caffe.shape(st, x)
      if (is.null(xs)) mx.internal.caffe.fail(l, "axis/end_axis other than 1/-1 need a known input shape")
      r <- length(xs)
      a <- if (axis < 0) axis + r else axis
      e <- if (end < 0) end + r else end
      shape <- c(xs[seq_len(a)], prod(xs[(a + 1):(e + 1)]), if (e + 1 < r) xs[(e + 2):r])
      shape[[1]] <- 0
      set.top(op("Reshape", list(x), list(shape = tuple(shape))))
    },
    mx.internal.caffe.fail(l, "layer type ", l$type, " is not supported"))
  invisible(FALSE)
}
