# Optimizers, as in MXNet R 1.x: mx.opt.create(name, ...) gives an
# optimizer, mx.opt.get.updater(optimizer, weights) a closure that updates a
# list of weights from a list of gradients.
#
# Each step is one fused engine op per weight (sgd_update, sgd_mom_update,
# nag_mom_update, adam_update, rmsprop_update, rmspropalex_update,
# _adagrad_update, _adadelta_update) run in place: the new weight is written
# into the weight NDArray itself and the op updates its state arrays
# (momentum, Adam's mean and var, ...), so a step allocates nothing.  The
# parameter strings are built once and only the learning rate is
# re-formatted when a scheduler changes it.
#
# MXNet R quirks kept: Adam has no bias correction (MXNet R passes lr to
# adam_update unchanged), RMSProp is centered by default with epsilon 1e-4,
# AdaDelta takes no learning rate.  Differences: MXNet R bakes the learning
# rate into a per-weight executor when it is created, so a scheduler never
# changes the step there; here the scheduler's lr is used from the next
# update on.  num_update counts like MXNet's Python optimizer: it is the
# number of the current step (the largest per-weight update count) when the
# scheduler is called.  NAG with momentum uses MXNet's fused nag_mom_update
# (momentum kept scaled by lr, weight decay inside the gradient), which MXNet
# R 1.x wrote with symbol arithmetic slightly differently (weight decay only
# in the momentum, momentum kept without lr); the two agree exactly when
# wd = 0 and the learning rate is constant.

mx.internal.optimizers <- c("sgd", "nag", "adam", "rmsprop", "adagrad", "adadelta")

#' Create an optimizer
#'
#' Makes an optimizer by name, with MXNet R's parameters and defaults:
#' \describe{
#' \item{`"sgd"`}{`learning.rate = 0.01, momentum = 0, wd = 0,
#'   rescale.grad = 1, clip_gradient = -1, lr_scheduler = NULL`.
#'   `w = (1 - lr wd) w - lr g` without momentum; with it
#'   `mom = momentum mom - lr (g + wd w); w = w + mom`.}
#' \item{`"nag"`}{Nesterov momentum, same parameters as `"sgd"`.}
#' \item{`"adam"`}{`learning.rate = 1e-3, beta1 = 0.9, beta2 = 0.999,
#'   epsilon = 1e-8, wd = 0, rescale.grad = 1, clip_gradient = -1,
#'   lr_scheduler = NULL`. As in MXNet R there is no bias correction:
#'   `g = clip(rescale.grad grad + wd w)`,
#'   `w = w - lr mean / (sqrt(var) + epsilon)`.}
#' \item{`"rmsprop"`}{`learning.rate = 0.002, centered = TRUE, gamma1 = 0.95,
#'   gamma2 = 0.9, epsilon = 1e-4, wd = 0, rescale.grad = 1,
#'   clip_gradient = -1, lr_scheduler = NULL`; `centered = TRUE` is Graves'
#'   variant (`rmspropalex_update`), `FALSE` Tieleman and Hinton's.}
#' \item{`"adagrad"`}{`learning.rate = 0.05, epsilon = 1e-8, wd = 0,
#'   rescale.grad = 1, clip_gradient = -1, lr_scheduler = NULL`.}
#' \item{`"adadelta"`}{`rho = 0.9, epsilon = 1e-5, wd = 0, rescale.grad = 1,
#'   clip_gradient = -1` (no learning rate).}
#' }
#' In every optimizer the gradient is first multiplied by `rescale.grad`
#' and then, when `clip_gradient >= 0`, clipped to
#' `[-clip_gradient, clip_gradient]`. `lr_scheduler` is a function of the
#' optimizer's environment (fields `lr`, `count`, `num_update`), such as
#' [mx.lr_scheduler.FactorScheduler()]; it is called before every weight
#' update with `num_update` set to the number of the current step.
#'
#' @param name The optimizer's name: `"sgd"`, `"nag"`, `"adam"`,
#'   `"rmsprop"`, `"adagrad"` or `"adadelta"`.
#' @param ... The optimizer's parameters (see Details); partial names work.
#' @return An optimizer (class `"mx.optimizer"`): a list with `name`, `env`
#'   (the environment the scheduler sees), `create.state(index, weight)` and
#'   `update(index, weight, grad, state)`.
#' @seealso [mx.opt.get.updater()]
#' @examples
#' opt <- mx.opt.create("sgd", learning.rate = 0.1, momentum = 0.9, wd = 1e-4)
#' w <- list(mx.nd.ones(c(2, 3)))
#' upd <- mx.opt.get.updater(opt, w)
#' w <- upd(w, list(mx.nd.ones(c(2, 3))))
#' as.array(w[[1]])
#' @export
mx.opt.create <- function(name, ...) {
  if (!is.character(name) || length(name) != 1 || is.na(name))
    stop("name must be the optimizer's name, one of: ",
         paste(mx.internal.optimizers, collapse = ", "), call. = FALSE)
  key <- tolower(name)
  if (!key %in% mx.internal.optimizers)
    stop("Unknown optimizer '", name, "'; known optimizers: ",
         paste(mx.internal.optimizers, collapse = ", "), call. = FALSE)
  ctor <- switch(key, sgd = mx.opt.sgd, nag = mx.opt.nag, adam = mx.opt.adam,
                 rmsprop = mx.opt.rmsprop, adagrad = mx.opt.adagrad, adadelta = mx.opt.adadelta)
  args <- list(...)
  if (length(args)) args <- args[!vapply(args, is.null, TRUE)] # NULL means the default
  nm <- names(args)
  if (!is.null(nm)) {
    known <- names(formals(ctor))
    given <- nm[nm != ""]
    bad <- given[is.na(pmatch(given, known, duplicates.ok = TRUE))]
    if (length(bad))
      stop("optimizer '", key, "' has no parameter ", paste(sQuote(bad, FALSE), collapse = ", "),
           "; its parameters are: ", paste(known, collapse = ", "), call. = FALSE)
  }
  do.call(ctor, args)
}

# ---------------------------------------------------------------------------
# Parameter checks

mx.internal.opt.num <- function(x, what, lower = -Inf, upper = Inf, lower.open = FALSE,
                                upper.open = FALSE) {
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || !is.finite(x))
    stop(what, " must be a finite number", call. = FALSE)
  if (x < lower || (lower.open && x == lower) || x > upper || (upper.open && x == upper)) {
    lo <- if (lower.open) "(" else "["
    hi <- if (upper.open) ")" else "]"
    stop(what, " must be in ", lo, lower, ", ", upper, hi, ", got ", x, call. = FALSE)
  }
  as.numeric(x)
}

mx.internal.opt.common <- function(wd, rescale.grad, clip_gradient, lr_scheduler = NULL) {
  if (is.null(clip_gradient)) clip_gradient <- -1
  if (!is.null(lr_scheduler) && !is.function(lr_scheduler))
    stop("lr_scheduler must be NULL or a function(optimizerEnv), such as mx.lr_scheduler.FactorScheduler(...)",
         call. = FALSE)
  list(wd = mx.internal.opt.num(wd, "wd"),
       rescale_grad = mx.internal.opt.num(rescale.grad, "rescale.grad"),
       clip_gradient = mx.internal.opt.num(clip_gradient, "clip_gradient"))
}

# ---------------------------------------------------------------------------
# The common optimizer object.  `op` is the engine op, `nstate` the number of
# state arrays it mutates, `params` its parameters other than lr, `lr` the
# initial learning rate (NULL for ops without one).

mx.internal.make.optimizer <- function(name, op, nstate, params, lr, lr_scheduler) {
  env <- new.env(parent = emptyenv())
  env$lr <- lr
  env$count <- 0
  env$num_update <- 0
  env$index.count <- integer()
  kv <- mx.internal.params(params)
  keys <- kv$keys
  vals <- kv$vals
  if (!is.null(lr)) {
    keys <- c("lr", keys)
    vals <- c(mx.internal.num.string(lr), vals)
  }
  cached.lr <- lr

  create.state <- function(index, weight) {
    if (nstate == 0) return(list())
    d <- dim(weight)
    dev <- ctx(weight)
    dt <- mx.nd.dtype(weight)
    lapply(seq_len(nstate), function(i) mx.nd.zeros(d, dev, dt))
  }

  # Counts updates like MXNet's optimizers (per-index counts, num_update
  # their max), runs the scheduler once per index updated, and takes the
  # learning rate it leaves into the op's parameters.
  count.and.schedule <- function(indices) {
    ic <- env$index.count
    top <- max(indices)
    if (top > length(ic)) ic[(length(ic) + 1L):top] <- 0L
    ic[indices] <- ic[indices] + 1L
    env$index.count <- ic
    if (max(ic[indices]) > env$num_update) env$num_update <- max(ic[indices])
    if (is.null(lr)) return(invisible(NULL))
    if (!is.null(lr_scheduler)) for (i in indices) lr_scheduler(env)
    cur <- env$lr
    if (!identical(cur, cached.lr)) {
      if (!is.numeric(cur) || length(cur) != 1 || !is.finite(cur))
        stop("the learning rate must stay a finite number (lr_scheduler set lr to ",
             format(cur), ")", call. = FALSE)
      vals[[1]] <<- mx.internal.num.string(cur)
      cached.lr <<- cur
    }
    invisible(NULL)
  }

  update <- function(index, weight, grad, state) {
    count.and.schedule(index)
    mx.internal.opt.invoke(op, keys, vals, c(list(weight, grad), state), weight)
    weight
  }

  # update() for several indices at once, in one engine call (the updater's
  # fast path; inputs[[j]] is list(weight, grad, states...) of indices[j],
  # outputs[[j]] list(weight)): the same counts, scheduler calls and values
  # as calling update() for each index in turn, because num_update, which
  # the scheduler reads, reaches its new value at the first index already.
  update.multi <- function(indices, inputs, outputs) {
    count.and.schedule(indices)
    .Call(C_nd_invoke_into_each, op, keys, vals, inputs, outputs)
    invisible(NULL)
  }

  structure(list(name = name, op = op, env = env, create.state = create.state, update = update,
                 update.multi = update.multi),
            class = "mx.optimizer")
}

# The in-place op call (mx.nd.internal.invoke.into with parameter strings
# prepared once).
mx.internal.opt.invoke <- function(op, keys, vals, inputs, output) {
  .Call(C_nd_invoke_into, op, keys, vals, inputs, list(output))
  invisible(output)
}

#' @export
print.mx.optimizer <- function(x, ...) {
  cat("<mx.optimizer ", x$name, " (", x$op, ")", if (!is.null(x$env$lr)) paste0(", lr ", format(x$env$lr)),
      ", ", x$env$num_update, " updates>\n", sep = "")
  invisible(x)
}

# ---------------------------------------------------------------------------
# The optimizers (unexported, as in MXNet R; reach them with mx.opt.create).

mx.opt.sgd <- function(learning.rate = 0.01, momentum = 0, wd = 0, rescale.grad = 1,
                       clip_gradient = -1, lr_scheduler = NULL) {
  lr <- mx.internal.opt.num(learning.rate, "learning.rate", 0)
  momentum <- mx.internal.opt.num(momentum, "momentum", 0, 1, upper.open = TRUE)
  p <- mx.internal.opt.common(wd, rescale.grad, clip_gradient, lr_scheduler)
  if (momentum == 0)
    mx.internal.make.optimizer("sgd", "sgd_update", 0, p, lr, lr_scheduler)
  else
    mx.internal.make.optimizer("sgd", "sgd_mom_update", 1, c(list(momentum = momentum), p), lr,
                               lr_scheduler)
}

mx.opt.nag <- function(learning.rate = 0.01, momentum = 0, wd = 0, rescale.grad = 1,
                       clip_gradient = -1, lr_scheduler = NULL) {
  lr <- mx.internal.opt.num(learning.rate, "learning.rate", 0)
  momentum <- mx.internal.opt.num(momentum, "momentum", 0, 1, upper.open = TRUE)
  p <- mx.internal.opt.common(wd, rescale.grad, clip_gradient, lr_scheduler)
  # Without momentum NAG is plain SGD: w - lr (clip(rs g) + wd w).
  if (momentum == 0)
    mx.internal.make.optimizer("nag", "sgd_update", 0, p, lr, lr_scheduler)
  else
    mx.internal.make.optimizer("nag", "nag_mom_update", 1, c(list(momentum = momentum), p), lr,
                               lr_scheduler)
}

mx.opt.adam <- function(learning.rate = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8,
                        wd = 0, rescale.grad = 1, clip_gradient = -1, lr_scheduler = NULL) {
  lr <- mx.internal.opt.num(learning.rate, "learning.rate", 0)
  p <- c(list(beta1 = mx.internal.opt.num(beta1, "beta1", 0, 1, upper.open = TRUE),
              beta2 = mx.internal.opt.num(beta2, "beta2", 0, 1, upper.open = TRUE),
              epsilon = mx.internal.opt.num(epsilon, "epsilon", 0)),
         mx.internal.opt.common(wd, rescale.grad, clip_gradient, lr_scheduler))
  mx.internal.make.optimizer("adam", "adam_update", 2, p, lr, lr_scheduler)
}

mx.opt.rmsprop <- function(learning.rate = 0.002, centered = TRUE, gamma1 = 0.95, gamma2 = 0.9,
                           epsilon = 1e-4, wd = 0, rescale.grad = 1, clip_gradient = -1,
                           lr_scheduler = NULL) {
  lr <- mx.internal.opt.num(learning.rate, "learning.rate", 0)
  if (!is.logical(centered) || length(centered) != 1 || is.na(centered))
    stop("centered must be TRUE or FALSE", call. = FALSE)
  gamma1 <- mx.internal.opt.num(gamma1, "gamma1", 0, 1, upper.open = TRUE)
  gamma2 <- mx.internal.opt.num(gamma2, "gamma2", 0, 1, upper.open = TRUE)
  epsilon <- mx.internal.opt.num(epsilon, "epsilon", 0)
  p <- mx.internal.opt.common(wd, rescale.grad, clip_gradient, lr_scheduler)
  if (centered)
    mx.internal.make.optimizer("rmsprop", "rmspropalex_update", 3,
                               c(list(gamma1 = gamma1, gamma2 = gamma2, epsilon = epsilon), p),
                               lr, lr_scheduler)
  else
    mx.internal.make.optimizer("rmsprop", "rmsprop_update", 1,
                               c(list(gamma1 = gamma1, epsilon = epsilon), p), lr, lr_scheduler)
}

mx.opt.adagrad <- function(learning.rate = 0.05, epsilon = 1e-8, wd = 0, rescale.grad = 1,
                           clip_gradient = -1, lr_scheduler = NULL) {
  lr <- mx.internal.opt.num(learning.rate, "learning.rate", 0)
  p <- c(list(epsilon = mx.internal.opt.num(epsilon, "epsilon", 0)),
         mx.internal.opt.common(wd, rescale.grad, clip_gradient, lr_scheduler))
  mx.internal.make.optimizer("adagrad", "_adagrad_update", 1, p, lr, lr_scheduler)
}

mx.opt.adadelta <- function(rho = 0.9, epsilon = 1e-5, wd = 0, rescale.grad = 1,
                            clip_gradient = -1) {
  p <- c(list(rho = mx.internal.opt.num(rho, "rho", 0, 1, upper.open = TRUE),
              epsilon = mx.internal.opt.num(epsilon, "epsilon", 0)),
         mx.internal.opt.common(wd, rescale.grad, clip_gradient))
  mx.internal.make.optimizer("adadelta", "_adadelta_update", 2, p, NULL, NULL)
}

#' Get an updater for a list of weights
#'
#' Returns a closure `function(weight, grad)` that applies one optimizer
#' step to each weight whose gradient is not `NULL` and returns the list of
#' weights (with `NULL` where the gradient was `NULL`), so MXNet-style code
#' `mx.exec.update.arg.arrays(exec, updater(exec$ref.arg.arrays,
#' exec$ref.grad.arrays), skip.null = TRUE)` works.
#'
#' The update is fused and in place: each weight NDArray is overwritten with
#' its new value (every R reference to that array sees the change) and the
#' same array is returned, so a step allocates no memory. Optimizer state
#' (momentum, Adam's moments, ...) lives in NDArrays made on the weight's
#' device at its first update, one set per position in the list.
#'
#' Optimizers written for MXNet R 0.x (a list of `create.state(index,
#' weight)` and `update(index, weight, grad, state)` returning
#' `list(weight, state)`) and 1.x (`create_exec(index, weight_dim, ctx)` and
#' `update(index, exec, weight, grad)`) work too.
#'
#' @param optimizer An optimizer from [mx.opt.create()].
#' @param weights The list of weights (NDArrays; `NULL` entries are never
#'   updated). It fixes the number of weights.
#' @param ctx Unused: state is made on each weight's own device (kept for
#'   MXNet compatibility).
#' @return A function `function(weight, grad)` returning the list of
#'   updated weights.
#' @examples
#' opt <- mx.opt.create("adam", learning.rate = 0.01)
#' w <- list(a = mx.nd.array(c(1, 2, 3)), b = NULL)
#' upd <- mx.opt.get.updater(opt, w)
#' w2 <- upd(w, list(mx.nd.array(c(1, -1, 0)), NULL))
#' as.array(w2[[1]])
#' @export
mx.opt.get.updater <- function(optimizer, weights, ctx = NULL) {
  if (!is.list(optimizer) || !is.function(optimizer$update))
    stop("optimizer must come from mx.opt.create()", call. = FALSE)
  if (is.mx.ndarray(weights)) weights <- list(weights)
  if (!is.list(weights)) stop("weights must be a list of NDArrays", call. = FALSE)
  n <- length(weights)
  update <- optimizer$update

  if (is.function(optimizer$create_exec)) {
    # MXNet R 1.x style: one executor per weight, made now.
    execs <- lapply(seq_len(n), function(i) {
      if (is.null(weights[[i]])) NULL
      else optimizer$create_exec(index = i, weight_dim = dim(weights[[i]]),
                                 ctx = if (is.null(ctx)) mx.internal.weight.ctx(weights[[i]]) else ctx)
    })
    return(function(weight, grad) {
      mx.internal.updater.check(weight, grad, n)
      lapply(seq_len(n), function(i) {
        if (is.null(grad[[i]]) || is.null(weight[[i]])) return(NULL)
        update(i, execs[[i]], weight[[i]], grad[[i]])
      })
    })
  }
  if (!is.function(optimizer$create.state))
    stop("optimizer must have create.state() and update() (use mx.opt.create())", call. = FALSE)

  states <- vector("list", n)
  made <- logical(n)
  # Makes index i's state on its first update.
  make.state <- function(i, w) {
    if (made[[i]]) return(invisible(NULL))
    st <- optimizer$create.state(i, w)
    if (!is.null(st)) states[[i]] <<- st
    made[[i]] <<- TRUE
  }
  # The one-call path: for mx.opt.create's optimizers whose update() was
  # not replaced, when every weight and gradient is an NDArray.  The
  # argument lists for the engine are built once and reused while the
  # trainer passes the same arrays (it does, every batch).
  multi <- optimizer$update.multi
  fused <- is.function(multi) && identical(environment(multi), environment(update))
  last <- NULL
  function(weight, grad) {
    if (fused && !is.null(last) && identical(weight, last$weight) && identical(grad, last$grad)) {
      multi(last$indices, last$inputs, last$outputs)
      return(weight)
    }
    mx.internal.updater.check(weight, grad, n)
    if (fused && all(vapply(weight, is.mx.ndarray, TRUE)) && all(vapply(grad, is.mx.ndarray, TRUE))) {
      for (i in seq_len(n)) make.state(i, weight[[i]])
      last <<- list(weight = weight, grad = grad, indices = seq_len(n),
                    inputs = .mapply(function(w, g, s) c(list(w, g), s), list(weight, grad, states), NULL),
                    outputs = lapply(weight, list))
      multi(last$indices, last$inputs, last$outputs)
      return(weight)
    }
    last <<- NULL
    out <- vector("list", n)
    names(out) <- names(weight)
    for (i in seq_len(n)) {
      g <- grad[[i]]
      w <- weight[[i]]
      if (is.null(g) || is.null(w)) next
      if (!is.mx.ndarray(w)) w <- mx.nd.array(w)
      if (!is.mx.ndarray(g)) g <- mx.nd.array(g, ctx(w), mx.nd.dtype(w))
      make.state(i, w)
      r <- update(i, w, g, states[[i]])
      if (is.list(r) && !is.mx.ndarray(r) && "weight" %in% names(r)) {
        # MXNet R 0.x style: a new weight and a new state.
        if (is.null(r$state)) states[i] <<- list(NULL) else states[[i]] <<- r$state
        w <- r$weight
      } else if (is.mx.ndarray(r)) {
        w <- r
      }
      out[[i]] <- w
    }
    out
  }
}

mx.internal.weight.ctx <- function(w) if (is.mx.ndarray(w)) ctx(w) else mx.ctx.default()

mx.internal.updater.check <- function(weight, grad, n) {
  if (!is.list(weight) || !is.list(grad))
    stop("the updater takes a list of weights and a list of gradients", call. = FALSE)
  if (length(weight) != n || length(grad) != n)
    stop("the updater was made for ", n, " weights; got ", length(weight), " weights and ",
         length(grad), " gradients", call. = FALSE)
}
