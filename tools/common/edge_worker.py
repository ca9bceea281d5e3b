"""Runs the edge side in a separate process that never imports TensorFlow.

Importing TensorFlow before tflite_runtime in one process breaks the interpreter (`ValueError: vector::reserve`
while parsing signatures), and the device has no TensorFlow anyway: so workstation tools that need both send the
edge work here. `python -m tools.common.edge_worker check BUNDLE` loads a bundle with each runtime; `explain` runs
Explainer.explain_input over a batch of model inputs from an .npz and writes the results to another .npz.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

WORKER = [sys.executable, "-m", "tools.common.edge_worker"]
REPO = Path(__file__).resolve().parents[2]  # the checkout: tools/<job>/<module>.py


class WorkerError(Exception):
    """The edge subprocess failed; the message carries its last error line."""


def _run(args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    # cwd is the repository, not the caller's directory: callers pass bundle paths resolved.
    proc = subprocess.run([*WORKER, *args], capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise WorkerError(lines[-1] if lines else f"edge worker exited with {proc.returncode}")
    return proc.stdout


def check_bundle(bundle: Path, runtimes: tuple[str, ...] = ("tflite_runtime", "ai_edge_litert")) -> dict[str, str]:
    """Load the bundle with each runtime and explain one blank input; {runtime: top label}."""
    return dict(json.loads(_run(["check", str(bundle.resolve()), "--runtimes", ",".join(runtimes)])))


def explain_batch(
    bundle: Path, inputs: np.ndarray, *, method: str = "gradcam", score: str | None = None,
    targets: list[int] | None = None, runtime: str = "auto",
) -> dict[str, np.ndarray]:
    """Explain each model input (N, h_in, w_in, c) float32 on the edge side; arrays: probabilities (N, C),
    class_index (N,), cam_raw (N, h, w), cam (N, h, w)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, x=inputs.astype(np.float32), targets=np.array(targets if targets is not None else [], int))
        _run(["explain", str(bundle.resolve()), str(src), str(dst), "--method", method, "--runtime", runtime,
              *(["--score", score] if score else [])])
        with np.load(dst) as npz:
            return {name: npz[name] for name in npz.files}


def _check(bundle: Path, runtimes: list[str]) -> None:
    from edge import Explainer

    labels = {}
    for runtime in runtimes:
        ex = Explainer.load(bundle, runtime=runtime)
        labels[runtime] = ex.explain_input(np.zeros(ex.manifest.input_shape, np.float32)).label
    print(json.dumps(labels))


def _explain(args: argparse.Namespace) -> None:
    from edge import Explainer

    ex = Explainer.load(args.bundle, runtime=args.runtime, score=args.score)
    with np.load(args.inputs) as npz:
        x, targets = npz["x"], npz["targets"]
    results = [
        ex.explain_input(xi, method=args.method, target=int(targets[i]) if len(targets) else None)
        for i, xi in enumerate(x)
    ]
    np.savez(
        args.outputs,
        probabilities=np.stack([r.probabilities for r in results]),
        class_index=np.array([r.class_index for r in results]),
        cam_raw=np.stack([r.cam_raw for r in results]),
        cam=np.stack([r.cam for r in results]),
        score=np.array([r.score for r in results]),
    )


def main(argv: list[str] | None = None) -> int:
    from edge.errors import EdgeError

    p = argparse.ArgumentParser(prog="python -m tools.common.edge_worker")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("bundle", type=Path)
    c.add_argument("--runtimes", default="tflite_runtime,ai_edge_litert")
    e = sub.add_parser("explain")
    e.add_argument("bundle", type=Path)
    e.add_argument("inputs", type=Path)
    e.add_argument("outputs", type=Path)
    e.add_argument("--method", default="gradcam")
    e.add_argument("--score")
    e.add_argument("--runtime", default="auto")
    args = p.parse_args(argv)
    if "tensorflow" in sys.modules:
        raise SystemExit("edge worker: TensorFlow is imported in this process; the TFLite runtime would break")
    try:
        if args.command == "check":
            _check(args.bundle, args.runtimes.split(","))
        else:
            _explain(args)
    except EdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
