"""Every committed checkpoint lists its files with size and SHA-256: damage is detected before
use, a resume falls back to the newest kept commit that verifies (exactly that one), and status
never calls a damaged run resumable."""
from __future__ import annotations

import json

import pytest

from kronos_train.cli import main as cli
from kronos_train.model import load_tokenizer
from kronos_train.control.runfolder import COMMIT_MARKER, RunFolder
from kronos_train.train import checkpoint
from kronos_train.control import commit
from kronos_train.train.distributed import DistEnv

from test_checkpoints import tiny_model


def save(run: RunFolder, step: int, keep: int) -> None:
    checkpoint.save_last(run, "tokenizer", DistEnv(), model=tiny_model(float(step)),
                         trainer_state={"optimizer": {}, "schedule": {}, "scaler": {}},
                         train_state={"step": step, "epoch": 0, "batch_in_epoch": step, "early_stopping": {},
                                      "world_size": 1}, rank_state={"window": {}}, keep=keep)


def stopped_run(tmp_path) -> RunFolder:
    run = RunFolder(tmp_path / "logs" / "20260101-000000-tiny")
    run.path.mkdir(parents=True)
    run.config_path.write_text("{}\n")
    run.write_status(state="stopped")
    return run


def flip_a_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_marker_lists_every_file_with_size_and_checksum(tmp_path):
    run = stopped_run(tmp_path)
    save(run, 3, keep=2)
    last = run.checkpoint_dir("tokenizer", "last")
    files = json.loads((last / COMMIT_MARKER).read_text())["files"]
    assert set(files) == {p.name for p in last.iterdir()} - {COMMIT_MARKER}
    assert all(entry["size"] == (last / name).stat().st_size for name, entry in files.items())
    assert commit.verify(last) == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "symlink"])
def test_damage_without_a_kept_commit_is_detected_and_never_resumable(tmp_path, damage, capsys):
    run = stopped_run(tmp_path)
    save(run, 3, keep=1)
    target = run.checkpoint_dir("tokenizer", "last") / "model.safetensors"
    if damage == "flip":
        flip_a_byte(target)
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "delete":
        target.unlink()
    else:
        copy = tmp_path / "elsewhere.safetensors"
        copy.write_bytes(target.read_bytes())
        target.unlink()
        target.symlink_to(copy)
    assert not run.can_resume()
    assert any("model.safetensors" in p for p in run.checkpoint_problems())
    with pytest.raises(commit.CheckpointError, match="model.safetensors"):
        checkpoint.load_last(run, "tokenizer", DistEnv())
    assert cli(["status", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "  resumable: kronos-train resume" not in out and "not resumable:" in out and "model.safetensors" in out
    assert cli(["resume", str(run.path)]) == 2


def test_resume_falls_back_to_the_newest_kept_commit_that_verifies_exactly(tmp_path):
    run = stopped_run(tmp_path)
    for step in (3, 6, 9):
        save(run, step, keep=2)
    parent = run.checkpoint_dir("tokenizer", "last").parent
    assert [p.name for p in commit.kept_folders(parent, "last")] == [".last.kept-6"]   # keep_last 2: one kept
    flip_a_byte(parent / "last" / "trainer_state.safetensors")
    assert run.can_resume()                    # a kept commit verifies
    ckpt = checkpoint.load_last(run, "tokenizer", DistEnv())
    assert ckpt.train_state["step"] == 6 and "resuming from the verified checkpoint of step 6" in ckpt.notes[0]
    assert "trainer_state.safetensors" in ckpt.notes[0]
    weights = {float(p.detach().flatten()[0]) for p in load_tokenizer(ckpt.path).parameters()}
    assert weights == {6.0}                     # the very weights saved at step 6
    assert (parent / ".last.damaged-9").is_dir()            # kept aside for inspection


def test_a_kill_during_a_commit_still_keeps_the_previous_checkpoint(tmp_path):
    run = stopped_run(tmp_path)
    save(run, 3, keep=2)
    save(run, 6, keep=2)
    staged = commit.aside_dir(run.checkpoint_dir("tokenizer", "last").parent, "last", 9)
    (staged / "half.bin").write_bytes(b"x")           # killed before its marker
    ckpt = checkpoint.load_last(run, "tokenizer", DistEnv())
    assert ckpt.train_state["step"] == 6 and not staged.exists()


@pytest.mark.parametrize("content", ["", "{", "[]", '{"step": "x"}', '{"step": 1, "epoch": -1, "batch_in_epoch": 0}',
                                     '{"step": 1e400}'])
def test_a_garbage_train_state_names_the_file(tmp_path, content):
    (tmp_path / "train_state.json").write_text(content)
    with pytest.raises(commit.CheckpointError, match="train_state.json"):
        checkpoint.read_train_state(tmp_path / "train_state.json")
