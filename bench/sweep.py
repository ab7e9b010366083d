"""LeNet throughput against batch size, symnet and PyTorch, and a PNG plot.

For each batch size (32, 64, 128, 256, 512, 1024) one symnet process and one
PyTorch process, alternating: training = one epoch over the first --n-train
Fashion-MNIST images at that batch size (symnet: one whole
mx.model.FeedForward.create call; SGD lr 0.05 momentum 0.9); inference =
predict at that batch size over the first --n-test test images (warm-up
call, then repeated for >= 2 s).  Writes results/sweep.csv and, through
bench/plot-sweep.R, bench/throughput-batch.png.

    /usr/bin/python3 bench/sweep.py [--batches 32,64,128,256,512,1024]
        [--n-train 10000] [--n-test 10000] [--rounds 1] [--threads 2]
"""
import argparse
import csv
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="32,64,128,256,512,1024")
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--wait-load", type=float, default=0)
    ap.add_argument("--name", default="sweep")
    ap.add_argument("--png", default=os.path.join(B.BENCH, "throughput-batch.png"))
    o = ap.parse_args()
    os.makedirs(B.RESULTS, exist_ok=True)
    log = open(os.path.join(B.RESULTS, o.name + ".log"), "w")
    runs = []
    for _ in range(o.rounds):
        for bs in [int(b) for b in o.batches.split(",")]:
            for fw in ("symnet", "torch"):
                B.wait_quiet(o.wait_load, 120)
                r = B.run_worker(fw, "sweep", {"model": "lenet", "batch": bs, "n.train": o.n_train,
                                               "n.test": o.n_test}, threads=o.threads, log=log)
                runs.append(r)
                print("batch %5d %-6s train %9s img/s  infer %9s img/s  load %.2f"
                      % (bs, fw, B.fmt(r["train.ips"]), B.fmt(r["infer.ips"]), r["load.start"][0]), flush=True)
    csv_path = os.path.join(B.RESULTS, o.name + ".csv")
    rows = []
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["framework", "batch", "train_ips", "infer_ips", "test_acc", "load1"])
        for bs in sorted({r["batch"] for r in runs}):
            med = {}
            for fw in ("symnet", "torch"):
                rs = [r for r in runs if r["batch"] == bs and r["framework"] == fw]
                med[fw] = (B.median([r["train.ips"] for r in rs]), B.median([r["infer.ips"] for r in rs]),
                           B.median([r["test.acc"] for r in rs]), B.median([r["load.start"][0] for r in rs]))
                w.writerow([fw, bs] + ["%.6g" % v for v in med[fw]])
            rows.append([bs, B.fmt(med["symnet"][0]), B.fmt(med["torch"][0]),
                         "%.2fx" % (med["symnet"][0] / med["torch"][0]), B.fmt(med["symnet"][1]),
                         B.fmt(med["torch"][1]), "%.2fx" % (med["symnet"][1] / med["torch"][1])])
    print(B.table(rows, ["batch", "symnet train", "PyTorch train", "ratio", "symnet infer", "PyTorch infer",
                         "ratio"]))
    B.save(o.name, {"args": vars(o), "runs": runs})
    title = "LeNet, Fashion-MNIST, %d threads; train %d images, infer %d images" % (o.threads, o.n_train, o.n_test)
    p = subprocess.run([os.environ.get("RSCRIPT", "Rscript"), os.path.join(B.BENCH, "plot-sweep.R"), csv_path,
                        o.png, title])
    if p.returncode == 0:
        print("plot: %s" % o.png)


if __name__ == "__main__":
    main()
