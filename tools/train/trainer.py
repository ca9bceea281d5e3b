"""Train the demo fruit classifier on camera-like frames (fruit pasted on varied backgrounds), optionally mask-guided.

    python -m tools.train DATA_DIR --out model.keras [--epochs N] [--image-size 100]
                          [--arch fruitcnn|fruitcnn-gap|mobilenetv2] [--guide none|masks|rrr|gain|consistency]
                          [--guide-weight W] [--samples-per-epoch N] [--seed S]

Every epoch draws fresh composited frames from the train split (train backgrounds only; the evaluation backgrounds are
never seen). Validation uses the valid split's fruits on a fixed set of frames. The best epoch by validation accuracy
(then by pointing game) is saved; beside --out go NAME.history.png and NAME.summary.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tools.common.cli_support import add_common, one_line_errors, setup_logging
from tools.data import compositing
from tools.data.fruitset import DatasetError, FruitSet, load_dataset
from tools.keras_support.model_io import quiet_tensorflow
from tools.train import training_report

_LOGGER = logging.getLogger("tools.train")
ARCHS = ("fruitcnn", "fruitcnn-gap", "mobilenetv2")
# masks: the Grad-CAM-outside-the-mask penalty (the shipped model); rrr, gain, consistency: the approaches the
# ablation compares it with (tools/train/guidance.py says which paper each follows).
GUIDES = ("none", "masks", "rrr", "gain", "consistency")
VALID_MIX = compositing.Mix(plain=0.3, two=0.0, three=0.0)


@dataclass
class TrainOptions:
    out: Path
    epochs: int = 12
    image_size: int = 100
    arch: str = "fruitcnn"
    guide: str = "none"
    guide_weight: float = 1.0
    samples_per_epoch: int = 8000
    valid_samples: int = 600
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    limit: int | None = None  # images per class and split (tiny runs)


def build_model(arch: str, num_classes: int, image_size: int, seed: int) -> Any:
    from tools.keras_support import architectures

    if arch == "fruitcnn":
        return architectures.fruit_cnn(num_classes, image_size, seed=seed)
    if arch == "fruitcnn-gap":
        return architectures.fruit_cnn_gap(num_classes, image_size, seed=seed)
    if arch == "mobilenetv2":
        return architectures.mobilenetv2_gap(num_classes, image_size, seed=seed)
    raise ValueError(f"unknown --arch {arch!r}: use one of {', '.join(ARCHS)}")


class Trainer:
    """The model split at its explained layer: A = trunk(x), logits = head(A); compiled train and validation steps."""

    def __init__(self, model: Any, options: TrainOptions) -> None:
        import keras

        from tools.keras_support import keras_graph

        self.model, self.options = model, options
        self.target = keras_graph.default_target(model)
        chain = keras_graph.chain_to_output(model, self.target)
        self.last = chain.layers[-1]  # Dense softmax: its pre-activation gives the logits
        # Two parts, so the head runs on the very tensor A the inner tape watches.
        self.trunk = keras.Model(model.inputs, chain.target_tensor)
        self.head_layers = chain.layers[:-1]
        self.map_shape = tuple(int(d) for d in chain.target_tensor.shape[1:3])
        steps = options.epochs * -(-options.samples_per_epoch // options.batch_size)
        # Cosine decay: a constant rate leaves the validation accuracy jumping from epoch to epoch (batch statistics
        # of composited frames vary a lot); decaying it lets the last epochs settle.
        rate = keras.optimizers.schedules.CosineDecay(options.learning_rate, steps, alpha=0.02)
        self.optimizer = keras.optimizers.Adam(rate)
        self._step = self._compile(training=True)
        self._eval = self._compile(training=False)

    def _compile(self, training: bool) -> Any:
        import tensorflow as tf

        from tools.train import guidance

        mode, weight = self.options.guide, self.options.guide_weight
        guided = mode != "none"
        variables = self.model.trainable_variables

        def explain(x: Any) -> tuple[Any, ...]:
            """(logits, raw, maps, summed log-probabilities, input gradient of those or None) for a batch x."""
            with tf.GradientTape(persistent=True) as inner:
                if mode == "rrr" and training:
                    inner.watch(x)
                A = self.trunk(x, training=training)
                inner.watch(A)
                pre = A
                for layer in self.head_layers:
                    pre = layer(pre, training=training)
                logits = tf.matmul(pre, self.last.kernel) + self.last.bias
                sums = guidance.class_sums(logits)
                log_p = tf.reduce_sum(tf.nn.log_softmax(logits))
            x_grads = inner.gradient(log_p, x) if mode == "rrr" and training else None
            raw = maps = None
            if mode in ("masks", "gain", "consistency") or not training:
                raw, maps = guidance.gradcam_maps(inner, A, sums)
            return logits, raw, maps, x_grads

        def forward(x: Any, y: Any, masks: Any, fruit: Any) -> tuple[Any, ...]:
            logits, raw, maps, x_grads = explain(x)
            ce = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y, logits))
            present = y > 0
            guide, hits, count = tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)
            # Validation reports the mask penalty whatever the training term: one localisation measure for all.
            if not training or mode == "masks":
                guide = guidance.outside_share(raw, masks, present)
            elif mode == "rrr":
                guide = guidance.rrr_penalty(x_grads, fruit)
            elif mode == "gain":
                erased = guidance.gain_erased(x, maps, present)
                guide = guidance.gain_mining_loss(self.model_logits(erased, training), present)
            elif mode == "consistency":
                _, _, flipped_maps, _ = explain(tf.reverse(x, axis=[2]))
                guide = guidance.consistency_loss(maps, flipped_maps, present)
            if maps is not None:
                hits, count = guidance.pointing_hits(maps, masks, present)
            correct = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == tf.argmax(y, -1), tf.float32))
            return ce, guide, correct, hits, count

        def step(x: Any, y: Any, masks: Any, fruit: Any) -> tuple[Any, ...]:
            with tf.GradientTape() as tape:
                ce, guide, correct, hits, count = forward(x, y, masks, fruit)
                loss = ce + weight * guide if guided else ce
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return ce, guide, correct, hits, count

        return tf.function(step if training else forward, reduce_retracing=True)

    def model_logits(self, x: Any, training: bool) -> Any:
        """The logits of a batch (the softmax layer's pre-activation), for GAIN's second pass on erased frames."""
        import tensorflow as tf

        pre = self.trunk(x, training=training)
        for layer in self.head_layers:
            pre = layer(pre, training=training)
        return tf.matmul(pre, self.last.kernel) + self.last.bias

    def run(self, frames: compositing.Frames, training: bool, desc: str) -> dict[str, float]:
        """One pass over frames in batches; sums of the step's figures, then means."""
        size = self.options.batch_size
        pooled = frames.pooled_masks(*self.map_shape)  # (N, h, w, C) float32
        sums = np.zeros(5)
        n = len(frames.x)
        fn = self._step if training else self._eval
        bar = tqdm(range(0, n, size), desc=desc, unit="batch", leave=False)
        for i in bar:
            x = frames.x[i:i + size].astype(np.float32) / 255.0  # (B, S, S, 3) float32 in [0, 1]
            fruit = frames.masks[i:i + size].any(axis=1)[..., None].astype(np.float32)  # (B, S, S, 1): any fruit
            out = fn(x, frames.y[i:i + size], pooled[i:i + size], fruit)
            sums += [float(v) * (min(size, n - i) if k < 2 else 1) for k, v in enumerate(out)]
            bar.set_postfix(loss=f"{sums[0] / min(n, i + size):.3f}", acc=f"{sums[2] / min(n, i + size):.3f}")
        return {"loss": sums[0] / n, "guide": sums[1] / n, "accuracy": sums[2] / n,
                "pointing": sums[3] / sums[4] if sums[4] else float("nan")}


def train(data_dir: Path, options: TrainOptions) -> dict[str, Any]:
    """Train, keep the best epoch in options.out, write the history plot and summary; returns the summary."""
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()
    train_set, valid_set, _ = load_dataset(data_dir, options.image_size, options.limit, options.seed)
    _require_masks(train_set)
    model = build_model(options.arch, len(train_set.class_names), options.image_size, options.seed)
    trainer = Trainer(model, options)
    valid = compositing.frames(valid_set, options.valid_samples, np.random.default_rng(options.seed + 10_000),
                               "train", VALID_MIX)
    history: list[dict[str, float]] = []
    before = _prefixed("val", trainer.run(valid, False, "validation before training"))
    best: tuple[float, float] = (-1.0, -1.0)
    start = time.monotonic()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    for epoch in tqdm(range(1, options.epochs + 1), desc="epochs", unit="epoch"):
        rng = np.random.default_rng([options.seed, epoch])
        frames = compositing.frames(train_set, options.samples_per_epoch, rng)
        row = {"epoch": epoch, **_prefixed("train", trainer.run(frames, True, f"epoch {epoch}")),
               **_prefixed("val", trainer.run(valid, False, "validation"))}
        history.append(row)
        _LOGGER.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch"))
        key = (row["val_accuracy"], row["val_pointing"])
        if key > best:
            best = key
            model.save(options.out)
    summary = training_report.summary(options, train_set, valid_set, trainer.target, history,
                                      time.monotonic() - start)
    summary["before_training"] = before  # the untrained model's validation figures: what guidance starts from
    training_report.write(options.out, summary, history)
    return summary


def _prefixed(prefix: str, figures: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in figures.items()}


def _require_masks(data: FruitSet) -> None:
    if not data.with_masks():
        raise DatasetError("no training image has a mask (white background or masks/NAME.png): nothing to composite")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.train", description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path, help="folder with train/ valid/ [test/] class folders, or class folders")
    p.add_argument("--out", type=Path, required=True, help="where the best model goes (.keras)")
    defaults = TrainOptions(Path("."))
    for name in ("epochs", "image_size", "samples_per_epoch", "valid_samples", "batch_size", "seed", "limit"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    p.add_argument("--arch", choices=ARCHS, default=defaults.arch)
    p.add_argument("--guide", choices=GUIDES, default=defaults.guide,
                   help="masks: add the Grad-CAM-outside-the-mask penalty to the loss; rrr (input gradients outside "
                        "the fruit), gain (attention mining), consistency (mirror-consistent Grad-CAM): the ablation")
    p.add_argument("--guide-weight", type=float, default=defaults.guide_weight)
    add_common(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.debug)
    options = TrainOptions(**{k: v for k, v in vars(args).items() if k not in ("data_dir", "debug")})
    with one_line_errors(args.debug, DatasetError, ValueError, OSError) as status:
        summary = train(args.data_dir, options)
        print(json.dumps({k: summary[k] for k in ("best_epoch", "best") if k in summary}, indent=2))
    return status.code
