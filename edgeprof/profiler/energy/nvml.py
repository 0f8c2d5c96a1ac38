"""NVIDIA GPU energy through NVML (the `nvidia-ml-py` bindings, imported as `pynvml`).

Three readings, best first:

1. The total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver loaded; Volta and
   newer). A window's energy is the difference of two reads. It refreshes only every 10-100 ms.
2. The instant power field (`NVML_FI_DEV_POWER_INSTANT` through `nvmlDeviceGetFieldValues`, milliwatts), polled by
   a background thread and integrated.
3. `nvmlDeviceGetPowerUsage` (milliwatts), polled the same way. On Ampere and newer (except GA100) it is a 1-second
   moving average, which smears anything shorter than a few seconds.

The GPU is found by its UUID (or, failing that, its PCI bus id) as torch reports it for the CUDA device: CUDA
numbers only the GPUs `CUDA_VISIBLE_DEVICES` leaves visible, in its own order, while NVML numbers every GPU in
PCI order, so `cuda:0` under `CUDA_VISIBLE_DEVICES=2` is NVML's GPU 2. The CUDA index is used as the NVML index
only when torch has no CUDA to ask and `CUDA_VISIBLE_DEVICES` is unset.

Tests replace the library: pass `library=` to `open_meter`, or monkeypatch `load_library` for code (the CLI) that
opens meters through `edgeprof.profiler.energy.open_meter`; `cuda_gpu` stands for torch's device properties.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from edgeprof.profiler.energy.base import (
    CounterMeter,
    EnergyMeter,
    SamplingMeter,
    SensorUnavailable,
)

COUNTER_UPDATE_PERIOD_S = 0.1  # the counter refreshes every 10-100 ms; assume the slow end
INSTANT_POWER_UPDATE_PERIOD_S = 0.1  # the same power sensor feeds the instant field
AVERAGE_POWER_UPDATE_PERIOD_S = 1.0  # nvmlDeviceGetPowerUsage averages over 1 s on Ampere and newer
SAMPLE_INTERVAL_S = 0.01  # how often the sampling meters poll; a field read costs well under 1 ms

# nvmlValueType_t -> the member of the nvmlValue_t union that holds a field's value
_VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


def load_library() -> ModuleType:
    """The NVML bindings; tests monkeypatch this function to return a fake module."""
    try:
        import pynvml
    except ImportError as missing:
        raise SensorUnavailable(f"the NVML bindings are not installed (pip install nvidia-ml-py): {missing}") from None
    return pynvml


@dataclass(frozen=True)
class CudaGpu:
    """The physical GPU behind a CUDA device index, as torch reports it (None where torch has no CUDA)."""

    cuda_index: int
    uuid: str | None  # "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as NVML spells it
    pci_bus_id: str | None  # "00000000:01:00.0"


def cuda_gpu(index: int) -> CudaGpu:
    """The UUID and PCI bus id of CUDA device `index` from torch, which applies `CUDA_VISIBLE_DEVICES`."""
    import torch

    if not torch.cuda.is_available() or not 0 <= index < torch.cuda.device_count():
        return CudaGpu(index, None, None)
    properties = torch.cuda.get_device_properties(index)
    gpu_uuid = f"GPU-{uuid.UUID(bytes=bytes(properties.uuid.bytes))}"
    bus = f"{properties.pci_domain_id:08X}:{properties.pci_bus_id:02X}:{properties.pci_device_id:02X}.0"
    return CudaGpu(index, gpu_uuid, bus)


class _Gpu:
    """One GPU in an initialised NVML session; `shutdown()` ends the session once."""

    def __init__(self, nvml: Any, index: int, handle: Any, cuda: CudaGpu) -> None:
        self.nvml = nvml
        self.index = index  # NVML's index, which CUDA_VISIBLE_DEVICES does not change
        self.handle = handle
        self.cuda = cuda
        self._open = True
        self.name = self.read_or_none(nvml.nvmlDeviceGetName, handle)

    @property
    def label(self) -> str:
        return f"GPU {self.index} {self.name}" if self.name else f"GPU {self.index}"

    def read_or_none(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)`, or None when NVML cannot read it on this GPU (not supported, no permission...)."""
        try:
            return function(*args)
        except self.nvml.NVMLError:
            return None

    def metadata(self) -> dict[str, Any]:
        nvml, handle = self.nvml, self.handle
        limit_mw = self.read_or_none(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        return {
            "gpu_index": self.index,
            "cuda_index": self.cuda.cuda_index,
            "gpu_uuid": self.read_or_none(nvml.nvmlDeviceGetUUID, handle),
            "gpu_name": self.name,
            "driver_version": self.read_or_none(nvml.nvmlSystemGetDriverVersion),
            "power_limit_w": limit_mw / 1000 if limit_mw is not None else None,
            "sm_clock_mhz": self.read_or_none(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
            "memory_clock_mhz": self.read_or_none(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_MEM),
        }

    def energy_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000

    def instant_power_w(self) -> float:
        field = self.nvml.nvmlDeviceGetFieldValues(self.handle, [self.nvml.NVML_FI_DEV_POWER_INSTANT])[0]
        if field.nvmlReturn != self.nvml.NVML_SUCCESS:  # the call succeeds even when this one field fails
            raise self.nvml.NVMLError(field.nvmlReturn)
        return getattr(field.value, _VALUE_MEMBERS[field.valueType]) / 1000

    def average_power_w(self) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000

    def shutdown(self) -> None:
        if self._open:
            self._open = False
            self.nvml.nvmlShutdown()


def _find_handle(nvml: Any, gpu: CudaGpu) -> Any:
    """NVML's handle of `gpu`: by UUID, else PCI bus id, else (no CUDA identity, no CUDA_VISIBLE_DEVICES) index."""
    tried = []
    lookups = ((gpu.uuid, nvml.nvmlDeviceGetHandleByUUID), (gpu.pci_bus_id, nvml.nvmlDeviceGetHandleByPciBusId))
    for key, lookup in lookups:
        if key is None:
            continue
        try:
            return lookup(key)
        except nvml.NVMLError as error:
            tried.append(f"{key}: {error}")
    if tried:
        raise SensorUnavailable(f"NVML has no GPU matching cuda:{gpu.cuda_index} ({'; '.join(tried)})")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        raise SensorUnavailable(
            f"cannot tell which NVML GPU is cuda:{gpu.cuda_index}: CUDA_VISIBLE_DEVICES={visible} renumbers the "
            "CUDA devices and torch has no CUDA to report the GPU's UUID"
        )
    count = nvml.nvmlDeviceGetCount()
    if not 0 <= gpu.cuda_index < count:
        raise SensorUnavailable(f"no GPU {gpu.cuda_index}: NVML sees {count} GPU(s)")
    return nvml.nvmlDeviceGetHandleByIndex(gpu.cuda_index)


def _open_gpu(nvml: Any, gpu: CudaGpu) -> _Gpu:
    """Start NVML and take `gpu`, or `SensorUnavailable` (with NVML shut down again) saying why not."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        raise SensorUnavailable(f"NVML failed to start ({error}): no NVIDIA driver or GPU here") from None
    try:
        handle = _find_handle(nvml, gpu)
        index = nvml.nvmlDeviceGetIndex(handle)
    except nvml.NVMLError as error:
        nvml.nvmlShutdown()
        raise SensorUnavailable(f"NVML cannot open GPU {gpu.cuda_index}: {error}") from None
    except SensorUnavailable:
        nvml.nvmlShutdown()
        raise
    return _Gpu(nvml, index, handle, gpu)


class NvmlCounterMeter(CounterMeter):
    """A GPU's total-energy counter (64-bit millijoules: it does not wrap in practice)."""

    kind = "nvml"

    def __init__(self, gpu: _Gpu) -> None:
        super().__init__()
        self.gpu = gpu
        self.description = f"{gpu.label}: total-energy counter"

    @property
    def source(self) -> str:
        return f"nvml:{self.description}"

    @property
    def update_period_s(self) -> float:
        return COUNTER_UPDATE_PERIOD_S

    def metadata(self) -> dict[str, Any]:
        return self.gpu.metadata()

    def read_energy_j(self) -> float:
        return self.gpu.energy_j()

    def close(self) -> None:
        self.gpu.shutdown()


class NvmlPowerMeter(SamplingMeter):
    """A GPU's power reading, polled every `SAMPLE_INTERVAL_S` and integrated, for GPUs without the counter."""

    kind = "nvml"

    def __init__(self, gpu: _Gpu, read_power: Callable[[], float], description: str, update_period_s: float) -> None:
        super().__init__(SAMPLE_INTERVAL_S)
        self.gpu = gpu
        self.description = description
        self._read_power = read_power
        self._update_period_s = update_period_s

    @property
    def source(self) -> str:
        return f"nvml:{self.description}"

    @property
    def update_period_s(self) -> float:
        return self._update_period_s

    def metadata(self) -> dict[str, Any]:
        return self.gpu.metadata()

    def read_power_w(self) -> float:
        return self._read_power()

    def close(self) -> None:
        super().close()
        self.gpu.shutdown()


def _choose_meter(gpu: _Gpu) -> NvmlCounterMeter | NvmlPowerMeter:
    """The best reading this GPU supports; a sampling meter's description names the readings that failed."""
    failures = []
    try:
        gpu.energy_j()
        return NvmlCounterMeter(gpu)
    except gpu.nvml.NVMLError as error:
        failures.append(f"total-energy counter: {error}")
    power_readings = [
        ("instant power field", "", gpu.instant_power_w, INSTANT_POWER_UPDATE_PERIOD_S),
        ("power usage", " (a 1 s average on Ampere and newer)", gpu.average_power_w, AVERAGE_POWER_UPDATE_PERIOD_S),
    ]
    for name, caveat, read_power, update_period_s in power_readings:
        try:
            read_power()
        except gpu.nvml.NVMLError as error:
            failures.append(f"{name}: {error}")
            continue
        description = (
            f"{gpu.label}: {name}{caveat} sampled every {SAMPLE_INTERVAL_S * 1000:g} ms "
            f"(unavailable: {'; '.join(failures)})"
        )
        return NvmlPowerMeter(gpu, read_power, description, update_period_s)
    gpu.shutdown()
    raise SensorUnavailable(f"{gpu.label} has no readable energy or power: {'; '.join(failures)}")


def open_meter(device_index: int = 0, library: Any = None, gpu: CudaGpu | None = None) -> EnergyMeter:
    """A meter for CUDA device `device_index` (the physical GPU `gpu` names; by default what torch reports for that
    index) through `library` (default: `load_library()`), or `SensorUnavailable`."""
    nvml = library if library is not None else load_library()
    return _choose_meter(_open_gpu(nvml, gpu if gpu is not None else cuda_gpu(device_index)))


def probe() -> str:
    """What `open_meter()` would measure, e.g. "GPU 0 NVIDIA H100 80GB HBM3: total-energy counter"."""
    meter = _choose_meter(_open_gpu(load_library(), cuda_gpu(0)))
    meter.close()
    return meter.description
