"""python -m tools.evaluate BUNDLE IMAGES --faithfulness: the table, DIR/faithfulness.json and the curves' PNG, for a
plain folder of images; a bad method is one line."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, run_python


def test_faithfulness_report(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("apfel_01.jpg", "orange_01.jpg"):
        (images / name).write_bytes((REPO / "samples" / name).read_bytes())
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    proc = run_python("-m", "tools.evaluate", str(REPO / "models" / "fruit"), str(images), "--faithfulness",
                      "--methods", "gradcam,eigencam,random", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "deletion" in proc.stdout and "random" in proc.stdout
    report = json.loads((out / "faithfulness.json").read_text())
    assert sorted(report["ranking"]) == ["eigencam", "gradcam", "random"]
    for method in report["ranking"]:
        for name in ("confidence_change", "deletion_auc", "insertion_auc", "road_morf", "road_lerf"):
            assert report["summary"][method][name]["n"] == 2
    rows = [r for r in report["per_image"] if "method" in r]
    assert {(r["file"], r["method"]) for r in rows} == {(f, m) for f in ("apfel_01.jpg", "orange_01.jpg")
                                                        for m in ("gradcam", "eigencam", "random")}
    assert {"file": "broken.jpg", "error": "not a readable image"} in report["per_image"]
    # Grad-CAM beats the random floor on the demo model's insertion curve
    assert report["summary"]["gradcam"]["insertion_auc"]["mean"] > report["summary"]["random"]["insertion_auc"]["mean"]
    assert (out / "faithfulness-curves.png").stat().st_size > 10_000


def test_unknown_method_is_one_line(tmp_path: Path) -> None:
    proc = run_python("-m", "tools.evaluate", str(REPO / "models" / "fruit"), str(REPO / "samples"), "--faithfulness",
                      "--methods", "gradcam,nope", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown method 'nope'")
