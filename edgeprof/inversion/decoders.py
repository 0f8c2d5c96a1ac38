"""Inverse networks: decoders that rebuild the input image from the features crossing a partition point.

One generic design, shaped by the feature it inverts (research/inversion.md section 6, after He et al. 2019
and Dosovitskiy & Brox 2016):

- a feature map (C, h, w) goes through a non-affine batch norm (random-init and trained targets give
  features of very different scale), a 1x1 conv, then one [nearest x2 upsample, 3x3 conv, BN, LeakyReLU]
  stage per doubling up to the image size, halving the channels down to a floor; a last resize handles
  sizes that are not a power of two (7x7 -> 224);
- a vector (D,) goes through a normalising batch norm and two linear layers into a 4x4 map, then the same
  stages;
- a token sequence (T, D) whose T or T-1 is a square (a ViT with or without its class token) is laid out
  on its patch grid as a (D, s, s) map; other sequences are flattened into a vector.

The output is an image (3 channels, or 1 for grayscale targets) in [0, 1] (sigmoid), so it is scored directly
in pixel space. Nothing from the input reaches the decoder: it sees only the features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_CHANNELS = 16
VECTOR_GRID = 4


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )


class _MapDecoder(nn.Module):
    """(C, h, w) -> (image_channels, size, size)."""

    def __init__(self, channels: int, height: int, image_size: int, width: int, image_channels: int,
                 normalize: bool = True) -> None:
        super().__init__()
        self.image_size = image_size
        stages = max(0, math.ceil(math.log2(image_size / height))) if height < image_size else 0
        hidden = min(channels, width * 2 ** min(stages, 2))
        self.normalize = nn.BatchNorm2d(channels, affine=False) if normalize else nn.Identity()
        self.project = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.LeakyReLU(0.2, inplace=True))
        layers = []
        for _ in range(stages):
            out = max(MIN_CHANNELS, hidden // 2)
            layers.append(_stage(hidden, out))
            hidden = out
        self.upsample = nn.Sequential(*layers)
        self.refine = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(hidden, image_channels, 3, padding=1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.upsample(self.project(self.normalize(features)))
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return torch.sigmoid(self.refine(x))


class _VectorDecoder(nn.Module):
    """(D,) -> (image_channels, size, size) through a VECTOR_GRID x VECTOR_GRID map."""

    def __init__(self, dim: int, image_size: int, width: int, image_channels: int) -> None:
        super().__init__()
        channels = max(MIN_CHANNELS, width * 4)
        hidden = min(4096, max(256, 4 * dim))
        self.channels = channels
        self.expand = nn.Sequential(
            nn.BatchNorm1d(dim, affine=False),
            nn.Linear(dim, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, channels * VECTOR_GRID * VECTOR_GRID),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.decode = _MapDecoder(channels, VECTOR_GRID, image_size, width, image_channels, normalize=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        grid = self.expand(features.flatten(1)).view(-1, self.channels, VECTOR_GRID, VECTOR_GRID)
        return self.decode(grid)


class _TokenGridDecoder(nn.Module):
    """(T, D) with T = s*s (+1 class token, dropped) -> a (D, s, s) map -> the map decoder."""

    def __init__(self, tokens: int, dim: int, image_size: int, width: int, image_channels: int) -> None:
        super().__init__()
        self.skip = tokens - math.isqrt(tokens) ** 2  # 1 when there is a class token in front
        self.side = math.isqrt(tokens - self.skip)
        self.decode = _MapDecoder(dim, self.side, image_size, width, image_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = features[:, self.skip:, :]
        grid = tokens.transpose(1, 2).reshape(features.shape[0], -1, self.side, self.side)
        return self.decode(grid)


def _is_square_or_square_plus_one(n: int) -> bool:
    return math.isqrt(n) ** 2 == n or (n > 1 and math.isqrt(n - 1) ** 2 == n - 1)


def build_decoder(feature_shape: tuple[int, ...], image_size: int, width: int, image_channels: int = 3) -> nn.Module:
    """A decoder from features of `feature_shape` (without the batch dimension) to (image_channels, image_size,
    image_size).

    `width` sets the channel budget: 32 for CPU smoke runs, 128 on a GPU, 256 for paper-scale budgets.
    """
    if width < 1 or image_size < 1 or image_channels < 1:
        raise ValueError(f"width, image size and channels must be positive, got {width}, {image_size} and "
                         f"{image_channels}")
    if len(feature_shape) == 3:
        channels, height, _ = feature_shape
        return _MapDecoder(channels, height, image_size, width, image_channels)
    if len(feature_shape) == 2 and _is_square_or_square_plus_one(feature_shape[0]) and feature_shape[0] > 1:
        return _TokenGridDecoder(feature_shape[0], feature_shape[1], image_size, width, image_channels)
    return _VectorDecoder(math.prod(feature_shape), image_size, width, image_channels)
