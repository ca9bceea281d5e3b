"""Benchmark worker for TensorFlow Grad-CAM on the original Keras model: prints one JSON object of medians in ms.

    python -m tools.bench.tf_side MODEL.keras TARGET_LAYER [--threads N|default] [--repeats 50] [--first-only]
                                  [--function-only]

`eager` is the tutorials' make_gradcam_heatmap (a grad model, GradientTape, spatial mean, weighted sum) run eagerly per
frame; `function` is the same wrapped in tf.function (the strongest TensorFlow path). Both include the preprocessing
(resize, x/255) and return the normalised map, as the device's explain does.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from tools.bench.edge_side import interleaved_ms, thread_count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model", type=Path)
    p.add_argument("target")
    p.add_argument("--threads", type=thread_count, default=1, help="intra/inter-op threads, or 'default' (TF's own)")
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--first-only", action="store_true")
    p.add_argument("--function-only", action="store_true", help="skip the (slow) eager contender")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.threads is not None:  # 'default': TensorFlow's own choice (every core), what its users get
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras

    from tools.keras_support import keras_graph

    model = keras.models.load_model(args.model, compile=False)
    chain = keras_graph.chain_to_output(model, args.target)
    grad_model = keras.Model(model.inputs, [chain.target_tensor, model.outputs[0]])
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)

    def gradcam(image: tf.Tensor) -> tf.Tensor:
        x = tf.image.resize(tf.cast(image, tf.float32), size)[None] / 255.0
        with tf.GradientTape() as tape:
            A, preds = grad_model(x, training=False)
            score = preds[:, tf.argmax(preds[0])]
        grads = tape.gradient(score, A)
        heatmap = tf.reduce_sum(A[0] * tf.reduce_mean(grads, axis=(0, 1, 2)), axis=-1)
        heatmap = tf.nn.relu(heatmap)
        return heatmap / (tf.reduce_max(heatmap) + 1e-12)

    if args.first_only:
        gradcam(tf.constant(frame)).numpy()
        print(json.dumps({"ok": True}))
        return 0
    def forward(image: tf.Tensor) -> tf.Tensor:
        """TensorFlow's own classify-only floor: what its Grad-CAM costs beyond the forward pass."""
        x = tf.image.resize(tf.cast(image, tf.float32), size)[None] / 255.0
        return model(x, training=False)

    compiled, classify = tf.function(gradcam), tf.function(forward)
    image = tf.constant(frame)
    fns = {"function": lambda: compiled(image).numpy(), "function_classify": lambda: classify(image).numpy()}
    if not args.function_only:
        fns = {"eager": lambda: gradcam(image).numpy()} | fns
    ms = interleaved_ms(fns, args.repeats, warmup=5)
    report = {f"{name}_ms": value for name, value in ms.items()} | {"tensorflow": tf.__version__}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
