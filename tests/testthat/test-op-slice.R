# slice (alias crop), slice_axis, slice_like, Crop, _slice_assign
# (_crop_assign) and _slice_assign_scalar.
#
# R's dim is the reverse of the C shape.  begin / end / step are given in R
# order (reversed on the way in); a string such as "(None, 1)" is passed to
# the engine as is, i.e. in C order, which is how None entries are written.
# axis scalars are C-order axes: C axis k of an n-D array is R dim n - k.

# R reference: x[...] with 0-based C-order (begin, end, step) per C dim.
slice_ref <- function(x, begin, end, step = rep(1, length(begin))) {
  nd <- length(dim(x))
  args <- rep(list(quote(expr = )), nd)
  for (i in seq_along(begin)) {
    len <- dim(x)[nd - i + 1]
    s <- step[i]
    b <- begin[i]
    e <- end[i]
    if (is.na(b)) {
      b <- if (s < 0) len - 1 else 0
    } else if (b < 0) {
      b <- b + len
    }
    if (is.na(e)) {
      e <- if (s < 0) -1 else len
    } else if (e < 0) {
      e <- e + len
    }
    idx <- if (s > 0) seq(b, e - 1, by = s) else seq(b, e + 1, by = s)
    args[[nd - i + 1]] <- idx + 1
  }
  do.call(`[`, c(list(x), args, list(drop = FALSE)))
}

tuple_str <- function(v) {
  paste0("(", paste(ifelse(is.na(v), "None", v), collapse = ", "), if (length(v) == 1) ",)" else ")")
}

test_that("slice and crop match R indexing", {
  set.seed(61)
  x <- array(rnorm(5 * 4 * 3), c(5, 4, 3)) # C (3, 4, 5)
  # begin / end in R order: C begin (1, 0), end (3, 2) on the leading C dims
  expect_equal(op_forward("slice", list(x), list(begin = rev(c(1, 0)), end = rev(c(3, 2))))[[1]],
               slice_ref(x, c(1, 0), c(3, 2)))
  expect_equal(op_forward("crop", list(x), list(begin = rev(c(0, 1, 2)), end = rev(c(2, 4, 5))))[[1]],
               x[3:5, 2:4, 1:2, drop = FALSE])
  # negative indices and steps, None (as a C-order string)
  cases <- list(
    list(b = c(-2, 0, 1), e = c(3, -1, 5), s = c(1, 2, 3)),
    list(b = c(2, NA), e = c(NA, NA), s = c(-1, -2)),
    list(b = c(NA, 3), e = c(2, 0), s = c(1, -1)),
    list(b = c(0, 1, 4), e = c(3, 4, 0), s = c(2, 1, -3)),
    list(b = NA, e = -1, s = NA))
  for (cs in cases) {
    s <- ifelse(is.na(cs$s), 1, cs$s)
    want <- slice_ref(x, cs$b, cs$e, s)
    got <- op_forward("slice", list(x), list(begin = tuple_str(cs$b), end = tuple_str(cs$e),
                                             step = tuple_str(cs$s)))[[1]]
    expect_equal(got, want)
  }
  expect_equal(op_forward("slice", list(x), list(begin = "(1, None)", end = "(None, 3)"),
                          dtype = "float32")[[1]], x[, 1:3, 2:3, drop = FALSE], tolerance = 1e-6)
  # integer-valued data survive any dtype of copy
  expect_equal(op_forward("slice", list(x), list(begin = "(1,)", end = "(2,)"))[[1]],
               x[, , 2, drop = FALSE])
})

test_that("slice rejects out-of-range and empty slices", {
  x <- array(0, c(5, 4, 3))
  expect_op_error("slice", list(x), list(begin = "(3,)", end = "(4,)"), "out of range")
  expect_op_error("slice", list(x), list(begin = "(0,)", end = "(4,)"), "out of range")
  expect_op_error("slice", list(x), list(begin = "(-4,)", end = "(2,)"), "out of range")
  expect_op_error("slice", list(x), list(begin = "(1,)", end = "(1,)"), "empty")
  expect_op_error("slice", list(x), list(begin = "(2,)", end = "(1,)"), "begin")
  expect_op_error("slice", list(x), list(begin = "(0, 0)", end = "(1,)"), "same length")
  expect_op_error("slice", list(x), list(begin = "(0,)", end = "(1,)", step = "(0,)"), "step")
  expect_op_error("slice", list(x), list(begin = "(0, 0, 0, 0)", end = "(1, 1, 1, 1)"),
                  "more entries")
  expect_op_error("slice", list(x), list(end = "(1,)"), "begin")
})

test_that("slice_axis and slice_like match R indexing", {
  set.seed(62)
  x <- array(rnorm(5 * 4 * 3), c(5, 4, 3)) # C (3, 4, 5)
  expect_equal(op_forward("slice_axis", list(x), list(axis = 0, begin = 1, end = 3))[[1]],
               x[, , 2:3, drop = FALSE])
  expect_equal(op_forward("slice_axis", list(x), list(axis = -1, begin = -3, end = "None"))[[1]],
               x[3:5, , , drop = FALSE])
  expect_equal(op_forward("slice_axis", list(x), list(axis = 1, begin = 0, end = -1),
                          dtype = "float32")[[1]], x[, 1:3, , drop = FALSE], tolerance = 1e-6)
  expect_op_error("slice_axis", list(x), list(axis = 0, begin = 2, end = 2), "valid range")
  expect_op_error("slice_axis", list(x), list(axis = 0, begin = 0, end = 4), "valid range")
  expect_op_error("slice_axis", list(x), list(axis = 3, begin = 0, end = 1), "out of range")
  like <- array(0, c(2, 3, 3))
  expect_equal(op_forward("slice_like", list(x, like))[[1]], x[1:2, 1:3, , drop = FALSE])
  # axes are C-order: axis 2 = R dim 1
  expect_equal(op_forward("slice_like", list(x, like), list(axes = 2))[[1]], x[1:2, , , drop = FALSE])
  # C axes (0, -2) of a C (2, 1) shape_like
  expect_equal(op_forward("slice_like", list(x, array(0, c(1, 2))), list(axes = c(-2, 0)))[[1]],
               x[, 1, 1:2, drop = FALSE])
  expect_op_error("slice_like", list(x, array(0, c(1, 2))), list(axes = 2), "out of range")
  expect_op_error("slice_like", list(x, array(0, c(6, 4, 3))), list(), "larger")
  expect_op_error("slice_like", list(x, array(0, c(2, 3))), list(), "same number")
})

test_that("Crop crops the spatial dims to h_w or to crop_like", {
  set.seed(63)
  x <- array(rnorm(7 * 6 * 2 * 2), c(7, 6, 2, 2)) # C (N=2, C=2, H=6, W=7)
  # h_w and offset in R order: c(w, h), c(x, y)
  got <- op_forward("Crop", list(x), list(num_args = 1, h_w = c(4, 3), offset = c(2, 1)))[[1]]
  expect_equal(got, x[3:6, 2:4, , , drop = FALSE])
  got <- op_forward("Crop", list(x), list(num_args = 1, h_w = c(4, 3), center_crop = TRUE))[[1]]
  expect_equal(got, x[2:5, 2:4, , , drop = FALSE])
  like <- array(0, c(3, 5, 1, 2))
  got <- op_forward("Crop", list(x, like), list(num_args = 2, offset = c(1, 0)))[[1]]
  expect_equal(got, x[2:4, 1:5, , , drop = FALSE])
  got <- op_forward("Crop", list(x, like), list(num_args = 2, center_crop = TRUE),
                    dtype = "float32")[[1]]
  expect_equal(got, x[3:5, 1:5, , , drop = FALSE], tolerance = 1e-6)
  expect_op_error("Crop", list(x), list(num_args = 1, h_w = c(8, 3)), "larger")
  expect_op_error("Crop", list(x), list(num_args = 1, h_w = c(4, 3), offset = c(4, 0)), "fit")
  expect_op_error("Crop", list(x), list(num_args = 1), "positive")
  expect_op_error("Crop", list(array(0, c(4, 4, 2))), list(num_args = 1, h_w = c(2, 2)), "4-D")
})

test_that("_slice_assign and _slice_assign_scalar replace a region", {
  set.seed(64)
  x <- array(rnorm(5 * 4 * 3), c(5, 4, 3))
  v <- array(rnorm(2 * 2 * 3), c(2, 2, 3))
  want <- x
  want[2:3, c(1, 3), ] <- v
  # C begin (0, 0, 1), end (3, 4, 3), step (1, 2, 1)
  p <- list(begin = rev(c(0, 0, 1)), end = rev(c(3, 4, 3)), step = rev(c(1, 2, 1)))
  expect_equal(op_forward("_slice_assign", list(x, v), p)[[1]], want)
  expect_equal(op_forward("_crop_assign", list(x, v), p)[[1]], want)
  want2 <- x
  want2[2:3, c(1, 3), ] <- -7
  expect_equal(op_forward("_slice_assign_scalar", list(x), c(p, scalar = -7))[[1]], want2)
  expect_equal(op_forward("_crop_assign_scalar", list(x), c(p, scalar = -7), dtype = "float32")[[1]],
               want2, tolerance = 1e-6)
  expect_op_error("_slice_assign", list(x, array(0, c(3, 2, 3))), p, "rhs")
  expect_op_error("_slice_assign", list(x, v), list(begin = "(0,)", end = "(9,)"), "out of range")
})

test_that("slice op gradients match finite differences", {
  set.seed(65)
  shapes <- list(c(5, 3), c(4, 3, 3), c(3, 1, 4, 2))
  for (k in seq_along(shapes)) {
    d <- shapes[[k]]
    nd <- length(d)
    x <- array(rnorm(prod(d)), d)
    op_check_grad("slice", list(x), list(begin = "(1,)", end = "(None,)"), seed = 600 + k)
    op_check_grad("slice", list(x), list(begin = "(-1, 0)", end = "(None, None)",
                                         step = "(-1, 2)"), seed = 605 + k)
    op_check_grad("slice_axis", list(x), list(axis = -1, begin = 1, end = "None"), seed = 610 + k)
    like <- array(0, pmax(d - 1, 1))
    op_check_grad("slice_like", list(x, like), seed = 615 + k)
    op_check_grad("_slice_assign", list(x, array(rnorm(prod(d[-nd])), c(d[-nd], 1))),
                  list(begin = "(1,)", end = "(2,)"), seed = 620 + k)
    op_check_grad("_slice_assign_scalar", list(x), list(scalar = 2, begin = "(0,)", end = "(1,)"),
                  seed = 625 + k)
  }
  for (k in 1:3) {
    d <- list(c(5, 4, 2, 1), c(6, 7, 1, 2), c(3, 3, 3, 2))[[k]]
    x <- array(rnorm(prod(d)), d)
    op_check_grad("Crop", list(x), list(num_args = 1, h_w = c(2, 2), center_crop = TRUE),
                  seed = 630 + k)
    op_check_grad("Crop", list(x, array(0, c(d[1] - 1, 2, 1, d[4]))),
                  list(num_args = 2, offset = c(1, 0)), seed = 635 + k)
  }
})
