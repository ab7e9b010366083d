# LRN: local response normalisation across channels (C-order axis 1, R's
# second-to-last dim), against plain R; gradients; bad parameters.

lrn_ref <- function(x, nsize, alpha = 1e-4, beta = 0.75, knorm = 2) {
  d <- dim(x)
  rc <- length(d) - 1
  nc <- d[rc]
  h <- nsize %/% 2
  idx <- slice.index(x, rc)
  s <- array(0, d)
  for (k in seq_len(nc))
    for (kk in max(1, k - h):min(nc, k + h))
      s[idx == k] <- s[idx == k] + x[idx == kk]^2
  x * (knorm + alpha / nsize * s)^(-beta)
}

test_that("LRN forward matches R", {
  set.seed(61)
  x <- array(rnorm(3 * 2 * 5 * 2, sd = 3), c(3, 2, 5, 2)) # C (N=2, C=5, H=2, W=3)
  for (n in c(1, 3, 5, 7)) {
    got <- op_forward("LRN", list(x), list(nsize = n))[[1]]
    expect_equal(got, lrn_ref(x, n), tolerance = 1e-12, info = n)
  }
  p <- list(nsize = 3, alpha = 0.5, beta = 0.6, knorm = 1.5)
  expect_equal(op_forward("LRN", list(x), p)[[1]], lrn_ref(x, 3, 0.5, 0.6, 1.5),
               tolerance = 1e-12)
  expect_equal(op_forward("LRN", list(x), p, dtype = "float32")[[1]],
               lrn_ref(x, 3, 0.5, 0.6, 1.5), tolerance = 1e-5)
  # 2-D and 3-D data: channels on C axis 1
  x2 <- matrix(rnorm(12), 4, 3)
  expect_equal(op_forward("LRN", list(x2), p)[[1]], lrn_ref(x2, 3, 0.5, 0.6, 1.5),
               tolerance = 1e-12)
})

test_that("LRN gradients match finite differences on three shapes", {
  set.seed(62)
  cases <- list(list(c(2, 3, 4, 2), 3), list(c(3, 6, 2), 5), list(c(5, 4), 1),
                list(c(2, 2, 7, 1), 7))
  for (cs in cases) {
    x <- array(rnorm(prod(cs[[1]]), sd = 1.5), cs[[1]])
    op_check_grad("LRN", list(x), list(nsize = cs[[2]], alpha = 0.8, beta = 0.75, knorm = 1),
                  seed = 601)
  }
  x <- array(rnorm(48), c(2, 3, 4, 2))
  op_check_grad("LRN", list(x), list(nsize = 3), seed = 602) # defaults
})

test_that("LRN rejects bad parameters", {
  x <- array(rnorm(24), c(2, 3, 4))
  expect_op_error("LRN", list(x))
  expect_op_error("LRN", list(x), list(nsize = 4))
  expect_op_error("LRN", list(x), list(nsize = 0))
  expect_op_error("LRN", list(x), list(nsize = -3))
  expect_op_error("LRN", list(1:5), list(nsize = 3))
})
