"""`stop --abort` signals a process group only when its leader carries the run's token, and a
symlinked lock or status file is refused: an unrelated process is never killed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kronos_train.cli import main as cli
from kronos_train.control.runfolder import RUN_TOKEN_ENV, RunFolder
from kronos_train.control.supervisor import main as supervisor_main

HOLDER = ("import fcntl, os, sys, time\n"
          "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
          "fcntl.flock(fd, fcntl.LOCK_EX)\n"
          "print('locked', flush=True)\n"
          "time.sleep(120)\n")


@pytest.fixture
def holder_factory():
    started: list[subprocess.Popen] = []

    def start(lock_file: Path, token: str | None = None) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV}
        if token:
            env[RUN_TOKEN_ENV] = token
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdout=subprocess.PIPE, text=True,
                                env=env, start_new_session=True)       # its own group: pgid == pid
        assert proc.stdout.readline().strip() == "locked"
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def run_folder(tmp_path: Path, pgid: int, token: str = "t0ken") -> RunFolder:
    run = RunFolder(tmp_path / "logs" / "20260101-000000-victim")
    run.path.mkdir(parents=True)
    run.config_path.write_text("{}\n")
    run.status_path.write_text(json.dumps({"state": "running", "pgid": pgid, "token": token}))
    return run


def test_a_symlinked_lock_never_lets_abort_kill_a_foreign_process(tmp_path, holder_factory):
    foreign = holder_factory(tmp_path / "someone-elses.lock")
    run = run_folder(tmp_path, foreign.pid)
    run.lock_path.symlink_to(tmp_path / "someone-elses.lock")
    assert not run.is_alive()
    assert cli(["stop", str(run.path), "--abort"]) == 1
    assert foreign.poll() is None


def test_a_live_lock_but_a_group_without_the_token_is_not_signalled(tmp_path, holder_factory):
    run = run_folder(tmp_path, pgid=0)
    foreign = holder_factory(run.lock_path)                   # holds the run's real lock ...
    run.write_status(pgid=foreign.pid)                         # ... and status names its group
    assert run.is_alive()
    assert cli(["stop", str(run.path), "--abort"]) == 0          # the request is written ...
    assert foreign.poll() is None and run.signal_group(15) is False   # ... but no signal goes out


def test_the_runs_own_group_is_signalled(tmp_path, holder_factory):
    run = run_folder(tmp_path, pgid=0)
    own = holder_factory(run.lock_path, token="t0ken")
    run.write_status(pgid=own.pid)
    assert run.signal_group(15) is True
    assert own.wait(timeout=10) == -15


def test_the_supervisor_refuses_a_symlinked_lock_or_status(tmp_path, capsys):
    run = run_folder(tmp_path, pgid=0)
    (tmp_path / "elsewhere").write_text("")
    run.lock_path.symlink_to(tmp_path / "elsewhere")
    assert supervisor_main([str(run.path)]) == 2
    assert "symbolic link" in capsys.readouterr().err
    run.lock_path.unlink()
    run.status_path.unlink()
    run.status_path.symlink_to(tmp_path / "elsewhere")
    assert supervisor_main([str(run.path)]) == 2
    assert (tmp_path / "elsewhere").read_text() == ""
