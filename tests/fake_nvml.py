"""A stand-in for the `pynvml` module: GPUs that draw a set power, with readings that follow `time.monotonic()`.

GPU i has the UUID `uuids[i]` and PCI bus id `pci_bus_ids[i]`, so code that must map CUDA devices to NVML GPUs
can be checked. Pass an instance wherever the NVML module is expected (`nvml.open_meter(library=FakeNvml())`, or
monkeypatch
`edgeprof.profiler.energy.nvml.load_library` to return it). Any function named in `unsupported` raises
`NVMLError_NotSupported`, like a GPU that lacks the feature; naming "NVML_FI_DEV_POWER_INSTANT" there makes that
field report NOT_SUPPORTED inside a successful `nvmlDeviceGetFieldValues` call, as real drivers do.
"""

from __future__ import annotations

import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
_ERROR_STRINGS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _ERROR_STRINGS[self.value]


class FakeNvml:
    """The NVML functions edgeprof calls, over GPUs named `gpus`, each drawing `watts` until `set_power`."""

    NVMLError = NVMLError
    NVML_SUCCESS = NVML_SUCCESS
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_FI_DEV_POWER_INSTANT = 186
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(
        self,
        watts: float = 250.0,
        gpus: tuple[str, ...] = ("NVIDIA H100 80GB HBM3",),
        unsupported: frozenset[str] = frozenset(),
        init_error: int | None = None,
    ) -> None:
        self.gpus = gpus
        self.uuids = [f"GPU-{index:08x}-1111-2222-3333-{index:012x}" for index in range(len(gpus))]
        self.pci_bus_ids = [f"00000000:{index + 1:02X}:00.0" for index in range(len(gpus))]  # NVML's order is PCI's
        self.unsupported = unsupported
        self.init_error = init_error
        self.initialised = 0  # nvmlInit calls minus nvmlShutdown calls: 0 again once every meter is closed
        self.calls: Counter[str] = Counter()  # function name -> calls
        self._watts = watts
        self._since = time.monotonic()
        self._banked_j = 1234.5  # the counter counts from driver load, not from zero

    def set_power(self, watts: float) -> None:
        """Draw `watts` from now on."""
        self._banked_j = self.energy_j()
        self._since = time.monotonic()
        self._watts = watts

    def energy_j(self) -> float:
        """The true energy drawn so far."""
        return self._banked_j + self._watts * (time.monotonic() - self._since)

    def _check(self, function: str) -> None:
        self.calls[function] += 1
        if self.initialised <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        if function in self.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetHandleByUUID(self, gpu_uuid: str) -> int:
        self._check("nvmlDeviceGetHandleByUUID")
        if gpu_uuid not in self.uuids:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return self.uuids.index(gpu_uuid)

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> int:
        self._check("nvmlDeviceGetHandleByPciBusId")
        if bus_id not in self.pci_bus_ids:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return self.pci_bus_ids.index(bus_id)

    def nvmlDeviceGetIndex(self, handle: int) -> int:
        self._check("nvmlDeviceGetIndex")
        return handle

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        self._check("nvmlDeviceGetUUID")
        return self.uuids[handle]

    def nvmlDeviceGetName(self, handle: int) -> str:
        self._check("nvmlDeviceGetName")
        return self.gpus[handle]

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return "550.54.15"

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        self._check("nvmlDeviceGetEnforcedPowerLimit")
        return 700_000  # mW

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        self._check("nvmlDeviceGetClockInfo")
        return {self.NVML_CLOCK_SM: 1980, self.NVML_CLOCK_MEM: 2619}[clock]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        self._check("nvmlDeviceGetTotalEnergyConsumption")
        return int(self.energy_j() * 1000)  # mJ

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        self._check("nvmlDeviceGetPowerUsage")
        return round(self._watts * 1000)  # mW

    def nvmlDeviceGetFieldValues(self, handle: int, field_ids: list[int]) -> list[Any]:
        self._check("nvmlDeviceGetFieldValues")
        assert field_ids == [self.NVML_FI_DEV_POWER_INSTANT], field_ids
        status = NVML_ERROR_NOT_SUPPORTED if "NVML_FI_DEV_POWER_INSTANT" in self.unsupported else NVML_SUCCESS
        value = SimpleNamespace(uiVal=round(self._watts * 1000))  # mW
        return [SimpleNamespace(fieldId=field_ids[0], nvmlReturn=status, valueType=1, value=value)]  # 1: unsigned int
