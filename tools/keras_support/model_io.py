"""Loading the user's Keras model, whatever form the tutorials left it in, as a Keras 3 functional model."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """The model file cannot be read as a Keras model."""


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up chatter hides the tool's own output; keep warnings and errors only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_model(path: Path, weights: Path | None = None) -> Any:
    """A Keras 3 model with a defined output from .keras, legacy .h5, or tf.keras architecture JSON + .h5 weights."""
    quiet_tensorflow()
    import keras

    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            if weights is None:
                raise ModelLoadError(f"{path}: an architecture JSON needs its weights: add --weights FILE.h5")
            model = _load_json_and_weights(path, weights)
        elif suffix in (".keras", ".h5", ".hdf5"):
            model = keras.models.load_model(path, compile=False)
            if weights is not None:
                model.load_weights(weights)
        else:
            raise ModelLoadError(f"{path}: unknown model format {suffix!r}; use .keras, .h5, or .json with --weights")
    except ModelLoadError:
        raise
    except Exception as e:  # Keras raises many unrelated types for a bad file; name the file either way
        raise ModelLoadError(f"{path}: cannot be loaded as a Keras model ({type(e).__name__}: {e})") from e
    return as_functional(model)


def _load_json_and_weights(path: Path, weights: Path) -> Any:
    """The fruit tutorial's model_convnet.json + model_convnet.h5: tf.keras 2 format that Keras 3 cannot parse.

    tf-keras (the Keras 2 package) reads the pair; saved again as a full legacy .h5, Keras 3 can load it.
    """
    import keras
    import tf_keras

    if not weights.is_file():
        raise ModelLoadError(f"{weights}: no such weights file")
    legacy = tf_keras.models.model_from_json(path.read_text(encoding="utf-8"))
    legacy.load_weights(str(weights))
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "model.h5"
        legacy.save(str(full), save_format="h5")
        return keras.models.load_model(full, compile=False)


def as_functional(model: Any) -> Any:
    """A Sequential model loaded in Keras 3 has no .output until called; rebuild it on a fresh, uniquely named Input."""
    import keras

    if not isinstance(model, keras.Sequential):
        return model
    shape = model.input_shape[1:]
    x = inputs = keras.Input(shape=shape, name=f"export_input_{uuid.uuid4().hex[:8]}")
    for layer in model.layers:
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def model_files(path: Path, weights: Path | None) -> list[Path]:
    return [path] if weights is None else [path, weights]
