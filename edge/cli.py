"""`python -m edge run`: the command the Pi runs, by hand or as a systemd service.

Errors a user can act on (bad bundle, config, source, sink, file system) print one line and exit 2; --debug adds the
traceback. A loop that gives up (no frames for too long) exits 1 so systemd restarts it; a normal end exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from edge import __version__
from edge.cam import METHODS
from edge.config import Config, ConfigError, as_dict, load_config
from edge.errors import EdgeError
from edge.explainer import Explainer
from edge.loop import Loop
from edge.render import COLORMAPS
from edge.sinks import DiskLogSink, MjpegSink, OpenCVPreviewSink, Picamera2OverlaySink, Sink, SinkWorker, StdoutSink
from edge.sinks.mqtt import DeviceInfo, MqttSink
from edge.sinks.mqtt_messages import read_password
from edge.sinks.preview import PREVIEW_KINDS, has_display
from edge.sources import Picamera2Source, create_source, describe, parse_spec
from edge.systemd_notify import Notifier

_LOGGER = logging.getLogger(__name__)

# flag destination -> (config section, key)
FLAG_KEYS: dict[str, tuple[str, str]] = {
    "model": ("model", "path"), "method": ("model", "method"), "target": ("model", "target"),
    "top_k": ("model", "top_k"), "threads": ("model", "threads"), "runtime": ("model", "runtime"),
    "source": ("source", "spec"), "fps": ("source", "fps"), "repeat": ("source", "repeat"),
    "log_dir": ("log", "dir"), "log_every": ("log", "every_s"), "log_above": ("log", "above"),
    "log_every_frame": ("log", "every_frame"), "display": ("preview", "enabled"), "preview": ("preview", "kind"),
    "stdout": ("stdout", "enabled"), "max_frames": ("loop", "max_frames"), "colormap": ("render", "colormap"),
    "alpha": ("render", "alpha"), "threshold": ("render", "threshold"), "smoothing": ("render", "smoothing"),
    "mqtt": ("mqtt", "url"), "device_id": ("mqtt", "device_id"),
}


def _threads(text: str) -> int | str:
    """--threads: a count >= 1 or 'auto'."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a thread count or 'auto', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge", description="Grad-CAM on the device: camera -> overlay.")
    parser.add_argument("--version", action="version", version=f"edge-explainer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the camera -> explain -> overlay loop",
                         description="Flags override the config file; every flag has a config key (docs/device.md).")
    add = run.add_argument
    add("--config", type=Path, help="TOML config file")
    add("--check-config", action="store_true", help="validate config, bundle, source and log dir, print, exit")
    add("--debug", action="store_true", help="debug logging and tracebacks")
    add("--model", help="bundle directory [model] path (default: models/fruit, the shipped bundle)")
    add("--source", help=f"[source] spec: {describe()}")
    add("--method", choices=list(METHODS), help="[model] method")
    add("--target", help="[model] target: always explain this class")
    add("--top-k", type=int, help="[model] top_k")
    add("--threads", type=_threads, help="[model] threads for TFLite: N or auto (every CPU this process may use)")
    add("--runtime", choices=["auto", "ai_edge_litert", "tflite_runtime"], help="[model] runtime")
    add("--fps", type=float, help="[source] fps for synthetic frames")
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
    add("--max-frames", type=int, help="[loop] max_frames")
    add("--colormap", choices=list(COLORMAPS), help="[render] colormap")
    add("--alpha", type=float, help="[render] alpha")
    add("--threshold", type=float, help="[render] threshold")
    add("--smoothing", type=float, help="[render] smoothing")
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config keys the flags set (flags not given are None and override nothing)."""
    out: dict[str, dict[str, Any]] = {}
    for dest, (section, key) in FLAG_KEYS.items():
        if getattr(args, dest) is not None:
            out.setdefault(section, {})[key] = getattr(args, dest)
    if args.size is not None:
        width, sep, height = args.size.lower().partition("x")
        if not (sep and width.isdigit() and height.isdigit()):
            raise ConfigError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 640x480")
        out.setdefault("source", {}).update(width=int(width), height=int(height))
    if args.http is not None:
        host, _, port = args.http.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"--http {args.http!r}: expected [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
        out.setdefault("http", {}).update(enabled=True, port=int(port), **({"host": host} if host else {}))
    return out


def resolve_model(path: str) -> Path:
    """A relative bundle path that is not under the working directory is looked up beside the edge package
    too, so the default models/fruit works from any directory (and as a service)."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    shipped = Path(__file__).resolve().parent.parent / candidate
    return shipped if shipped.exists() else candidate


def plan_preview(config: Config, source_kind: str) -> tuple[str | None, bool]:
    """(picamera2 preview to start or None, whether to open an OpenCV window)."""
    preview = config.preview
    if not preview.enabled:
        return None, False
    kind = preview.kind
    if kind == "auto":
        kind = "picamera2" if source_kind == "picamera2" else "opencv"
        if kind == "opencv" and not has_display():
            _LOGGER.info("no display: no preview window (--no-display says so explicitly)")
            return None, False
    if kind == "picamera2":
        if source_kind != "picamera2":
            raise ConfigError("[preview] kind 'picamera2' needs [source] spec 'picamera2'")
        name = preview.picamera2_preview
        return (("qtgl" if has_display() else "drm") if name == "auto" else name), False
    return None, True


def device_info(explainer: Explainer) -> DeviceInfo:
    name = Path(explainer.path).name if explainer.path else "model"
    return DeviceInfo(class_names=tuple(explainer.class_names), model_name=name,
                      model_sha256=explainer.manifest.sha256, version=__version__)


def build_sinks(config: Config, source: Any, stop: threading.Event, *, opencv_window: bool,
                device: DeviceInfo) -> list[Sink]:
    """The configured sinks; slow ones (disk, stdout, browser, MQTT) each on their own worker thread."""
    blocking = not source.live  # file sources: every frame must reach the log, so wait rather than drop
    sinks: list[Sink] = []
    if opencv_window:
        sinks.append(OpenCVPreviewSink(config.preview, on_quit=stop.set))
    if isinstance(source, Picamera2Source) and source.preview is not None:
        sinks.append(Picamera2OverlaySink(source, config.render))
    if config.log.dir:
        sinks.append(SinkWorker(DiskLogSink(config.log, every_frame_default=not source.live), blocking=blocking))
    if config.http.enabled:
        sinks.append(SinkWorker(MjpegSink(config.http), blocking=False, size=1))
    if config.stdout.enabled:
        sinks.append(SinkWorker(StdoutSink(), blocking=blocking))
    if config.mqtt.url:
        # Blocking for file sources only waits for this thread's JSON/JPEG work: the network is behind the sink's
        # own bounded outbox, so the loop never waits for the broker.
        sinks.append(SinkWorker(MqttSink(config.mqtt, device, every_frame_default=not source.live), blocking=blocking))
    return sinks


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set stop (the loop then winds down); the previous handlers come back afterwards."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def check_config(config: Config) -> int:
    """--check-config: everything that can be checked without a camera; prints the effective config."""
    explainer = Explainer.load(resolve_model(config.model.path), runtime=config.model.runtime)
    parse_spec(config.source.spec)
    if config.model.target is not None:
        explainer.class_index(config.model.target)
    if config.log.dir:
        sink = DiskLogSink(config.log)
        sink.open()
        sink.close()
    if config.mqtt.url:  # the URL and the password source (the broker itself is not contacted)
        MqttSink(config.mqtt, device_info(explainer))
        read_password(config.mqtt.password_file, config.mqtt.password_env)
    print(json.dumps(as_dict(config), indent=2))
    print(f"config OK: model {', '.join(explainer.class_names)}; source {config.source.spec}", file=sys.stderr)
    return 0


def forget(config: Config) -> int:
    """--mqtt-forget: clear this device's retained discovery configs and status on the broker."""
    if not config.mqtt.url:
        raise ConfigError("--mqtt-forget needs a broker: --mqtt URL or [mqtt] url")
    explainer = Explainer.load(resolve_model(config.model.path), runtime=config.model.runtime)
    MqttSink(config.mqtt, device_info(explainer)).forget()
    return 0


def run(config: Config) -> int:
    explainer = Explainer.load(resolve_model(config.model.path), num_threads=config.model.threads,
                               runtime=config.model.runtime)
    if config.model.target is not None:
        explainer.class_index(config.model.target)  # fail at start, not on the first frame
    kind, _ = parse_spec(config.source.spec)
    camera_preview, opencv_window = plan_preview(config, kind)
    manifest = explainer.manifest
    source = create_source(config.source, model_size=(manifest.input_width, manifest.input_height),
                           preview=camera_preview)
    stop = threading.Event()
    notifier = Notifier()
    sinks = build_sinks(config, source, stop, opencv_window=opencv_window, device=device_info(explainer))
    with stop_on_signals(stop), contextlib.ExitStack() as stack:
        stack.callback(notifier.close)
        source.open()
        stack.callback(source.close)
        for sink in sinks:
            sink.open()
            stack.callback(sink.close)
        loop = Loop(explainer, source, sinks, config=config.loop, render_config=config.render, stop=stop,
                    notifier=notifier, method=config.model.method, target=config.model.target,
                    top_k=config.model.top_k)
        stats = loop.run()
    return 1 if stats.failure else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, overrides_from(args))
        if args.mqtt_forget:
            return forget(config)
        return check_config(config) if args.check_config else run(config)
    except (EdgeError, OSError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"edge: error: {e}", file=sys.stderr)
        return 2
