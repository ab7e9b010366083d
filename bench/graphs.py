"""Bind time of large graphs: ResNet-50 v1 (batch 32, 224 x 224 by default)
and an LSTM unrolled 100 steps (hidden 256, input 256, batch 32).

symnet: building the symbol, then mx.simple.bind for training
(grad.req = "write") and for inference (grad.req = "null"), each timed alone
(median of --reps binds in one process), with the planner's arena bytes.

PyTorch has no bind step: its peer figures are the time to construct the
same modules (allocate and initialise the weights) and to run one forward
(training mode, autograd recording), one backward, and one no_grad forward.
These are NOT the same work as a bind: bind does shape inference, gradient
graph construction and memory planning, and computes nothing; the PyTorch
figures include the first run's arithmetic.  They are printed side by side
only to show the cost of getting from a model definition to running it.

    /usr/bin/python3 bench/graphs.py [--reps 3] [--torch-reps 1] [--size 224] [--batch 32] [--rounds 1]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3, help="symnet binds per process")
    ap.add_argument("--torch-reps", type=int, default=1,
                    help="PyTorch construct + forward + backward rounds per process (each computes a batch)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating symnet/PyTorch process pairs")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--wait-load", type=float, default=0)
    ap.add_argument("--name", default="graphs")
    o = ap.parse_args()
    os.makedirs(B.RESULTS, exist_ok=True)
    log = open(os.path.join(B.RESULTS, o.name + ".log"), "w")
    args = {"size": o.size, "batch": o.batch, "reps": o.reps}
    runs = []
    for _ in range(o.rounds):
        for fw in ("symnet", "torch"):
            B.wait_quiet(o.wait_load, 120)
            a = dict(args, reps=o.reps if fw == "symnet" else o.torch_reps)
            runs.append(B.run_worker(fw, "bind", a, threads=o.threads, log=log))
    sy = [r for r in runs if r["framework"] == "symnet"]
    to = [r for r in runs if r["framework"] == "torch"]
    rows = []
    for g, label in (("resnet50", "ResNet-50 v1, batch %d, %dx%d" % (o.batch, o.size, o.size)),
                     ("lstm", "LSTM unrolled %d steps, hidden %d, batch %d"
                      % (sy[0]["steps"], sy[0]["hidden"], o.batch))):
        s = lambda k: B.median([r[g][k] for r in sy])
        sb = lambda ph: B.median([r[g][ph]["median"] for r in sy])
        t = lambda k: B.median([r[g][k] for r in to])
        mem = sy[0][g]["train"]["memory"]
        memi = sy[0][g]["infer"]["memory"]
        rows.append([label, "symnet: build symbol", "%.3f s" % s("build.secs"),
                     "%d nodes" % sy[0][g]["nodes"]])
        rows.append([label, "symnet: mx.simple.bind, training", "%.3f s" % sb("train"),
                     "arena %s MiB planned / %s MiB naive" % (B.fmt(mem["planned.bytes"] / 2**20),
                                                             B.fmt(mem["naive.bytes"] / 2**20))])
        rows.append([label, "symnet: mx.simple.bind, inference", "%.3f s" % sb("infer"),
                     "arena %s MiB planned / %s MiB naive" % (B.fmt(memi["planned.bytes"] / 2**20),
                                                             B.fmt(memi["naive.bytes"] / 2**20))])
        rows.append([label, "PyTorch: construct modules", "%.3f s" % t("construct.secs"), "not a bind"])
        rows.append([label, "PyTorch: first forward (train mode)", "%.3f s" % t("train.forward.secs"),
                     "computes; not a bind"])
        rows.append([label, "PyTorch: first backward", "%.3f s" % t("backward.secs"), "computes"])
        rows.append([label, "PyTorch: no_grad forward", "%.3f s" % t("infer.forward.secs"), "computes"])
    print("Bind time (medians; symnet %d binds per process, PyTorch %d round(s) per process, %d process pair(s))"
          % (o.reps, o.torch_reps, o.rounds))
    print(B.table(rows, ["graph", "step", "time", "note"]))
    print("\nPeak RSS: symnet %s MB, PyTorch %s MB (whole process, both graphs)"
          % (B.fmt(B.median([r["hwm.kb"] for r in sy]) / 1024), B.fmt(B.median([r["hwm.kb"] for r in to]) / 1024)))
    path = B.save(o.name, {"args": vars(o), "runs": runs})
    print("saved %s" % path)


if __name__ == "__main__":
    main()
