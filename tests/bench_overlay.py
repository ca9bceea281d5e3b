"""What the picamera2 overlay costs the loop's thread, on the fake DRM preview: `python tests/bench_overlay.py`.

Prints ms per frame for: drawing + sending every frame (what the sink did before), a frame sent under the cap, a
frame skipped by the rate cap, an unchanged overlay (drawn, compared, not sent), and the mean per frame at 30 fps
with the default 10 Hz cap. The fake's set_overlay copies the RGBA array as DrmPreview builds its framebuffer; the
real one also commits synchronously to the display (a wait for the next vertical blank, up to 16.7 ms at 60 Hz),
which the fake cannot show and the cap saves as well.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "fakes"), str(REPO)]

import picamera2  # noqa: E402 (the fake, from tests/fakes)

from edge.explain.explainer import Explainer  # noqa: E402
from edge.explain.render import RenderConfig  # noqa: E402
from edge.records import Frame, Result  # noqa: E402
from edge.sinks.picamera2_overlay import Picamera2OverlaySink  # noqa: E402
from edge.sources import Picamera2Source, SourceConfig  # noqa: E402
from edge.sources import picamera2_preview as preview  # noqa: E402

N = 300


def _results(explainer: Explainer, n: int) -> list[Result]:
    image = np.full((480, 640, 3), 90, np.uint8)
    ex = explainer.explain(image)
    rng = np.random.default_rng(0)
    return [Result(frame=Frame(image=image, index=i, timestamp=0.0), explanation=ex, top=[], source="bench", fps=0.0,
                   cam=rng.random(ex.cam.shape, dtype=np.float32)) for i in range(n)]


def _ms_per_call(sink: Picamera2OverlaySink, results: list[Result]) -> float:
    t0 = time.perf_counter()
    for result in results:
        sink.handle(result)
    return (time.perf_counter() - t0) * 1e3 / len(results)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        drm = Path(tmp)
        (drm / "card1-HDMI-A-1").mkdir()
        (drm / "card1-HDMI-A-1" / "status").write_text("connected\n")
        picamera2.DRM_ROOT = preview.DRM_ROOT = drm  # type: ignore[attr-defined]
        explainer = Explainer.load(REPO / "models" / "fruit")
        results = _results(explainer, N)
        with Picamera2Source(SourceConfig(), model_size=(100, 100), preview="auto") as source:
            source.read()  # DRM reserves its overlay plane at the first frame
            config = RenderConfig()
            every = _ms_per_call(Picamera2OverlaySink(source, config, max_rate_hz=0), results)
            capped = Picamera2OverlaySink(source, config, max_rate_hz=10)
            sent = _ms_per_call(capped, results[:1])
            skipped = _ms_per_call(capped, results[1:])
            unchanged_sink = Picamera2OverlaySink(source, config, max_rate_hz=0)
            unchanged_sink.handle(results[0])
            unchanged = _ms_per_call(unchanged_sink, [results[0]] * N)
    mean_30fps = (10 * every + 20 * skipped) / 30
    print(f"overlay 240x320 RGBA on the fake DRM preview, {N} frames")
    print(f"  draw + send every frame:      {every:.3f} ms/frame (before)")
    print(f"  skipped by the 10 Hz cap:     {skipped * 1e3:.1f} us/frame")
    print(f"  unchanged (drawn, not sent):  {unchanged:.3f} ms/frame")
    print(f"  at 30 fps with the 10 Hz cap: {mean_30fps:.3f} ms/frame mean, {every:.3f} ms on 1 frame in 3 "
          f"({every / mean_30fps:.1f}x less per frame; set_overlay calls 30/s -> 10/s)")
    assert sent > 0


if __name__ == "__main__":
    main()
