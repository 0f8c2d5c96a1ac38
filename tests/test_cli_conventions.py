"""One meaning per option across commands: -o writes the format its extension names, --json prints JSON,
--quiet prints nothing but errors, old spellings still work with a one-line note, --version, `python -m
edgeprof`, and long work reports progress in a log."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import edgeprof
from edgeprof.data import shipped_dir

SMALL = ["--scenario", "small", "--slots", "2"]


def test_version_and_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "edgeprof", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"edgeprof {edgeprof.__version__}"
    helped = subprocess.run([sys.executable, "-m", "edgeprof", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "experiment" in helped.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["solve", "--solver", "greedy", *SMALL, "-o", "rows.txt"], "-o rows.txt: this writes CSV or JSON"),
        (["simulate", *SMALL, "-o", "m.csv"], "-o m.csv: this writes JSON; name the file *.json"),
        (["profile", "lenet7", "-o", "p.csv"], "-o p.csv: this writes JSON"),
        (["profile", "lenet7", "--plot", "p.pdf"], "--plot p.pdf: this writes PNG"),
        (["profile", "lenet7", "--csv", "p.json"], "--csv p.json: this writes CSV"),
    ],
)
def test_an_output_whose_extension_names_another_format_is_refused(run_cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_rows_are_csv_or_json_by_extension(run_cli, tmp_path):
    as_csv, as_json = tmp_path / "rows.csv", tmp_path / "rows.json"
    for path in (as_csv, as_json):
        assert run_cli("solve", "--solver", "greedy", *SMALL, "--seeds", "0,1", "-q", "-o", path).code == 0
    rows = json.loads(as_json.read_text())
    assert [row["seed"] for row in rows] == [0, 1]
    assert as_csv.read_text().splitlines()[0].split(",")[:3] == ["solver", "seed", "slots"]
    assert float(as_csv.read_text().splitlines()[1].split(",")[4]) == pytest.approx(rows[0]["cost"])


def test_the_success_rates_interval_is_the_binomial_interval_of_the_rows_requests(run_cli, tmp_path):
    from edgeprof.stats import rate_interval

    path = tmp_path / "rows.json"
    solved = run_cli("solve", "--solver", "greedy", *SMALL, "--seeds", "0,1,2", "--json", "-o", path)
    assert solved.code == 0, solved.err
    rows = json.loads(path.read_text())
    assert [row["requests"] for row in rows] == [2 * 6] * 3  # 2 slots x 6 users
    summary = json.loads(solved.out)["summary"]["success_rate"]
    expected = rate_interval([row["success_rate"] * row["requests"] for row in rows], [row["requests"] for row in rows])
    assert (summary["mean"], summary["ci95_low"], summary["ci95_high"]) == pytest.approx(expected)
    assert 0.0 < summary["ci95_low"] < summary["ci95_high"] <= 1.0


def test_json_flags_print_json(run_cli):
    solved = json.loads(run_cli("solve", "--solver", "greedy", *SMALL, "--seeds", "0,1", "--json").out)
    assert solved["summary"]["cost"]["n"] == 2 and len(solved["rows"]) == 2
    one = json.loads(run_cli("solve", "--solver", "greedy", *SMALL, "--seeds", "3", "--json").out)
    assert one["summary"]["delay_s"]["ci95_low"] is None  # no interval from one seed
    simulated = json.loads(run_cli("simulate", *SMALL, "--json").out)
    assert simulated["policy"] == "random" and "per_user" in simulated
    listed = json.loads(run_cli("scenario", "list", "--json").out)
    assert {preset["name"] for preset in listed["presets"]} >= {"paper", "small"}
    devices = json.loads(run_cli("devices", "--json").out)
    assert any(device["device"] == "cpu" and device["available"] for device in devices["devices"])


def test_old_spellings_work_with_a_note(run_cli, tmp_path):
    old = run_cli("simulate", *SMALL, "--policy", "greedy", "-o", tmp_path / "old.json", "-q")
    new = run_cli("simulate", *SMALL, "--solver", "greedy", "-o", tmp_path / "new.json", "-q")
    assert old.code == new.code == 0
    assert old.err.strip() == "edgeprof: note: simulate --policy is now --solver; --policy goes in the next release"
    assert new.err == "" and (tmp_path / "old.json").read_text() == (tmp_path / "new.json").read_text()


def test_quiet_prints_nothing_and_validate_quiet_prints_only_failures(run_cli, tmp_path):
    assert run_cli("solve", "--solver", "greedy", *SMALL, "-q").out == ""
    good = shipped_dir() / "lenet7.json"
    assert run_cli("validate", "-q", good).out == ""
    assert "valid edgeprof.profile/1" in run_cli("validate", good).out


def test_long_work_reports_progress_lines_in_a_log(run_cli):
    result = run_cli("solve", "--solver", "greedy", *SMALL, "--seeds", "0,1")  # stderr is not a terminal here
    assert result.code == 0
    assert result.err.strip().splitlines()[-1].startswith("edgeprof: greedy: seeds: 2/2 (")
