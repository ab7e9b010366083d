"""Per-op profile of LeNet and the MLP, symnet against PyTorch.

Each layer alone, with the shapes it has inside the network: symnet binds a
one-layer symbol with mx.simple.bind and times executor forward
(is_train = TRUE) and forward + backward at batch 100, and inference
forward at batch 1000; PyTorch times the same module (autograd forward,
forward + backward, no_grad forward).  Then the parts of one training step:
the whole network's forward + backward in one executor, the optimizer
update of all weights, writing the next batch from the iterator into the
executor's inputs (PyTorch: indexing a shuffled tensor), and one whole
step of FeedForward.create's loop (symnet's internal
mx.internal.train.batch; PyTorch: gather, zero_grad, forward, backward,
step); and the whole network's inference forward at batch 1000.

Medians over 5 blocks of calls, each block at least --block-secs long.

    /usr/bin/python3 bench/profile.py [--models lenet,mlp] [--rounds 1] [--block-secs 0.05]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet,mlp")
    ap.add_argument("--rounds", type=int, default=1, help="alternating symnet/PyTorch process pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--block-secs", type=float, default=0.05)
    ap.add_argument("--wait-load", type=float, default=0)
    ap.add_argument("--name", default="profile")
    o = ap.parse_args()
    os.makedirs(B.RESULTS, exist_ok=True)
    log = open(os.path.join(B.RESULTS, o.name + ".log"), "w")
    runs = []
    for _ in range(o.rounds):
        for m in o.models.split(","):
            for fw in ("symnet", "torch"):
                B.wait_quiet(o.wait_load, 120)
                runs.append(B.run_worker(fw, "profile", {"model": m, "block.secs": o.block_secs},
                                         threads=o.threads, log=log))
    for m in o.models.split(","):
        sy = [r for r in runs if r["model"] == m and r["framework"] == "symnet"]
        to = [r for r in runs if r["model"] == m and r["framework"] == "torch"]
        names = [l["layer"] for l in sy[0]["layers"]]
        lay = lambda rs, n, k: B.median([next(l[k] for l in r["layers"] if l["layer"] == n) for r in rs])
        tot_s = sum(lay(sy, n, "fwdbwd.ms") for n in names)
        rows = []
        for n in names:
            s_fb, t_fb = lay(sy, n, "fwdbwd.ms"), lay(to, n, "fwdbwd.ms")
            s_i, t_i = lay(sy, n, "infer.ms"), lay(to, n, "infer.ms")
            rows.append([n, "%.3f" % lay(sy, n, "fwd.ms"), "%.3f" % lay(to, n, "fwd.ms"),
                         "%.3f" % s_fb, "%.3f" % t_fb, "%.2f" % (t_fb / s_fb if s_fb else float("nan")),
                         "%.0f%%" % (100 * s_fb / tot_s), "%.3f" % s_i, "%.3f" % t_i,
                         "%.2f" % (t_i / s_i if s_i else float("nan"))])
        tot = lambda rs, k: B.median([r["total"][k] for r in rs])
        print("%s: one layer at a time (ms per call; ratio = PyTorch time / symnet time, > 1 = symnet faster)" % m)
        print(B.table(rows, ["layer", "sym fwd", "torch fwd", "sym fwd+bwd b100", "torch fwd+bwd b100",
                             "ratio", "sym share", "sym infer b1000", "torch infer b1000", "ratio"]))
        trows = []
        for k, label in (("net.fwdbwd.ms", "whole net forward+backward, batch 100"),
                         ("update.ms", "optimizer update, all weights"),
                         ("iter.copy.ms", "next batch from the iterator into the inputs"),
                         ("train.step.ms", "one whole training step (iterator, fwd, bwd, update)"),
                         ("net.infer.ms", "whole net inference forward, batch 1000")):
            if not all(k in r["total"] for r in sy + to):
                continue
            a, b = tot(sy, k), tot(to, k)
            trows.append([label, "%.3f" % a, "%.3f" % b, "%.2f" % (b / a if a else float("nan"))])
        sum_layers = sum(lay(sy, n, "fwdbwd.ms") for n in names)
        trows.append(["sum of the layers' forward+backward above", "%.3f" % sum_layers,
                      "%.3f" % sum(lay(to, n, "fwdbwd.ms") for n in names), ""])
        print(B.table(trows, ["step part", "symnet ms", "PyTorch ms", "ratio"]))
        print()
    path = B.save(o.name, {"args": vars(o), "runs": runs})
    print("saved %s" % path)


if __name__ == "__main__":
    main()
