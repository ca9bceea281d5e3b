"""--list-layers, one format for every front end: the usable target layers first (the default marked with *), the
rest summed up by reason (--all: each with its own).

An ImageNet model has 130-220 4-D layers and 1-3 usable targets, the last ones: listing every layer with its
250-character reason buries them. The reasons repeat (every layer before the last residual join fails the same way),
so they are grouped. The front ends (keras/layers.py, torch/, onnx/) only find the candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Keras: "layer 'x' (Conv2D ...) after the target layer is not supported"; PyTorch and .pt2: "op x (Kind) after the
# target 'y' is not supported ..."
_UNSUPPORTED = re.compile(r"^layer '([^']*)' \((\w+)[^)]*\) after the target layer is not supported")
_TORCH_OP = re.compile(r"^op (\S+) \(([^)]+)\) after the target '[^']*' (.*)$")
_NOT_SUPPORTED = "is not supported by the NumPy head"
_TAIL = re.compile(r"(; choose a later target)?( \(see --list-layers\))?$")


@dataclass
class Candidate:
    name: str  # what --target-layer takes
    kind: str  # the layer's or module's class, or the op
    shape: tuple[int, ...]  # (h, w, k), channels last whatever the framework's order
    reason: str | None  # why it cannot be the target; None: usable


def _row(c: Candidate, default: str | None, width: int) -> str:
    return f"  {'*' if c.name == default else ' '} {c.name:{width}s} {c.kind:24s} {c.shape!s:18s}".rstrip()


def _group(reason: str) -> str:
    """The reason without the names that differ from layer to layer."""
    reason = _TAIL.sub("", reason)
    if "joins several inputs" in reason:
        return "a later layer joins several inputs (a residual add or a concatenation): the head must be a simple chain"
    unsupported = _UNSUPPORTED.match(reason)
    if unsupported:
        kind = unsupported.group(2)
        what = "convolutions" if "Conv" in kind else f"{kind} layers"
        return f"a {kind} layer would fall into the head, and the NumPy head has no {what}"
    torch_op = _TORCH_OP.match(reason)
    if torch_op:
        kind, why = torch_op.group(2), torch_op.group(3)
        if why.startswith(_NOT_SUPPORTED):
            return f"a {kind} would fall into the head, and the NumPy head has no such op{why[len(_NOT_SUPPORTED):]}"
        return f"a {kind} after it: {why}"
    return re.sub(r"'[^']*'", "'...'", reason)


def summarise(found: list[Candidate], default: str | None, show_all: bool) -> list[str]:
    usable = [c for c in found if c.reason is None]
    width = max([32, *(len(c.name) for c in (found if show_all else usable))])
    lines = [f"usable target layers ({len(usable)}; * = the default):" if usable else "no usable target layer"]
    lines += [_row(c, default, width) for c in usable]
    rejected = [c for c in found if c.reason is not None]
    if not rejected:
        return lines
    if show_all:
        lines.append(f"not usable ({len(rejected)}):")
        return lines + [f"{_row(c, None, width):{width + 48}s} {_TAIL.sub('', str(c.reason))}" for c in rejected]
    groups: dict[str, list[Candidate]] = {}
    for c in rejected:
        groups.setdefault(_group(str(c.reason)), []).append(c)
    lines.append(f"not usable ({len(rejected)} layers; --all lists each with its reason):")
    for reason, members in groups.items():
        span = members[0].name if len(members) == 1 else f"{members[0].name} ... {members[-1].name}"
        lines.append(f"  {len(members)} layer(s) ({span}): {reason}")
    return lines
