"""Helpers shared by the benchmark drivers (compare.py, graphs.py,
profile.py, sweep.py): run one worker task in a fresh process, parse its
RESULT line, wait for a quiet machine, keep the results.

Environment:
  R_LIBS                where symnet is installed (default
                        /tmp/symnet-dev/bench/lib when that exists)
  RSCRIPT               the Rscript to use (default: Rscript)
  TORCH_PYTHON          the Python that has torch (default /usr/bin/python3)
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def wait_quiet(max_load, max_wait):
    """Waits (at most max_wait s) until the 1-minute load average is below
    max_load; max_load <= 0 does not wait. Returns the load at the start."""
    if max_load <= 0:
        return loadavg()
    t0 = time.time()
    while loadavg()[0] >= max_load and time.time() - t0 < max_wait:
        time.sleep(5)
    return loadavg()


# glibc malloc, for both workers: keep freed large blocks in the heap
# instead of handing them back to the kernel (mmap/munmap per allocation).
# Without this PyTorch's LeNet pays a page fault per 4 KiB of every large
# temporary: its training speed then varies up to 3x from process to
# process on a VM, and its batch-1000 inference runs at a sixth of its
# speed.  BENCH_MALLOC=default keeps glibc's defaults.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def _env(threads):
    env = dict(os.environ)
    if os.environ.get("BENCH_MALLOC", "") != "default":
        for k, v in MALLOC_ENV.items():
            env.setdefault(k, v)
    if "R_LIBS" not in env and os.path.isdir("/tmp/symnet-dev/bench/lib"):
        env["R_LIBS"] = "/tmp/symnet-dev/bench/lib"
    if threads:
        env["SYMNET_NUM_THREADS"] = str(threads)
    return env


def run_worker(framework, task, args, threads=2, log=None):
    """Runs `task` of bench/symnet-worker.R or bench/torch_worker.py in a new
    process and returns its RESULT dict (plus wall seconds and load)."""
    if framework == "symnet":
        cmd = [os.environ.get("RSCRIPT", "Rscript"), os.path.join(BENCH, "symnet-worker.R"), task]
        env = _env(threads)
    else:
        cmd = [os.environ.get("TORCH_PYTHON", "/usr/bin/python3"), os.path.join(BENCH, "torch_worker.py"), task]
        env = _env(None)
        env["OPENBLAS_NUM_THREADS"] = "1"  # issue 5: PyTorch's fastest setting here
        args = dict(args, threads=threads or 2)
    cmd += ["%s=%s" % (k, v) for k, v in args.items()]
    load0 = loadavg()
    t0 = time.time()
    p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    if log:
        log.write("$ %s\n%s%s\n" % (" ".join(cmd), p.stderr, p.stdout))
        log.flush()
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        sys.stderr.write(p.stderr[-4000:] + p.stdout[-2000:])
        raise RuntimeError("%s %s failed (exit %d)" % (framework, task, p.returncode))
    r = json.loads(lines[-1][len("RESULT "):])
    r["wall.secs"] = wall
    r["load.start"] = load0
    r["load.end"] = loadavg()
    r["command"] = " ".join(cmd)
    return r


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def save(name, obj):
    """Writes results/<name>.json (the latest run of that name)."""
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    obj = dict(obj, saved=stamp, machine=machine())
    path = os.path.join(RESULTS, name + ".json")
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
    return path


def machine():
    info = {}
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for l in out.splitlines():
            k, _, v = l.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket"):
                info[k.strip()] = v.strip()
        with open("/proc/meminfo") as f:
            info["MemTotal"] = f.readline().split(":")[1].strip()
        info["symnet.commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                               stdout=subprocess.PIPE, text=True).stdout.strip()
        info["symnet.dirty"] = bool(subprocess.run(["git", "--no-optional-locks", "-C", ROOT, "status", "--porcelain", "--", "src", "R"],
                                                   stdout=subprocess.PIPE, text=True).stdout.strip())
        lib = _env(None).get("R_LIBS", "").split(":")[0]
        with open(os.path.join(lib, "symnet", "DESCRIPTION")) as f:
            for l in f:
                if l.startswith(("Version:", "Built:")):
                    info["symnet." + l.split(":")[0].lower()] = l.split(":", 1)[1].strip()
    except OSError:
        pass
    info["env"] = {k: v for k, v in _env(None).items()
                   if k.startswith(("OPENBLAS", "OMP_", "SYMNET_", "GOMP", "MKL", "MALLOC_"))}
    return info


def fmt(x, digits=0):
    if x is None or x != x:
        return "-"
    if abs(x) >= 1000 and digits == 0:
        return "{:,.0f}".format(x)
    return "{:.{d}f}".format(x, d=digits)


def table(rows, header):
    """A Markdown table."""
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).rjust(w[i]) if i else str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    out = [line(header), "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    return "\n".join(out + [line(r) for r in rows])
