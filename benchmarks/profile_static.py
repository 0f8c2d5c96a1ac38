"""Benchmark: wall time of a full static profile (count, cut, write JSON) against fvcore's count-only time.

Both sides are timed in the same run, on the CPU, as the median of --repeats runs after one warm-up run.
edgeprof's time includes building the model (on the meta device), tracing, counting, choosing the cuts and
writing the validated JSON; fvcore's is `FlopCountAnalysis(model, x).total()` on a model built beforehand,
so fvcore is not charged for construction. The first (cold) edgeprof run after import is reported too.

    python benchmarks/profile_static.py [--models vgg16,resnet50,vit_b_16] [--repeats 7] [-o FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torchvision

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.profiler.schema import write_profile
from edgeprof.profiler.static import profile_model

TARGET_VGG16_S = 1.0
TARGET_RATIO_TO_FVCORE = 2.0


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_model(name: str, repeats: int, workdir: Path) -> dict:
    out = workdir / f"{name}.json"

    def ours() -> None:
        write_profile(profile_model(name), out)

    start = time.perf_counter()
    ours()
    cold = time.perf_counter() - start
    ours_median, ours_times = _median_time(ours, repeats)

    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = torchvision.models.get_model(name).eval()
    x = torch.randn(1, 3, 224, 224)

    def fvcore_count() -> None:
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.total()

    fvcore_count()
    fvcore_median, fvcore_times = _median_time(fvcore_count, repeats)
    ratio = ours_median / fvcore_median
    return {
        "model": name,
        "input": [1, 3, 224, 224],
        "edgeprof_cold_s": round(cold, 4),
        "edgeprof_median_s": round(ours_median, 4),
        "edgeprof_times_s": [round(t, 4) for t in ours_times],
        "fvcore_count_only_median_s": round(fvcore_median, 4),
        "fvcore_times_s": [round(t, 4) for t in fvcore_times],
        "ratio_to_fvcore": round(ratio, 3),
        "meets_ratio_target": ratio <= TARGET_RATIO_TO_FVCORE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg16,resnet50,vit_b_16")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("-o", "--output", default=str(Path(__file__).parent / "results" / "profile_static.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        rows = [bench_model(name, args.repeats, Path(workdir)) for name in args.models.split(",")]
    vgg16 = next((r for r in rows if r["model"] == "vgg16"), None)
    result = {
        "benchmark": "profile_static",
        "edgeprof_version": edgeprof.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": {"vgg16_s": TARGET_VGG16_S, "ratio_to_fvcore": TARGET_RATIO_TO_FVCORE},
        "vgg16_meets_target": None if vgg16 is None else vgg16["edgeprof_median_s"] < TARGET_VGG16_S,
        "results": rows,
    }
    write_text_atomic(args.output, json.dumps(result, indent=1) + "\n")
    for row in rows:
        print(f"{row['model']:10s} edgeprof {row['edgeprof_median_s']:.3f} s (cold {row['edgeprof_cold_s']:.3f} s)"
              f"  fvcore count-only {row['fvcore_count_only_median_s']:.3f} s  ratio {row['ratio_to_fvcore']:.2f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
