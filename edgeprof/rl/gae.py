"""Generalised advantage estimation, GAE(lambda), for continuing tasks cut into truncated rollouts.

Seed 001's system never terminates: an episode ends only because training stops collecting (the end of a
rollout, or a reset). Such a truncation must bootstrap from the value of the state that was reached, whereas a
true termination bootstraps from 0. Both cut the lambda-recursion, because the next stored step (if any) starts
a new episode. So every step carries its own `next_values` (the value of the state its action led to):

    delta_t = r_t + gamma * (1 - terminated_t) * next_value_t - value_t
    A_t     = delta_t + gamma * lambda * (1 - terminated_t) * (1 - truncated_t) * A_{t+1},   A_T = 0
    return_t = A_t + value_t

At the end of a rollout the last step's next value is the bootstrap V(s_T); the recursion stops there anyway.

Timescales: decisions taken every delta-T slots (deployment) form their own chain, one step per decision, with
the reward of an interval arriving at the next decision. `gamma` is then the discount per decision;
`decision_gamma` makes the choice explicit: `gamma ** delta_T` discounts time in slots like the per-slot layers,
`gamma` per decision is what the public HC-MAPPO-L code does (0.99 per 10 slots, a ten times longer horizon).
"""

from __future__ import annotations

from typing import Literal

import torch

from edgeprof.rl.shapes import check_same_shape


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (both shaped like `rewards`, time first: (T, ...)).

    `values[t]` is V(s_t); `next_values[t]` is V of the state step t's action reached (for a truncated step,
    the final state of that episode, not the first state of the next). `terminated` and `truncated` are bool.
    """
    check_same_shape(rewards=rewards, values=values, next_values=next_values, terminated=terminated,
                     truncated=truncated)
    if terminated.dtype != torch.bool or truncated.dtype != torch.bool:
        raise ValueError("terminated and truncated must be bool tensors")
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gamma and lambda must lie in [0, 1], got gamma={gamma}, lambda={lam}")
    if rewards.dim() == 0 or len(rewards) == 0:
        raise ValueError(f"GAE needs at least one step along the first (time) axis, got shape {tuple(rewards.shape)}")
    continues = (~terminated).to(values.dtype)
    carries = (~(terminated | truncated)).to(values.dtype)
    deltas = rewards + gamma * continues * next_values - values
    advantages = torch.zeros_like(deltas)
    running = torch.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):
        running = deltas[t] + gamma * lam * carries[t] * running
        advantages[t] = running
    return advantages, advantages + values


def decision_gamma(gamma: float, interval: int, discount: Literal["slot", "decision"] = "slot") -> float:
    """The discount per decision for a layer that decides every `interval` slots.

    "slot": gamma ** interval, so every layer discounts the same wall-clock future; "decision": gamma itself
    (the public code's choice).
    """
    if interval < 1:
        raise ValueError(f"interval must be at least 1 slot, got {interval}")
    if discount == "slot":
        return gamma ** interval
    if discount == "decision":
        return gamma
    raise ValueError(f"discount must be 'slot' or 'decision', got {discount!r}")
