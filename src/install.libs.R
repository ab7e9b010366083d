# Installs the engine's shared object in <library>/symnet/libs and, when
# configure enabled CUDA, the CUDA module in <library>/symnet/libs/cuda
# (a subfolder, so that R CMD check does not expect the module, which must
# not link R, to register R routines).  R runs this file from src/ with
# R_PACKAGE_DIR, R_PACKAGE_NAME, R_ARCH and SHLIB_EXT set.
dest <- file.path(R_PACKAGE_DIR, paste0("libs", R_ARCH))
dir.create(dest, recursive = TRUE, showWarnings = FALSE)
install <- function(files, to) {
  ok <- file.copy(files, to, overwrite = TRUE)
  if (!all(ok)) stop("cannot install ", paste(files[!ok], collapse = ", "), " into ", to)
  if (.Platform$OS.type != "windows") Sys.chmod(file.path(to, basename(files)), "755")
}
install(paste0(R_PACKAGE_NAME, SHLIB_EXT), dest)
if (file.exists("symnet_cuda.so")) {
  dir.create(file.path(dest, "cuda"), showWarnings = FALSE)
  install("symnet_cuda.so", file.path(dest, "cuda"))
}
# R CMD check reads symbols.rds (symbol tables of the objects) when present.
if (file.exists("symbols.rds")) file.copy("symbols.rds", dest, overwrite = TRUE)
