"""Checkpoint commit protocol: a kill at any moment leaves a committed, loadable checkpoint."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from kronos_train.architectures import resolve_architecture
from kronos_train.model import build_tokenizer, load_tokenizer
from kronos_train.control.runfolder import COMMIT_MARKER, RunFolder
from kronos_train.train import checkpoint
from kronos_train.control import commit
from kronos_train.train.distributed import DistEnv

REPO = Path(__file__).resolve().parents[2]


def tiny_model(value: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_tokenizer(resolve_architecture("tiny-tokenizer"))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)
    return model


def save(run: RunFolder, step: int) -> None:
    checkpoint.save_last(run, "tokenizer", DistEnv(), model=tiny_model(float(step)),
                         trainer_state={"optimizer": {}, "schedule": {}, "scaler": {}},
                         train_state={"step": step, "epoch": 0, "batch_in_epoch": 0, "early_stopping": {},
                                      "world_size": 1}, rank_state={"window": {}})


def loaded_step(run: RunFolder) -> int:
    ckpt = checkpoint.load_last(run, "tokenizer", DistEnv())
    assert ckpt is not None
    model = load_tokenizer(ckpt.path)
    values = {float(p.detach().flatten()[0]) for p in model.parameters()}
    assert values == {float(ckpt.train_state["step"])}, "weights and train_state come from different saves"
    assert ckpt.rank_state["rng"]["torch"].dtype == torch.uint8
    return ckpt.train_state["step"]


def test_last_checkpoint_round_trip_and_official_layout(tmp_path):
    run = RunFolder(tmp_path / "run")
    save(run, 3)
    last = run.checkpoint_dir("tokenizer", "last")
    names = {p.name for p in last.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "trainer_state.safetensors", "trainer_state.json",
            "train_state.json", "rank_state_0.safetensors", "rank_state_0.json", COMMIT_MARKER} <= names
    assert json.loads((last / COMMIT_MARKER).read_text())["step"] == 3
    assert run.has_committed_checkpoint("tokenizer") and loaded_step(run) == 3
    save(run, 7)
    assert loaded_step(run) == 7
    assert [p.name for p in last.parent.iterdir()] == ["last"]      # nothing left aside


class Killed(BaseException):
    """Stands for SIGKILL: no handler runs, nothing is cleaned up."""


@pytest.mark.parametrize("kill_at", ["before_marker", "before_swap", "between_renames", "before_cleanup"])
def test_a_kill_at_any_point_of_a_commit_leaves_a_loadable_checkpoint(tmp_path, monkeypatch, kill_at):
    run = RunFolder(tmp_path / "run")
    save(run, 5)
    real_replace, real_rmtree, calls = os.replace, commit.shutil.rmtree, []

    def replace(src, dst):
        calls.append(dst)
        if kill_at == "before_swap" or (kill_at == "between_renames" and len(calls) == 2):
            raise Killed
        return real_replace(src, dst)

    def fsync_dir(path):
        if kill_at == "before_marker" and not (Path(path) / COMMIT_MARKER).exists():
            raise Killed

    def rmtree(path, ignore_errors=False):
        if kill_at == "before_cleanup" and ".old-" in str(path):
            raise Killed
        return real_rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(commit.os, "replace", replace)
    monkeypatch.setattr(commit, "fsync_dir", fsync_dir)
    monkeypatch.setattr(commit.shutil, "rmtree", rmtree)
    with pytest.raises(Killed):
        save(run, 9)
    monkeypatch.undo()
    expected = 5 if kill_at == "before_marker" else 9      # once COMMITTED is written the new one wins
    assert loaded_step(run) == expected
    leftovers = [p.name for p in run.checkpoint_dir("tokenizer", "last").parent.iterdir()]
    assert leftovers == ["last"]


def test_sigkill_during_repeated_saves_never_breaks_the_checkpoint(tmp_path):
    """A real process killed with SIGKILL at random moments of a save loop."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_checkpoints import save
        from kronos_train.control.runfolder import RunFolder
        run = RunFolder(__import__("pathlib").Path(sys.argv[1]))
        step = int(sys.argv[2])
        print("ready", flush=True)
        while True:
            step += 1
            save(run, step)
    """)
    run = RunFolder(tmp_path / "run")
    save(run, 1)
    previous = 1
    for attempt, delay in enumerate((0.05, 0.2, 0.45)):
        proc = subprocess.Popen([sys.executable, "-c", script, str(run.path), str(100 * (attempt + 1))],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        step = loaded_step(run)               # recovers, then loads: always a whole checkpoint
        assert step == previous or step > 100 * (attempt + 1)
        previous = step


def test_best_checkpoint_loads_with_the_model_loader_and_export_is_atomic(tmp_path):
    run = RunFolder(tmp_path / "run")
    checkpoint.save_best(run, "tokenizer", tiny_model(0.5), step=4)
    best = run.checkpoint_dir("tokenizer", "best")
    assert float(next(load_tokenizer(best).parameters()).detach().flatten()[0]) == 0.5
    target = tmp_path / "official" / "demo" / "tokenizer" / "best_model"
    checkpoint.export_model(best, target)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in target.iterdir()}
    assert float(next(load_tokenizer(target).parameters()).detach().flatten()[0]) == 0.5


def test_recover_removes_uncommitted_leftovers_and_keeps_nothing_when_nothing_committed(tmp_path):
    parent = tmp_path / "checkpoints" / "tokenizer"
    half = commit.aside_dir(parent, "last", 12)
    (half / "model.safetensors").write_bytes(b"half")
    assert commit.recover(parent, "last") is None
    assert not half.exists()
