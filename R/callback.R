# Training callbacks, as in MXNet R.  A callback is
# function(iteration, nbatch, env, verbose) called by the training loop after
# each batch (batch.end.callback) or epoch (epoch.end.callback); env is the
# loop's environment, with env$metric (the metric object), env$train.metric
# and env$eval.metric (metric states), env$model, and env$end.of.epoch.
# Returning FALSE from an epoch callback stops training.
#
# Difference from MXNet R: mx.callback.early.stop keeps its state (best
# score, epochs since it) in its own closure instead of global variables, so
# several can run at once; the speedometer keeps its timer in its closure too.

mx.internal.metric.result <- function(env, state) {
  if (is.null(env$metric) || is.null(state)) return(NULL)
  env$metric$get(state)
}

#' Training callbacks
#'
#' Callbacks for `mx.model.FeedForward.create` and the other training loops,
#' each a `function(iteration, nbatch, env, verbose)`:
#' \describe{
#' \item{`mx.callback.log.train.metric(period, logger)`}{as a batch
#'   callback, every `period` batches reports the training metric and
#'   appends it (and the validation metric, when there is one) to `logger`,
#'   an [mx.metric.logger]; as an epoch callback (`nbatch` 0 or
#'   `env$end.of.epoch` TRUE) it appends to `logger` after every epoch.}
#' \item{`mx.callback.log.speedometer(batch.size, frequency)`}{every
#'   `frequency` batches reports the speed in samples per second and the
#'   training metric.}
#' \item{`mx.callback.save.checkpoint(prefix, period)`}{every `period`
#'   epochs saves the model with `mx.model.save(env$model, prefix,
#'   iteration)` (files `prefix-symbol.json` and `prefix-0001.params`, ...).}
#' \item{`mx.callback.early.stop(...)`}{an epoch callback that stops
#'   training (returns `FALSE`) when the training metric passes
#'   `train.metric`, when the validation metric passes `eval.metric`
#'   (below them when minimizing, above when `maximize = TRUE`), or when
#'   the validation metric has not improved on its best for `bad.steps`
#'   epochs in a row.}
#' }
#'
#' @param period How often, in batches or epochs, to act.
#' @param logger An optional [mx.metric.logger].
#' @param batch.size The number of samples per batch.
#' @param frequency How often, in batches, to report.
#' @param prefix The checkpoint files' prefix (a path).
#' @param train.metric,eval.metric Thresholds on the training and
#'   validation metric values, or `NULL`.
#' @param bad.steps The number of epochs without improvement of the
#'   validation metric after which to stop, or `NULL`.
#' @param maximize Whether larger metric values are better.
#' @param verbose Whether early stopping reports the best score.
#' @return A callback function; it returns `TRUE` to continue training
#'   (`FALSE` from early stopping to stop).
#' @examples
#' logger <- mx.metric.logger()
#' cb <- mx.callback.log.train.metric(1, logger)
#' env <- new.env()
#' env$metric <- mx.metric.rmse
#' env$train.metric <- env$metric$update(c(1, 2), c(1.5, 2.5), env$metric$init())
#' cb(1, 0, env, verbose = FALSE)
#' logger$train
#' @name mx.callback
NULL

#' @rdname mx.callback
#' @export
mx.callback.log.train.metric <- function(period, logger = NULL) {
  if (!is.numeric(period) || length(period) != 1 || is.na(period) || period < 1)
    stop("period must be a positive number", call. = FALSE)
  if (!is.null(logger) && !inherits(logger, "mx.metric.logger"))
    stop("Invalid mx.metric.logger: make one with mx.metric.logger()", call. = FALSE)
  function(iteration, nbatch, env, verbose = TRUE) {
    # At the end of an epoch (MXNet passes nbatch = 0) it logs every time,
    # silently: the training loop reports the epoch's metrics itself.
    epoch.end <- nbatch == 0 || isTRUE(env$end.of.epoch)
    if ((epoch.end || nbatch %% period == 0) && !is.null(env$metric)) {
      result <- mx.internal.metric.result(env, env$train.metric)
      if (!is.null(result)) {
        if (!epoch.end && isTRUE(verbose))
          message("Batch [", nbatch, "] Train-", result$name, "=", result$value)
        if (!is.null(logger)) {
          logger$train <- c(logger$train, result$value)
          res.eval <- mx.internal.metric.result(env, env$eval.metric)
          if (!is.null(res.eval)) {
            if (!epoch.end && isTRUE(verbose))
              message("Batch [", nbatch, "] Validation-", res.eval$name, "=", res.eval$value)
            logger$eval <- c(logger$eval, res.eval$value)
          }
        }
      }
    }
    TRUE
  }
}

#' @rdname mx.callback
#' @export
mx.callback.log.speedometer <- function(batch.size, frequency = 50) {
  if (!is.numeric(batch.size) || length(batch.size) != 1 || is.na(batch.size) || batch.size <= 0)
    stop("batch.size must be a positive number", call. = FALSE)
  if (!is.numeric(frequency) || length(frequency) != 1 || is.na(frequency) || frequency < 1)
    stop("frequency must be a positive number", call. = FALSE)
  last <- -1
  tic <- NULL
  tic.batch <- 0
  function(iteration, nbatch, env, verbose = TRUE) {
    # a batch number that does not grow means a new epoch: restart the clock
    if (is.null(tic) || nbatch <= last) {
      tic <<- Sys.time()
      tic.batch <<- nbatch
      last <<- nbatch
      return(TRUE)
    }
    last <<- nbatch
    if (nbatch %% frequency == 0) {
      now <- Sys.time()
      secs <- as.double(difftime(now, tic, units = "secs"))
      speed <- (nbatch - tic.batch) * batch.size / max(secs, 1e-9)
      tic.batch <<- nbatch
      if (isTRUE(verbose)) {
        result <- mx.internal.metric.result(env, env$train.metric)
        message("Batch [", nbatch, "] Speed: ", format(speed, digits = 6), " samples/sec",
                if (!is.null(result)) paste0(" Train-", result$name, "=", result$value) else "")
      }
      tic <<- now
    }
    TRUE
  }
}

#' @rdname mx.callback
#' @export
mx.callback.save.checkpoint <- function(prefix, period = 1) {
  if (!is.character(prefix) || length(prefix) != 1 || is.na(prefix) || prefix == "")
    stop("prefix must be a file name prefix", call. = FALSE)
  if (!is.numeric(period) || length(period) != 1 || is.na(period) || period < 1)
    stop("period must be a positive number", call. = FALSE)
  function(iteration, nbatch, env, verbose = TRUE) {
    if (iteration %% period == 0) {
      mx.model.save(env$model, prefix, iteration)
      if (isTRUE(verbose)) message(sprintf("Model checkpoint saved to %s-%04d.params", prefix, iteration))
    }
    TRUE
  }
}

#' @rdname mx.callback
#' @export
mx.callback.early.stop <- function(train.metric = NULL, eval.metric = NULL, bad.steps = NULL,
                                   maximize = FALSE, verbose = FALSE) {
  num.or.null <- function(x, what) {
    if (!is.null(x) && (!is.numeric(x) || length(x) != 1 || is.na(x)))
      stop(what, " must be NULL or a number", call. = FALSE)
  }
  num.or.null(train.metric, "train.metric")
  num.or.null(eval.metric, "eval.metric")
  num.or.null(bad.steps, "bad.steps")
  if (!is.null(bad.steps) && bad.steps < 1) stop("bad.steps must be at least 1", call. = FALSE)
  if (!is.logical(maximize) || length(maximize) != 1 || is.na(maximize))
    stop("maximize must be TRUE or FALSE", call. = FALSE)
  report <- isTRUE(verbose)
  passed <- function(value, threshold) if (maximize) value > threshold else value < threshold
  best.score <- NULL
  best.iter <- 0
  since.best <- 0
  function(iteration, nbatch, env, verbose = report) {
    if (!is.null(env$metric)) {
      if (!is.null(train.metric)) {
        res <- mx.internal.metric.result(env, env$train.metric)
        if (!is.null(res) && isTRUE(passed(res$value, train.metric))) {
          if (report) message("Early stop: Train-", res$name, "=", res$value, " passed ", train.metric)
          return(FALSE)
        }
      }
      if (!is.null(eval.metric)) {
        res <- mx.internal.metric.result(env, env$eval.metric)
        if (!is.null(res) && isTRUE(passed(res$value, eval.metric))) {
          if (report) message("Early stop: Validation-", res$name, "=", res$value, " passed ", eval.metric)
          return(FALSE)
        }
      }
      if (!is.null(bad.steps)) {
        res <- mx.internal.metric.result(env, env$eval.metric)
        if (!is.null(res) && !is.na(res$value)) {
          # a new run (iteration back at its start) resets the record
          if (is.null(best.score) || iteration <= best.iter) {
            best.score <<- res$value
            best.iter <<- iteration
            since.best <<- 0
          } else if (if (maximize) res$value >= best.score else res$value <= best.score) {
            best.score <<- res$value
            best.iter <<- iteration
            since.best <<- 0
          } else {
            since.best <<- since.best + 1
            if (since.best >= bad.steps) {
              if (report) message("Early stop: best Validation-", res$name, "=", best.score,
                                  " at iteration [", best.iter, "]")
              return(FALSE)
            }
          }
        }
      }
    }
    TRUE
  }
}
