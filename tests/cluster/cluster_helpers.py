"""Helpers of the SLURM cluster tests: the CLI in a subprocess, submitting, waiting, reading curves."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "train"))

from train_helpers import curve, events, wait_until  # noqa: E402,F401

from kronos_train.control.runfolder import FINAL_STATES, RunFolder  # noqa: E402

__all__ = ["curve", "events", "wait_until", "LOGIN_HOST", "REPO", "write_short_demo", "cli_env", "kronos_train",
           "submit", "status_json", "squeue_state", "wait_final", "job_output", "first_step_time", "now"]

LOGIN_HOST = "login-node"     # KRONOS_HOSTNAME of the readers: they play a login node, not a compute node

# The demo preset, shortened to fit the CI budget on two cores: 2 epochs of 12
# optimizer steps per stage with 2 workers (global batch 64).
SHORT_DEMO = {"extends": "demo",
              "training": {"tokenizer_epochs": 2, "basemodel_epochs": 2, "train_windows_per_epoch": 768,
                           "val_windows": 128}}


def write_short_demo(folder: Path, data_dir: Path, name: str = "short-demo", **training: Any) -> Path:
    """The short demo as ``folder/<name>.yaml``; ``training`` overrides its training fields."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = json.loads(json.dumps(SHORT_DEMO))
    raw["training"].update(training)
    raw["data"] = {"data_path": str(data_dir / "demo_daily.csv")}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a command and of the jobs it submits (sbatch exports it): this
    checkout first, one thread per worker on two cores, the host name the machine's own."""
    env = {k: v for k, v in os.environ.items() if k != "KRONOS_HOSTNAME"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def kronos_train(*args: str, check: bool = True, reader: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    """``kronos-train ARGS``; ``reader``: as a login node would (another host name)."""
    env = cli_env(KRONOS_HOSTNAME=LOGIN_HOST) if reader else cli_env()
    proc = subprocess.run([sys.executable, "-m", "kronos_train.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"kronos-train {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def submit(preset: Path, logs: Path, *extra: str) -> tuple[RunFolder, str]:
    """`kronos-train slurm --submit` on 2 nodes x 1 CPU process; the run and its job id."""
    proc = kronos_train("slurm", "--config", str(preset), "--nodes", "2", "--gpus-per-node", "0",
                        "--procs-per-node", "1", "--time", "15:00", "--logs", str(logs), "--submit", *extra)
    run_id = re.search(r"^run (\S+)$", proc.stdout, re.M).group(1)
    job_id = re.search(r"SLURM job (\d+) submitted", proc.stdout).group(1)
    return RunFolder(logs / run_id), job_id


def status_json(run: RunFolder) -> dict[str, Any]:
    return json.loads(kronos_train("status", str(run.path), "--json", reader=True).stdout)


def squeue_state(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def wait_final(run: RunFolder, job_id: str, timeout: float = 400) -> str:
    """The run's final state once its job has left the machine (no longer running or completing)."""
    def done() -> str | None:
        state = run.read_status().get("state")
        return state if state in FINAL_STATES and not run.is_alive() and squeue_state(job_id) in ("", "COMPLETED",
                                                                                             "FAILED", "CANCELLED") \
            else None
    try:
        return wait_until(done, timeout, 0.5, f"run {run.run_id} (job {job_id}) to finish")
    except TimeoutError:
        raise AssertionError(f"job {job_id} did not finish: {job_output(run)}") from None


def job_output(run: RunFolder) -> str:
    """The end of the job's output files, for failure messages."""
    parts = []
    for path in sorted(run.path.glob("slurm-*.out")) + [run.stderr_path]:
        try:
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        except OSError:
            pass
    return "\n".join(parts)


def first_step_time(run: RunFolder, attempt: int = 0) -> float:
    return wait_until(lambda: next((r["t"] for r in events(run, "step") if r.get("attempt", 0) == attempt), None),
                      300, 0.2, f"a step of attempt {attempt} of {run.run_id}")


def now() -> float:
    return time.time()
