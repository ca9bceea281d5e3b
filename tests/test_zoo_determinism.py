"""Every test model is the same in every process on every clone: `python -m tools.verify.determinism` builds each twice
in one process, the global random generators set to other seeds before each build, and finds bit-identical weights.
In a subprocess: TensorFlow must not enter pytest's process before the edge tests (conftest.py)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import run_python

# Each family's models as the command names them: every builder the zoos call (the .onnx and .pt2 zoos export the
# PyTorch zoo's models, built by the same torch_zoo.make_net).
MODELS = {
    "keras": {"fruit.keras", "fruit_other.keras", "mobilenet_gap.keras", "mobilenet_top.keras",
              "dense_bn_dropout.keras", "legacy_fruit.h5", "model_convnet.json", "sigmoid_same_max.keras",
              "same_avg_gmp.keras", "gmp_linear.keras", "gap_hardswish_silu.keras", "gap_negative.keras"},
    "imagenet": {"xception-71", "vgg16-64", "mobilenetv2-64", "resnet50-64", "efficientnetb0-64"},
    "torch": {"resnet18", "shufflenet", "densenet_style", "mobilenet_v3_small", "activation_head", "softmax_end",
              "fruit", "timm_mobilenetv3", "elu_head", "gelu_tanh_head"},
}


@pytest.mark.parametrize("family", sorted(MODELS))
def test_every_test_model_builds_to_bit_identical_weights(family: str) -> None:
    if family == "torch" and importlib.util.find_spec("torch") is None:
        pytest.skip("the PyTorch zoo needs requirements-torch.txt")
    proc = run_python("-m", "tools.verify.determinism", family)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(f"{family} ")]
    models = {row[1]: row[2:] for row in rows if row[1] != "(unseeded"}
    assert set(models) == MODELS[family]
    assert all(first == second for first, second in models.values())
    control = [row[-2:] for row in rows if row[1] == "(unseeded"]
    assert len(control) == 1 and control[0][0] != control[0][1], "the scramble must reach an unseeded layer"


def test_an_unseeded_model_is_told_apart() -> None:
    """The check itself, in-process with torch: a Linear built without a seed differs between the two builds."""
    torch = pytest.importorskip("torch")
    from tools.verify import determinism

    def seeded() -> object:
        torch.manual_seed(3)
        return torch.nn.Linear(4, 2)

    digests = determinism.check({"unseeded": lambda: torch.nn.Linear(4, 2), "seeded": seeded})
    assert digests["unseeded"][0] != digests["unseeded"][1]
    assert digests["seeded"][0] == digests["seeded"][1]
