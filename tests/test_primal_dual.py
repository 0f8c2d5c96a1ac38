"""Our primal-dual solver: exact knapsack, feasible decisions, the dual update, and `edgeprof solve`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_testing import assert_allowed_or_dropped, small_scenario

from edgeprof.optimize.heuristics import EdgeOnly
from edgeprof.optimize.primal_dual import PrimalDualDescent, knapsack
from edgeprof.optimize.solve import run_solver
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.evaluation import summarise
from edgeprof.sim.rollout import run_policy
from edgeprof.sim.workload import load_service_table


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return small_scenario(tmp_path_factory.mktemp("profiles"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.integers(1, 8)), min_size=1, max_size=7), st.integers(0, 20))
def test_knapsack_is_optimal(items, capacity):
    values = np.array([v for v, _ in items])
    sizes = np.array([s for _, s in items])
    chosen = knapsack(values, sizes, capacity)
    assert sizes[chosen].sum() <= capacity
    best = max(values[list(subset)].sum() for r in range(len(items) + 1)
               for subset in itertools.combinations(range(len(items)), r) if sizes[list(subset)].sum() <= capacity)
    assert values[chosen].sum() == pytest.approx(best)


def test_decisions_are_feasible_and_the_multiplier_follows_the_delay(scenario):
    system, solver = EdgeSystem(scenario, load_service_table(scenario), 1, 2), PrimalDualDescent(seed=1)
    delays = []
    for _ in range(14):
        if system.deployment_due:
            system.deploy(solver.deploy(system))  # deploy() refuses C7 violations
        association, z = solver.act(system)
        assert_allowed_or_dropped(system, association, z)
        compute, bandwidth = solver.allocate(system, association, z)
        delays.append(system.step(association, z, compute, bandwidth).delay_mean_s[0])  # evaluate checks C3-C6
    solver.act(system)  # observes the last slot
    expected = 0.0
    for seen in range(1, len(delays) + 1):
        running_mean = np.mean(delays[:seen])
        expected = min(max(expected + solver.dual_lr * (running_mean - scenario["system.delay_constraint_s"]), 0),
                       100)
    assert solver.multiplier.value == pytest.approx(expected)


def test_never_worse_than_edge_only_on_its_own_objective(scenario):
    for seed in (0, 3):
        ours = run_policy(EdgeSystem(scenario, load_service_table(scenario), 1, seed), PrimalDualDescent(), 20)
        edge = run_policy(EdgeSystem(scenario, load_service_table(scenario), 1, seed), EdgeOnly(), 20)
        assert ours["objective"] <= edge["objective"] * 1.02


def test_solve_rows_and_interval(scenario):
    rows = run_solver("edge-only", scenario, load_service_table(scenario), 5, [0, 1, 2])
    assert [row["seed"] for row in rows] == [0, 1, 2]
    mean, low, high, n = summarise(rows, ["cost"])["cost"]
    assert low < mean < high and mean == pytest.approx(np.mean([row["cost"] for row in rows])) and n == 3


def test_solve_cli(run_cli, scenario, tmp_path):
    profiles = "{" + ", ".join(f'{m} = "{p}"' for m, p in scenario["services.profiles"].items()) + "}"
    out = tmp_path / "rows.csv"
    result = run_cli("solve", "--solver", "greedy", "--scenario", "small", "--set", f"services.profiles={profiles}",
                     "--slots", "4", "--seeds", "0,1", "-o", out)
    assert result.code == 0, result.err
    assert out.read_text().splitlines()[0] == "solver,seed,slots,objective,cost,delay_s,energy_j,privacy_cost," \
                                               "success_rate,delay_median_s,delay_p99_s,delay_max_s,delay_top1pct_share,requests"
    assert "primal-dual" in run_cli("solve", "--list").out
    bad = run_cli("solve", "--solver", "oracle", "--scenario", "small")
    assert bad.code == 2 and "unknown solver 'oracle'" in bad.err
    bad_seeds = run_cli("solve", "--solver", "greedy", "--scenario", "small", "--set", f"services.profiles={profiles}",
                        "--seeds", "a,b")
    assert bad_seeds.code == 2 and "--seeds must be comma-separated integers" in bad_seeds.err
    negative = run_cli("solve", "--solver", "greedy", "--scenario", "small", "--seeds", "-1")
    assert negative.code == 2 and "--seeds must lie in [0, 2**63), got -1" in negative.err

