"""A stand-in for ``pynvml`` with several GPUs, unsupported fields and a lost GPU."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    def __str__(self) -> str:
        return "NVML Shared Library Not Found"


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    util: float | None = 97.0
    mem_used: int = 40 * 2**30
    mem_total: int = 80 * 2**30
    temp: float | None = 61.0
    power_mw: int | None = 350_000
    lost: bool = False


@dataclass
class FakeNvml:
    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu(), FakeGpu()])
    missing_library: bool = False
    NVML_TEMPERATURE_GPU: int = 0
    NVMLError_GpuIsLost: type = NVMLError_GpuIsLost
    NVMLError_NotSupported: type = NVMLError_NotSupported
    shutdowns: int = 0

    def nvmlInit(self) -> None:
        if self.missing_library:
            raise NVMLError_LibraryNotFound()

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        return self.gpus[i]

    def _live(self, gpu: FakeGpu) -> FakeGpu:
        if gpu.lost:
            raise NVMLError_GpuIsLost("GPU is lost")
        return gpu

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> str:
        return self._live(gpu).name

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu):
        if self._live(gpu).util is None:
            raise NVMLError_NotSupported("Not Supported")
        return SimpleNamespace(gpu=gpu.util, memory=10)

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu):
        self._live(gpu)
        return SimpleNamespace(used=gpu.mem_used, total=gpu.mem_total, free=gpu.mem_total - gpu.mem_used)

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> float:
        if self._live(gpu).temp is None:
            raise NVMLError_NotSupported("Not Supported")
        return gpu.temp

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        if self._live(gpu).power_mw is None:
            raise NVMLError_NotSupported("Not Supported")
        return gpu.power_mw
