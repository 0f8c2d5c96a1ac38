"""Running mean and variance, merged batch by batch (Chan et al.'s parallel form of Welford's update).

Statistics are kept in float64 on the CPU, so a long run of float32 batches with a large offset does not lose
the variance to cancellation; `normalize` and `denormalize` return the input's dtype and device.

Value normalisation as in MAPPO, without PopArt: the critic predicts values in normalised units; predictions
are denormalised before they are stored or used in GAE; the returns of a rollout update the statistics once
(before the epochs, so no sample is counted twice), and the critic regresses on `normalize(returns)`.
Reward and cost critics need one normaliser each (sharing one mixes their scales: safepo's quirk).
"""

from __future__ import annotations

from typing import Any

import torch


class RunningMeanStd:
    """Mean and variance of every sample seen, per element of `shape` (leading axes of a batch are samples)."""

    def __init__(self, shape: tuple[int, ...] = (), min_var: float = 1e-8) -> None:
        self.shape = tuple(shape)
        self.min_var = min_var
        self.count = 0
        self.mean = torch.zeros(self.shape, dtype=torch.float64)
        self.sum_sq_dev = torch.zeros(self.shape, dtype=torch.float64)  # Welford's M2

    @property
    def var(self) -> torch.Tensor:
        """Population variance (1 before any sample), floored at `min_var`."""
        if self.count == 0:
            return torch.ones(self.shape, dtype=torch.float64)
        return (self.sum_sq_dev / self.count).clamp(min=self.min_var)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()

    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch shaped (..., *shape) into the statistics."""
        batch = torch.as_tensor(batch).detach()
        if batch.dim() < len(self.shape) or tuple(batch.shape[batch.dim() - len(self.shape):]) != self.shape:
            raise ValueError(f"a batch for statistics of shape {self.shape} must end in {self.shape}, "
                             f"got {tuple(batch.shape)}")
        samples = batch.to("cpu", torch.float64).reshape(-1, *self.shape)
        if not torch.isfinite(samples).all():
            raise ValueError("cannot update running statistics with NaN or infinite values")
        batch_count = samples.shape[0]
        if batch_count == 0:
            return
        batch_mean = samples.mean(dim=0)
        batch_sum_sq_dev = ((samples - batch_mean) ** 2).sum(dim=0)
        total = self.count + batch_count
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (batch_count / total)
        self.sum_sq_dev = self.sum_sq_dev + batch_sum_sq_dev + delta ** 2 * (self.count * batch_count / total)
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "min_var": self.min_var, "count": self.count, "mean": self.mean.clone(),
                "sum_sq_dev": self.sum_sq_dev.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if tuple(state["shape"]) != self.shape:
            raise ValueError(f"statistics of shape {tuple(state['shape'])} cannot be loaded into shape {self.shape}")
        self.min_var = float(state["min_var"])
        self.count = int(state["count"])
        self.mean = state["mean"].to(torch.float64).clone()
        self.sum_sq_dev = state["sum_sq_dev"].to(torch.float64).clone()

    def _stats_like(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean.to(x.device, x.dtype), self.std.to(x.device, x.dtype)


class ValueNormalizer(RunningMeanStd):
    """Scalar statistics of value targets: `normalize` the targets, `denormalize` the critic's predictions."""

    def __init__(self, min_var: float = 1e-4) -> None:
        super().__init__((), min_var)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats_like(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats_like(x)
        return x * std + mean


class ObservationNormalizer(RunningMeanStd):
    """Per-feature statistics of observations; normalised features are clipped to [-clip, clip]."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, min_var: float = 1e-8) -> None:
        super().__init__(shape, min_var)
        self.clip = clip

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats_like(x)
        return ((x - mean) / std).clamp(-self.clip, self.clip)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "clip": self.clip}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.clip = float(state["clip"])
