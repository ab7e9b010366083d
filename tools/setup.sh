#!/bin/sh
# Sets symnet up on Debian 12 and runs the main job.
#   sh tools/setup.sh            (as root, or as a user with sudo)
# 1. installs R and the system libraries from Debian's archive,
# 2. builds and installs the package (CUDA part too when a toolkit is found),
# 3. runs inst/examples/main.R.
set -e
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
pkgs="r-base-dev r-cran-testthat r-cran-knitr r-cran-rmarkdown r-cran-roxygen2 r-cran-mlbench pandoc
      libopenblas-dev zlib1g-dev qpdf dataset-fashion-mnist rsync"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
MAKEFLAGS="-j$(nproc)" $SUDO R CMD INSTALL --no-multiarch . 2>&1 | tail -n 3
Rscript inst/examples/main.R
