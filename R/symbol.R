# Symbols: external pointers to engine graphs with class "MXSymbol".  The
# `$` members mirror the Rcpp_MXSymbol methods MXNet R scripts use.

#' Create a symbolic variable
#'
#' @param name The variable's name.
#' @param attr Optional named list of attributes, e.g. `list("__shape__" = "(1, 28, 28)")`.
#' @return An `MXSymbol`.
#' @examples
#' data <- mx.symbol.Variable("data")
#' fc <- mx.symbol.FullyConnected(data, num_hidden = 10, name = "fc1")
#' arguments(fc)
#' @export
mx.symbol.Variable <- function(name, attr = NULL) {
  if (!is.character(name) || length(name) != 1 || is.na(name) || !nzchar(name))
    stop("name must be a single non-empty string", call. = FALSE)
  s <- .Call(C_sym_variable, name)
  mx.internal.set.attr(s, attr)
  s
}

mx.internal.set.attr <- function(s, attr) {
  if (is.null(attr)) return(invisible(s))
  if (!is.list(attr) && !is.character(attr) || is.null(names(attr)) || any(names(attr) == ""))
    stop("attr must be a named list of strings", call. = FALSE)
  for (k in names(attr)) .Call(C_sym_attr_set, s, k, as.character(attr[[k]]))
  invisible(s)
}

#' Is this a symbol?
#' @param x An object.
#' @return `TRUE` for an `MXSymbol`.
#' @export
is.mx.symbol <- function(x) inherits(x, "MXSymbol")

# Creates an op node from named/positional inputs and R-style parameters.
# Used by the generated mx.symbol.* wrappers.
mx.symbol.internal.create <- function(op, inputs = list(), params = list(), name = NULL, attr = NULL) {
  # Symbols given through `...` are inputs too.
  is.sym <- vapply(params, is.mx.symbol, TRUE)
  if (any(is.sym)) {
    inputs <- c(inputs, params[is.sym])
    params <- params[!is.sym]
  }
  inputs <- inputs[!vapply(inputs, is.null, TRUE)]
  for (i in seq_along(inputs))
    if (!is.mx.symbol(inputs[[i]]))
      stop("input '", names(inputs)[[i]], "' of ", op, " must be an MXSymbol", call. = FALSE)
  kv <- mx.internal.params(params)
  if (!is.null(attr)) {
    kv$keys <- c(kv$keys, names(attr))
    kv$vals <- c(kv$vals, vapply(attr, as.character, ""))
  }
  in.names <- names(inputs)
  if (is.null(in.names)) in.names <- rep("", length(inputs))
  if (!is.null(name) && (!is.character(name) || length(name) != 1))
    stop("name must be a single string", call. = FALSE)
  .Call(C_sym_create, op, name, kv$keys, kv$vals, in.names, unname(inputs))
}

#' Group symbols into one symbol with several outputs
#' @param ... Symbols, or one list of symbols.
#' @return An `MXSymbol` whose outputs are those of the arguments.
#' @export
mx.symbol.Group <- function(...) {
  syms <- list(...)
  if (length(syms) == 1 && is.list(syms[[1]])) syms <- syms[[1]]
  .Call(C_sym_group, syms)
}

#' Concatenate symbols along an axis
#'
#' @param data A list of symbols.
#' @param num.args The number of symbols (defaults to `length(data)`).
#' @param dim The axis in C order (MXNet convention; default 1, the channel axis).
#' @param name The node's name.
#' @return An `MXSymbol`.
#' @export
mx.symbol.concat <- function(data, num.args = length(data), dim = NULL, name = NULL) {
  if (is.mx.symbol(data)) data <- list(data)
  if (num.args != length(data)) stop("num.args must equal the number of symbols", call. = FALSE)
  names(data) <- NULL
  mx.symbol.internal.create("concat", data, list(num_args = num.args, dim = dim), name)
}

#' @rdname mx.symbol.concat
#' @export
mx.symbol.Concat <- function(data, num.args = length(data), dim = NULL, name = NULL) {
  warning("mx.symbol.Concat is deprecated; use mx.symbol.concat", call. = FALSE)
  mx.symbol.concat(data, num.args, dim, name)
}

#' Query symbols
#'
#' `arguments` lists the inputs to bind (weights, data, labels), `outputs`
#' the outputs, `internals` a symbol with every internal output, and
#' `children` the symbol of the head node's inputs.
#'
#' @param x An `MXSymbol`.
#' @return A character vector (`arguments`, `outputs`) or an `MXSymbol`.
#' @name mx.symbol.queries
NULL

#' @rdname mx.symbol.queries
#' @export
arguments <- function(x) {
  if (!is.mx.symbol(x)) stop("arguments() needs an MXSymbol", call. = FALSE)
  .Call(C_sym_arguments, x)
}

#' @rdname mx.symbol.queries
#' @export
outputs <- function(x) {
  if (!is.mx.symbol(x)) stop("outputs() needs an MXSymbol", call. = FALSE)
  .Call(C_sym_outputs, x)
}

#' @rdname mx.symbol.queries
#' @export
internals <- function(x) {
  if (!is.mx.symbol(x)) stop("internals() needs an MXSymbol", call. = FALSE)
  .Call(C_sym_internals, x)
}

#' @rdname mx.symbol.queries
#' @export
children <- function(x) {
  if (!is.mx.symbol(x)) stop("children() needs an MXSymbol", call. = FALSE)
  .Call(C_sym_children, x)
}

#' Compose a symbol by substituting its arguments
#'
#' @param x An `MXSymbol`.
#' @param ... Named symbols replacing the arguments of the same name.
#' @return A new `MXSymbol`; `x` is unchanged.
#' @examples
#' net1 <- mx.symbol.FullyConnected(mx.symbol.Variable("data"), num_hidden = 10, name = "fc1")
#' net2 <- mx.symbol.FullyConnected(mx.symbol.Variable("fc3_data"), num_hidden = 5, name = "fc3")
#' composed <- mx.apply(net2, fc3_data = net1, name = "composed")
#' arguments(composed)
#' @export
mx.apply <- function(x, ...) {
  args <- list(...)
  args$name <- NULL
  if (length(args) && (is.null(names(args)) || any(names(args) == "")))
    stop("mx.apply needs named symbols, e.g. mx.apply(net, data = other)", call. = FALSE)
  .Call(C_sym_compose, x, names(args), unname(args))
}

#' @export
`[[.MXSymbol` <- function(x, i) {
  if (is.character(i)) {
    j <- match(i, outputs(x))
    if (is.na(j)) stop("the symbol has no output named '", i, "'", call. = FALSE)
    i <- j
  }
  .Call(C_sym_get_output, x, as.integer(i))
}

#' @export
length.MXSymbol <- function(x) .Call(C_sym_num_outputs, x)

#' @export
`$.MXSymbol` <- function(x, name) {
  switch(name,
    arguments = arguments(x),
    outputs = outputs(x),
    auxiliary.states = .Call(C_sym_aux, x),
    attributes = as.list(.Call(C_sym_attr_get, x)),
    as.json = function() .Call(C_sym_to_json, x),
    save = function(filename) mx.symbol.save(x, filename),
    debug.str = function() paste(format(x), collapse = "\n"),
    apply = function(kwargs) do.call(mx.apply, c(list(x), kwargs)),
    get.internals = function() internals(x),
    get.children = function() children(x),
    get.output = function(index) x[[index]],
    infer.shape = function(kwargs) do.call(mx.symbol.infer.shape, c(list(x), kwargs)),
    stop("MXSymbol has no member '", name, "'", call. = FALSE))
}

#' @export
`$<-.MXSymbol` <- function(x, name, value) {
  if (name != "attributes") stop("only $attributes can be set on an MXSymbol", call. = FALSE)
  mx.internal.set.attr(x, value)
  x
}

#' @export
format.MXSymbol <- function(x, ...) {
  nodes <- .Call(C_sym_nodes, x)
  lines <- vapply(seq_along(nodes$name), function(i) {
    op <- nodes$op[[i]]
    if (op == "null") return(paste0("Variable:", nodes$name[[i]]))
    ins <- nodes$name[nodes$inputs[[i]] + 1]
    p <- nodes$params[[i]]
    ps <- if (length(p)) paste0(" (", paste0(names(p), "=", p, collapse = ", "), ")") else ""
    paste0(op, ":", nodes$name[[i]], ps, " <- ", paste(ins, collapse = ", "))
  }, "")
  c(paste0("Symbol outputs: ", paste(outputs(x), collapse = ", ")), lines)
}

#' @export
print.MXSymbol <- function(x, ...) {
  cat(format(x), sep = "\n")
  invisible(x)
}

# Arithmetic between symbols, and between a symbol and a number.
mx.internal.sym.ops <- list(
  "+" = c("elemwise_add", "_plus_scalar", "_plus_scalar"),
  "-" = c("elemwise_sub", "_minus_scalar", "_rminus_scalar"),
  "*" = c("elemwise_mul", "_mul_scalar", "_mul_scalar"),
  "/" = c("elemwise_div", "_div_scalar", "_rdiv_scalar"),
  "^" = c("_power", "_power_scalar", "_rpower_scalar"),
  "%%" = c("_mod", "_mod_scalar", "_rmod_scalar"),
  "%/%" = c("_mod", "_mod_scalar", "_rmod_scalar"), # MXNet R maps %/% to Mod
  "==" = c("_equal", "_equal_scalar", "_equal_scalar"),
  "!=" = c("_not_equal", "_not_equal_scalar", "_not_equal_scalar"),
  ">" = c("_greater", "_greater_scalar", "_lesser_scalar"),
  ">=" = c("_greater_equal", "_greater_equal_scalar", "_lesser_equal_scalar"),
  "<" = c("_lesser", "_lesser_scalar", "_greater_scalar"),
  "<=" = c("_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar"))

#' @export
Ops.MXSymbol <- function(e1, e2) {
  if (missing(e2)) {
    if (.Generic == "-") return(mx.symbol.internal.create("negative", list(e1)))
    if (.Generic == "+") return(e1)
    stop("unary ", .Generic, " is not defined for MXSymbol", call. = FALSE)
  }
  ops <- mx.internal.sym.ops[[.Generic]]
  if (is.null(ops)) stop("operator ", .Generic, " is not defined for MXSymbol", call. = FALSE)
  s1 <- is.mx.symbol(e1)
  s2 <- is.mx.symbol(e2)
  if (s1 && s2) return(mx.symbol.internal.create(ops[[1]], list(e1, e2)))
  num <- function(x) is.numeric(x) && length(x) == 1
  if (s1 && num(e2)) return(mx.symbol.internal.create(ops[[2]], list(e1), list(scalar = e2)))
  if (s2 && num(e1)) return(mx.symbol.internal.create(ops[[3]], list(e2), list(scalar = e1)))
  stop("MXSymbol arithmetic needs two symbols or a symbol and a number", call. = FALSE)
}

#' Save and load symbols
#'
#' Symbols are stored as MXNet's symbol JSON, so files written by MXNet
#' load here and files written here load in MXNet.
#'
#' @param symbol An `MXSymbol`.
#' @param filename A file path.
#' @param json.str A JSON string.
#' @return `mx.symbol.load` and `mx.symbol.load.json` return an `MXSymbol`.
#' @name mx.symbol.save
NULL

#' @rdname mx.symbol.save
#' @export
mx.symbol.save <- function(symbol, filename) {
  if (!is.mx.symbol(symbol)) stop("symbol must be an MXSymbol", call. = FALSE)
  json <- .Call(C_sym_to_json, symbol)
  mx.internal.atomic.write(function(f) writeLines(json, f, useBytes = TRUE, sep = ""), filename)
  invisible(NULL)
}

#' @rdname mx.symbol.save
#' @export
mx.symbol.load <- function(filename) {
  filename <- path.expand(filename)
  if (!file.exists(filename)) stop("cannot open '", filename, "': no such file", call. = FALSE)
  json <- readChar(filename, file.info(filename)$size, useBytes = TRUE)
  if (is.na(json) || !nzchar(json)) stop("'", filename, "' is empty", call. = FALSE)
  mx.symbol.load.json(json)
}

#' @rdname mx.symbol.save
#' @export
mx.symbol.load.json <- function(json.str) {
  if (!is.character(json.str) || length(json.str) != 1) stop("json.str must be a single string", call. = FALSE)
  .Call(C_sym_from_json, json.str)
}

# Writes through a temporary file in the same directory, then renames it
# into place, so an interrupted write never leaves a truncated file.
mx.internal.atomic.write <- function(writer, filename) {
  filename <- path.expand(filename)
  tmp <- tempfile(paste0(".", basename(filename), "."), tmpdir = dirname(filename))
  ok <- FALSE
  on.exit(if (!ok) unlink(tmp))
  writer(tmp)
  if (!file.rename(tmp, filename)) stop("cannot write '", filename, "'", call. = FALSE)
  ok <- TRUE
  invisible(filename)
}

#' Infer the shapes of a symbol's arguments, outputs and aux states
#'
#' @param symbol An `MXSymbol`.
#' @param ... Named R dims of some arguments, e.g. `data = c(784, 100)`.
#' @return `list(arg.shapes, out.shapes, aux.shapes)` (named lists of R
#'   dims), or `NULL` when the given shapes do not determine them all.
#' @examples
#' net <- mx.symbol.FullyConnected(mx.symbol.Variable("data"), num_hidden = 10, name = "fc1")
#' mx.symbol.infer.shape(net, data = c(784, 32))$arg.shapes
#' @export
mx.symbol.infer.shape <- function(symbol, ...) {
  shapes <- list(...)
  if (length(shapes) && (is.null(names(shapes)) || any(names(shapes) == "")))
    stop("shapes must be named, e.g. data = c(28, 28, 1, 100)", call. = FALSE)
  res <- .Call(C_sym_infer, symbol, as.character(names(shapes)), unname(shapes))
  if (!res$complete) return(NULL)
  res$complete <- NULL
  res
}

# Restarts automatic naming (fullyconnected0, ...), for reproducible names.
mx.internal.name.reset <- function() invisible(.Call(C_name_reset))
