"""Inputs of any shape, count and dtype (`--input-shape`), factory keyword arguments (`--model-arg`), and no
downloads ever."""

from __future__ import annotations

import pytest
import torch

from edgeprof.errors import EdgeprofError
from edgeprof.profiler.models import (
    InputSpec,
    load_model,
    parse_input_spec,
    parse_model_args,
)
from edgeprof.profiler.schema import validate_profile
from edgeprof.profiler.static import analyze, static_profile, verify_cuts


def profile_and_verify(spec: str, inputs: tuple[InputSpec, ...], **args) -> dict:
    analysis = analyze(load_model(spec, input_specs=inputs, model_args=args))
    runnable = load_model(spec, input_specs=inputs, model_args=args, device="cpu")
    assert all(check.ok for check in verify_cuts(analysis, runnable))
    return validate_profile(static_profile(analysis))


def test_input_shapes_parse_with_optional_dtype():
    assert parse_input_spec("1x1x28x28") == InputSpec((1, 1, 28, 28))
    assert parse_input_spec("2,16:int64") == InputSpec((2, 16), torch.int64)
    for bad, message in [("1x0x3", "positive integers"), ("axb", "positive integers"), ("1x3:int4", "unknown dtype")]:
        with pytest.raises(EdgeprofError, match=message):
            parse_input_spec(bad)


def test_one_channel_and_non_square_images():
    gray = profile_and_verify("edgeprof_testmodels:gray_cnn", (parse_input_spec("1x1x28x28"),))
    assert gray["model"]["input_shape"] == [1, 1, 28, 28] and gray["model"]["input_bytes"] == 28 * 28 * 4
    assert gray["layers"][0]["macs"] == 28 * 28 * 8 * 9
    wide = profile_and_verify("edgeprof_testmodels:tiny_cnn", (parse_input_spec("2x3x16x24"),))
    assert wide["model"]["batch_size"] == 2 and wide["layers"][0]["output_shape"] == [2, 8, 8, 12]


def test_a_model_of_two_inputs_uploads_both_at_z0():
    profile = profile_and_verify("edgeprof_testmodels:two_inputs", (InputSpec((2, 3, 8, 8)), InputSpec((2, 4))))
    model, first = profile["model"], profile["partition_points"][0]
    assert [entry["name"] for entry in model["inputs"]] == ["image", "extra"]
    assert model["input_bytes"] == 2 * 3 * 8 * 8 * 4 + 2 * 4 * 4
    assert [t["name"] for t in first["tensors"]] == ["image", "extra"]
    assert first["upload_bytes"] == model["input_bytes"]


def test_token_ids_and_factory_arguments():
    profile = profile_and_verify("edgeprof_testmodels:token_classifier", (parse_input_spec("1x12:int64"),),
                                 num_classes=5, vocab=30)
    model = profile["model"]
    assert model["inputs"] == [{"name": "input", "shape": [1, 12], "dtype": "int64", "bytes": 96}]
    assert model["args"] == {"num_classes": "5", "vocab": "30"}
    assert model["output_shape"] == [1, 5] and model["params"] == 30 * 16 + 16 * 16 + 16 + 16 * 5 + 5
    assert profile["layers"][-1]["macs"] == 16 * 5


def test_model_args_reach_torchvision_builders():
    model = load_model("resnet18", model_args=parse_model_args(["num_classes=7"]), input_size=32)
    assert model.module.fc.out_features == 7 and model.args == {"num_classes": 7}
    assert parse_model_args(["mode=small", "scale=(1, 2)", "flag=True"]) == {"mode": "small", "scale": (1, 2),
                                                                            "flag": True}
    with pytest.raises(EdgeprofError, match="write name=value"):
        parse_model_args(["num_classes"])
    with pytest.raises(EdgeprofError, match="cannot build resnet18 .*no_such_argument"):
        load_model("resnet18", model_args={"no_such_argument": 1})


def test_input_shape_replaces_size_and_batch_and_files_take_no_args(tmp_path):
    with pytest.raises(EdgeprofError, match="drop --input-size and --batch"):
        load_model("lenet7", input_size=32, input_specs=(InputSpec((1, 3, 32, 32)),))
    path = tmp_path / "m.pt2"
    model = load_model("edgeprof_testmodels:tiny_cnn", input_size=16, device="cpu").module
    torch.export.save(torch.export.export(model, (torch.randn(1, 3, 16, 16),)), str(path))
    with pytest.raises(EdgeprofError, match="saved model, built already"):
        load_model(str(path), model_args={"num_classes": 3})


def test_nothing_is_downloaded_and_the_error_names_the_argument(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    spec = "torchvision.models.segmentation:lraspp_mobilenet_v3_large"
    with pytest.raises(EdgeprofError) as refused:
        load_model(spec)
    message = str(refused.value)
    assert message.startswith(f"building {spec} would download https://download.pytorch.org/models/")
    assert "edgeprof never downloads: pass --model-arg weights_backbone=None for random init" in message
    assert str(tmp_path / "checkpoints") in message
    model = load_model(spec, model_args={"weights_backbone": None})
    assert model.weights == "random init" and model.device.type == "meta"
