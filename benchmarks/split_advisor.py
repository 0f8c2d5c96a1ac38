"""Benchmark: `edgeprof split` on measured profiles of vgg16 and resnet50; how fast it answers, where it splits.

- Device: this machine's CPU, measured with
  `edgeprof profile MODEL --measure --device cpu --threads 1 --input-size 112 --repeats 20 --warmup 5`
  (input 112 instead of 224 and 20 repeats keep the profiling to a few minutes on a shared 2-core VM).
- Edge: the same profile with every measured latency divided by EDGE_SPEEDUP (10): an edge server assumed 10x
  faster than the device, a stated assumption and not a measurement. Its `device.flops_per_s` is scaled alike.
- Link: RTT 10 ms, downlink = uplink, tx power 0.2 W; the answer at 20 Mbit/s and a sweep of 25 log-spaced
  uplink rates from 1 Mbit/s to 1 Gbit/s (objective: latency). Figures: `split_sweep_<model>.png`.
- Time to answer: `build_split_problem` + `advise` (every point's cost, the arg-min, the Pareto front) after the
  profiles are loaded; also the 25-rate sweep and the loading itself (JSON + schema validation). Median of 21
  runs after 3 warm-ups. Target: under 50 ms.

    python benchmarks/split_advisor.py [--models vgg16,resnet50] [--profiles DIR] [--input-size 112] [--repeats 20]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import edgeprof
from edgeprof.files import write_text_atomic
from edgeprof.optimize.split_advisor import advise, log_spaced, plot_sweep, sweep_uplink
from edgeprof.profiler.schema import load_profile
from edgeprof.sim.split import Link, build_split_problem

EDGE_SPEEDUP = 10.0
TARGET_ANSWER_MS = 50.0
UPLINK_BPS = 20e6
RTT_S = 0.010
SWEEP = (1e6, 1e9, 25)
RESULTS = Path(__file__).parent / "results"


def measure_device_profile(model: str, path: Path, input_size: int, repeats: int) -> None:
    """`edgeprof profile MODEL --measure ...` on this machine's CPU, one thread."""
    command = [str(Path(sys.executable).with_name("edgeprof")), "profile", model, "--measure", "--device", "cpu",
               "--threads", "1", "--input-size", str(input_size), "--repeats", str(repeats), "--warmup", "5", "-q",
               "-o", str(path)]
    subprocess.run(command, check=True)


def _divide_stats(stats: dict[str, float] | None, factor: float) -> dict[str, float] | None:
    return None if stats is None else {key: value / factor for key, value in stats.items()}


def faster_edge(profile: dict[str, Any], factor: float) -> dict[str, Any]:
    """The profile of an edge server `factor` times faster than the device that measured `profile`."""
    edge = copy.deepcopy(profile)
    for point in edge["partition_points"]:
        point["device_latency_ms"] = _divide_stats(point.get("device_latency_ms"), factor)
        point["edge_latency_ms"] = _divide_stats(point.get("edge_latency_ms"), factor)
    device = edge["device"]
    device["name"] = f"{device['name']} x {factor:g} (scaled, not measured)"
    device["flops_per_s"] *= factor
    device["whole_model_latency_ms"] = _divide_stats(device["whole_model_latency_ms"], factor)
    return edge


def _median_ms(work, runs: int = 21, warmup: int = 3) -> float:
    for _ in range(warmup):
        work()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        work()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(samples)


def benchmark_model(model: str, profile_path: Path) -> dict[str, Any]:
    device_profile = load_profile(profile_path)
    edge_profile = faster_edge(device_profile, EDGE_SPEEDUP)
    link = Link(uplink_bps=UPLINK_BPS, rtt_s=RTT_S)
    rates = log_spaced(*SWEEP)

    def answer():
        return advise(build_split_problem(device_profile, edge_profile), link)

    def sweep():
        return sweep_uplink(build_split_problem(device_profile, edge_profile), rates, link)

    advice, swept = answer(), sweep()
    problem = build_split_problem(device_profile, edge_profile)
    figure = RESULTS / f"split_sweep_{model}.png"
    plot_sweep(problem, swept, figure, note=f" / {EDGE_SPEEDUP:g} (an assumed {EDGE_SPEEDUP:g}x faster edge)")
    answer_ms = _median_ms(answer)
    device = device_profile["device"]
    return {
        "model": model,
        "input": device_profile["model"]["input_shape"],
        "points": len(device_profile["partition_points"]),
        "device": f"{device['kind']} {device['name']}, {device.get('threads')} thread(s)",
        "device_whole_model_ms": round(device["whole_model_latency_ms"]["median"], 3),
        "device_energy": "measured" if problem.has_energy else problem.missing["device_energy"],
        "edge": f"the device's measured latencies / {EDGE_SPEEDUP:g}",
        "time_to_answer_ms": round(answer_ms, 3),
        "sweep_25_rates_ms": round(_median_ms(sweep), 3),
        "load_profile_ms": round(_median_ms(lambda: load_profile(profile_path), runs=7, warmup=1), 3),
        "meets_target": answer_ms < TARGET_ANSWER_MS,
        "at_20_mbps": {"z": advice.best.z, "after": advice.best.after,
                       "latency_ms": round(advice.best.latency_s * 1e3, 3), "pareto_z": advice.pareto_z},
        "best_by_uplink": [{"uplink_mbps": round(each.uplink_bps / 1e6, 4), "z": best.z, "after": best.after,
                            "latency_ms": round(best.latency_s * 1e3, 3)}
                           for each, best in zip(swept.links, swept.best, strict=True)],
        "figure": str(figure.relative_to(Path(__file__).parent.parent)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vgg16,resnet50")
    parser.add_argument("--profiles", type=Path, help="keep the measured profiles here and reuse them if present")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("-o", "--output", default=str(RESULTS / "split_advisor.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.profiles or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for model in args.models.split(","):
            path = folder / f"{model}-cpu-{args.input_size}.json"
            started = time.perf_counter()
            if not path.exists():
                measure_device_profile(model, path, args.input_size, args.repeats)
            profiling_s = time.perf_counter() - started
            row = benchmark_model(model, path)
            row["profiling_s"] = round(profiling_s, 1)
            rows.append(row)
            best = row["best_by_uplink"]
            changes = [f"{b['uplink_mbps']:g} Mbit/s: z={b['z']} ({b['after'] or 'input'})"
                       for i, b in enumerate(best) if i == 0 or b["z"] != best[i - 1]["z"]]
            print(f"{model}: answer in {row['time_to_answer_ms']:.2f} ms (sweep {row['sweep_25_rates_ms']:.2f} ms); "
                  f"best from {'; '.join(changes)}")
    result = {
        "benchmark": "split_advisor",
        "edgeprof_version": edgeprof.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"input_size": args.input_size, "repeats": args.repeats, "threads": 1, "warmup": 5,
                     "edge_speedup": EDGE_SPEEDUP, "uplink_bps": UPLINK_BPS, "rtt_s": RTT_S,
                     "downlink": "= uplink", "tx_power_w": Link(1.0).tx_power_w,
                     "sweep": {"low_bps": SWEEP[0], "high_bps": SWEEP[1], "rates": SWEEP[2]}, "objective": "latency"},
        "target_answer_ms": TARGET_ANSWER_MS,
        "results": rows,
    }
    write_text_atomic(args.output, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
