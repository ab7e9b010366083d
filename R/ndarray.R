# NDArrays: external pointers to engine tensors with class "MXNDArray".
# R's dim is the reverse of the engine's C-order shape, so data moves
# between R and the engine with no transpose.  Arrays are values: every
# operation returns a new array.

#' Create NDArrays
#'
#' `mx.nd.array` copies an R vector, matrix or array into an NDArray;
#' `mx.nd.zeros` and `mx.nd.ones` make filled arrays of a given R shape.
#' The R dims are kept: `dim(mx.nd.array(x))` equals `dim(x)`.
#'
#' @param src.array A numeric, integer or logical vector, matrix or array.
#' @param shape The R dims of the result.
#' @param ctx The device, by default [mx.ctx.default()].
#' @param dtype The element type: `"float32"` (the default) or `"float64"`
#'   (also `"int32"`, `"int64"`, `"int8"`, `"uint8"`).
#' @return An `MXNDArray`.
#' @examples
#' a <- mx.nd.array(matrix(1:6, 2, 3))
#' dim(a)
#' as.array(a * 2)
#' mx.nd.zeros(c(2, 3))
#' @export
mx.nd.array <- function(src.array, ctx = NULL, dtype = "float32") {
  if (is.mx.ndarray(src.array)) return(mx.nd.copyto(src.array, mx.internal.ctx(ctx)))
  if (is.data.frame(src.array)) src.array <- data.matrix(src.array)
  if (!is.numeric(src.array) && !is.logical(src.array))
    stop("src.array must be a numeric, integer or logical vector, matrix or array", call. = FALSE)
  ctx <- mx.internal.ctx(ctx)
  mx.internal.gpu.retry(.Call(C_nd_from_r, src.array, dim(src.array), dtype, ctx), ctx)
}

#' @rdname mx.nd.array
#' @export
mx.nd.zeros <- function(shape, ctx = NULL, dtype = "float32") {
  ctx <- mx.internal.ctx(ctx)
  mx.internal.gpu.retry(.Call(C_nd_full, mx.internal.shape(shape), 0, dtype, ctx), ctx)
}

#' @rdname mx.nd.array
#' @export
mx.nd.ones <- function(shape, ctx = NULL, dtype = "float32") {
  ctx <- mx.internal.ctx(ctx)
  mx.internal.gpu.retry(.Call(C_nd_full, mx.internal.shape(shape), 1, dtype, ctx), ctx)
}

mx.internal.shape <- function(shape) {
  if (!is.numeric(shape) || length(shape) == 0 || anyNA(shape))
    stop("shape must be a vector of positive whole numbers", call. = FALSE)
  shape
}

#' Copy an NDArray to a device
#'
#' @param src An `MXNDArray`.
#' @param ctx The target device.
#' @param dtype Optional new element type.
#' @return A new `MXNDArray` on `ctx`.
#' @export
mx.nd.copyto <- function(src, ctx, dtype = NULL) {
  ctx <- mx.internal.ctx(ctx)
  mx.internal.gpu.retry(.Call(C_nd_copyto, src, ctx, dtype), ctx)
}

#' Is this an NDArray?
#' @param x An object.
#' @return `TRUE` for an `MXNDArray`.
#' @export
is.mx.ndarray <- function(x) inherits(x, "MXNDArray")

#' The device of an NDArray
#' @param nd An `MXNDArray`.
#' @return An `MXContext`.
#' @export
ctx <- function(nd) {
  if (!is.mx.ndarray(nd)) stop("ctx() needs an MXNDArray", call. = FALSE)
  .Call(C_nd_ctx, nd)
}

#' The element type of an NDArray
#' @param nd An `MXNDArray`.
#' @return A string such as `"float32"`.
#' @export
mx.nd.dtype <- function(nd) .Call(C_nd_dtype, nd)

#' NDArray methods
#'
#' `as.array` and `as.matrix` copy values back to R (as doubles); `dim` and
#' `length` describe the array; `print` shows its values.
#'
#' @param x,object An `MXNDArray`.
#' @param mode Passed to [as.vector()].
#' @param ... Ignored.
#' @name MXNDArray
NULL

#' @rdname MXNDArray
#' @export
as.array.MXNDArray <- function(x, ...) .Call(C_nd_to_r, x)

#' @rdname MXNDArray
#' @export
as.matrix.MXNDArray <- function(x, ...) {
  d <- dim(x)
  if (length(d) != 2) stop("as.matrix needs a 2-D NDArray; this one has dim ", paste(d, collapse = "x"), call. = FALSE)
  as.array(x)
}

#' @rdname MXNDArray
#' @export
as.vector.MXNDArray <- function(x, mode = "any") as.vector(as.array(x), mode)

#' @rdname MXNDArray
#' @export
dim.MXNDArray <- function(x) .Call(C_nd_dim, x)

#' @rdname MXNDArray
#' @export
length.MXNDArray <- function(x) prod(.Call(C_nd_dim, x))

#' @rdname MXNDArray
#' @export
print.MXNDArray <- function(x, ...) {
  if (!.Call(C_nd_is_valid, x)) {
    cat("<MXNDArray: invalid handle (restored from saveRDS?)>\n")
    return(invisible(x))
  }
  print(as.array(x), ...)
  invisible(x)
}

#' @rdname MXNDArray
#' @export
format.MXNDArray <- function(x, ...) {
  paste0("<MXNDArray ", paste(dim(x), collapse = "x"), " ", mx.nd.dtype(x), " ", format(ctx(x)), ">")
}

#' @rdname MXNDArray
#' @export
str.MXNDArray <- function(object, ...) cat(format(object), "\n")

# Arithmetic and comparisons.  Same-shape pairs use the element-wise ops,
# other pairs broadcast; a scalar on either side uses the scalar ops.
mx.internal.binary.ops <- list(
  "+" = c("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
  "-" = c("elemwise_sub", "broadcast_sub", "_minus_scalar", "_rminus_scalar"),
  "*" = c("elemwise_mul", "broadcast_mul", "_mul_scalar", "_mul_scalar"),
  "/" = c("elemwise_div", "broadcast_div", "_div_scalar", "_rdiv_scalar"),
  "^" = c("_power", "broadcast_power", "_power_scalar", "_rpower_scalar"),
  "%%" = c("_mod", "broadcast_mod", "_mod_scalar", "_rmod_scalar"),
  "==" = c("_equal", "broadcast_equal", "_equal_scalar", "_equal_scalar"),
  "!=" = c("_not_equal", "broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar"),
  ">" = c("_greater", "broadcast_greater", "_greater_scalar", "_lesser_scalar"),
  ">=" = c("_greater_equal", "broadcast_greater_equal", "_greater_equal_scalar", "_lesser_equal_scalar"),
  "<" = c("_lesser", "broadcast_lesser", "_lesser_scalar", "_greater_scalar"),
  "<=" = c("_lesser_equal", "broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar"))

#' @rdname MXNDArray
#' @param e1,e2 NDArrays or numbers.
#' @export
Ops.MXNDArray <- function(e1, e2) {
  if (missing(e2)) {
    if (.Generic == "-") return(mx.nd.internal.invoke("negative", list(e1)))
    if (.Generic == "+") return(e1)
    stop("unary ", .Generic, " is not defined for MXNDArray", call. = FALSE)
  }
  ops <- mx.internal.binary.ops[[.Generic]]
  if (is.null(ops)) stop("operator ", .Generic, " is not defined for MXNDArray", call. = FALSE)
  nd1 <- is.mx.ndarray(e1)
  nd2 <- is.mx.ndarray(e2)
  scalar <- function(x) is.numeric(x) && length(x) == 1 && is.null(dim(x)) || is.logical(x) && length(x) == 1
  if (nd1 && !nd2 && scalar(e2))
    return(mx.nd.internal.invoke(ops[[3]], list(e1), list(scalar = as.numeric(e2))))
  if (nd2 && !nd1 && scalar(e1))
    return(mx.nd.internal.invoke(ops[[4]], list(e2), list(scalar = as.numeric(e1))))
  if (!nd1) e1 <- mx.nd.array(e1, ctx(e2), mx.nd.dtype(e2))
  if (!nd2) e2 <- mx.nd.array(e2, ctx(e1), mx.nd.dtype(e1))
  same <- identical(as.numeric(dim(e1)), as.numeric(dim(e2)))
  mx.nd.internal.invoke(if (same) ops[[1]] else ops[[2]], list(e1, e2))
}

#' Save and load NDArrays
#'
#' Uses MXNet's NDArray file format, so parameter files written by MXNet
#' (`prefix-0010.params`) load here and files written here load in MXNet.
#' Writes go through a temporary file that is renamed into place.
#'
#' @param ndarray An `MXNDArray` or a list of them (named or unnamed).
#' @param filename The file.
#' @return `mx.nd.load` returns a list of `MXNDArray`, named when the file
#'   stores names.
#' @examples
#' f <- tempfile(fileext = ".params")
#' mx.nd.save(list(w = mx.nd.ones(c(2, 3))), f)
#' as.array(mx.nd.load(f)$w)
#' @export
mx.nd.save <- function(ndarray, filename) {
  if (is.mx.ndarray(ndarray)) ndarray <- list(ndarray)
  if (!is.list(ndarray) || !all(vapply(ndarray, is.mx.ndarray, TRUE)))
    stop("ndarray must be an MXNDArray or a list of MXNDArrays", call. = FALSE)
  nm <- names(ndarray)
  if (!is.null(nm) && any(is.na(nm) | nm == "")) stop("either every array has a name or none has", call. = FALSE)
  .Call(C_nd_save, unname(ndarray), nm, path.expand(filename))
  invisible(NULL)
}

#' @rdname mx.nd.save
#' @export
mx.nd.load <- function(filename) {
  .Call(C_nd_load, path.expand(filename))
}
