"""The cross-entropy method over a flat parameter vector with a diagonal covariance (CERL's eq. 15).

A population is drawn from N(mu, diag(var)); after scoring, the `elites` best individuals z_1..z_p (best first)
move the distribution:

    mu_new  = sum_i lambda_i z_i
    var_new = sum_i lambda_i (z_i - mu_old)^2 + epsilon            (eq. 15, the diagonal of Sigma)

A full Sigma over ~10^5 network parameters would hold ~10^10 numbers, so only its diagonal is kept (as CEM-RL's
sepCEM does). The weights lambda_i are `log-rank`, proportional to log((p + 1) / i) and summing to 1 (CEM-RL's
choice; the paper gives none), or `equal`. Epsilon starts at `epsilon_start` and decays geometrically towards
`epsilon_end` by `epsilon_decay` per update (CEM-RL's damping: 1e-3 -> 1e-5 by 0.95). The paper's
Sigma = sigma_init I at the start makes `sigma_init` a variance.
"""

from __future__ import annotations

import math
from typing import Any

import torch

WEIGHTINGS = ("log-rank", "equal")


def elite_weights(count: int, weighting: str) -> torch.Tensor:
    """lambda_1..lambda_count (best first), summing to 1."""
    if count < 1:
        raise ValueError(f"need at least one elite, got {count}")
    if weighting == "log-rank":
        weights = torch.tensor([math.log((count + 1) / rank) for rank in range(1, count + 1)], dtype=torch.float64)
    elif weighting == "equal":
        weights = torch.ones(count, dtype=torch.float64)
    else:
        raise ValueError(f"elite weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    return weights / weights.sum()


class DiagonalCEM:
    """The search distribution N(mean, diag(var)) over `mean`'s dimension."""

    def __init__(self, mean: torch.Tensor, sigma_init: float, elites: int, weighting: str = "log-rank",
                 epsilon_start: float = 1e-3, epsilon_end: float = 1e-5, epsilon_decay: float = 0.95) -> None:
        if mean.dim() != 1:
            raise ValueError(f"the mean must be a flat vector, got shape {tuple(mean.shape)}")
        if not sigma_init > 0 or epsilon_start < 0 or epsilon_end < 0 or not 0 < epsilon_decay <= 1:
            raise ValueError("need sigma_init > 0, epsilons >= 0 and a decay in (0, 1]")
        self.mean = mean.detach().to(torch.float32).clone()
        self.var = torch.full_like(self.mean, sigma_init)
        self.weights = elite_weights(elites, weighting)
        self.epsilon, self.epsilon_end, self.epsilon_decay = epsilon_start, epsilon_end, epsilon_decay

    @property
    def elites(self) -> int:
        return len(self.weights)

    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """(count, dim) individuals mean + sqrt(var) x N(0, I)."""
        noise = torch.randn((count, len(self.mean)), generator=generator)
        return self.mean + self.var.sqrt() * noise

    def update(self, population: torch.Tensor, fitness: torch.Tensor) -> torch.Tensor:
        """Eq. 15 from the `elites` fittest rows of `population` (count, dim); returns their indices, best
        first (ties: the lower index)."""
        if population.shape[0] != fitness.shape[0] or population.shape[1:] != self.mean.shape:
            raise ValueError(f"population {tuple(population.shape)} and fitness {tuple(fitness.shape)} do not match "
                             f"a mean of {tuple(self.mean.shape)}")
        if population.shape[0] < self.elites:
            raise ValueError(f"a population of {population.shape[0]} has fewer than {self.elites} elites")
        order = torch.sort(fitness.to(torch.float64), descending=True, stable=True).indices[: self.elites]
        elites = population[order].to(torch.float64)
        weights = self.weights[:, None]
        old_mean = self.mean.to(torch.float64)
        self.mean = (weights * elites).sum(0).to(torch.float32)
        self.var = ((weights * (elites - old_mean) ** 2).sum(0) + self.epsilon).to(torch.float32)
        self.epsilon = self.epsilon_end + self.epsilon_decay * (self.epsilon - self.epsilon_end)
        return order

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "weights": self.weights.clone(),
                "epsilon": self.epsilon, "epsilon_end": self.epsilon_end, "epsilon_decay": self.epsilon_decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["mean"].shape != self.mean.shape or state["weights"].shape != self.weights.shape:
            raise ValueError("a CEM state of another dimension or elite count")
        self.mean, self.var = state["mean"].clone(), state["var"].clone()
        self.weights = state["weights"].clone()
        self.epsilon, self.epsilon_end = float(state["epsilon"]), float(state["epsilon_end"])
        self.epsilon_decay = float(state["epsilon_decay"])
