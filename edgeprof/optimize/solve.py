"""`edgeprof solve`: the registry of solvers, per system, and running one over several seeds.

A solver is anything that acts in a system without training: a heuristic, an optimizer, an exact solver. Each
registers for one system (`register_solver`); `edgeprof solve --solver NAME` runs the scenario's system's solver
NAME through the one evaluation harness (`sim.evaluation.run_episodes`), so every solver of a system is scored
on the same seeded episodes (paired comparisons). Seed 001's solvers are registered below; another built-in
system's solvers register in their own module, named in `_BUILTIN_MODULES` and imported on first use. Factories
import their modules when called: listing the solvers, or running a heuristic, imports neither torch nor cvxpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.sim.evaluation import run_episodes
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.systems import load_plugins


@dataclass(frozen=True)
class SolverInfo:
    """A solver of one system: `make(env, seed)` builds the policy for one episode; `prepare(scenario)` adapts
    the scenario first where the solver solves another problem (the exact per-slot solver deploys every slot)."""

    name: str
    system: str
    description: str
    make: Callable[[Any, int], Any]
    prepare: Callable[[Scenario], Scenario] | None = None


_SOLVERS: dict[str, dict[str, SolverInfo]] = {}
# system -> the module that registers its solvers (seed 001's: this one)
_BUILTIN_MODULES: dict[str, str] = {"foci": "edgeprof.optimize.foci", "cerl": "edgeprof.optimize.cerl",
                                     "crowd-edge": "edgeprof.optimize.crowd_edge"}


def register_solver(info: SolverInfo) -> SolverInfo:
    """Make `info` a solver of its system (a name may be registered once per system)."""
    existing = _SOLVERS.get(info.system, {}).get(info.name)
    if existing is not None and existing is not info:
        raise ValueError(f"system {info.system} already has a solver named {info.name!r}")
    _SOLVERS.setdefault(info.system, {})[info.name] = info
    return info


def unregister_solvers(system: str) -> None:
    """Forget every solver of `system` (tests register toy systems and clean up after themselves)."""
    _SOLVERS.pop(system, None)


def solvers_for(system: str) -> dict[str, SolverInfo]:
    """The solvers of `system` by name, in registration order."""
    if system not in _SOLVERS and system in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[system])
    if system not in _SOLVERS:
        load_plugins()
    return dict(_SOLVERS.get(system, {}))


def get_solver(system: str, name: str) -> SolverInfo:
    """Solver `name` of `system`; an unknown name is refused with the system's solvers."""
    solvers = solvers_for(system)
    if name not in solvers:
        known = ", ".join(solvers) or "none"
        raise EdgeprofError(f"unknown solver {name!r} for system {system}: use one of {known}")
    return solvers[name]


def run_solver(name: str, scenario: Scenario, workload: Any, slots: int, seeds: list[int],
               progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One row of the system's metrics per seed (`sim.evaluation.run_episodes`)."""
    info = get_solver(scenario.system_name, name)
    if info.prepare is not None:
        scenario = info.prepare(scenario)
    return run_episodes(name, scenario, workload, info.make, slots, seeds, progress)


# Seed 001's system (`dpa`)

def _heuristic(name: str) -> Callable[[Any, int], Any]:
    def make(system: Any, seed: int) -> Any:
        from edgeprof.optimize.heuristics import make_policy

        return make_policy(name, seed)

    return make


def _primal_dual(system: Any, seed: int) -> Any:
    from edgeprof.optimize.primal_dual import PrimalDualDescent

    return PrimalDualDescent(seed=seed)


def _exact(system: Any, seed: int) -> Any:
    from edgeprof.optimize.exact import ExactPerSlot, check_size

    check_size(system)
    return ExactPerSlot()


def _deploy_every_slot(scenario: Scenario) -> Scenario:
    return scenario.with_value("system.slots_per_deployment", 1)


for _info in (
    SolverInfo("local-only", "dpa", "every request on its device (z = L), seed 001's baseline",
               _heuristic("local-only")),
    SolverInfo("edge-only", "dpa", "every request offloaded whole (z = 0), seed 001's baseline",
               _heuristic("edge-only")),
    SolverInfo("greedy", "dpa", "deepest point within tau-bar under equal shares, popularity deployment (V-A)",
               _heuristic("greedy")),
    SolverInfo("neurosurgeon", "dpa", "each user's fastest point under equal shares", _heuristic("neurosurgeon")),
    SolverInfo("lru", "dpa", "greedy with least-recently-used deployment", _heuristic("lru")),
    SolverInfo("random", "dpa", "random deployment, server and point; equal shares", _heuristic("random")),
    SolverInfo("primal-dual", "dpa", "ours: knapsack deployment, coordinate descent, exact weighted allocation, "
               "dual ascent on the delay constraint", _primal_dual),
    SolverInfo("exact", "dpa", "per-slot optimum, every decision free each slot (branch and bound; small "
               "instances)", _exact, prepare=_deploy_every_slot),
):
    register_solver(_info)
