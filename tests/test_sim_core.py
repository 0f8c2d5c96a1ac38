"""The batched core: entities and slot draws, `evaluate` against a hand-computed system, its invariants on random
systems, the prefix cache's LRU eviction, the deployment helpers, and refusal of infeasible actions."""

from __future__ import annotations

import numpy as np
import pytest
from sim_testing import hand_entities, hand_slot, small_scenario, toy_profile

from edgeprof.errors import EdgeprofError
from edgeprof.sim import core, model, radio
from edgeprof.sim.scenario import load_scenario
from edgeprof.sim.workload import load_service_table, service_table_from_profiles

NOISE_1MHZ_W = 10**-13.8  # -174 dBm/Hz + 60 dB + 6 dB NF = -108 dBm


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """(scenario, table) of the small preset with synthetic profiles: J = 3, K = 6, I = 4."""
    scenario = small_scenario(tmp_path_factory.mktemp("profiles"))
    return scenario, load_service_table(scenario)


def random_actions(table, entities, slot, rng):
    """All services deployed everywhere; random server, z and shares that fill each server exactly."""
    num_envs, num_users, num_servers = entities.num_envs, entities.num_users, entities.num_servers
    deployment = np.ones((num_envs, table.num_services, num_servers), dtype=bool)
    association = rng.integers(0, num_servers, size=(num_envs, num_users))
    z = (rng.random((num_envs, num_users)) * (table.num_points[slot.requests] + 1)).astype(np.int64)
    shares = []
    for _ in range(2):
        weights = rng.random((num_envs, num_users)) + 0.1
        totals = model.per_server_sum(weights, association, num_servers)
        shares.append(weights / np.take_along_axis(totals, association, axis=1))
    return deployment, association, z, shares[0], shares[1]


# ---------------------------------------------------------------- a system computed by hand

def hand_system(**entity_values):
    """One server (4e9 FLOP/s, 2 MHz, 0.5 W), two users sharing it half and half, the toy model (tests/sim_testing).

    With 1 MHz each the noise is 10^-13.8 W. User 0 (0.1 W, gain 3 x noise / 0.1): uplink SNR 3 -> 2 Mbit/s,
    downlink SNR 0.5 x 30 = 15 -> 4 Mbit/s. User 1 (0.2 W, gain noise / 0.2): uplink SNR 1 -> 1 Mbit/s.
    """
    values = dict(server_flops_per_s=4e9, server_bandwidth_hz=2e6, server_tx_power_w=0.5, user_flops_per_s=1e9,
                  user_tx_power_w=[0.1, 0.2], user_joules_per_flop=1e-10, user_privacy_preference=[0.5, 0.2],
                  user_storage_bytes=1e9)
    values.update(entity_values)
    table = service_table_from_profiles(["toy"], [toy_profile()], 1)
    entities = hand_entities(1, 2, **values)
    slot = hand_slot(requests=[0, 0], batch=[2, 1], gains=[[3 * NOISE_1MHZ_W / 0.1, NOISE_1MHZ_W / 0.2]])
    return table, entities, slot


def evaluate_hand(scenario, z, compute_share=(0.5, 0.5), bandwidth_share=(0.5, 0.5), deployed=True,
                  cache_depth=None, **entity_values):
    table, entities, slot = hand_system(**entity_values)
    deployment = np.full((1, 1, 1), deployed)
    return core.evaluate(table, scenario, entities, slot, deployment, np.array([[0, 0]]), np.array([z]),
                         np.array([compute_share]), np.array([bandwidth_share]), cache_depth)


def test_evaluate_by_hand():
    # user 0, z = 1, D_in = 2: download 2000 B = 16000 bit / 4e6 = 0.004 s; local 2 x 1e9 / 1e9 = 2 s;
    #   upload 2 x 500 B = 8000 bit / 2e6 = 0.004 s; edge 2 x 2e9 / (0.5 x 4e9) = 2 s; total 4.008 s.
    #   energy 1e-10 x 2 x 1e9 = 0.2 J + 0.1 W x 0.004 s = 0.0004 J -> 0.2004 J.
    #   privacy (0.31 + 1.88 x 0.5) x 0.5 x 2 x 1000 / 1e6 = 1.25 x 1e-3 = 0.00125.
    # user 1, z = 0, D_in = 1: upload 1000 B = 8000 bit / 1e6 = 0.008 s; edge 3e9 / 2e9 = 1.5 s; total 1.508 s.
    #   energy 0 + 0.2 W x 0.008 s = 0.0016 J; privacy (0.31 + 1.88 x 0.2) x 1 x 1 x 1e-3 = 0.000686.
    # cost (eq. 12) = 5 x (0.00125 + 0.000686) / 2 + 5 x (0.2004 + 0.0016) / 2 = 0.00484 + 0.505 = 0.50984.
    outcome = evaluate_hand(load_scenario("small"), z=[1, 0])
    assert outcome.uplink_bps[0] == pytest.approx([2e6, 1e6])
    assert outcome.downlink_bps[0, 0] == pytest.approx(4e6)
    assert outcome.download_bytes[0] == pytest.approx([2000.0, 0.0])
    assert outcome.download_s[0] == pytest.approx([0.004, 0.0])
    assert outcome.local_s[0] == pytest.approx([2.0, 0.0])
    assert outcome.upload_s[0] == pytest.approx([0.004, 0.008])
    assert outcome.edge_s[0] == pytest.approx([2.0, 1.5])
    assert outcome.delay_s[0] == pytest.approx([4.008, 1.508])
    assert outcome.compute_energy_j[0] == pytest.approx([0.2, 0.0])
    assert outcome.transmit_energy_j[0] == pytest.approx([0.0004, 0.0016])
    assert outcome.energy_j[0] == pytest.approx([0.2004, 0.0016])
    assert outcome.privacy_cost[0] == pytest.approx([0.00125, 0.000686])
    assert outcome.success[0].tolist() == [True, True]
    assert outcome.delay_mean_s == pytest.approx([2.758])
    assert outcome.energy_mean_j == pytest.approx([0.101])
    assert outcome.privacy_mean == pytest.approx([0.000968])
    assert outcome.cost == pytest.approx([0.50984])
    assert outcome.success_rate.tolist() == [1.0]


def test_cached_prefix_is_not_downloaded_again():
    # user 0 holds the toy model's prefix up to z = 1 (2000 B): no download, 4.008 - 0.004 = 4.004 s
    cache = np.array([[[1], [0]]])
    outcome = evaluate_hand(load_scenario("small"), z=[1, 0], cache_depth=cache)
    assert outcome.download_bytes[0].tolist() == [0.0, 0.0]
    assert outcome.delay_s[0] == pytest.approx([4.004, 1.508])
    # holding z = 1 of 2 when z = 2 is asked: 6000 - 2000 = 4000 B = 32000 bit / 4e6 = 0.008 s
    deeper = evaluate_hand(load_scenario("small"), z=[2, 0], cache_depth=cache)
    assert deeper.download_bytes[0, 0] == pytest.approx(4000.0)
    assert deeper.download_s[0, 0] == pytest.approx(0.008)
    # with the cache switched off in the scenario the cache is ignored
    off = evaluate_hand(load_scenario("small", ["users.prefix_cache=false"]), z=[1, 0], cache_depth=cache)
    assert off.delay_s[0] == pytest.approx([4.008, 1.508])


def test_undeployed_service_fails_with_the_failure_delay_and_costs_nothing():
    outcome = evaluate_hand(load_scenario("small", ["system.failure_delay_s=45.0"]), z=[1, 0], deployed=False)
    assert outcome.success[0].tolist() == [False, False]
    assert outcome.delay_s[0].tolist() == [45.0, 45.0]
    for part in (outcome.energy_j, outcome.privacy_cost, outcome.download_s, outcome.local_s, outcome.upload_s,
                 outcome.edge_s, outcome.compute_energy_j, outcome.transmit_energy_j, outcome.download_bytes):
        assert part[0].tolist() == [0.0, 0.0]
    assert outcome.cost.tolist() == [0.0]
    assert outcome.delay_mean_s.tolist() == [45.0]
    assert outcome.success_rate.tolist() == [0.0]


def test_a_request_over_its_deadline_fails_like_an_unhosted_one():
    # the hand system's delays are 4.008 s and 1.508 s (test_evaluate_by_hand)
    outcome = evaluate_hand(load_scenario("small", ["system.request_deadline_s=4.0"]), z=[1, 0])
    assert outcome.success[0].tolist() == [False, True]
    assert outcome.delay_s[0] == pytest.approx([30.0, 1.508])  # tau_fail, as for an unhosted service
    assert outcome.energy_j[0, 0] == 0.0 and outcome.privacy_cost[0, 0] == 0.0 and outcome.local_s[0, 0] == 0.0
    exactly = evaluate_hand(load_scenario("small", ["system.request_deadline_s=4.008"]), z=[1, 0])
    assert exactly.success[0].tolist() == [True, True]  # within the deadline up to float rounding of 4.008
    with pytest.raises(EdgeprofError, match="request_deadline_s: must be > 0, <= 1000000000000, got 0.0"):
        load_scenario("small", ["system.request_deadline_s=0"])


def test_zero_allocation_fails_only_where_something_is_needed():
    # user 0 local-only (z = 2) with its whole prefix cached needs neither compute nor bandwidth: it runs,
    #   2 x 3e9 / 1e9 = 6 s and 1e-10 x 2 x 3e9 = 0.6 J; user 1 edge-only with no compute share fails.
    scenario = load_scenario("small")
    outcome = evaluate_hand(scenario, z=[2, 0], compute_share=(0.0, 0.0), bandwidth_share=(0.0, 1.0),
                            cache_depth=np.array([[[2], [0]]]))
    assert outcome.success[0].tolist() == [True, False]
    assert outcome.delay_s[0] == pytest.approx([6.0, 30.0])
    assert outcome.energy_j[0] == pytest.approx([0.6, 0.0])
    assert outcome.privacy_cost[0].tolist() == [0.0, 0.0]
    # without the cache, user 0 must download 6000 B over no bandwidth: it fails too
    uncached = evaluate_hand(scenario, z=[2, 0], compute_share=(0.0, 0.0), bandwidth_share=(0.0, 1.0))
    assert uncached.success[0].tolist() == [False, False]


@pytest.mark.parametrize("change, message", [
    ({"z": [[3, 0]]}, r"C3 violated: z\[0, 0\] = 3 is outside 0..2 for service 0 \(toy\)"),
    ({"z": [[1, -1]]}, r"C3 violated: z\[0, 1\] = -1"),
    ({"z": [[1.0, 0.0]]}, "z must hold integers"),
    ({"association": [[0, 1]]}, r"C4 violated: association\[0, 1\] = 1 is not a server in 0..0"),
    ({"compute_share": [[0.5, -0.1]]}, r"compute_share\[0, 1\] = -0.1 must be a finite share >= 0"),
    ({"compute_share": [[0.5, np.nan]]}, r"compute_share\[0, 1\] = nan must be a finite share >= 0"),
    ({"compute_share": [[0.6, 0.5]]}, "C5 violated: the compute_share of server 0's users in environment 0 sum to "
                                      "1.1 > 1"),
    ({"bandwidth_share": [[0.7, 0.7]]}, "C6 violated: the bandwidth_share of server 0's users"),
    ({"deployment": np.ones((1, 1, 1), dtype=np.int64)}, r"deployment must be a bool array \(C1\)"),
    ({"deployment": np.ones((1, 2, 1), dtype=bool)}, r"deployment must have shape \(1, 1, 1\)"),
    ({"z": [[1, 0, 0]]}, r"z must have shape \(1, 2\)"),
])
def test_infeasible_actions_are_refused(change, message):
    table, entities, slot = hand_system()
    actions = {"deployment": np.ones((1, 1, 1), dtype=bool), "association": [[0, 0]], "z": [[1, 0]],
               "compute_share": [[0.5, 0.5]], "bandwidth_share": [[0.5, 0.5]]}
    actions.update(change)
    actions = {name: np.asarray(value) for name, value in actions.items()}
    with pytest.raises(ValueError, match=message):
        core.evaluate(table, load_scenario("small"), entities, slot, **actions)


def test_shares_summing_to_one_within_rounding_are_accepted():
    outcome = evaluate_hand(load_scenario("small"), z=[1, 0], compute_share=(1 / 3, 2 / 3 + 5e-10))
    assert outcome.success[0].all()


# ---------------------------------------------------------------- entities and slots

def test_entities_follow_the_scenario(small):
    scenario, _ = small
    entities = core.sample_entities(scenario, 50, np.random.default_rng(0))
    num_servers, num_users = scenario["system.num_servers"], scenario["system.num_users"]
    assert (entities.num_envs, entities.num_servers, entities.num_users) == (50, num_servers, num_users)
    assert entities.server_xy_m.shape == (50, num_servers, 2) and entities.user_xy_m.shape == (50, num_users, 2)
    grid = radio.grid_positions(num_servers, scenario["system.area_m"])
    assert np.array_equal(entities.server_xy_m, np.broadcast_to(grid, entities.server_xy_m.shape))
    assert entities.user_xy_m.min() >= 0 and entities.user_xy_m.max() <= scenario["system.area_m"]
    ranges = {"server_flops_per_s": (500e9, 2000e9), "server_storage_bytes": (0.11e9, 0.16e9),
              "server_bandwidth_hz": (50e6, 100e6), "server_tx_power_w": (1.0, 10**1.3),
              "cloud_rate_bps": (200e6, 500e6), "user_flops_per_s": (10e9, 100e9), "user_storage_bytes": (1e9, 2e9),
              "user_joules_per_flop": (1e-11, 1e-9), "user_tx_power_w": (0.1, 1.0),
              "user_privacy_preference": (0.2, 0.8)}
    for name, (low, high) in ranges.items():
        values = getattr(entities, name)
        assert values.min() >= low * (1 - 1e-12) and values.max() <= high * (1 + 1e-12), name
        assert values.std() > 0, name
    # power is uniform in dBm: the median user is near 25 dBm = 0.316 W, not the mean of 0.1 W and 1 W
    assert np.median(core.sample_entities(scenario, 400, np.random.default_rng(1)).user_tx_power_w) == \
        pytest.approx(10**-0.5, rel=0.1)
    distance = radio.distances_m(entities.server_xy_m, entities.user_xy_m, 1.0)
    assert entities.path_loss_db == pytest.approx(radio.path_loss_db(distance, 30.0, 3.5))


def test_popularity_is_zipf_over_a_random_order_of_services():
    scenario = load_scenario("paper")
    entities = core.sample_entities(scenario, 20, np.random.default_rng(0))
    by_rank = np.arange(1, 46) ** -0.8
    by_rank /= by_rank.sum()
    assert entities.service_popularity.shape == (20, 45)
    for row in entities.service_popularity:
        assert np.sort(row)[::-1] == pytest.approx(by_rank)
    assert len({int(np.argmax(row)) for row in entities.service_popularity}) > 1


def test_random_server_placement():
    scenario = load_scenario("small", ["system.server_placement=random"])
    entities = core.sample_entities(scenario, 3, np.random.default_rng(0))
    assert not np.array_equal(entities.server_xy_m[0], entities.server_xy_m[1])
    assert entities.server_xy_m.max() <= 300.0


def test_requests_follow_the_popularity():
    popularity = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    requests = core.sample_requests(np.random.default_rng(0), popularity, 100_000)
    for env in range(2):
        frequency = np.bincount(requests[env], minlength=3) / 100_000
        assert frequency == pytest.approx(popularity[env], abs=0.01)


def test_slot_draws(small):
    scenario, table = small
    rng = np.random.default_rng(0)
    entities = core.sample_entities(load_scenario("small", ["system.num_users=400"]), 4, rng)
    slot = core.sample_slot(scenario, entities, rng)
    assert slot.requests.shape == slot.batch.shape == (4, 400)
    assert slot.requests.min() >= 0 and slot.requests.max() < table.num_services
    assert slot.batch.min() == 1 and slot.batch.max() == 16
    assert slot.gains.shape == (4, 3, 400)
    again = core.sample_slot(scenario, entities, rng)
    assert not np.array_equal(slot.gains, again.gains)  # per_slot shadowing
    fixed = [core.sample_slot(scenario, entities, rng, shadowing="per_episode") for _ in range(2)]
    expected = radio.channel_gain(entities.path_loss_db, entities.episode_shadowing_db)
    assert np.array_equal(fixed[0].gains, fixed[1].gains)
    assert fixed[0].gains == pytest.approx(expected)
    episode = load_scenario("small", ["radio.shadowing=per_episode"])
    assert np.array_equal(core.sample_slot(episode, entities, rng).gains, fixed[0].gains)
    with pytest.raises(ValueError, match="per_slot or per_episode"):
        core.sample_slot(scenario, entities, rng, shadowing="sometimes")


# ---------------------------------------------------------------- invariants on random systems

def random_outcome(scenario, table, seed, num_envs=8, z=None):
    rng = np.random.default_rng(seed)
    entities = core.sample_entities(scenario, num_envs, rng)
    slot = core.sample_slot(scenario, entities, rng)
    deployment, association, random_z, compute, bandwidth = random_actions(table, entities, slot, rng)
    z = random_z if z is None else z(slot)
    outcome = core.evaluate(table, scenario, entities, slot, deployment, association, z, compute, bandwidth)
    return entities, slot, (deployment, association, z, compute, bandwidth), outcome


def test_local_only_leaks_nothing_and_uploads_nothing(small):
    scenario, table = small
    _, _, _, outcome = random_outcome(scenario, table, 1, z=lambda slot: table.num_points[slot.requests])
    assert outcome.success.all()
    assert np.all(outcome.privacy_cost == 0) and np.all(outcome.upload_s == 0)
    assert np.all(outcome.transmit_energy_j == 0) and np.all(outcome.edge_s == 0)
    assert np.all(outcome.local_s > 0) and np.all(outcome.compute_energy_j > 0)


def test_edge_only_computes_nothing_locally(small):
    scenario, table = small
    _, slot, _, outcome = random_outcome(scenario, table, 2, z=lambda slot: np.zeros_like(slot.requests))
    assert outcome.success.all()
    assert np.all(outcome.compute_energy_j == 0) and np.all(outcome.local_s == 0)
    assert np.all(outcome.download_bytes == 0) and np.all(outcome.download_s == 0)
    assert np.all(outcome.upload_s > 0) and np.all(outcome.edge_s > 0)
    # edge-only leaks everything: Leak = 1, so the cost is (alpha1 + alpha2 Pre) x D_in x D_raw / 1e6
    assert np.all(outcome.privacy_cost > 0)


def test_random_actions_give_positive_consistent_outcomes(small):
    scenario, table = small
    scenario = scenario.with_value("system.request_deadline_s", 1e12)  # random shares: some requests take minutes
    entities, slot, actions, outcome = random_outcome(scenario, table, 3)
    assert outcome.success.all()
    assert np.all(outcome.delay_s > 0) and np.all(np.isfinite(outcome.delay_s))
    parts = outcome.download_s + outcome.local_s + outcome.upload_s + outcome.edge_s
    assert outcome.delay_s == pytest.approx(parts)
    assert outcome.energy_j == pytest.approx(outcome.compute_energy_j + outcome.transmit_energy_j)
    assert outcome.transmit_energy_j == pytest.approx(entities.user_tx_power_w * outcome.upload_s)
    assert outcome.delay_mean_s == pytest.approx(outcome.delay_s.mean(axis=1))
    assert outcome.energy_mean_j == pytest.approx(outcome.energy_j.mean(axis=1))
    assert outcome.privacy_mean == pytest.approx(outcome.privacy_cost.mean(axis=1))
    assert outcome.cost == pytest.approx(5 * outcome.privacy_cost.mean(axis=1) + 5 * outcome.energy_j.mean(axis=1))


def test_environments_are_independent(small):
    scenario, table = small
    entities, slot, actions, batched = random_outcome(scenario, table, 4, num_envs=5)
    for env in range(5):
        single = core.evaluate(table, scenario, entities.take(env), slot.take(env),
                               *(action[env: env + 1] for action in actions))
        for name in ("delay_s", "energy_j", "privacy_cost", "download_s", "upload_s", "cost", "delay_mean_s"):
            np.testing.assert_allclose(getattr(single, name)[0], getattr(batched, name)[env], rtol=1e-12)


def test_same_seed_same_draws_and_outcomes(small):
    scenario, table = small
    first, second = random_outcome(scenario, table, 11), random_outcome(scenario, table, 11)
    for name in ("server_flops_per_s", "user_xy_m", "service_popularity", "episode_shadowing_db"):
        assert np.array_equal(getattr(first[0], name), getattr(second[0], name))
    assert np.array_equal(first[1].requests, second[1].requests) and np.array_equal(first[1].gains, second[1].gains)
    assert np.array_equal(first[3].delay_s, second[3].delay_s) and np.array_equal(first[3].cost, second[3].cost)
    other = random_outcome(scenario, table, 12)
    assert not np.array_equal(first[3].delay_s, other[3].delay_s)


def test_equal_shares():
    # servers 0, 1, 0, 0 in env 0: three users share server 0 (1/3 each), one has server 1 alone
    shares = core.equal_shares(np.array([[0, 1, 0, 0], [1, 1, 1, 1]]), 2)
    assert shares == pytest.approx(np.array([[1 / 3, 1.0, 1 / 3, 1 / 3], [0.25] * 4]))


# ---------------------------------------------------------------- the prefix cache

def cache_system():
    """Models a (6000 B: prefixes 0, 2000, 6000) and b (9000 B: 0, 2000, 9000), two services each; user 0 can
    hold 10000 B, user 1 a gigabyte."""
    table = service_table_from_profiles(["a", "b"], [toy_profile("a"), toy_profile("b", 9000.0)], 2)
    entities = hand_entities(1, 2, user_storage_bytes=[10_000.0, 1e9], num_services=4)
    return table, entities


def test_cache_is_least_recently_used_by_bytes():
    table, entities = cache_system()
    cache = core.empty_cache(1, 2, 2)

    def step(cache, slot_index, services, z, success=(True, True)):
        return core.update_cache(table, entities, cache, np.array([services]), np.array([z]), np.array([success]),
                                 slot_index)

    cache = step(cache, 0, [1, 1], [2, 2])  # model a to z = 2: 6000 B
    assert cache.depth[0].tolist() == [[2, 0], [2, 0]]
    assert cache.last_used[0].tolist() == [[0, -1], [0, -1]]
    cache = step(cache, 1, [2, 2], [1, 1])  # model b to z = 1: 6000 + 2000 = 8000 B <= 10000, both kept
    assert cache.depth[0].tolist() == [[2, 1], [2, 1]]
    assert core.cached_bytes(table, cache)[0, 0].tolist() == [6000.0, 2000.0]
    cache = step(cache, 2, [3, 3], [2, 2])  # b to z = 2: 6000 + 9000 > 10000, user 0 evicts a (used at slot 0)
    assert cache.depth[0].tolist() == [[0, 2], [2, 2]]
    assert cache.last_used[0].tolist() == [[-1, 2], [0, 2]]
    cache = step(cache, 3, [0, 0], [1, 1], success=(False, False))  # a failed request changes nothing
    cache = step(cache, 4, [0, 0], [0, 0])  # edge-only uses no prefix
    assert cache.depth[0].tolist() == [[0, 2], [2, 2]]
    cache = step(cache, 5, [0, 0], [1, 1])  # a to z = 1: 2000 + 9000 > 10000, user 0 now evicts b
    assert cache.depth[0].tolist() == [[1, 0], [2, 2]]
    assert cache.last_used[0].tolist() == [[5, -1], [5, 2]]  # user 1 keeps a at z = 2 (deeper stays), marks it


def test_a_prefix_larger_than_the_storage_is_not_kept():
    table, entities = cache_system()
    small_storage = hand_entities(1, 2, user_storage_bytes=[5000.0, 5000.0], num_services=4)
    cache = core.update_cache(table, small_storage, core.empty_cache(1, 2, 2), np.array([[0, 0]]),
                              np.array([[2, 1]]), np.array([[True, True]]), 0)
    assert cache.depth[0].tolist() == [[0, 0], [1, 0]]


def test_cache_is_shared_by_the_services_of_one_model():
    # after service 1 (model a) runs at z = 2, service 0 (also a) downloads nothing; service 2 (b) downloads 9000 B
    table, entities = cache_system()
    cache = core.update_cache(table, entities, core.empty_cache(1, 2, 2), np.array([[1, 1]]), np.array([[2, 2]]),
                              np.array([[True, True]]), 0)
    slot = hand_slot(requests=[0, 2], batch=[1, 1], gains=[[1e-9, 1e-9]])
    shares = np.array([[0.5, 0.5]])
    no_deadline = load_scenario("small", ["system.request_deadline_s=1e12"])  # slow: see the bytes
    outcome = core.evaluate(table, no_deadline, entities, slot, np.ones((1, 4, 1), dtype=bool),
                            np.array([[0, 0]]), np.array([[2, 2]]), shares, shares, cache.depth)
    assert outcome.download_bytes[0].tolist() == [0.0, 9000.0]
    with pytest.raises(ValueError, match=r"cache_depth must have shape \(1, 2, 2\) \(per base model\)"):
        core.evaluate(table, load_scenario("small"), entities, slot, np.ones((1, 4, 1), dtype=bool),
                      np.array([[0, 0]]), np.array([[2, 2]]), shares, shares, np.zeros((1, 2, 4), dtype=np.int64))


# ---------------------------------------------------------------- deployment helpers

def test_storage_feasible_catches_overfull_servers():
    table, _ = cache_system()  # services 0, 1: 6000 B; 2, 3: 9000 B
    entities = hand_entities(2, 1, server_storage_bytes=[15_000.0, 14_000.0], num_services=4)
    deployment = np.zeros((1, 4, 2), dtype=bool)
    deployment[0, [0, 2], 0] = True  # 15000 B at server 0: fits exactly
    deployment[0, [1, 3], 1] = True  # 15000 B at server 1: 1000 B too many
    assert core.storage_feasible(table, entities, deployment).tolist() == [[True, False]]


def test_hits_over_an_interval_add_up_the_slots():
    deployment = np.zeros((1, 3, 2), dtype=bool)
    deployment[0, 0, :] = True
    deployment[0, 1, 1] = True
    requests = np.array([[[0, 1, 2], [1, 1, 0]]])  # (E, T, K): two slots
    association = np.array([[[0, 1, 1], [0, 1, 1]]])
    # slot 0: user 0 (service 0 at 0) hit, user 1 (1 at 1) hit, user 2 (2 at 1) miss -> [1, 1]
    # slot 1: user 0 (1 at 0) miss, user 1 (1 at 1) hit, user 2 (0 at 1) hit -> [0, 2]
    assert core.hits(deployment, requests[:, 0], association[:, 0]).tolist() == [[1, 1]]
    assert core.hits(deployment, requests, association).tolist() == [[1, 3]]


def test_migration_cost_uses_each_servers_cloud_rate():
    # server 1 newly deploys services 2 and 3 (9000 B each): 8 x 18000 / 1.44e6 bit/s = 0.1 s; server 0 nothing new
    table, _ = cache_system()
    entities = hand_entities(2, 1, cloud_rate_bps=[1e6, 1.44e6], num_services=4)
    old = np.zeros((1, 4, 2), dtype=bool)
    old[0, 0, 0] = True
    new = old.copy()
    new[0, [2, 3], 1] = True
    assert core.migration_cost(table, entities, new, old) == pytest.approx(np.array([[0.0, 0.1]]))
