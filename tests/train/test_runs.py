"""Whole runs under torchrun (2 gloo workers on CPU): the story in events.jsonl, exact resume
after a stop and after SIGKILL, early stop, abort, a killed worker, --skip-existing.
Runs as SLURM jobs (2 nodes, requeue) are tested against a real cluster in tests/cluster/."""
from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from kronos_train.control.events import validate_story
from kronos_train.export import curve_points
from kronos_train.control.launch import create_run, resume_run, start_supervisor
from kronos_train.model import load_predictor, load_tokenizer
from kronos_train.control.runfolder import RunFolder

from train_helpers import (curve, events, kill_run_hard, processes_of, wait_finished, wait_until,
                           write_preset)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    preset = write_preset(folder, model_paths={"base_path": str(folder / "official")})
    return folder, preset, folder / "logs"


@pytest.fixture(scope="module")
def long_preset(workspace):
    """A tokenizer stage of minutes, not 0.7 s: the tests that act while it runs never race its end."""
    folder = workspace[0]
    return write_preset(folder, name="long", model_paths={"base_path": str(folder / "official")},
                        training={"tokenizer_epochs": 200})


@pytest.fixture(scope="module")
def baseline(workspace) -> RunFolder:
    """One uninterrupted run: the reference every interrupted run must reproduce."""
    _, preset, logs = workspace
    run = create_run(preset, logs)
    start_supervisor(run)
    assert wait_finished(run) == "completed", run.stderr_path.read_text()[-3000:]
    return run


def start(workspace, preset=None, before=None, **kwargs) -> RunFolder:
    """Create and start a run of ``preset`` (the tiny one by default); ``before(run)`` runs
    between the two, e.g. to plan a request."""
    _, tiny, logs = workspace
    run = create_run(preset or tiny, logs, **kwargs)
    if before is not None:
        before(run)
    start_supervisor(run)
    return run


def test_both_stages_run_and_tell_a_complete_valid_story(baseline, workspace):
    records = events(baseline)
    assert validate_story(records) == []
    ends = {r["stage"]: r for r in events(baseline, "stage_end")}
    assert {s: r["status"] for s, r in ends.items()} == {"tokenizer": "completed", "basemodel": "completed"}
    for stage, loader in (("tokenizer", load_tokenizer), ("basemodel", load_predictor)):
        start_rec = events(baseline, "stage_start", stage)[0]
        assert (start_rec["world_size"], start_rec["steps_per_epoch"], start_rec["total_steps"]) == (2, 8, 16)
        vals = events(baseline, "val", stage)
        assert vals[0]["baseline"] is True and vals[0]["step"] == 0 and [v["epoch"] for v in vals] == [0, 1, 2]
        steps = events(baseline, "step", stage)
        assert [s["step"] for s in steps] == [3, 6, 9, 12, 15, 16]           # log_interval 3, plus the stage end
        assert steps[-1]["loss"] < steps[0]["loss"] and all(0 <= s["data_wait"] <= 1 for s in steps)
        assert all(r["attempt"] == 0 for r in records if r.get("stage") == stage)
        loader(ends[stage]["best_path"])                                    # official layout, loadable
        official = workspace[0] / "official" / "tiny" / stage / "best_model"
        loader(official)                                                    # exported where the seed keeps it
    status = baseline.read_status()
    assert status["state"] == "completed" and status["exit_code"] == 0 and "pgid" in status and status["pid"]
    assert baseline.state() == "completed" and not baseline.can_resume()


def test_stop_then_resume_reproduces_the_uninterrupted_losses(baseline, workspace):
    # Planned ahead, so the stop lands mid-epoch at step 5 however fast the machine is (the
    # whole stage takes under a second on 2 cores: a stop sent on seeing a step could miss it).
    run = start(workspace, before=lambda r: r.request("stop", source="test", stage="basemodel", at_step=5))
    assert wait_finished(run) == "stopped"
    assert events(run, "stage_end", "tokenizer")[-1]["status"] == "completed"
    stop = events(run, "stop")[0]
    assert (stop["kind"], stop["stage"], stop["step"]) == ("stop", "basemodel", 5)
    assert events(run, "stage_end", "basemodel")[-1]["status"] == "stopped"
    assert events(run, "run_end")[-1]["status"] == "stopped" and run.can_resume()
    assert run.pending_request("stop") is None, "honoured, so no longer pending"
    resume_run(run)
    assert wait_finished(run) == "completed"
    assert events(run, "stage_start", "basemodel")[-1]["resumed_from"] == stop["step"]
    assert validate_story(events(run)) == []
    assert curve(run) == curve(baseline)


def test_sigkill_then_resume_reproduces_the_uninterrupted_losses(baseline, workspace):
    run = start(workspace)
    wait_until(lambda: any(c["kind"] == "last" and c["step"] >= 5 for c in events(run, "checkpoint", "tokenizer")),
               what="a tokenizer checkpoint")
    kill_run_hard(run)
    assert run.state() == "interrupted" and run.can_resume()
    resume_run(run)
    assert wait_finished(run) == "completed"
    assert events(run, "run_start")[-1]["attempt"] == 1
    assert validate_story(events(run)) == []
    assert curve(run) == curve(baseline)
    assert exported(run) == exported(baseline)          # `kronos-train export` drops the superseded points


def exported(run: RunFolder) -> list[tuple]:
    return [(r["stage"], r["kind"], r["step"], r.get("loss"), r.get("val_loss"), r.get("lr"))
            for r in curve_points(events(run))]


def test_early_stop_request_ends_the_stage_and_the_pipeline_goes_on(workspace):
    _, preset, logs = workspace
    run = create_run(preset, logs, num_gpus=1)
    run.request("early_stop", source="test", stage="tokenizer")       # acted on at the first step
    start_supervisor(run)
    assert wait_finished(run) == "completed"
    ends = {r["stage"]: r["status"] for r in events(run, "stage_end")}
    assert ends == {"tokenizer": "early_stopped", "basemodel": "completed"}
    early = events(run, "early_stop", "tokenizer")[0]
    assert early["reason"] == "request" and early["step"] == 1
    assert run.pending_request("early_stop") is None
    assert validate_story(events(run)) == []
    train_state = json.loads((run.checkpoint_dir("basemodel", "last") / "train_state.json").read_text())
    assert train_state["tokenizer_path"] == str(run.checkpoint_dir("tokenizer", "best"))


def test_a_hangup_does_not_stop_the_run_and_abort_ends_it_aborted_never_failed(workspace, long_preset):
    run = start(workspace, long_preset)
    wait_until(lambda: events(run, "step", "tokenizer"), what="a tokenizer step")
    os.kill(run.read_status()["pid"], signal.SIGHUP)         # the terminal that started it closes
    time.sleep(0.5)
    assert run.is_alive() and run.read_status()["state"] == "running"
    run.request("abort", source="test")
    assert wait_finished(run) == "aborted"
    assert run.pending_request_lines() == [], "the ended attempt leaves no request pending"
    assert not events(run, "error")
    assert events(run, "stage_end", "tokenizer")[-1]["status"] == "stopped"
    assert events(run, "run_end")[-1]["status"] == "aborted"
    assert validate_story(events(run)) == []


def test_a_killed_worker_is_recorded_with_its_cause(workspace, long_preset, monkeypatch):
    monkeypatch.setenv("KRONOS_WORKERS_SAMPLE_S", "0.5")          # the supervisor's worker readings
    run = start(workspace, long_preset)
    wait_until(lambda: events(run, "step", "tokenizer"), what="a tokenizer step")
    torchrun = run.read_status()["pgid"]
    workers = [pid for pid in processes_of(run) if _ppid(pid) == torchrun and b"\0RANK=1\0" in _environ(pid)]
    assert workers, "rank 1 not found"
    wait_until(lambda: any(w["pid"] == workers[0] and w["rank"] == 1 and w["cpu"] is not None
                           for r in events(run, "workers") for w in r["workers"]), what="a reading of rank 1")
    os.kill(workers[0], signal.SIGKILL)
    assert wait_finished(run) == "failed"
    error = events(run, "error")[-1]
    assert error["kind"] == "worker" and error["exit_code"] == -9 and "out of memory" in error["message"]
    assert events(run, "stage_end", "tokenizer")[-1]["status"] == "failed"
    assert events(run, "run_end")[-1]["status"] == "failed" and run.read_status()["exit_code"] == 1
    assert validate_story(events(run)) == []


def test_skip_existing_skips_the_stage_whose_best_model_exists(baseline, workspace):
    folder, _, _ = workspace
    official = folder / "official" / "tiny"
    shutil.rmtree(official / "basemodel")          # stage 2 not done yet, stage 1 is
    run = start(workspace, skip_existing=True, num_gpus=1)
    assert wait_finished(run) == "completed"
    ends = {r["stage"]: r for r in events(run, "stage_end")}
    assert ends["tokenizer"]["status"] == "skipped" and "--skip-existing" in ends["tokenizer"]["message"]
    assert ends["basemodel"]["status"] == "completed"
    train_state = json.loads((run.checkpoint_dir("basemodel", "last") / "train_state.json").read_text())
    assert train_state["tokenizer_path"] == str(official / "tokenizer" / "best_model")
    assert (official / "basemodel" / "best_model" / "model.safetensors").is_file()


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except OSError:
        return None


def _environ(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return b"\0" + fh.read()
    except OSError:
        return b""


def test_a_rank_that_raises_reports_its_own_cause(tmp_path):
    """The data file breaks after the launch check: rank 0's DataError becomes the error event."""
    preset = write_preset(tmp_path)
    run = create_run(preset, tmp_path / "logs", num_gpus=1)
    (tmp_path / "data" / "tiny.csv").write_text("timestamps,open,high,low,close\n2024-01-02,1,2,0.5,x\n")
    start_supervisor(run)
    assert wait_finished(run) == "failed"
    error = events(run, "error")[-1]
    assert error["kind"] == "data" and error["stage"] == "tokenizer" and error["rank"] == 0
    assert "tiny.csv" in error["message"]
    assert (run.path / "failures" / "tokenizer.attempt0.rank0.json").is_file()
    assert validate_story(events(run)) == []             # no stage_start, so no stage_end either
