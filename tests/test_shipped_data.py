"""The shipped profiles validate, reproduce their totals from the profiler and carry leakage everywhere."""

from __future__ import annotations

import pytest

from edgeprof.data import shipped_dir, shipped_profile
from edgeprof.data.build import SHIPPED_MODELS
from edgeprof.errors import EdgeprofError
from edgeprof.profiler.static import profile_model

SHIPPED = sorted(path.stem for path in shipped_dir().glob("*.json"))


def test_only_zoo_models_are_shipped():
    assert set(SHIPPED) <= set(SHIPPED_MODELS)
    assert SHIPPED, "no shipped profiles: run `edgeprof data build`"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_matches_the_profiler(name):
    shipped = shipped_profile(name)  # validated on read
    fresh = profile_model(name)
    assert shipped["totals"] == fresh["totals"]
    assert shipped["model"]["params"] == fresh["model"]["params"]
    assert [p["upload_bytes"] for p in shipped["partition_points"]] == [p["upload_bytes"] for p in
                                                                        fresh["partition_points"]]
    points = shipped["partition_points"]
    assert all(0 <= p["leakage"]["ssim"] <= 1 for p in points[1:-1])
    assert points[0]["leakage"]["ssim"] == 1.0 and points[-1]["leakage"]["ssim"] == 0.0
    provenance = shipped["provenance"]["leakage"]
    assert provenance["weights"] == "random init" and provenance["input_size"] <= 64
    assert str(provenance["input_size"]) + " px" in points[1]["leakage"]["source"]


def test_unknown_shipped_profile_names_what_is_shipped():
    with pytest.raises(EdgeprofError, match="no shipped profile for 'alexnet'"):
        shipped_profile("alexnet")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", ""], "--models names no model"),
        (["--models", " , "], "--models names no model"),
        (["--models", "nosuch"], "unknown model(s) nosuch: `edgeprof models` lists them"),
        (["--models", "lenet7", "-o", "FILE"], "--output FILE is a file; give a folder"),
    ],
)
def test_data_build_refuses_before_making_anything(run_cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x")
    result = run_cli("data", "build", "--workdir", "work", *args)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]
