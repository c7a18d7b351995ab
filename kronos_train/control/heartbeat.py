"""Liveness across hosts: the supervisor's heartbeat in the run folder.

A flock or a pid means something only on the host that holds it, and shared
filesystems often do not carry locks between nodes.  So the supervisor also
writes ``heartbeat.json`` — ``{host, pid, t, interval_s, ended}`` — every
``HEARTBEAT_INTERVAL_S`` seconds (atomic rename), and a reader on another host
judges the run by it: fresh means running, older than ``STALE_AFTER_S`` means
the supervisor is gone (interrupted).  A reader on the supervisor's own host
keeps using the flock, which never mistakes a recycled pid for a live run.

The host a process believes it is on is ``KRONOS_HOSTNAME`` when set, else
``socket.gethostname()``: the override lets a login node that shares the
hostname of a compute node (containers) tell itself apart, and lets tests play
the reader on another host.

Light module: standard library only.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .runfolder import read_json, write_json_atomic

HEARTBEAT_FILE = "heartbeat.json"
HEARTBEAT_INTERVAL_S = 5.0
# Three missed beats and a margin for a loaded shared filesystem (attribute caches, slow fsync).
STALE_AFTER_S = 30.0


def local_host() -> str:
    """The host name this process believes it is on (``KRONOS_HOSTNAME`` overrides)."""
    return os.environ.get("KRONOS_HOSTNAME") or socket.gethostname()


@dataclass(frozen=True)
class Heartbeat:
    host: str
    pid: int
    t: float
    ended: bool

    def is_fresh(self, now: float | None = None) -> bool:
        """The supervisor beat recently and has not said it ended."""
        age = (time.time() if now is None else now) - self.t
        return not self.ended and age <= STALE_AFTER_S


def read_heartbeat(run_dir: Path) -> Heartbeat | None:
    """The last beat, or None when there is none or it is not a heartbeat (wrong types, garbage)."""
    data = read_json(Path(run_dir) / HEARTBEAT_FILE)
    if data is None:
        return None
    host, pid, t, ended = data.get("host"), data.get("pid"), data.get("t"), data.get("ended", False)
    if not (isinstance(host, str) and host and isinstance(pid, int) and not isinstance(pid, bool)
            and isinstance(t, (int, float)) and not isinstance(t, bool) and isinstance(ended, bool)):
        return None
    return Heartbeat(host=host, pid=pid, t=float(t), ended=ended)


def write_heartbeat(run_dir: Path, ended: bool = False) -> None:
    write_json_atomic(Path(run_dir) / HEARTBEAT_FILE, {"host": local_host(), "pid": os.getpid(), "t": time.time(),
                                                       "interval_s": HEARTBEAT_INTERVAL_S, "ended": ended})


def remote_liveness(run_dir: Path, now: float | None = None) -> bool | None:
    """Whether the run's supervisor lives, judged by its heartbeat, when the
    supervisor is on another host; None when it is (or was last) on this host,
    or never beat: then the local flock decides."""
    beat = read_heartbeat(run_dir)
    if beat is None or beat.host == local_host():
        return None
    return beat.is_fresh(now)


class HeartbeatThread:
    """Beats every ``interval_s`` until ``stop()``, which writes a last beat marked ended."""

    def __init__(self, run_dir: Path, interval_s: float = HEARTBEAT_INTERVAL_S):
        self.run_dir = Path(run_dir)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def start(self) -> "HeartbeatThread":
        write_heartbeat(self.run_dir)          # at once: a reader elsewhere sees the run from its first second
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                write_heartbeat(self.run_dir)
            except OSError:                    # a full or flaky disk: the next beat tries again
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 1)
        try:
            write_heartbeat(self.run_dir, ended=True)
        except OSError:
            pass
