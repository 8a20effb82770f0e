#!/usr/bin/python3
"""The PyTorch models scripts/check_torch converts to layercache, with real inputs and torch's
outputs for them. tests/torch/torch_twins.cpp holds their layercache twins, in the same order
and under the same names. For each model NAME it writes to DIR:
  NAME.pt          the whole module (torch.save), which scripts/torch_to_layercache.py reads
  NAME.input.bin   the first 64 Fashion-MNIST test images, NCHW, raw float32 (float64)
  NAME.output.bin  torch's outputs for them, row-major
  NAME.shape       the input shape torch sees, e.g. 1,28,28 (the converter's --input-shape)

  /usr/bin/python3 tests/torch/torch_models.py DIR [DATA_DIR]
"""
import gzip
import sys

import numpy as np
import torch
from torch import nn


def images(data_dir, n):
    """The first n test images, (n, 1, 28, 28) float32 in [0, 1] (IDX stores them NCHW)."""
    with gzip.open(f"{data_dir}/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return (raw[: n * 784].reshape(n, 1, 28, 28) / np.float32(255)).astype(np.float32)


def models():
    """name → (model, input transform). Layers get torch's own initialization (seeded)."""
    torch.manual_seed(0)
    return {
        # A Flatten of an image before a Linear: its columns are permuted for layercache.
        "mlp": (nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)),
                None),
        "cnn": (nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(8, 16, 3, stride=2, bias=False), nn.Tanh(), nn.Flatten(),
                              nn.Linear(16 * 6 * 6, 32), nn.GELU(), nn.Linear(32, 10),
                              nn.LogSoftmax(dim=1)), None),
        # Height and width differ (the images' left 20 columns), so a swap of the two shows.
        "cnn_not_square": (nn.Sequential(nn.Conv2d(1, 4, 5, stride=2, padding=2), nn.ELU(),
                                         nn.MaxPool2d(3, stride=2), nn.Flatten(),
                                         nn.Linear(4 * 6 * 4, 10)),
                           lambda x: np.ascontiguousarray(x[:, :, :, :20])),
        "every_activation": (nn.Sequential(
            nn.Flatten(), nn.Linear(784, 64), nn.ELU(alpha=0.5),
            nn.Sequential(nn.Linear(64, 64, bias=False), nn.LeakyReLU(0.1), nn.Identity()),
            nn.Linear(64, 64), nn.GELU(approximate="tanh"), nn.Linear(64, 64), nn.Sigmoid(),
            nn.Linear(64, 10), nn.Softmax(dim=1)), None),
        "mlp_float64": (nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Tanh(),
                                      nn.Linear(32, 10)).double(), None),
    }


def main():
    out, data_dir = sys.argv[1], (sys.argv[2:] or ["/usr/share/datasets/fashion-mnist"])[0]
    x = images(data_dir, 64)
    for name, (model, transform) in models().items():
        model.eval()
        dtype = next(model.parameters()).dtype
        inputs = transform(x) if transform else x
        inputs = inputs.astype(np.float64 if dtype == torch.float64 else np.float32)
        with torch.no_grad():
            outputs = model(torch.from_numpy(inputs)).numpy()
        torch.save(model, f"{out}/{name}.pt")
        inputs.tofile(f"{out}/{name}.input.bin")
        np.ascontiguousarray(outputs).tofile(f"{out}/{name}.output.bin")
        with open(f"{out}/{name}.shape", "w") as f:
            f.write(",".join(str(d) for d in inputs.shape[1:]))
        print(f"{name}: torch {torch.__version__}, input {inputs.shape}, output {outputs.shape}")


if __name__ == "__main__":
    main()
