"""DQN pieces: FOCI's parameter-shared dueling double DQN, CERL's DDQN and D2QN baselines, seed 004's MADQN.

- `DuelingHead` / `dueling_q`: Q = V + A - mean_a A (Wang et al. 2016, eq. 9): the mean, not the max, keeps
  the advantages centred and is what the paper trained with.
- `q_target`: r + gamma (1 - terminated) Q_target(s', a*), where a* is the target network's own argmax (DQN,
  Mnih et al. 2015) or, given the online network's next Q-values, the online argmax (double DQN, van Hasselt et
  al. 2016: selection and evaluation by different networks curb the max's overestimation). Only a termination
  stops the bootstrap; a truncated step (a time limit) bootstraps as usual. Action masks of the next state keep
  invalid actions out of the argmax, so the target never values an action the agent could not take.
- `td_loss`: Huber (delta 1, as DQN clipped its errors) or MSE, optionally weighted by prioritised replay's
  importance weights.
- Exploration: `ExponentialSchedule` (FOCI: epsilon = 1 x 0.99 per episode) and `LinearSchedule` (also for
  prioritised replay's beta), `epsilon_greedy` under masks, and adaptive parameter-space noise.
- `update_target`: hard copy (tau = 1) or Polyak averaging of the parameters; buffers (batch-norm statistics,
  which CERL's GCN has) are always copied, because averaging estimates and counters means nothing.

Adaptive parameter-space noise (Plappert et al. 2018; D2QN in CERL): act greedily with a perturbed copy of the
Q-network, theta + N(0, sigma^2) on every weight outside normalisation layers (the paper puts layer norm
between hidden layers so that one sigma suits every layer; noise on the norms' own gains would undo that).
Sigma adapts so that the perturbed policy stays about as far from the greedy one as epsilon-greedy would be:
the distance is KL(softmax Q || softmax Q~) over a batch of states, the threshold delta = -log(1 - epsilon +
epsilon / |A|) (App. C.1), and sigma grows by `adaptation` (1.01) while the distance is within delta, shrinks
otherwise. A trainer using it:

    noise = AdaptiveParameterNoise(seed)
    noise.perturb(online, into=acting)          # at each episode start: act with masked_argmax(acting(obs), mask)
    ...
    noise.perturb(online, into=probe)           # every few steps, on a batch of replayed states:
    distance = q_policy_kl(online(states), probe(states), masks)
    noise.adapt(distance, noise_threshold(epsilon_schedule(episode), num_actions))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from edgeprof.rl.seeding import generator_state, set_generator_state
from edgeprof.rl.shapes import check_same_shape, check_shape

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)


def dueling_q(value: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """Q-values (..., A) from state values (...) and advantages (..., A): V + A - mean over actions of A."""
    check_shape("value", value, tuple(advantages.shape[:-1]))
    return value.unsqueeze(-1) + advantages - advantages.mean(dim=-1, keepdim=True)


class DuelingHead(nn.Module):
    """The last layer of a dueling Q-network: features (..., in_features) to Q-values (..., num_actions)."""

    def __init__(self, in_features: int, num_actions: int) -> None:
        super().__init__()
        self.value = nn.Linear(in_features, 1)
        self.advantage = nn.Linear(in_features, num_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return dueling_q(self.value(features).squeeze(-1), self.advantage(features))


def masked_argmax(q: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The best allowed action (...) of Q-values (..., A); `mask` (..., A) bool is True where allowed. Ties go to
    the lowest index. A row with no allowed action is an error."""
    if mask is None:
        return q.argmax(dim=-1)
    _check_mask(mask, q)
    return q.masked_fill(~mask, float("-inf")).argmax(dim=-1)


def q_target(reward: torch.Tensor, next_q_target: torch.Tensor, terminated: torch.Tensor, gamma: float,
             next_q_online: torch.Tensor | None = None, next_mask: torch.Tensor | None = None) -> torch.Tensor:
    """TD targets (B,) without gradient: reward (B,), the target network's next Q-values (B, A), terminated (B,)
    bool. With `next_q_online` (B, A) the action is the online network's argmax (double DQN); `next_mask`
    (B, A) bool limits it to the actions allowed in the next state (terminated rows may allow none)."""
    check_shape("next_q_target", next_q_target, (*reward.shape, next_q_target.shape[-1]))
    check_same_shape(reward=reward, terminated=terminated)
    if terminated.dtype != torch.bool:
        raise ValueError(f"terminated must be a bool tensor, got {terminated.dtype}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    selector = next_q_target if next_q_online is None else next_q_online
    check_same_shape(next_q_target=next_q_target, next_q_online=selector)
    with torch.no_grad():
        if next_mask is not None:
            check_same_shape(next_q_target=next_q_target, next_mask=next_mask)
            next_mask = next_mask | terminated.unsqueeze(-1)  # a terminal state's actions are never valued
        action = masked_argmax(selector, next_mask)
        next_value = next_q_target.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        return reward + gamma * torch.where(terminated, 0.0, next_value)


def td_loss(q_taken: torch.Tensor, target: torch.Tensor, kind: Literal["huber", "mse"] = "huber",
            weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean TD loss of the taken actions' Q-values (B,) against fixed targets (B,); `weight` (B,) are prioritised
    replay's importance weights. Huber has delta 1; MSE is 0.5 x the squared error (the same near 0)."""
    check_same_shape(q_taken=q_taken, target=target)
    if kind == "huber":
        errors = F.huber_loss(q_taken, target.detach(), reduction="none", delta=1.0)
    elif kind == "mse":
        errors = 0.5 * (q_taken - target.detach()) ** 2
    else:
        raise ValueError(f"the TD loss must be 'huber' or 'mse', got {kind!r}")
    if weight is not None:
        check_same_shape(q_taken=q_taken, weight=weight)
        errors = errors * weight.to(errors.dtype)
    return errors.mean()


@dataclass(frozen=True)
class LinearSchedule:
    """From `start` to `end` in a straight line over `duration` steps, then `end`."""

    start: float
    end: float
    duration: int

    def __post_init__(self) -> None:
        if self.duration < 1:
            raise ValueError(f"a linear schedule needs a duration of at least 1 step, got {self.duration}")

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"schedule steps start at 0, got {step}")
        return self.start + (self.end - self.start) * min(step / self.duration, 1.0)


@dataclass(frozen=True)
class ExponentialSchedule:
    """`start` x `factor` ** step, never below `end` (FOCI: 1 x 0.99 per episode)."""

    start: float
    factor: float
    end: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.factor <= 1.0:
            raise ValueError(f"the decay factor must lie in (0, 1], got {self.factor}")
        if self.end > self.start:
            raise ValueError(f"a decaying schedule needs end <= start, got start {self.start}, end {self.end}")

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"schedule steps start at 0, got {step}")
        return max(self.end, self.start * self.factor ** step)


def epsilon_greedy(q: torch.Tensor, epsilon: float, generator: torch.Generator,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
    """Actions (...) for Q-values (..., A): with probability `epsilon` an allowed action uniformly at random,
    otherwise the best allowed one. Both draws happen for every row whatever epsilon is, so a run consumes the
    generator the same way under any schedule."""
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
    greedy = masked_argmax(q, mask)
    allowed = torch.ones_like(q, dtype=torch.bool) if mask is None else mask
    flat = allowed.reshape(-1, q.shape[-1]).to("cpu", torch.float64)
    random = torch.multinomial(flat, 1, generator=generator).reshape(greedy.shape).to(q.device)
    explore = (torch.rand(greedy.shape, generator=generator) < epsilon).to(q.device)
    return torch.where(explore, random, greedy)


def update_target(target: nn.Module, online: nn.Module, tau: float = 1.0) -> None:
    """Move `target` towards `online`: parameters to tau x online + (1 - tau) x target (tau = 1 copies); buffers
    copied."""
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must lie in (0, 1] (1 is a hard copy), got {tau}")
    online_state, target_state = online.state_dict(), target.state_dict()
    if {name: tuple(t.shape) for name, t in online_state.items()} != {
            name: tuple(t.shape) for name, t in target_state.items()}:
        raise ValueError("the target network must have the online network's architecture (same names and shapes)")
    parameters = {name for name, _ in online.named_parameters()}
    with torch.no_grad():
        for name, tensor in target_state.items():
            if name in parameters and tau < 1.0:
                tensor.lerp_(online_state[name], tau)
            else:
                tensor.copy_(online_state[name])


def q_policy_kl(q: torch.Tensor, q_perturbed: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean over rows of KL(softmax q || softmax q_perturbed) on Q-values (..., A), over allowed actions only:
    Plappert et al.'s distance between a DQN and its perturbed copy."""
    check_same_shape(q=q, q_perturbed=q_perturbed)
    if mask is not None:
        _check_mask(mask, q)
        q, q_perturbed = q.masked_fill(~mask, float("-inf")), q_perturbed.masked_fill(~mask, float("-inf"))
    with torch.no_grad():
        log_p, log_p_perturbed = torch.log_softmax(q, dim=-1), torch.log_softmax(q_perturbed, dim=-1)
        terms = torch.where(torch.isneginf(log_p), 0.0, log_p.exp() * (log_p - log_p_perturbed))
        return float(terms.sum(dim=-1).mean())


def noise_threshold(epsilon: float, num_actions: int) -> float:
    """The KL that epsilon-greedy over `num_actions` actions puts between itself and the greedy policy, the
    target distance of adaptive parameter noise (Plappert et al. 2018, App. C.1): -log(1 - eps + eps / |A|)."""
    if not 0.0 <= epsilon < 1.0 or num_actions < 1:
        raise ValueError(f"need epsilon in [0, 1) and at least one action, got {epsilon} and {num_actions}")
    return -math.log(1.0 - epsilon + epsilon / num_actions)


def perturbable_parameters(module: nn.Module) -> list[str]:
    """Names of the parameters that parameter noise perturbs: all but those of normalisation layers."""
    skipped = {f"{prefix}.{name}" if prefix else name
               for prefix, child in module.named_modules() if isinstance(child, _NORMS)
               for name, _ in child.named_parameters(recurse=False)}
    return [name for name, _ in module.named_parameters() if name not in skipped]


class AdaptiveParameterNoise:
    """Gaussian parameter noise whose scale `std` adapts to a target distance in action space."""

    def __init__(self, seed: int, initial_std: float = 0.01, adaptation: float = 1.01) -> None:
        if not initial_std > 0.0 or not adaptation > 1.0:
            raise ValueError(f"need initial_std > 0 and adaptation > 1, got {initial_std} and {adaptation}")
        self.std, self.adaptation = initial_std, adaptation
        self.generator = torch.Generator().manual_seed(seed)

    def perturb(self, online: nn.Module, into: nn.Module) -> None:
        """Make `into` a copy of `online` with N(0, std^2) added to every perturbable parameter."""
        update_target(into, online)
        parameters = dict(into.named_parameters())
        with torch.no_grad():
            for name in perturbable_parameters(into):
                parameter = parameters[name]
                noise = torch.randn(parameter.shape, generator=self.generator, dtype=parameter.dtype)
                parameter.add_(noise.to(parameter.device), alpha=self.std)

    def adapt(self, distance: float, threshold: float) -> float:
        """Grow `std` by the adaptation factor if the perturbed policy is within `threshold`, else shrink it;
        returns the new std."""
        if distance <= threshold:
            self.std *= self.adaptation
        else:
            self.std /= self.adaptation
        return self.std

    def state_dict(self) -> dict[str, Any]:
        return {"std": self.std, "adaptation": self.adaptation, "generator": generator_state(self.generator)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.std, self.adaptation = float(state["std"]), float(state["adaptation"])
        set_generator_state(self.generator, state["generator"])


def _check_mask(mask: torch.Tensor, q: torch.Tensor) -> None:
    if mask.dtype != torch.bool:
        raise ValueError(f"an action mask must be a bool tensor, got {mask.dtype}")
    check_shape("mask", mask, tuple(q.shape))
    empty_rows = int((~mask.any(dim=-1)).sum())
    if empty_rows:
        raise ValueError(f"{empty_rows} row(s) have every action masked; each needs at least one allowed action")
