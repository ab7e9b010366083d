test_that("mx.nd.array keeps R dims and values for vectors, matrices and arrays", {
  v <- mx.nd.array(c(1.5, -2, 3))
  expect_equal(dim(v), 3L)
  expect_equal(as.vector(as.array(v)), c(1.5, -2, 3))
  m <- matrix(1:6, 2, 3)
  a <- mx.nd.array(m)
  expect_equal(dim(a), c(2L, 3L))
  expect_equal(as.matrix(a), matrix(as.numeric(1:6), 2, 3))
  arr <- array(seq_len(24) / 7, c(2, 3, 4))
  expect_equal(as.array(mx.nd.array(arr)), arr, tolerance = 1e-6)
  expect_equal(as.vector(as.array(mx.nd.array(c(TRUE, FALSE, TRUE)))), c(1, 0, 1))
  expect_equal(length(a), 6)
  expect_true(is.mx.ndarray(a))
  expect_false(is.mx.ndarray(m))
  expect_equal(mx.nd.dtype(a), "float32")
})

test_that("float32 rounding and float64 exactness", {
  x <- 0.1
  expect_equal(as.vector(as.array(mx.nd.array(x))), as.numeric(sprintf("%.9g", 0.1)), tolerance = 1e-7)
  expect_identical(as.vector(as.array(mx.nd.array(x, dtype = "float64"))), 0.1)
  expect_equal(mx.nd.dtype(mx.nd.array(1, dtype = "float64")), "float64")
})

test_that("zeros, ones, copyto and ctx", {
  z <- mx.nd.zeros(c(2, 3))
  expect_equal(as.array(z), matrix(0, 2, 3))
  o <- mx.nd.ones(c(4, 1, 2))
  expect_equal(as.array(o), array(1, c(4, 1, 2)))
  c2 <- mx.nd.copyto(o, mx.cpu())
  expect_equal(as.array(c2), as.array(o))
  expect_equal(ctx(o)$device, "cpu")
  expect_true(is.mx.context(ctx(o)))
  expect_equal(mx.ctx.default()$device, "cpu")
  expect_error(as.matrix(o), "2-D")
})

test_that("arithmetic with arrays and scalars on either side", {
  a <- matrix(c(1, 2, 3, 4, 5, 6), 2, 3)
  b <- matrix(c(6, 5, 4, 3, 2, 1), 2, 3)
  na <- mx.nd.array(a); nb <- mx.nd.array(b)
  expect_equal(as.array(na + nb), a + b)
  expect_equal(as.array(na - nb), a - b)
  expect_equal(as.array(na * nb), a * b)
  expect_equal(as.array(na / nb), a / b, tolerance = 1e-6)
  expect_equal(as.array(na ^ 2), a^2)
  expect_equal(as.array(2 ^ na), 2^a, tolerance = 1e-6)
  expect_equal(as.array(na %% 4), a %% 4)
  expect_equal(as.array(10 %% na), 10 %% a)
  expect_equal(as.array(na + 1), a + 1)
  expect_equal(as.array(1 + na), 1 + a)
  expect_equal(as.array(na - 1), a - 1)
  expect_equal(as.array(1 - na), 1 - a)
  expect_equal(as.array(na * 3), a * 3)
  expect_equal(as.array(3 * na), 3 * a)
  expect_equal(as.array(na / 4), a / 4)
  expect_equal(as.array(4 / na), 4 / a, tolerance = 1e-6)
  expect_equal(as.array(-na), -a)
  expect_equal(as.array(na + b), a + b)
})

test_that("comparisons give 0/1", {
  a <- matrix(c(1, 2, 3, 4), 2, 2)
  b <- matrix(c(4, 2, 1, 4), 2, 2)
  na <- mx.nd.array(a); nb <- mx.nd.array(b)
  expect_equal(as.array(na == nb), (a == b) + 0)
  expect_equal(as.array(na != nb), (a != b) + 0)
  expect_equal(as.array(na > nb), (a > b) + 0)
  expect_equal(as.array(na >= nb), (a >= b) + 0)
  expect_equal(as.array(na < nb), (a < b) + 0)
  expect_equal(as.array(na <= nb), (a <= b) + 0)
  expect_equal(as.array(na > 2), (a > 2) + 0)
  expect_equal(as.array(2 > na), (2 > a) + 0)
  expect_equal(as.array(na <= 3), (a <= 3) + 0)
  expect_equal(as.array(3 <= na), (3 <= a) + 0)
})

test_that("broadcasting between arrays of different shapes", {
  a <- matrix(1:6, 2, 3)
  r <- matrix(c(10, 20), 2, 1)
  expect_equal(as.array(mx.nd.array(a) + mx.nd.array(r)), a + as.vector(r))
})

test_that("arrays have value semantics", {
  a <- mx.nd.array(1:3)
  b <- a
  a <- a + 1
  expect_equal(as.vector(as.array(b)), c(1, 2, 3))
  expect_equal(as.vector(as.array(a)), c(2, 3, 4))
})

test_that("print shows values", {
  out <- capture.output(print(mx.nd.array(matrix(1:4, 2, 2))))
  expect_true(any(grepl("4", out)))
  expect_match(format(mx.nd.array(1:4)), "MXNDArray 4 float32 cpu\\(0\\)")
})

test_that("bad input gives clear errors", {
  expect_error(mx.nd.array("a"), "numeric")
  expect_error(mx.nd.array(list(1, 2)), "numeric")
  expect_error(mx.nd.array(numeric(0)), "empty")
  expect_error(mx.nd.array(c(1L, NA)), "NA")
  expect_error(mx.nd.zeros(c(2, -1)), "positive")
  expect_error(mx.nd.zeros("a"), "shape")
  expect_error(mx.nd.array(1:3) + mx.nd.array(1:4), "shape|broadcast")
  expect_error(mx.nd.array(1, dtype = "complex"), "dtype")
  expect_error(mx.nd.array(1:3) %*% 2)
  expect_error(mx.nd.copyto(1:3, mx.cpu()), "MXNDArray")
  expect_error(mx.cpu(-1), "dev.id")
  expect_error(mx.ctx.default("cpu"), "MXContext")
})

test_that("mx.gpu() without a usable GPU is an R error, and the CPU keeps working", {
  skip_if(symnet:::mx.internal.gpu.available(), "a GPU is present")
  expect_error(mx.nd.zeros(c(2, 2), ctx = mx.gpu()), "GPU|CUDA|driver")
  expect_error(mx.nd.array(1:3, ctx = mx.gpu(0)), "GPU|CUDA|driver")
  expect_error(mx.ctx.default(mx.gpu()), "GPU|CUDA|driver")
  expect_equal(mx.ctx.default()$device, "cpu")
  expect_equal(as.vector(as.array(mx.nd.ones(2))), c(1, 1))
})

test_that("handles restored from saveRDS give an R error, not a crash", {
  f <- tempfile(fileext = ".rds")
  saveRDS(mx.nd.array(1:3), f)
  x <- readRDS(f)
  expect_error(as.array(x), "no longer valid")
  expect_error(x + 1, "no longer valid")
  expect_output(print(x), "invalid handle")
  saveRDS(mx.symbol.Variable("data"), f)
  s <- readRDS(f)
  expect_error(arguments(s), "no longer valid")
})

test_that("memory is released when arrays are collected", {
  gc()
  before <- symnet:::mx.internal.live.bytes()
  local({
    x <- mx.nd.zeros(c(1000, 1000))
    expect_gte(symnet:::mx.internal.live.bytes() - before, 4e6)
  })
  gc()
  expect_lt(symnet:::mx.internal.live.bytes() - before, 1e5)
})

test_that("garbage NDArrays do not pile up engine memory before R collects", {
  gc()
  before <- mx.internal.live.bytes()
  # 300 arrays of 8 MiB, each dropped at once: 2.4 GiB if R never collected
  for (i in 1:300) x <- mx.nd.zeros(c(1024, 1024, 2))
  expect_lt(mx.internal.live.bytes() - before, 1.2 * 2^30)
  rm(x)
})
