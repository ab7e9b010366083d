#!/bin/sh
# Where symnet's training time goes, by function: perf record (the
# cpu-clock software event; this machine's VM has no hardware counters)
# attached to one symnet training run once the data are loaded (from the
# worker's "training one epoch" message to the end of training and
# inference), then a flat report by shared object and by symbol.
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
tmp=$(mktemp -d /tmp/symnet-perf.XXXXXX)
Rscript "$here/symnet-worker.R" train model="$model" n.train="$n" n.test=1000 infer.secs=1 \
  > "$tmp/result" 2> "$tmp/err" &
pid=$!
# wait for the data to be loaded
i=0
while ! grep -q "training one epoch" "$tmp/err" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then break; fi
  sleep 0.1
done
perf record -q -e cpu-clock -F 999 -p $pid -o "$tmp/perf.data" > /dev/null 2>&1 || true
wait $pid || true
out="$here/results/perf-$model$tag.txt"
{
  echo "# perf record -e cpu-clock -p <pid>, from the start of training to the end, of:"
  echo "#   Rscript bench/symnet-worker.R train model=$model n.train=$n n.test=1000 infer.secs=1"
  echo "# SYMNET_NUM_THREADS=${SYMNET_NUM_THREADS:-unset} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  grep '^RESULT' "$tmp/result" || true
  echo "## by shared object"
  perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
  echo "## by symbol (top 40)"
  perf report -i "$tmp/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
} > "$out"
rm -rf "$tmp"
cat "$out"
