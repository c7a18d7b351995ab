"""CPU %, resident memory and threads of a stage's worker processes, from /proc.

The run supervisor knows torchrun's pid; the workers are torchrun's children.
Every few seconds it records their readings as a ``workers`` event
(docs/events.md), so the TUI shows them after a re-attach and for runs on other
hosts, where it could never look at the processes itself.  On a CPU node these
readings are what the GPU panel would be on a GPU node.

Light module, standard library only (Linux /proc; elsewhere no readings).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
DEFAULT_INTERVAL_S = float(os.environ.get("KRONOS_WORKERS_SAMPLE_S", 5.0))


@dataclass
class WorkerReading:
    pid: int
    rank: int | None          # LOCAL_RANK from the worker's environment, when readable
    cpu: float | None         # % of one core over the last interval (None on the first reading)
    rss_mb: float | None
    threads: int | None

    def to_event(self) -> dict:
        return asdict(self)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def child_pids(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` (one pass over /proc)."""
    children = []
    for entry in os.scandir(PROC) if PROC.is_dir() else ():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and len(fields) > 1 and fields[1] == str(parent):
                children.append(int(entry.name))
    return sorted(children)


def _status_values(pid: int) -> dict[str, str]:
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _local_rank(pid: int) -> int | None:
    try:
        env = (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"LOCAL_RANK="):
            try:
                return int(item.split(b"=", 1)[1])
            except ValueError:
                return None
    return None


class WorkerSampler:
    """Readings of the children of one process; CPU % needs two readings apart."""

    def __init__(self, parent_pid: int, clock: Callable[[], float] = time.monotonic):
        self.parent_pid = parent_pid
        self.clock = clock
        self._last: dict[int, tuple[float, float]] = {}     # pid -> (cpu seconds, when)
        self._ranks: dict[int, int | None] = {}

    def sample(self) -> list[WorkerReading]:
        readings, seen = [], {}
        for pid in child_pids(self.parent_pid):
            fields = _stat_fields(pid)
            if fields is None or len(fields) < 18:
                continue                                    # ended between the listing and the read
            cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS      # utime + stime
            now = self.clock()
            before = self._last.get(pid)
            cpu = None
            if before is not None and now > before[1]:
                cpu = round(100.0 * (cpu_s - before[0]) / (now - before[1]), 1)
            seen[pid] = (cpu_s, now)
            status = _status_values(pid)
            rss_kb = status.get("VmRSS", "").split()
            threads = status.get("Threads", "").strip()
            if pid not in self._ranks:
                self._ranks[pid] = _local_rank(pid)
            readings.append(WorkerReading(pid, self._ranks[pid], cpu,
                                          round(int(rss_kb[0]) / 1024, 1) if rss_kb else None,
                                          int(threads) if threads.isdigit() else int(fields[17])))
        self._last = seen
        return sorted(readings, key=lambda r: (r.rank is None, r.rank or 0, r.pid))


class WorkerRecorder:
    """A daemon thread that emits ``workers`` events while a stage runs."""

    def __init__(self, parent_pid: int, emit: Callable[..., object], interval_s: float = DEFAULT_INTERVAL_S):
        self.sampler = WorkerSampler(parent_pid)
        self.emit = emit
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-sampler", daemon=True)

    def start(self) -> "WorkerRecorder":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.sampler.sample()                  # the baseline for the first CPU %
            while not self._stop.wait(self.interval_s):
                workers = self.sampler.sample()
                if workers:
                    self.emit([w.to_event() for w in workers])
        except Exception:                          # a reading must never take the run down
            return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
