"""Per-GPU readings through NVML (``nvidia-ml-py``, module ``pynvml``).

Used by the trainer's sampler (``gpu`` events), the checklist (GPU count) and
the TUI's GPU panel.  Every reading degrades on its own: a field NVML does not
support becomes ``None``, a GPU that stops answering is reported as lost, and a
machine without NVML or without NVIDIA GPUs gives an empty list with a reason.
Tests pass a fake module with the same functions as ``pynvml``.

Light module: no torch.
"""
from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class GpuReading:
    index: int
    name: str | None = None
    util: float | None = None          # % of time a kernel ran, last sample period
    mem_used_mb: float | None = None
    mem_total_mb: float | None = None
    temp_c: float | None = None
    power_w: float | None = None

    def to_event(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GpuSnapshot:
    host: str
    gpus: list[GpuReading]
    available: bool                   # NVML answered
    reason: str = ""                   # why not, or what went wrong

    @property
    def count(self) -> int:
        return len(self.gpus)


def _load_nvml() -> Any:
    import pynvml  # nvidia-ml-py

    return pynvml


class GpuMonitor:
    """Holds NVML open between samples (init costs ~50 ms; sampling ~1 ms/GPU)."""

    def __init__(self, nvml: Any | None = None):
        self._nvml = nvml
        self._ready = False
        self._reason = ""
        self._handles: list[Any] = []

    def _init(self) -> None:
        if self._ready or self._reason:
            return
        try:
            nvml = self._nvml or _load_nvml()
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._nvml = nvml
            self._ready = True
        except ImportError:
            self._reason = "nvidia-ml-py is not installed"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self._reason = f"no NVIDIA GPU: {_nvml_message(exc)}"

    def sample(self) -> GpuSnapshot:
        self._init()
        host = socket.gethostname()
        if not self._ready:
            return GpuSnapshot(host, [], False, self._reason)
        readings, lost = [], []
        for index, handle in enumerate(self._handles):
            reading = self._read_one(index, handle)
            if reading is None:
                lost.append(index)
            else:
                readings.append(reading)
        reason = f"GPU {', '.join(map(str, lost))} stopped answering" if lost else ""
        return GpuSnapshot(host, readings, True, reason)

    def _read_one(self, index: int, handle: Any) -> GpuReading | None:
        nvml = self._nvml
        reading = GpuReading(index=index)
        try:
            name = nvml.nvmlDeviceGetName(handle)
            reading.name = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as exc:
            if _is_gpu_lost(nvml, exc):
                return None
        reading.util = _try(lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        mem = _try(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if mem is not None:
            reading.mem_used_mb = round(mem.used / 2**20, 1)
            reading.mem_total_mb = round(mem.total / 2**20, 1)
        reading.temp_c = _try(lambda: float(nvml.nvmlDeviceGetTemperature(handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))))
        reading.power_w = _try(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        return reading

    def close(self) -> None:
        if self._ready:
            _try(self._nvml.nvmlShutdown)
            self._ready = False


def _try(fn: Any) -> Any:
    """One field: NVML raises NotSupported for fields a board lacks."""
    try:
        return fn()
    except Exception:
        return None


def _is_gpu_lost(nvml: Any, exc: Exception) -> bool:
    lost = getattr(nvml, "NVMLError_GpuIsLost", None)
    return (lost is not None and isinstance(exc, lost)) or "lost" in str(exc).lower()


def _nvml_message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("NVML_ERROR_", "").replace("_", " ").lower()


def gpu_count(nvml: Any | None = None) -> tuple[int, str]:
    """How many NVIDIA GPUs this node has, and why none when zero."""
    snap = GpuMonitor(nvml).sample()
    return snap.count, snap.reason
