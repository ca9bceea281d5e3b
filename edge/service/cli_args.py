"""The command line of `edge-explainer` / `python -m edge`: its parser, --version, and the flags as config keys.

Every flag of `run` has a config key (FLAG_KEYS); flags given override the config file, flags not given override
nothing (edge.service.cli merges them with load_config).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge import __version__
from edge.errors import RuntimeNotFoundError
from edge.explain.cam import METHODS
from edge.explain.render import COLORMAPS
from edge.explain.runtime import interpreter_class
from edge.service import baseline_cmd
from edge.service.config import ConfigError
from edge.sinks.preview import PREVIEW_KINDS
from edge.sources import describe
from edge.sources.base import SLIDESHOW_FPS

# flag destination -> (config section, key)
FLAG_KEYS: dict[str, tuple[str, str]] = {
    "model": ("model", "path"), "method": ("model", "method"), "target": ("model", "target"),
    "aug_smooth": ("model", "aug_smooth"), "eigen_smooth": ("model", "eigen_smooth"),
    "top_k": ("model", "top_k"), "threads": ("model", "threads"), "runtime": ("model", "runtime"),
    "source": ("source", "spec"), "fps": ("source", "fps"), "repeat": ("source", "repeat"),
    "log_dir": ("log", "dir"), "log_every": ("log", "every_s"), "log_above": ("log", "above"),
    "log_every_frame": ("log", "every_frame"), "display": ("preview", "enabled"), "preview": ("preview", "kind"),
    "stdout": ("stdout", "enabled"), "max_frames": ("loop", "max_frames"), "colormap": ("render", "colormap"),
    "alpha": ("render", "alpha"), "threshold": ("render", "threshold"), "smoothing": ("render", "smoothing"),
    "mqtt": ("mqtt", "url"), "device_id": ("mqtt", "device_id"), "drift": ("drift", "enabled"),
}


RUNTIME_DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}


def version_line() -> str:
    """--version: the package version and the TFLite runtime that `--runtime auto` picks here, with its version."""
    try:
        name, _ = interpreter_class("auto")
    except RuntimeNotFoundError:
        return f"edge-explainer {__version__} (no TFLite runtime installed; Python {platform.python_version()})"
    try:
        runtime_version = importlib.metadata.version(RUNTIME_DISTRIBUTIONS[name])
    except importlib.metadata.PackageNotFoundError:  # importable but not pip-installed (e.g. a distribution package)
        runtime_version = "unknown version"
    return f"edge-explainer {__version__} (runtime {name} {runtime_version}; Python {platform.python_version()})"


class VersionAction(argparse.Action):
    """Like argparse's version action, but imports the runtime only when --version is given."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(version_line())
        parser.exit()


def _threads(text: str) -> int | str:
    """--threads: a count >= 1 or 'auto'."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a thread count or 'auto', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    # The console script shows itself as edge-explainer; `python -m edge` would otherwise show as __main__.py.
    prog = "python -m edge" if Path(sys.argv[0]).name == "__main__.py" else "edge-explainer"
    parser = argparse.ArgumentParser(prog=prog, description="Grad-CAM on the device: camera -> overlay.")
    parser.add_argument("--version", action=VersionAction, help="print the version and the TFLite runtime, exit")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the camera -> explain -> overlay loop",
                         description="Flags override the config file; every flag has a config key (docs/device.md).")
    add = run.add_argument
    add("--config", type=Path, help="TOML config file")
    add("--check-config", action="store_true", help="check everything run would need at start (bundle, source and "
        "its camera library, outputs, log dir) without side effects, print the effective config, exit 0 or 2")
    add("--debug", action="store_true", help="debug logging and tracebacks")
    add("--model", help="bundle directory [model] path (default: models/fruit, the shipped bundle; relative paths "
        "not under the working directory are looked up among the shipped files)")
    add("--source", help=f"[source] spec (default: picamera2): {describe()}")
    add("--method", choices=list(METHODS), help="[model] method")
    add("--aug-smooth", action="store_const", const=True, help="[model] aug_smooth: average the map over 6 "
        "flipped and scaled copies of the input (5 more trunk passes a frame)")
    add("--eigen-smooth", action="store_const", const=True, help="[model] eigen_smooth: the first principal "
        "component of the weighted activations instead of their sum")
    add("--target", help="[model] target: always explain this class")
    add("--top-k", type=int, help="[model] top_k")
    add("--threads", type=_threads, help="[model] threads for TFLite: N or auto (every CPU this process may use)")
    add("--runtime", choices=["auto", "ai_edge_litert", "tflite_runtime"], help="[model] runtime")
    add("--fps", type=float, help="[source] fps: pace synthetic frames and images: folders (default: as fast as "
        f"possible; images: with --repeat {SLIDESHOW_FPS:g}); 0 = as fast as possible")
    add("--repeat", action="store_const", const=True, help="[source] repeat: loop images:/video: sources")
    add("--size", help="[source] width x height of the capture, e.g. 640x480")
    add("--log-dir", help="[log] dir: write JSONL records and JPEGs here")
    add("--log-every", type=float, help="[log] every_s")
    add("--log-above", type=float, help="[log] above: log frames at or above this confidence")
    add("--log-every-frame", action="store_const", const=True, help="[log] every_frame")
    add("--no-display", dest="display", action="store_const", const=False, help="[preview] enabled = false")
    add("--preview", choices=[k for k in PREVIEW_KINDS if k != "auto"], help="[preview] kind")
    add("--http", metavar="[HOST:]PORT", help="[http] serve the browser view (host defaults to 127.0.0.1)")
    add("--stdout", action="store_const", const=True, help="[stdout] enabled: JSON lines on stdout")
    add("--mqtt", metavar="URL", help="[mqtt] url: publish to a broker, mqtt://[user@]host[:port] or mqtts://... "
        "(password: [mqtt] password_file or $EDGE_MQTT_PASSWORD, never on the command line)")
    add("--device-id", help="[mqtt] device_id (default: the host name)")
    add("--mqtt-forget", action="store_true", help="remove this device's Home Assistant discovery configs and "
        "retained status from the broker, then exit")
    add("--drift", action="store_const", const=True, help="[drift] enabled: watch for explanation drift against "
        "[drift] baseline, or one learned over the first [drift] learn_frames frames (docs/drift.md)")
    add("--max-frames", type=int, help="[loop] max_frames")
    add("--colormap", choices=list(COLORMAPS), help="[render] colormap")
    add("--alpha", type=float, help="[render] alpha")
    add("--threshold", type=float, help="[render] threshold")
    add("--smoothing", type=float, help="[render] smoothing")
    baseline_cmd.add_parser(sub)
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config keys the flags set (flags not given are None and override nothing)."""
    out: dict[str, dict[str, Any]] = {}
    for dest, (section, key) in FLAG_KEYS.items():
        if getattr(args, dest) is not None:
            out.setdefault(section, {})[key] = getattr(args, dest)
    if args.size is not None:
        width, sep, height = args.size.lower().partition("x")
        if not (sep and width.isascii() and width.isdigit() and height.isascii() and height.isdigit()):
            raise ConfigError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 640x480")
        out.setdefault("source", {}).update(width=int(width), height=int(height))
    if args.http is not None:
        host, _, port = args.http.rpartition(":")
        if not (port.isascii() and port.isdigit()):
            raise ConfigError(f"--http {args.http!r}: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
        out.setdefault("http", {}).update(enabled=True, port=int(port), **({"host": host} if host else {}))
    return out
