"""The imx500 source on tests/fakes' strict picamera2.devices.IMX500, fed the quantised fruit trunk's simulated sensor
output (MCT's model in Sony's venv on held-out fruit frames): tensor -> get_outputs' order='F' reshape -> head ->
Grad-CAM -> the map at the sensor's crop, checked against the workstation's simulated CAM. Frames without a tensor
are counted and skipped; a missing camera, packager or network and a foreign tensor are one clear error."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from conftest import REPO, run_python
from imx500_fixture import HELD_OUT, imx500_fruit, imx500_venv  # noqa: F401 (fixtures)
from numpy.typing import NDArray
from picamera2_fixture import FAKES, fake_picamera2

from edge.errors import MethodError
from edge.explain import cam as cam_registry
from edge.explain.cam import CamContext, get_method, normalise
from edge.explain.cam.smoothing import raw_map
from edge.explain.explainer import Explainer
from edge.explain.head import Head
from edge.explain.open_bundle import read_manifest
from edge.explain.render import RenderConfig
from edge.records import Result
from edge.service.loop import Explaining, Loop, LoopConfig
from edge.sinks import read_jsonl
from edge.sources import SourceConfig, SourceError, create_source
from edge.sources.base import SourceUnavailableError
from edge.sources.imx500 import Imx500Source
from tools.verify import imx500_fidelity
from tools.verify.verifier import load_images

ROI = (80, 0, 480, 480)  # the centred square crop of a 4:3 sensor in a 640x480 main stream (libcamera's arithmetic)


@pytest.fixture(scope="module")
def sensor_tensors(imx500_fruit: Path, imx500_venv: Path) -> np.ndarray:  # noqa: F811
    """(4, 12, 12, 128) float32: what the sensor would hand over for four held-out fruit frames (MCT's simulation)."""
    _, images = load_images(HELD_OUT, 4)
    record = read_manifest(imx500_fruit).imx500
    assert record is not None
    return imx500_fidelity.simulate(imx500_fruit, imx500_fidelity.sensor_inputs(images, record), imx500_venv)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """tests/fakes' picamera2 with an AI Camera: the IMX500's 4056x3040 array, its 2028x1520 binned mode."""
    steps = fake_picamera2(monkeypatch, tmp_path)
    picamera2 = next(steps)
    from picamera2 import _request
    from picamera2.devices.imx500 import imx500 as fake_imx500

    _request.METADATA_HOOKS.clear()
    monkeypatch.setattr(_request, "SENSOR_SIZE", (4056, 3040))
    monkeypatch.setattr(_request, "RAW_SIZE", (2028, 1520))
    monkeypatch.setattr(fake_imx500, "DEVICE", True)
    monkeypatch.setattr(fake_imx500, "TENSORS", None)
    monkeypatch.setenv("PATH", f"{FAKES / 'bin'}{os.pathsep}{os.environ['PATH']}")
    yield picamera2
    next(steps, None)
    for name in [m for m in sys.modules if m.startswith("picamera2")]:
        sys.modules.pop(name)


@pytest.fixture
def bundle(imx500_fruit: Path, tmp_path: Path) -> Path:  # noqa: F811
    copy = tmp_path / "bundle"
    shutil.copytree(imx500_fruit, copy)
    return copy


def _expected(bundle: Path, A: np.ndarray) -> tuple[int, np.ndarray]:
    """The workstation's simulated Grad-CAM: the head on the simulated tensor, class and raw map."""
    head = Head.load(bundle / "head.npz")
    hp = head.forward(A)
    c = int(hp.probabilities.argmax())
    raw = get_method("gradcam").raw(CamContext(A, head, hp, head.score_gradient(hp, c, "logit"), c, "logit"))
    return c, np.asarray(raw, np.float32)


def test_tensors_become_cams_at_the_sensor_crop(fake: ModuleType, bundle: Path, sensor_tensors: np.ndarray) -> None:
    from picamera2.devices.imx500 import imx500 as fake_imx500

    fake_imx500.TENSORS = lambda i: [sensor_tensors[i // 2]] if i % 2 == 0 else None  # every other frame: none
    explainer = Explainer.load(bundle)
    source = create_source(SourceConfig(spec=f"imx500:{bundle}", width=640, height=480))
    with source:
        assert isinstance(source, Imx500Source)
        assert (bundle / "imx500" / "network.rpk").is_file()  # packaged on first use
        frames = [source.read() for _ in range(4)]
        assert source.missing_tensors == 3  # frames 1, 3 and 5 came without a tensor
    for k, frame in enumerate(frames):
        assert frame is not None and frame.image.shape == (480, 640, 3) and frame.index == k
        np.testing.assert_array_equal(frame.sensor.A, sensor_tensors[k])  # its own tensor, never an older one
        assert frame.sensor.roi == ROI
        ex = frame.sensor.explain(explainer)
        c, raw = _expected(bundle, sensor_tensors[k])
        assert ex.class_index == c
        np.testing.assert_allclose(ex.cam_raw, raw, rtol=1e-6, atol=1e-6)
        assert ex.cam.shape == (120, 160)  # the frame's shape at CANVAS_MAX; the crop is x 20..140 there
        assert ex.cam[:, :20].max() == 0 and ex.cam[:, 140:].max() == 0
        expected = cv2.resize(normalise(raw), (120, 120), interpolation=cv2.INTER_LINEAR)  # the crop, 480 px / 4
        np.testing.assert_allclose(ex.cam[:, 20:140], expected, atol=1e-6)


def test_a_pytorch_networks_chw_tensor_becomes_a(fake: ModuleType, bundle: Path,
                                                  sensor_tensors: NDArray[np.float32]) -> None:
    """imxconv-pt's network hands its tensor over (k, h, w) (its dnnParams.xml orders the output so; the manifest says
    CHW): the source transposes it into the head's (h, w, k) A."""
    from picamera2.devices.imx500 import imx500 as fake_imx500

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["imx500"]["output_order"] = "CHW"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    fake_imx500.TENSORS = lambda i: [sensor_tensors[i].transpose(2, 0, 1)]
    with create_source(SourceConfig(spec=f"imx500:{bundle}", width=640, height=480)) as source:
        frames = [source.read() for _ in range(2)]
    for k, frame in enumerate(frames):
        assert frame is not None
        np.testing.assert_array_equal(frame.sensor.A, sensor_tensors[k])


class Collect:
    """A sink that keeps each result's frame and drawn overlay."""

    name = "collect"

    def __init__(self) -> None:
        self.drawn: list[tuple[np.ndarray, np.ndarray]] = []

    def open(self) -> None: ...

    def handle(self, result: Result) -> None:
        self.drawn.append((result.frame.image, result.overlay))

    def close(self) -> None: ...


def test_the_loop_draws_sensor_cams_inside_the_crop(fake: ModuleType, bundle: Path,
                                                     sensor_tensors: np.ndarray) -> None:
    from picamera2.devices.imx500 import imx500 as fake_imx500

    fake_imx500.TENSORS = lambda i: [sensor_tensors[i % 4]]
    sink = Collect()
    with Imx500Source(str(bundle), SourceConfig(width=640, height=480)) as source:
        stats = Loop(Explainer.load(bundle), source, [sink], config=LoopConfig(max_frames=3),
                     explaining=Explaining(render=RenderConfig(threshold=0.1, alpha=0.5)), stop=threading.Event()).run()
    assert stats.frames == 3 and not stats.failure and len(sink.drawn) == 3
    for image, overlay in sink.drawn:
        changed = np.abs(overlay.astype(np.int16) - image).max(axis=2) > 0  # (480, 640) bool
        assert changed[60:380, 80:560].mean() > 0.1  # the heatmap where the map passes the threshold in the crop
        # nothing beside the crop, between the label (top left), the fps (top right) and the top-k panel (bottom)
        assert not changed[60:380, :76].any() and not changed[60:380, 564:].any()


def test_edge_run_explains_the_ai_camera(bundle: Path, sensor_tensors: np.ndarray, tmp_path: Path) -> None:
    """`edge run --source imx500:BUNDLE` in a process of its own: every other frame has a tensor."""
    np.savez(tmp_path / "tensors.npz", a=sensor_tensors)
    env = {"PYTHONPATH": f"{FAKES}{os.pathsep}{REPO}", "PATH": f"{FAKES / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "FAKE_IMX500_TENSORS": str(tmp_path / "tensors.npz"), "FAKE_IMX500_EVERY": "2", "DISPLAY": ""}
    proc = run_python("-m", "edge", "run", "--model", str(bundle), "--source", f"imx500:{bundle}", "--size",
                      "640x480", "--max-frames", "4", "--log-dir", str(tmp_path / "log"), "--log-every-frame",
                      env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"imx500: \d+ frame\(s\) came without a tensor and were skipped", proc.stderr), proc.stderr
    records = read_jsonl(tmp_path / "log" / "predictions.jsonl")
    assert len(records) == 4 and all(r["source"] == f"imx500:{bundle}" for r in records)
    names = read_manifest(bundle).class_names
    # a live source may drop frames while the loop is busy: each record's class is its own tensor's
    for r in records:
        assert r["label"] in [names[_expected(bundle, a)[0]] for a in sensor_tensors], r


def test_methods_needing_trunk_passes_are_refused(fake: ModuleType, bundle: Path, sensor_tensors: np.ndarray,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from picamera2.devices.imx500 import imx500 as fake_imx500

    fake_imx500.TENSORS = lambda i: [sensor_tensors[0]]
    with Imx500Source(str(bundle), SourceConfig(width=640, height=480)) as source:
        frame = source.read()
    assert frame is not None
    explainer = Explainer.load(bundle)
    for method in cam_registry.TRUNK_PASS_METHODS:  # the registered ones, refused before any pass
        with pytest.raises(MethodError, match=f"^CAM method '{method}' needs trunk passes, not available on the "
                                              "imx500 source"):
            frame.sensor.explain(explainer, method=method)

    class Perturbing:  # a method of its own with the flag: the flag alone decides
        name = "perturbing"
        needs_trunk = True

    monkeypatch.setitem(cam_registry.METHODS, "perturbing", Perturbing())
    with pytest.raises(MethodError, match="needs trunk passes, not available on the imx500 source"):
        frame.sensor.explain(explainer, method="perturbing")
    for method in ("gradcam", "gradcampp", "layercam", "eigencam"):  # A and the head are enough for these
        assert frame.sensor.explain(explainer, method=method).cam.shape == (120, 160)
    with pytest.raises(MethodError, match="aug_smooth needs trunk passes, not available on the imx500 source"):
        frame.sensor.explain(explainer, aug_smooth=True)
    # eigen_smooth needs only A: the sensor's tensor's map is the explainer's own on that A
    smoothed = frame.sensor.explain(explainer, method="hirescam", eigen_smooth=True)
    A = frame.sensor.A
    hp = explainer.head.forward(A)
    c = smoothed.class_index
    ctx = CamContext(A, explainer.head, hp, explainer.head.score_gradient(hp, c, explainer.score), c, explainer.score)
    np.testing.assert_array_equal(smoothed.cam_raw, raw_map(cam_registry.METHODS["hirescam"], ctx, eigen_smooth=True))
    assert not np.allclose(smoothed.cam_raw, frame.sensor.explain(explainer, method="hirescam").cam_raw)


def test_errors_are_one_clear_line(fake: ModuleType, bundle: Path, sensor_tensors: np.ndarray,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from picamera2.devices.imx500 import imx500 as fake_imx500

    fake_imx500.TENSORS = lambda i: [sensor_tensors[0][:6]]  # another network's tensor
    with Imx500Source(str(bundle), SourceConfig()) as source, \
            pytest.raises(SourceError, match=r"tensor is \(6, 12, 128\).*runs another network"):
        source.read()
    monkeypatch.setattr(fake_imx500, "DEVICE", False)
    with pytest.raises(SourceUnavailableError, match="IMX500: Requested camera dev-node not found"):
        Imx500Source(str(bundle)).open()
    monkeypatch.setattr(fake_imx500, "DEVICE", True)
    (bundle / "imx500" / "network.rpk").unlink()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SourceError, match="imx500-package is not installed: sudo apt install imx500-tools"):
        Imx500Source(str(bundle)).open()
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["imx500"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SourceError, match=r"has no IMX500 trunk; export it with tools\.export --trunk imx500"):
        Imx500Source(str(bundle)).open()
