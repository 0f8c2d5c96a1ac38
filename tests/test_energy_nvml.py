"""The NVML backend on a fake NVML library: counter and sampling paths, fallbacks, failures, metadata."""

from __future__ import annotations

import sys
import time
import types

import pytest
from fake_nvml import FakeNvml

from edgeprof.errors import EdgeprofError
from edgeprof.profiler import energy
from edgeprof.profiler.energy import EnergyMeter, EnergyReading, SensorUnavailable, nvml

H100 = "NVIDIA H100 80GB HBM3"
COUNTER = "nvmlDeviceGetTotalEnergyConsumption"
INSTANT = "NVML_FI_DEV_POWER_INSTANT"
AVERAGE = "nvmlDeviceGetPowerUsage"

# path -> (what the fake GPU does not support, the reading the source names, the meter's update period)
PATHS = {
    "counter": (frozenset(), "total-energy counter", 0.1),
    "instant": (
        frozenset({COUNTER}),
        "instant power field sampled every 10 ms (unavailable: total-energy counter: Not Supported)",
        0.1,
    ),
    "average": (
        frozenset({COUNTER, INSTANT}),
        "power usage (a 1 s average on Ampere and newer) sampled every 10 ms "
        "(unavailable: total-energy counter: Not Supported; instant power field: Not Supported)",
        1.0,
    ),
}


def measure(meter: EnergyMeter, fake: FakeNvml, schedule: list[tuple[float, float]]) -> tuple[EnergyReading, float]:
    """One window in which the fake GPU draws each (watts, seconds) of `schedule` in turn; the reading and the
    energy the fake drew inside the window."""
    meter.begin_window("w")
    drawn_from = fake.energy_j()
    for watts, seconds in schedule:
        fake.set_power(watts)
        time.sleep(seconds)
    drawn = fake.energy_j() - drawn_from
    return meter.end_window("w"), drawn


@pytest.mark.parametrize("path", PATHS)
def test_every_path_measures_the_injected_energy(path):
    unsupported, reading_name, update_period_s = PATHS[path]
    fake = FakeNvml(watts=250.0, unsupported=unsupported)
    with nvml.open_meter(library=fake) as meter:
        assert meter.source == f"nvml:GPU 0 {H100}: {reading_name}"
        assert meter.update_period_s == update_period_s
        reading, drawn = measure(meter, fake, [(250.0, 0.2)])
    assert drawn == pytest.approx(250.0 * 0.2, rel=0.25)
    assert reading.energy_j == pytest.approx(drawn, rel=0.02)
    assert reading.duration_s == pytest.approx(0.2, abs=0.05)
    assert fake.initialised == 0


@pytest.mark.parametrize(
    "path, tolerance_j",
    [("counter", 0.02 * 45), ("instant", 300.0 * 0.03)],  # sampling: the step lands between samples 10 ms apart
)
def test_a_power_step_inside_the_window_is_followed(path, tolerance_j):
    fake = FakeNvml(watts=300.0, unsupported=PATHS[path][0])
    with nvml.open_meter(library=fake) as meter:
        reading, drawn = measure(meter, fake, [(300.0, 0.15), (0.0, 0.15)])
    assert drawn == pytest.approx(300.0 * 0.15, rel=0.25)
    assert reading.energy_j == pytest.approx(drawn, abs=tolerance_j)


def test_the_sampling_path_integrates_many_samples():
    fake = FakeNvml(watts=100.0, unsupported=PATHS["instant"][0])
    with nvml.open_meter(library=fake) as meter:
        reading, _ = measure(meter, fake, [(100.0, 0.1)])
    assert reading.samples >= 5


def test_any_gpu_can_be_chosen_by_index():
    fake = FakeNvml(gpus=("NVIDIA A100-SXM4-40GB", "Tesla V100-SXM2-16GB"))
    with nvml.open_meter(device_index=1, library=fake) as meter:
        assert meter.source == "nvml:GPU 1 Tesla V100-SXM2-16GB: total-energy counter"
        assert meter.metadata()["gpu_index"] == 1


def test_nvml_that_does_not_start_is_a_reason():
    fake = FakeNvml(init_error=9)
    with pytest.raises(SensorUnavailable, match=r"NVML failed to start \(Driver Not Loaded\): no NVIDIA driver"):
        nvml.open_meter(library=fake)


@pytest.mark.parametrize("index", [1, -1])
def test_a_gpu_index_out_of_range_is_a_reason(index):
    fake = FakeNvml()
    with pytest.raises(SensorUnavailable, match=rf"no GPU {index}: NVML sees 1 GPU\(s\)"):
        nvml.open_meter(device_index=index, library=fake)
    assert fake.initialised == 0


def test_a_gpu_nvml_cannot_open_is_a_reason():
    fake = FakeNvml(unsupported=frozenset({"nvmlDeviceGetHandleByIndex"}))
    with pytest.raises(SensorUnavailable, match="NVML cannot open GPU 0: Not Supported"):
        nvml.open_meter(library=fake)
    assert fake.initialised == 0


def test_a_gpu_without_any_energy_or_power_reading_is_a_reason():
    fake = FakeNvml(unsupported=frozenset({COUNTER, INSTANT, AVERAGE}))
    with pytest.raises(SensorUnavailable) as failure:
        nvml.open_meter(library=fake)
    assert str(failure.value) == (
        f"GPU 0 {H100} has no readable energy or power: total-energy counter: Not Supported; "
        "instant power field: Not Supported; power usage: Not Supported"
    )
    assert fake.initialised == 0


def test_missing_bindings_are_a_reason(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path))  # not a Jetson
    with pytest.raises(SensorUnavailable, match=r"pip install nvidia-ml-py"):
        nvml.probe()
    meter, reason = energy.open_meter("auto", "cuda")
    assert meter is None
    assert reason.startswith("nvml: the NVML bindings are not installed")
    with pytest.raises(EdgeprofError, match="--energy nvml: the NVML bindings are not installed"):
        energy.open_meter("nvml", "cuda")


def test_metadata_records_the_gpu_state():
    with nvml.open_meter(library=FakeNvml()) as meter:
        assert meter.metadata() == {
            "gpu_index": 0,
            "cuda_index": 0,
            "gpu_uuid": "GPU-00000000-1111-2222-3333-000000000000",
            "gpu_name": H100,
            "driver_version": "550.54.15",
            "power_limit_w": 700.0,
            "sm_clock_mhz": 1980,
            "memory_clock_mhz": 2619,
        }


def test_unreadable_metadata_is_none():
    unreadable = frozenset({"nvmlDeviceGetName", "nvmlSystemGetDriverVersion", "nvmlDeviceGetClockInfo",
                            "nvmlDeviceGetUUID"})
    with nvml.open_meter(library=FakeNvml(unsupported=unreadable)) as meter:
        assert meter.source == "nvml:GPU 0: total-energy counter"
        assert meter.metadata() == {
            "gpu_index": 0,
            "cuda_index": 0,
            "gpu_uuid": None,
            "gpu_name": None,
            "driver_version": None,
            "power_limit_w": 700.0,
            "sm_clock_mhz": None,
            "memory_clock_mhz": None,
        }
    unreadable = frozenset({COUNTER, "nvmlDeviceGetEnforcedPowerLimit"})
    with nvml.open_meter(library=FakeNvml(unsupported=unreadable)) as meter:
        assert meter.metadata()["power_limit_w"] is None
        assert meter.metadata()["sm_clock_mhz"] == 1980


@pytest.mark.parametrize("path", ["counter", "instant"])
def test_close_shuts_nvml_down_once(path):
    fake = FakeNvml(unsupported=PATHS[path][0])
    meter = nvml.open_meter(library=fake)
    assert fake.initialised == 1
    meter.begin_window("w")
    meter.close()
    meter.close()  # the fake raises on a second nvmlShutdown
    assert fake.initialised == 0
    calls = sum(fake.calls.values())
    time.sleep(0.05)
    assert sum(fake.calls.values()) == calls  # no sampler left polling


def test_probe_and_the_registry_use_the_substituted_library(monkeypatch, tmp_path):
    fake = FakeNvml(gpus=(H100, H100))
    monkeypatch.setattr(nvml, "load_library", lambda: fake)
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path))  # not a Jetson
    assert nvml.probe() == f"GPU 0 {H100}: total-energy counter"
    assert fake.initialised == 0
    meter, reason = energy.open_meter("auto", "cuda:1")
    assert reason is None
    with meter:
        assert meter.source == f"nvml:GPU 1 {H100}: total-energy counter"
    assert fake.initialised == 0


def test_a_cuda_device_is_found_by_uuid_whatever_cuda_visible_devices_renumbers(monkeypatch, tmp_path):
    """CUDA_VISIBLE_DEVICES=2 makes physical GPU 2 cuda:0; torch reports its UUID, and that GPU is measured."""
    fake = FakeNvml(gpus=("NVIDIA A100 #0", "NVIDIA A100 #1", "NVIDIA A100 #2"))
    monkeypatch.setattr(nvml, "load_library", lambda: fake)
    monkeypatch.setenv("EDGEPROF_SYSFS_ROOT", str(tmp_path))  # not a Jetson
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    monkeypatch.setattr(nvml, "cuda_gpu", lambda index: nvml.CudaGpu(index, fake.uuids[2], fake.pci_bus_ids[2]))
    meter, _ = energy.open_meter("nvml", "cuda:0")
    with meter:
        assert meter.source == "nvml:GPU 2 NVIDIA A100 #2: total-energy counter"
        assert (meter.metadata()["gpu_index"], meter.metadata()["cuda_index"]) == (2, 0)
        assert meter.metadata()["gpu_uuid"] == fake.uuids[2]
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 0


def test_the_pci_bus_id_is_the_fallback_and_an_unknown_gpu_is_a_reason():
    fake = FakeNvml(gpus=("GPU A", "GPU B"), unsupported=frozenset({"nvmlDeviceGetHandleByUUID"}))
    with nvml.open_meter(library=fake, gpu=nvml.CudaGpu(0, fake.uuids[1], fake.pci_bus_ids[1])) as meter:
        assert meter.source == "nvml:GPU 1 GPU B: total-energy counter"
    stranger = nvml.CudaGpu(0, "GPU-ffffffff-0000-0000-0000-000000000000", "00000000:AF:00.0")
    with pytest.raises(SensorUnavailable, match=r"NVML has no GPU matching cuda:0 \(GPU-ffffffff.*: Not Supported; "
                                                r"00000000:AF:00.0: Not Found\)"):
        nvml.open_meter(library=FakeNvml(unsupported=frozenset({"nvmlDeviceGetHandleByUUID"})), gpu=stranger)


def test_without_cuda_the_index_is_trusted_only_when_cuda_visible_devices_is_unset(monkeypatch):
    fake = FakeNvml(gpus=("GPU A", "GPU B"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with nvml.open_meter(library=fake, gpu=nvml.CudaGpu(1, None, None)) as meter:
        assert meter.metadata()["gpu_index"] == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(SensorUnavailable, match="cannot tell which NVML GPU is cuda:0: CUDA_VISIBLE_DEVICES=1"):
        nvml.open_meter(library=fake, gpu=nvml.CudaGpu(0, None, None))
    assert fake.initialised == 0


def test_cuda_gpu_spells_torchs_uuid_and_bus_id_as_nvml_does(monkeypatch):
    import torch

    class Properties:
        uuid = types.SimpleNamespace(bytes=bytes(range(16)))
        pci_domain_id, pci_bus_id, pci_device_id = 0, 0x1B, 0

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Properties())
    assert nvml.cuda_gpu(0) == nvml.CudaGpu(0, "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f", "00000000:1B:00.0")
    assert nvml.cuda_gpu(1) == nvml.CudaGpu(1, None, None)
