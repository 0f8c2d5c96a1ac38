"""The RAPL backend on a fake powercap tree: summed packages, per-package wrap-around, zones left out, failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprof.errors import EdgeprofError
from edgeprof.profiler import energy
from edgeprof.profiler.energy import SensorUnavailable, rapl

RANGE_UJ = 262_143_328_850  # a common max_energy_range_uj


@pytest.fixture
def powercap(monkeypatch, tmp_path) -> Path:
    """An empty /sys/class/powercap under a fake sysfs root."""
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path))
    path = tmp_path / "sys/class/powercap"
    path.mkdir(parents=True)
    return path


def write_zone(powercap: Path, zone: str, name: str, energy_uj: int, range_uj: int = RANGE_UJ) -> None:
    (powercap / zone).mkdir(exist_ok=True)
    (powercap / zone / "name").write_text(f"{name}\n")
    (powercap / zone / "max_energy_range_uj").write_text(f"{range_uj}\n")
    set_energy(powercap, zone, energy_uj)


def set_energy(powercap: Path, zone: str, energy_uj: int) -> None:
    (powercap / zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_a_window_measures_the_energy_added_to_every_package(powercap):
    write_zone(powercap, "intel-rapl:0", "package-0", 5_000_000)
    write_zone(powercap, "intel-rapl:1", "package-1", 70_000_000)
    with rapl.open_meter() as meter:
        assert meter.source == "rapl:package-0+package-1"
        assert meter.update_period_s == 0.001
        meter.begin_window("w")
        set_energy(powercap, "intel-rapl:0", 8_250_000)
        set_energy(powercap, "intel-rapl:1", 71_500_000)
        assert meter.end_window("w").energy_j == pytest.approx(3.25 + 1.5, abs=1e-9)
    assert rapl.probe() == f"package-0+package-1 in {powercap}"


def test_sub_zones_psys_and_mmio_duplicates_are_left_out(powercap):
    packages = ["intel-rapl:0", "intel-rapl:2", "intel-rapl:10"]
    for zone in packages:
        write_zone(powercap, zone, f"package-{zone.rpartition(':')[2]}", 1_000_000)
    others = {
        "intel-rapl:0:0": "core",
        "intel-rapl:0:1": "dram",
        "intel-rapl:1": "psys",
        "intel-rapl-mmio:0": "package-0",
    }
    for zone, name in others.items():
        write_zone(powercap, zone, name, 1_000_000)
    with rapl.open_meter() as meter:
        assert meter.source == "rapl:package-0+package-2+package-10"
        meter.begin_window("w")
        for zone in [*packages, *others]:
            set_energy(powercap, zone, 3_000_000)
        assert meter.end_window("w").energy_j == pytest.approx(3 * 2.0)


def test_each_package_is_unwrapped_on_its_own(powercap):
    write_zone(powercap, "intel-rapl:0", "package-0", 998_000_000, range_uj=1_000_000_000)  # 2 J before it wraps
    write_zone(powercap, "intel-rapl:1", "package-1", 100_000_000, range_uj=2_000_000_000)
    with rapl.open_meter() as meter:
        meter.begin_window("first")
        set_energy(powercap, "intel-rapl:0", 3_000_000)  # +5 J across the wrap
        set_energy(powercap, "intel-rapl:1", 107_000_000)  # +7 J
        assert meter.end_window("first").energy_j == pytest.approx(12.0)
        meter.begin_window("second")
        set_energy(powercap, "intel-rapl:0", 999_000_000)
        set_energy(powercap, "intel-rapl:1", 1_999_000_000)
        meter.begin_window("inner")  # both wrap inside the outer window, between the two inner reads
        set_energy(powercap, "intel-rapl:0", 1_000_000)  # +2 J
        set_energy(powercap, "intel-rapl:1", 500_000)  # +1.5 J
        assert meter.end_window("inner").energy_j == pytest.approx(3.5)
        assert meter.end_window("second").energy_j == pytest.approx(996 + 1892 + 3.5)
        assert meter.metadata() == {
            "zones": [str(powercap / "intel-rapl:0"), str(powercap / "intel-rapl:1")],
            "max_energy_range_j": {"package-0": 1000.0, "package-1": 2000.0},
        }


packages_and_windows = st.integers(1, 3).flatmap(
    lambda count: st.tuples(
        st.lists(st.integers(1_000, 10**12), min_size=count, max_size=count),  # ranges
        st.lists(st.floats(0, 1), min_size=count, max_size=count),  # where each counter starts in its range
        st.lists(st.lists(st.floats(0, 0.999), min_size=count, max_size=count), min_size=1, max_size=4),  # windows
    )
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packages_and_windows)
def test_consecutive_windows_sum_the_unwrapped_increases(powercap, case):
    ranges, starts, windows = case
    shutil.rmtree(powercap)
    powercap.mkdir()
    zones = [f"intel-rapl:{n}" for n in range(len(ranges))]
    counters = [int(start * (size - 1)) for start, size in zip(starts, ranges, strict=True)]
    for n, (zone, size, counter) in enumerate(zip(zones, ranges, counters, strict=True)):
        write_zone(powercap, zone, f"package-{n}", counter, range_uj=size)
    with rapl.open_meter() as meter:
        for fractions in windows:  # each package gains less than one full range per window
            increases = [int(fraction * size) for fraction, size in zip(fractions, ranges, strict=True)]
            meter.begin_window("w")
            for n, (zone, size, increase) in enumerate(zip(zones, ranges, increases, strict=True)):
                counters[n] = (counters[n] + increase) % size
                set_energy(powercap, zone, counters[n])
            assert meter.end_window("w").energy_j == pytest.approx(sum(increases) / 1e6, abs=1e-6)


def test_an_unreadable_counter_is_a_reason_naming_the_file(powercap, monkeypatch):
    write_zone(powercap, "intel-rapl:0", "package-0", 1_000_000)
    real_read_text = Path.read_text

    def root_only_counters(path: Path, *args, **kwargs) -> str:  # the kernel's -r-------- energy_uj, for non-root
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", root_only_counters)
    counter = powercap / "intel-rapl:0" / "energy_uj"
    with pytest.raises(SensorUnavailable) as failure:
        rapl.probe()
    assert str(failure.value).startswith(f"{counter}: permission denied: run as root or ")
    meter, reason = energy.open_meter("auto", "cpu")
    assert meter is None
    assert reason.startswith(f"rapl: {counter}: permission denied")
    with pytest.raises(EdgeprofError, match="--energy rapl: .*permission denied"):
        energy.open_meter("rapl", "cpu")


def test_a_counter_that_disappears_fails_the_window(powercap):
    write_zone(powercap, "intel-rapl:0", "package-0", 1_000_000)
    with rapl.open_meter() as meter:
        meter.begin_window("w")
        (powercap / "intel-rapl:0" / "energy_uj").unlink()
        with pytest.raises(SensorUnavailable, match=r"cannot read .*intel-rapl:0/energy_uj: No such file"):
            meter.end_window("w")


def test_no_powercap_or_no_package_zone_is_a_reason(powercap):
    write_zone(powercap, "intel-rapl:1", "psys", 1_000_000)
    write_zone(powercap, "intel-rapl:1:0", "core", 1_000_000)
    with pytest.raises(SensorUnavailable, match=r"has no RAPL package zones \(intel-rapl:<N> named package-<N>\)"):
        rapl.open_meter()
    shutil.rmtree(powercap)
    with pytest.raises(SensorUnavailable, match=f"{powercap} does not exist: no powercap RAPL driver"):
        rapl.open_meter()
