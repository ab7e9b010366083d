# Builds small networks with PyTorch, exports them to ONNX (opset 13) and
# writes their input and PyTorch's output as ONNX TensorProto files, for
# test-onnx.R.  Usage: python3 onnx_torch_models.py OUTDIR
# Every network has random weights (fixed seeds), randomised BatchNorm
# statistics, and is put in eval mode before export.
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        x = F.max_pool2d(torch.tanh(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        x = torch.sigmoid(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    """ResNet-18 layout (2 BasicBlocks per stage) at reduced width for 32x32 inputs."""

    def __init__(self, widths=(16, 32, 64, 128), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        blocks = []
        cin = widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            blocks.append(BasicBlock(w, w, 1))
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 3, 1, 1)
        x = self.layers(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hid, 1, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(),
            nn.Conv2d(hid, hid, 3, stride, 1, groups=hid, bias=False), nn.BatchNorm2d(hid), nn.ReLU6(),
            nn.Conv2d(hid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class MobileNet(nn.Module):
    """MobileNet (v1 depthwise-separable stem, then v2 inverted residual blocks)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
                                  nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
                                  nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(24, 24, 1, 4), InvertedResidual(24, 32, 2, 4),
                                    InvertedResidual(32, 32, 1, 4), InvertedResidual(32, 48, 2, 6))
        self.head = nn.Sequential(nn.Conv2d(48, 96, 1, bias=False), nn.BatchNorm2d(96), nn.ReLU6())
        self.fc = nn.Linear(96, classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(F.dropout(x, 0.2, self.training))


class Misc(nn.Module):
    """Covers more operators: ConvTranspose, AvgPool with padding (both
    count_include_pad settings), ceil-mode pooling, Concat, LeakyReLU, Pad,
    Sub/Mul/Div with constants, Clip, Reshape, Transpose, MatMul (3-D by 2-D
    and 3-D by 3-D), Softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 1, 1)
        self.deconv = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.conv_b = nn.Conv2d(3, 4, 1)
        self.proj = nn.Parameter(torch.randn(8, 6) * 0.3)
        self.fc = nn.Linear(96 + 256, 5)

    def forward(self, x):
        a = F.leaky_relu(self.conv(x), 0.1)                       # 8 x 12 x 12
        a = self.deconv(a)                                         # 4 x 24 x 24
        a = F.avg_pool2d(a, 3, 2, 1, count_include_pad=False)      # 4 x 12 x 12
        b = torch.tanh(self.conv_b(x))                             # 4 x 12 x 12
        c = torch.cat([a, b], 1)                                   # 8 x 12 x 12
        c = F.max_pool2d(c, 3, 2, ceil_mode=True)                  # 8 x 6 x 6
        c = F.pad(c, (1, 0, 0, 1))                                 # 8 x 7 x 7
        c = F.avg_pool2d(c, 2, 2, ceil_mode=True)                  # 8 x 4 x 4
        c = (c - 0.5) * 2.0 / 3.0
        c = torch.clamp(c, -1.0, 1.5)
        c = c.reshape(-1, 8, 16).transpose(1, 2)                   # 16 x 8
        c = torch.matmul(c, self.proj)                             # 16 x 6
        g = torch.matmul(c, c.transpose(1, 2)) * 0.1               # 16 x 16
        c = torch.cat([c.reshape(-1, 96), g.reshape(-1, 256)], 1)
        return F.softmax(self.fc(c), dim=1)


def randomize_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


def save_tensor(arr, path, name):
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def export(name, model, shape, outdir, seed, fuse_bn=False, dynamic=True):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    randomize_bn(model, gen)
    model.eval()
    x = torch.randn(*shape, generator=gen)
    with torch.no_grad():
        y = model(x)
    path = os.path.join(outdir, name + ".onnx")
    kwargs = dict(opset_version=13, input_names=["input"], output_names=["output"])
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    if not fuse_bn:
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    torch.onnx.export(model, x, path, **kwargs)
    onnx.checker.check_model(onnx.load(path))
    save_tensor(x.numpy(), os.path.join(outdir, name + "_input.pb"), "input")
    save_tensor(y.numpy(), os.path.join(outdir, name + "_output.pb"), "output")
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(name, " ".join(ops))


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    export("lenet", LeNet(), (2, 1, 28, 28), outdir, 1)
    torch.manual_seed(10)
    export("resnet", ResNet(), (2, 3, 32, 32), outdir, 11)
    torch.manual_seed(20)
    export("mobilenet", MobileNet(), (2, 3, 32, 32), outdir, 21, fuse_bn=True)
    torch.manual_seed(30)
    export("misc", Misc(), (2, 3, 12, 12), outdir, 31, dynamic=False)


if __name__ == "__main__":
    main()
