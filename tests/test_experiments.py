"""`edgeprof experiment`: definitions, run ids, resumable sweeps that give the same results.csv on every backend
and after kills, reports against the papers, and one-line refusals."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeprof.experiments.definitions import BUDGETS, EXPERIMENTS, get_experiment
from edgeprof.experiments.sweep import plan, run_id

pytestmark = pytest.mark.slow  # minutes of CPU: CI runs it, `pytest` alone does not

SOLVERS = "greedy,edge-only,local-only"  # fast methods for the backend and kill tests


def _one_line(result, fragment):
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert fragment in result.err, result.err


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_definition_plans_runs_at_every_budget():
    for experiment in EXPERIMENTS.values():
        for budget in BUDGETS:
            runs = plan(experiment, budget)
            assert len(runs) == len(experiment.methods) * len(experiment.points(budget)) * \
                experiment.budgets[budget].seeds
            assert len({run_id(config) for config in runs}) == len(runs)  # every run its own id
    fig11 = get_experiment("seed001-fig11")
    assert [config["value"] for config in plan(fig11, "paper", [0], ["greedy"])] == [2.0, 2.5, 3.0, 3.5, 4.0]


def test_run_ids_depend_on_the_config_only():
    config = plan(get_experiment("seed001-fig11"), "smoke", [0], ["greedy"])[0]
    script = (f"import json\nfrom edgeprof.experiments.sweep import run_id\n"
              f"print(run_id(json.loads({json.dumps(json.dumps(config))})))")
    other_process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert other_process.stdout.strip() == run_id(config) == run_id(dict(reversed(list(config.items()))))
    assert run_id({**config, "seed": 1}) != run_id(config)


def _sweep(run_cli, outdir, *extra):
    result = run_cli("experiment", "run", "seed001-fig11", "--methods", SOLVERS, "--seeds", "0,1", "-o", outdir,
                     *extra)
    assert result.code == 0, result.err
    return (outdir / "results.csv").read_text()


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_backends_give_the_same_results(run_cli, tmp_path, backend):
    if backend == "ray":
        pytest.importorskip("ray", reason="the ray backend needs the optional ray extra")
    serial = _sweep(run_cli, tmp_path / "serial")
    assert len(serial.splitlines()) == 1 + 3 * 5 * 2  # header, 3 solvers x 5 limits x 2 seeds
    assert _sweep(run_cli, tmp_path / backend, "--backend", backend, "--workers", "2") == serial


def test_a_killed_driver_and_a_killed_training_run_resume_to_the_same_results(run_cli, tmp_path):
    args = ["experiment", "run", "seed001-fig5", "--methods", "greedy,h-mappo", "--seeds", "0,1"]
    whole = tmp_path / "whole"
    assert run_cli(*args, "-o", whole).code == 0
    expected = (whole / "results.csv").read_text()

    killed = tmp_path / "killed"
    driver = subprocess.Popen([sys.executable, "-c", "from edgeprof.cli import main; main()", *args, "-o",
                               str(killed), "-q"], start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list(killed.glob("runs/*/metrics.json"))) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert len(list(killed.glob("runs/*/metrics.json"))) < 4  # stopped mid-sweep
    assert run_cli(*args, "-o", killed).code == 2  # a used folder needs --resume
    assert run_cli(*args, "-o", killed, "--resume").code == 0
    assert (killed / "results.csv").read_text() == expected

    # a training run stopped after its first iteration (a checkpoint, no metrics) resumes from its checkpoint
    from edgeprof.experiments.sweep import _scenario
    from edgeprof.rl.runs import train
    from edgeprof.rl.trainers import get_trainer

    partial = tmp_path / "partial"
    assert run_cli(*args[:3], "--methods", "greedy", "--seeds", "0,1", "-o", partial).code == 0
    config = next(c for c in plan(get_experiment("seed001-fig5"), "smoke", [0, 1], ["h-mappo"]) if c["seed"] == 1)
    scenario, workload = _scenario(config)
    trainer_config = get_trainer("h-mappo").make_config(**{**config["train_settings"], "iterations": 1, "seed": 1})
    train_folder = partial / "runs" / run_id(config) / "train"
    train_folder.parent.mkdir(parents=True)
    train(trainer_config, scenario, workload, train_folder)
    assert run_cli(*args, "-o", partial, "--resume").code == 0
    assert (partial / "results.csv").read_text() == expected
    assert len((train_folder / "log.csv").read_text().splitlines()) == 1 + 2  # iteration 1 kept, 2 trained now


def test_report_puts_measured_beside_the_paper(run_cli, tmp_path):
    outdir = tmp_path / "fig6"
    assert run_cli("experiment", "run", "seed001-fig6", "--methods", "greedy,edge-only,h-mappo", "--seeds", "0",
                   "-o", outdir).code == 0
    reported = run_cli("experiment", "report", outdir)
    assert reported.code == 0, reported.err
    text = (outdir / "report.md").read_text()
    assert "| hc-mappo-l | lowest_cost_share" in text and "not run" in text  # hc-mappo-l was left out
    shares = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in text.splitlines()
              if line.startswith("| ") and line.count("|") == 3 and "share" not in line and "---" not in line}
    assert set(shares) == {"greedy", "edge-only", "h-mappo"} and sum(shares.values()) == pytest.approx(1.0)
    assert (outdir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _rows(outdir / "results.csv")
    assert {(row["method"], row["mode"]) for row in rows} == {("greedy", "solve"), ("edge-only", "solve"),
                                                             ("h-mappo", "greedy"), ("h-mappo", "sampled"),
                                                             ("h-mappo", "deployment_drawn")}


def test_dry_run_lists_the_runs_and_writes_nothing(run_cli, tmp_path):
    result = run_cli("experiment", "run", "seed001-fig7", "--dry-run", "-o", tmp_path / "none")
    assert result.code == 0 and len(result.out.splitlines()) == 36 and "to run" in result.out
    assert not (tmp_path / "none").exists()


def test_bad_input_is_one_line_and_writes_nothing(run_cli, tmp_path):
    _one_line(run_cli("experiment", "run", "seed001-fig99", "-o", tmp_path / "a"), "unknown experiment 'seed001-fig99'")
    _one_line(run_cli("experiment", "run", "seed001-fig11", "--methods", "oracle", "-o", tmp_path / "a"),
              "seed001-fig11 has no method oracle")
    _one_line(run_cli("experiment", "run", "seed001-fig11", "-o", "/proc/sweep"),
              "cannot create experiment folder /proc/sweep")
    (tmp_path / "afile").write_text("x")
    _one_line(run_cli("experiment", "run", "seed001-fig11", "-o", tmp_path / "afile" / "sweep"),
              "cannot create experiment folder")
    _one_line(run_cli("experiment", "run", "seed001-fig11", "--address", "1.2.3.4:1", "-o", tmp_path / "a"),
              "--address is for the ray backend")
    assert not (tmp_path / "a").exists()
    other = tmp_path / "other"
    assert run_cli("experiment", "run", "seed001-fig11", "--methods", "greedy", "--seeds", "0", "-o", other).code == 0
    _one_line(run_cli("experiment", "run", "seed001-fig13", "--resume", "-o", other),
              "holds experiment seed001-fig11 at budget smoke, not seed001-fig13 at smoke")
    _one_line(run_cli("experiment", "report", tmp_path / "nothing"), "not an experiment folder")


def test_an_unreachable_ray_address_is_one_line(run_cli, tmp_path):
    pytest.importorskip("ray", reason="the ray backend needs the optional ray extra")
    _one_line(run_cli("experiment", "run", "seed001-fig11", "--methods", "greedy", "--seeds", "0", "--backend", "ray",
                      "--address", "127.0.0.1:1", "-o", tmp_path / "r"),
              "cannot reach Ray at 127.0.0.1:1: Connection refused")
