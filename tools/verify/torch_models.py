"""Small PyTorch test subjects: the fruit tutorial's CNN ported to PyTorch, and usable random-init torchvision models.

Random-init torchvision models are degenerate (MobileNetV3's features collapse to ~1e-7, ResNet18 predicts one class
for everything), so their BatchNorm statistics are re-estimated on random images before use; no weights are downloaded.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def fruit_cnn(num_classes: int = 3) -> nn.Module:
    """The tutorials' fruit CNN: 4 x (Conv 3x3 -> ReLU -> BatchNorm -> MaxPool 2x2), Flatten, Linear 128, ReLU,
    Dropout, Linear; at 100x100 the last pool gives (128, 4, 4)."""
    torch.manual_seed(0)
    blocks: list[nn.Module] = []
    channels = 3
    for filters in (16, 32, 64, 128):
        blocks += [nn.Conv2d(channels, filters, 3), nn.ReLU(), nn.BatchNorm2d(filters), nn.MaxPool2d(2)]
        channels = filters
    return nn.Sequential(
        nn.Sequential(*blocks),
        nn.Flatten(),
        nn.Linear(128 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )


def fruit_cnn_gap(num_classes: int = 3) -> nn.Module:
    """models/fruit.keras's architecture in PyTorch (tools/verify/fruit_port.py copies its trained weights in): 4 x
    (Conv 3x3 'same' -> ReLU -> BatchNorm), MaxPool 2x2 after the first three, global average pool, Linear (logits);
    at 100x100 the last BatchNorm `bn4` gives (128, 12, 12)."""
    torch.manual_seed(0)
    layers: list[tuple[str, nn.Module]] = []
    channels = 3
    for i, filters in enumerate((32, 32, 64, 128), start=1):
        layers += [(f"conv{i}", nn.Conv2d(channels, filters, 3, padding=1)), (f"relu{i}", nn.ReLU()),
                   (f"bn{i}", nn.BatchNorm2d(filters, eps=1e-3))]  # Keras's BatchNormalization epsilon
        if i < 4:
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
        channels = filters
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
               ("predictions", nn.Linear(128, num_classes))]
    return nn.Sequential(OrderedDict(layers))


def reestimate_batchnorm(model: nn.Module, input_size: tuple[int, int], batches: int = 4, seed: int = 0) -> nn.Module:
    """BatchNorm running statistics from random images (cumulative average, train mode, no gradients); eval mode.

    A BatchNorm scaled by exactly zero is first given scale 1: timm's `zero_init_last` (ResNet, RegNet) zeroes the last
    BatchNorm of every residual branch at initialisation, so a random-init model's branches add nothing, and the
    TFLite converter folds their convolutions away (timm's ResNet18 trunk came out as 0.7 MB instead of 44 MB, "3.6
    GFLOPs" in 4.5 ms): a test model that is really a different network. No trained model has such a layer."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None and bool((m.weight == 0).all()):
                with torch.no_grad():
                    m.weight.fill_(1.0)
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(8, 3, *input_size, generator=generator))
    return model.eval()


class DenseNetStyle(nn.Module):  # type: ignore[misc,unused-ignore]  # (torch untyped where not installed)
    """torchvision DenseNet's forward in miniature: functional F.relu, adaptive pooling and torch.flatten between the
    `features` module and the classifier, so that they must come from the trace, not from the module tree."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32),
        )
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not in place, unlike torchvision's DenseNet: a forward hook on `features` (the references') would see A
        # overwritten by the ReLU; the bundle's A is the module's real output either way.
        out = nn.functional.relu(self.features(x))
        out = nn.functional.adaptive_avg_pool2d(out, (1, 1))
        return self.classifier(torch.flatten(out, 1))


def densenet_style() -> nn.Module:
    return DenseNetStyle()


class ActivationHead(nn.Module):  # type: ignore[misc,unused-ignore]  # (torch untyped where not installed)
    """A small conv trunk under an MLP head with every activation the device adds for PyTorch heads: Linear ->
    BatchNorm1d (folded at export) -> GELU -> Linear -> SiLU -> Linear -> Hardsigmoid -> Dropout -> Linear, and
    optionally a Softmax at the end (the bundle's output activation then; the logits are the last Linear's)."""

    def __init__(self, softmax: bool = False, num_classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.Hardswish(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32, 24), nn.BatchNorm1d(24), nn.GELU(), nn.Linear(24, 16), nn.SiLU(),
            nn.Linear(16, 16), nn.Hardsigmoid(), nn.Dropout(0.2), nn.Linear(16, num_classes),
            *([nn.Softmax(dim=1)] if softmax else []),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def activation_head() -> nn.Module:
    return ActivationHead()


def activation_head_softmax() -> nn.Module:
    return ActivationHead(softmax=True)
