"""Measured latency and energy of every partition point on this machine (`edgeprof profile --measure`).

For every point the device-side prefix and the edge-side suffix are timed directly, as modules of their
own, on real activations: sums of isolated layers are not additive on GPUs and are noisy on CPUs. Layers are
timed too, as a diagnostic. Energy comes from an `EnergyMeter`: each window repeats the work until it lasts
at least `min_window_s` and 10x the sensor's update period, and an idle baseline measured just before the
energy windows gives the dynamic (baseline-subtracted) energy next to the total.

The device block gets the effective `flops_per_s` (FLOPs / whole-model latency) and `joules_per_flop`
(dynamic energy / FLOPs) that simulators use as a device's f and epsilon.

On a CPU the timing is checked for contention (`contention_check`): the CPU time the process got per second of
wall time in each timing round, and how far the timings scatter (p90 over median). Both go into the profile's
`timing.contention`, with a warning when they say the machine was busy with something else.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgeprof.profiler.energy import EnergyMeter, is_jetson, open_meter
from edgeprof.profiler.models import LoadedModel
from edgeprof.profiler.static import Analysis, run_model, runnable_graph, static_profile
from edgeprof.profiler.timing import (
    LatencyStats,
    RoundLoad,
    fixed_threads,
    resolve_device,
    synchronize,
    time_callables,
)

MAX_CALLS_PER_WINDOW = 100_000
# A process timing CPU work keeps at least one core busy; with less than this share of one, it was preempted.
MIN_CPU_SHARE = 0.7
# Repeats of the same work on a quiet machine scatter by tens of percent at most; beyond this, stalls dominate.
MAX_SPREAD = 1.5


@dataclass
class MeasureSettings:
    """How to measure; the CLI's --device, --energy, --warmup, --repeats, --threads, --rails."""

    device: str = "cpu"
    energy: str = "auto"
    warmup: int = 10
    repeats: int = 50
    threads: int | None = None
    min_window_s: float = 0.25
    idle_s: float = 1.0
    seed: int = 0
    rails: tuple[str, ...] | None = None


@dataclass
class _Work:
    """One thing to time: a module and the inputs it runs on."""

    module: nn.Module
    inputs: tuple[Any, ...]
    empty: bool  # runs no node at all (the prefix of z = 0, the suffix of z = L)

    def __call__(self) -> Any:
        return self.module(*self.inputs)


@dataclass
class _EnergySession:
    meter: EnergyMeter
    device: torch.device
    min_window_s: float
    idle_power_w: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def measure_idle(self, seconds: float) -> None:
        """Idle power at the current state, just before the load."""
        synchronize(self.device)
        self.meter.begin_window("idle")
        time.sleep(max(seconds, 10 * self.meter.update_period_s))
        self.idle_power_w = self.meter.end_window("idle").average_power_w

    def energy_mj(self, work: _Work, latency: LatencyStats, label: str) -> dict[str, float]:
        """Total and dynamic energy of one call of `work`, in millijoules."""
        if work.empty:
            return {"total": 0.0, "dynamic": 0.0}
        target_s = max(self.min_window_s, 10 * self.meter.update_period_s)
        per_call_s = max(latency.median / 1e3, 1e-7)
        calls = min(MAX_CALLS_PER_WINDOW, max(1, math.ceil(target_s / per_call_s)))
        synchronize(self.device)
        self.meter.begin_window(label)
        for _ in range(calls):
            work()
        synchronize(self.device)
        reading = self.meter.end_window(label)
        if reading.duration_s < 10 * self.meter.update_period_s:
            self.warnings.append(
                f"energy window for {label} lasted {reading.duration_s:.3f} s, less than 10x the sensor's "
                f"{self.meter.update_period_s:.3f} s update period"
            )
        dynamic = reading.energy_j - self.idle_power_w * reading.duration_s
        return {"total": round(1e3 * reading.energy_j / calls, 9), "dynamic": round(1e3 * dynamic / calls, 9)}


def contention_check(rounds: list[RoundLoad], stats: list[LatencyStats]) -> tuple[dict[str, Any], str | None]:
    """The profile's `timing.contention` figures, and a warning when the CPU was shared with other work: the CPU
    share per timing round (median and minimum) and p90/median of every timed piece of work (median and maximum)."""
    shares = sorted(load.cpu_share for load in rounds)
    spreads = sorted(s.quantile(0.9) / s.median for s in stats if s.median > 0)
    figures: dict[str, Any] = {
        "rounds": len(shares),
        "cpu_time_per_wall_time": ({"median": round(statistics.median(shares), 4), "min": round(shares[0], 4)}
                                   if shares else None),
        "p90_over_median": ({"median": round(statistics.median(spreads), 4), "max": round(spreads[-1], 4)}
                            if spreads else None),
    }
    starved = bool(shares) and statistics.median(shares) < MIN_CPU_SHARE
    scattered = bool(spreads) and statistics.median(spreads) > MAX_SPREAD
    figures["suspect"] = starved or scattered
    if not figures["suspect"]:
        return figures, None
    share, spread = figures["cpu_time_per_wall_time"], figures["p90_over_median"]
    warning = (
        f"the CPU looks shared with other work: this process got {share['median']:.0%} of a core while timing "
        f"(median of {len(shares)} rounds; below {MIN_CPU_SHARE:.0%} means it was preempted) and its timings scatter "
        f"by p90/median {spread['median']:.2f} (median over {len(spreads)} measurements; above {MAX_SPREAD} means "
        "stalls dominate): latencies and prefix + suffix sums are unreliable; measure on a quiet machine"
    )
    return figures, warning


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(device: torch.device, threads: int) -> dict[str, Any]:
    """What the numbers were measured on (before any measurement: kind, name, versions, state)."""
    jetson = is_jetson()
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info: dict[str, Any] = {
            "kind": "jetson" if jetson else "cuda",
            "name": properties.name,
            "index": device.index or 0,
            "compute_capability": f"{properties.major}.{properties.minor}",
            "memory_bytes": properties.total_memory,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    else:
        info = {"kind": "jetson" if jetson else "cpu", "name": _cpu_name(), "threads": threads}
    info["torch"] = torch.__version__
    return info


def measure_profile(
    analysis: Analysis,
    runnable: LoadedModel,
    settings: MeasureSettings,
    sensor: tuple[EnergyMeter | None, str | None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """The static profile of `analysis` with measured latency (and energy when a sensor is available).

    `runnable` is a real copy of the analysed model; it is moved to `settings.device`. `sensor` is the
    (meter, reason it is None) pair of `energy.open_meter`, when the caller opened it already (to fail
    before any work, or to pass a fake); by default the sensor `settings.energy` names is opened here. The
    meter is closed at the end. `progress(stage, done, total)` reports timing rounds, then energy points.

    All timed work (whole model, every prefix, suffix and layer) runs round-robin, so that drift on a
    shared machine hits every median alike.
    """
    device = resolve_device(settings.device)
    profile = static_profile(analysis)
    meter, reason = sensor if sensor is not None else open_meter(settings.energy, str(device), settings.rails)
    model = runnable.module.to(device)
    inputs = tuple(x.to(device) for x in runnable.example_inputs(settings.seed))
    with torch.inference_mode():
        run_model(runnable, inputs)  # a forward that fails is one line, before any tracing or timing
    graph = runnable_graph(analysis, runnable)
    graph.module.to(device)  # its own copies of buffers read through get_attr
    try:
        with torch.inference_mode(), fixed_threads(settings.threads if device.type == "cpu" else None) as threads:
            info = describe_device(device, threads)
            whole = _Work(model, inputs, False)
            points, boundaries = [], [inputs]
            for z, k in enumerate(analysis.cuts):
                prefix, suffix = graph.split(k)
                boundary = prefix(*inputs)
                boundaries.append(boundary)
                points.append((_Work(prefix, inputs, z == 0), _Work(suffix, boundary, z == len(analysis.cuts) - 1)))
            layers = [_Work(graph.segment(start, stop), boundaries[z], False)
                      for z, (start, stop) in enumerate(zip(analysis.cuts, analysis.cuts[1:], strict=False), start=1)]
            works = [whole, *(work for pair in points for work in pair), *layers]
            report = (lambda r: progress("timing", r, settings.repeats)) if progress else None
            rounds: list[RoundLoad] = []
            stats = time_callables(works, device, settings.warmup, settings.repeats, on_round=report, rounds=rounds)
            whole_latency, layer_latencies = stats[0], stats[1 + 2 * len(points):]
            latencies = [(stats[1 + 2 * z], stats[2 + 2 * z]) for z in range(len(points))]
            energies, session = None, None
            if meter is not None:
                session = _EnergySession(meter, device, settings.min_window_s)
                session.measure_idle(settings.idle_s)
                whole_energy = session.energy_mj(whole, whole_latency, "whole model")
                energies = []
                for z, ((prefix_work, suffix_work), (prefix_latency, suffix_latency)) in enumerate(
                    zip(points, latencies, strict=True)
                ):
                    energies.append((session.energy_mj(prefix_work, prefix_latency, f"prefix z={z}"),
                                     session.energy_mj(suffix_work, suffix_latency, f"suffix z={z}")))
                    if progress:
                        progress("energy", z + 1, len(points))
    finally:
        if meter is not None:
            meter.close()

    flops = profile["totals"]["flops"]
    contention, contention_warning = contention_check(rounds, stats) if device.type == "cpu" else (None, None)
    if contention is not None:  # 1 on a quiet CPU; far from 1 when stalls hit some timings and not others
        ratios = [(prefix.median + suffix.median) / whole_latency.median for prefix, suffix in latencies]
        contention["prefix_plus_suffix_over_whole"] = {"min": round(min(ratios), 4), "max": round(max(ratios), 4)}
    info.update({
        "energy_source": meter.source if meter is not None else None,
        "energy_unavailable": reason,
        "sensor": meter.metadata() if meter is not None else None,
        "idle_power_w": round(session.idle_power_w, 6) if session else None,
        "whole_model_latency_ms": whole_latency.as_dict(),
        "whole_model_energy_mj": whole_energy if session else None,
        "flops_per_s": flops / (whole_latency.median / 1e3) if flops else None,
        "joules_per_flop": whole_energy["dynamic"] / 1e3 / flops if session and flops else None,
    })
    profile["device"] = info
    profile["timing"] = {
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "statistic": "median",
        "sync": "cuda_event" if device.type == "cuda" else "none (synchronous CPU)",
        "clock": "torch.cuda.Event" if device.type == "cuda" else "time.perf_counter_ns",
        "min_energy_window_s": settings.min_window_s,
        "contention": contention,
        "warnings": [*([contention_warning] if contention_warning else []), *(session.warnings if session else [])],
    }
    for layer, latency in zip(profile["layers"], layer_latencies, strict=True):
        layer["latency_ms"] = latency.as_dict()
    for z, point in enumerate(profile["partition_points"]):
        point["device_latency_ms"] = latencies[z][0].as_dict()
        point["edge_latency_ms"] = latencies[z][1].as_dict()
        point["device_energy_mj"] = energies[z][0] if energies else None
        point["edge_energy_mj"] = energies[z][1] if energies else None
    return profile


def compute_devices() -> list[tuple[str, bool, str]]:
    """(device, available, detail) for the CPU, every CUDA GPU and a Jetson, for `edgeprof devices`."""
    found = [("cpu", True, f"{_cpu_name()}, {torch.get_num_threads()} threads")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            found.append((f"cuda:{index}", True, f"{properties.name}, {properties.total_memory / 2**30:.0f} GiB"))
    else:
        reason = "no CUDA GPU (torch.cuda.is_available() is False"
        found.append(("cuda", False, reason + (", torch built without CUDA)" if torch.version.cuda is None else ")")))
    if is_jetson():
        found.append(("jetson", True, "NVIDIA Jetson (/etc/nv_tegra_release)"))
    else:
        found.append(("jetson", False, "not a Jetson (no /etc/nv_tegra_release)"))
    return found
