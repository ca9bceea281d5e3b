"""`python -m edge baseline`: learn what "normal" looks like for this camera and model over N frames of a source."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from edge.explain.drift_baseline import BaselineBuilder
from edge.explain.explainer import Explainer
from edge.service.config import Config, ConfigError
from edge.sources import create_source

_LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """The baseline subcommand on the main parser's subparsers."""
    p = sub.add_parser("baseline", help="learn a drift baseline from N frames of a source",
                       description="Explains N frames and saves, per class, the mean map and the spread of its "
                       "statistics, the label mix and the frames' brightness and sharpness (docs/drift.md).")
    p.add_argument("--config", type=Path, help="TOML config file ([model] and [source] are used)")
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    p.add_argument("--model", help="bundle directory (default: the config's, else models/fruit)")
    p.add_argument("--source", help="any source `run` accepts, e.g. images:DIR, camera:0, picamera2")
    p.add_argument("--repeat", action="store_const", const=True, help="loop images:/video: sources")
    p.add_argument("--frames", type=int, default=500, help="frames to learn from (default 500)")
    p.add_argument("--out", type=Path, required=True, help="the baseline .npz to write")


def overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if args.model is not None:
        out["model"] = {"path": args.model}
    if args.source is not None:
        out["source"] = {"spec": args.source}
    if args.repeat:
        out.setdefault("source", {})["repeat"] = True
    return out


def baseline(config: Config, frames: int, out: Path) -> int:
    if frames < 1:
        raise ConfigError(f"--frames {frames}: needs at least 1 frame")
    explainer = Explainer.load(config.model.path, num_threads=config.model.threads, runtime=config.model.runtime)
    manifest = explainer.manifest
    grid = (int(manifest.feature_shape[0]), int(manifest.feature_shape[1]))
    builder = BaselineBuilder(manifest.sha256, tuple(explainer.class_names), grid)
    source = create_source(config.source, model_size=(manifest.input_width, manifest.input_height))
    with source:
        while builder.count < frames and (frame := source.read()) is not None:
            e = explainer.explain(frame.model_image, method=config.model.method)
            builder.add(e.class_index, float(e.probabilities[e.class_index]), e.cam, frame.image)
    if builder.count < frames:
        _LOGGER.warning("%s ended after %d of %d frames: the baseline is learned from those", source.name,
                        builder.count, frames)
    result = builder.build()
    result.save(out)
    seen = ", ".join(f"{n} {c}" for n, c in zip(result.class_names, result.counts.tolist(), strict=True))
    print(f"baseline {out}: {builder.count} frames ({seen}); model {manifest.sha256[:12]}")
    return 0
