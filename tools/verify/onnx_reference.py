"""The ONNX side of parity: onnxruntime runs the .onnx file itself for the probabilities and the top class, and torch
autograd on onnx2torch's conversion of the same file gives Grad-CAM (and Grad-CAM++, LayerCAM, HiResCAM) at the
target tensor; model inputs are given NHWC as the bundle takes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime

from tools.export.onnx import front_end, graph, model_file
from tools.verify.tolerance import Tolerances
from tools.verify.torch_reference import F32, TorchGradCamReference, TorchReference
from tools.verify.torch_reference import tolerances as torch_tolerances


class OnnxGradCamReference:
    """onnxruntime's softmax of the model's outputs (logits: the bundle's output activation 'none') and torch autograd
    Grad-CAM at the target tensor's node."""

    def __init__(self, path: Path, target_tensor: str, input_size: tuple[int, int]) -> None:
        g = graph.read(model_file.load(path), input_size)
        gm = front_end.to_torch(g)
        self.gm, self.module_name = gm, str(front_end.module_for(gm, target_tensor).target)
        self.grad_cam = TorchGradCamReference(gm, self.module_name)
        # The file's own bytes, as given: onnxruntime optimises in memory, nothing is written.
        self.session = onnxruntime.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def probabilities(self, x_nhwc: F32) -> F32:
        """Softmax of onnxruntime's outputs for one NHWC model input, (C,)."""
        (logits,) = self.session.run(None, {self.input_name: x_nhwc.transpose(2, 0, 1)[None]})[:1]
        z = np.exp(logits[0].astype(np.float64) - logits[0].max())
        return (z / z.sum()).astype(np.float32)

    def __call__(self, x_nhwc: F32, score: str, target: int | None = None) -> TorchReference:
        probs = self.probabilities(x_nhwc)
        c = int(probs.argmax()) if target is None else target
        autograd = self.grad_cam(x_nhwc, score, c)
        return TorchReference(probs, c, autograd.cam_raw, autograd.activations, autograd.methods)

    def tolerances(self, head_dtype: str, user_scale: float) -> Tolerances:
        """tools/verify/tolerance.py's figures from the converted graph's Conv2d/Linear modules, which onnx2torch
        registers in the ONNX graph's (topological) order, so those up to the target's node are the features'."""
        return torch_tolerances(self.gm, self.module_name, head_dtype, user_scale)
