# Pooling: max / avg / sum / lp over 1-D, 2-D and 3-D windows against plain
# R loops (valid / full / same conventions, padding, count_include_pad,
# global pooling), gradients, the first-max rule on ties, bad parameters.
#
# to_c() reverses an R array's dims, so R's c(W, H, C, N) is indexed
# [n, c, h, w]; tuple parameters are given in R order (kernel = c(kw, kh)).

to_c <- function(x) aperm(x, rev(seq_along(dim(x))))
as5 <- function(x) {
  d <- dim(x)
  sp <- d[-(1:2)]
  array(x, c(d[1:2], rep(1, 3 - length(sp)), sp))
}
pad3 <- function(v, fill) c(rep(fill, 3 - length(v)), v)
rnd <- function(...) array(rnorm(prod(c(...))), c(...))

pool_ref <- function(x, kernel = NULL, type = "max", stride = NULL, pad = NULL,
                     convention = "valid", global = FALSE, cip = TRUE, p = 1,
                     lowest = -.Machine$double.xmax) {
  nsp <- length(dim(x)) - 2
  xc <- as5(to_c(x))
  N <- dim(xc)[1]; C <- dim(xc)[2]; isz <- dim(xc)[3:5]
  if (global) {
    k <- isz; st <- c(1, 1, 1); pd <- c(0, 0, 0)
  } else {
    k <- pad3(rev(kernel), 1)
    st <- pad3(rev(if (is.null(stride)) rep(1, nsp) else stride), 1)
    pd <- pad3(rev(if (is.null(pad)) rep(0, nsp) else pad), 0)
  }
  osz <- if (global) c(1, 1, 1) else switch(convention,
    valid = (isz + 2 * pd - k) %/% st + 1,
    full = ceiling((isz + 2 * pd - k) / st) + 1,
    same = ceiling((isz + 2 * pd) / st))
  y <- array(0, c(N, C, osz))
  for (a in seq_len(osz[1])) for (b in seq_len(osz[2])) for (cc in seq_len(osz[3])) {
    s0 <- (c(a, b, cc) - 1) * st - pd
    pe <- pmin(s0 + k, isz + pd)
    lo <- pmax(s0, 0)
    hi <- pmin(s0 + k, isz)
    rng <- lapply(1:3, function(i) if (hi[i] > lo[i]) (lo[i] + 1):hi[i] else integer(0))
    win <- xc[, , rng[[1]], rng[[2]], rng[[3]], drop = FALSE]
    wm <- matrix(win, N * C)                     # one row per (n, c)
    v <- switch(type,
      max = if (ncol(wm)) apply(wm, 1, max) else rep(lowest, N * C),
      sum = rowSums(wm),
      avg = rowSums(wm) / (if (cip) prod(pe - s0) else prod(hi - lo)),
      lp = {
        s <- rowSums(wm^p)
        if (p == 1) s else if (p == 2) sqrt(s) else sign(s) * abs(s)^(1 / 3)
      })
    y[, , a, b, cc] <- v
  }
  to_c(array(y, c(N, C, osz[(4 - nsp):3])))
}

test_that("Pooling forward matches R (2-D)", {
  set.seed(301)
  x <- rnd(8, 6, 3, 2)                          # C (N=2, C=3, H=6, W=8)
  xo <- rnd(9, 7, 3, 2)                         # odd sizes
  for (type in c("max", "avg", "sum")) {
    # the 2x2 stride 2 fast path, even and odd sizes
    p <- list(kernel = c(2, 2), stride = c(2, 2), pool_type = type)
    expect_equal(op_forward("Pooling", list(x), p)[[1]],
                 pool_ref(x, c(2, 2), type, c(2, 2)), tolerance = 1e-12, info = type)
    expect_equal(op_forward("Pooling", list(xo), p)[[1]],
                 pool_ref(xo, c(2, 2), type, c(2, 2)), tolerance = 1e-12, info = type)
    # full convention: the last window runs past the edge
    pf <- c(p, pooling_convention = "full")
    got <- op_forward("Pooling", list(xo), pf)[[1]]
    expect_equal(dim(got), c(5, 4, 3, 2))
    expect_equal(got, pool_ref(xo, c(2, 2), type, c(2, 2), convention = "full"),
                 tolerance = 1e-12, info = type)
    # overlapping windows with padding
    p3 <- list(kernel = c(3, 2), stride = c(2, 1), pad = c(1, 1), pool_type = type,
               pooling_convention = "full")
    expect_equal(op_forward("Pooling", list(xo), p3)[[1]],
                 pool_ref(xo, c(3, 2), type, c(2, 1), c(1, 1), "full"), tolerance = 1e-12,
                 info = type)
    # stride defaults to 1
    expect_equal(op_forward("Pooling", list(x), list(kernel = c(3, 3), pool_type = type))[[1]],
                 pool_ref(x, c(3, 3), type), tolerance = 1e-12, info = type)
    # global pooling needs no kernel
    got <- op_forward("Pooling", list(xo), list(global_pool = TRUE, pool_type = type))[[1]]
    expect_equal(dim(got), c(1, 1, 3, 2))
    expect_equal(got, pool_ref(xo, type = type, global = TRUE), tolerance = 1e-12, info = type)
    # float32
    expect_equal(op_forward("Pooling", list(x), p, dtype = "float32")[[1]],
                 pool_ref(x, c(2, 2), type, c(2, 2)), tolerance = 1e-6, info = type)
  }
  # the default pool type is max
  expect_equal(op_forward("Pooling", list(x), list(kernel = c(2, 2)))[[1]],
               pool_ref(x, c(2, 2)), tolerance = 1e-12)
  # avg without counting the padding
  pa <- list(kernel = c(3, 3), stride = c(2, 2), pad = c(1, 1), pool_type = "avg",
             count_include_pad = FALSE)
  expect_equal(op_forward("Pooling", list(xo), pa)[[1]],
               pool_ref(xo, c(3, 3), "avg", c(2, 2), c(1, 1), cip = FALSE), tolerance = 1e-12)
  expect_false(isTRUE(all.equal(op_forward("Pooling", list(xo), pa)[[1]],
               pool_ref(xo, c(3, 3), "avg", c(2, 2), c(1, 1), cip = TRUE))))
  # a LeNet-sized 2x2 max pool (many rows for the vector loop)
  xl <- rnd(24, 24, 4, 3)
  expect_equal(op_forward("Pooling", list(xl), list(kernel = c(2, 2), stride = c(2, 2)),
                          dtype = "float32")[[1]], pool_ref(xl, c(2, 2), stride = c(2, 2)),
               tolerance = 1e-6)
})

test_that("Pooling forward matches R (1-D, 3-D, lp, same)", {
  set.seed(302)
  x1 <- rnd(11, 3, 2)                           # C (N=2, C=3, W=11)
  for (type in c("max", "avg", "sum")) {
    expect_equal(op_forward("Pooling", list(x1), list(kernel = 3, stride = 2, pad = 1,
                            pool_type = type))[[1]],
                 pool_ref(x1, 3, type, 2, 1), tolerance = 1e-12, info = type)
  }
  # 'same' (1-D only): ceil(x / stride) outputs
  got <- op_forward("Pooling", list(x1), list(kernel = 3, stride = 2,
                    pooling_convention = "same"))[[1]]
  expect_equal(dim(got), c(6, 3, 2))
  expect_equal(got, pool_ref(x1, 3, "max", 2, convention = "same"), tolerance = 1e-12)
  # 3-D
  x3 <- rnd(6, 5, 4, 2, 2)
  for (type in c("max", "avg", "sum")) {
    p <- list(kernel = c(3, 2, 2), stride = c(2, 1, 2), pad = c(1, 0, 1), pool_type = type,
              pooling_convention = "full")
    expect_equal(op_forward("Pooling", list(x3), p)[[1]],
                 pool_ref(x3, c(3, 2, 2), type, c(2, 1, 2), c(1, 0, 1), "full"),
                 tolerance = 1e-12, info = type)
  }
  expect_equal(op_forward("Pooling", list(x3), list(global_pool = TRUE, pool_type = "avg"))[[1]],
               pool_ref(x3, type = "avg", global = TRUE), tolerance = 1e-12)
  # lp pooling (no absolute value, as in MXNet)
  xp <- rnd(7, 6, 2, 2)
  for (pv in 1:3) {
    p <- list(kernel = c(2, 3), stride = c(2, 2), pool_type = "lp", p_value = pv)
    expect_equal(op_forward("Pooling", list(xp), p)[[1]],
                 pool_ref(xp, c(2, 3), "lp", c(2, 2), p = pv), tolerance = 1e-12, info = pv)
  }
})

test_that("Pooling gradients match finite differences", {
  set.seed(303)
  op_check_grad("Pooling", list(rnd(6, 4, 2, 2)), list(kernel = c(2, 2), stride = c(2, 2)),
                seed = 3031)
  op_check_grad("Pooling", list(rnd(5, 5, 2, 2)), list(kernel = c(3, 3), pad = c(1, 1)),
                seed = 3032)
  for (type in c("avg", "sum")) {
    op_check_grad("Pooling", list(rnd(7, 5, 2, 2)), list(kernel = c(3, 2), stride = c(2, 2),
                  pad = c(1, 1), pool_type = type, pooling_convention = "full"), seed = 3033)
    op_check_grad("Pooling", list(rnd(6, 4, 2, 1)), list(kernel = c(2, 2), stride = c(2, 2),
                  pool_type = type), seed = 3034)
  }
  op_check_grad("Pooling", list(rnd(5, 4, 3, 2)), list(kernel = c(3, 3), stride = c(2, 2),
                pad = c(1, 1), pool_type = "avg", count_include_pad = FALSE), seed = 3035)
  op_check_grad("Pooling", list(rnd(4, 3, 2, 2)), list(global_pool = TRUE, pool_type = "avg"),
                seed = 3036)
  op_check_grad("Pooling", list(rnd(4, 3, 2, 2)), list(global_pool = TRUE), seed = 3037)
  op_check_grad("Pooling", list(rnd(9, 2, 2)), list(kernel = 3, stride = 2), seed = 3038)
  op_check_grad("Pooling", list(rnd(4, 3, 4, 2, 1)), list(kernel = c(2, 2, 2), stride = c(2, 1, 2),
                pool_type = "avg"), seed = 3039)
  xp <- array(runif(5 * 4 * 2 * 2, 0.5, 2), c(5, 4, 2, 2))
  op_check_grad("Pooling", list(xp), list(kernel = c(2, 2), stride = c(1, 2), pool_type = "lp",
                p_value = 2), seed = 3040)
  op_check_grad("Pooling", list(xp), list(kernel = c(2, 2), pool_type = "lp", p_value = 3),
                seed = 3041)
})

test_that("max pooling routes the gradient to the first maximum", {
  # every window holds ties: the first element (in C order: row, then column) wins
  x <- array(1, c(4, 4, 1, 1))
  g <- op_backward("Pooling", list(x), list(array(c(1, 2, 3, 4), c(2, 2, 1, 1))),
                   list(kernel = c(2, 2), stride = c(2, 2)))[[1]]
  want <- array(0, c(4, 4, 1, 1))
  want[1, 1, 1, 1] <- 1; want[3, 1, 1, 1] <- 2; want[1, 3, 1, 1] <- 3; want[3, 3, 1, 1] <- 4
  expect_equal(g, want)
  # second element of a window is the max in row 1 (R's x[2, 1]), ties in row 2
  x2 <- array(c(0, 5, 0, 0,
                0, 5, 5, 5,
                1, 1, 1, 1,
                1, 1, 1, 1), c(4, 4, 1, 1))
  g2 <- op_backward("Pooling", list(x2), list(array(1, c(2, 2, 1, 1))),
                    list(kernel = c(2, 2), stride = c(2, 2)), dtype = "float32")[[1]]
  want2 <- array(0, c(4, 4, 1, 1))
  want2[2, 1, 1, 1] <- 1; want2[3, 2, 1, 1] <- 1; want2[1, 3, 1, 1] <- 1; want2[3, 3, 1, 1] <- 1
  expect_equal(g2, want2)
  # the generic path (overlapping windows) follows the same rule and accumulates
  g3 <- op_backward("Pooling", list(array(1, c(3, 3, 1, 1))), list(array(1, c(2, 2, 1, 1))),
                    list(kernel = c(2, 2)))[[1]]
  want3 <- array(0, c(3, 3, 1, 1))
  want3[1, 1, 1, 1] <- 1; want3[2, 1, 1, 1] <- 1; want3[1, 2, 1, 1] <- 1; want3[2, 2, 1, 1] <- 1
  expect_equal(g3, want3)
  # lp with p_value 1 is sum pooling, also in the gradient
  x4 <- rnd(4, 4, 2, 1)
  og <- rnd(2, 2, 2, 1)
  expect_equal(op_backward("Pooling", list(x4), list(og), list(kernel = c(2, 2), stride = c(2, 2),
                           pool_type = "lp", p_value = 1))[[1]],
               op_backward("Pooling", list(x4), list(og), list(kernel = c(2, 2), stride = c(2, 2),
                           pool_type = "sum"))[[1]])
})

test_that("Pooling rejects bad parameters and shapes", {
  x <- rnd(5, 5, 2, 2)
  expect_op_error("Pooling", list(x), list(kernel = c(7, 7)), "exceeds")
  expect_op_error("Pooling", list(x), list(kernel = c(6, 2), pad = c(0, 0)), "exceeds")
  expect_op_error("Pooling", list(x), list(pool_type = "max"), "kernel")
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), pool_type = "median"))
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), pool_type = "lp"), "p_value")
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), pool_type = "lp", p_value = 4))
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), pooling_convention = "same"),
                  "same")
  expect_op_error("Pooling", list(rnd(9, 2, 2)), list(kernel = 3, pad = 1,
                  pooling_convention = "same"), "pad")
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), stride = c(1, 1, 1)), "stride")
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), stride = c(0, 1)), "stride")
  expect_op_error("Pooling", list(x), list(kernel = 2), "kernel")
  expect_op_error("Pooling", list(matrix(1, 3, 3)), list(kernel = c(2, 2)))
  expect_op_error("Pooling", list(matrix(1, 3, 3)), list(global_pool = TRUE))
  expect_op_error("Pooling", list(x), list(kernel = c(2, 2), layout = "NCW"), "layout")
  # accepted MXNet parameters
  expect_equal(op_forward("Pooling", list(x), list(kernel = c(2, 2), cudnn_off = TRUE,
                          layout = "NCHW"))[[1]], pool_ref(x, c(2, 2)), tolerance = 1e-12)
})
