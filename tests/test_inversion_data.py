"""Attacker/victim image sets: folder layouts, split by file, crops, determinism, user errors, builtin source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgeprof.errors import EdgeprofError
from edgeprof.inversion.data import load_images, mean_image, split_by_file, to_float
from edgeprof.inversion.ssim import ssim


def write_textured(path: Path, width: int = 48, height: int = 40, seed: int = 0) -> None:
    """An RGB image with a gradient and noise, so that crops of it differ."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 200, width)[None, :, None] + np.linspace(0, 50, height)[:, None, None]
    pixels = np.clip(gradient + rng.integers(0, 50, (height, width, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def solid_color(index: int) -> tuple[int, int, int]:
    """A distinct colour per file index, so that every image tells which file it came from."""
    return (index * 7 % 256, 255 - index * 5 % 256, index * 37 % 256)


def write_solid(path: Path, color: tuple[int, int, int], width: int = 40, height: int = 36) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), color).save(path)


def colors_of(images: torch.Tensor) -> list[tuple[int, int, int]]:
    """The colour of each image of a batch cut from solid-colour files (checking that it is solid)."""
    flat = images.flatten(2)
    assert (flat == flat[:, :, :1]).all(), "crops of a solid image must stay solid"
    return [tuple(color) for color in flat[:, :, 0].tolist()]


def test_flat_folder_with_every_extension(tmp_path):
    extensions = ["jpg", "JPEG", "png", "bmp", "webp", "tif", "TIFF", "Png", "jpeg", "tiff"]
    for index, extension in enumerate(extensions):
        write_textured(tmp_path / f"image{index}.{extension}", seed=index)
    (tmp_path / "notes.txt").write_text("not an image")
    write_textured(tmp_path / ".hidden.png")
    splits = load_images(str(tmp_path), size=32, counts=(25, 5, 5), seed=0)
    files = splits.summary["files"]
    assert sum(files.values()) == len(extensions)
    assert min(files.values()) >= 1
    assert splits.train.shape == (25, 3, 32, 32) and splits.train.dtype == torch.uint8
    assert splits.val.shape == (min(5, files["val"]), 3, 32, 32)
    assert splits.eval.shape == (min(5, files["eval"]), 3, 32, 32)
    assert splits.source == f"folder:{tmp_path.resolve()}"
    assert splits.smoke_test_only is False
    assert splits.summary["images"] == {"train": 25, "val": len(splits.val), "eval": len(splits.eval)}
    assert splits.summary["skipped_unreadable"] == 0 and splits.summary["skipped_too_small"] == 0
    json.dumps(splits.summary)


def test_image_folder_layout_counts_files_in_class_subfolders(tmp_path):
    for class_index, class_name in enumerate(["cat", "dog", "ship"]):
        for index in range(4):
            write_solid(tmp_path / class_name / f"{index}.png", solid_color(class_index * 4 + index))
    write_solid(tmp_path / "ship" / "deeper" / "extra.png", solid_color(12))
    splits = load_images(str(tmp_path), size=16, counts=(30, 13, 13), seed=1)
    assert sum(splits.summary["files"].values()) == 13
    all_colors = set(colors_of(splits.train)) | set(colors_of(splits.val)) | set(colors_of(splits.eval))
    assert all_colors == {solid_color(index) for index in range(13)}


def test_no_file_lands_in_two_splits_and_train_cycles_over_its_files(tmp_path):
    for index in range(30):
        write_solid(tmp_path / f"file{index:02d}.png", solid_color(index))
    splits = load_images(str(tmp_path), size=16, counts=(60, 30, 30), seed=3)
    files = splits.summary["files"]
    train, val, evaluation = colors_of(splits.train), colors_of(splits.val), colors_of(splits.eval)
    assert set(train).isdisjoint(val) and set(train).isdisjoint(evaluation) and set(val).isdisjoint(evaluation)
    assert len(set(train)) == files["train"]  # 60 train images cycle over every train file
    assert len(val) == len(set(val)) == files["val"]  # one image per file, fewer than asked for
    assert len(evaluation) == len(set(evaluation)) == files["eval"]
    assert len(set(train) | set(val) | set(evaluation)) == 30


def test_eval_and_val_take_up_to_their_counts(tmp_path):
    for index in range(30):
        write_textured(tmp_path / f"{index}.png", seed=index)
    splits = load_images(str(tmp_path), size=24, counts=(7, 1, 2), seed=0)
    assert (len(splits.train), len(splits.val), len(splits.eval)) == (7, 1, 2)
    empty = load_images(str(tmp_path), size=24, counts=(0, 0, 0), seed=0)
    assert empty.train.shape == (0, 3, 24, 24) and empty.eval.shape == (0, 3, 24, 24)


def test_eval_images_are_center_crops_of_the_short_side(tmp_path):
    left, middle, right = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    pixels = np.zeros((40, 120, 3), dtype=np.uint8)
    pixels[:, :40], pixels[:, 40:80], pixels[:, 80:] = left, middle, right
    for index in range(3):
        Image.fromarray(pixels).save(tmp_path / f"{index}.png")
    splits = load_images(str(tmp_path), size=20, counts=(0, 1, 1), seed=0)
    for image in (splits.val[0], splits.eval[0]):  # the middle third is the center square: green
        interior = image[:, :, 2:-2]  # the bilinear filter reads a pixel or two beyond the square's edges
        assert (interior.flatten(1) == torch.tensor(middle)[:, None]).all()


def test_16_bit_and_float_grayscale_keep_their_levels(tmp_path):
    """A plain convert("RGB") clips 16-bit values to white; they must be scaled from their full range."""
    for index, level in enumerate((20, 100, 180)):
        Image.fromarray(np.full((40, 40), level * 257, dtype=np.uint16)).save(tmp_path / f"g16_{index}.png")
    Image.fromarray(np.full((40, 40), 60 * 257, dtype=np.uint16)).save(tmp_path / "g16.tif")
    Image.fromarray(np.full((40, 40), 220 / 255, dtype=np.float32)).save(tmp_path / "float.tif")
    splits = load_images(str(tmp_path), size=16, counts=(20, 5, 5), seed=0)
    colors = set(colors_of(splits.train)) | set(colors_of(splits.val)) | set(colors_of(splits.eval))
    assert colors == {(level, level, level) for level in (20, 100, 180, 60, 220)}


def test_a_float_image_outside_0_1_is_refused_with_its_name(tmp_path):
    for index in range(3):
        write_textured(tmp_path / f"{index}.png", seed=index)
    Image.fromarray(np.full((40, 40), 3.5, dtype=np.float32)).save(tmp_path / "hdr.tif")
    with pytest.raises(EdgeprofError, match=r"hdr.tif \(mode F\) has values 3.5..3.5, outside the 0..1"):
        load_images(str(tmp_path), size=16, counts=(40, 5, 5), seed=0)


def test_grayscale_targets_get_one_channel(tmp_path):
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (40, 40), 77).save(tmp_path / "gray.png")
    Image.fromarray(np.full((40, 40), 200 * 257, dtype=np.uint16)).save(tmp_path / "g16.png")
    splits = load_images(str(tmp_path), size=16, counts=(9, 3, 3), seed=0, channels=1)
    assert splits.train.shape == (9, 1, 16, 16)
    levels = {int(image.flatten()[0]) for image in torch.cat([splits.train, splits.val, splits.eval])}
    assert levels == {76, 77, 200}  # Pillow's ITU-R 601 luma of pure red is 76


def test_colour_modes_are_converted_to_rgb(tmp_path):
    Image.new("L", (40, 40), 100).save(tmp_path / "gray.png")
    Image.new("RGBA", (40, 40), (10, 20, 30, 0)).save(tmp_path / "transparent.png")
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([0, 0, 0, 200, 150, 50] + [0] * 762)
    palette.save(tmp_path / "palette.png", transparency=0)
    Image.new("LA", (40, 40), (60, 255)).save(tmp_path / "gray_alpha.png")
    Image.new("CMYK", (40, 40), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    opaque_palette = Image.new("P", (40, 40), 1)
    opaque_palette.putpalette([0, 0, 0, 30, 90, 150] + [0] * 762)
    opaque_palette.save(tmp_path / "opaque_palette.png")
    Image.new("1", (40, 40), 1).save(tmp_path / "bilevel.png")
    splits = load_images(str(tmp_path), size=16, counts=(40, 8, 8), seed=0)
    assert splits.summary["skipped_unreadable"] == 0
    colors = set(colors_of(splits.train)) | set(colors_of(splits.val)) | set(colors_of(splits.eval))
    assert colors == {(100, 100, 100), (10, 20, 30), (200, 150, 50), (60, 60, 60), (255, 255, 255), (30, 90, 150)}


def test_symlink_loops_and_links_to_one_file_count_each_file_once(tmp_path):
    for index in range(6):
        write_solid(tmp_path / "cats" / f"{index}.png", solid_color(index))
    (tmp_path / "cats" / "up").symlink_to("..")  # a loop back to the root
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "same_as_cat0.png").symlink_to(tmp_path / "cats" / "0.png")
    (tmp_path / "mirror").symlink_to(tmp_path / "cats")
    splits = load_images(str(tmp_path), size=16, counts=(12, 6, 6), seed=0)
    assert sum(splits.summary["files"].values()) == 6
    assert splits.summary["duplicate_paths"] == 1  # dogs/same_as_cat0.png; the linked folders are walked once
    train, val, evaluation = colors_of(splits.train), colors_of(splits.val), colors_of(splits.eval)
    assert set(train).isdisjoint(val) and set(train).isdisjoint(evaluation) and set(val).isdisjoint(evaluation)
    assert any("lead to a file already found" in warning for warning in splits.warnings)


def test_images_over_pillows_pixel_limit_are_skipped_with_a_clear_reason(tmp_path, monkeypatch):
    for index in range(4):
        write_textured(tmp_path / f"small{index}.png", width=20, height=20, seed=index)
    write_textured(tmp_path / "large.png", width=40, height=40)  # 1600 px: over 2x the limit below
    write_textured(tmp_path / "larger.png", width=30, height=30)  # 900 px: between 1x and 2x
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    splits = load_images(str(tmp_path), size=16, counts=(8, 2, 2), seed=0)
    assert splits.summary["skipped_too_large"] == 2 and splits.summary["skipped_unreadable"] == 0
    assert any("skipped 2 image(s) over Pillow's limit of 500 pixels" in warning for warning in splits.warnings)
    assert Image.MAX_IMAGE_PIXELS == 500  # the survey restores the limit
    for index in range(4):
        (tmp_path / f"small{index}.png").unlink()
    with pytest.raises(EdgeprofError, match=r"every readable image .* is larger than Pillow's limit of 500 pixels"):
        load_images(str(tmp_path), size=16, counts=(8, 2, 2), seed=0)


def test_same_seed_gives_identical_tensors_and_another_seed_other_crops(tmp_path):
    for index in range(12):
        write_textured(tmp_path / f"{index}.jpg", width=64, height=50, seed=index)
    first = load_images(str(tmp_path), size=32, counts=(20, 4, 4), seed=5)
    again = load_images(str(tmp_path), size=32, counts=(20, 4, 4), seed=5)
    for split in ("train", "val", "eval"):
        assert torch.equal(getattr(first, split), getattr(again, split))
    assert first.summary == again.summary
    other = load_images(str(tmp_path), size=32, counts=(20, 4, 4), seed=6)
    assert not torch.equal(first.train, other.train)


def test_split_by_file_is_disjoint_complete_and_about_70_10_20():
    names = [f"class{index % 7}/image{index}.jpg" for index in range(2000)]
    train, val, evaluation = split_by_file(names, seed=0)
    assert sorted(train + val + evaluation) == sorted(names)
    assert len(set(train) | set(val) | set(evaluation)) == len(names)
    assert len(train) / 2000 == pytest.approx(0.7, abs=0.04)
    assert len(val) / 2000 == pytest.approx(0.1, abs=0.03)
    assert len(evaluation) / 2000 == pytest.approx(0.2, abs=0.03)
    assert split_by_file(names, seed=1)[2] != evaluation


def test_split_by_file_keeps_assignments_when_files_are_added():
    names = [f"image{index}.png" for index in range(500)]
    before = split_by_file(names, seed=4)
    after = split_by_file(names + [f"new{index}.png" for index in range(100)], seed=4)
    for old_split, new_split in zip(before, after, strict=True):
        assert set(old_split) <= set(new_split)


@pytest.mark.parametrize("file_count", [3, 4, 5, 6, 8, 12])
def test_split_by_file_gives_every_split_a_file_in_small_folders(file_count):
    names = [f"{index}.png" for index in range(file_count)]
    for seed in range(25):
        splits = split_by_file(names, seed)
        assert all(splits), (seed, splits)
        assert sorted(name for split in splits for name in split) == sorted(names)


def test_missing_folder(tmp_path):
    with pytest.raises(EdgeprofError, match=r"data folder .*nowhere does not exist; give --data a folder"):
        load_images(str(tmp_path / "nowhere"), size=32, counts=(1, 1, 1), seed=0)


def test_path_that_is_a_file(tmp_path):
    write_textured(tmp_path / "single.png")
    with pytest.raises(EdgeprofError, match=r"single.png is not a folder; give --data a folder"):
        load_images(str(tmp_path / "single.png"), size=32, counts=(1, 1, 1), seed=0)


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    (tmp_path / "sub").mkdir()
    with pytest.raises(EdgeprofError, match=r"holds no image files \(.jpg, .jpeg, .png"):
        load_images(str(tmp_path), size=32, counts=(1, 1, 1), seed=0)


def test_folder_where_no_image_can_be_read(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(EdgeprofError, match=r"none of the 2 image files .* can be read \(e.g. broken.jpg\)"):
        load_images(str(tmp_path), size=32, counts=(1, 1, 1), seed=0)


def test_images_smaller_than_the_input_size_are_skipped_on_request(tmp_path):
    for index in range(4):
        write_textured(tmp_path / f"tiny{index}.png", width=30, height=20)
    write_textured(tmp_path / "big.png", width=64, height=64)
    with pytest.raises(EdgeprofError, match=r"only 1 of the 5 readable .*tiny0.png is 30x20.*smaller --input-size"):
        load_images(str(tmp_path), size=32, counts=(1, 1, 1), seed=0, small_images="skip")


def test_images_smaller_than_the_input_size_are_upscaled_with_a_warning(tmp_path):
    for index in range(4):
        write_solid(tmp_path / f"tiny{index}.png", solid_color(index), width=30, height=20)
    write_solid(tmp_path / "big.png", solid_color(4), width=64, height=64)
    splits = load_images(str(tmp_path), size=32, counts=(10, 5, 5), seed=0)
    assert sum(splits.summary["files"].values()) == 5 and splits.summary["upscaled"] == 4
    assert splits.train.shape == (10, 3, 32, 32)
    assert set(colors_of(splits.train)) | set(colors_of(splits.eval)) | set(colors_of(splits.val)) == {
        solid_color(index) for index in range(5)}
    assert any("4 image(s) smaller than 32 px were upscaled" in warning for warning in splits.warnings)


def test_fewer_than_three_readable_files(tmp_path):
    write_textured(tmp_path / "a.png")
    write_textured(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"garbage")
    message = r"holds 2 readable image file\(s\) \(1 unreadable, e.g. c.png\); at least 3"
    with pytest.raises(EdgeprofError, match=message):
        load_images(str(tmp_path), size=32, counts=(1, 1, 1), seed=0)


def test_unreadable_and_small_files_are_skipped_when_enough_remain(tmp_path):
    for index in range(5):
        write_textured(tmp_path / f"good{index}.png", seed=index)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    write_textured(tmp_path / "small.png", width=10, height=10)
    splits = load_images(str(tmp_path), size=32, counts=(4, 4, 4), seed=0, small_images="skip")
    assert sum(splits.summary["files"].values()) == 5
    assert splits.summary["skipped_unreadable"] == 1 and splits.summary["skipped_too_small"] == 1
    assert set(splits.summary["skipped_examples"]) == {"bad.jpg", "small.png"}


def test_file_that_fails_to_decode_names_the_file(tmp_path):
    for index in range(4):
        write_textured(tmp_path / f"{index}.png", width=64, height=64, seed=index)
    whole = (tmp_path / "0.png").read_bytes()
    (tmp_path / "0.png").write_bytes(whole[: len(whole) // 2])  # the header is intact, the pixels are not
    with pytest.raises(EdgeprofError, match=r"cannot decode image .*0.png .*remove or replace the file"):
        load_images(str(tmp_path), size=32, counts=(10, 10, 10), seed=0)


@pytest.mark.parametrize(
    "size, counts, seed, message",
    [(0, (1, 1, 1), 0, "--input-size"), (32, (1, -1, 1), 0, "non-negative"), (32, (1, 1), 0, "three"),
     (32, (1, 1, 1), -3, "seed")],
)
def test_bad_requests(size, counts, seed, message):
    with pytest.raises(EdgeprofError, match=message):
        load_images("builtin", size=size, counts=counts, seed=seed)


def test_builtin_source_is_split_by_picture_and_flagged_as_a_smoke_test():
    splits = load_images("builtin", size=32, counts=(24, 6, 12), seed=0)
    assert splits.source == "builtin" and splits.smoke_test_only is True
    assert (splits.train.shape, splits.val.shape, splits.eval.shape) == (
        (24, 3, 32, 32), (6, 3, 32, 32), (12, 3, 32, 32)
    )
    assert splits.train.dtype == splits.eval.dtype == torch.uint8
    sources = splits.summary["source_images"]
    assert set(sources["train"]).isdisjoint(sources["eval"]) and set(sources["train"]).isdisjoint(sources["val"])
    assert set(sources["val"]).isdisjoint(sources["eval"])
    assert len(sources["eval"]) == 2 and len(sources["val"]) == 6 and len(sources["train"]) >= 7
    assert splits.eval_sources.tolist() == [0, 1] * 6  # eval crop k comes from picture k mod 2
    assert splits.summary["images"] == {"train": 24, "val": 6, "eval": 12}
    assert len({image.numpy().tobytes() for image in splits.eval}) == 12  # distinct crops, not one repeated
    json.dumps(splits.summary)


def test_builtin_is_deterministic_per_seed():
    first = load_images("builtin", size=32, counts=(16, 4, 8), seed=7)
    again = load_images("builtin", size=32, counts=(16, 4, 8), seed=7)
    other = load_images("builtin", size=32, counts=(16, 4, 8), seed=8)
    for split in ("train", "val", "eval"):
        assert torch.equal(getattr(first, split), getattr(again, split))
    assert not torch.equal(first.train, other.train)


def test_mean_image_of_a_hand_made_batch():
    batch = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    batch[0] = 255
    batch[1, 0] = 51
    expected = torch.full((3, 2, 2), 0.5)
    expected[0] = (255 + 51) / 2 / 255
    got = mean_image(batch)
    assert got.dtype == torch.float32 and got.shape == (3, 2, 2)
    torch.testing.assert_close(got, expected)
    many = torch.arange(600, dtype=torch.int64).remainder(256).to(torch.uint8).view(600, 1, 1, 1).expand(600, 3, 2, 2)
    torch.testing.assert_close(mean_image(many), torch.full((3, 2, 2), float((np.arange(600) % 256).mean()) / 255))
    with pytest.raises(ValueError, match="uint8"):
        mean_image(batch.float())


def test_to_float_maps_uint8_to_the_unit_interval():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    got = to_float(images)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.flatten(), torch.tensor([0.0, 0.2, 1.0]))
    with pytest.raises(ValueError, match="uint8"):
        to_float(images.float())


def test_dataset_mean_image_scores_a_plausible_no_information_ssim():
    splits = load_images("builtin", size=64, counts=(200, 0, 100), seed=0)
    targets = to_float(splits.eval)
    baseline = ssim(mean_image(splits.train).expand_as(targets), targets).mean().item()
    assert 0.15 <= baseline <= 0.45


def write_cifar(folder: Path, train_batches: int = 2, per_batch: int = 40, test: int = 30) -> None:
    """Fake CIFAR-10 batches in torchvision's python format; record i of batch b is a solid colour (b, i, 7)."""
    import pickle

    folder.mkdir(parents=True)

    def batch(first: int, count: int) -> dict:
        pixels = np.zeros((count, 3, 32, 32), dtype=np.uint8)
        for index in range(count):
            pixels[index] = np.array([first // 100, first % 100 + index, 7], dtype=np.uint8)[:, None, None]
        return {"batch_label": "fake", "labels": [0] * count, "data": pixels.reshape(count, 3072)}

    for number in range(1, train_batches + 1):
        (folder / f"data_batch_{number}").write_bytes(pickle.dumps(batch(number * 100, per_batch), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(9 * 100, test), protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["x"] * 10}, protocol=2))


def test_cifar_batches_in_torchvisions_layout(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    for data in (tmp_path, tmp_path / "cifar-10-batches-py"):  # the torchvision root or the batches folder
        splits = load_images(str(data), size=32, counts=(50, 20, 20), seed=0)
        assert splits.source == f"cifar-10:{tmp_path / 'cifar-10-batches-py'}"
        assert splits.summary["records"]["eval"] == 30 and sum(splits.summary["records"].values()) == 110
        train, val, evaluation = colors_of(splits.train), colors_of(splits.val), colors_of(splits.eval)
        assert all(color[0] == 9 for color in evaluation) and len(set(evaluation)) == 20  # test records only
        assert all(color[0] in (1, 2) for color in train + val)
        assert set(train).isdisjoint(val) and len(set(train)) == 50
        assert splits.warnings == []


def test_cifar_upscaled_and_grayscale(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    splits = load_images(str(tmp_path), size=64, counts=(10, 5, 5), seed=1, channels=1)
    assert splits.eval.shape == (5, 1, 64, 64)
    assert "cifar-10 images are 32 px and were upscaled to 64 px" in splits.warnings[0]
    with pytest.raises(EdgeprofError, match="use --input-size 32 or --small-images upscale"):
        load_images(str(tmp_path), size=64, counts=(10, 5, 5), seed=1, small_images="skip")


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path):
    import pickle

    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Path("x")}, protocol=2))
    with pytest.raises(EdgeprofError, match=r"test_batch is not a CIFAR batch .*pathlib.*is not allowed"):
        load_images(str(tmp_path), size=32, counts=(5, 5, 5), seed=0)


def write_idx(path: Path, images: np.ndarray, gzipped: bool = False) -> None:
    import gzip

    header = b"\x00\x00\x08\x03" + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if gzipped else open)(path, "wb").write(header + images.astype(np.uint8).tobytes())


def test_mnist_idx_files_in_torchvisions_layout(tmp_path):
    train = np.repeat(np.arange(60, dtype=np.uint8)[:, None, None], 28, axis=1).repeat(28, axis=2)
    test = np.full((12, 28, 28), 200, dtype=np.uint8) + np.arange(12, dtype=np.uint8)[:, None, None]
    write_idx(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz", train, gzipped=True)
    write_idx(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte", test)
    splits = load_images(str(tmp_path), size=28, counts=(40, 5, 10), seed=0, channels=1)
    assert splits.source.startswith("MNIST:") and splits.eval.shape == (10, 1, 28, 28)
    assert {int(image[0, 0, 0]) for image in splits.eval} <= set(range(200, 212))
    assert {int(image[0, 0, 0]) for image in splits.train} <= set(range(60))
    rgb = load_images(str(tmp_path), size=32, counts=(4, 2, 2), seed=0)
    assert rgb.eval.shape == (2, 3, 32, 32) and torch.equal(rgb.eval[:, 0], rgb.eval[:, 2])


def test_a_truncated_idx_file_is_named(tmp_path):
    write_idx(tmp_path / "raw" / "train-images-idx3-ubyte", np.zeros((5, 28, 28)))
    write_idx(tmp_path / "raw" / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28)))
    path = tmp_path / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(EdgeprofError, match=r"t10k-images-idx3-ubyte is truncated: its header promises 5 images"):
        load_images(str(tmp_path), size=28, counts=(4, 2, 2), seed=0)
