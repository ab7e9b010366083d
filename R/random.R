#' Random numbers
#'
#' `mx.set.seed` seeds symnet's generator (used by these functions, by the
#' initializers and by random ops such as Dropout); `mx.runif` and
#' `mx.rnorm` draw NDArrays of R shape `shape`. The generator is
#' counter-based: the same seed gives the same numbers whatever the number
#' of threads.
#'
#' @param seed A number.
#' @param shape R dims of the result.
#' @param min,max Bounds of the uniform distribution.
#' @param mean,sd Parameters of the normal distribution.
#' @param ctx The device.
#' @return `mx.runif` and `mx.rnorm` return an `MXNDArray`.
#' @examples
#' mx.set.seed(10)
#' as.array(mx.runif(c(2, 2), -10, 10))
#' @name mx.random
NULL

#' @rdname mx.random
#' @export
mx.set.seed <- function(seed) {
  if (!is.numeric(seed) || length(seed) != 1 || is.na(seed)) stop("seed must be a number", call. = FALSE)
  .Call(C_rng_seed, seed)
  invisible(NULL)
}

#' @rdname mx.random
#' @export
mx.runif <- function(shape, min = 0, max = 1, ctx = NULL) {
  if (!is.numeric(min) || !is.numeric(max) || min > max) stop("need min <= max", call. = FALSE)
  mx.nd.internal.invoke("_random_uniform", list(),
                        list(low = min, high = max, shape = mx.internal.shape(shape)), ctx)
}

#' @rdname mx.random
#' @export
mx.rnorm <- function(shape, mean = 0, sd = 1, ctx = NULL) {
  if (!is.numeric(sd) || sd < 0) stop("sd must be non-negative", call. = FALSE)
  mx.nd.internal.invoke("_random_normal", list(),
                        list(loc = mean, scale = sd, shape = mx.internal.shape(shape)), ctx)
}
