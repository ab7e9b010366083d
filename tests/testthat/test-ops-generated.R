test_that("the generated wrappers match the op registry", {
  # Fails when an op was added or changed in C without running
  # tools/gen-ops.sh (which rewrites R/ops-generated.R and the docs).
  expect_identical(symnet:::.ops.signature, symnet:::mx.internal.ops.signature())
})

test_that("every registered op has its wrappers", {
  info <- symnet:::mx.internal.op.info()
  ns <- asNamespace("symnet")
  for (e in info) {
    nd <- symnet:::mx.internal.nd.name(e$name)
    if (!nd %in% symnet:::mx.internal.handwritten) expect_true(exists(nd, envir = ns, inherits = FALSE), info = nd)
    if (!startsWith(e$name, "_")) {
      sym <- paste0("mx.symbol.", e$name)
      expect_true(exists(sym, envir = ns, inherits = FALSE), info = sym)
    }
  }
})

test_that("the wrappers the MXNet R API names exist", {
  for (f in c("mx.nd.sqrt", "mx.nd.rsqrt", "mx.nd.exp", "mx.nd.log", "mx.nd.log1p", "mx.nd.abs",
              "mx.nd.sign", "mx.nd.square", "mx.nd.tanh", "mx.nd.sigmoid", "mx.nd.relu", "mx.nd.floor",
              "mx.nd.ceil", "mx.nd.round", "mx.nd.clip", "mx.nd.dot", "mx.nd.reshape", "mx.nd.transpose",
              "mx.nd.concat", "mx.nd.sum", "mx.nd.mean", "mx.nd.max", "mx.nd.min", "mx.nd.prod",
              "mx.nd.argmax", "mx.nd.slice.axis", "mx.nd.crop", "mx.nd.one.hot", "mx.nd.broadcast.add",
              "mx.nd.broadcast.equal", "mx.nd.elemwise.add", "mx.nd.pick", "mx.nd.random.uniform",
              "mx.nd.random.normal", "mx.nd.choose.element.0index", "mx.nd.split",
              "mx.symbol.FullyConnected", "mx.symbol.Convolution", "mx.symbol.Pooling",
              "mx.symbol.Activation", "mx.symbol.SoftmaxOutput", "mx.symbol.BatchNorm",
              "mx.symbol.Dropout", "mx.symbol.Flatten", "mx.symbol.Reshape", "mx.symbol.LinearRegressionOutput",
              "mx.symbol.MakeLoss", "mx.symbol.sum_axis", "mx.symbol.sgd_mom_update"))
    expect_true(is.function(get0(f, envir = asNamespace("symnet"))), info = f)
})

test_that("generated wrappers convert R parameters", {
  x <- mx.nd.array(matrix(c(-2, 0.5, 3, 9), 2, 2))
  expect_equal(as.array(mx.nd.clip(x, a_min = -1, a_max = 2)), matrix(c(-1, 0.5, 2, 2), 2, 2))
  expect_equal(as.array(mx.nd.clip(x, a.min = -1, a.max = 2)), matrix(c(-1, 0.5, 2, 2), 2, 2))
  expect_error(mx.nd.clip(x, a_min = -1, a.min = -1, a_max = 1), "given twice")
  expect_error(mx.nd.clip(x, a_max = 1), "a_min")
  expect_error(mx.nd.sqrt(x, foo = 1), "no parameter 'foo'")
})
