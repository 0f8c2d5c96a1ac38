"""Seed 004's crowd-edge system: the equations on hand cases, the graph, one slot by hand, queues that never go
negative, drift-plus-penalty stable at 0.8x capacity and growing at 1.2x, the solvers through `edgeprof solve`,
and bad input refused in one line."""

from __future__ import annotations

import math
import random
import tomllib

import numpy as np
import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.crowd_edge import (
    DriftPlusPenalty,
    RandomOffloading,
    dpp_actions,
    dpp_scores,
)
from edgeprof.sim import crowd_edge as ce
from edgeprof.sim.scenario import load_scenario, presets_dir, to_toml

SMALL = "crowd-edge-small"


def _one_cell(*overrides: str):
    """Two BSs (edges of 10 GHz, wired) and one cluster of two MDs of 1 GHz, always available, 10 Mbit/s links;
    also the index of the MDs' own edge server."""
    scenario = load_scenario(SMALL, ["network.num_base_stations=2", "network.num_clusters=1",
                                     "network.mds_per_cluster=[2, 2]", "network.wired_links=[\"0-1\"]",
                                     "nodes.edge_ghz=10.0", "nodes.md_ghz=[1.0, 1.0]",
                                     "nodes.md_off_probability=0.0", *overrides])
    env = ce.CrowdEdge(scenario, ce.load_workload(scenario), num_envs=1, seed=0)
    return env, int(env.layout.md_cell[0])


def _set_tasks(env: ce.CrowdEdge, tasks: dict[int, list[tuple[float, float]]]) -> None:
    """Replace the slot's tasks: agent -> [(work in gigacycles, data in MB), ...]."""
    width = max(len(items) for items in tasks.values())
    work = np.zeros((1, env.num_agents, width))
    data, valid = np.zeros_like(work), np.zeros_like(work, dtype=bool)
    for agent, items in tasks.items():
        for k, (w, o) in enumerate(items):
            work[0, agent, k], data[0, agent, k], valid[0, agent, k] = w, o, True
    env.tasks = ce.Tasks(work, data, valid)


def test_equations_on_hand_cases():
    # eq. 2 with [.]^+: backlog 2 MB, 3 MB offered, 4 MB/s for 1 s -> 1 MB; never below 0; half a slot
    assert ce.link_queue_update(2.0, 3.0, 4.0, 1.0) == 1.0
    assert ce.link_queue_update(1.0, 1.0, 4.0, 1.0) == 0.0
    assert ce.link_queue_update(0.0, 10.0, 4.0, 0.5) == 8.0
    # eq. 4 with [.]^+: 5 gigacycles queued, 24 arrive, 20 GHz for 1 s -> 9; an idle node stays at 0
    assert ce.compute_backlog_update(5.0, 24.0, 20.0, 1.0) == 9.0
    assert ce.compute_backlog_update(1.0, 0.0, 2.0, 1.0) == 0.0
    assert ce.compute_backlog_update(7.0, 3.0, 0.0, 1.0) == 10.0  # an unavailable MD serves nothing
    # eq. 5: (Q + s) / F
    assert ce.processing_delay_s(10.0, 6.0, 4.0) == 4.0
    assert ce.processing_delay_s(0.0, 0.0, 0.0) == 0.0 and math.isinf(ce.processing_delay_s(1.0, 0.0, 0.0))
    # eq. 6: P + o / x-bar
    assert ce.execution_delay_s(4.0, 6.0, 1.25) == pytest.approx(8.8)
    assert ce.execution_delay_s(4.0, 0.0, 0.0) == 4.0 and math.isinf(ce.execution_delay_s(4.0, 1.0, 0.0))
    # eq. 7 and eq. 14
    assert ce.offloading_cost(3.0, 2.0, 4.0, alpha=1.0, beta=0.5) == 7.0
    assert ce.path_delay_s([2.5, 3.0], [1.25, 3.75]) == pytest.approx(2.8)


def test_processor_sharing_of_a_link():
    """Tasks of 1, 2 and 3 MB start together on a 1 MB/s link: equal rates until the smaller ones are done, so
    they finish after 3, 5 and 6 s; a task alone on another link is not slowed."""
    finish = ce.shared_transfer_s(np.array([3.0, 1.0, 2.0, 2.0]), np.array([0, 0, 0, 1]),
                                  np.array([1.0, 1.0, 1.0, 4.0]))
    assert finish.tolist() == [6.0, 3.0, 5.0, 0.5]


def test_the_paper_layout():
    scenario = load_scenario("crowd-edge")
    layout = ce.load_workload(scenario).layout
    assert layout.num_base_stations == 3 and layout.num_mds == 45
    assert [int((layout.md_cell == bs).sum()) for bs in range(3)] == [27, 6, 12]
    assert (layout.link_capacity_mb_s[layout.link_kind == ce.WIRELESS] == 10 / 8).all()
    assert (layout.link_capacity_mb_s[layout.link_kind == ce.WIRED] == 30 / 8).all()
    md = int(np.flatnonzero(layout.md_cell == 1)[0])  # an MD of the middle cell
    assert layout.candidates[md, :3].tolist() == [0, 1, 2]  # every edge server
    assert layout.paths[md, 1].tolist() == [md, -1]  # its own BS's server: the wireless link only
    assert layout.paths[md, 0, 0] == md and layout.link_kind[layout.paths[md, 0, 1]] == ce.WIRED
    cell = layout.candidates[md, 3:]
    assert sorted(cell[cell >= 0] - 3) == np.flatnonzero(layout.md_cell == 1).tolist()  # MDs of its cell only
    load = ce.offered_load(scenario, ce.load_workload(scenario))
    assert load["demand_ghz"] == pytest.approx(45 * (1 / 12.5) * 24)
    assert load["load"] == pytest.approx(0.5063, abs=1e-4)


def test_a_slot_by_hand():
    env, own = _one_cell()
    other = 1 - own
    layout = env.layout
    assert layout.num_mds == 2 and layout.candidates[0].tolist() == [0, 1, 2, 3]  # two edges, then both MDs
    assert layout.paths[0, own].tolist() == [0, -1] and layout.paths[0, other].tolist() == [0, 2]
    assert layout.paths[1, 2].tolist() == [1, 0]  # MD 1 to MD 0: both wireless links
    _set_tasks(env, {0: [(4.0, 2.5), (6.0, 0.0)], 1: [(2.0, 1.0)]})
    placement, rewards = env.step(np.array([[[own, own], [2, 0]]]))  # MD 0's tasks to its edge, MD 1's to MD 0
    delays = dict(zip(zip(placement.agent.tolist(), placement.slot.tolist(), strict=True),
                      placement.delay_s.tolist(), strict=True))
    # MD 0's link carries 2.5 MB and MD 1's 1 MB: the 1 MB is done after 2 x 1 / 1.25 = 1.6 s, the 2.5 MB after
    # (1 + 2.5) / 1.25 = 2.8 s. At the edge (10 GHz) the two tasks of MD 0 queue in a random order: 0.4 s then
    # 1.0 s, or 0.6 s then 1.0 s. MD 1's task waits for nothing at MD 0 (1 GHz): 2 s of work, then 1.6 s of
    # transfer (its own link alone takes 0.8 s).
    assert (delays[(0, 0)], delays[(0, 1)]) in [pytest.approx((3.2, 1.0)), pytest.approx((3.8, 0.6))]
    assert delays[(1, 0)] == pytest.approx(3.6)
    backlog = np.zeros(4)
    backlog[2] = 1.0  # MD 0: 2 - 1; the edge: 10 - 10
    assert env.backlog_gcycles[0].tolist() == backlog.tolist()
    capacity = 10 / 8
    assert env.link_mb[0].tolist() == pytest.approx([3.5 - capacity, 0.0, 0.0])
    # rewards: -(V (alpha E + beta R s) + D x); no data was queued yet, so D = 0
    expected = [-(delays[(0, 0)] + 0.02 * 4.0 + delays[(0, 1)] + 0.02 * 6.0), -(3.6 + 0.01 * 2.0)]
    assert rewards[0].tolist() == pytest.approx(expected)
    # the next slot: 2.25 MB wait on MD 0's link (eq. 14: 1.8 s) before a new 1 MB transfer to the other edge
    # (0.8 s on the wireless link, 0.27 s on the wire), and the drift term D x = 1.8 s x 1 MB/s
    _set_tasks(env, {0: [(0.0, 1.0)]})
    placement, rewards = env.step(np.array([[[other], [0]]]))
    assert placement.delay_s.tolist() == pytest.approx([1.8 + 0.8])
    assert placement.drift.tolist() == pytest.approx([1.8])
    assert rewards[0].tolist() == pytest.approx([-(2.6 + 1.8), 0.0])


def test_rate_levels_spread_a_transfer():
    env, own = _one_cell("links.rate_levels=2")
    assert env.num_actions == 8
    _set_tasks(env, {0: [(0.0, 2.5)]})
    placement, _ = env.step(np.array([[[2 * own], [0]]]))  # its edge at level 1 of 2: half of 1.25 MB/s
    assert placement.delay_s.tolist() == pytest.approx([4.0])
    assert env.link_mb[0, 0] == 0.0  # 0.625 MB offered in each of 4 slots: under capacity
    _set_tasks(env, {0: [(0.0, 2.5)]})
    env.step(np.array([[[2 * own + 1], [0]]]))  # level 2 of 2: 1.25 MB/s, beside the 0.625 MB/s still flowing
    assert env.link_mb[0, 0] == pytest.approx(0.625)


def test_the_cloud_and_profile_tasks():
    scenario = load_scenario(SMALL, ["cloud.enabled=true", "tasks.workload=\"profiles\"",
                                     "tasks.models=[\"resnet18\"]", "tasks.samples_per_task=[2, 2]"])
    workload = ce.load_workload(scenario)
    layout = workload.layout
    cloud = layout.num_nodes - 1
    assert layout.node_kind[cloud] == ce.CLOUD and (layout.candidates[:, 3] == cloud).all()
    assert (layout.link_kind[layout.paths[:, 3, 1]] == ce.BACKBONE).all()
    from edgeprof.data import shipped_profile

    profile = shipped_profile("resnet18")
    assert workload.mean_work_gcycles == pytest.approx(2 * profile["totals"]["flops"] / 1e9)
    assert workload.mean_data_mb == pytest.approx(2 * profile["model"]["input_bytes"] / 1e6)
    env = ce.CrowdEdge(scenario, workload, num_envs=2, seed=1)
    for _ in range(30):
        env.step(RandomOffloading(0).act(env))
    real = env.tasks.work_gcycles[env.tasks.valid]
    assert np.allclose(real, workload.mean_work_gcycles)


def test_queues_never_go_negative_and_episodes_repeat():
    scenario = load_scenario(SMALL, ["tasks.case=\"III\""])
    workload = ce.load_workload(scenario)
    runs = []
    for _ in range(2):
        env = ce.CrowdEdge(scenario, workload, num_envs=2, seed=7)
        policy = RandomOffloading(3)
        delays = []
        for _ in range(200):
            placement, _ = env.step(policy.act(env))
            assert (env.backlog_gcycles >= 0).all() and (env.link_mb >= 0).all()
            delays.append(placement.delay_s.sum())
        runs.append(delays)
    assert runs[0] == runs[1]
    # the arrivals are the episode's, whatever the policy does
    a, b = ce.CrowdEdge(scenario, workload, 1, seed=7), ce.CrowdEdge(scenario, workload, 1, seed=7)
    for _ in range(50):
        assert (a.tasks.work_gcycles == b.tasks.work_gcycles).all()
        a.step(RandomOffloading(0).act(a))
        b.step(DriftPlusPenalty(0).act(b))


@pytest.mark.parametrize("load", [0.8, 1.2])
def test_drift_plus_penalty_is_stable_below_capacity_and_grows_above(load):
    """Work scaled so the offered load is 0.8 or 1.2 of the expected capacity (edges, available MDs): under DPP
    the compute backlog stays flat at 0.8 and grows at about (1.2 - 1) x capacity at 1.2; links stay bounded."""
    base = load_scenario(SMALL, ["tasks.case=\"II\""])
    nominal = ce.offered_load(base, ce.load_workload(base))["load"]
    scenario = base.with_value("tasks.compute_scale", load / nominal)
    workload = ce.load_workload(scenario)
    offered = ce.offered_load(scenario, workload)
    assert offered["load"] == pytest.approx(load)
    env = ce.CrowdEdge(scenario, workload, num_envs=1, seed=0)
    policy = DriftPlusPenalty(0)
    totals, links = [], []
    for _ in range(2000):
        env.step(policy.act(env))
        totals.append(env.backlog_gcycles.sum())
        links.append(env.link_mb.max())
    growth = ce.queue_growth_rate(np.array(totals), env.slot_s) / offered["capacity_ghz"]
    if load < 1:
        assert abs(growth) < 0.01
        assert np.mean(totals[-500:]) < 3 * np.mean(totals[500:1000])
    else:
        assert 0.15 < growth < 0.25
    assert max(links) < 40  # MB: a few tasks' worth of data


def test_dpp_prefers_the_least_cost_destination():
    env, own = _one_cell()
    _set_tasks(env, {0: [(10.0, 0.0)]})
    env.backlog_gcycles[0, own] = 50.0  # its own edge is busy: 6 s; the other edge, over the wire, is idle: 1 s
    scores = dpp_scores(env, np.array([0]), np.array([0]), np.array([10.0]), np.array([0.0]))[0]
    expected = [1.0 + 0.2, 1.0 + 0.2, 10.0 + 0.1, 10.0 + 0.1]  # alpha E + beta R s, no data (no D x)
    expected[own] = 6.0 + 0.2
    assert scores.tolist() == pytest.approx(expected)
    assert dpp_actions(env, np.random.default_rng(0))[0, 0, 0] == 1 - own
    env.available[0, 1] = False  # MD 1 becomes unavailable: it takes no task
    env._mask = None
    assert math.isinf(dpp_scores(env, np.array([0]), np.array([0]), np.array([1.0]), np.array([0.0]))[0, 3])


def test_the_preset_file_is_the_documented_toml_of_its_fields():
    text = (presets_dir() / "crowd-edge.toml").read_text(encoding="utf-8")
    assert text[text.index("\n\n") + 2:] == to_toml(load_scenario("crowd-edge"))
    assert tomllib.loads(text)["tasks"]["case"] == "I"


def test_solvers_through_the_cli(run_cli, tmp_path):
    rows = tmp_path / "rows.csv"
    result = run_cli("solve", "--scenario", SMALL, "--solver", "dpp", "--slots", "60", "--seeds", "0,1", "-o", rows)
    assert result.code == 0, result.err
    assert "ad_s_per_mb" in result.out and "offered_load" in result.out and "0.5085" in result.out
    header = rows.read_text().splitlines()[0].split(",")
    assert header == ["solver", "seed", "slots", *ce.REPORTED, "tasks"]  # the trials behind edge_share
    result = run_cli("solve", "--scenario", SMALL, "--set", "tasks.case=\"III\"", "--solver", "random", "--slots", "30",
                     "--seeds", "0")
    assert result.code == 0, result.err
    assert "dpp" in run_cli("solve", "--list").out


def _one_line(result, fragment):
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert fragment in result.err, result.err


def test_bad_input_is_refused_in_one_line(run_cli):
    _one_line(run_cli("solve", "--scenario", SMALL, "--set", "tasks.case=\"IV\"", "--solver", "dpp"),
              "tasks.case: expected one of I, II, III, got 'IV'")
    _one_line(run_cli("solve", "--scenario", SMALL, "--set", "network.wired_links=[\"0-1\", \"1-3\"]", "--solver",
                      "dpp"), "link 1-3 names BS 3, but there are 3 (0-2)")
    _one_line(run_cli("solve", "--scenario", SMALL, "--set", "nodes.edge_ghz=-5", "--solver", "dpp"),
              "nodes.edge_ghz: must be > 0, <= 1000000, got -5.0")
    _one_line(run_cli("solve", "--scenario", SMALL, "--set", "network.wireless_mbps=0", "--solver", "dpp"),
              "network.wireless_mbps: must be > 0")
    _one_line(run_cli("solve", "--scenario", SMALL, "--set", "network.num_clusters=1000", "--set",
                      "network.mds_per_cluster=[900, 1000]", "--solver", "dpp"),
              "lower network.num_clusters or network.mds_per_cluster, or add base stations")
    _one_line(run_cli("solve", "--scenario", SMALL, "--set", "tasks.compute_scale=1e30", "--solver", "dpp"),
              "tasks.compute_scale: must be > 0, <= 1000000, got 1e+30")
    with pytest.raises(EdgeprofError, match="joins BS 0 to itself"):
        ce.parse_wired_links(("0-0",), 3)
    with pytest.raises(EdgeprofError, match="joined twice"):
        ce.parse_wired_links(("0-1", "1-0"), 3)


@pytest.mark.slow  # about 20 s: 100 solves
def test_mutated_scenarios_never_crash_or_poison_results(run_cli, tmp_path):
    """The fuzzing of `tests/test_fuzz.py` on this system's fields: every field set to odd TOML values, one or two
    at a time; each solve ends with exit 0 and finite numbers, or exit 2 and one line."""
    from test_fuzz import ODD_TOML, _check_outputs

    fields = load_scenario(SMALL).fields
    keys = [f"{section}.{name}" for section, values in fields.items() for name in values
            if f"{section}.{name}" != "tasks.profiles"]  # paths to profiles: the profile fuzzing's business
    rng = random.Random(11)
    passed = 0
    for case in range(100):
        overrides = [f"{key}={rng.choice(ODD_TOML)}" for key in rng.sample(keys, rng.choice([1, 1, 2]))]
        arguments = [item for override in overrides for item in ("--set", override)]
        rows = tmp_path / f"rows{case}.csv"
        result = run_cli("solve", "--scenario", SMALL, *arguments, "--solver", rng.choice(["dpp", "random"]),
                         "--slots", "3", "--seeds", "0", "-q", "-o", rows)
        _check_outputs(result, [rows])
        passed += result.code == 0
    assert 0 < passed < 100
