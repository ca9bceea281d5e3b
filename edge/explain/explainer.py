"""Explainer: the on-device API. One bundle, one interpreter, and per frame the class scores plus their CAM."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np
from numpy.typing import NDArray

from edge.errors import BundleError, InputError, MethodError
from edge.explain import bundle as bundle_format
from edge.explain.bundle import Manifest
from edge.explain.cam import DEFAULT_METHOD, CamContext, CamMethod, get_method, normalise
from edge.explain.cam.base import FLOAT32
from edge.explain.class_names import summary as class_summary
from edge.explain.head import Head, HeadPass
from edge.explain.head_ops import F32
from edge.explain.preprocess import Preprocessor
from edge.explain.runtime import AUTO_THREADS, FeatureModel, resolve_threads
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

    def __init__(
        self, manifest: Manifest, features: FeatureModel, head: Head, *, score: str, path: Path | None = None
    ) -> None:
        self.manifest = manifest
        self.features = features
        self.head = head
        self.score = score
        self.path = path
        self.preprocess = Preprocessor(manifest.preprocess, manifest.input_shape)
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
        """Validate the bundle (manifest, checksums, shapes) and load its interpreter once.

        num_threads: TFLite threads, "auto" (every CPU this process may use; see docs/device.md), an int >= 1, or None
        for the runtime's own default (one thread)."""
        resolve_threads(num_threads)  # argument errors first, as TypeError/ValueError, before any file is read
        path = Path(path)
        manifest = bundle_format.read_manifest(path)
        bundle_format.verify_files(path, manifest)
        head = bundle_format.load_head(path / bundle_format.HEAD)
        if head.input_shape != manifest.feature_shape:
            raise BundleError(
                path / bundle_format.HEAD,
                f"takes features {head.input_shape} but the manifest says {manifest.feature_shape}",
            )
        if head.num_classes != manifest.num_classes:
            raise BundleError(
                path / bundle_format.HEAD,
                f"has {head.num_classes} outputs but the manifest names {manifest.num_classes} classes",
            )
        features = FeatureModel(path / bundle_format.FEATURES, manifest, runtime=runtime, num_threads=num_threads)
        score = score or manifest.score
        if score not in bundle_format.SCORES:
            raise MethodError(f"unknown score {score!r}; choose one of {', '.join(bundle_format.SCORES)}")
        _LOGGER.info("loaded %s (%s; %s features, %s runtime)", path, class_summary(manifest.class_names),
                     manifest.features.dtype, features.runtime)
        return cls(manifest, features, head, score=score, path=path)

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest.class_names)

    def classify(self, frame: NDArray[np.uint8]) -> F32:
        """Probabilities (C,) only: the classify-only floor that explain() is measured against."""
        return self.head.forward(self.features(self.preprocess(frame))).probabilities

    @overload
    def explain(
        self, frame: NDArray[np.uint8], *, target: int | str | None = ..., method: str = ..., top_k: None = ...
    ) -> Explanation: ...

    @overload
    def explain(
        self, frame: NDArray[np.uint8], *, target: int | str | None = ..., method: str = ..., top_k: int
    ) -> list[Explanation]: ...

    def explain(
        self,
        frame: NDArray[np.uint8],
        *,
        target: int | str | None = None,
        method: str = DEFAULT_METHOD,
        top_k: int | None = None,
    ) -> Explanation | list[Explanation]:
        """Explain an (H, W, 3) uint8 RGB frame of any size: the top class, a chosen target, or the top_k classes."""
        t0 = time.perf_counter()
        x = self.preprocess(frame)
        if top_k is not None or target is not None or method != DEFAULT_METHOD or self.score != "logit":
            return self._explain(x, target, method, top_k, t0)
        # The default call, and the path measured against classify (issue 25): Grad-CAM of the top class's logit, in
        # this one function. After the feature model every further Python frame and object costs a microsecond or
        # two in cache misses, so no context object and no score gradient (the head's weights function takes the
        # class): the arithmetic of _explain's path through GradCAM.raw, in 29 -> 22 us per call (Flatten CNN).
        t1 = time.perf_counter()
        A = self.features(x)  # (h, w, k) float32
        t2 = time.perf_counter()
        hp = self.head.forward(A)
        t3 = time.perf_counter()
        c = int(hp.probabilities.argmax())
        cam_raw = A.dot(self.head.logit_channel_weights(hp, c))  # (h, w, k), (k,) -> (h, w) float32
        cam = normalise(cam_raw)
        timings = {"preprocess": (t1 - t0) * 1e3, "features": (t2 - t1) * 1e3, "head": (t3 - t2) * 1e3,
                   "cam": (time.perf_counter() - t3) * 1e3}
        # positional: a slots dataclass's __init__ by keywords took 1.6 us here, by position 0.6 us; .item(): the score
        # as a Python float in one call
        return Explanation(hp.probabilities, c, self.manifest.class_names[c], hp.logits.item(c), cam, cam_raw,
                           DEFAULT_METHOD, timings)

    @overload
    def explain_input(
        self, x: F32, *, target: int | str | None = ..., method: str = ..., top_k: None = ...
    ) -> Explanation: ...

    @overload
    def explain_input(
        self, x: F32, *, target: int | str | None = ..., method: str = ..., top_k: int
    ) -> list[Explanation]: ...

    def explain_input(
        self, x: F32, *, target: int | str | None = None, method: str = DEFAULT_METHOD, top_k: int | None = None
    ) -> Explanation | list[Explanation]:
        """Explain an already preprocessed model input x (h_in, w_in, c) float32: the parity path."""
        if x.shape != self.manifest.input_shape:
            raise InputError(f"expected a model input of shape {self.manifest.input_shape}, got {x.shape}")
        return self._explain(np.asarray(x, np.float32), target, method, top_k, None)

    def _explain(
        self, x: F32, target: int | str | None, method_name: str, top_k: int | None, t0: float | None
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
            return self._explain_class(A, hp, c, method, stages, x)
        return [self._explain_class(A, hp, c, method, stages, x) for c in self._classes(hp, target, top_k)]

    def _explain_class(
        self, A: F32, hp: HeadPass, c: int, method: CamMethod, stages: tuple[float, float, float], x: F32
    ) -> Explanation:
        """One class's map and result; stages: the preprocess, features and head ms shared by the frame's classes."""
        t3 = time.perf_counter()
        head = self.head
        dz = head.score_gradient(hp, c, self.score)
        cam_raw = method.raw(CamContext(A, head, hp, dz, c, self.score, x, self.trunk_features))
        if cam_raw.dtype is not FLOAT32:  # an identity test: == np.float32 converts the type on every call
            cam_raw = cam_raw.astype(np.float32)
        cam = normalise(cam_raw)
        preprocess_ms, features_ms, head_ms = stages
        timings = {"preprocess": preprocess_ms, "features": features_ms, "head": head_ms,
                   "cam": (time.perf_counter() - t3) * 1e3}
        # .item(): the score as a Python float in one call
        score = hp.logits.item(c) if self.score == "logit" else hp.probabilities.item(c)
        # positional: a slots dataclass's __init__ by keywords took 1.6 us here, by position 0.6 us
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
