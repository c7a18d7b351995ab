"""What a stage's workers tell the supervisor directly, beside the log.

events.jsonl is for people and the TUI; a deleted or damaged log must not
change what the supervisor decides.  So each stage reports through two small
files of its own:

- ``results/<stage>.attempt<k>.json``, written atomically by rank 0 once the
  stage has ended (after its last checkpoint and the official export):
  ``{status, step, best_val_loss, message, source, t}``.  The supervisor reads
  it with torchrun's exit code; no file means the stage did not finish.
- ``progress/<stage>.attempt<k>.rank<r>.json``, rewritten by every rank as it
  makes progress (each optimizer step, each validation batch, each checkpoint):
  ``{step, t, slowest_s}``.  Its modification time is the rank's last sign of
  life; the supervisor's hang watchdog (``hang_timeout_s``) reads them.

Light module (no torch).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .events import STAGE_STATUSES, is_number, is_whole
from .runfolder import RunFolder, read_json, write_json_atomic

PROGRESS_EVERY_S = 0.5          # at most two progress writes a second per rank
AUTO_HANG_FLOOR_S = 600.0       # automatic timeout: never below 10 minutes ...
AUTO_HANG_FACTOR = 20.0         # ... and 20 x the slowest gap between progress reports


def result_path(run: RunFolder, stage: str, attempt: int) -> Path:
    return run.path / "results" / f"{stage}.attempt{attempt}.json"


def write_result(run: RunFolder, stage: str, attempt: int, outcome: dict[str, Any]) -> Path:
    path = result_path(run, stage, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {**outcome, "stage": stage, "attempt": attempt, "t": time.time()})
    return path


def read_result(run: RunFolder, stage: str, attempt: int) -> dict[str, Any] | None:
    """The stage's own report of how it ended, type-checked; None when absent or unusable."""
    data = read_json(result_path(run, stage, attempt))
    if data is None or data.get("status") not in STAGE_STATUSES:
        return None
    checks = {"step": lambda v: is_whole(v, 0), "best_val_loss": is_number,
              "message": lambda v: isinstance(v, str), "source": lambda v: isinstance(v, str)}
    return {"status": data["status"], **{k: data[k] for k, ok in checks.items() if data.get(k) is not None and ok(data[k])}}


def finished_attempts(run: RunFolder, stage: str, before: int) -> list[int]:
    """Attempts earlier than ``before`` whose result says the stage completed or early-stopped."""
    return [k for k in range(before)
            if (r := read_result(run, stage, k)) is not None and r["status"] in ("completed", "early_stopped")]


# --------------------------------------------------------------------------- progress

def progress_path(run: RunFolder, stage: str, attempt: int, rank: int) -> Path:
    return run.path / "progress" / f"{stage}.attempt{attempt}.rank{rank}.json"


class ProgressReporter:
    """One rank's sign of life: call ``beat`` whenever work got done."""

    def __init__(self, run: RunFolder, stage: str, attempt: int, rank: int):
        self.path = progress_path(run, stage, attempt, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.last_beat = self.last_write = 0.0
        self.slowest_s = 0.0
        self.step = 0

    def beat(self, step: int | None = None) -> None:
        now = time.time()
        if self.last_beat:
            self.slowest_s = max(self.slowest_s, now - self.last_beat)
        self.last_beat = now
        if step is not None:
            self.step = step
        if now - self.last_write >= PROGRESS_EVERY_S:
            self.write(now)

    def write(self, now: float) -> None:
        # No fsync: a lost update only makes the rank look idle a moment longer.
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"step": self.step, "t": now, "slowest_s": round(self.slowest_s, 3)}),
                       encoding="utf-8")
        os.replace(tmp, self.path)
        self.last_write = now


def last_progress(run: RunFolder, stage: str, attempt: int) -> tuple[float | None, float]:
    """(the newest sign of life of any rank, the slowest gap any rank reported); (None, 0)
    before the first report: a stage still loading data or models is not watched yet."""
    newest, slowest = None, 0.0
    for path in (run.path / "progress").glob(f"{stage}.attempt{attempt}.rank*.json"):
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
        reported = (read_json(path) or {}).get("slowest_s")
        if is_number(reported) and reported > slowest:
            slowest = float(reported)
    return newest, slowest


def hang_timeout_s(configured_minutes: float, slowest_s: float) -> float:
    """``training.hang_timeout_minutes``, or automatically the larger of 10 minutes and 20 x the
    slowest gap between two progress reports seen so far (a validation batch, a checkpoint save)."""
    if configured_minutes > 0:
        return configured_minutes * 60.0
    return max(AUTO_HANG_FLOOR_S, AUTO_HANG_FACTOR * slowest_s)
