"""Seed 002's learners (`rl.foci`): five methods as configurations of one parameter-shared dueling double DQN;
what each observes and is rewarded; training, bit-identical resume, evaluation and plotting through the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.fairness import oracle_cost
from edgeprof.optimize.foci import oracle_costs
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.foci import (
    VARIANTS,
    TrainedPolicy,
    Trainer,
    local_observation,
    make_config,
    neighbour_mean_actions,
    observation_size,
    observe,
)
from edgeprof.rl.runs import train
from edgeprof.rl.trainers import trainers
from edgeprof.sim.evaluation import load_workload
from edgeprof.sim.foci import FociEnv, action_of
from edgeprof.sim.scenario import load_scenario

TINY = ["system.num_devices=6"]
QUICK = {"slots_per_iteration": 6, "batch_size": 8, "learning_starts": 8, "hidden": 16, "replay_capacity": 200,
         "target_update_every": 4}


@pytest.fixture(scope="module")
def tiny():
    scenario = load_scenario("foci-small", TINY)
    return scenario, load_workload(scenario)


def test_five_methods_are_configurations_of_one_trainer():
    assert set(trainers("foci")) == {"foci", "foci-ofr", "foci-coa", "iql", "amfq"} == set(VARIANTS)
    flags = {name: (c.oracle_reward, c.competitor_records, c.neighbour_actions)
             for name in VARIANTS for c in [make_config(name)]}
    assert flags == {"foci": (True, True, False), "foci-ofr": (True, False, False), "foci-coa": (False, True, False),
                     "iql": (False, False, False), "amfq": (False, False, True)}
    config = make_config("foci")
    assert (config.learning_rate, config.gamma, config.epsilon_start, config.epsilon_decay) == (1e-4, 0.7, 1.0, 0.99)
    assert config.epsilon(0) == 1.0 and config.epsilon(2) == pytest.approx(0.99 ** 2)
    assert (observation_size(3, 32, make_config("iql")), observation_size(3, 32, config),
            observation_size(3, 32, make_config("amfq"))) == (15, 15 + 96, 15 + 97)
    with pytest.raises(EdgeprofError, match="gamma must lie in"):
        make_config("iql", gamma=1.5)


def test_observations_hold_own_state_records_and_neighbours(tiny):
    scenario, workload = tiny
    env = FociEnv(scenario, workload, 0)
    local = local_observation(env)
    assert local.shape == (6, 15) and np.all(local[:, -4:] == 0)  # nothing chosen yet
    env.step(np.array([action_of(0, 3, 3, 32)] * 3 + [env.num_actions - 1] * 3))
    local = local_observation(env)
    assert local[:3, 11].tolist() == [1, 1, 1] and local[3:, 14].tolist() == [1, 1, 1]  # last choice one-hot
    obs = observe(env, make_config("foci"))
    assert obs.dtype == np.float32 and obs.shape == (6, 15 + 96)
    np.testing.assert_allclose(obs[:, 15:], env.competitor_records().reshape(6, -1) / 2.0, rtol=1e-6)
    neighbours = neighbour_mean_actions(env, 1e6)  # everyone is everyone's neighbour
    assert neighbours.shape == (6, 97) and np.allclose(neighbours.sum(axis=1), 1.0)
    assert neighbours[0, action_of(0, 3, 3, 32)] == pytest.approx(2 / 5)  # the other two of three, of five others
    assert not neighbour_mean_actions(env, 1e-9).any()  # nobody that close


def test_oracle_rewards_go_to_the_devices_an_edge_served(tiny):
    scenario, workload = tiny
    env = FociEnv(scenario, workload, 1)
    actions = np.array([action_of(0, 15, 3, 32)] * 4 + [action_of(1, 20, 3, 32), env.num_actions - 1])
    outcome = env.step(actions)
    shaped = oracle_costs(outcome, 3, 24, "min-risk", 0.01)
    at_zero = outcome.served_by == 0
    assert len(set(shaped[at_zero].tolist())) == 1
    assert shaped[at_zero][0] == oracle_cost("min-risk", outcome.rc[at_zero], outcome.rf[at_zero], 24, 0.01)
    assert shaped[at_zero][0] <= outcome.cost[at_zero].max() + 1e-12  # the oracle does no worse than equal shares
    assert shaped[5] == outcome.cost[5]  # local: its own cost
    assert shaped[4] == pytest.approx(outcome.cost[4])  # alone at its edge: all 24 SMs either way


def test_training_learns_from_its_replay_and_resumes_bit_for_bit(tiny, tmp_path):
    scenario, workload = tiny
    config = make_config("foci", iterations=4, checkpoint_every=2, seed=3, **QUICK)
    rows = train(config, scenario, workload, tmp_path / "a")
    assert [row["iteration"] for row in rows] == [1, 2, 3, 4] and rows[-1]["updates"] > 0
    assert rows[0]["epsilon"] == 1.0 and rows[1]["epsilon"] == pytest.approx(0.99)
    assert np.isfinite(rows[-1]["td_loss"]) and rows[-1]["shaped_reward"] < 0
    first = train(make_config("foci", iterations=2, checkpoint_every=2, seed=3, **QUICK), scenario, workload,
                  tmp_path / "b")
    resumed = train(make_config("foci", iterations=4, checkpoint_every=2, seed=3, **QUICK), scenario, workload,
                    tmp_path / "b", resume=True)
    strip = [{k: v for k, v in row.items() if k not in ("seconds", "steps_per_s")} for row in resumed]
    assert strip == [{k: v for k, v in row.items() if k not in ("seconds", "steps_per_s")} for row in rows]
    assert len(first) == 2
    for name in ("online", "target"):
        a = component_state(tmp_path / "a" / "checkpoints" / "latest.pt", name)
        b = component_state(tmp_path / "b" / "checkpoints" / "latest.pt", name)
        assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_trained_policy_acts_within_the_mask(tiny):
    scenario, workload = tiny
    trainer = Trainer(make_config("amfq", **QUICK), scenario, workload)
    trainer.run_iteration()
    env = FociEnv(scenario, workload, 9)
    for _ in range(3):
        actions = TrainedPolicy(trainer.config, trainer.online).act(env)
        assert env.mask[np.arange(6), actions].all()
        env.step(actions)


def test_train_evaluate_and_plot_through_the_cli(run_cli, tmp_path):
    rundir = tmp_path / "run"
    args = ["train", "foci-coa", "--scenario", "foci-small", "--set", TINY[0], "--iterations", "2", "--slots", "5",
            "--hparam", "batch_size=8", "--hparam", "learning_starts=8", "--hparam", "hidden=16",
            "--hparam", "replay_capacity=100", "-o", rundir]
    trained = run_cli(*args)
    assert trained.code == 0, trained.err
    assert "2 iterations" in trained.out and "switches/h" in trained.out
    with (rundir / "log.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    evaluated = run_cli("evaluate", rundir, "--seeds", "0,1", "--slots", "4", "-o", tmp_path / "eval.csv")
    assert evaluated.code == 0, evaluated.err
    assert "max_latency_ms" in evaluated.out and (tmp_path / "eval.csv").is_file()
    sampled = run_cli("evaluate", rundir, "--seeds", "0", "--slots", "4", "--sample")
    assert sampled.code == 0 and "sampled" in sampled.out, sampled.err
    plotted = run_cli("plot", rundir, "-o", tmp_path / "curves.png")
    assert plotted.code == 0 and (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG"), plotted.err
    bad = run_cli("train", "foci", "--scenario", "foci-small", "--hparam", "epsilon_decay=1.5", "-o", tmp_path / "x")
    assert bad.code == 2 and "epsilon_decay" in bad.err and len(bad.err.strip().splitlines()) == 1
    wrong = run_cli("train", "iql", "--scenario", "small", "-o", tmp_path / "y")
    assert wrong.code == 2 and "iql trains on system foci; scenario is a dpa scenario" in wrong.err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
