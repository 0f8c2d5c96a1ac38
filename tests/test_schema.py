"""The profile file contract: round trips, schema and invariant errors that name their JSON path."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from edgeprof.profiler.schema import ProfileError, load_profile, validate_profile, write_profile
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
    with pytest.raises(ProfileError, match=message):
        validate_profile(_broken(profile, edit))


def test_device_flops_must_not_decrease(profile):
    def swap(doc):
        points = doc["partition_points"]
        points[1]["device_flops"], points[2]["device_flops"] = points[2]["device_flops"], points[1]["device_flops"]
        for p in points[1:3]:
            p["edge_flops"] = doc["totals"]["flops"] - p["device_flops"]

    with pytest.raises(ProfileError, match=r"\$\.partition_points\[2\]\.device_flops: .* less than at z = 1"):
        validate_profile(_broken(profile, swap))


def test_corrupt_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema": "edgeprof.profile/1",')
    with pytest.raises(ProfileError, match=r"bad.json: not valid JSON \(line 1, column 33"):
        load_profile(path)


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
