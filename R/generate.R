# The generator of R/ops-generated.R: one mx.nd.<op> (and, for the symbolic
# API, mx.symbol.<Op>) wrapper per registered op, with roxygen docs taken
# from the registry.  Run tools/gen-ops.sh after changing any op; the test
# test-ops-generated.R fails while the committed file is out of date.

mx.internal.op.info <- function() .Call(C_op_info)

# A digest of everything the wrappers are made from.
mx.internal.ops.signature <- function(info = mx.internal.op.info()) {
  f <- tempfile()
  on.exit(unlink(f))
  writeLines(deparse(info, control = c("keepNA", "keepInteger", "niceNames", "showAttributes")), f)
  unname(tools::md5sum(f))
}

# Functions written by hand, never generated.
mx.internal.handwritten <- c("mx.nd.array", "mx.nd.zeros", "mx.nd.ones", "mx.nd.copyto",
                             "mx.nd.save", "mx.nd.load", "mx.nd.dtype", "mx.nd.internal.invoke",
                             "mx.nd.internal.backward", "mx.symbol.Variable", "mx.symbol.Group",
                             "mx.symbol.concat", "mx.symbol.Concat", "mx.symbol.save", "mx.symbol.load",
                             "mx.symbol.load.json", "mx.symbol.infer.shape", "mx.symbol.bind",
                             "mx.symbol.memory.plan")

mx.internal.nd.name <- function(op) {
  if (startsWith(op, "_")) paste0("mx.nd.internal.", gsub("_", ".", substring(op, 2), fixed = TRUE))
  else paste0("mx.nd.", gsub("_", ".", op, fixed = TRUE))
}

mx.internal.doc.escape <- function(x) {
  x <- gsub("\\", "\\\\", x, fixed = TRUE)
  # roxygen reads markdown: brackets would become links
  x <- gsub("[", "\\[", x, fixed = TRUE)
  x <- gsub("]", "\\]", x, fixed = TRUE)
  x <- gsub("%", "\\%", x, fixed = TRUE)
  x <- gsub("{", "\\{", x, fixed = TRUE)
  gsub("}", "\\}", x, fixed = TRUE)
}

mx.internal.param.doc <- function(e, j) {
  type <- e$param.type[[j]]
  if (nzchar(e$param.choices[[j]]))
    type <- paste0("one of ", paste0("'", strsplit(e$param.choices[[j]], "|", fixed = TRUE)[[1]], "'",
                                     collapse = ", "))
  dflt <- if (e$param.required[[j]]) "required" else paste0("default '", e$param.default[[j]], "'")
  mx.internal.doc.escape(paste0(type, ", ", dflt, ". ", e$param.doc[[j]]))
}

mx.internal.generate.nd <- function(e) {
  fname <- mx.internal.nd.name(e$name)
  if (fname %in% mx.internal.handwritten) return(NULL)
  inputs <- if (isTRUE(e$variadic)) "data" else c(e$inputs, e$aux)
  params <- setdiff(e$param.name, "ctx") # MXNet's string ctx: the R ctx argument serves
  if (isTRUE(e$variadic)) params <- setdiff(params, "num_args")
  no.input <- length(inputs) == 0
  formals <- c(inputs, if (length(params)) paste0(params, " = NULL"), if (no.input) "ctx = NULL", "...")
  doc <- c(
    paste0("#' ", e$name, " (imperative)"),
    "#'",
    paste0("#' ", strsplit(mx.internal.doc.escape(if (nzchar(e$doc)) e$doc else e$name), "\n")[[1]]),
    "#'",
    if (isTRUE(e$variadic)) "#' @param data A list of NDArrays (or one NDArray)."
    else if (length(inputs)) paste0("#' @param ", inputs, " NDArray input '", inputs, "'."),
    if (length(params)) paste0("#' @param ", params, " ", vapply(match(params, e$param.name), function(j) mx.internal.param.doc(e, j), "")),
    if (no.input) "#' @param ctx The device of the result.",
    "#' @param ... Parameters by other spellings (`.` for `_`).",
    "#' @return An MXNDArray, or a list of them for several outputs.",
    paste0("#' @name ", fname),
    if (startsWith(e$name, "_")) "#' @keywords internal" else "#' @export")
  body.inputs <- if (isTRUE(e$variadic)) "mx.internal.variadic(data)"
                 else paste0("list(", paste(inputs, collapse = ", "), ")")
  body.params <- paste0("c(list(", paste0(params, " = ", params, collapse = ", "), "), list(...))")
  if (!length(params)) body.params <- "list(...)"
  if (isTRUE(e$variadic)) body.params <- sub("c\\(list\\(", "c(list(num_args = length(mx.internal.variadic(data)), ", body.params)
  if (isTRUE(e$variadic) && !length(params)) body.params <- "c(list(num_args = length(mx.internal.variadic(data))), list(...))"
  code <- c(
    paste0("`", fname, "` <- function(", paste(formals, collapse = ", "), ") {"),
    paste0("  mx.nd.internal.invoke(\"", e$name, "\", ", body.inputs, ", mx.internal.dedup(", body.params, ")",
           if (no.input) ", ctx" else "", ")"),
    "}")
  aliases <- strsplit(e$aliases, "|", fixed = TRUE)[[1]]
  aliases <- aliases[!startsWith(aliases, "_")]
  alias.code <- unlist(lapply(aliases, function(a) {
    an <- mx.internal.nd.name(a)
    if (an == fname || an %in% mx.internal.handwritten) return(NULL)
    c(paste0("#' @rdname ", fname), paste0("#' @name ", an), "#' @export", paste0("`", an, "` <- `", fname, "`"))
  }))
  c(doc, code, alias.code, "")
}

mx.internal.generate.sym <- function(e) {
  if (startsWith(e$name, "_")) return(NULL)
  fname <- paste0("mx.symbol.", e$name)
  if (fname %in% mx.internal.handwritten) return(NULL)
  inputs <- if (isTRUE(e$variadic)) "data" else c(e$inputs, e$aux)
  params <- e$param.name
  if (isTRUE(e$variadic)) params <- setdiff(params, "num_args")
  formals <- c(if (length(inputs)) paste0(inputs, " = NULL"), if (length(params)) paste0(params, " = NULL"),
               "name = NULL", "attr = NULL", "...")
  doc <- c(
    paste0("#' ", e$name, " (symbolic)"),
    "#'",
    paste0("#' ", strsplit(mx.internal.doc.escape(if (nzchar(e$doc)) e$doc else e$name), "\n")[[1]]),
    "#'",
    if (isTRUE(e$variadic)) "#' @param data A list of symbols."
    else if (length(inputs)) paste0("#' @param ", inputs, " MXSymbol input '", inputs, "' (a variable named <name>_", inputs, " is made when absent)."),
    if (length(params)) paste0("#' @param ", params, " ", vapply(match(params, e$param.name), function(j) mx.internal.param.doc(e, j), "")),
    "#' @param name The node's name (automatic when NULL).",
    "#' @param attr A named list of node attributes.",
    "#' @param ... Parameters by other spellings (`.` for `_`), or inputs by name.",
    "#' @return An MXSymbol.",
    paste0("#' @name ", fname),
    "#' @export")
  body.inputs <- if (isTRUE(e$variadic)) "mx.internal.variadic.sym(data)"
                 else if (length(inputs)) paste0("list(", paste0(inputs, " = ", inputs, collapse = ", "), ")")
                 else "list()"
  body.params <- if (length(params)) paste0("c(list(", paste0(params, " = ", params, collapse = ", "), "), list(...))")
                 else "list(...)"
  if (isTRUE(e$variadic))
    body.params <- paste0("c(list(num_args = length(mx.internal.variadic.sym(data))), ", body.params, ")")
  code <- c(
    paste0("`", fname, "` <- function(", paste(formals, collapse = ", "), ") {"),
    paste0("  mx.symbol.internal.create(\"", e$name, "\", ", body.inputs, ", mx.internal.dedup(", body.params, "), name, attr)"),
    "}")
  aliases <- strsplit(e$aliases, "|", fixed = TRUE)[[1]]
  aliases <- aliases[!startsWith(aliases, "_")]
  alias.code <- unlist(lapply(aliases, function(a) {
    an <- paste0("mx.symbol.", a)
    if (an == fname || an %in% mx.internal.handwritten) return(NULL)
    c(paste0("#' @rdname ", fname), paste0("#' @name ", an), "#' @export", paste0("`", an, "` <- `", fname, "`"))
  }))
  c(doc, code, alias.code, "")
}

mx.internal.variadic.sym <- function(data) if (is.mx.symbol(data)) list(data) else unname(data)

mx.internal.variadic <- function(data) if (is.mx.ndarray(data)) list(data) else data

# Parameters given twice (`num_hidden` and `num.hidden`) are an error.
mx.internal.dedup <- function(params) {
  params <- params[!vapply(params, is.null, TRUE)]
  keys <- gsub(".", "_", names(params), fixed = TRUE)
  if (anyDuplicated(keys)) stop("parameter '", keys[anyDuplicated(keys)], "' is given twice", call. = FALSE)
  params
}

mx.internal.generate.ops <- function() {
  info <- mx.internal.op.info()
  info <- info[order(names(info))]
  c("# Generated by tools/gen-ops.sh from the engine's op registry: do not edit.",
    "# test-ops-generated.R checks that this file matches the registry.",
    "",
    paste0(".ops.signature <- \"", mx.internal.ops.signature(mx.internal.op.info()), "\""),
    "",
    unlist(lapply(info, mx.internal.generate.nd)),
    unlist(lapply(info, mx.internal.generate.sym)))
}
