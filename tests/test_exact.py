"""Exact per-slot solvers: branch and bound against brute force through the simulator, the MILP bound below
both, the optimum below every other solver on the same slot, and the exact solver through `edgeprof solve`."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_testing import assert_allowed_or_dropped, profiles_override, write_profiles

from edgeprof.errors import EdgeprofError
from edgeprof.optimize import exact
from edgeprof.optimize.allocation import candidate_objectives, floored_delay_weight
from edgeprof.optimize.solve import run_solver, solvers_for
from edgeprof.sim import core
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.workload import load_service_table

SOLVERS = solvers_for("dpa")

TINY = ("system.num_users=3", "system.num_servers=2", 'services.models=["lenet7", "lenet12"]')


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    return write_profiles(tmp_path_factory.mktemp("profiles"))


def scenario_with(profiles, *overrides):
    return load_scenario("small", [profiles_override(profiles), *overrides])


def simulated_objective(system: EdgeSystem, deployment, association, z, delay_weight=0.0) -> float:
    """The slot objective of environment 0's decisions, scored by the simulator with the exact allocation."""
    return float(candidate_objectives(system, 0, deployment[None], association[None], z[None],
                                      floored_delay_weight(delay_weight))[0])


@pytest.mark.parametrize(("seed", "delay_weight", "storage"), [(0, 0.0, "[0.2, 0.6]"), (1, 0.0, "[0.005, 0.012]"),
                                                               (2, 0.5, "[0.005, 0.02]"), (3, 2.0, "[0.2, 0.6]")])
def test_branch_and_bound_equals_enumeration(profiles, seed, delay_weight, storage):
    system = EdgeSystem(scenario_with(profiles, *TINY, f"servers.storage_gb={storage}"),
                        load_service_table(scenario_with(profiles, *TINY)), 1, seed)
    for _ in range(2):  # a fresh slot, then one with prefixes cached
        brute = exact.enumerate_slot(system, delay_weight=delay_weight)
        options = exact.slot_options(system, delay_weight=delay_weight)
        searched = exact.branch_and_bound(options)
        assert searched.objective == pytest.approx(brute.objective, rel=1e-9)
        assert simulated_objective(system, searched.deployment, searched.association, searched.z,
                                   delay_weight) == pytest.approx(searched.objective, rel=1e-9)
        assert exact.milp_lower_bound(options) <= searched.objective * (1 + 1e-7)
        assert core.storage_feasible(system.table, system.entities, searched.deployment[None]).all()
        if system.deployment_due:
            system.deploy(searched.deployment[None])
        shares = core.equal_shares(searched.association[None], system.num_servers)
        system.step(searched.association[None], searched.z[None], shares, shares)


def test_failures_are_chosen_only_when_nothing_fits(profiles):
    table = load_service_table(scenario_with(profiles, *TINY))
    smallest = table.model_bytes.min() / 1e9
    scenario = scenario_with(profiles, *TINY, f"servers.storage_gb=[{smallest * 0.5}, {smallest * 0.9}]")
    solution = exact.branch_and_bound(exact.slot_options(EdgeSystem(scenario, table, 1, 0)))
    failure = -scenario["cost.failure_reward"] + 1e-6 * scenario["system.failure_delay_s"]
    assert not solution.deployment.any()
    assert solution.objective == pytest.approx(failure)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_optimum_is_below_every_solver_on_the_same_slot(profiles, seed):
    scenario = scenario_with(profiles)
    table = load_service_table(scenario)
    reference = EdgeSystem(scenario, table, 1, seed)
    options = exact.slot_options(reference)
    optimum = exact.branch_and_bound(options)
    assert exact.milp_lower_bound(options) <= optimum.objective * (1 + 1e-7)
    for name in ("local-only", "edge-only", "greedy", "neurosurgeon", "lru", "random", "primal-dual"):
        system = EdgeSystem(scenario, table, 1, seed)
        policy = SOLVERS[name].make(system, seed)
        system.deploy(policy.deploy(system))
        association, z = policy.act(system)
        outcome = system.step(association, z, *policy.allocate(system, association, z))
        theirs = core.slot_objective_of(outcome, scenario)[0]
        assert optimum.objective <= theirs + 1e-4, name  # 1e-4: the 1e-6 floor on the delay weight


def test_size_limit_and_node_budget(profiles):
    table = load_service_table(scenario_with(profiles))
    big = EdgeSystem(scenario_with(profiles, f"system.num_users={exact.MAX_USERS + 1}"), table, 1, 0)
    with pytest.raises(EdgeprofError, match="at most 10 users .* use --scenario small"):
        exact.solve_slot(big)
    with pytest.raises(EdgeprofError, match="passed 2 nodes"):
        exact.branch_and_bound(exact.slot_options(EdgeSystem(scenario_with(profiles), table, 1, 0)), max_nodes=2)
    with pytest.raises(EdgeprofError, match="tiny instance only"):
        exact.enumerate_slot(EdgeSystem(scenario_with(profiles), table, 1, 0))


def test_exact_runs_through_solve_and_deploys_every_slot(profiles):
    scenario = scenario_with(profiles, "system.num_users=4")
    table = load_service_table(scenario)
    rows = run_solver("exact", scenario, table, 3, [0])
    greedy = run_solver("greedy", scenario, table, 3, [0])
    assert rows[0]["objective"] <= greedy[0]["objective"] + 1e-4
    system = EdgeSystem(scenario, table, 1, 0)
    policy = SOLVERS["exact"].make(system, 0)
    system.deploy(policy.deploy(system))
    system.step(*policy.act(system), *policy.allocate(system, *policy.act(system)))
    with pytest.raises(ValueError, match="deploys every slot"):
        policy.act(system)  # slot 1 is not a deployment slot with the scenario's delta-T of 10


def test_infeasible_storage_and_too_large_exit_2(run_cli, profiles):
    override = profiles_override(profiles)
    tiny_storage = run_cli("solve", "--solver", "greedy", "--scenario", "small", "--set", override, "--set",
                           "servers.storage_gb=[0.0001, 0.0002]")
    assert tiny_storage.code == 2
    assert "infeasible scenario: servers.storage_gb is at most 0.0002 GB, below the smallest model" in tiny_storage.err
    too_large = run_cli("solve", "--solver", "exact", "--scenario", "small", "--set", override, "--set",
                        "system.num_users=20", "--slots", "1")
    assert too_large.code == 2 and "use --scenario small" in too_large.err
    assert "Traceback" not in too_large.err


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.integers(1, 5), servers=st.integers(1, 3), seed=st.integers(0, 1000),
       storage=st.sampled_from(["[0.005, 0.02]", "[0.05, 0.6]"]),
       solver=st.sampled_from(sorted(SOLVERS)))
def test_every_solver_keeps_the_constraints(profiles, users, servers, seed, storage, solver):
    """C1-C7 on every slot: `deploy` refuses C7 violations, `evaluate` refuses C1-C6 ones; the masks hold, or
    the solver drops the request on purpose."""
    scenario = scenario_with(profiles, f"system.num_users={users}", f"system.num_servers={servers}",
                             f"servers.storage_gb={storage}", "system.slots_per_deployment=2")
    if SOLVERS[solver].prepare:
        scenario = SOLVERS[solver].prepare(scenario)
    system = EdgeSystem(scenario, load_service_table(scenario), 1, seed)
    policy = SOLVERS[solver].make(system, seed)
    for _ in range(3):
        if system.deployment_due:
            system.deploy(policy.deploy(system))
        association, z = policy.act(system)
        assert_allowed_or_dropped(system, association, z)
        compute, bandwidth = policy.allocate(system, association, z)
        assert (compute >= 0).all() and (bandwidth >= 0).all()
        system.step(association, z, compute, bandwidth)


def test_a_tight_deadline_does_not_erase_the_option_costs(profiles):
    """Privacy and compute energy do not depend on the shares, so the options' fixed costs are those of a
    scenario without the deadline; the optimum stays a lower bound on every solver scored with the deadline."""
    tight = scenario_with(profiles, "system.request_deadline_s=0.001")
    table = load_service_table(tight)
    free = scenario_with(profiles, "system.request_deadline_s=1e12")
    options = exact.slot_options(EdgeSystem(tight, table, 1, 0))
    assert options.fixed == pytest.approx(exact.slot_options(EdgeSystem(free, table, 1, 0)).fixed, rel=1e-12)
    assert options.fixed.max() > 0
    optimum = exact.branch_and_bound(options)
    for name in ("greedy", "primal-dual", "edge-only"):
        system = EdgeSystem(tight, table, 1, 0)
        policy = SOLVERS[name].make(system, 0)
        system.deploy(policy.deploy(system))
        association, z = policy.act(system)
        outcome = system.step(association, z, *policy.allocate(system, association, z))
        assert optimum.objective <= core.slot_objective_of(outcome, tight)[0] + 1e-4, name
