#' Draw a symbol's graph
#'
#' Builds a Graphviz DOT description of the network (one node per
#' operator, coloured by kind, labelled with its main parameters; with
#' `shape`, edges carry the inferred R-order shapes). When the DiagrammeR
#' package is installed the graph is rendered with it; otherwise the DOT
#' text is returned (print it, or render it with Graphviz's `dot`).
#'
#' @param symbol An `MXSymbol`.
#' @param shape Optional R dims of the data input (or a named list of input dims).
#' @param direction `"TD"` (top-down) or `"LR"`.
#' @param type `"graph"` (DiagrammeR) or `"dot"` (always return the DOT text).
#' @param graph.width.px,graph.height.px Size of the rendered widget.
#' @return A DiagrammeR widget, or the DOT text (class `"mx.dot"`).
#' @examples
#' net <- mx.symbol.SoftmaxOutput(mx.symbol.FullyConnected(mx.symbol.Variable("data"), num_hidden = 3))
#' cat(graph.viz(net, shape = c(10, 4), type = "dot"))
#' @export
graph.viz <- function(symbol, shape = NULL, direction = "TD", type = "graph", graph.width.px = NULL,
                      graph.height.px = NULL) {
  if (!is.mx.symbol(symbol)) stop("symbol must be an MXSymbol", call. = FALSE)
  if (!direction %in% c("TD", "LR")) stop("direction must be \"TD\" or \"LR\"", call. = FALSE)
  nodes <- .Call(C_sym_nodes, symbol)
  shapes <- NULL
  if (!is.null(shape)) {
    sh <- if (is.list(shape)) shape else list(data = shape)
    inf <- do.call(mx.symbol.infer.shape, c(list(internals(symbol)), sh))
    if (!is.null(inf)) shapes <- inf$out.shapes
  }
  colour <- function(op) switch(op,
    FullyConnected = "#fb8072", Convolution = "#fb8072", Deconvolution = "#fb8072",
    Activation = "#ffffb3", LeakyReLU = "#ffffb3", BatchNorm = "#bebada", Pooling = "#80b1d3",
    Flatten = "#fdb462", Reshape = "#fdb462", Concat = "#fdb462", Dropout = "#d9d9d9",
    SoftmaxOutput = "#b3de69", LinearRegressionOutput = "#b3de69", LogisticRegressionOutput = "#b3de69",
    "#8dd3c7")
  label <- function(i) {
    op <- nodes$op[[i]]; p <- nodes$params[[i]]
    extra <- switch(op,
      FullyConnected = p[["num_hidden"]],
      Convolution = paste0(p[["kernel"]], "/", if (!is.null(p["stride"]) && !is.na(p["stride"])) p[["stride"]] else "(1, 1)", ", ", p[["num_filter"]]),
      Activation = p[["act_type"]], LeakyReLU = if (!is.na(p["act_type"])) p[["act_type"]] else "leaky",
      Pooling = paste0(if (!is.na(p["pool_type"])) p[["pool_type"]] else "max", ", ", if (!is.na(p["kernel"])) p[["kernel"]] else "global"),
      NULL)
    paste0(op, if (length(extra)) paste0("\\n", extra) else "", "\\n", nodes$name[[i]])
  }
  hidden <- nodes$op == "null" & !(nodes$name %in% c("data", names(shape)))
  lines <- c("digraph symnet {", paste0("  rankdir=", if (direction == "TD") "TB" else "LR", ";"),
             "  node [shape=box, style=\"rounded,filled\", fontname=Helvetica, fontsize=10];")
  for (i in seq_along(nodes$name)) {
    if (hidden[[i]]) next
    if (nodes$op[[i]] == "null")
      lines <- c(lines, sprintf("  n%d [label=\"%s\", shape=oval, fillcolor=\"#8dd3c7\"];", i, nodes$name[[i]]))
    else
      lines <- c(lines, sprintf("  n%d [label=\"%s\", fillcolor=\"%s\"];", i, label(i), colour(nodes$op[[i]])))
  }
  for (i in seq_along(nodes$name)) {
    for (j in nodes$inputs[[i]] + 1) {
      if (hidden[[j]]) next
      elab <- ""
      if (!is.null(shapes)) {
        key <- if (nodes$op[[j]] == "null") nodes$name[[j]] else paste0(nodes$name[[j]], "_output")
        s <- shapes[[key]]
        if (!is.null(s)) elab <- sprintf(" [label=\"%s\", fontsize=8]", paste(s, collapse = "x"))
      }
      lines <- c(lines, sprintf("  n%d -> n%d%s;", j, i, elab))
    }
  }
  dot <- structure(paste(c(lines, "}"), collapse = "\n"), class = "mx.dot")
  # DiagrammeR is optional and not a declared dependency (it is not in
  # Debian); look it up only when it is installed.
  if (type == "graph" && nzchar(system.file(package = "DiagrammeR"))) {
    grViz <- getExportedValue("DiagrammeR", "grViz")
    return(grViz(unclass(dot), width = graph.width.px, height = graph.height.px))
  }
  dot
}

#' @export
print.mx.dot <- function(x, ...) {
  cat(unclass(x), "\n")
  invisible(x)
}
