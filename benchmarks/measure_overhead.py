"""Benchmark: how much the measurement harness itself distorts what it measures, on the CPU.

1. Timing harness: for every partition point, the measured prefix + suffix median against the whole-model
   median (the acceptance bar is within 15% at every point), and the whole-model median of two separate
   measurement runs (within 10% of each other on an idle machine).
2. Energy sampler: the whole model's latency with and without the Jetson backend's sampling thread polling a
   fake Orin Nano sysfs tree (3 rails, 6 files a sample) every 10 ms (its default) and every 20 ms,
   alternating blocks so that drift cancels. Target: under 2% overhead.

    python benchmarks/measure_overhead.py [--models resnet18,vgg16] [--input-size 112] [--repeats 30] [-o FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.profiler.energy import jetson
from edgeprof.profiler.energy.base import SYSFS_ROOT_ENV
from edgeprof.profiler.measure import MeasureSettings, measure_profile
from edgeprof.profiler.models import load_model
from edgeprof.profiler.static import analyze
from edgeprof.profiler.timing import time_callable

TARGET_POINT_RATIO = 0.15
TARGET_RUN_TO_RUN = 0.10
TARGET_SAMPLER_OVERHEAD = 0.02


def fake_orin_nano(root: Path) -> None:
    """An Orin Nano's INA3221 hwmon node (3 rails: 6 files read per sample), as the Jetson backend sees it."""
    chip = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon2"
    chip.mkdir(parents=True)
    for channel, (label, millivolts, milliamps) in enumerate(
        [("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 400), ("VDD_SOC", 5000, 300)], start=1
    ):
        (chip / f"in{channel}_label").write_text(f"{label}\n")
        (chip / f"in{channel}_input").write_text(f"{millivolts}\n")
        (chip / f"curr{channel}_input").write_text(f"{milliamps}\n")


def harness_overhead(name: str, size: int, repeats: int, threads: int) -> dict:
    analysis = analyze(load_model(name, input_size=size))
    settings = MeasureSettings(device="cpu", energy="none", warmup=5, repeats=repeats, threads=threads)
    runs = [measure_profile(analysis, load_model(name, input_size=size, device="cpu"), settings) for _ in range(2)]
    first, second = runs
    whole = first["device"]["whole_model_latency_ms"]["median"]
    ratios = [
        (p["device_latency_ms"]["median"] + p["edge_latency_ms"]["median"]) / whole
        for p in first["partition_points"]
    ]
    second_whole = second["device"]["whole_model_latency_ms"]["median"]
    return {
        "whole_model_median_ms": [round(whole, 4), round(second_whole, 4)],
        "run_to_run_difference": round(abs(second_whole / whole - 1), 4),
        "prefix_plus_suffix_over_whole": [round(r, 4) for r in ratios],
        "worst_point_deviation": round(max(abs(r - 1) for r in ratios), 4),
        "meets_point_target": max(abs(r - 1) for r in ratios) <= TARGET_POINT_RATIO,
        "meets_run_to_run_target": abs(second_whole / whole - 1) <= TARGET_RUN_TO_RUN,
    }


def sampler_overhead(name: str, size: int, repeats: int, threads: int, interval_s: float, blocks: int = 10) -> dict:
    """Whole-model latency with and without the Jetson backend sampling a fake sysfs tree every `interval_s`."""
    model = load_model(name, input_size=size, device="cpu")
    (x,) = model.example_inputs()
    torch.set_num_threads(threads)
    without, with_sampler = [], []
    cpu = torch.device("cpu")
    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        fake_orin_nano(Path(tmp))
        os.environ[SYSFS_ROOT_ENV] = tmp
        try:
            time_callable(lambda: model.module(x), cpu, warmup=5, repeats=1)
            for _ in range(blocks):
                without += time_callable(lambda: model.module(x), cpu, 0, repeats).samples_ms
                with jetson.open_meter(interval_s=interval_s) as sampler:
                    sampler.begin_window("load")
                    with_sampler += time_callable(lambda: model.module(x), cpu, 0, repeats).samples_ms
                    reading = sampler.end_window("load")
        finally:
            del os.environ[SYSFS_ROOT_ENV]
    overhead = statistics.median(with_sampler) / statistics.median(without) - 1
    return {
        "sampling_interval_s": interval_s,
        "median_without_sampler_ms": round(statistics.median(without), 4),
        "median_with_sampler_ms": round(statistics.median(with_sampler), 4),
        "sampler_overhead": round(overhead, 4),
        "samples_in_last_window": reading.samples,
        "average_power_w_in_last_window": round(reading.average_power_w, 3),
        "meets_sampler_target": overhead <= TARGET_SAMPLER_OVERHEAD,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,vgg16")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("-o", "--output", default=str(Path(__file__).parent / "results" / "measure_overhead.json"))
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        started = time.perf_counter()
        row = {"model": name, "input": [1, 3, args.input_size, args.input_size]}
        row.update(harness_overhead(name, args.input_size, args.repeats, args.threads))
        row["sampler"] = [sampler_overhead(name, args.input_size, args.repeats, args.threads, interval)
                          for interval in (0.01, 0.02)]
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(f"{name}: prefix+suffix within {100 * row['worst_point_deviation']:.1f}% of the whole model at every "
              f"point; run-to-run {100 * row['run_to_run_difference']:.1f}%; sampler overhead "
              + ", ".join(f"{100 * s['sampler_overhead']:+.2f}% at {1e3 * s['sampling_interval_s']:.0f} ms"
                          for s in row["sampler"]))
    result = {
        "benchmark": "measure_overhead",
        "edgeprof_version": edgeprof.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {args.threads} torch threads",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": {"point_deviation": TARGET_POINT_RATIO, "run_to_run": TARGET_RUN_TO_RUN,
                    "sampler_overhead": TARGET_SAMPLER_OVERHEAD},
        "results": rows,
    }
    write_text_atomic(args.output, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
