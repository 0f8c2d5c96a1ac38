"""Images for inversion attacks: the attacker's train/val sets and the victim's eval set, split by source file.

Decoders trained on crops of the very images they are evaluated on score far too high, so every source file
(or, for the bundled images, every source picture) belongs to exactly one split. Images are kept as uint8
(N, 3, size, size) tensors: a 10k-image 224-px set then takes about 1.5 GB instead of 6 GB.

Decoding and resizing use Pillow (installed with matplotlib and scikit-image).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from edgeprof.errors import EdgeprofError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SPLIT_NAMES = ("train", "val", "eval")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
MIN_FILES = len(SPLIT_NAMES)

RANDOM_CROP_POLICY = (
    f"random resized crop (area {CROP_AREA_RANGE[0]}-{CROP_AREA_RANGE[1]} of the image, aspect 3/4-4/3, "
    "bilinear), seeded per image"
)
CENTER_CROP_POLICY = "resize the short side to size (bilinear), then center crop; one image per file"
SPLIT_RULE = (
    "by file: sha256 of '<seed>\\0<relative path>' mapped to [0, 1); train < 0.7 <= val < 0.8 <= eval; "
    "if that leaves a split empty, files are assigned by hash rank instead (each split gets at least one)"
)

# The bundled scikit-image RGB pictures, split by picture; the two stereo views show one scene, so they stay
# together. Eval and val are everyday photographs, closest to what a split-inference user would send.
BUILTIN_SPLIT = {
    "train": (
        "astronaut",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
        "stereo_motorcycle_left",
        "stereo_motorcycle_right",
        "colorwheel",
        "logo",
    ),
    "val": ("rocket",),
    "eval": ("chelsea", "coffee"),
}


@dataclass
class ImageSplits:
    """Attacker-train, attacker-val and victim-eval images as uint8 (N, 3, size, size), plus where they came from."""

    train: Tensor
    val: Tensor
    eval: Tensor
    source: str
    smoke_test_only: bool
    summary: dict[str, Any]


def load_images(data: str, size: int, counts: tuple[int, int, int], seed: int) -> ImageSplits:
    """Load (train, val, eval) images from `data`, a folder of images or "builtin", split by source file.

    Train images are seeded random resized crops with horizontal flips, cycling over the train files until
    `counts[0]`; val/eval images are one center crop per file, up to their counts (fewer when there are fewer
    files). "builtin" cuts seeded random crops from the RGB pictures bundled with scikit-image; it is meant
    for smoke tests only (a folder literally named "builtin" can be given as "./builtin").
    """
    _check_request(size, counts, seed)
    if data == "builtin":
        return _load_builtin(size, counts, seed)
    return _load_folder(Path(data), size, counts, seed)


def split_by_file(names: Sequence[str], seed: int) -> tuple[list[str], list[str], list[str]]:
    """Split file names into (train, val, eval), about 70/10/20, each list in a seeded hash order.

    A file's split depends only on its name and the seed (adding files never moves the others), except in
    small folders where a split would be empty: there the files are assigned by hash rank instead.
    """
    keys = {name: _hash_fraction(name, seed) for name in names}
    ordered = sorted(names, key=lambda name: (keys[name], name))
    train_end, val_end = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]
    splits = (
        [name for name in ordered if keys[name] < train_end],
        [name for name in ordered if train_end <= keys[name] < val_end],
        [name for name in ordered if keys[name] >= val_end],
    )
    if len(ordered) >= MIN_FILES and not all(splits):
        val_count = max(1, round(SPLIT_FRACTIONS[1] * len(ordered)))
        eval_count = max(1, round(SPLIT_FRACTIONS[2] * len(ordered)))
        train_count = len(ordered) - val_count - eval_count
        splits = (
            ordered[:train_count],
            ordered[train_count : train_count + val_count],
            ordered[train_count + val_count :],
        )
    return splits


def mean_image(images: Tensor) -> Tensor:
    """Per-pixel mean (3, H, W) in [0, 1] of a uint8 batch: the prediction of an attacker who learned nothing."""
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty uint8 batch (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    for chunk in images.split(256):  # a float copy of a whole 224-px dataset would take 4x its memory
        total += chunk.sum(dim=0, dtype=torch.float64)
    return (total / (len(images) * 255)).float()


def to_float(images: Tensor) -> Tensor:
    """uint8 images (N, 3, H, W) -> float32 in [0, 1], the range SSIM is computed in."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images.float() / 255


def _check_request(size: int, counts: tuple[int, int, int], seed: int) -> None:
    if not isinstance(size, int) or size < 1:
        raise EdgeprofError(f"--input-size must be a positive number of pixels, got {size!r}")
    if len(counts) != len(SPLIT_NAMES) or any(not isinstance(count, int) or count < 0 for count in counts):
        raise EdgeprofError(f"image counts must be three non-negative integers (train, val, eval), got {counts!r}")
    if not isinstance(seed, int) or seed < 0:
        raise EdgeprofError(f"the seed must be a non-negative integer, got {seed!r}")


def _hash_fraction(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by the name and the seed, the same on every machine and Python version."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2**53  # 53 bits: exact in a float, never rounds to 1


def _load_folder(folder: Path, size: int, counts: tuple[int, int, int], seed: int) -> ImageSplits:
    root = folder.expanduser().resolve()
    hint = "give --data a folder of images (class subfolders or flat), or --data builtin for a smoke test"
    if not root.exists():
        raise EdgeprofError(f"data folder {root} does not exist; {hint}")
    if not root.is_dir():
        raise EdgeprofError(f"data path {root} is not a folder; {hint}")
    names = _find_image_files(root)
    if not names:
        raise EdgeprofError(f"data folder {root} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); {hint}")
    usable, unreadable, too_small = _survey(root, names, size)
    if not usable and not too_small:
        raise EdgeprofError(
            f"none of the {len(names)} image files in {root} can be read (e.g. {unreadable[0]}); "
            "check that they are valid images"
        )
    if len(usable) < MIN_FILES and too_small:
        name, (width, height) = too_small[0]
        raise EdgeprofError(
            f"only {len(usable)} of the {len(usable) + len(too_small)} readable images in {root} are at least "
            f"{size} px on their short side (e.g. {name} is {width}x{height}); use a smaller --input-size "
            f"(at most {min(width, height)} for that image) or add larger images"
        )
    if len(usable) < MIN_FILES:
        unreadable_note = f" ({len(unreadable)} unreadable, e.g. {unreadable[0]})" if unreadable else ""
        raise EdgeprofError(
            f"{root} holds {len(usable)} readable image file(s){unreadable_note}; at least {MIN_FILES} are needed "
            "to split them by file into attacker-train, attacker-val and victim-eval sets; add images"
        )
    files = dict(zip(SPLIT_NAMES, split_by_file(usable, seed), strict=True))
    wanted = dict(zip(SPLIT_NAMES, counts, strict=True))
    images = {
        split: _render_split(
            open_source=lambda index, names=files[split]: _read_rgb(root / names[index]),
            source_count=len(files[split]),
            count=wanted[split] if split == "train" else min(wanted[split], len(files[split])),
            size=size,
            random_crops=split == "train",
            flips=split == "train",
            seed=seed,
            split_index=SPLIT_NAMES.index(split),
        )
        for split in SPLIT_NAMES
    }
    summary = {
        "source": f"folder:{root}",
        "files": {split: len(files[split]) for split in SPLIT_NAMES},
        "images": {split: len(images[split]) for split in SPLIT_NAMES},
        "size": size,
        "seed": seed,
        "split_rule": SPLIT_RULE,
        "crop_policy": {
            "train": f"{RANDOM_CROP_POLICY}, horizontal flip p=0.5; cycles over the train files",
            "val": CENTER_CROP_POLICY,
            "eval": CENTER_CROP_POLICY,
        },
        "skipped_unreadable": len(unreadable),
        "skipped_too_small": len(too_small),
        "skipped_examples": [*unreadable[:3], *(name for name, _ in too_small[:3])],
    }
    return ImageSplits(**images, source=f"folder:{root}", smoke_test_only=False, summary=summary)


def _load_builtin(size: int, counts: tuple[int, int, int], seed: int) -> ImageSplits:
    pictures = _builtin_pictures()
    wanted = dict(zip(SPLIT_NAMES, counts, strict=True))
    images = {
        split: _render_split(
            open_source=lambda index, names=BUILTIN_SPLIT[split]: pictures[names[index]],
            source_count=len(BUILTIN_SPLIT[split]),
            count=wanted[split],
            size=size,
            random_crops=True,
            flips=split == "train",
            seed=seed,
            split_index=SPLIT_NAMES.index(split),
        )
        for split in SPLIT_NAMES
    }
    summary = {
        "source": "builtin",
        "files": {split: len(BUILTIN_SPLIT[split]) for split in SPLIT_NAMES},
        "source_images": {split: list(BUILTIN_SPLIT[split]) for split in SPLIT_NAMES},
        "images": {split: len(images[split]) for split in SPLIT_NAMES},
        "size": size,
        "seed": seed,
        "split_rule": "by picture: the fixed lists in source_images",
        "crop_policy": {
            "train": f"{RANDOM_CROP_POLICY}, horizontal flip p=0.5; cycles over the train pictures",
            "val": f"{RANDOM_CROP_POLICY}; cycles over the val pictures",
            "eval": f"{RANDOM_CROP_POLICY}; cycles over the eval pictures",
        },
        "note": "bundled scikit-image pictures: a smoke test of the pipeline, not a leakage measurement",
    }
    return ImageSplits(**images, source="builtin", smoke_test_only=True, summary=summary)


def _find_image_files(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under `root` (any depth), skipping hidden files and folders."""
    names = []
    for folder, subfolders, filenames in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for filename in filenames:
            if not filename.startswith(".") and filename.lower().endswith(IMAGE_EXTENSIONS):
                names.append((Path(folder) / filename).relative_to(root).as_posix())
    return sorted(names)


def _survey(root: Path, names: list[str], size: int) -> tuple[list[str], list[str], list[tuple[str, tuple[int, int]]]]:
    """Sort files into usable, unreadable and smaller than `size`, reading only their headers."""
    usable, unreadable, too_small = [], [], []
    for name in names:
        try:
            with Image.open(root / name) as image:
                width, height = image.size
        except (OSError, ValueError, Image.DecompressionBombError):
            unreadable.append(name)
            continue
        if min(width, height) < size:
            too_small.append((name, (width, height)))
        else:
            usable.append(name)
    return usable, unreadable, too_small


def _read_rgb(path: Path) -> Image.Image:
    """Decode any supported image to RGB (alpha dropped, grayscale and palettes expanded)."""
    try:
        with Image.open(path) as image:
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")  # Pillow warns when converting such palettes straight to RGB
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise EdgeprofError(f"cannot decode image {path} ({error}); remove or replace the file") from error


@functools.cache
def _builtin_pictures() -> dict[str, Image.Image]:
    """The scikit-image RGB pictures that ship with the package (no download), alpha dropped."""
    from skimage import data as skimage_data  # imported here: only the builtin source needs it

    left_view, right_view, _disparity = skimage_data.stereo_motorcycle()
    arrays = {
        name: getattr(skimage_data, name)()
        for split_names in BUILTIN_SPLIT.values()
        for name in split_names
        if not name.startswith("stereo_motorcycle")
    }
    arrays.update(stereo_motorcycle_left=left_view, stereo_motorcycle_right=right_view)
    return {name: Image.fromarray(np.ascontiguousarray(array[..., :3])) for name, array in arrays.items()}


def _render_split(
    open_source: Callable[[int], Image.Image],
    source_count: int,
    count: int,
    size: int,
    random_crops: bool,
    flips: bool,
    seed: int,
    split_index: int,
) -> Tensor:
    """Cut `count` images from the sources, image k from source k mod source_count, each source opened once.

    Every image has its own random generator seeded by (seed, split, k), so the result does not depend on the
    order in which the worker threads finish.
    """
    images = torch.empty((count, 3, size, size), dtype=torch.uint8)

    def render_source(source_index: int) -> None:
        source = open_source(source_index)
        for slot in range(source_index, count, source_count):
            rng = np.random.default_rng((seed, split_index, slot))
            box = _random_crop_box(*source.size, rng) if random_crops else _center_square_box(*source.size)
            crop = source.resize((size, size), Image.Resampling.BILINEAR, box=box)
            if flips and rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            images[slot] = torch.from_numpy(np.array(crop)).permute(2, 0, 1)

    workers = min(8, os.cpu_count() or 1, max(1, min(source_count, count)))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow releases the GIL while decoding and resizing
        list(pool.map(render_source, range(min(source_count, count))))
    return images


def _random_crop_box(width: int, height: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """A random region of random area and aspect ratio (the usual RandomResizedCrop), else the center square."""
    log_aspect_range = (math.log(CROP_ASPECT_RANGE[0]), math.log(CROP_ASPECT_RANGE[1]))
    for _attempt in range(10):
        area = width * height * rng.uniform(*CROP_AREA_RANGE)
        aspect = math.exp(rng.uniform(*log_aspect_range))
        crop_width, crop_height = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            left = int(rng.integers(0, width - crop_width + 1))
            top = int(rng.integers(0, height - crop_height + 1))
            return left, top, left + crop_width, top + crop_height
    return _center_square_box(width, height)


def _center_square_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centered square of side min(width, height): resizing it equals resize-short-side + center crop."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side
