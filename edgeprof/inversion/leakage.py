"""Leakage tables: how well an honest-but-curious edge server rebuilds the input at each partition point.

`run_leakage` trains an inversion attack per partition point of a model (the profiler's clean cuts, so the
rows line up with the profile's `partition_points`) and scores its reconstructions of held-out victim images
with SSIM. z = 0 uploads the raw input (SSIM 1 by definition) and z = L uploads nothing (0 by definition,
seed 001 eq. 3). Every finished point is checkpointed in OUTDIR/checkpoints, so `resume=True` continues a
killed run to the same table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import edgeprof
from edgeprof.errors import EdgeprofError
from edgeprof.files import check_writable, write_text_atomic
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
from edgeprof.inversion.ssim import SSIM_DESCRIPTION, mse, psnr, ssim
from edgeprof.profiler.models import default_input_size, load_model
from edgeprof.profiler.static import analyze, runnable_graph
from edgeprof.profiler.timing import fixed_threads, resolve_device
from edgeprof.stats import mean_interval

ATTACKS = ("inverse-net", "rmle")
RECOGNISABLE_SSIM = 0.3  # He et al. 2019: below this a reconstruction is "unrecognisable"
SAMPLE_IMAGES = 6  # reconstructions kept per point for the picture
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preset:
    """An attack budget: image size cap, image counts, training steps and decoder width."""

    max_input_size: int
    train_images: int
    val_images: int
    eval_images: int
    steps: int
    batch_size: int
    width: int
    rmle_images: int
    rmle_iterations: int


PRESETS = {
    # Minutes on 2 CPU cores; numbers only show the shape of the curve.
    "smoke": Preset(64, 1200, 100, 100, 300, 32, 32, 8, 200),
    # A GPU at 224 px with a real image folder.
    "default": Preset(224, 10_000, 500, 500, 8_000, 64, 128, 32, 2_000),
    # Close to He et al.'s 50 epochs over 50k images.
    "paper": Preset(224, 50_000, 1_000, 1_000, 40_000, 64, 256, 32, 5_000),
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
    seed: int = 0
    resume: bool = False
    steps: int | None = None
    train_images: int | None = None
    ssim_weight: float = 0.0
    threads: int | None = None


@dataclass
class LeakageResult:
    rows: list[dict[str, Any]]
    metadata: dict[str, Any]
    samples: dict[int, torch.Tensor] = field(default_factory=dict)  # z -> uint8 reconstructions
    originals: torch.Tensor | None = None


def _selected_points(spec: str, num_points: int) -> list[int]:
    if spec == "all":
        return list(range(num_points))
    try:
        chosen = sorted({int(part) for part in spec.split(",") if part.strip()})
    except ValueError:
        raise EdgeprofError(f"--points must be 'all' or comma-separated integers z, got {spec!r}") from None
    unknown = [z for z in chosen if not 0 <= z < num_points]
    if unknown or not chosen:
        raise EdgeprofError(f"unknown partition points {unknown or spec!r}: this model has z = 0..{num_points - 1} "
                            "(see `edgeprof profile`)")
    return chosen


def _normalized(prefix: Callable[[torch.Tensor], Any], device: torch.device) -> Callable[[torch.Tensor], Any]:
    """The victim's pipeline: ImageNet normalisation, then the device-side prefix (channels-last, faster)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return lambda image: prefix(fast_layout((image - mean) / std))


def _scores(recon: torch.Tensor, truth: torch.Tensor, baseline: float) -> dict[str, Any]:
    per_image = ssim(recon, truth).cpu().double()
    mean, low, high = mean_interval(per_image.numpy())
    return {
        "ssim_mean": round(mean, 6),
        "ssim_std": round(float(per_image.std(unbiased=True)) if len(per_image) > 1 else 0.0, 6),
        "ssim_ci95_low": round(low, 6),
        "ssim_ci95_high": round(high, 6),
        "psnr_mean": round(float(psnr(recon, truth).mean()), 4),
        "mse_mean": round(float(mse(recon, truth).mean()), 6),
        "leakage_norm": round(min(1.0, max(0.0, (mean - baseline) / (1 - baseline))), 6),
        "share_ssim_above_0_3": round(float((per_image > RECOGNISABLE_SSIM).double().mean()), 6),
    }


_FLATTENS = {"flatten", "view", "reshape"}


def _spatial_shape(analysis: Any, node: Any) -> tuple[int, ...] | None:
    """(C, h, w) when the crossing value is a feature map flattened to a vector, else None."""
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
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


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_outdir(outdir: Path) -> None:
    """OUTDIR must be a writable folder, or a new one in a writable folder."""
    if outdir.exists() and not outdir.is_dir():
        raise EdgeprofError(f"cannot write to {outdir}: it is not a directory")
    check_writable(outdir / "leakage.csv" if outdir.is_dir() else outdir)


def _prepare_outdir(outdir: Path, fingerprint: str, resume: bool) -> Path:
    """OUTDIR/checkpoints, fresh or (with resume) from the same settings."""
    _check_outdir(outdir)
    checkpoints = outdir / "checkpoints"
    marker = checkpoints / "run.json"
    if marker.exists():
        previous = json.loads(marker.read_text())["fingerprint"]
        if not resume:
            raise EdgeprofError(f"{outdir} holds checkpoints of an earlier run: pass --resume to continue it, "
                                "or choose another OUTDIR")
        if previous != fingerprint:
            raise EdgeprofError(f"{outdir} holds checkpoints of a run with other settings; --resume needs the same "
                                "model, data, preset, points' budget and seed")
    elif checkpoints.exists():
        shutil.rmtree(checkpoints)  # an interrupted start without its marker holds nothing reusable
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps({"fingerprint": fingerprint}) + "\n")
    return checkpoints


def run_leakage(
    request: LeakageRequest,
    progress: Callable[[str, int, int], None] | None = None,
) -> LeakageResult:
    """The leakage table of `request.model`; `progress(label, done, total)` reports points and steps."""
    if request.preset not in PRESETS:
        raise EdgeprofError(f"unknown preset {request.preset!r}: use one of {', '.join(PRESETS)}")
    if request.attack not in ATTACKS:
        raise EdgeprofError(f"unknown attack {request.attack!r}: use one of {', '.join(ATTACKS)}")
    _check_outdir(Path(request.outdir))
    preset = PRESETS[request.preset]
    size = request.input_size or min(preset.max_input_size, default_input_size(request.model))
    budget = dataclasses.replace(
        preset,
        steps=request.steps or preset.steps,
        train_images=request.train_images or preset.train_images,
    )
    device = resolve_device(request.device)

    analysis = analyze(load_model(request.model, request.weights, size))
    num_points = len(analysis.cuts)
    points = _selected_points(request.points, num_points)
    runnable = load_model(request.model, request.weights, size, device="cpu", seed=request.seed)
    images = load_images(request.data, size, (budget.train_images, budget.val_images, budget.eval_images),
                         request.seed)
    config = InverseNetConfig(steps=budget.steps, batch_size=budget.batch_size, width=budget.width,
                              ssim_weight=request.ssim_weight)
    rmle = RmleConfig(iterations=budget.rmle_iterations)
    settings = {
        "model": request.model, "weights": runnable.weights, "weights_sha256": runnable.weights_sha256,
        "input_size": size, "preset": request.preset, "budget": dataclasses.asdict(budget),
        "attack": request.attack, "inverse_net": dataclasses.asdict(config), "rmle": dataclasses.asdict(rmle),
        "data": images.summary, "seed": request.seed, "cuts": analysis.cuts,
    }
    checkpoints = _prepare_outdir(Path(request.outdir), _fingerprint(settings), request.resume)

    graph = runnable_graph(analysis, runnable)
    graph.module.to(device, memory_format=torch.channels_last).eval()
    for parameter in graph.module.parameters():
        parameter.requires_grad_(False)
    eval_images = to_float(images.eval).to(device)
    baseline = float(ssim(mean_image(images.train).to(device).expand_as(eval_images), eval_images).mean())
    run = _Run(request, analysis, graph, images, eval_images, baseline, budget, config, rmle, device, checkpoints,
               progress)
    result = LeakageResult([], {}, originals=images.eval[:SAMPLE_IMAGES])
    seconds = {}
    with fixed_threads(request.threads if device.type == "cpu" else None) as threads:
        for done, z in enumerate(points):
            row, sample, seconds[z] = run.point(z)
            result.rows.append(row)
            if sample is not None:
                result.samples[z] = sample
            if progress:
                progress("points", done + 1, len(points))
    result.metadata = {
        "edgeprof_version": edgeprof.__version__,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": {"name": request.model, "source": runnable.source, "weights": runnable.weights,
                  "weights_sha256": runnable.weights_sha256, "input_size": size},
        "seed": request.seed,
        "preset": request.preset,
        "budget": dataclasses.asdict(budget),
        "attack": {"name": request.attack, "inverse_net": dataclasses.asdict(config),
                   "rmle": dataclasses.asdict(rmle) if request.attack == "rmle" else None},
        "data": {"source": images.source, "smoke_test_only": images.smoke_test_only, **images.summary},
        "ssim": SSIM_DESCRIPTION,
        "baseline_ssim": round(baseline, 6),
        "device": str(device),
        "threads": threads,
        "normalisation": "ImageNet mean/std before the model; SSIM on [0, 1] pixels",
        "seconds_per_point": seconds,
        "random_init_warning": None if runnable.weights != "random init" else (
            "random-init weights: deep-layer leakage is typically overstated compared with a trained model"),
    }
    return result


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
    rmle: RmleConfig
    device: torch.device
    checkpoints: Path
    progress: Callable[[str, int, int], None] | None
    last: tuple[int, dict[str, Features]] | None = None  # the previous point's cut and features

    def point(self, z: int) -> tuple[dict[str, Any], torch.Tensor | None, float]:
        """Point z's row (from its checkpoint when there is one), sample reconstructions and seconds taken."""
        saved_row, saved_sample = self.checkpoints / f"z{z}.json", self.checkpoints / f"z{z}.pt"
        if saved_row.exists():
            saved = json.loads(saved_row.read_text())
            sample = torch.load(saved_sample) if saved_sample.exists() else None
            return saved["row"], sample, saved["seconds"]
        started = time.perf_counter()
        k = self.analysis.cuts[z]
        row = {"z": z, "after": self.analysis.graph.describe_cut(k),
               "layer": self.analysis.layers[z - 1].name if z else None,
               "model": self.request.model, "input_size": self.eval_images.shape[-1]}
        if z in (0, len(self.analysis.cuts) - 1):
            row.update(self._by_definition(z, k))
            sample = None
        else:
            scores, sample = self._attack(z, k)
            row.update(scores)
            torch.save(sample, saved_sample)
        row["baseline_ssim"] = round(self.baseline, 6)
        seconds = round(time.perf_counter() - started, 2)
        write_text_atomic(saved_row, json.dumps({"row": row, "seconds": seconds}) + "\n")
        return row, sample, seconds

    def _by_definition(self, z: int, k: int) -> dict[str, Any]:
        """z = 0 uploads the input itself (SSIM 1); z = L uploads nothing (SSIM 0)."""
        value = 1.0 if z == 0 else 0.0
        shape = tuple(self.analysis.model.input_shape[1:]) if z == 0 else ()
        return {
            "feature_shape": "x".join(map(str, shape)), "decoder_input": "",
            "feature_bytes": self.analysis.model.dtype.itemsize * math.prod(shape) if shape else 0,
            "attack": "by definition", "train_images": 0, "steps": 0, "eval_images": len(self.eval_images),
            "ssim_mean": value, "ssim_std": 0.0, "ssim_ci95_low": value, "ssim_ci95_high": value,
            "psnr_mean": None, "mse_mean": 0.0 if value == 1 else None,
            "leakage_norm": value, "share_ssim_above_0_3": value,
        }

    def _features(self, k: int, spatial: tuple[int, ...] | None) -> dict[str, Features]:
        """Every split's features at cut k, continued from the previous point's features when they were kept
        (the prefix then runs once over all points, not once per point)."""
        splits = {"train": self.images.train, "val": self.images.val, "eval": self.images.eval}
        cache = self.config.cache_bytes
        if self.last is not None and self.last[0] < k and all(f.cached for f in self.last[1].values()):
            segment, previous = self.graph.segment(self.last[0], k), self.last[1]
            compute = {split: lambda index, f=previous[split]: segment(fast_layout(f.sent(index)))
                       for split in splits}
        else:
            prefix = _normalized(self.graph.segment(0, k), self.device)
            compute = {split: lambda index, images=images: prefix(to_float(images[index]).to(self.device))
                       for split, images in splits.items()}
        self.last = None  # free the previous point's features before computing these
        features = {split: Features(compute[split], images, self.device, cache, spatial)
                    for split, images in splits.items()}
        self.last = (k, features)
        return features

    def _attack(self, z: int, k: int) -> tuple[dict[str, Any], torch.Tensor]:
        if len(self.analysis.crossing[k]) != 1:
            raise EdgeprofError(f"partition point z={z} sends several tensors; leakage covers single-tensor points")
        spatial = _spatial_shape(self.analysis, self.analysis.crossing[k][0])
        seed = self.request.seed * 1009 + z
        if self.request.attack == "inverse-net":
            features = self._features(k, spatial)
            train, held_out = features["train"], features["eval"]
            report = self._reporter(f"z={z} training", self.config.steps)
            trained = train_inverse_network(train, features["val"], self.eval_images.shape[-1], self.config, seed,
                                            report)
            recon, truth, steps = reconstruct_with_decoder(trained.decoder, held_out), self.eval_images, trained.steps
            train_images, decoder_input = len(train), train.shape
        else:
            prefix = _normalized(self.graph.segment(0, k), self.device)
            if spatial is not None:  # the attacker knows the architecture: it undoes the flatten
                flat_prefix = prefix
                prefix = lambda image: flat_prefix(image).reshape(-1, *spatial)
            index = torch.arange(min(self.budget.rmle_images, len(self.images.eval)))
            truth = self.eval_images[index]
            with torch.no_grad():
                observed = prefix(truth)
            report = self._reporter(f"z={z} rMLE", self.rmle.iterations)
            with torch.enable_grad():
                recon = reconstruct_rmle(prefix, observed, tuple(truth.shape[1:]), self.rmle, seed, report)
            steps, train_images, decoder_input = self.rmle.iterations, 0, tuple(observed.shape[1:])
        sent = self.analysis.costs[self.analysis.crossing[k][0]].outputs[0][0][1:]
        scores = {
            "feature_shape": "x".join(map(str, sent)), "decoder_input": "x".join(map(str, decoder_input)),
            "feature_bytes": self.analysis.model.dtype.itemsize * math.prod(sent),
            "attack": self.request.attack, "train_images": train_images, "steps": steps,
            "eval_images": len(truth), **_scores(recon, truth, self.baseline),
        }
        sample = (recon[:SAMPLE_IMAGES].clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        return scores, sample

    def _reporter(self, label: str, total: int) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        return lambda step: self.progress(label, step, total)
