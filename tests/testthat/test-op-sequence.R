# SequenceMask, SequenceLast, SequenceReverse against plain R.  C-order data
# (T, N, F) with axis 0 is the R array c(F, N, T); (N, T, F) with axis 1 is
# c(F, T, N).

seq_data <- function() {
  set.seed(71)
  array(rnorm(2 * 3 * 4), c(2, 3, 4)) # C (T=4, N=3, F=2)
}
lens <- c(1, 4, 2)

test_that("SequenceMask masks the steps after each length (axis 0 and 1)", {
  x <- seq_data()
  want <- x
  for (n in 1:3) for (t in 1:4) if (t > lens[n]) want[, n, t] <- -7
  got <- op_forward("SequenceMask", list(x, lens), list(use_sequence_length = TRUE, value = -7))[[1]]
  expect_equal(got, want)
  # default value 0, float32
  want0 <- x
  for (n in 1:3) for (t in 1:4) if (t > lens[n]) want0[, n, t] <- 0
  got <- op_forward("SequenceMask", list(x, lens), list(use_sequence_length = TRUE),
                    dtype = "float32")[[1]]
  expect_equal(got, want0, tolerance = 1e-6)
  # integer lengths
  got <- op_forward("SequenceMask",
                    list(mx.nd.array(x, dtype = "float64"), mx.nd.array(lens, dtype = "int32")),
                    list(use_sequence_length = TRUE))[[1]]
  expect_equal(got, want0)
  # axis 1: C (N=4, T=3, F=2), lengths per N
  l1 <- c(3, 0, 2, 1)
  want1 <- x
  for (n in 1:4) for (t in 1:3) if (t > l1[n]) want1[, t, n] <- 1.5
  got <- op_forward("SequenceMask", list(x, l1),
                    list(use_sequence_length = TRUE, axis = 1, value = 1.5))[[1]]
  expect_equal(got, want1)
  # without lengths: identity
  expect_equal(op_forward("SequenceMask", list(x))[[1]], x)
  # lengths beyond T mask nothing
  expect_equal(op_forward("SequenceMask", list(x, c(9, 9, 9)), list(use_sequence_length = TRUE))[[1]], x)
})

test_that("SequenceMask backward zeroes the masked positions", {
  x <- seq_data()
  g <- array(runif(length(x)), dim(x))
  gr <- op_backward("SequenceMask", list(x, lens), list(g), list(use_sequence_length = TRUE))
  want <- g
  for (n in 1:3) for (t in 1:4) if (t > lens[n]) want[, n, t] <- 0
  expect_equal(gr[[1]], want)
  expect_true(all(gr[[2]] == 0))
  op_check_grad("SequenceMask", list(x, lens), list(use_sequence_length = TRUE, value = 3),
                wrt = 1, seed = 701)
  op_check_grad("SequenceMask", list(x, c(2, 1, 3, 0)),
                list(use_sequence_length = TRUE, axis = 1), wrt = 1, seed = 702)
  op_check_grad("SequenceMask", list(matrix(rnorm(6), 3, 2)), seed = 703)
})

test_that("SequenceLast picks the last valid step", {
  x <- seq_data()
  got <- op_forward("SequenceLast", list(x, lens), list(use_sequence_length = TRUE))[[1]]
  want <- sapply(1:3, function(n) x[, n, lens[n]])
  expect_equal(got, want)
  expect_equal(op_forward("SequenceLast", list(x))[[1]], x[, , 4])
  # axis 1
  l1 <- c(3, 1, 2, 2)
  got <- op_forward("SequenceLast", list(x, l1), list(use_sequence_length = TRUE, axis = 1))[[1]]
  expect_equal(got, sapply(1:4, function(n) x[, l1[n], n]))
  expect_equal(op_forward("SequenceLast", list(x), list(axis = 1))[[1]], x[, 3, ])
  # 2-D data (T, N): one value per sequence
  m <- matrix(rnorm(6), 2, 3) # C (T=3, N=2)
  expect_equal(c(op_forward("SequenceLast", list(m, c(2, 3)),
                            list(use_sequence_length = TRUE))[[1]]), c(m[1, 2], m[2, 3]))
})

test_that("SequenceLast backward scatters into the picked step", {
  x <- seq_data()
  g <- matrix(runif(6), 2, 3)
  gr <- op_backward("SequenceLast", list(x, lens), list(g), list(use_sequence_length = TRUE))
  want <- array(0, dim(x))
  for (n in 1:3) want[, n, lens[n]] <- g[, n]
  expect_equal(gr[[1]], want)
  op_check_grad("SequenceLast", list(x, lens), list(use_sequence_length = TRUE), wrt = 1,
                seed = 704)
  op_check_grad("SequenceLast", list(x, c(3, 1, 2, 2)),
                list(use_sequence_length = TRUE, axis = 1), wrt = 1, seed = 705)
  op_check_grad("SequenceLast", list(x), seed = 706)
})

test_that("SequenceReverse reverses the valid steps and keeps the padding", {
  x <- seq_data()
  want <- x
  for (n in 1:3) {
    L <- lens[n]
    want[, n, 1:L] <- x[, n, L:1]
  }
  got <- op_forward("SequenceReverse", list(x, lens), list(use_sequence_length = TRUE))[[1]]
  expect_equal(got, want)
  expect_equal(op_forward("SequenceReverse", list(x))[[1]], x[, , 4:1])
  g <- array(runif(length(x)), dim(x))
  gr <- op_backward("SequenceReverse", list(x, lens), list(g), list(use_sequence_length = TRUE))
  wantg <- g
  for (n in 1:3) wantg[, n, 1:lens[n]] <- g[, n, lens[n]:1]
  expect_equal(gr[[1]], wantg)
  op_check_grad("SequenceReverse", list(x, c(2, 0, 4)), list(use_sequence_length = TRUE),
                wrt = 1, seed = 707)
  op_check_grad("SequenceReverse", list(x), seed = 708)
})

test_that("sequence ops reject bad parameters and shapes", {
  x <- seq_data()
  expect_op_error("SequenceMask", list(x, lens), list(use_sequence_length = TRUE, axis = 2))
  expect_op_error("SequenceMask", list(x, c(1, 2)), list(use_sequence_length = TRUE))
  expect_op_error("SequenceMask", list(x), list(use_sequence_length = TRUE))
  expect_op_error("SequenceMask", list(1:4))
  expect_op_error("SequenceLast", list(x, c(0, 1, 2)), list(use_sequence_length = TRUE))
  expect_op_error("SequenceLast", list(x, c(5, 1, 2)), list(use_sequence_length = TRUE))
  expect_op_error("SequenceLast", list(x), list(axis = -1))
  expect_op_error("SequenceReverse", list(x), list(axis = 1))
  expect_op_error("SequenceReverse", list(x, c(5, 1, 2)), list(use_sequence_length = TRUE))
})
