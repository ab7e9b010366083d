#!/bin/sh
# Where symnet's LeNet training time goes, by function: perf record (the
# cpu-clock software event; this machine's VM has no hardware counters) over
# one symnet training run, then a flat report by shared object and symbol.
#
#   sh bench/perf-symnet.sh [model] [n.train] [tag]   (default: lenet 5000)
#
# Writes bench/results/perf-<model><tag>.txt; the threads are symnet's
# default unless SYMNET_NUM_THREADS is set.  Needs perf (Debian: linux-perf)
# and kernel.perf_event_paranoid <= 2.
set -e
here=$(cd "$(dirname "$0")" && pwd)
model=${1:-lenet}
n=${2:-5000}
tag=${3:-}
: "${R_LIBS:=/tmp/symnet-dev/bench/lib}"
export R_LIBS
mkdir -p "$here/results"
data=$(mktemp /tmp/symnet-perf.XXXXXX)
perf record -q -e cpu-clock -F 999 -o "$data" -- \
  Rscript "$here/symnet-worker.R" train model="$model" n.train="$n" n.test=1000 infer.secs=0 \
  > "$here/results/perf-$model.result" 2>/dev/null
out="$here/results/perf-$model$tag.txt"
{
  echo "# perf record -e cpu-clock over: Rscript bench/symnet-worker.R train model=$model n.train=$n n.test=1000"
  echo "# SYMNET_NUM_THREADS=${SYMNET_NUM_THREADS:-unset} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  grep '^RESULT' "$here/results/perf-$model.result" || true
  echo "## by shared object"
  perf report -i "$data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
  echo "## by symbol (top 40)"
  perf report -i "$data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
} > "$out"
rm -f "$data" "$here/results/perf-$model.result"
cat "$out"
