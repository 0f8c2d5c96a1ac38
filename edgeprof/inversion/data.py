"""Images for inversion attacks: the attacker's train/val sets and the victim's eval set, split by source file.

Decoders trained on crops of the very images they are evaluated on score far too high, so every source file
(or, for the bundled images, every source picture; for CIFAR and MNIST, every record) belongs to exactly one
split. Images are kept as uint8 (N, C, size, size) tensors, C = 3 (RGB) or 1 (grayscale), so that a 10k-image
224-px set takes about 1.5 GB instead of 6 GB.

Sources: a folder of image files (ImageFolder class subfolders or flat), CIFAR-10/100 in torchvision's
on-disk format (`cifar-10-batches-py`, `cifar-100-python`), MNIST-style IDX files in torchvision's layout
(`MNIST/raw/train-images-idx3-ubyte[.gz]`, also FashionMNIST and KMNIST), or "builtin" (scikit-image's
bundled pictures, for smoke tests). Decoding and resizing use Pillow.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from edgeprof.errors import EdgeprofError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
SPLIT_NAMES = ("train", "val", "eval")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
MIN_FILES = len(SPLIT_NAMES)
SMALL_IMAGE_POLICIES = ("upscale", "skip")
CHANNELS = (1, 3)
RECORD_VAL_FRACTION = 0.125  # of a record dataset's training records, held out as the attacker's val set

RANDOM_CROP_POLICY = (
    f"random resized crop (area {CROP_AREA_RANGE[0]}-{CROP_AREA_RANGE[1]} of the image, aspect 3/4-4/3, "
    "bilinear), seeded per image"
)
CENTER_CROP_POLICY = "resize the short side to size (bilinear), then center crop; one image per file"
SPLIT_RULE = (
    "by file: sha256 of '<seed>\\0<relative path>' mapped to [0, 1); train < 0.7 <= val < 0.8 <= eval; "
    "if that leaves a split empty, files are assigned by hash rank instead (each split gets at least one)"
)

# The bundled scikit-image pictures, split by picture; the two stereo views show one scene, so they stay
# together. Eval holds everyday colour photographs, closest to what a split-inference user would send; val
# holds six pictures (grayscale ones as RGB with equal channels), so that early stopping does not follow the
# quirks of one picture.
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
    "val": ("rocket", "camera", "coins", "clock", "gravel", "page"),
    "eval": ("chelsea", "coffee"),
}


@dataclass
class ImageSplits:
    """Attacker-train, attacker-val and victim-eval images as uint8 (N, C, size, size), plus where they came from.

    `eval_sources[i]` is the index of the file (or picture) that eval image i was cut from: crops of one
    picture are not independent samples, so intervals count sources, not crops. `warnings` are things the
    user should hear about (upscaled, skipped or duplicate files).
    """

    train: Tensor
    val: Tensor
    eval: Tensor
    source: str
    smoke_test_only: bool
    summary: dict[str, Any]
    eval_sources: Tensor
    warnings: list[str] = field(default_factory=list)


def load_images(data: str, size: int, counts: tuple[int, int, int], seed: int, channels: int = 3,
                small_images: str = "upscale") -> ImageSplits:
    """Load (train, val, eval) images from `data`, split by source file (or record).

    `data` is "builtin", a folder of image files, or a folder holding CIFAR or MNIST files in torchvision's
    on-disk format. For image folders, train images are seeded random resized crops with horizontal flips,
    cycling over the train files until `counts[0]`; val/eval images are one center crop per file, up to
    their counts. For CIFAR/MNIST, the attacker's images come from the dataset's training records (a seeded
    1/8 of them held out for val) and the victim's from its test records, each resized whole. "builtin" cuts
    seeded random crops from the pictures bundled with scikit-image; it is meant for smoke tests only (a
    folder literally named "builtin" can be given as "./builtin"). Images smaller than `size` are upscaled
    (`small_images="upscale"`, with a warning) or skipped ("skip").
    """
    _check_request(size, counts, seed, channels, small_images)
    if data == "builtin":
        return _load_builtin(size, counts, seed, channels)
    root = _existing_folder(Path(data))
    records = _find_records(root)
    if records is not None:
        return _load_records(records, size, counts, seed, channels, small_images)
    return _load_folder(root, size, counts, seed, channels, small_images)


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
    """Per-pixel mean (C, H, W) in [0, 1] of a uint8 batch: the prediction of an attacker who learned nothing."""
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty uint8 batch (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    for chunk in images.split(256):  # a float copy of a whole 224-px dataset would take 4x its memory
        total += chunk.sum(dim=0, dtype=torch.float64)
    return (total / (len(images) * 255)).float()


def to_float(images: Tensor) -> Tensor:
    """uint8 images (N, C, H, W) -> float32 in [0, 1], the range SSIM is computed in."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images.float() / 255


def _check_request(size: int, counts: tuple[int, int, int], seed: int, channels: int, small_images: str) -> None:
    if not isinstance(size, int) or size < 1:
        raise EdgeprofError(f"--input-size must be a positive number of pixels, got {size!r}")
    if len(counts) != len(SPLIT_NAMES) or any(not isinstance(count, int) or count < 0 for count in counts):
        raise EdgeprofError(f"image counts must be three non-negative integers (train, val, eval), got {counts!r}")
    if not isinstance(seed, int) or seed < 0:
        raise EdgeprofError(f"the seed must be a non-negative integer, got {seed!r}")
    if channels not in CHANNELS:
        raise EdgeprofError(f"images can have 1 (grayscale) or 3 (RGB) channels, not {channels!r}")
    if small_images not in SMALL_IMAGE_POLICIES:
        raise EdgeprofError(f"unknown small-image policy {small_images!r}: use {' or '.join(SMALL_IMAGE_POLICIES)}")


def _hash_fraction(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by the name and the seed, the same on every machine and Python version."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2**53  # 53 bits: exact in a float, never rounds to 1


_DATA_HINT = ("give --data a folder of images (class subfolders or flat), CIFAR or MNIST files in torchvision's "
              "layout, or --data builtin for a smoke test")


def _existing_folder(folder: Path) -> Path:
    root = folder.expanduser().resolve()
    if not root.exists():
        raise EdgeprofError(f"data folder {root} does not exist; {_DATA_HINT}")
    if not root.is_dir():
        raise EdgeprofError(f"data path {root} is not a folder; {_DATA_HINT}")
    return root


def _load_folder(root: Path, size: int, counts: tuple[int, int, int], seed: int, channels: int,
                 small_images: str) -> ImageSplits:
    names, duplicates = _find_image_files(root)
    if not names:
        raise EdgeprofError(f"data folder {root} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); "
                            f"{_DATA_HINT}")
    survey = _survey(root, names, size)
    usable = survey.fitting + ([name for name, _ in survey.small] if small_images == "upscale" else [])
    usable.sort()
    if not usable and not survey.small:
        if survey.too_large:
            name, (width, height) = survey.too_large[0]
            raise EdgeprofError(
                f"every readable image in {root} is larger than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} "
                f"pixels (e.g. {name} is {width}x{height}); downscale the images, or raise "
                "PIL.Image.MAX_IMAGE_PIXELS when calling edgeprof from Python"
            )
        raise EdgeprofError(
            f"none of the {len(names)} image files in {root} can be read (e.g. {survey.unreadable[0]}); "
            "check that they are valid images"
        )
    if len(usable) < MIN_FILES and survey.small:
        name, (width, height) = survey.small[0]
        raise EdgeprofError(
            f"only {len(usable)} of the {len(survey.fitting) + len(survey.small)} readable images in {root} are at "
            f"least {size} px on their short side (e.g. {name} is {width}x{height}); use a smaller --input-size "
            f"(at most {min(width, height)} for that image), --small-images upscale, or add larger images"
        )
    if len(usable) < MIN_FILES:
        unreadable_note = f" ({len(survey.unreadable)} unreadable, e.g. {survey.unreadable[0]})" if survey.unreadable \
            else ""
        raise EdgeprofError(
            f"{root} holds {len(usable)} readable image file(s){unreadable_note}; at least {MIN_FILES} are needed "
            "to split them by file into attacker-train, attacker-val and victim-eval sets; add images"
        )
    files = dict(zip(SPLIT_NAMES, split_by_file(usable, seed), strict=True))
    wanted = dict(zip(SPLIT_NAMES, counts, strict=True))
    images = {
        split: _render_split(
            open_source=lambda index, names=files[split]: _decode(root / names[index], channels),
            source_count=len(files[split]),
            count=wanted[split] if split == "train" else min(wanted[split], len(files[split])),
            size=size,
            channels=channels,
            random_crops=split == "train",
            flips=split == "train",
            seed=seed,
            split_index=SPLIT_NAMES.index(split),
        )
        for split in SPLIT_NAMES
    }
    upscaled = len(survey.small) if small_images == "upscale" else 0
    summary = {
        "source": f"folder:{root}",
        "files": {split: len(files[split]) for split in SPLIT_NAMES},
        "images": {split: len(images[split]) for split in SPLIT_NAMES},
        "size": size,
        "channels": channels,
        "seed": seed,
        "split_rule": SPLIT_RULE,
        "crop_policy": {
            "train": f"{RANDOM_CROP_POLICY}, horizontal flip p=0.5; cycles over the train files",
            "val": CENTER_CROP_POLICY,
            "eval": CENTER_CROP_POLICY,
        },
        "small_images": small_images,
        "upscaled": upscaled,
        "skipped_unreadable": len(survey.unreadable),
        "skipped_too_small": len(survey.small) - upscaled,
        "skipped_too_large": len(survey.too_large),
        "duplicate_paths": duplicates,
        "skipped_examples": [*survey.unreadable[:3], *(name for name, _ in survey.too_large[:3]),
                             *(name for name, _ in survey.small[:3] if not upscaled)],
    }
    warnings = _folder_warnings(survey, upscaled, duplicates, size)
    return ImageSplits(**images, source=f"folder:{root}", smoke_test_only=False, summary=summary,
                       eval_sources=torch.arange(len(images["eval"])), warnings=warnings)


def _folder_warnings(survey: _Survey, upscaled: int, duplicates: int, size: int) -> list[str]:
    warnings = []
    if upscaled:
        name, (width, height) = survey.small[0]
        warnings.append(f"{upscaled} image(s) smaller than {size} px were upscaled (e.g. {name}, {width}x{height}); "
                        "upscaled images are smooth and easier to rebuild, so SSIM reads high")
    if survey.too_large:
        name, (width, height) = survey.too_large[0]
        warnings.append(f"skipped {len(survey.too_large)} image(s) over Pillow's limit of "
                        f"{Image.MAX_IMAGE_PIXELS:,} pixels (e.g. {name}, {width}x{height}); downscale them to use "
                        "them")
    if survey.unreadable:
        warnings.append(f"skipped {len(survey.unreadable)} unreadable file(s) (e.g. {survey.unreadable[0]})")
    if duplicates:
        warnings.append(f"{duplicates} path(s) lead to a file already found under another name (symlinks); each "
                        "file was used once")
    return warnings


def _load_builtin(size: int, counts: tuple[int, int, int], seed: int, channels: int) -> ImageSplits:
    pictures = _builtin_pictures()
    wanted = dict(zip(SPLIT_NAMES, counts, strict=True))
    images = {
        split: _render_split(
            open_source=lambda index, names=BUILTIN_SPLIT[split]: _convert(pictures[names[index]], channels, "builtin"),
            source_count=len(BUILTIN_SPLIT[split]),
            count=wanted[split],
            size=size,
            channels=channels,
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
        "channels": channels,
        "seed": seed,
        "split_rule": "by picture: the fixed lists in source_images",
        "crop_policy": {
            "train": f"{RANDOM_CROP_POLICY}, horizontal flip p=0.5; cycles over the train pictures",
            "val": f"{RANDOM_CROP_POLICY}; cycles over the val pictures",
            "eval": f"{RANDOM_CROP_POLICY}; cycles over the eval pictures",
        },
        "note": "bundled scikit-image pictures: a smoke test of the pipeline, not a leakage measurement",
    }
    return ImageSplits(**images, source="builtin", smoke_test_only=True, summary=summary,
                       eval_sources=torch.arange(len(images["eval"])) % len(BUILTIN_SPLIT["eval"]))


def _find_image_files(root: Path) -> tuple[list[str], int]:
    """Relative POSIX paths of the image files under `root` (any depth), skipping hidden files and folders, and
    how many further paths were skipped because they lead to a file already found (symlinks).

    Each real folder is walked once (a link back up the tree is not a loop) and each real file is listed
    once, under its first name in sorted walking order, so no file can land in two splits.
    """
    names, seen_folders, seen_files, duplicates = [], set(), set(), 0
    for folder, subfolders, filenames in os.walk(root, followlinks=True):
        real_folder = os.path.realpath(folder)
        if real_folder in seen_folders:
            subfolders[:] = []
            continue
        seen_folders.add(real_folder)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith(".") or not filename.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(folder) / filename
            real_file = os.path.realpath(path)
            if real_file in seen_files:
                duplicates += 1
                continue
            seen_files.add(real_file)
            names.append(path.relative_to(root).as_posix())
    return sorted(names), duplicates


@dataclass
class _Survey:
    """Files sorted by what their headers say: fitting `size`, smaller, over Pillow's pixel limit, unreadable."""

    fitting: list[str] = field(default_factory=list)
    small: list[tuple[str, tuple[int, int]]] = field(default_factory=list)
    too_large: list[tuple[str, tuple[int, int]]] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _headers_of_any_size() -> Iterator[int | None]:
    """Read image headers without Pillow's decompression-bomb check (it would call a huge image unreadable);
    yields the limit that applies to decoding."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield limit
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _survey(root: Path, names: list[str], size: int) -> _Survey:
    """Sort files by their headers (no pixels are decoded)."""
    survey = _Survey()
    with _headers_of_any_size() as limit:
        for name in names:
            try:
                with Image.open(root / name) as image:
                    width, height = image.size
            except (OSError, ValueError, Image.DecompressionBombError):
                survey.unreadable.append(name)
                continue
            if limit is not None and width * height > limit:
                survey.too_large.append((name, (width, height)))
            elif min(width, height) < size:
                survey.small.append((name, (width, height)))
            else:
                survey.fitting.append(name)
    return survey


def _decode(path: Path, channels: int) -> Image.Image:
    """Decode an image file to RGB (or grayscale for `channels` = 1), upright as its EXIF orientation says."""
    try:
        with Image.open(path) as image:
            return _convert(ImageOps.exif_transpose(image), channels, str(path))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise EdgeprofError(f"cannot decode image {path} ({error}); remove or replace the file") from error


def _convert(image: Image.Image, channels: int, name: str) -> Image.Image:
    """RGB or L with 8 bits per channel: 16-bit and 32-bit integer images are scaled from 0..65535 (a plain
    `convert` would clip them to white), float images from 0..1; palettes and grayscale are expanded, alpha
    dropped."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        full_scale = 1.0 if image.mode == "F" else 65535.0
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > full_scale:
            raise EdgeprofError(f"image {name} (mode {image.mode}) has values {low:g}..{high:g}, outside the "
                                f"0..{full_scale:g} this mode is read in; save it as an 8- or 16-bit image")
        image = Image.fromarray(np.round(values * (255 / full_scale)).astype(np.uint8))
    elif image.mode in ("P", "PA") and ("transparency" in image.info or image.mode == "PA"):
        image = image.convert("RGBA")  # Pillow warns when converting such palettes straight to RGB
    return image.convert("L" if channels == 1 else "RGB")


@functools.cache
def _builtin_pictures() -> dict[str, Image.Image]:
    """The scikit-image pictures that ship with the package (no download), alpha dropped."""
    from skimage import data as skimage_data  # only the builtin source needs it

    left_view, right_view, _disparity = skimage_data.stereo_motorcycle()
    arrays = {
        name: getattr(skimage_data, name)()
        for split_names in BUILTIN_SPLIT.values()
        for name in split_names
        if not name.startswith("stereo_motorcycle")
    }
    arrays.update(stereo_motorcycle_left=left_view, stereo_motorcycle_right=right_view)
    return {name: Image.fromarray(np.ascontiguousarray(array[..., :3] if array.ndim == 3 else array))
            for name, array in arrays.items()}


def _render_split(
    open_source: Callable[[int], Image.Image],
    source_count: int,
    count: int,
    size: int,
    channels: int,
    random_crops: bool,
    flips: bool,
    seed: int,
    split_index: int,
) -> Tensor:
    """Cut `count` images from the sources, image k from source k mod source_count, each source opened once.

    Every image has its own random generator seeded by (seed, split, k), so the result does not depend on the
    order in which the worker threads finish.
    """
    images = torch.empty((count, channels, size, size), dtype=torch.uint8)

    def render_source(source_index: int) -> None:
        source = open_source(source_index)
        for slot in range(source_index, count, source_count):
            rng = np.random.default_rng((seed, split_index, slot))
            box = _random_crop_box(*source.size, rng) if random_crops else _center_square_box(*source.size)
            crop = source.resize((size, size), Image.Resampling.BILINEAR, box=box)
            if flips and rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            images[slot] = _as_tensor(crop)

    workers = min(8, os.cpu_count() or 1, max(1, min(source_count, count)))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow releases the GIL while decoding and resizing
        list(pool.map(render_source, range(min(source_count, count))))
    return images


def _as_tensor(image: Image.Image) -> Tensor:
    """A Pillow RGB or L image as a uint8 (C, H, W) tensor."""
    array = np.array(image)
    return torch.from_numpy(array[..., None] if array.ndim == 2 else array).permute(2, 0, 1)


# --- CIFAR and MNIST in torchvision's on-disk formats ---------------------------------------------------------

_CIFAR_FOLDERS = {"cifar-10-batches-py": "cifar-10", "cifar-100-python": "cifar-100"}
_IDX_IMAGES = ("-images-idx3-ubyte", "-images-idx3-ubyte.gz")


@dataclass
class _Records:
    """A dataset of fixed-size records with its own train/test split."""

    name: str  # cifar-10, cifar-100, or the IDX dataset's folder name (MNIST, FashionMNIST, ...)
    folder: Path
    train_files: list[Path]
    test_files: list[Path]

    def read(self, files: list[Path]) -> np.ndarray:
        """All records of `files` as uint8 (N, H, W, C)."""
        parts = [_read_cifar(path) if self.name.startswith("cifar") else _read_idx(path) for path in files]
        return np.concatenate(parts)


def _find_records(root: Path) -> _Records | None:
    """CIFAR batches or IDX image files at `root` or where torchvision puts them below it; None for a plain
    image folder."""
    for folder_name, name in _CIFAR_FOLDERS.items():
        for folder in (root, root / folder_name):
            if name == "cifar-10":
                train, test = sorted(folder.glob("data_batch_*")), [folder / "test_batch"]
            else:
                train, test = [folder / "train"], [folder / "test", folder / "meta"]
            if train and all(path.is_file() for path in train + test):
                return _Records(name, folder, train, test[:1])
    candidates = [root, root / "raw", *sorted(root.glob("*/raw"))]
    found = {folder: sorted(p for p in folder.iterdir() if p.name.endswith(_IDX_IMAGES))
             for folder in candidates if folder.is_dir()}
    found = {folder: files for folder, files in found.items() if files}
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(str(folder.relative_to(root)) for folder in found)
        raise EdgeprofError(f"{root} holds several IDX datasets ({names}); point --data at one of them")
    folder, files = next(iter(found.items()))
    train = [p for p in files if p.name.startswith("train")][:1]
    test = [p for p in files if p.name.startswith("t10k") or p.name.startswith("test")][:1]
    if not train or not test:
        raise EdgeprofError(f"{folder} holds IDX image files but not both train-images-idx3-ubyte and "
                            "t10k-images-idx3-ubyte; add the missing one")
    name = folder.parent.name if folder.name == "raw" and folder != root / "raw" else folder.name
    return _Records(name, folder, train, test)


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR's pickled batches, refusing every class except numpy's array machinery (a pickle can run
    code)."""

    _ALLOWED = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                          ("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor"),
                          ("_codecs", "encode")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_cifar(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as handle:
            batch = _CifarUnpickler(handle, encoding="latin1").load()  # how torchvision reads these Python 2 pickles
        data = np.asarray(batch["data"], dtype=np.uint8)
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as error:
        raise EdgeprofError(f"{path} is not a CIFAR batch in torchvision's python format ({error})") from None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes with 3 dimensions (N, H, W), gzipped or not."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise EdgeprofError(f"cannot read {path}: {error}") from None
    if len(raw) < 16 or raw[:4] != b"\x00\x00\x08\x03":
        raise EdgeprofError(f"{path} is not an IDX file of 8-bit images (magic 0x00000803)")
    count, height, width = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    if len(raw) != 16 + count * height * width:
        raise EdgeprofError(f"{path} is truncated: its header promises {count} images of {height}x{width}")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(count, height, width, 1)


def _load_records(records: _Records, size: int, counts: tuple[int, int, int], seed: int, channels: int,
                  small_images: str) -> ImageSplits:
    train_records, test_records = records.read(records.train_files), records.read(records.test_files)
    native = train_records.shape[1]
    if native < size and small_images == "skip":
        raise EdgeprofError(f"{records.name} images are {native} px, smaller than --input-size {size}; use "
                            f"--input-size {native} or --small-images upscale")
    held_out = np.array([_hash_fraction(f"train:{index}", seed) < RECORD_VAL_FRACTION
                         for index in range(len(train_records))], dtype=bool)
    pools = {"train": np.flatnonzero(~held_out), "val": np.flatnonzero(held_out),
             "eval": np.arange(len(test_records))}
    images, chosen = {}, {}
    for split_index, split in enumerate(SPLIT_NAMES):
        rng = np.random.default_rng((seed, split_index))
        pool = pools[split][rng.permutation(len(pools[split]))]
        count = counts[split_index] if split == "train" else min(counts[split_index], len(pool))
        chosen[split] = np.resize(pool, count) if len(pool) else pool[:0]  # train cycles when it needs more
        source = test_records if split == "eval" else train_records
        flips = split == "train" and count > len(pool)
        images[split] = _resize_records(source[chosen[split]], size, channels, flips, rng)
    summary = {
        "source": f"{records.name}:{records.folder}",
        "records": {"train": int((~held_out).sum()), "val": int(held_out.sum()), "eval": len(test_records)},
        "images": {split: len(images[split]) for split in SPLIT_NAMES},
        "size": size,
        "channels": channels,
        "native_size": native,
        "seed": seed,
        "split_rule": (f"the dataset's training records for the attacker (a seeded {RECORD_VAL_FRACTION:g} of them, "
                       "by sha256 of '<seed>\\0train:<index>', as its val set), its test records for the victim; "
                       "a seeded random subset of each"),
        "crop_policy": f"whole records resized from {native} to {size} px (bilinear)"
                       + ("; horizontal flips when train cycles" if len(chosen["train"]) > len(pools["train"]) else ""),
    }
    warnings = [] if native >= size else [
        (f"{records.name} images are {native} px and were upscaled to {size} px: upscaled images are smooth and "
         "easier to rebuild, so SSIM reads high")]
    return ImageSplits(**images, source=summary["source"], smoke_test_only=False, summary=summary,
                       eval_sources=torch.arange(len(images["eval"])), warnings=warnings)


def _resize_records(records: np.ndarray, size: int, channels: int, flips: bool, rng: np.random.Generator) -> Tensor:
    """uint8 (N, H, W, C) records -> uint8 (N, channels, size, size)."""
    images = torch.empty((len(records), channels, size, size), dtype=torch.uint8)
    flip = rng.random(len(records)) < 0.5 if flips else np.zeros(len(records), dtype=bool)
    for index, record in enumerate(records):
        image = _convert(Image.fromarray(record[..., 0] if record.shape[-1] == 1 else record), channels, "record")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        if flip[index]:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        images[index] = _as_tensor(image)
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
