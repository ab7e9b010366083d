# Shape ops: Reshape (with MXNet's special codes), Flatten, expand_dims,
# squeeze, transpose, SwapAxis, broadcast_to, broadcast_axis, tile, repeat.
#
# R's dim is the reverse of the C shape: an R array with dim c(4, 3, 2) is
# the C tensor (2, 3, 4) with the same memory.  Tuple parameters (shape,
# reps, axes, ...) are given in R order and reversed on the way in; axis
# scalars are C-order axes.

# C shape of an R array, and an R array of a given C shape.
cshape <- function(x) rev(dim(x))
carray <- function(cdims, vals = seq_len(prod(cdims))) array(as.numeric(vals), rev(cdims))

# Output C shape of Reshape for an input of C shape `cin` and C-order codes.
reshape_cshape <- function(cin, code, ...) {
  x <- carray(cin)
  out <- op_forward("Reshape", list(x), list(shape = rev(code), ...))[[1]]
  expect_equal(as.vector(out), as.vector(x)) # a view: the data do not move
  cshape(out)
}

# R aperm permutation for a C transpose with 0-based C axes p.
c2r_perm <- function(p) {
  nd <- length(p)
  vapply(seq_len(nd), function(k) nd - p[nd - k + 1], 0)
}

# Broadcast / tile reference: output R dims `rd`, input index wraps.
wrap_ref <- function(x, rd) {
  dx <- dim(x)
  if (length(dx) < length(rd)) dx <- c(dx, rep(1, length(rd) - length(dx)))
  idx <- arrayInd(seq_len(prod(rd)), rd)
  for (j in seq_along(rd)) idx[, j] <- (idx[, j] - 1) %% dx[j] + 1
  array(array(x, dx)[idx], rd)
}

test_that("Reshape special codes give MXNet's shapes", {
  # examples from MXNet's Reshape documentation (C shapes)
  expect_equal(reshape_cshape(c(2, 3, 4), c(4, 0, 2)), c(4, 3, 2))
  expect_equal(reshape_cshape(c(2, 3, 4), c(2, 0, 0)), c(2, 3, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(6, 1, -1)), c(6, 1, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(3, -1, 8)), c(3, 1, 8))
  expect_equal(reshape_cshape(c(2, 3, 4), c(-1)), 24)
  expect_equal(reshape_cshape(c(2, 3, 4), c(-2)), c(2, 3, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(2, -2)), c(2, 3, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(-2, 1, 1)), c(2, 3, 4, 1, 1))
  expect_equal(reshape_cshape(c(2, 3, 4), c(-3, 4)), c(6, 4))
  expect_equal(reshape_cshape(c(2, 3, 4, 5), c(-3, -3)), c(6, 20))
  expect_equal(reshape_cshape(c(2, 3, 4), c(0, -3)), c(2, 12))
  expect_equal(reshape_cshape(c(2, 3, 4), c(-3, -2)), c(6, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(-4, 1, 2, -2)), c(1, 2, 3, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(2, -4, -1, 3, -2)), c(2, 1, 3, 4))
  expect_equal(reshape_cshape(c(6, 5), c(-4, 2, -1, 0)), c(2, 3, 5))
  # reverse matches the codes from the right
  expect_equal(reshape_cshape(c(10, 5, 4), c(-1, 0)), c(40, 5))
  expect_equal(reshape_cshape(c(10, 5, 4), c(-1, 0), reverse = TRUE), c(50, 4))
  expect_equal(reshape_cshape(c(2, 3, 4), c(0, -1), reverse = TRUE), c(3, 8))
  # legacy target_shape: 0 marks the inferred dim; keep_highest keeps dim 0
  x <- carray(c(2, 3, 4))
  got <- op_forward("Reshape", list(x), list(target_shape = rev(c(4, 0))))[[1]]
  expect_equal(cshape(got), c(4, 6))
  got <- op_forward("Reshape", list(x), list(target_shape = rev(c(0, 3, 0)), keep_highest = TRUE))[[1]]
  expect_equal(cshape(got), c(2, 3, 4))
  # the alias and MXNet R's reshape(shape = 0) on an (N, 1) output
  y <- matrix(1:5, 1, 5) # C (5, 1)
  got <- op_forward("reshape", list(y), list(shape = 0))[[1]]
  expect_equal(as.vector(dim(got)), 5)
  expect_equal(as.vector(got), 1:5)
  # R-level example: a 4 x 3 x 2 array reshaped to 12 x 2 (C (2, 12))
  x <- array(rnorm(24), c(4, 3, 2))
  expect_equal(op_forward("Reshape", list(x), list(shape = c(12, 2)))[[1]], array(x, c(12, 2)))
  expect_equal(op_forward("Reshape", list(x), list(shape = c(-1, 0)))[[1]], array(x, c(12, 2)))
  expect_equal(op_forward("Reshape", list(x), list(shape = c(-1, 2)), dtype = "float32")[[1]],
               array(x, c(12, 2)), tolerance = 1e-6)
})

test_that("Reshape rejects sizes and codes that do not fit", {
  x <- carray(c(2, 3))
  expect_op_error("Reshape", list(x), list(shape = rev(c(4, -1))),
                  "cannot reshape \\(2, 3\\) into \\(4, -1\\)")
  expect_op_error("Reshape", list(x), list(shape = rev(c(5, 2))), "cannot reshape")
  expect_op_error("Reshape", list(x), list(shape = rev(c(-1, -1))), "only one")
  expect_op_error("Reshape", list(x), list(shape = rev(c(0, 0, 0))), "dims")
  expect_op_error("Reshape", list(x), list(shape = rev(c(-4, 4, -1, 3))), "divide")
  expect_op_error("Reshape", list(x), list(shape = rev(c(-4, -1, -1, 3))), "both")
  expect_op_error("Reshape", list(x), list(shape = rev(c(-3, -3))), "-3")
  expect_op_error("Reshape", list(x), list(shape = rev(c(-5, 6))), "invalid")
  expect_op_error("Reshape", list(x), list(shape = rev(c(2^40, 2^40, -1))), "cannot reshape")
  expect_op_error("Reshape", list(x), list(shape = "(-4, 4611686018427387904, 4, 3)"), "divide")
})

test_that("Flatten, expand_dims and squeeze move no data", {
  x <- array(rnorm(5 * 4 * 3 * 2), c(5, 4, 3, 2))
  got <- op_forward("Flatten", list(x))[[1]]
  expect_equal(got, array(x, c(60, 2)))
  expect_equal(op_forward("flatten", list(1:7))[[1]], array(1:7, c(1, 7))) # (N,) -> (N, 1)
  y <- array(rnorm(12), c(4, 3)) # C (3, 4)
  for (ax in c(0, 1, 2, -1, -3)) {
    k <- if (ax < 0) ax + 3 else ax
    want <- array(y, append(dim(y), 1, after = 2 - k))
    expect_equal(op_forward("expand_dims", list(y), list(axis = ax))[[1]], want)
  }
  z <- array(rnorm(6), c(1, 3, 1, 2)) # C (2, 1, 3, 1)
  expect_equal(op_forward("squeeze", list(z))[[1]], array(z, c(3, 2)))
  expect_equal(op_forward("squeeze", list(z), list(axis = 1))[[1]], array(z, c(1, 3, 2)))
  expect_equal(op_forward("squeeze", list(z), list(axis = c(-1, 1)))[[1]], array(z, c(3, 2)))
  expect_equal(as.vector(dim(op_forward("squeeze", list(array(5, c(1, 1))))[[1]])), 1)
  expect_equal(op_forward("squeeze", list(z), dtype = "float32")[[1]], array(z, c(3, 2)),
               tolerance = 1e-6)
  expect_op_error("expand_dims", list(y), list(axis = 3), "out of range")
  expect_op_error("squeeze", list(z), list(axis = 2), "not 1")
  expect_op_error("squeeze", list(z), list(axis = 5), "out of range")
})

test_that("transpose and SwapAxis match aperm", {
  set.seed(41)
  x <- array(rnorm(2 * 3 * 4 * 5), c(5, 4, 3, 2)) # C (2, 3, 4, 5)
  expect_equal(op_forward("transpose", list(x))[[1]], aperm(x, 4:1))
  for (p in list(c(0, 2, 1, 3), c(3, 1, 0, 2), c(1, 0, 3, 2), c(0, 1, 2, 3))) {
    expect_equal(op_forward("transpose", list(x), list(axes = rev(p)))[[1]], aperm(x, c2r_perm(p)))
  }
  m <- matrix(rnorm(37 * 41), 37, 41) # large enough for the tiled path
  expect_equal(op_forward("transpose", list(m))[[1]], t(m))
  expect_equal(op_forward("transpose", list(m), dtype = "float32")[[1]], t(m), tolerance = 1e-6)
  big <- array(rnorm(3 * 70 * 45), c(45, 70, 3))
  expect_equal(op_forward("transpose", list(big), list(axes = rev(c(0, 2, 1))))[[1]],
               aperm(big, c2r_perm(c(0, 2, 1))))
  # SwapAxis: C dims d1, d2 are R dims nd - d1, nd - d2
  expect_equal(op_forward("SwapAxis", list(x), list(dim1 = 0, dim2 = 2))[[1]],
               aperm(x, c(1, 4, 3, 2)))
  expect_equal(op_forward("swapaxes", list(x), list(dim1 = 1, dim2 = -1))[[1]],
               aperm(x, c(3, 2, 1, 4)))
  expect_op_error("transpose", list(x), list(axes = c(0, 1, 2)), "entries")
  expect_op_error("transpose", list(x), list(axes = c(0, 1, 1, 2)), "permutation")
  expect_op_error("SwapAxis", list(x), list(dim1 = 0, dim2 = 4), "out of range")
})

test_that("broadcast_to, broadcast_axis, tile and repeat match R references", {
  set.seed(42)
  x <- array(rnorm(3 * 1 * 2), c(2, 1, 3)) # C (3, 1, 2)
  # broadcast_to: C shape (3, 4, 2); 0 keeps a dim
  want <- wrap_ref(x, c(2, 4, 3))
  expect_equal(op_forward("broadcast_to", list(x), list(shape = rev(c(3, 4, 2))))[[1]], want)
  expect_equal(op_forward("broadcast_to", list(x), list(shape = rev(c(0, 4, 0))))[[1]], want)
  expect_equal(op_forward("broadcast_axis", list(x), list(axis = 1, size = 4))[[1]], want)
  expect_equal(op_forward("broadcast_axes", list(x), list(axis = 1, size = 4),
                          dtype = "float32")[[1]], want, tolerance = 1e-6)
  y <- array(rnorm(4), c(1, 4, 1)) # C (1, 4, 1)
  expect_equal(op_forward("broadcast_axis", list(y), list(axis = c(0, 2), size = c(3, 5)))[[1]],
               wrap_ref(y, c(5, 4, 3)))
  # tile: reps in R order; shorter reps / shape padded with leading (C) 1s
  m <- matrix(rnorm(6), 3, 2) # C (2, 3)
  expect_equal(op_forward("tile", list(m), list(reps = c(2, 3)))[[1]], wrap_ref(m, c(6, 6)))
  expect_equal(op_forward("tile", list(m), list(reps = 2))[[1]], wrap_ref(m, c(6, 2)))
  expect_equal(op_forward("tile", list(m), list(reps = c(1, 2, 2)))[[1]],
               wrap_ref(m, c(3, 4, 2)))
  # repeat: C axis k is R axis nd - k; axis None flattens in C order
  expect_equal(op_forward("repeat", list(m), list(repeats = 2, axis = 0))[[1]],
               m[, rep(1:2, each = 2)])
  expect_equal(op_forward("repeat", list(m), list(repeats = 3, axis = -1))[[1]],
               m[rep(1:3, each = 3), ])
  got <- op_forward("repeat", list(m), list(repeats = 2))[[1]]
  expect_equal(as.vector(got), rep(as.vector(m), each = 2))
  expect_equal(as.vector(dim(got)), 12)
  expect_op_error("broadcast_to", list(m), list(shape = rev(c(4, 3))), "cannot broadcast")
  expect_op_error("broadcast_to", list(m), list(shape = rev(c(2, 3, 4))), "cannot broadcast")
  expect_op_error("broadcast_axis", list(m), list(axis = 0, size = 4), "size 1")
  expect_op_error("tile", list(m), list(reps = c(0, 2)), "positive")
  expect_op_error("repeat", list(m), list(repeats = 0, axis = 0), "positive")
  expect_op_error("repeat", list(m), list(repeats = 2, axis = 2), "out of range")
  # sizes that do not fit in 64 bits are errors, not crashes
  expect_op_error("tile", list(m), list(reps = c(2^40, 2^40)), "too many|64 bits")
  expect_op_error("tile", list(m), list(reps = "(1, 4611686018427387904)"), "64 bits")
  expect_op_error("repeat", list(m), list(repeats = "4611686018427387904", axis = 0), "64 bits")
})

test_that("shape op gradients match finite differences", {
  set.seed(43)
  shapes <- list(c(3, 4), c(5, 1, 3), c(2, 3, 1, 3))
  for (k in seq_along(shapes)) {
    d <- shapes[[k]]
    x <- array(rnorm(prod(d)), d)
    nd <- length(d)
    op_check_grad("Reshape", list(x), list(shape = c(-1)), seed = 400 + k)
    op_check_grad("Flatten", list(x), seed = 410 + k)
    op_check_grad("expand_dims", list(x), list(axis = 1), seed = 420 + k)
    op_check_grad("squeeze", list(x), seed = 430 + k)
    op_check_grad("transpose", list(x), seed = 440 + k)
    op_check_grad("transpose", list(x), list(axes = rev(c(seq_len(nd - 1), 0))), seed = 445 + k)
    op_check_grad("SwapAxis", list(x), list(dim1 = 0, dim2 = nd - 1), seed = 450 + k)
    op_check_grad("tile", list(x), list(reps = c(2, rep(1, nd - 2), 3)), seed = 460 + k)
    op_check_grad("repeat", list(x), list(repeats = 2, axis = nd - 1), seed = 470 + k)
    op_check_grad("repeat", list(x), list(repeats = 3), seed = 475 + k)
    # broadcast the C dims of size 1 and the (C) first dim after making it 1
    b <- array(rnorm(prod(d[-nd])), c(d[-nd], 1))
    tgt <- d
    tgt[nd] <- 3
    tgt[d == 1] <- 2
    op_check_grad("broadcast_to", list(b), list(shape = tgt), seed = 480 + k)
    op_check_grad("broadcast_axis", list(b), list(axis = 0, size = 4), seed = 490 + k)
  }
})

test_that("view and copy ops inside a bound graph agree with and without memory planning", {
  # Reshape -> transpose -> expand_dims -> Flatten -> concat -> SliceChannel
  # -> product -> slice_axis -> tile; the view ops may share storage with
  # their inputs when the planner allows it.
  set.seed(44)
  xv <- array(rnorm(24), c(3, 4, 2))
  yv <- array(rnorm(6), c(6, 1))
  ref <- function(xv, yv) {
    f <- as.vector(t(array(xv, c(4, 6))))
    cc <- c(f, yv)
    p <- (cc[1:15] * cc[16:30])[2:13]
    matrix(c(p, p), 12, 2)
  }
  hg <- array(seq_len(24) / 10, c(12, 2))
  run <- function(plan) {
    old <- options(symnet.plan.memory = plan)
    on.exit(options(old))
    x <- mx.symbol.Variable("x")
    y <- mx.symbol.Variable("y")
    r <- mx.symbol.transpose(mx.symbol.Reshape(x, shape = c(4, -1)))
    f <- mx.symbol.Flatten(mx.symbol.expand_dims(r, axis = 0))
    s <- mx.symbol.SliceChannel(mx.symbol.concat(list(f, y), num.args = 2, dim = 1),
                                num_outputs = 2, axis = 1)
    out <- mx.symbol.tile(mx.symbol.slice_axis(s[[1]] * s[[2]], axis = 1, begin = 1, end = 13),
                          reps = c(1, 2))
    ex <- mx.simple.bind(out, mx.cpu(), grad.req = "write", x = c(3, 4, 2), y = c(6, 1))
    mx.exec.update.arg.arrays(ex, list(x = mx.nd.array(xv), y = mx.nd.array(yv)), match.name = TRUE)
    mx.exec.forward(ex, is.train = TRUE)
    mx.exec.backward(ex, list(mx.nd.array(hg)))
    list(out = as.array(ex$outputs[[1]]), gx = as.array(ex$grad.arrays$x),
         gy = as.array(ex$grad.arrays$y))
  }
  a <- run(TRUE)
  b <- run(FALSE)
  expect_equal(a, b)
  expect_equal(a$out, ref(xv, yv), tolerance = 1e-6)
  num <- vapply(seq_along(xv), function(i) {
    xp <- xv
    xp[i] <- xp[i] + 1e-6
    xm <- xv
    xm[i] <- xm[i] - 1e-6
    (sum(ref(xp, yv) * hg) - sum(ref(xm, yv) * hg)) / 2e-6
  }, 0)
  expect_equal(as.vector(a$gx), num, tolerance = 1e-5)
})
