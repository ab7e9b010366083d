# Learning-rate schedulers, as in MXNet R: each returns a function of the
# optimizer's environment (fields lr, count, num_update) that lowers
# env$lr when num_update passes a step.  The optimizer calls it before every
# weight update with num_update = the number of the current step.
#
# MXNet R quirk kept: FactorScheduler lowers lr at most once per call.
# Difference: MXNet R's MultiFactorScheduler never applies its last step
# (it tests cur_step_ind < length(step)); here every step applies, as in
# MXNet's Python MultiFactorScheduler.

mx.internal.check.factor <- function(factor_val, stop_factor_lr) {
  if (!is.numeric(factor_val) || length(factor_val) != 1 || is.na(factor_val) || factor_val <= 0)
    stop("factor_val must be a positive number", call. = FALSE)
  if (factor_val > 1) stop("Factor must be no more than 1 to make lr reduce", call. = FALSE)
  if (!is.numeric(stop_factor_lr) || length(stop_factor_lr) != 1 || is.na(stop_factor_lr) ||
      stop_factor_lr < 0)
    stop("stop_factor_lr must be a non-negative number", call. = FALSE)
}

mx.internal.lower.lr <- function(env, factor_val, stop_factor_lr, verbose) {
  lr <- env$lr * factor_val
  if (lr < stop_factor_lr) {
    lr <- stop_factor_lr
    if (verbose) message("Update[", env$num_update, "]: now learning rate arrived at ", lr,
                         ", will not change in the future")
  } else if (verbose) {
    message("Update[", env$num_update, "]: learning rate is changed to ", lr)
  }
  env$lr <- lr
}

#' Learning-rate schedulers
#'
#' `mx.lr_scheduler.FactorScheduler` multiplies the learning rate by
#' `factor_val` every `step` updates: updates `1..step` use the initial
#' rate, `step+1..2*step` the rate times `factor_val`, and so on.
#' `mx.lr_scheduler.MultiFactorScheduler` multiplies it by `factor_val`
#' once after each of the increasing update numbers in `step`. The rate
#' never goes below `stop_factor_lr`.
#'
#' The result is passed as `lr_scheduler` to [mx.opt.create()] (or to
#' `mx.model.FeedForward.create`). It is called with the optimizer's
#' environment before every weight update and changes its `lr` field (and
#' `count`, `cur_step_ind`); `num_update` holds the number of the current
#' update.
#'
#' @param step For `FactorScheduler`, the number of updates between
#'   reductions (at least 1); for `MultiFactorScheduler`, an increasing
#'   vector of update numbers.
#' @param factor_val The factor (at most 1) applied at each reduction.
#' @param stop_factor_lr The smallest learning rate.
#' @param verbose Whether to report each change with [message()].
#' @return A function `function(optimizerEnv)`.
#' @examples
#' sched <- mx.lr_scheduler.FactorScheduler(step = 2, factor_val = 0.5, verbose = FALSE)
#' env <- new.env()
#' env$lr <- 1; env$count <- 0
#' for (i in 1:6) { env$num_update <- i; sched(env); cat(env$lr, "") }
#' @name mx.lr_scheduler
NULL

#' @rdname mx.lr_scheduler
#' @export
mx.lr_scheduler.FactorScheduler <- function(step, factor_val, stop_factor_lr = 1e-8, verbose = TRUE) {
  if (!is.numeric(step) || length(step) != 1 || is.na(step))
    stop("step must be a number of updates", call. = FALSE)
  if (step < 1) stop("Schedule step must be greater or equal than 1 round", call. = FALSE)
  mx.internal.check.factor(factor_val, stop_factor_lr)
  force(verbose)
  function(optimizerEnv) {
    count <- if (is.null(optimizerEnv$count)) 0 else optimizerEnv$count
    if (optimizerEnv$num_update > count + step) {
      optimizerEnv$count <- count + step
      mx.internal.lower.lr(optimizerEnv, factor_val, stop_factor_lr, verbose)
    }
    invisible(optimizerEnv$lr)
  }
}

#' @rdname mx.lr_scheduler
#' @export
mx.lr_scheduler.MultiFactorScheduler <- function(step, factor_val, stop_factor_lr = 1e-8,
                                                 verbose = TRUE) {
  if (!is.numeric(step) || length(step) == 0 || anyNA(step))
    stop("step must be an increasing vector of update numbers", call. = FALSE)
  if (!all(diff(step) > 0)) stop("Schedule step must be an increasing integer list", call. = FALSE)
  if (any(step < 1)) stop("Schedule step must be greater or equal than 1 round", call. = FALSE)
  mx.internal.check.factor(factor_val, stop_factor_lr)
  force(verbose)
  function(optimizerEnv) {
    i <- if (is.null(optimizerEnv$cur_step_ind)) 1 else optimizerEnv$cur_step_ind
    if (i <= length(step) && optimizerEnv$num_update > step[[i]]) {
      optimizerEnv$count <- step[[i]]
      optimizerEnv$cur_step_ind <- i + 1
      mx.internal.lower.lr(optimizerEnv, factor_val, stop_factor_lr, verbose)
    }
    invisible(optimizerEnv$lr)
  }
}
