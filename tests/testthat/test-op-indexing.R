# Indexing ops: one_hot, take, pick (choose_element_0index), Embedding,
# where, gather_nd.  Forward against plain R, index rounding/clip/wrap
# modes, finite-difference gradients (data inputs only; index inputs have
# none), bad shapes and parameters.
#
# R's dim is the reverse of the C shape: C axis k of an n-dim array is R
# dimension n - k.  Index values are floats; they are rounded to the
# nearest integer (tests avoid exact .5 ties, which R's round() breaks to
# even and C's round() away from zero).

# take along C axis `axis` with plain R indexing.
r_take <- function(a, idx, axis = 0, mode = "clip") {
  d <- dim(a)
  if (is.null(d)) d <- length(a)
  a <- array(a, d)
  nd <- length(d)
  ax <- if (axis < 0) axis + nd else axis
  rdim <- nd - ax
  M <- d[rdim]
  j <- round(as.vector(idx))
  j <- if (mode == "clip") pmin(pmax(j, 0), M - 1) else j %% M
  args <- lapply(seq_len(nd), function(k) if (k == rdim) j + 1 else seq_len(d[k]))
  v <- do.call("[", c(list(a), args, list(drop = FALSE)))
  idim <- if (is.null(dim(idx))) length(idx) else dim(idx)
  array(v, c(d[seq_len(rdim - 1)], idim, d[-seq_len(rdim)]))
}

expect_same_array <- function(got, want, tol = 1e-12, info = NULL) {
  expect_equal(as.vector(dim(got)), as.vector(dim(want)), info = info)
  expect_equal(as.vector(got), as.vector(want), tolerance = tol, info = info)
}

test_that("one_hot matches R, with on/off values and out-of-range rows", {
  idx <- c(0, 2, 1, 3)
  want <- outer(0:3, idx, "==") * 1
  expect_same_array(op_forward("one_hot", list(idx), list(depth = 4))[[1]], want)
  got <- op_forward("one_hot", list(c(1, 5, -1, 0.9)), list(depth = 3, on_value = 7, off_value = -2))[[1]]
  expect_same_array(got, matrix(c(-2, 7, -2,
                                  -2, -2, -2,
                                  -2, -2, -2,
                                  -2, 7, -2), 3, 4))
  # 2-D indices: C (2, 3) -> (2, 3, depth)
  m <- matrix(c(0, 1, 2, 2, 1, 0), 3, 2)
  got <- op_forward("one_hot", list(m), list(depth = 3))[[1]]
  expect_equal(dim(got), c(3, 3, 2))
  for (i in 1:3) for (k in 1:2) expect_equal(got[, i, k], as.numeric(0:2 == m[i, k]))
  got <- op_forward("one_hot", list(idx), list(depth = 4, dtype = "float64"))[[1]]
  expect_same_array(got, want)
  got32 <- op_forward("one_hot", list(idx), list(depth = 4), dtype = "float32")[[1]]
  expect_same_array(got32, want)
})

test_that("one_hot needs a positive depth", {
  expect_op_error("one_hot", list(c(0, 1)), list(), "depth")
  expect_op_error("one_hot", list(c(0, 1)), list(depth = 0), "depth")
  expect_op_error("one_hot", list(c(0, NaN)), list(depth = 2), "NaN")
})

test_that("take matches R along every axis, clip and wrap, rounding indices", {
  set.seed(41)
  a <- array(rnorm(5 * 4 * 3), c(5, 4, 3)) # C (3, 4, 5)
  idx <- c(0, 2.9, 1.2, -1, 7, 2)
  for (ax in c(0, 1, 2, -1)) {
    for (mode in c("clip", "wrap")) {
      got <- op_forward("take", list(a, idx), list(axis = ax, mode = mode))[[1]]
      expect_same_array(got, r_take(a, idx, ax, mode), info = paste(ax, mode))
    }
  }
  # default: axis 0, clip; 2-D indices give (idx dims) + rest
  m <- matrix(c(0, 1, 2, 2, 0, 1), 2, 3) # C (3, 2)
  got <- op_forward("take", list(a, m))[[1]]
  expect_equal(dim(got), c(5, 4, 2, 3))
  expect_same_array(got, r_take(a, m, 0))
  expect_same_array(op_forward("take", list(a, m), list(axis = 2))[[1]], r_take(a, m, 2))
  # vector data
  v <- c(10, 20, 30, 40)
  expect_equal(as.vector(op_forward("take", list(v, c(3, 0, 9)))[[1]]), c(40, 10, 40))
  expect_equal(as.vector(op_forward("take", list(v, c(-1, 5)), list(mode = "wrap"))[[1]]), c(40, 20))
  expect_same_array(op_forward("take", list(a, idx), list(axis = 1), dtype = "float32")[[1]],
                    r_take(a, idx, 1), tol = 1e-6)
})

test_that("take mode='raise' rejects out-of-range indices; NaN is always an error", {
  v <- c(10, 20, 30, 40)
  expect_equal(as.vector(op_forward("take", list(v, c(3, 0)), list(mode = "raise"))[[1]]), c(40, 10))
  expect_op_error("take", list(v, c(4, 0)), list(mode = "raise"), "out of range")
  expect_op_error("take", list(v, c(-1)), list(mode = "raise"), "out of range")
  expect_op_error("take", list(v, c(1, NaN)), list(), "NaN")
  expect_op_error("take", list(v, c(1, 2)), list(axis = 1), "axis")
  expect_op_error("take", list(matrix(0, 2, 2), c(1, 2)), list(axis = -3), "axis")
  expect_op_error("take", list(v, c(1, 2)), list(mode = "nearest"))
})

test_that("take gradients scatter-add into the data (three shapes)", {
  set.seed(42)
  op_check_grad("take", list(rnorm(7), c(0, 3, 3, 6, 1)), wrt = 1, seed = 401)
  op_check_grad("take", list(matrix(rnorm(15), 3, 5), c(4, 0, 4, 2)), list(axis = 0), wrt = 1, seed = 402)
  op_check_grad("take", list(matrix(rnorm(15), 3, 5), c(2, 2, 1)), list(axis = 1), wrt = 1, seed = 403)
  op_check_grad("take", list(array(rnorm(30), c(5, 3, 2)), matrix(c(0, 2, 2, 1), 2, 2)),
                list(axis = 1, mode = "wrap"), wrt = 1, seed = 404)
  g <- op_backward("take", list(c(1, 2, 3), c(0, 2, 2)), list(c(1, 10, 100)))
  expect_equal(as.vector(g[[1]]), c(1, 0, 110))
  expect_equal(as.vector(g[[2]]), c(0, 0, 0))
})

test_that("pick matches R (clip, wrap, keepdims, other axes) and choose_element_0index", {
  x <- matrix(1:12, 4, 3) # C (3, 4)
  idx <- c(1, 7, -1)
  expect_same_array(op_forward("pick", list(x, idx))[[1]], array(c(2, 8, 9), 3))
  expect_same_array(op_forward("pick", list(x, idx), list(mode = "wrap"))[[1]], array(c(2, 8, 12), 3))
  expect_same_array(op_forward("pick", list(x, idx), list(keepdims = TRUE))[[1]],
                    array(c(2, 8, 9), c(1, 3)))
  expect_same_array(op_forward("choose_element_0index", list(x, idx))[[1]], array(c(2, 8, 9), 3))
  # C axis 0: one index per R row
  expect_same_array(op_forward("pick", list(x, c(0, 2, 1, 2)), list(axis = 0))[[1]],
                    array(c(x[1, 1], x[2, 3], x[3, 2], x[4, 3]), 4))
  # index given with the kept axis of size one
  expect_same_array(op_forward("pick", list(x, matrix(idx, 1, 3)), list(keepdims = TRUE))[[1]],
                    array(c(2, 8, 9), c(1, 3)))
  # 3-D, C axis 1
  set.seed(43)
  a <- array(rnorm(24), c(4, 3, 2)) # C (2, 3, 4)
  im <- matrix(c(0, 1, 2, 1, 2, 0, 1, 2), 4, 2) # C (2, 4)
  want <- matrix(0, 4, 2)
  for (i in 1:4) for (k in 1:2) want[i, k] <- a[i, im[i, k] + 1, k]
  expect_same_array(op_forward("pick", list(a, im), list(axis = 1))[[1]], want)
  expect_same_array(op_forward("pick", list(a, im), list(axis = 1), dtype = "float32")[[1]], want,
                    tol = 1e-6)
})

test_that("pick gradients go to the picked positions", {
  set.seed(44)
  op_check_grad("pick", list(matrix(rnorm(12), 4, 3), c(1, 3, 0)), wrt = 1, seed = 411)
  op_check_grad("pick", list(matrix(rnorm(15), 5, 3), c(0, 4, 2, 2, 1)), list(axis = 0), wrt = 1, seed = 412)
  op_check_grad("pick", list(array(rnorm(24), c(4, 3, 2)), matrix(c(0, 1, 2, 1, 2, 0, 1, 2), 4, 2)),
                list(axis = 1, keepdims = TRUE), wrt = 1, seed = 413)
  g <- op_backward("pick", list(matrix(1:6, 3, 2), c(2, 0)), list(c(5, 7)))[[1]]
  expect_equal(g, matrix(c(0, 0, 5, 7, 0, 0), 3, 2))
})

test_that("pick rejects bad axes and index shapes", {
  x <- matrix(1:12, 4, 3)
  expect_op_error("pick", list(x, c(1, 2, 3)), list(axis = 2), "axis")
  expect_op_error("pick", list(x, c(1, 2)), list(), "index")
  expect_op_error("pick", list(x, c(1, 2, 3)), list(axis = "None"), "axis")
})

test_that("Embedding looks up rows of the weight", {
  set.seed(45)
  W <- matrix(rnorm(4 * 6), 4, 6) # C weight (input_dim 6, output_dim 4)
  idx <- matrix(c(0, 5, 2, 2, 7, -1), 3, 2) # C (2, 3); 7 and -1 clip
  got <- op_forward("Embedding", list(idx, W), list(input_dim = 6, output_dim = 4))[[1]]
  expect_equal(dim(got), c(4, 3, 2))
  for (i in 1:3) for (k in 1:2)
    expect_equal(got[, i, k], W[, min(max(idx[i, k], 0), 5) + 1], tolerance = 1e-12)
  got32 <- op_forward("Embedding", list(idx, W), list(input_dim = 6, output_dim = 4),
                      dtype = "float32")[[1]]
  expect_equal(got32[, 2, 1], W[, 6], tolerance = 1e-6)
})

test_that("Embedding gradient scatter-adds into the weight; indices get none", {
  set.seed(46)
  W <- matrix(rnorm(3 * 5), 3, 5)
  op_check_grad("Embedding", list(c(0, 4, 4, 2), W), list(input_dim = 5, output_dim = 3), wrt = 2,
                seed = 421)
  op_check_grad("Embedding", list(matrix(c(1, 1, 0, 3, 2, 1), 2, 3), matrix(rnorm(8), 2, 4)),
                list(input_dim = 4, output_dim = 2), wrt = 2, seed = 422)
  op_check_grad("Embedding", list(7, matrix(rnorm(9), 1, 9)), list(input_dim = 9, output_dim = 1),
                wrt = 2, seed = 423)
  g <- op_backward("Embedding", list(c(1, 1, 0), matrix(0, 2, 3)), list(matrix(1:6, 2, 3)),
                   list(input_dim = 3, output_dim = 2))
  expect_equal(as.vector(g[[1]]), c(0, 0, 0))
  expect_equal(g[[2]], matrix(c(5, 6, 4, 6, 0, 0), 2, 3))
})

test_that("Embedding checks the weight shape and its parameters", {
  expect_op_error("Embedding", list(c(0, 1), matrix(0, 4, 5)), list(input_dim = 6, output_dim = 4),
                  "weight")
  expect_op_error("Embedding", list(c(0, 1), matrix(0, 4, 5)), list(input_dim = 5), "output_dim")
  expect_op_error("Embedding", list(c(0, 1), matrix(0, 4, 5)), list(input_dim = 0, output_dim = 4))
})

test_that("where selects from x or y by condition (same shape or 1-D rows)", {
  set.seed(47)
  x <- array(rnorm(24), c(4, 3, 2))
  y <- array(rnorm(24), c(4, 3, 2))
  cond <- array(sample(c(0, 1, 2, -1), 24, replace = TRUE), c(4, 3, 2))
  expect_same_array(op_forward("where", list(cond, x, y))[[1]], ifelse(cond != 0, x, y))
  # 1-D condition of length x.shape[0] (the last R dim) selects whole C rows
  c1 <- c(0, 3)
  want <- x
  want[, , 1] <- y[, , 1]
  expect_same_array(op_forward("where", list(c1, x, y))[[1]], want)
  expect_same_array(op_forward("where", list(cond, x, y), dtype = "float32")[[1]],
                    ifelse(cond != 0, x, y), tol = 1e-6)
})

test_that("where gradients go to x where cond != 0 and to y elsewhere", {
  set.seed(48)
  for (s in list(5, c(3, 4), c(2, 3, 2))) {
    cond <- array(sample(c(0, 1), prod(s), replace = TRUE), s)
    op_check_grad("where", list(cond, array(rnorm(prod(s)), s), array(rnorm(prod(s)), s)),
                  wrt = 2:3, seed = 431)
  }
  x <- matrix(rnorm(6), 3, 2)
  op_check_grad("where", list(c(1, 0), x, x + 1), wrt = 2:3, seed = 432)
  g <- op_backward("where", list(c(1, 0, 2), c(1, 1, 1), c(2, 2, 2)), list(c(5, 6, 7)))
  expect_equal(as.vector(g[[1]]), c(0, 0, 0))
  expect_equal(as.vector(g[[2]]), c(5, 0, 7))
  expect_equal(as.vector(g[[3]]), c(0, 6, 0))
})

test_that("where rejects mismatched shapes", {
  x <- matrix(0, 4, 3) # C (3, 4)
  expect_op_error("where", list(c(1, 0, 1, 0), x, x), "condition")
  expect_op_error("where", list(matrix(1, 3, 4), x, x))
  expect_op_error("where", list(x, x, matrix(0, 3, 4)))
})

test_that("gather_nd gathers slices, wraps negative indices, and scatter-adds its gradient", {
  set.seed(49)
  d <- array(rnorm(24), c(4, 3, 2)) # C (2, 3, 4)
  ind <- matrix(c(0, 1, 1, 1,
                  2, 0, -1, 2), 4, 2) # C (2, 4): rows are C index coordinates
  got <- op_forward("gather_nd", list(d, ind))[[1]]
  expect_equal(dim(got), c(4, 4))
  for (k in 1:4)
    expect_equal(got[, k], d[, (ind[k, 2] %% 3) + 1, ind[k, 1] + 1], tolerance = 1e-12)
  # full indexing: one element per column
  ind3 <- matrix(c(1, 0, 2, 1, 0, 3), 2, 3) # C (3, 2)
  got <- op_forward("gather_nd", list(d, ind3))[[1]]
  expect_equal(as.vector(got), c(d[ind3[1, 3] + 1, ind3[1, 2] + 1, ind3[1, 1] + 1],
                                 d[ind3[2, 3] + 1, ind3[2, 2] + 1, ind3[2, 1] + 1]))
  op_check_grad("gather_nd", list(d, ind), wrt = 1, seed = 441)
  op_check_grad("gather_nd", list(matrix(rnorm(15), 5, 3), matrix(c(0, 2, 2, 1, 4, 4), 3, 2)),
                wrt = 1, seed = 442)
  op_check_grad("gather_nd", list(rnorm(6), matrix(c(1, 1, 5), 3, 1)), wrt = 1, seed = 443)
  expect_op_error("gather_nd", list(d, matrix(0, 2, 4)), "rank")
})
