"""One validated configuration for `edge run`: a TOML file, with command-line flags on top.

Each component owns a frozen dataclass for its section (edge.explain.render.RenderConfig is [render], ...). Field
metadata carries what the validator checks ("choices", "range", "check": a function raising ValueError) and the
one-line "doc" of the reference in docs/device.md.
Unknown sections or keys and wrong types or values raise ConfigError naming the key and what is expected.
"""

from __future__ import annotations

import dataclasses
import reprlib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from edge.errors import EdgeError
from edge.explain.cam import METHODS
from edge.explain.cam.smoothing import Smoothing
from edge.explain.render import RenderConfig
from edge.explain.runtime import AUTO_THREADS, MAX_THREADS, RUNTIMES
from edge.http.sink import DashboardConfig
from edge.safe_io import FileTooLargeError, read_regular
from edge.service.drift import DriftConfig
from edge.service.faithfulness_worker import FaithfulnessConfig
from edge.service.loop import LoopConfig
from edge.service.trigger import TriggerConfig
from edge.sinks.disklog import DiskLogConfig
from edge.sinks.mqtt import MqttConfig
from edge.sinks.mqtt_notify import NotifyConfig
from edge.sinks.preview import PreviewConfig
from edge.sources.base import SourceConfig


class ConfigError(EdgeError):
    """A configuration value is unknown, of the wrong type or out of range; the message names the key."""


MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few KB; anything bigger is the wrong file

# Values and names echoed in errors are cut short, so that a huge or deeply nested value still gives one short line.
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 3


@dataclass(frozen=True)
class ModelConfig:
    """[model]: which bundle and how to explain."""

    path: str = field(default="models/fruit", metadata={"doc": "bundle directory (manifest.json, ...)"})
    method: str = field(default="gradcam", metadata={"choices": tuple(METHODS), "doc": "CAM method"})
    aug_smooth: bool = field(default=False, metadata={"doc": (
        "pytorch-grad-cam's aug_smooth: the map averaged over 6 flipped or scaled copies of the input "
        "(5 more trunk passes)")})
    eigen_smooth: bool = field(default=False, metadata={"doc": (
        "pytorch-grad-cam's eigen_smooth: the weighted activations' first principal component instead of their sum")})
    target: str | None = field(default=None, metadata={"doc": "always explain this class (name); unset = top"})
    top_k: int = field(default=3, metadata={"range": (1, 1000), "doc": "classes in the top-k panel and records"})
    threads: int | str = field(default="auto", metadata={"range": (1, MAX_THREADS), "words": (AUTO_THREADS,), "doc": (
        "TFLite threads; 'auto' = every CPU the process may use (measured: docs/device.md#threads)")})
    runtime: str = field(default="auto", metadata={
        "choices": ("auto", *RUNTIMES), "doc": "TFLite runtime"})

    @property
    def smoothing(self) -> Smoothing:
        return Smoothing(self.aug_smooth, self.eigen_smooth)


@dataclass(frozen=True)
class StdoutConfig:
    """[stdout]: JSON lines on standard output."""

    enabled: bool = field(default=False, metadata={"doc": "print one JSON record per explained frame"})


@dataclass(frozen=True)
class Config:
    """Every section; each component receives only its own."""

    model: ModelConfig = field(default_factory=ModelConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)
    trigger: TriggerConfig = field(default_factory=TriggerConfig)
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    log: DiskLogConfig = field(default_factory=DiskLogConfig)
    http: DashboardConfig = field(default_factory=DashboardConfig)
    stdout: StdoutConfig = field(default_factory=StdoutConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    faithfulness: FaithfulnessConfig = field(default_factory=FaithfulnessConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)


SECTIONS: dict[str, type[Any]] = typing.get_type_hints(Config)


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """The config from the TOML file at path (None: defaults), with overrides (section -> key -> value) on top."""
    raw: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        raw = parse_file(path)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        raw[section].update(values)
    return build_config(raw, where)


def parse_file(path: str | Path) -> dict[str, Any]:
    """The TOML document at path; every way a file can fail to be one (unreadable, too big, not UTF-8, not TOML,
    nested too deeply for the parser) is a ConfigError naming the file."""
    try:
        data = read_regular(path, MAX_CONFIG_BYTES)  # a FIFO or /dev/zero as --config must not block or read forever
    except FileTooLargeError as e:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB, not a config file") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {data[e.start]:#04x} on line {line})") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    except RecursionError as e:  # tomllib recurses once per level of nested arrays and inline tables
        raise ConfigError(f"{path}: not a config file (arrays or tables nested too deeply)") from e


def build_config(raw: dict[str, Any], where: str = "config") -> Config:
    """Validate a parsed TOML document into a Config."""
    sections = {}
    for name, table in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{_SHORT.repr(name)[1:-1]}]; "
                              f"expected one of {', '.join(SECTIONS)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table of keys, got {type(table).__name__}")
        sections[name] = build_section(SECTIONS[name], table, f"{where}: [{name}]")
    config = Config(**sections)
    if config.model.aug_smooth and config.source.spec.partition(":")[0] == "imx500":
        raise ConfigError(f"{where}: [model] aug_smooth needs trunk passes; the imx500 source runs the trunk on the "
                          "sensor")
    return config


def build_section(cls: type[Any], table: dict[str, Any], where: str) -> Any:
    """One section's dataclass from its table, every key checked."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{where} unknown key {_SHORT.repr(key)}; expected one of {', '.join(fields)}")
        values[key] = check_value(f"{where} {key}", value, hints[key], fields[key].metadata)
    return cls(**values)


def check_value(name: str, value: Any, hint: Any, meta: typing.Mapping[str, Any]) -> Any:
    """value converted to hint (int -> float allowed) and checked against meta's choices and range."""
    types_ = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in types_:
            return None
        raise ConfigError(f"{name}: a value is required")
    value = _convert(name, value, [t for t in types_ if t is not type(None)])
    if isinstance(value, str) and "words" in meta:  # a number-or-word key ([model] threads): the word is checked
        if value not in meta["words"]:
            raise ConfigError(f"{name}: {value!r} is not {' or '.join(map(repr, meta['words']))} or a number")
        return value
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{name}: {_SHORT.repr(value)} is not one of {', '.join(map(str, meta['choices']))}")
    if "range" in meta:
        lo, hi = meta["range"]
        if not lo <= value <= hi:
            raise ConfigError(f"{name}: {value!r} is out of range; expected {lo} to {hi}")
    if "check" in meta:
        try:
            meta["check"](value)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from e
    return value


def _convert(name: str, value: Any, wanted: list[Any]) -> Any:
    for t in wanted:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            if "\0" in value:  # every str key is a path, a name or a topic: none can hold one
                raise ConfigError(f"{name}: contains a NUL byte")
            return value
    expected = " or ".join({bool: "true/false", int: "an integer", float: "a number", str: "a string"}[t]
                           for t in wanted)
    raise ConfigError(f"{name}: expected {expected}, got {_SHORT.repr(value)}")


def as_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The effective config, section -> key -> value (unset optional keys left out, as TOML cannot say None)."""
    return {section: {k: v for k, v in dataclasses.asdict(getattr(config, section)).items() if v is not None}
            for section in SECTIONS}


def reference() -> list[tuple[str, str, str, str]]:
    """(section, key, default, doc) for every key, for the docs and --help."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = "unset" if f.default is None else repr(f.default)
            rows.append((section, f.name, default, f.metadata.get("doc", "")))
    return rows


SECRET_KEYS = {"token", "password"}  # config keys whose values --check-config never prints


def redacted(settings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The settings with every secret value (an inline token or password) replaced by ***."""
    return {section: {k: "***" if k in SECRET_KEYS and v else v for k, v in values.items()}
            for section, values in settings.items()}
