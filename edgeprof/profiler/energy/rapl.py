"""Intel and AMD CPU package energy through Linux powercap (RAPL).

Each CPU package is a top-level zone `/sys/class/powercap/intel-rapl:<N>` named "package-<N>", with a cumulative
`energy_uj` counter (microjoules) that wraps around at `max_energy_range_uj`. On recent kernels AMD Zen CPUs
appear there with the same layout and names. The meter sums the packages. Left out on purpose:

- sub-zones `intel-rapl:<N>:<M>` (core, uncore, dram): core and uncore are already inside the package;
- a top-level "psys" zone (the whole platform, packages included) and the `intel-rapl-mmio` duplicates.

The counters refresh about every millisecond but carry no timestamp, so a window needs 50 ms or more to stay
within 5 % error. `energy_uj` is readable by root only since the 2020 "Platypus" fix.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeprof.profiler.energy.base import CounterMeter, SensorUnavailable, read_sysfs_int, read_sysfs_text, system_path

POWERCAP = "/sys/class/powercap"
PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")  # a top-level zone; sub-zones add ":<M>"
UPDATE_PERIOD_S = 0.001


def _read(path: Path) -> str:
    return read_sysfs_text(path, "run as root or make the RAPL counters readable "
                                 f"(sudo chmod a+r {path.parent.parent}/intel-rapl:*/energy_uj)")


def _read_number(path: Path) -> int:
    return read_sysfs_int(path, "run as root or make the RAPL counters readable "
                                f"(sudo chmod a+r {path.parent.parent}/intel-rapl:*/energy_uj)")


@dataclass
class _Package:
    """One package's counter and its last raw reading, so that each package is unwrapped on its own."""

    zone: Path
    name: str
    range_uj: int
    last_uj: int

    def advance_j(self) -> float:
        """The energy since the previous call, across at most one wrap-around."""
        now_uj = _read_number(self.zone / "energy_uj")
        delta_uj = (now_uj - self.last_uj) % self.range_uj
        self.last_uj = now_uj
        return delta_uj / 1e6


class RaplMeter(CounterMeter):
    """The sum of the CPU packages' energy counters.

    `read_energy_j` returns a running total that adds each package's unwrapped increase since the previous read,
    so `wrap_j` stays None: the packages wrap at different moments and their sum cannot be unwrapped as one.
    """

    kind = "rapl"

    def __init__(self, packages: list[_Package]) -> None:
        super().__init__()
        self.packages = packages
        self._total_j = 0.0
        self._lock = threading.Lock()  # overlapping reads would count an increase twice

    @property
    def source(self) -> str:
        return "rapl:" + "+".join(package.name for package in self.packages)

    @property
    def update_period_s(self) -> float:
        return UPDATE_PERIOD_S

    def metadata(self) -> dict[str, Any]:
        return {
            "zones": [str(package.zone) for package in self.packages],
            "max_energy_range_j": {package.name: package.range_uj / 1e6 for package in self.packages},
        }

    def read_energy_j(self) -> float:
        with self._lock:
            self._total_j += sum(package.advance_j() for package in self.packages)
            return self._total_j


def _packages(powercap: Path) -> list[_Package]:
    """Every package zone in `powercap`, by package number, with its counter read once as the starting point."""
    if not powercap.is_dir():
        raise SensorUnavailable(
            f"{powercap} does not exist: no powercap RAPL driver (not Linux on x86, or the intel_rapl_msr module "
            "is not loaded; in a container, mount /sys/class/powercap)"
        )
    zones = [path for path in powercap.iterdir() if PACKAGE_ZONE.fullmatch(path.name)]
    zones.sort(key=lambda zone: int(zone.name.partition(":")[2]))  # intel-rapl:10 after intel-rapl:9
    packages = [
        _Package(zone, name, _read_number(zone / "max_energy_range_uj"), _read_number(zone / "energy_uj"))
        for zone in zones
        if (name := _read(zone / "name")).startswith("package")
    ]
    if not packages:
        raise SensorUnavailable(f"{powercap} has no RAPL package zones (intel-rapl:<N> named package-<N>)")
    return packages


def open_meter() -> RaplMeter:
    """A meter over every CPU package's RAPL counter, or `SensorUnavailable` saying why not."""
    return RaplMeter(_packages(system_path(POWERCAP)))


def probe() -> str:
    """What `open_meter()` would measure, e.g. "package-0+package-1 in /sys/class/powercap"."""
    powercap = system_path(POWERCAP)
    return f"{'+'.join(package.name for package in _packages(powercap))} in {powercap}"
