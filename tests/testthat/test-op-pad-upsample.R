# Pad and UpSampling.
#
# R's dim is the reverse of the C shape: an R array c(W, H, C, N) is the
# C tensor (N, C, H, W).  pad_width is MXNet's C-order tuple
# (before_0, after_0, ..., before_3, after_3); like every tuple it is given
# in R order, i.e. reversed, so the tests write rev(<C tuple>).  scale is an
# integer or an R-order tuple c(w, h).

# 1-based source index along one R dim for padding (NA = constant).
pad_idx <- function(len, b, a, mode) {
  i <- seq(-b, len + a - 1)
  if (mode == "edge") {
    i <- pmin(pmax(i, 0), len - 1)
  } else if (mode == "reflect") {
    i <- ifelse(i < 0, -i, ifelse(i >= len, 2 * (len - 1) - i, i))
  } else {
    i[i < 0 | i >= len] <- NA
  }
  i + 1
}

pad_ref <- function(x, cpw, mode, value = 0) {
  nd <- length(dim(x))
  args <- lapply(seq_len(nd), function(j) {
    ci <- nd - j
    pad_idx(dim(x)[j], cpw[2 * ci + 1], cpw[2 * ci + 2], mode)
  })
  out <- do.call(`[`, c(list(x), args, list(drop = FALSE)))
  out[is.na(out)] <- value
  out
}

up_ref <- function(x, sw, sh = sw) {
  x[rep(seq_len(dim(x)[1]), each = sw), rep(seq_len(dim(x)[2]), each = sh), , , drop = FALSE]
}

# Depthwise transposed convolution (MXNet's bilinear UpSampling).
bil_ref <- function(x, w, s) {
  K <- 2 * s - s %% 2
  p <- ceiling((s - 1) / 2)
  d <- dim(x)
  out <- array(0, c(d[1] * s, d[2] * s, d[3], d[4]))
  for (n in seq_len(d[4])) for (ch in seq_len(d[3]))
    for (iy in 0:(d[2] - 1)) for (ix in 0:(d[1] - 1)) for (ky in 0:(K - 1)) for (kx in 0:(K - 1)) {
      oy <- iy * s - p + ky
      ox <- ix * s - p + kx
      if (oy >= 0 && oy < d[2] * s && ox >= 0 && ox < d[1] * s)
        out[ox + 1, oy + 1, ch, n] <- out[ox + 1, oy + 1, ch, n] +
          x[ix + 1, iy + 1, ch, n] * w[kx + 1, ky + 1, 1, ch]
    }
  out
}

test_that("Pad matches numpy-style constant, edge and reflect padding", {
  set.seed(71)
  x <- array(rnorm(5 * 4 * 3 * 2), c(5, 4, 3, 2)) # C (2, 3, 4, 5)
  for (cpw in list(c(0, 0, 0, 0, 1, 2, 3, 1), c(0, 0, 0, 0, 0, 3, 2, 0), c(0, 0, 0, 0, 0, 0, 0, 0))) {
    for (mode in c("constant", "edge", "reflect")) {
      got <- op_forward("Pad", list(x), list(mode = mode, pad_width = rev(cpw),
                                            constant_value = 1.5))[[1]]
      expect_equal(got, pad_ref(x, cpw, mode, 1.5))
    }
  }
  cpw <- c(0, 0, 0, 0, 2, 1, 1, 4)
  expect_equal(op_forward("pad", list(x), list(mode = "edge", pad_width = rev(cpw)),
                          dtype = "float32")[[1]], pad_ref(x, cpw, "edge"), tolerance = 1e-6)
  expect_equal(op_forward("Pad", list(x), list(mode = "constant", pad_width = rev(cpw)))[[1]],
               pad_ref(x, cpw, "constant", 0))
  # a small fixed example: reflect of 0 1 2 by (2, 2) is 2 1 0 1 2 1 0
  r <- op_forward("Pad", list(array(0:2, c(3, 1, 1, 1))),
                  list(mode = "reflect", pad_width = rev(c(0, 0, 0, 0, 0, 0, 2, 2))))[[1]]
  expect_equal(as.vector(r), c(2, 1, 0, 1, 2, 1, 0))
})

test_that("Pad works on 5-D inputs where tuples allow 10 entries", {
  x <- array(rnorm(4 * 3 * 2 * 2 * 1), c(4, 3, 2, 2, 1))
  cpw <- c(0, 0, 0, 0, 1, 0, 0, 2, 1, 1)
  got <- tryCatch(op_forward("Pad", list(x), list(mode = "edge", pad_width = rev(cpw)))[[1]],
                  error = function(e) e)
  if (inherits(got, "error") && grepl("must be a tuple", conditionMessage(got)))
    skip("tuple parameters hold at most 8 entries (SN_MAX_DIMS)")
  expect_equal(got, pad_ref(x, cpw, "edge"))
})

test_that("Pad rejects bad pad_width and shapes", {
  x <- array(0, c(5, 4, 3, 2))
  expect_op_error("Pad", list(x), list(mode = "constant", pad_width = rev(c(1, 0, 0, 0, 1, 1, 1, 1))),
                  "batch or channel")
  expect_op_error("Pad", list(x), list(mode = "constant", pad_width = rev(c(0, 0, 1, 1, 1, 1))),
                  "entries")
  expect_op_error("Pad", list(array(0, c(4, 3, 2))), list(mode = "constant", pad_width = rev(c(0, 0, 0, 0, 1, 1))),
                  "4-D or 5-D")
  expect_op_error("Pad", list(x), list(mode = "reflect", pad_width = rev(c(0, 0, 0, 0, 4, 0, 0, 0))),
                  "smaller")
  expect_op_error("Pad", list(x), list(mode = "wrap", pad_width = rev(c(0, 0, 0, 0, 1, 1, 1, 1))))
  expect_op_error("Pad", list(x), list(pad_width = rev(c(0, 0, 0, 0, 1, 1, 1, 1))), "mode")
})

test_that("UpSampling nearest repeats pixels and combines several inputs", {
  set.seed(72)
  x <- array(rnorm(4 * 3 * 2 * 2), c(4, 3, 2, 2)) # C (2, 2, 3, 4)
  p <- list(scale = 2, sample_type = "nearest", num_args = 1)
  expect_equal(op_forward("UpSampling", list(x), p)[[1]], up_ref(x, 2))
  expect_equal(op_forward("UpSampling", list(x), p, dtype = "float32")[[1]], up_ref(x, 2),
               tolerance = 1e-6)
  # scale as an R-order tuple c(w, h)
  expect_equal(op_forward("UpSampling", list(x), list(scale = c(3, 2), sample_type = "nearest",
                                                    num_args = 1))[[1]], up_ref(x, 3, 2))
  # several inputs: all upsampled to the first's size times scale
  y <- array(rnorm(2 * 3 * 1 * 2), c(2, 3, 1, 2)) # W 2 -> 8 (x4), H 3 -> 6 (x2)
  got <- op_forward("UpSampling", list(x, y), list(scale = 2, sample_type = "nearest", num_args = 2))[[1]]
  want <- array(c(aperm(up_ref(x, 2), c(1, 2, 4, 3)), aperm(up_ref(y, 4, 2), c(1, 2, 4, 3))),
                c(8, 6, 2, 3))
  expect_equal(got, aperm(want, c(1, 2, 4, 3)))
  z <- array(rnorm(2 * 3 * 2 * 2), c(2, 3, 2, 2))
  got <- op_forward("UpSampling", list(x, z), list(scale = 2, sample_type = "nearest", num_args = 2,
                                                  multi_input_mode = "sum"))[[1]]
  expect_equal(got, up_ref(x, 2) + up_ref(z, 4, 2))
})

test_that("UpSampling bilinear is MXNet's depthwise deconvolution", {
  set.seed(73)
  # MXNet's documented example: ones (1, 1, 3, 3) with a ones 4 x 4 kernel
  got <- op_forward("UpSampling", list(array(1, c(3, 3, 1, 1)), array(1, c(4, 4, 1, 1))),
                    list(scale = 2, sample_type = "bilinear", num_filter = 1, num_args = 2))[[1]]
  edge <- c(1, 2, 2, 2, 2, 1)
  expect_equal(as.vector(got[, , 1, 1]), as.vector(outer(edge, edge)))
  for (s in 2:3) {
    K <- 2 * s - s %% 2
    x <- array(rnorm(3 * 2 * 2 * 2), c(3, 2, 2, 2))
    w <- array(rnorm(K * K * 2), c(K, K, 1, 2))
    p <- list(scale = s, sample_type = "bilinear", num_filter = 2, num_args = 2)
    expect_equal(op_forward("UpSampling", list(x, w), p)[[1]], bil_ref(x, w, s))
    expect_equal(op_forward("UpSampling", list(x, w), p, dtype = "float32")[[1]], bil_ref(x, w, s),
                 tolerance = 1e-5)
  }
})

test_that("UpSampling rejects bad params and shapes", {
  x <- array(0, c(4, 3, 2, 2))
  expect_op_error("UpSampling", list(x), list(scale = 2, num_args = 1), "sample_type")
  expect_op_error("UpSampling", list(x), list(scale = 0, sample_type = "nearest", num_args = 1),
                  "positive")
  expect_op_error("UpSampling", list(x, x), list(scale = 2, sample_type = "nearest", num_args = 1),
                  "num_args|input")
  expect_op_error("UpSampling", list(array(0, c(4, 3, 2))),
                  list(scale = 2, sample_type = "nearest", num_args = 1), "4-D")
  expect_op_error("UpSampling", list(x, array(0, c(3, 3, 2, 2))),
                  list(scale = 2, sample_type = "nearest", num_args = 2), "divide")
  expect_op_error("UpSampling", list(x, array(0, c(2, 3, 1, 2))),
                  list(scale = 2, sample_type = "nearest", num_args = 2, multi_input_mode = "sum"),
                  "channels")
  expect_op_error("UpSampling", list(x, array(0, c(4, 4, 1, 2))),
                  list(scale = 2, sample_type = "bilinear", num_filter = 3, num_args = 2), "num_filter")
  expect_op_error("UpSampling", list(x, array(0, c(4, 4, 1, 2))),
                  list(scale = c(2, 3), sample_type = "bilinear", num_filter = 2, num_args = 2), "same scale")
})

test_that("Pad and UpSampling gradients match finite differences", {
  set.seed(74)
  shapes <- list(c(3, 4, 1, 1), c(5, 3, 2, 1), c(4, 4, 1, 2))
  for (k in seq_along(shapes)) {
    d <- shapes[[k]]
    x <- array(rnorm(prod(d)), d)
    for (mode in c("constant", "edge", "reflect"))
      op_check_grad("Pad", list(x), list(mode = mode, pad_width = rev(c(0, 0, 0, 0, 2, 1, 1, 2)),
                                         constant_value = 0.5), seed = 700 + k)
    op_check_grad("UpSampling", list(x), list(scale = 2, sample_type = "nearest", num_args = 1),
                  seed = 710 + k)
    op_check_grad("UpSampling", list(x), list(scale = c(1, 3), sample_type = "nearest", num_args = 1),
                  seed = 715 + k)
    y <- array(rnorm(d[1] * d[2] * d[4]), c(d[1], d[2], 1, d[4]))
    op_check_grad("UpSampling", list(x, y), list(scale = 2, sample_type = "nearest", num_args = 2),
                  seed = 720 + k)
    z <- array(rnorm(prod(d)), d)
    op_check_grad("UpSampling", list(x, z), list(scale = 2, sample_type = "nearest", num_args = 2,
                                                multi_input_mode = "sum"), seed = 725 + k)
    s <- c(2, 3, 2)[k]
    K <- 2 * s - s %% 2
    w <- array(rnorm(K * K * d[3]), c(K, K, 1, d[3]))
    op_check_grad("UpSampling", list(x, w), list(scale = s, sample_type = "bilinear",
                                                num_filter = d[3], num_args = 2), seed = 730 + k)
  }
})
