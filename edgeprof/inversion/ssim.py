"""Image-similarity scores for inversion attacks: SSIM in the one setting every leakage table states, PSNR, MSE.

SSIM implementations in the literature differ by 0.01-0.05 (window, covariance, border handling, data range),
so this module pins the Wang et al. 2004 setting and names it in `SSIM_DESCRIPTION`. It agrees with
`skimage.metrics.structural_similarity(..., channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`; it runs batched on any torch device and is differentiable, so `1 - ssim` can be
a training loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
K1 = 0.01
K2 = 0.03

SSIM_DESCRIPTION = (
    "SSIM (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, population covariance, "
    "valid region (no padding), per image, mean over RGB channels, images in [0, 1] with data_range 1"
)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """SSIM of each image pair: x, y of shape (N, C, H, W) in [0, data_range]; returns shape (N,).

    The SSIM map is computed per channel over the valid region (the window never leaves the image), averaged
    over pixels, then over channels. Inputs of lower precision than float32 are computed in float32.
    """
    x, y = _check_pair(x, y)
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    height, width = x.shape[-2:]
    if height < WINDOW_SIZE or width < WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {WINDOW_SIZE}x{WINDOW_SIZE} px (its Gaussian window); "
            f"got {height}x{width}"
        )
    batch, channels = x.shape[:2]
    # One single-channel image per (statistic, image, channel): the window slides over each independently.
    planes = torch.stack([x, y, x * x, y * y, x * y]).reshape(-1, 1, height, width)
    mean_x, mean_y, mean_xx, mean_yy, mean_xy = _gaussian_filter_valid(planes).reshape(
        5, batch, channels, height - WINDOW_SIZE + 1, width - WINDOW_SIZE + 1
    )
    var_x = mean_xx - mean_x * mean_x
    var_y = mean_yy - mean_y * mean_y
    cov_xy = mean_xy - mean_x * mean_y
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(-2, -1)).mean(dim=1)


def mse(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error of each image pair (N, C, H, W): shape (N,)."""
    x, y = _check_pair(x, y)
    return (x - y).square().mean(dim=(1, 2, 3))


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB of each image pair (N, C, H, W): shape (N,); inf for identical images."""
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return 10 * torch.log10(data_range**2 / mse(x, y))


def _check_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Reject what would silently give a wrong score; promote half precision to float32."""
    if x.shape != y.shape:
        raise ValueError(f"images must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
    if not (x.is_floating_point() and y.is_floating_point()):
        raise TypeError(f"images must be floating point in [0, data_range], got {x.dtype} and {y.dtype}")
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    return x.to(dtype), y.to(dtype)


def _gaussian_filter_valid(planes: Tensor) -> Tensor:
    """Gaussian-weighted local means of (M, 1, H, W) planes over every fully contained 11x11 window."""
    offsets = torch.arange(WINDOW_SIZE, dtype=planes.dtype, device=planes.device) - (WINDOW_SIZE - 1) / 2
    weights = torch.exp(-(offsets**2) / (2 * WINDOW_SIGMA**2))
    weights = weights / weights.sum()
    # The 2-D Gaussian is the outer product of two 1-D ones, so two 1-D passes give the same result cheaper.
    rows = F.conv2d(planes, weights.view(1, 1, WINDOW_SIZE, 1))
    return F.conv2d(rows, weights.view(1, 1, 1, WINDOW_SIZE))
