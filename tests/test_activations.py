"""The head's element-wise activations: backward against finite differences, and the PyTorch-head ones (hardswish,
hardsigmoid, silu, gelu) against torch's own forward and autograd to float32 precision, boundaries included."""

from __future__ import annotations

import numpy as np
import pytest

from edge.explain import activations

ELEMENTWISE = ["relu", "relu6", "sigmoid", "hardswish", "hardsigmoid", "silu", "gelu"]
TORCH_NAMES = {"hardswish": "hardswish", "hardsigmoid": "hardsigmoid", "silu": "silu", "gelu": "gelu",
               "sigmoid": "sigmoid", "relu6": "relu6"}
KINKS = np.array([-3.0, 0.0, 3.0, 6.0])


def _inputs() -> np.ndarray:
    """(400,) float32 over [-8, 8], none within 0.02 of a kink (finite differences straddle no corner)."""
    x = np.random.default_rng(0).uniform(-8, 8, 400)
    keep = np.abs(x[:, None] - KINKS[None, :]).min(axis=1) > 0.02
    return x[keep].astype(np.float32)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_backward_matches_finite_differences(name: str) -> None:
    x = _inputs()
    g = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    eps = np.float32(1e-2)
    numeric = (activations.forward(name, x + eps).astype(np.float64)
               - activations.forward(name, x - eps).astype(np.float64)) / (2 * float(eps)) * g
    actual = activations.backward(name, x, activations.forward(name, x), g)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, numeric, atol=2e-3 * float(np.abs(g).max()))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_forward_is_float32_and_does_not_touch_its_input(name: str) -> None:
    x = _inputs()
    before = x.copy()
    assert activations.forward(name, x).dtype == np.float32
    np.testing.assert_array_equal(x, before)


def test_gelu_is_the_exact_erf_form() -> None:
    """x Phi(x) with tabulated Phi: Phi(1) = 0.8413447460685429, Phi(-2) = 0.022750131948179195."""
    y = activations.forward("gelu", np.array([1.0, -2.0, 0.0], np.float32))
    np.testing.assert_allclose(y, [0.8413447460685429, -2 * 0.022750131948179195, 0.0], rtol=1e-7)


def test_unknown_activation_is_named() -> None:
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        activations.forward("mish", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        activations.backward("mish", np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32))


@pytest.mark.parametrize("name", sorted(TORCH_NAMES))
def test_equals_torch_forward_and_autograd(name: str) -> None:
    torch = pytest.importorskip("torch")
    x = np.concatenate([_inputs(), KINKS, -KINKS, [-3.5, 2.999, -2.999, 1e-3, -1e-3, 20.0, -20.0]]).astype(np.float32)
    g = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    xt = torch.from_numpy(x).double().requires_grad_(True)  # float64 reference: our float32 must equal it to rounding
    yt = getattr(torch.nn.functional, TORCH_NAMES[name])(xt)
    yt.backward(torch.from_numpy(g).double())
    assert xt.grad is not None
    y = activations.forward(name, x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=2e-7, atol=1e-7)
    np.testing.assert_allclose(activations.backward(name, x, y, g), xt.grad.numpy(), rtol=2e-6, atol=2e-7)
