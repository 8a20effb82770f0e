#!/usr/bin/python3
"""Converts a PyTorch model's weights into a layercache checkpoint (docs/pytorch.md).

The model is an nn.Sequential (nested ones allowed) of layers layercache has. Its layercache
twin is a Network of the same layers in the same order, which this prints:

    nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(8 * 13 * 13, 10))
    Network{Conv2D({.in_channels = 1, .out_channels = 8, .kernel = 3}), ReLU(),
            MaxPool2D({.kernel = 2, .stride = 2}), Flatten(), Dense(1352, 10)}

The checkpoint holds the tree "params", which load_params / load_into read into the twin's
params; the layouts are converted on the way:
  - nn.Linear's weight (out, in) is layercache's Dense weight as it is, its bias a column;
  - nn.Conv2d's weight (o, c, kh, kw) becomes layercache's (o × c·k·k) with kernel position
    (kh, kw) of channel ci at column (ci·k + kw)·k + kh;
  - a Linear after a Flatten of an image gets its columns permuted: torch flattens (c, h, w)
    row-major, layercache keeps each channel column-major.
The twin then computes what the torch model computes, on the same images (NCHW for torch,
layercache's layout for layercache: layercache/layout.hpp's from_row_major converts).

As a command (Debian: python3-torch, python3-h5py):
    torch_to_layercache.py MODEL.pt OUT.h5 --input-shape 1,28,28 [--float64] [--metadata TEXT]
where MODEL.pt holds the whole module, torch.save(model, "MODEL.pt"). A state_dict alone does
not say which layer is which: load it into your model and call save_checkpoint from Python:
    import torch_to_layercache
    torch_to_layercache.save_checkpoint("params.h5", model, (1, 28, 28))
"""
import argparse
import sys
import zlib

import h5py
import numpy as np
import torch
from torch import nn


class ConversionError(Exception):
    """A model (or a layer of it) that has no layercache twin; the message names its path."""


# ------------------------------------------------------------------------------------------
# One converter per torch layer type, listed in CONVERTERS with the layercache kind of its twin.
# Each gets the module, the per-sample input shape (torch's order: (c, h, w) for an image) and
# `order`, the index into torch's order of each value of layercache's vector when the two
# differ (after a Flatten of an image), or None. It returns the C++ spelling of the twin
# layer, its tensors [(name, 2-D array)], the output shape and the output order.


def _shape(shape):
    """A shape as layercache writes it: (784) or (1, 28, 28)."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _as_pair(value, what):
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if pair[0] != pair[1]:
        raise ConversionError(f"{what} {_shape(pair)} is not square: this converter writes "
                              "one number per size")
    return int(pair[0])


def _expect_vector(shape, n, what):
    if len(shape) != 1 or (n is not None and shape[0] != n):
        raise ConversionError(f"{what} expects a vector ({n}), gets {_shape(shape)}"
                              + (" (add nn.Flatten before it)" if len(shape) > 1 else ""))


def _linear(m, shape, order):
    _expect_vector(shape, m.in_features, "Linear")
    weight = m.weight.detach().numpy()  # (out, in): layercache's (n_out × n_in) as it is
    if order is not None:
        weight = weight[:, order]  # column j of layercache's weight reads its value j
    tensors = [("weight", weight)]
    if m.bias is not None:
        tensors.append(("bias", m.bias.detach().numpy().reshape(-1, 1)))
    options = "" if m.bias is not None else ", {.bias = false}"
    return f"Dense({m.in_features}, {m.out_features}{options})", tensors, (m.out_features,), None


def _conv2d(m, shape, order):
    k = _as_pair(m.kernel_size, "kernel")
    stride, padding = _as_pair(m.stride, "stride"), _as_pair(m.padding, "padding")
    if _as_pair(m.dilation, "dilation") != 1 or m.groups != 1 or m.padding_mode != "zeros":
        raise ConversionError("Conv2d with dilation, groups or a padding mode other than "
                              "zeros: this converter does not convert them")
    if len(shape) != 3 or shape[0] != m.in_channels:
        raise ConversionError(f"Conv2d expects an image ({m.in_channels}, h, w), gets "
                              f"{_shape(shape)}")
    c, h, w = shape
    o = m.out_channels
    # (o, c, kh, kw) → (o, c, kw, kh) → rows of c·k·k: column (ci·k + kw)·k + kh.
    weight = m.weight.detach().permute(0, 1, 3, 2).reshape(o, c * k * k).numpy()
    tensors = [("weight", weight)]
    if m.bias is not None:
        tensors.append(("bias", m.bias.detach().numpy().reshape(-1, 1)))
    options = f".in_channels = {c}, .out_channels = {o}, .kernel = {k}"
    options += f", .stride = {stride}" if stride != 1 else ""
    options += f", .padding = {padding}" if padding != 0 else ""
    options += ", .bias = false" if m.bias is None else ""
    out = (o, (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)
    return f"Conv2D({{{options}}})", tensors, out, None


def _max_pool2d(m, shape, order):
    k = _as_pair(m.kernel_size, "kernel")
    stride = k if m.stride is None else _as_pair(m.stride, "stride")
    if (_as_pair(m.padding, "padding") != 0 or _as_pair(m.dilation, "dilation") != 1
            or m.ceil_mode or m.return_indices):
        raise ConversionError("MaxPool2d with padding, dilation, ceil_mode or return_indices: "
                              "this converter does not convert them")
    if len(shape) != 3:
        raise ConversionError(f"MaxPool2d expects an image (c, h, w), gets {_shape(shape)}")
    c, h, w = shape
    out = (c, (h - k) // stride + 1, (w - k) // stride + 1)
    return f"MaxPool2D({{.kernel = {k}, .stride = {stride}}})", [], out, None


def _flatten(m, shape, order):
    if m.start_dim != 1 or m.end_dim != -1:
        raise ConversionError("Flatten other than Flatten(1, -1): layercache flattens the "
                              "whole sample")
    size = int(np.prod(shape))
    if len(shape) == 3:
        # layercache's value j = (ci, wi, hi) in its order sits at torch's (ci, hi, wi).
        c, h, w = shape
        ci, wi, hi = np.meshgrid(np.arange(c), np.arange(w), np.arange(h), indexing="ij")
        order = (ci * h * w + hi * w + wi).reshape(-1)
    return "Flatten()", [], (size,), order


def _elementwise(spelling):
    """A layer that maps each value on its own: shape and order pass through."""
    def convert(m, shape, order):
        return spelling(m), [], shape, order
    return convert


def _softmax(spelling):
    def convert(m, shape, order):
        if m.dim not in (1, -1) or len(shape) != 1:
            raise ConversionError(f"{type(m).__name__}(dim={m.dim}) on {_shape(shape)}: layercache's "
                                  "is over all values of a sample, which is dim 1 of a vector")
        return spelling, [], shape, order  # over all values: their order does not matter
    return convert


def _leaky_relu(m):
    if m.negative_slope < 0:
        raise ConversionError("LeakyReLU with a negative slope: layercache's needs slope ≥ 0")
    return f"LeakyReLU({{.slope = {m.negative_slope!r}}})"


# torch layer type → (layercache kind, converter). Adding a layer is one function and a row.
CONVERTERS = {
    nn.Linear: ("dense", _linear),
    nn.Conv2d: ("conv2d", _conv2d),
    nn.MaxPool2d: ("max_pool2d", _max_pool2d),
    nn.Flatten: ("flatten", _flatten),
    nn.ReLU: ("relu", _elementwise(lambda m: "ReLU()")),
    nn.LeakyReLU: ("leaky_relu", _elementwise(_leaky_relu)),
    nn.ELU: ("elu", _elementwise(lambda m: f"ELU({{.alpha = {m.alpha!r}}})")),
    nn.GELU: ("gelu", _elementwise(lambda m: "GELU({.tanh_approximation = true})"
                                   if m.approximate == "tanh" else "GELU()")),
    nn.Sigmoid: ("sigmoid", _elementwise(lambda m: "Sigmoid()")),
    nn.Tanh: ("tanh", _elementwise(lambda m: "Tanh()")),
    nn.Identity: ("identity", _elementwise(lambda m: "Identity()")),
    nn.Softmax: ("softmax", _softmax("Softmax()")),
    nn.LogSoftmax: ("log_softmax", _softmax("LogSoftmax()")),
}


def convert(model, input_shape, path=""):
    """The twin of `model` for samples of `input_shape` (torch's order, e.g. (1, 28, 28)).

    Returns (params, spelling, output_shape): params is a dict name → 2-D numpy array or dict
    (a group), in the twin's order, with layercache's names (dense1, relu1, ...); spelling is
    the twin's C++ expression. Raises ConversionError naming the path of a layer that has no
    layercache twin.
    """
    params, spelling, shape, order = _convert(model, tuple(input_shape), None, path)
    if order is not None:
        raise ConversionError("the model ends in a Flatten of an image: its output is in "
                              "another order than layercache's (end it with a Linear)")
    return params, spelling, shape


def _convert(module, shape, order, path):
    if isinstance(module, nn.Sequential):
        params, parts, counters = {}, [], {}
        for child in module:
            kind = "network" if isinstance(child, nn.Sequential) else _kind(child, path)
            counters[kind] = counters.get(kind, 0) + 1
            name = f"{kind}{counters[kind]}"
            child_params, child_spelling, shape, order = _convert(
                child, shape, order, f"{path}/{name}" if path else name)
            params[name] = child_params
            parts.append(child_spelling)
        return params, "Network{" + ", ".join(parts) + "}", shape, order
    if not path:
        _kind(module, "")  # the model itself (a Sequential checks its children's types)
    try:
        spelling, tensors, shape, order = CONVERTERS[type(module)][1](module, shape, order)
    except ConversionError as e:
        raise ConversionError(f"{path or 'the model'}: {e}") from None
    return dict(tensors), spelling, shape, order


def _kind(module, parent_path):
    """The layercache kind of `module`'s twin; ConversionError when it has none."""
    if type(module) not in CONVERTERS:
        known = ", ".join(sorted(t.__name__ for t in CONVERTERS)) + ", Sequential"
        hint = ("; a module of your own: put its layers in an nn.Sequential, in the order its "
                "forward runs them" if list(module.children()) else "")
        raise ConversionError(f"{parent_path + '/' if parent_path else ''}"
                              f"{type(module).__name__}: layercache has no twin for it "
                              f"(convertible: {known}){hint}")
    return CONVERTERS[type(module)][0]


# ------------------------------------------------------------------------------------------
# Writing a layercache checkpoint (docs/checkpoints.md, "File format (version 1)").


def save_checkpoint(path, model, input_shape, dtype=np.float32, metadata=""):
    """Converts `model` (see convert) and writes its params as the tree "params" of a layercache
    checkpoint at `path`, in float32 (or float64 with dtype=np.float64). Returns the twin's C++
    spelling."""
    params, spelling, _ = convert(model, input_shape)
    write_checkpoint(path, {"params": params}, dtype, metadata)
    return spelling


def write_checkpoint(path, trees, dtype=np.float32, metadata=""):
    """Writes named trees (dicts of name → 2-D array or dict) as a layercache checkpoint, with
    the checksums layercache verifies."""
    element = {np.float32: "float32", np.float64: "float64"}[dtype]
    fields = [f"element_type {element}", "epoch 0", "step 0", f"metadata {metadata}"]
    with h5py.File(path, "w", libver=("v108", "v108"), track_order=True) as f:
        for name, tree in trees.items():
            _write_group(f, name, tree, np.dtype(dtype).newbyteorder("<"), fields)
        for key, value in [("format", "layercache-checkpoint"), ("element_type", element),
                           ("layout", "row-major"), ("metadata", metadata)]:
            f.attrs[key] = np.bytes_(value.encode() + b"\0")
        for key, value in [("format_version", 1), ("epoch", 0), ("step", 0)]:
            f.attrs[key] = np.int64(value)
        f.attrs["crc32"] = np.uint32(zlib.crc32(b"".join(s.encode() + b"\0" for s in fields)))


def _write_group(parent, path, tree, dtype, fields):
    group = parent.create_group(path.rsplit("/", 1)[-1], track_order=True)
    fields.append(f"group {path}")
    for name, value in tree.items():
        if isinstance(value, dict):
            _write_group(group, f"{path}/{name}", value, dtype, fields)
            continue
        values = np.ascontiguousarray(value, dtype=dtype)
        dataset = group.create_dataset(name, data=values)
        dataset.attrs["crc32"] = np.uint32(zlib.crc32(values.tobytes()))
        fields.append(f"dataset {values.shape[0]} {values.shape[1]} {path}/{name}")


def main():
    parser = argparse.ArgumentParser(
        description="Writes a PyTorch model's weights as a layercache checkpoint (tree "
                    "'params') and prints the layercache network they fit.")
    parser.add_argument("model", help="the whole module, saved with torch.save(model, FILE)")
    parser.add_argument("output", help="the checkpoint to write (.h5)")
    parser.add_argument("--input-shape", required=True,
                        help="one sample's shape as torch sees it, e.g. 1,28,28 or 784")
    parser.add_argument("--float64", action="store_true", help="write float64 tensors")
    parser.add_argument("--metadata", default="", help="the checkpoint's metadata text")
    args = parser.parse_args()
    try:  # a whole module needs unpickling, which newer torch does not do by default
        model = torch.load(args.model, weights_only=False)
    except TypeError:  # torch before 1.13 has no weights_only
        model = torch.load(args.model)
    if not isinstance(model, nn.Module):
        sys.exit(f"{args.model} holds a {type(model).__name__}, not a module: save the model "
                 "itself (torch.save(model, FILE)), or load the state_dict into your model "
                 "and call save_checkpoint from Python")
    shape = tuple(int(d) for d in args.input_shape.split(","))
    try:
        spelling = save_checkpoint(args.output, model, shape,
                                   np.float64 if args.float64 else np.float32, args.metadata)
    except ConversionError as e:
        sys.exit(f"torch_to_layercache: {e}")
    print(spelling)


if __name__ == "__main__":
    main()
