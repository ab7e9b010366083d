# Checks an ONNX model with onnx.checker and recomputes it in PyTorch from
# the file's graph and initializers (a small interpreter mapping each ONNX
# operator to torch / torch.nn.functional; written for test-onnx.R, not a
# general converter).  Usage:
#   python3 onnx_torch_run.py MODEL.onnx OUTPUT_PREFIX INPUT_NAME=INPUT.pb ...
# Computes in float64 and writes OUTPUT_PREFIX<k>.pb (TensorProto, double)
# for each graph output k,
# and prints "checked" once the checker has passed.
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def spatial_pads(x, pads, value):
    """Pads the spatial dims of x with ONNX pads (begins..., ends...)."""
    n = len(pads) // 2
    tp = []
    for i in reversed(range(n)):
        tp += [pads[i], pads[i + n]]
    return F.pad(x, tp, value=value) if any(tp) else x


def conv(x, w, b, a, transpose=False):
    nsp = w.dim() - 2
    strides = a.get("strides", [1] * nsp)
    dil = a.get("dilations", [1] * nsp)
    group = a.get("group", 1)
    pads = a.get("pads", [0] * (2 * nsp))
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        raise ValueError("auto_pad is not handled by this test converter")
    if transpose:
        if pads[:nsp] != pads[nsp:]:
            raise ValueError("asymmetric ConvTranspose pads")
        f = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nsp]
        return f(x, w, b, stride=strides, padding=pads[:nsp], output_padding=a.get("output_padding", [0] * nsp),
                 groups=group, dilation=dil)
    f = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nsp]
    if pads[:nsp] != pads[nsp:]:
        return f(spatial_pads(x, pads, 0.0), w, b, stride=strides, dilation=dil, groups=group)
    return f(x, w, b, stride=strides, padding=pads[:nsp], dilation=dil, groups=group)


def pool(x, a, kind):
    k = a["kernel_shape"]
    nsp = len(k)
    s = a.get("strides", [1] * nsp)
    pads = a.get("pads", [0] * (2 * nsp))
    ceil = bool(a.get("ceil_mode", 0))
    if pads[:nsp] != pads[nsp:] or any(2 * p > kk for p, kk in zip(pads, k)):
        raise ValueError("pads not handled by this test converter")
    if kind == "max":
        f = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nsp]
        return f(x, k, s, pads[:nsp], ceil_mode=ceil)
    f = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nsp]
    return f(x, k, s, pads[:nsp], ceil_mode=ceil, count_include_pad=bool(a.get("count_include_pad", 0)))


def reshape(x, shape):
    shape = [int(v) for v in shape]
    shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def run_node(op, ins, a):
    x = ins[0] if ins else None
    if op == "Conv":
        return conv(x, ins[1], ins[2] if len(ins) > 2 else None, a)
    if op == "ConvTranspose":
        return conv(x, ins[1], ins[2] if len(ins) > 2 else None, a, transpose=True)
    if op == "Relu":
        return F.relu(x)
    if op == "LeakyRelu":
        return F.leaky_relu(x, a.get("alpha", 0.01))
    if op == "Elu":
        return F.elu(x, a.get("alpha", 1.0))
    if op == "Selu":
        return F.selu(x)
    if op == "PRelu":
        return torch.where(x >= 0, x, x * ins[1])
    if op == "Tanh":
        return torch.tanh(x)
    if op == "Sigmoid":
        return torch.sigmoid(x)
    if op == "Softplus":
        return F.softplus(x)
    if op == "Softsign":
        return F.softsign(x)
    if op in ("Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil"):
        return getattr(torch, {"Neg": "neg", "Reciprocal": "reciprocal"}.get(op, op.lower()))(x)
    if op == "MaxPool":
        return pool(x, a, "max")
    if op == "AveragePool":
        return pool(x, a, "avg")
    if op == "LpPool":
        p = a.get("p", 2)
        return pool(x.abs() ** p, dict(a, count_include_pad=1), "avg").mul(float(np.prod(a["kernel_shape"]))) ** (1.0 / p)
    if op == "GlobalAveragePool":
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
    if op == "GlobalMaxPool":
        return x.amax(dim=tuple(range(2, x.dim())), keepdim=True)
    if op == "BatchNormalization":
        return F.batch_norm(x, ins[3], ins[4], ins[1], ins[2], False, 0.0, a.get("epsilon", 1e-5))
    if op == "Gemm":
        A, B = ins[0], ins[1]
        if a.get("transA", 0):
            A = A.t()
        if a.get("transB", 0):
            B = B.t()
        y = a.get("alpha", 1.0) * (A @ B)
        if len(ins) > 2:
            y = y + a.get("beta", 1.0) * ins[2]
        return y
    if op == "MatMul":
        return torch.matmul(ins[0], ins[1])
    if op in ("Add", "Sub", "Mul", "Div", "Pow"):
        return {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}[op](*ins)
    if op in ("Max", "Min", "Sum"):
        y = ins[0]
        for z in ins[1:]:
            y = {"Max": torch.maximum, "Min": torch.minimum, "Sum": torch.add}[op](y, z)
        return y
    if op == "Flatten":
        ax = a.get("axis", 1)
        return x.reshape(int(np.prod(x.shape[:ax])), -1)
    if op == "Reshape":
        return reshape(x, ins[1].tolist())
    if op == "Transpose":
        perm = a.get("perm", list(reversed(range(x.dim()))))
        return x.permute(*perm)
    if op == "Concat":
        return torch.cat(ins, a["axis"])
    if op in ("Dropout", "Identity"):
        return x
    if op == "Softmax":
        return F.softmax(x, a.get("axis", -1))
    if op == "LogSoftmax":
        return F.log_softmax(x, a.get("axis", -1))
    if op == "Clip":
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else None
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else None
        return torch.clamp(x, lo, hi)
    if op == "LRN":
        return F.local_response_norm(x, a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
    if op == "Pad":
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = [int(v) for v in ins[1].tolist()]
        value = float(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0
        n = len(pads) // 2
        if any(pads[:2]) or any(pads[n:n + 2]):
            raise ValueError("padding of the batch or channel axis")
        tp = []
        for i in reversed(range(2, n)):
            tp += [pads[i], pads[i + n]]
        return F.pad(x, tp, mode={"constant": "constant", "reflect": "reflect", "edge": "replicate"}[mode],
                     value=value) if mode == "constant" else F.pad(x, tp, mode={"reflect": "reflect", "edge": "replicate"}[mode])
    if op == "Constant":
        v = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        return v.double() if v.is_floating_point() else v
    raise ValueError("operator %s is not handled by this test converter" % op)


def main():
    path, prefix = sys.argv[1], sys.argv[2]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    print("checked")
    env = {}
    for t in model.graph.initializer:
        v = torch.from_numpy(numpy_helper.to_array(t).copy())
        env[t.name] = v.double() if v.is_floating_point() else v
    for arg in sys.argv[3:]:
        name, file = arg.split("=", 1)
        t = onnx.TensorProto()
        with open(file, "rb") as f:
            t.ParseFromString(f.read())
        env[name] = torch.from_numpy(numpy_helper.to_array(t).copy()).double()
    with torch.no_grad():
        for node in model.graph.node:
            ins = [env[n] if n else None for n in node.input]
            y = run_node(node.op_type, ins, attrs(node))
            env[node.output[0]] = y
    for k, o in enumerate(model.graph.output):
        y = env[o.name].double().numpy()
        with open("%s%d.pb" % (prefix, k), "wb") as f:
            f.write(numpy_helper.from_array(y, o.name).SerializeToString())


if __name__ == "__main__":
    main()
