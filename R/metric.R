# Evaluation metrics, as in MXNet R: a metric is list(init, update, get) of
# class "mx.metric"; its state is c(number of batches, sum of per-batch
# values) and its value the mean of the per-batch values.
#
# The training loop may pass labels and predictions as NDArrays (as MXNet R
# 1.x does) or R arrays; update() turns NDArrays into R arrays once per
# batch (one copy to the CPU) and feval works on R arrays.  MXNet-1.x style
# fevals built from mx.nd.* calls still work, because those functions take
# R arrays and arithmetic between an R array and an NDArray gives an
# NDArray; a feval may return a number or an NDArray.  The built-in metrics
# are plain R on the CPU.
#
# Axes follow MXNet: predictions hold the classes on C-order axis 1, i.e. R
# dim length(dim) - 1 (the first R dim of a classes x batch matrix); labels
# hold class indices from 0.

mx.internal.metric.input <- function(x) {
  if (is.mx.ndarray(x)) return(as.array(x))
  if (is.data.frame(x)) return(data.matrix(x))
  x
}

#' Evaluation metrics
#'
#' `mx.metric.custom(name, feval)` makes a metric from `feval(label, pred)`,
#' which returns the value for one batch; the metric's value is the mean of
#' the batch values. `label` and `pred` reach `feval` as R arrays (NDArrays
#' given to `update` are copied to R first), in MXNet's layout: the batch is
#' the last R dim; a classifier's `pred` is `classes x batch` and its
#' `label` holds 0-based class indices. `mx.nd.*` functions accept these R
#' arrays, so fevals written for MXNet R 1.x work unchanged.
#'
#' The predefined metrics: `mx.metric.accuracy` (share of examples whose
#' arg-max class equals the label), `mx.metric.top_k_accuracy` (label among
#' the 5 highest scores), `mx.metric.mse`, `mx.metric.rmse`,
#' `mx.metric.mae`, `mx.metric.rmsle` (on `log1p` of both), `mx.metric.logloss`
#' (binary cross-entropy with predictions clipped to `[1e-15, 1 - 1e-15]`),
#' `mx.metric.logistic_acc` (prediction > 0.5 against 0/1 labels), and
#' `mx.metric.Perplexity` (`exp` of the mean negative log probability of the
#' label, labels equal to -1 left out). The regression metrics compare
#' `label` and `pred` element by element after flattening both.
#'
#' @param name The metric's name, shown in logs.
#' @param feval `function(label, pred)` returning a number for one batch.
#' @return A metric: a list of class `"mx.metric"` with `init()` (the empty
#'   state), `update(label, pred, state)` (the new state) and `get(state)`
#'   (`list(name, value)`).
#' @examples
#' m <- mx.metric.accuracy
#' st <- m$init()
#' st <- m$update(c(0, 1, 1), matrix(c(0.9, 0.1, 0.2, 0.8, 0.6, 0.4), 2), st)
#' m$get(st)
#' mae <- mx.metric.custom("mae", function(label, pred) mean(abs(label - pred)))
#' mae$get(mae$update(c(1, 2), c(1.5, 2.5), mae$init()))
#' @name mx.metric
NULL

#' @rdname mx.metric
#' @export
mx.metric.custom <- function(name, feval) {
  if (!is.character(name) || length(name) != 1) stop("name must be a string", call. = FALSE)
  if (!is.function(feval)) stop("feval must be a function(label, pred)", call. = FALSE)
  force(name)
  init <- function() c(0, 0)
  update <- function(label, pred, state) {
    lab <- mx.internal.metric.input(label)
    pr <- mx.internal.metric.input(pred)
    # One output per example: plain vectors, so fevals such as
    # mean(abs(label - pred)) work as in MXNet R.
    if (length(dim(lab)) == 1) lab <- as.vector(lab)
    if (length(dim(pr)) == 2 && dim(pr)[[1]] == 1 && length(lab) == dim(pr)[[2]]) pr <- as.vector(pr)
    m <- feval(lab, pr)
    if (is.mx.ndarray(m)) m <- as.array(m)
    m <- as.numeric(m)
    if (length(m) != 1)
      stop("metric '", name, "': feval must return one number, it returned ", length(m), call. = FALSE)
    c(state[[1]] + 1, state[[2]] + m)
  }
  get <- function(state) list(name = name, value = state[[2]] / state[[1]])
  structure(list(init = init, update = update, get = get), class = "mx.metric")
}

#' @export
print.mx.metric <- function(x, ...) {
  cat("<mx.metric ", x$get(c(0, 0))$name, ">\n", sep = "")
  invisible(x)
}

# Predictions as a classes x examples matrix (class axis = C-order axis 1 =
# R dim nd - 1), examples in the order of the flattened label.
mx.internal.class.matrix <- function(pred) {
  d <- dim(pred)
  nd <- length(d)
  if (nd < 2)
    stop("the prediction must have a class axis (classes x batch); got a vector of length ",
         length(pred), call. = FALSE)
  if (nd == 2) return(pred)
  k <- nd - 1L
  p <- aperm(pred, c(k, seq_len(nd)[-k]))
  dim(p) <- c(d[[k]], length(pred) %/% d[[k]])
  p
}

mx.internal.check.lengths <- function(label, n, what) {
  if (length(label) != n)
    stop(what, ": the label has ", length(label), " values but the prediction gives ", n,
         call. = FALSE)
}

mx.internal.flat.pair <- function(label, pred, what) {
  label <- as.numeric(label)
  pred <- as.numeric(pred)
  mx.internal.check.lengths(label, length(pred), what)
  list(label = label, pred = pred)
}

mx.internal.accuracy <- function(label, pred) {
  p <- mx.internal.class.matrix(pred)
  label <- as.numeric(label)
  mx.internal.check.lengths(label, ncol(p), "accuracy")
  if (ncol(p) == 0) return(NaN)
  cls <- if (nrow(p) == 1) rep(0, ncol(p)) else max.col(t(p), ties.method = "first") - 1
  mean(cls == label)
}

mx.internal.top.k <- function(k) {
  function(label, pred) {
    p <- mx.internal.class.matrix(pred)
    label <- as.numeric(label)
    n <- ncol(p)
    mx.internal.check.lengths(label, n, "top_k_accuracy")
    if (n == 0) return(NaN)
    C <- nrow(p)
    ok <- label >= 0 & label < C & label == round(label)
    s <- rep(NA_real_, n)
    s[ok] <- p[cbind(label[ok] + 1, which(ok))]
    # the label's rank: the number of classes scoring strictly higher
    higher <- colSums(p > rep(s, each = C))
    mean(ok & higher < k)
  }
}

#' @rdname mx.metric
#' @export
mx.metric.accuracy <- mx.metric.custom("accuracy", mx.internal.accuracy)

#' @rdname mx.metric
#' @export
mx.metric.top_k_accuracy <- mx.metric.custom("top_k_accuracy", mx.internal.top.k(5))

#' @rdname mx.metric
#' @export
mx.metric.mse <- mx.metric.custom("mse", function(label, pred) {
  v <- mx.internal.flat.pair(label, pred, "mse")
  mean((v$label - v$pred)^2)
})

#' @rdname mx.metric
#' @export
mx.metric.rmse <- mx.metric.custom("rmse", function(label, pred) {
  v <- mx.internal.flat.pair(label, pred, "rmse")
  sqrt(mean((v$label - v$pred)^2))
})

#' @rdname mx.metric
#' @export
mx.metric.mae <- mx.metric.custom("mae", function(label, pred) {
  v <- mx.internal.flat.pair(label, pred, "mae")
  mean(abs(v$label - v$pred))
})

#' @rdname mx.metric
#' @export
mx.metric.rmsle <- mx.metric.custom("rmsle", function(label, pred) {
  v <- mx.internal.flat.pair(label, pred, "rmsle")
  sqrt(mean((log1p(v$pred) - log1p(v$label))^2))
})

#' @rdname mx.metric
#' @export
mx.metric.Perplexity <- mx.metric.custom("Perplexity", function(label, pred) {
  p <- mx.internal.class.matrix(pred)
  label <- as.numeric(label)
  n <- ncol(p)
  mx.internal.check.lengths(label, n, "Perplexity")
  keep <- which(label != -1)
  # MXNet's pick clips out-of-range indices
  idx <- pmin(pmax(round(label[keep]), 0), nrow(p) - 1)
  prob <- p[cbind(idx + 1, keep)]
  exp(-sum(log(prob)) / length(keep))
})

#' @rdname mx.metric
#' @export
mx.metric.logloss <- mx.metric.custom("logloss", function(label, pred) {
  v <- mx.internal.flat.pair(label, pred, "logloss")
  p <- pmin(pmax(v$pred, 1e-15), 1 - 1e-15)
  -mean(v$label * log(p) + (1 - v$label) * log(1 - p))
})

#' @rdname mx.metric
#' @export
mx.metric.logistic_acc <- mx.metric.custom("accuracy", function(label, pred) {
  v <- mx.internal.flat.pair(label, pred, "logistic_acc")
  mean(v$label == (v$pred > 0.5))
})

#' Metric logger
#'
#' A reference class with numeric fields `train` and `eval`, to which
#' [mx.callback.log.train.metric()] appends the training and validation
#' metric values. Make one with `mx.metric.logger()` or
#' `mx.metric.logger$new()`.
#'
#' @field train Training metric values, one per logged period.
#' @field eval Validation metric values.
#' @examples
#' logger <- mx.metric.logger$new()
#' logger$train <- c(logger$train, 0.5)
#' logger$train
#' @importFrom methods new setRefClass
#' @export mx.metric.logger
#' @exportClass mx.metric.logger
mx.metric.logger <- methods::setRefClass("mx.metric.logger",
                                         fields = list(train = "numeric", eval = "numeric"))
