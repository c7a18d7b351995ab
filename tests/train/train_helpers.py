"""Shared helpers of the training tests: a tiny preset, waiting for runs, reading curves."""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from kronos_train.control.events import read_events
from kronos_train.control.runfolder import FINAL_STATES, RunFolder

# A run of both stages in a few seconds per stage on 2 CPU cores: 6 tickers of
# 160 daily bars, windows of 24 + 4 + 1 rows, 8 optimizer steps per epoch.
TINY = {
    "data": {"lookback_window": 24, "predict_window": 4, "max_context": 64, "train_ratio": 0.8, "val_ratio": 0.2,
             "synthetic": {"enabled": True, "tickers": 6, "rows_per_ticker": 160, "seed": 3}},
    "training": {"tokenizer_epochs": 2, "basemodel_epochs": 2, "batch_size": 16, "log_interval": 3,
                 "num_workers": 0, "seed": 42, "tokenizer_learning_rate": 0.002, "predictor_learning_rate": 0.001,
                 "train_windows_per_epoch": 256, "val_windows": 64, "checkpoint_every_steps": 5,
                 "scheduler": {"name": "onecycle"}},
    "model_paths": {"exp_name": "tiny"},
    "architecture": {"tokenizer": "tiny-tokenizer", "predictor": "tiny-predictor"},
    "experiment": {"name": "tiny", "pre_trained": False},
    "device": {"use_cuda": False},
    "distributed": {"num_gpus": 2},
    "evaluation": {"horizon": 4},
}


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in changes.items():
        out[key] = deep_update(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def write_preset(folder: Path, name: str = "tiny", **changes: Any) -> Path:
    """A tiny preset in ``folder`` (data generated into ``folder/data``); ``changes`` by section."""
    raw = deep_update(TINY, {"data": {"data_path": str(folder / "data" / "tiny.csv")}})
    raw = deep_update(raw, changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def wait_until(predicate, timeout: float = 240.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def wait_finished(run: RunFolder, timeout: float = 240.0) -> str:
    """The final state once the supervisor has exited."""
    def done() -> str | None:
        state = run.read_status().get("state")
        return state if state in FINAL_STATES and not run.is_alive() else None
    state = wait_until(done, timeout, 0.1, f"run {run.run_id} to finish")
    wait_until(lambda: not processes_of(run), 30, 0.1, "the run's processes to exit")
    return state


def processes_of(run: RunFolder) -> list[int]:
    """Pids of every live process whose command line names the run folder."""
    needle = str(run.path).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != b"Z":
            pids.append(int(entry))
    return pids


def kill_run_hard(run: RunFolder) -> None:
    """SIGKILL every process of the run at once, as a lost machine would."""
    for pid in processes_of(run):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_until(lambda: not processes_of(run), 30, 0.05, "the killed processes to vanish")


def events(run: RunFolder, event: str | None = None, stage: str | None = None) -> list[dict[str, Any]]:
    return [r for r in read_events(run.events_path)
            if (event is None or r["event"] == event) and (stage is None or r.get("stage") == stage)]


def curve(run: RunFolder) -> dict[tuple[str, str, int], tuple]:
    """Every logged training and validation number by (stage, event, step), as a reader sees
    them after a resume: a later attempt's point replaces an earlier one at the same step, and
    points an interrupted attempt logged past the step the next attempt resumed from are dropped."""
    points: dict[tuple[str, str, int], tuple] = {}
    for rec in read_events(run.events_path):
        if rec["event"] == "stage_start" and rec.get("attempt", 0) > 0:
            stage, start = rec["stage"], rec.get("resumed_from") or 0
            points = {k: v for k, v in points.items() if not (k[0] == stage and k[2] > start)}
        if rec["event"] == "step":
            points[(rec["stage"], "step", rec["step"])] = (rec["loss"], tuple(sorted(rec["parts"].items())),
                                                           rec["lr"], rec["grad_norm"], rec["epoch"])
        elif rec["event"] == "val":
            points[(rec["stage"], "val", rec["step"])] = (rec["val_loss"], rec["best_val_loss"], rec["improved"])
    return points


def free_port() -> int:
    """A TCP port nobody listens on now (for a server or rendezvous a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
