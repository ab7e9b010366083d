# Regenerates R/ops-generated.R from the installed package's op registry,
# then the NAMESPACE and man/ pages with roxygen2.
# Usage (from the repository root):
#   sh tools/dev-install.sh gen && R_LIBS=/tmp/symnet-dev/gen/lib Rscript tools/gen-ops.R
# and once more (the docs now include the new wrappers):
#   sh tools/dev-install.sh gen && R_LIBS=/tmp/symnet-dev/gen/lib Rscript tools/gen-ops.R
library(symnet)
writeLines(symnet:::mx.internal.generate.ops(), "R/ops-generated.R")
roxygen2::roxygenise(load_code = roxygen2::load_installed)
cat("R/ops-generated.R, NAMESPACE and man/ written\n")
