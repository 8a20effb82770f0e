#!/usr/bin/python3
"""Runs ONNX's own checker (Debian's python3-onnx), with its full check (shape inference
included), on every .onnx file in a directory; fails when one is rejected or there is none.

  /usr/bin/python3 tests/onnx/check_models.py DIR
"""
import pathlib
import sys

import onnx

models = sorted(pathlib.Path(sys.argv[1]).glob("*.onnx"))
if not models:
    sys.exit(f"no .onnx file in {sys.argv[1]}")
failed = 0
for path in models:
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        failed += 1
        print(f"{path.name}: rejected: {e}")
        continue
    ops = sorted({node.op_type for node in model.graph.node})
    print(f"{path.name}: accepted (onnx {onnx.__version__}, opset "
          f"{model.opset_import[0].version}, {len(model.graph.node)} nodes: {' '.join(ops)})")
sys.exit(1 if failed else 0)
