# ONNX import/export and the protobuf reader/writer under them.
#
# Without Python: the wire format, hand-built ONNX models checked against
# plain R, export/re-import round trips, malformed files.
# With /usr/bin/python3 + torch + onnx (Debian's python3-torch, python3-onnx):
# PyTorch-built LeNet, ResNet-18-style and MobileNet-style networks imported
# and compared with PyTorch's outputs; symnet-exported models checked with
# onnx.checker and recomputed in PyTorch.  With Debian's libonnx-testdata:
# the node tests of the supported operators.

pb.schema <- symnet:::mx.internal.pb.schema
pb.decode <- symnet:::mx.internal.pb.decode
pb.encode <- symnet:::mx.internal.pb.encode
onnx.schema <- symnet:::mx.internal.onnx.schema

# ---- helpers: building ONNX models in R ----

o_tensor <- function(name, x, dtype = 1L) {
  symnet:::mx.internal.onnx.tensor.proto(symnet:::mx.internal.onnx.from.array(x, name, dtype))
}
o_int <- function(n, v) list(name = n, type = 2, i = v)
o_ints <- function(n, v) list(name = n, type = 7, ints = v)
o_float <- function(n, v) list(name = n, type = 1, f = v)
o_str <- function(n, v) list(name = n, type = 3, s = charToRaw(v))
o_node <- function(op, inputs, outputs, name = "", attrs = list())
  list(input = inputs, output = outputs, name = name, op_type = op, attribute = attrs)
o_vi <- function(name, dims)
  list(name = name, type = list(tensor_type = list(elem_type = 1, shape = list(dim = lapply(dims, function(d)
    if (is.character(d)) list(dim_param = d) else list(dim_value = d))))))
o_model <- function(nodes, inits, inputs, outputs, opset = 13) {
  g <- list(node = nodes, name = "g", initializer = inits,
            input = lapply(names(inputs), function(n) o_vi(n, inputs[[n]])),
            output = lapply(outputs, function(n) list(name = n)))
  m <- list(ir_version = 7, graph = g, opset_import = list(list(domain = "", version = opset)))
  f <- tempfile(fileext = ".onnx")
  writeBin(pb.encode(m, onnx.schema(), "ModelProto"), f)
  f
}
rel.err <- function(a, b) max(abs(as.vector(a) - as.vector(b))) / max(abs(as.vector(b)))

onnx.python <- function() {
  py <- "/usr/bin/python3"
  if (!file.exists(py)) return(NULL)
  rc <- suppressWarnings(system2(py, c("-c", shQuote("import torch, onnx")), stdout = FALSE, stderr = FALSE))
  if (!identical(as.integer(rc), 0L)) NULL else py
}
script <- function(name) {
  f <- test_path(name)
  if (!file.exists(f)) skip(paste(name, "is missing"))
  normalizePath(f)
}

# ---- protobuf wire format ----

test_that("protobuf messages round-trip through the C writer and reader", {
  s <- pb.schema(list(
    M = c("i 1 int64", "u 2 uint64", "s32 3 sint32", "s64 4 sint64", "b 5 bool", "f 6 float", "d 7 double",
          "str 8 string", "raw 9 bytes", "rep 10 int32*", "pk 11 int64+", "pf 12 float+", "sub 13 S", "subs 14 S*",
          "fx 15 fixed32", "sfx 16 sfixed64", "e 17 enum", "u32 18 uint32", "strs 19 string*", "raws 20 bytes*"),
    S = c("name 1 string", "v 2 double*")))
  x <- list(i = -123456789012, u = 2^60, s32 = -7, s64 = -2^40, b = TRUE, f = 1.5, d = pi, str = "h\u00e9llo",
            raw = as.raw(c(0, 255, 7)), rep = c(1, -2, 300), pk = c(0, -1, 2^50), pf = c(0.25, -3),
            sub = list(name = "a", v = c(1, 2)), subs = list(list(name = "b"), list(v = 3)),
            fx = 4294967295, sfx = -5, e = 2, u32 = 7, strs = c("x", "", "z"), raws = list(as.raw(1), raw(0)))
  r <- pb.encode(x, s, "M")
  expect_type(r, "raw")
  y <- pb.decode(r, s, "M")
  for (n in names(x)) {
    if (n %in% c("sub", "subs")) next
    expect_equal(y[[n]], x[[n]], info = n)
  }
  expect_equal(y$sub$name, "a")
  expect_equal(y$sub$v, c(1, 2))
  expect_equal(length(y$subs), 2)
  expect_equal(y$subs[[2]]$v, 3)
  expect_null(y$subs[[2]]$name)
  # varint of 300 then field 1: the first bytes are the tag 0x08 and the zigzag-free varint of i
  expect_equal(pb.decode(as.raw(c(0x08, 0xac, 0x02)), s, "M")$i, 300)
  # repeated numbers are read packed and unpacked; non-repeated last value wins
  both <- as.raw(c(0x50, 0x01, 0x52, 0x02, 0x02, 0x03, 0x08, 0x01, 0x08, 0x05))
  d <- pb.decode(both, s, "M")
  expect_equal(d$rep, c(1, 2, 3))
  expect_equal(d$i, 5)
  # unknown fields are skipped
  expect_equal(pb.decode(as.raw(c(0xf8, 0x07, 0x01, 0x08, 0x02)), s, "M")$i, 2)
  expect_error(pb.encode(list(nope = 1), s, "M"), "no field 'nope'")
  expect_error(pb.encode(list(i = 1.5), s, "M"), "not a valid int64")
  expect_error(pb.encode(list(u32 = -1), s, "M"), "not a valid uint32")
  expect_error(pb.encode(list(i = c(1, 2)), s, "M"), "single number")
})

test_that("malformed protobuf data gives R errors, never a crash", {
  s <- pb.schema(list(M = c("i 1 int64", "str 2 string", "sub 3 M", "pk 4 float+")))
  bad <- list(
    truncated.varint = as.raw(c(0x08, 0x80)),
    long.varint = as.raw(c(0x08, rep(0xff, 10), 0x01)),
    length.past.end = as.raw(c(0x12, 0x05, 0x61)),
    huge.length = as.raw(c(0x12, 0xff, 0xff, 0xff, 0xff, 0x0f)),
    field.zero = as.raw(c(0x00, 0x01)),
    wire.type.7 = as.raw(c(0x0f)),
    wrong.wire.type = as.raw(c(0x0d, 1, 2, 3, 4)),
    packed.not.multiple = as.raw(c(0x22, 0x03, 1, 2, 3)),
    nul.in.string = as.raw(c(0x12, 0x02, 0x61, 0x00)),
    unclosed.group = as.raw(c(0x2b, 0x08, 0x01)),
    stray.end.group = as.raw(c(0x2c)),
    truncated.fixed64 = as.raw(c(0x29, 1, 2)))
  for (n in names(bad)) expect_error(pb.decode(bad[[n]], s, "M"), "protobuf", info = n)
  # nesting deeper than the limit
  varint <- function(n) {
    out <- raw(0)
    repeat {
      b <- n %% 128
      n <- n %/% 128
      if (n == 0) return(c(out, as.raw(b)))
      out <- c(out, as.raw(b + 128))
    }
  }
  nest <- function(k) {
    r <- raw(0)
    for (i in seq_len(k)) r <- c(as.raw(0x1a), varint(length(r)), r)
    r
  }
  expect_error(pb.decode(nest(70), s, "M"), "nested deeper")
  expect_null(pb.decode(nest(60), s, "M")$sub$sub$sub$i)
  # random bytes: errors or (rarely) valid messages, never a crash
  set.seed(42)
  for (k in 1:200) {
    r <- as.raw(sample(0:255, sample(1:64, 1), replace = TRUE))
    tryCatch(pb.decode(r, s, "M"), error = function(e) expect_match(conditionMessage(e), "protobuf"))
  }
  expect_error(.Call(symnet:::C_pb_unpack, as.raw(1:3), 0L), "whole number")
})

test_that("ONNX tensors are read and written", {
  f <- tempfile(fileext = ".pb")
  x <- array(rnorm(24), c(4, 3, 2))
  mx.onnx.write.tensor(x, f, name = "t")
  y <- mx.onnx.read.tensor(f)
  expect_equal(dim(y), dim(x))
  expect_equal(as.vector(y), as.vector(x), tolerance = 1e-6)
  expect_equal(attr(y, "onnx.name"), "t")
  expect_equal(attr(y, "onnx.dtype"), "FLOAT")
  mx.onnx.write.tensor(c(3, -2, 5e9), f, dtype = "int64")
  expect_equal(as.vector(mx.onnx.read.tensor(f)), c(3, -2, 5e9))
  mx.onnx.write.tensor(x, f, dtype = "double")
  expect_identical(as.vector(mx.onnx.read.tensor(f)), as.vector(x))
  # typed fields (no raw_data), float16 bits and a wrong element count
  t <- symnet:::mx.internal.onnx.tensor(list(dims = c(2, 2), data_type = 10L, int32_data = c(15360, 16384, 48128, 0)))
  expect_equal(t$values, c(1, 2, -1, 0))
  expect_error(symnet:::mx.internal.onnx.tensor(list(name = "w", dims = c(2, 3), data_type = 1L, float_data = 1:5)),
               "tensor 'w' has 5 values but its dims \\(2, 3\\) need 6")
  expect_error(symnet:::mx.internal.onnx.tensor(list(name = "s", dims = 1, data_type = 8L)), "STRING")
})

# ---- hand-built models (no Python needed) ----

test_that("a hand-built ONNX MLP imports and matches plain R", {
  set.seed(1)
  K <- 6; N <- 4; M <- 3
  B <- matrix(rnorm(K * N), K, N)        # Gemm B (K x N), transB = 0
  C <- rnorm(N)
  W2 <- matrix(rnorm(N * M), N, M)       # MatMul constant (N x M)
  b2 <- rnorm(M)
  # C-order tensors: an R matrix t() holds the C-order values of a (rows x cols) tensor
  Bt <- array(as.vector(t(B)), c(N, K))
  W2t <- array(as.vector(t(W2)), c(M, N))
  nodes <- list(
    o_node("Gemm", c("x", "B", "C"), "g", "gemm", list(o_float("alpha", 0.5), o_float("beta", 2))),
    o_node("Relu", "g", "r", "relu"),
    o_node("MatMul", c("r", "W2"), "mm", "matmul"),
    o_node("Add", c("mm", "b2"), "a", "add"),
    o_node("Constant", character(), "k", "const", list(list(name = "value", type = 4, t = o_tensor("", 3)))),
    o_node("Mul", c("a", "k"), "m3", "mul3"),
    o_node("Sigmoid", "m3", "s", "sig"),
    o_node("Softmax", "s", "y", "softmax", list(o_int("axis", -1))))
  f <- o_model(nodes, list(o_tensor("B", Bt), o_tensor("C", C), o_tensor("W2", W2t), o_tensor("b2", b2)),
               list(x = list("batch", K)), "y")
  model <- mx.onnx.import(f)
  expect_s3_class(model, "MXFeedForwardModel")
  expect_equal(attr(model, "onnx.inputs"), c(data = "x"))
  X <- matrix(rnorm(5 * K), 5, K)        # 5 examples
  h <- pmax(0.5 * X %*% B + rep(2 * C, each = 5), 0) %*% W2
  h <- 1 / (1 + exp(-3 * (h + rep(b2, each = 5))))
  ref <- exp(h) / rowSums(exp(h))
  pred <- predict(model, t(X), array.layout = "colmajor")
  expect_equal(dim(pred), c(M, 5))
  expect_lt(rel.err(pred, t(ref)), 1e-5)
})

test_that("hand-built conv/pool graphs handle asymmetric and automatic padding", {
  set.seed(2)
  x <- array(rnorm(2 * 3 * 7 * 6), c(6, 7, 3, 2))     # C order (2, 3, 7, 6)
  w <- array(rnorm(4 * 3 * 3 * 2), c(2, 3, 3, 4))     # C order (4, 3, 3, 2)
  nodes <- list(
    o_node("Conv", c("x", "w"), "c", "conv", list(o_ints("pads", c(1, 0, 0, 1)), o_ints("strides", c(2, 1)))),
    o_node("MaxPool", "c", "p", "pool", list(o_ints("kernel_shape", c(2, 2)), o_str("auto_pad", "SAME_UPPER"))),
    o_node("AveragePool", "c", "q", "avg", list(o_ints("kernel_shape", c(3, 2)), o_ints("pads", c(0, 1, 1, 0)))))
  f <- o_model(nodes, list(o_tensor("w", w)), list(x = c(2, 3, 7, 6)), c("p", "q"))
  model <- mx.onnx.import(f)
  out <- symnet:::mx.internal.onnx.run(model, list(x = x))
  # plain R reference in C-order index terms: X[n, c, h, w] = x[w, h, c, n]
  X <- function(n, c, h, ww) if (h < 1 || h > 7 || ww < 1 || ww > 6) 0 else x[ww, h, c, n]
  Hc <- floor((7 + 1 + 0 - 3) / 2) + 1; Wc <- floor((6 + 0 + 1 - 2) / 1) + 1
  cr <- array(0, c(Wc, Hc, 4, 2))
  for (n in 1:2) for (o in 1:4) for (i in 1:Hc) for (j in 1:Wc) {
    s <- 0
    for (c in 1:3) for (kh in 1:3) for (kw in 1:2) s <- s + X(n, c, (i - 1) * 2 + kh - 1, (j - 1) + kw) * w[kw, kh, c, o]
    cr[j, i, o, n] <- s
  }
  # SAME_UPPER 2x2 stride 1: pad end by 1 in both dims
  P <- function(a, n, o, h, ww) if (h > Hc || ww > Wc) -Inf else a[ww, h, o, n]
  pr <- array(0, c(Wc, Hc, 4, 2))
  for (n in 1:2) for (o in 1:4) for (i in 1:Hc) for (j in 1:Wc)
    pr[j, i, o, n] <- max(P(cr, n, o, i, j), P(cr, n, o, i + 1, j), P(cr, n, o, i, j + 1), P(cr, n, o, i + 1, j + 1))
  expect_equal(dim(out[[1]]), dim(pr))
  expect_lt(max(abs(out[[1]] - pr)), 1e-5)
  # AveragePool 3x2, pads begin (0, 1) end (1, 0), count_include_pad = 0
  Ha <- Hc + 1 - 3 + 1; Wa <- Wc + 1 - 2 + 1
  ar <- array(0, c(Wa, Ha, 4, 2))
  for (n in 1:2) for (o in 1:4) for (i in 1:Ha) for (j in 1:Wa) {
    v <- c()
    for (kh in 0:2) for (kw in 0:1) {
      h <- i + kh; ww <- j + kw - 1
      if (h >= 1 && h <= Hc && ww >= 1 && ww <= Wc) v <- c(v, cr[ww, h, o, n])
    }
    ar[j, i, o, n] <- mean(v)
  }
  expect_equal(dim(out[[2]]), dim(ar))
  expect_lt(max(abs(out[[2]] - ar)), 1e-5)
})

test_that("older opsets: Softmax coerces to 2-D, Clip and Pad take attributes", {
  set.seed(9)
  x <- array(rnorm(4 * 3 * 2), c(4, 3, 2))            # C order (2, 3, 4)
  nodes <- list(o_node("Softmax", "x", "s", "sm", list(o_int("axis", 1))),
                o_node("Clip", "x", "c", "clip", list(o_float("min", -0.5), o_float("max", 0.25))),
                o_node("Transpose", "x", "t", "tr", list(o_ints("perm", c(0, 2, 1)))))
  f <- o_model(nodes, list(), list(x = c(2, 3, 4)), c("s", "c", "t"), opset = 9)
  out <- symnet:::mx.internal.onnx.run(mx.onnx.import(f), list(x = x))
  ref <- x
  for (n in 1:2) ref[, , n] <- exp(x[, , n]) / sum(exp(x[, , n]))  # softmax over all of (3, 4)
  expect_lt(max(abs(out[[1]] - ref)), 1e-6)
  expect_equal(out[[2]], pmin(pmax(x, -0.5), 0.25), tolerance = 1e-6)
  expect_equal(out[[3]], aperm(x, c(2, 1, 3)), tolerance = 1e-6)
  y <- array(rnorm(3 * 3 * 2), c(3, 3, 2, 1))          # C order (1, 2, 3, 3)
  f <- o_model(list(o_node("Pad", "y", "p", "pad", list(o_ints("pads", c(0, 0, 1, 0, 0, 0, 0, 2)),
                                                        o_float("value", 7)))), list(), list(y = c(1, 2, 3, 3)), "p",
               opset = 7)
  p <- symnet:::mx.internal.onnx.run(mx.onnx.import(f), list(y = y))[[1]]
  expect_equal(dim(p), c(5, 4, 2, 1))
  expect_equal(p[1:3, 2:4, , 1], y[, , , 1], tolerance = 1e-6)
  expect_true(all(p[4:5, , , ] == 7) && all(p[, 1, , ] == 7))
})

test_that("unsupported or malformed models give errors naming the node", {
  f <- o_model(list(o_node("FooBar", "x", "y", "myfoo")), list(), list(x = c(1, 2)), "y")
  expect_error(mx.onnx.import(f), "node 'myfoo' \\(FooBar\\): operator FooBar is not supported")
  f <- o_model(list(o_node("Relu", "x", "y", "r1", list(o_int("bogus", 1)))), list(), list(x = c(1, 2)), "y")
  expect_error(mx.onnx.import(f), "node 'r1' \\(Relu\\): attribute 'bogus' is not supported")
  f <- o_model(list(o_node("Reshape", c("x", "s"), "y", "rs")), list(), list(x = c(2, 3), s = 2), "y")
  expect_error(mx.onnx.import(f), "node 'rs' \\(Reshape\\): the shape \\(input 2\\) must be a constant")
  f <- o_model(list(o_node("LRN", "x", "y", "lrn", list(o_int("size", 4)))), list(), list(x = c(1, 3, 4, 4)), "y")
  expect_error(mx.onnx.import(f), "node 'lrn' \\(LRN\\): an even size")
  f <- o_model(list(o_node("MaxPool", "x", c("y", "idx"), "mp", list(o_ints("kernel_shape", c(2, 2))))), list(),
               list(x = c(1, 1, 4, 4)), c("y", "idx"))
  expect_error(mx.onnx.import(f), "node 'mp' \\(MaxPool\\): output 2 \\('idx'\\) is not supported")
  f <- o_model(list(o_node("Relu", "nowhere", "y", "r")), list(), list(x = c(1, 2)), "y")
  expect_error(mx.onnx.import(f), "node 'r' \\(Relu\\): input 'nowhere' is not defined")
  m <- list(ir_version = 7, graph = list(node = list(o_node("Relu", "x", "y", "r", list())), input = list(o_vi("x", 2)),
            output = list(list(name = "y"))), opset_import = list(list(domain = "com.example", version = 1),
            list(domain = "", version = 13)))
  m$graph$node[[1]]$domain <- "com.example"
  writeBin(pb.encode(m, onnx.schema(), "ModelProto"), f)
  expect_error(mx.onnx.import(f), "operators of domain 'com.example' are not supported")
})

test_that("truncated and garbage .onnx files give R errors", {
  set.seed(3)
  data <- mx.symbol.Variable("data")
  net <- mx.symbol.FullyConnected(mx.symbol.Activation(mx.symbol.Convolution(data, kernel = c(3, 3),
           num_filter = 4, name = "c"), act_type = "relu"), num_hidden = 5, name = "fc")
  p <- mx.model.init.params(net, c(8, 8, 2, 1), NULL, mx.init.uniform(0.1))
  model <- structure(list(symbol = net, arg.params = p$arg.params, aux.params = p$aux.params), class = "MXFeedForwardModel")
  f <- tempfile(fileext = ".onnx")
  mx.onnx.export(model, f, c(8, 8, 2, 1))
  raw <- readBin(f, "raw", file.info(f)$size)
  g <- tempfile(fileext = ".onnx")
  n.err <- 0
  for (cut in unique(round(seq(5, length(raw) - 5, length.out = 40)))) {
    writeBin(raw[seq_len(cut)], g)
    r <- tryCatch(mx.onnx.import(g), error = function(e) e)
    if (inherits(r, "error")) {
      n.err <- n.err + 1
      expect_match(conditionMessage(r), "mx.onnx.import")
    }
  }
  expect_gt(n.err, 30)
  for (k in 1:30) {
    bytes <- raw
    pos <- sample(length(bytes), 8)
    bytes[pos] <- as.raw(sample(0:255, 8, replace = TRUE))
    writeBin(bytes, g)
    tryCatch(mx.onnx.import(g), error = function(e) expect_true(nzchar(conditionMessage(e))))
  }
  writeBin(as.raw(sample(0:255, 1000, replace = TRUE)), g)
  expect_error(mx.onnx.import(g), "mx.onnx.import")
  writeBin(raw(0), g)
  expect_error(mx.onnx.import(g), "empty")
  expect_error(mx.onnx.import(tempfile()), "no such file")
})

test_that("export then import reproduces a symnet model", {
  set.seed(4)
  data <- mx.symbol.Variable("data")
  c1 <- mx.symbol.Convolution(data, kernel = c(3, 3), num_filter = 6, pad = c(1, 1), num_group = 2, name = "c1")
  b1 <- mx.symbol.BatchNorm(c1, fix_gamma = FALSE, name = "bn1")
  a1 <- mx.symbol.LeakyReLU(b1, act_type = "leaky", slope = 0.1, name = "l1")
  p1 <- mx.symbol.Pooling(a1, kernel = c(3, 3), stride = c(2, 2), pool_type = "max", pooling_convention = "full", name = "p1")
  d1 <- mx.symbol.Deconvolution(p1, kernel = c(2, 2), stride = c(2, 2), num_filter = 3, name = "d1")
  cat <- mx.symbol.concat(list(d1, a1), dim = 1, name = "cat")
  p2 <- mx.symbol.Pooling(cat, kernel = c(2, 2), stride = c(2, 2), pool_type = "avg", name = "p2")
  fc <- mx.symbol.FullyConnected(mx.symbol.Flatten(p2, name = "fl"), num_hidden = 7, name = "fc")
  net <- mx.symbol.SoftmaxOutput(fc, name = "sm")
  p <- mx.model.init.params(net, c(8, 8, 4, 3), NULL, mx.init.uniform(0.3))
  p$aux.params <- lapply(p$aux.params, function(a) mx.nd.array(array(runif(length(a), 0.5, 1.5), dim(a))))
  model <- structure(list(symbol = net, arg.params = p$arg.params, aux.params = p$aux.params), class = "MXFeedForwardModel")
  f <- tempfile(fileext = ".onnx")
  mx.onnx.export(model, f, input.shape = c(8, 8, 4, 3))
  m <- pb.decode(readBin(f, "raw", file.info(f)$size), onnx.schema(), "ModelProto")
  expect_equal(m$ir_version, 7)
  expect_equal(m$opset_import[[1]]$version, 13)
  ops <- vapply(m$graph$node, function(n) n$op_type, "")
  expect_true(all(c("Conv", "BatchNormalization", "LeakyRelu", "MaxPool", "ConvTranspose", "AveragePool", "Concat",
                    "Flatten", "Gemm", "Softmax") %in% ops))
  expect_true(all(nzchar(vapply(m$graph$node, function(n) n$name, ""))))
  expect_equal(vapply(m$graph$input, function(v) v$name, ""), "data")
  expect_equal(vapply(m$graph$input[[1]]$type$tensor_type$shape$dim, function(d) d$dim_value, 0), c(3, 4, 8, 8))
  expect_equal(vapply(m$graph$output[[1]]$type$tensor_type$shape$dim, function(d) d$dim_value, 0), c(3, 7))
  inits <- vapply(m$graph$initializer, function(t) t$name, "")
  expect_true(all(c("c1_weight", "bn1_moving_var", "fc_bias") %in% inits))
  expect_false(any(grepl("label", inits)))
  m2 <- mx.onnx.import(f)
  x <- array(rnorm(8 * 8 * 4 * 3), c(8, 8, 4, 3))
  expect_lt(rel.err(predict(m2, x), predict(model, x)), 1e-6)
  expect_true(all(c("bn1_moving_mean", "bn1_moving_var") %in% names(m2$aux.params)))
  expect_error(mx.onnx.export(model, f, c(8, 8, 4, 3), opset = 11), "opset 13")
  bad <- structure(list(symbol = mx.symbol.UpSampling(data, scale = 2, sample_type = "nearest", name = "up"),
                        arg.params = list(), aux.params = list()), class = "MXFeedForwardModel")
  expect_error(mx.onnx.export(bad, f, c(4, 4, 1, 1)), "node 'up' \\(UpSampling\\)")
})

# ---- PyTorch as producer and consumer ----

test_that("networks exported by PyTorch import and match PyTorch's outputs", {
  py <- onnx.python()
  if (is.null(py)) skip("needs /usr/bin/python3 with torch and onnx (python3-torch, python3-onnx)")
  dir <- tempfile("onnx-torch")
  dir.create(dir)
  out <- system2(py, c(shQuote(script("onnx_torch_models.py")), shQuote(dir)), stdout = TRUE, stderr = TRUE)
  if (!file.exists(file.path(dir, "misc.onnx"))) fail(paste(out, collapse = "\n"))
  for (n in c("lenet", "resnet", "mobilenet", "misc")) {
    model <- mx.onnx.import(file.path(dir, paste0(n, ".onnx")))
    x <- mx.onnx.read.tensor(file.path(dir, paste0(n, "_input.pb")))
    y <- mx.onnx.read.tensor(file.path(dir, paste0(n, "_output.pb")))
    pred <- predict(model, x)
    expect_equal(dim(pred), dim(y), info = n)
    err <- rel.err(pred, y)
    expect_lt(err, 1e-5, label = paste(n, "max relative error", signif(err, 3)))
  }
  # the ResNet keeps its BatchNorm layers (exported with PRESERVE); their stats are aux.params
  resnet <- mx.onnx.import(file.path(dir, "resnet.onnx"))
  expect_true(any(grepl("running_mean", names(resnet$aux.params))))
  ops <- unique(vapply(.Call(symnet:::C_sym_nodes, resnet$symbol)$op, identity, ""))
  expect_true(all(c("BatchNorm", "elemwise_add", "Convolution", "FullyConnected") %in% ops))
  mobilenet <- mx.onnx.import(file.path(dir, "mobilenet.onnx"))
  groups <- unlist(lapply(.Call(symnet:::C_sym_nodes, mobilenet$symbol)$params, function(p) p["num_group"]))
  expect_true(any(as.numeric(groups) > 1, na.rm = TRUE))
  # batch size other than the exported one (the models have a dynamic batch)
  x <- mx.onnx.read.tensor(file.path(dir, "resnet_input.pb"))
  one <- predict(resnet, x[, , , 1, drop = FALSE])
  expect_lt(rel.err(one, predict(resnet, x)[, 1]), 1e-5)
})

test_that("models exported by symnet pass onnx.checker and match PyTorch", {
  py <- onnx.python()
  if (is.null(py)) skip("needs /usr/bin/python3 with torch and onnx (python3-torch, python3-onnx)")
  set.seed(5)
  data <- mx.symbol.Variable("data")
  params <- function(sym, shape) {
    p <- mx.model.init.params(sym, shape, NULL, mx.init.uniform(0.3))
    p$aux.params <- lapply(p$aux.params, function(a) mx.nd.array(array(runif(length(a), 0.5, 1.5), dim(a))))
    p
  }
  # LeNet
  c1 <- mx.symbol.Convolution(data, kernel = c(5, 5), num_filter = 6, name = "c1")
  p1 <- mx.symbol.Pooling(mx.symbol.Activation(c1, act_type = "tanh", name = "a1"), kernel = c(2, 2),
                          stride = c(2, 2), pool_type = "max", name = "p1")
  c2 <- mx.symbol.Convolution(p1, kernel = c(3, 3), num_filter = 8, pad = c(1, 1), name = "c2")
  p2 <- mx.symbol.Pooling(mx.symbol.Activation(c2, act_type = "relu", name = "a2"), kernel = c(3, 3),
                          stride = c(2, 2), pool_type = "avg", pooling_convention = "full", name = "p2")
  fc1 <- mx.symbol.FullyConnected(mx.symbol.Flatten(p2, name = "flat"), num_hidden = 20, name = "fc1")
  fc2 <- mx.symbol.FullyConnected(mx.symbol.Activation(fc1, act_type = "sigmoid", name = "s1"), num_hidden = 10, name = "fc2")
  lenet <- mx.symbol.SoftmaxOutput(fc2, name = "sm")
  # everything else
  b <- mx.symbol.BatchNorm(data, fix_gamma = TRUE, name = "bn0")
  cA <- mx.symbol.Convolution(b, kernel = c(3, 3), num_filter = 6, pad = c(1, 1), num_group = 2, name = "cA")
  lA <- mx.symbol.LeakyReLU(mx.symbol.BatchNorm(cA, fix_gamma = FALSE, eps = 1e-4, name = "bnA"),
                            act_type = "leaky", slope = 0.2, name = "lA")
  dB <- mx.symbol.Deconvolution(lA, kernel = c(4, 4), stride = c(2, 2), pad = c(1, 1), num_filter = 4,
                                no_bias = FALSE, name = "dB")
  pB <- mx.symbol.Pooling(mx.symbol.LeakyReLU(dB, act_type = "elu", slope = 0.7, name = "eB"), kernel = c(2, 2),
                          stride = c(2, 2), pool_type = "max", name = "pB")
  lr <- mx.symbol.LRN(mx.symbol.concat(list(pB, lA), dim = 1, name = "cat"), nsize = 3, alpha = 0.01, beta = 0.75,
                      knorm = 2, name = "lrn")
  pd <- mx.symbol.Pad(lr, mode = "edge", pad_width = "(0, 0, 0, 0, 1, 1, 2, 0)", name = "pad")
  sc <- ((mx.symbol.clip(pd, a_min = -0.5, a_max = 0.8, name = "clip") + 1) * 2 - 0.5) / 3
  g <- mx.symbol.Flatten(mx.symbol.Pooling(sc, global_pool = TRUE, pool_type = "avg", kernel = c(1, 1), name = "gap"),
                         name = "gflat")
  r3 <- mx.symbol.Reshape(mx.symbol.FullyConnected(g, num_hidden = 12, name = "fcx"), shape = "(-1, 3, 4)", name = "r3")
  bd <- mx.symbol.batch_dot(mx.symbol.transpose(r3, axes = "(0, 2, 1)", name = "tr"), r3, name = "bd")
  sm <- mx.symbol.Dropout(mx.symbol.softmax(mx.symbol.Flatten(bd, name = "fl"), axis = -1, name = "softmax"),
                          p = 0.3, name = "drop")
  fx <- mx.symbol.Flatten(mx.symbol.FullyConnected(r3, num_hidden = 5, flatten = FALSE, name = "fcnf"), name = "fxf")
  mix <- mx.symbol.concat(list(mx.symbol.log_softmax(sm, name = "lsm"), fx), dim = 1, name = "out")
  for (case in list(list("lenet", lenet, c(16, 16, 1, 3)), list("mix", mix, c(8, 8, 4, 2)))) {
    name <- case[[1]]; sym <- case[[2]]; shape <- case[[3]]
    p <- params(sym, shape)
    model <- structure(list(symbol = sym, arg.params = p$arg.params, aux.params = p$aux.params),
                       class = "MXFeedForwardModel")
    f <- tempfile(fileext = ".onnx")
    mx.onnx.export(model, f, shape)
    x <- array(rnorm(prod(shape)), shape)
    inp <- tempfile(fileext = ".pb")
    mx.onnx.write.tensor(x, inp, "data")
    prefix <- tempfile("out")
    out <- system2(py, c(shQuote(script("onnx_torch_run.py")), shQuote(f), shQuote(prefix),
                         shQuote(paste0("data=", inp))), stdout = TRUE, stderr = TRUE)
    expect_true("checked" %in% out, label = paste(name, "passes onnx.checker:", paste(out, collapse = "\n")))
    y <- mx.onnx.read.tensor(paste0(prefix, "0.pb"))
    pred <- symnet:::mx.internal.onnx.run(model, list(data = x))[[1]]
    expect_equal(dim(pred), dim(y))
    err <- rel.err(pred, y)
    expect_lt(err, 1e-5, label = paste(name, "max relative error vs PyTorch", signif(err, 3)))
  }
})

# ---- ONNX's node tests (Debian libonnx-testdata) ----

# The node tests of the supported operators that symnet runs, and why the
# others that match the same prefixes are skipped.
onnx.node.skips <- c(
  "test_basic_convinteger" = "ConvInteger (quantized) is another operator",
  "test_convinteger_with_padding" = "ConvInteger (quantized) is another operator",
  "test_convinteger_without_padding" = "ConvInteger (quantized) is another operator",
  "test_matmulinteger" = "MatMulInteger (quantized) is another operator",
  "test_batchnorm_epsilon_training_mode" = "BatchNormalization in training mode (batch statistics outputs)",
  "test_batchnorm_example_training_mode" = "BatchNormalization in training mode (batch statistics outputs)",
  "test_maxpool_2d_dilations" = "symnet's Pooling has no dilation",
  "test_maxpool_with_argmax_2d_precomputed_pads" = "MaxPool's Indices output is not supported",
  "test_maxpool_with_argmax_2d_precomputed_strides" = "MaxPool's Indices output is not supported",
  "test_reshape_allowzero_reordered" = "zero-size tensors are not supported",
  "test_identity_opt" = "optional types are not supported",
  "test_identity_sequence" = "sequence types are not supported",
  "test_div_uint8" = "integer division truncates; symnet computes in floating point")

onnx.node.prefixes <- c("conv", "basic_conv", "convtranspose", "relu", "leakyrelu", "tanh", "sigmoid", "maxpool",
                        "averagepool", "globalaveragepool", "globalmaxpool", "batchnorm", "gemm", "matmul", "add",
                        "sub", "mul", "div", "flatten", "reshape", "transpose", "concat", "dropout", "softmax",
                        "logsoftmax", "clip", "lrn", "pad", "constant_pad", "edge_pad", "reflect_pad", "identity",
                        "constant", "elu", "softplus", "softsign", "exp", "log", "sqrt", "abs", "neg", "reciprocal",
                        "floor", "ceil", "sum", "prelu")

onnx.node.run <- function(dir) {
  rd <- function(f) symnet:::mx.internal.onnx.tensor(pb.decode(symnet:::mx.internal.read.raw(f, "f"), onnx.schema(), "TensorProto"))
  m <- pb.decode(symnet:::mx.internal.read.raw(file.path(dir, "model.onnx"), "f"), onnx.schema(), "ModelProto")
  init <- vapply(m$graph$initializer, function(t) t$name, "")
  gin <- setdiff(vapply(m$graph$input, function(v) v$name, ""), init)
  ds <- file.path(dir, "test_data_set_0")
  num <- function(f) as.integer(gsub("\\D", "", f))
  fi <- list.files(ds, "^input_[0-9]+\\.pb$"); fi <- fi[order(num(fi))]
  fo <- list.files(ds, "^output_[0-9]+\\.pb$"); fo <- fo[order(num(fo))]
  tin <- lapply(file.path(ds, fi), rd)
  names(tin) <- gin[seq_along(tin)]
  # The first input is the data (integer data is fed as float32, exact for the small integers of these
  # tests); later shape-like inputs (integers, 0-d values such as Clip's bounds) are given as constants.
  is.const <- vapply(tin, function(t) length(t$dims) == 0 || !t$dtype %in% c(1L, 10L, 11L), TRUE)
  is.const[[1]] <- FALSE
  consts <- lapply(tin[is.const], function(t) {
    a <- symnet:::mx.internal.onnx.as.array(t)
    attr(a, "onnx.dims") <- t$dims
    a
  })
  model <- withCallingHandlers(mx.onnx.import(file.path(dir, "model.onnx"), constants = if (length(consts)) consts),
                               warning = function(w) if (grepl("computes it in floating point", conditionMessage(w)))
                                 invokeRestart("muffleWarning"))
  outs <- symnet:::mx.internal.onnx.run(model, lapply(tin[!is.const], symnet:::mx.internal.onnx.as.array))
  exp <- lapply(file.path(ds, fo), rd)
  if (length(outs) != length(exp)) return(paste("fail: ", length(outs), "outputs, expected", length(exp)))
  worst <- 0
  for (k in seq_along(exp)) {
    e <- exp[[k]]
    o <- outs[[k]]
    od <- if (is.null(dim(o))) length(o) else dim(o)
    ed <- if (length(e$dims)) rev(e$dims) else 1
    if (!identical(as.numeric(od), as.numeric(ed)))
      return(paste0("fail: output ", k, " has R dims (", paste(od, collapse = ", "), "), expected (",
                    paste(ed, collapse = ", "), ")"))
    d <- abs(as.vector(o) - e$values) - (1e-6 + 1e-5 * abs(e$values))
    d[is.nan(d) & is.nan(as.vector(o)) & is.nan(e$values)] <- -1
    worst <- max(worst, d, na.rm = FALSE)
  }
  if (is.na(worst) || worst > 0) return(paste("fail: values differ by up to", signif(worst, 3), "beyond the tolerance"))
  "ok"
}

test_that("ONNX node tests of the supported operators pass (libonnx-testdata)", {
  root <- "/usr/share/libonnx-testdata/data/node"
  if (!dir.exists(root)) skip("needs Debian's libonnx-testdata")
  dirs <- list.files(root)
  pick <- dirs[vapply(dirs, function(d) any(startsWith(d, paste0("test_", onnx.node.prefixes))), TRUE)]
  # other operators whose names share a prefix, and the expanded (function-body) variants, which use
  # ReduceMax/ReduceSum/Exp subgraphs that symnet does not import
  pick <- pick[!grepl("_expanded$", pick) &
               !grepl("^test_(constantofshape|convinteger|basic_convinteger|expand|negative_log|softmax_cross)", pick)]
  results <- character()
  for (d in pick) {
    if (d %in% names(onnx.node.skips)) {
      results[[d]] <- paste("skip:", onnx.node.skips[[d]])
      next
    }
    results[[d]] <- tryCatch(onnx.node.run(file.path(root, d)), error = function(e) paste("fail:", conditionMessage(e)))
  }
  ran <- results[results == "ok"]
  skipped <- results[startsWith(results, "skip")]
  failed <- results[startsWith(results, "fail")]
  message(sprintf("ONNX node tests: %d passed, %d skipped, %d failed", length(ran), length(skipped), length(failed)))
  for (d in names(failed)) message("  ", d, ": ", failed[[d]])
  expect_equal(length(failed), 0, label = paste("failed node tests:", paste(names(failed), collapse = ", ")))
  expect_gt(length(ran), 150)
  # every operator the issue names has node tests that ran
  for (op in c("conv", "convtranspose", "relu", "leakyrelu", "tanh", "sigmoid", "maxpool", "averagepool",
               "globalaveragepool", "batchnorm", "gemm", "matmul", "add", "sub", "mul", "div", "flatten", "reshape",
               "transpose", "concat", "dropout", "softmax", "clip", "lrn", "identity", "constant"))
    expect_true(any(startsWith(names(ran), paste0("test_", op))), label = paste("node tests of", op, "ran"))
  expect_true(any(names(ran) %in% c("test_constant_pad", "test_edge_pad", "test_reflect_pad")))
})
