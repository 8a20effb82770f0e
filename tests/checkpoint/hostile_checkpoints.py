#!/usr/bin/python3
"""Writes checkpoints that are valid HDF5 but hostile to a reader, for the checkpoint tests
(tests/test_checkpoint_hostile.cpp), with h5py (Debian: python3-h5py):

  hostile_checkpoints.py KIND FILE

KIND is one of
  diamond      groups that each hard-link the next group twice: 2^40 paths to one dataset
  shared       one dataset hard-linked from two trees ("params" and "optimizer")
  cycle        a group that hard-links its own parent
  unwritten    chunked datasets never written: no room in the file, twice its size in all
  vlen         variable-length string attributes (what h5py writes for a Python str), intact
  vlen_zeroed  the same, with the size of the global heap's free space zeroed (two bytes)
  vlen_index   the same, with the string's reference naming an object the heap lacks

None carries crc32 attributes: the structure itself is what a reader must refuse.
"""
import sys

import h5py
import numpy as np


def root_attributes(f, strings):
    """The four required root attributes; Python str (variable-length) or fixed-length bytes."""
    for key, value in (("format", "layercache-checkpoint"), ("element_type", "float32"),
                       ("layout", "row-major")):
        f.attrs[key] = value if strings == "vlen" else np.bytes_(value.encode() + b"\0")
    f.attrs["format_version"] = np.int64(1)


def diamond(path, depth=40):
    with h5py.File(path, "w", libver="v108") as f:  # links in the object headers: compact
        root_attributes(f, "fixed")
        group = f.create_group("params")
        for _ in range(depth):
            lower = group.create_group("a")
            group["b"] = lower
            group = lower
        group.create_dataset("weight", data=np.ones((2, 2), np.float32))


def shared(path):
    with h5py.File(path, "w", libver="v108") as f:  # links in the object headers: compact
        root_attributes(f, "fixed")
        weight = f.create_dataset("params/weight", data=np.ones((2, 2), np.float32))
        f.create_group("optimizer")["weight"] = weight


def cycle(path):
    with h5py.File(path, "w", libver="v108") as f:  # links in the object headers: compact
        root_attributes(f, "fixed")
        params = f.create_group("params")
        params.create_group("inner")["back"] = params


def unwritten(path):
    with h5py.File(path, "w", libver="v108") as f:
        root_attributes(f, "fixed")
        params = f.create_group("params")
        for i in range(10):
            params.create_dataset("w%d" % i, shape=(16, 16), dtype=np.float32, chunks=(8, 8))
    size = len(open(path, "rb").read())
    assert 16 * 16 * 4 < size < 10 * 16 * 16 * 4, size


def vlen(path, damage=None, libver="earliest"):
    with h5py.File(path, "w", libver=libver) as f:
        root_attributes(f, "vlen")
        f.create_dataset("params/weight", data=np.ones((2, 2), np.float32))
    if damage is None:
        return
    data = bytearray(open(path, "rb").read())
    heap = data.find(b"GCOL")
    assert heap >= 0 and data.find(b"GCOL", heap + 1) < 0, "expected one global heap"
    size = int.from_bytes(data[heap + 8:heap + 16], "little")
    at = heap + 16  # objects: index (2), reference count (2), reserved (4), size (8), data
    while True:
        index = int.from_bytes(data[at:at + 2], "little")
        object_size = int.from_bytes(data[at + 8:at + 16], "little")
        if index == 0:
            break
        at += 16 + (object_size + 7) // 8 * 8
    assert heap + 16 <= at < heap + size
    if damage == "zeroed":  # the free space's size (below 2^16): libhdf5 never gets past it
        assert object_size < 1 << 16
        data[at + 8:at + 10] = b"\0\0"
    else:  # every reference to object 1 of the heap names object 77 instead
        reference = heap.to_bytes(8, "little") + (1).to_bytes(4, "little")
        assert data.count(reference) >= 1
        data = data.replace(reference, heap.to_bytes(8, "little") + (77).to_bytes(4, "little"))
    open(path, "wb").write(bytes(data))


KINDS = {"diamond": diamond, "shared": shared, "cycle": cycle, "unwritten": unwritten,
         "vlen": vlen,
         "vlen_zeroed": lambda path: vlen(path, "zeroed"),
         "vlen_index": lambda path: vlen(path, "index")}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        sys.exit(__doc__)
    KINDS[sys.argv[1]](sys.argv[2])
