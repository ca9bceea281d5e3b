"""edge-explainer-tools JOB [ARGS...]: the workstation's jobs under one command, installed by
`pip install 'edge-explainer[tools]'`. Each job is the same main function as `python -m tools.JOB`.

Without the [tools] extra (a device install: no TensorFlow, tqdm, scikit-image...), a job stops with one line that
names the missing module and the extra, instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

PROG = "edge-explainer-tools"
EXTRA = "pip install 'edge-explainer[tools]'"
# job -> (module with main(argv), what it does)
JOBS: dict[str, tuple[str, str]] = {
    "export": ("tools.export.exporter", "a Keras model -> a bundle (features.tflite, head.npz, manifest.json)"),
    "verify": ("tools.verify.verifier", "a bundle's Grad-CAM against TensorFlow's GradientTape: parity report"),
    "train": ("tools.train.trainer", "train the demo CNN, optionally with mask guidance"),
    "evaluate": ("tools.evaluate.evaluator", "accuracy and heatmap localisation of a bundle on held-out data"),
    "bench": ("tools.bench.runner", "time the device's explain against TensorFlow (from a checkout)"),
    "fleet": ("tools.fleet.commands", "watch or simulate cameras over MQTT"),
    "ablation": ("tools.ablation.arms", "one training budget per guidance arm: trained, exported, evaluated"),
}
OWN_PACKAGES = frozenset({"edge", "tools"})


def usage() -> str:
    width = max(map(len, JOBS))
    jobs = "\n".join(f"  {job:<{width}}  {text}" for job, (_, text) in JOBS.items())
    return (f"usage: {PROG} JOB [ARGS...]   ({PROG} JOB --help for a job's arguments)\n\n"
            f"The workstation tools of edge-explainer (needs {EXTRA}).\n\njobs:\n{jobs}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    job, rest = args[0], args[1:]
    if job not in JOBS:
        print(f"{PROG}: error: unknown job {job!r}; choose one of {', '.join(JOBS)}", file=sys.stderr)
        return 2
    try:
        # The job's module and its main are imported and run here: TensorFlow and the other workstation packages are
        # imported at module level by some jobs and lazily by others, so both can miss the extra.
        return int(importlib.import_module(JOBS[job][0]).main(rest))
    except ModuleNotFoundError as e:
        if e.name is None or e.name.partition(".")[0] in OWN_PACKAGES:
            raise
        print(f"{PROG} {job}: error: needs the module {e.name!r}, from the workstation extra: {EXTRA}", file=sys.stderr)
        return 2
