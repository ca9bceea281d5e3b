"""The device's half of tools.verify, in a process that never imports TensorFlow (tools.common.edge_worker says why).

`python -m tools.verify.edge_side BUNDLE IN.npz OUT.npz --method M` reads the frames (frame_0, frame_1, ...: uint8
RGB as read from disk), TensorFlow's own target activations (tf_activations, (N, h, w, k)) and, per score, the class
TensorFlow explained ({score}_targets), and for the trunk-pass methods TensorFlow's model inputs (tf_inputs, (N, H, W,
c)), and writes for every score:
- the device path, frame -> preprocess -> features.tflite -> head: {score}_probabilities (N, C), {score}_cam_raw
  (N, h, w), and once, features (N, h, w, k), the TFLite activations;
- the head alone on TensorFlow's activations: {score}_head_probabilities, {score}_head_cam_raw (a trunk-pass method's
  perturbed copies of tf_inputs through features.tflite).
Image i's method is made with seed i and --samples (tools/verify/family.py), as the reference's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


class EdgeSideError(Exception):
    """The edge subprocess failed; the message carries its last error line."""


def run(bundle: Path, frames: list[np.ndarray], tf_activations: np.ndarray, targets: dict[str, list[int]],
        method: str, *, inputs: np.ndarray | None = None, samples: int | None = None) -> dict[str, np.ndarray]:
    """Run the bundle on the edge side (see the module docstring for the arrays). `inputs`: the reference's model
    inputs (N, H, W, c), which the trunk-pass methods perturb on the head check's path; `samples`: those methods'."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        arrays = {f"frame_{i}": f for i, f in enumerate(frames)}
        arrays.update({f"{score}_targets": np.array(t, np.int64) for score, t in targets.items()})
        if inputs is not None:
            arrays["tf_inputs"] = inputs.astype(np.float32)
        np.savez(src, tf_activations=tf_activations.astype(np.float32), **arrays)
        extra = [] if samples is None else ["--samples", str(samples)]
        # cwd=REPO: `python -m` puts the working directory first on the path, so the checkout's tools and edge load
        proc = subprocess.run([sys.executable, "-m", "tools.verify.edge_side", str(bundle), str(src), str(dst),
                               "--method", method, "--scores", ",".join(targets), *extra],
                              capture_output=True, text=True, cwd=REPO, check=False)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise EdgeSideError(lines[-1] if lines else f"edge side exited with {proc.returncode}")
        with np.load(dst) as npz:
            return {name: npz[name] for name in npz.files}


def _explain(bundle: Path, inputs: Path, method: str, scores: list[str], samples: int | None) -> dict[str, np.ndarray]:
    """Image i's explanations by the device's method made for it (tools/verify/family.py: seed i, `samples`)."""
    from edge import Explainer
    from edge.explain.cam import METHODS, CamContext
    from tools.verify import family

    with np.load(inputs) as npz:
        frames = [npz[f"frame_{i}"] for i in range(sum(name.startswith("frame_") for name in npz.files))]
        tf_activations = npz["tf_activations"]
        tf_inputs = npz["tf_inputs"] if "tf_inputs" in npz.files else [None] * len(frames)  # (N, H, W, c)
        targets = {score: npz[f"{score}_targets"] for score in scores}
    out: dict[str, np.ndarray] = {}
    for score in scores:
        ex = Explainer.load(bundle, score=score)
        if "features" not in out:
            out["features"] = np.stack([ex.features(ex.preprocess(f)) for f in frames])  # (N, h, w, k)
        device = []
        for i, (f, c) in enumerate(zip(frames, targets[score], strict=True)):
            METHODS[method] = family.device_method(method, i, samples)  # this process's registry: seed i
            device.append(ex.explain(f, target=int(c), method=method))
        out[f"{score}_probabilities"] = np.stack([r.probabilities for r in device])
        out[f"{score}_cam_raw"] = np.stack([r.cam_raw for r in device])
        head_p, head_cam = [], []
        for i, (A, x, c) in enumerate(zip(tf_activations, tf_inputs, targets[score], strict=True)):
            hp = ex.head.forward(A)
            ctx = CamContext(A, ex.head, hp, ex.head.score_gradient(hp, int(c), score), int(c), score, x,
                             ex.trunk_features)
            head_p.append(hp.probabilities)
            head_cam.append(family.device_method(method, i, samples).raw(ctx))
        out[f"{score}_head_probabilities"] = np.stack(head_p)
        out[f"{score}_head_cam_raw"] = np.stack(head_cam)
    return out


def main(argv: list[str] | None = None) -> int:
    from edge.errors import EdgeError

    p = argparse.ArgumentParser(prog="python -m tools.verify.edge_side")
    p.add_argument("bundle", type=Path)
    p.add_argument("inputs", type=Path)
    p.add_argument("outputs", type=Path)
    p.add_argument("--method", default="gradcam")
    p.add_argument("--scores", default="logit,probability")
    p.add_argument("--samples", type=int)
    args = p.parse_args(argv)
    if "tensorflow" in sys.modules:
        raise SystemExit("edge side: TensorFlow is imported in this process; the TFLite runtime would break")
    try:
        np.savez(args.outputs, **_explain(args.bundle, args.inputs, args.method, args.scores.split(","), args.samples))
    except EdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
