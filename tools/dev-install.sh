#!/bin/sh
# Developer helper: installs a private copy of the working tree into
# /tmp/symnet-dev/<name>/lib without touching the source tree, so several
# people can build at once.  Usage: tools/dev-install.sh NAME
# Then: R_LIBS=/tmp/symnet-dev/NAME/lib Rscript -e 'library(symnet)'
set -e
name=${1:?usage: dev-install.sh NAME}
top=$(cd "$(dirname "$0")/.." && pwd)
dir=/tmp/symnet-dev/$name
mkdir -p "$dir/lib" "$dir/pkg"
rsync -a --delete --exclude .git --exclude '*.o' --exclude '*.so' "$top/" "$dir/pkg/"
find "$dir/pkg/src" -name "*.o" -delete  # rsync keeps mtimes: never trust old objects
MAKEFLAGS="-j2" R CMD INSTALL --no-test-load -l "$dir/lib" "$dir/pkg"
