# dot and batch_dot: forward against R's %*%, transposes, N-D and 1-D
# operands, finite-difference gradients, shape errors.
#
# R's dim is the reverse of the C shape: an R matrix A (m x k) is the C
# matrix t(A), so mx.nd.dot(t(A), t(B)) is t(A %*% B) in R.

test_that("dot of matrices matches %*% with every transpose combination", {
  set.seed(31)
  A <- matrix(rnorm(3 * 4), 3, 4)
  B <- matrix(rnorm(4 * 5), 4, 5)
  want <- t(A %*% B)
  expect_equal(op_forward("dot", list(t(A), t(B)))[[1]], want, tolerance = 1e-12)
  expect_equal(op_forward("dot", list(A, t(B)), list(transpose_a = TRUE))[[1]], want,
               tolerance = 1e-12)
  expect_equal(op_forward("dot", list(t(A), B), list(transpose_b = TRUE))[[1]], want,
               tolerance = 1e-12)
  expect_equal(op_forward("dot", list(A, B), list(transpose_a = TRUE, transpose_b = TRUE))[[1]],
               want, tolerance = 1e-12)
  expect_equal(op_forward("dot", list(t(A), t(B)), dtype = "float32")[[1]], want,
               tolerance = 1e-6)
})

test_that("dot of vectors and of N-D arrays follows MXNet's shapes", {
  set.seed(32)
  a <- rnorm(6)
  b <- rnorm(6)
  got <- op_forward("dot", list(a, b))[[1]]
  expect_equal(as.vector(dim(got)), 1)
  expect_equal(as.vector(got), sum(a * b), tolerance = 1e-12)
  # vector x matrix: C (k,) . (k, n) -> (n,)
  B <- matrix(rnorm(6 * 4), 6, 4)
  expect_equal(as.vector(op_forward("dot", list(a, t(B)))[[1]]), as.vector(a %*% B),
               tolerance = 1e-12)
  # matrix x vector: C (m, k) . (k,) -> (m,)
  A <- matrix(rnorm(5 * 6), 5, 6)
  expect_equal(as.vector(op_forward("dot", list(t(A), b))[[1]]), as.vector(A %*% b),
               tolerance = 1e-12)
  # N-D: C (2, 3, 4) . (4, 5) -> (2, 3, 5); R dims reversed
  l <- array(rnorm(4 * 3 * 2), c(4, 3, 2))
  r <- matrix(rnorm(5 * 4), 5, 4)
  L <- t(matrix(l, 4)) # (6 x 4), rows in C order
  want <- array(t(L %*% t(r)), c(5, 3, 2))
  expect_equal(op_forward("dot", list(l, r))[[1]], want, tolerance = 1e-12)
  # N-D . N-D: C (2, 3, 4) . (4, 5, 2) -> (2, 3, 5, 2)
  r3 <- array(rnorm(2 * 5 * 4), c(2, 5, 4))
  R3 <- t(matrix(r3, 10)) # (4 x 10)
  want <- array(t(L %*% R3), c(2, 5, 3, 2))
  expect_equal(op_forward("dot", list(l, r3))[[1]], want, tolerance = 1e-12)
  # transpose_a on N-D: lhs C (4, 3, 2) contracts its first axis
  lt <- array(rnorm(2 * 3 * 4), c(2, 3, 4)) # C (4, 3, 2)
  Lt <- t(matrix(lt, 6)) # (4 x 6) C matrix
  want <- array(t(t(Lt) %*% t(r)), c(5, 2, 3)) # C (3, 2, 5)
  expect_equal(op_forward("dot", list(lt, r), list(transpose_a = TRUE))[[1]], want,
               tolerance = 1e-12)
})

test_that("dot gradients match finite differences", {
  set.seed(33)
  op_check_grad("dot", list(matrix(rnorm(12), 4, 3), matrix(rnorm(20), 5, 4)), seed = 301)
  op_check_grad("dot", list(matrix(rnorm(12), 3, 4), matrix(rnorm(20), 5, 4)),
                list(transpose_a = TRUE), seed = 302)
  op_check_grad("dot", list(matrix(rnorm(12), 4, 3), matrix(rnorm(20), 4, 5)),
                list(transpose_b = TRUE), seed = 303)
  op_check_grad("dot", list(matrix(rnorm(7), 7, 1), matrix(rnorm(7), 1, 7)),
                list(transpose_a = TRUE, transpose_b = TRUE), seed = 304)
  op_check_grad("dot", list(rnorm(5), rnorm(5)), seed = 305)
  op_check_grad("dot", list(rnorm(3), matrix(rnorm(6), 2, 3)), seed = 306)
  op_check_grad("dot", list(array(rnorm(24), c(4, 3, 2)), array(rnorm(40), c(5, 2, 4))), seed = 307)
})

test_that("dot rejects mismatched shapes and transposed vectors", {
  expect_op_error("dot", list(matrix(0, 4, 3), matrix(0, 5, 3)), "mismatch")
  expect_op_error("dot", list(1:3, 1:4), "mismatch")
  expect_op_error("dot", list(1:3, 1:3), list(transpose_a = TRUE), "transpose")
  expect_op_error("dot", list(matrix(0, 4, 3), matrix(0, 5, 4)), list(transpose_b = TRUE),
                  "mismatch")
})

test_that("batch_dot matches per-item %*% with transposes", {
  set.seed(34)
  a <- array(rnorm(4 * 3 * 2), c(4, 3, 2)) # C (2, 3, 4): m = 3, k = 4
  b <- array(rnorm(5 * 4 * 2), c(5, 4, 2)) # C (2, 4, 5): n = 5
  want <- array(0, c(5, 3, 2))
  for (i in 1:2) want[, , i] <- b[, , i] %*% a[, , i]
  expect_equal(op_forward("batch_dot", list(a, b))[[1]], want, tolerance = 1e-12)
  expect_equal(op_forward("batch_dot", list(a, b), dtype = "float32")[[1]], want, tolerance = 1e-6)
  at <- aperm(a, c(2, 1, 3)) # C (2, 4, 3)
  bt <- aperm(b, c(2, 1, 3)) # C (2, 5, 4)
  expect_equal(op_forward("batch_dot", list(at, b), list(transpose_a = TRUE))[[1]], want,
               tolerance = 1e-12)
  expect_equal(op_forward("batch_dot", list(a, bt), list(transpose_b = TRUE))[[1]], want,
               tolerance = 1e-12)
  expect_equal(op_forward("batch_dot", list(at, bt), list(transpose_a = TRUE, transpose_b = TRUE))[[1]],
               want, tolerance = 1e-12)
})

test_that("batch_dot gradients match finite differences", {
  set.seed(35)
  op_check_grad("batch_dot", list(array(rnorm(24), c(4, 3, 2)), array(rnorm(40), c(5, 4, 2))),
                seed = 311)
  op_check_grad("batch_dot", list(array(rnorm(21), c(1, 7, 3)), array(rnorm(15), c(5, 1, 3))),
                seed = 312)
  op_check_grad("batch_dot", list(array(rnorm(24), c(3, 4, 2)), array(rnorm(40), c(4, 5, 2))),
                list(transpose_a = TRUE, transpose_b = TRUE), seed = 313)
  op_check_grad("batch_dot", list(array(rnorm(30), c(3, 5, 2)), array(rnorm(18), c(3, 3, 2))),
                list(transpose_b = TRUE), seed = 314)
})

test_that("batch_dot rejects wrong ranks and mismatched shapes", {
  expect_op_error("batch_dot", list(matrix(0, 3, 4), matrix(0, 4, 3)), "dims")
  expect_op_error("batch_dot", list(array(0, c(4, 3, 2)), matrix(0, 4, 3)), "dims")
  expect_op_error("batch_dot", list(array(0, c(4, 3, 2)), array(0, c(5, 3, 2))), "mismatch")
  expect_op_error("batch_dot", list(array(0, c(4, 3, 2)), array(0, c(5, 4, 3))), "batch")
})
