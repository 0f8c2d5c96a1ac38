"""SSIM/PSNR/MSE: agreement with scikit-image's Wang et al. 2004 setting, invariants, errors, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data as skimage_data
from skimage import filters, transform
from skimage.metrics import structural_similarity

from edgeprof.inversion.ssim import SSIM_DESCRIPTION, mse, psnr, ssim

TOLERANCE = 1e-4


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image in the setting of Wang et al. 2004 (HWC images in [0, 1])."""
    return structural_similarity(
        a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )


def as_batch(images: list[np.ndarray], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """HWC numpy images -> one (N, C, H, W) tensor."""
    return torch.stack([torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1) for image in images]).to(dtype)


def natural(name: str, height: int, width: int) -> np.ndarray:
    image = getattr(skimage_data, name)()[..., :3]
    return transform.resize(image, (height, width), anti_aliasing=True)


def distortions(image: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Reconstructions of various quality: blurred, noisy, shifted, brighter, blurred + noisy, unrelated noise."""
    blurred = filters.gaussian(image, sigma=1.0, channel_axis=-1)
    return {
        "blur": blurred,
        "noise": np.clip(image + rng.normal(0, 0.1, image.shape), 0, 1),
        "shift": np.roll(image, shift=(2, -1), axis=(0, 1)),
        "brighter": np.clip(image + 0.1, 0, 1),
        "blur_noise_offset": np.clip(blurred + rng.normal(0, 0.05, image.shape) + 0.02, 0, 1),
        "random": rng.random(image.shape),
    }


@pytest.mark.parametrize("height, width", [(11, 11), (32, 32), (64, 64), (24, 40), (57, 13)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_agrees_with_skimage_on_natural_images(height, width, dtype):
    rng = np.random.default_rng(height * 1000 + width)
    originals, reconstructions = [], []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = natural(name, height, width)
        for distorted in distortions(image, rng).values():
            originals.append(image)
            reconstructions.append(distorted)
    expected = torch.tensor([reference_ssim(a, b) for a, b in zip(originals, reconstructions, strict=True)])
    got = ssim(as_batch(originals, dtype), as_batch(reconstructions, dtype))
    assert got.shape == (len(originals),)
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), expected.double(), atol=TOLERANCE, rtol=0)
    assert expected.min() < 0.2 and expected.max() > 0.8  # the pairs span the range a leakage curve covers


def test_agrees_with_skimage_on_constant_images():
    rng = np.random.default_rng(0)
    shape = (16, 20, 3)
    pairs = [
        (np.full(shape, 0.2), np.full(shape, 0.6)),
        (np.full(shape, 0.5), np.full(shape, 0.5)),
        (np.zeros(shape), np.ones(shape)),
        (np.full(shape, 0.3), rng.random(shape)),
        (np.zeros(shape), natural("astronaut", *shape[:2])),
    ]
    expected = torch.tensor([reference_ssim(a, b) for a, b in pairs], dtype=torch.float64)
    got = ssim(as_batch([a for a, _ in pairs], torch.float64), as_batch([b for _, b in pairs], torch.float64))
    torch.testing.assert_close(got, expected, atol=TOLERANCE, rtol=0)
    c1 = 0.01**2  # two flat images differ only in their means: SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    assert got[0].item() == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(11, 30),
    width=st.integers(11, 30),
    channels=st.sampled_from([1, 3]),
    similarity=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_agrees_with_skimage_on_random_pairs(height, width, channels, similarity, seed):
    rng = np.random.default_rng(seed)
    a = rng.random((height, width, channels))
    b = np.clip(similarity * a + (1 - similarity) * rng.random(a.shape), 0, 1)
    got = ssim(as_batch([a]), as_batch([b])).item()
    assert got == pytest.approx(reference_ssim(a, b), abs=TOLERANCE)


def test_identical_images_score_one_and_ssim_is_symmetric():
    rng = np.random.default_rng(1)
    x = as_batch([natural("astronaut", 32, 48), rng.random((32, 48, 3)), np.full((32, 48, 3), 0.7)])
    y = as_batch([natural("coffee", 32, 48), rng.random((32, 48, 3)), natural("chelsea", 32, 48)])
    torch.testing.assert_close(ssim(x, x), torch.ones(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(ssim(x, y), ssim(y, x), atol=1e-6, rtol=0)
    assert (ssim(x, y) < 0.9).all()


def test_data_range_scales_the_constants():
    rng = np.random.default_rng(2)
    x, y = as_batch([rng.random((20, 20, 3))], torch.float64), as_batch([rng.random((20, 20, 3))], torch.float64)
    torch.testing.assert_close(ssim(255 * x, 255 * y, data_range=255.0), ssim(x, y))
    assert ssim(x, y, data_range=255.0).item() > 0.99  # why the range must match the data: a wrong one reads ~1


@pytest.mark.parametrize("height, width", [(10, 32), (32, 10), (5, 5)])
def test_images_smaller_than_the_window_are_rejected(height, width):
    x = torch.rand(1, 3, height, width)
    with pytest.raises(ValueError, match=rf"at least 11x11 px .* got {height}x{width}"):
        ssim(x, x)


def test_bad_inputs_are_rejected():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, x[:1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ssim(x[0], x[0])
    with pytest.raises(TypeError, match="floating point"):
        ssim((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="data_range"):
        ssim(x, x, data_range=0)


def test_half_precision_is_computed_in_float32():
    rng = np.random.default_rng(3)
    a, b = rng.random((24, 24, 3)), rng.random((24, 24, 3))
    got = ssim(as_batch([a], torch.float16), as_batch([b], torch.float16))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(reference_ssim(a, b), abs=2e-3)  # only the fp16 inputs are rounded


def test_gradients_flow_to_the_reconstruction():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 16, 16)
    reconstruction = torch.rand(2, 3, 16, 16, requires_grad=True)
    (1 - ssim(reconstruction, target)).mean().backward()
    assert torch.isfinite(reconstruction.grad).all()
    assert reconstruction.grad.abs().sum() > 0
    small_target = torch.rand(1, 2, 12, 13, dtype=torch.float64)
    small_reconstruction = torch.rand(1, 2, 12, 13, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: ssim(r, small_target), (small_reconstruction,))


def test_a_gradient_step_raises_ssim():
    torch.manual_seed(1)
    target = torch.rand(1, 3, 16, 16)
    reconstruction = torch.rand(1, 3, 16, 16, requires_grad=True)
    before = ssim(reconstruction, target)
    before.sum().backward()
    with torch.no_grad():
        after = ssim(reconstruction + 0.5 * reconstruction.grad, target)
    assert after.item() > before.item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    torch.manual_seed(2)
    x, y = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    y = 0.7 * x + 0.3 * y
    got = ssim(x.cuda(), y.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), ssim(x, y), atol=1e-5, rtol=0)


def test_mse_and_psnr_hand_checked_values():
    zeros = torch.zeros(2, 3, 4, 4)
    other = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 0.1)])
    torch.testing.assert_close(mse(zeros, other), torch.tensor([0.25, 0.01]))
    expected_psnr = torch.tensor([10 * math.log10(4), 20.0])  # 10 log10(1 / 0.25) and 10 log10(1 / 0.01)
    torch.testing.assert_close(psnr(zeros, other), expected_psnr)
    torch.testing.assert_close(psnr(255 * zeros, 255 * other, data_range=255.0), expected_psnr)
    half = torch.zeros(1, 1, 2, 2)
    half[..., 0, :] = 1.0  # half the pixels off by 1
    assert mse(torch.zeros(1, 1, 2, 2), half).item() == pytest.approx(0.5)
    assert psnr(other, other).tolist() == [math.inf, math.inf]


def test_description_names_the_setting():
    for term in ("Wang et al. 2004", "11x11 Gaussian", "sigma 1.5", "K1 0.01", "K2 0.03", "population", "valid"):
        assert term in SSIM_DESCRIPTION
