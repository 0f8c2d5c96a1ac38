"""Fake Jetson sysfs trees (INA3221 and INA238 power monitors) and fake Jetson commands, in a temporary folder.

Point the code at a tree with `monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(root))`. Each rail reads a
constant power until `set_power` changes it; hwmon rails store it as bus voltage times current, as the driver
does, so the power a rail reads back is the configured one rounded to whole milliamps (`FakeBoard.rails_w`).
Layouts: "iio" (L4T <= 32, `iio:device<N>`), "iio_device" (L4T 28's `iio_device` folder), "hwmon" (L4T >= 34,
under the i2c driver and linked again from /sys/class/hwmon) and "class_hwmon" (Jetson AGX Thor: only under
/sys/class/hwmon, whose entries link to the devices, with the board input on an INA238 reporting microwatts).
"""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path

IIO_DRIVER = Path("sys/bus/i2c/drivers/ina3221x")
HWMON_DRIVER = Path("sys/bus/i2c/drivers/ina3221")
HWMON_CLASS = Path("sys/class/hwmon")
DEVICES = Path("sys/devices/platform/c240000.i2c")
BUS_MILLIVOLTS = 5000
UNCONNECTED_W = 1.5  # what the fake "NC" channels read, so that summing one by mistake shows
UPDATE_INTERVAL_MS = 35
SAMPLES = 16


@dataclass(frozen=True)
class Board:
    """A board's power monitors, as a boot without shuffling lays them out, and its true total."""

    layout: str  # "iio", "iio_device", "hwmon" or "class_hwmon"
    monitors: dict[str, tuple[str, ...]]  # i2c device -> channel labels, in channel order
    total_rails: tuple[str, ...]  # the rails whose sum is the board's power (NVIDIA's rule, energy/rails.py)
    vin_monitors: tuple[str, ...] = ()  # devices that are INA238 monitors of the board input


BOARDS = {
    "tx2": Board(
        "iio",
        {"0-0040": ("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI"), "0-0041": ("VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR")},
        ("VDD_IN",),
    ),
    "nano": Board("iio", {"6-0040": ("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU")}, ("POM_5V_IN",)),
    "agx_xavier": Board(
        "iio",
        {"1-0040": ("GPU", "CPU", "SOC"), "1-0041": ("CV", "VDDRQ", "SYS5V")},
        ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),
    ),
    "agx_orin": Board(  # VDDQ_VDD2_1V8AO is supplied from VIN_SYS_5V0: not part of the total
        "hwmon",
        {"1-0040": ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), "1-0041": ("NC", "VDDQ_VDD2_1V8AO")},
        ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),
    ),
    "orin_nano": Board("hwmon", {"1-0040": ("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC")}, ("VDD_IN",)),
    "tx2_l4t28": Board(
        "iio_device",
        {"0-0040": ("VDD_SYS_GPU", "VDD_SYS_SOC", "VDD_4V0_WIFI"), "0-0041": ("VDD_IN", "VDD_SYS_CPU", "VDD_SYS_DDR")},
        ("VDD_IN",),
    ),
    "thor": Board(
        "class_hwmon",
        {"2-0040": ("VDD_GPU", "VDD_CPU_SOC_MSS", "VIN_SYS_5V0"), "2-0044": ("VIN",)},
        ("VIN",),
        vin_monitors=("2-0044",),
    ),
}


def _write(path: Path, value: object) -> None:
    """Replace a file's content in one step, as a sensor file changes: a reader never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".new")
    staged.write_text(f"{value}\n")
    os.replace(staged, path)


@dataclass
class FakeBoard:
    """A board written under a root folder: what each rail reads, and how to change or break a reading."""

    board: Board
    rails_w: dict[str, float] = field(default_factory=dict)  # the power each rail reads back, by label
    reading_files: dict[str, Path] = field(default_factory=dict)  # the file that changes with a rail's power

    @property
    def total_w(self) -> float:
        return sum(self.rails_w[name] for name in self.board.total_rails)

    def set_power(self, rail: str, watts: float) -> None:
        """Make `rail` read `watts` from now on (rounded as the driver would); negative values are allowed (a real
        monitor's idle offset)."""
        path = self.reading_files[rail]
        if path.name == "power1_input":  # INA238: microwatts, with the current beside it
            microwatts = round(watts * 1e6)
            _write(path, microwatts)
            _write(path.with_name("curr1_input"), round(microwatts / BUS_MILLIVOLTS))
            self.rails_w[rail] = microwatts / 1e6
        elif self.board.layout.startswith("iio"):
            milliwatts = round(watts * 1e3)
            _write(path, milliwatts)
            _write(path.with_name(path.name.replace("power", "current")), round(milliwatts * 1e3 / BUS_MILLIVOLTS))
            self.rails_w[rail] = milliwatts / 1e3
        else:
            milliamps = round(watts * 1e6 / BUS_MILLIVOLTS)
            _write(path, milliamps)
            self.rails_w[rail] = BUS_MILLIVOLTS * milliamps / 1e6

    def break_reading(self, rail: str, how: str) -> Path:
        """Make `rail`'s reading file "missing", "unreadable" (a folder: reading it fails as EACCES would, even
        for root) or "garbage"; return its path."""
        path = self.reading_files[rail]
        path.unlink()
        if how == "unreadable":
            path.mkdir()
        elif how == "garbage":
            path.write_text("-EIO\n")
        return path


def default_watts(board: Board) -> dict[str, float]:
    """A distinct power per rail (1.0 W, 1.5 W, 2.0 W... in label order), so a wrong rail shows in the sum."""
    labels = [label for labels in board.monitors.values() for label in labels if label != "NC"]
    return {label: 1.0 + 0.5 * k for k, label in enumerate(labels)}


def build(root: Path, name: str, watts: dict[str, float] | None = None, shuffle_seed: int | None = None) -> FakeBoard:
    """Write board `name`'s monitors under `root`. `watts` sets some rails' power (others get `default_watts`);
    `shuffle_seed` renumbers the iio:device/hwmon folders and moves the rails to other channels, as a new
    boot may."""
    board = BOARDS[name]
    fake = FakeBoard(board)
    shuffler = random.Random(shuffle_seed) if shuffle_seed is not None else None
    folder_numbers = list(range(len(board.monitors)))
    if shuffler:
        folder_numbers = shuffler.sample(range(10), len(board.monitors))
    first_channel = 0 if board.layout.startswith("iio") else 1  # the iio driver counts channels from 0, hwmon from 1
    for number, (device, labels) in zip(folder_numbers, board.monitors.items(), strict=True):
        channels = list(range(first_channel, first_channel + 3))
        if shuffler:
            shuffler.shuffle(channels)
        by_channel = dict(zip(channels, labels, strict=False))  # a chip has 3 channels; some boards use fewer
        if board.layout == "iio":
            _write_iio_chip(fake, root / IIO_DRIVER / device / f"iio:device{number}", by_channel)
        elif board.layout == "iio_device":
            _write_iio_chip(fake, root / IIO_DRIVER / device / "iio_device", by_channel)
        else:  # hwmon chips also appear under /sys/class/hwmon, as links; on Thor only there
            folder = HWMON_DRIVER if board.layout == "hwmon" else DEVICES
            chip = root / folder / device / "hwmon" / f"hwmon{number}"
            if device in board.vin_monitors:
                _write_ina238_chip(fake, chip, labels[0])
            else:
                _write_hwmon_chip(fake, chip, by_channel)
            (root / HWMON_CLASS).mkdir(parents=True, exist_ok=True)
            (root / HWMON_CLASS / chip.name).symlink_to(chip, target_is_directory=True)
    for rail, power in {**default_watts(board), **(watts or {})}.items():
        fake.set_power(rail, power)
    return fake


def _write_iio_chip(fake: FakeBoard, chip: Path, labels: dict[int, str]) -> None:
    for channel, label in labels.items():
        _write(chip / f"rail_name_{channel}", label)
        _write(chip / f"in_voltage{channel}_input", BUS_MILLIVOLTS)
        fake.reading_files[label] = chip / f"in_power{channel}_input"


def _write_hwmon_chip(fake: FakeBoard, chip: Path, labels: dict[int, str]) -> None:
    _write(chip / "name", "ina3221")
    _write(chip / "update_interval", UPDATE_INTERVAL_MS)
    _write(chip / "samples", SAMPLES)
    for channel, label in labels.items():
        _write(chip / f"in{channel}_label", label)
        _write(chip / f"in{channel}_input", BUS_MILLIVOLTS)
        _write(chip / f"in{channel + 3}_input", 40)  # the shunt voltage (uV): no label, not a rail
        if label == "NC":
            _write(chip / f"curr{channel}_input", round(UNCONNECTED_W * 1e6 / BUS_MILLIVOLTS))
        else:
            fake.reading_files[label] = chip / f"curr{channel}_input"
    _write(chip / "in7_label", "sum of shunt voltages")  # a voltage with no current: not a rail
    _write(chip / "in7_input", 120)


def _write_ina238_chip(fake: FakeBoard, chip: Path, label: str) -> None:
    """A single-channel INA238 monitor of the board input, as Thor's carrier board has: no label file (the reader
    names it), bus voltage, current and power (microwatts)."""
    _write(chip / "name", "ina238")
    _write(chip / "update_interval", UPDATE_INTERVAL_MS)
    _write(chip / "in1_input", BUS_MILLIVOLTS)
    fake.reading_files[label] = chip / "power1_input"


def install_command(bin_dir: Path, name: str, script: str) -> Path:
    """A fake executable `name` in `bin_dir` running the POSIX shell `script` (put `bin_dir` on PATH)."""
    path = bin_dir / name
    bin_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
