# Convolution and Deconvolution: forward against plain R loops (1-D, 2-D,
# 3-D; stride, pad, dilate, groups, odd sizes), finite-difference gradients,
# bad parameters and shapes.
#
# The references work on C-ordered arrays: to_c() reverses the dims of an R
# array, so an R array c(W, H, C, N) becomes an R array indexed [n, c, h, w].
# Tuple parameters are given in R order (kernel = c(kw, kh)) as users do.

to_c <- function(x) if (is.null(dim(x))) x else aperm(x, rev(seq_along(dim(x))))

# C-ordered (N, C, ...) array with 1..3 spatial dims as (N, C, D, H, W).
as5 <- function(x) {
  d <- dim(x)
  sp <- d[-(1:2)]
  array(x, c(d[1:2], rep(1, 3 - length(sp)), sp))
}
pad3 <- function(v, fill) c(rep(fill, 3 - length(v)), v)

# x: R array (W, [H, [D,]] C, N); w: R array (k.., C/G, F); b: length F or NULL.
# stride/pad/dilate in R order like the op's parameters.  Returns an R array.
conv_ref <- function(x, w, b = NULL, stride = NULL, pad = NULL, dilate = NULL, groups = 1) {
  nsp <- length(dim(x)) - 2
  st <- pad3(rev(if (is.null(stride)) rep(1, nsp) else stride), 1)
  pd <- pad3(rev(if (is.null(pad)) rep(0, nsp) else pad), 0)
  dl <- pad3(rev(if (is.null(dilate)) rep(1, nsp) else dilate), 1)
  xc <- as5(to_c(x))
  wc <- as5(to_c(w))
  N <- dim(xc)[1]; C <- dim(xc)[2]; isz <- dim(xc)[3:5]
  F <- dim(wc)[1]; k <- dim(wc)[3:5]
  Cg <- C / groups; Fg <- F / groups
  dk <- dl * (k - 1) + 1
  osz <- (isz + 2 * pd - dk) %/% st + 1
  xp <- array(0, c(N, C, isz + 2 * pd))
  xp[, , pd[1] + seq_len(isz[1]), pd[2] + seq_len(isz[2]), pd[3] + seq_len(isz[3])] <- xc
  y <- array(0, c(N, F, osz))
  for (f in seq_len(F)) {
    ch <- (f - 1) %/% Fg * Cg + seq_len(Cg)
    wf <- rep(wc[f, , , , , drop = FALSE], each = N)
    for (a in seq_len(osz[1])) for (bb in seq_len(osz[2])) for (cc in seq_len(osz[3])) {
      patch <- xp[, ch, (a - 1) * st[1] + (seq_len(k[1]) - 1) * dl[1] + 1,
                  (bb - 1) * st[2] + (seq_len(k[2]) - 1) * dl[2] + 1,
                  (cc - 1) * st[3] + (seq_len(k[3]) - 1) * dl[3] + 1, drop = FALSE]
      y[, f, a, bb, cc] <- rowSums(array(patch * wf, c(N, length(patch) / N))) +
        (if (is.null(b)) 0 else b[f])
    }
  }
  y <- array(y, c(N, F, osz[(4 - nsp):3]))
  to_c(y)
}

# Deconvolution reference: x R array (W.., C, N); w R array (k.., F/G, C).
deconv_ref <- function(x, w, b = NULL, stride = NULL, pad = NULL, dilate = NULL, adj = NULL,
                       groups = 1) {
  nsp <- length(dim(x)) - 2
  st <- pad3(rev(if (is.null(stride)) rep(1, nsp) else stride), 1)
  pd <- pad3(rev(if (is.null(pad)) rep(0, nsp) else pad), 0)
  dl <- pad3(rev(if (is.null(dilate)) rep(1, nsp) else dilate), 1)
  aj <- pad3(rev(if (is.null(adj)) rep(0, nsp) else adj), 0)
  xc <- as5(to_c(x))
  wc <- as5(to_c(w))
  N <- dim(xc)[1]; C <- dim(xc)[2]; isz <- dim(xc)[3:5]
  Fg <- dim(wc)[2]; F <- Fg * groups; k <- dim(wc)[3:5]; Cg <- C / groups
  dk <- dl * (k - 1) + 1
  full <- st * (isz - 1) + dk + aj
  osz <- full - 2 * pd
  yf <- array(0, c(N, F, full))
  for (g in seq_len(groups)) {
    ch <- (g - 1) * Cg + seq_len(Cg)
    for (fl in seq_len(Fg)) {
      f <- (g - 1) * Fg + fl
      wm <- matrix(wc[ch, fl, , , ], Cg, prod(k))
      for (a in seq_len(isz[1])) for (bb in seq_len(isz[2])) for (cc in seq_len(isz[3])) {
        i1 <- (a - 1) * st[1] + (seq_len(k[1]) - 1) * dl[1] + 1
        i2 <- (bb - 1) * st[2] + (seq_len(k[2]) - 1) * dl[2] + 1
        i3 <- (cc - 1) * st[3] + (seq_len(k[3]) - 1) * dl[3] + 1
        contrib <- matrix(xc[, ch, a, bb, cc], N, Cg) %*% wm
        yf[, f, i1, i2, i3] <- yf[, f, i1, i2, i3, drop = FALSE] + array(contrib, c(N, 1, k))
      }
    }
  }
  y <- yf[, , pd[1] + seq_len(osz[1]), pd[2] + seq_len(osz[2]), pd[3] + seq_len(osz[3]),
          drop = FALSE]
  if (!is.null(b)) for (f in seq_len(F)) y[, f, , , ] <- y[, f, , , ] + b[f]
  to_c(array(y, c(N, F, osz[(4 - nsp):3])))
}

rnd <- function(...) array(rnorm(prod(c(...))), c(...))

test_that("Convolution forward matches R (2-D, stride, pad, dilate, groups)", {
  set.seed(101)
  x <- rnd(7, 6, 3, 2)                       # C (N=2, C=3, H=6, W=7)
  w <- rnd(3, 3, 3, 4)                       # (F=4, C=3, 3, 3)
  b <- rnorm(4)
  p <- list(kernel = c(3, 3), num_filter = 4)
  expect_equal(op_forward("Convolution", list(x, w, b), p)[[1]], conv_ref(x, w, b),
               tolerance = 1e-12)
  p2 <- list(kernel = c(3, 2), num_filter = 4, stride = c(2, 1), pad = c(1, 2),
             dilate = c(2, 1))
  w2 <- rnd(3, 2, 3, 4)
  expect_equal(op_forward("Convolution", list(x, w2, b), p2)[[1]],
               conv_ref(x, w2, b, stride = c(2, 1), pad = c(1, 2), dilate = c(2, 1)),
               tolerance = 1e-12)
  # groups: C = 4, num_group = 2, F = 6, no bias
  x4 <- rnd(9, 8, 4, 3)
  w4 <- rnd(2, 3, 2, 6)
  p4 <- list(kernel = c(2, 3), num_filter = 6, num_group = 2, no_bias = TRUE, pad = c(1, 0),
             stride = c(1, 2))
  got <- op_forward("Convolution", list(x4, w4), p4)[[1]]
  expect_equal(dim(got), c(10, 3, 6, 3))
  expect_equal(got, conv_ref(x4, w4, stride = c(1, 2), pad = c(1, 0), groups = 2),
               tolerance = 1e-12)
  # float32
  expect_equal(op_forward("Convolution", list(x, w, b), p, dtype = "float32")[[1]],
               conv_ref(x, w, b), tolerance = 1e-5)
})

test_that("Convolution forward matches R for 1x1, batched small images, 1-D and 3-D", {
  set.seed(102)
  # 1x1 on a large grid (direct GEMM path) and on a small one (batched path)
  x <- rnd(20, 17, 5, 2)
  w <- rnd(1, 1, 5, 3)
  b <- rnorm(3)
  p <- list(kernel = c(1, 1), num_filter = 3)
  expect_equal(op_forward("Convolution", list(x, w, b), p)[[1]], conv_ref(x, w, b),
               tolerance = 1e-12)
  xs <- rnd(3, 2, 5, 9)
  expect_equal(op_forward("Convolution", list(xs, w, b), p)[[1]], conv_ref(xs, w, b),
               tolerance = 1e-12)
  # many small images sharing GEMMs, batch not a multiple of the chunk
  xb <- rnd(6, 6, 3, 37)
  wb <- rnd(3, 3, 3, 5)
  bb <- rnorm(5)
  expect_equal(op_forward("Convolution", list(xb, wb, bb), list(kernel = c(3, 3),
               num_filter = 5))[[1]], conv_ref(xb, wb, bb), tolerance = 1e-12)
  # workspace = 0 MB: one image per GEMM, same result
  expect_equal(op_forward("Convolution", list(xb, wb, bb), list(kernel = c(3, 3),
               num_filter = 5, workspace = 0))[[1]], conv_ref(xb, wb, bb), tolerance = 1e-12)
  # 1-D (NCW)
  x1 <- rnd(11, 4, 3)
  w1 <- rnd(3, 2, 6)
  b1 <- rnorm(6)
  p1 <- list(kernel = 3, num_filter = 6, num_group = 2, stride = 2, pad = 1, dilate = 2)
  got <- op_forward("Convolution", list(x1, w1, b1), p1)[[1]]
  expect_equal(dim(got), c(5, 6, 3))
  expect_equal(got, conv_ref(x1, w1, b1, stride = 2, pad = 1, dilate = 2, groups = 2),
               tolerance = 1e-12)
  # 3-D (NCDHW)
  x3 <- rnd(4, 5, 3, 2, 2)
  w3 <- rnd(2, 3, 2, 2, 3)
  b3 <- rnorm(3)
  p3 <- list(kernel = c(2, 3, 2), num_filter = 3, stride = c(1, 2, 1), pad = c(1, 0, 1))
  expect_equal(op_forward("Convolution", list(x3, w3, b3), p3)[[1]],
               conv_ref(x3, w3, b3, stride = c(1, 2, 1), pad = c(1, 0, 1)), tolerance = 1e-12)
})

test_that("Convolution gradients match finite differences", {
  set.seed(103)
  # stride 2, pad 1, odd sizes
  op_check_grad("Convolution", list(rnd(5, 7, 2, 2), rnd(3, 3, 2, 3), rnorm(3)),
                list(kernel = c(3, 3), num_filter = 3, stride = c(2, 2), pad = c(1, 1)),
                seed = 1031)
  # dilate 2, groups 2, no bias
  op_check_grad("Convolution", list(rnd(7, 6, 4, 2), rnd(2, 2, 2, 4)),
                list(kernel = c(2, 2), num_filter = 4, num_group = 2, dilate = c(2, 2),
                     no_bias = TRUE), seed = 1032)
  # 1-D
  op_check_grad("Convolution", list(rnd(9, 3, 2), rnd(3, 3, 2), rnorm(2)),
                list(kernel = 3, num_filter = 2, pad = 1, stride = 2), seed = 1033)
  # 1x1 and batched small images
  op_check_grad("Convolution", list(rnd(2, 3, 3, 5), rnd(1, 1, 3, 2), rnorm(2)),
                list(kernel = c(1, 1), num_filter = 2), seed = 1034)
  # 3-D
  op_check_grad("Convolution", list(rnd(3, 4, 3, 2, 1), rnd(2, 2, 2, 2, 2), rnorm(2)),
                list(kernel = c(2, 2, 2), num_filter = 2, pad = c(0, 1, 0)), seed = 1035)
})

test_that("Deconvolution forward matches R", {
  set.seed(104)
  x <- rnd(4, 3, 3, 2)                       # C (N=2, C=3, H=3, W=4)
  w <- rnd(3, 3, 2, 3)                       # (C=3, F=2, 3, 3)
  p <- list(kernel = c(3, 3), num_filter = 2)
  got <- op_forward("Deconvolution", list(x, w), p)[[1]]
  expect_equal(dim(got), c(6, 5, 2, 2))
  expect_equal(got, deconv_ref(x, w), tolerance = 1e-12)
  # stride, pad, adj, dilate, bias
  b <- rnorm(2)
  p2 <- list(kernel = c(3, 2), num_filter = 2, stride = c(2, 3), pad = c(1, 0), adj = c(1, 2),
             dilate = c(1, 2), no_bias = FALSE)
  w2 <- rnd(3, 2, 2, 3)
  got <- op_forward("Deconvolution", list(x, w2, b), p2)[[1]]
  expect_equal(got, deconv_ref(x, w2, b, stride = c(2, 3), pad = c(1, 0), adj = c(1, 2),
                               dilate = c(1, 2)), tolerance = 1e-12)
  # groups
  x4 <- rnd(3, 4, 4, 2)
  w4 <- rnd(2, 2, 3, 4)                      # (C=4, F/G=3, 2, 2), F = 6
  got <- op_forward("Deconvolution", list(x4, w4), list(kernel = c(2, 2), num_filter = 6,
                    num_group = 2, stride = c(2, 2)))[[1]]
  expect_equal(got, deconv_ref(x4, w4, stride = c(2, 2), groups = 2), tolerance = 1e-12)
  # target_shape picks pad and adj (MXNet's rule)
  got <- op_forward("Deconvolution", list(x, w), list(kernel = c(3, 3), num_filter = 2,
                    stride = c(2, 2), target_shape = c(8, 6)))[[1]]
  expect_equal(dim(got), c(8, 6, 2, 2))
  # W: t = 2*3 + 3 - 8 = 1 -> adj 1, pad 1; H: t = 2*2 + 3 - 6 = 1 -> adj 1, pad 1
  expect_equal(got, deconv_ref(x, w, stride = c(2, 2), pad = c(1, 1), adj = c(1, 1)),
               tolerance = 1e-12)
  # 1-D and float32
  x1 <- rnd(5, 2, 2)
  w1 <- rnd(3, 4, 2)
  expect_equal(op_forward("Deconvolution", list(x1, w1), list(kernel = 3, num_filter = 4,
                          stride = 2), dtype = "float32")[[1]],
               deconv_ref(x1, w1, stride = 2), tolerance = 1e-5)
  # Deconvolution is the data gradient of Convolution
  xc <- rnd(7, 6, 3, 2)
  wc <- rnd(3, 3, 3, 4)
  og <- rnd(3, 2, 4, 2)
  pc <- list(kernel = c(3, 3), num_filter = 4, stride = c(2, 2), no_bias = TRUE)
  dx <- op_backward("Convolution", list(xc, wc), list(og), pc)[[1]]
  dc <- op_forward("Deconvolution", list(og, wc), list(kernel = c(3, 3), num_filter = 3,
                   stride = c(2, 2), adj = c(0, 1)))[[1]]
  expect_equal(dc, dx, tolerance = 1e-12)
})

test_that("Deconvolution gradients match finite differences", {
  set.seed(105)
  op_check_grad("Deconvolution", list(rnd(3, 4, 2, 2), rnd(3, 3, 3, 2), rnorm(3)),
                list(kernel = c(3, 3), num_filter = 3, stride = c(2, 2), pad = c(1, 1),
                     adj = c(1, 0), no_bias = FALSE), seed = 1051)
  op_check_grad("Deconvolution", list(rnd(3, 3, 4, 2), rnd(2, 2, 1, 4)),
                list(kernel = c(2, 2), num_filter = 2, num_group = 2, dilate = c(2, 1)),
                seed = 1052)
  op_check_grad("Deconvolution", list(rnd(5, 2, 3), rnd(3, 2, 2)),
                list(kernel = 3, num_filter = 2, stride = 2, pad = 1), seed = 1053)
})

test_that("Convolution and Deconvolution infer weight and bias shapes", {
  x <- rnd(7, 6, 4, 2)
  # a weight of the wrong shape is rejected, naming the weight
  expect_op_error("Convolution", list(x, rnd(3, 3, 4, 5), rnorm(4)),
                  list(kernel = c(3, 3), num_filter = 4), "weight")
  expect_op_error("Convolution", list(x, rnd(3, 3, 3, 4), rnorm(4)),
                  list(kernel = c(3, 3), num_filter = 4))
  expect_op_error("Convolution", list(x, rnd(3, 3, 4, 4), rnorm(3)),
                  list(kernel = c(3, 3), num_filter = 4), "bias")
  expect_op_error("Deconvolution", list(x, rnd(3, 3, 2, 3)),
                  list(kernel = c(3, 3), num_filter = 2))
})

test_that("Convolution rejects bad parameters", {
  x <- rnd(5, 5, 3, 2)
  w <- rnd(3, 3, 3, 4)
  b <- rnorm(4)
  # kernel larger than the (padded) input
  expect_op_error("Convolution", list(x, rnd(7, 7, 3, 4), b),
                  list(kernel = c(7, 7), num_filter = 4), "exceed")
  # dilated kernel larger than input
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                  dilate = c(3, 3)))
  # num_filter missing / invalid
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3)), "num_filter")
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 0))
  # kernel missing or of the wrong rank for the data
  expect_op_error("Convolution", list(x, w, b), list(num_filter = 4), "kernel")
  expect_op_error("Convolution", list(x, rnd(3, 3, 3), b), list(kernel = 3, num_filter = 4))
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3, 3, 3), num_filter = 4))
  # channels not divisible by num_group; num_filter not divisible by num_group
  expect_op_error("Convolution", list(x, rnd(3, 3, 1, 4), b),
                  list(kernel = c(3, 3), num_filter = 4, num_group = 2), "num_group")
  expect_op_error("Convolution", list(rnd(5, 5, 4, 2), rnd(3, 3, 2, 3), rnorm(3)),
                  list(kernel = c(3, 3), num_filter = 3, num_group = 2), "num_group")
  # stride / pad / dilate of the wrong length or value
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                  stride = c(1, 1, 1)), "stride")
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                  stride = c(0, 1)), "stride")
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                  pad = c(-1, 0)), "pad")
  # layout other than the kernel's
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                  layout = "NCW"), "layout")
  expect_op_error("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                  layout = "NHWC"))
  # accepted MXNet parameters that do nothing on the CPU
  got <- op_forward("Convolution", list(x, w, b), list(kernel = c(3, 3), num_filter = 4,
                    cudnn_tune = "fastest", cudnn_off = TRUE, workspace = 64,
                    layout = "NCHW"))[[1]]
  expect_equal(got, conv_ref(x, w, b), tolerance = 1e-12)
})

test_that("Deconvolution rejects bad parameters", {
  x <- rnd(4, 3, 2, 2)
  w <- rnd(3, 3, 3, 2)
  p <- list(kernel = c(3, 3), num_filter = 3)
  expect_op_error("Deconvolution", list(x, w), list(kernel = c(3, 3)), "num_filter")
  expect_op_error("Deconvolution", list(x, w), c(p, list(stride = c(2, 2), adj = c(2, 0))),
                  "adj")
  expect_op_error("Deconvolution", list(x, w), c(p, list(target_shape = c(40, 40))), "target")
  expect_op_error("Deconvolution", list(x, w), c(p, list(pad = c(5, 5))))
  expect_op_error("Deconvolution", list(rnd(4, 3, 3, 2), rnd(3, 3, 2, 3)),
                  list(kernel = c(3, 3), num_filter = 4, num_group = 2), "num_group")
  # no_bias defaults to TRUE: a bias input is one input too many
  expect_op_error("Deconvolution", list(x, w, rnorm(3)), p)
})
