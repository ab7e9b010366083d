# Devices (contexts).  A context is list(device, device_id, device_typeid)
# with class "MXContext", as in MXNet R; the type ids are MXNet's (1 cpu,
# 2 gpu) and go straight to the engine.

#' Device contexts
#'
#' `mx.cpu()` and `mx.gpu()` name a device; `mx.ctx.default()` gets or sets
#' the device used when a function is given no `ctx`.
#'
#' Using `mx.gpu()` loads symnet's CUDA module on first use; on a machine
#' without an NVIDIA driver, or with a CPU-only build, that gives an R error
#' and the CPU keeps working.
#'
#' @param dev.id Integer device number.
#' @param new A context to make the default, or `NULL` to only query it.
#' @param x An object to test.
#' @return A context (`MXContext`); `is.mx.context` returns a logical.
#' @examples
#' mx.cpu()
#' mx.ctx.default()
#' is.mx.context(mx.cpu())
#' @name mx.context
NULL

mx.internal.context <- function(device, dev.id) {
  dev.id <- as.integer(dev.id)
  if (length(dev.id) != 1L || is.na(dev.id) || dev.id < 0L)
    stop("dev.id must be a single non-negative integer", call. = FALSE)
  structure(list(device = device, device_id = dev.id,
                 device_typeid = if (device == "cpu") 1L else 2L),
            class = "MXContext")
}

#' @rdname mx.context
#' @export
mx.cpu <- function(dev.id = 0L) mx.internal.context("cpu", dev.id)

#' @rdname mx.context
#' @export
mx.gpu <- function(dev.id = 0L) mx.internal.context("gpu", dev.id)

#' @rdname mx.context
#' @export
mx.ctx.default <- function(new = NULL) {
  if (!is.null(new)) {
    if (!is.mx.context(new)) stop("new must be an MXContext, such as mx.cpu() or mx.gpu(0)", call. = FALSE)
    mx.internal.check.device(new)
    .symnet.env$ctx <- new
  }
  .symnet.env$ctx
}

#' @rdname mx.context
#' @export
is.mx.context <- function(x) inherits(x, "MXContext")

#' @export
print.MXContext <- function(x, ...) {
  cat(format(x), "\n", sep = "")
  invisible(x)
}

#' @export
format.MXContext <- function(x, ...) paste0(x$device, "(", x$device_id, ")")

# The context to use: the given one or the default; a GPU context loads the
# CUDA module first, so the engine never sees a device it cannot serve.
mx.internal.ctx <- function(ctx) {
  if (is.null(ctx)) ctx <- mx.ctx.default()
  if (!is.mx.context(ctx)) stop("ctx must be an MXContext, such as mx.cpu() or mx.gpu(0)", call. = FALSE)
  mx.internal.check.device(ctx)
  ctx
}

mx.internal.check.device <- function(ctx) {
  if (ctx$device == "gpu") {
    path <- file.path(.symnet.env$libdir, "cuda", "symnet_cuda.so")
    if (!file.exists(path))
      stop("this symnet was built without CUDA support, so mx.gpu() is not available ",
           "(reinstall with the CUDA toolkit present; see the README)", call. = FALSE)
    .Call(C_gpu_load, path)
  }
  .Call(C_device_check, ctx)
  invisible(ctx)
}

# TRUE when the CUDA module loads and sees a device.
mx.internal.gpu.available <- function() {
  isTRUE(tryCatch({
    mx.internal.check.device(mx.gpu(0))
    TRUE
  }, error = function(e) FALSE))
}

# Bytes of host memory held by engine tensors (exact counter).
mx.internal.live.bytes <- function() .Call(C_mem_live)

#' GPU memory
#'
#' Exact counters of the device memory symnet holds on a GPU: `live` bytes
#' (owned by arrays and executors) and `cached` bytes (freed blocks kept by
#' the caching allocator for reuse). `mx.gpu.empty.cache()` first returns
#' the cached blocks to the driver. Memory of arrays is released when R
#' collects them (call `gc()`).
#'
#' @param dev.id The GPU number.
#' @return A named numeric vector: live, cached.
#' @export
mx.gpu.memory <- function(dev.id = 0L) {
  mx.internal.check.device(mx.gpu(dev.id))
  .Call(C_gpu_memory, as.integer(dev.id), FALSE)
}

#' @rdname mx.gpu.memory
#' @export
mx.gpu.empty.cache <- function(dev.id = 0L) {
  mx.internal.check.device(mx.gpu(dev.id))
  gc()
  invisible(.Call(C_gpu_memory, as.integer(dev.id), TRUE))
}

# Runs expr; on a GPU out-of-memory error, collects R garbage (which frees
# device memory owned by unreachable arrays), empties the cache and tries
# once more.
mx.internal.gpu.retry <- function(expr, ctx) {
  if (is.null(ctx) || !identical(ctx$device, "gpu")) return(expr)
  tryCatch(expr, error = function(e) {
    if (!grepl("out of memory", conditionMessage(e), ignore.case = TRUE)) stop(e)
    gc()
    try(.Call(C_gpu_memory, as.integer(ctx$device_id), TRUE), silent = TRUE)
    eval.parent(substitute(expr))
  })
}
