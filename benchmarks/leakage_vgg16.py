"""Benchmark: VGG16 leakage table with the smoke preset at 64 px on the CPU (and the default preset at 224 px
when a GPU is present), with the time per point, next to the published reference numbers.

Writes benchmarks/results/leakage_vgg16.json and copies the run's pictures next to it. Seed 001 quotes VGG16
SSIM 0.99 at layer 2, 0.59 at layer 8 and 0.35 at layer 14; our z counts computational layers on the device
(13 convs then 3 linear layers), so layer l is z = l under the "count conv/fc layers" reading.

    python benchmarks/leakage_vgg16.py [--points all] [--threads 2] [--gpu-preset]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.inversion.leakage import LeakageRequest, run_leakage

RESULTS = Path(__file__).parent / "results"
SEED_001_VGG16 = {2: 0.99, 8: 0.59, 14: 0.35}  # layer -> SSIM, primary source unverified (research notes 0, 1.5)
HE_2019_CIFAR = {"conv11": 0.9993, "ReLU22": 0.6939, "ReLU32": 0.3124}  # black-box inverse net, same set


def run(preset: str, size: int, device: str, points: str, threads: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_leakage(LeakageRequest("vgg16", Path(tmp), preset=preset, input_size=size, points=points,
                                            device=device, threads=threads))
        seconds = time.perf_counter() - started
        for name in ("reconstructions.png", "leakage_curve.png"):
            shutil.copy(Path(tmp) / name, RESULTS / f"leakage_vgg16_{preset}_{size}px_{name}")
    rows = [{key: row[key] for key in ("z", "after", "layer", "feature_shape", "ssim_mean", "ssim_ci95_low",
                                       "ssim_ci95_high", "psnr_mean", "leakage_norm", "share_ssim_above_0_3")}
            | {"seconds": result.metadata["seconds_per_point"][row["z"]]} for row in result.rows]
    return {
        "preset": preset, "input_size": size, "device": device, "threads": result.metadata["threads"],
        "weights": result.metadata["model"]["weights"], "data": result.metadata["data"]["source"],
        "budget": result.metadata["budget"], "baseline_ssim": result.metadata["baseline_ssim"],
        "total_seconds": round(seconds, 1), "rows": rows,
        "seed_001_comparison": [
            {"layer": layer, "seed_001_ssim": ssim, "ours_z": layer,
             "ours_ssim": next((r["ssim_mean"] for r in rows if r["z"] == layer), None),
             "ours_after": next((r["after"] for r in rows if r["z"] == layer), None)}
            for layer, ssim in SEED_001_VGG16.items()
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="all")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--gpu-preset", action="store_true", help="also the default preset at 224 px (needs a GPU)")
    parser.add_argument("-o", "--output", default=str(RESULTS / "leakage_vgg16.json"))
    args = parser.parse_args()
    runs = [run("smoke", 64, "cpu", args.points, args.threads)]
    if args.gpu_preset and torch.cuda.is_available():
        runs.append(run("default", 224, "cuda", args.points, None))
    result = {
        "benchmark": "leakage_vgg16",
        "edgeprof_version": edgeprof.__version__,
        "torch": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "gpu_run": "done" if len(runs) > 1 else "no GPU here (or --gpu-preset not given)",
        "reference": {"seed_001_vgg16": SEED_001_VGG16, "he_2019_cifar10_black_box": HE_2019_CIFAR},
        "runs": runs,
    }
    write_text_atomic(args.output, json.dumps(result, indent=1) + "\n")
    for entry in runs:
        print(f"{entry['preset']} {entry['input_size']} px on {entry['device']}: {entry['total_seconds']} s, "
              f"baseline {entry['baseline_ssim']:.3f}")
        for row in entry["rows"]:
            print(f"  z={row['z']:2d} {row['after'] or 'input':14s} {row['feature_shape']:>10s} "
                  f"SSIM {row['ssim_mean']:.3f} [{row['ssim_ci95_low']:.3f}, {row['ssim_ci95_high']:.3f}] "
                  f"{row['seconds']:6.1f} s")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
