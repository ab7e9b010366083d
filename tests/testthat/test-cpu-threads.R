# CPU threading: every kernel that splits its work over threads gives the
# same results with 1 and 2 threads (SYMNET_NUM_THREADS, set in child R
# processes), and the batched convolution paths (several images per GEMM,
# weight-gradient slots summed in a fixed order, the 1x1 direct path, groups,
# Deconvolution) agree with running one image at a time.

rscript <- function() file.path(R.home("bin"), "Rscript")

# Runs body in a child R process with the given thread count; body leaves
# its results in the list `res`, which is returned.
run_with_threads <- function(body, threads) {
  f <- tempfile(fileext = ".R")
  out <- tempfile(fileext = ".rds")
  writeLines(c("suppressPackageStartupMessages(library(symnet))",
               sprintf(".libPaths(c(%s))", paste(deparse(.libPaths()), collapse = "")),
               "res <- list()",
               body,
               sprintf('saveRDS(res, "%s")', out)), f)
  log <- system2(rscript(), f, stdout = TRUE, stderr = TRUE,
                 env = c(sprintf("SYMNET_NUM_THREADS=%d", threads), "OMP_WAIT_POLICY=passive"))
  status <- attr(log, "status")
  if (!is.null(status) && status != 0) stop(paste(log, collapse = "\n"))
  expect_false(any(grepl("OpenBLAS Warning", log)), info = paste(log, collapse = "\n"))
  readRDS(out)
}

thread_cases <- '
fwd <- function(op, inputs, params, dtype) {
  out <- symnet:::mx.nd.internal.invoke(op, lapply(inputs, mx.nd.array, dtype = dtype), params)
  lapply(if (is.mx.ndarray(out)) list(out) else out, as.array)
}
bwd <- function(op, inputs, ograds, params, dtype)
  lapply(symnet:::mx.nd.internal.backward(op, lapply(inputs, mx.nd.array, dtype = dtype),
                                          lapply(ograds, mx.nd.array, dtype = dtype), params),
         as.array)
both <- function(name, op, inputs, ograd, params) {
  for (dt in c("float32", "float64")) {
    res[[paste(name, "fwd", dt)]] <<- fwd(op, inputs, params, dt)
    res[[paste(name, "bwd", dt)]] <<- bwd(op, inputs, list(ograd), params, dt)
  }
}
set.seed(42)
r <- function(...) array(rnorm(prod(c(...))), c(...))
# LeNet conv2: 4 images per GEMM, 4 chunks (the last partial), 4 slots
both("conv 5x5", "Convolution", list(r(12, 12, 20, 13), r(5, 5, 20, 50) * 0.1, rnorm(50)),
     r(8, 8, 50, 13), list(kernel = c(5, 5), num_filter = 50))
# LeNet conv1 with padding: 9 images per GEMM, 3 chunks
both("conv pad", "Convolution", list(r(28, 28, 1, 21), r(5, 5, 1, 20) * 0.1, rnorm(20)),
     r(28, 26, 20, 21), list(kernel = c(5, 5), pad = c(2, 1), num_filter = 20))
# 1x1 on a 16x16 grid: the direct path, one image per chunk
both("conv 1x1", "Convolution", list(r(16, 16, 8, 6), r(1, 1, 8, 12), rnorm(12)),
     r(16, 16, 12, 6), list(kernel = c(1, 1), num_filter = 12))
# groups, stride, pad, no bias
both("conv group", "Convolution", list(r(10, 9, 6, 40), r(3, 3, 3, 4)),
     r(5, 5, 4, 40), list(kernel = c(3, 3), stride = c(2, 2), pad = c(1, 1), num_filter = 4,
                         num_group = 2, no_bias = TRUE))
both("deconv", "Deconvolution", list(r(5, 5, 8, 30), r(4, 4, 6, 8), rnorm(6)),
     r(12, 12, 6, 30), list(kernel = c(4, 4), stride = c(2, 2), num_filter = 6, no_bias = FALSE))
both("fc", "FullyConnected", list(r(800, 64), r(800, 300) * 0.05, rnorm(300)), r(300, 64),
     list(num_hidden = 300))
both("dot", "dot", list(r(150, 300), r(200, 150)), r(200, 300), list())
both("batch_dot", "batch_dot", list(r(32, 64, 8), r(48, 32, 8)), r(48, 64, 8), list())
for (a in c("tanh", "sigmoid", "relu"))
  both(a, "Activation", list(r(50000)), r(50000), list(act_type = a))
both("pool", "Pooling", list(r(24, 24, 20, 10)), r(12, 12, 20, 10),
     list(kernel = c(2, 2), stride = c(2, 2), pool_type = "max"))
# a LeNet training step through the executor (float32), twice
d <- mx.symbol.Variable("data")
net <- mx.symbol.Convolution(d, kernel = c(5, 5), num_filter = 20, name = "c1")
net <- mx.symbol.Pooling(mx.symbol.Activation(net, act_type = "tanh"), kernel = c(2, 2),
                         stride = c(2, 2), pool_type = "max")
net <- mx.symbol.Convolution(net, kernel = c(5, 5), num_filter = 50, name = "c2")
net <- mx.symbol.Pooling(mx.symbol.Activation(net, act_type = "tanh"), kernel = c(2, 2),
                         stride = c(2, 2), pool_type = "max")
net <- mx.symbol.FullyConnected(mx.symbol.Flatten(net), num_hidden = 500, name = "f1")
net <- mx.symbol.FullyConnected(mx.symbol.Activation(net, act_type = "tanh"), num_hidden = 10,
                                name = "f2")
net <- mx.symbol.SoftmaxOutput(net, name = "sm")
ex <- mx.simple.bind(net, mx.cpu(), grad.req = "write", data = c(28, 28, 1, 50))
args <- ex$arg.arrays
for (nm in names(args))
  args[[nm]] <- mx.nd.array(if (nm == "sm_label") sample(0:9, 50, TRUE) else
                            array(rnorm(prod(dim(args[[nm]]))) * 0.1, dim(args[[nm]])))
mx.exec.update.arg.arrays(ex, args, match.name = TRUE)
for (i in 1:2) {
  mx.exec.forward(ex, is.train = TRUE)
  mx.exec.backward(ex)
  res[[paste("lenet out", i)]] <- as.array(ex$outputs[[1]])
  res[[paste("lenet grads", i)]] <- lapply(ex$grad.arrays, function(g) if (is.null(g)) NULL else as.array(g))
}
'

test_that("kernels give the same results with 1 and 2 threads", {
  skip_on_cran()
  one <- run_with_threads(thread_cases, 1)
  two <- run_with_threads(thread_cases, 2)
  expect_identical(names(one), names(two))
  for (n in names(one)) {
    # Convolution, pooling and activations split independent work (and sum
    # weight gradients over fixed slots): identical.  GEMMs split by rows or
    # columns are identical with symnet's own kernels; a BLAS may round an
    # element differently when its matrix is cut, so those compare to float
    # rounding.
    if (grepl("^(fc|dot|batch_dot|lenet)", n)) {
      tol <- if (grepl("float64", n)) 1e-12 else 1e-5
      expect_equal(two[[n]], one[[n]], tolerance = tol, info = n)
    } else {
      expect_identical(two[[n]], one[[n]], info = n)
    }
  }
  # the same thread count gives the same result run to run
  expect_identical(one[["lenet grads 1"]], run_with_threads(thread_cases, 1)[["lenet grads 1"]])
})

# One image at a time, float64: outputs and data gradients stack, weight and
# bias gradients sum.
per_image_check <- function(op, x, w, b, og, params) {
  n <- tail(dim(x), 1)
  slice <- function(a, i) {
    d <- dim(a)
    array(a[(prod(d[-length(d)]) * (i - 1) + 1):(prod(d[-length(d)]) * i)], c(d[-length(d)], 1))
  }
  ins <- function(xx) c(list(xx, w), if (is.null(b)) list() else list(b))
  full_f <- op_forward(op, ins(x), params)[[1]]
  full_b <- op_backward(op, ins(x), list(og), params)
  dw <- 0
  db <- 0
  for (i in seq_len(n)) {
    f1 <- op_forward(op, ins(slice(x, i)), params)[[1]]
    expect_equal(c(slice(full_f, i)), c(f1), tolerance = 1e-12, info = paste(op, "forward", i))
    b1 <- op_backward(op, ins(slice(x, i)), list(slice(og, i)), params)
    expect_equal(c(slice(full_b[[1]], i)), c(b1[[1]]), tolerance = 1e-12,
                 info = paste(op, "data gradient", i))
    dw <- dw + b1[[2]]
    if (!is.null(b)) db <- db + b1[[3]]
  }
  expect_equal(full_b[[2]], dw, tolerance = 1e-12, info = paste(op, "weight gradient"))
  if (!is.null(b)) expect_equal(c(full_b[[3]]), c(db), tolerance = 1e-12, info = paste(op, "bias gradient"))
}

test_that("batched convolution equals one image at a time", {
  set.seed(5)
  r <- function(...) array(rnorm(prod(c(...))), c(...))
  per_image_check("Convolution", r(12, 12, 20, 9), r(5, 5, 20, 7), rnorm(7), r(8, 8, 7, 9),
                  list(kernel = c(5, 5), num_filter = 7))
  per_image_check("Convolution", r(16, 16, 4, 5), r(1, 1, 4, 3), rnorm(3), r(16, 16, 3, 5),
                  list(kernel = c(1, 1), num_filter = 3))
  per_image_check("Convolution", r(9, 7, 4, 19), r(3, 3, 2, 6), NULL, r(5, 4, 6, 19),
                  list(kernel = c(3, 3), stride = c(2, 2), pad = c(1, 1), num_filter = 6,
                       num_group = 2, no_bias = TRUE))
  per_image_check("Deconvolution", r(5, 5, 3, 11), r(4, 4, 2, 3), rnorm(2), r(12, 12, 2, 11),
                  list(kernel = c(4, 4), stride = c(2, 2), num_filter = 2, no_bias = FALSE))
})

test_that("vectorised float32 pooling agrees with the float64 loops, ties included", {
  set.seed(9)
  for (w in c(2, 6, 8, 24, 33, 40)) {
    # small integers: many ties inside the 2 x 2 windows
    x <- array(sample(0:3, w * 6 * 3 * 2, TRUE), c(w, 6, 3, 2))
    og <- array(sample(1:9, (w %/% 2) * 3 * 3 * 2, TRUE), c(w %/% 2, 3, 3, 2))
    for (type in c("max", "avg")) {
      p <- list(kernel = c(2, 2), stride = c(2, 2), pool_type = type)
      expect_identical(op_forward("Pooling", list(x), p, dtype = "float32")[[1]],
                       op_forward("Pooling", list(x), p)[[1]], info = paste(type, w))
      expect_identical(op_backward("Pooling", list(x), list(og), p, dtype = "float32")[[1]],
                       op_backward("Pooling", list(x), list(og), p)[[1]], info = paste(type, w))
    }
  }
})

test_that("float32 convolution (own GEMM kernels, packed weights) matches float64", {
  set.seed(13)
  r <- function(...) array(rnorm(prod(c(...))), c(...))
  cases <- list(
    list(x = r(12, 12, 20, 9), w = r(5, 5, 20, 50) * 0.1, b = rnorm(50), og = r(8, 8, 50, 9),
         p = list(kernel = c(5, 5), num_filter = 50)),
    list(x = r(28, 28, 1, 1), w = r(5, 5, 1, 20) * 0.1, b = rnorm(20), og = r(24, 24, 20, 1),
         p = list(kernel = c(5, 5), num_filter = 20)),
    list(x = r(9, 7, 4, 6), w = r(3, 3, 2, 6), b = rnorm(6), og = r(5, 4, 6, 6),
         p = list(kernel = c(3, 3), stride = c(2, 2), pad = c(1, 1), num_filter = 6,
                  num_group = 2)))
  for (cs in cases) {
    ins <- list(cs$x, cs$w, cs$b)
    f64 <- op_forward("Convolution", ins, cs$p)[[1]]
    f32 <- op_forward("Convolution", ins, cs$p, dtype = "float32")[[1]]
    expect_equal(f32, f64, tolerance = 1e-5)
    g64 <- op_backward("Convolution", ins, list(cs$og), cs$p)
    g32 <- op_backward("Convolution", ins, list(cs$og), cs$p, dtype = "float32")
    for (i in seq_along(g64)) expect_equal(g32[[i]], g64[[i]], tolerance = 1e-5)
  }
})
