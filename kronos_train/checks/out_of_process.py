"""The checks that need torch, run in a ``kronos-train check --json`` child process.

Loading networks imports torch; the TUI must not, so it asks a child process
and reads back its JSON.  One runner for both uses: a preset's pretrained
models before training, a run's trained models after.  Any failure (the
command missing, a crash, a timeout, garbage on stdout) becomes an ``error``
result, never an exception.
"""
from __future__ import annotations

import json
import subprocess
import sys

from ..control.runfolder import RunFolder
from . import CheckResult

PRESET_MODELS = ("models.load", "Pretrained models load and fit together", "before")
RUN_MODELS = ("run.model_loads", "The model loads for inference", "after")


def parse_check_output(stdout: str) -> list[CheckResult]:
    """``kronos-train check --json`` prints a JSON list of CheckResult dicts."""
    start = stdout.find("[")
    data = json.loads(stdout[start:] if start >= 0 else stdout)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list of check results")
    return [CheckResult.from_dict(item) for item in data if isinstance(item, dict)]


def check_in_subprocess(args: list[str], failed_as: tuple[str, str, str], timeout_s: float) -> list[CheckResult]:
    """``kronos-train check ARGS --json`` in a child process; ``failed_as`` is the
    (id, title, phase) of the error line that stands in when it gives no results."""
    check_id, title, phase = failed_as
    cmd = [sys.executable, "-m", "kronos_train.cli", "check", *args, "--json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [CheckResult(check_id, title, "error", f"could not run `kronos-train check`: {exc}", phase=phase)]
    try:
        return parse_check_output(proc.stdout)
    except ValueError:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return [CheckResult(check_id, title, "error", f"`kronos-train check` exited {proc.returncode}: {tail[:300]}",
                            phase=phase)]


def preset_model_check(preset: str, timeout_s: float = 900.0) -> list[CheckResult]:
    """The pretrained tokenizer and predictor of a preset load and fit together."""
    return check_in_subprocess(["--config", preset, "--only", "models"], PRESET_MODELS, timeout_s)


def run_model_check(run: RunFolder, timeout_s: float = 600.0) -> list[CheckResult]:
    """The best/ models of a run load and forecast one window (``checks.trained_model.check_inference``)."""
    results = check_in_subprocess(["--run", str(run.path)], RUN_MODELS, timeout_s)
    # The command prints every line of the run; keep the model-loading one(s).
    return [r for r in results if "load" in r.id] or results


__all__ = ["check_in_subprocess", "parse_check_output", "preset_model_check", "run_model_check"]
