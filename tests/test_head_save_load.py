"""A head built around its one reduction, saved to head.npz and loaded as the same head; and the head files the device
refuses, each by name: an unknown op, activation or format, a missing or unreadable file, one that needs pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_head_reference import flatten_dense

from edge.explain.head import Head
from edge.explain.head_ops import Activation, Affine, Dense, Pool2D, Reduce


def _every_kind_of_op() -> Head:
    """A head with one op of every kind, a rectangular pool and Flatten spatial sums."""
    rng = np.random.default_rng(12)
    dense = flatten_dense(rng.normal(size=(2 * 6 * 3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32),
                           12)  # the pooled map is (2, 6, 3)
    ops = [Affine(np.array([1.5, 0.5, 2.0], np.float32), np.array([0.1, 0.2, -0.3], np.float32)),
           Pool2D("avg", (3, 2), (2, 1), "same"), Reduce("flatten"), dense, Activation("relu6"),
           Dense(rng.normal(size=(4, 2)).astype(np.float32), np.zeros(2, np.float32))]
    return Head(ops, (4, 6, 3), "sigmoid")


def test_a_saved_head_loads_as_the_same_head(tmp_path: Path) -> None:
    """head.npz round trip: every op, its parameters (a pool's height and width apart), the Flatten spatial sums and
    the output activation."""
    head = _every_kind_of_op()
    head.save(tmp_path / "head.npz")
    again = Head.load(tmp_path / "head.npz")
    assert [type(op) for op in again.ops] == [type(op) for op in head.ops]
    assert again.output_activation == "sigmoid" and again.input_shape == (4, 6, 3)
    for a, b in zip(head.ops, again.ops, strict=True):
        for name, value in vars(a).items():
            other = getattr(b, name)
            if isinstance(value, np.ndarray):
                assert isinstance(other, np.ndarray) and other.dtype == np.float32, name
                np.testing.assert_array_equal(other, value)
            else:
                assert other == value, name
    assert again.cam_weights is None  # a head with an activation has no constant CAM weights


def test_a_head_is_built_around_one_reduction_and_its_logit_gradients_are_read_only_rows() -> None:
    head = _every_kind_of_op()
    hp = head.forward(np.ones(head.input_shape, np.float32))
    dz = head.score_gradient(hp, 1, "logit")
    assert dz.dtype == np.float32 and not dz.flags.writeable and list(dz) == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"^a head needs exactly one Flatten or global pooling between A and the "
                                         r"Dense layers$"):
        Head([Dense(np.ones((3, 2), np.float32), np.zeros(2, np.float32))], (1, 1, 3), "softmax")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda h: h.update(ops=[{"op": "activation", "name": "swish"}]), r"malformed head \(unknown activation 'swish'\)"),
    (lambda h: h.update(ops=[{"op": "conv"}]), r"malformed head \(unknown op 'conv'\)"),
    (lambda h: h.update(head_format=2), r"head format 2 is not supported \(1\)$"),
])
def test_a_head_file_the_device_cannot_run_is_refused_by_name(tmp_path: Path, edit: object, message: str) -> None:
    import json

    from edge.errors import BundleError

    _every_kind_of_op().save(tmp_path / "head.npz")
    with np.load(tmp_path / "head.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(str(arrays["spec"]))
    edit(header)  # type: ignore[operator]
    arrays["spec"] = np.array(json.dumps(header))
    np.savez(tmp_path / "head.npz", **arrays)
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'head.npz'}: {message}"):
        Head.load(tmp_path / "head.npz")


def test_a_missing_or_unreadable_head_file_is_named(tmp_path: Path) -> None:
    from edge.errors import BundleError

    with pytest.raises(BundleError, match=rf"^{tmp_path / 'head.npz'}: missing from the bundle$"):
        Head.load(tmp_path / "head.npz")
    (tmp_path / "head.npz").write_bytes(b"not a zip file")
    with pytest.raises(BundleError, match=rf"^{tmp_path / 'head.npz'}: not a readable head file \("):
        Head.load(tmp_path / "head.npz")


def test_a_head_file_with_pickled_objects_is_refused(zoo: Path, tmp_path: Path) -> None:
    """head.npz is read without pickle: a file that needs it (here, its spec as a Python object) is not a head."""
    from edge.errors import BundleError

    with np.load(zoo / "bundles" / "fruit_bn" / "head.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["spec"] = np.array([str(arrays["spec"])], dtype=object)
    np.savez(tmp_path / "head.npz", **arrays)
    with pytest.raises(BundleError, match=r"head\.npz.*not a readable head file.*allow_pickle"):
        Head.load(tmp_path / "head.npz")

