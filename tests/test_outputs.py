"""Models whose output is a dict, a tuple or a dataclass, and models that read their input's shape late: every
partition point runs (prefix then suffix) to the whole model's output, is measured, and only what must cross
crosses."""

from __future__ import annotations

import pytest

from edgeprof.profiler import static
from edgeprof.profiler.counting import tensor_leaves
from edgeprof.profiler.measure import MeasureSettings, measure_profile
from edgeprof.profiler.models import load_model
from edgeprof.profiler.schema import validate_profile
from edgeprof.profiler.static import analyze, static_profile, verify_cuts

STRUCTURED = ["edgeprof_testmodels:dict_output", "edgeprof_testmodels:dataclass_output",
              "edgeprof_testmodels:tuple_output"]


@pytest.mark.parametrize("spec", STRUCTURED)
def test_structured_outputs_are_verified_and_measured_at_every_point(spec):
    analysis = analyze(load_model(spec, input_size=16))
    runnable = load_model(spec, input_size=16, device="cpu", seed=1)
    checks = verify_cuts(analysis, runnable, seed=1)
    assert len(checks) == len(analysis.cuts) >= 4 and all(check.ok for check in checks)
    assert max(check.max_abs_diff for check in checks) == 0.0  # the same ops on the same values
    profile = validate_profile(measure_profile(analysis, runnable, MeasureSettings(energy="none", warmup=0,
                                                                                   repeats=2, threads=1)))
    assert all(point["edge_latency_ms"]["median"] >= 0 for point in profile["partition_points"])
    outputs = tensor_leaves(runnable.module(*runnable.example_inputs()))
    assert profile["model"]["output_bytes"] == sum(t.numel() * t.element_size() for t in outputs)


def test_every_tensor_of_a_dict_output_is_compared(monkeypatch):
    """A split that got the logits right but a second output wrong fails verification at every point."""
    runnable = load_model("edgeprof_testmodels:dict_output", input_size=16, device="cpu")
    analysis = analyze(load_model("edgeprof_testmodels:dict_output", input_size=16))
    split_then_spoil = static.run_split

    def spoiled(prefix, suffix, *inputs):
        output = split_then_spoil(prefix, suffix, *inputs)
        return {**output, "features": output["features"] + 0.5}

    monkeypatch.setattr(static, "run_split", spoiled)
    checks = verify_cuts(analysis, runnable)
    assert [check.ok for check in checks] == [False] * len(checks)
    assert all(check.max_abs_diff == pytest.approx(0.5) for check in checks)


def test_a_shape_read_late_does_not_keep_the_input_alive():
    profile = static_profile(analyze(load_model("edgeprof_testmodels:resize_to_input", input_size=16)))
    points = profile["partition_points"]
    input_bytes = profile["model"]["input_bytes"]
    interior = points[1:-1]
    assert interior and all(point["single_tensor"] for point in interior)
    assert all(point["upload_bytes"] < input_bytes for point in interior)
    assert all(point["carried"] == ["getitem"] for point in interior)  # (H, W) rides along, free
    assert [t["name"] for t in interior[0]["tensors"]] == ["stage1.2"]


def test_lraspp_segmentation_at_224_has_clean_interior_points_verified_at_every_point():
    spec = "torchvision.models.segmentation:lraspp_mobilenet_v3_large"
    analysis = analyze(load_model(spec, input_size=224, model_args={"weights_backbone": None}))
    profile = static_profile(analysis)
    points = profile["partition_points"]
    assert len(points) - 2 >= 8  # interior clean points (none before: the image crossed every cut)
    assert all(point["single_tensor"] for point in points)
    assert max(point["upload_bytes"] for point in points[1:-1]) == 3_211_264  # 1x64x112x112, not +602,112
    assert points[5]["after"] == "backbone.2" and points[5]["upload_bytes"] == 1 * 24 * 56 * 56 * 4
    runnable = load_model(spec, input_size=224, model_args={"weights_backbone": None}, device="cpu")
    checks = verify_cuts(analysis, runnable)
    assert [check.ok for check in checks] == [True] * len(points)
