mlp <- function() {
  data <- mx.symbol.Variable("data")
  fc1 <- mx.symbol.FullyConnected(data, name = "fc1", num_hidden = 128)
  act1 <- mx.symbol.Activation(fc1, name = "relu1", act_type = "relu")
  fc2 <- mx.symbol.FullyConnected(act1, name = "fc2", num_hidden = 64)
  act2 <- mx.symbol.Activation(fc2, name = "relu2", act_type = "relu")
  fc3 <- mx.symbol.FullyConnected(act2, name = "fc3", num_hidden = 10)
  mx.symbol.SoftmaxOutput(fc3, name = "sm")
}

test_that("arguments and outputs follow MXNet's names", {
  net <- mlp()
  expect_equal(arguments(net), c("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                 "fc3_weight", "fc3_bias", "sm_label"))
  expect_equal(outputs(net), "sm_output")
  expect_equal(net$arguments, arguments(net))
  expect_equal(net$outputs, "sm_output")
  expect_true(is.mx.symbol(net))
})

test_that("automatic names count per op", {
  symnet:::mx.internal.name.reset()
  d <- mx.symbol.Variable("data")
  a <- mx.symbol.FullyConnected(d, num_hidden = 2)
  b <- mx.symbol.FullyConnected(a, num_hidden = 2)
  expect_equal(arguments(b), c("data", "fullyconnected0_weight", "fullyconnected0_bias",
                               "fullyconnected1_weight", "fullyconnected1_bias"))
  expect_equal(outputs(b), "fullyconnected1_output")
})

test_that("aux states of BatchNorm", {
  d <- mx.symbol.Variable("data")
  bn <- mx.symbol.BatchNorm(d, name = "bn1")
  expect_equal(arguments(bn), c("data", "bn1_gamma", "bn1_beta"))
  expect_equal(bn$auxiliary.states, c("bn1_moving_mean", "bn1_moving_var"))
})

test_that("mx.apply composes by argument name", {
  data <- mx.symbol.Variable("data")
  net1 <- mx.symbol.FullyConnected(data = data, name = "fc1", num_hidden = 10)
  net1 <- mx.symbol.FullyConnected(data = net1, name = "fc2", num_hidden = 100)
  expect_equal(arguments(net1), c("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"))
  net2 <- mx.symbol.FullyConnected(mx.symbol.Variable("fc3_data"), name = "fc3", num_hidden = 10)
  net2 <- mx.symbol.Activation(data = net2, act_type = "relu")
  net2 <- mx.symbol.FullyConnected(data = net2, name = "fc4", num_hidden = 20)
  composed <- mx.apply(net2, fc3_data = net1, name = "composed")
  expect_equal(arguments(composed), c("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                      "fc3_weight", "fc3_bias", "fc4_weight", "fc4_bias"))
  expect_equal(arguments(net2)[1], "fc3_data") # the original is unchanged
  expect_error(mx.apply(net2, nothere = net1), "no argument named 'nothere'")
})

test_that("Group, internals, children and get.output", {
  data <- mx.symbol.Variable("data")
  fc1 <- mx.symbol.FullyConnected(data, name = "fc1", num_hidden = 8)
  act <- mx.symbol.Activation(fc1, name = "act", act_type = "tanh")
  g <- mx.symbol.Group(fc1, act)
  expect_equal(outputs(g), c("fc1_output", "act_output"))
  int <- internals(act)
  expect_equal(outputs(int), c("data", "fc1_weight", "fc1_bias", "fc1_output", "act_output"))
  fc1b <- int[[match("fc1_output", outputs(int))]]
  expect_equal(outputs(fc1b), "fc1_output")
  expect_equal(arguments(fc1b), c("data", "fc1_weight", "fc1_bias"))
  expect_equal(outputs(act$get.internals()[["fc1_output"]]), "fc1_output")
  expect_equal(outputs(children(act)), "fc1_output")
  expect_equal(outputs(act$get.children()), "fc1_output")
  expect_equal(outputs(children(fc1)), c("data", "fc1_weight", "fc1_bias"))
  expect_null(children(data))
  expect_equal(outputs(g$get.output(2)), "act_output")
  expect_error(g[[3]], "out of range")
  sl <- mx.symbol.SliceChannel(data, num_outputs = 3, name = "slice")
  expect_equal(outputs(sl), c("slice_output0", "slice_output1", "slice_output2"))
  expect_equal(length(sl), 3)
  expect_error(mx.symbol.FullyConnected(sl, num_hidden = 2), "3 outputs")
  expect_equal(outputs(mx.symbol.FullyConnected(sl[[2]], num_hidden = 2, name = "f")), "f_output")
})

test_that("concat names its inputs and Concat warns", {
  a <- mx.symbol.Variable("a"); b <- mx.symbol.Variable("b")
  c1 <- mx.symbol.concat(list(a, b), num.args = 2, dim = 1, name = "cc")
  expect_equal(arguments(c1), c("a", "b"))
  expect_equal(outputs(c1), "cc_output")
  expect_warning(c2 <- mx.symbol.Concat(list(a, b), num.args = 2), "deprecated")
  expect_equal(arguments(c2), c("a", "b"))
  expect_error(mx.symbol.concat(list(a, b), num.args = 3), "num.args")
})

test_that("arithmetic between symbols and numbers", {
  a <- mx.symbol.Variable("a"); b <- mx.symbol.Variable("b")
  s <- (a + b) * 2 - 1 / a
  expect_equal(arguments(s), c("a", "b"))
  ex <- mx.simple.bind(s, mx.cpu(), a = 3, b = 3)
  mx.exec.update.arg.arrays(ex, list(a = c(1, 2, 4), b = c(1, 1, 1)), match.name = TRUE)
  mx.exec.forward(ex, is.train = FALSE)
  av <- c(1, 2, 4)
  expect_equal(as.vector(as.array(ex$ref.outputs[[1]])), (av + 1) * 2 - 1 / av, tolerance = 1e-6)
  s2 <- 2 ^ a + a ^ 2 + (a > 1.5) + (3 - a) + (12 / a) + -a
  ex2 <- mx.simple.bind(s2, mx.cpu(), a = 3)
  mx.exec.update.arg.arrays(ex2, list(a = av), match.name = TRUE)
  mx.exec.forward(ex2, is.train = FALSE)
  expect_equal(as.vector(as.array(ex2$ref.outputs[[1]])), 2^av + av^2 + (av > 1.5) + (3 - av) + 12 / av - av,
               tolerance = 1e-5)
  expect_error(a + "x", "symbol")
})

test_that("attributes get and set", {
  data <- mx.symbol.Variable("data", attr = list(mood = "angry"))
  expect_equal(data$attributes$mood, "angry")
  data$attributes <- list("__shape__" = "(1, 28, 28)")
  expect_equal(data$attributes[["__shape__"]], "(1, 28, 28)")
  op <- mx.symbol.FullyConnected(data, num_hidden = 3, name = "fc", attr = list("__lr_mult__" = "2"))
  expect_equal(op$attributes[["__lr_mult__"]], "2")
})

test_that("infer.shape returns R-order shapes, or NULL when incomplete", {
  net <- mlp()
  s <- mx.symbol.infer.shape(net, data = c(784, 100))
  expect_equal(s$arg.shapes$fc1_weight, c(784L, 128L))
  expect_equal(s$arg.shapes$fc3_bias, 10L)
  expect_equal(s$arg.shapes$sm_label, 100L)
  expect_equal(s$out.shapes$sm_output, c(10L, 100L))
  expect_equal(length(s$aux.shapes), 0)
  expect_equal(net$infer.shape(list(data = c(784, 100)))$out.shapes$sm_output, c(10L, 100L))
  expect_null(mx.symbol.infer.shape(net))
  expect_null(mx.symbol.infer.shape(mx.symbol.dot(mx.symbol.Variable("x"), mx.symbol.Variable("y")), x = c(2, 3)))
  # backward inference: the data shape follows from a weight shape
  d <- mx.symbol.Variable("data")
  add <- d + mx.symbol.Variable("w")
  expect_equal(mx.symbol.infer.shape(add, w = c(4, 5))$arg.shapes$data, c(4L, 5L))
})

test_that("shape errors name the operator, the argument and both shapes", {
  net <- mlp()
  expect_error(mx.symbol.infer.shape(net, data = c(784, 100), fc1_weight = c(100, 128)),
               "fc1.*FullyConnected.*weight.*\\(128, 784\\).*\\(128, 100\\)")
  expect_error(mx.symbol.infer.shape(net, foo = c(1, 2)), "'foo' is not an argument")
})

test_that("JSON round trip is identical and save/load work", {
  net <- mlp()
  js <- net$as.json()
  expect_identical(mx.symbol.load.json(js)$as.json(), js)
  f <- tempfile(fileext = ".json")
  mx.symbol.save(net, f)
  net2 <- mx.symbol.load(f)
  expect_equal(arguments(net2), arguments(net))
  expect_identical(net2$as.json(), js)
  net$save(f)
  expect_identical(mx.symbol.load(f)$as.json(), js)
  d <- mx.symbol.Variable("data")
  bn <- mx.symbol.BatchNorm(mx.symbol.Convolution(d, kernel = c(3, 3), num_filter = 4, name = "c"), name = "bn")
  expect_identical(mx.symbol.load.json(bn$as.json())$as.json(), bn$as.json())
  expect_equal(mx.symbol.load.json(bn$as.json())$auxiliary.states, c("bn_moving_mean", "bn_moving_var"))
})

test_that("JSON from older MXNet versions loads", {
  old <- '{
  "nodes": [
    {"op": "null", "param": {}, "name": "data", "inputs": [], "backward_source_id": -1},
    {"op": "null", "param": {}, "name": "fc1_weight", "inputs": [], "backward_source_id": -1},
    {"op": "null", "param": {}, "name": "fc1_bias", "inputs": [], "backward_source_id": -1},
    {"op": "FullyConnected", "param": {"no_bias": "False", "num_hidden": "10"}, "name": "fc1",
     "inputs": [[0, 0], [1, 0], [2, 0]], "backward_source_id": -1, "attr": {"ctx_group": "stage1"}},
    {"op": "null", "param": {}, "name": "softmax_label", "inputs": [], "backward_source_id": -1},
    {"op": "Softmax", "param": {"grad_scale": "1", "ignore_label": "-1", "multi_output": "False",
     "normalization": "null", "use_ignore": "False"}, "name": "softmax", "inputs": [[3, 0], [4, 0]],
     "backward_source_id": -1}
  ],
  "arg_nodes": [0, 1, 2, 4],
  "heads": [[5, 0]]
}'
  s <- mx.symbol.load.json(old)
  expect_equal(arguments(s), c("data", "fc1_weight", "fc1_bias", "softmax_label"))
  expect_equal(outputs(s), "softmax_output")
  expect_equal(mx.symbol.infer.shape(s, data = c(5, 3))$out.shapes$softmax_output, c(10L, 3L))
  fc <- internals(s)[["fc1_output"]]
  expect_equal(fc$attributes[["__ctx_group__"]], "stage1")
})

test_that("the MXNet-written fixture symbol loads", {
  f <- test_path("../../../shared/fixtures/mxnet-checkpoint/fashion-mnist-symbol.json")
  if (!file.exists(f)) f <- file.path(Sys.getenv("SYMNET_FIXTURES", "/work/shared/fixtures"), "mxnet-checkpoint/fashion-mnist-symbol.json")
  skip_if_not(file.exists(f), "MXNet fixture not found")
  s <- mx.symbol.load(f)
  expect_equal(arguments(s)[1], "data")
  expect_true("hybridsequential16_conv0_weight" %in% arguments(s))
  sh <- mx.symbol.infer.shape(s, data = c(28, 28, 1, 5))
  expect_equal(sh$arg.shapes$hybridsequential16_conv0_weight, c(4L, 4L, 1L, 8L))
  expect_equal(sh$out.shapes[[1]], c(10L, 5L))
  expect_identical(mx.symbol.load.json(s$as.json())$as.json(), s$as.json())
})

test_that("malformed JSON gives errors naming the problem", {
  expect_error(mx.symbol.load.json("{"), "JSON")
  expect_error(mx.symbol.load.json('{"nodes": []}'), "nodes")
  expect_error(mx.symbol.load.json('{"nodes": [{"op": "Nope", "name": "x", "inputs": []}], "heads": [[0,0,0]]}'),
               "unknown operator 'Nope'")
  expect_error(mx.symbol.load.json('{"nodes": [{"op": "null", "name": "a", "inputs": []},
     {"op": "relu", "name": "r", "inputs": [[1, 0, 0]]}], "heads": [[1,0,0]]}'), "cycle|earlier")
  expect_error(mx.symbol.load.json('{"nodes": [{"op": "null", "name": "a", "inputs": []},
     {"op": "relu", "name": "r", "inputs": [[0, 5, 0]]}], "heads": [[1,0,0]]}'), "output 5")
  expect_error(mx.symbol.load.json('{"nodes": [{"op": "null", "name": "a", "inputs": []},
     {"op": "FullyConnected", "name": "f", "attrs": {"num_hidden": "x"}, "inputs": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}],
     "heads": [[1,0,0]]}'), "num_hidden")
  expect_error(mx.symbol.load.json('{"nodes": [{"op": "null", "name": "a", "inputs": []},
     {"op": "relu", "name": "r", "inputs": [[0, 0, 0]]}], "heads": [[7,0,0]]}'), "head")
  expect_error(mx.symbol.load.json('{"nodes": [{"op": "null", "name": "a", "inputs": []},
     {"op": "FullyConnected", "name": "f", "attrs": {"num_hidden": "2"}, "inputs": [[0, 0, 0]]}],
     "heads": [[1,0,0]]}'), "takes 3 inputs")
  expect_error(mx.symbol.load(tempfile()), "no such file")
})

test_that("bad symbol construction gives errors", {
  d <- mx.symbol.Variable("data")
  expect_error(mx.symbol.Variable(""), "non-empty")
  expect_error(mx.symbol.FullyConnected(d), "num_hidden")
  expect_error(mx.symbol.FullyConnected(d, num_hidden = 2, foo = 1), "no parameter 'foo'")
  expect_error(mx.symbol.FullyConnected(d, num_hidden = 2, wrong = d), "no input 'wrong'")
  expect_error(mx.symbol.Activation(d, act_type = "nope"), "act_type")
  expect_error(mx.symbol.FullyConnected(data = 3, num_hidden = 2), "MXSymbol")
})

test_that("print shows the graph", {
  out <- capture.output(print(mlp()))
  expect_true(any(grepl("FullyConnected:fc1", out)))
  expect_true(any(grepl("sm_output", out)))
})
