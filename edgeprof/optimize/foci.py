"""Seed 002's baselines (section 5) as solvers of the `foci` system: `edgeprof solve --scenario foci --solver NAME`.

- `alp`: all local processing, every device runs the whole model itself.
- `nsg`: Neurosurgeon (Kang et al. 2017), each device's individually optimal decision: the edge and cut (or local)
  with the least alpha E + beta D assuming the whole edge is its own (contention-blind, as its 62.72 ms tail in
  Table 1 suggests), among the actions that meet D_st that way. It ignores switch costs: Neurosurgeon decides
  each inference on its own.

Importing this module also registers the fairness oracle with the simulator (`optimize.fairness`), so that
`edges.runtime_allocator = "oracle"` works for every solver.
"""

from __future__ import annotations

import numpy as np

from edgeprof.optimize import fairness
from edgeprof.optimize.solve import SolverInfo, register_solver
from edgeprof.sim.foci import FociEnv, register_oracle

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


for _method in fairness.METHODS:
    register_oracle(_method, lambda rc, rf, total, eps, method=_method: fairness.oracle_allocation(
        method, rc, rf, total, eps))

for _info in (
    SolverInfo("alp", SYSTEM, "all local processing (seed 002's ALP)", lambda env, seed: AllLocal()),
    SolverInfo("nsg", SYSTEM, "Neurosurgeon: each device's own best edge and cut assuming the whole edge",
               lambda env, seed: Neurosurgeon()),
):
    register_solver(_info)
