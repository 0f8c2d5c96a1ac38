"""Several critics of one value, each trained on its own, combined into the value the policy update uses.

Seed 004's M2APPO (Alg. 2, eq. 26-27) trains 5 recurrent critics of the same shape with different
initialisations and learning rates and uses V = sum_n s_n phi_n with s_n = 0.2; its ablations are MAPPO (one
critic) and m2appo-min (the minimum of the critics, the pessimistic reading of Fig. 5). `MixedCritics` holds the
critics, one optimiser per critic (so each keeps its own learning rate and Adam moments), and the combination:

- "weighted": sum_n w_n phi_n; weights must be finite, non-negative and sum to 1 (equal weights by default:
  the mean); one critic with weight 1 is that critic, bit for bit, in its values and in its training;
- "min": the elementwise minimum over critics (no weights).

Every critic regresses on the same targets with its own loss (`losses.value_loss`), not on the mixed value:
the mix is what GAE and the policy see, each critic stays an independent estimate. How the critics are run
(feed-forward, or recurrent through `recurrent.unroll` with their own stored hidden states) is the trainer's
business: `combine` takes their values stacked on a new first axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from edgeprof.rl.shapes import check_shape

Combination = Literal["weighted", "min"]


class MixedCritics:
    """`critics` with one optimiser each (`learning_rates[n]` for critic n), and their combination."""

    def __init__(self, critics: Sequence[nn.Module], learning_rates: Sequence[float],
                 weights: Sequence[float] | None = None, combination: Combination = "weighted",
                 optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam, **optimizer_options: Any) -> None:
        if not critics:
            raise ValueError("mixed critics need at least one critic")
        if len(learning_rates) != len(critics):
            raise ValueError(f"one learning rate per critic: {len(critics)} critics, {len(learning_rates)} rates")
        if any(not rate > 0.0 for rate in learning_rates):
            raise ValueError(f"critic learning rates must be positive, got {list(learning_rates)}")
        self.critics = nn.ModuleList(critics)
        self.combination = combination
        self.weights = _checked_weights(weights, len(critics), combination)
        self.optimizers = [optimizer(critic.parameters(), lr=rate, **optimizer_options)
                           for critic, rate in zip(self.critics, learning_rates, strict=True)]

    def __len__(self) -> int:
        return len(self.critics)

    def values(self, *inputs: Any) -> torch.Tensor:
        """Every critic on the same inputs, stacked: (n_critics, ...). For critics that return a tensor."""
        return torch.stack([critic(*inputs) for critic in self.critics])

    def value(self, *inputs: Any) -> torch.Tensor:
        """The combined value of critics that return a tensor."""
        return self.combine(self.values(*inputs))

    def combine(self, values: torch.Tensor) -> torch.Tensor:
        """The critics' values (n_critics, ...) combined into one (...)."""
        if values.dim() == 0 or values.shape[0] != len(self):
            raise ValueError(f"values must be stacked on a first axis of {len(self)} critics, got shape "
                             f"{tuple(values.shape)}")
        if self.combination == "min":
            return values.min(dim=0).values
        weights = torch.tensor(self.weights, dtype=values.dtype, device=values.device)
        return (weights.reshape(-1, *(1,) * (values.dim() - 1)) * values).sum(dim=0)

    def update(self, losses: Sequence[torch.Tensor], max_grad_norm: float = math.inf) -> list[float]:
        """One optimiser step per critic on its own loss (a scalar each, in critic order), its gradient clipped
        to `max_grad_norm` first. Returns the critics' gradient norms before clipping."""
        if len(losses) != len(self):
            raise ValueError(f"one loss per critic: {len(self)} critics, {len(losses)} losses")
        for loss in losses:
            check_shape("a critic loss", loss, ())
        for optimizer in self.optimizers:
            optimizer.zero_grad()
        torch.stack(list(losses)).sum().backward()
        norms = []
        for critic, optimizer in zip(self.critics, self.optimizers, strict=True):
            norms.append(float(nn.utils.clip_grad_norm_(critic.parameters(), max_grad_norm)))
            optimizer.step()
        return norms

    def state_dict(self) -> dict[str, Any]:
        """The critics' parameters and every optimiser's state (learning rates and moments)."""
        return {"critics": self.critics.state_dict(),
                "optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["optimizers"]) != len(self):
            raise ValueError(f"a state of {len(state['optimizers'])} critics cannot be loaded into {len(self)}")
        self.critics.load_state_dict(state["critics"])
        for optimizer, optimizer_state in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(optimizer_state)


def _checked_weights(weights: Sequence[float] | None, count: int, combination: Combination) -> tuple[float, ...]:
    if combination == "min":
        if weights is not None:
            raise ValueError("critic weights apply to the weighted combination; 'min' takes none")
        return ()
    if combination != "weighted":
        raise ValueError(f"critics combine as 'weighted' or 'min', got {combination!r}")
    if weights is None:
        return (1.0 / count,) * count
    weights = tuple(float(weight) for weight in weights)
    if len(weights) != count:
        raise ValueError(f"one weight per critic: {count} critics, {len(weights)} weights {list(weights)}")
    if any(not math.isfinite(weight) or weight < 0.0 for weight in weights):
        raise ValueError(f"critic weights must be finite and non-negative, got {list(weights)}")
    if not math.isclose(math.fsum(weights), 1.0, rel_tol=0.0, abs_tol=1e-9):
        raise ValueError(f"critic weights must sum to 1, got {list(weights)} (sum {math.fsum(weights):.12g})")
    return weights
