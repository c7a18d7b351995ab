"""The supervisor's worker readings, from /proc (kronos_train.control.procstat)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from kronos_train.control.procstat import WorkerRecorder, WorkerSampler, child_pids

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 20: pass\n"


def test_children_are_read_with_cpu_memory_threads_and_rank():
    child = subprocess.Popen([sys.executable, "-c", BUSY], env={**os.environ, "LOCAL_RANK": "3"})
    try:
        sampler = WorkerSampler(os.getpid())
        first = {r.pid: r for r in sampler.sample()}
        assert child.pid in child_pids(os.getpid()) and first[child.pid].cpu is None     # no interval yet
        time.sleep(0.5)
        reading = {r.pid: r for r in sampler.sample()}[child.pid]
        assert reading.rank == 3 and reading.threads >= 1 and reading.rss_mb > 1
        assert 20 < reading.cpu <= 110, "a busy loop uses about one core"
    finally:
        child.kill()
        child.wait()


def test_the_recorder_emits_readings_until_stopped():
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    got: list[list[dict]] = []
    try:
        recorder = WorkerRecorder(os.getpid(), got.append, interval_s=0.2).start()
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        recorder.stop()
    finally:
        child.kill()
        child.wait()
    assert got and {"pid", "rank", "cpu", "rss_mb", "threads"} == set(got[0][0])
    assert any(w["pid"] == child.pid for w in got[0])
