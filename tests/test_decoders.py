"""Decoders are shaped by the feature they invert and always return a (3, size, size) image in [0, 1]."""

from __future__ import annotations

import pytest
import torch

from edgeprof.inversion.decoders import build_decoder


@pytest.mark.parametrize(
    ("feature_shape", "image_size"),
    [
        ((64, 32, 32), 32),  # full resolution, no upsampling
        ((128, 8, 8), 64),  # three doublings
        ((512, 7, 7), 224),  # not a power of two: 7 -> 224 is 32x
        ((64, 5, 5), 75),  # odd sizes
        ((256, 1, 1), 32),  # a pooled map
        ((96, 6, 9), 48),  # non-square map
        ((1000,), 32),  # logits
        ((10,), 64),  # a tiny vector
        ((197, 768), 224),  # ViT-B/16 tokens with the class token
        ((16, 32), 32),  # tokens on a 4x4 grid without a class token
        ((7, 20), 32),  # a sequence that is no grid: flattened
        ((8, 4, 4, 4), 32),  # anything else: flattened
    ],
)
def test_output_is_an_image_of_the_input_size(feature_shape, image_size):
    torch.manual_seed(0)
    decoder = build_decoder(feature_shape, image_size, width=8).eval()
    with torch.no_grad():
        image = decoder(torch.randn(2, *feature_shape))
    assert image.shape == (2, 3, image_size, image_size)
    assert image.min() >= 0 and image.max() <= 1


def test_decoder_learns_to_invert_an_invertible_feature():
    """A 1x1 conv of the image is linear and injective: the decoder must drive its error down quickly."""
    torch.manual_seed(0)
    images = torch.rand(64, 3, 16, 16)
    features = torch.nn.functional.conv2d(images, torch.randn(8, 3, 1, 1))
    decoder = build_decoder((8, 16, 16), 16, width=16)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(decoder(features), images)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first


def test_width_is_validated():
    with pytest.raises(ValueError, match="width, image size and channels must be positive, got 0, 16 and 3"):
        build_decoder((4, 4, 4), 16, width=0)
    with pytest.raises(ValueError, match="got 8, 16 and 0"):
        build_decoder((4, 4, 4), 16, width=8, image_channels=0)
