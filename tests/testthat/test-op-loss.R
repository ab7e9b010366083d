# Loss output layers: SoftmaxOutput, the regression outputs and MakeLoss.
# Their backward passes ignore output gradients, so the gradients are
# compared with the closed forms (op_backward with no output gradient).

sm_cols <- function(x) apply(x, 2, function(v) { e <- exp(v - max(v)); e / sum(e) })
onehot <- function(label, k) sapply(label, function(l) as.numeric(seq_len(k) - 1 == l))

test_that("SoftmaxOutput forward is a softmax per example", {
  set.seed(31)
  x <- matrix(rnorm(12, sd = 2), 4, 3) # 3 examples, 4 classes
  y <- op_forward("SoftmaxOutput", list(x, c(0, 3, 1)))[[1]]
  expect_equal(y, sm_cols(x), tolerance = 1e-12)
  expect_equal(colSums(y), rep(1, 3))
  # the deprecated alias
  expect_equal(op_forward("Softmax", list(x, c(0, 3, 1)))[[1]], y)
  expect_equal(op_forward("SoftmaxOutput", list(x, c(0, 3, 1)), dtype = "float32")[[1]], y,
               tolerance = 1e-6)
  # 3-D data without multi_output: the whole example is flattened
  x3 <- array(rnorm(2 * 3 * 2), c(2, 3, 2))
  y3 <- op_forward("SoftmaxOutput", list(x3, matrix(0, 3, 2)))[[1]]
  want <- array(sm_cols(matrix(x3, 6, 2)), dim(x3))
  expect_equal(y3, want, tolerance = 1e-12)
})

test_that("SoftmaxOutput backward is (p - onehot(label)) with each normalization", {
  set.seed(32)
  x <- matrix(rnorm(20), 5, 4) # 4 examples, 5 classes
  lab <- c(2, 0, 4, 2)
  p <- sm_cols(x)
  oh <- onehot(lab, 5)
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL)
  expect_equal(g[[1]], p - oh, tolerance = 1e-12)
  expect_true(all(g[[2]] == 0)) # the label gets no gradient
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL, list(grad_scale = 2.5))
  expect_equal(g[[1]], 2.5 * (p - oh), tolerance = 1e-12)
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL, list(normalization = "batch"))
  expect_equal(g[[1]], (p - oh) / 4, tolerance = 1e-12)
  # valid: divided by the number of labels != ignore_label (use_ignore or not)
  lab2 <- c(2, -1, 4, -1)
  oh2 <- onehot(lab2, 5)
  g <- op_backward("SoftmaxOutput", list(x, lab2), NULL, list(normalization = "valid"))
  expect_equal(g[[1]], (p - oh2) / 2, tolerance = 1e-12)
  # use_ignore zeroes the ignored examples
  g <- op_backward("SoftmaxOutput", list(x, lab2), NULL,
                   list(use_ignore = TRUE, normalization = "valid", grad_scale = 3))
  want <- 3 * (p - oh2) / 2
  want[, c(2, 4)] <- 0
  expect_equal(g[[1]], want, tolerance = 1e-12)
  # another ignore_label
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL,
                   list(use_ignore = TRUE, ignore_label = 2))
  want <- p - oh
  want[, c(1, 4)] <- 0
  expect_equal(g[[1]], want, tolerance = 1e-12)
  # all ignored with valid: divided by 1
  g <- op_backward("SoftmaxOutput", list(x, rep(-1, 4)), NULL, list(normalization = "valid"))
  expect_equal(g[[1]], p, tolerance = 1e-12)
})

test_that("SoftmaxOutput smooth_alpha spreads alpha over the other classes", {
  set.seed(33)
  x <- matrix(rnorm(12), 4, 3)
  lab <- c(1, 3, 0)
  p <- sm_cols(x)
  a <- 0.2
  target <- onehot(lab, 4) * (1 - a) + (1 - onehot(lab, 4)) * a / 3
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL, list(smooth_alpha = a))
  expect_equal(g[[1]], p - target, tolerance = 1e-12)
  expect_op_error("SoftmaxOutput", list(x, lab), list(smooth_alpha = 1.5))
})

test_that("SoftmaxOutput with probability labels (label shaped like data)", {
  set.seed(34)
  x <- matrix(rnorm(12), 4, 3)
  q <- sm_cols(matrix(rnorm(12), 4, 3))
  g <- op_backward("SoftmaxOutput", list(x, q), NULL,
                   list(grad_scale = 2, normalization = "batch"))
  expect_equal(g[[1]], 2 * (sm_cols(x) - q), tolerance = 1e-12) # never normalised
})

test_that("SoftmaxOutput multi_output: softmax over axis 1, label (N, ...)", {
  set.seed(35)
  # C shape (N=2, K=3, S=4) is R dims c(4, 3, 2); label C (2, 4) is R c(4, 2)
  x <- array(rnorm(24), c(4, 3, 2))
  lab <- matrix(c(0, 1, 2, 1, 2, 2, 0, -1), 4, 2)
  p <- aperm(apply(x, c(1, 3), function(v) { e <- exp(v - max(v)); e / sum(e) }), c(2, 1, 3))
  y <- op_forward("SoftmaxOutput", list(x, lab), list(multi_output = TRUE))[[1]]
  expect_equal(y, p, tolerance = 1e-12)
  oh <- array(0, dim(x))
  for (s in 1:4) for (n in 1:2) if (lab[s, n] >= 0) oh[s, lab[s, n] + 1, n] <- 1
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL, list(multi_output = TRUE))
  expect_equal(g[[1]], (p - oh) / 4, tolerance = 1e-12) # null: divided by the spatial size
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL,
                   list(multi_output = TRUE, normalization = "batch"))
  expect_equal(g[[1]], (p - oh) / 4 / 2, tolerance = 1e-12)
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL,
                   list(multi_output = TRUE, normalization = "valid", use_ignore = TRUE))
  want <- (p - oh) / 7
  want[4, , 2] <- 0
  expect_equal(g[[1]], want, tolerance = 1e-12)
  # label (N, 1, S) also accepted
  g2 <- op_backward("SoftmaxOutput", list(x, array(lab, c(4, 1, 2))), NULL,
                    list(multi_output = TRUE))
  expect_equal(g2[[1]], (p - oh) / 4, tolerance = 1e-12)
  expect_op_error("SoftmaxOutput", list(x, c(1, 2)), list(multi_output = TRUE))
})

test_that("SoftmaxOutput preserve_shape: softmax over the last axis", {
  set.seed(36)
  x <- array(rnorm(3 * 2 * 2), c(3, 2, 2)) # C (N=2, T=2, K=3)
  lab <- matrix(c(0, 2, 1, 1), 2, 2)
  p <- apply(x, c(2, 3), function(v) { e <- exp(v - max(v)); e / sum(e) })
  expect_equal(op_forward("SoftmaxOutput", list(x, lab), list(preserve_shape = TRUE))[[1]], p,
               tolerance = 1e-12)
  oh <- array(0, dim(x))
  for (t in 1:2) for (n in 1:2) oh[lab[t, n] + 1, t, n] <- 1
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL, list(preserve_shape = TRUE))
  expect_equal(g[[1]], p - oh, tolerance = 1e-12)
  # "batch" divides by the number of labels (N*T rows here), as MXNet does
  g <- op_backward("SoftmaxOutput", list(x, lab), NULL,
                   list(preserve_shape = TRUE, normalization = "batch"))
  expect_equal(g[[1]], (p - oh) / 4, tolerance = 1e-12)
})

test_that("SoftmaxOutput rejects a label of the wrong shape", {
  x <- matrix(rnorm(12), 4, 3)
  expect_op_error("SoftmaxOutput", list(x, c(0, 1)))
  expect_op_error("SoftmaxOutput", list(x, matrix(0, 2, 3)))
  expect_op_error("SoftmaxOutput", list(x, c(0, 1, 2)), list(normalization = "mean"))
})

test_that("LinearRegressionOutput: identity forward, (out - label)/num_output backward", {
  x <- matrix(c(4.7, 10.5, 16.3), 1, 3) # C (3, 1)
  y <- c(5, 11, 16)
  expect_equal(c(op_forward("LinearRegressionOutput", list(x, y))[[1]]), c(x))
  g <- op_backward("LinearRegressionOutput", list(x, y), NULL)
  expect_equal(c(g[[1]]), c(-0.3, -0.5, 0.3), tolerance = 1e-12)
  expect_true(all(g[[2]] == 0))
  g <- op_backward("LinearRegressionOutput", list(x, y), NULL, list(grad_scale = 2))
  expect_equal(c(g[[1]]), c(-0.6, -1, 0.6), tolerance = 1e-12)
  # two outputs per example: divided by 2, not by the batch size
  set.seed(37)
  x2 <- matrix(rnorm(8), 2, 4)
  y2 <- matrix(rnorm(8), 2, 4)
  g <- op_backward("LinearRegressionOutput", list(x2, y2), NULL)
  expect_equal(g[[1]], (x2 - y2) / 2, tolerance = 1e-12)
})

test_that("the MXNet R optimizer test: one SGD step gives w = (1.4, 2.6)", {
  # FC(1, no bias) on x = array(1:6, c(2, 3)), y = c(5, 11, 16), w = (1.1, 1.8), lr 1
  x <- array(1:6, c(2, 3))
  w <- c(1.1, 1.8)
  pred <- matrix(c(w %*% x), 1, 3)
  gpred <- op_backward("LinearRegressionOutput", list(pred, c(5, 11, 16)), NULL)[[1]]
  gw <- c(x %*% c(gpred)) # FullyConnected's weight gradient
  neww <- op_forward("sgd_update", list(w, gw), list(lr = 1))[[1]]
  expect_equal(c(neww), c(1.4, 2.6), tolerance = 1e-12)
})

test_that("LogisticRegressionOutput and MAERegressionOutput", {
  set.seed(38)
  x <- matrix(rnorm(6), 2, 3)
  y <- matrix(c(0, 1, 1, 0, 1, 1), 2, 3)
  sg <- 1 / (1 + exp(-x))
  expect_equal(op_forward("LogisticRegressionOutput", list(x, y))[[1]], sg, tolerance = 1e-12)
  g <- op_backward("LogisticRegressionOutput", list(x, y), NULL, list(grad_scale = 3))
  expect_equal(g[[1]], 3 * (sg - y) / 2, tolerance = 1e-12)
  expect_equal(op_forward("MAERegressionOutput", list(x, y))[[1]], x)
  y[1, 1] <- x[1, 1] # sign(0) is -1, as in MXNet
  g <- op_backward("MAERegressionOutput", list(x, y), NULL)
  want <- ifelse(x - y > 0, 1, -1) / 2
  expect_equal(g[[1]], want, tolerance = 1e-12)
  # label (N,) for data (N, 1)
  g <- op_backward("LogisticRegressionOutput", list(matrix(c(0, 1, -1), 1, 3), c(1, 0, 1)), NULL)
  expect_equal(c(g[[1]]), 1 / (1 + exp(-c(0, 1, -1))) - c(1, 0, 1), tolerance = 1e-12)
})

test_that("regression outputs reject labels of the wrong shape", {
  x <- matrix(1:6, 2, 3) # C (3, 2)
  for (op in c("LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput")) {
    expect_op_error(op, list(x, c(1, 2, 3)))
    expect_op_error(op, list(x, matrix(1:6, 3, 2)))
  }
})

test_that("MakeLoss: identity forward, constant gradient with normalization", {
  set.seed(39)
  x <- matrix(rnorm(12), 3, 4) # C (4, 3): batch of 4
  expect_equal(op_forward("MakeLoss", list(x))[[1]], x)
  expect_equal(op_forward("make_loss", list(x))[[1]], x)
  g <- op_backward("MakeLoss", list(x), NULL)
  expect_equal(g[[1]], array(1, dim(x)))
  g <- op_backward("MakeLoss", list(x), NULL, list(grad_scale = 2, normalization = "batch"))
  expect_equal(g[[1]], array(2 / 4, dim(x)))
  g <- op_backward("MakeLoss", list(x), NULL,
                   list(normalization = "valid", valid_thresh = 0.3))
  expect_equal(g[[1]], array(1 / sum(x > 0.3), dim(x)))
  g <- op_backward("MakeLoss", list(-abs(x)), NULL, list(normalization = "valid"))
  expect_equal(g[[1]], array(1, dim(x))) # no valid element: divided by 1
  expect_op_error("MakeLoss", list(x), list(normalization = "sum"))
})
