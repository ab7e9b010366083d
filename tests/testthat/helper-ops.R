# Helpers for op tests: run one engine op imperatively in float64 on R
# arrays, check its gradient against central finite differences, and
# check that bad input gives an R error.

to_nd64 <- function(x) {
  if (is.mx.ndarray(x)) return(x)
  mx.nd.array(x, dtype = "float64")
}

# Visible outputs of `op` as R arrays.
op_forward <- function(op, inputs, params = list(), dtype = "float64", is_train = FALSE) {
  nd <- lapply(inputs, function(x) if (is.mx.ndarray(x)) x else mx.nd.array(x, dtype = dtype))
  if (isTRUE(is_train)) {
    stop("op_forward(is_train = TRUE) is not supported; use op_backward")
  }
  res <- mx.nd.internal.invoke(op, nd, params)
  if (is.mx.ndarray(res)) res <- list(res)
  lapply(res, as.array)
}

# Input gradients (aux states excluded) given output gradients.
op_backward <- function(op, inputs, ograds, params = list(), dtype = "float64") {
  nd <- lapply(inputs, function(x) if (is.mx.ndarray(x)) x else mx.nd.array(x, dtype = dtype))
  og <- if (is.null(ograds)) list() else
    lapply(ograds, function(g) if (is.null(g)) NULL else if (is.mx.ndarray(g)) g else mx.nd.array(g, dtype = dtype))
  lapply(mx.nd.internal.backward(op, nd, og, params), as.array)
}

# Number of non-aux inputs of op, from the registry.
op_num_inputs <- function(op, inputs) {
  info <- symnet:::mx.internal.op.info()
  e <- info[[op]]
  if (is.null(e)) {
    hit <- Filter(function(x) op %in% strsplit(x$aliases, "|", fixed = TRUE)[[1]], info)
    e <- hit[[1]]
  }
  length(inputs) - length(e$aux)
}

# Central finite differences of L = sum(w * outputs) (w random, fixed) with
# respect to every input in `wrt`, compared with op_backward.
op_check_grad <- function(op, inputs, params = list(), wrt = NULL, eps = 1e-6, rtol = 1e-3,
                          atol = 1e-5, seed = NULL) {
  if (is.null(seed)) seed <- sample.int(1e6, 1)
  set.seed(seed)
  if (is.null(wrt)) wrt <- seq_len(op_num_inputs(op, inputs))
  out <- op_forward(op, inputs, params)
  w <- lapply(out, function(o) array(runif(length(o), -1, 1), dim = dim(o)))
  loss <- function(inp) {
    o <- op_forward(op, inp, params)
    sum(vapply(seq_along(o), function(k) sum(o[[k]] * w[[k]]), 0))
  }
  grads <- op_backward(op, inputs, w, params)
  for (i in wrt) {
    x <- inputs[[i]]
    num <- numeric(length(x))
    for (j in seq_along(x)) {
      xp <- x; xp[j] <- xp[j] + eps
      xm <- x; xm[j] <- xm[j] - eps
      ip <- inputs; ip[[i]] <- xp
      im <- inputs; im[[i]] <- xm
      num[j] <- (loss(ip) - loss(im)) / (2 * eps)
    }
    ana <- as.numeric(grads[[i]])
    bad <- abs(ana - num) > atol + rtol * abs(num)
    if (any(bad)) {
      k <- which(bad)[1]
      fail(sprintf("%s: gradient of input %d wrong at element %d: analytic %.8g, numeric %.8g (seed %d, %d of %d elements off)",
                   op, i, k, ana[k], num[k], seed, sum(bad), length(bad)))
    } else {
      succeed()
    }
  }
  invisible(seed)
}

expect_op_error <- function(op, inputs, params = list(), regexp = NULL) {
  expect_error(op_forward(op, inputs, params), regexp)
}
