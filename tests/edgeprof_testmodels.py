"""Small models for the tests, importable as `edgeprof_testmodels:<factory>`."""

from __future__ import annotations

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


def small_vgg() -> nn.Module:
    """A VGG-style network for 32x32 inputs: five 3x3 convs in three pooled stages and a linear head."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 10),
    )
