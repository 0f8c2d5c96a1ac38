"""Seed 002's baselines (section 5) as solvers of the `foci` system: `edgeprof solve --scenario foci --solver NAME`.

- `alp`: all local processing, every device runs the whole model itself.
- `nsg`: Neurosurgeon (Kang et al. 2017), each device's individually optimal decision: the edge and cut (or local)
  with the least alpha E + beta D assuming the whole edge is its own (contention-blind, as its 62.72 ms tail in
  Table 1 suggests), among the actions that meet D_st that way. It ignores switch costs: Neurosurgeon decides
  each inference on its own.
- `random`: every device draws uniformly among the actions its mask allows (local always allowed), seeded by
  the episode's seed: what the learners do before training (epsilon = 1), the baseline they must beat.

`oracle_costs` applies the fairness oracle to a step's outcome: the shaped reward of FOCI's OFR (eq. 4). Importing
this module also registers the oracle with the simulator (`optimize.fairness`), so that
`edges.runtime_allocator = "oracle"` works for every solver.
"""

from __future__ import annotations

import numpy as np

from edgeprof.optimize import fairness
from edgeprof.optimize.solve import SolverInfo, register_solver
from edgeprof.sim.foci import FociEnv, StepOutcome, register_oracle

SYSTEM = "foci"


class AllLocal:
    """ALP: every device runs locally."""

    name = "alp"

    def act(self, env: FociEnv) -> np.ndarray:
        return np.full(env.num_devices, env.num_actions - 1)


class Neurosurgeon:
    """NSG: each device's best action for itself, assuming the whole edge (module docstring)."""

    name = "nsg"

    def act(self, env: FociEnv) -> np.ndarray:
        alpha, beta, _ = env.weights
        own_cost = alpha * env.whole_edge_energy_j + beta * env.whole_edge_latency_s
        return np.where(env.mask, own_cost, np.inf).argmin(axis=1)


class RandomActions:
    """Uniform among each device's allowed actions, from the episode's seed."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, env: FociEnv) -> np.ndarray:
        return np.where(env.mask, self.rng.random(env.mask.shape), -1.0).argmax(axis=1)


def oracle_costs(outcome: StepOutcome, num_edges: int, sms: int, method: str, eps: float) -> np.ndarray:
    """-R_n^* of eq. 4 for every device an edge served (the worst cost at its edge under the oracle's allocation of
    the edge's L SMs among the devices it served) and each other device's own cost: (M,)."""
    shaped = outcome.cost.astype(np.float64).copy()
    for n in range(num_edges):
        members = np.flatnonzero(outcome.served_by == n)
        if len(members):
            shaped[members] = fairness.oracle_cost(method, outcome.rc[members], outcome.rf[members], sms, eps)
    return shaped


for _method in fairness.METHODS:
    register_oracle(_method, lambda rc, rf, total, eps, method=_method: fairness.oracle_allocation(
        method, rc, rf, total, eps))

for _info in (
    SolverInfo("alp", SYSTEM, "all local processing (seed 002's ALP)", lambda env, seed: AllLocal()),
    SolverInfo("nsg", SYSTEM, "Neurosurgeon: each device's own best edge and cut assuming the whole edge",
               lambda env, seed: Neurosurgeon()),
    SolverInfo("random", SYSTEM, "uniform among each device's allowed actions (the untrained learners' epsilon = 1)",
               lambda env, seed: RandomActions(seed)),
):
    register_solver(_info)
