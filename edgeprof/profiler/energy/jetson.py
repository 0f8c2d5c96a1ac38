"""NVIDIA Jetson energy: the board's power monitors read from sysfs, or `tegrastats` when sysfs has none.

The monitors appear in one of these layouts, depending on the L4T release and the board:

- L4T <= 32 (JetPack 4), iio driver `ina3221x`:
  `/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device<N>/rail_name_<i>` and `in_power<i>_input` (mW); L4T 28
  (JetPack 3, TX2) names the folder `iio_device` instead.
- L4T >= 34 (JetPack 5 and later), hwmon driver `ina3221`:
  `/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon<N>/in<i>_label`, `in<i>_input` (bus mV) and
  `curr<i>_input` (mA); power is voltage times current.
- Any hwmon device under `/sys/class/hwmon` named `ina3221` (as above) or `ina238` (Jetson AGX Thor's monitor
  of the whole board input, `VIN`: `power1_input` in microwatts). On
  Thor this is the only place the monitors appear; elsewhere it repeats the driver folders, and a chip found
  twice is read once.

The `N` in `iio:device<N>` / `hwmon<N>` and the channel numbers change across boots, so rails are found by
their label only. Which rails add up to the board's power is decided by `rails.board_total`, for the sysfs
monitors and for tegrastats alike.
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
from edgeprof.profiler.energy.rails import (
    BoardTotal,
    RailError,
    board_total,
    is_rail_label,
)
from edgeprof.profiler.energy.tegrastats import parse_line

IIO_DRIVER = "/sys/bus/i2c/drivers/ina3221x"
HWMON_DRIVER = "/sys/bus/i2c/drivers/ina3221"
HWMON_CLASS = "/sys/class/hwmon"
VIN_MONITORS = ("ina238",)  # single-channel monitors of the whole board input (Jetson AGX Thor's carrier board)
VIN_RAIL = "VIN"  # the name tegrastats gives that input
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


@dataclass(frozen=True)
class PowerRail:
    """A hwmon channel that reports the power itself (the INA238's `power1_input`)."""

    name: str
    power_file: Path  # microwatts

    def power_w(self) -> float:
        return read_sysfs_int(self.power_file) / 1e6


Rail = IioRail | HwmonRail | PowerRail


@dataclass(frozen=True)
class Monitor:
    """One monitor chip, its rails (by name) and, on hwmon, its averaging settings."""

    device: str  # the chip's i2c address, "<bus>-<addr>", or its hwmon folder
    layout: str  # "iio", "hwmon" or "hwmon-ina238"
    rails: tuple[Rail, ...]
    update_interval_s: float | None = None  # the time one reading takes (conversion and averaging)
    samples: int | None = None  # readings averaged into one


def _iio_monitors() -> list[Monitor]:
    monitors = []
    for chip in sorted(system_path(IIO_DRIVER).glob("*-*/iio[:_]device*")):
        rails = []
        for label_file in chip.glob("rail_name_*"):
            channel = label_file.name.removeprefix("rail_name_")
            label = read_sysfs_text(label_file)
            if is_rail_label(label):
                rails.append(IioRail(label, chip / f"in_power{channel}_input"))
        monitors.append(Monitor(chip.parent.name, "iio", tuple(sorted(rails, key=lambda rail: rail.name))))
    return monitors


def _optional_number(path: Path) -> float | None:
    return read_sysfs_int(path) if path.exists() else None


def _hwmon_device(chip: Path) -> str:
    """The i2c device a hwmon folder belongs to (`.../1-0040/hwmon/hwmon3` -> "1-0040"), else the folder's name."""
    resolved = chip.resolve()
    return resolved.parent.parent.name if resolved.parent.name == "hwmon" else chip.name


def _hwmon_monitor(chip: Path) -> Monitor:
    """An INA3221 hwmon folder: one rail per labelled channel."""
    rails = []
    for label_file in chip.glob("in*_label"):
        channel = label_file.name.removeprefix("in").removesuffix("_label")
        label = read_sysfs_text(label_file)
        if is_rail_label(label):
            rails.append(HwmonRail(label, chip / f"in{channel}_input", chip / f"curr{channel}_input"))
    update_interval_ms = _optional_number(chip / "update_interval")
    samples = _optional_number(chip / "samples")
    return Monitor(
        device=_hwmon_device(chip),
        layout="hwmon",
        rails=tuple(sorted(rails, key=lambda rail: rail.name)),
        update_interval_s=None if update_interval_ms is None else update_interval_ms / 1e3,
        samples=None if samples is None else int(samples),
    )


def _vin_monitor(chip: Path) -> Monitor:
    """A single-channel monitor of the board input (INA238): labelled by its `in1_label` if any, else `VIN`."""
    label_file = chip / "in1_label"
    label = read_sysfs_text(label_file) if label_file.exists() else VIN_RAIL
    rail = PowerRail(label, chip / "power1_input")
    update_interval_ms = _optional_number(chip / "update_interval")
    return Monitor(_hwmon_device(chip), "hwmon-ina238", (rail,),
                   None if update_interval_ms is None else update_interval_ms / 1e3)


def _hwmon_monitors() -> list[Monitor]:
    """INA3221 chips under the driver folder, then every INA3221 or INA238 under /sys/class/hwmon not seen yet."""
    chips = sorted(system_path(HWMON_DRIVER).glob("*-*/hwmon/hwmon*"))
    seen = {chip.resolve() for chip in chips}
    monitors = [_hwmon_monitor(chip) for chip in chips]
    for chip in sorted(system_path(HWMON_CLASS).glob("hwmon*"), key=_hwmon_device):  # hwmonN varies by boot
        name_file = chip / "name"
        if chip.resolve() in seen or not name_file.is_file():
            continue
        name = read_sysfs_text(name_file)
        if name == "ina3221":
            monitors.append(_hwmon_monitor(chip.resolve()))
        elif name in VIN_MONITORS:
            monitors.append(_vin_monitor(chip.resolve()))
    return monitors


def find_monitors() -> list[Monitor]:
    """Every power monitor with a rail, in any layout; each rail is read once, so a broken one fails here. A rail
    label seen on an earlier chip is skipped (the same chip reached by two paths)."""
    monitors, names = [], set()
    for monitor in _iio_monitors() + _hwmon_monitors():
        rails = tuple(rail for rail in monitor.rails if rail.name not in names)
        names.update(rail.name for rail in rails)
        if rails:
            monitors.append(Monitor(monitor.device, monitor.layout, rails, monitor.update_interval_s,
                                    monitor.samples))
    if not monitors:
        raise SensorUnavailable(
            f"no INA3221 power monitor under {system_path(IIO_DRIVER)}, {system_path(HWMON_DRIVER)} or "
            f"{system_path(HWMON_CLASS)}"
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


def _chip(monitor: Monitor) -> str:
    return "ina238" if monitor.layout == "hwmon-ina238" else "ina3221"


class SysfsMeter(SamplingMeter):
    """The board's power from the monitors' rails in sysfs, polled every `interval_s`; `rails` overrides which
    rails are summed (`rails.board_total`)."""

    kind = "jetson"

    def __init__(self, monitors: list[Monitor], interval_s: float, rails: Iterable[str] | None = None) -> None:
        super().__init__(interval_s)
        self.monitors = monitors
        self.total = board_total([rail.name for monitor in monitors for rail in monitor.rails], rails)
        summed = [(monitor, rail) for monitor in monitors for rail in monitor.rails if rail.name in self.total.rails]
        self._summed_rails = [rail for _, rail in summed]
        self._chips = "+".join(sorted({_chip(monitor) for monitor, _ in summed}))

    @property
    def source(self) -> str:
        return f"{self._chips}:{self.total.describe()}"

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
        return {"monitors": monitors, "total": self.total.describe(), "total_rule": self.total.rule,
                "polling_interval_s": self.interval_s, **board_state()}


class TegrastatsMeter(SamplingMeter):
    """The board's power from `tegrastats` lines, each timestamped as it arrives.

    `lines` is any source of lines: the stdout of `process` (which `close` stops), or a list in tests.
    `read_power_w` blocks until the next line, so the sampling thread polls at a quarter of the period and
    then waits for the line. `rails` overrides which rails are summed (`rails.board_total`).
    """

    kind = "tegrastats"

    def __init__(self, lines: Iterable[str], period_s: float, process: subprocess.Popen[str] | None = None,
                 rails: Iterable[str] | None = None) -> None:
        super().__init__(period_s / 4)
        self.period_s = period_s
        self.override = None if rails is None else tuple(rails)
        self.total: BoardTotal | None = None
        self._lines = iter(lines)
        self.process = process

    @property
    def source(self) -> str:
        return f"tegrastats:{self.total.describe() if self.total else 'no line read yet'}"

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
        if self.total is None or not set(self.total.rails) <= set(rails):
            self.total = board_total(rails, self.override)
        return self.total.power_w(rails)

    def metadata(self) -> dict[str, Any]:
        total = self.total.describe() if self.total else None
        return {"total": total, "total_rule": self.total.rule if self.total else None, "interval_s": self.period_s,
                **board_state()}

    def close(self) -> None:
        if self.process is not None:  # ending its output wakes a sampling thread waiting for a line
            self.process.terminate()
            self.process.wait()
        super().close()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def open_tegrastats(command: str, interval_s: float, rails: Iterable[str] | None = None) -> TegrastatsMeter:
    """A meter over `<command> --interval <ms>`, started so that a tegrastats without rails (or without the rails
    `rails` names) fails here."""
    period_ms = max(1, round(interval_s * 1e3))
    try:
        process = subprocess.Popen(
            [command, "--interval", str(period_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
    except OSError as error:
        raise SensorUnavailable(f"cannot run {command}: {error}") from None
    assert process.stdout is not None
    meter = TegrastatsMeter(process.stdout, period_ms / 1e3, process, rails)
    try:
        meter.start()
    except (SensorUnavailable, RailError):
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
        return f"tegrastats ({_tegrastats_instead(problem)}); no sysfs power monitor: {problem}"
    chips = "+".join(sorted({_chip(monitor) for monitor in monitors})).upper()
    layouts = "+".join(sorted({monitor.layout for monitor in monitors}))
    names = [rail.name for monitor in monitors for rail in monitor.rails]
    return f"{chips} {layouts}, rails {', '.join(names)}; total {board_total(names).describe()}"


def open_meter(interval_s: float = 0.02, rails: Iterable[str] | None = None) -> EnergyMeter:
    """A meter of the board's power: the sysfs monitors polled every `interval_s`, or tegrastats at that interval;
    `rails` (the user's --rails) names the rails to sum instead of the board's rule (`rails.board_total`), and a
    name the board lacks is a `RailError`.

    20 ms: polling every 10 ms cost a 2-core CPU up to 4% of a model's speed (benchmarks/measure_overhead.py),
    20 ms under 2%, and an energy window of at least 0.25 s still integrates a dozen samples or more.
    """
    try:
        monitors = find_monitors()
    except SensorUnavailable as problem:
        return open_tegrastats(_tegrastats_instead(problem), interval_s, rails)
    return SysfsMeter(monitors, interval_s, rails)
