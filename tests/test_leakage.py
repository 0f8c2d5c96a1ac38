"""Leakage tables: the inversion attacks, the by-definition ends, resume, outputs and attaching to profiles."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from edgeprof.errors import EdgeprofError
from edgeprof.files import folder_lock
from edgeprof.inversion.leakage import (
    RMLE_DEPTH_GAIN,
    RMLE_TV_WEIGHT,
    LeakageRequest,
    attack_points,
    resolve_normalization,
    rmle_settings,
    run_leakage,
)
from edgeprof.inversion.report import attach_leakage, read_leakage_table, write_outputs
from edgeprof.profiler.models import load_model
from edgeprof.profiler.static import analyze, profile_model

TINY = {"model": "lenet7", "steps": 20, "train_images": 48}


def _request(outdir: Path, **overrides) -> LeakageRequest:
    return LeakageRequest(**{**TINY, "outdir": outdir, "device": "cpu", "threads": 1, **overrides})


def test_small_vgg_smoke_preset_leaks_at_the_first_conv_and_less_at_the_deepest(tmp_path):
    result = run_leakage(LeakageRequest("edgeprof_testmodels:small_vgg", tmp_path, input_size=32, points="1,5",
                                        device="cpu", threads=2))
    first, deepest = result.rows
    assert (first["after"], deepest["feature_shape"], deepest["decoder_input"]) == ("1", "1024", "64x4x4")
    assert first["ssim_mean"] > 0.8
    assert deepest["ssim_mean"] <= first["ssim_mean"] - 0.2
    assert first["ssim_ci95_low"] <= first["ssim_mean"] <= first["ssim_ci95_high"]
    assert 0.1 < result.metadata["baseline_ssim"] < 0.45
    assert result.metadata["data"]["smoke_test_only"] is True


def test_the_ends_score_one_and_zero_by_definition(tmp_path):
    result = run_leakage(_request(tmp_path, points="0,5"))
    assert [(r["z"], r["ssim_mean"], r["attack"], r["steps"]) for r in result.rows] == [
        (0, 1.0, "by definition", 0), (5, 0.0, "by definition", 0)]


def _interrupt_after_first_point(label, done, total):
    if label == "points" and done == 1:
        raise KeyboardInterrupt


def test_resume_after_a_kill_gives_the_same_table(tmp_path):
    straight = run_leakage(_request(tmp_path / "straight", points="1,2,3"))
    write_outputs(straight, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        run_leakage(_request(tmp_path / "killed", points="1,2,3"), _interrupt_after_first_point)
    saved = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir())
    assert len(saved) == 3 and saved[2] == "run.json"  # z = 1's row and reconstructions
    assert saved[0].endswith(".json") and saved[1] == saved[0].replace(".json", ".pt")
    with pytest.raises(EdgeprofError, match="pass --resume"):
        run_leakage(_request(tmp_path / "killed", points="1,2,3"))
    resumed = run_leakage(_request(tmp_path / "killed", points="1,2,3", resume=True))
    write_outputs(resumed, tmp_path / "killed")
    assert (tmp_path / "killed" / "leakage.csv").read_text() == (tmp_path / "straight" / "leakage.csv").read_text()
    with pytest.raises(EdgeprofError, match="other settings"):
        run_leakage(_request(tmp_path / "killed", points="1,2,3", resume=True, seed=7))


def test_a_run_that_fails_before_finishing_a_point_does_not_ask_for_resume(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_leakage(_request(tmp_path, points="1,2"), _interrupt_in_first_training)
    assert (tmp_path / "checkpoints" / "run.json").exists()
    result = run_leakage(_request(tmp_path, points="1"))  # no --resume needed: nothing was finished
    assert [row["z"] for row in result.rows] == [1]


def _interrupt_in_first_training(label, done, total):
    if label != "points" and done == 5:
        raise KeyboardInterrupt


def test_repeats_measure_the_attack_spread_and_widen_the_interval(tmp_path):
    result = run_leakage(_request(tmp_path, points="2", repeats=3))
    row = result.rows[0]
    assert row["repeats"] == 3 and len(row["ssim_repeats"]) == len(set(row["ssim_repeats"])) == 3
    assert row["ssim_mean"] == pytest.approx(sum(row["ssim_repeats"]) / 3, abs=2e-6)
    assert row["ssim_repeats_sd"] > 0
    images_half = row["ssim_mean"] - row["ssim_images_ci95_low"]
    attack_half = row["ssim_mean"] - row["ssim_attack_ci95_low"]
    total_half = row["ssim_mean"] - row["ssim_ci95_low"]  # the high end may be clipped at 1
    assert total_half == pytest.approx((images_half**2 + attack_half**2) ** 0.5, abs=2e-6)
    assert [len(t["history"]) for t in row["training"]] == [10, 10, 10]  # 20 steps, validated every 2
    assert len({t["seed"] for t in row["training"]}) == 3
    assert row["eval_sources"] == 2  # builtin: crops of two pictures, so the images interval has n = 2
    assert not any("one decoder per point" in w for w in result.metadata["warnings"])


def test_the_decoder_seed_moves_only_the_attack(tmp_path):
    first = run_leakage(_request(tmp_path / "a", points="2", decoder_seed=0))
    again = run_leakage(_request(tmp_path / "b", points="2", decoder_seed=0))
    other = run_leakage(_request(tmp_path / "c", points="2", decoder_seed=1))
    assert first.rows[0]["ssim_mean"] == again.rows[0]["ssim_mean"] != other.rows[0]["ssim_mean"]
    assert first.rows[0]["baseline_ssim"] == other.rows[0]["baseline_ssim"]  # same images, same target
    assert any("one decoder per point" in w for w in first.metadata["warnings"])


def test_one_evaluation_image_gives_n_equals_1_not_a_zero_width_interval(run_cli, tmp_path):
    folder = tmp_path / "three"
    folder.mkdir()
    for index in range(3):  # three files: one each for train, val and eval
        Image.new("RGB", (40, 40), (60 * index, 90, 200 - 50 * index)).save(folder / f"{index}.png")
    result = run_cli("leakage", "--model", "lenet7", "--data", folder, "--points", "1", "--steps", "4",
                     "--train-images", "8", "--device", "cpu", "-o", tmp_path / "out")
    assert result.code == 0, result.err
    assert "n = 1" in result.out and "the evaluation set holds 1 image(s): n = 1" in result.out
    row = next(csv.DictReader((tmp_path / "out" / "leakage.csv").open()))
    assert row["eval_images"] == "1" and row["ssim_ci95_low"] == "" and row["ssim_images_ci95_low"] == ""


def test_outputs_and_attaching_to_a_profile(tmp_path):
    result = run_leakage(_request(tmp_path, points="all"))
    paths = write_outputs(result, tmp_path)
    assert [p.name for p in paths] == ["leakage.csv", "leakage.json", "reconstructions.png", "leakage_curve.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths[2:])
    metadata = json.loads(paths[1].read_text())
    assert metadata["model"]["weights"] == "random init" and metadata["ssim"].startswith("SSIM (Wang et al. 2004)")
    rows = list(csv.DictReader(paths[0].open()))
    assert [int(r["z"]) for r in rows] == list(range(6))
    profile = attach_leakage(profile_model("lenet7"), read_leakage_table(paths[0]), "test")
    assert [p["leakage"]["ssim"] for p in profile["partition_points"]] == [r["ssim_mean"] for r in result.rows]
    with pytest.raises(EdgeprofError, match="is for lenet7 at 32 px, the profile for lenet9"):
        attach_leakage(profile_model("lenet9"), read_leakage_table(paths[0]), "test")


def test_rmle_attack_reconstructs_a_shallow_point(tmp_path):
    result = run_leakage(_request(tmp_path, points="1", attack="rmle", steps=None))
    row = result.rows[0]
    assert row["attack"] == "rmle" and row["eval_images"] == 8 and row["train_images"] == 0
    assert row["ssim_mean"] > result.metadata["baseline_ssim"] + 0.2


def test_unknown_points_and_a_file_as_outdir(tmp_path):
    with pytest.raises(EdgeprofError, match=r"unknown points 9: this model has z = 0..5 .*--cuts all adds"):
        run_leakage(_request(tmp_path, points="1,9"))
    with pytest.raises(EdgeprofError, match="unknown points first: "):
        run_leakage(_request(tmp_path, points="first"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgeprofError, match="not a directory"):
        run_leakage(_request(tmp_path / "file", points="1"))


def _folder_of(tmp_path: Path, count: int, size: int) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (size, size), (10 * i, 20, 30)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize(
    ("make_data", "message"),
    [
        (lambda t: t / "missing", "does not exist"),
        (lambda t: (t / "empty").mkdir() or t / "empty", "holds no image files"),
        (lambda t: _folder_of(t, 4, 8), "use a smaller --input-size"),
    ],
)
def test_bad_data_is_exit_2_with_nothing_written(run_cli, tmp_path, make_data, message):
    outdir = tmp_path / "out"
    result = run_cli("leakage", "--model", "lenet7", "--data", make_data(tmp_path), "--small-images", "skip",
                     "--steps", "5", "-o", outdir)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (outdir / "leakage.csv").exists()


def test_cli_writes_the_table_and_profile_attaches_it(run_cli, tmp_path):
    outdir = tmp_path / "leak"
    result = run_cli("leakage", "--model", "lenet7", "--points", "0,1,5", "--steps", "10", "--train-images", "32",
                     "--device", "cpu", "-o", outdir)
    assert result.code == 0, result.err
    assert "Leakage (SSIM" in result.out and (outdir / "leakage.csv").exists()
    profile = tmp_path / "p.json"
    assert run_cli("profile", "lenet7", "--leakage", outdir / "leakage.csv", "-o", profile, "-q").code == 0
    points = json.loads(profile.read_text())["partition_points"]
    assert points[0]["leakage"]["ssim"] == 1.0 and "leakage" not in points[2]
    wrong = run_cli("profile", "lenet9", "--leakage", outdir / "leakage.csv", "-q")
    assert wrong.code == 2 and "is for lenet7" in wrong.err


def test_unwritable_outdir_is_exit_2(run_cli, tmp_path):
    result = run_cli("leakage", "--model", "lenet7", "--steps", "5", "-o", tmp_path / "no" / "such" / "dir")
    assert result.code == 2 and "does not exist" in result.err


def _saved_models(folder: Path) -> dict[str, Path]:
    """lenet7 saved with torch.export (its weights inside) and a small Sequential saved as TorchScript."""
    import warnings

    lenet = load_model("lenet7", device="cpu", seed=3).module
    exported = folder / "lenet7.pt2"
    torch.export.save(torch.export.export(lenet, (torch.rand(1, 3, 32, 32),)), exported)
    scripted = folder / "sequential.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.script is deprecated"
        torch.jit.script(torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(8 * 16 * 16, 10)).eval()).save(scripted)
    return {"export": exported, "torchscript": scripted}


def test_every_model_form_profile_accepts_is_a_target(tmp_path):
    saved = _saved_models(tmp_path)
    exported = run_leakage(_request(tmp_path / "pt2", model=str(saved["export"]), points="1,3"))
    assert exported.metadata["model"]["input_size"] == 32  # the size it was exported for
    assert exported.metadata["model"]["weights"] == str(saved["export"])  # not "random init": the file has them
    assert exported.metadata["model"]["weights_sha256"] and exported.metadata["random_init_warning"] is None
    assert [row["decoder_input"] for row in exported.rows] == ["32x32x32", "128x8x8"]  # the flatten is undone
    scripted = run_leakage(_request(tmp_path / "ts", model=str(saved["torchscript"]), points="1", input_size=32))
    imported = run_leakage(_request(tmp_path / "import", model="edgeprof_testmodels:tiny_cnn", points="1",
                                    input_size=16))
    for result in (exported, scripted, imported):
        assert all(0 < row["ssim_mean"] < 1 for row in result.rows)


def test_every_row_says_which_weights_data_and_budget_made_it(tmp_path):
    result = run_leakage(_request(tmp_path, points="0,1", ssim_weight=0.25))
    write_outputs(result, tmp_path)
    for row in csv.DictReader((tmp_path / "leakage.csv").open()):
        assert (row["weights"], row["weights_sha256"], row["data"], row["preset"], row["ssim_weight"]) == (
            "random init", "", "builtin", "smoke", "0.25")


def test_a_table_is_not_attached_to_a_profile_with_other_weights(run_cli, tmp_path):
    saved = _saved_models(tmp_path)
    result = run_leakage(_request(tmp_path / "random", points="0,1"))
    write_outputs(result, tmp_path / "random")
    torch.save(load_model("lenet7", device="cpu", seed=5).module.state_dict(), tmp_path / "trained.pt")
    refused = run_cli("profile", "lenet7", "--weights", tmp_path / "trained.pt", "--leakage",
                      tmp_path / "random" / "leakage.csv", "-q")
    assert refused.code == 2 and "computed with weights random init, the profile has" in refused.err
    exported = run_leakage(_request(tmp_path / "pt2", model=str(saved["export"]), points="0,1"))
    write_outputs(exported, tmp_path / "pt2")
    attached = run_cli("profile", saved["export"], "--leakage", tmp_path / "pt2" / "leakage.csv",
                       "-o", tmp_path / "p.json", "-q")
    assert attached.code == 0, attached.err
    point = json.loads((tmp_path / "p.json").read_text())["partition_points"][1]
    assert point["leakage"]["ssim"] == exported.rows[1]["ssim_mean"]
    assert f"weights {saved['export']}" in point["leakage"]["source"] and "smoke preset" in point["leakage"]["source"]


@pytest.mark.parametrize(("spec", "channels", "expected"), [
    ("imagenet", 3, ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
    ("mnist", 1, ((0.1307,), (0.3081,))),
    ("unit", 3, ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))),
    ("0.1,0.2,0.3/1,2,4", 3, ((0.1, 0.2, 0.3), (1.0, 2.0, 4.0))),
])
def test_normalizations(spec, channels, expected):
    assert resolve_normalization(spec, channels, "random init") == expected


@pytest.mark.parametrize(("spec", "channels", "message"), [
    ("imagenet", 1, "gives 3 means and 3 standard deviations .* for a 1-channel model"),
    ("weights", 3, "--normalize weights needs torchvision weights"),
    ("0.5/0", 3, "all > 0 needed"),
    ("bright", 3, "--normalize must be one of imagenet, cifar10, mnist, unit, none, weights, or M,M,M/S,S,S"),
])
def test_bad_normalizations(spec, channels, message):
    with pytest.raises(EdgeprofError, match=message):
        resolve_normalization(spec, channels, "random init")


HE_CNN = "edgeprof.inversion.he2019:cifar10_cnn"


def test_cuts_all_adds_he_et_als_points_before_activations_and_poolings():
    analysis = analyze(load_model(HE_CNN, input_size=32))
    clean = [(p.z, p.after) for p in attack_points(analysis, "clean")]
    assert clean == [(0, None), (1, "ReLU11"), (2, "pool1"), (3, "ReLU21"), (4, "pool2"), (5, "ReLU31"),
                     (6, "flatten"), (7, "fc1act"), (8, "fc2")]
    extra = [(p.after, p.kind) for p in attack_points(analysis, "all") if p.z is None]
    assert extra == [("conv11", "before activation"), ("conv12", "before activation"), ("ReLU12", "before pooling"),
                     ("conv21", "before activation"), ("conv22", "before activation"), ("ReLU22", "before pooling"),
                     ("conv31", "before activation"), ("conv32", "before activation"), ("ReLU32", "before pooling"),
                     ("fc1", "before activation")]


def test_cuts_all_never_adds_a_point_where_several_tensors_cross():
    analysis = analyze(load_model("resnet18", input_size=32))
    points = attack_points(analysis, "all")
    inside = [p for p in points if p.z is None]
    assert inside and all(len(analysis.crossing[p.position]) == 1 for p in points[1:-1])
    names = [p.after for p in inside]
    assert names[:2] == ["bn1", "relu"]  # the stem's conv-bn before its ReLU, its ReLU before the max pool
    assert names[2:] == [f"layer{i // 2 + 1}.{i % 2}:add" + (f"_{i}" if i else "") for i in range(8)] + ["layer4"]
    # each block's sum before its last ReLU (the skip has joined), and the last block before the average pool


def test_he_points_are_attacked_by_name_and_left_out_when_attached(tmp_path):
    result = run_leakage(_request(tmp_path, model=HE_CNN, input_size=32, cuts="all", points="0,conv11,ReLU11"))
    assert [(r["z"], r["after"], r["kind"]) for r in result.rows] == [
        (0, None, "partition point"), (None, "conv11", "before activation"), (1, "ReLU11", "partition point")]
    assert result.rows[1]["layer"] == "conv11" == result.rows[2]["layer"]  # the profile layer holding the point
    write_outputs(result, tmp_path)
    profile = attach_leakage(profile_model(HE_CNN, input_size=32), read_leakage_table(tmp_path / "leakage.csv"), "t")
    assert [("leakage" in p) for p in profile["partition_points"]][:3] == [True, True, False]
    assert profile["partition_points"][1]["leakage"]["ssim"] == result.rows[2]["ssim_mean"]
    with pytest.raises(EdgeprofError, match="unknown points conv11: .*--cuts all adds the points before"):
        run_leakage(_request(tmp_path / "clean", model=HE_CNN, input_size=32, points="conv11"))


def test_rmle_strength_grows_with_depth_unless_given():
    shallow, deep = (rmle_settings(LeakageRequest("m", Path("o"), attack="rmle"), 200, d) for d in (0.0, 1.0))
    assert (shallow.iterations, shallow.tv_weight) == (200, RMLE_TV_WEIGHT)
    assert (deep.iterations, deep.tv_weight) == (400, RMLE_TV_WEIGHT * RMLE_DEPTH_GAIN)
    given = rmle_settings(LeakageRequest("m", Path("o"), attack="rmle", rmle_iterations=7, rmle_tv_weight=0.0,
                                         rmle_learning_rate=0.2), 200, 1.0)
    assert (given.iterations, given.tv_weight, given.learning_rate) == (7, 0.0, 0.2)


def test_rmle_options_reach_the_attack_and_the_row(tmp_path):
    result = run_leakage(_request(tmp_path, model="lenet7", steps=None, points="1,3",
                                  attack="rmle", rmle_iterations=6, rmle_tv_weight=0.3))
    assert [r["steps"] for r in result.rows] == [6, 6]
    assert [r["training"][0]["rmle"] for r in result.rows] == [{"iterations": 6, "learning_rate": 0.05,
                                                               "tv_weight": 0.3}] * 2
    assert result.metadata["attack"]["rmle"]["tv_weight"] == 0.3 and "(1 + 3 d)" in result.metadata["attack"][
        "rmle"]["rule"]


@pytest.mark.parametrize(("options", "message"), [
    (["--attack", "rmle", "--steps", "5"], "--steps: options of the inverse-net attack's decoders, which rmle"),
    (["--attack", "rmle", "--ssim-weight", "0.5", "--repeats", "2"], "--repeats, --ssim-weight: options of the "),
    (["--rmle-tv-weight", "0.1"], "--rmle-tv-weight: options of the rmle attack; add --attack rmle"),
    (["--attack", "rmle", "--rmle-learning-rate", "0"], "rMLE learning rate must be positive, got 0.0: check the"),
    (["--attack", "rmle", "--rmle-learning-rate", "nan"], "rMLE learning rate must be positive, got nan"),
    (["--attack", "rmle", "--rmle-tv-weight", "inf"], "total-variation weight must be 0 or more, got inf"),
    (["--attack", "rmle", "--rmle-iterations", "0"], "Invalid value for '--rmle-iterations'"),
])
def test_attack_options_are_checked_in_one_line_before_any_work(run_cli, tmp_path, options, message):
    result = run_cli("leakage", "--model", "lenet7", *options, "-o", tmp_path / "out")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "out").exists()


def test_a_finished_run_is_rerun_afresh_or_resumed_from_its_checkpoints(tmp_path):
    first = run_leakage(_request(tmp_path, points="1"))
    assert json.loads((tmp_path / "checkpoints" / "run.json").read_text())["finished"] is True
    table = (tmp_path / "leakage.csv").read_text()
    again = run_leakage(_request(tmp_path, points="1"))  # no --resume demanded: the folder's run had finished
    assert (tmp_path / "leakage.csv").read_text() == table and again.rows[0]["ssim_mean"] == first.rows[0][
        "ssim_mean"]
    reused = run_leakage(_request(tmp_path, points="1", resume=True))
    assert reused.metadata["seconds_per_point"] == again.metadata["seconds_per_point"]  # read, not retrained
    assert (tmp_path / "leakage.csv").read_text() == table


def _damage_json(path: Path) -> None:
    path.write_text('{"row": ')


def _damage_pt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _row_of_another_point(path: Path) -> None:
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "row": {**saved["row"], "position": 99}}))


@pytest.mark.parametrize(("target", "damage", "message"), [
    ("p2.json", _damage_json, "p2.json is damaged (not valid JSON (line 1, column 9"),
    ("p2.json", _row_of_another_point, "p2.json is damaged (not the row of the point at position 2)"),
    ("p2.pt", _damage_pt, "p2.pt is damaged (unreadable: RuntimeError)"),
    ("run.json", lambda path: path.write_text("[]"), "run.json is damaged (no settings fingerprint in it)"),
    ("run.json", lambda path: path.unlink(), "run.json is damaged (missing, so the finished points' settings"),
])
def test_a_damaged_checkpoint_is_one_line_and_exit_2(run_cli, tmp_path, target, damage, message):
    with pytest.raises(KeyboardInterrupt):
        run_leakage(_request(tmp_path, points="1,2"), _interrupt_after_first_point)
    damage(tmp_path / "checkpoints" / target)
    result = run_cli("leakage", "--model", "lenet7", "--points", "1,2", "--steps", "20", "--train-images", "48",
                     "--device", "cpu", "--threads", "1", "-o", tmp_path, "--resume")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert "delete it and run again with --resume" in result.err and not (tmp_path / "leakage.csv").exists()


def test_an_unfinished_run_asks_for_resume_or_a_fresh_start(run_cli, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_leakage(_request(tmp_path, points="1,2"), _interrupt_after_first_point)
    result = run_cli("leakage", "--model", "lenet7", "--points", "1,2", "-o", tmp_path)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"pass --resume to continue it, delete {tmp_path / 'checkpoints'} to start afresh" in result.err


def test_a_folder_in_use_by_another_run_is_refused(run_cli, tmp_path):
    with folder_lock(tmp_path / "out", "leakage folder"):
        result = run_cli("leakage", "--model", "lenet7", "--points", "1", "--steps", "5", "-o", tmp_path / "out")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert f"leakage folder {tmp_path / 'out'} is in use by another edgeprof process (pid {os.getpid()})" in result.err
    assert not (tmp_path / "out" / "checkpoints").exists()


def _with_cell(text: str, column: str, value: str) -> str:
    """The table with `column` of its last row set to `value`."""
    header, *rows = text.splitlines()
    cells = rows[-1].split(",")
    cells[header.split(",").index(column)] = value
    return "\n".join([header, *rows[:-1], ",".join(cells)]) + "\n"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda text: _with_cell(text, "ssim_mean", "abc"), "line 3: ssim_mean is 'abc', not a number: the table is"),
    (lambda text: text.rsplit(",", 5)[0] + "\n", "line 3: too few cells: the table is damaged"),
    (lambda text: text + "1,2,3," * 40 + "\n", "line 4: too many cells"),
    (lambda text: _with_cell(text, "baseline_ssim", "nan"), "line 3: baseline_ssim is nan: the table is damaged"),
])
def test_a_damaged_leakage_table_is_one_line_and_exit_2(run_cli, tmp_path, damage, message):
    run_leakage(_request(tmp_path, points="0,5"))
    table = tmp_path / "leakage.csv"
    table.write_text(damage(table.read_text()))
    result = run_cli("profile", "lenet7", "--leakage", table, "-q")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err


def test_a_binary_file_as_leakage_table_is_one_line(run_cli, tmp_path):
    (tmp_path / "t.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" * 10)
    result = run_cli("profile", "lenet7", "--leakage", tmp_path / "t.csv", "-q")
    assert result.code == 2 and "is not a leakage table" in result.err and len(result.err.strip().splitlines()) == 1
