"""`edgeprof data build`: the shipped profiles of the papers' model zoo, each with a leakage table attached.

Workloads (FLOPs, bytes) are profiled at the size the papers use (224 px for the torchvision models, 32 for
the LeNets, 64 for cerl-net). Leakage is an attack's result, so it costs training time: it is computed with
the strongest budget this machine allows (`LEAKAGE_PRESET` at `LEAKAGE_SIZE` px at most) and attached to
the full-size profile when both have the same partition points; every point's `leakage.source`, and the
file's `provenance` block, say which weights, resolution and budget produced it. Leakage runs checkpoint
in WORKDIR, so an interrupted build resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import edgeprof
from edgeprof.data import shipped_dir
from edgeprof.errors import EdgeprofError
from edgeprof.files import write_json_atomic
from edgeprof.inversion.leakage import LeakageRequest, run_leakage
from edgeprof.inversion.report import attach_leakage, read_leakage_table
from edgeprof.profiler.models import default_input_size
from edgeprof.profiler.schema import write_profile
from edgeprof.profiler.static import profile_model

SEED_001_ZOO = ("lenet7", "lenet9", "lenet12", "resnet18", "resnet34", "resnet50", "vgg13", "vgg16", "vgg19")
SHIPPED_MODELS = (*SEED_001_ZOO, "mobilenet_v3_large", "cerl-net")
LEAKAGE_PRESET = "smoke"
LEAKAGE_SIZE = 64


@dataclass
class BuildSettings:
    models: tuple[str, ...] = SHIPPED_MODELS
    outdir: Path | None = None  # default: the package's data/profiles
    workdir: Path = Path("edgeprof-data-work")
    leakage_preset: str = LEAKAGE_PRESET
    leakage_size: int = LEAKAGE_SIZE
    seed: int = 0
    threads: int | None = None


def check_build(settings: BuildSettings) -> None:
    """Refuse a build that could not finish, before any folder is made or any model is trained."""
    from edgeprof.profiler.models import list_models

    if not settings.models:
        raise EdgeprofError("--models names no model: give comma-separated names, or leave it out for the whole zoo")
    known = {entry.name for entry in list_models()}
    unknown = [name for name in settings.models if name not in known]
    if unknown:
        raise EdgeprofError(f"unknown model(s) {', '.join(unknown)}: `edgeprof models` lists them")
    for folder, option in ((settings.outdir, "--output"), (settings.workdir, "--workdir")):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise EdgeprofError(f"{option} {folder} is a file; give a folder")


def build_one(name: str, settings: BuildSettings, progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Profile `name`, run (or resume) its leakage attack and write the profile with leakage attached."""
    outdir = settings.outdir or shipped_dir()
    outdir.mkdir(parents=True, exist_ok=True)
    size = default_input_size(name)
    leak_size = min(settings.leakage_size, size)
    leak_dir = settings.workdir / name
    leak_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    request = LeakageRequest(name, leak_dir, preset=settings.leakage_preset, input_size=leak_size, device="cpu",
                             seed=settings.seed, resume=True, threads=settings.threads)
    result = run_leakage(request, progress)  # writes leak_dir/leakage.csv
    profile = profile_model(name)
    budget = result.metadata["budget"]
    source = (f"edgeprof leakage {result.metadata['attack']['name']}, {result.metadata['model']['weights']}, "
              f"{leak_size} px, {settings.leakage_preset} preset ({budget['train_images']} images, "
              f"{budget['steps']} steps), {'builtin images' if result.metadata['data']['smoke_test_only'] else 'data'}")
    attach_leakage(profile, read_leakage_table(leak_dir / "leakage.csv"), source, allow_other_size=True)
    profile["provenance"] = {
        "built_by": f"edgeprof {edgeprof.__version__} `edgeprof data build`",
        "workload": f"static profile at {size} px, float32, batch 1, weights: {profile['model']['weights']}",
        "leakage": {"input_size": leak_size, "preset": settings.leakage_preset, "budget": budget,
                    "baseline_ssim": result.metadata["baseline_ssim"], "data": result.metadata["data"]["source"],
                    "weights": result.metadata["model"]["weights"], "seed": settings.seed,
                    "seconds": round(time.perf_counter() - started, 1)},
    }
    path = outdir / f"{name}.json"
    write_profile(profile, path)
    write_json_atomic(leak_dir / "provenance.json", profile["provenance"])
    return path
