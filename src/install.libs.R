# Installs the engine's shared object and, when configure enabled CUDA, the
# CUDA module symnet_cuda.so next to it, in <library>/symnet/libs (R looks
# for it with file.path(system.file("libs", package = "symnet"),
# "symnet_cuda.so")).  R runs this file from src/ with R_PACKAGE_DIR,
# R_PACKAGE_NAME, R_ARCH and SHLIB_EXT set.
files <- c(paste0(R_PACKAGE_NAME, SHLIB_EXT), "symnet_cuda.so")
files <- files[file.exists(files)]
dest <- file.path(R_PACKAGE_DIR, paste0("libs", R_ARCH))
dir.create(dest, recursive = TRUE, showWarnings = FALSE)
ok <- file.copy(files, dest, overwrite = TRUE)
if (!all(ok)) stop("cannot install ", paste(files[!ok], collapse = ", "), " into ", dest)
if (.Platform$OS.type != "windows") Sys.chmod(file.path(dest, files), "755")
# R CMD check reads symbols.rds (symbol tables of the objects) when present.
if (file.exists("symbols.rds")) file.copy("symbols.rds", dest, overwrite = TRUE)
