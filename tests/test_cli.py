"""The `edgeprof` command as a user runs it: outputs, tables, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import fake_jetson
import pandas as pd
import pytest
from fake_nvml import FakeNvml

from edgeprof.profiler.schema import load_profile


def test_profile_writes_json_csv_and_plot(run_cli, tmp_path):
    out, csv, png = tmp_path / "p.json", tmp_path / "p.csv", tmp_path / "p.png"
    result = run_cli("profile", "lenet7", "-o", out, "--csv", csv, "--plot", png)
    assert result.code == 0, result.err
    profile = load_profile(out)
    points = pd.read_csv(csv)
    layers = pd.read_csv(tmp_path / "p.layers.csv")
    assert list(points["upload_bytes"]) == [p["upload_bytes"] for p in profile["partition_points"]]
    assert list(layers["macs"]) == [layer["macs"] for layer in profile["layers"]]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Partition points" in result.out and "40,733,184" in result.out  # lenet7 MACs


def test_quiet_prints_nothing_and_top_limits_the_layer_table(run_cli):
    assert run_cli("profile", "lenet7", "--quiet").out == ""
    result = run_cli("profile", "resnet18", "--top", "3", "--input-size", "64")
    assert "Top 3 layers by FLOPs" in result.out


def test_models_lists_the_zoo(run_cli):
    result = run_cli("models", "--source", "zoo", "--json")
    assert [e["name"] for e in json.loads(result.out)] == ["lenet7", "lenet9", "lenet12", "cerl-net"]
    assert "vit_b_16" in run_cli("models").out


def test_verify_cuts_passes_for_a_traceable_model(run_cli):
    result = run_cli("profile", "cerl-net", "--verify-cuts")
    assert result.code == 0
    assert "all 9 points reproduce the model's output" in result.out


def test_verify_cuts_fails_with_exit_1_naming_the_point(run_cli, tmp_path, monkeypatch):
    from edgeprof.profiler import static

    split = static.run_split
    monkeypatch.setattr(static, "run_split", lambda prefix, suffix, *inputs: split(prefix, suffix, *inputs) + 1)
    out = tmp_path / "p.json"
    result = run_cli("profile", "lenet7", "--verify-cuts", "-o", out)
    assert result.code == 1
    assert "verify-cuts: z=3 (after flatten): prefix + suffix differs from the whole model by 1\n" in result.err
    assert not out.exists()


def test_a_model_no_tracer_can_trace_is_refused_naming_the_construct(run_cli, tmp_path):
    out = tmp_path / "p.json"
    result = run_cli("profile", "edgeprof_testmodels:untraceable", "--input-size", "16", "-o", out)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "cannot be profiled: no tracer can trace it (torch.fx: symbolically traced variables cannot be used " \
           "as inputs to control flow (at edgeprof_testmodels.py:" in result.err
    assert "if torch.isfinite(y).all():" in result.err
    assert "calling its children in order does not reproduce its output" in result.err
    assert not out.exists()
    unchecked = run_cli("profile", "edgeprof_testmodels:untraceable", "--input-size", "16", "--no-verify-cuts",
                        "-o", out)
    assert unchecked.code == 0 and "the fallback was not verified" in unchecked.out
    assert load_profile(out)["graph"]["method"] == "children"


def test_validate(run_cli, tmp_path):
    out = tmp_path / "p.json"
    run_cli("profile", "lenet7", "-q", "-o", out)
    result = run_cli("validate", out)
    assert result.code == 0 and "valid edgeprof.profile/1" in result.out


def _corrupt(tmp_path):
    path = tmp_path / "corrupt.json"
    path.write_text("{not json")
    return path


def _corrupt_archive(tmp_path):
    path = tmp_path / "corrupt.pt2"
    path.write_bytes(bytes(range(256)) * 8)
    return path


def _wrong_version(tmp_path):
    path = tmp_path / "v2.json"
    path.write_text(json.dumps({"schema": "edgeprof.profile/2"}))
    return path


def _unreadable_weights(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"\x00garbage")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda t: ["profile", "resnet81", "-o", t / "out.json"], "unknown model 'resnet81': did you mean resnet18"),
        (lambda t: ["profile", "vgg16", "--input-size", "8", "-o", t / "out.json"],
         "vgg16 cannot run on a 1x3x8x8 input"),
        (lambda t: ["profile", "vgg16", "--dtype", "float64", "-o", t / "out.json"], "'float64' is not one of"),
        (lambda t: ["profile", "lenet7", "--weights", _unreadable_weights(t), "-o", t / "out.json"],
         "cannot read weights file"),
        (lambda t: ["profile", "lenet7", "-o", t / "missing-dir" / "out.json"],
         "directory .*missing-dir does not exist"),
        (lambda t: ["profile", "lenet7", "--batch", "0", "-o", t / "out.json"], "--batch"),
        (lambda t: ["profile", "torch.nn:Identity", "--input-size", "16", "-o", t / "out.json"],
         "torch.nn:Identity has nothing to split: its forward does no work on the input"),
        (lambda t: ["profile", "edgeprof_testmodels:exiting_factory", "-o", t / "out.json"],
         r"cannot build edgeprof_testmodels:exiting_factory: its factory called sys.exit\(3\)"),
        (lambda t: ["profile", _corrupt_archive(t), "-o", t / "out.json"],
         "corrupt.pt2 as a torch.export archive: it is not a zip file"),
        (lambda t: ["validate", _corrupt(t)], r"corrupt.json: not valid JSON \(line 1, column 2"),
        (lambda t: ["validate", _wrong_version(t)], r"\$\.schema: 'edgeprof.profile/2' is not supported"),
        (lambda t: ["validate", t / "absent.json"], "cannot read .*absent.json"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2_and_no_output(run_cli, tmp_path, args, message):
    result = run_cli(*args(tmp_path))
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeprof: error: ")
    assert "Traceback" not in result.err
    assert pytest.importorskip("re").search(message, lines[0])
    assert not (tmp_path / "out.json").exists()


def test_measure_writes_latency_and_calibrate_reads_it(run_cli, tmp_path):
    out = tmp_path / "m.json"
    result = run_cli("profile", "lenet7", "--measure", "--device", "cpu", "--energy", "none", "--repeats", "3",
                     "--warmup", "1", "--threads", "1", "-o", out)
    assert result.code == 0, result.err
    profile = load_profile(out)
    assert profile["timing"]["repeats"] == 3
    assert all(p["device_latency_ms"]["median"] >= 0 for p in profile["partition_points"])
    assert "energy not measured: energy measurement turned off" in result.out
    summary = tmp_path / "calibration.json"
    result = run_cli("calibrate", out, "-o", summary)
    assert result.code == 0, result.err
    assert json.loads(summary.read_text())["flops_per_s_median"] == profile["device"]["flops_per_s"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--measure", "--device", "cuda"], "no CUDA GPU is available"),
        (["--measure", "--repeats", "0"], "--repeats"),
        (["--measure", "--energy", "watts"], "'watts' is not one of"),
    ],
)
def test_bad_measurement_options(run_cli, tmp_path, monkeypatch, args, message):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    result = run_cli("profile", "lenet7", *args, "-o", tmp_path / "out.json")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "out.json").exists()


def test_calibrate_refuses_a_static_profile(run_cli, tmp_path):
    out = tmp_path / "s.json"
    run_cli("profile", "lenet7", "-q", "-o", out)
    result = run_cli("calibrate", out)
    assert result.code == 2 and "has no measurements" in result.err


@pytest.mark.parametrize("sensor", ["nvml", "jetson", "rapl"])
def test_asking_for_a_missing_sensor_is_exit_2(run_cli, tmp_path, monkeypatch, sensor):
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path / "empty"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no tegrastats
    monkeypatch.setattr("edgeprof.profiler.energy.nvml.load_library", lambda: FakeNvml(init_error=9))
    result = run_cli("profile", "lenet7", "--measure", "--energy", sensor, "--repeats", "2", "-o", tmp_path / "o.json")
    assert result.code == 2
    assert result.err.startswith(f"edgeprof: error: --energy {sensor}: ") and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def test_measure_on_a_fake_jetson_records_energy(run_cli, tmp_path, monkeypatch):
    board = fake_jetson.build(tmp_path / "root", "orin_nano")
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path / "root"))
    (tmp_path / "root" / "etc").mkdir()
    (tmp_path / "root" / "etc" / "nv_tegra_release").write_text("# R36 (release), REVISION: 4.0\n")
    devices = run_cli("devices")
    assert "jetson" in devices.out and "total VDD_IN" in devices.out
    out = tmp_path / "j.json"
    result = run_cli("profile", "lenet7", "--measure", "--device", "cpu", "--repeats", "3", "--warmup", "1", "-o", out)
    assert result.code == 0, result.err
    device = load_profile(out)["device"]
    assert device["kind"] == "jetson" and device["energy_source"] == "ina3221:VDD_IN"
    assert device["idle_power_w"] == pytest.approx(board.total_w, rel=0.02)
    assert device["whole_model_energy_mj"]["total"] > 0


def test_rails_option_on_a_fake_agx_orin(run_cli, tmp_path, monkeypatch):
    board = fake_jetson.build(tmp_path / "root", "agx_orin")
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path / "root"))
    (tmp_path / "root" / "etc").mkdir()
    (tmp_path / "root" / "etc" / "nv_tegra_release").write_text("# R35 (release), REVISION: 4.1\n")
    out = tmp_path / "j.json"
    args = ("profile", "lenet7", "--measure", "--device", "cpu", "--repeats", "2", "--warmup", "0", "-q")
    result = run_cli(*args, "--rails", "VDD_GPU_SOC,VDDQ_VDD2_1V8AO", "-o", out)
    assert result.code == 0, result.err
    device = load_profile(out)["device"]
    assert device["energy_source"] == "ina3221:sum(VDD_GPU_SOC,VDDQ_VDD2_1V8AO)"
    assert device["sensor"]["total_rule"] == "--rails"
    expected = board.rails_w["VDD_GPU_SOC"] + board.rails_w["VDDQ_VDD2_1V8AO"]
    assert device["idle_power_w"] == pytest.approx(expected, rel=0.02)
    bad = run_cli(*args, "--rails", "VDD_IN", "-o", tmp_path / "bad.json")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1
    assert "no rail VDD_IN; its rails are VDD_CPU_CV, VDD_GPU_SOC, VIN_SYS_5V0, VDDQ_VDD2_1V8AO" in bad.err
    assert not (tmp_path / "bad.json").exists()
    elsewhere = run_cli("profile", "lenet7", "--measure", "--energy", "rapl", "--rails", "VDD_IN", "-q")
    assert elsewhere.code == 2 and "--rails applies to Jetson power monitors" in elsewhere.err


def test_a_dict_output_model_verifies_and_measures(run_cli, tmp_path):
    out = tmp_path / "d.json"
    result = run_cli("profile", "edgeprof_testmodels:dict_output", "--input-size", "16", "--verify-cuts", "--measure",
                     "--device", "cpu", "--energy", "none", "--repeats", "2", "--warmup", "0", "-o", out)
    assert result.code == 0, result.err
    assert "points reproduce the model's output" in result.out
    assert load_profile(out)["partition_points"][-1]["device_latency_ms"]["median"] > 0


def test_input_shapes_and_model_args(run_cli, tmp_path):
    out = tmp_path / "t.json"
    result = run_cli("profile", "edgeprof_testmodels:token_classifier", "--input-shape", "2x12:int64",
                     "--model-arg", "num_classes=5", "--verify-cuts", "-o", out)
    assert result.code == 0, result.err
    assert "input 2x12 int64" in result.out
    model = load_profile(out)["model"]
    assert model["inputs"][0]["dtype"] == "int64" and model["args"] == {"num_classes": "5"}
    two = run_cli("profile", "edgeprof_testmodels:two_inputs", "--input-shape", "1x3x8x8", "--input-shape", "1x4", "-q",
                  "-o", out)
    assert two.code == 0
    assert [entry["shape"] for entry in load_profile(out)["model"]["inputs"]] == [[1, 3, 8, 8], [1, 4]]
    for args, message in [(["--input-shape", "1x3xQ"], "write the whole shape, batch first"),
                          (["--input-shape", "1x16", "--input-size", "16"], "drop --input-size and --batch"),
                          (["--model-arg", "num_classes"], "write name=value")]:
        bad = run_cli("profile", "lenet7", *args, "-o", tmp_path / "bad.json")
        assert bad.code == 2 and message in bad.err and len(bad.err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.json").exists()


def test_a_factory_that_would_download_is_refused_offline(run_cli, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    spec = "torchvision.models.segmentation:lraspp_mobilenet_v3_large"
    result = run_cli("profile", spec, "-o", tmp_path / "s.json")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "pass --model-arg weights_backbone=None for random init" in result.err
    ok = run_cli("profile", spec, "--model-arg", "weights_backbone=None", "--input-size", "64", "-q", "-o",
                 tmp_path / "s.json")
    assert ok.code == 0, ok.err
    assert len(load_profile(tmp_path / "s.json")["partition_points"]) > 2


def test_validate_checks_every_file_one_line_each_or_every_problem(run_cli, tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    run_cli("profile", "lenet7", "-q", "-o", good)
    doc = json.loads(good.read_text())
    doc["partition_points"][2]["device_param_bytes"] = 10**12
    doc["partition_points"][1]["tensors"][0]["bytes"] += 4
    doc["partition_points"][1]["upload_bytes"] += 4
    bad.write_text(json.dumps(doc))
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(bytes(range(128, 256)))
    result = run_cli("validate", garbage, bad, good)  # a file that fails first does not stop the others
    assert result.code == 2
    assert f"{good}: valid edgeprof.profile/1 (lenet7, 6 partition points)" in result.out
    first, second = result.err.strip().splitlines()
    assert first.startswith(f"edgeprof: error: {garbage}: ") and "is not UTF-8 text" in first
    assert second.startswith(f"edgeprof: error: {bad}: $.partition_points[1].tensors[0].bytes: ")
    assert second.endswith("(and 2 more: --all lists them)")
    result = run_cli("validate", "--all", good, bad)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"edgeprof: error: {bad}: $.partition_points[") for line in lines)
    assert "[1].tensors[0].bytes: " in lines[0]
    assert "[2].device_param_bytes: 1000000000000 is more than the model's param_bytes" in lines[1]
    assert "[3].device_param_bytes: 372992 is less than at z = 2" in lines[2]
