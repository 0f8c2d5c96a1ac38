"""One device's effective speed and energy per FLOP, from several measured profiles (`edgeprof calibrate`).

A simulator models a device by f (FLOP/s) and epsilon (J/FLOP). Each measured profile gives one estimate
(whole-model FLOPs over its latency and dynamic energy); several models of different size also give a fit
latency = overhead + FLOPs / f, whose slope is the device's speed on large work and whose intercept is the
fixed per-inference cost (launches, Python, memory-bound layers) that a pure FLOP model misses.
"""

from __future__ import annotations

import statistics
from typing import Any

from edgeprof.errors import EdgeprofError


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares intercept and slope of y = a + b x; None with fewer than two distinct x."""
    if len(set(xs)) < 2:
        return None
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum((x - mean_x) ** 2 for x in xs)
    return mean_y - slope * mean_x, slope


def calibrate(profiles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Summarise measured profiles (keyed by file name) of one device."""
    if not profiles:
        raise EdgeprofError("calibrate needs at least one measured profile")
    devices = {}
    for name, profile in profiles.items():
        device = profile.get("device")
        if not device or not device.get("flops_per_s") or not device.get("whole_model_latency_ms"):
            raise EdgeprofError(f"{name} has no measurements: profile it with `edgeprof profile MODEL --measure`")
        if device.get("joules_per_flop") is not None and (device.get("whole_model_energy_mj") or {}).get(
                "dynamic") is None:
            raise EdgeprofError(f"{name} has joules_per_flop but no whole-model energy measurement: profile it "
                                "again with `edgeprof profile MODEL --measure`")
        devices[name] = (device["kind"], device["name"])
    if len(set(devices.values())) > 1:
        found = "; ".join(f"{name}: {kind} {device}" for name, (kind, device) in devices.items())
        raise EdgeprofError(f"profiles come from different devices ({found}); calibrate one device at a time")

    rows = []
    for name, profile in profiles.items():
        device = profile["device"]
        rows.append({
            "file": name,
            "model": profile["model"]["name"],
            "input_shape": profile["model"]["input_shape"],
            "dtype": profile["model"]["dtype"],
            "flops": profile["totals"]["flops"],
            "latency_ms": device["whole_model_latency_ms"]["median"],
            "flops_per_s": device["flops_per_s"],
            "dynamic_energy_mj": (device.get("whole_model_energy_mj") or {}).get("dynamic"),
            "joules_per_flop": device.get("joules_per_flop"),
        })
    kind, name = next(iter(devices.values()))
    flops = [row["flops"] for row in rows]
    latency_fit = _fit_line(flops, [row["latency_ms"] / 1e3 for row in rows])
    with_energy = [row for row in rows if row["joules_per_flop"] is not None]
    energy_fit = _fit_line([r["flops"] for r in with_energy], [r["dynamic_energy_mj"] / 1e3 for r in with_energy])
    warnings = []
    if latency_fit is not None and latency_fit[0] < 0:
        warnings.append(f"the latency fit has a negative fixed overhead ({latency_fit[0] * 1e3:.1f} ms): a straight "
                        "line does not fit these measurements (too few models, or a contended machine)")
    if latency_fit is not None and latency_fit[1] <= 0:
        warnings.append("the latency fit does not grow with FLOPs: no speed can be read from it")
    if energy_fit is not None and (energy_fit[0] < 0 or energy_fit[1] <= 0):
        warnings.append("the energy fit is implausible (a negative overhead or a slope that is not positive)")
    return {
        "warnings": warnings,
        "device": {"kind": kind, "name": name},
        "profiles": rows,
        "flops_per_s_median": statistics.median(row["flops_per_s"] for row in rows),
        "joules_per_flop_median": statistics.median(r["joules_per_flop"] for r in with_energy) if with_energy else None,
        "latency_fit": None if latency_fit is None or latency_fit[1] <= 0 else {
            "overhead_s": latency_fit[0], "flops_per_s": 1 / latency_fit[1],
        },
        "energy_fit": None if energy_fit is None else {
            "overhead_j": energy_fit[0], "joules_per_flop": energy_fit[1],
        },
    }
