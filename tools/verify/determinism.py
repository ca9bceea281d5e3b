"""python -m tools.verify.determinism FAMILY...: build every test model twice in one process; the weights must match.

FAMILY: keras (the Keras and tf.keras zoo of tools.verify.testmodels), imagenet (tools.verify.imagenet_models at the
CI sizes), torch (the PyTorch zoo, whose models the ONNX and .pt2 zoos export too, and their error models). Before each
build the global random generators (Python's, NumPy's, TensorFlow's, torch's) are set to another seed, as another
process or machine leaves them: a model that relies on them instead of seeding itself gets other weights and is named.
Prints one line per model (its weights' SHA-256 prefix, twice); exits 1 when any pair differs, or when the family's
control, an unseeded layer, does not differ (the scramble would then miss a generator the family draws from).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np

Builders = dict[str, Callable[[], Any]]
FAMILIES = ("keras", "imagenet", "torch")
SALTS = (12345, 67890)  # the global generators' seeds before the first and the second build


def digest_arrays(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 of the arrays' shapes, dtypes and bytes, in order: equal only for bit-identical weights."""
    h = hashlib.sha256()
    for array in arrays:
        a = np.ascontiguousarray(array)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def weights_digest(model: Any) -> str:
    """The digest of a Keras / tf.keras model's weights (BatchNorm statistics included) or a torch module's
    state_dict (buffers included)."""
    if hasattr(model, "state_dict"):
        return digest_arrays(t.detach().cpu().numpy() for t in model.state_dict().values())
    return digest_arrays(np.asarray(w) for w in model.get_weights())


def scramble_global_rngs(seed: int) -> None:
    """Every global generator this process has loaded, set to `seed`: what a builder must not depend on."""
    random.seed(seed)
    np.random.seed(seed)
    for name in ("keras", "tf_keras"):
        if name in sys.modules:
            sys.modules[name].utils.set_random_seed(seed)  # Python, NumPy, TensorFlow and Keras' own
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def check(builders: Builders) -> dict[str, tuple[str, str]]:
    """name -> (digest of the first build, digest of the second), each build after a different scramble."""
    digests: dict[str, tuple[str, str]] = {}
    for name, make in builders.items():
        first, second = (weights_digest(_built(make, salt)) for salt in SALTS)
        digests[name] = (first, second)
    return digests


def _built(make: Callable[[], Any], salt: int) -> Any:
    scramble_global_rngs(salt)
    return make()


def keras_builders() -> Builders:
    from tools.verify import testmodels

    return {case.source.filename: case.source.make for case in testmodels.CASES}


def imagenet_builders() -> Builders:
    from tools.verify import imagenet_models

    return {f"{spec.name}-{spec.small}": partial(imagenet_models.make_model, spec, spec.small)
            for spec in imagenet_models.MODELS}


def torch_builders() -> Builders:
    from tools.verify import onnx_zoo, torch_zoo

    nets: Builders = {name: partial(torch_zoo.make_net, case) for name, case in torch_zoo.CASES.items()}
    return {**nets, "elu_head": onnx_zoo.elu_head, "gelu_tanh_head": onnx_zoo.gelu_tanh_head}


def keras_control() -> Any:
    """An unseeded Dense: its weights come from the global state, so that the scramble must change them."""
    import keras

    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])


def torch_control() -> Any:
    """An unseeded Linear, likewise."""
    import torch

    return torch.nn.Linear(4, 2)


CONTROLS = {"keras": keras_control, "imagenet": keras_control, "torch": torch_control}


def _run(family: str, builders: Builders) -> list[str]:
    """The family's lines printed; returns the problems (models that differ, a control that does not)."""
    problems = []
    for name, (a, b) in check(builders).items():
        print(f"{family} {name} {a[:16]} {b[:16]}")
        if a != b:
            problems.append(f"weights differ between two builds of {name}: seed it where it is built")
    a, b = check({"control": CONTROLS[family]})["control"]
    print(f"{family} (unseeded control) {a[:16]} {b[:16]}")
    if a == b:
        problems.append(f"an unseeded {family} layer got the same weights twice: the scramble misses a generator")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.determinism", description=__doc__.splitlines()[0])
    p.add_argument("families", nargs="+", choices=FAMILIES, metavar="FAMILY", help=", ".join(FAMILIES))
    args = p.parse_args(argv)
    if {"keras", "imagenet"} & set(args.families):
        from tools.keras_support import model_io

        model_io.quiet_tensorflow()
    sources = {"keras": keras_builders, "imagenet": imagenet_builders, "torch": torch_builders}
    problems = [problem for family in args.families for problem in _run(family, sources[family]())]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
