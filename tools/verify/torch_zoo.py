"""python -m tools.verify.torch_zoo OUT: PyTorch test models, their bundles and PyTorch references for the tests.

Each case is a random-init model with BatchNorm statistics re-estimated on random images, saved as a state_dict and
exported through `python -m tools.export MODULE:CALLABLE --weights` as a user would. References: probabilities, the
top class, autograd Grad-CAM and pytorch-grad-cam's raw maps for a few random NHWC model inputs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tools.export.torch import model_spec
from tools.verify import torch_models, torch_reference

N_INPUTS = 3
REPO = Path(__file__).resolve().parents[2]
SYNSET_LINES = ("n01440764 tench, Tinca tinca", "n01443537 goldfish, Carassius auratus", "n01484850 great white shark",
                "n01491361 tiger shark", "n01494475 hammerhead, hammerhead shark")


@dataclass
class Case:
    model: str  # MODEL argument of tools.export
    input_size: int
    target: str  # the module the references hook (the exporter's default target is checked to be this)
    methods: tuple[str, ...] = ("gradcam",)
    extra_args: list[str] = field(default_factory=list)
    # The model the references run, with the same state_dict, where MODEL ends in a softmax: its logits' twin.
    logits_model: str | None = None
    classes_file: tuple[str, ...] = ()  # lines of a --classes-file to export with
    # torch's seed for the random init: fixed, so that every build gets the same model (some seeds give a model that
    # predicts one class for all the test inputs, which the tests refuse as degenerate)
    seed: int = 0


CASES = {
    "resnet18": Case("torchvision.models:resnet18", 64, "layer4", ("gradcam", "gradcampp", "layercam", "cam")),
    "shufflenet": Case("torchvision.models:shufflenet_v2_x0_5", 64, "conv5"),  # x.mean([2, 3]) in forward
    "densenet_style": Case("tools/verify/torch_models.py:densenet_style", 32, "features"),  # F.relu in forward
    # non-linear head: avgpool -> Linear -> Hardswish -> Dropout -> Linear
    "mobilenet_v3_small": Case("torchvision.models:mobilenet_v3_small", 64, "features",
                               ("gradcam", "gradcampp", "layercam"), seed=1),
    "activation_head": Case("tools/verify/torch_models.py:activation_head", 32, "features",
                            classes_file=SYNSET_LINES),
    "softmax_end": Case("tools/verify/torch_models.py:activation_head_softmax", 32, "features",
                        logits_model="tools/verify/torch_models.py:activation_head"),
    "fruit": Case("tools/verify/torch_models.py:fruit_cnn", 100, "0", extra_args=["--classes", "Apfel,Orange,Tomate",
                                                                               "--preprocess", "unit"]),
    # timm's head: SelectAdaptivePool2d (traced through), then conv_head, a 1x1 convolution of the pooled vector
    "timm_mobilenetv3": Case("timm.models.mobilenetv3:mobilenetv3_small_050", 64, "blocks", seed=1),
}


# Measured for docs/torch.md, too slow to convert on every CI run: python -m tools.verify.torch_zoo OUT --cases NAME
EXTRA_CASES = {
    "densenet121": Case("torchvision.models:densenet121", 64, "features"),  # the real DenseNet
    # timm families at 224 (random init, pretrained=False: nothing is downloaded)
    "timm_resnet18": Case("timm.models.resnet:resnet18", 224, "layer4"),
    "timm_mobilenetv3_small_100": Case("timm.models.mobilenetv3:mobilenetv3_small_100", 224, "blocks", seed=1),
    "timm_efficientnet_b0": Case("timm.models.efficientnet:efficientnet_b0", 224, "bn2"),
    "timm_regnetx_002": Case("timm.models.regnet:regnetx_002", 224, "s4"),
}


def make_net(case: Case) -> torch.nn.Module:
    """The case's model, seeded (torch's global seed before its random init, a seeded generator for the BatchNorm
    re-estimation's images): the same weights in every process on every clone. In eval mode."""
    torch.manual_seed(case.seed)
    net = model_spec.load(case.model, None)
    return torch_models.reestimate_batchnorm(net, (case.input_size, case.input_size))


def build_case(name: str, case: Case, out: Path) -> None:
    net = make_net(case)
    weights = out / "models" / f"{name}.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), weights)
    extra = list(case.extra_args)
    if case.classes_file:
        classes = out / "models" / f"{name}-classes.txt"
        classes.write_text("\n".join(case.classes_file) + "\n", encoding="utf-8")
        extra += ["--classes-file", str(classes)]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tools.export", case.model, "--weights", str(weights),
                           "--input-size", str(case.input_size), "--out", str(out / "bundles" / name), *extra],
                          cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"export of {name} failed: {proc.stderr.strip()[-2000:]}")
    print(f"{name}: exported in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if case.logits_model is not None:
        net = model_spec.load(case.logits_model, weights)
    np.savez(out / "refs" / f"{name}.npz", **references(net, case))


def references(net: torch.nn.Module, case: Case) -> dict[str, np.ndarray]:
    layer = net.get_submodule(case.target)
    rng = np.random.default_rng(1)
    # Noise around a different colour per input: plain noise gets the same class from most random-init models.
    shape = (N_INPUTS, case.input_size, case.input_size, 3)
    x = (rng.standard_normal(shape) + rng.uniform(-2, 2, (N_INPUTS, 1, 1, 3))).astype(np.float32)
    probs = np.stack([torch_reference.probabilities(net, xi) for xi in x])
    top = probs.argmax(axis=1)
    refs: dict[str, np.ndarray] = {"x": x, "probabilities": probs, "class_index": top}
    refs["autograd_gradcam"] = np.stack([torch_reference.autograd_gradcam(net, layer, xi, int(c))
                                         for xi, c in zip(x, top, strict=True)])
    for method in case.methods:
        if method == "cam":
            linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
            maps = [torch_reference.zhou_cam(net, layer, linear, xi, int(c)) for xi, c in zip(x, top, strict=True)]
        else:
            maps = [torch_reference.grad_cam_raw(net, layer, xi, int(c), method) for xi, c in zip(x, top, strict=True)]
        refs[f"{method}_cam_raw"] = np.stack(maps)
    return refs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.torch_zoo", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated, of {', '.join([*CASES, *EXTRA_CASES])} (default: {', '.join(CASES)})")
    args = p.parse_args(argv)
    (args.out / "refs").mkdir(parents=True, exist_ok=True)
    for name in args.cases.split(","):
        build_case(name, {**CASES, **EXTRA_CASES}[name], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
