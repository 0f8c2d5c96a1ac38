"""The profile file contract: round trips, schema and invariant errors that name their JSON path."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest

from edgeprof.profiler import schema
from edgeprof.profiler.schema import (
    ProfileError,
    load_profile,
    profile_problems,
    validate_profile,
    write_profile,
)
from edgeprof.profiler.static import profile_model


@pytest.fixture(scope="module")
def profile():
    return profile_model("lenet7")


def test_write_then_load_round_trips(profile, tmp_path):
    path = tmp_path / "p.json"
    write_profile(profile, path)
    assert load_profile(path) == json.loads(json.dumps(profile))
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]  # no temporary file left behind


def _broken(profile, edit):
    doc = copy.deepcopy(profile)
    edit(doc)
    return doc


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("schema"), r"\$\.schema: missing"),
        (lambda d: d.update(schema="edgeprof.profile/2"), r"\$\.schema: 'edgeprof.profile/2' is not supported"),
        (lambda d: d["partition_points"][2].update(upload_bytes="12"), r"\$\.partition_points\[2\]\.upload_bytes"),
        (lambda d: d["model"].pop("params"), r"\$\.model: 'params' is a required property"),
        (lambda d: d["layers"][1].update(flops=d["layers"][1]["flops"] + 2, macs=d["layers"][1]["macs"] + 1),
         r"\$\.totals\.flops: .* sum over layers"),
        (lambda d: d["partition_points"][3].update(edge_flops=5), r"\$\.partition_points\[3\]\.edge_flops"),
        (lambda d: d["partition_points"][0].update(upload_bytes=1, tensors=[dict(d["partition_points"][0]["tensors"][0],
                                                                                  bytes=1)]),
         r"\$\.partition_points\[0\]\.upload_bytes: z = 0 uploads the input"),
        (lambda d: d["model"].update(dtype="float128"), r"\$\.model\.dtype"),
        (lambda d: d["counting"].update(mac_to_flop=1), r"\$\.counting\.mac_to_flop"),
    ],
)
def test_broken_profiles_name_the_json_path(profile, edit, message):
    with pytest.raises(ProfileError):
        validate_profile(_broken(profile, edit))
    problems = profile_problems(_broken(profile, edit))
    assert any(re.match(message, problem) for problem in problems), problems


def test_device_flops_must_not_decrease(profile):
    def swap(doc):
        points = doc["partition_points"]
        points[1]["device_flops"], points[2]["device_flops"] = points[2]["device_flops"], points[1]["device_flops"]
        for p in points[1:3]:
            p["edge_flops"] = doc["totals"]["flops"] - p["device_flops"]

    problems = profile_problems(_broken(profile, swap))
    assert any(re.match(r"\$\.partition_points\[2\]\.device_flops: .* less than at z = 1", p) for p in problems)
    assert any(p.startswith("$.partition_points[1].device_flops: ") and "!= the FLOPs of layers 1..1" in p
               for p in problems)


def _recomputed(profile):
    """Hand edits that keep the schema but break what the file's own numbers say."""
    points = profile["partition_points"]
    return [
        # a tensor's bytes not prod(shape) x itemsize, with upload_bytes following it
        (lambda d: d["partition_points"][2]["tensors"][0].update(bytes=7) or d["partition_points"][2].update(
            upload_bytes=7), ("$.partition_points[2].tensors[0].bytes: 7 != prod(shape) x itemsize = "
                             f"{points[2]['upload_bytes']}")),
        # device_flops that are not the running sum of the layers' FLOPs (edge_flops kept consistent)
        (lambda d: d["partition_points"][1].update(device_flops=points[1]["device_flops"] + 2,
                                                   edge_flops=points[1]["edge_flops"] - 2),
         (f"$.partition_points[1].device_flops: {points[1]['device_flops'] + 2} != the FLOPs of layers 1..1 = "
         f"{points[1]['device_flops']}")),
        # an implausible parameter size
        (lambda d: d["partition_points"][2].update(device_param_bytes=10**12),
         (f"$.partition_points[2].device_param_bytes: {10**12} is more than the model's param_bytes = "
         f"{profile['model']['param_bytes']}")),
        (lambda d: d["model"].update(param_bytes=3), "$.model.param_bytes: 3 bytes for "),
        (lambda d: d["partition_points"][0]["tensors"][0].update(dtype="float8"),
         "$.partition_points[0].tensors[0].dtype: unknown dtype 'float8'"),
        (lambda d: d["partition_points"][-1].update(edge_param_bytes=4), "$.partition_points[5].edge_param_bytes"),
        (lambda d: d["model"].update(params_used=d["model"]["params"] + 1), "$.model.params_used: "),
        (lambda d: d["partition_points"][2].update(single_tensor=True,
                                                   tensors=[*d["partition_points"][2]["tensors"]] * 2,
                                                   upload_bytes=2 * points[2]["upload_bytes"]),
         "$.partition_points[2].single_tensor: true, but 2 tensors cross"),
    ]


def test_validate_recomputes_every_invariant_from_the_file(profile):
    for edit, message in _recomputed(profile):
        problems = profile_problems(_broken(profile, edit))
        assert any(problem.startswith(message) for problem in problems), (message, problems)
        assert all("\n" not in problem for problem in problems)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_numbers_must_be_finite(profile, bad, tmp_path):
    doc = _broken(profile, lambda d: d["layers"][0].update(latency_ms={"median": bad, "p10": 0, "p90": 1,
                                                                       "min": 0}))
    assert profile_problems(doc)[0] == f"$.layers[0].latency_ms.median: {bad} is not a finite number"
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(doc))  # Python writes NaN and Infinity; strict JSON has no such numbers
    with pytest.raises(ProfileError, match="not valid JSON .* is not a JSON number"):
        load_profile(path)


def test_measured_invariants(profile):
    measured = copy.deepcopy(profile)
    measured["device"] = {"kind": "cpu", "name": "x", "whole_model_latency_ms": {"median": 2.0, "p10": 1.0,
                                                                                 "p90": 3.0, "min": 0.5},
                          "flops_per_s": 1.0, "whole_model_energy_mj": {"total": 1.0, "dynamic": 0.5},
                          "joules_per_flop": 1.0}
    measured["partition_points"][1]["device_energy_mj"] = {"total": 1.0, "dynamic": 2.0}
    measured["partition_points"][1]["device_latency_ms"] = {"median": 1.0, "p10": 2.0, "p90": 3.0, "min": 0.0}
    problems = profile_problems(measured)
    flops = profile["totals"]["flops"]
    assert problems == [
        "$.partition_points[1].device_latency_ms: min 0.0 <= p10 2.0 <= median 1.0 <= p90 3.0 does not hold",
        "$.partition_points[1].device_energy_mj.dynamic: 2.0 is more than the total 1.0",
        f"$.device.flops_per_s: 1.0 != totals.flops / whole-model median latency = {flops / 2e-3:.6g}",
        f"$.device.joules_per_flop: 1.0 != whole-model dynamic energy / totals.flops = {0.5e-3 / flops:.6g}",
    ]


def test_old_profiles_without_the_new_optional_keys_still_validate(profile):
    old = copy.deepcopy(profile)
    for key in ("inputs", "params_used", "param_bytes_used"):
        old["model"].pop(key)
    for point in old["partition_points"]:
        point.pop("carried", None)
    assert profile_problems(old) == []


def test_non_utf8_file_is_one_line(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ProfileError, match=r"garbage.json is not UTF-8 text"):
        load_profile(path)


def test_corrupt_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema": "edgeprof.profile/1",')
    with pytest.raises(ProfileError, match=r"bad.json: not valid JSON \(line 1, column 33"):
        load_profile(path)


def test_a_text_found_valid_is_not_validated_again_but_a_changed_one_is(profile, tmp_path, monkeypatch):
    checked = []

    def counting(doc):
        checked.append(doc)
        return validate_profile(doc)

    monkeypatch.setattr(schema, "validate_profile", counting)
    doc = _broken(profile, lambda d: d.update(created="2001-02-03T04:05:06+00:00"))  # a text no other test wrote
    path, same_text = tmp_path / "p.json", tmp_path / "copy.json"
    write_profile(doc, path)
    same_text.write_bytes(path.read_bytes())
    checked.clear()  # writing validated it; reading has not yet
    first = load_profile(path)
    assert len(checked) == 1 and first == json.loads(json.dumps(doc))
    first["layers"].clear()  # the caller owns what it got: the next read is parsed anew
    assert load_profile(path) == load_profile(same_text) == json.loads(json.dumps(doc))
    assert len(checked) == 1  # keyed on the text, whatever the path
    broken = _broken(doc, lambda d: d["totals"].update(flops=1))
    path.write_text(json.dumps(broken))
    with pytest.raises(ProfileError, match=r"p.json: \$\.totals\.flops"):
        load_profile(path)
    assert len(checked) == 2


@pytest.mark.parametrize("module", ["edgeprof.profiler.schema", "edgeprof.sim.split",
                                    "edgeprof.optimize.split_advisor"])
def test_profile_readers_do_not_import_torch(module):
    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_write_refuses_an_invalid_profile_and_leaves_no_file(profile, tmp_path):
    path = tmp_path / "p.json"
    with pytest.raises(ProfileError):
        write_profile(_broken(profile, lambda d: d["totals"].update(flops=1)), path)
    assert list(tmp_path.iterdir()) == []


def _as_paper_table(profile):
    """The profile as a paper's hand table would be written: source `paper`, 8-byte values (CERL's)."""
    doc = copy.deepcopy(profile)
    doc["model"].update(source="paper", dtype="float64", input_bytes=2 * doc["model"]["input_bytes"])
    for entry in doc["model"].get("inputs", []):
        entry.update(dtype="float64", bytes=2 * entry["bytes"])
    for point in doc["partition_points"]:
        point["upload_bytes"] *= 2
        for tensor in point["tensors"]:
            tensor.update(dtype="float64", bytes=2 * tensor["bytes"])
    return doc


def test_a_paper_table_at_float64_with_operating_points_validates(profile):
    doc = _as_paper_table(profile)
    points = len(doc["partition_points"])
    doc["device"] = {"kind": "jetson", "name": "TX2", "operating_points": [
        {"clock_hz": 1.3e9, "label": "max", "device_latency_ms": [0.1 * z for z in range(points)]},
        {"clock_hz": 0.85e9, "device_latency_ms": [0.15 * z for z in range(points)],
         "device_energy_mj": [0.2 * z for z in range(points)]}]}
    assert validate_profile(doc) is doc
    doc["device"]["operating_points"][1]["device_energy_mj"].pop()
    with pytest.raises(ProfileError, match=rf"operating_points\[1\]\.device_energy_mj: {points - 1} values for "
                                           rf"{points} partition points"):
        validate_profile(doc)
    float64_bytes = _as_paper_table(profile)
    float64_bytes["model"]["input_bytes"] //= 2
    with pytest.raises(ProfileError, match="input_bytes"):
        validate_profile(float64_bytes)
