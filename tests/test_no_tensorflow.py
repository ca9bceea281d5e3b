"""edge/ runs without TensorFlow, Keras or PyTorch: a process where importing them fails explains a frame end to end."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_python

BLOCKED_RUN = """
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "tensorboard", "torch", "torchvision",
                                  "litert_torch", "onnx", "onnx2torch", "onnxruntime"):
            raise ImportError(f"{name} is blocked: edge/ must not need it")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
import edge
from edge import Explainer
ex = Explainer.load(sys.argv[1])
r = ex.explain(np.full((240, 320, 3), 90, np.uint8), top_k=2)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "torch", "onnx"))
print(json.dumps({"labels": [x.label for x in r], "cam_shape": list(r[0].cam.shape), "heavy": heavy,
                  "runtime": ex.features.runtime}))
"""


def test_explainer_runs_with_tensorflow_blocked(fruit_bundle: Path) -> None:
    proc = run_python("-c", BLOCKED_RUN, str(fruit_bundle))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert len(result["labels"]) == 2 and set(result["labels"]) <= {"Apfel", "Orange", "Tomate"}
    assert result["cam_shape"] == [8, 8]
    assert result["runtime"] in ("ai_edge_litert", "tflite_runtime")


def test_no_edge_module_imports_tensorflow() -> None:
    """Every module under edge/ imports with TensorFlow blocked (lazy hardware imports stay lazy too)."""
    code = BLOCKED_RUN.split("import numpy as np")[0] + """
import pkgutil, importlib, edge
for info in pkgutil.walk_packages(edge.__path__, "edge."):
    if not info.name.endswith("__main__"):  # importing it would run the CLI
        importlib.import_module(info.name)
print("ok")
"""
    proc = run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
