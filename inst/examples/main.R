# The main job: train LeNet on the MNIST digits bundled with symnet
# (8,000 training and 2,000 test images) on the CPU, with a progress bar,
# then report the test accuracy.
library(symnet)

mnist <- mx.data.mnist()
cat(sprintf("MNIST: %d training and %d test digits\n", dim(mnist$train.x)[4], dim(mnist$test.x)[4]))

data <- mx.symbol.Variable("data")
conv1 <- mx.symbol.Convolution(data, kernel = c(5, 5), num_filter = 20, name = "conv1")
tanh1 <- mx.symbol.Activation(conv1, act_type = "tanh")
pool1 <- mx.symbol.Pooling(tanh1, pool_type = "max", kernel = c(2, 2), stride = c(2, 2))
conv2 <- mx.symbol.Convolution(pool1, kernel = c(5, 5), num_filter = 50, name = "conv2")
tanh2 <- mx.symbol.Activation(conv2, act_type = "tanh")
pool2 <- mx.symbol.Pooling(tanh2, pool_type = "max", kernel = c(2, 2), stride = c(2, 2))
flat <- mx.symbol.Flatten(pool2)
fc1 <- mx.symbol.FullyConnected(flat, num_hidden = 500, name = "fc1")
tanh3 <- mx.symbol.Activation(fc1, act_type = "tanh")
fc2 <- mx.symbol.FullyConnected(tanh3, num_hidden = 10, name = "fc2")
lenet <- mx.symbol.SoftmaxOutput(fc2, name = "softmax")

mx.set.seed(0)
set.seed(0)
t0 <- proc.time()[["elapsed"]]
model <- mx.model.FeedForward.create(
  lenet, X = mnist$train.x, y = mnist$train.y, ctx = mx.cpu(), num.round = 8,
  array.batch.size = 100, learning.rate = 0.1, momentum = 0.9, wd = 1e-5,
  initializer = mx.init.Xavier(factor_type = "in", magnitude = 2.34),
  eval.metric = mx.metric.accuracy,
  eval.data = list(data = mnist$test.x, label = mnist$test.y))
secs <- proc.time()[["elapsed"]] - t0

prob <- predict(model, mnist$test.x)
pred <- max.col(t(prob)) - 1
acc <- mean(pred == mnist$test.y)
cat(sprintf("\nLeNet trained in %.1f s; test accuracy %.4f on %d digits\n", secs, acc, length(pred)))
print(table(predicted = pred, actual = mnist$test.y))
