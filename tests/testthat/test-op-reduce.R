# Reductions (sum, mean, prod, max, min, norm) and index reductions
# (argmax, argmin, argmax_channel): forward against plain R, keepdims and
# exclude, finite-difference gradients, MXNet's tie and zero rules, bad axes.
#
# R's dim is the reverse of the engine's C shape, so C axis k of an array
# with n dims is R dimension n - k.

# Plain-R reduction over C-order axes (NULL: all axes).
r_reduce <- function(x, f, axis = NULL, keepdims = FALSE, exclude = FALSE) {
  d <- dim(x)
  if (is.null(d)) d <- length(x)
  x <- array(x, d)
  nd <- length(d)
  if (is.null(axis) || length(axis) == 0) {
    rd <- seq_len(nd)
  } else {
    axis <- ifelse(axis < 0, axis + nd, axis)
    rd <- nd - axis
    if (exclude) rd <- setdiff(seq_len(nd), rd)
  }
  kept <- setdiff(seq_len(nd), rd)
  if (length(kept) == 0) {
    v <- f(as.vector(x))
    return(if (keepdims) array(v, rep(1, nd)) else array(v, 1))
  }
  v <- apply(x, kept, f)
  if (keepdims) {
    dk <- d
    dk[rd] <- 1
    array(v, dk)
  } else {
    array(v, d[kept])
  }
}

expect_same_array <- function(got, want, tol = 1e-12, info = NULL) {
  expect_equal(as.vector(dim(got)), as.vector(dim(want)), info = info)
  expect_equal(as.vector(got), as.vector(want), tolerance = tol, info = info)
}

red_fun <- list(sum = sum, mean = mean, prod = prod, max = max, min = min)

test_that("sum/mean/prod/max/min match R over axes, keepdims and exclude", {
  set.seed(21)
  x <- array(rnorm(60), c(5, 4, 3)) # C shape (3, 4, 5)
  axes <- list(NULL, 0, 1, 2, -1, c(0, 2), c(1, 2), c(0, 1, 2))
  for (op in names(red_fun)) {
    for (ax in axes) {
      for (kd in c(FALSE, TRUE)) {
        for (ex in c(FALSE, TRUE)) {
          if (ex && is.null(ax)) next
          info <- sprintf("%s axis=%s keepdims=%s exclude=%s", op, paste(ax, collapse = ","), kd, ex)
          want <- r_reduce(x, red_fun[[op]], ax, kd, ex)
          got <- op_forward(op, list(x), list(axis = ax, keepdims = kd, exclude = ex))[[1]]
          expect_same_array(got, want, info = info)
        }
      }
    }
  }
})

test_that("reductions work on 1-D, 2-D odd and 4-D inputs and in float32", {
  set.seed(22)
  v <- rnorm(7)
  expect_same_array(op_forward("sum", list(v))[[1]], array(sum(v), 1))
  expect_same_array(op_forward("max", list(v), list(axis = 0))[[1]], array(max(v), 1))
  m <- matrix(rnorm(21), 7, 3) # C shape (3, 7)
  expect_same_array(op_forward("mean", list(m), list(axis = 1))[[1]], array(colMeans(m), 3))
  expect_same_array(op_forward("mean", list(m), list(axis = 0))[[1]], array(rowMeans(m), 7))
  a4 <- array(rnorm(2 * 3 * 4 * 5), c(2, 3, 4, 5)) # C (5, 4, 3, 2)
  for (op in names(red_fun)) {
    for (ax in list(c(1, 3), c(0, 2), 3, c(0, 1))) {
      want <- r_reduce(a4, red_fun[[op]], ax)
      got <- op_forward(op, list(a4), list(axis = ax))[[1]]
      expect_same_array(got, want, info = paste(op, paste(ax, collapse = ",")))
      got32 <- op_forward(op, list(a4), list(axis = ax), dtype = "float32")[[1]]
      expect_same_array(got32, want, tol = 1e-5, info = paste("float32", op))
    }
  }
  # aliases
  expect_same_array(op_forward("sum_axis", list(m), list(axis = 1))[[1]], array(colSums(m), 3))
  expect_same_array(op_forward("max_axis", list(m), list(axis = 1))[[1]], array(apply(m, 2, max), 3))
  expect_same_array(op_forward("min_axis", list(m), list(axis = 1))[[1]], array(apply(m, 2, min), 3))
})

test_that("large reductions (parallel and split paths) match R", {
  set.seed(23)
  big <- matrix(runif(3 * 40000), 40000, 3) # C shape (3, 40000)
  expect_equal(as.vector(op_forward("sum", list(big), list(axis = 1))[[1]]), colSums(big),
               tolerance = 1e-12)
  expect_equal(as.vector(op_forward("sum", list(big))[[1]]), sum(big), tolerance = 1e-12)
  expect_equal(as.vector(op_forward("sum", list(big), list(axis = 0))[[1]]), rowSums(big),
               tolerance = 1e-12)
  expect_equal(as.vector(op_forward("max", list(big), list(axis = 1), dtype = "float32")[[1]]),
               apply(big, 2, max), tolerance = 1e-6)
  wide <- matrix(runif(50000 * 2), 2, 50000) # C shape (50000, 2): reduce the long outer axis
  expect_equal(as.vector(op_forward("mean", list(wide), list(axis = 0))[[1]]), rowMeans(wide),
               tolerance = 1e-12)
})

test_that("max/min propagate NaN; prod handles zeros", {
  x <- c(1, NaN, 3)
  expect_true(is.nan(as.vector(op_forward("max", list(x))[[1]])))
  expect_true(is.nan(as.vector(op_forward("min", list(x))[[1]])))
  expect_equal(as.vector(op_forward("prod", list(c(2, 0, 3)))[[1]]), 0)
  # NaN inside the vectorised part of a long contiguous or strided reduction
  long <- seq_len(200) / 7
  long[77] <- NaN
  for (dt in c("float64", "float32")) {
    expect_true(is.nan(as.vector(op_forward("max", list(long), dtype = dt)[[1]])))
    expect_true(is.nan(as.vector(op_forward("min", list(long), dtype = dt)[[1]])))
    m <- matrix(long, 2, 100) # C (100, 2): reduce the outer axis, NaN in column 1
    got <- as.vector(op_forward("max", list(m), list(axis = 0), dtype = dt)[[1]])
    expect_true(is.nan(got[1]))
    expect_equal(got[2], max(m[2, ]), tolerance = 1e-6)
  }
})

test_that("axis=() reduces over everything (MXNet quirk), even with exclude", {
  x <- array(rnorm(12), c(3, 2, 2))
  expect_same_array(op_forward("sum", list(x), list(axis = integer(0)))[[1]], array(sum(x), 1))
  expect_same_array(op_forward("sum", list(x), list(axis = integer(0), exclude = TRUE))[[1]],
                    array(sum(x), 1))
  expect_same_array(op_forward("max", list(x), list(keepdims = TRUE))[[1]],
                    array(max(x), c(1, 1, 1)))
})

test_that("norm accepts out_dtype equal to the input dtype only", {
  x <- c(3, 4)
  expect_equal(as.vector(op_forward("norm", list(x), list(out_dtype = "float64"))[[1]]), 5)
  expect_equal(as.vector(op_forward("norm", list(x), list(out_dtype = "float32"),
                                    dtype = "float32")[[1]]), 5)
  expect_op_error("norm", list(x), list(out_dtype = "float32"), "out_dtype")
  expect_op_error("norm", list(x), list(out_dtype = "complex"))
})

test_that("norm matches R for ord 1 and 2 over axes", {
  set.seed(24)
  x <- array(rnorm(24), c(4, 3, 2))
  expect_same_array(op_forward("norm", list(x))[[1]], array(sqrt(sum(x^2)), 1))
  expect_same_array(op_forward("norm", list(x), list(ord = 1))[[1]], array(sum(abs(x)), 1))
  for (ax in list(0, 1, -1, c(1, 2))) {
    for (kd in c(FALSE, TRUE)) {
      want2 <- r_reduce(x, function(v) sqrt(sum(v^2)), ax, kd)
      want1 <- r_reduce(x, function(v) sum(abs(v)), ax, kd)
      expect_same_array(op_forward("norm", list(x), list(axis = ax, keepdims = kd))[[1]], want2)
      expect_same_array(op_forward("norm", list(x), list(ord = 1, axis = ax, keepdims = kd))[[1]],
                        want1)
    }
  }
  expect_same_array(op_forward("norm", list(x), list(axis = 1), dtype = "float32")[[1]],
                    r_reduce(x, function(v) sqrt(sum(v^2)), 1), tol = 1e-5)
})

test_that("reduction gradients match finite differences on three shapes", {
  set.seed(25)
  shapes <- list(7, c(3, 5), c(2, 3, 5))
  params <- list(list(), list(axis = 0), list(axis = -1, keepdims = TRUE),
                 list(axis = 0, exclude = TRUE))
  for (s in shapes) {
    x <- array(rnorm(prod(s)), s)
    for (op in c("sum", "mean", "prod", "max", "min")) {
      for (p in params) {
        if (length(s) == 1 && isTRUE(p$exclude)) next
        op_check_grad(op, list(x), p, seed = 201)
      }
    }
    if (length(s) == 3) {
      for (op in c("sum", "mean", "prod", "max", "min"))
        op_check_grad(op, list(x), list(axis = c(0, 2)), seed = 202)
    }
    op_check_grad("norm", list(x), list(), seed = 203)
    op_check_grad("norm", list(x), list(axis = 0), seed = 204)
    xa <- array(sign(x) * (0.1 + abs(x)), s) # away from 0 for ord=1
    op_check_grad("norm", list(xa), list(ord = 1, axis = -1), seed = 205)
  }
})

test_that("prod gradient is the product of the others, exact with zeros", {
  g <- op_backward("prod", list(c(2, 3, 4)), list(1))[[1]]
  expect_equal(as.vector(g), c(12, 8, 6))
  g <- op_backward("prod", list(c(2, 0, 4)), list(1))[[1]]
  expect_equal(as.vector(g), c(0, 8, 0))
  g <- op_backward("prod", list(c(0, 3, 0)), list(1))[[1]]
  expect_equal(as.vector(g), c(0, 0, 0))
  # per group: C shape (2, 3), reduce axis 1
  x <- matrix(c(1, 2, 3, 0, 5, 6), 3, 2)
  g <- op_backward("prod", list(x), list(c(1, 10)), list(axis = 1))[[1]]
  expect_equal(as.vector(g), c(6, 3, 2, 300, 0, 0))
  op_check_grad("prod", list(c(2, 0, 4, 1.5)), seed = 206)
  op_check_grad("prod", list(matrix(c(1, 0, 3, 0, 5, 6), 3, 2)), list(axis = 1), seed = 207)
})

test_that("max/min gradient goes to every tied position (MXNet rule)", {
  g <- op_backward("max", list(c(1, 5, 5, 2)), list(3))[[1]]
  expect_equal(as.vector(g), c(0, 3, 3, 0))
  g <- op_backward("min", list(c(4, 1, 2, 1)), list(2))[[1]]
  expect_equal(as.vector(g), c(0, 2, 0, 2))
})

test_that("sum/mean backward broadcast the output gradient", {
  x <- matrix(1:6, 3, 2) # C (2, 3)
  g <- op_backward("sum", list(x), list(c(1, 2)), list(axis = 1))[[1]]
  expect_equal(g, matrix(c(1, 1, 1, 2, 2, 2), 3, 2))
  g <- op_backward("mean", list(x), list(c(3, 6, 9)), list(axis = 0))[[1]]
  expect_equal(g, matrix(c(1.5, 3, 4.5, 1.5, 3, 4.5), 3, 2))
})

test_that("argmax/argmin/argmax_channel match R (first occurrence)", {
  x <- matrix(c(1, 7, 3, 7,
                9, 2, 2, 0,
                4, 4, 8, 1), 4, 3) # C shape (3, 4)
  # C axis 1 = R dim 1 (within each column)
  expect_same_array(op_forward("argmax", list(x), list(axis = 1))[[1]],
                    array(apply(x, 2, which.max) - 1, 3))
  expect_same_array(op_forward("argmin", list(x), list(axis = 1))[[1]],
                    array(apply(x, 2, which.min) - 1, 3))
  expect_same_array(op_forward("argmax", list(x), list(axis = 0))[[1]],
                    array(apply(x, 1, which.max) - 1, 4))
  expect_same_array(op_forward("argmax", list(x), list(axis = -1, keepdims = TRUE))[[1]],
                    array(apply(x, 2, which.max) - 1, c(1, 3)))
  # flattened (C order == R's column-major order of the reversed dims)
  expect_same_array(op_forward("argmax", list(x))[[1]], array(which.max(x) - 1, 1))
  expect_same_array(op_forward("argmin", list(x))[[1]], array(which.min(x) - 1, 1))
  expect_same_array(op_forward("argmax_channel", list(x))[[1]],
                    array(apply(x, 2, which.max) - 1, 3))
  # 4-D: argmax_channel works on C axis 1
  set.seed(26)
  a <- array(rnorm(2 * 3 * 4 * 2), c(2, 3, 4, 2)) # C (2, 4, 3, 2)
  want <- apply(a, c(1, 2, 4), which.max) - 1
  expect_same_array(op_forward("argmax_channel", list(a))[[1]], want)
  expect_same_array(op_forward("argmax", list(a), list(axis = 1), dtype = "float32")[[1]], want)
  expect_same_array(op_forward("argmax", list(c(3, 1, 4, 1, 5)), list(axis = 0))[[1]], array(4, 1))
})

test_that("bad axes and parameters are errors", {
  x <- array(1:24, c(4, 3, 2))
  expect_op_error("sum", list(x), list(axis = 3), "out of range")
  expect_op_error("sum", list(x), list(axis = -4), "out of range")
  expect_op_error("mean", list(x), list(axis = c(0, 0)), "twice")
  expect_op_error("max", list(x), list(axis = c(1, -2)), "twice")
  expect_op_error("norm", list(x), list(ord = 3), "ord")
  expect_op_error("norm", list(x), list(axis = 5), "out of range")
  expect_op_error("argmax", list(x), list(axis = 3), "out of range")
  expect_op_error("sum", list(x), list(keepdim = TRUE))
  expect_op_error("sum", list(x), list(axis = "a"))
})
