#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (fuzz/*.cpp) into DIR/idx, DIR/csv and
DIR/checkpoint: small valid inputs of each format, plain and gzip-compressed, and checkpoints
in the layercache format made with h5py (Debian: python3-h5py), old style (variable-length
strings) and new (fixed-length strings and checksums), plus the hostile checkpoints of
tests/checkpoint/hostile_checkpoints.py.

  fuzz/make_corpus.py DIR
"""
import gzip
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "checkpoint"))


def put(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def idx_corpus(directory):
    images = struct.pack(">I3I", 0x803, 2, 3, 3) + bytes(range(18))
    labels = struct.pack(">II", 0x801, 2) + bytes([1, 7])
    doubles = struct.pack(">II", 0xE01, 2) + struct.pack(">2d", 0.5, -2.0)
    for pick, name, data in ((0, "images", images), (1, "labels", labels),
                             (2, "pair", images), (0, "doubles", doubles)):
        put(directory, name, bytes([pick]) + data)
        put(directory, name + ".gz", bytes([pick]) + gzip.compress(data, mtime=0))


def csv_corpus(directory):
    files = {
        "labels": (0b0101, 0, b"label,a,b\n1,0.5,2\n0,-1e3,3.25\n"),
        "targets": (0b1001, 2, b"a,b,y\n1,2,3\n4,5,6\n"),
        "plain": (0b0000, 0, b"1,2\n3,4\n\n5,6\r\n"),
        "semicolons": (0b0110, 1, b"1;2;3\n4;5;6\n"),
        "n_classes": (0b1100, 5, b"3,0.5\n4,0.25\n"),
        "shape": (0b11_0000, 0x10, b"1,2,3,4\n5,6,7,8\n"),
    }
    for name, (a, b, text) in files.items():
        put(directory, name, bytes([a, b]) + text)
        put(directory, name + ".gz", bytes([a, b]) + gzip.compress(text, mtime=0))


def write_checkpoint(path, old_style):
    """A checkpoint as layercache writes it (or, old_style, as earlier versions did)."""
    import h5py
    import numpy as np
    libver = ("earliest", "v110") if old_style else ("v108", "v108")
    with h5py.File(path, "w", libver=libver, track_order=True) as f:
        text = {"format": "layercache-checkpoint", "element_type": "float32",
                "layout": "row-major", "metadata": "seed"}
        for key, value in text.items():
            f.attrs[key] = value if old_style else np.bytes_(value.encode() + b"\0")
        for key, value in (("format_version", 1), ("epoch", 2), ("step", 5)):
            f.attrs[key] = np.int64(value)
        fields = ["element_type float32", "epoch 2", "step 5", "metadata seed"]
        tensors = {"params/dense/weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                   "params/dense/bias": np.ones((2, 1), np.float32),
                   "optimizer/count": np.full((1, 1), 7, np.float32)}
        groups = set()
        for path_in_file, values in tensors.items():
            parts = path_in_file.split("/")
            for i in range(1, len(parts)):
                group = "/".join(parts[:i])
                if group not in groups:
                    groups.add(group)
                    f.require_group(group)
                    fields.append("group " + group)
            dataset = f.create_dataset(path_in_file, data=values)
            fields.append("dataset %d %d %s" % (values.shape + (path_in_file,)))
            if not old_style:
                dataset.attrs["crc32"] = np.uint32(zlib.crc32(values.tobytes()))
        f.create_group("params/relu", track_order=True)
        fields.append("group params/relu")
        if not old_style:
            f.attrs["crc32"] = np.uint32(zlib.crc32(b"".join(s.encode() + b"\0" for s in fields)))


def checkpoint_corpus(directory):
    import hostile_checkpoints
    os.makedirs(directory, exist_ok=True)
    write_checkpoint(os.path.join(directory, "current.h5"), old_style=False)
    write_checkpoint(os.path.join(directory, "old_style.h5"), old_style=True)
    for kind, make in hostile_checkpoints.KINDS.items():
        make(os.path.join(directory, kind + ".h5"))
    # The variable-length strings also in the current file format (the fuzz target skips
    # the earliest one, which h5py writes by default).
    for damage in (None, "zeroed", "index"):
        name = "vlen_%s_v108.h5" % (damage or "intact")
        hostile_checkpoints.vlen(os.path.join(directory, name), damage, libver="v108")
    # Each also with one byte more: odd sizes are read with load_params.
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        put(directory, name + ".odd", data + b"\0")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    idx_corpus(os.path.join(sys.argv[1], "idx"))
    csv_corpus(os.path.join(sys.argv[1], "csv"))
    checkpoint_corpus(os.path.join(sys.argv[1], "checkpoint"))
