"""TFLite threads: 'auto' (the CPUs of the process's affinity mask) by default in the API, the config and the CLI; a
wrong num_threads is the caller's argument error (TypeError/ValueError naming it), never a BundleError."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from edge import BundleError, Explainer
from edge.service.cli_args import build_parser, overrides_from
from edge.service.config import ConfigError, build_config, load_config

DEMO = Path(__file__).resolve().parent.parent / "models" / "fruit"


@pytest.mark.parametrize(("bad", "error"), [
    ("2", ValueError), ("all", ValueError), (2.0, TypeError), (True, TypeError), ([2], TypeError),
    (0, ValueError), (-1, ValueError),
])
def test_a_wrong_num_threads_names_the_argument(bad: Any, error: type[Exception], tmp_path: Path) -> None:
    with pytest.raises(error, match="num_threads") as caught:
        Explainer.load(DEMO, num_threads=bad)
    assert not isinstance(caught.value, BundleError)
    # checked before any file is read: a missing bundle does not hide the argument error
    with pytest.raises(error, match="num_threads"):
        Explainer.load(tmp_path / "no-such-bundle", num_threads=bad)


def test_auto_is_the_default_and_follows_the_affinity_mask() -> None:
    assert Explainer.load(DEMO).features.num_threads == len(os.sched_getaffinity(0))
    assert Explainer.load(DEMO, num_threads=1).features.num_threads == 1
    assert Explainer.load(DEMO, num_threads=None).features.num_threads is None  # the runtime's own default
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})  # as under taskset -c 0 or systemd's CPUAffinity=0
        assert Explainer.load(DEMO, num_threads="auto").features.num_threads == 1
    finally:
        os.sched_setaffinity(0, before)


def test_config_and_flag_take_a_count_or_auto() -> None:
    assert load_config().model.threads == "auto"
    assert build_config({"model": {"threads": 3}}).model.threads == 3
    assert build_config({"model": {"threads": "auto"}}).model.threads == "auto"
    with pytest.raises(ConfigError, match=r"\[model\] threads: 'all' is not 'auto' or a number"):
        build_config({"model": {"threads": "all"}})
    with pytest.raises(ConfigError, match=r"\[model\] threads: 0 is out of range"):
        build_config({"model": {"threads": 0}})
    for flag, expected in (("auto", "auto"), ("2", 2)):
        args = build_parser().parse_args(["run", "--threads", flag])
        assert overrides_from(args)["model"]["threads"] == expected
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--threads", "many"])
