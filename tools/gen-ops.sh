#!/bin/sh
# Regenerates R/ops-generated.R from the op registry, then NAMESPACE and
# man/ with roxygen2.  Run from the repository root after changing any op.
set -e
sh tools/dev-install.sh gen >/dev/null
lib=/tmp/symnet-dev/gen/lib
R_LIBS=$lib Rscript -e 'writeLines(symnet:::mx.internal.generate.ops(), "R/ops-generated.R")'
sh tools/dev-install.sh gen >/dev/null
R_LIBS=$lib Rscript -e 'roxygen2::roxygenise(load_code = roxygen2::load_installed)'
echo "R/ops-generated.R, NAMESPACE and man/ are up to date"
