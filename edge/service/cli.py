"""`python -m edge run`: the command the Pi runs, by hand or as a systemd service.

Errors a user can act on (bad bundle, config, source, sink, file system) print one line and exit 2; --debug adds the
traceback. A loop that gives up (no frames for too long) exits 1 so systemd restarts it; a normal end exits 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from edge import __version__, shipped
from edge.errors import EdgeError
from edge.explain.cam import METHODS
from edge.explain.class_names import summary as class_summary
from edge.explain.explainer import Explainer
from edge.http.sink import DashboardSink
from edge.live import LiveSettings, Settings
from edge.service import baseline_cmd
from edge.service.cli_args import build_parser, overrides_from
from edge.service.config import Config, ConfigError, as_dict, load_config, redacted
from edge.service.drift import start_drift
from edge.service.faithfulness_worker import FaithfulnessWorker
from edge.service.loop import Explaining, Loop
from edge.service.method_cost import warn_if_too_slow
from edge.service.metrics import ServiceMetrics, disk_log_families, mqtt_families
from edge.service.pacing import Pacing
from edge.service.systemd_notify import Notifier
from edge.service.thermal import HeatGovernor, ThermalReader
from edge.sinks import DiskLogSink, OpenCVPreviewSink, Picamera2OverlaySink, ScoreHold, Sink, SinkWorker, StdoutSink
from edge.sinks.mqtt import DeviceInfo, MqttSink
from edge.sinks.mqtt_client import check_tls_files
from edge.sinks.mqtt_messages import parse_broker_url, read_password
from edge.sinks.preview import has_display
from edge.sources import FrameSource, Picamera2Source, create_source, parse_spec
from edge.sources.wait import open_when_available

_LOGGER = logging.getLogger(__name__)


def with_shipped_files(config: Config) -> Config:
    """The model path and an images: folder, looked up among the shipped files (the demo bundle, the samples) when
    they are relative and not under the working directory: the defaults work from any directory, installed or not."""
    model, source = config.model, config.source
    if (bundle := shipped.find(model.path)) != Path(model.path):
        model = dataclasses.replace(model, path=str(bundle))
    kind, _, arg = source.spec.partition(":")  # a bad spec is reported where the source is made
    if kind == "images" and arg and (folder := shipped.find(arg)) != Path(arg):
        source = dataclasses.replace(source, spec=f"images:{folder}")
    return dataclasses.replace(config, model=model, source=source)



def plan_preview(config: Config, source_kind: str) -> tuple[str | None, bool]:
    """(picamera2 preview to start or None, whether to open an OpenCV window)."""
    preview = config.preview
    if not preview.enabled:
        return None, False
    kind = preview.kind
    if kind == "auto":
        kind = "picamera2" if source_kind == "picamera2" else "opencv"
        if kind == "opencv" and not has_display():
            _LOGGER.info("no display found ($DISPLAY is not set): running without a preview window "
                         "(--no-display skips the window and this line)")
            return None, False
    if kind == "picamera2":
        if source_kind != "picamera2":
            raise ConfigError("[preview] kind 'picamera2' needs [source] spec 'picamera2'")
        # "auto" is decided by the source at each open (edge.sources.picamera2_preview): DRM only on a connected
        # display, QtGL/Qt with a DISPLAY, else none.
        return preview.picamera2_preview, False
    return None, True


def device_info(explainer: Explainer) -> DeviceInfo:
    name = Path(explainer.path).name if explainer.path else "model"
    return DeviceInfo(class_names=tuple(explainer.class_names), model_name=name,
                      model_sha256=explainer.manifest.sha256, version=__version__)


def pacing_for(config: Config, about: dict[str, Any]) -> Pacing:
    """[trigger] and the heat back-off, with the figures /metrics serves (model and runtime as info labels)."""
    info = {key: str(about.get(key, "")) for key in ("model", "sha256", "runtime", "version")}
    metrics = ServiceMetrics(class_names=about.get("classes", ()), info_labels=info)
    governor = HeatGovernor(config.loop.max_temp_c, hysteresis_c=config.loop.temp_hysteresis_c,
                            hot_every_s=config.loop.hot_every_s)
    return Pacing(config.trigger, governor=governor, thermal=ThermalReader(), metrics=metrics)


def build_sinks(config: Config, source: Any, stop: threading.Event, *, opencv_window: bool,
                device: DeviceInfo, live: LiveSettings | None = None,
                about: dict[str, Any] | None = None, pacing: Pacing | None = None) -> list[Sink]:
    """The configured sinks; slow ones (disk, stdout, browser, MQTT) each on their own worker thread. With pacing,
    the MQTT stats carry its heat and trigger figures, /metrics its counters and the sinks' own."""
    metrics = pacing.metrics if pacing is not None else None
    blocking = not source.live  # file sources: every frame must reach the log, so wait rather than drop
    sinks: list[Sink] = []
    if opencv_window:
        sinks.append(OpenCVPreviewSink(config.preview, on_quit=stop.set))
    if isinstance(source, Picamera2Source) and source.preview is not None:
        sinks.append(Picamera2OverlaySink(source, config.render))
    if config.log.dir:
        disk_log = DiskLogSink(config.log, every_frame_default=not source.live)
        sinks.append(SinkWorker(disk_log, blocking=blocking, hold=ScoreHold.when(config.faithfulness, blocking)))
        if metrics is not None:
            metrics.add_collector(lambda: disk_log_families(*disk_log.usage()))
    if config.http.enabled:
        service = None if pacing is None else (lambda: pacing.stats(time.monotonic()))
        dashboard = DashboardSink(config.http, live=live, about=about, policy=config.log, log_dir=config.log.dir,
                                  service=service, metrics=None if metrics is None else metrics.text)
        sinks.append(SinkWorker(dashboard, blocking=False, size=1))
    if config.stdout.enabled:
        sinks.append(SinkWorker(StdoutSink(), blocking=blocking, hold=ScoreHold.when(config.faithfulness, blocking)))
    if config.mqtt.url:
        # Blocking for file sources only waits for this thread's JSON/JPEG work: the network is behind the sink's
        # own bounded outbox, so the loop never waits for the broker.
        extra = None if pacing is None else (lambda: pacing.stats(time.monotonic()))
        mqtt = MqttSink(config.mqtt, device, every_frame_default=not source.live, notify=config.notify,
                        extra_stats=extra, drift=config.drift.enabled, faithfulness=config.faithfulness.enabled)
        sinks.append(SinkWorker(mqtt, blocking=blocking, hold=ScoreHold.when(config.faithfulness, blocking)))
        if metrics is not None:
            metrics.add_collector(lambda: mqtt_families(mqtt.counters.dropped, mqtt.counters.published))
    elif config.notify.classes or config.notify.drift:
        raise ConfigError("[notify] needs [mqtt] url: events are MQTT messages")
    return sinks


def warn_if_silent(sinks: list[Sink]) -> None:
    """A run nothing shows or records would explain every frame and end with no trace of it: say so once."""
    if not sinks:
        _LOGGER.warning("nothing will show or keep the explanations (no window, log, browser view, MQTT or stdout): "
                        "add --log-dir DIR for overlays and a JSONL log, or --stdout for JSON lines")


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, interrupted: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set stop (the loop then winds down) and interrupted (the sinks then get a bounded time to
    finish, where a normal end lets them handle every queued result); the previous handlers come back afterwards."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("%s: stopping", signal.Signals(signum).name)
        interrupted.set()
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclasses.dataclass
class Parts:
    """What run and --check-config both build from a config, without opening anything."""

    explainer: Explainer
    source: FrameSource
    sinks: list[Sink]
    live: LiveSettings | None
    pacing: Pacing | None


def build(config: Config, stop: threading.Event, *, paced: bool) -> Parts:
    """The explainer (its bundle checked, the target class too), the source and the sinks of this config; paced: with
    the [trigger] and heat pacing that run uses (and its figures in the sinks)."""
    explainer = Explainer.load(config.model.path, num_threads=config.model.threads, runtime=config.model.runtime)
    if config.model.target is not None:
        explainer.class_index(config.model.target)  # fail at start, not on the first frame
    kind, _ = parse_spec(config.source.spec)
    camera_preview, opencv_window = plan_preview(config, kind)
    manifest = explainer.manifest
    source = create_source(config.source, model_size=(manifest.input_width, manifest.input_height),
                           preview=camera_preview)
    live, about = live_controls(config, explainer)
    pacing = pacing_for(config, about) if paced else None
    sinks = build_sinks(config, source, stop, opencv_window=opencv_window, device=device_info(explainer), live=live,
                        about=about, pacing=pacing)
    warn_if_silent(sinks)
    return Parts(explainer, source, sinks, live, pacing)


def check_config(config: Config) -> int:
    """--check-config: builds and validates everything run() would (bundle, source, preview, sinks) without its side
    effects: no log directory is created, no port bound, no camera opened, no broker contacted. File sources are
    opened and closed (listing a folder or reading a file changes nothing). Prints the effective config."""
    parts = build(config, threading.Event(), paced=False)
    start_drift(config.drift, parts.explainer, config.log.dir)  # a [drift] baseline file: readable, this model's
    if not parts.source.live:
        with parts.source:
            pass
    elif (check_source := getattr(parts.source, "check", None)) is not None:  # a camera: its library, not the device
        check_source()
    for sink in parts.sinks:  # their constructors validated the config; check() looks at what open() would need
        check = getattr(sink.sink if isinstance(sink, SinkWorker) else sink, "check", None)
        if check is not None:
            check()
    if config.mqtt.url:  # the password source too (the broker itself is not contacted)
        read_password(config.mqtt.password_file, config.mqtt.password_env)
        if parse_broker_url(config.mqtt.url).tls:  # the TLS files as run loads them
            check_tls_files(config.mqtt.ca_file, config.mqtt.cert_file, config.mqtt.key_file)
    print(json.dumps(redacted(as_dict(config)), indent=2))
    print(f"config OK: model {class_summary(parts.explainer.class_names)}; source {config.source.spec}",
          file=sys.stderr)
    return 0


def forget(config: Config) -> int:
    """--mqtt-forget: clear this device's retained discovery configs and status on the broker."""
    if not config.mqtt.url:
        raise ConfigError("--mqtt-forget needs a broker: --mqtt URL or [mqtt] url")
    explainer = Explainer.load(config.model.path, runtime=config.model.runtime)
    # every config this version may publish
    MqttSink(config.mqtt, device_info(explainer), drift=True, faithfulness=True).forget()
    return 0


def live_controls(config: Config, explainer: Explainer) -> tuple[LiveSettings | None, dict[str, Any]]:
    """The browser view's live settings (None without the view or its controls) and what its health panel shows."""
    about = {"model": Path(explainer.path).name if explainer.path else "model",
             "sha256": explainer.manifest.sha256[:12], "runtime": explainer.features.runtime,
             "threads": explainer.features.num_threads or "runtime default", "classes": list(explainer.class_names),
             "version": __version__, "cam_smoothing": config.model.smoothing.describe()}
    if not (config.http.enabled and config.http.controls):
        return None, about
    initial = Settings(method=config.model.method, target=config.model.target, alpha=config.render.alpha,
                       threshold=config.render.threshold)
    return LiveSettings(initial, list(METHODS), explainer.class_names), about


def run(config: Config) -> int:
    stop = threading.Event()
    parts = build(config, stop, paced=True)

    def check_method(method: str) -> bool:  # at start, and for a method chosen later in the browser view
        return warn_if_too_slow(parts.explainer, method, config.source.fps, aug_smooth=config.model.aug_smooth)

    check_method(config.model.method)
    source, sinks = parts.source, parts.sinks
    notifier = Notifier()
    interrupted = threading.Event()
    for sink in sinks:
        if isinstance(sink, SinkWorker):
            sink.interrupted = interrupted
    with stop_on_signals(stop, interrupted), contextlib.ExitStack() as stack:
        stack.callback(notifier.close)
        stack.callback(source.close)
        if not open_when_available(source, stop, notifier, first_backoff_s=config.loop.reopen_backoff_s):
            return 0  # stopped while waiting for the camera
        for sink in sinks:
            sink.open()
            stack.callback(sink.close)
        explainer = parts.explainer
        scoring = FaithfulnessWorker(explainer, config.faithfulness) if config.faithfulness.enabled else None
        if scoring is not None:
            stack.callback(scoring.close)
            scoring.show_on(sinks)
        drift = start_drift(config.drift, explainer, config.log.dir, sinks)
        if drift is not None:
            stack.callback(drift.close)
        explaining = Explaining(config.model.method, config.model.target, config.model.top_k, config.render,
                                parts.live, scoring, parts.pacing, drift, config.model.smoothing, check_method)
        loop = Loop(explainer, source, sinks, config=config.loop, explaining=explaining, stop=stop, notifier=notifier)
        stats = loop.run()
    return 1 if stats.failure else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "baseline":
            config = with_shipped_files(load_config(args.config, baseline_cmd.overrides(args)))
            return baseline_cmd.baseline(config, args.frames, args.out)
        config = with_shipped_files(load_config(args.config, overrides_from(args)))
        if args.mqtt_forget:
            return forget(config)
        return check_config(config) if args.check_config else run(config)
    except (EdgeError, OSError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"edge: error: {e}", file=sys.stderr)
        return 2
