"""--list-layers: the usable target layers first (the default marked), the rest summarised by reason (--all: each).

An ImageNet model has 130-220 4-D layers and 1-3 usable targets, the last ones: listing every layer with its
250-character reason buries them. The reasons repeat (every layer before the last residual join fails the same way),
so they are grouped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.export.keras.head_builder import HeadExportError, build_head
from tools.keras_support import keras_graph, model_io

_UNSUPPORTED = re.compile(r"^layer '([^']*)' \((\w+)[^)]*\) after the target layer is not supported")


@dataclass
class Candidate:
    name: str
    kind: str
    shape: tuple[int, ...]
    reason: str | None  # None: usable


def candidates(model: Any) -> list[Candidate]:
    """Every 4-D layer of the model, in order, with why it cannot be the target (None when it can)."""
    found = []
    for layer, tensor in keras_graph.feature_layers(model):
        shape = tuple(int(v) for v in tensor.shape[1:])
        reason = None
        try:
            chain = keras_graph.chain_to_output(model, layer.name)
            build_head(chain.layers, shape)  # type: ignore[arg-type]
        except (keras_graph.GraphError, HeadExportError) as e:
            reason = str(e)
        found.append(Candidate(layer.name, type(layer).__name__, shape, reason))
    return found


def _row(c: Candidate, default: str | None) -> str:
    return f"  {'*' if c.name == default else ' '} {c.name:32s} {c.kind:24s} {c.shape!s:18s}".rstrip()


def _group(reason: str) -> str:
    """The reason without the names that differ from layer to layer."""
    if "joins several inputs" in reason:
        return "a later layer joins several inputs (a residual add or a concatenation): the head must be a simple chain"
    unsupported = _UNSUPPORTED.match(reason)
    if unsupported:
        kind = unsupported.group(2)
        what = "convolutions" if "Conv" in kind else f"{kind} layers"
        return f"a {kind} layer would fall into the head, and the NumPy head has no {what}"
    return re.sub(r"'[^']*'", "'...'", reason)


def summarise(found: list[Candidate], default: str | None, show_all: bool) -> list[str]:
    usable = [c for c in found if c.reason is None]
    lines = [f"usable target layers ({len(usable)}; * = the default):" if usable else "no usable target layer"]
    lines += [_row(c, default) for c in usable]
    rejected = [c for c in found if c.reason is not None]
    if not rejected:
        return lines
    if show_all:
        lines.append(f"not usable ({len(rejected)}):")
        return lines + [f"{_row(c, None):80s} {c.reason}" for c in rejected]
    groups: dict[str, list[Candidate]] = {}
    for c in rejected:
        groups.setdefault(_group(str(c.reason)), []).append(c)
    lines.append(f"not usable ({len(rejected)} layers; --all lists each with its reason):")
    for reason, members in groups.items():
        span = members[0].name if len(members) == 1 else f"{members[0].name} ... {members[-1].name}"
        lines.append(f"  {len(members)} layer(s) ({span}): {reason}")
    return lines


def list_layers(model_path: Path, weights: Path | None, show_all: bool = False) -> list[str]:
    model = model_io.load_model(model_path, weights)
    try:
        default: str | None = keras_graph.default_target(model)
    except keras_graph.GraphError:
        default = None
    return summarise(candidates(model), default, show_all)
