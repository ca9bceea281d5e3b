"""Mask guidance for training: the device's own Grad-CAM, computed differentiably, pushed inside the fruit's mask.

The penalty (see outside_share) rewards the share of Grad-CAM mass inside the class's mask, per class present in the
frame, on the target layer the bundle will explain, with the mask pooled to that layer's resolution. For a two-fruit
frame the other fruit counts as outside: the same term teaches class discrimination. The gradient of Grad-CAM is itself
a gradient, so training differentiates through an inner GradientTape (second order, but only through the small head).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

EPS = 1e-6


def class_sums(logits: Any) -> list[Any]:
    """Each class's logit summed over the batch; call inside the inner tape so that the sums are recorded.

    Samples are independent after the target layer (the head has no batch statistics), so the gradient of a class's
    summed logits is every sample's own gradient.
    """
    return [tf.reduce_sum(logits[:, c]) for c in range(int(logits.shape[-1]))]


def gradcam_maps(inner: Any, A: Any, sums: list[Any]) -> tuple[Any, Any]:
    """(raw, maps): (B, h, w, C) Grad-CAM of every class's logit before and after its ReLU.

    `inner` is the persistent tape that saw A -> sums.
    """
    raws = []
    for total in sums:
        grads = inner.gradient(total, A)  # (B, h, w, k)
        alpha = tf.reduce_mean(grads, axis=(1, 2))  # (B, k): Grad-CAM's channel weights
        raws.append(tf.einsum("bhwk,bk->bhw", A, alpha))
    raw = tf.stack(raws, axis=-1)
    return raw, tf.nn.relu(raw)


def outside_share(raw: Any, masks: Any, present: Any) -> Any:
    """Mean over present (sample, class) pairs of the mask penalty, in [0, 1]; raw, masks (B, h, w, C); present (B, C).

    With c = raw / sum|raw| (scale-free): (positive c outside the mask + (1 - signed c inside the mask)) / 3. It is 0
    when all of the map's positive mass is on the fruit, and an all-zero map costs 1/3. The penalty works on the map
    before its ReLU: a penalty on the ReLU'd map alone gives no gradient to a fruit whose map is negative, and the
    cheapest way out is then to switch the map off.
    """
    scale = tf.reduce_sum(tf.abs(raw), axis=(1, 2)) + EPS  # (B, C)
    out_positive = tf.reduce_sum(tf.nn.relu(raw) * (1.0 - masks), axis=(1, 2)) / scale
    in_signed = tf.reduce_sum(raw * masks, axis=(1, 2)) / scale
    cost = (out_positive + 1.0 - in_signed) / 3.0
    weight = tf.cast(present, cost.dtype)
    return tf.reduce_sum(cost * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)


def pointing_hits(maps: Any, masks: Any, present: Any) -> tuple[Any, Any]:
    """(hits, count): present (sample, class) pairs whose map peaks in a cell mostly covered by the class's mask."""
    b, h, w, c = (tf.shape(maps)[i] for i in range(4))
    flat_maps = tf.reshape(tf.transpose(maps, (0, 3, 1, 2)), (b, c, h * w))
    flat_masks = tf.reshape(tf.transpose(masks, (0, 3, 1, 2)), (b, c, h * w))
    peak = tf.argmax(flat_maps, axis=-1)
    at_peak = tf.gather(flat_masks, peak, batch_dims=2)  # (B, C)
    alive = tf.reduce_max(flat_maps, axis=-1) > 0
    weight = tf.cast(present, tf.float32)
    hits = tf.reduce_sum(tf.cast((at_peak > 0.5) & alive, tf.float32) * weight)
    return hits, tf.reduce_sum(weight)


# -- The approaches the ablation compares the mask penalty with (docs/model.md, "Ablation") ---------------------------


def rrr_penalty(input_grads: Any, fruit: Any) -> Any:
    """The "Right for the Right Reasons" (Ross, Hughes, Doshi-Velez, IJCAI 2017), eq. 1's second term: the squared input
    gradient of the summed log-probabilities, outside the annotation (here: outside every fruit), summed over pixels
    and channels, averaged over the batch. input_grads (B, S, S, 3); fruit (B, S, S, 1) in [0, 1]."""
    outside = (1.0 - fruit) * input_grads
    return tf.reduce_mean(tf.reduce_sum(tf.square(outside), axis=(1, 2, 3)))


def normalised_maps(maps: Any) -> Any:
    """(B, h, w, C) ReLU'd Grad-CAM maps scaled to [0, 1] per (sample, class) by their maximum."""
    peak = tf.reduce_max(maps, axis=(1, 2), keepdims=True)
    return maps / (peak + EPS)


def gain_erased(x: Any, maps: Any, present: Any, omega: float = 10.0, sigma: float = 0.5) -> Any:
    """GAIN's attention mining (Li et al., CVPR 2018), eq. 3-4: x* = x - T(A) * x with the soft mask
    T(A) = sigmoid(omega (A - sigma)) of the present classes' (max-normalised) Grad-CAM, upsampled to the input.
    Frames with several fruits erase the union (max) of their classes' maps: one extra forward pass per batch."""
    weighted = normalised_maps(maps) * tf.cast(present, maps.dtype)[:, None, None, :]
    union = tf.reduce_max(weighted, axis=-1, keepdims=True)  # (B, h, w, 1)
    up = tf.image.resize(union, tf.shape(x)[1:3], method="bilinear")
    soft = tf.sigmoid(omega * (up - sigma))
    return x - soft * x


def gain_mining_loss(erased_logits: Any, present: Any) -> Any:
    """GAIN's L_am: the mean probability the model still gives the present classes once their evidence is erased."""
    probs = tf.nn.softmax(erased_logits)
    weight = tf.cast(present, probs.dtype)
    return tf.reduce_sum(probs * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)


def consistency_loss(maps: Any, flipped_maps: Any, present: Any) -> Any:
    """Explanation consistency (after Pillai and Pirsiavash, AAAI 2021, reduced to one transformation): the Grad-CAM
    of the mirrored frame, mirrored back, should equal the frame's own; mean squared difference of the max-normalised
    maps over present (sample, class) pairs."""
    a = normalised_maps(maps)
    b = tf.reverse(normalised_maps(flipped_maps), axis=[2])  # (B, h, w, C): width is axis 2
    per_pair = tf.reduce_mean(tf.square(a - b), axis=(1, 2))  # (B, C)
    weight = tf.cast(present, per_pair.dtype)
    return tf.reduce_sum(per_pair * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
