"""Synthetic run folders, written through the same contract as the trainer.

For the tests, the benchmark and trying the monitor without training
anything: ``write_run`` lays out ``logs/<run_id>/`` with ``config.yaml``,
``preset.txt``, ``status.json``, ``events.jsonl`` (via ``EventWriter``) and
optionally checkpoints; ``LiveRun`` holds the supervisor lock so the folder
looks alive, and appends events as a trainer would.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kronos_train.config import dump_yaml, load_preset, to_dict
from kronos_train.control.events import SCHEMA_VERSION, EventWriter, encode
from kronos_train.control.runfolder import COMMIT_MARKER, RunFolder, write_json_atomic
from kronos_train.control.commit import manifest

T0 = 1_764_270_000.0


def loss_at(step: int, stage: str, seed: int = 0, noise: float = 0.03) -> float:
    """A plausible falling curve: CE-like for the basemodel, small and negative
    for the tokenizer (its BSQ entropy term makes the total negative)."""
    rnd = random.Random(step * 7919 + seed)
    if stage == "tokenizer":
        return -0.02 + 0.05 * math.exp(-step / 300) + rnd.uniform(-noise, noise) * 0.01
    return 2.4 + 1.2 * math.exp(-step / 400) + rnd.uniform(-noise, noise) * 3


@dataclass
class RunSpec:
    run_id: str = "20261127-190000-demo"
    preset: str = "demo"
    stages: tuple[str, ...] = ("tokenizer", "basemodel")
    steps_per_epoch: int = 40
    epochs: int = 3
    log_interval: int = 5
    host: str = field(default_factory=socket.gethostname)
    world_size: int = 2
    batch_size: int = 32
    state: str = "completed"               # status.json state
    finish: bool = True                    # write stage_end/run_end
    stop_at: dict[str, int] = field(default_factory=dict)   # stage -> step where it stops (no end)
    val_losses: dict[str, list[float]] = field(default_factory=dict)
    gpus: int = 2
    gpu_util: float = 92.0
    cpu_workers: int = 0                   # workers events (a CPU run's supervisor readings) for this many ranks
    checkpoints: bool = True
    oom: str | None = None                 # stage that ends with an OOM error
    config: dict[str, Any] | None = None
    t0: float = T0
    step_s: float = 0.5


def _config_for(spec: RunSpec) -> dict[str, Any]:
    if spec.config is not None:
        return spec.config
    cfg, _ = load_preset(spec.preset)
    return to_dict(cfg)


def write_run(logs_dir: Path, spec: RunSpec | None = None, **overrides: Any) -> RunFolder:
    """A complete (or partial) run folder with deterministic timestamps."""
    spec = spec or RunSpec(**overrides)
    run = RunFolder(Path(logs_dir) / spec.run_id)
    run.path.mkdir(parents=True, exist_ok=True)
    run.config_path.write_text(dump_yaml(_config_for(spec)), encoding="utf-8")
    (run.path / "preset.txt").write_text(spec.preset + "\n", encoding="utf-8")
    run.stdout_path.write_text("supervisor: starting stages\n", encoding="utf-8")
    run.stderr_path.write_text("", encoding="utf-8")
    t = spec.t0
    stage_status: dict[str, Any] = {}
    with open(run.events_path, "wb") as fh:
        def emit(event: str, **fields: Any) -> None:
            fh.write(encode({"t": round(t, 3), "event": event, **fields}))

        emit("run_start", schema=SCHEMA_VERSION, run_id=spec.run_id, preset=spec.preset, stages=list(spec.stages),
             world_size=spec.world_size, attempt=0, host=spec.host)
        ended_early = False
        for stage in spec.stages:
            if ended_early:
                break
            total = spec.steps_per_epoch * spec.epochs
            emit("stage_start", stage=stage, attempt=0, epochs=spec.epochs, steps_per_epoch=spec.steps_per_epoch,
                 total_steps=total, world_size=spec.world_size, batch_size=spec.batch_size,
                 global_batch=spec.batch_size * spec.world_size, resumed_from=None)
            vals = spec.val_losses.get(stage) or [loss_at(0, stage) + 0.1 - 0.05 * i for i in range(spec.epochs + 1)]
            best = vals[0]
            emit("val", stage=stage, attempt=0, step=0, epoch=0, val_loss=vals[0], best_val_loss=vals[0],
                 improved=True, baseline=True)
            stop = spec.stop_at.get(stage)
            last = 0
            for step in range(spec.log_interval, total + 1, spec.log_interval):
                if stop is not None and step > stop:
                    break
                t += spec.step_s
                last = step
                emit("step", stage=stage, attempt=0, step=step, epoch=round(step / spec.steps_per_epoch, 3),
                     loss=loss_at(step, stage), lr=1e-3 * (1 - step / (total + 1)), grad_norm=1.0,
                     samples_per_s=400.0, data_wait=0.02)
                if spec.gpus and step % (spec.log_interval * 4) == 0:
                    emit("gpu", host=spec.host, gpus=[
                        {"index": i, "name": "NVIDIA H100", "util": spec.gpu_util, "mem_used_mb": 40000.0,
                         "mem_total_mb": 81920.0, "temp_c": 60.0, "power_w": 300.0 + i} for i in range(spec.gpus)])
                if spec.cpu_workers and step % (spec.log_interval * 4) == 0:
                    emit("workers", host=spec.host, stage=stage, attempt=0, workers=[
                        {"pid": 4100 + i, "rank": i, "cpu": 95.0 + 40 * i + step % 7, "rss_mb": 900.0 + 10 * i + step,
                         "threads": 9} for i in range(spec.cpu_workers)])
                if step % spec.steps_per_epoch == 0:
                    epoch = step // spec.steps_per_epoch
                    v = vals[min(epoch, len(vals) - 1)]
                    improved = v < best
                    best = min(best, v)
                    emit("val", stage=stage, attempt=0, step=step, epoch=epoch, val_loss=v, best_val_loss=best,
                         improved=improved)
                    if spec.checkpoints:
                        emit("checkpoint", stage=stage, attempt=0, step=step, kind="last",
                             path=str(run.checkpoint_dir(stage, "last")))
            if spec.checkpoints and last >= spec.steps_per_epoch:
                _commit(run.checkpoint_dir(stage, "last"))
            if spec.oom == stage:
                emit("error", stage=stage, attempt=0, kind="oom", message="CUDA out of memory. Tried to allocate 2.00 GiB",
                     remedy=["halve batch_size and double accumulation_steps", "bf16", "shorter lookback_window"])
                stage_status[stage] = {"status": "failed", "best_val_loss": best, "step": last}
                emit("stage_end", stage=stage, attempt=0, status="failed", best_val_loss=best, step=last)
                ended_early = True
                continue
            if stop is not None:
                stage_status[stage] = {"status": "running", "best_val_loss": best, "step": last}
                ended_early = True
                continue
            if spec.finish:
                best_dir = run.checkpoint_dir(stage, "best")
                if spec.checkpoints:
                    _write_model(best_dir)
                emit("stage_end", stage=stage, attempt=0, status="completed", best_val_loss=best, step=last,
                     best_path=str(best_dir))
                stage_status[stage] = {"status": "completed", "best_val_loss": best, "step": last}
            else:
                stage_status[stage] = {"status": "running", "best_val_loss": best, "step": last}
                ended_early = True
        if spec.finish and not ended_early:
            emit("run_end", status="completed", attempt=0, duration_s=round(t - spec.t0, 3))
        elif spec.oom:
            emit("run_end", status="failed", attempt=0, duration_s=round(t - spec.t0, 3))
    write_json_atomic(run.status_path, {
        "run_id": spec.run_id, "preset": spec.preset, "state": spec.state, "pid": None, "pgid": None,
        "host": spec.host, "stage": next((s for s, v in stage_status.items() if v["status"] == "running"), None),
        "stages": stage_status, "attempt": 0, "world_size": spec.world_size, "started_at": spec.t0,
        "updated_at": t, "exit_code": None, "message": ""})
    return run


def _write_model(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\0" * 16)


def _commit(folder: Path) -> None:
    """A committed (empty) checkpoint whose marker verifies, as the trainer writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_state.json").write_text("{}", encoding="utf-8")
    marker = {"step": 0, "t": 0.0, "files": manifest(folder)}
    (folder / COMMIT_MARKER).write_text(json.dumps(marker), encoding="utf-8")


class LiveRun:
    """Holds ``supervisor.lock`` like a live supervisor and appends events."""

    def __init__(self, run: RunFolder, attempt: int = 0):
        self.run = run
        self.attempt = attempt
        self._lock_fd = -1
        self.writer = EventWriter(run.events_path, defaults={})

    def __enter__(self) -> "LiveRun":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        self._lock_fd = os.open(self.run.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.run.write_status(state="running", pid=os.getpid())

    def release(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1
        self.writer.close()

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        return self.writer.emit(event, **fields)

    def step(self, stage: str, step: int, steps_per_epoch: int = 40, **extra: Any) -> dict[str, Any]:
        return self.emit("step", stage=stage, attempt=self.attempt, step=step, epoch=round(step / steps_per_epoch, 3),
                         loss=loss_at(step, stage), lr=1e-3, samples_per_s=400.0, data_wait=0.02, **extra)
