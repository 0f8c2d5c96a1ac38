"""The episode API, the baseline policies and the metrics of `edgeprof simulate`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sim_testing import small_scenario

from edgeprof.optimize.heuristics import EdgeOnly, LocalOnly, RandomPolicy, popularity_deployment
from edgeprof.sim import core
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.rollout import delay_distribution, run_policy
from edgeprof.sim.workload import load_service_table


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return small_scenario(tmp_path_factory.mktemp("profiles"))


def _system(scenario, num_envs=1, seed=0):
    return EdgeSystem(scenario, load_service_table(scenario), num_envs, seed)


def test_phases_are_enforced(scenario):
    system = _system(scenario)
    association = np.zeros((1, system.num_users), dtype=np.int64)
    z = np.zeros_like(association)
    share = core.equal_shares(association, system.num_servers)
    with pytest.raises(ValueError, match="call deploy\\(\\) before step\\(\\)"):
        system.step(association, z, share, share)
    system.deploy(popularity_deployment(system))
    system.step(association, z, share, share)
    with pytest.raises(ValueError, match="slot 1 is not a deployment slot"):
        system.deploy(system.deployment)
    system.t = scenario["system.slots_per_deployment"]
    system.entities = dataclasses.replace(system.entities,
                                          server_storage_bytes=system.entities.server_storage_bytes * 0 + 1e6)
    with pytest.raises(ValueError, match="C7 violated: the models deployed at server 0 of environment 0"):
        system.deploy(np.ones_like(system.deployment))


def test_masks_allow_hosting_servers_and_the_model_points(scenario):
    system = _system(scenario, num_envs=3)
    system.deploy(popularity_deployment(system))
    servers, points = system.user_masks()
    hosted = np.take_along_axis(system.deployment, system.slot.requests[:, :, None], axis=1)
    expected = np.where(hosted.any(-1, keepdims=True), hosted, True)
    assert np.array_equal(servers, expected)
    assert np.array_equal(points.sum(-1), system.table.num_points[system.slot.requests] + 1)


@pytest.mark.parametrize("policy", [LocalOnly(), EdgeOnly(), RandomPolicy(3)])
def test_masked_actions_keep_c4_to_c7(scenario, policy):
    system = _system(scenario, num_envs=4, seed=1)
    for _ in range(12):
        if system.deployment_due:
            system.deploy(policy.deploy(system))
            assert core.storage_feasible(system.table, system.entities, system.deployment).all()
        association, z = policy.act(system)
        servers, points = system.user_masks()
        assert np.take_along_axis(servers, association[..., None], -1).all()
        assert np.take_along_axis(points, z[..., None], -1).all()
        compute, bandwidth = policy.allocate(system, association, z)
        outcome = system.step(association, z, compute, bandwidth)  # evaluate refuses any C3-C6 violation
        assert (outcome.delay_s > 0).all()


def test_local_only_has_no_privacy_cost_and_edge_only_no_local_energy(scenario):
    local = run_policy(_system(scenario, seed=2), LocalOnly(), 20)
    edge = run_policy(_system(scenario, seed=2), EdgeOnly(), 20)
    assert local["privacy_cost"] == 0.0 and local["privacy_cost_success"] == 0.0
    assert edge["privacy_cost"] > 0
    system = _system(scenario, seed=2)
    system.deploy(EdgeOnly().deploy(system))
    association, z = EdgeOnly().act(system)
    outcome = system.step(association, z, *EdgeOnly().allocate(system, association, z))
    assert (outcome.compute_energy_j == 0).all() and (outcome.local_s == 0).all()


def test_metrics_are_consistent_and_reproducible(scenario):
    first = run_policy(_system(scenario, num_envs=2, seed=5), RandomPolicy(7), 15)
    second = run_policy(_system(scenario, num_envs=2, seed=5), RandomPolicy(7), 15)
    assert first == second
    for name in ("delay_s", "energy_j", "privacy_cost", "cost", "success_rate"):
        assert np.mean(first["per_user"][name]) == pytest.approx(first[name])
    assert first["cost"] == pytest.approx(scenario["cost.mu_privacy"] * first["privacy_cost"]
                                          + scenario["cost.mu_energy"] * first["energy_j"])
    assert first["requests"] == 15 * 2 * scenario["system.num_users"]
    assert 0 < first["success_rate"] <= 1
    assert 0 < first["delay_median_s"] <= first["delay_p99_s"] <= first["delay_max_s"] <= 30.0  # the deadline
    assert 1 / first["requests"] <= first["delay_top1pct_share"] < 1


def test_the_delay_distribution_gives_the_median_tail_and_the_slowest_percents_share():
    delays = np.concatenate([np.ones(198), [100.0, 1000.0]])  # 200 requests: the slowest 1% are the last two
    spread = delay_distribution(delays.reshape(2, 100))
    assert spread["delay_median_s"] == 1.0 and spread["delay_max_s"] == 1000.0
    assert spread["delay_p99_s"] == pytest.approx(np.percentile(delays, 99))  # between the 198th and 199th values
    assert spread["delay_top1pct_share"] == pytest.approx(1100.0 / 1298.0)
    assert delay_distribution(np.array([2.0, 2.0]))["delay_top1pct_share"] == 0.5  # the slowest one, at least


def test_failures_cost_the_failure_delay_and_nothing_else(scenario):
    system = _system(scenario)
    system.deploy(np.zeros_like(system.deployment))
    association = np.zeros((1, system.num_users), dtype=np.int64)
    z = np.zeros_like(association)
    outcome = system.step(association, z, *core.equal_shares(association, system.num_servers)[None].repeat(2, 0))
    assert not outcome.success.any()
    assert (outcome.delay_s == scenario["system.failure_delay_s"]).all()
    assert (outcome.energy_j == 0).all() and (outcome.privacy_cost == 0).all()
    assert (system.user_rewards(outcome) == scenario["cost.failure_reward"]).all()


def test_rewards(scenario):
    system = _system(scenario, seed=4)
    policy = EdgeOnly()
    system.deploy(policy.deploy(system))
    association, z = policy.act(system)
    outcome = system.step(association, z, *policy.allocate(system, association, z))
    rewards = system.user_rewards(outcome)
    served = outcome.success
    overdue = np.maximum(outcome.delay_s - scenario["system.delay_constraint_s"], 0)
    expected = -(5 * outcome.privacy_cost + 5 * outcome.energy_j + 0.1 * overdue)
    assert np.allclose(rewards[served], expected[served])
    per_server = system.allocation_rewards(outcome, association)
    for server in range(system.num_servers):
        users = association[0] == server
        want = -outcome.delay_s[0, users].mean() if users.any() else 0.0
        assert per_server[0, server] == pytest.approx(want)


def test_deployment_rewards_count_hits_minus_migration(scenario):
    system = _system(scenario, seed=6)
    policy = EdgeOnly()
    interval = scenario["system.slots_per_deployment"]
    system.deploy(policy.deploy(system))
    migration = core.migration_cost(system.table, system.entities, system.deployment,
                                    np.zeros_like(system.deployment))
    hits = np.zeros((1, system.num_servers))
    for _ in range(interval):
        association, z = policy.act(system)
        hits += core.hits(system.deployment, system.slot.requests, association)
        system.step(association, z, *policy.allocate(system, association, z))
    rewards = system.deploy(policy.deploy(system))
    assert np.allclose(rewards, scenario["cost.mu_hit"] * hits - scenario["cost.mu_migration"] * migration)


def test_pettingzoo_facade_passes_the_parallel_api_test(scenario):
    from pettingzoo.test import parallel_api_test

    from edgeprof.sim.pettingzoo_env import UserAgentsEnv

    env = UserAgentsEnv(scenario, load_service_table(scenario), LocalOnly(), slots=25)
    parallel_api_test(env, num_cycles=30)
    observations, _ = env.reset(seed=3)
    assert set(observations) == {f"user_{k}" for k in range(scenario["system.num_users"])}
    actions = {agent: np.array([0, 99]) for agent in env.agents}  # z beyond every model: clipped to L_i
    _, rewards, _, truncations, infos = env.step(actions)
    assert all(info["z_clipped"] for info in infos.values())
    assert all(info["cost"] > 0 for info in infos.values()) and not any(truncations.values())
    assert all(reward <= 0 for reward in rewards.values())


def test_pettingzoo_agents_see_what_the_trainers_user_actor_sees(scenario):
    from edgeprof.rl.hc_policies import user_observation
    from edgeprof.sim.pettingzoo_env import UserAgentsEnv

    env = UserAgentsEnv(scenario, load_service_table(scenario), LocalOnly(), slots=25)
    observations, _ = env.reset(seed=5)
    trainer_view = user_observation(env.system)
    for k, agent in enumerate(env.agents):
        assert np.array_equal(observations[agent]["observation"], trainer_view.local[0, k].numpy())
        assert env.observation_space(agent)["observation"].contains(observations[agent]["observation"])
    assert np.array_equal(env.state(), trainer_view.state[0].numpy()) and env.state_space.contains(env.state())


def test_pettingzoo_resets_are_seeded(scenario):
    from edgeprof.sim.pettingzoo_env import UserAgentsEnv

    def requests(env, seed=None):  # the episode's first slot: its requests and its users' drawn compute
        env.reset(seed=seed)
        return np.concatenate([env.system.slot.requests.ravel(), env.system.entities.user_flops_per_s.ravel()])

    env = UserAgentsEnv(scenario, load_service_table(scenario), LocalOnly(), slots=25)
    first = requests(env, 7)
    assert np.array_equal(first, requests(env, 7))  # seed s is the episode of seed s, as in `solve --seeds s`
    following = [requests(env) for _ in range(3)]
    assert not any(np.array_equal(following[0], other) for other in following[1:])  # reset() draws a new episode
    requests(env, 7)
    assert all(np.array_equal(a, b) for a, b in zip(following, [requests(env) for _ in range(3)], strict=True))
    unseeded = [requests(UserAgentsEnv(scenario, load_service_table(scenario), LocalOnly())) for _ in range(2)]
    assert not np.array_equal(*unseeded)  # no seed at all: fresh entropy, not seed 0


def test_simulate_cli_writes_metrics(run_cli, tmp_path, scenario):
    profiles = "{" + ", ".join(f'{m} = "{p}"' for m, p in scenario["services.profiles"].items()) + "}"
    out = tmp_path / "m.json"
    result = run_cli("simulate", "--scenario", "small", "--set", f"services.profiles={profiles}", "--solver",
                     "edge-only", "--slots", "12", "--seed", "3", "-o", out)
    assert result.code == 0, result.err
    metrics = __import__("json").loads(out.read_text())
    assert metrics["policy"] == "edge-only" and metrics["slots"] == 12
    assert len(metrics["per_user"]["delay_s"]) == scenario["system.num_users"]
    assert "success_rate" in result.out and "successful requests" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--solver", "magic"], "unknown solver 'magic' for system dpa: use one of local-only, edge-only"),
        (["--set", "system.num_servers=0"], "system.num_servers: must be >= 1"),
        (["--set", "servers.compute_gflops=[-1, 5]"], "must be > 0, <= 1000000000, got -1.0"),
        (["--set", "servers.storage_gb=[0.001, 0.001]"], "infeasible scenario: servers.storage_gb is at most"),
        (["--set", 'services.profiles={lenet7 = "/no/such/file.json"}'],
         "the profile of lenet7 (/no/such/file.json) does not exist"),
    ],
)
def test_simulate_bad_input_is_exit_2(run_cli, args, message):
    result = run_cli("simulate", "--scenario", "small", *args, "--slots", "2")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1


def test_simulate_refuses_a_profile_without_leakage(run_cli, tmp_path):
    import json

    from edgeprof.profiler.static import profile_model

    path = tmp_path / "lenet7.json"
    path.write_text(json.dumps(profile_model("lenet7")))
    result = run_cli("simulate", "--scenario", "small", "--set", "services.models=['lenet7']",
                     "--set", f'services.profiles={{lenet7 = "{path}"}}', "--slots", "2")
    assert result.code == 2 and "has no leakage at z=" in result.err


def test_copies_repeat_one_environment(scenario):
    system = _system(scenario, num_envs=3, seed=4)
    system.deploy(popularity_deployment(system))
    association, z = LocalOnly().act(system)
    shares = core.equal_shares(association, system.num_servers)
    system.step(association, z, shares, shares)  # local runs leave prefixes cached
    entities, slot, cache = system.copies(1, 4)
    assert np.array_equal(slot.requests, np.repeat(system.slot.requests[[1]], 4, axis=0))
    assert np.array_equal(entities.server_storage_bytes, np.repeat(system.entities.server_storage_bytes[[1]], 4, 0))
    assert np.array_equal(cache, np.repeat(system.cache.depth[[1]], 4, axis=0)) and cache.any()
    uncached = EdgeSystem(scenario.with_value("users.prefix_cache", False), system.table, 1, 0)
    assert uncached.copies(0, 2)[2] is None
