"""HC-MAPPO-L's trainer and its ablations on the small scenario with tiny settings: first PPO ratios, masks and
capacities during collection, the multiplier, logs, checkpoints and exact resume; `edgeprof train`, `evaluate`
and `plot` (one line per run, or each algorithm's mean)."""

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from sim_testing import profiles_override, small_scenario, write_profiles

from edgeprof.errors import EdgeprofError
from edgeprof.rl.checkpoint import component_state
from edgeprof.rl.curves import training_curves, training_figure
from edgeprof.rl.hc_mappo_l import (
    ALGORITHMS,
    LAYERS,
    LOG_COLUMNS,
    TIMING_COLUMNS,
    TrainedPolicy,
    Trainer,
    make_config,
    parse_hyperparameters,
    sole_host_requests,
)
from edgeprof.rl.hc_policies import (
    DeploymentObservation,
    HCPolicyConfig,
    allocation_shares,
    deployment_from_choices,
    user_observation,
)
from edgeprof.rl.runs import evaluate_run, load_run, train
from edgeprof.sim import core
from edgeprof.sim.dpa import REPORTED
from edgeprof.sim.env import EdgeSystem
from edgeprof.sim.workload import load_service_table

TINY_NETWORKS = HCPolicyConfig(user_hidden=16, deploy_hidden=16, deploy_embed=4, alloc_hidden=8)
TINY = {"num_envs": 2, "slots_per_iteration": 6, "epochs": 2, "minibatches": 2, "policy": TINY_NETWORKS}
SHORT_INTERVALS = "system.slots_per_deployment=2"  # several deployment decisions in a few slots


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("profiles")


@pytest.fixture(scope="module")
def profiles(profile_dir):
    return write_profiles(profile_dir)


@pytest.fixture(scope="module")
def scenario_and_table(profile_dir):
    scenario = small_scenario(profile_dir, SHORT_INTERVALS)
    return scenario, load_service_table(scenario)


def tiny(algorithm="hc-mappo-l", **settings):
    return make_config(algorithm, **{**TINY, **settings})


def test_first_ppo_ratio_is_one_for_every_layer(scenario_and_table):
    trainer = Trainer(tiny(), *scenario_and_table)
    stats = trainer.update(trainer.collect())
    for layer in ("user", "deployment", "allocation"):
        assert stats[f"{layer}_first_ratio_error"] < 1e-5, layer  # float32 rounding across batch shapes only
        assert np.isfinite(stats[f"{layer}_policy_loss"])
    assert stats["deployment_approx_kl"] > 0  # and the epochs then move the policy


def test_collection_respects_masks_storage_and_capacity(scenario_and_table):
    trainer = Trainer(tiny(), *scenario_and_table)
    rollout = trainer.collect()
    system, table = trainer.system, trainer.table

    actions = rollout.user.stored("action")  # (T, E, K, 2)
    assert bool(rollout.user.stored("server_mask").gather(-1, actions[..., :1]).all())
    assert bool(rollout.user.stored("point_mask").gather(-1, actions[..., 1:]).all())

    choices = rollout.deployment.stored("choices")  # (decisions, E, J, I); the episode's entities still hold
    assert len(choices) >= 2
    for decision in choices:
        deployment = deployment_from_choices(decision, table.num_services)
        assert core.storage_feasible(table, system.entities, deployment).all()

    for obs, logits in zip(rollout.allocation_obs, rollout.allocation_logits, strict=True):
        compute, bandwidth = allocation_shares(logits, obs.association, system.num_servers)
        members = obs.association.unsqueeze(-1) == torch.arange(system.num_servers)  # (E, K, J)
        for shares in (compute, bandwidth):
            assert bool((shares >= 0).all())
            per_server = (shares.unsqueeze(-1) * members).sum(dim=1)  # (E, J)
            used = members.any(dim=1)
            torch.testing.assert_close(per_server[used], torch.ones_like(per_server[used]), rtol=0, atol=1e-12)
            assert bool((per_server[~used] == 0).all())


def test_multiplier_rises_over_tau_bar_falls_under_it_and_stays_zero_without_it(profile_dir):
    tight = small_scenario(profile_dir, SHORT_INTERVALS, "system.delay_constraint_s=0.001")
    loose = small_scenario(profile_dir, SHORT_INTERVALS, "system.delay_constraint_s=1000.0")
    for scenario, rises in ((tight, True), (loose, False)):
        trainer = Trainer(tiny(multiplier_init=0.5), scenario, load_service_table(scenario))
        row = trainer.run_iteration()
        assert row["delay_s"] > 0.001 and row["delay_s"] < 1000
        expected = 0.5 + 0.01 * (row["delay_s"] - scenario["system.delay_constraint_s"])  # eq. 33
        assert row["multiplier"] == pytest.approx(max(expected, 0.0))
        assert (row["multiplier"] > 0.5) == rises
    unconstrained = Trainer(tiny("h-mappo", multiplier_init=0.5), tight, load_service_table(tight))
    assert [unconstrained.run_iteration()["multiplier"] for _ in range(2)] == [0.0, 0.0]


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_every_algorithm_builds_and_runs_an_iteration(scenario_and_table, algorithm):
    trainer = Trainer(tiny(algorithm, epochs=1), *scenario_and_table)
    row = trainer.run_iteration()
    assert set(row) == set(LOG_COLUMNS) and row["iteration"] == 1
    assert all(np.isfinite(row[name]) for name in ("cost", "delay_s", "success_rate", "user_policy_loss"))
    variant = ALGORITHMS[algorithm]
    trains_deployment = variant.learned_deployment and not variant.random_fill
    assert (row["deployment_policy_loss"] is not None) == trains_deployment
    assert (row["allocation_policy_loss"] is not None) == variant.learned_allocation
    assert trainer.policies.user.independent == variant.independent_critics
    assert (row["user_cost_value_loss"] is not None) == variant.constrained  # no cost critic without a multiplier
    value, cost_value = trainer.policies.user.values(user_observation(trainer.system))
    assert (cost_value is not None) == variant.constrained and value.shape == (2, trainer.system.num_users)


def test_the_debug_checks_change_no_number(scenario_and_table):
    rows = [Trainer(tiny(debug=debug), *scenario_and_table).run_iteration() for debug in (False, True)]
    assert [{key: value for key, value in row.items() if key not in TIMING_COLUMNS} for row in rows] == [
        {key: value for key, value in rows[0].items() if key not in TIMING_COLUMNS}] * 2


def test_layers_updated_side_by_side_give_the_numbers_of_one_after_the_other(scenario_and_table):
    threads = torch.get_num_threads()
    trainers = [Trainer(tiny(threads=2), *scenario_and_table) for _ in range(2)]  # the same initial networks
    trainers[1].config = replace(trainers[1].config, threads=1)  # layers in turn
    try:
        rows = [[trainer.run_iteration() for _ in range(2)] for trainer in trainers]
    finally:
        torch.set_num_threads(threads)
    side_by_side, in_turn = ([{key: value for key, value in row.items() if key not in TIMING_COLUMNS} for row in run]
                             for run in rows)
    assert side_by_side == in_turn and side_by_side[0]["deployment_policy_loss"] is not None
    for first, second in zip(*(trainer.policies.parameters() for trainer in trainers), strict=True):
        assert torch.equal(first, second)


def test_team_deployment_reward_gives_every_server_the_mean_of_eq_24(scenario_and_table):
    own = Trainer(tiny(deployment_reward="own"), *scenario_and_table).collect().deployment.stored("reward")
    team = Trainer(tiny(deployment_reward="team"), *scenario_and_table).collect().deployment.stored("reward")
    assert len(own) >= 2 and not torch.equal(own, own[..., :1].expand_as(own))  # servers earn differently
    assert torch.allclose(team, own.mean(dim=-1, keepdim=True).expand_as(own))
    with pytest.raises(EdgeprofError, match="deployment_reward must be own, team or difference"):
        tiny(deployment_reward="shared")


def test_the_difference_reward_and_the_coverage_term_credit_the_requests_only_a_server_could_serve(
        scenario_and_table):
    rewards = {name: Trainer(tiny(**settings), *scenario_and_table).collect().deployment.stored("reward")
               for name, settings in (("own", {"deployment_reward": "own"}),
                                      ("difference", {"deployment_reward": "difference"}),
                                      ("coverage", {"deployment_reward": "own", "deployment_coverage_coef": 2.0}))}
    alone = (rewards["coverage"] - rewards["own"]) / 2.0  # mu_hit = 1: requests of the services only j hosts
    hits_elsewhere = rewards["own"] - rewards["difference"]  # hits of services another server also hosts
    for counts in (alone, hits_elsewhere):  # the same episodes and actions: only the rewards differ
        assert bool((counts >= 0).all()) and torch.equal(counts, counts.round())
    assert bool(alone.sum() > 0) and bool(hits_elsewhere.sum() > 0)


def test_requests_only_one_server_hosts_are_counted_for_it(scenario_and_table):
    system = EdgeSystem(*scenario_and_table, num_envs=1, seed=0)
    deployment = np.zeros_like(system.deployment)  # (1, I = 4, J = 3)
    deployment[0, 0, :] = True  # service 0 everywhere
    deployment[0, 1, 2] = True  # service 1 on server 2 only
    system.deployment = deployment
    system.interval_requests[:] = [[5, 7, 11, 0]]  # service 2 is hosted nowhere: nobody can claim its requests
    assert sole_host_requests(system).tolist() == [[0.0, 0.0, 7.0]]


def test_the_pid_multiplier_and_the_deployment_entropy_schedule_are_settings(scenario_and_table):
    trainer = Trainer(tiny(multiplier_kind="pid", multiplier_kp=0.5, multiplier_init=0.5), *scenario_and_table)
    row = trainer.run_iteration()
    violation = row["delay_s"] - 3.0  # tau-bar of the small preset
    assert row["multiplier"] == pytest.approx(max(0.5 * violation + 0.5 + 0.01 * violation, 0.0))
    with pytest.raises(EdgeprofError, match="multiplier_kind must be dual or pid"):
        tiny(multiplier_kind="adam")
    scheduled = Trainer(tiny(deployment_entropy_final_coef=0.05, deployment_entropy_decay_iterations=4),
                        *scenario_and_table)
    coefficients = []
    for iteration in (0, 2, 4, 9):
        scheduled.iteration = iteration
        coefficients.append(scheduled.deployment_entropy_coef())
    assert coefficients == pytest.approx([0.25, 0.15, 0.05, 0.05])


def test_random_fill_keeps_the_untrained_deployment_and_always_draws_it(scenario_and_table, tmp_path):
    scenario, table = scenario_and_table
    trainer = Trainer(tiny("random-fill"), scenario, table)
    before = {name: value.clone() for name, value in trainer.policies.deployment.state_dict().items()}
    row = trainer.run_iteration()
    assert row["deployment_policy_loss"] is None and row["deployment_reward"] is not None
    assert all(torch.equal(before[name], value) for name, value in trainer.policies.deployment.state_dict().items())
    assert row["user_policy_loss"] is not None and row["allocation_policy_loss"] is not None
    train(tiny("random-fill", iterations=1), scenario, table, tmp_path / "fill")
    greedy = evaluate_run(tmp_path / "fill", 6, [0, 1, 0])
    assert [row["solver"] for row in greedy] == ["random-fill"] * 3
    assert greedy[0] == {**greedy[2], "seed": 0}  # each episode's draws come from its seed
    with pytest.raises(EdgeprofError, match="bad hyperparameter 'random_fill=true'"):
        parse_hyperparameters(["random_fill=true"])  # random-fill is a method of its own


@pytest.mark.parametrize("baseline", ["initial", "mean_step"])
def test_the_deployment_baseline_stored_is_v_h0_or_eq_29s_mean_step_value(scenario_and_table, baseline):
    trainer = Trainer(tiny(deployment_baseline=baseline), *scenario_and_table)
    rollout = trainer.collect()
    buffer = rollout.deployment
    obs = DeploymentObservation(buffer.stored("features"), buffer.stored("storage_bytes"),
                                torch.from_numpy(trainer.table.model_bytes.astype(np.float64)))
    with torch.no_grad():
        replay = trainer.policies.deployment.evaluate(obs, buffer.stored("choices"), buffer.stored("others"))
    value = replay.initial_value if baseline == "initial" else replay.value
    assert not torch.allclose(replay.initial_value, replay.value)  # the two baselines differ
    expected = trainer.normalizers["deployment"].denormalize(value.reshape(buffer.stored("value").shape))
    torch.testing.assert_close(buffer.stored("value"), expected, rtol=0, atol=1e-5)
    assert trainer.update(rollout)["deployment_first_ratio_error"] < 1e-5


def test_the_defaults_are_the_measured_deployment_settings_and_bad_values_are_refused():
    assert (tiny().deployment_baseline, tiny().deployment_reward) == ("initial", "difference")
    with pytest.raises(EdgeprofError, match="deployment_baseline must be mean_step or initial"):
        tiny(deployment_baseline="first")


def _log(rundir):
    with (rundir / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_run_logs_checkpoints_and_resumes_bit_for_bit(scenario_and_table, tmp_path):
    scenario, table = scenario_and_table
    rows = train(tiny(iterations=2), scenario, table, tmp_path / "whole")
    log = _log(tmp_path / "whole")
    assert len(rows) == len(log) == 2 and tuple(log[0]) == LOG_COLUMNS
    assert (tmp_path / "whole" / "config.json").is_file()
    assert (tmp_path / "whole" / "checkpoints" / "latest.pt").is_file()

    train(tiny(iterations=1), scenario, table, tmp_path / "parts")  # stops (as if killed) after a checkpoint
    with pytest.raises(EdgeprofError, match="already holds a training run"):
        train(tiny(iterations=2), scenario, table, tmp_path / "parts")
    with pytest.raises(EdgeprofError, match="other settings.*seed"):
        train(tiny(iterations=2, seed=1), scenario, table, tmp_path / "parts", resume=True)
    resumed = train(tiny(iterations=2), scenario, table, tmp_path / "parts", resume=True)

    def repeatable(row):
        return {key: value for key, value in row.items() if key not in TIMING_COLUMNS}

    assert [repeatable(row) for row in resumed] == [repeatable(row) for row in rows]
    assert [repeatable(row) for row in _log(tmp_path / "parts")] == [repeatable(row) for row in log]
    whole, parts = (component_state(tmp_path / name / "checkpoints" / "latest.pt", "policies")
                    for name in ("whole", "parts"))
    assert all(torch.equal(whole[name], parts[name]) for name in whole)

    def stop(iteration, total, row):  # killed after one iteration, before any periodic checkpoint
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(iterations=2, checkpoint_every=10), scenario, table, tmp_path / "early", progress=stop)
    early = train(tiny(iterations=2), scenario, table, tmp_path / "early", resume=True)  # from the start
    assert [repeatable(row) for row in early] == [repeatable(row) for row in rows]
    with pytest.raises(EdgeprofError, match="holds no 'critic'"):
        component_state(tmp_path / "whole" / "checkpoints" / "latest.pt", "critic")


def _train_args(profiles, rundir, *extra):
    return ("train", "hc-mappo-l", "--scenario", "small", "--set", profiles_override(profiles), "--set",
            SHORT_INTERVALS, "--iterations", "1", "--slots", "4", "--envs", "2", "-o", rundir, *extra)


def test_cli_train_evaluate_and_plot(run_cli, profiles, tmp_path):
    trained_rundir = tmp_path / "run"  # one iteration with the default network sizes
    result = run_cli(*_train_args(profiles, trained_rundir))
    assert result.code == 0, result.err
    assert "1 iterations" in result.out and "tau-bar 3 s" in result.out

    evaluated = run_cli("evaluate", trained_rundir, "--episodes", "2", "--slots", "6", "-o", tmp_path / "rows.csv")
    assert evaluated.code == 0, evaluated.err
    for metric in REPORTED:
        assert metric in evaluated.out
    with (tmp_path / "rows.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["seed"] for row in rows] == ["0", "1"] and all(row["solver"] == "hc-mappo-l" for row in rows)
    again = evaluate_run(trained_rundir, 6, [1])  # greedy: the same episode gives the same numbers
    assert again[0]["cost"] == pytest.approx(float(rows[1]["cost"]), rel=1e-12)

    sampled = run_cli("evaluate", trained_rundir, "--seeds", "0,1", "--slots", "6", "--sample")
    assert sampled.code == 0 and "sampled" in sampled.out, sampled.err
    drawn = evaluate_run(trained_rundir, 6, [0, 1], draw=LAYERS)
    assert drawn == evaluate_run(trained_rundir, 6, [0, 1], draw=LAYERS)  # each episode's draws seeded by its seed
    assert [row["cost"] for row in drawn] != [float(row["cost"]) for row in rows]  # not the greedy actions
    partly = run_cli("evaluate", trained_rundir, "--seeds", "0,1", "--slots", "6", "--draw", "deployment, user")
    assert partly.code == 0 and "deployment, user drawn" in partly.out, partly.err
    _one_line_error(run_cli("evaluate", trained_rundir, "--draw", "users"), "unknown layer(s) users")
    _one_line_error(run_cli("evaluate", trained_rundir, "--draw", "user", "--sample"), "--sample or --draw")
    _one_line_error(run_cli("evaluate", trained_rundir, "--draw", ","), "at least one layer")

    plotted = run_cli("plot", trained_rundir, "-o", tmp_path / "curves.png")
    assert plotted.code == 0, plotted.err
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert run_cli("plot", trained_rundir).code == 0 and (trained_rundir / "training.png").is_file()


def _fake_run(template, rundir, algorithm, seed, delays):
    """A copy of the run `template` relabelled as `algorithm`/`seed`, whose log has the given delays."""
    shutil.copytree(template, rundir)
    record = json.loads((rundir / "config.json").read_text())
    record["config"].update(algorithm=algorithm, seed=seed)
    (rundir / "config.json").write_text(json.dumps(record))
    row = _log(template)[0]
    with (rundir / "log.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, LOG_COLUMNS)
        writer.writeheader()
        writer.writerows({**row, "iteration": index + 1, "delay_s": delay} for index, delay in enumerate(delays))
    return rundir


def test_plot_by_algorithm_draws_each_algorithms_mean_with_a_95_percent_band(scenario_and_table, run_cli, tmp_path):
    scenario, table = scenario_and_table
    train(tiny(iterations=1), scenario, table, tmp_path / "template")
    runs = [_fake_run(tmp_path / "template", tmp_path / name, algorithm, seed, delays)
            for name, algorithm, seed, delays in (("a0", "hc-mappo-l", 0, [1, 2, 3, 4]),
                                                  ("a1", "hc-mappo-l", 1, [3, 4, 5, 6, 7]),
                                                  ("a2", "hc-mappo-l", 2, [2, 3, 4, 5]),
                                                  ("b0", "h-mappo", 0, [9, 8, 7]))]
    panels, curves, limits = training_curves(runs, smooth=1, by_algorithm=True)
    assert limits == {"delay_s": [3.0]}
    assert [curve.label for curve in curves] == ["hc-mappo-l (3 runs)", "h-mappo (1 run)"]
    grouped, single = curves
    assert grouped.iteration.tolist() == [1, 2, 3, 4]  # the iterations all three runs reached
    assert grouped.mean["delay_s"].tolist() == [2, 3, 4, 5]
    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, 2) x the spread (1) of the runs at every iteration
    assert np.allclose(grouped.high["delay_s"] - grouped.mean["delay_s"], half)
    assert np.allclose(grouped.mean["delay_s"] - grouped.low["delay_s"], half)
    assert single.low is None and single.mean["delay_s"].tolist() == [9, 8, 7]

    _, smoothed, _ = training_curves(runs[:3], smooth=2, by_algorithm=True)  # each run smoothed, then averaged
    assert smoothed[0].mean["delay_s"].tolist() == [2, 2.5, 3.5, 4.5]
    _, each, _ = training_curves(runs, smooth=1)
    assert [curve.label for curve in each][:2] == ["hc-mappo-l, seed 0 (a0)", "hc-mappo-l, seed 1 (a1)"]
    assert each[1].mean["delay_s"].tolist() == [3, 4, 5, 6, 7]

    figure = training_figure(panels, curves, limits, smooth=1, by_algorithm=True)
    delay_axis = figure.axes[1]
    assert delay_axis.get_yscale() == "log"  # the approach to tau-bar stays visible after an early fall
    assert delay_axis.get_ylim() == pytest.approx((1.0, 18.0))  # the means (2-9) and tau-bar, not the band (< 0)
    assert [line.get_ydata()[0] for line in delay_axis.get_lines()] == [2, 9, 3.0]  # two means, then tau-bar

    plotted = run_cli("plot", *runs, "--by-algorithm", "-o", tmp_path / "mean.png")
    assert plotted.code == 0, plotted.err
    assert (tmp_path / "mean.png").read_bytes().startswith(b"\x89PNG")


def test_hyperparameters_parse_to_typed_settings_of_the_config():
    settings = parse_hyperparameters(["multiplier_lr=0.5", "epochs=4", "deployment_discount=decision",
                                      "policy.user_hidden=64"])
    config = make_config("hc-mappo-l", **settings)
    assert config.multiplier_lr == 0.5 and config.epochs == 4 and config.deployment_discount == "decision"
    assert config.policy.user_hidden == 64 and config.policy.deploy_hidden == HCPolicyConfig().deploy_hidden
    assert parse_hyperparameters([]) == {}
    with pytest.raises(EdgeprofError, match="epochs must be of type int"):
        parse_hyperparameters(["epochs=2.5"])
    with pytest.raises(EdgeprofError, match="policy.user_hidden"):  # the message lists the names
        parse_hyperparameters(["policy.independent_critics=true"])


def test_a_trained_policy_draws_only_the_layers_it_is_told_to(run_cli, profiles, tmp_path):
    rundir = tmp_path / "run"
    assert run_cli(*_train_args(profiles, rundir)).code == 0
    scenario = load_run(rundir).scenario
    system = EdgeSystem(scenario, load_service_table(scenario), num_envs=1, seed=5)
    greedy = TrainedPolicy.load(rundir, system)
    drawing_deployment = [greedy.drawing(seed, ["deployment"]) for seed in range(20)]
    greedy_actions = greedy.act(system)
    for policy in drawing_deployment:  # the users still take their most probable actions
        assert all(np.array_equal(a, b) for a, b in zip(policy.act(system), greedy_actions, strict=True))
    greedy_deployment = greedy.deploy(system)
    assert np.array_equal(greedy.deploy(system), greedy_deployment)
    assert any(not np.array_equal(policy.deploy(system), greedy_deployment) for policy in drawing_deployment)
    drawing_users = [greedy.drawing(seed, ["user"]) for seed in range(20)]
    assert all(np.array_equal(policy.deploy(system), greedy_deployment) for policy in drawing_users)
    assert any(not np.array_equal(policy.act(system)[0], greedy_actions[0]) for policy in drawing_users)
    with pytest.raises(EdgeprofError, match="unknown layer.*deploy"):
        greedy.drawing(0, ["deploy"])


def _one_line_error(result, fragment):
    assert result.code == 2
    assert result.err.startswith("edgeprof: error: ") and len(result.err.strip().splitlines()) == 1
    assert fragment in result.err


def test_cli_errors_exit_2_with_one_line_and_no_files(run_cli, profiles, tmp_path):
    rundir = tmp_path / "run"
    _one_line_error(run_cli("train", "hc-mapo-l", "-o", rundir), "unknown algorithm 'hc-mapo-l'")
    _one_line_error(run_cli(*_train_args(profiles, rundir, "--resume")), "nothing to resume")
    _one_line_error(run_cli("train", "h-mappo", "--iterations", "0", "-o", rundir), "--iterations")
    _one_line_error(run_cli("train", "h-mappo", "--scenario", "small", "--set", profiles_override(profiles),
                            "--slots", "10", "-o", rundir), "must exceed delta-T")
    assert not rundir.exists()
    _one_line_error(run_cli("train", "h-mappo", "--hparam", "multiplier_lr=fast", "-o", rundir),
                    "multiplier_lr must be of type float")
    _one_line_error(run_cli("train", "h-mappo", "--hparam", "seed=3", "-o", rundir), "bad hyperparameter 'seed=3'")
    _one_line_error(run_cli("evaluate", tmp_path / "missing"), "not a training run")
    _one_line_error(run_cli("plot", tmp_path / "missing"), "not a training run")
    _one_line_error(run_cli("evaluate", tmp_path / "missing", "--episodes", "2", "--seeds", "1"), "not both")
    assert list(tmp_path.iterdir()) == []
