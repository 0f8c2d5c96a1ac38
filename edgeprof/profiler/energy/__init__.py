"""Energy sensors behind one small API (`EnergyMeter.begin_window` / `end_window`), chosen by name.

Each backend module (`nvml`, `jetson`, `rapl`) exposes:

- `probe() -> str`: a one-line description of the sensor it would use, or `SensorUnavailable(reason)`;
- `open_meter(...) -> EnergyMeter`: a ready meter, or `SensorUnavailable(reason)`.

`open_meter("auto", device)` picks the sensor that measures `device` (NVML for CUDA, the Jetson power
monitors on a Jetson, RAPL for an x86 CPU) and returns `(None, reason)` when there is none; naming a backend
explicitly turns an unavailable sensor into an `EdgeprofError`, which the CLI reports with exit code 2.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from edgeprof.errors import EdgeprofError
from edgeprof.profiler.energy.base import (
    CounterMeter,
    EnergyMeter,
    EnergyReading,
    SamplingMeter,
    SensorUnavailable,
    system_path,
)
from edgeprof.profiler.energy.rails import RailError

BACKENDS = ("nvml", "jetson", "rapl")
CHOICES = ("auto", "none", *BACKENDS)

__all__ = [
    "BACKENDS", "CHOICES", "CounterMeter", "EnergyMeter", "EnergyReading", "SamplingMeter", "SensorStatus",
    "SensorUnavailable", "is_jetson", "open_meter", "probe_sensors", "system_path",
]


def _backend(kind: str):
    return importlib.import_module(f"edgeprof.profiler.energy.{kind}")


def is_jetson() -> bool:
    """An NVIDIA Jetson (L4T) board, by its release file."""
    return system_path("/etc/nv_tegra_release").is_file()


@dataclass(frozen=True)
class SensorStatus:
    kind: str
    available: bool
    detail: str  # what was found, or why it is unavailable


def probe_sensors() -> list[SensorStatus]:
    """Every backend's sensor, available or not, with the reason."""
    statuses = []
    for kind in BACKENDS:
        try:
            statuses.append(SensorStatus(kind, True, _backend(kind).probe()))
        except SensorUnavailable as reason:
            statuses.append(SensorStatus(kind, False, str(reason)))
    return statuses


def _auto_kind(device: str) -> str:
    if device.startswith("cuda"):
        return "jetson" if is_jetson() else "nvml"
    return "jetson" if is_jetson() else "rapl"


def open_meter(
    choice: str, device: str = "cpu", rails: tuple[str, ...] | None = None
) -> tuple[EnergyMeter | None, str | None]:
    """The meter for `choice` ("auto", "none" or a backend) measuring `device`, or (None, reason). `rails` (the
    user's --rails) names the Jetson rails whose sum is the board's power; naming rails the board lacks, or naming
    rails for another sensor, is an `EdgeprofError`."""
    if choice not in CHOICES:
        raise EdgeprofError(f"unknown energy backend {choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "none":
        return None, "energy measurement turned off (--energy none)"
    kind = _auto_kind(device) if choice == "auto" else choice
    if rails is not None and kind != "jetson":
        raise EdgeprofError(f"--rails applies to Jetson power monitors, but the sensor here is {kind}: drop --rails")
    options: dict[str, object] = {}
    if kind == "nvml":
        options["device_index"] = int(device.partition(":")[2] or 0)
    elif kind == "jetson" and rails is not None:
        options["rails"] = rails
    try:
        return _backend(kind).open_meter(**options), None
    except RailError as error:
        raise EdgeprofError(str(error)) from None
    except SensorUnavailable as reason:
        if choice != "auto":
            raise EdgeprofError(f"--energy {kind}: {reason}") from None
        return None, f"{kind}: {reason}"
