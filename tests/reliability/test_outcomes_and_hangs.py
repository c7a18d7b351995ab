"""Real runs (one CPU worker under torchrun): a deleted events.jsonl changes no outcome and loses
no event written after the deletion; a stopped (SIGSTOP) single worker is reported as a `hang`
within the timeout, with remedies, and the run stays resumable."""
from __future__ import annotations

import os
import signal
import time

import pytest

from kronos_train.cli import main as cli
from kronos_train.control.events import REOPENED_MESSAGE, read_events
from kronos_train.control.launch import create_run, start_supervisor
from kronos_train.control.runfolder import RunFolder
from kronos_train.control.outcome import read_result

from train_helpers import processes_of, wait_finished, wait_until, write_preset

pytestmark = pytest.mark.slow


def worker_pids(run: RunFolder) -> list[int]:
    """The stage's training processes (not torchrun, not the supervisor)."""
    pids = []
    for pid in processes_of(run):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if b"kronos_train.train.stages" in cmdline and b"torch.distributed.run" not in cmdline:
            pids.append(pid)
    return pids


def test_deleting_the_events_file_mid_run_changes_no_outcome_and_loses_no_event(tmp_path):
    preset = write_preset(tmp_path, distributed={"num_gpus": 1}, training={"tokenizer_epochs": 3})
    run = create_run(preset, tmp_path / "logs")
    start_supervisor(run)
    wait_until(lambda: any(r["event"] == "step" for r in read_events(run.events_path)), 120, 0.02, "a first step")
    run.events_path.unlink()
    assert wait_finished(run) == "completed", run.stderr_path.read_text()[-3000:]
    assert read_result(run, "tokenizer", 0)["status"] == "completed"
    assert read_result(run, "basemodel", 0)["status"] == "completed"
    records = read_events(run.events_path)
    assert any(r["event"] == "log" and r["message"] == REOPENED_MESSAGE for r in records)
    ends = {(r["event"], r.get("stage")) for r in records}
    assert {("stage_end", "tokenizer"), ("stage_start", "basemodel"), ("stage_end", "basemodel"),
            ("run_end", None)} <= ends
    tokenizer_steps = [r["step"] for r in records if r["event"] == "step" and r["stage"] == "tokenizer"]
    interval = 3
    assert tokenizer_steps == list(range(tokenizer_steps[0], tokenizer_steps[-1] + 1, interval))   # no gap
    assert tokenizer_steps[-1] == 48                           # up to the stage's last step (3 x 16)


def test_a_stopped_single_worker_is_a_hang_within_the_timeout_and_resumable(tmp_path, capsys):
    preset = write_preset(tmp_path, distributed={"num_gpus": 1},
                          training={"tokenizer_epochs": 200, "hang_timeout_minutes": 0.05})   # 3 s
    run = create_run(preset, tmp_path / "logs")
    start_supervisor(run)
    wait_until(lambda: any(r["event"] == "checkpoint" and r["kind"] == "last" for r in read_events(run.events_path)),
               180, 0.05, "a committed checkpoint")
    [worker] = wait_until(lambda: worker_pids(run), 30, 0.05, "the worker")
    stopped_at = time.monotonic()
    os.kill(worker, signal.SIGSTOP)
    try:
        assert wait_finished(run, timeout=120) == "failed"
    finally:
        for pid in worker_pids(run):
            os.kill(pid, signal.SIGKILL)
    assert time.monotonic() - stopped_at < 3 + 30            # the timeout, plus the watchdog's and teardown's
    [error] = [r for r in read_events(run.events_path) if r["event"] == "error"]
    assert error["kind"] == "hang" and "no rank made progress" in error["message"]
    assert any("kronos-train resume" in line for line in error["remedy"])
    assert run.can_resume()
    assert cli(["status", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "error (hang)" in out and "resumable: kronos-train resume" in out
