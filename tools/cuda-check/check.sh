#!/bin/sh
# Checks an installed or built symnet_cuda.so without R:
#   - it exports exactly one symbol, symnet_cuda_init;
#   - it needs no symbol of the engine (sn_*): it must load on its own;
#   - every library it needs is found;
#   - loading it through the engine's loader either works (then the smoke
#     test exercises allocator, copies and counters on gpu(0)) or fails with
#     a clear message (no driver / no device), never a crash.
# Usage: tools/cuda-check/check.sh [DIR_OR_FILE]   (default: the installed
# package's libs folder, found with Rscript).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
arg=${1:-}
if test -z "$arg"; then
  arg=$(Rscript -e 'cat(system.file("libs", package = "symnet"))' 2>/dev/null)
fi
so=$arg
test -d "$arg" && so="$arg/cuda/symnet_cuda.so"; test -f "$so" || so="$arg/symnet_cuda.so"
if test ! -f "$so"; then
  echo "cuda-check: $so not found (symnet built without CUDA?)"
  exit 1
fi
status=0
echo "cuda-check: $so"

exports=$(nm -D --defined-only "$so" | awk '{ print $3 }' | tr '\n' ' ')
echo "exports: $exports"
test "$exports" = "symnet_cuda_init " || { echo "FAIL: must export symnet_cuda_init only"; status=1; }

engine=$(nm -D --undefined-only "$so" | awk '{ print $2 }' | grep '^sn_' | tr '\n' ' ')
test -z "$engine" || { echo "FAIL: needs engine symbols: $engine"; status=1; }

missing=$(ldd "$so" 2>&1 | grep 'not found')
test -z "$missing" || { echo "FAIL: libraries not found:"; echo "$missing"; status=1; }
ldd "$so" | grep -E 'cublas|cudnn|nccl|cudart' | sed 's/^[[:space:]]*/needs: /'

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cuda-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
if ! $cc -std=gnu11 -O1 -I"$top/src/engine" -o "$tmp/smoke" "$top/tools/cuda-check/smoke.c" \
    "$top/src/engine/gpu_loader.c" "$top/src/engine/error.c" -ldl -lpthread; then
  echo "FAIL: cannot build the smoke test"
  exit 1
fi
"$tmp/smoke" "$so"
rc=$?
case $rc in
  0) echo "smoke test: PASS" ;;
  2) echo "smoke test: GPU not available (clear error above, no crash)" ;;
  *) echo "smoke test: FAIL (exit $rc)"; status=1 ;;
esac
exit $status
