"""PPO's clipped policy loss and value loss, with shapes checked: no broadcasting between predictions and targets.

The public code's H-IPPO value loss compared (B, 1) predictions with (B,) returns, which broadcasts to (B, B)
and fits every value to the batch mean (hcmappo.md section 7.1, I1). These functions refuse mismatched shapes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from edgeprof.rl.shapes import check_same_shape


class PolicyLoss(NamedTuple):
    loss: torch.Tensor
    approx_kl: torch.Tensor  # (ratio - 1) - log ratio, averaged: a non-negative estimate of KL(old || new)
    clip_fraction: torch.Tensor  # share of samples whose ratio left [1 - clip, 1 + clip]


def ppo_policy_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                    clip_coef: float) -> PolicyLoss:
    """The clipped surrogate, to be minimised: -mean(min(ratio * A, clip(ratio, 1 - c, 1 + c) * A))."""
    check_same_shape(log_prob=log_prob, old_log_prob=old_log_prob, advantages=advantages)
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clip_fraction = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return PolicyLoss(loss, approx_kl, clip_fraction)


def value_loss(predicted: torch.Tensor, targets: torch.Tensor, old_predicted: torch.Tensor | None = None,
               clip_coef: float | None = None) -> torch.Tensor:
    """0.5 * mean squared error; with `old_predicted` and `clip_coef`, PPO's clipped form (the larger of the
    clipped and unclipped errors). Pass normalised predictions with normalised targets."""
    check_same_shape(predicted=predicted, targets=targets)
    error = (predicted - targets) ** 2
    if (old_predicted is None) != (clip_coef is None):
        raise ValueError("value clipping needs both old_predicted and clip_coef")
    if old_predicted is not None:
        check_same_shape(predicted=predicted, old_predicted=old_predicted)
        clipped = old_predicted + (predicted - old_predicted).clamp(-clip_coef, clip_coef)
        error = torch.max(error, (clipped - targets) ** 2)
    return 0.5 * error.mean()


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero mean and unit standard deviation over the batch (a single sample is only centred)."""
    centred = advantages - advantages.mean()
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + eps)
