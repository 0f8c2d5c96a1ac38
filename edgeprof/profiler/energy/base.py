"""The energy-measurement API every sensor backend implements, and the two ways sensors work.

Call sites read like this::

    meter.begin_window("prefix")
    run_the_work()
    reading = meter.end_window("prefix")      # EnergyReading(energy_j, duration_s, samples)

Sensors come in two kinds:

- `CounterMeter`: a cumulative energy counter (NVML's total-energy counter, RAPL's energy_uj). A window's
  energy is the difference of two reads; counters that wrap around are unwrapped.
- `SamplingMeter`: a power reading (watts) polled by a background thread with monotonic timestamps; a
  window's energy is the trapezoid integral of the samples, interpolated at the window's edges.

Either way a window must last several times the sensor's update period (`update_period_s`) to mean
anything; the measurement harness repeats work until it does.
"""

from __future__ import annotations

import abc
import bisect
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSFS_ROOT_ENV = "EDGEPROF_SYSFS_ROOT"


def system_path(path: str) -> Path:
    """An absolute system path (`/sys/...`, `/etc/...`) under `$EDGEPROF_SYSFS_ROOT` when it is set."""
    root = os.environ.get(SYSFS_ROOT_ENV)
    return Path(root) / path.lstrip("/") if root else Path(path)


class SensorUnavailable(Exception):
    """A sensor that is missing or unreadable; the message is the reason, for `edgeprof devices`."""


def read_sysfs_text(path: Path, when_denied: str = "") -> str:
    """A sysfs file's text; a missing or unreadable file is `SensorUnavailable` naming it (and, when access
    is denied, `when_denied`: what to do about it)."""
    try:
        return path.read_text().strip()
    except PermissionError:
        raise SensorUnavailable(f"{path}: permission denied{': ' + when_denied if when_denied else ''}") from None
    except OSError as error:
        raise SensorUnavailable(f"cannot read {path}: {error.strerror or error}") from None


def read_sysfs_int(path: Path, when_denied: str = "") -> int:
    """A sysfs file holding an integer (all the power and energy nodes do)."""
    text = read_sysfs_text(path, when_denied)
    try:
        return int(text)
    except ValueError:
        raise SensorUnavailable(f"{path} holds {text!r}, not an integer") from None


@dataclass(frozen=True)
class EnergyReading:
    """The energy a sensor saw over one window."""

    energy_j: float
    duration_s: float
    samples: int  # power samples integrated, or counter reads (2) for a counter

    @property
    def average_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


class EnergyMeter(abc.ABC):
    """A sensor that reports the energy used between `begin_window(name)` and `end_window(name)`."""

    kind: str = ""  # "nvml", "jetson", "rapl", "tegrastats"

    def __init__(self) -> None:
        self._windows: dict[str, Any] = {}

    @property
    @abc.abstractmethod
    def source(self) -> str:
        """What exactly is measured, for the profile's `device.energy_source` (e.g. "ina3221:VDD_IN")."""

    @property
    @abc.abstractmethod
    def update_period_s(self) -> float:
        """How often the underlying reading changes; a window should last at least 10x this."""

    def metadata(self) -> dict[str, Any]:
        """Sensor state worth recording next to the numbers (power mode, rails, driver...)."""
        return {}

    def begin_window(self, name: str) -> None:
        if name in self._windows:
            raise ValueError(f"energy window {name!r} is already open")
        self._windows[name] = self._begin()

    def end_window(self, name: str) -> EnergyReading:
        if name not in self._windows:
            raise ValueError(f"energy window {name!r} was never opened")
        return self._end(self._windows.pop(name))

    def close(self) -> None:  # noqa: B027 (most sensors hold nothing: the default releases nothing)
        """Release the sensor (stop threads, shut libraries down)."""

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def _begin(self) -> Any: ...

    @abc.abstractmethod
    def _end(self, start: Any) -> EnergyReading: ...


class CounterMeter(EnergyMeter):
    """A meter over a cumulative energy counter that may wrap around at `wrap_j`."""

    wrap_j: float | None = None  # the counter's range; None if it never wraps

    @abc.abstractmethod
    def read_energy_j(self) -> float:
        """The counter's current value in joules."""

    def _begin(self) -> tuple[float, float]:
        return time.monotonic(), self.read_energy_j()

    def _end(self, start: tuple[float, float]) -> EnergyReading:
        began, first = start
        last = self.read_energy_j()
        duration = time.monotonic() - began
        energy = last - first
        if energy < 0 and self.wrap_j:  # wrapped once (windows are far shorter than a full range)
            energy += self.wrap_j
        return EnergyReading(energy, duration, 2)


@dataclass
class _Samples:
    times: list[float] = field(default_factory=list)
    watts: list[float] = field(default_factory=list)


class SamplingMeter(EnergyMeter):
    """A meter that polls a power reading in a background thread and integrates it (trapezoid rule)."""

    def __init__(self, interval_s: float) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._samples = _Samples()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @abc.abstractmethod
    def read_power_w(self) -> float:
        """The sensor's current power in watts."""

    def _sample(self) -> None:
        watts = self.read_power_w()
        now = time.monotonic()
        with self._lock:
            self._samples.times.append(now)
            self._samples.watts.append(watts)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self._sample()
        except BaseException as error:  # surfaced by the next end_window
            self._error = error

    def start(self) -> None:
        if self._thread is None:
            self._sample()
            self._thread = threading.Thread(target=self._run, name=f"edgeprof-{self.kind}-sampler", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _begin(self) -> float:
        self.start()
        return time.monotonic()

    def _end(self, began: float) -> EnergyReading:
        ended = time.monotonic()
        deadline = ended + 4 * self.interval_s + 0.1
        while self._last_time() < ended and time.monotonic() < deadline:  # one sample past the edge
            time.sleep(self.interval_s / 4)
        if self._error is not None:
            raise SensorUnavailable(f"{self.kind} sensor failed while sampling: {self._error}")
        with self._lock:
            times, watts = list(self._samples.times), list(self._samples.watts)
        energy, used = integrate_power(times, watts, began, ended)
        return EnergyReading(energy, ended - began, used)

    def _last_time(self) -> float:
        with self._lock:
            return self._samples.times[-1] if self._samples.times else float("-inf")


def _power_at(times: list[float], watts: list[float], t: float) -> float:
    """Linear interpolation of the power at time t (held constant beyond the samples)."""
    i = bisect.bisect_left(times, t)
    if i == 0:
        return watts[0]
    if i == len(times):
        return watts[-1]
    t0, t1 = times[i - 1], times[i]
    return watts[i - 1] + (watts[i] - watts[i - 1]) * (t - t0) / (t1 - t0) if t1 > t0 else watts[i]


def integrate_power(times: list[float], watts: list[float], begin: float, end: float) -> tuple[float, int]:
    """Energy (J) between `begin` and `end` from timestamped power samples, by the trapezoid rule, and the
    number of samples that fell inside the window."""
    if not times or end <= begin:
        return 0.0, 0
    lo, hi = bisect.bisect_right(times, begin), bisect.bisect_left(times, end)
    points = [(begin, _power_at(times, watts, begin))]
    points += list(zip(times[lo:hi], watts[lo:hi], strict=True))
    points.append((end, _power_at(times, watts, end)))
    energy = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(points, points[1:], strict=False))
    return energy, hi - lo
