"""`edgeprof solve`: every solver through the simulator, over several seeds, with 95% intervals.

A solver is a policy (`edgeprof.sim.rollout.Policy`): the heuristics, our primal-dual solver, or the exact
per-slot solver. Each seed is one episode of the same scenario; the same seed gives every solver the same
nodes, channels and requests (the simulator's draws do not depend on decisions), so comparisons are paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.rollout import DELAY_DISTRIBUTION, run_policy
from edgeprof.sim.scenario import Scenario
from edgeprof.sim.workload import ServiceTable
from edgeprof.stats import mean_interval

REPORTED = ("objective", "cost", "delay_s", "energy_j", "privacy_cost", "success_rate", *DELAY_DISTRIBUTION)


@dataclass(frozen=True)
class SolverInfo:
    name: str
    description: str
    make: Callable[[int], Any]  # seed -> policy
    per_slot_deployment: bool = False  # deploys every slot (the exact per-slot problem), not every delta-T
    check: Callable[[EdgeSystem], None] | None = None  # refuses instances the solver cannot handle


def _heuristic(name: str) -> Callable[[int], Any]:
    from edgeprof.optimize.heuristics import make_policy

    return lambda seed: make_policy(name, seed)


def _primal_dual(seed: int) -> Any:
    from edgeprof.optimize.primal_dual import PrimalDualDescent

    return PrimalDualDescent(seed=seed)


def _exact(seed: int) -> Any:
    from edgeprof.optimize.exact import ExactPerSlot

    return ExactPerSlot()


def _exact_check(system: EdgeSystem) -> None:
    from edgeprof.optimize.exact import check_size

    check_size(system)


SOLVERS = {
    "local-only": SolverInfo("local-only", "every request on its device (z = L), seed 001's baseline",
                             _heuristic("local-only")),
    "edge-only": SolverInfo("edge-only", "every request offloaded whole (z = 0), seed 001's baseline",
                            _heuristic("edge-only")),
    "greedy": SolverInfo("greedy", "deepest point within tau-bar under equal shares, popularity deployment (V-A)",
                         _heuristic("greedy")),
    "neurosurgeon": SolverInfo("neurosurgeon", "each user's fastest point under equal shares",
                               _heuristic("neurosurgeon")),
    "lru": SolverInfo("lru", "greedy with least-recently-used deployment", _heuristic("lru")),
    "random": SolverInfo("random", "random deployment, server and point; equal shares", _heuristic("random")),
    "primal-dual": SolverInfo("primal-dual", "ours: knapsack deployment, coordinate descent, exact weighted "
                              "allocation, dual ascent on the delay constraint", _primal_dual),
    "exact": SolverInfo("exact", "per-slot optimum, every decision free each slot (branch and bound; small "
                        "instances)", _exact, per_slot_deployment=True, check=_exact_check),
}


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EdgeprofError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise EdgeprofError("--seeds needs at least one seed")
    return seeds


def check_deployable(scenario: Scenario, table: ServiceTable) -> None:
    """Refuse a scenario where no server could ever hold any model (C7): every request would fail."""
    largest_storage = scenario.si_range("servers.storage_gb")[1]
    smallest = int(table.model_bytes.argmin())
    if table.model_bytes[smallest] > largest_storage:
        name = table.base_names[table.base_model[smallest]]
        raise EdgeprofError(f"infeasible scenario: servers.storage_gb is at most {largest_storage / 1e9:.3g} GB, "
                            f"below the smallest model ({name}, {table.model_bytes[smallest] / 1e9:.3g} GB): no "
                            "service can ever be deployed")


def run_solver(name: str, scenario: Scenario, table: ServiceTable, slots: int, seeds: list[int],
               progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """One row of metrics per seed."""
    if name not in SOLVERS:
        raise EdgeprofError(f"unknown solver {name!r}: `edgeprof solve --list` shows the solvers")
    info = SOLVERS[name]
    check_deployable(scenario, table)
    if info.per_slot_deployment:
        scenario = scenario.with_value("system.slots_per_deployment", 1)
    return run_episodes(name, lambda system, seed: info.make(seed), scenario, table, slots, seeds, progress,
                        info.check)


def run_episodes(name: str, make_policy: Callable[[EdgeSystem, int], Any], scenario: Scenario, table: ServiceTable,
                 slots: int, seeds: list[int], progress: Callable[[int, int], None] | None = None,
                 check: Callable[[EdgeSystem], None] | None = None) -> list[dict[str, Any]]:
    """One episode of `slots` slots per seed, with the policy `make_policy(system, seed)`: one row of `REPORTED`
    metrics per seed, labelled `name` (solvers here, trained policies in `edgeprof evaluate`)."""
    rows = []
    for index, seed in enumerate(seeds):
        system = EdgeSystem(scenario, table, num_envs=1, seed=seed)
        if check:
            check(system)
        metrics = run_policy(system, make_policy(system, seed), slots)
        rows.append({"solver": name, "seed": seed, "slots": slots, **{key: metrics[key] for key in REPORTED}})
        if progress:
            progress(index + 1, len(seeds))
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    return {key: mean_interval([row[key] for row in rows]) for key in REPORTED}
