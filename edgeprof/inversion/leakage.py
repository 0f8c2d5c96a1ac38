"""Leakage tables: how well an honest-but-curious edge server rebuilds the input at each partition point.

`run_leakage` trains an inversion attack per partition point of a model (the profiler's clean cuts, so the
rows line up with the profile's `partition_points`) and scores its reconstructions of held-out victim images
with SSIM. z = 0 uploads the raw input (SSIM 1 by definition) and z = L uploads nothing (0 by definition,
seed 001 eq. 3). Every finished point is checkpointed in OUTDIR/checkpoints, so `resume=True` continues a
killed run to the same table.

Two things make a score move: which images were evaluated and how the attack's training went. The first is
measured over the evaluation images' sources (crops of one picture are one sample), the second over
`repeats` decoders trained with different seeds; the reported interval combines both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import edgeprof
from edgeprof.errors import EdgeprofError
from edgeprof.files import check_writable, folder_lock, read_json, write_text_atomic
from edgeprof.inversion.attack import (
    Features,
    InverseNetConfig,
    RmleConfig,
    fast_layout,
    reconstruct_rmle,
    reconstruct_with_decoder,
    train_inverse_network,
)
from edgeprof.inversion.data import ImageSplits, load_images, mean_image, to_float
from edgeprof.inversion.report import write_outputs
from edgeprof.inversion.ssim import SSIM_DESCRIPTION, mse, psnr, ssim
from edgeprof.profiler.models import RANDOM_INIT, default_input_size, load_model
from edgeprof.profiler.partition import _is_single_tensor
from edgeprof.profiler.static import analyze, runnable_graph
from edgeprof.profiler.timing import fixed_threads, resolve_device
from edgeprof.stats import mean_interval

ATTACKS = ("inverse-net", "rmle")
RECOGNISABLE_SSIM = 0.3  # He et al. 2019: below this a reconstruction is "unrecognisable"
SAMPLE_IMAGES = 6  # reconstructions kept per point for the picture
MIN_EVAL_SOURCES = 30  # fewer distinct evaluation images than this give an interval too wide to rank points
NORMALIZATIONS = {  # name -> (mean, std) per channel of images in [0, 1]
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "mnist": ((0.1307,), (0.3081,)),
    "unit": ((0.5,), (0.5,)),  # [-1, 1]
    "none": ((0.0,), (1.0,)),  # [0, 1] as is
}


@dataclass(frozen=True)
class Preset:
    """An attack budget: image size cap, image counts, training steps, decoder width and repeats."""

    max_input_size: int
    train_images: int
    val_images: int
    eval_images: int
    steps: int
    batch_size: int
    width: int
    rmle_images: int
    rmle_iterations: int
    repeats: int


PRESETS = {
    # Minutes on 2 CPU cores; numbers only show the shape of the curve.
    "smoke": Preset(64, 1200, 100, 100, 300, 32, 32, 8, 200, 1),
    # A GPU at 224 px with a real image folder.
    "default": Preset(224, 10_000, 500, 500, 8_000, 64, 128, 32, 2_000, 3),
    # Close to He et al.'s 50 epochs over 50k images.
    "paper": Preset(224, 50_000, 1_000, 1_000, 40_000, 64, 256, 32, 5_000, 3),
}


@dataclass
class LeakageRequest:
    """What `edgeprof leakage` was asked to do."""

    model: str
    outdir: Path
    data: str = "builtin"
    preset: str = "smoke"
    input_size: int | None = None
    points: str = "all"
    attack: str = "inverse-net"
    weights: str | None = None
    device: str = "cpu"
    seed: int = 0  # data split, crops and the target's random init
    resume: bool = False
    steps: int | None = None
    train_images: int | None = None
    ssim_weight: float = 0.0
    threads: int | None = None
    decoder_seed: int = 0  # the attack's own randomness: decoder init and batch order
    repeats: int | None = None  # decoders per point (default: the preset's)
    normalize: str = "imagenet"
    small_images: str = "upscale"
    cuts: str = "clean"  # "all": also He et al.'s points before activations and poolings
    rmle_iterations: int | None = None  # None: the preset's, more at deeper points (`rmle_settings`)
    rmle_tv_weight: float | None = None  # None: RMLE_TV_WEIGHT, more at deeper points
    rmle_learning_rate: float | None = None  # None: RmleConfig's


@dataclass
class LeakageResult:
    rows: list[dict[str, Any]]
    metadata: dict[str, Any]
    samples: dict[int, torch.Tensor] = field(default_factory=dict)  # position -> uint8 reconstructions
    originals: torch.Tensor | None = None


CUT_CHOICES = ("clean", "all")
POINT_KINDS = ("partition point", "before activation", "before pooling")
_ACTIVATIONS = {"relu", "relu6", "leakyrelu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "elu",
                "selu", "celu", "mish", "prelu", "softplus", "hardtanh"}


@dataclass(frozen=True)
class Point:
    """A place the attack is run: a partition point z of the profile, or (with cuts "all") one of He et al.
    2019's points inside a layer, just before its activation or its pooling (z None)."""

    z: int | None
    position: int  # the cut's position in the traced graph
    after: str | None
    kind: str = "partition point"


def _op_name(analysis: Any, node: Any) -> str:
    """A node's operation, lower case without underscores: "relu" for nn.ReLU, F.relu, x.relu_() and aten.relu."""
    if node.op == "call_module":
        name = type(analysis.graph.module.get_submodule(node.target)).__name__
    else:
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    return name.split(".")[0].lower().replace("_", "")


def attack_points(analysis: Any, cuts: str = "clean") -> list[Point]:
    """The profile's partition points, and with `cuts` = "all" also He et al.'s: every single-tensor position
    just before an activation or a pooling that is not a partition point already (a clean cut groups a layer
    with its activation and pooling, so "conv11" before its ReLU or "ReLU22" before its pool are inside one).
    """
    if cuts not in CUT_CHOICES:
        raise EdgeprofError(f"unknown cuts {cuts!r}: use {' or '.join(CUT_CHOICES)}")
    graph = analysis.graph
    points = [Point(z, k, graph.describe_cut(k)) for z, k in enumerate(analysis.cuts)]
    if cuts == "all":
        taken = set(analysis.cuts)
        for k in range(1, graph.num_positions):
            if k in taken or not _is_single_tensor(analysis.crossing[k], analysis.costs):
                continue
            following = _op_name(analysis, graph.work[k])
            if following in _ACTIVATIONS:
                points.append(Point(None, k, graph.describe_cut(k), "before activation"))
            elif "pool" in following:
                points.append(Point(None, k, graph.describe_cut(k), "before pooling"))
    return sorted(points, key=lambda point: point.position)


def _selected_points(spec: str, points: list[Point], cuts: str) -> list[Point]:
    """`spec`: "all", or a comma list of partition points z and point names (the `after` column)."""
    if spec == "all":
        return points
    by_z = {point.z: point for point in points if point.z is not None}
    by_name = {point.after: point for point in points if point.after}
    chosen, unknown = {}, []
    for part in (part.strip() for part in spec.split(",")):
        point = by_z.get(int(part)) if part.isdigit() else by_name.get(part)
        if point is None and part:
            unknown.append(part)
        elif point is not None:
            chosen[point.position] = point
    if unknown or not chosen:
        hint = "" if cuts == "all" else "; --cuts all adds the points before activations and poolings"
        raise EdgeprofError(f"unknown points {', '.join(unknown) or repr(spec)}: this model has z = "
                            f"0..{len(by_z) - 1} (see `edgeprof profile`) or the names in the table's after "
                            f"column{hint}")
    return [chosen[position] for position in sorted(chosen)]


def resolve_normalization(spec: str, channels: int, weights: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) the victim applies to [0, 1] images before the model.

    `spec` is a name of `NORMALIZATIONS`, "weights" (the torchvision weights' own transform) or "M,M,M/S,S,S".
    """
    if spec in NORMALIZATIONS:
        mean, std = NORMALIZATIONS[spec]
    elif spec == "weights":
        if not weights.startswith("torchvision:"):
            raise EdgeprofError(f"--normalize weights needs torchvision weights (these are {weights}); give the "
                                "mean and std as M,M,M/S,S,S instead")
        import torchvision

        transform = torchvision.models.get_weight(weights.removeprefix("torchvision:")).transforms()
        mean, std = tuple(transform.mean), tuple(transform.std)
    else:
        try:
            mean_text, std_text = spec.split("/")
            mean, std = tuple(map(float, mean_text.split(","))), tuple(map(float, std_text.split(",")))
        except ValueError:
            raise EdgeprofError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, weights, or M,M,M/S,S,S "
                                f"(per-channel mean/std of [0, 1] images), got {spec!r}") from None
    if len(mean) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise EdgeprofError(f"--normalize {spec} gives {len(mean)} means and {len(std)} standard deviations "
                            f"(all > 0 needed) for a {channels}-channel model")
    return mean, std


def _normalized(prefix: Callable[[torch.Tensor], Any], mean_std: tuple[tuple[float, ...], tuple[float, ...]],
                device: torch.device) -> Callable[[torch.Tensor], Any]:
    """The victim's pipeline: normalisation, then the device-side prefix (channels-last, faster)."""
    mean = torch.tensor(mean_std[0], device=device).view(1, -1, 1, 1)
    std = torch.tensor(mean_std[1], device=device).view(1, -1, 1, 1)
    return lambda image: prefix(fast_layout((image - mean) / std))


def _reshaped(prefix: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]
              ) -> Callable[[torch.Tensor], torch.Tensor]:
    """`prefix` with its flattened output laid back out as the (C, h, w) map it was."""
    return lambda image: prefix(image).reshape(-1, *shape)


def _in_fixed_batches(module: Callable[[torch.Tensor], torch.Tensor], batch: int | None
                      ) -> Callable[[torch.Tensor], torch.Tensor]:
    """`module` on inputs of any batch size, fed `batch` images at a time when it was exported for exactly that
    many (a torch.export program guards its input shape); the last chunk is padded and trimmed."""
    if batch is None:
        return module

    def run(x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for chunk in x.split(batch):
            padded = torch.cat([chunk, chunk[-1:].expand(batch - len(chunk), *chunk.shape[1:])])
            outputs.append(module(fast_layout(padded))[: len(chunk)])
        return torch.cat(outputs)

    return run


def _half_width(samples: torch.Tensor) -> float | None:
    """Half-width of the 95% Student-t interval of the mean of `samples`; None for a single sample."""
    if len(samples) < 2:
        return None
    mean, _, high = mean_interval(samples.numpy())
    return high - mean


def _scores(per_repeat_ssim: torch.Tensor, sources: torch.Tensor, baseline: float) -> dict[str, Any]:
    """SSIM statistics of R repeats x N evaluation images, with intervals over sources and over repeats.

    The images interval is a t-interval over the mean SSIM of each source (file or picture); the attack
    interval one over the R repeat means; the reported interval adds their half-widths in quadrature. Each
    is None when it has a single sample to go on (n = 1).
    """
    per_image = per_repeat_ssim.double().mean(dim=0)
    mean = float(per_image.mean())
    groups = sources.unique()
    by_source = torch.stack([per_image[sources == group].mean() for group in groups])
    images_half = _half_width(by_source)
    attack_half = _half_width(per_repeat_ssim.double().mean(dim=1))
    total_half = None if images_half is None else math.hypot(images_half, attack_half or 0.0)

    def bounds(half: float | None) -> tuple[float | None, float | None]:  # clipped to SSIM's range
        return (None, None) if half is None else (round(max(-1.0, mean - half), 6), round(min(1.0, mean + half), 6))

    low, high = bounds(total_half)
    images_low, images_high = bounds(images_half)
    attack_low, attack_high = bounds(attack_half)
    return {
        "repeats": len(per_repeat_ssim),
        "eval_sources": len(groups),
        "ssim_mean": round(mean, 6),
        "ssim_std": round(float(per_image.std()), 6) if len(per_image) > 1 else 0.0,
        "ssim_ci95_low": low, "ssim_ci95_high": high,
        "ssim_images_ci95_low": images_low, "ssim_images_ci95_high": images_high,
        "ssim_attack_ci95_low": attack_low, "ssim_attack_ci95_high": attack_high,
        "ssim_repeats_sd": round(float(per_repeat_ssim.double().mean(dim=1).std()), 6)
        if len(per_repeat_ssim) > 1 else None,
        "leakage_norm": round(min(1.0, max(0.0, (mean - baseline) / (1 - baseline))), 6),
        "share_ssim_above_0_3": round(float((per_image > RECOGNISABLE_SSIM).double().mean()), 6),
    }


_FLATTENS = {"flatten", "view", "reshape"}


def _spatial_shape(analysis: Any, node: Any) -> tuple[int, ...] | None:
    """(C, h, w) when the crossing value is a feature map flattened to a vector, else None."""
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    target = target.split(".")[0]  # an exported graph's aten overloads: "flatten.using_ints", "view.default"
    if node.op == "call_module":
        target = type(analysis.graph.module.get_submodule(node.target)).__name__.lower()
    if target not in _FLATTENS or not node.all_input_nodes:
        return None
    source_outputs = analysis.costs[node.all_input_nodes[0]].outputs
    out_shape = analysis.costs[node].outputs[0][0]
    if len(source_outputs) != 1 or len(source_outputs[0][0]) != 4 or len(out_shape) != 2:
        return None
    source_shape = source_outputs[0][0]
    return tuple(source_shape[1:]) if source_shape[0] == out_shape[0] else None


RMLE_TV_WEIGHT = 0.05  # the total-variation weight at the input; the deepest point gets RMLE_DEPTH_GAIN x more
RMLE_DEPTH_GAIN = 4.0


def rmle_settings(request: LeakageRequest, preset_iterations: int, depth: float) -> RmleConfig:
    """The white-box attack's budget and prior at a point `depth` of the way (0..1) through the model.

    Deeper features keep less of the image, so the optimisation has more freedom to fit noise: by default the
    total-variation prior grows linearly from RMLE_TV_WEIGHT at the input to RMLE_DEPTH_GAIN times it at the
    output, and the iterations from the preset's to twice as many. Options given explicitly are used as given.
    """
    iterations, tv_weight, learning_rate = request.rmle_iterations, request.rmle_tv_weight, request.rmle_learning_rate
    if iterations is None:
        iterations = round(preset_iterations * (1 + depth))
    if tv_weight is None:
        tv_weight = round(RMLE_TV_WEIGHT * (1 + (RMLE_DEPTH_GAIN - 1) * depth), 6)
    try:
        return RmleConfig(iterations, RmleConfig.learning_rate if learning_rate is None else learning_rate, tv_weight)
    except ValueError as error:
        raise EdgeprofError(f"{error}: check the --rmle-* options") from None


RMLE_RULE = (f"at depth d (the point's graph position over the last one): total-variation weight "
             f"{RMLE_TV_WEIGHT} x (1 + {RMLE_DEPTH_GAIN - 1:g} d) and the preset's iterations x (1 + d), unless given")


def _rmle_options(request: LeakageRequest) -> dict[str, Any]:
    return {"iterations": request.rmle_iterations, "tv_weight": request.rmle_tv_weight,
            "learning_rate": request.rmle_learning_rate}


def _check_attack_options(request: LeakageRequest) -> None:
    """Options that the chosen attack would silently ignore are refused, each with one line."""
    if request.attack not in ATTACKS:
        raise EdgeprofError(f"unknown attack {request.attack!r}: use one of {', '.join(ATTACKS)}")
    if request.repeats is not None and request.repeats < 1:
        raise EdgeprofError(f"--repeats must be at least 1, got {request.repeats}")
    if request.attack == "rmle":
        decoder_options = {"--repeats": (request.repeats or 1) > 1, "--steps": request.steps is not None,
                           "--ssim-weight": request.ssim_weight != 0}
        given = [name for name, set_ in decoder_options.items() if set_]
        if given:
            raise EdgeprofError(f"{', '.join(given)}: options of the inverse-net attack's decoders, which rmle does "
                                "not train (it optimises each image from mid-grey): use --rmle-iterations, "
                                "--rmle-tv-weight and --rmle-learning-rate")
        rmle_settings(request, 1, 0.0)  # refuses out-of-range values before any work
    else:
        given = [name for name, set_ in {"--rmle-iterations": request.rmle_iterations is not None,
                                         "--rmle-tv-weight": request.rmle_tv_weight is not None,
                                         "--rmle-learning-rate": request.rmle_learning_rate is not None}.items()
                 if set_]
        if given:
            raise EdgeprofError(f"{', '.join(given)}: options of the rmle attack; add --attack rmle, or leave them "
                                "out")
    if request.ssim_weight < 0 or not math.isfinite(request.ssim_weight):
        raise EdgeprofError(f"--ssim-weight must be 0 or more, got {request.ssim_weight}")


def _decoder_seed(decoder_seed: int, position: int, repeat: int) -> int:
    """The seed of one decoder: fixed by --decoder-seed, the point and the repeat, independent of --seed."""
    digest = hashlib.sha256(f"{decoder_seed}\0{position}\0{repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_outdir(outdir: Path) -> None:
    """OUTDIR must be a writable folder, or a new one in a writable folder."""
    if outdir.exists() and not outdir.is_dir():
        raise EdgeprofError(f"cannot write to {outdir}: it is not a directory")
    check_writable(outdir / "leakage.csv" if outdir.is_dir() else outdir)


def _damaged(path: Path, why: str) -> EdgeprofError:
    return EdgeprofError(f"leakage checkpoint {path} is damaged ({why}): delete it and run again with --resume to "
                         "recompute that point, or delete the checkpoints folder to start afresh")


def _read_marker(marker: Path) -> dict[str, Any]:
    """The checkpoints' run.json: the settings' fingerprint and whether the run finished."""
    try:
        doc = read_json(marker, "leakage checkpoint")
    except EdgeprofError as error:
        raise _damaged(marker, str(error).split(": ", 1)[-1]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("fingerprint"), str):
        raise _damaged(marker, "no settings fingerprint in it")
    return doc


def _prepare_outdir(outdir: Path, fingerprint: str, resume: bool) -> Path:
    """OUTDIR/checkpoints, fresh or (with resume) from the same settings.

    Only finished points count as an earlier run: a run that failed before finishing one (a bad model, data
    or interrupt during the first point) leaves nothing to resume, and a run that finished leaves its table, so
    in both cases the next run starts afresh. A run stopped after finishing points is continued with --resume.
    """
    _check_outdir(outdir)
    checkpoints = outdir / "checkpoints"
    marker = checkpoints / "run.json"
    finished = list(checkpoints.glob("p*.json")) if checkpoints.is_dir() else []
    previous = _read_marker(marker) if finished and marker.exists() else None
    if finished and previous is None:
        raise _damaged(marker, "missing, so the finished points' settings are unknown")
    if finished and resume and previous["fingerprint"] != fingerprint:
        raise EdgeprofError(f"{outdir} holds checkpoints of a run with other settings; --resume needs the same "
                            "model, data, preset, points' budget and seeds")
    if finished and not resume and not previous.get("finished"):
        raise EdgeprofError(f"{outdir} holds checkpoints of an unfinished run: pass --resume to continue it, "
                            f"delete {checkpoints} to start afresh, or choose another OUTDIR")
    if not (finished and resume) and checkpoints.exists():
        shutil.rmtree(checkpoints)  # nothing reusable
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps({"fingerprint": fingerprint, "finished": False}) + "\n")
    return checkpoints


def _input_size(request: LeakageRequest, cap: int) -> int:
    """--input-size, else the model's own size capped by the preset (an exported file keeps its own)."""
    if request.input_size:
        return request.input_size
    if Path(request.model).suffix == ".pt2" and Path(request.model).is_file():
        return load_model(request.model).input_shape[-1]
    return min(cap, default_input_size(request.model))


def _image_channels(analysis: Any) -> int:
    shape = analysis.model.input_shape
    if len(shape) != 4 or shape[1] not in (1, 3) or shape[2] != shape[3]:
        raise EdgeprofError(f"{analysis.model.name} takes input of shape {list(shape)}; leakage needs square "
                            "1-channel (grayscale) or 3-channel (RGB) images")
    return shape[1]


def _warnings(images: ImageSplits, runnable: Any, repeats: int, attack: str, eval_count: int) -> list[str]:
    warnings = list(images.warnings)
    sources = len(images.eval_sources.unique())
    kind = "picture(s)" if images.smoke_test_only else "image(s)"
    if sources < 2:
        warnings.append(f"the evaluation set holds {sources} {kind}: n = 1, no interval can be given; use --data "
                        f"with at least {MIN_EVAL_SOURCES * 5} images")
    elif sources < MIN_EVAL_SOURCES:
        crops = f" ({eval_count} crops of them)" if eval_count > sources else ""
        warnings.append(f"the evaluation set holds only {sources} distinct {kind}{crops}: the interval counts "
                        f"{kind}, so it is wide; at least {MIN_EVAL_SOURCES} are needed to rank nearby points "
                        f"(--data with {MIN_EVAL_SOURCES * 5} or more images)")
    if attack == "inverse-net" and repeats == 1:
        warnings.append("one decoder per point: the interval covers the evaluation images only, not the spread of "
                        "the attack's training; --repeats 3 measures it")
    if runnable.weights == RANDOM_INIT:
        warnings.append("random-init weights: deep-layer leakage is typically overstated compared with a trained "
                        "model")
    return warnings


def run_leakage(
    request: LeakageRequest,
    progress: Callable[[str, int, int], None] | None = None,
) -> LeakageResult:
    """The leakage table of `request.model`, written into `request.outdir` (`report.write_outputs`);
    `progress(label, done, total)` reports points and steps.

    The folder is locked for the run, so a second run into it is refused instead of mixing checkpoints. Each
    finished point is checkpointed; once the outputs are written the checkpoints are marked finished.
    """
    if request.preset not in PRESETS:
        raise EdgeprofError(f"unknown preset {request.preset!r}: use one of {', '.join(PRESETS)}")
    _check_attack_options(request)
    outdir = Path(request.outdir)
    _check_outdir(outdir)
    with folder_lock(outdir, "leakage folder"):
        result, checkpoints = _table(request, progress)
        write_outputs(result, outdir)
        marker = checkpoints / "run.json"
        write_text_atomic(marker, json.dumps({**_read_marker(marker), "finished": True}) + "\n")
    return result


def _table(request: LeakageRequest, progress: Callable[[str, int, int], None] | None
           ) -> tuple[LeakageResult, Path]:
    """`run_leakage`'s work inside the locked folder: the result and the checkpoints folder."""
    preset = PRESETS[request.preset]
    size = _input_size(request, preset.max_input_size)
    budget = dataclasses.replace(
        preset,
        steps=request.steps or preset.steps,
        train_images=request.train_images or preset.train_images,
        repeats=1 if request.attack == "rmle" else request.repeats or preset.repeats,
    )
    device = resolve_device(request.device)

    analysis = analyze(load_model(request.model, request.weights, size))
    channels = _image_channels(analysis)
    points = _selected_points(request.points, attack_points(analysis, request.cuts), request.cuts)
    runnable = load_model(request.model, request.weights, size, device="cpu", seed=request.seed)
    mean_std = resolve_normalization(request.normalize, channels, runnable.weights)
    images = load_images(request.data, size, (budget.train_images, budget.val_images, budget.eval_images),
                         request.seed, channels, request.small_images)
    config = InverseNetConfig(steps=budget.steps, batch_size=budget.batch_size, width=budget.width,
                              ssim_weight=request.ssim_weight)
    settings = {
        "model": request.model, "weights": runnable.weights, "weights_sha256": runnable.weights_sha256,
        "input_size": size, "preset": request.preset, "budget": dataclasses.asdict(budget),
        "attack": request.attack, "inverse_net": dataclasses.asdict(config), "rmle": _rmle_options(request),
        "data": images.summary, "seed": request.seed, "decoder_seed": request.decoder_seed, "cuts": analysis.cuts,
        "normalization": mean_std,
    }
    checkpoints = _prepare_outdir(Path(request.outdir), _fingerprint(settings), request.resume)

    graph = runnable_graph(analysis, runnable)
    graph.module.to(device, memory_format=torch.channels_last)
    if graph.method != "export":  # exported programs are already in inference form and refuse eval()
        graph.module.eval()
    for parameter in graph.module.parameters():
        parameter.requires_grad_(False)
    eval_images = to_float(images.eval).to(device)
    baseline = float(ssim(mean_image(images.train).to(device).expand_as(eval_images), eval_images).mean())
    if baseline >= 1 - 1e-9:
        raise EdgeprofError("every evaluation image equals the attacker's mean image (are all images blank or "
                            "saturated?); check the data")
    run = _Run(request, analysis, graph, images, eval_images, baseline, budget, config, mean_std, device,
               checkpoints, progress)
    result = LeakageResult([], {}, originals=images.eval[:SAMPLE_IMAGES])
    provenance = {"weights": runnable.weights, "weights_sha256": runnable.weights_sha256, "data": images.source,
                  "preset": request.preset, "ssim_weight": request.ssim_weight,
                  "decoder_seed": request.decoder_seed}
    seconds = {}
    with fixed_threads(request.threads if device.type == "cpu" else None) as threads:
        for done, point in enumerate(points):
            row, sample, seconds[point.position] = run.point(point)
            result.rows.append({**row, **provenance})
            if sample is not None:
                result.samples[point.position] = sample
            if progress:
                progress("points", done + 1, len(points))
    result.metadata = {
        "edgeprof_version": edgeprof.__version__,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"name": request.model, "source": runnable.source, "weights": runnable.weights,
                  "weights_sha256": runnable.weights_sha256, "input_size": size, "channels": channels},
        "seed": request.seed,
        "decoder_seed": request.decoder_seed,
        "preset": request.preset,
        "budget": dataclasses.asdict(budget),
        "attack": {"name": request.attack, "inverse_net": dataclasses.asdict(config),
                   "rmle": {**_rmle_options(request), "rule": RMLE_RULE} if request.attack == "rmle" else None},
        "data": {"source": images.source, "smoke_test_only": images.smoke_test_only, **images.summary},
        "ssim": SSIM_DESCRIPTION,
        "intervals": ("95% Student-t; images: over the mean SSIM of each evaluation source (file or picture); "
                      "attack: over the repeats' means; reported: the two half-widths added in quadrature"),
        "baseline_ssim": round(baseline, 6),
        "device": str(device),
        "threads": threads,
        "normalization": {"name": request.normalize, "mean": mean_std[0], "std": mean_std[1],
                          "note": "applied to [0, 1] images before the model; SSIM on [0, 1] pixels"},
        "seconds_per_point": seconds,
        "random_init_warning": None if runnable.weights != RANDOM_INIT else (
            "random-init weights: deep-layer leakage is typically overstated compared with a trained model"),
        "warnings": _warnings(images, runnable, budget.repeats, request.attack, len(images.eval)),
    }
    return result, checkpoints


@dataclass
class _Run:
    """Everything one point's attack needs."""

    request: LeakageRequest
    analysis: Any
    graph: Any
    images: ImageSplits
    eval_images: torch.Tensor
    baseline: float
    budget: Preset
    config: InverseNetConfig
    mean_std: tuple[tuple[float, ...], tuple[float, ...]]
    device: torch.device
    checkpoints: Path
    progress: Callable[[str, int, int], None] | None
    last: tuple[int, dict[str, Features]] | None = None  # the previous point's cut and features

    def point(self, point: Point) -> tuple[dict[str, Any], torch.Tensor | None, float]:
        """The point's row (from its checkpoint when there is one), sample reconstructions and seconds taken."""
        saved_row = self.checkpoints / f"p{point.position}.json"
        saved_sample = self.checkpoints / f"p{point.position}.pt"
        if saved_row.exists():
            return self._saved(point, saved_row, saved_sample)
        started = time.perf_counter()
        k = point.position
        layer = next((index for index, cut in enumerate(self.analysis.cuts) if cut >= k), 0)  # the layer holding k
        row = {"z": point.z, "position": k, "kind": point.kind, "after": point.after,
               "layer": self.analysis.layers[layer - 1].name if layer else None,
               "model": self.request.model, "input_size": self.eval_images.shape[-1]}
        if k in (0, self.analysis.cuts[-1]):
            row.update(self._by_definition(k))
            sample = None
        else:
            scores, sample = self._attack(point)
            row.update(scores)
            torch.save(sample, saved_sample)
        row["baseline_ssim"] = round(self.baseline, 6)
        seconds = round(time.perf_counter() - started, 2)
        write_text_atomic(saved_row, json.dumps({"row": row, "seconds": seconds}) + "\n")
        return row, sample, seconds

    @staticmethod
    def _saved(point: Point, saved_row: Path, saved_sample: Path) -> tuple[dict[str, Any], torch.Tensor | None,
                                                                          float]:
        """A finished point's checkpoint, checked: a damaged one is named, never half-used."""
        try:
            saved = read_json(saved_row, "leakage checkpoint")
        except EdgeprofError as error:
            raise _damaged(saved_row, str(error).split(": ", 1)[-1]) from None
        row = saved.get("row") if isinstance(saved, dict) else None
        if not isinstance(row, dict) or row.get("position") != point.position or not isinstance(
                saved.get("seconds"), (int, float)):
            raise _damaged(saved_row, f"not the row of the point at position {point.position}")
        sample = None
        if row.get("attack") != "by definition":
            try:
                sample = torch.load(saved_sample, weights_only=True)
            except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:  # truncated or foreign
                raise _damaged(saved_sample, f"unreadable: {type(error).__name__}") from None
            if not isinstance(sample, torch.Tensor) or sample.dtype != torch.uint8:
                raise _damaged(saved_sample, "not the point's reconstructions")
        return row, sample, saved["seconds"]

    def _by_definition(self, k: int) -> dict[str, Any]:
        """z = 0 uploads the input itself (SSIM 1); z = L uploads nothing (SSIM 0)."""
        value = 1.0 if k == 0 else 0.0
        shape = tuple(self.analysis.model.input_shape[1:]) if k == 0 else ()
        return {
            "feature_shape": "x".join(map(str, shape)), "decoder_input": "",
            "feature_bytes": self.analysis.model.dtype.itemsize * math.prod(shape) if shape else 0,
            "attack": "by definition", "train_images": 0, "steps": 0, "eval_images": len(self.eval_images),
            "repeats": 0, "eval_sources": len(self.images.eval_sources.unique()),
            "ssim_mean": value, "ssim_std": 0.0, "ssim_ci95_low": value, "ssim_ci95_high": value,
            "psnr_mean": None, "mse_mean": 0.0 if value == 1 else None,
            "leakage_norm": value, "share_ssim_above_0_3": value,
        }

    def _segment(self, start: int, stop: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The target's work between two cuts, runnable on batches of any size."""
        fixed_batch = self.analysis.model.input_shape[0] if self.graph.method == "export" else None
        return _in_fixed_batches(self.graph.segment(start, stop), fixed_batch)

    def _features(self, k: int, spatial: tuple[int, ...] | None) -> dict[str, Features]:
        """Every split's features at cut k, continued from the previous point's features when they were kept
        (the prefix then runs once over all points, not once per point)."""
        splits = {"train": self.images.train, "val": self.images.val, "eval": self.images.eval}
        cache = self.config.cache_bytes
        if self.last is not None and self.last[0] < k and all(f.cached for f in self.last[1].values()):
            segment, previous = self._segment(self.last[0], k), self.last[1]
            compute = {split: lambda index, f=previous[split]: segment(fast_layout(f.sent(index)))
                       for split in splits}
        else:
            prefix = _normalized(self._segment(0, k), self.mean_std, self.device)
            compute = {split: lambda index, images=images: prefix(to_float(images[index]).to(self.device))
                       for split, images in splits.items()}
        self.last = None  # free the previous point's features before computing these
        features = {split: Features(compute[split], images, self.device, cache, spatial)
                    for split, images in splits.items()}
        self.last = (k, features)
        return features

    def _attack(self, point: Point) -> tuple[dict[str, Any], torch.Tensor]:
        k = point.position
        if len(self.analysis.crossing[k]) != 1:
            raise EdgeprofError(f"partition point z={point.z} (after {point.after}) sends several tensors; leakage "
                                "covers single-tensor points")
        spatial = _spatial_shape(self.analysis, self.analysis.crossing[k][0])
        truth = self.eval_images
        started = time.perf_counter()
        if self.request.attack == "inverse-net":
            features = self._features(k, spatial)
            features_seconds = time.perf_counter() - started
            recons, training = [], []
            for repeat in range(self.budget.repeats):
                seed = _decoder_seed(self.request.decoder_seed, k, repeat)
                report = self._reporter(f"{point.after}: decoder {repeat + 1}/{self.budget.repeats}",
                                        self.config.steps)
                training_started = time.perf_counter()
                trained = train_inverse_network(features["train"], features["val"], truth.shape[-1], self.config,
                                                seed, report)
                recons.append(reconstruct_with_decoder(trained.decoder, features["eval"]))
                training.append({"seed": seed, "steps": trained.steps, "best_step": trained.best_step,
                                 "seconds": round(time.perf_counter() - training_started, 2),
                                 "best_validation_mse": round(trained.best_validation_mse, 6),
                                 "history": trained.history})
            train_images, decoder_input, steps = len(features["train"]), features["train"].shape, self.config.steps
            sources = self.images.eval_sources
        else:
            prefix = _normalized(self._segment(0, k), self.mean_std, self.device)
            if spatial is not None:  # the attacker knows the architecture: it undoes the flatten
                prefix = _reshaped(prefix, spatial)
            index = torch.arange(min(self.budget.rmle_images, len(truth)))
            truth, sources = truth[index], self.images.eval_sources[index]
            with torch.no_grad():
                observed = prefix(truth)
            features_seconds = time.perf_counter() - started
            rmle = rmle_settings(self.request, self.budget.rmle_iterations, k / self.analysis.cuts[-1])
            report = self._reporter(f"{point.after}: rMLE", rmle.iterations)
            with torch.enable_grad():
                recons = [reconstruct_rmle(prefix, observed, tuple(truth.shape[1:]), rmle, 0, report)]
            train_images, decoder_input, steps = 0, tuple(observed.shape[1:]), rmle.iterations
            training = [{"rmle": dataclasses.asdict(rmle)}]
        per_repeat = torch.stack([ssim(recon, truth).cpu() for recon in recons])
        sent = self.analysis.costs[self.analysis.crossing[k][0]].outputs[0][0][1:]
        scores = {
            "feature_shape": "x".join(map(str, sent)), "decoder_input": "x".join(map(str, decoder_input)),
            "feature_bytes": self.analysis.model.dtype.itemsize * math.prod(sent),
            "attack": self.request.attack, "train_images": train_images,
            "steps": steps, "eval_images": len(truth),
            **_scores(per_repeat, sources, self.baseline),
            "psnr_mean": round(float(torch.stack([psnr(r, truth).cpu() for r in recons]).mean()), 4),
            "mse_mean": round(float(torch.stack([mse(r, truth).cpu() for r in recons]).mean()), 6),
            "ssim_repeats": [round(float(value), 6) for value in per_repeat.double().mean(dim=1)],
            "training": training,  # each decoder's seconds include reconstructing the evaluation images
            "features_seconds": round(features_seconds, 2),
        }
        sample = (recons[0][:SAMPLE_IMAGES].clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        return scores, sample

    def _reporter(self, label: str, total: int) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        return lambda step: self.progress(label, step, total)
