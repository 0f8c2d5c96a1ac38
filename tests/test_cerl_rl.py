"""CERL and its baselines (`rl.cerl`, `rl.cem`): the GCN against the dense normalised adjacency, the factored
joint argmax against brute force, eq. 14-15 by hand, one shared fitness batch, RL injection, target refreshes,
double targets, resumable runs and the commands."""

from __future__ import annotations

import csv
import itertools
import math

import numpy as np
import pytest
import torch

from edgeprof.errors import EdgeprofError
from edgeprof.rl import cerl as rl
from edgeprof.rl.cem import DiagonalCEM, elite_weights
from edgeprof.rl.checkpoint import shape_differences
from edgeprof.rl.runs import evaluate_run, train
from edgeprof.sim.cerl import ChainEnv, cost_bound_per_task
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.scenario import load_scenario

TINY = {"population": 4, "elites": 2, "fitness_batch": 8, "batch_size": 8, "learning_starts": 8,
        "buffer_size": 500, "slots_per_iteration": 3, "max_graph_tasks": 6}
SUBCARRIERS = 10  # the cerl presets' S
TINY_HPARAMS = [f"{name}={value}" for name, value in TINY.items() if name != "slots_per_iteration"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _env(*overrides: str, slots: int = 3, seed: int = 0, steps: int = 4):
    scenario = load_scenario("cerl-small", ["system.arrivals_per_slot=2", *overrides])
    workload = load_workload(scenario)
    env = ChainEnv(scenario, workload, slots, seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        masks = env.masks()
        node = int(rng.choice(np.flatnonzero(masks.node)))
        end = int(rng.choice(np.flatnonzero(masks.end))) + 1
        sub = int(np.flatnonzero(masks.subcarriers)[0]) if node != masks.location else -1
        env.step(rl.Action(node, end, 1, sub))
    return scenario, workload, env


def _observations(env: ChainEnv, spec: rl.GraphSpec, count: int) -> list[dict]:
    rows, rng = [], np.random.default_rng(1)
    while len(rows) < count and not env.done:
        rows.append(rl.encode(env, spec))
        masks = env.masks()
        node = int(rng.choice(np.flatnonzero(masks.node)))
        sub = int(np.flatnonzero(masks.subcarriers)[0]) if node != masks.location else -1
        env.step(rl.Action(node, int(np.flatnonzero(masks.end)[0]) + 1, 1, sub))
    return rows


def _stack(rows: list[dict]) -> dict:
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def test_the_propagation_is_the_dense_normalised_adjacency():
    scenario, workload, env = _env()
    graph = env.graph()
    assert len(graph.layers) >= 3  # several tasks, so chains and assignments matter
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=16)
    structure = rl.GraphStructure(rl.GraphBatch.of(rl.encode(env, spec)))
    a = graph.adjacency() + np.eye(graph.num_nodes)
    scale = 1.0 / np.sqrt(a.sum(1))
    expected = scale[:, None] * a * scale[None, :]
    assert np.allclose(structure.adjacency.to_dense().numpy(), expected, atol=1e-6)
    assert np.array_equal(structure.features.numpy(), graph.features())


def test_a_graphs_q_values_do_not_depend_on_its_batch():
    scenario, workload, env = _env(steps=0)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    rows = _observations(env, spec, 5)
    network = rl.GraphQNetwork(scenario["radio.subcarriers"], dueling=True)
    together = network(rl.GraphBatch.of(_stack(rows)))
    for i, row in enumerate(rows):
        alone = network(rl.GraphBatch.of(row))
        for name in ("node", "block", "sub"):
            assert torch.allclose(getattr(alone, name)[0], getattr(together, name)[i], atol=1e-5), name


def _brute_force_best(heads: rl.Heads, batch: rl.GraphBatch) -> tuple[float, tuple[int, ...]]:
    best, argbest = -math.inf, None
    location = int(batch.location[0])
    for node in np.flatnonzero(batch.node_mask[0].numpy()):
        subs = [0] if node == location else np.flatnonzero(batch.sub_mask[0].numpy())
        for end, share, sub in itertools.product(np.flatnonzero(batch.end_mask[0].numpy()),
                                                 range(int(batch.share_limit[0, node])), subs):
            action = torch.tensor([[node, end, share, sub]])
            value = float(rl.joint_q(heads, batch, action))
            if value > best:
                best, argbest = value, (int(node), int(end), share, int(sub))
    return best, argbest


def test_the_factored_joint_argmax_is_the_brute_force_one():
    scenario, workload, env = _env("system.num_devices=2", "radio.subcarriers=2", steps=2)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    batch = rl.GraphBatch.of(rl.encode(env, spec))
    torch.manual_seed(0)
    with torch.no_grad():
        heads = rl.GraphQNetwork(2)(batch)
    action = rl.greedy_action(heads, batch)
    best, argbest = _brute_force_best(heads, batch)
    assert float(rl.joint_q(heads, batch, action)) == pytest.approx(best, abs=1e-5)
    assert tuple(action[0].tolist()) == argbest
    values, _ = rl.per_node_best(heads, batch)
    assert float(values.max()) == pytest.approx(best, abs=1e-5)
    env.check_action(rl.env_action(action[0], env.focus.location))


def test_random_actions_stay_within_the_masks():
    scenario, workload, env = _env(steps=3)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    batch = rl.GraphBatch.of(rl.encode(env, spec))
    generator = torch.Generator().manual_seed(0)
    drawn = set()
    for _ in range(50):
        action = rl.random_action(batch, generator)[0]
        env.check_action(rl.env_action(action, env.focus.location))
        drawn.add(int(action[0]))
    assert len(drawn) > 1


def test_double_targets_evaluate_the_online_choice_with_the_target():
    """Values bootstrapped at or below 0: every reward is a cost."""
    scenario, workload, env = _env(steps=0)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    rows = _observations(env, spec, 6)
    batch = rl.GraphBatch.of(_stack(rows))
    torch.manual_seed(1)
    online, target = rl.GraphQNetwork(SUBCARRIERS), rl.GraphQNetwork(SUBCARRIERS)
    reward, done = torch.tensor([-1.0, -2.0, 0.5, 0.0, -0.5, -3.0]), torch.tensor([False] * 5 + [True])
    with torch.no_grad():
        chosen = rl.greedy_action(online(batch), batch)
        evaluated = rl.joint_q(target(batch), batch, chosen)
        own = rl.joint_q(target(batch), batch, rl.greedy_action(target(batch), batch))
    double = rl.td_targets(online, target, batch, batch, reward, done, 0.9, double=True)
    single = rl.td_targets(online, target, batch, batch, reward, done, 0.9, double=False)
    assert torch.allclose(double, reward + 0.9 * torch.where(done, 0.0, evaluated.clamp(max=0)), atol=1e-5)
    assert torch.allclose(single, reward + 0.9 * torch.where(done, 0.0, own.clamp(max=0)), atol=1e-5)


def test_cem_equation_15_by_hand():
    cem = DiagonalCEM(torch.zeros(2), sigma_init=1.0, elites=2)
    population = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.0, 0.0]])
    order = cem.update(population, torch.tensor([0.1, 0.3, 0.2, -1.0]))
    assert order.tolist() == [1, 2]
    first, second = 0.730426, 0.269574  # log(3/1), log(3/2), normalised
    assert cem.mean.tolist() == pytest.approx([3 * first + 5 * second, 4 * first + 6 * second], rel=1e-5)
    assert cem.var.tolist() == pytest.approx([9 * first + 25 * second + 1e-3, 16 * first + 36 * second + 1e-3],
                                             rel=1e-5)
    assert cem.epsilon == pytest.approx(1e-5 + 0.95 * (1e-3 - 1e-5))
    assert elite_weights(4, "equal").tolist() == [0.25] * 4
    draws = cem.sample(20000, torch.Generator().manual_seed(0))
    assert draws.mean(0).tolist() == pytest.approx(cem.mean.tolist(), abs=0.1)
    assert draws.var(0).tolist() == pytest.approx(cem.var.tolist(), rel=0.05)


def test_fitness_is_minus_the_td_error_and_a_constant_q_scores_well():
    scenario, workload, env = _env(steps=0)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    rows = _observations(env, spec, 6)
    batch = rl.GraphBatch.of(_stack(rows))
    reward, done = torch.tensor([-1.0, -2.0, -1.5, -1.0, -0.5, -3.0]), torch.zeros(6, dtype=torch.bool)
    action = torch.stack([rl.random_action(batch, torch.Generator().manual_seed(i))[i] for i in range(6)])
    # cost_scale 0: Q is the learned part alone, 0 with every parameter at 0
    zero, constant = rl.GraphQNetwork(SUBCARRIERS, cost_scale=0.0), rl.GraphQNetwork(SUBCARRIERS, cost_scale=0.0)
    with torch.no_grad():
        for parameter in zero.parameters():
            parameter.zero_()
        for parameter in constant.parameters():
            parameter.zero_()
        constant.node_head.bias.fill_(-15.0)  # mean r / (1 - gamma)
    members = torch.stack([rl.flat_parameters(zero), rl.flat_parameters(constant)])
    scratch = rl.GraphQNetwork(SUBCARRIERS, cost_scale=0.0)
    fitness = rl.population_fitness(members, members, None, scratch, batch, batch, action, reward, done, 0.9)
    assert float(fitness[0]) == pytest.approx(-float((reward ** 2).mean()))  # Q = 0: the error is r
    expected = -float(((reward + 0.9 * -15.0 + 15.0) ** 2).mean())
    assert float(fitness[1]) == pytest.approx(expected, rel=1e-5)
    assert fitness[1] > fitness[0]  # the degenerate case: a constant Q beats Q = 0 with no learning at all


def _trainer(algorithm: str = "cerl", **settings):
    scenario = load_scenario("cerl-small", ["system.arrivals_per_slot=1"])
    config = rl.make_config(algorithm, **{**TINY, **settings})
    return rl.Trainer(config, scenario, load_workload(scenario))


def test_every_individual_is_scored_on_one_batch():
    trainer = _trainer()
    trainer.run_iteration()
    trainer.run_iteration()
    members = trainer.population.members.clone()
    trainer.population.members = members
    before = trainer.population.cem.mean.clone()
    trainer.population.draw = lambda *args, **kwargs: None  # keep the members to recompute their fitness
    row = trainer.generation()
    rows = {name: tensor[trainer.last_fitness_index] for name, tensor in trainer.replay._data.items()}
    batch, following = rl.GraphBatch.of(rows), rl.GraphBatch.of(rows, "next_")
    for i in range(len(members)):
        scratch = rl.GraphQNetwork(SUBCARRIERS, cost_scale=trainer.scale)
        alone = rl.population_fitness(members[i:i + 1], trainer.population.targets[i:i + 1], None, scratch, batch,
                                      following, rows["action"], rows["reward"] * trainer.scale,
                                      rows["terminated"], trainer.config.gamma)
        assert float(alone[0]) == pytest.approx(float(trainer.last_fitness[i]), rel=1e-5)
    order = torch.sort(trainer.last_fitness, descending=True, stable=True).indices[:2]
    weights = elite_weights(2, "log-rank").float()
    assert torch.allclose(trainer.population.cem.mean, (weights[:, None] * members[order]).sum(0), atol=1e-6)
    assert not torch.equal(trainer.population.cem.mean, before)
    assert row["fitness_best"] == pytest.approx(float(trainer.last_fitness.max()))


def test_the_injected_agent_is_in_the_population_and_can_be_an_elite():
    trainer = _trainer()
    trainer.run_iteration()
    trainer.run_iteration()
    assert torch.equal(trainer.population.members[0], rl.flat_parameters(trainer.online))
    trainer.population.cem.mean += 5.0  # every draw far from anything that fits the data
    row = trainer.generation()
    assert torch.equal(trainer.population.members[0], rl.flat_parameters(trainer.online))  # not redrawn
    assert row["rl_rank"] == 0 and int(trainer.last_fitness.argmax()) == 0  # the agent is the first elite


@pytest.mark.parametrize("every", [1, 2])
def test_individual_targets_refresh_every_h_generations(every):
    config = rl.make_config("cerl", **{**TINY, "individual_target_every": every})
    population = rl.Population(config, rl.GraphQNetwork(SUBCARRIERS))
    generator = torch.Generator().manual_seed(0)
    refreshed = []
    for generation in range(4):
        population.draw(generator, keep_first=generation > 0, target_every=every)
        refreshed.append(torch.equal(population.members[1:], population.targets[1:]))
    assert refreshed == [generation % every == 0 for generation in range(4)]


def test_parameter_noise_adapts_and_epsilon_decays():
    trainer = _trainer("d2qn", noise_adapt_every=1)
    rows = [trainer.run_iteration() for _ in range(3)]
    assert rows[-1]["updates"] > 0 and rows[-1]["noise_std"] != pytest.approx(0.01)
    assert all(row["epsilon"] == 0 for row in rows)
    ddqn = [_trainer("ddqn").run_iteration()]
    assert ddqn[0]["epsilon"] == 1.0 and math.isnan(ddqn[0]["noise_std"])


@pytest.mark.parametrize("algorithm", ["cerl", "d2qn"])
def test_a_resumed_run_repeats_an_uninterrupted_one(algorithm, tmp_path):
    scenario = load_scenario("cerl-small", ["system.arrivals_per_slot=1"])
    workload = load_workload(scenario)
    whole = train(rl.make_config(algorithm, iterations=3, checkpoint_every=1, **TINY), scenario, workload,
                  tmp_path / "whole")
    train(rl.make_config(algorithm, iterations=2, checkpoint_every=1, **TINY), scenario, workload, tmp_path / "part")
    resumed = train(rl.make_config(algorithm, iterations=3, checkpoint_every=1, **TINY), scenario, workload,
                    tmp_path / "part", resume=True)
    untimed = [{k: v for k, v in row.items() if k not in rl.TIMING_COLUMNS} for row in (whole[-1], resumed[-1])]
    assert untimed[0] == pytest.approx(untimed[1], nan_ok=True)
    first = torch.load(tmp_path / "whole" / "checkpoints" / "latest.pt", weights_only=True)
    second = torch.load(tmp_path / "part" / "checkpoints" / "latest.pt", weights_only=True)
    for name, tensor in first["components"]["online"].items():
        assert torch.equal(tensor, second["components"]["online"][name]), name


def test_train_evaluate_and_plot_through_the_commands(run_cli, tmp_path):
    rundir = tmp_path / "run"
    hparams = [arg for pair in TINY_HPARAMS for arg in ("--hparam", pair)]
    trained = run_cli("train", "cerl", "--scenario", "cerl-small", "--set", "system.arrivals_per_slot=1",
                      "--iterations", "2", "--slots", "3", *hparams, "-o", rundir)
    assert trained.code == 0, trained.err
    assert "2 iterations" in trained.out and "completion" in trained.out
    with (rundir / "log.csv").open() as handle:
        log = list(csv.DictReader(handle))
    assert list(log[0]) == list(rl.LOG_COLUMNS) and len(log) == 2
    assert int(log[1]["env_steps"]) > int(log[1]["agent_steps"])  # the elites' steps count too
    evaluated = run_cli("evaluate", rundir, "--seeds", "0,1", "--slots", "3", "-o", tmp_path / "eval.csv")
    assert evaluated.code == 0 and "completion_rate" in evaluated.out, evaluated.err
    assert run_cli("evaluate", rundir, "--seeds", "0", "--slots", "3", "--sample").code == 0
    plotted = run_cli("plot", rundir, "-o", tmp_path / "curves.png")
    assert plotted.code == 0 and (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG"), plotted.err
    for args, fragment in (
            (("--hparam", "fitness_target=best"), "fitness_target must be one of own, shared"),
            (("--hparam", "elites=60"), "must not exceed the population (50)"),
            (("--hparam", "max_grad_norm=nan"), "max_grad_norm must be a finite number"),
            (("--hparam", "cem_epsilon_start=-1"), "cem_epsilon_start must be >= 0, got -1"),
            (("--hparam", "cem_epsilon_decay=0"), "cem_epsilon_decay must be > 0, <= 1, got 0"),
            (("--hparam", "population=100000"), "population must be <= 10000"),
            (("--envs", "2"), "cerl does not take these settings")):
        result = run_cli("train", "cerl", "--scenario", "cerl-small", *args, "-o", tmp_path / "bad")
        assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
        assert fragment in result.err, result.err


def test_a_trained_policy_stays_above_the_cost_bound(tmp_path):
    scenario = load_scenario("cerl-small", ["system.arrivals_per_slot=1"])
    workload = load_workload(scenario)
    for algorithm in ("cerl", "ddqn"):
        train(rl.make_config(algorithm, iterations=2, **TINY), scenario, workload, tmp_path / algorithm)
        rows = evaluate_run(tmp_path / algorithm, 6, [0, 1, 2])
        bound = cost_bound_per_task(workload, scenario)
        assert all(row["cost_per_task"] is None or row["cost_per_task"] >= bound for row in rows)
        assert all(0 <= row["completion_rate"] <= 1 for row in rows)


def test_the_action_features_are_the_hops_physics():
    """u = the block's delay over the task's time left (the deadline is missed above 1) and the hop's eq. 6 cost,
    for every allowed (node, end, share), against the environment's own eq. 1-6."""
    scenario, workload, env = _env(steps=3)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    batch = rl.GraphBatch.of(rl.encode(env, spec))
    basis, cost = rl.action_basis(batch)[0], rl.hop_cost(batch)[0]
    task, masks = env.focus, env.masks()
    time_left = env.time_left_s(task)
    missed_any = False
    for node in np.flatnonzero(masks.node):
        for end in np.flatnonzero(masks.end):
            for share in (1, 7, 40, 100):
                hop = env.hop(task, rl.Action(int(node), int(end) + 1, share, 0))
                u = float(basis[node, end, share - 1, 2])
                assert u == pytest.approx(min((hop.compute_s + hop.transfer_s) / time_left, 4.0), rel=1e-4)
                missed = hop.compute_s + hop.transfer_s > time_left
                missed_any |= missed
                assert float(cost[node, end, share - 1]) == pytest.approx(hop.cost + env.penalty * missed, rel=1e-4)
    assert missed_any  # the penalty is checked too


def test_the_q_values_charge_each_hop_its_own_cost():
    """Issue 32: the block head learned the hop's cost as a weight on its energy; failures on slow devices at small
    shares turned that weight positive and the greedy choice on the MEC became its largest share (Q +700 cost
    bounds for a -600 hop). With the learned part of the block head at zero, a node's (end, share) choices rank by
    their own cost alone (P when the hop misses the deadline), each Q the reward scale x minus that cost apart,
    whatever the weights before it."""
    scenario, workload, env = _env(steps=3)
    spec = rl.GraphSpec.of(scenario, workload, max_tasks=8)
    batch = rl.GraphBatch.of(rl.encode(env, spec))
    task, masks = env.focus, env.masks()
    for dueling in (False, True):
        torch.manual_seed(0)
        network = rl.GraphQNetwork(scenario["radio.subcarriers"], dueling, cost_scale=0.5)
        with torch.no_grad():
            network.block_head.weight.zero_()
            network.block_head.bias.zero_()
        with torch.no_grad():
            block = network(batch).block[0]
        for node in np.flatnonzero(masks.node):
            ends = np.flatnonzero(masks.end)
            hops = [[env.hop(task, rl.Action(int(node), int(end) + 1, share, 0)) for share in range(1, 101)]
                    for end in ends]
            costs = np.array([[hop.cost + env.penalty * (hop.compute_s + hop.transfer_s > env.time_left_s(task))
                               for hop in row] for row in hops])
            q = block[node, ends].numpy()
            assert q - q[0, 0] == pytest.approx(-0.5 * (costs - costs[0, 0]), rel=1e-4, abs=1e-4)
            best = np.unravel_index(q.argmax(), q.shape)
            assert costs[best] == pytest.approx(costs.min(), rel=1e-4)


def test_every_decision_is_one_transition_of_its_task():
    trainer = _trainer(learning_starts=10 ** 6)
    played = trainer.play(trainer.online, seed=3, epsilon=1.0, learn=False)
    terminated = trainer.replay._data["terminated"][: len(trainer.replay)]
    assert len(trainer.replay) == played["decisions"] > 0
    ended_by_a_hop = played["tasks"] - played["failed_blocked"]  # completed or past their deadline after a hop
    assert ended_by_a_hop <= int(terminated.sum()) <= played["tasks"]  # plus blocked ones that had a hop


def test_a_checkpoint_of_an_older_network_says_what_differs_and_to_retrain(run_cli, tmp_path):
    scenario = load_scenario("cerl-small", ["system.arrivals_per_slot=1"])
    rundir = tmp_path / "run"
    train(rl.make_config("cerl", iterations=1, **TINY), scenario, load_workload(scenario), rundir)
    path = rundir / "checkpoints" / "latest.pt"
    payload = torch.load(path, weights_only=True)
    online = payload["components"]["online"]
    width = online["block_head.weight"].shape[1]
    online["block_head.weight"], online["block_head.bias"] = torch.zeros(5, width), torch.zeros(5)  # before 780d997
    torch.save(payload, path)
    result = run_cli("evaluate", rundir, "--seeds", "0", "--slots", "2")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert f"block_head.weight is 5x{width} there, 4x{width} here" in result.err, result.err
    assert "another version of edgeprof's CERL network; train the run again" in result.err, result.err
    assert "does not fit its scenario" not in result.err
    with pytest.raises(EdgeprofError, match=r"its 'online' has another shape .*block_head\.bias is 5 there, 4 "):
        train(rl.make_config("cerl", iterations=2, **TINY), scenario, load_workload(scenario), rundir, resume=True)


def test_shape_differences_names_reshaped_missing_and_extra_tensors():
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "c": torch.zeros(1)}
    assert shape_differences(dict(expected), expected) == ""
    saved = {"a": torch.zeros(3, 3), "b": torch.zeros(4), "d": torch.zeros(1)}
    assert shape_differences(saved, expected) == "a is 3x3 there, 2x3 here; missing: c; not in this network: d"
