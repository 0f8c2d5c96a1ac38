"""One platform for every system: a toy second system (`toy_system`, a bandit defined in the tests) goes through
`scenario show`, `solve`, `train`, `evaluate` and `plot` with no change to the commands; bad input names the
field or the choices; the registries list what is there."""

from __future__ import annotations

import csv
import dataclasses
import json
import tomllib

import pytest
import toy_system

from edgeprof.errors import EdgeprofError
from edgeprof.optimize.solve import solvers_for
from edgeprof.rl.runs import load_run
from edgeprof.rl.trainers import trainers
from edgeprof.sim.scenario import preset_document
from edgeprof.sim.systems import system_names

BANDIT = 'edge_system = "bandit"\n[arms]\narms = 4\nnoise = 0.1\n'


@pytest.fixture
def bandit(tmp_path):
    toy_system.register()
    path = tmp_path / "bandit.toml"
    path.write_text(BANDIT)
    yield path
    toy_system.unregister()


def _one_line(result, fragment):
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert fragment in result.err, result.err


def test_a_second_system_runs_through_every_command(bandit, run_cli, tmp_path):
    shown = run_cli("scenario", "show", bandit, "--set", "arms.arms=5")
    assert shown.code == 0, shown.err
    assert tomllib.loads(shown.out) == {"edge_system": "bandit", "arms": {"arms": 5, "noise": 0.1}}
    assert "# number of arms [>= 2, <= 20]" in shown.out and "# A multi-armed bandit" in shown.out

    rows_csv = tmp_path / "oracle.csv"
    solved = run_cli("solve", "--scenario", bandit, "--solver", "oracle", "--slots", "50", "--seeds", "0,1,2",
                     "-o", rows_csv)
    assert solved.code == 0, solved.err
    with rows_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["solver", "seed", "slots", "reward", "best_rate", "pulls"]
    assert [float(row["best_rate"]) for row in rows] == [1.0, 1.0, 1.0]
    assert "best_rate" in solved.out and "reward" in solved.out
    uniform = run_cli("solve", "--scenario", bandit, "--solver", "uniform", "--slots", "200", "--seeds", "0")
    assert uniform.code == 0 and "oracle" in run_cli("solve", "--list").out

    rundir = tmp_path / "runs" / "bandit" / "run"  # missing parents are made
    trained = run_cli("train", "bandit-greedy", "--scenario", bandit, "--iterations", "4", "--seed", "3",
                      "--hparam", "epsilon=0.2", "-o", rundir)
    assert trained.code == 0, trained.err
    assert "4 iterations" in trained.out and "best arm" in trained.out
    run = load_run(rundir)
    assert run.algorithm == "bandit-greedy" and run.config.epsilon == 0.2 and run.scenario["arms.arms"] == 4
    resumed = run_cli("train", "bandit-greedy", "--scenario", bandit, "--iterations", "6", "--seed", "3",
                      "--hparam", "epsilon=0.2", "-o", rundir, "--resume")
    assert resumed.code == 0, resumed.err
    assert (rundir / "log.csv").read_text().count("\n") == 7  # header and six iterations

    evaluated = run_cli("evaluate", rundir, "--seeds", "0,1", "--slots", "30", "-o", tmp_path / "eval.csv")
    assert evaluated.code == 0, evaluated.err
    assert "greedy" in evaluated.out and "best_rate" in evaluated.out
    sampled = run_cli("evaluate", rundir, "--seeds", "0,1", "--slots", "30", "--sample")
    assert sampled.code == 0 and "sampled" in sampled.out, sampled.err

    plotted = run_cli("plot", rundir, "-o", tmp_path / "curves.png")
    assert plotted.code == 0, plotted.err
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_a_rate_of_one_gets_a_binomial_interval_through_solve_and_its_files(bandit, run_cli, tmp_path):
    from scipy.stats import binomtest

    from edgeprof.sim.evaluation import metric_interval

    wilson = binomtest(150, 150).proportion_ci(method="wilson")  # the oracle picks the best arm 3 x 50 times
    for name in ("rows.csv", "rows.json"):
        solved = run_cli("solve", "--scenario", bandit, "--solver", "oracle", "--slots", "50", "--seeds", "0,1,2",
                         "--json", "-o", tmp_path / name)
        assert solved.code == 0, solved.err
        summary = json.loads(solved.out)["summary"]["best_rate"]
        assert summary == {"mean": 1.0, "ci95_low": pytest.approx(wilson.low), "ci95_high": 1.0, "n": 3}
    with (tmp_path / "rows.csv").open(newline="") as handle:
        from_csv = [(float(row["best_rate"]), int(row["pulls"])) for row in csv.DictReader(handle)]
    from_json = [(row["best_rate"], row["pulls"]) for row in json.loads((tmp_path / "rows.json").read_text())]
    assert from_csv == from_json == [(1.0, 50)] * 3
    rates, pulls = zip(*from_csv, strict=True)
    assert metric_interval(rates, pulls, (0.0, 1.0)) == pytest.approx((1.0, wilson.low, 1.0))
    table = run_cli("solve", "--scenario", bandit, "--solver", "oracle", "--slots", "50", "--seeds", "0,1,2")
    assert "0.975 .. 1" in table.out, table.out  # not "1 .. 1"


@pytest.mark.parametrize(("preset", "solver"), [("small", "greedy"), ("foci-small", "alp"), ("cerl-small", "random"),
                                              ("crowd-edge-small", "dpp")])
def test_every_built_in_systems_rows_carry_the_trials_behind_its_rates(preset, solver):
    from edgeprof.optimize.solve import run_solver
    from edgeprof.sim.evaluation import load_workload
    from edgeprof.sim.scenario import load_scenario

    scenario = load_scenario(preset)
    rates = scenario.system.rate_trials
    assert rates, f"{scenario.system_name} declares no rate with its trials"
    for row in run_solver(solver, scenario, load_workload(scenario), 6, [0, 1]):
        for rate, count in rates.items():
            trials = row[count]
            assert trials > 0 and trials == int(trials), (rate, count, trials)
            successes = row[rate] * trials  # a share of whole trials: a whole number of successes
            assert successes == pytest.approx(round(successes), abs=1e-6), (rate, row[rate], trials)


def test_a_rate_must_be_a_reported_metric_bounded_to_0_1():
    with pytest.raises(ValueError, match="rate_trials names 'reward', which is not a reported metric bounded"):
        dataclasses.replace(toy_system.SYSTEM, rate_trials={"reward": "pulls"})


@pytest.mark.parametrize(
    ("log", "message"),
    [
        (b"iteration,reward\n1,\xff\xfe\n", "training log {log} is not UTF-8 text (byte 19)"),
        (b'iteration,reward\n1,2,3\n"unclosed\n', "{log} is not a readable training log (Error tokenizing data."),
        (b"", "{log} is not a readable training log (No columns to parse from file)"),
    ],
)
def test_a_damaged_training_log_is_one_line_naming_it(bandit, run_cli, tmp_path, log, message):
    rundir = tmp_path / "run"
    assert run_cli("train", "bandit-greedy", "--scenario", bandit, "--iterations", "2", "-o", rundir).code == 0
    (rundir / "log.csv").write_bytes(log)
    picture = tmp_path / "curves.png"
    _one_line(run_cli("plot", rundir, "-o", picture), message.format(log=rundir / "log.csv"))
    assert not picture.exists()


def test_help_lists_the_choices(bandit, run_cli):
    solve_help = " ".join(run_cli("solve", "--help").out.split())  # the help wraps its lines
    assert "dpa: local-only, edge-only, greedy, neurosurgeon, lru, random, primal-dual, exact" in solve_help
    assert "bandit: uniform, oracle" in solve_help
    train_help = " ".join(run_cli("train", "--help").out.split())
    # each module's trainers in order, the modules in registration order (not part of the contract; it moves the
    # help's line breaks, and the wrapper breaks at hyphens: compare without white space)
    for group in ("hc-mappo-l, h-mappo, h-ippo, hc-ippo-l, heuristic-mappo-l, random-fill",
                  "m2appo, mappo, m2appo-min, maa3c, madqn", "cerl, ddqn, d2qn",
                  "bandit-greedy"):
        assert group.replace(" ", "") in train_help.replace(" ", "")


def test_registries_list_the_second_system_beside_seed_001(bandit):
    names = system_names()  # built-in systems first, then plugins
    assert names[0] == "dpa" and names[-1] == "bandit" and len(set(names)) == len(names)
    assert list(solvers_for("bandit")) == ["uniform", "oracle"]
    assert "primal-dual" in solvers_for("dpa") and "oracle" not in solvers_for("dpa")
    assert trainers("bandit").keys() == {"bandit-greedy"} and "hc-mappo-l" in trainers("dpa")


def test_bad_input_names_the_field_or_the_choices(bandit, run_cli, tmp_path):
    _one_line(run_cli("scenario", "show", bandit, "--set", "arms.arms=50"), "arms.arms: must be >= 2, <= 20, got 50")
    _one_line(run_cli("scenario", "show", bandit, "--set", "system.num_users=5"),
              "unknown scenario section [system] for system bandit: known sections are arms")
    _one_line(run_cli("scenario", "show", bandit, "--set", "arms.bandits=5"),
              "arms.bandits: unknown field (known: arms, noise)")
    _one_line(run_cli("solve", "--scenario", bandit, "--solver", "greedy"),
              "unknown solver 'greedy' for system bandit: use one of uniform, oracle")
    _one_line(run_cli("solve", "--scenario", "small", "--solver", "oracle"), "unknown solver 'oracle' for system dpa")
    _one_line(run_cli("train", "bandit-gready", "-o", tmp_path / "r"), "unknown algorithm 'bandit-gready'")
    _one_line(run_cli("train", "bandit-greedy", "--scenario", "small", "-o", tmp_path / "r"),
              "bandit-greedy trains on system bandit; scenario is a dpa scenario")
    _one_line(run_cli("train", "bandit-greedy", "-o", tmp_path / "r"), "system bandit ships no preset")
    _one_line(run_cli("train", "bandit-greedy", "--scenario", bandit, "--hparam", "epsilon=2", "-o", tmp_path / "r"),
              "epsilon must lie in [0, 1], got 2.0")
    _one_line(run_cli("train", "bandit-greedy", "--scenario", bandit, "--envs", "2", "-o", tmp_path / "r"),
              "bandit-greedy does not take these settings")
    unknown_system = tmp_path / "other.toml"
    unknown_system.write_text('edge_system = "foci2"\n')
    unknown = run_cli("scenario", "show", unknown_system)
    _one_line(unknown, "unknown system 'foci2': known systems are dpa, ")
    assert unknown.err.rstrip().endswith("bandit")
    assert not (tmp_path / "r").exists()


def test_a_system_may_be_named_once(bandit):
    from dataclasses import replace

    from edgeprof.sim.systems import register_system

    with pytest.raises(ValueError, match="already registered"):
        register_system(replace(toy_system.SYSTEM, description="another"))
    with pytest.raises(EdgeprofError, match="unknown scenario preset 'bandit'"):
        preset_document("bandit")


def test_a_run_folder_in_use_is_refused(bandit, run_cli, tmp_path):
    import subprocess
    import sys

    rundir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom edgeprof.files import folder_lock\n"
                               f"with folder_lock({str(rundir)!r}):\n    print('locked', flush=True)\n"
                               "    time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _one_line(run_cli("train", "bandit-greedy", "--scenario", bandit, "--iterations", "2", "-o", rundir),
                  f"run folder {rundir} is in use by another edgeprof process (pid {holder.pid})")
    finally:
        holder.kill()
        holder.wait()
    assert not (rundir / "config.json").exists()
    assert run_cli("train", "bandit-greedy", "--scenario", bandit, "--iterations", "2", "-o", rundir).code == 0


def test_summaries_leave_out_undefined_values_and_count_the_rest():
    from edgeprof.sim.evaluation import summarise

    rows = [{"delay_s": 1.0, "tasks": 0.0}, {"delay_s": None, "tasks": 0.0}, {"delay_s": 3.0, "tasks": 0.0}]
    summary = summarise(rows, ["delay_s", "tasks"], {"delay_s": (0.0, float("inf"))})
    mean, low, high, n = summary["delay_s"]
    assert (mean, n) == (2.0, 2) and low == 0.0 and high > 3.0  # Student's t with 1 degree of freedom, clipped at 0
    assert summarise(rows[1:2], ["delay_s"])["delay_s"] == (None, None, None, 0)


def test_train_list_names_every_trainer_in_aligned_columns(run_cli):
    lines = run_cli("train", "--list").out.splitlines()
    found = {line.split()[1] for line in lines}
    assert {"hc-mappo-l", "foci", "cerl", "m2appo"} <= found
    starts = {line.index(info) for line, info in ((line, line.split(maxsplit=2)[2]) for line in lines)}
    assert len(starts) == 1, lines  # every description in one column, whatever the system names' lengths
