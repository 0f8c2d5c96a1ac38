"""NVIDIA Jetson energy: the board's INA3221 power monitors read from sysfs, or `tegrastats` when sysfs has none.

The monitors appear in one of two layouts, depending on the L4T release:

- L4T <= 32 (JetPack 4), iio driver `ina3221x`:
  `/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<N>/rail_name_<i>` and `in_power<i>_input` (mW).
- L4T >= 34 (JetPack 5 and later), hwmon driver `ina3221`:
  `/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<N>/in<i>_label`, `in<i>_input` (bus mV) and
  `curr<i>_input` (mA); power is voltage times current.

The `N` in `iio:device<N>` / `hwmon<N>` and the channel numbers change across boots, so rails are found by
their label only. The board total is the module input rail where there is one, otherwise the sum of all rails
(`tegrastats.total_rails`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprof.profiler.energy.base import (
    EnergyMeter,
    SamplingMeter,
    SensorUnavailable,
    read_sysfs_int,
    read_sysfs_text,
    system_path,
)
from edgeprof.profiler.energy.tegrastats import board_total_w, describe_total, parse_line, total_rails

IIO_DRIVER = "/sys/bus/i2c/drivers/ina3221x"
HWMON_DRIVER = "/sys/bus/i2c/drivers/ina3221"
COMMAND_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class IioRail:
    """A channel of the L4T <= 32 iio driver, which reports the power itself."""

    name: str
    power_file: Path  # milliwatts

    def power_w(self) -> float:
        return read_sysfs_int(self.power_file) / 1e3


@dataclass(frozen=True)
class HwmonRail:
    """A channel of the hwmon driver, which reports the bus voltage and the current."""

    name: str
    voltage_file: Path  # millivolts
    current_file: Path  # milliamps

    def power_w(self) -> float:
        return read_sysfs_int(self.voltage_file) / 1e3 * read_sysfs_int(self.current_file) / 1e3


Rail = IioRail | HwmonRail


@dataclass(frozen=True)
class Monitor:
    """One INA3221 chip, its rails (by name) and, on hwmon, its averaging settings."""

    device: str  # the chip's i2c address, "<bus>-<addr>"
    layout: str  # "iio" or "hwmon"
    rails: tuple[Rail, ...]
    update_interval_s: float | None = None  # the time one reading takes (conversion and averaging)
    samples: int | None = None  # readings averaged into one


def _is_rail(label: str) -> bool:
    """Not an unconnected channel (labelled "NC") nor the hwmon driver's "sum of shunt voltages" channel."""
    return "NC" not in re.split(r"[^A-Za-z0-9]+", label) and "sum of shunt" not in label.lower()


def _iio_monitors() -> list[Monitor]:
    monitors = []
    for chip in sorted(system_path(IIO_DRIVER).glob("*-*/iio:device*")):
        rails = []
        for label_file in chip.glob("rail_name_*"):
            channel = label_file.name.removeprefix("rail_name_")
            label = read_sysfs_text(label_file)
            if _is_rail(label):
                rails.append(IioRail(label, chip / f"in_power{channel}_input"))
        monitors.append(Monitor(chip.parent.name, "iio", tuple(sorted(rails, key=lambda rail: rail.name))))
    return monitors


def _optional_number(path: Path) -> float | None:
    return read_sysfs_int(path) if path.exists() else None


def _hwmon_monitors() -> list[Monitor]:
    monitors = []
    for chip in sorted(system_path(HWMON_DRIVER).glob("*-*/hwmon/hwmon*")):
        rails = []
        for label_file in chip.glob("in*_label"):
            channel = label_file.name.removeprefix("in").removesuffix("_label")
            label = read_sysfs_text(label_file)
            if _is_rail(label):
                rails.append(HwmonRail(label, chip / f"in{channel}_input", chip / f"curr{channel}_input"))
        update_interval_ms = _optional_number(chip / "update_interval")
        samples = _optional_number(chip / "samples")
        monitors.append(Monitor(
            device=chip.parent.parent.name,
            layout="hwmon",
            rails=tuple(sorted(rails, key=lambda rail: rail.name)),
            update_interval_s=None if update_interval_ms is None else update_interval_ms / 1e3,
            samples=None if samples is None else int(samples),
        ))
    return monitors


def find_monitors() -> list[Monitor]:
    """Every INA3221 monitor with a rail, in either layout; each rail is read once, so a broken one fails here."""
    monitors = [monitor for monitor in _iio_monitors() + _hwmon_monitors() if monitor.rails]
    if not monitors:
        raise SensorUnavailable(
            f"no INA3221 power monitor under {system_path(IIO_DRIVER)} or {system_path(HWMON_DRIVER)}"
        )
    for monitor in monitors:
        for rail in monitor.rails:
            rail.power_w()
    return monitors


def command_output(*argv: str) -> str | None:
    """The output of a Jetson tool, or None when it is not installed or fails (`jetson_clocks` needs root)."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def board_state() -> dict[str, str | None]:
    """The power mode (`nvpmodel -q`) and clock settings (`jetson_clocks --show`) measurements are taken under."""
    mode = command_output("nvpmodel", "-q")
    if mode is not None:  # "NV Power Mode: MAXN" then the mode's number; keep the name
        named = re.search(r"NV Power Mode:\s*(\S.*)", mode)
        mode = named.group(1).strip() if named else mode
    return {"nvpmodel": mode, "jetson_clocks": command_output("jetson_clocks", "--show")}


class Ina3221Meter(SamplingMeter):
    """The board's power from the INA3221 rails in sysfs, polled every `interval_s`."""

    kind = "jetson"

    def __init__(self, monitors: list[Monitor], interval_s: float) -> None:
        super().__init__(interval_s)
        self.monitors = monitors
        names = [rail.name for monitor in monitors for rail in monitor.rails]
        self.total = describe_total(names)
        summed = set(total_rails(names))
        self._summed_rails = [rail for monitor in monitors for rail in monitor.rails if rail.name in summed]

    @property
    def source(self) -> str:
        return f"ina3221:{self.total}"

    @property
    def update_period_s(self) -> float:
        """The monitors' update interval, or the polling interval when that is longer or the interval unknown."""
        intervals = [monitor.update_interval_s for monitor in self.monitors if monitor.update_interval_s]
        return max([*intervals, self.interval_s])

    def read_power_w(self) -> float:
        return sum(rail.power_w() for rail in self._summed_rails)

    def metadata(self) -> dict[str, Any]:
        monitors = [
            {
                "device": monitor.device,
                "layout": monitor.layout,
                "rails": [rail.name for rail in monitor.rails],
                "update_interval_s": monitor.update_interval_s,
                "samples": monitor.samples,
            }
            for monitor in self.monitors
        ]
        return {"monitors": monitors, "total": self.total, "polling_interval_s": self.interval_s, **board_state()}


class TegrastatsMeter(SamplingMeter):
    """The board's power from `tegrastats` lines, each timestamped as it arrives.

    `lines` is any source of lines: the stdout of `process` (which `close` stops), or a list in tests.
    `read_power_w` blocks until the next line, so the sampling thread polls at a quarter of the period and
    then waits for the line.
    """

    kind = "tegrastats"

    def __init__(self, lines: Iterable[str], period_s: float, process: subprocess.Popen[str] | None = None) -> None:
        super().__init__(period_s / 4)
        self.period_s = period_s
        self.rails: list[str] = []
        self._lines = iter(lines)
        self.process = process

    @property
    def source(self) -> str:
        return f"tegrastats:{describe_total(self.rails)}"

    @property
    def update_period_s(self) -> float:
        return self.period_s

    def read_power_w(self) -> float:
        line = next(self._lines, None)
        if line is None:
            raise SensorUnavailable("tegrastats stopped printing")
        rails = parse_line(line)
        if not rails:
            raise SensorUnavailable(f"no power rails in the tegrastats line {line.strip()!r} (run as root?)")
        self.rails = list(rails)
        return board_total_w(rails)

    def metadata(self) -> dict[str, Any]:
        return {"rails": self.rails, "total": describe_total(self.rails), "interval_s": self.period_s, **board_state()}

    def close(self) -> None:
        if self.process is not None:  # ending its output wakes a sampling thread waiting for a line
            self.process.terminate()
            self.process.wait()
        super().close()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def open_tegrastats(command: str, interval_s: float) -> TegrastatsMeter:
    """A meter over `<command> --interval <ms>`, started so that a tegrastats without rails fails here."""
    period_ms = max(1, round(interval_s * 1e3))
    try:
        process = subprocess.Popen(
            [command, "--interval", str(period_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
    except OSError as error:
        raise SensorUnavailable(f"cannot run {command}: {error}") from None
    assert process.stdout is not None
    meter = TegrastatsMeter(process.stdout, period_ms / 1e3, process)
    try:
        meter.start()
    except SensorUnavailable:
        meter.close()
        raise
    return meter


def _tegrastats_instead(sysfs_problem: SensorUnavailable) -> str:
    """The tegrastats command to fall back on, or the sysfs problem when there is none."""
    command = shutil.which("tegrastats")
    if command is None:
        raise SensorUnavailable(f"{sysfs_problem}; no tegrastats command either") from None
    return command


def probe() -> str:
    """The Jetson power sensor `open_meter` would use, in one line."""
    try:
        monitors = find_monitors()
    except SensorUnavailable as problem:
        return f"tegrastats ({_tegrastats_instead(problem)}); no INA3221 sysfs: {problem}"
    layouts = "+".join(sorted({monitor.layout for monitor in monitors}))
    names = [rail.name for monitor in monitors for rail in monitor.rails]
    return f"INA3221 {layouts}, rails {', '.join(names)}; total {describe_total(names)}"


def open_meter(interval_s: float = 0.02) -> EnergyMeter:
    """A meter of the board's power: the INA3221 sysfs polled every `interval_s`, or tegrastats at that interval.

    20 ms: polling every 10 ms cost a 2-core CPU up to 4% of a model's speed (benchmarks/measure_overhead.py),
    20 ms under 2%, and an energy window of at least 0.25 s still integrates a dozen samples or more.
    """
    try:
        monitors = find_monitors()
    except SensorUnavailable as problem:
        return open_tegrastats(_tegrastats_instead(problem), interval_s)
    return Ina3221Meter(monitors, interval_s)
