"""Small models for the tests, importable as `edgeprof_testmodels:<factory>`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 5),
    )


class Untraceable(nn.Module):
    """Data-dependent control flow stops torch.fx; its forward also adds a skip that its children miss.

    Input 3x16x16.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if torch.isfinite(y).all():
            y = y + x
        return self.head(y)


def untraceable() -> nn.Module:
    return Untraceable()


def not_a_module() -> str:
    return "not a model"


def broken_factory() -> nn.Module:
    raise RuntimeError("this factory always fails")


def exiting_factory() -> nn.Module:
    raise SystemExit(3)


def small_vgg() -> nn.Module:
    """A VGG-style network for 32x32 inputs: five 3x3 convs in three pooled stages and a linear head."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10),
    )


class _Encoder(nn.Module):
    """Two conv stages of a 3x16x16 input, and a pooled feature vector."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.stage2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage2(self.stage1(x))


class DictOutput(_Encoder):
    """A `ModelOutput`-style result: a dict of logits and the feature map."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(x)
        return {"logits": self.head(features.mean((2, 3))), "features": features}


@dataclass
class Prediction:
    logits: torch.Tensor
    pooled: torch.Tensor


class DataclassOutput(_Encoder):
    def forward(self, x: torch.Tensor) -> Prediction:
        pooled = self.features(x).mean((2, 3))
        return Prediction(self.head(pooled), pooled)


class TupleOutput(_Encoder):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        return self.head(features.mean((2, 3))), features


class ResizeToInput(_Encoder):
    """Segmentation-style: the prediction is resized to the input's height and width, read at the very end."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.classifier(self.features(x))
        return nn.functional.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)


def dict_output() -> nn.Module:
    return DictOutput()


def dataclass_output() -> nn.Module:
    return DataclassOutput()


def tuple_output() -> nn.Module:
    return TupleOutput()


def resize_to_input() -> nn.Module:
    return ResizeToInput()


class ShapeBranch(nn.Module):
    """A branch on the input's size: torch.fx cannot trace it, torch.export specialises it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        if y.shape[-1] > 8:
            y = self.pool(y)
        return self.fc(y.flatten(1))


def shape_branch() -> nn.Module:
    return ShapeBranch()


class TwoInputs(nn.Module):
    """An image and a per-sample vector of 4 features, joined before the head."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.extra = nn.Linear(4, 8)
        self.head = nn.Linear(16, 3)

    def forward(self, image: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.image(image), torch.relu(self.extra(extra))], dim=1))


class TokenClassifier(nn.Module):
    """Token ids (int64) embedded, mixed by a linear layer, pooled and classified."""

    def __init__(self, vocab: int = 50, dim: int = 16, num_classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.mix(self.embed(tokens))).mean(1))


def gray_cnn() -> nn.Module:
    """tiny_cnn for one-channel images."""
    model = tiny_cnn()
    model[0] = nn.Conv2d(1, 8, 3, padding=1)
    return model


def two_inputs() -> nn.Module:
    return TwoInputs()


def token_classifier(num_classes: int = 2, vocab: int = 50) -> nn.Module:
    return TokenClassifier(vocab=vocab, num_classes=num_classes)
