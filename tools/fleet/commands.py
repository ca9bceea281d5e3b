"""The fleet view: every camera publishing under an MQTT prefix, in one terminal table and a few pictures.

    python -m tools.fleet watch mqtt://BROKER [--prefix edge-explainer] [--out DIR] [--duration S] [--idle-exit S]
    python -m tools.fleet simulate mqtt://BROKER [--devices 20] [--frames 50] [--fps 10]

`watch` subscribes to `<prefix>/+/{status,prediction,overlay,stats,drift}`, redraws a table of every device (online,
fps, drops, last label and confidence, drift state, counts per class; cameras in drift alert first) and, at exit or on
SIGUSR1, writes into --out a contact sheet of every device's latest overlay (fleet.png), a per-class mean-heatmap
figure per device (heatmaps-<device>.png) and summary.json. `simulate` runs N devices as threads, each the real MQTT
sink publishing explanations of the sample images (computed once, on the device's code), to try a broker or the watcher
without N Raspberry Pis.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from tqdm import tqdm

from edge import __version__
from edge.sinks.mqtt_messages import parse_broker_url, read_password
from tools.common.cli_support import add_common, one_line_errors, setup_logging
from tools.fleet.state import Fleet

_LOGGER = logging.getLogger("tools.fleet")
REPO = Path(__file__).resolve().parents[2]  # the checkout: tools/<job>/<module>.py


def _client(url: str, password_env: str, client_id: str = "") -> tuple[Any, Any]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    address = parse_broker_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if address.username is not None:
        client.username_pw_set(address.username, read_password("", password_env))
    if address.tls:
        client.tls_set()
    client.reconnect_delay_set(1, 8)
    return client, address


def watch(args: argparse.Namespace) -> int:
    fleet = Fleet(args.prefix)
    lock = threading.Lock()
    client, address = _client(args.url, args.password_env)
    connected = threading.Event()
    refused: list[str] = []
    kinds = ("status", "prediction", "overlay", "stats", "drift")

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        else:
            c.subscribe([(f"{fleet.prefix}/+/{kind}", 1) for kind in kinds])
        connected.set()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        with lock:
            fleet.feed(msg.topic, bytes(msg.payload), retained=bool(msg.retain))

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as e:
        raise OSError(f"MQTT broker {address} unreachable ({e.strerror or e})") from e
    client.loop_start()
    if not connected.wait(10) or refused:
        client.loop_stop()
        raise OSError(f"MQTT broker {address}: {refused[0] if refused else 'no answer in 10 s'}")

    _LOGGER.info("watching %s/+ on %s (Ctrl-C ends; SIGUSR1 writes the pictures now)", fleet.prefix, address)
    snapshot = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: snapshot.set())

    def on_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    started = time.monotonic()
    live = sys.stdout.isatty()
    try:
        while not stop.wait(args.refresh):
            now = time.monotonic()
            with lock:
                text = fleet.table()
                idle = fleet.last is not None and now - fleet.last >= args.idle_exit if args.idle_exit else False
                if snapshot.is_set():
                    snapshot.clear()
                    paths = fleet.write(args.out)
                    _LOGGER.info("wrote %s", ", ".join(str(p) for p in paths))
            if live:
                print("\x1b[H\x1b[2J" + text, flush=True)  # redraw in place
            if (args.duration and now - started >= args.duration) or idle:
                break
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        print(fleet.table(), flush=True)
        paths = fleet.write(args.out)
    _LOGGER.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def _explained_samples(model: Path, images: Path) -> list[Any]:
    """One Result per sample image, explained and rendered once on the device's code."""
    import cv2
    import numpy as np

    from edge.explain.explainer import Explainer
    from edge.explain.render import RenderConfig, render, top_entries
    from edge.records import Frame, Result

    explainer = Explainer.load(model)
    results = []
    for path in sorted(images.glob("*.jpg")):
        bgr = cv2.imread(str(path))
        if bgr is None:
            continue
        rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)  # (H, W, 3) uint8 RGB
        ex = explainer.explain(rgb)
        top = top_entries(ex.probabilities, explainer.class_names, 3)
        overlay = render(rgb, ex, RenderConfig(), top=top)
        results.append(Result(frame=Frame(rgb, 0, time.time(), path.name), explanation=ex, drawn=overlay,
                              cam=ex.cam, top=top, source=f"images:{images.name}", fps=0.0,
                              model_sha256=explainer.manifest.sha256, class_names=tuple(explainer.class_names)))
    if not results:
        raise OSError(f"{images}: no readable .jpg images to simulate cameras with")
    return results


def simulate(args: argparse.Namespace) -> int:
    from edge.sinks.mqtt import DeviceInfo, MqttConfig, MqttSink

    results = _explained_samples(args.model, args.images)
    device = DeviceInfo(class_names=results[0].class_names, model_name=args.model.name,
                        model_sha256=results[0].model_sha256, version=__version__)
    sinks = []
    for i in range(args.devices):
        config = MqttConfig(url=args.url, device_id=f"{args.name}-{i:02d}", prefix=f"{args.prefix}/{args.name}-{i:02d}",
                            every_frame=True, qos=args.qos, stats_every_s=1.0, queue_size=max(256, 4 * args.frames),
                            password_env=args.password_env, discovery=not args.no_discovery, required=True)
        sinks.append(MqttSink(config, device))
    for sink in sinks:
        sink.open()
    progress = tqdm(total=args.devices * args.frames, desc="frames", unit="frame", file=sys.stderr)
    lock = threading.Lock()

    def camera(index: int, sink: MqttSink) -> None:
        period = 1.0 / args.fps if args.fps > 0 else 0.0
        start = time.monotonic()
        for n in range(args.frames):
            base = results[(index + n) % len(results)]  # each camera sees the samples in its own order
            frame = dataclasses.replace(base.frame, index=n, timestamp=time.time())
            sink.handle(dataclasses.replace(base, frame=frame, fps=args.fps, source="simulated"))
            with lock:
                progress.update()
            if period:
                time.sleep(max(0.0, start + (n + 1) * period - time.monotonic()))

    t0 = time.monotonic()
    threads = [threading.Thread(target=camera, args=(i, s), name=f"camera-{i}") for i, s in enumerate(sinks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sink in sinks:
        sink.close()
    progress.close()
    elapsed = time.monotonic() - t0
    published = sum(s.counters.published for s in sinks)
    dropped = sum(s.counters.dropped for s in sinks)
    print(f"{args.devices} devices x {args.frames} frames: {published} messages published in {elapsed:.1f} s "
          f"({published / elapsed:.0f} msg/s), {dropped} dropped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fleet", description=__doc__.split("\n\n")[0])
    add_common(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("watch", "simulate"):
        p = sub.add_parser(name)
        add_common(p)
        p.add_argument("url", help="mqtt://[user@]host[:port] or mqtts://...")
        p.add_argument("--prefix", default="edge-explainer", help="topic prefix the devices publish under")
        p.add_argument("--password-env", default="EDGE_MQTT_PASSWORD", help="environment variable with the password")
        if name == "watch":
            p.add_argument("--out", type=Path, default=Path("fleet"), help="where fleet.png, heatmaps and summary go")
            p.add_argument("--refresh", type=float, default=1.0, help="table refresh period, s")
            p.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: until Ctrl-C)")
            p.add_argument("--idle-exit", type=float, default=0.0,
                           help="stop once no message came for S seconds (0: never)")
        else:
            p.add_argument("--devices", type=int, default=20)
            p.add_argument("--frames", type=int, default=50, help="frames per device")
            p.add_argument("--fps", type=float, default=10.0, help="frames per second per device (0: flat out)")
            p.add_argument("--qos", type=int, choices=(0, 1, 2), default=1)
            p.add_argument("--name", default="sim", help="device names are NAME-00, NAME-01, ...")
            p.add_argument("--model", type=Path, default=REPO / "models" / "fruit")
            p.add_argument("--images", type=Path, default=REPO / "samples")
            p.add_argument("--no-discovery", action="store_true", help="no Home Assistant discovery configs")
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    logging.getLogger("edge.sinks.mqtt").setLevel(logging.WARNING)  # twenty devices' start/stop lines are noise
    with one_line_errors(args.debug) as status:
        return watch(args) if args.command == "watch" else simulate(args)
    return status.code
