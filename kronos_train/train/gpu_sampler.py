"""``gpu`` events from each node's local rank 0, every few seconds, through NVML.

A daemon thread: it never touches torch, and when NVML is missing (CPU
machines, no driver) it returns after the first try without writing anything.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from ..control.events import EventWriter
from ..control.gpu import GpuMonitor

DEFAULT_INTERVAL_S = float(os.environ.get("KRONOS_GPU_SAMPLE_S", 5.0))


class GpuSampler:
    def __init__(self, writer: EventWriter, interval_s: float = DEFAULT_INTERVAL_S, nvml: Any | None = None):
        self.writer = writer
        self.interval_s = interval_s
        self.monitor = GpuMonitor(nvml)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)

    def start(self) -> "GpuSampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                snap = self.monitor.sample()
                if not snap.available:
                    return
                if snap.gpus:
                    self.writer.emit("gpu", host=snap.host, gpus=[g.to_event() for g in snap.gpus])
                self._stop.wait(self.interval_s)
        except Exception:           # a broken sensor must never take training down
            return
        finally:
            self.monitor.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * self.interval_s)
