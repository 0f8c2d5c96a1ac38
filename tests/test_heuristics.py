"""Seed 001's heuristic baselines: feasible decisions, and each one's rule checked on real slots."""

from __future__ import annotations

import numpy as np
import pytest
from sim_testing import small_scenario

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.heuristics import (
    POLICIES,
    Greedy,
    LeastRecentlyUsed,
    Neurosurgeon,
    deepest_within,
    estimated_delays,
    make_policy,
)
from edgeprof.sim import core
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.workload import load_service_table


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return small_scenario(tmp_path_factory.mktemp("profiles"))


def _system(scenario, num_envs=2, seed=0):
    system = EdgeSystem(scenario, load_service_table(scenario), num_envs, seed)
    return system


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_keeps_c1_to_c7_for_many_slots(scenario, name):
    system, policy = _system(scenario, seed=11), make_policy(name, seed=4)
    for _ in range(23):
        if system.deployment_due:
            system.deploy(policy.deploy(system))  # deploy() refuses C7 violations
        association, z = policy.act(system)
        compute, bandwidth = policy.allocate(system, association, z)
        system.step(association, z, compute, bandwidth)  # evaluate() refuses C3-C6 violations


def test_deepest_within_and_fastest_fallback():
    delays = np.array([[[1.0, 2.0, 4.0, np.inf], [5.0, 6.0, 7.0, 8.0]]])
    assert deepest_within(delays, 3.0).tolist() == [[1, 0]]


def test_greedy_and_neurosurgeon_follow_their_rules(scenario):
    system = _system(scenario, seed=3)
    system.deploy(Greedy().deploy(system))
    greedy_association, greedy_z = Greedy().act(system)
    share = core.equal_shares(greedy_association, system.num_servers)
    delays = estimated_delays(system, greedy_association, share, share)
    limit = scenario["system.delay_constraint_s"]
    for env, user in np.ndindex(greedy_z.shape):
        row = delays[env, user]
        chosen = greedy_z[env, user]
        if (row <= limit).any():
            assert row[chosen] <= limit and not (row[chosen + 1:] <= limit).any()
        else:
            assert row[chosen] == row.min()
    _, neuro_z = Neurosurgeon().act(system)
    assert np.array_equal(np.take_along_axis(delays, neuro_z[..., None], -1)[..., 0], delays.min(-1))


def test_lru_keeps_recently_requested_services(scenario):
    system, policy = _system(scenario, num_envs=1, seed=8), LeastRecentlyUsed()
    interval = scenario["system.slots_per_deployment"]
    recent = set()
    for t in range(interval):
        if system.deployment_due:
            system.deploy(policy.deploy(system))
        association, z = policy.act(system)
        if t == interval - 1:
            recent = {(int(s), int(j)) for s, j in zip(system.slot.requests[0], association[0], strict=True)}
        system.step(association, z, *policy.allocate(system, association, z))
    deployment = policy.deploy(system)
    sizes, storage = system.table.model_bytes, system.entities.server_storage_bytes[0]
    for server in {j for _, j in recent}:
        latest = [i for i, j in recent if j == server]
        if any(sizes[i] <= storage[server] for i in latest):  # the most recent come first in LRU order
            assert any(deployment[0, i, server] for i in latest)


def test_unknown_policy():
    with pytest.raises(EdgeprofError, match="unknown policy 'magic'"):
        make_policy("magic")
