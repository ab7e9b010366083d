# concat (Concat), SliceChannel (split) and stack.
#
# R's dim is the reverse of the C shape; `dim` / `axis` are C-order axes, so
# C axis k of an n-D array is R dim n - k.  Inputs are named arg0, arg1, ...
# and SliceChannel's outputs output0, output1, ...

# R reference: join arrays along R dim j.
rcat <- function(xs, j) {
  nd <- length(dim(xs[[1]]))
  perm <- c(setdiff(seq_len(nd), j), j)
  ys <- lapply(xs, function(x) aperm(x, perm))
  d <- dim(ys[[1]])
  d[nd] <- sum(vapply(ys, function(y) dim(y)[nd], 0))
  aperm(array(unlist(ys), d), order(perm))
}

# R reference: indices idx of R dim j.
rtake <- function(x, j, idx) {
  args <- rep(list(quote(expr = )), length(dim(x)))
  args[[j]] <- idx
  do.call(`[`, c(list(x), args, list(drop = FALSE)))
}

test_that("concat joins along a C-order dim", {
  set.seed(51)
  a <- array(rnorm(24), c(4, 3, 2))
  b <- array(rnorm(24), c(4, 3, 2))
  # MXNet R's test: concat(dim = 2) of c(4, 3, 2) arrays gives c(8, 3, 2)
  got <- op_forward("concat", list(a, b), list(num_args = 2, dim = 2))[[1]]
  expect_equal(dim(got), c(8, 3, 2))
  expect_equal(got, rcat(list(a, b), 1))
  expect_equal(op_forward("Concat", list(a, b), list(num_args = 2, dim = 0))[[1]],
               rcat(list(a, b), 3))
  expect_equal(op_forward("concat", list(a, b), list(num_args = 2))[[1]], rcat(list(a, b), 2))
  # unequal sizes along dim, three inputs, negative dim, float32
  c3 <- array(rnorm(4 * 5 * 2), c(4, 5, 2))
  c1 <- array(rnorm(4 * 1 * 2), c(4, 1, 2))
  want <- rcat(list(a, c3, c1), 2)
  expect_equal(op_forward("concat", list(a, c3, c1), list(num_args = 3, dim = -2))[[1]], want)
  expect_equal(op_forward("concat", list(a, c3, c1), list(num_args = 3, dim = 1),
                          dtype = "float32")[[1]], want, tolerance = 1e-6)
  # vectors
  expect_equal(as.vector(op_forward("concat", list(1:3, 4:5), list(num_args = 2, dim = 0))[[1]]),
               1:5)
})

test_that("concat rejects mismatched shapes and bad params", {
  a <- array(0, c(4, 3, 2))
  expect_op_error("concat", list(a, array(0, c(4, 2, 2))), list(num_args = 2, dim = 2),
                  "disagree|differ")
  expect_op_error("concat", list(a, array(0, c(4, 3))), list(num_args = 2), "dims")
  expect_op_error("concat", list(a, a), list(num_args = 2, dim = 3), "out of range")
  expect_op_error("concat", list(a, a), list(num_args = 3), "num_args|input")
  expect_op_error("concat", list(a, a), list(dim = 1), "num_args")
})

test_that("SliceChannel cuts into equal parts", {
  set.seed(52)
  x <- array(rnorm(6 * 2 * 3), c(6, 2, 3)) # C (3, 2, 6)
  got <- op_forward("SliceChannel", list(x), list(num_outputs = 3, axis = 2))
  expect_length(got, 3)
  for (k in 1:3) expect_equal(got[[k]], rtake(x, 1, (2 * k - 1):(2 * k)))
  got <- op_forward("split", list(x), list(num_outputs = 2)) # axis 1 = R dim 2
  for (k in 1:2) expect_equal(got[[k]], rtake(x, 2, k))
  got <- op_forward("split", list(x), list(num_outputs = 3, axis = 0, squeeze_axis = TRUE))
  for (k in 1:3) expect_equal(got[[k]], array(rtake(x, 3, k), c(6, 2)))
  got <- op_forward("split", list(x), list(num_outputs = 6, axis = -1), dtype = "float32")
  for (k in 1:6) expect_equal(got[[k]], rtake(x, 1, k), tolerance = 1e-6)
  expect_op_error("SliceChannel", list(x), list(num_outputs = 4, axis = 2), "divisible")
  expect_op_error("SliceChannel", list(x), list(num_outputs = 2, axis = 2, squeeze_axis = TRUE),
                  "squeeze")
  expect_op_error("SliceChannel", list(x), list(num_outputs = 2, axis = 3), "out of range")
  expect_op_error("SliceChannel", list(x), list(axis = 1), "num_outputs")
})

test_that("stack joins along a new axis", {
  set.seed(53)
  a <- array(rnorm(12), c(4, 3))
  b <- array(rnorm(12), c(4, 3))
  c3 <- array(rnorm(12), c(4, 3))
  # C axis 0 of the output (2-D inputs) is the new last R dim
  expect_equal(op_forward("stack", list(a, b, c3), list(num_args = 3))[[1]],
               array(c(a, b, c3), c(4, 3, 3)))
  want <- aperm(array(c(a, b, c3), c(4, 3, 3)), c(3, 1, 2)) # C axis 2 = R dim 1
  expect_equal(op_forward("stack", list(a, b, c3), list(num_args = 3, axis = 2))[[1]], want)
  expect_equal(op_forward("stack", list(a, b, c3), list(num_args = 3, axis = -1))[[1]], want)
  expect_equal(op_forward("stack", list(a, b), list(num_args = 2, axis = 1), dtype = "float32")[[1]],
               aperm(array(c(a, b), c(4, 3, 2)), c(1, 3, 2)), tolerance = 1e-6)
  expect_op_error("stack", list(a, array(0, c(3, 4))), list(num_args = 2), "shape")
  expect_op_error("stack", list(a, b), list(num_args = 2, axis = 3), "out of range")
})

test_that("concat, SliceChannel and stack gradients match finite differences", {
  set.seed(54)
  shapes <- list(c(3, 2), c(2, 3, 5), c(1, 3, 2, 3))
  for (k in seq_along(shapes)) {
    d <- shapes[[k]]
    nd <- length(d)
    a <- array(rnorm(prod(d)), d)
    d2 <- d
    d2[1] <- d2[1] + 1 # C axis nd - 1
    b <- array(rnorm(prod(d2)), d2)
    op_check_grad("concat", list(a, b), list(num_args = 2, dim = nd - 1), seed = 500 + k)
    op_check_grad("concat", list(a, a + 1, a - 1), list(num_args = 3, dim = 0), seed = 505 + k)
    s <- d
    s[nd] <- 3 # C axis 0 has 3 parts
    x <- array(rnorm(prod(s)), s)
    op_check_grad("SliceChannel", list(x), list(num_outputs = 3, axis = 0), seed = 510 + k)
    op_check_grad("SliceChannel", list(x), list(num_outputs = 3, axis = 0, squeeze_axis = TRUE),
                  seed = 515 + k)
    op_check_grad("stack", list(a, a * 2), list(num_args = 2, axis = nd %/% 2), seed = 520 + k)
  }
})
