# Parameter initializers, as in MXNet R: an initializer is
# function(name, shape, ctx, allow.unknown = FALSE) returning an NDArray of R
# shape `shape` on `ctx`.  Only names ending in "weight" are drawn at random
# (from symnet's generator, so mx.set.seed repeats them); the rest follow
# MXNet's fixed rules: *bias, *beta, *moving_mean -> 0; *gamma, *moving_var
# -> 1; anything else is an error unless allow.unknown (then NULL).
# Xavier uses MXNet R's fans: fan_out = the last R dim (the C shape's first,
# e.g. num_hidden or num_filter), fan_in = the product of the other dims.

mx.internal.ends.with <- function(x, suffix) {
  n <- nchar(x)
  k <- nchar(suffix)
  n >= k && substr(x, n - k + 1L, n) == suffix
}

mx.init.internal.default <- function(name, shape, ctx, allow.unknown = FALSE) {
  if (mx.internal.ends.with(name, "bias") || mx.internal.ends.with(name, "beta") ||
      mx.internal.ends.with(name, "moving_mean"))
    return(mx.nd.zeros(shape, ctx))
  if (mx.internal.ends.with(name, "gamma") || mx.internal.ends.with(name, "moving_var"))
    return(mx.nd.ones(shape, ctx))
  if (isTRUE(allow.unknown)) return(NULL)
  stop("Unknown initialization pattern for ", name,
       " (only names ending in weight, bias, beta, gamma, moving_mean or moving_var are initialized)",
       call. = FALSE)
}

mx.internal.init.check.name <- function(name) {
  if (!is.character(name) || length(name) != 1 || is.na(name))
    stop("the initializer needs the parameter's name as a string", call. = FALSE)
}

mx.internal.init.positive <- function(x, what, zero.ok = TRUE) {
  if (!is.numeric(x) || length(x) != 1 || !is.finite(x) || x < 0 || (!zero.ok && x == 0))
    stop(what, " must be a ", if (zero.ok) "non-negative" else "positive", " number", call. = FALSE)
  as.numeric(x)
}

#' Parameter initializers
#'
#' Each function returns an initializer `function(name, shape, ctx,
#' allow.unknown = FALSE)` that makes the initial value of the parameter
#' `name` with R dims `shape` on device `ctx`. Only parameters whose names
#' end in `weight` are random: `mx.init.uniform(scale)` draws from
#' U(-scale, scale), `mx.init.normal(sd)` from N(0, sd^2), and
#' `mx.init.Xavier` uses `scale = sqrt(magnitude / factor)` with
#' `factor` the average of `fan_in` and `fan_out` (`"avg"`), `fan_in`
#' (`"in"`) or `fan_out` (`"out"`), where, as in MXNet R, `fan_out` is the
#' last R dim of the weight and `fan_in` the product of the others; it draws
#' from U(-scale, scale) (`rnd_type = "uniform"`) or N(0, scale^2)
#' (`"gaussian"`). `mx.init.MSRAPrelu` is Xavier with `rnd_type =
#' "gaussian"` and `magnitude = 2 / (1 + slope^2)` (He et al. 2015).
#'
#' Other names follow fixed rules: `*bias`, `*beta` and `*moving_mean` are
#' 0; `*gamma` and `*moving_var` are 1; any other name is an error, or
#' `NULL` with `allow.unknown = TRUE`. Random values come from symnet's
#' generator, so [mx.set.seed()] repeats them.
#'
#' @param scale Half-width of the uniform distribution.
#' @param sd Standard deviation of the normal distribution.
#' @param rnd_type `"uniform"` or `"gaussian"`.
#' @param factor_type `"avg"`, `"in"` or `"out"`.
#' @param magnitude Scale of the Xavier range.
#' @param slope The negative slope of the PReLU that follows the layer.
#' @return An initializer function.
#' @examples
#' mx.set.seed(0)
#' init <- mx.init.Xavier(factor_type = "in", magnitude = 2.34)
#' w <- init("fc1_weight", c(784, 128), mx.cpu())
#' range(as.array(w))
#' as.array(init("fc1_bias", 3, mx.cpu()))
#' @name mx.init
NULL

#' @rdname mx.init
#' @export
mx.init.uniform <- function(scale) {
  scale <- mx.internal.init.positive(scale, "scale")
  function(name, shape, ctx = NULL, allow.unknown = FALSE) {
    mx.internal.init.check.name(name)
    if (!mx.internal.ends.with(name, "weight"))
      return(mx.init.internal.default(name, shape, ctx, allow.unknown))
    mx.runif(shape, -scale, scale, ctx)
  }
}

#' @rdname mx.init
#' @export
mx.init.normal <- function(sd) {
  sd <- mx.internal.init.positive(sd, "sd")
  function(name, shape, ctx = NULL, allow.unknown = FALSE) {
    mx.internal.init.check.name(name)
    if (!mx.internal.ends.with(name, "weight"))
      return(mx.init.internal.default(name, shape, ctx, allow.unknown))
    mx.rnorm(shape, 0, sd, ctx)
  }
}

#' @rdname mx.init
#' @export
mx.init.Xavier <- function(rnd_type = "uniform", factor_type = "avg", magnitude = 3) {
  if (!is.character(rnd_type) || length(rnd_type) != 1 || !rnd_type %in% c("uniform", "gaussian"))
    stop("Not supported random type: rnd_type must be \"uniform\" or \"gaussian\"", call. = FALSE)
  if (!is.character(factor_type) || length(factor_type) != 1 ||
      !factor_type %in% c("avg", "in", "out"))
    stop("Not supported factor type: factor_type must be \"avg\", \"in\" or \"out\"", call. = FALSE)
  magnitude <- mx.internal.init.positive(magnitude, "magnitude", zero.ok = FALSE)
  function(name, shape, ctx = NULL, allow.unknown = FALSE) {
    mx.internal.init.check.name(name)
    if (!mx.internal.ends.with(name, "weight"))
      return(mx.init.internal.default(name, shape, ctx, allow.unknown))
    if (!is.numeric(shape) || length(shape) == 0 || any(shape < 1))
      stop("Xavier: the shape of ", name, " must be positive dims, got ",
           paste(shape, collapse = "x"), call. = FALSE)
    fan_out <- shape[[length(shape)]]
    fan_in <- prod(shape[-length(shape)])
    factor_val <- switch(factor_type, avg = (fan_in + fan_out) / 2, `in` = fan_in, out = fan_out)
    scale <- sqrt(magnitude / factor_val)
    if (rnd_type == "uniform") mx.runif(shape, -scale, scale, ctx) else mx.rnorm(shape, 0, scale, ctx)
  }
}

#' @rdname mx.init
#' @export
mx.init.MSRAPrelu <- function(factor_type = "avg", slope = 0.25) {
  if (!is.numeric(slope) || length(slope) != 1 || !is.finite(slope))
    stop("slope must be a number", call. = FALSE)
  mx.init.Xavier("gaussian", factor_type, 2 / (1 + slope^2))
}

#' Initialize a list of parameters
#'
#' Calls `initializer` on every named shape.
#'
#' @param initializer An initializer such as [mx.init.uniform()].
#' @param shape.array A named list of R dims, e.g. the `arg.shapes` of
#'   [mx.symbol.infer.shape()].
#' @param ctx The device (by default [mx.ctx.default()]).
#' @param skip.unknown Leave out parameters the initializer does not know
#'   (instead of an error).
#' @return A named list of NDArrays.
#' @examples
#' p <- mx.init.create(mx.init.uniform(0.1),
#'                     list(fc1_weight = c(4, 3), fc1_bias = 3, data = c(4, 10)))
#' names(p)
#' @export
mx.init.create <- function(initializer, shape.array, ctx = NULL, skip.unknown = TRUE) {
  if (!is.function(initializer)) stop("initializer must be a function, e.g. mx.init.uniform(0.01)",
                                      call. = FALSE)
  if (length(shape.array) == 0) return(list())
  nms <- names(shape.array)
  if (is.null(nms) || any(is.na(nms) | nms == ""))
    stop("shape.array must be a named list of shapes", call. = FALSE)
  ret <- lapply(seq_along(nms), function(i)
    initializer(nms[[i]], shape.array[[i]], ctx, allow.unknown = skip.unknown))
  names(ret) <- nms
  if (skip.unknown) ret <- ret[!vapply(ret, is.null, TRUE)]
  ret
}
