# Executors: a symbol bound to arrays on one device.  The R object is an
# environment of class "MXExecutor" (reference semantics, like MXNet R's
# Rcpp class): `ref.*` fields are the bound arrays themselves; `arg.arrays`,
# `grad.arrays`, `aux.arrays` and `outputs` are fresh copies.

mx.internal.req.code <- c(null = 0L, write = 1L, add = 2L)

mx.internal.plan.memory <- function() {
  getOption("symnet.plan.memory", Sys.getenv("SYMNET_PLAN_MEMORY", "1") != "0")
}

mx.internal.make.executor <- function(symbol, ctx, arg.arrays, grad.arrays, aux.arrays, reqs,
                                      dry.run = FALSE) {
  arg.names <- arguments(symbol)
  aux.names <- .Call(C_sym_aux, symbol)
  handle <- mx.internal.gpu.retry(.Call(C_exec_bind, symbol, ctx, unname(arg.arrays), unname(grad.arrays),
                  as.integer(reqs), unname(aux.arrays), mx.internal.plan.memory(), dry.run,
                  getOption("symnet.cuda.graphs", Sys.getenv("SYMNET_CUDA_GRAPH", "1") != "0")), ctx)
  ex <- new.env(parent = emptyenv())
  ex$handle <- handle
  ex$symbol <- symbol
  ex$ctx <- ctx
  ex$ref.arg.arrays <- stats::setNames(arg.arrays, arg.names)
  ex$ref.grad.arrays <- stats::setNames(grad.arrays, arg.names)
  ex$ref.aux.arrays <- stats::setNames(aux.arrays, aux.names)
  ex$ref.outputs <- if (dry.run) list() else stats::setNames(.Call(C_exec_outputs, handle), outputs(symbol))
  copies <- function(l) lapply(l, function(a) if (is.null(a)) NULL else mx.nd.copyto(a, ctx))
  makeActiveBinding("arg.arrays", function() copies(ex$ref.arg.arrays), ex)
  makeActiveBinding("grad.arrays", function() copies(ex$ref.grad.arrays), ex)
  makeActiveBinding("aux.arrays", function() copies(ex$ref.aux.arrays), ex)
  makeActiveBinding("outputs", function() copies(ex$ref.outputs), ex)
  class(ex) <- "MXExecutor"
  ex
}

#' Bind a symbol with arrays of given shapes
#'
#' Allocates zero-filled argument, gradient and aux arrays on `ctx` from the
#' shapes of the named inputs, and binds them.
#'
#' @param symbol An `MXSymbol`.
#' @param ctx The device.
#' @param grad.req `"null"`, `"write"` or `"add"`: one for all arguments
#'   (arguments whose names end in `data` or `label`, and `fixed.param`,
#'   get `"null"`), or a named vector per argument.
#' @param fixed.param Names of arguments that get no gradient.
#' @param ... R dims of the inputs, e.g. `data = c(28, 28, 1, 100)`.
#' @return An `MXExecutor`.
#' @export
mx.simple.bind <- function(symbol, ctx, grad.req = "null", fixed.param = NULL, ...) {
  if (!is.mx.symbol(symbol)) stop("symbol must be an MXSymbol", call. = FALSE)
  ctx <- mx.internal.ctx(ctx)
  shapes <- mx.symbol.infer.shape(symbol, ...)
  if (is.null(shapes))
    stop("the input shapes given do not determine every shape in the graph; give the shapes of all inputs",
         call. = FALSE)
  arg.names <- names(shapes$arg.shapes)
  reqs <- mx.internal.grad.reqs(grad.req, arg.names, fixed.param)
  arg.arrays <- lapply(shapes$arg.shapes, function(s) mx.nd.zeros(s, ctx))
  grad.arrays <- lapply(seq_along(arg.names), function(i)
    if (reqs[[i]] == 0L) NULL else mx.nd.zeros(shapes$arg.shapes[[i]], ctx))
  aux.arrays <- lapply(shapes$aux.shapes, function(s) mx.nd.zeros(s, ctx))
  mx.internal.make.executor(symbol, ctx, arg.arrays, grad.arrays, aux.arrays, reqs)
}

mx.internal.grad.reqs <- function(grad.req, arg.names, fixed.param = NULL, default.null = TRUE) {
  if (length(grad.req) == 1 && is.null(names(grad.req))) {
    r <- rep(grad.req, length(arg.names))
    if (default.null) r[grepl("(data|label)$", arg.names)] <- "null"
  } else {
    r <- rep("null", length(arg.names))
    if (!is.null(names(grad.req))) {
      bad <- setdiff(names(grad.req), arg.names)
      if (length(bad)) stop("grad.req names unknown arguments: ", paste(bad, collapse = ", "), call. = FALSE)
      r[match(names(grad.req), arg.names)] <- unlist(grad.req)
    } else if (length(grad.req) == length(arg.names)) {
      r <- unlist(grad.req)
    } else {
      stop("grad.req must be one value, one per argument, or named", call. = FALSE)
    }
  }
  r[arg.names %in% fixed.param] <- "null"
  codes <- mx.internal.req.code[r]
  if (anyNA(codes)) stop("grad.req must be \"null\", \"write\" or \"add\"", call. = FALSE)
  unname(codes)
}

#' Bind a symbol to given arrays
#'
#' The arrays are copied onto `ctx`; gradient arrays are made for arguments
#' whose grad req is not `"null"`.
#'
#' @param symbol An `MXSymbol`.
#' @param ctx The device.
#' @param arg.arrays Arrays for the arguments, by position or by name.
#' @param aux.arrays Arrays for the aux states.
#' @param grad.reqs One grad req or one per argument.
#' @return An `MXExecutor`.
#' @export
mx.symbol.bind <- function(symbol, ctx, arg.arrays, aux.arrays = list(), grad.reqs = "null") {
  if (!is.mx.symbol(symbol)) stop("symbol must be an MXSymbol", call. = FALSE)
  ctx <- mx.internal.ctx(ctx)
  arg.names <- arguments(symbol)
  aux.names <- .Call(C_sym_aux, symbol)
  arg.arrays <- mx.internal.match.arrays(arg.arrays, arg.names, "arg.arrays")
  aux.arrays <- mx.internal.match.arrays(aux.arrays, aux.names, "aux.arrays")
  arg.arrays <- lapply(arg.arrays, function(a) mx.nd.copyto(mx.internal.as.nd(a), ctx))
  aux.arrays <- lapply(aux.arrays, function(a) mx.nd.copyto(mx.internal.as.nd(a), ctx))
  reqs <- mx.internal.grad.reqs(unlist(grad.reqs), arg.names, default.null = FALSE)
  grad.arrays <- lapply(seq_along(arg.names), function(i)
    if (reqs[[i]] == 0L) NULL else mx.nd.zeros(dim(arg.arrays[[i]]), ctx, mx.nd.dtype(arg.arrays[[i]])))
  mx.internal.make.executor(symbol, ctx, arg.arrays, grad.arrays, aux.arrays, reqs)
}

mx.internal.as.nd <- function(a) if (is.mx.ndarray(a)) a else mx.nd.array(a)

mx.internal.match.arrays <- function(arrays, names, what) {
  if (length(arrays) != length(names))
    stop(what, " has ", length(arrays), " arrays but the symbol needs ", length(names),
         if (length(names)) paste0(" (", paste(names, collapse = ", "), ")") else "", call. = FALSE)
  if (!is.null(names(arrays)) && all(names(arrays) != "")) {
    idx <- match(names, names(arrays))
    if (anyNA(idx)) stop(what, " lacks ", paste(names[is.na(idx)], collapse = ", "), call. = FALSE)
    arrays <- arrays[idx]
  }
  unname(arrays)
}

#' Run an executor
#'
#' @param exec An `MXExecutor`.
#' @param is.train Whether this is a training pass (Dropout active,
#'   BatchNorm uses and updates batch statistics, state kept for backward).
#' @param ... Optional head gradients for backward, one per output (by
#'   default ones; loss outputs ignore them).
#' @return The executor, invisibly.
#' @export
mx.exec.forward <- function(exec, is.train = TRUE) {
  mx.internal.check.exec(exec)
  .Call(C_exec_forward, exec$handle, isTRUE(is.train))
  invisible(exec)
}

#' @rdname mx.exec.forward
#' @export
mx.exec.backward <- function(exec, ...) {
  mx.internal.check.exec(exec)
  hg <- list(...)
  if (length(hg) == 1 && is.list(hg[[1]])) hg <- hg[[1]]
  hg <- lapply(hg, function(g) if (is.null(g)) NULL else mx.internal.as.nd(g))
  .Call(C_exec_backward, exec$handle, hg)
  invisible(exec)
}

mx.internal.check.exec <- function(exec) {
  if (!inherits(exec, "MXExecutor")) stop("exec must be an MXExecutor", call. = FALSE)
}

mx.internal.update.arrays <- function(targets, arrays, match.name, skip.null, what) {
  if (!length(arrays) && !length(targets)) return(invisible(NULL))
  if (match.name) {
    if (!length(arrays)) return(invisible(NULL))
    if (is.null(names(arrays))) stop("match.name = TRUE needs named arrays", call. = FALSE)
    for (n in names(arrays)) {
      if (is.null(arrays[[n]]) && skip.null) next
      if (!n %in% names(targets)) next
      if (is.null(targets[[n]])) stop(what, " '", n, "' is not bound (grad req null?)", call. = FALSE)
      .Call(C_nd_copy_into, targets[[n]], mx.internal.as.nd(arrays[[n]]))
    }
  } else {
    if (length(arrays) != length(targets))
      stop(what, ": ", length(arrays), " arrays given, ", length(targets), " bound", call. = FALSE)
    for (i in seq_along(arrays)) {
      if (is.null(arrays[[i]])) {
        if (skip.null) next
        stop(what, " ", i, " is NULL (use skip.null = TRUE)", call. = FALSE)
      }
      if (is.null(targets[[i]])) stop(what, " ", i, " is not bound", call. = FALSE)
      .Call(C_nd_copy_into, targets[[i]], mx.internal.as.nd(arrays[[i]]))
    }
  }
  invisible(NULL)
}

#' Copy new values into an executor's arrays
#'
#' @param exec An `MXExecutor`.
#' @param arg.arrays,aux.arrays,grad.arrays Lists of arrays (NDArrays or R
#'   arrays) by position, or by name with `match.name = TRUE`.
#' @param match.name Match by name instead of position.
#' @param skip.null Skip `NULL` entries.
#' @return `NULL`, invisibly.
#' @export
mx.exec.update.arg.arrays <- function(exec, arg.arrays, match.name = FALSE, skip.null = FALSE) {
  mx.internal.check.exec(exec)
  mx.internal.update.arrays(exec$ref.arg.arrays, arg.arrays, match.name, skip.null, "argument")
}

#' @rdname mx.exec.update.arg.arrays
#' @export
mx.exec.update.aux.arrays <- function(exec, aux.arrays, match.name = FALSE, skip.null = FALSE) {
  mx.internal.check.exec(exec)
  mx.internal.update.arrays(exec$ref.aux.arrays, aux.arrays, match.name, skip.null, "aux state")
}

#' @rdname mx.exec.update.arg.arrays
#' @export
mx.exec.update.grad.arrays <- function(exec, grad.arrays, match.name = FALSE, skip.null = FALSE) {
  mx.internal.check.exec(exec)
  mx.internal.update.arrays(exec$ref.grad.arrays, grad.arrays, match.name, skip.null, "gradient")
}

#' @export
print.MXExecutor <- function(x, ...) {
  st <- .Call(C_exec_stats, x$handle)
  cat("<MXExecutor on ", format(x$ctx), ": ", length(x$ref.arg.arrays), " arguments, ",
      length(x$ref.outputs), " outputs, arena ", format(st[["planned.bytes"]], big.mark = ","),
      " bytes>\n", sep = "")
  invisible(x)
}

#' Memory planned for a symbol
#'
#' Binds `symbol` for planning only and reports the bytes of the planned
#' arena against one buffer per intermediate entry.
#'
#' @param symbol An `MXSymbol`.
#' @param ... R dims of the inputs.
#' @param train Plan for training (forward and backward) or inference.
#' @param plan `FALSE` disables planning and in-place reuse.
#' @return A named numeric vector: planned.bytes, naive.bytes,
#'   workspace.bytes, entries, steps, inplace.
#' @export
mx.symbol.memory.plan <- function(symbol, ..., train = TRUE, plan = TRUE) {
  op <- options(symnet.plan.memory = plan)
  on.exit(options(op))
  ex <- mx.simple.bind(symbol, mx.cpu(), grad.req = if (train) "write" else "null", ...)
  mx.exec.memory(ex)
}

#' @rdname mx.symbol.memory.plan
#' @param exec An `MXExecutor`.
#' @export
mx.exec.memory <- function(exec) {
  mx.internal.check.exec(exec)
  .Call(C_exec_stats, exec$handle)
}
