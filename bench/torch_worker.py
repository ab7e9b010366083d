"""The PyTorch side of the benchmarks: one task per process, the peer of
bench/symnet-worker.R (same tasks, same arguments, same RESULT line).

    /usr/bin/python3 bench/torch_worker.py train model=lenet|mlp [seed=1 ...]
    /usr/bin/python3 bench/torch_worker.py bind [size=224 batch=32 reps=3]
    /usr/bin/python3 bench/torch_worker.py profile model=lenet|mlp [block_secs=0.05]
    /usr/bin/python3 bench/torch_worker.py sweep batch=128 [n.train=10000]

Threads: torch.set_num_threads(threads) (default 2); the drivers set
OPENBLAS_NUM_THREADS=1 in the environment, as issue 5 prescribes.
Fashion-MNIST is read from the same idx files as symnet reads
(/usr/share/datasets/fashion-mnist, or SYMNET_FASHION_MNIST), pixels / 255,
shape (n, 1, 28, 28): the same array as symnet's c(28, 28, 1, n).
"""
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def say(fmt, *a):
    print(fmt % a, file=sys.stderr, flush=True)


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    return float("nan")


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def parse_args(argv, defaults):
    out = dict(defaults)
    for a in argv:
        k, sep, v = a.partition("=")
        k = k.replace(".", "_")  # n.train (R spelling) = n_train
        if not sep or k not in defaults:
            raise SystemExit("unknown or malformed argument '%s'" % a)
        d = defaults[k]
        out[k] = type(d)(float(v)) if isinstance(d, (int, float)) and not isinstance(d, bool) else v
    return out


def emit(d):
    print("RESULT " + json.dumps(d), flush=True)


# ---- data ---------------------------------------------------------------------

def data_dir():
    for d in (os.environ.get("SYMNET_FASHION_MNIST", ""), "/usr/share/datasets/fashion-mnist"):
        if d and os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
            return d
    raise SystemExit("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)")


def read_idx(path, n=None):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic % 256
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    a = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return a if n is None else a[:n]


def load(subset, n=None):
    d = data_dir()
    p = "train" if subset == "train" else "t10k"
    x = read_idx(os.path.join(d, p + "-images-idx3-ubyte.gz"), n)
    y = read_idx(os.path.join(d, p + "-labels-idx1-ubyte.gz"), n)
    x = torch.from_numpy((x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28))
    return x, torch.from_numpy(y.astype(np.int64))


# ---- networks ---------------------------------------------------------------------

def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.Tanh(), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5), nn.Tanh(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(800, 500), nn.Tanh(), nn.Linear(500, 10))


def mlp():
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, 10))


def make_net(model):
    net = {"lenet": lenet, "mlp": mlp}[model]()
    # The same initialisation as symnet's run: mx.init.Xavier() (uniform,
    # avg, magnitude 3) = xavier_uniform_ with gain 1; biases 0.
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class Bottleneck(nn.Module):
    def __init__(self, cin, nf, stride, project):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(cin, nf, 1, stride, 0, bias=False), nn.BatchNorm2d(nf), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1, bias=False), nn.BatchNorm2d(nf), nn.ReLU())
        self.c = nn.Sequential(nn.Conv2d(nf, 4 * nf, 1, 1, 0, bias=False), nn.BatchNorm2d(4 * nf))
        self.sc = (nn.Sequential(nn.Conv2d(cin, 4 * nf, 1, stride, 0, bias=False), nn.BatchNorm2d(4 * nf))
                   if project else None)

    def forward(self, x):
        y = self.c(self.b(self.a(x)))
        return F.relu(y + (self.sc(x) if self.sc is not None else x))


def resnet50(num_classes=1000):
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for nf, n, s in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for j in range(n):
            layers.append(Bottleneck(cin, nf, s if j == 0 else 1, j == 0))
            cin = 4 * nf
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


class UnrolledLSTM(nn.Module):
    """The same cell as bench.lstm(): i2h and h2h Linear, split in 4 gates,
    unrolled in Python over `steps`, last hidden state -> Linear(10)."""

    def __init__(self, steps, hidden, inp, num_classes=10):
        super().__init__()
        self.steps, self.hidden = steps, hidden
        self.i2h = nn.Linear(inp, 4 * hidden)
        self.h2h = nn.Linear(hidden, 4 * hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):  # x: (batch, steps, input)
        h = c = None
        for t in range(self.steps):
            g = self.i2h(x[:, t])
            if h is not None:
                g = g + self.h2h(h)
            i, f, gg, o = g.chunk(4, dim=1)
            i, f, gg, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(gg), torch.sigmoid(o)
            c = i * gg if c is None else f * c + i * gg
            h = o * torch.tanh(c)
        return self.fc(h)


# ---- tasks ---------------------------------------------------------------------

def predict(net, x, bs):
    outs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], bs):
            outs.append(torch.softmax(net(x[i:i + bs]), dim=1).numpy())
    return np.concatenate(outs)


def time_predict(net, x, bs, min_secs, min_reps=2):
    net.eval()
    p = predict(net, x, bs)
    reps, t0 = 0, time.perf_counter()
    while True:
        predict(net, x, bs)
        reps += 1
        el = time.perf_counter() - t0
        if reps >= min_reps and el >= min_secs:
            break
    return x.shape[0] * reps / el, el, reps, p


def train_epoch(model, x, y, batch, lr, momentum, seed):
    """Model construction, optimizer and one shuffled epoch: the work of one
    mx.model.FeedForward.create(num.round = 1) call."""
    torch.manual_seed(seed)
    net = make_net(model)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    net.train()
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], batch):
        idx = perm[i:i + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
    return net


def task_train(a):
    a = parse_args(a, dict(model="lenet", seed=1, threads=2, batch=100, lr=-1.0, momentum=0.9,
                           infer_batch=1000, infer_secs=3.0, n_train=60000, n_test=10000))
    torch.set_num_threads(a["threads"])
    lr = a["lr"] if a["lr"] > 0 else (0.05 if a["model"] == "lenet" else 0.1)
    rss_start = status_kb("VmRSS")
    xtr, ytr = load("train", a["n_train"])
    xte, yte = load("test", a["n_test"])
    rss_data = status_kb("VmRSS")
    load0 = loadavg()
    say("torch %s: training one epoch on %d images", a["model"], xtr.shape[0])
    t0, c0 = time.perf_counter(), time.process_time()
    net = train_epoch(a["model"], xtr, ytr, a["batch"], lr, a["momentum"], a["seed"])
    secs = time.perf_counter() - t0
    cpu = time.process_time() - c0
    hwm_train = status_kb("VmHWM")
    say("torch %s: %.1f s, %.0f images/s; inference", a["model"], secs, xtr.shape[0] / secs)
    ips, isecs, ireps, p = time_predict(net, xte, a["infer_batch"], a["infer_secs"])
    acc = float((p.argmax(1) == yte.numpy()).mean())
    emit(dict(framework="torch", task="train", model=a["model"], seed=a["seed"],
              threads=torch.get_num_threads(), torch=torch.__version__,
              **{"n.train": xtr.shape[0], "n.test": xte.shape[0]}, batch=a["batch"], lr=lr,
              **{"train.secs": secs, "train.cpu.secs": cpu, "train.ips": xtr.shape[0] / secs,
                 "infer.ips": ips, "infer.secs": isecs, "infer.reps": ireps,
                 "infer.batch": a["infer_batch"], "test.acc": acc,
                 "rss.start.kb": rss_start, "rss.data.kb": rss_data, "hwm.train.kb": hwm_train,
                 "hwm.kb": status_kb("VmHWM"), "load.before": load0, "load.after": loadavg()}))


def bind_like(build, make_input, reps):
    """Module construction (allocation + initialisation), then one forward
    in training mode with autograd and one backward; `reps` times."""
    rows = []
    for _ in range(reps):
        t0 = time.perf_counter()
        net = build()
        t1 = time.perf_counter()
        x, y = make_input()
        out = net(x)
        t2 = time.perf_counter()
        F.cross_entropy(out, y).backward()
        t3 = time.perf_counter()
        net.eval()
        with torch.no_grad():
            t4 = time.perf_counter()
            net(x)
            t5 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1, t3 - t2, t5 - t4))
        del net, out
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    return {"construct.secs": med[0], "train.forward.secs": med[1], "backward.secs": med[2],
            "infer.forward.secs": med[3], "raw": rows}


def task_bind(a):
    a = parse_args(a, dict(size=224, batch=32, reps=3, steps=100, hidden=256, input=256, threads=2))
    torch.set_num_threads(a["threads"])
    torch.manual_seed(1)
    say("torch: ResNet-50 at %dx%d, batch %d", a["size"], a["size"], a["batch"])
    rn = bind_like(resnet50, lambda: (torch.randn(a["batch"], 3, a["size"], a["size"]),
                                      torch.randint(0, 1000, (a["batch"],))), a["reps"])
    rn["params"] = sum(p.numel() for p in resnet50().parameters())
    rn["hwm.kb"] = status_kb("VmHWM")
    say("torch: LSTM %d steps, hidden %d, batch %d", a["steps"], a["hidden"], a["batch"])
    ls = bind_like(lambda: UnrolledLSTM(a["steps"], a["hidden"], a["input"]),
                   lambda: (torch.randn(a["batch"], a["steps"], a["input"]),
                            torch.randint(0, 10, (a["batch"],))), a["reps"])
    emit(dict(framework="torch", task="bind", size=a["size"], batch=a["batch"], steps=a["steps"],
              hidden=a["hidden"], input=a["input"], resnet50=rn, lstm=ls,
              **{"hwm.kb": status_kb("VmHWM")}, load=loadavg()))


def time_calls(f, block_secs=0.05):
    """Median seconds per call: 2 warm-up calls, then 5 blocks of calls,
    each at least block_secs long (as time.calls in symnet-worker.R)."""
    f(); f()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < block_secs:
        f()
        n += 1
    out = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        out.append((time.perf_counter() - t0) / n)
    return statistics.median(out)


class SoftmaxCE(nn.Module):
    """Softmax + cross-entropy: the peer of SoftmaxOutput."""

    def forward(self, x):
        return F.cross_entropy(x, self.y)


def layers_of(model):
    if model == "lenet":
        return [("conv1", nn.Conv2d(1, 20, 5), (1, 28, 28), False), ("tanh1", nn.Tanh(), (20, 24, 24), True),
                ("pool1", nn.MaxPool2d(2, 2), (20, 24, 24), True),
                ("conv2", nn.Conv2d(20, 50, 5), (20, 12, 12), True), ("tanh2", nn.Tanh(), (50, 8, 8), True),
                ("pool2", nn.MaxPool2d(2, 2), (50, 8, 8), True), ("flatten", nn.Flatten(), (50, 4, 4), True),
                ("fc1", nn.Linear(800, 500), (800,), True), ("tanh3", nn.Tanh(), (500,), True),
                ("fc2", nn.Linear(500, 10), (500,), True), ("softmax", SoftmaxCE(), (10,), True)]
    return [("fc1", nn.Sequential(nn.Flatten(), nn.Linear(784, 128)), (1, 28, 28), False),
            ("relu1", nn.ReLU(), (128,), True), ("fc2", nn.Linear(128, 64), (128,), True),
            ("relu2", nn.ReLU(), (64,), True), ("fc3", nn.Linear(64, 10), (64,), True),
            ("softmax", SoftmaxCE(), (10,), True)]


def task_profile(a):
    a = parse_args(a, dict(model="lenet", batch=100, infer_batch=1000, block_secs=0.05, seed=1, threads=2))
    torch.set_num_threads(a["threads"])
    torch.manual_seed(a["seed"])
    rows = []
    for name, mod, dims, need_grad in layers_of(a["model"]):
        x = (torch.rand(a["batch"], *dims) * 0.2 - 0.1).requires_grad_(need_grad)
        mod.y = torch.randint(0, 10, (a["batch"],))

        def fwd():
            return mod(x)

        def fb():
            out = mod(x)
            out.backward(torch.ones_like(out) if out.dim() else None)
            for p in list(mod.parameters()) + [x]:
                p.grad = None

        f = time_calls(fwd, a["block_secs"])
        b = time_calls(fb, a["block_secs"])
        xi = torch.rand(a["infer_batch"], *dims) * 0.2 - 0.1
        mod.y = torch.randint(0, 10, (a["infer_batch"],))

        def inf():
            with torch.no_grad():
                o = mod(xi) if name != "softmax" else torch.softmax(xi, dim=1)
            return o

        i = time_calls(inf, a["block_secs"])
        rows.append({"layer": name, "fwd.ms": 1e3 * f, "bwd.ms": 1e3 * (b - f), "fwdbwd.ms": 1e3 * b,
                     "infer.ms": 1e3 * i})
        say("%-8s fwd %7.3f ms  fwd+bwd %7.3f ms  infer(b=%d) %7.3f ms", name, 1e3 * f, 1e3 * b,
            a["infer_batch"], 1e3 * i)
    net = make_net(a["model"])
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(a["batch"], 1, 28, 28)
    y = torch.randint(0, 10, (a["batch"],))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    s = time_calls(step, a["block_secs"])
    u = time_calls(opt.step, a["block_secs"])
    n_it = 20 * a["batch"]
    X = torch.rand(n_it, 1, 28, 28)
    Y = torch.randint(0, 10, (n_it,))
    state = {"perm": torch.randperm(n_it), "i": 0}

    def it():
        if state["i"] >= n_it:
            state["perm"], state["i"] = torch.randperm(n_it), 0
        idx = state["perm"][state["i"]:state["i"] + a["batch"]]
        state["i"] += a["batch"]
        return X[idx], Y[idx]

    itt = time_calls(it, a["block_secs"])

    def full_step():
        xb, yb = it()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xb), yb).backward()
        opt.step()

    fs = time_calls(full_step, a["block_secs"])
    net.eval()
    xi = torch.rand(a["infer_batch"], 1, 28, 28)

    def inf():
        with torch.no_grad():
            return torch.softmax(net(xi), dim=1)

    i = time_calls(inf, a["block_secs"])
    total = {"net.fwdbwd.ms": 1e3 * s, "update.ms": 1e3 * u, "iter.copy.ms": 1e3 * itt,
             "train.step.ms": 1e3 * fs, "net.infer.ms": 1e3 * i}
    say("net fwd+bwd %.3f ms, update %.3f ms, batch gather %.3f ms, net infer %.3f ms",
        1e3 * s, 1e3 * u, 1e3 * itt, 1e3 * i)
    emit(dict(framework="torch", task="profile", model=a["model"], batch=a["batch"],
              **{"infer.batch": a["infer_batch"]}, layers=rows, total=total, load=loadavg()))


def task_sweep(a):
    a = parse_args(a, dict(model="lenet", batch=128, seed=1, threads=2, lr=0.05, momentum=0.9,
                           infer_secs=2.0, n_train=10000, n_test=10000))
    torch.set_num_threads(a["threads"])
    xtr, ytr = load("train", a["n_train"])
    xte, yte = load("test", a["n_test"])
    t0 = time.perf_counter()
    net = train_epoch(a["model"], xtr, ytr, a["batch"], a["lr"], a["momentum"], a["seed"])
    secs = time.perf_counter() - t0
    ips, _, _, p = time_predict(net, xte, a["batch"], a["infer_secs"])
    emit(dict(framework="torch", task="sweep", model=a["model"], batch=a["batch"],
              **{"n.train": xtr.shape[0], "n.test": xte.shape[0], "train.ips": xtr.shape[0] / secs,
                 "infer.ips": ips, "test.acc": float((p.argmax(1) == yte.numpy()).mean())},
              load=loadavg()))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    {"train": task_train, "bind": task_bind, "profile": task_profile,
     "sweep": task_sweep}[sys.argv[1]](sys.argv[2:])
