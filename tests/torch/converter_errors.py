#!/usr/bin/python3
"""What scripts/torch_to_layercache.py refuses, and how it says so: a layer without a
layercache twin is a ConversionError naming the layer's path. Exits 1 on the first surprise.

  /usr/bin/python3 tests/torch/converter_errors.py
"""
import os
import sys

from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import torch_to_layercache as t2l  # noqa: E402

class Net(nn.Module):  # a module of one's own: the order of its forward is not known
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


CASES = [  # (model, input shape, what the message must contain)
    (nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Dropout())), (4,),
     "network1/Dropout: layercache has no twin"),
    (nn.Sequential(nn.Conv2d(1, 2, (3, 5))), (1, 8, 8), "conv2d1: kernel (3, 5) is not square"),
    (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), (1, 8, 8), "conv2d1: Conv2d with dilation"),
    (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), (1, 8, 8), "max_pool2d1: MaxPool2d with"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Softmax(dim=1)), (1, 8, 8), "softmax1: Softmax(dim=1)"),
    (nn.Sequential(nn.Linear(5, 3)), (4,), "dense1: Linear expects a vector (5), gets (4)"),
    (nn.Sequential(nn.Linear(8, 3)), (1, 8, 8), "add nn.Flatten before it"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), (1, 8, 8), "ends in a Flatten of an image"),
    (nn.Sequential(nn.LeakyReLU(-0.1)), (4,), "leaky_relu1: LeakyReLU with a negative slope"),
    (Net(), (4,), "Net: layercache has no twin for it"),
]

for model, shape, expected in CASES:
    try:
        t2l.convert(model, shape)
    except t2l.ConversionError as e:
        if expected not in str(e):
            sys.exit(f"{model}: the message\n  {e}\ndoes not contain\n  {expected}")
        print(f"refused: {e}")
        continue
    sys.exit(f"{model} on {shape} was converted, but should be refused ({expected})")
print(f"all {len(CASES)} models without a layercache twin are refused, naming the layer")
