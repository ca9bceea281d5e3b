"""Mutated copies of a bundle, each opened as the device opens it: run as a script in a subprocess, so a native crash
(SIGSEGV in the TFLite runtime) is seen as the child's exit status instead of killing the test process.

python tests/bundle_mutations.py BUNDLE WORKDIR SEED COUNT RUNTIME prints one line per mutation ("name: ok" or
"name: refused: <message>") and exits 0; an exception other than EdgeError prints its traceback and exits 1.
"""

from __future__ import annotations

import faulthandler
import hashlib
import io
import json
import random
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FILES = ("features.tflite", "head.npz")
Mutation = tuple[str, Callable[[Path], None]]


def rehash(bundle: Path) -> None:
    """The manifest's checksums made to match whatever the files now hold (the attacker's move)."""
    try:
        manifest = json.loads((bundle / "manifest.json").read_text())
    except (ValueError, OSError):  # swapped away or not JSON: nothing to update
        return
    for name in FILES:
        if (bundle / name).is_file():
            manifest["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _truncate(name: str, fraction: float) -> Callable[[Path], None]:
    def run(b: Path) -> None:
        data = (b / name).read_bytes()
        (b / name).write_bytes(data[: int(len(data) * fraction)])
    return run


def _flip(name: str, rng: random.Random, bits: int, tail: bool) -> Callable[[Path], None]:
    def run(b: Path) -> None:
        data = bytearray((b / name).read_bytes())
        low = max(0, len(data) - 8192) if tail else 0  # a TFLite file keeps its tables after the weights
        for _ in range(bits):
            at = rng.randrange(low, len(data))
            data[at] ^= 1 << rng.randrange(8)
        (b / name).write_bytes(bytes(data))
    return run


def _swap(a: str, b_name: str) -> Callable[[Path], None]:
    def run(b: Path) -> None:
        (b / a).rename(b / "swap")
        (b / b_name).rename(b / a)
        (b / "swap").rename(b / b_name)
    return run


def _head(spec_edit: Callable[[dict[str, Any]], object] | None = None,
          arrays: dict[str, object] | None = None) -> Callable[[Path], None]:
    """Rewrite head.npz: the spec edited, arrays replaced (None: removed), extra raw members added."""
    def run(b: Path) -> None:
        with np.load(b / "head.npz", allow_pickle=False) as npz:
            members = {name: npz[name] for name in npz.files}
        spec = json.loads(str(members["spec"]))
        new_spec = spec_edit(spec) if spec_edit else spec
        members["spec"] = np.array(new_spec if isinstance(new_spec, str) else json.dumps(new_spec))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for name, value in {**members, **(arrays or {})}.items():
                if isinstance(value, bytes):
                    z.writestr(name + ".npy", value)
                elif value is not None:
                    one = io.BytesIO()
                    np.save(one, value, allow_pickle=False)
                    z.writestr(name + ".npy", one.getvalue())
        (b / "head.npz").write_bytes(buffer.getvalue())
    return run


def _manifest(**changes: object) -> Callable[[Path], None]:
    def run(b: Path) -> None:
        manifest = json.loads((b / "manifest.json").read_text())
        manifest.update(changes)
        (b / "manifest.json").write_text(json.dumps(manifest))
    return run


def _npy(descr: str, shape: tuple[int, ...], data: bytes) -> bytes:
    """A .npy member with any header (e.g. one declaring 128 TiB, or Python objects) and the given data."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {  # type: ignore[no-untyped-call]
        "descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue() + data  # the header function writes the magic too


def _set_op(index: int, **changes: object) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(spec: dict[str, Any]) -> dict[str, Any]:
        spec["ops"][index].update(changes)
        return spec
    return edit


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    def run(b: Path) -> None:
        (b / name).write_bytes(data)
    return run


def crafted() -> list[Mutation]:
    """The hand-made cases: each a known way in."""
    nested = "[" * 100_000 + "]" * 100_000
    return [
        ("spec [1]", _head(lambda s: "[1]")),
        ("spec nested", _head(lambda s: nested)),
        ("spec ops not a list", _head(lambda s: {**s, "ops": 3})),
        ("empty pool", _head(_set_op(0, op="pool", mode="max", pool=[], strides=[1, 1], padding="valid"))),
        ("wrong kernel shape", _head(arrays={"1.kernel": np.zeros((3, 5), np.float32)})),
        ("kernel missing", _head(arrays={"1.kernel": None})),
        ("empty head.npz", _write("head.npz", b"PK\x05\x06" + b"\0" * 18)),
        ("128 TiB array", _head(arrays={"1.kernel": _npy("<f4", (1 << 45,), bytes(16))})),
        ("deflate bomb in an unused member", _head(arrays={"unused": np.zeros(1 << 26, np.uint8)})),
        ("object array", _head(arrays={"1.bias": _npy("|O", (2,), bytes(16))})),
        ("manifest nested", _write("manifest.json", nested.encode())),
        ("manifest files ..", _manifest(files={"features.tflite": "0", "head.npz": "0", "../../../etc/passwd": "0"})),
        ("manifest files absolute", _manifest(files={"features.tflite": "0", "head.npz": "0", "/etc/passwd": "0"})),
        ("manifest not an object", _write("manifest.json", b"[1]")),
        ("swap features/head", _swap("features.tflite", "head.npz")),
        ("swap manifest/head", _swap("manifest.json", "head.npz")),
    ]


def random_mutations(seed: int, count: int) -> list[Mutation]:
    rng = random.Random(seed)
    out: list[Mutation] = []
    for i in range(count):
        name = FILES[i % 2]
        if rng.random() < 0.3:
            fraction = rng.random()
            out.append((f"truncate {name} to {fraction:.3f}", _truncate(name, fraction)))
        else:
            bits, tail = rng.choice((1, 2, 8, 32)), rng.random() < 0.7
            out.append((f"flip {bits} bits of {name} ({'tail' if tail else 'anywhere'}) #{i}",
                        _flip(name, random.Random(rng.random()), bits, tail)))
    return out


def main(bundle: Path, work: Path, seed: int, count: int, runtime: str) -> int:
    from edge.errors import EdgeError
    from edge.explain.explainer import Explainer

    faulthandler.enable()
    for name, mutate in crafted() + random_mutations(seed, count):
        copy = work / "b"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(bundle, copy)
        mutate(copy)
        if not name.startswith("manifest"):
            rehash(copy)
        print(name, end=": ", flush=True)
        try:
            Explainer.load(copy, runtime=runtime, num_threads=1)
            print("ok", flush=True)
        except EdgeError as e:
            print("refused:", str(e).replace("\n", " ")[:300], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
