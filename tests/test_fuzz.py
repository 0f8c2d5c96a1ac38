"""Fuzzing the inputs users hand to edgeprof: a real profile (the shipped lenet7) and a real scenario (the
`small` preset), mutated by a seeded mutator, and every training hyperparameter. Every call must end with exit 0
and finite numbers in its outputs, or exit 2 and one line: never a traceback, never NaN or Infinity."""

from __future__ import annotations

import copy
import csv
import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprof.data import shipped_dir
from edgeprof.rl.hc_mappo_l import _NOT_HYPERPARAMETERS, TrainConfig, make_config, parse_hyperparameters
from edgeprof.rl.hyperparameters import tunable
from edgeprof.sim.scenario import load_scenario

pytestmark = pytest.mark.slow  # minutes of CPU: CI runs it, `pytest` alone does not

CASES = 200
ODD_VALUES = [None, True, "x", "", [], {}, -1, 0, 1, -0.4, 1.7, 1e308, -1e308, 10 ** 400, 2 ** 63, 3.5, "NaN"]
ODD_TOML = ["nan", "inf", "-inf", "-1", "0", "1e309", "1e12", "10000000000", "-5.5", '"word"', "true", "[]",
            "[1]", "[-1, 5]", "[5, 1]", "[0, 0]", "[1e300, 1e301]", '["a", "a"]', "{}", "0.5"]


def _leaves(doc, path=()):
    """Every (path, value) of a JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _leaves(value, (*path, index))
    yield path, doc


def _mutant(base: dict, text: str, rng: random.Random) -> str:
    """One mutated profile text: a leaf replaced, a key deleted, NaN/Infinity tokens, or damaged bytes."""
    kind = rng.choice(["replace", "replace", "replace", "delete", "token", "bytes"])
    if kind == "bytes":
        position = rng.randrange(len(text))
        return text[:position] + rng.choice(["\udcff", "é", "\x00", "}", ""]) + text[position + rng.randrange(3):]
    doc = copy.deepcopy(base)
    path, _ = rng.choice([leaf for leaf in _leaves(doc) if leaf[0]])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if kind == "delete":
        del parent[path[-1]]
        return json.dumps(doc)
    parent[path[-1]] = "__TOKEN__" if kind == "token" else rng.choice(ODD_VALUES)
    return json.dumps(doc).replace('"__TOKEN__"', rng.choice(["NaN", "Infinity", "-Infinity"]))


def _check_outputs(result, outputs: list[Path]) -> None:
    assert result.code in (0, 2), (result.code, result.err)
    if result.code == 2:
        assert len(result.err.strip().splitlines()) == 1 and result.err.startswith("edgeprof: error: "), result.err
        return
    for path in outputs:
        if path.suffix == ".json":
            json.loads(path.read_text(), parse_constant=lambda name, path=path: pytest.fail(f"{path} holds {name}"))
        elif path.suffix == ".csv":
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    for value in row.values():
                        try:
                            number = float(value)
                        except ValueError:
                            continue
                        assert math.isfinite(number), (path, row)


def test_mutated_profiles_never_crash_or_poison_results(run_cli, tmp_path):
    base_path = shipped_dir() / "lenet7.json"
    text = base_path.read_text()
    base = json.loads(text)
    rng = random.Random(2026)
    passed = 0
    for case in range(CASES):
        mutant = tmp_path / f"m{case}.json"
        mutant.write_bytes(_mutant(base, text, rng).encode("utf-8", "surrogateescape"))
        result = run_cli("validate", mutant)
        _check_outputs(result, [])
        if result.code != 0:
            continue
        passed += 1
        out = tmp_path / f"split{case}.json"
        _check_outputs(run_cli("split", mutant, base_path, "--uplink", "20Mbps", "--device-flops", "1GFLOPS",
                               "--edge-flops", "10GFLOPS", "-q", "-o", out), [out])
        sim = tmp_path / f"sim{case}.json"
        _check_outputs(run_cli("simulate", "--scenario", "small", "--set", "services.models=['lenet7']",
                               "--set", f'services.profiles={{lenet7 = "{mutant}"}}', "--slots", "2", "-q",
                               "-o", sim), [sim])
    assert 0 < passed < CASES  # the mutator makes both kinds


def test_mutated_scenarios_never_crash_or_poison_results(run_cli, tmp_path):
    fields = load_scenario("small").fields
    keys = [f"{section}.{name}" for section, values in fields.items() for name in values
            if f"{section}.{name}" not in ("services.models", "services.profiles")]  # profiles: the test above
    rng = random.Random(7)
    passed = 0
    for case in range(CASES):
        overrides = [f"{key}={rng.choice(ODD_TOML)}" for key in rng.sample(keys, rng.choice([1, 1, 2]))]
        arguments = [item for override in overrides for item in ("--set", override)]
        shown = run_cli("scenario", "show", "small", *arguments)
        _check_outputs(shown, [])
        if shown.code != 0:
            continue
        passed += 1
        rows = tmp_path / f"rows{case}.csv"
        _check_outputs(run_cli("solve", "--scenario", "small", *arguments, "--solver", "greedy", "--slots", "2",
                               "--seeds", "0", "-q", "-o", rows), [rows])
    assert 0 < passed < CASES


HYPERPARAMETERS = sorted(tunable(TrainConfig, _NOT_HYPERPARAMETERS))
ODD_NUMBERS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e-300", "5", "1e30", "-0.5", "0.5", "2", "x"])


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.sampled_from(HYPERPARAMETERS), ODD_NUMBERS), min_size=1, max_size=3))
def test_hyperparameters_are_accepted_only_within_their_ranges(run_cli, tmp_path_factory, pairs):
    """Every --hparam value is refused with one line before any folder is made, or makes a valid config."""
    rundir = tmp_path_factory.mktemp("run") / "run"
    strings = [f"{name}={value}" for name, value in pairs]
    try:
        config = make_config("hc-mappo-l", **parse_hyperparameters(strings))
    except Exception as error:  # noqa: BLE001 (the assertion names what escaped)
        assert type(error).__name__ == "EdgeprofError", (strings, error)
        result = run_cli("train", "hc-mappo-l", "--scenario", "small", "-o", rundir,
                         *[item for pair in strings for item in ("--hparam", pair)])
        _check_outputs(result, [])
        assert result.code == 2 and not rundir.exists()
        return
    for field in ("learning_rate", "gamma", "gae_lambda", "clip_coef", "multiplier_max"):
        assert math.isfinite(getattr(config, field))
    assert 0 <= config.gamma <= 1 and config.learning_rate > 0 and config.policy.user_hidden >= 1
