# Caffe import: the prototxt parser, the caffemodel reader, the layer
# mapping (checked against plain R, and, with Debian's protobuf-compiler and
# python3-protobuf, against numpy on models written by real protobuf code
# from a caffe.proto subset), and malformed files.

pt.parse <- symnet:::mx.internal.prototxt.parse
pb.encode <- symnet:::mx.internal.pb.encode

caffe.python <- function() {
  py <- "/usr/bin/python3"
  if (!file.exists(py) || !nzchar(Sys.which("protoc"))) return(NULL)
  rc <- suppressWarnings(system2(py, c("-c", shQuote("import numpy, google.protobuf")), stdout = FALSE, stderr = FALSE))
  if (!identical(as.integer(rc), 0L)) NULL else py
}

test_that("the prototxt parser reads protobuf text format", {
  txt <- c('# a comment', 'name: "net" # trailing comment', 'input: "data"', 'input_dim: 1 input_dim: 3',
           'layer {', '  name: \'conv 1\'  type: "Convolution"', '  bottom: "data" top: "c1"',
           '  convolution_param { num_output: 8 kernel_size: [3, 3] bias_term: false }',
           '  param < lr_mult: 1 >', '}', 'layer { name: "r" type: "ReLU" relu_param: { negative_slope: -1.5e-2 } }',
           'note: "a\\"b" "c"')
  p <- pt.parse(txt)
  expect_equal(names(p), c("name", "input", "input_dim", "input_dim", "layer", "layer", "note"))
  expect_equal(p$name, "net")
  expect_equal(symnet:::mx.internal.pt.num(p, "input_dim"), c(1, 3))
  l <- symnet:::mx.internal.pt.all(p, "layer")
  expect_equal(l[[1]]$name, "conv 1")
  cp <- l[[1]]$convolution_param
  expect_equal(symnet:::mx.internal.pt.num(cp, "kernel_size"), c(3, 3))
  expect_false(symnet:::mx.internal.pt.bool(cp, "bias_term", TRUE))
  expect_equal(l[[1]]$param$lr_mult, "1")
  expect_equal(symnet:::mx.internal.pt.num(l[[2]]$relu_param, "negative_slope"), -0.015)
  expect_equal(p$note, "a\"bc")
  expect_error(pt.parse("layer { name: \"x\""), "line 1: missing '\\}'")
  expect_error(pt.parse(c("a: 1", "b {", "c 3", "}")), "line 3: expected ':' or '\\{' after 'c'")
  expect_error(pt.parse("a: }"), "expected a value")
  expect_error(pt.parse("a: \"unterminated"), "unterminated string")
  expect_error(pt.parse(paste(rep("a {", 150), collapse = " ")), "nested too deeply")
})

# A small net written from R: prototxt text plus a caffemodel encoded with the
# C protobuf writer, checked against a plain R computation.
test_that("a Caffe net imports and matches plain R", {
  set.seed(7)
  x <- array(rnorm(5 * 5 * 2 * 2), c(5, 5, 2, 2))      # R dims (W, H, C, N)
  W <- array(rnorm(3 * 2 * 3 * 3) * 0.5, c(3, 3, 2, 3)) # R dims of a C (3, 2, 3, 3) weight
  b <- rnorm(3) * 0.1
  Wfc <- matrix(rnorm(4 * 12) * 0.3, 4, 12)             # (out, in)
  bfc <- rnorm(4) * 0.1
  proto <- c('name: "tiny"', 'input: "data"', 'input_shape { dim: 2 dim: 2 dim: 5 dim: 5 }',
             'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"',
             '  convolution_param { num_output: 3 kernel_size: 3 pad: 1 stride: 2 } }',
             'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }',
             'layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"',
             '  pooling_param { pool: MAX kernel_size: 2 stride: 1 } }',
             'layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 4 } }',
             'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }',
             'layer { name: "acc" type: "Accuracy" bottom: "prob" bottom: "label" top: "acc" include { phase: TEST } }')
  pf <- tempfile(fileext = ".prototxt")
  writeLines(proto[-length(proto)], pf)
  blob <- function(a, d) list(shape = list(dim = d), data = as.vector(a))
  net <- list(name = "tiny", layer = list(
    list(name = "conv", type = "Convolution", blobs = list(blob(W, c(3, 2, 3, 3)), blob(b, 3))),
    list(name = "fc", type = "InnerProduct", blobs = list(
      list(num = 1, channels = 1, height = 4, width = 12, data = as.vector(t(Wfc))), blob(bfc, 4)))))
  mf <- tempfile(fileext = ".caffemodel")
  writeBin(pb.encode(net, symnet:::mx.internal.caffe.schema(), "NetParameter"), mf)
  model <- mx.caffe.import(pf, mf)
  expect_s3_class(model, "MXFeedForwardModel")
  expect_setequal(names(model$arg.params), c("conv_weight", "conv_bias", "fc_weight", "fc_bias"))
  expect_equal(dim(model$arg.params$conv_weight), c(3, 3, 2, 3))
  # reference: conv 3x3 stride 2 pad 1 -> 3x3, relu, max 2x2 stride 1 (ceil) -> 2x2, fc, softmax
  X <- function(n, c, h, w) if (h < 1 || h > 5 || w < 1 || w > 5) 0 else x[w, h, c, n]
  conv <- array(0, c(3, 3, 3, 2))
  for (n in 1:2) for (o in 1:3) for (i in 1:3) for (j in 1:3) {
    s <- b[[o]]
    for (c in 1:2) for (kh in 1:3) for (kw in 1:3) s <- s + X(n, c, 2 * (i - 1) + kh - 1, 2 * (j - 1) + kw - 1) * W[kw, kh, c, o]
    conv[j, i, o, n] <- max(s, 0)
  }
  pool <- array(0, c(2, 2, 3, 2))
  for (n in 1:2) for (o in 1:3) for (i in 1:2) for (j in 1:2) pool[j, i, o, n] <- max(conv[j:(j + 1), i:(i + 1), o, n])
  ref <- sapply(1:2, function(n) {
    f <- Wfc %*% as.vector(aperm(pool[, , , n], c(1, 2, 3))) + bfc   # C order (c, h, w) flattening = R (w, h, c)
    exp(f) / sum(exp(f))
  })
  pred <- predict(model, x)
  expect_equal(dim(pred), c(4, 2))
  expect_lt(max(abs(pred - ref)), 1e-6)
  # without weights: parameters are initialised
  m0 <- mx.caffe.import(pf)
  expect_equal(dim(m0$arg.params$fc_weight), c(12, 4))
})

test_that("Caffe errors name the layer; malformed caffemodels give R errors", {
  pf <- tempfile(fileext = ".prototxt")
  writeLines(c('input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4',
               'layer { name: "weird" type: "Crop" bottom: "data" top: "y" }'), pf)
  expect_error(mx.caffe.import(pf), "layer 'weird' \\(Crop\\): layer type Crop is not supported")
  writeLines(c('input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4',
               'layer { name: "p" type: "Pooling" bottom: "data" top: "y" pooling_param { pool: STOCHASTIC kernel_size: 2 } }'), pf)
  expect_error(mx.caffe.import(pf), "layer 'p' \\(Pooling\\): pooling method STOCHASTIC is not supported")
  writeLines(c('input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4',
               'layer { name: "r" type: "ReLU" bottom: "nothing" top: "y" }'), pf)
  expect_error(mx.caffe.import(pf), "layer 'r' \\(ReLU\\): bottom blob 'nothing' is not produced")
  writeLines(c('input: "data" input_dim: 1 input_dim: 2 input_dim: 4 input_dim: 4',
               'layer { name: "c" type: "Convolution" bottom: "data" top: "y" convolution_param { num_output: 2 kernel_size: 3 } }'), pf)
  net <- list(layer = list(list(name = "c", type = "Convolution",
                                blobs = list(list(shape = list(dim = c(2, 2, 3, 3)), data = rnorm(36)),
                                             list(shape = list(dim = 3), data = rnorm(3))))))
  mf <- tempfile(fileext = ".caffemodel")
  writeBin(pb.encode(net, symnet:::mx.internal.caffe.schema(), "NetParameter"), mf)
  expect_error(mx.caffe.import(pf, mf), "c_bias")
  net$layer[[1]]$blobs[[2]]$data <- rnorm(2)
  net$layer[[1]]$blobs[[2]]$shape$dim <- 2
  raw <- pb.encode(net, symnet:::mx.internal.caffe.schema(), "NetParameter")
  writeBin(raw, mf)
  expect_s3_class(mx.caffe.import(pf, mf), "MXFeedForwardModel")
  # truncations inside the weights and garbage
  n.err <- 0
  for (cut in unique(round(seq(3, length(raw) - 3, length.out = 30)))) {
    writeBin(raw[seq_len(cut)], mf)
    r <- tryCatch(mx.caffe.import(pf, mf), error = function(e) e)
    if (inherits(r, "error")) n.err <- n.err + 1
  }
  expect_gt(n.err, 25)
  set.seed(8)
  writeBin(as.raw(sample(0:255, 500, replace = TRUE)), mf)
  expect_error(mx.caffe.import(pf, mf), "mx.caffe.import")
  writeBin(c(raw[1:10], as.raw(0xff)), mf)
  expect_error(mx.caffe.import(pf, mf), "not a valid caffemodel")
  writeBin(raw(0), mf)
  expect_error(mx.caffe.import(pf, mf), "empty")
})

test_that("Caffe models written with protoc + python3-protobuf match numpy", {
  py <- caffe.python()
  if (is.null(py)) skip("needs /usr/bin/python3 with numpy and google.protobuf, and protoc")
  dir <- tempfile("caffe")
  dir.create(dir)
  proto <- normalizePath(test_path("caffe_min.proto"))
  file.copy(proto, file.path(dir, "caffe_min.proto"))
  rc <- system2("protoc", c(paste0("--proto_path=", shQuote(dir)), paste0("--python_out=", shQuote(dir)),
                            shQuote(file.path(dir, "caffe_min.proto"))), stdout = TRUE, stderr = TRUE)
  if (!file.exists(file.path(dir, "caffe_min_pb2.py"))) fail(paste("protoc failed:", paste(rc, collapse = "\n")))
  out <- system2(py, c(shQuote(normalizePath(test_path("caffe_models.py"))), shQuote(dir)), stdout = TRUE, stderr = TRUE)
  if (!file.exists(file.path(dir, "legacy_output.bin"))) fail(paste(out, collapse = "\n"))
  rd <- function(f) readBin(f, "double", file.info(f)$size / 8, endian = "little")
  cases <- list(classic = list(input = c(15, 15, 3, 2), output = c(5, 2)),
                legacy = list(input = c(10, 10, 1, 2), output = c(3, 2)))
  for (n in names(cases)) {
    model <- mx.caffe.import(file.path(dir, paste0(n, ".prototxt")), file.path(dir, paste0(n, ".caffemodel")))
    x <- array(rd(file.path(dir, paste0(n, "_input.bin"))), cases[[n]]$input)
    y <- array(rd(file.path(dir, paste0(n, "_output.bin"))), cases[[n]]$output)
    pred <- predict(model, x)
    expect_equal(dim(pred), dim(y))
    expect_lt(max(abs(pred - y)), 1e-6, label = paste(n, "max abs difference", signif(max(abs(pred - y)), 3)))
  }
  classic <- mx.caffe.import(file.path(dir, "classic.prototxt"), file.path(dir, "classic.caffemodel"))
  ops <- .Call(symnet:::C_sym_nodes, classic$symbol)$op
  expect_true(all(c("Convolution", "Pooling", "LRN", "BatchNorm", "Concat", "add_n", "elemwise_mul", "_maximum",
                    "Flatten", "FullyConnected", "LeakyReLU", "Dropout", "softmax") %in% ops))
  expect_false("broadcast_mul" %in% ops) # the Scale after BatchNorm is folded into it
  expect_setequal(names(classic$aux.params), c("bn2_moving_mean", "bn2_moving_var"))
})
