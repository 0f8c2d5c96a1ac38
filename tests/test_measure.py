"""Measured profiles: latency of every prefix, suffix and layer; energy windows with an idle baseline."""

from __future__ import annotations

import time

import pytest
import torch

from edgeprof.errors import EdgeprofError
from edgeprof.profiler.calibrate import calibrate
from edgeprof.profiler.energy.base import CounterMeter
from edgeprof.profiler.measure import MeasureSettings, contention_check, measure_profile
from edgeprof.profiler.models import load_model
from edgeprof.profiler.schema import validate_profile
from edgeprof.profiler.static import analyze
from edgeprof.profiler.timing import (
    LatencyStats,
    RoundLoad,
    resolve_device,
    time_callable,
    time_callables,
)


class BusyCounter(CounterMeter):
    """A fake energy counter: `idle_w` all the time plus `busy_w` for every second of CPU this process uses,
    so a window's dynamic energy follows the work done, whatever else loads the machine."""

    kind = "fake"
    source = "fake:board"
    update_period_s = 0.002

    def __init__(self, idle_w: float, busy_w: float) -> None:
        super().__init__()
        self.idle_w, self.busy_w = idle_w, busy_w
        self.closed = False

    def read_energy_j(self) -> float:
        return self.idle_w * time.monotonic() + self.busy_w * time.process_time()

    def metadata(self):
        return {"rails": ["BOARD"]}

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def lenet():
    return analyze(load_model("lenet7")), load_model("lenet7", device="cpu")


def test_latency_statistics():
    stats = LatencyStats((5.0, 1.0, 3.0, 2.0, 4.0))
    assert stats.as_dict() == {"median": 3.0, "p10": 1.4, "p90": 4.6, "min": 1.0}


def test_every_point_and_layer_gets_latency(lenet):
    analysis, runnable = lenet
    profile = validate_profile(measure_profile(analysis, runnable, MeasureSettings(energy="none", warmup=2,
                                                                                   repeats=5, threads=1)))
    assert profile["device"]["kind"] == "cpu" and profile["device"]["threads"] == 1
    assert profile["timing"]["repeats"] == 5 and profile["timing"]["statistic"] == "median"
    for point in profile["partition_points"]:
        for key in ("device_latency_ms", "edge_latency_ms"):
            stats = point[key]
            assert 0 <= stats["min"] <= stats["p10"] <= stats["median"] <= stats["p90"]
        assert point["device_energy_mj"] is None
    assert all(layer["latency_ms"]["median"] > 0 for layer in profile["layers"])
    whole = profile["device"]["whole_model_latency_ms"]["median"]
    assert profile["device"]["flops_per_s"] == pytest.approx(profile["totals"]["flops"] / (whole / 1e3))
    assert profile["device"]["joules_per_flop"] is None
    assert "turned off" in profile["device"]["energy_unavailable"]


def test_energy_windows_subtract_the_idle_baseline(lenet):
    analysis, runnable = lenet
    meter = BusyCounter(idle_w=2.0, busy_w=10.0)
    settings = MeasureSettings(energy="none", warmup=1, repeats=3, threads=1, min_window_s=0.05, idle_s=0.1)
    profile = measure_profile(analysis, runnable, settings, sensor=(meter, None))
    device = profile["device"]
    assert meter.closed
    assert device["energy_source"] == "fake:board" and device["sensor"] == {"rails": ["BOARD"]}
    assert device["idle_power_w"] == pytest.approx(2.0, abs=0.5)  # sleeping burns almost no CPU
    whole = device["whole_model_energy_mj"]
    assert 0 < whole["dynamic"] < whole["total"]
    latency_s = device["whole_model_latency_ms"]["median"] / 1e3
    assert whole["dynamic"] / 1e3 <= 10.0 * latency_s * 2  # at most busy power x wall time x (1 thread + sampler)
    assert device["joules_per_flop"] == pytest.approx(whole["dynamic"] / 1e3 / profile["totals"]["flops"])
    first, last = profile["partition_points"][0], profile["partition_points"][-1]
    assert first["device_energy_mj"] == {"total": 0.0, "dynamic": 0.0}  # z = 0 runs nothing on the device
    assert last["edge_energy_mj"] == {"total": 0.0, "dynamic": 0.0}
    assert last["device_energy_mj"]["total"] > 0 and first["edge_energy_mj"]["total"] > 0


def test_cuda_timing_uses_events_and_one_final_sync(monkeypatch):
    clock = {"now": 0.0, "syncs": 0}

    class FakeEvent:
        def __init__(self, enable_timing):
            assert enable_timing

        def record(self):
            clock["now"] += 1.5
            self.at = clock["now"]

        def elapsed_time(self, other):
            return other.at - self.at

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: clock.__setitem__("syncs", clock["syncs"] + 1))
    stats = time_callable(lambda: None, torch.device("cuda", 0), warmup=2, repeats=4)
    assert stats.samples_ms == (1.5, 1.5, 1.5, 1.5)
    assert clock["syncs"] == 2  # after the warm-up and after the last repeat, not between repeats


@pytest.mark.parametrize(("name", "message"), [("cuda", "no CUDA GPU is available"), ("mps", "unsupported device"),
                                               ("gpu0", "unknown device")])
def test_devices_that_are_not_here(name, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EdgeprofError, match=message):
        resolve_device(name)


def test_zero_repeats_is_refused():
    with pytest.raises(EdgeprofError, match="repeats must be at least 1"):
        time_callable(lambda: None, torch.device("cpu"), warmup=0, repeats=0)


def _measured(name: str, flops: int, latency_ms: float, device: str = "AMD EPYC", energy_mj: float | None = None):
    return {
        "model": {"name": name, "input_shape": [1, 3, 32, 32], "dtype": "float32"},
        "totals": {"flops": flops},
        "device": {"kind": "cpu", "name": device, "whole_model_latency_ms": {"median": latency_ms},
                   "flops_per_s": flops / (latency_ms / 1e3),
                   "whole_model_energy_mj": None if energy_mj is None else {"total": energy_mj, "dynamic": energy_mj},
                   "joules_per_flop": None if energy_mj is None else energy_mj / 1e3 / flops},
    }


def test_calibrate_fits_speed_and_overhead():
    # latency = 2 ms + FLOPs / 50 GFLOP/s; energy = 1 mJ + 10 pJ/FLOP
    profiles = {f"m{i}.json": _measured(f"m{i}", flops, 2 + flops / 50e9 * 1e3, energy_mj=1 + flops * 10e-12 * 1e3)
                for i, flops in enumerate([1e9, 4e9, 9e9])}
    summary = calibrate(profiles)
    assert summary["latency_fit"]["flops_per_s"] == pytest.approx(50e9)
    assert summary["latency_fit"]["overhead_s"] == pytest.approx(2e-3)
    assert summary["energy_fit"]["joules_per_flop"] == pytest.approx(10e-12)
    assert summary["flops_per_s_median"] == pytest.approx(4e9 / (2e-3 + 4e9 / 50e9))
    assert summary["warnings"] == []


def test_calibrate_warns_of_an_implausible_fit():
    # the smallest model is the slowest: a contended run; the straight line through them starts below zero
    profiles = {f"m{i}.json": _measured(f"m{i}", flops, latency) for i, (flops, latency)
                in enumerate([(1e9, 30.0), (4e9, 20.0), (9e9, 200.0)])}
    warnings = calibrate(profiles)["warnings"]
    assert len(warnings) == 1 and "negative fixed overhead" in warnings[0]


def test_calibrate_refuses_mixed_devices_and_static_profiles():
    with pytest.raises(EdgeprofError, match="different devices"):
        calibrate({"a.json": _measured("a", 1e9, 1.0), "b.json": _measured("b", 1e9, 1.0, device="Jetson")})
    static = _measured("s", 1e9, 1.0)
    del static["device"]
    with pytest.raises(EdgeprofError, match="s.json has no measurements"):
        calibrate({"s.json": static})
    no_latency = _measured("l", 1e9, 1.0)
    del no_latency["device"]["whole_model_latency_ms"]
    with pytest.raises(EdgeprofError, match="l.json has no measurements"):
        calibrate({"l.json": no_latency})
    energy_without_measurement = _measured("e", 1e9, 1.0, energy_mj=2.0)
    energy_without_measurement["device"]["whole_model_energy_mj"] = None
    with pytest.raises(EdgeprofError, match="e.json has joules_per_flop but no whole-model energy measurement"):
        calibrate({"e.json": energy_without_measurement})


def test_callables_are_timed_round_robin():
    calls = []
    stats = time_callables([lambda: calls.append("a"), lambda: calls.append("b")], torch.device("cpu"), warmup=1,
                           repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert [len(s.samples_ms) for s in stats] == [3, 3]


def test_a_quiet_cpu_is_not_flagged_and_a_starved_or_scattered_one_is():
    steady = [LatencyStats((10.0, 10.5, 9.8, 10.2, 10.1))] * 3
    figures, warning = contention_check([RoundLoad(1.0, 0.98)] * 5, steady)
    assert warning is None and figures["suspect"] is False
    assert figures["cpu_time_per_wall_time"] == {"median": 0.98, "min": 0.98}
    assert figures["p90_over_median"]["max"] == pytest.approx(10.38 / 10.1, abs=1e-4)
    starved, warning = contention_check([RoundLoad(1.0, 0.12)] * 5, steady)  # 12% of a core, as on a shared VM
    assert starved["suspect"] and "got 12% of a core" in warning
    scattered = [LatencyStats((1.0, 1.0, 60.0, 1.1, 55.0))] * 3  # medians of 1 ms beside stalls of 60 ms
    figures, warning = contention_check([RoundLoad(1.0, 1.0)] * 5, scattered)
    assert figures["suspect"] and "scatter by p90/median" in warning


def test_time_callables_sees_work_that_waits_instead_of_computing():
    """Sleeping stands for a process the scheduler does not run: wall time passes, CPU time does not."""
    rounds: list[RoundLoad] = []
    stats = time_callables([lambda: time.sleep(0.004)], torch.device("cpu"), warmup=0, repeats=5, rounds=rounds)
    assert len(rounds) == 5 and all(load.wall_s >= 0.004 for load in rounds)
    figures, warning = contention_check(rounds, stats)
    assert figures["cpu_time_per_wall_time"]["median"] < 0.5 and figures["suspect"] and warning


def test_measured_profiles_record_the_contention_figures(lenet):
    analysis, runnable = lenet
    settings = MeasureSettings(energy="none", warmup=1, repeats=4, threads=1)
    profile = validate_profile(measure_profile(analysis, runnable, settings))
    contention = profile["timing"]["contention"]
    assert contention["rounds"] == 4
    assert 0 < contention["cpu_time_per_wall_time"]["min"] <= contention["cpu_time_per_wall_time"]["median"]
    assert contention["p90_over_median"]["median"] >= 1
    ratios = contention["prefix_plus_suffix_over_whole"]
    assert 0 < ratios["min"] <= ratios["max"]
    warned = any("CPU looks shared" in warning for warning in profile["timing"]["warnings"])
    assert warned == contention["suspect"]


def test_profiles_without_contention_figures_still_validate(lenet):
    analysis, runnable = lenet
    profile = measure_profile(analysis, runnable, MeasureSettings(energy="none", warmup=0, repeats=2, threads=1))
    del profile["timing"]["contention"]
    validate_profile(profile)
    profile["timing"]["contention"] = None
    validate_profile(profile)
