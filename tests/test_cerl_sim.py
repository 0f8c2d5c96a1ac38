"""Seed 003's system (`sim.cerl`): eq. 1-6 by hand, eq. 7-10 kept by the masks every slot (a property test), the
state graph's shapes, workloads from profiles (block sums, the paper's table), the cost bound, the benchmark
schemes and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeprof.data import shipped_profile
from edgeprof.errors import EdgeprofError
from edgeprof.optimize.solve import run_solver, solvers_for
from edgeprof.profiler.schema import load_profile
from edgeprof.sim import cerl
from edgeprof.sim.cerl import Action, ChainEnv, cost_bound_per_task, failure_penalty
from edgeprof.sim.evaluation import load_workload, summarise
from edgeprof.sim.scenario import load_scenario, presets_dir, to_toml
from edgeprof.sim.systems import get_system
from edgeprof.stats import mean_interval

NOISE_W = 10 ** ((-113 - 30) / 10)  # -113 dBm


def _scenario(*overrides: str):
    return load_scenario("cerl-small", list(overrides))


def random_action(env: ChainEnv, rng: np.random.Generator) -> Action:
    """A uniformly drawn action within the masks."""
    masks = env.masks()
    node = int(rng.choice(np.flatnonzero(masks.node)))
    end = int(rng.choice(np.flatnonzero(masks.end))) + 1
    share = int(rng.integers(1, masks.share_limit[node] + 1))
    free = np.flatnonzero(masks.subcarriers)
    subcarrier = int(rng.choice(free)) if node != masks.location else -1
    return Action(node, end, share, subcarrier)


def test_equations_1_to_6_by_hand():
    # eq. 1, 4, 6: a 1e9-cycle block at 0.5 GHz
    assert cerl.compute_delay_s(1e9, 0.5e9) == 2.0
    assert cerl.compute_energy_j(1e9, 0.5e9, 1e-26) == pytest.approx(2.5)
    assert cerl.weighted_cost(2.5, 2.0, 0.8, 0.2) == pytest.approx(2.4)
    # eq. 2, 3, 5: 100 m at d^-4, 1 W, -113 dBm, 20 MHz / 10: SNR 1.995e6, 20.928 bit/s/Hz
    gain = float(cerl.channel_gains(np.array(100.0), 4.0, 1.0))
    assert gain == pytest.approx(1e-8)
    rate = cerl.link_rate_bps(20e6, 10, gain, 1.0, NOISE_W)
    assert rate == pytest.approx(41.8563e6, rel=1e-5)
    assert cerl.transfer_delay_s(16384, rate) == pytest.approx(3.1315e-3, rel=1e-4)
    assert cerl.transfer_energy_j(1.0, 3.1315e-3) == pytest.approx(3.1315e-3)
    assert float(cerl.channel_gains(np.array(0.2), 4.0, 1.0)) == 1.0  # clamped at 1 m


def test_a_hop_through_the_environment_by_hand():
    # One device at the MEC's spot (1 m clamp: g = 1), both at fixed capacities, the paper's table.
    scenario = _scenario("system.num_devices=1", "system.area_m=0.001", "system.device_capacity_ghz=[0.5, 0.5]",
                         "system.arrivals_per_slot=5", "task.workload=\"paper-table\"")
    env = ChainEnv(scenario, load_workload(scenario), slots=1, seed=0)
    task = env.focus
    assert task.source == 1 and task.location == 1 and task.next_layer == 1
    # layers 1-3 on the MEC at 10% (1 GHz): C = 10 x (835,584 + 4,456,448 + 17,825,792) cycles
    cycles = 10 * (835_584 + 4_456_448 + 17_825_792)
    rate = 2e6 * math.log2(1 + 1.0 / NOISE_W)  # 95.007 Mbit/s
    transfer = 8 * 98_304 / rate  # the raw 3x64x64 input in 8-byte values
    hop = env.hop(task, Action(0, 3, 10, 0))
    assert hop.compute_s == pytest.approx(cycles / 1e9)
    assert hop.compute_j == pytest.approx(1e-26 * cycles * 1e18)
    assert hop.transfer_s == pytest.approx(transfer) and hop.transfer_j == pytest.approx(transfer)
    assert hop.cost == pytest.approx(0.8 * (hop.compute_j + transfer) + 0.2 * (hop.compute_s + transfer))
    result = env.step(Action(0, 3, 10, 0))
    assert result.reward == pytest.approx(-hop.cost) and not result.completed
    assert env.totals.cost == pytest.approx(hop.cost)
    assert task.location == 0 and task.next_layer == 4
    assert list(task.layer_nodes[:3]) == [0, 0, 0] and list(task.layer_nodes[3:]) == [-1] * 5


def test_a_task_over_its_deadline_fails_with_the_penalty():
    scenario = _scenario("system.num_devices=1", "system.device_capacity_ghz=[0.5, 0.5]",
                         "system.arrivals_per_slot=5")
    env = ChainEnv(scenario, load_workload(scenario), slots=1, seed=1)
    result = env.step(Action(1, 8, 1, -1))  # the whole model at 1% of 0.5 GHz: 150 s
    assert result.failed == 1 and result.reward < -failure_penalty(env.workload, scenario)
    assert env.totals.failed_deadline == 1


@settings(max_examples=25, deadline=None)
@given(devices=st.integers(1, 6), subcarriers=st.integers(1, 3), rate=st.floats(0.3, 3.0),
       link=st.floats(30.0, 300.0), seed=st.integers(0, 2 ** 31), policy_seed=st.integers(0, 2 ** 31))
def test_masked_actions_keep_equations_7_to_10_every_slot(devices, subcarriers, rate, link, seed, policy_seed):
    scenario = _scenario(f"system.num_devices={devices}", f"radio.subcarriers={subcarriers}",
                         f"system.arrivals_per_slot={rate}", f"system.link_range_m={link}")
    env = ChainEnv(scenario, load_workload(scenario), slots=4, seed=seed)
    rng = np.random.default_rng(policy_seed)
    used_share: dict[tuple[int, int], int] = {}
    used_subcarrier: dict[tuple[int, int], int] = {}
    blocks: dict[int, list[tuple[int, int]]] = {}
    tasks = {}
    while not env.done:
        task, slot = env.focus, env.slot
        action = random_action(env, rng)
        if action.node != task.location:
            assert env.links[task.location, action.node]  # a move follows a link
            used_subcarrier[slot, action.subcarrier] = used_subcarrier.get((slot, action.subcarrier), 0) + 1
        used_share[slot, action.node] = used_share.get((slot, action.node), 0) + action.share
        blocks.setdefault(task.task_id, []).append((task.next_layer, action.end))
        tasks[task.task_id] = task
        env.step(action)
    assert all(count == 1 for count in used_subcarrier.values())  # eq. 7
    assert all(total <= 100 for total in used_share.values())  # eq. 8
    totals = env.totals
    assert totals.completed + totals.failed_deadline + totals.failed_blocked == totals.tasks
    completed = 0
    for task_id, hops in blocks.items():
        starts, ends = [start for start, _ in hops], [end for _, end in hops]
        assert starts == [1, *(end + 1 for end in ends[:-1])]  # eq. 9: consecutive blocks from layer 1
        if ends[-1] == env.num_layers and tasks[task_id].elapsed_s <= env.deadline_s:
            completed += 1  # eq. 10: every layer within T
    assert completed == totals.completed


def test_an_action_outside_the_masks_is_refused():
    scenario = _scenario("system.arrivals_per_slot=5")
    env = ChainEnv(scenario, load_workload(scenario), slots=1, seed=0)
    location = env.focus.location
    with pytest.raises(ValueError, match="share 101%"):
        env.step(Action(location, 8, 101))
    with pytest.raises(ValueError, match="block end 0"):
        env.step(Action(location, 0, 10))
    unreachable = np.flatnonzero(~env.links[location] & (np.arange(env.num_nodes) != location))
    if len(unreachable):
        with pytest.raises(ValueError, match="not allowed now"):
            env.step(Action(int(unreachable[0]), 8, 10, 0))


def test_the_state_graph_has_the_documented_shapes():
    scenario = _scenario("system.arrivals_per_slot=2")
    env = ChainEnv(scenario, load_workload(scenario), slots=3, seed=4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(random_action(env, rng))
    graph = env.graph()
    nodes, layers = env.num_nodes, env.num_layers
    tasks = sum(task.next_layer > 0 for task in env.active)
    assert graph.compute.shape == (nodes, len(cerl.COMPUTE_FEATURES)) == (6, 9)
    assert graph.layers.shape == (tasks, layers, len(cerl.LAYER_FEATURES)) == (tasks, 8, 7)
    assert graph.features().shape == (nodes + tasks * layers, 16)
    a = graph.adjacency()
    assert a.shape == (nodes + tasks * layers,) * 2 and (a == a.T).all() and not a.diagonal().any()
    assert (a[:nodes, :nodes] == env.links).all()  # E_a: the links
    layer_block = a[nodes:, :nodes]
    assert (layer_block.sum(1) == 1).all()  # E_ab: each layer node hangs on one compute node
    chain = a[nodes:, nodes:]
    assert chain.sum() == 2 * tasks * (layers - 1)  # E_b: each task's chain
    assert graph.layers[0, :, 4].all() and not graph.layers[1:, :, 4].any()  # the focus is task 0
    assert graph.layers[0, env.focus.next_layer - 1, 3] == 1
    assert len(env.graph(max_tasks=1).layers) == 1
    assert graph.pairs.shape == (nodes, layers, len(cerl.PAIR_FEATURES)) == (6, 8, 2)
    task = env.focus
    done = task.next_layer - 1
    assert not graph.pairs[:, :done].any()  # done layers have no block
    block = env.workload.block_cycles(task.next_layer, layers)
    assert graph.pairs[:, -1, 0] == pytest.approx(np.minimum(block / (env.capacity_hz * env.time_left_s(task)), 100),
                                                  rel=1e-5)


@pytest.mark.parametrize("workload", ["profile", "paper-table"])
def test_block_sums_equal_the_profile_totals(workload):
    scenario = _scenario(f"task.workload=\"{workload}\"")
    chain = load_workload(scenario)
    profile = (shipped_profile("cerl-net") if workload == "profile"
               else load_profile(str(cerl.paper_table_path())))
    total = 10 * profile["totals"]["flops"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        cuts = sorted(rng.choice(np.arange(1, 8), size=rng.integers(0, 7), replace=False).tolist())
        ends = [*cuts, 8]
        starts = [1, *(c + 1 for c in cuts)]
        assert sum(chain.block_cycles(i, j) for i, j in zip(starts, ends, strict=True)) == pytest.approx(total)
    assert chain.input_bytes_of[0] == profile["model"]["input_bytes"]
    assert list(chain.input_bytes_of[1:]) == [p["upload_bytes"] for p in profile["partition_points"][1:-1]]


def test_the_paper_table_is_section_5_1():
    """The shipped table against the paper's own formulas (sec. 5.1): C per layer (before xi) and 8-byte
    outputs of the feature sizes {F_q^L}."""
    profile = load_profile(str(cerl.paper_table_path()))
    assert profile["model"]["source"] == "paper" and profile["model"]["dtype"] == "float64"
    paper_ops = [3 * 64 * 64 * 4 * 17, 4 * 32 * 32 * 64 * 17, 64 * 16 * 16 * 64 * 17, 45.4164e6,
                 64 * 8 * 8 * 64 * 17, 64 * 4 * 4 * 64 * 17, 64 * 2 * 2 * 64 * 17, (64 + 63) * 9]
    stored = [layer["flops"] for layer in profile["layers"]]
    assert stored[:-1] == paper_ops[:-1] and stored[-1] == paper_ops[-1] + 1  # 1143 is odd: flops = 2 x macs
    sizes = [3 * 64 * 64, 4 * 32 * 32, 64 * 16 * 16, 64 * 8 * 8, 64 * 8 * 8, 64 * 4 * 4, 64 * 2 * 2, 64, 9]
    assert profile["model"]["input_bytes"] == 8 * sizes[0]
    assert [layer["output_bytes"] for layer in profile["layers"]] == [8 * s for s in sizes[1:]]
    ours = shipped_profile("cerl-net")["totals"]["flops"]
    assert abs(profile["totals"]["flops"] / ours - 1) < 0.006  # totals within 0.6% (research note)


def test_the_cost_bound_is_the_papers_and_no_scheme_beats_it():
    scenario = _scenario("task.workload=\"paper-table\"")
    workload = load_workload(scenario)
    best, needed = cerl.task_cost_rate_bounds(workload, scenario)
    assert best == pytest.approx(0.2321e9, rel=1e-3) and needed == pytest.approx(0.2479e9, rel=1e-3)
    bound = cost_bound_per_task(workload, scenario)
    assert bound == pytest.approx(0.9658, abs=1e-4)
    assert failure_penalty(workload, scenario) == pytest.approx(10 * (0.8 * 743.84456 + 0.2 * 0.0743844560))
    for name in solvers_for("cerl"):
        rows = run_solver(name, scenario, workload, slots=8, seeds=[0, 1, 2])
        assert all(row["cost_per_task"] >= bound for row in rows), name


def test_the_benchmark_schemes_behave_as_described():
    scenario = _scenario()
    workload = load_workload(scenario)
    rows = {name: run_solver(name, scenario, workload, slots=10, seeds=[0, 1, 2]) for name in solvers_for("cerl")}
    assert list(rows) == ["lc", "ec", "random", "lc-deadline", "ec-deadline"]
    assert all(row["collaborations"] == 0 for name in rows for row in rows[name])  # whole tasks, one node
    mean = {name: np.mean([row["completion_rate"] for row in r]) for name, r in rows.items()}
    assert mean["ec"] > mean["lc"]  # the MEC finishes what slow devices cannot
    cost = {name: np.mean([row["cost_per_task"] for row in r]) for name, r in rows.items()}
    assert cost["ec"] > cost["lc"] > cost["lc-deadline"]  # eq. 4 charges the MEC's large equal shares
    bound = cost_bound_per_task(workload, scenario)
    assert cost["lc-deadline"] < 1.05 * bound
    # three seeds spread EC's penalised objective so widely that Student's interval would reach below 0
    metrics = get_system("cerl").metrics
    assert mean_interval([row["objective"] for row in rows["ec"]])[1] < 0
    summary = summarise(rows["ec"], metrics, get_system("cerl").bounded_metrics)
    assert all(summary[key][1] >= 0 for key in metrics) and summary["completion_rate"][2] <= 1


def test_the_same_seed_gives_the_same_episode_to_every_policy():
    scenario = _scenario()
    workload = load_workload(scenario)
    first = ChainEnv(scenario, workload, 5, seed=7)
    second = ChainEnv(scenario, workload, 5, seed=7)
    assert (first.positions == second.positions).all() and (first.arrivals == second.arrivals).all()
    lc = run_solver("lc", scenario, workload, 5, [7])
    ec = run_solver("ec", scenario, workload, 5, [7])
    assert lc[0]["tasks"] == ec[0]["tasks"]
    assert run_solver("random", scenario, workload, 5, [7]) == run_solver("random", scenario, workload, 5, [7])


def test_an_infeasible_deadline_is_refused():
    scenario = _scenario("system.deadline_s=0.01")
    with pytest.raises(EdgeprofError, match="needs .* GHz to finish within system.deadline_s"):
        load_workload(scenario)


@pytest.mark.parametrize(("override", "fragment"), [
    ("system.num_devices=0", "system.num_devices: must be >= 1"),
    ("radio.subcarriers=0", "radio.subcarriers: must be >= 1"),
    ("system.deadline_s=0", "system.deadline_s: must be > 0"),
    ("task.model=\"alexnet\"", "no shipped profile for 'alexnet'"),
    ("task.workload=\"table\"", "task.workload: expected one of profile, paper-table"),
    ("task.profile_path=\"missing.json\"", "does not exist"),
])
def test_bad_input_exits_2_with_one_line(run_cli, override, fragment):
    result = run_cli("solve", "--scenario", "cerl-small", "--solver", "lc", "--set", override, "--slots", "2")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert fragment in result.err, result.err


def test_the_presets_are_the_documented_toml_of_their_fields():
    text = (presets_dir() / "cerl.toml").read_text(encoding="utf-8")
    assert text[text.index("\n\n") + 2:] == to_toml(load_scenario("cerl"))
    small = load_scenario("cerl-small")
    assert small["system.num_devices"] == 5 and load_scenario("cerl")["system.num_devices"] == 10
    assert small.with_value("system.num_devices", 10).fields == load_scenario("cerl").fields
    assert get_system("cerl").default_preset == "cerl"
