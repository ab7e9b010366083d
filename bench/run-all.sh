#!/bin/sh
# Runs every benchmark once, in order, and keeps the output:
#   compare.py (LeNet + MLP: training, inference, accuracy, memory, planner),
#   graphs.py (ResNet-50 and LSTM bind time), profile.py (per-op profile),
#   sweep.py (+ plot-sweep.R: throughput-batch.png), perf-symnet.sh.
#
#   sh bench/run-all.sh                 # the issue's settings (60,000 images, 3 reps, 2 threads)
#   BENCH_QUICK=1 sh bench/run-all.sh   # subsets, a few minutes per step on a loaded machine
#
# Knobs (environment): BENCH_REPS (3), BENCH_THREADS (2), BENCH_N_TRAIN
# (60000, or per model: lenet=5000,mlp=60000), BENCH_N_TEST (10000),
# BENCH_SIZE (ResNet-50 input, 224), BENCH_SWEEP_N (10000: sweep training and
# test images), BENCH_WAIT_LOAD (0: do not wait; else wait up to 2 min before
# each process for the 1-minute load average to drop below it), BENCH_INSTALL=1
# (reinstall symnet from this tree first with tools/dev-install.sh bench),
# BENCH_STEPS (which steps: "compare graphs profile sweep perf").
# R_LIBS defaults to /tmp/symnet-dev/bench/lib; the PyTorch side runs with
# /usr/bin/python3 (Debian's python3-torch) unless TORCH_PYTHON is set.
#
# Output: bench/results/run-all-<time>.txt (everything printed) and the
# JSON/CSV files each step writes under bench/results/.
set -e
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
py=${TORCH_PYTHON:-/usr/bin/python3}
: "${R_LIBS:=/tmp/symnet-dev/bench/lib}"
export R_LIBS
if [ -n "$BENCH_QUICK" ]; then
  : "${BENCH_N_TRAIN:=lenet=3000,mlp=60000}" "${BENCH_N_TEST:=lenet=2000,mlp=10000}"
  : "${BENCH_SWEEP_N:=3000}"
fi
reps=${BENCH_REPS:-3}
threads=${BENCH_THREADS:-2}
ntrain=${BENCH_N_TRAIN:-60000}
ntest=${BENCH_N_TEST:-10000}
size=${BENCH_SIZE:-224}
sweepn=${BENCH_SWEEP_N:-10000}
wait=${BENCH_WAIT_LOAD:-0}
steps=${BENCH_STEPS:-compare graphs profile sweep perf}
mkdir -p "$here/results"
log="$here/results/run-all-$(date +%Y%m%d-%H%M%S).txt"

if [ -n "$BENCH_INSTALL" ] || [ ! -d "$R_LIBS/symnet" ]; then
  sh "$top/tools/dev-install.sh" bench > "$here/results/install.log" 2>&1
  R_LIBS=/tmp/symnet-dev/bench/lib
fi

section() {
  echo
  echo "=== $1"
  echo "=== $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "=== \$ $2"
}

{
  echo "symnet benchmarks: commit $(git -C "$top" rev-parse --short HEAD), R_LIBS=$R_LIBS"
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "R: $(R --version | head -1)"
  echo "PyTorch: $($py -c 'import torch; print(torch.__version__)' 2>&1)"
  echo "OpenBLAS: $(dpkg-query -W -f '${Version}' libopenblas0-pthread 2>/dev/null)"
  echo "environment: $(env | grep -E '^(OPENBLAS|OMP_|GOMP|SYMNET_|MALLOC_)' | tr '\n' ' ') (the workers also get MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 unless BENCH_MALLOC=default: see benchlib.py)"
  for s in $steps; do
    case $s in
      compare)
        c="$py bench/compare.py --reps $reps --threads $threads --n-train $ntrain --n-test $ntest --wait-load $wait"
        section "LeNet and MLP against PyTorch" "$c"; (cd "$top" && $c) ;;
      graphs)
        c="$py bench/graphs.py --size $size --threads $threads --wait-load $wait"
        section "bind time of large graphs" "$c"; (cd "$top" && $c) ;;
      profile)
        c="$py bench/profile.py --threads $threads --wait-load $wait"
        section "per-op profile" "$c"; (cd "$top" && $c) ;;
      sweep)
        c="$py bench/sweep.py --threads $threads --n-train $sweepn --n-test $sweepn --wait-load $wait"
        section "throughput against batch size" "$c"; (cd "$top" && $c) ;;
      perf)
        probe=$(mktemp /tmp/symnet-perf-probe.XXXXXX)
        if perf record -q -e cpu-clock -o "$probe" true >/dev/null 2>&1; then
          rm -f "$probe"
          c="sh bench/perf-symnet.sh lenet 2000"
          section "perf profile of symnet LeNet training" "$c"
          (cd "$top" && SYMNET_NUM_THREADS=$threads $c)
        else
          rm -f "$probe"
          echo "(perf record does not work here: skipping the perf profile)"
        fi ;;
      *) echo "unknown step $s" ;;
    esac
  done
  echo
  echo "=== done $(date -u '+%Y-%m-%d %H:%M:%S UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$log"
echo "log: $log"
