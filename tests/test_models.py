"""Resolving MODEL: built-in names, imports, saved files, weights, and the errors a user can hit."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch
import torchvision
from edgeprof_testmodels import tiny_cnn

from edgeprof.errors import EdgeprofError
from edgeprof.profiler.models import (
    RANDOM_INIT,
    default_input_size,
    list_models,
    load_model,
)
from edgeprof.profiler.static import analyze, profile_model, static_profile, verify_cuts


def test_list_models_has_the_zoo_and_every_torchvision_classifier():
    entries = {e.name: e for e in list_models()}
    assert {"lenet7", "lenet9", "lenet12", "cerl-net", "vgg16", "mobilenet_v3_large", "vit_b_16"} <= set(entries)
    assert entries["lenet9"].input_size == 32 and entries["cerl-net"].input_size == 64
    assert entries["inception_v3"].input_size == 299 and entries["resnet50"].input_size == 224
    assert entries["mobilenet_v3_large"].papers == "seed 002"


@pytest.mark.parametrize(("name", "size"), [("lenet7", 32), ("lenet12", 32), ("cerl-net", 64), ("inception_v3", 299)])
def test_default_input_sizes(name, size):
    assert default_input_size(name) == size
    assert profile_model(name)["model"]["input_shape"] == [1, 3, size, size]


def test_profile_says_random_init_without_weights():
    model = profile_model("lenet9")["model"]
    assert (model["weights"], model["weights_sha256"], model["source"]) == (RANDOM_INIT, None, "zoo")


def test_state_dict_weights_are_loaded_and_fingerprinted(tmp_path):
    torch.manual_seed(3)
    trained = load_model("lenet7", device="cpu", seed=3).module
    path = tmp_path / "lenet7.pth"
    torch.save({"state_dict": trained.state_dict()}, path)
    loaded = load_model("lenet7", weights=str(path), device="cpu", seed=99)
    assert all(torch.equal(a, b) for a, b in zip(loaded.module.state_dict().values(), trained.state_dict().values(),
                                                 strict=True))
    profile = profile_model("lenet7", weights=str(path))["model"]
    assert profile["weights"] == str(path)
    assert profile["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_that_do_not_fit_are_refused(tmp_path):
    path = tmp_path / "lenet9.pth"
    torch.save(load_model("lenet9", device="cpu").module.state_dict(), path)
    with pytest.raises(EdgeprofError, match="do not fit model lenet7"):
        load_model("lenet7", weights=str(path))


def test_unreadable_weights_file(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(EdgeprofError, match="cannot read weights file"):
        load_model("lenet7", weights=str(path))


def test_torchvision_weights_name_outside_the_cache_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(EdgeprofError, match="not in the local cache .* cannot be downloaded"):
        load_model("resnet18", weights="IMAGENET1K_V1")
    with pytest.raises(EdgeprofError, match="known: IMAGENET1K_V1"):
        load_model("resnet18", weights="IMAGENET9K")


def test_torchvision_weights_name_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(5)
    weights = load_model("resnet18", device="cpu").module.state_dict()
    torch.save(weights, tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    model = load_model("resnet18", weights="ResNet18_Weights.IMAGENET1K_V1", device="cpu")
    assert model.weights == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    assert torch.equal(model.module.fc.weight, weights["fc.weight"])


def test_unknown_model_suggests_close_names():
    with pytest.raises(EdgeprofError, match="did you mean resnet18"):
        load_model("resnet81")


def test_import_factory():
    profile = profile_model("edgeprof_testmodels:tiny_cnn", input_size=16)
    assert profile["model"]["source"] == "import"
    assert profile["totals"]["macs"] == 16 * 16 * 8 * 27 + 8 * 8 * 16 * 72 + 16 * 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("edgeprof_testmodels:not_a_module", "returned str, not an nn.Module"),
        ("edgeprof_testmodels:missing", "has no callable named missing"),
        ("no_such_package_xyz:factory", "cannot import no_such_package_xyz"),
        ("edgeprof_testmodels:broken_factory", "this factory always fails"),
        ("missing/model.pt", "model file missing/model.pt does not exist"),
    ],
)
def test_import_errors(spec, message):
    with pytest.raises(EdgeprofError, match=message):
        load_model(spec)


def test_torchscript_file_is_converted_with_torch_export_and_verifies(tmp_path):
    path = tmp_path / "tiny.ts"
    with pytest.warns(FutureWarning):
        torch.jit.script(tiny_cnn().eval()).save(str(path))
    profile = profile_model(str(path), input_size=16)
    assert profile["graph"]["method"] == "export"
    assert profile["totals"]["macs"] == profile_model("edgeprof_testmodels:tiny_cnn", input_size=16)["totals"]["macs"]
    runnable = load_model(str(path), input_size=16, device="cpu")
    assert all(check.ok for check in verify_cuts(analyze(runnable), runnable))


@pytest.mark.parametrize("how", ["script", "trace"])
def test_a_scripted_or_traced_resnet18_is_profiled_correctly(tmp_path, how):
    """Not its children in order (forward flattens between avgpool and fc): torch's TorchScript converter gives
    the real graph, whose counts equal the eager model's and whose every point reproduces it."""
    torch.manual_seed(0)
    eager = torchvision.models.resnet18().eval()
    path = tmp_path / f"resnet18-{how}.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        scripted = torch.jit.script(eager) if how == "script" else torch.jit.trace(eager, torch.randn(1, 3, 64, 64))
    scripted.save(str(path))
    runnable = load_model(str(path), input_size=64, device="cpu")
    analysis = analyze(runnable)
    profile = static_profile(analysis)
    reference = profile_model("resnet18", input_size=64)
    assert profile["graph"]["method"] == "export"
    assert profile["totals"] == reference["totals"]
    assert [p["upload_bytes"] for p in profile["partition_points"]] == [
        p["upload_bytes"] for p in reference["partition_points"]]
    assert all(check.ok for check in verify_cuts(analysis, runnable))


def test_torch_export_takes_over_where_fx_fails():
    profile = profile_model("edgeprof_testmodels:shape_branch", input_size=16)
    assert profile["graph"]["method"] == "export"
    assert profile["graph"]["warnings"][0].startswith(
        "traced with torch.export after torch.fx: symbolically traced variables cannot be used as inputs to control "
        "flow (at edgeprof_testmodels.py:")
    assert profile["totals"]["macs"] == 16 * 16 * 4 * 27 + 4 * 8 * 8 * 2
    runnable = load_model("edgeprof_testmodels:shape_branch", input_size=16, device="cpu")
    analysis = analyze(runnable)
    assert len(analysis.cuts) >= 3 and all(check.ok for check in verify_cuts(analysis, runnable))


def test_a_model_no_tracer_can_trace_is_refused_unless_its_children_reproduce_it():
    with pytest.raises(EdgeprofError, match=r"edgeprof_testmodels:untraceable cannot be profiled: no tracer can "
                                            r"trace it .* \(at edgeprof_testmodels.py:\d+: "
                                            r"if torch.isfinite\(y\).all\(\):\)"):
        profile_model("edgeprof_testmodels:untraceable", input_size=16)
    unchecked = profile_model("edgeprof_testmodels:untraceable", input_size=16, verify_fallback=False)
    assert unchecked["graph"]["method"] == "children"
    assert "not verified" in unchecked["graph"]["warnings"][-1]


def test_torch_export_file_keeps_its_input_shape(tmp_path):
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(tiny_cnn().eval(), (torch.randn(2, 3, 16, 16),)), str(path))
    profile = profile_model(str(path))
    assert profile["graph"]["method"] == "export"
    assert profile["model"]["input_shape"] == [2, 3, 16, 16]
    assert profile["model"]["weights"] == str(path) and len(profile["model"]["weights_sha256"]) == 64  # carried
    single = profile_model("edgeprof_testmodels:tiny_cnn", input_size=16)
    assert profile["totals"]["macs"] == 2 * single["totals"]["macs"]
    with pytest.raises(EdgeprofError, match=r"exported for input shape \[2, 3, 16, 16\] only"):
        load_model(str(path), input_size=32)


def test_state_dict_given_as_model(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(tiny_cnn().state_dict(), path)
    with pytest.raises(EdgeprofError, match="is a state_dict, not a model"):
        load_model(str(path))


def test_vit_input_size_builds_a_matching_model_without_weights():
    profile = profile_model("vit_b_16", input_size=32)
    assert profile["model"]["input_shape"] == [1, 3, 32, 32]
    assert profile["partition_points"][1]["upload_bytes"] == (2 * 2 + 1) * 768 * 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": 16}, "vgg16 cannot run on a 1x3x16x16 input"),
        ({"dtype": "float64"}, "unknown dtype 'float64'"),
        ({"batch_size": 0}, "batch size must be at least 1"),
    ],
)
def test_bad_shapes_and_dtypes(kwargs, message):
    with pytest.raises(EdgeprofError, match=message):
        profile_model("vgg16", **kwargs)
