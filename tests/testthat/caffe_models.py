# Writes small Caffe models for test-caffe.R: NAME.prototxt (text format,
# without weights), NAME.caffemodel (binary NetParameter with the weights),
# NAME_input.bin and NAME_output.bin (float64, C order) where the output is
# computed here with numpy following Caffe's layer definitions (ceil
# rounding in pooling, AVE divisors clipped to the padded input, LRN across
# channels, BatchNorm's scale factor, ...), independently of symnet.
# Usage: python3 caffe_models.py OUTDIR   (OUTDIR must hold caffe_min_pb2.py,
# made with: protoc --python_out=OUTDIR caffe_min.proto)
import os
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
import caffe_min_pb2 as pb  # noqa: E402
from google.protobuf import text_format  # noqa: E402

rng = np.random.RandomState(1234)


# ---- numpy reference layers (N, C, H, W) ----

def conv(x, w, b, stride, pad, group=1, dil=(1, 1)):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    ekh, ekw = dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1
    oh = (h + 2 * pad[0] - ekh) // stride[0] + 1
    ow = (wd + 2 * pad[1] - ekw) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    og = o // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(oh):
            for j in range(ow):
                patch = xs[:, :, i * stride[0]:i * stride[0] + ekh:dil[0], j * stride[1]:j * stride[1] + ekw:dil[1]]
                y[:, g * og:(g + 1) * og, i, j] = np.tensordot(patch, w[g * og:(g + 1) * og], axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def pool(x, kind, k, s, p):
    n, c, h, w = x.shape
    oh = int(np.ceil((h + 2 * p[0] - k[0]) / s[0])) + 1
    ow = int(np.ceil((w + 2 * p[1] - k[1]) / s[1])) + 1
    if p[0] > 0 and (oh - 1) * s[0] >= h + p[0]:
        oh -= 1
    if p[1] > 0 and (ow - 1) * s[1] >= w + p[1]:
        ow -= 1
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s[0] - p[0], j * s[1] - p[1]
            he, we = min(hs + k[0], h + p[0]), min(ws + k[1], w + p[1])
            size = (he - hs) * (we - ws)
            hs2, ws2, he2, we2 = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            win = x[:, :, hs2:he2, ws2:we2]
            y[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.sum(axis=(2, 3)) / size
    return y


def lrn(x, size, alpha, beta, k):
    sq = np.pad(x ** 2, ((0, 0), ((size - 1) // 2, (size - 1) // 2), (0, 0), (0, 0)))
    c = x.shape[1]
    scale = k + alpha / size * np.stack([sq[:, i:i + size].sum(axis=1) for i in range(c)], axis=1)
    return x * scale ** (-beta)


def softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---- proto helpers ----

def blob(arr, legacy=False):
    b = pb.BlobProto()
    arr = np.asarray(arr, dtype=np.float32)
    if legacy:
        shape = [1] * (4 - arr.ndim) + list(arr.shape)
        b.num, b.channels, b.height, b.width = shape
    else:
        b.shape.dim.extend(arr.shape)
    b.data.extend(arr.ravel().tolist())
    return b


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def write(outdir, name, net, x, y):
    weights = pb.NetParameter()
    weights.CopyFrom(net)
    structure = pb.NetParameter()
    structure.CopyFrom(net)
    for l in list(structure.layer) + list(structure.layers):
        del l.blobs[:]
    with open(os.path.join(outdir, name + ".prototxt"), "w") as f:
        f.write("# written by caffe_models.py\n")
        f.write(text_format.MessageToString(structure))
    with open(os.path.join(outdir, name + ".caffemodel"), "wb") as f:
        f.write(weights.SerializeToString())
    np.ascontiguousarray(x, dtype="<f8").tofile(os.path.join(outdir, name + "_input.bin"))
    np.ascontiguousarray(y, dtype="<f8").tofile(os.path.join(outdir, name + "_output.bin"))
    print(name, x.shape, y.shape)


def layer(net, name, type, bottom, top, **params):
    l = net.layer.add()
    l.name, l.type = name, type
    l.bottom.extend(bottom if isinstance(bottom, list) else [bottom])
    l.top.extend(top if isinstance(top, list) else [top])
    for k, v in params.items():
        if k == "blobs":
            l.blobs.extend(v)
        else:
            getattr(l, k).CopyFrom(v)
    return l


def classic(outdir):
    """Every classic layer in the current (LayerParameter) format."""
    net = pb.NetParameter()
    net.name = "classic"
    x = f32(rng.randn(2, 3, 15, 15))
    inp = pb.InputParameter()
    inp.shape.add().dim.extend(x.shape)
    layer(net, "input", "Input", [], "data", input_param=inp)

    w1, b1 = f32(rng.randn(8, 3, 3, 3) * 0.3), f32(rng.randn(8) * 0.1)
    cp = pb.ConvolutionParameter(num_output=8, stride=[2], pad=[1], kernel_size=[3])
    layer(net, "conv1", "Convolution", "data", "conv1", convolution_param=cp, blobs=[blob(w1), blob(b1)])
    h = conv(x, w1, b1, (2, 2), (1, 1))                        # 8 x 8 x 8
    layer(net, "relu1", "ReLU", "conv1", "conv1")
    h = np.maximum(h, 0)
    layer(net, "pool1", "Pooling", "conv1", "pool1",
          pooling_param=pb.PoolingParameter(pool=pb.PoolingParameter.MAX, kernel_size=3, stride=2))
    h = pool(h, "max", (3, 3), (2, 2), (0, 0))                 # 8 x 4 x 4 (ceil)
    layer(net, "norm1", "LRN", "pool1", "norm1",
          lrn_param=pb.LRNParameter(local_size=5, alpha=0.1, beta=0.75, k=2.0))
    h = lrn(h, 5, f32(0.1), 0.75, 2.0)
    w2, b2 = f32(rng.randn(8, 4, 3, 3) * 0.3), f32(rng.randn(8) * 0.1)
    cp = pb.ConvolutionParameter(num_output=8, kernel_h=3, kernel_w=3, pad_h=1, pad_w=1, group=2)
    layer(net, "conv2", "Convolution", "norm1", "conv2", convolution_param=cp, blobs=[blob(w2), blob(b2)])
    h = conv(h, w2, b2, (1, 1), (1, 1), group=2)              # 8 x 4 x 4
    mean, var, factor = f32(rng.randn(8) * 0.2), f32(rng.rand(8) + 0.5), f32(0.75)
    gamma, beta = f32(rng.rand(8) + 0.5), f32(rng.randn(8) * 0.2)
    layer(net, "bn2", "BatchNorm", "conv2", "conv2",
          batch_norm_param=pb.BatchNormParameter(use_global_stats=True, eps=1e-4),
          blobs=[blob(mean * factor), blob(var * factor), blob([factor])])
    layer(net, "scale2", "Scale", "conv2", "conv2", scale_param=pb.ScaleParameter(bias_term=True),
          blobs=[blob(gamma), blob(beta)])
    h = (h - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + f32(1e-4))
    h = h * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    layer(net, "tanh2", "TanH", "conv2", "tanh2")
    h = np.tanh(h)
    layer(net, "pool2", "Pooling", "tanh2", "pool2",
          pooling_param=pb.PoolingParameter(pool=pb.PoolingParameter.AVE, kernel_size=3, stride=2, pad=1))
    p2 = pool(h, "ave", (3, 3), (2, 2), (1, 1))                # 8 x 3 x 3 (ceil; padding counts)
    w3, b3 = f32(rng.randn(4, 8, 1, 1) * 0.5), f32(rng.randn(4) * 0.1)
    layer(net, "conv3", "Convolution", "pool2", "conv3",
          convolution_param=pb.ConvolutionParameter(num_output=4, kernel_size=[1]), blobs=[blob(w3), blob(b3)])
    layer(net, "sig3", "Sigmoid", "conv3", "sig3")
    s3 = 1 / (1 + np.exp(-conv(p2, w3, b3, (1, 1), (0, 0))))
    w4 = f32(rng.randn(4, 8, 1, 1) * 0.5)
    layer(net, "conv4", "Convolution", "pool2", "conv4",
          convolution_param=pb.ConvolutionParameter(num_output=4, kernel_size=[1], bias_term=False),
          blobs=[blob(w4)])
    c4 = conv(p2, w4, None, (1, 1), (0, 0))
    layer(net, "cat", "Concat", ["sig3", "conv4"], "cat", concat_param=pb.ConcatParameter(axis=1))
    cat = np.concatenate([s3, c4], axis=1)
    layer(net, "esum", "Eltwise", ["cat", "pool2"], "esum",
          eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.SUM, coeff=[0.5, 2.0]))
    esum = 0.5 * cat + 2.0 * p2
    layer(net, "eprod", "Eltwise", ["esum", "pool2"], "eprod",
          eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.PROD))
    eprod = esum * p2
    layer(net, "emax", "Eltwise", ["eprod", "cat"], "emax",
          eltwise_param=pb.EltwiseParameter(operation=pb.EltwiseParameter.MAX))
    h = np.maximum(eprod, cat)
    layer(net, "flat", "Flatten", "emax", "flat")
    h = h.reshape(h.shape[0], -1)                               # 72
    w5, b5 = f32(rng.randn(10, 72) * 0.2), f32(rng.randn(10) * 0.1)
    layer(net, "fc1", "InnerProduct", "flat", "fc1",
          inner_product_param=pb.InnerProductParameter(num_output=10), blobs=[blob(w5), blob(b5)])
    h = h @ w5.T + b5
    layer(net, "relu5", "ReLU", "fc1", "fc1", relu_param=pb.ReLUParameter(negative_slope=0.1))
    h = np.where(h > 0, h, f32(0.1) * h)
    layer(net, "drop5", "Dropout", "fc1", "fc1", dropout_param=pb.DropoutParameter(dropout_ratio=0.3))
    w6, b6 = f32(rng.randn(10, 5) * 0.3), f32(rng.randn(5) * 0.1)   # transposed storage (in, out)
    layer(net, "fc2", "InnerProduct", "fc1", "fc2",
          inner_product_param=pb.InnerProductParameter(num_output=5, transpose=True), blobs=[blob(w6), blob(b6)])
    h = h @ w6 + b6
    layer(net, "prob", "Softmax", "fc2", "prob")
    y = softmax(h)
    # a layer excluded from the TEST phase
    l = layer(net, "train_only", "Dropout", "prob", "prob_train")
    l.include.add().phase = pb.TRAIN
    write(outdir, "classic", net, x, y)


def legacy(outdir):
    """V1 'layers' with enum types, net-level input/input_dim, legacy blob dims."""
    net = pb.NetParameter()
    net.name = "legacy"
    net.input.append("data")
    x = f32(rng.randn(2, 1, 10, 10))
    net.input_dim.extend(x.shape)

    def v1(name, type, bottom, top, **params):
        l = net.layers.add()
        l.name, l.type = name, type
        l.bottom.append(bottom)
        l.top.append(top)
        for k, v in params.items():
            if k == "blobs":
                l.blobs.extend(v)
            else:
                getattr(l, k).CopyFrom(v)

    V = pb.V1LayerParameter
    w1, b1 = f32(rng.randn(4, 1, 3, 3) * 0.5), f32(rng.randn(4) * 0.1)
    v1("conv1", V.CONVOLUTION, "data", "conv1", convolution_param=pb.ConvolutionParameter(num_output=4, kernel_size=[3]),
       blobs=[blob(w1, True), blob(b1, True)])
    h = np.maximum(conv(x, w1, b1, (1, 1), (0, 0)), 0)         # 4 x 8 x 8
    v1("relu1", V.RELU, "conv1", "conv1")
    v1("pool1", V.POOLING, "conv1", "pool1",
       pooling_param=pb.PoolingParameter(pool=pb.PoolingParameter.MAX, kernel_size=2, stride=2))
    h = pool(h, "max", (2, 2), (2, 2), (0, 0))                  # 4 x 4 x 4
    w2, b2 = f32(rng.randn(6, 64) * 0.2), f32(rng.randn(6) * 0.1)
    v1("ip1", V.INNER_PRODUCT, "pool1", "ip1", inner_product_param=pb.InnerProductParameter(num_output=6),
       blobs=[blob(w2, True), blob(b2, True)])
    h = h.reshape(2, -1) @ w2.T + b2
    v1("sig1", V.SIGMOID, "ip1", "ip1")
    h = 1 / (1 + np.exp(-h))
    w3, b3 = f32(rng.randn(3, 6) * 0.5), f32(rng.randn(3) * 0.1)
    v1("ip2", V.INNER_PRODUCT, "ip1", "ip2", inner_product_param=pb.InnerProductParameter(num_output=3),
       blobs=[blob(w3, True), blob(b3, True)])
    h = h @ w3.T + b3
    v1("prob", V.SOFTMAX, "ip2", "prob")
    write(outdir, "legacy", net, x, softmax(h))


if __name__ == "__main__":
    classic(sys.argv[1])
    legacy(sys.argv[1])
