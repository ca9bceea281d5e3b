"""Explainer: the on-device API. One bundle, one interpreter, and per frame the class scores plus their CAM."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np
from numpy.typing import NDArray

from edge.errors import InputError, MethodError
from edge.explain import bundle as bundle_format
from edge.explain.cam import DEFAULT_METHOD, CamContext, CamMethod, get_method, normalise
from edge.explain.cam.smoothing import AugmentedPasses, Smoothing, aug_smoothed_map, augmented_passes, raw_map
from edge.explain.class_names import summary as class_summary
from edge.explain.head_ops import F32, HeadPass
from edge.explain.open_bundle import OpenBundle, open_bundle
from edge.explain.preprocess import Preprocessor
from edge.explain.runtime import AUTO_THREADS
from edge.explain.trunk_passes import TrunkPasses

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Explanation:
    """The answer for one frame and one class."""

    probabilities: F32  # (C,) float32
    class_index: int  # the explained class
    label: str
    score: float  # the differentiated score of that class: its logit or its probability
    cam: F32  # (h, w) float32 in [0, 1]
    cam_raw: F32  # (h, w) float32, before ReLU and normalisation
    method: str
    timings: dict[str, float] = field(default_factory=dict)  # ms: preprocess, features, head, cam


class Explainer:
    """Loads a bundle once and explains frames with it. Use Explainer.load(path)."""

    def __init__(self, bundle: OpenBundle, *, score: str) -> None:
        self.manifest = bundle.manifest
        self.features = bundle.features
        self.head = bundle.head
        self.score = score
        self.path: Path | None = bundle.path
        self.preprocess = Preprocessor(self.manifest.preprocess, self.manifest.input_shape)
        self._trunk: TrunkPasses | None = None  # the trunk-pass CAM methods' own interpreter, made on first use

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        num_threads: int | str | None = AUTO_THREADS,
        runtime: str = "auto",
        score: str | None = None,
    ) -> Explainer:
        """Open and check the bundle (edge.explain.open_bundle) and load its interpreter once.

        num_threads: TFLite threads, "auto" (every CPU this process may use; see docs/device.md), an int from 1 to 64,
        or None for the runtime's own default (one thread)."""
        bundle = open_bundle(path, runtime=runtime, num_threads=num_threads)
        manifest = bundle.manifest
        score = score or manifest.score
        if score not in bundle_format.SCORES:
            raise MethodError(f"unknown score {score!r}; choose one of {', '.join(bundle_format.SCORES)}")
        _LOGGER.info("loaded %s (%s; %s features, %s runtime)", bundle.path, class_summary(manifest.class_names),
                     manifest.features.dtype, bundle.features.runtime)
        return cls(bundle, score=score)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    def classify(self, frame: NDArray[np.uint8]) -> F32:
        """Probabilities (C,) only: the classify-only floor that explain() is measured against."""
        return self.head.forward(self.features(self.preprocess(frame))).probabilities

    @overload
    def explain(
        self, frame: NDArray[np.uint8], *, target: int | str | None = ..., method: str = ..., top_k: None = ...,
        aug_smooth: bool = ..., eigen_smooth: bool = ...
    ) -> Explanation: ...

    @overload
    def explain(
        self, frame: NDArray[np.uint8], *, target: int | str | None = ..., method: str = ..., top_k: int,
        aug_smooth: bool = ..., eigen_smooth: bool = ...
    ) -> list[Explanation]: ...

    def explain(
        self,
        frame: NDArray[np.uint8],
        *,
        target: int | str | None = None,
        method: str = DEFAULT_METHOD,
        top_k: int | None = None,
        aug_smooth: bool = False,
        eigen_smooth: bool = False,
    ) -> Explanation | list[Explanation]:
        """Explain an (H, W, 3) uint8 RGB frame of any size: the top class, a chosen target, or the top_k classes.
        aug_smooth, eigen_smooth: pytorch-grad-cam's smoothing options (edge/explain/cam/smoothing.py)."""
        t0 = time.perf_counter()
        x = self.preprocess(frame)
        if (top_k is not None or target is not None or method != DEFAULT_METHOD or self.score != "logit"
                or aug_smooth or eigen_smooth):
            return self._explain(x, target, method, top_k, t0, Smoothing(aug_smooth, eigen_smooth))
        # The default call, Grad-CAM of the top class's logit, in this one function: after the feature model every
        # further Python frame and object costs in cache misses (docs/performance.md). The same weights() and
        # normalise() as the Grad-CAM method's, so the result is exactly _explain's.
        t1 = time.perf_counter()
        A = self.features(x)  # (h, w, k) float32
        t2 = time.perf_counter()
        hp = self.head.forward(A)
        t3 = time.perf_counter()
        c = int(hp.probabilities.argmax())
        cam_raw = A.dot(self.head.weights(hp, c))  # (h, w, k), (k,) -> (h, w) float32
        cam = normalise(cam_raw)
        timings = {"preprocess": (t1 - t0) * 1e3, "features": (t2 - t1) * 1e3, "head": (t3 - t2) * 1e3,
                   "cam": (time.perf_counter() - t3) * 1e3}
        # positional arguments and .item(): the cheapest forms here (docs/performance.md)
        return Explanation(hp.probabilities, c, self.manifest.class_names[c], hp.logits.item(c), cam, cam_raw,
                           DEFAULT_METHOD, timings)

    @overload
    def explain_input(
        self, x: F32, *, target: int | str | None = ..., method: str = ..., top_k: None = ..., aug_smooth: bool = ...,
        eigen_smooth: bool = ...
    ) -> Explanation: ...

    @overload
    def explain_input(
        self, x: F32, *, target: int | str | None = ..., method: str = ..., top_k: int, aug_smooth: bool = ...,
        eigen_smooth: bool = ...
    ) -> list[Explanation]: ...

    def explain_input(
        self, x: F32, *, target: int | str | None = None, method: str = DEFAULT_METHOD, top_k: int | None = None,
        aug_smooth: bool = False, eigen_smooth: bool = False
    ) -> Explanation | list[Explanation]:
        """Explain an already preprocessed model input x (h_in, w_in, c) float32: the parity path."""
        if x.shape != self.manifest.input_shape:
            raise InputError(f"expected a model input of shape {self.manifest.input_shape}, got {x.shape}")
        smoothing = Smoothing(aug_smooth, eigen_smooth)
        return self._explain(np.asarray(x, np.float32), target, method, top_k, None, smoothing)

    def _explain(
        self, x: F32, target: int | str | None, method_name: str, top_k: int | None, t0: float | None,
        smoothing: Smoothing
    ) -> Explanation | list[Explanation]:
        """x: the model input; t0: when preprocessing began (None: x came preprocessed)."""
        method = get_method(method_name)
        t1 = time.perf_counter()
        A = self.features(x)  # (h, w, k) float32
        t2 = time.perf_counter()
        hp = self.head.forward(A)
        stages = (0.0 if t0 is None else (t1 - t0) * 1e3, (t2 - t1) * 1e3, (time.perf_counter() - t2) * 1e3)
        if top_k is None:  # one class: no list, no sort
            c = int(hp.probabilities.argmax()) if target is None else self.class_index(target)
            return self._explain_class(A, hp, c, method, stages, x, smoothing)
        shared: list[AugmentedPasses] = []  # aug_smooth's trunk passes, made for the first class, reused by the rest
        return [self._explain_class(A, hp, c, method, stages, x, smoothing, shared)
                for c in self._classes(hp, target, top_k)]

    def _explain_class(
        self, A: F32, hp: HeadPass, c: int, method: CamMethod, stages: tuple[float, float, float], x: F32,
        smoothing: Smoothing, shared: list[AugmentedPasses] | None = None
    ) -> Explanation:
        """One class's map and result; stages: the preprocess, features and head ms shared by the frame's classes."""
        t3 = time.perf_counter()
        head = self.head
        dz = head.score_gradient(hp, c, self.score)
        ctx = CamContext(A, head, hp, dz, c, self.score, x, self.trunk_features)
        if smoothing.aug:  # cam_raw: pytorch-grad-cam's aug_smooth output (ReLU'd, scaled, averaged); cam: its max 1
            if shared is not None and not shared:
                shared.append(augmented_passes(ctx))
            cam_raw = aug_smoothed_map(method, ctx, smoothing.eigen, shared[0] if shared else None)
        else:
            cam_raw = raw_map(method, ctx, smoothing.eigen)
        cam = normalise(cam_raw)
        cam_raw = cam_raw.astype(np.float32, copy=False)
        preprocess_ms, features_ms, head_ms = stages
        timings = {"preprocess": preprocess_ms, "features": features_ms, "head": head_ms,
                   "cam": (time.perf_counter() - t3) * 1e3}
        score = hp.logits.item(c) if self.score == "logit" else hp.probabilities.item(c)
        return Explanation(hp.probabilities, c, self.manifest.class_names[c], score, cam, cam_raw, method.name, timings)

    def trunk_features(self, xs: F32) -> F32:
        """(n, H, W, c) model inputs -> (n, h, w, k) A, for the CAM methods that perturb the input: batched on a second
        interpreter with this one's threads (made on first use), or one by one on this one without a bundle path."""
        if self.path is None:
            return np.stack([self.features(x) for x in xs])
        if self._trunk is None:
            self._trunk = TrunkPasses.for_explainer(self, num_threads=self.features.num_threads)
        return self._trunk.features(xs)

    def _classes(self, hp: HeadPass, target: int | str | None, top_k: int) -> list[int]:
        """The top_k classes, most probable first."""
        if target is not None:
            raise MethodError("give either target or top_k, not both")
        if not 1 <= top_k <= self.manifest.num_classes:
            raise MethodError(f"top_k must be between 1 and {self.manifest.num_classes}, got {top_k}")
        return [int(c) for c in np.argsort(-hp.probabilities, kind="stable")[:top_k]]

    def class_index(self, target: int | str) -> int:
        """A class given by name or index, checked."""
        names = self.manifest.class_names
        if isinstance(target, str):
            if target in names:
                return names.index(target)
            raise MethodError(f"unknown class {target!r}; this model knows {class_summary(names, 20)}"
                             + (" (all in its manifest.json)" if len(names) > 20 else ""))
        if not 0 <= int(target) < len(names):
            raise MethodError(f"class index {target} is out of range 0..{len(names) - 1}")
        return int(target)
