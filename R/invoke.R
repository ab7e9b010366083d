# Calling engine ops imperatively, and turning R parameter values into the
# strings the engine's schemas read (the same strings MXNet writes in its
# symbol JSON).

# One parameter value as the engine's string.  Numeric vectors of length
# other than 1, and any key ending in "shape", become tuples in reversed
# (C) order, as in MXNet R.
mx.internal.param.string <- function(key, value) {
  if (is.logical(value) && length(value) == 1 && !is.na(value))
    return(if (value) "True" else "False")
  if (is.character(value) && length(value) == 1) return(value)
  if (is.numeric(value)) {
    if (anyNA(value)) stop("parameter '", key, "' contains NA", call. = FALSE)
    if (length(value) != 1 || grepl("shape$", key)) {
      v <- vapply(rev(value), mx.internal.num.string, "")
      return(paste0("(", paste(v, collapse = ", "), if (length(v) == 1) ",)" else ")"))
    }
    return(mx.internal.num.string(value))
  }
  stop("parameter '", key, "' must be a number, a numeric vector, TRUE/FALSE or a string",
       call. = FALSE)
}

mx.internal.num.string <- function(x) {
  if (is.finite(x) && x == round(x) && abs(x) < 1e15) return(sprintf("%.0f", x))
  if (is.infinite(x)) return(if (x > 0) "inf" else "-inf")
  format(x, digits = 15)
}

# Named list of R values (NULLs dropped, "." in names turned into "_") to
# parallel key/value character vectors.
mx.internal.params <- function(params) {
  params <- params[!vapply(params, is.null, TRUE)]
  if (length(params) == 0) return(list(keys = character(), vals = character()))
  keys <- names(params)
  if (is.null(keys) || any(keys == ""))
    stop("operator parameters must be named", call. = FALSE)
  keys <- gsub(".", "_", keys, fixed = TRUE)
  vals <- vapply(seq_along(params), function(i) mx.internal.param.string(keys[[i]], params[[i]]), "")
  list(keys = keys, vals = vals)
}

#' Call an engine operator on NDArrays
#'
#' The generated `mx.nd.<op>` functions call this; it is exported for
#' operators without a wrapper and for programs that pick ops by name.
#' R arrays among the inputs are converted to NDArrays first.
#'
#' @param op The engine's operator name (or an MXNet alias).
#' @param inputs A list of NDArrays (optionally named); `NULL` entries are
#'   dropped (absent optional inputs).
#' @param params A named list of parameters in R conventions.
#' @param ctx The device for operators without inputs.
#' @return An `MXNDArray`, or a list of them for operators with several
#'   outputs.
#' @export
mx.nd.internal.invoke <- function(op, inputs = list(), params = list(), ctx = NULL) {
  inputs <- inputs[!vapply(inputs, is.null, TRUE)]
  inputs <- lapply(inputs, function(x) if (is.mx.ndarray(x)) x else mx.nd.array(x, ctx))
  kv <- mx.internal.params(params)
  dev <- if (length(inputs) == 0) mx.internal.ctx(ctx) else NULL
  res <- .Call(C_nd_invoke, op, kv$keys, kv$vals, unname(inputs), dev)
  if (length(res) == 1) res[[1]] else res
}

# Imperative gradients of one op (tests and custom loops): the gradients of
# the non-aux inputs given the output gradients.
mx.nd.internal.backward <- function(op, inputs, ograds, params = list()) {
  inputs <- lapply(inputs, function(x) if (is.mx.ndarray(x)) x else mx.nd.array(x))
  kv <- mx.internal.params(params)
  .Call(C_nd_backward, op, kv$keys, kv$vals, unname(inputs), ograds)
}

# Runs `op` writing its visible outputs into the given NDArrays (which may
# be among the inputs): the in-place form used by optimizers.  These arrays
# change for every R reference to them.
mx.nd.internal.invoke.into <- function(op, inputs, outputs, params = list()) {
  kv <- mx.internal.params(params)
  if (is.mx.ndarray(outputs)) outputs <- list(outputs)
  .Call(C_nd_invoke_into, op, kv$keys, kv$vals, unname(inputs), unname(outputs))
  invisible(outputs)
}
