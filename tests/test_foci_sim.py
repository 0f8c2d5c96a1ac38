"""Seed 002's system (`foci`): presets, the step's equations against a hand computation, DVFS, the runtime
allocation and overflow, switch costs, competitor-aware records (COA), masks and perception radii, seeding, and
bad input through the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

import edgeprof.optimize.foci  # noqa: F401  (registers the fairness oracle with the simulator)
from edgeprof.data import shipped_profile
from edgeprof.errors import EdgeprofError
from edgeprof.optimize.fairness import greedy_allocation
from edgeprof.sim import foci
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.foci import (
    FociEnv,
    action_of,
    clock_ratio,
    decode,
    device_power_w,
    equal_split,
    fit_power_model,
    operating_point_model,
    runtime_allocator,
)
from edgeprof.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def small():
    scenario = load_scenario("foci-small")
    return scenario, load_workload(scenario)


def test_presets_hold_the_papers_defaults():
    scenario = load_scenario("foci")
    assert (scenario["system.num_devices"], scenario["system.num_edges"], scenario["edges.sms"]) == (240, 11, 24)
    assert scenario["system.area_m2"] == 2.5e6 and scenario["system.latency_limit_s"] == pytest.approx(1 / 24)
    assert scenario["device.battery_wh"] == (3.0, 12.0) and scenario["device.min_clock_ratio"] == 0.65
    assert scenario["model.name"] == "mobilenet_v3_large"
    assert (scenario["qos.energy_weight"], scenario["qos.latency_weight"], scenario["qos.switch_weight"]) == (1, 1, 1)
    assert scenario["system.step_s"] * 240 == 3600
    smaller = load_scenario("foci-small")
    assert (smaller["system.num_devices"], smaller["system.num_edges"], smaller["edges.sms"]) == (24, 3, 24)


def test_actions_encode_edge_and_cut(small):
    scenario, workload = small
    env = FociEnv(scenario, workload, 0)
    assert workload.num_cuts == 32 and env.num_actions == 3 * 32 + 1  # phi = N K + 1
    edges, cuts = np.array([0, 2, 1, 3]), np.array([0, 31, 17, 32])
    actions = action_of(edges, cuts, 3, 32)
    assert actions.tolist() == [0, 95, 49, 96]
    assert [a.tolist() for a in decode(actions, 3, 32)] == [edges.tolist(), cuts.tolist()]


def test_the_papers_size_has_353_actions_and_steps():
    from edgeprof.optimize.foci import Neurosurgeon

    scenario = load_scenario("foci")
    env = FociEnv(scenario, load_workload(scenario), 0)
    assert (env.num_devices, env.num_edges, env.num_actions) == (240, 11, 353)  # phi = N K + 1 (section 4)
    outcome = env.step(Neurosurgeon().act(env))
    assert outcome.latency_s.shape == (240,) and (outcome.served_by >= 0).any()
    for n in range(11):
        served = outcome.served_by == n
        assert outcome.sms[served].sum() == (24 if served.any() else 0)


def test_a_step_matches_the_equations_by_hand(small):
    scenario, workload = small
    env = FociEnv(scenario, workload, 3)
    before = copy.deepcopy(env)
    actions = np.full(env.num_devices, env.num_actions - 1)
    actions[:5] = action_of(np.zeros(5, int), np.array([0, 5, 15, 15, 27]), 3, 32)  # five devices at edge 0
    actions[5] = action_of(1, 10, 3, 32)
    outcome = env.step(actions)
    speed = workload.device_flops_per_s * before.clock_ratio
    power = scenario["device.idle_power_w"] + scenario["device.dynamic_power_w"] * before.clock_ratio ** 3
    p_tx = 10 ** ((scenario["device.tx_power_dbm"] - 30) / 10)
    sms = outcome.sms
    assert sms[:5].sum() == 24 and sms[5] == 24 and sms[6:].sum() == 0
    for m, (n, k) in enumerate([(0, 0), (0, 5), (0, 15), (0, 15), (0, 27), (1, 10)]):
        d_lo = workload.device_flops[k] / speed[m]
        d_tr = 8 * workload.upload_bytes[k] / before.uplink_bps[m, n]
        d_re = 24 / sms[m] * workload.edge_flops[k] / 300e9
        assert outcome.latency_s[m] == pytest.approx(d_lo + d_tr + d_re, rel=1e-12)
        assert outcome.energy_j[m] == pytest.approx(power[m] * d_lo + p_tx * d_tr, rel=1e-12)
        assert outcome.rf[m] == pytest.approx(24 * workload.edge_flops[k] / 300e9, rel=1e-12)
        assert outcome.rc[m] + outcome.rf[m] / sms[m] == pytest.approx(outcome.cost[m], rel=1e-12)
    local = workload.device_flops[-1] / speed[6:]
    assert outcome.latency_s[6:] == pytest.approx(local, rel=1e-12)
    assert outcome.energy_j[6:] == pytest.approx(power[6:] * local, rel=1e-12)
    assert np.all(outcome.cost == outcome.energy_j + outcome.latency_s)  # no switch at the first step
    assert np.array_equal(outcome.violation, outcome.latency_s > 1 / 24)


def test_dvfs_floor_controller_and_undilated_latency(small):
    scenario, workload = small
    batteries = np.linspace(0.0, 20.0, 81)
    ratios = clock_ratio(batteries, 0.65, 3.0, 12.0)
    assert ratios.min() == 0.65 and ratios.max() == 1.0 and np.all(np.diff(ratios) >= 0)
    assert clock_ratio(7.5, 0.65, 3.0, 12.0) == pytest.approx(0.825)
    env = FociEnv(scenario.with_value("device.battery_wh", [12.0, 12.0]), workload, 0)
    assert np.all(env.clock_ratio == 1.0)
    undilated = workload.device_flops / workload.device_flops_per_s
    assert env.local_latency_s[0] == pytest.approx(undilated, rel=1e-12)
    assert env.local_latency_s[0, -1] == pytest.approx(433179520 / 16.87e9)
    floored = FociEnv(scenario.with_value("device.battery_wh", [0.0, 1.0]), workload, 0)
    assert floored.local_latency_s[0] == pytest.approx(undilated / 0.65, rel=1e-12)
    assert floored.local_latency_s[0, -1] * 1e3 == pytest.approx(39.51, abs=0.01)  # ALP's max in Table 1
    assert device_power_w(1.0, 1.0, 1.78) * undilated[-1] * 1e3 == pytest.approx(71.44, abs=0.1)


def test_batteries_drain_by_the_energy_of_every_inference(small):
    scenario, workload = small
    env = FociEnv(scenario, workload, 1)
    battery = env.battery_wh.copy()
    outcome = env.step(np.full(env.num_devices, env.num_actions - 1))
    assert env.battery_wh == pytest.approx(battery - outcome.energy_j * 24 * 15 / 3600, rel=1e-12)


def test_power_model_fits_operating_points():
    idle, dynamic = fit_power_model(np.array([0.5, 0.75, 1.0]), 0.8 + 2.0 * np.array([0.5, 0.75, 1.0]) ** 3)
    assert (idle, dynamic) == (pytest.approx(0.8), pytest.approx(2.0))
    profile = copy.deepcopy(shipped_profile("mobilenet_v3_large"))
    flops = np.array([p["device_flops"] for p in profile["partition_points"]], dtype=float)
    points = []
    for clock in (1.3e9, 1.0e9, 0.8e9):
        ratio = clock / 1.3e9
        latency_s = flops / (20e9 * ratio)
        points.append({"clock_hz": clock, "device_latency_ms": (latency_s * 1e3).tolist(),
                       "device_energy_mj": (latency_s * (0.5 + 3.0 * ratio ** 3) * 1e3).tolist()})
    profile["device"] = {"kind": "jetson", "name": "TX2", "operating_points": points}
    speed, idle, dynamic = operating_point_model(profile, "mobilenet_v3_large")
    assert (speed, idle, dynamic) == (pytest.approx(20e9), pytest.approx(0.5), pytest.approx(3.0))
    with pytest.raises(EdgeprofError, match="operating_points"):
        operating_point_model(shipped_profile("mobilenet_v3_large"), "mobilenet_v3_large")


def test_a_scenario_can_take_its_power_model_from_a_profile(tmp_path):
    profile = copy.deepcopy(shipped_profile("mobilenet_v3_large"))
    flops = np.array([p["device_flops"] for p in profile["partition_points"]], dtype=float)
    profile["device"] = {"kind": "jetson", "name": "TX2", "operating_points": [
        {"clock_hz": clock, "device_latency_ms": (flops / (10e9 * clock / 2e9) * 1e3).tolist(),
         "device_energy_mj": (flops / (10e9 * clock / 2e9) * (1 + (clock / 2e9) ** 3) * 1e3).tolist()}
        for clock in (2e9, 1e9)]}
    path = tmp_path / "mnv3.json"
    path.write_text(json.dumps(profile))
    scenario = load_scenario("foci-small", ["device.power_model=profile", f"model.profile='{path}'"])
    workload = load_workload(scenario)
    assert workload.device_flops_per_s == pytest.approx(10e9)
    assert (workload.idle_power_w, workload.dynamic_power_w) == (pytest.approx(1.0), pytest.approx(1.0))


def test_equal_split_and_overflow(small):
    scenario, workload = small
    sms = equal_split(np.zeros(5), np.array([1.0, 3.0, 2.0, 3.0, 0.5]), 24)
    assert sms.tolist() == [5, 5, 5, 5, 4] and sms.sum() == 24
    crowded = scenario.with_value("edges.sms", 4)
    env = FociEnv(crowded, workload, 2)
    rates, local_s = env.uplink_bps[:, 0].copy(), env.local_latency_s[:, -1].copy()
    outcome = env.step(np.zeros(env.num_devices, dtype=np.int64))  # everyone at edge 0, cut 0
    served = np.flatnonzero(outcome.served_by == 0)
    assert len(served) == 4 and outcome.overflow.sum() == env.num_devices - 4
    assert set(served) == set(np.argsort(-rates)[:4])  # the strongest uplinks
    assert np.all(outcome.sms[served] == 1) and np.all(outcome.sms[outcome.overflow] == 0)
    bumped = outcome.overflow
    assert np.all(outcome.rf[bumped] == 0) and np.all(outcome.latency_s[bumped] == local_s[bumped])


def test_switch_costs_count_changes_of_edge_local_included(small):
    scenario, workload = small
    env = FociEnv(scenario, workload, 4)
    local = env.num_actions - 1
    first = env.step(np.full(env.num_devices, local))
    assert not first.switched.any()
    plan = np.full(env.num_devices, local)
    plan[0], plan[1], plan[2] = action_of(0, 3, 3, 32), action_of(1, 3, 3, 32), local
    second = env.step(plan)
    assert second.switched[:3].tolist() == [True, True, False]
    plan[0] = action_of(0, 20, 3, 32)  # another cut at the same edge is no switch
    plan[1] = local
    third = env.step(plan)
    assert third.switched[:3].tolist() == [False, True, False]
    assert third.cost[1] == pytest.approx(third.energy_j[1] + third.latency_s[1] + 1.0)


def test_competitor_records_count_last_steps_cuts_within_the_perception_radius(small):
    scenario, workload = small
    env = FociEnv(scenario, workload, 5)
    assert not env.competitor_records().any()  # no step yet
    rng = np.random.default_rng(0)
    for _ in range(6):
        before = env.competitor_records()
        outcome = env.step(np.where(env.mask.any(axis=1), [rng.choice(np.flatnonzero(row)) for row in env.mask], 0))
        records = env.competitor_records()
        near = env.distances_m <= env.perception_radius_m[:, None]
        assert not records[~near].any()  # zero outside r_p
        for n in range(env.num_edges):
            assert env.records[n].sum() == (outcome.served_by == n).sum()  # bins sum to connected counts
            cuts = outcome.cut[outcome.served_by == n]
            assert env.records[n].tolist() == np.bincount(cuts, minlength=32)[:32].tolist()
            assert np.all(records[near[:, n], n] == env.records[n])
    assert not np.array_equal(before, records)  # devices moved and chose again


def test_masks_and_perception_radii_agree(small):
    scenario, workload = small
    env = FociEnv(scenario, workload, 6)
    assert env.mask[:, -1].all()
    assert np.all(env.whole_edge_latency_s[env.mask[:, :-1].nonzero()[0], env.mask[:, :-1].nonzero()[1]] <= 1 / 24)
    assert np.all(env.whole_edge_latency_s[:, :-1][~env.mask[:, :-1]] > 1 / 24)
    reachable = env.mask[:, :-1].reshape(env.num_devices, 3, 32).any(axis=-1)
    assert np.all(env.distances_m[reachable] <= env.perception_radius_m[np.nonzero(reachable)[0]] * (1 + 1e-9))
    beyond = env.distances_m > env.perception_radius_m[:, None] * (1 + 1e-9)
    assert not reachable[beyond].any()


def test_same_seed_same_episode_and_seeds_differ(small):
    from edgeprof.optimize.solve import run_solver

    scenario, workload = small
    first = run_solver("nsg", scenario, workload, 20, [0, 1])
    again = run_solver("nsg", scenario, workload, 20, [0, 1])
    assert first == again and first[0] != first[1]
    assert first[0]["max_latency_ms"] >= first[0]["latency_ms"]
    assert first[0]["worst_device_latency_ms"] <= first[0]["max_latency_ms"]


def test_alp_is_all_local_within_the_limit_and_nsg_offloads(small):
    from edgeprof.optimize.solve import run_solver

    scenario, workload = small
    alp, nsg = (run_solver(name, scenario, workload, 30, [0])[0] for name in ("alp", "nsg"))
    assert alp["offload_rate"] == 0 and alp["violation_rate"] == 0 and alp["switches_per_hour"] == 0
    assert alp["max_latency_ms"] <= 39.52
    assert nsg["offload_rate"] > 0.5 and nsg["energy_mj"] < alp["energy_mj"]


def test_random_draws_uniformly_among_the_allowed_actions_from_its_seed(small):
    from edgeprof.optimize.foci import RandomActions

    scenario, workload = small
    env = FociEnv(scenario, workload, 2)
    policy = RandomActions(4)
    draws = np.stack([policy.act(env) for _ in range(2000)])  # (draws, M) on one state
    assert np.array_equal(draws[0], RandomActions(4).act(env)) and not np.array_equal(draws[0], draws[1])
    assert env.mask[np.arange(env.num_devices), draws].all()
    allowed = env.mask.sum(axis=1)
    assert allowed.min() > 1  # every device has an offload choice besides local at this state
    local_share = (draws == env.num_actions - 1).mean(axis=0)
    assert np.all(np.abs(local_share - 1 / allowed) <= 4 * np.sqrt(1 / allowed / 2000))  # 4 binomial sigmas
    for m in range(env.num_devices):
        assert set(np.unique(draws[:, m])) == set(np.flatnonzero(env.mask[m]))


def test_the_oracle_can_allocate_at_run_time(small):
    scenario, workload = small
    oracle = scenario.with_value("edges.runtime_allocator", "oracle").with_value("edges.oracle_method", "greedy")
    env = FociEnv(oracle, workload, 7)
    outcome = env.step(np.zeros(env.num_devices, dtype=np.int64) + action_of(0, 15, 3, 32))
    served = outcome.served_by == 0
    assert outcome.sms[served].tolist() == greedy_allocation(outcome.rc[served], outcome.rf[served], 24).tolist()


def test_runtime_oracle_must_be_registered(small, monkeypatch):
    scenario, _ = small
    monkeypatch.setattr(foci, "_ORACLES", {})
    with pytest.raises(EdgeprofError, match="import edgeprof.optimize.fairness"):
        runtime_allocator(scenario.with_value("edges.runtime_allocator", "oracle"))


def test_literal_switch_term_moves_the_switch_into_rf(small):
    scenario, workload = small
    literal = scenario.with_value("edges.oracle_switch_term", "literal")
    env = FociEnv(literal, workload, 8)
    env.step(np.full(env.num_devices, env.num_actions - 1))
    outcome = env.step(np.full(env.num_devices, action_of(0, 15, 3, 32)))
    served = outcome.served_by == 0
    assert outcome.switched[served].all()
    assert outcome.rf[served] == pytest.approx(24 * workload.edge_flops[15] / 300e9 + 1.0)


@pytest.mark.parametrize(("override", "message"), [
    ("system.num_devices=0", "system.num_devices: must be >= 1"),
    ("edges.sms=0", "edges.sms: must be >= 1"),
    ("device.min_clock_ratio=0", "device.min_clock_ratio: must be > 0, <= 1, got 0"),
    ("device.min_clock_ratio=1.5", "device.min_clock_ratio: must be > 0, <= 1, got 1.5"),
    ("model.name=resnet999", "no shipped profile for 'resnet999'"),
    ("device.floor_clock_battery_wh=20", "device.floor_clock_battery_wh must lie below"),
    ("mobility.source=trace", "mobility.source = trace needs mobility.trace"),
])
def test_bad_input_exits_2_with_one_line(run_cli, override, message, tmp_path):
    result = run_cli("solve", "--scenario", "foci-small", "--solver", "nsg", "--slots", "2", "--set", override,
                     "-o", tmp_path / "rows.csv")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert message in result.err, result.err
    assert not (tmp_path / "rows.csv").exists()


def test_solve_through_the_cli(run_cli, tmp_path):
    result = run_cli("solve", "--scenario", "foci-small", "--solver", "alp", "--slots", "4", "--seeds", "0,1",
                     "-o", tmp_path / "alp.csv")
    assert result.code == 0, result.err
    assert "max_latency_ms" in result.out and "switches_per_hour" in result.out
    header = (tmp_path / "alp.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["solver", "seed", "slots", "latency_ms"]
    shown = run_cli("scenario", "show", "foci-small")
    assert shown.code == 0 and "num_devices = 24" in shown.out and "runtime_allocator" in shown.out
    assert "foci: alp, nsg, random" in " ".join(run_cli("solve", "--help").out.split())


def test_the_foci_preset_file_is_the_documented_toml_of_its_fields():
    from edgeprof.sim.scenario import presets_dir, to_toml

    text = (presets_dir() / "foci.toml").read_text(encoding="utf-8")
    assert text[text.index("\n\n") + 2:] == to_toml(load_scenario("foci"))
