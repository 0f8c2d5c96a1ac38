"""The energy API: counters with wrap-around, sampling threads, trapezoid integration."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeprof.profiler.energy.base import CounterMeter, SamplingMeter, integrate_power, system_path


class FakeCounter(CounterMeter):
    kind = "fake"
    source = "fake counter"
    update_period_s = 0.001

    def __init__(self, values, wrap_j=None):
        super().__init__()
        self.values = iter(values)
        self.wrap_j = wrap_j

    def read_energy_j(self):
        return next(self.values)


def test_counter_window_is_the_difference_and_unwraps():
    meter = FakeCounter([10.0, 13.5])
    meter.begin_window("w")
    assert meter.end_window("w").energy_j == pytest.approx(3.5)
    wrapped = FakeCounter([99.0, 2.0], wrap_j=100.0)
    wrapped.begin_window("w")
    assert wrapped.end_window("w").energy_j == pytest.approx(3.0)


def test_windows_must_be_opened_once_and_closed():
    meter = FakeCounter([0.0, 1.0, 2.0])
    meter.begin_window("a")
    with pytest.raises(ValueError, match="already open"):
        meter.begin_window("a")
    with pytest.raises(ValueError, match="never opened"):
        meter.end_window("b")


class ConstantPower(SamplingMeter):
    kind = "fake"
    source = "fake power"

    def __init__(self, watts, interval_s=0.002):
        super().__init__(interval_s)
        self.watts = watts

    @property
    def update_period_s(self):
        return self.interval_s

    def read_power_w(self):
        return self.watts


def test_sampling_a_constant_power_gives_power_times_time():
    with ConstantPower(7.5) as meter:
        meter.begin_window("w")
        time.sleep(0.2)
        reading = meter.end_window("w")
    assert reading.average_power_w == pytest.approx(7.5, rel=1e-9)
    assert reading.energy_j == pytest.approx(7.5 * reading.duration_s, rel=1e-9)
    assert reading.duration_s == pytest.approx(0.2, abs=0.05)
    assert reading.samples > 10


def test_trapezoid_of_a_ramp_is_exact():
    times = [0.0, 1.0, 2.0, 3.0]
    watts = [0.0, 10.0, 20.0, 30.0]  # P(t) = 10 t
    energy, samples = integrate_power(times, watts, 0.5, 2.5)
    assert energy == pytest.approx(5 * (2.5**2 - 0.5**2))
    assert samples == 2


@given(st.lists(st.floats(0, 500), min_size=2, max_size=30), st.floats(0, 1), st.floats(0, 1))
def test_integral_is_bounded_by_the_power_range(watts, a, b):
    times = [float(i) for i in range(len(watts))]
    begin, end = sorted((a * (len(watts) - 1), b * (len(watts) - 1)))
    energy, _ = integrate_power(times, watts, begin, end)
    assert min(watts) * (end - begin) - 1e-6 <= energy <= max(watts) * (end - begin) + 1e-6


def test_system_paths_follow_the_sysfs_root(monkeypatch, tmp_path):
    monkeypatch.delenv("EDGEPROF_SYSFS_ROOT", raising=False)
    assert str(system_path("/sys/class/powercap")) == "/sys/class/powercap"
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path))
    assert system_path("/sys/class/powercap") == tmp_path / "sys/class/powercap"
