#' symnet: symbolic deep learning for R with a native engine
#'
#' symnet builds neural networks as symbolic graphs, infers shapes, derives
#' gradients, plans memory and runs them on the CPU (OpenBLAS + OpenMP) or on
#' NVIDIA GPUs, through a C engine reached with `.Call`. Its API follows the
#' MXNet R package: `mx.nd.*` arrays, `mx.symbol.*` graphs, `mx.model.*`
#' training, so MXNet R scripts run after `library(symnet)`.
#'
#' @keywords internal
#' @useDynLib symnet, .registration = TRUE
"_PACKAGE"

.symnet.env <- new.env(parent = emptyenv())

.onLoad <- function(libname, pkgname) {
  .symnet.env$ctx <- mx.cpu()
  .symnet.env$libdir <- file.path(libname, pkgname, "libs")
  invisible()
}
