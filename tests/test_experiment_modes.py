"""The sweep's evaluation modes, seed001-fig5's controls, a caller's own budget settings, and the report's paired
differences (fast: one training iteration of eight slots at most)."""

from __future__ import annotations

import csv
import json
import math

import pytest

from edgeprof.errors import EdgeprofError
from edgeprof.experiments.definitions import Budget, get_experiment
from edgeprof.experiments.report import paired_differences, report_experiment
from edgeprof.experiments.sweep import execute_run, plan, run_experiment, run_id
from edgeprof.stats import format_interval, mean_interval, rate_interval

TINY = Budget(seeds=1, slots=4, iterations=1, preset="small", overrides=("system.slots_per_deployment=4",),
              train_settings={"slots_per_iteration": 8, "num_envs": 1}, hyperparameters=("multiplier_lr=0.25",))


def test_fig5_runs_random_fill_and_the_random_solver_beside_the_papers_methods():
    runs = plan(get_experiment("seed001-fig5"), "smoke")
    methods = {(config["method"]["kind"], config["method"]["name"]) for config in runs}
    assert {("trainer", "random-fill"), ("solver", "random"), ("trainer", "hc-mappo-l")} <= methods
    assert get_experiment("seed001-fig5").references == ("hc-mappo-l", "random-fill")


def test_a_spec_replaces_the_budget_and_its_hyperparameters_reach_trainers_only():
    fig5 = get_experiment("seed001-fig5")
    named = plan(fig5, "smoke", [0], ["hc-mappo-l", "greedy"])
    assert all("hyperparameters" not in config for config in named)  # the named budgets' ids are unchanged
    trainer, solver = plan(fig5, "smoke", [0], ["hc-mappo-l", "greedy"], TINY)
    assert trainer["hyperparameters"] == ["multiplier_lr=0.25"] and "hyperparameters" not in solver
    assert (trainer["iterations"], trainer["slots"], solver["slots"]) == (1, 4, 4)
    assert run_id(trainer) != run_id(named[0])


@pytest.mark.parametrize("method", ["hc-mappo-l", "random-fill"])
def test_a_trainer_with_a_deployment_layer_is_also_read_with_only_the_deployment_drawn(tmp_path, method):
    config = plan(get_experiment("seed001-fig5"), "smoke", [0], [method], TINY)[0]
    assert execute_run(config, str(tmp_path))["status"] == "done"
    rundir = tmp_path / "runs" / run_id(config)
    rows = {row["mode"]: row for row in json.loads((rundir / "metrics.json").read_text())["rows"]}
    assert list(rows) == ["greedy", "sampled", "deployment_drawn"]
    assert json.loads((rundir / "train" / "config.json").read_text())["config"]["multiplier_lr"] == 0.25
    if method == "random-fill":  # its deployment always draws: greedy reads it with the deployment drawn too
        assert {**rows["deployment_drawn"], "mode": "greedy"} == rows["greedy"]
    else:  # seed 0's drawn deployment is not the greedy one, and the users then act greedily, not sampled
        assert len({rows[mode]["delay_s"] for mode in rows}) == 3


def test_a_solver_is_read_once(tmp_path):
    config = plan(get_experiment("seed001-fig5"), "smoke", [0], ["greedy"], TINY)[0]
    assert execute_run(config, str(tmp_path))["status"] == "done"
    rows = json.loads((tmp_path / "runs" / run_id(config) / "metrics.json").read_text())["rows"]
    assert [row["mode"] for row in rows] == ["solve"]


def test_an_outdir_of_other_budget_settings_is_refused(tmp_path):
    run_experiment("seed001-fig5", tmp_path, "smoke", [0], ["greedy"], spec=TINY)
    assert json.loads((tmp_path / "experiment.json").read_text())["spec"]["slots"] == 4
    before = (tmp_path / "results.csv").read_text()
    run_experiment("seed001-fig5", tmp_path, "smoke", [0], ["greedy"], resume=True, spec=TINY)  # the same: resumes
    for other in (None, Budget(**{**TINY.__dict__, "slots": 5})):
        with pytest.raises(EdgeprofError, match="other budget settings than these"):
            run_experiment("seed001-fig5", tmp_path, "smoke", [0], ["greedy"], resume=True, spec=other)
    assert (tmp_path / "results.csv").read_text() == before


def _row(method, mode, seed, delay, cost=1.0):
    return {"method": method, "mode": mode, "value": "", "seed": str(seed), "delay_s": str(delay), "cost": str(cost)}


HAND_MADE = [_row("hc-mappo-l", "greedy", seed, delay) for seed, delay in ((0, 1.0), (1, 2.0), (2, 4.0))] + [
    _row("h-mappo", "greedy", 0, 2.0), _row("h-mappo", "greedy", 1, 4.0), _row("h-mappo", "greedy", 2, 7.0),
    _row("h-mappo", "greedy", 3, 100.0),  # no hc-mappo-l run on seed 3: unpaired, left out
    _row("h-mappo", "sampled", 0, 50.0),  # no hc-mappo-l row in this mode: left out
    _row("greedy", "solve", 0, 9.0)]  # a solver's mode is none of the trainer's


def test_paired_differences_are_taken_on_the_same_seed_and_mode():
    differences = paired_differences(HAND_MADE, "hc-mappo-l", ("delay_s", "cost"))
    assert set(differences) == {("h-mappo", "greedy", "(one setting)")}
    mean, low, high, pairs = differences[("h-mappo", "greedy", "(one setting)")]["delay_s"]
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) x sd 1 / sqrt(3): differences 1, 2, 3
    assert (mean, pairs) == (2.0, 3) and low == pytest.approx(2.0 - half) and high == pytest.approx(2.0 + half)
    assert differences[("h-mappo", "greedy", "(one setting)")]["cost"][:3] == (0.0, 0.0, 0.0)


def test_the_report_lists_the_paired_differences_to_each_reference(tmp_path):
    (tmp_path / "experiment.json").write_text(json.dumps({"experiment": "seed001-fig5", "budget": "smoke"}))
    columns = ["method", "mode", "value", "seed", "cost", "delay_s", "energy_j", "privacy_cost", "success_rate"]
    with (tmp_path / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="1")
        writer.writeheader()
        writer.writerows(HAND_MADE)
    text = report_experiment(tmp_path)[0].read_text()
    section = text.split("## Minus hc-mappo-l's")[1].split("## Minus random-fill's")[0]
    assert "| h-mappo | greedy | (one setting) | 0 (0 .. 0) | 2 (-0.484 .. 4.48) |" in section
    assert "random-fill was not run" in text.split("## Minus random-fill's")[1]


def test_results_csv_is_rebuilt_while_the_sweep_runs(tmp_path, monkeypatch):
    monkeypatch.setattr("edgeprof.experiments.sweep.RESULTS_EVERY_S", 0.0)
    seen = []

    def progress(done, total, result):
        seen.append(len((tmp_path / "results.csv").read_text().splitlines()) - 1)  # rows, less the header

    run_experiment("seed001-fig5", tmp_path, "smoke", [0, 1], ["greedy"], spec=TINY, progress=progress)
    assert seen == [1, 2]


def test_the_report_gives_a_rate_the_binomial_interval_of_its_counts_and_old_results_the_student_t(tmp_path):
    run_experiment("seed001-fig5", tmp_path, "smoke", [0, 1, 2], ["greedy"], spec=TINY)
    with (tmp_path / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rates, requests = [float(row["success_rate"]) for row in rows], [int(row["requests"]) for row in rows]
    assert requests == [4 * 6] * 3  # 4 slots x 6 users x 1 environment

    def cell(text):  # the greedy line's success_rate cell, the last of the measured table
        line = next(line for line in text.split("## Measured")[1].splitlines() if line.startswith("| greedy |"))
        return line.split("|")[-2].strip()

    rate, low, high = rate_interval([r * n for r, n in zip(rates, requests, strict=True)], requests)
    assert rate == pytest.approx(sum(rates) / 3)
    assert cell(report_experiment(tmp_path)[0].read_text()) == f"{rate:.4g} ({format_interval(low, high, 3)})"
    assert (low, high) != pytest.approx(mean_interval(rates, (0.0, 1.0))[1:], abs=1e-3)  # the two can be told apart

    # a results.csv from before rows carried their counts: the Student-t interval clipped to [0, 1]
    with (tmp_path / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [column for column in rows[0] if column != "requests"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    mean, low, high = mean_interval(rates, (0.0, 1.0))
    assert cell(report_experiment(tmp_path)[0].read_text()) == f"{mean:.4g} ({format_interval(low, high, 3)})"
