"""Configuration: TOML file, flags on top, and one error naming the key for anything wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.service.cli_args import FLAG_KEYS, build_parser, overrides_from
from edge.service.config import SECTIONS, Config, ConfigError, as_dict, build_config, load_config, reference

TOML = """
[model]
path = "bundles/fruit"
top_k = 2
target = "Orange"

[source]
spec = "synthetic"
fps = 15           # an integer is accepted for a float key

[render]
colormap = "tint"
alpha = 0.3

[log]
dir = "/tmp/x"
every_s = 2.5
above = 0.9

[http]
enabled = true
port = 0
"""


def test_file_values_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert config.model.path == "bundles/fruit" and config.model.top_k == 2 and config.model.target == "Orange"
    assert config.source.fps == 15.0 and isinstance(config.source.fps, float)
    assert config.render.colormap == "tint" and config.render.threshold == 0.2  # default kept
    assert config.log.dir == "/tmp/x" and config.log.above == 0.9 and config.log.on_change is True
    assert config.http.enabled and config.http.port == 0 and config.http.host == "127.0.0.1"
    assert load_config(None) == Config()


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(TOML)
    args = build_parser().parse_args(["run", "--config", str(path), "--source", "images:samples", "--alpha", "0.8",
                                      "--no-display", "--http", "0.0.0.0:9000", "--size", "320x240", "--top-k", "3"])
    config = load_config(args.config, overrides_from(args))
    assert config.source.spec == "images:samples" and (config.source.width, config.source.height) == (320, 240)
    assert config.render.alpha == 0.8 and config.render.colormap == "tint"  # flag wins, file value kept
    assert config.preview.enabled is False
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9000)
    assert config.model.top_k == 3 and config.model.path == "bundles/fruit"


def test_every_flag_maps_to_a_real_key() -> None:
    for dest, (section, key) in FLAG_KEYS.items():
        assert key in {f for f in SECTIONS[section].__dataclass_fields__}, dest


@pytest.mark.parametrize(("raw", "message"), [
    ({"render": {"alpah": 0.5}}, r"\[render\] unknown key 'alpah'"),
    ({"rendering": {}}, r"unknown section \[rendering\]"),
    ({"render": {"alpha": 1.5}}, r"\[render\] alpha: 1.5 is out of range; expected 0.0 to 1.0"),
    ({"render": {"alpha": "high"}}, r"\[render\] alpha: expected a number"),
    ({"render": {"colormap": "viridis"}}, r"\[render\] colormap: 'viridis' is not one of jet, tint"),
    ({"model": {"top_k": 2.5}}, r"\[model\] top_k: expected an integer"),
    ({"model": {"top_k": 0}}, r"\[model\] top_k: 0 is out of range"),
    ({"model": {"method": "lime"}}, r"\[model\] method: 'lime' is not one of"),
    ({"log": {"on_change": "yes"}}, r"\[log\] on_change: expected true/false"),
    ({"http": {"port": 70000}}, r"\[http\] port: 70000 is out of range"),
    ({"source": {"width": True}}, r"\[source\] width: expected an integer, got True"),
    ({"log": []}, r"\[log\] must be a table"),
])
def test_bad_values_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(raw, "edge.toml")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[render\nalpha = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_bad_flags_are_config_errors() -> None:
    for argv in (["run", "--size", "big"], ["run", "--http", "localhost:http"]):
        with pytest.raises(ConfigError, match="expected"):
            overrides_from(build_parser().parse_args(argv))


def test_reference_documents_every_key_and_round_trips() -> None:
    rows = reference()
    assert all(doc for _, _, _, doc in rows), [r for r in rows if not r[3]]
    assert {(s, k) for s, k, _, _ in rows} == {(s, f) for s, cls in SECTIONS.items() for f in cls.__dataclass_fields__}
    config = build_config({"log": {"above": 0.5}, "model": {"threads": 2}})
    assert build_config(as_dict(config)) == config


def test_device_docs_list_every_key() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "device.md").read_text()
    for section, key, _, _ in reference():
        start = text.index(f"**[{section}]**")
        end = text.find("**[", start + 3)
        assert f"| `{key}` |" in text[start : end if end > 0 else None], (section, key)


@pytest.mark.parametrize(("content", "message"), [
    (b"[render]\nalpha = 0.5\n# caf\xe9 in Latin-1\n", r"not UTF-8 text \(byte 0xe9 on line 3\)"),
    (b"[log]\ndir = " + b"[" * 5000 + b"]" * 5000 + b"\n", r"nested too deeply"),
    (b"[log]\ndir = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n", r"nested too deeply"),
    (b"# padding\n" * (110 * 1024), r"larger than 1024 KiB, not a config file"),
])
def test_files_that_are_not_configs_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ['"' + "x" * 100_000 + '"', "[" * 150 + "1" + "]" * 150])
def test_a_huge_value_is_echoed_short(tmp_path: Path, value: str) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(f"[render]\nalpha = {value}\n")
    with pytest.raises(ConfigError, match=r"\[render\] alpha: expected a number, got ") as info:
        load_config(path)
    assert len(str(info.value)) < 300


def test_smoothing_options_from_flags_and_file() -> None:
    """--aug-smooth / --eigen-smooth set [model] aug_smooth / eigen_smooth; aug_smooth needs trunk passes, which the
    imx500 source (the trunk on the sensor) cannot give: refused at start, naming the key."""
    args = build_parser().parse_args(["run", "--aug-smooth", "--eigen-smooth"])
    assert overrides_from(args)["model"] == {"aug_smooth": True, "eigen_smooth": True}
    assert "model" not in overrides_from(build_parser().parse_args(["run"]))
    config = build_config({"model": {"eigen_smooth": True}})
    assert config.model.smoothing.describe() == "eigen_smooth" and Config().model.smoothing.describe() == "none"
    with pytest.raises(ConfigError, match=r"\[model\] aug_smooth: expected true/false, got "):
        build_config({"model": {"aug_smooth": "yes"}})
    with pytest.raises(ConfigError, match=r"^config: \[model\] aug_smooth needs trunk passes; the imx500 source "):
        build_config({"model": {"aug_smooth": True}, "source": {"spec": "imx500:models/fruit"}})
    assert build_config({"model": {"eigen_smooth": True}, "source": {"spec": "imx500:models/fruit"}})


def test_the_dashboard_shows_the_smoothing_options() -> None:
    """The health panel's "CAM smoothing" row: /api/health carries the service's `about`."""
    from conftest import REPO

    from edge import Explainer
    from edge.service.cli import live_controls

    explainer = Explainer.load(REPO / "models" / "fruit")
    for model, shown in (({}, "none"), ({"aug_smooth": True, "eigen_smooth": True}, "aug_smooth + eigen_smooth")):
        assert live_controls(build_config({"model": model}), explainer)[1]["cam_smoothing"] == shown
