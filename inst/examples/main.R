# The main job until the training workflow lands: NDArrays, a symbolic
# MLP with shape inference, one forward/backward pass, gradient and memory
# planning statistics.
library(symnet)
cat("symnet", as.character(packageVersion("symnet")), "\n\n")

a <- mx.nd.array(matrix(1:6, 2, 3))
b <- mx.nd.ones(c(2, 3)) * 2
cat("a * b + 1 =\n")
print(a * b + 1)

data <- mx.symbol.Variable("data")
fc1 <- mx.symbol.FullyConnected(data, num_hidden = 128, name = "fc1")
act1 <- mx.symbol.Activation(fc1, act_type = "relu", name = "relu1")
fc2 <- mx.symbol.FullyConnected(act1, num_hidden = 10, name = "fc2")
net <- mx.symbol.SoftmaxOutput(fc2, name = "softmax")
cat("\narguments:", paste(arguments(net), collapse = ", "), "\n")
shapes <- mx.symbol.infer.shape(net, data = c(784, 64))
cat("fc1_weight shape:", shapes$arg.shapes$fc1_weight, "\n")

mx.set.seed(0)
ex <- mx.simple.bind(net, mx.cpu(), grad.req = "write", data = c(784, 64))
init <- lapply(ex$ref.arg.arrays, function(x) mx.runif(dim(x), -0.05, 0.05))
init$softmax_label <- mx.nd.array(rep(0:9, length.out = 64))
mx.exec.update.arg.arrays(ex, init, match.name = TRUE)
mx.exec.forward(ex, is.train = TRUE)
mx.exec.backward(ex)
p <- as.array(ex$ref.outputs[[1]])
cat("softmax columns sum to 1:", isTRUE(all.equal(colSums(p), rep(1, 64), tolerance = 1e-5)), "\n")
cat("|grad fc1_weight| =", sqrt(sum(as.array(ex$ref.grad.arrays$fc1_weight)^2)), "\n")
st <- mx.exec.memory(ex)
cat(sprintf("memory: planned %d bytes vs naive %d bytes (%.1fx)\n",
            st[["planned.bytes"]], st[["naive.bytes"]], st[["naive.bytes"]] / st[["planned.bytes"]]))
