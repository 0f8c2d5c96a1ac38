"""Running a policy through an `EdgeSystem` and summarising what happened (`edgeprof simulate`).

A policy is anything with the three decisions of seed 001's layers (the `Policy` protocol); the heuristics
of `edgeprof.optimize` and the RL solvers implement it. Metrics are means over every request of every slot
(and environment): delay, energy, privacy cost, the per-request cost mu1 C_priv + mu2 e (eq. 12's terms, so
`cost` is eq. 12 averaged over slots), `objective` (the slot objective optimizers are scored on: cost plus the
failure penalty -R_fail for each failed request, `sim.model.slot_objective`) and the success rate; the same
over successful requests only (`*_success`); per-user means; and how the delay is spread over requests
(`delay_distribution`: median, p99, max, and the share of all delay that the slowest 1% of requests carry),
because a mean delay can be set by a few requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edgeprof.sim import model
from edgeprof.sim.core import Outcome
from edgeprof.sim.env import EdgeSystem

METRICS = ("delay_s", "energy_j", "privacy_cost", "cost", "objective")


class Policy(Protocol):
    name: str

    def deploy(self, system: EdgeSystem) -> np.ndarray:
        """The deployment (E, I, J) bool for the interval starting now."""

    def act(self, system: EdgeSystem) -> tuple[np.ndarray, np.ndarray]:
        """Each user's server (E, K) and partition point (E, K) for the current requests."""

    def allocate(self, system: EdgeSystem, association: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each user's compute and bandwidth shares (E, K) of its server."""


@dataclass
class _Totals:
    """Running sums over slots, per environment and user (E, K)."""

    shape: tuple[int, int]
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    success_sums: dict[str, np.ndarray] = field(default_factory=dict)
    successes: np.ndarray | None = None
    slots: int = 0
    delays: list[np.ndarray] = field(default_factory=list)

    def add(self, values: dict[str, np.ndarray], success: np.ndarray) -> None:
        self.delays.append(values["delay_s"].ravel())
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, np.zeros(self.shape)) + value
            self.success_sums[name] = self.success_sums.get(name, np.zeros(self.shape)) + np.where(success, value, 0)
        self.successes = (0 if self.successes is None else self.successes) + success
        self.slots += 1


def delay_distribution(delays: np.ndarray) -> dict[str, float]:
    """`sim.dpa.DELAY_DISTRIBUTION` of every request's delay (any shape): median, 99th percentile, maximum, and the
    share of the total delay carried by the slowest 1% of requests (at least one)."""
    delays = np.sort(np.asarray(delays, dtype=np.float64).ravel())
    slowest = max(1, int(np.ceil(0.01 * delays.size)))
    total = delays.sum()
    return {"delay_median_s": float(np.median(delays)), "delay_p99_s": float(np.percentile(delays, 99)),
            "delay_max_s": float(delays[-1]),
            "delay_top1pct_share": float(delays[-slowest:].sum() / total) if total > 0 else 0.0}


def request_values(system: EdgeSystem, outcome: Outcome) -> dict[str, np.ndarray]:
    """The per-request values that metrics average: delay, energy, privacy cost, their weighted cost, and
    the slot objective's share of each request (`model.slot_objective` with lambda = 0)."""
    scenario = system.scenario
    cost = model.request_cost(outcome.privacy_cost, outcome.energy_j, scenario["cost.mu_privacy"],
                              scenario["cost.mu_energy"])
    objective = cost - scenario["cost.failure_reward"] * ~outcome.success
    return {"delay_s": outcome.delay_s, "energy_j": outcome.energy_j, "privacy_cost": outcome.privacy_cost,
            "cost": cost, "objective": objective}


def run_policy(
    system: EdgeSystem, policy: Policy, slots: int, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run `policy` for `slots` slots from the system's current state and return the metrics."""
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    totals = _Totals((system.num_envs, system.num_users))
    for slot in range(slots):
        if system.deployment_due:
            system.deploy(policy.deploy(system))
        association, z = policy.act(system)
        compute_share, bandwidth_share = policy.allocate(system, association, z)
        outcome = system.step(association, z, compute_share, bandwidth_share)
        totals.add(request_values(system, outcome), outcome.success)
        if progress:
            progress(slot + 1)
    return summarise(totals, system)


def summarise(totals: _Totals, system: EdgeSystem) -> dict[str, Any]:
    requests = totals.slots * system.num_envs * system.num_users
    successes = int(totals.successes.sum())
    metrics: dict[str, Any] = {name: float(totals.sums[name].sum() / requests) for name in METRICS}
    metrics["success_rate"] = successes / requests
    metrics.update(delay_distribution(np.concatenate(totals.delays)))
    for name in METRICS:
        metrics[f"{name}_success"] = float(totals.success_sums[name].sum() / successes) if successes else None
    metrics["delay_constraint_s"] = system.scenario["system.delay_constraint_s"]
    metrics["delay_constraint_met"] = metrics["delay_s"] <= metrics["delay_constraint_s"]
    per_user_requests = totals.slots * system.num_envs
    metrics["per_user"] = {
        **{name: (totals.sums[name].sum(axis=0) / per_user_requests).tolist() for name in METRICS},
        "success_rate": (totals.successes.sum(axis=0) / per_user_requests).tolist(),
    }
    metrics["requests"] = requests
    metrics["slots"] = totals.slots
    metrics["environments"] = system.num_envs
    return metrics
