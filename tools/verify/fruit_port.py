"""python -m tools.verify.fruit_port KERAS_MODEL OUT.pth: the trained Keras fruit CNN (models/fruit.keras) as a
state_dict for tools/verify/torch_models.py:fruit_cnn_gap, so the PyTorch routes are measured on trained weights.

Checked before writing: both models' class probabilities on random inputs agree to float rounding.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tools.verify import torch_models

AGREE_ATOL = 1e-4  # softmax probabilities of the two frameworks: float32 rounding only


class PortError(Exception):
    """The Keras model is not the fruit CNN's architecture, or the port disagrees with it."""


def state_dict(keras_model: object) -> dict[str, torch.Tensor]:
    """fruit_cnn_gap's parameters and BatchNorm statistics from the Keras model's layers of the same names."""
    out: dict[str, torch.Tensor] = {}
    for i in range(1, 5):
        kernel, bias = keras_model.get_layer(f"conv{i}").get_weights()  # type: ignore[attr-defined]
        out[f"conv{i}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())  # HWIO -> OIHW
        out[f"conv{i}.bias"] = torch.from_numpy(bias)
        gamma, beta, mean, var = keras_model.get_layer(f"bn{i}").get_weights()  # type: ignore[attr-defined]
        out.update({f"bn{i}.weight": torch.from_numpy(gamma), f"bn{i}.bias": torch.from_numpy(beta),
                    f"bn{i}.running_mean": torch.from_numpy(mean), f"bn{i}.running_var": torch.from_numpy(var),
                    f"bn{i}.num_batches_tracked": torch.tensor(0)})
    kernel, bias = keras_model.get_layer("predictions").get_weights()  # type: ignore[attr-defined]
    out["predictions.weight"] = torch.from_numpy(kernel.T.copy())
    out["predictions.bias"] = torch.from_numpy(bias)
    return out


def port(keras_path: Path, out: Path) -> float:
    """Write OUT.pth and return the largest probability difference of the check."""
    import keras

    model = keras.saving.load_model(keras_path, compile=False)
    net = torch_models.fruit_cnn_gap(int(model.output_shape[-1]))
    try:
        net.load_state_dict(state_dict(model))
    except (ValueError, RuntimeError) as e:
        raise PortError(f"{keras_path} is not the fruit CNN's architecture: {e}") from e
    x = np.random.default_rng(0).random((4, *model.input_shape[1:]), np.float32)  # (4, 100, 100, 3) in [0, 1)
    with torch.no_grad():
        got = torch.softmax(net.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())), 1).numpy()
    worst = float(np.abs(got - model.predict(x, verbose=0)).max())
    if worst > AGREE_ATOL:
        raise PortError(f"the ported model's probabilities differ from the Keras model's by {worst:.2g}")
    torch.save(net.state_dict(), out)
    return worst


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tools.verify.fruit_port", description=__doc__.splitlines()[0])
    p.add_argument("keras_model", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args()
    print(f"wrote {args.out} (probabilities agree with {args.keras_model} to {port(args.keras_model, args.out):.1g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
