"""The Lagrangian advantage of a constrained PPO update (seed 001, eq. 38), beside the multipliers it weighs
(`edgeprof.optimize.dual`: projected dual ascent and the PID variant, shared with the optimizers)."""

from __future__ import annotations

import torch

from edgeprof.optimize.dual import LagrangeMultiplier, PIDLagrangeMultiplier
from edgeprof.rl.shapes import check_same_shape

__all__ = ["LagrangeMultiplier", "PIDLagrangeMultiplier", "lagrangian_advantages"]


def lagrangian_advantages(reward_advantages: torch.Tensor, cost_advantages: torch.Tensor, multiplier: float,
                          rescale: bool = False) -> torch.Tensor:
    """The advantage of eq. 38's update, A_r - lambda * A_c (costs are bad, so a cost advantage lowers it).

    `rescale` divides by 1 + lambda (OmniSafe's choice) so that the step size does not grow with lambda.
    """
    check_same_shape(reward_advantages=reward_advantages, cost_advantages=cost_advantages)
    combined = reward_advantages - multiplier * cost_advantages
    return combined / (1.0 + multiplier) if rescale else combined
