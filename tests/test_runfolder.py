"""The run folder: ids, status, liveness through the supervisor's lock, requests."""
from __future__ import annotations

import subprocess
import sys

import pytest

from kronos_train.control.runfolder import RunFolder, find_run, list_runs, new_run_id
from kronos_train.control import commit


def make_run(logs_dir, name="20260101-000000-demo", state="running") -> RunFolder:
    run = RunFolder(logs_dir / name)
    run.path.mkdir(parents=True)
    (run.path / "config.yaml").write_text("{}\n")
    run.write_status(state=state)
    return run


def test_run_ids_never_collide(logs_dir):
    first = new_run_id("demo", logs_dir)
    (logs_dir / first).mkdir()
    second = new_run_id("demo", logs_dir)
    assert first != second and second.startswith(first)
    assert new_run_id("../weird name", logs_dir).endswith("weird-name")


def test_liveness_follows_the_lock_holder(logs_dir):
    run = make_run(logs_dir)
    assert not run.is_alive() and run.state() == "interrupted"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(run.lock_path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert run.is_alive() and run.state() == "running"
    finally:
        holder.kill()
        holder.wait()
    assert not run.is_alive() and run.state() == "interrupted"


def test_resume_needs_a_committed_checkpoint(logs_dir):
    run = make_run(logs_dir, state="stopped")
    assert not run.can_resume()
    last = run.checkpoint_dir("tokenizer", "last")
    last.mkdir(parents=True)
    assert not run.can_resume()            # written but never committed
    (last / "COMMITTED").write_text("")
    assert not run.can_resume()            # a marker without checksums proves nothing
    staged = commit.aside_dir(last.parent, "last", 3)
    (staged / "train_state.json").write_text("{}")
    commit.commit_dir(staged, last, 3)
    assert run.can_resume()
    run.write_status(state="completed")
    assert not run.can_resume()


def test_requests_are_files_with_their_source(logs_dir):
    run = make_run(logs_dir)
    run.request("early_stop", source="tui", stage="tokenizer")
    req = run.pending_request("early_stop")
    assert req["source"] == "tui" and req["stage"] == "tokenizer"
    run.clear_request("early_stop")
    assert run.pending_request("early_stop") is None
    with pytest.raises(ValueError):
        run.request("pause")


def test_find_run_by_id_prefix_or_last(logs_dir):
    a = make_run(logs_dir, "20260101-000000-demo")
    b = make_run(logs_dir, "20260102-000000-kaggle")
    assert [r.run_id for r in list_runs(logs_dir)] == [b.run_id, a.run_id]
    assert find_run("last", logs_dir) == b
    assert find_run("20260101", logs_dir) == a
    assert find_run(str(a.path), logs_dir) == a
    with pytest.raises(LookupError, match="no run"):
        find_run("nothing", logs_dir)
    with pytest.raises(LookupError, match="several"):
        find_run("2026", logs_dir)
