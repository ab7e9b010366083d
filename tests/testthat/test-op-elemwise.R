# Element-wise op families (src/engine/ops/elemwise_unary.c,
# elemwise_binary.c, elemwise_scalar.c): forward against plain R in double
# precision, finite-difference gradients on three shapes, broadcasting,
# MXNet's quirks (mod, round/rint, clip bounds), and errors.

set.seed(20240611)

shapes3 <- list(7L, c(3L, 4L), c(2L, 3L, 5L)) # R dims

rnd <- function(dim, lo = -1, hi = 1) array(runif(prod(dim), lo, hi), dim = dim)
# Values with lo <= |x| <= hi and random signs (away from kinks at 0).
away <- function(dim, lo = 0.2, hi = 1) {
  x <- rnd(dim, lo, hi)
  x * sample(c(-1, 1), length(x), replace = TRUE)
}

# ---- R references for broadcasting (R dims: align the FIRST dims) ----
pad_dim <- function(d, n) c(d, rep(1L, n - length(d)))
bcast_dim <- function(a, b) {
  n <- max(length(a), length(b))
  pmax(pad_dim(a, n), pad_dim(b, n))
}
bcast_to <- function(x, odim) {
  xd <- dim(x)
  if (is.null(xd)) xd <- length(x)
  xd <- pad_dim(xd, length(odim))
  idx <- arrayInd(seq_len(prod(odim)), odim) - 1
  idx[, xd == 1] <- 0
  lin <- 1 + as.vector(idx %*% cumprod(c(1, head(xd, -1))))
  array(as.vector(x)[lin], dim = odim)
}
# Sum g (dims odim) over the dims that x (dims xdim) broadcasts.
reduce_to <- function(g, xdim) {
  odim <- dim(g)
  xd <- pad_dim(xdim, length(odim))
  keep <- which(xd == odim)
  r <- if (length(keep) == length(odim)) g else if (length(keep)) apply(g, keep, sum) else sum(g)
  array(r, dim = xdim)
}

# ---- unary ----

unary <- list(
  sqrt = list(f = sqrt, x = function(d) rnd(d, 0.5, 2)),
  rsqrt = list(f = function(x) 1 / sqrt(x), x = function(d) rnd(d, 0.5, 2)),
  cbrt = list(f = function(x) sign(x) * abs(x)^(1 / 3), x = function(d) away(d, 0.5, 2)),
  rcbrt = list(f = function(x) 1 / (sign(x) * abs(x)^(1 / 3)), x = function(d) away(d, 0.5, 2)),
  exp = list(f = exp, x = rnd),
  expm1 = list(f = expm1, x = rnd),
  log = list(f = log, x = function(d) rnd(d, 0.5, 2)),
  log1p = list(f = log1p, x = function(d) rnd(d, -0.5, 1)),
  log2 = list(f = log2, x = function(d) rnd(d, 0.5, 2)),
  log10 = list(f = log10, x = function(d) rnd(d, 0.5, 2)),
  abs = list(f = abs, x = away),
  square = list(f = function(x) x^2, x = rnd),
  reciprocal = list(f = function(x) 1 / x, x = function(d) away(d, 0.5, 2)),
  negative = list(f = function(x) -x, x = rnd),
  tanh = list(f = tanh, x = function(d) rnd(d, -2, 2)),
  sigmoid = list(f = function(x) 1 / (1 + exp(-x)), x = function(d) rnd(d, -3, 3)),
  relu = list(f = function(x) pmax(x, 0), x = away),
  softsign = list(f = function(x) x / (1 + abs(x)), x = away),
  sin = list(f = sin, x = function(d) rnd(d, -3, 3)),
  cos = list(f = cos, x = function(d) rnd(d, -3, 3)),
  tan = list(f = tan, x = rnd),
  arcsin = list(f = asin, x = function(d) rnd(d, -0.8, 0.8)),
  arccos = list(f = acos, x = function(d) rnd(d, -0.8, 0.8)),
  arctan = list(f = atan, x = function(d) rnd(d, -3, 3)),
  sinh = list(f = sinh, x = rnd),
  cosh = list(f = cosh, x = rnd),
  arcsinh = list(f = asinh, x = function(d) rnd(d, -3, 3)),
  arccosh = list(f = acosh, x = function(d) rnd(d, 1.2, 3)),
  arctanh = list(f = atanh, x = function(d) rnd(d, -0.8, 0.8)),
  degrees = list(f = function(x) x * 180 / pi, x = rnd),
  radians = list(f = function(x) x * pi / 180, x = rnd),
  erf = list(f = function(x) 2 * pnorm(x * sqrt(2)) - 1, x = rnd)
)

test_that("unary ops match R and have correct gradients", {
  for (op in names(unary)) {
    u <- unary[[op]]
    x <- u$x(c(4L, 5L))
    out <- op_forward(op, list(x))[[1]]
    expect_equal(dim(out), dim(x), info = op)
    expect_equal(as.vector(out), as.vector(u$f(x)), tolerance = 1e-12, info = op)
    for (d in shapes3) op_check_grad(op, list(u$x(d)))
  }
})

test_that("unary ops run in float32", {
  for (op in c("exp", "tanh", "sigmoid", "relu", "sqrt", "log", "abs")) {
    x <- rnd(c(6L, 7L), 0.5, 2)
    out <- op_forward(op, list(x), dtype = "float32")[[1]]
    expect_equal(as.vector(out), as.vector(unary[[op]]$f(x)), tolerance = 1e-6, info = op)
  }
})

test_that("rounding ops follow MXNet (round halves away from 0, rint halves down)", {
  x <- c(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1.2, -1.7, 3.9, -3.9)
  f <- function(op) as.vector(op_forward(op, list(x))[[1]])
  expect_equal(f("round"), c(-3, -2, -1, 1, 2, 3, 1, -2, 4, -4))
  expect_equal(f("rint"), c(-3, -2, -1, 0, 1, 2, 1, -2, 4, -4))
  expect_equal(f("floor"), floor(x))
  expect_equal(f("ceil"), ceiling(x))
  expect_equal(f("trunc"), trunc(x))
  expect_equal(f("fix"), trunc(x))
  expect_equal(f("sign"), sign(x))
  expect_equal(as.vector(op_forward("sign", list(c(0, -0.1, NaN)))[[1]]), c(0, -1, 0))
  expect_equal(as.vector(op_forward("logical_not", list(c(0, 2, -1, 0)))[[1]]), c(1, 0, 0, 1))
})

test_that("relu propagates NaN like MXNet", {
  out <- as.vector(op_forward("relu", list(c(NaN, -1, 2)))[[1]])
  expect_true(is.nan(out[1]))
  expect_equal(out[2:3], c(0, 2))
})

# ---- executor helpers (ops without a gradient are only differentiable in a graph) ----
sym_op <- function(op, inputs, params = list()) mx.symbol.internal.create(op, inputs, params)
# Forward (train) and backward of a bound symbol: list(out, grads).
exec_fb <- function(sym, args, head) {
  ex <- mx.symbol.bind(sym, mx.cpu(), lapply(args, mx.nd.array, dtype = "float64"),
                       grad.reqs = "write")
  mx.exec.forward(ex, is.train = TRUE)
  out <- as.array(ex$outputs[[1]])
  mx.exec.backward(ex, mx.nd.array(head, dtype = "float64"))
  list(out = out, grads = lapply(ex$grad.arrays, as.array), memory = mx.exec.memory(ex))
}

test_that("ops without a gradient contribute zero gradient in a graph", {
  x <- away(c(3L, 4L))
  w <- rnd(c(3L, 4L))
  v <- mx.symbol.Variable("x")
  for (op in c("floor", "ceil", "round", "rint", "trunc", "fix", "sign", "BlockGrad",
               "stop_gradient", "zeros_like", "ones_like", "logical_not")) {
    # x + op(x): the gradient of x is the head gradient alone
    r <- exec_fb(sym_op("elemwise_add", list(v, sym_op(op, list(v)))), list(x = x), w)
    expect_equal(as.vector(r$grads[[1]]), as.vector(w), info = op)
  }
  for (op in c("_greater", "broadcast_equal", "_logical_or")) {
    r <- exec_fb(sym_op("elemwise_add", list(v, sym_op(op, list(v, v)))), list(x = x), w)
    expect_equal(as.vector(r$grads[[1]]), as.vector(w), info = op)
  }
  r <- exec_fb(sym_op("elemwise_add", list(v, sym_op("_lesser_scalar", list(v), list(scalar = 0)))),
               list(x = x), w)
  expect_equal(as.vector(r$out), as.vector(x + (x < 0)))
  expect_equal(as.vector(r$grads[[1]]), as.vector(w))
})

test_that("a graph of element-wise ops has correct gradients (planner, in-place)", {
  x <- rnd(c(3L, 4L))
  y <- rnd(c(3L, 1L), 0.5, 1.5)
  w <- rnd(c(3L, 4L))
  vx <- mx.symbol.Variable("x")
  vy <- mx.symbol.Variable("y")
  a <- sym_op("tanh", list(vx))
  b <- sym_op("broadcast_mul", list(a, vy))
  c <- sym_op("_minus_scalar", list(sym_op("exp", list(b))), list(scalar = 1.2))
  d <- sym_op("relu", list(sym_op("elemwise_sub", list(c, vx))))
  e <- sym_op("sigmoid", list(sym_op("_mul_scalar", list(d), list(scalar = 2))))
  out <- sym_op("add_n", list(e, sym_op("square", list(vx)), sym_op("negative", list(a))),
                list(num_args = 3))
  f <- function(x, y) {
    A <- tanh(x)
    D <- pmax(exp(A * bcast_to(y, dim(x))) - 1.2 - x, 0)
    1 / (1 + exp(-2 * D)) + x^2 - A
  }
  r <- exec_fb(out, list(x = x, y = y), w)
  expect_gt(r$memory[["inplace"]], 0) # the planner reused buffers in place
  expect_equal(r$out, f(x, y), tolerance = 1e-12)
  L <- function(x, y) sum(w * f(x, y))
  eps <- 1e-6
  nx <- vapply(seq_along(x), function(j) {
    xp <- x; xp[j] <- xp[j] + eps; xm <- x; xm[j] <- xm[j] - eps
    (L(xp, y) - L(xm, y)) / (2 * eps)
  }, 0)
  ny <- vapply(seq_along(y), function(j) {
    yp <- y; yp[j] <- yp[j] + eps; ym <- y; ym[j] <- ym[j] - eps
    (L(x, yp) - L(x, ym)) / (2 * eps)
  }, 0)
  expect_equal(as.vector(r$grads[[1]]), nx, tolerance = 1e-6)
  expect_equal(as.vector(r$grads[[2]]), ny, tolerance = 1e-6)
})

test_that("copy-like ops: identity, BlockGrad, zeros_like, ones_like, Cast", {
  x <- rnd(c(3L, 4L, 2L))
  for (op in c("_copy", "identity", "BlockGrad", "stop_gradient")) {
    expect_equal(op_forward(op, list(x))[[1]], x, info = op)
  }
  expect_equal(op_forward("zeros_like", list(x))[[1]], array(0, dim(x)))
  expect_equal(op_forward("ones_like", list(x))[[1]], array(1, dim(x)))
  for (d in shapes3) op_check_grad("identity", list(rnd(d)))
  w <- rnd(dim(x))
  expect_equal(op_backward("_copy", list(x), list(w))[[1]], w)

  x3 <- array(c(1 / 3, 2 / 3, 1e-3, -7.1), c(2L, 2L))
  f32 <- op_forward("Cast", list(x3), list(dtype = "float32"))[[1]]
  expect_equal(dim(f32), dim(x3))
  expect_true(all(f32 != x3)) # rounded to float32
  expect_equal(f32, x3, tolerance = 1e-7)
  expect_equal(op_forward("cast", list(x3), list(dtype = "float64"))[[1]], x3)
  op_check_grad("Cast", list(rnd(c(3L, 2L))), list(dtype = "float64"))
})

test_that("clip clips and passes the gradient inside [a_min, a_max]", {
  x <- array(seq(-1.95, 1.95, length.out = 24), c(4L, 6L))
  p <- list(a_min = -0.5, a_max = 1.25)
  out <- op_forward("clip", list(x), p)[[1]]
  expect_equal(out, pmin(pmax(x, -0.5), 1.25))
  w <- rnd(dim(x))
  g <- op_backward("clip", list(x), list(w), p)[[1]]
  expect_equal(g, w * (x >= -0.5 & x <= 1.25))
  # at the bounds themselves the gradient passes (MXNet: a_min <= x <= a_max)
  g2 <- op_backward("clip", list(c(-0.5, 1.25, 2)), list(c(1, 1, 1)), p)[[1]]
  expect_equal(as.vector(g2), c(1, 1, 0))
  for (d in shapes3) op_check_grad("clip", list(away(d, 0.6, 1.2)), list(a_min = -0.5, a_max = 0.5))
  expect_op_error("clip", list(x), list(a_max = 1))
  expect_op_error("clip", list(x), list(a_min = 0))
})

test_that("hard_sigmoid matches max(0, min(1, alpha x + beta))", {
  x <- rnd(c(5L, 4L), -4, 4)
  out <- op_forward("hard_sigmoid", list(x))[[1]]
  expect_equal(out, pmin(pmax(0.2 * x + 0.5, 0), 1), tolerance = 1e-7)
  out <- op_forward("hard_sigmoid", list(x), list(alpha = 0.5, beta = 0.25))[[1]]
  expect_equal(out, pmin(pmax(0.5 * x + 0.25, 0), 1))
  # away from the kinks at x = -2.5 and 2.5
  for (d in shapes3) op_check_grad("hard_sigmoid", list(away(d, 0.1, 2)))
})

# ---- binary, same shape ----

binary <- list(
  elemwise_add = list(f = `+`),
  elemwise_sub = list(f = `-`),
  elemwise_mul = list(f = `*`),
  elemwise_div = list(f = `/`, b = function(d) away(d, 0.5, 2)),
  `_mod` = list(f = `%%`, a = function(d) away(d, 0.3, 1.7), b = function(d) rnd(d, 2, 3)),
  `_power` = list(f = `^`, a = function(d) rnd(d, 0.5, 2), b = function(d) rnd(d, -1.5, 1.5)),
  `_maximum` = list(f = pmax),
  `_minimum` = list(f = pmin),
  `_hypot` = list(f = function(a, b) sqrt(a^2 + b^2))
)
bcast_name <- c(elemwise_add = "broadcast_add", elemwise_sub = "broadcast_sub",
                elemwise_mul = "broadcast_mul", elemwise_div = "broadcast_div",
                `_mod` = "broadcast_mod", `_power` = "broadcast_power",
                `_maximum` = "broadcast_maximum", `_minimum` = "broadcast_minimum",
                `_hypot` = "broadcast_hypot")
gen <- function(e, side) if (is.null(e[[side]])) rnd else e[[side]]

test_that("same-shape binary ops match R and have correct gradients", {
  for (op in names(binary)) {
    e <- binary[[op]]
    a <- gen(e, "a")(c(4L, 3L))
    b <- gen(e, "b")(c(4L, 3L))
    out <- op_forward(op, list(a, b))[[1]]
    expect_equal(out, e$f(a, b), tolerance = 1e-12, info = op)
    for (d in shapes3) op_check_grad(op, list(gen(e, "a")(d), gen(e, "b")(d)))
  }
})

test_that("binary aliases resolve", {
  a <- rnd(c(2L, 3L))
  b <- rnd(c(2L, 3L), 1, 2)
  for (al in c("_plus", "_add", "_Plus")) expect_equal(op_forward(al, list(a, b))[[1]], a + b)
  for (al in c("_minus", "_sub", "_Minus")) expect_equal(op_forward(al, list(a, b))[[1]], a - b)
  for (al in c("_mul", "_Mul")) expect_equal(op_forward(al, list(a, b))[[1]], a * b)
  for (al in c("_div", "_Div")) expect_equal(op_forward(al, list(a, b))[[1]], a / b)
  expect_equal(op_forward("_Mod", list(a, b))[[1]], a %% b)
  expect_equal(op_forward("_Power", list(b, a))[[1]], b^a)
  expect_equal(op_forward("_Maximum", list(a, b))[[1]], pmax(a, b))
  expect_equal(op_forward("_Minimum", list(a, b))[[1]], pmin(a, b))
  expect_equal(op_forward("broadcast_plus", list(a, b))[[1]], a + b)
  expect_equal(op_forward("broadcast_minus", list(a, b))[[1]], a - b)
  expect_equal(op_forward("ElementWiseSum", list(a, b), list(num_args = 2))[[1]], a + b)
})

test_that("mod follows MXNet: sign of the divisor, x mod 0 = 0", {
  a <- c(5.5, -5.5, 5.5, -5.5, 3, -3, 0, 4)
  b <- c(2, 2, -2, -2, 1.5, 1.5, 3, 0)
  out <- as.vector(op_forward("_mod", list(a, b))[[1]])
  expect_equal(out, c(1.5, 0.5, -0.5, -1.5, 0, 0, 0, 0))
  expect_equal(out[1:7], (a %% b)[1:7])
  # gradients: d/da = 1, d/db = -floor(a / b)
  g <- op_backward("_mod", list(a[1:4], b[1:4]), list(rep(1, 4)))
  expect_equal(as.vector(g[[1]]), rep(1, 4))
  expect_equal(as.vector(g[[2]]), -floor(a[1:4] / b[1:4]))
})

test_that("maximum / minimum send the gradient to lhs on ties", {
  a <- c(1, 2, 3)
  b <- c(1, 1, 4)
  g <- op_backward("_maximum", list(a, b), list(c(1, 1, 1)))
  expect_equal(as.vector(g[[1]]), c(1, 1, 0))
  expect_equal(as.vector(g[[2]]), c(0, 0, 1))
  g <- op_backward("_minimum", list(a, b), list(c(1, 1, 1)))
  expect_equal(as.vector(g[[1]]), c(1, 0, 1))
  expect_equal(as.vector(g[[2]]), c(0, 1, 0))
})

cmp <- list(`_equal` = `==`, `_not_equal` = `!=`, `_greater` = `>`, `_greater_equal` = `>=`,
            `_lesser` = `<`, `_lesser_equal` = `<=`,
            `_logical_and` = function(a, b) a != 0 & b != 0,
            `_logical_or` = function(a, b) a != 0 | b != 0,
            `_logical_xor` = function(a, b) xor(a != 0, b != 0))

test_that("comparisons and logical ops give 0/1 in the input dtype", {
  a <- array(c(1, 2, 3, 0, -1, 2.5), c(3L, 2L))
  b <- array(c(3, 2, 1, 0, 0, 2.5), c(3L, 2L))
  for (op in names(cmp)) {
    ref <- array(as.numeric(cmp[[op]](a, b)), dim(a))
    expect_equal(op_forward(op, list(a, b))[[1]], ref, info = op)
    bop <- sub("^_", "broadcast_", op)
    expect_equal(op_forward(bop, list(a, b))[[1]], ref, info = bop)
    expect_equal(op_forward(op, list(a, b), dtype = "float32")[[1]], ref, info = op)
  }
  # broadcast comparison against a row
  r <- op_forward("broadcast_greater", list(a, array(c(1, 2, 3), c(3L, 1L))))[[1]]
  expect_equal(r, array(as.numeric(a > c(1, 2, 3)), dim(a)))
})

# ---- broadcasting ----

bcases <- list(
  list(c(3L, 1L), c(3L, 4L)),
  list(c(3L, 4L), c(3L, 1L)),
  list(c(1L, 5L, 2L), c(4L, 1L, 2L)),
  list(c(2L, 3L, 4L), 1L),
  list(1L, c(2L, 3L)),
  list(c(5L), c(5L, 3L)),
  list(c(1L, 4L), c(3L, 1L)),
  list(c(2L, 3L, 4L), c(2L, 1L, 4L)),
  list(c(4L, 3L), c(4L, 3L))
)

test_that("broadcast ops match R references, forward and backward", {
  for (op in names(binary)) {
    e <- binary[[op]]
    bop <- bcast_name[[op]]
    for (cs in bcases) {
      a <- gen(e, "a")(cs[[1]])
      b <- gen(e, "b")(cs[[2]])
      od <- bcast_dim(cs[[1]], cs[[2]])
      ref <- e$f(bcast_to(a, od), bcast_to(b, od))
      out <- op_forward(bop, list(a, b))[[1]]
      info <- sprintf("%s %s with %s", bop, deparse(cs[[1]]), deparse(cs[[2]]))
      expect_equal(as.vector(out), as.vector(ref), tolerance = 1e-12, info = info)
      expect_equal(prod(dim(out)), prod(od), info = info)
    }
  }
})

test_that("broadcast gradients sum over the broadcast axes", {
  for (cs in bcases) {
    a <- rnd(cs[[1]])
    b <- rnd(cs[[2]], 0.5, 2)
    od <- bcast_dim(cs[[1]], cs[[2]])
    w <- rnd(od)
    A <- bcast_to(a, od)
    B <- bcast_to(b, od)
    g <- op_backward("broadcast_add", list(a, b), list(w))
    expect_equal(as.vector(g[[1]]), as.vector(reduce_to(w, cs[[1]])))
    expect_equal(as.vector(g[[2]]), as.vector(reduce_to(w, cs[[2]])))
    g <- op_backward("broadcast_sub", list(a, b), list(w))
    expect_equal(as.vector(g[[2]]), -as.vector(reduce_to(w, cs[[2]])))
    g <- op_backward("broadcast_mul", list(a, b), list(w))
    expect_equal(as.vector(g[[1]]), as.vector(reduce_to(w * B, cs[[1]])))
    expect_equal(as.vector(g[[2]]), as.vector(reduce_to(w * A, cs[[2]])))
    g <- op_backward("broadcast_div", list(a, b), list(w))
    expect_equal(as.vector(g[[1]]), as.vector(reduce_to(w / B, cs[[1]])))
    expect_equal(as.vector(g[[2]]), as.vector(reduce_to(-w * A / B^2, cs[[2]])))
  }
})

test_that("broadcast ops pass finite-difference gradient checks", {
  for (op in names(binary)) {
    e <- binary[[op]]
    for (cs in bcases[c(1, 3, 4, 7)]) {
      op_check_grad(bcast_name[[op]], list(gen(e, "a")(cs[[1]]), gen(e, "b")(cs[[2]])))
    }
  }
})

test_that("large broadcasts (several parallel chunks) are right", {
  a <- rnd(c(64L, 700L))
  for (bd in list(c(64L, 1L), c(1L, 700L), 1L, c(64L, 700L))) {
    b <- rnd(bd)
    out <- op_forward("broadcast_mul", list(a, b))[[1]]
    expect_equal(as.vector(out), as.vector(a * bcast_to(b, dim(a))))
    w <- rnd(dim(a))
    g <- op_backward("broadcast_mul", list(a, b), list(w))
    expect_equal(as.vector(g[[2]]), as.vector(reduce_to(w * a, bd)), tolerance = 1e-10)
    g <- op_backward("broadcast_add", list(b, a), list(w))
    expect_equal(as.vector(g[[1]]), as.vector(reduce_to(w, bd)), tolerance = 1e-10)
  }
  x <- rnd(c(50000L))
  y <- rnd(c(50000L))
  expect_equal(op_forward("elemwise_add", list(x, y))[[1]], array(x + y))
  expect_equal(op_forward("tanh", list(x), dtype = "float32")[[1]], array(tanh(x)),
               tolerance = 1e-6)
})

test_that("add_n sums its inputs and copies the gradient", {
  xs <- lapply(1:4, function(i) rnd(c(3L, 5L)))
  out <- op_forward("add_n", xs, list(num_args = 4))[[1]]
  expect_equal(out, Reduce(`+`, xs))
  expect_equal(op_forward("add_n", xs[1], list(num_args = 1))[[1]], xs[[1]])
  big <- lapply(1:3, function(i) rnd(20000L))
  expect_equal(op_forward("add_n", big, list(num_args = 3))[[1]], array(Reduce(`+`, big)))
  w <- rnd(c(3L, 5L))
  g <- op_backward("add_n", xs[1:3], list(w), list(num_args = 3))
  for (k in 1:3) expect_equal(g[[k]], w)
  for (d in shapes3) op_check_grad("add_n", list(rnd(d), rnd(d), rnd(d)), list(num_args = 3))
  expect_op_error("add_n", xs, list(num_args = 3))
})

# ---- scalar ----

scalar_ops <- list(
  `_plus_scalar` = list(f = function(x, s) x + s),
  `_minus_scalar` = list(f = function(x, s) x - s),
  `_rminus_scalar` = list(f = function(x, s) s - x),
  `_mul_scalar` = list(f = function(x, s) x * s),
  `_div_scalar` = list(f = function(x, s) x / s),
  `_rdiv_scalar` = list(f = function(x, s) s / x, x = function(d) away(d, 0.5, 2)),
  `_mod_scalar` = list(f = function(x, s) x %% s, x = function(d) away(d, 0.3, 2.2)),
  `_rmod_scalar` = list(f = function(x, s) s %% x, x = function(d) rnd(d, 2.1, 2.4), s = 7.3),
  `_power_scalar` = list(f = function(x, s) x^s, x = function(d) rnd(d, 0.5, 2)),
  `_rpower_scalar` = list(f = function(x, s) s^x),
  `_maximum_scalar` = list(f = pmax, s = 0.1, x = function(d) 0.1 + away(d)),
  `_minimum_scalar` = list(f = pmin, s = 0.1, x = function(d) 0.1 + away(d)),
  `_hypot_scalar` = list(f = function(x, s) sqrt(x^2 + s^2)),
  smooth_l1 = list(f = function(x, s) ifelse(abs(x) < 1 / s^2, 0.5 * (s * x)^2, abs(x) - 0.5 / s^2),
                   s = 2, x = function(d) away(d, 0.3, 1) * sample(c(0.2, 1), prod(d), TRUE))
)

test_that("scalar ops match R and have correct gradients", {
  for (op in names(scalar_ops)) {
    e <- scalar_ops[[op]]
    s <- if (is.null(e$s)) 2.5 else e$s
    gx <- if (is.null(e$x)) rnd else e$x
    x <- gx(c(5L, 4L))
    out <- op_forward(op, list(x), list(scalar = s))[[1]]
    expect_equal(out, e$f(x, s), tolerance = 1e-12, info = op)
    for (d in shapes3) op_check_grad(op, list(gx(d)), list(scalar = s))
  }
})

test_that("scalar comparisons, aliases, is_int and mod by zero", {
  x <- c(-1, 0, 0.5, 2, 2)
  sc <- list(`_equal_scalar` = `==`, `_not_equal_scalar` = `!=`, `_greater_scalar` = `>`,
             `_greater_equal_scalar` = `>=`, `_lesser_scalar` = `<`, `_lesser_equal_scalar` = `<=`)
  for (op in names(sc)) {
    expect_equal(as.vector(op_forward(op, list(x), list(scalar = 2))[[1]]),
                 as.numeric(sc[[op]](x, 2)), info = op)
  }
  expect_equal(as.vector(op_forward("_logical_and_scalar", list(x), list(scalar = 1))[[1]]),
               as.numeric(x != 0))
  expect_equal(as.vector(op_forward("_PlusScalar", list(x), list(scalar = 3))[[1]]), x + 3)
  expect_equal(as.vector(op_forward("_RMinusScalar", list(x), list(scalar = 3))[[1]]), 3 - x)
  expect_equal(as.vector(op_forward("_mul_scalar", list(x), list(scalar = 3, is_int = FALSE))[[1]]),
               x * 3)
  expect_equal(as.vector(op_forward("_mod_scalar", list(x), list(scalar = 0))[[1]]), rep(0, 5))
  expect_equal(as.vector(op_forward("_rmod_scalar", list(c(2, -2, 0)), list(scalar = 5))[[1]]),
               c(1, -1, 0))
  # the scalar is converted to the data dtype (float32 here)
  y <- op_forward("_plus_scalar", list(c(0, 1)), list(scalar = 0.1), dtype = "float32")[[1]]
  expect_equal(as.vector(y), c(0.1, 1.1), tolerance = 1e-7)
})

# ---- errors ----

test_that("bad shapes and parameters give errors", {
  expect_op_error("elemwise_add", list(rnd(c(3L, 4L)), rnd(c(4L, 3L))))
  expect_op_error("elemwise_mul", list(rnd(c(3L, 4L)), rnd(c(3L, 1L))))
  expect_op_error("broadcast_add", list(rnd(c(3L, 4L)), rnd(c(2L, 4L))), "broadcast")
  expect_op_error("broadcast_mul", list(rnd(c(2L, 3L, 4L)), rnd(c(2L, 4L))))
  expect_op_error("clip", list(rnd(3L)), list(a_min = 0))
  expect_op_error("Cast", list(rnd(3L)))
  expect_op_error("Cast", list(rnd(3L)), list(dtype = "float99"))
  expect_op_error("exp", list(rnd(3L)), list(scalar = 1))
  expect_op_error("add_n", list(rnd(3L), rnd(4L)), list(num_args = 2))
  expect_op_error("_plus_scalar", list(rnd(3L)), list(scalar = "abc"))
})
