# Graph-level helpers: bind a symbol to float64 values and compare the
# executor's gradients with central finite differences of
# L = sum(w * outputs).

bind64 <- function(symbol, values, grad = character(), aux = list()) {
  args <- arguments(symbol)
  arrays <- lapply(args, function(n) mx.nd.array(values[[n]], dtype = "float64"))
  names(arrays) <- args
  reqs <- ifelse(args %in% grad, "write", "null")
  auxa <- lapply(aux, function(a) mx.nd.array(a, dtype = "float64"))
  mx.symbol.bind(symbol, mx.cpu(), arrays, auxa, as.list(reqs))
}

exec_outputs <- function(ex) lapply(ex$ref.outputs, as.array)

graph_check_grad <- function(symbol, values, wrt, eps = 1e-6, rtol = 1e-3, atol = 1e-5, seed = NULL) {
  if (is.null(seed)) seed <- sample.int(1e6, 1)
  set.seed(seed)
  ex <- bind64(symbol, values, wrt)
  mx.exec.forward(ex, is.train = TRUE)
  outs <- exec_outputs(ex)
  w <- lapply(outs, function(o) array(runif(length(o), -1, 1), dim = dim(o)))
  mx.exec.backward(ex, lapply(w, function(x) mx.nd.array(x, dtype = "float64")))
  loss <- function(vals) {
    e <- bind64(symbol, vals)
    mx.exec.forward(e, is.train = TRUE)
    o <- exec_outputs(e)
    sum(vapply(seq_along(o), function(k) sum(o[[k]] * w[[k]]), 0))
  }
  for (n in wrt) {
    x <- values[[n]]
    num <- numeric(length(x))
    for (j in seq_along(x)) {
      vp <- values; vp[[n]][j] <- x[j] + eps
      vm <- values; vm[[n]][j] <- x[j] - eps
      num[j] <- (loss(vp) - loss(vm)) / (2 * eps)
    }
    ana <- as.numeric(as.array(ex$ref.grad.arrays[[n]]))
    bad <- abs(ana - num) > atol + rtol * abs(num)
    if (any(bad)) {
      k <- which(bad)[1]
      fail(sprintf("gradient of '%s' wrong at %d: analytic %.8g, numeric %.8g (seed %d)", n, k, ana[k], num[k], seed))
    } else succeed()
  }
  invisible(seed)
}
