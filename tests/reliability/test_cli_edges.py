"""The command line at its edges: huge integers, binary presets, empty run references,
non-regular data files, a closed stdout during a launch, two resumes at once, SIGTERM to a
foreground run.  Commands run as real processes so a traceback anywhere would show."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kronos_train.config import load_preset
from kronos_train.control.events import read_events
from kronos_train.control.launch import create_run, start_supervisor
from kronos_train.control.runfolder import RunFolder, list_runs

from train_helpers import wait_finished, wait_until, write_preset

REPO = Path(__file__).resolve().parents[2]


def kronos_train(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "kronos_train.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, **kwargs)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_an_integer_beyond_any_sensible_range_is_a_clear_error(tmp_path):
    preset = write_preset(tmp_path, training={"tokenizer_epochs": 1e23, "basemodel_epochs": 10**30})
    _, problems = load_preset(preset)
    text = "\n".join(str(p) for p in problems)
    assert "training.tokenizer_epochs" in text and "too large" in text and "training.basemodel_epochs" in text


def test_a_binary_preset_is_flagged_and_never_a_traceback(tmp_path, user_presets):
    write_preset(user_presets, name="good")
    (user_presets / "broken.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    env = {"KRONOS_TUI_PRESETS": str(user_presets)}
    listing = kronos_train("presets", env=env)
    no_traceback(listing)
    states = {row["name"]: row["state"] for row in json.loads(kronos_train("presets", "--json", env=env).stdout)}
    assert states["good"] == "ok" and states["broken"] == "unreadable" and "broken" in listing.stdout
    for command in (["run", "--config", "broken", "--logs", str(tmp_path / "logs")], ["check", "--config", "broken"]):
        proc = kronos_train(*command, env=env)
        no_traceback(proc)
        assert proc.returncode != 0 and "is not UTF-8 text" in proc.stdout + proc.stderr


@pytest.mark.parametrize("ref", ["", "-", " "])
def test_an_empty_or_dash_run_reference_matches_nothing(tmp_path, ref):
    preset = write_preset(tmp_path)
    create_run(preset, tmp_path / "logs")
    proc = kronos_train("stop", ref, "--logs", str(tmp_path / "logs"))
    no_traceback(proc)
    assert proc.returncode == 2 and "names no run" in proc.stderr


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_non_regular_data_file_is_named_as_such(tmp_path, path):
    preset = write_preset(tmp_path, data={"data_path": path, "synthetic": {"enabled": False}})
    proc = kronos_train("run", "--config", str(preset), "--logs", str(tmp_path / "logs"))
    no_traceback(proc)
    assert proc.returncode == 2 and f"{path} is not a regular file" in proc.stdout


def short_preset(tmp_path: Path, **training) -> Path:
    return write_preset(tmp_path, distributed={"num_gpus": 1}, experiment={"train_basemodel": False},
                        training={"tokenizer_epochs": 1, **training})


@pytest.mark.slow
@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_a_closed_stdout_never_stops_or_corrupts_a_launch(tmp_path, unbuffered):
    logs = tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": unbuffered}
    command = f"{sys.executable} -m kronos_train.cli run --config {short_preset(tmp_path)} --logs {logs} | true"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=300)
    no_traceback(proc)
    [run] = list_runs(logs)
    assert wait_finished(run) == "completed"


@pytest.mark.slow
def test_two_resumes_at_once_start_exactly_one_supervisor(tmp_path):
    run = create_run(short_preset(tmp_path, tokenizer_epochs=200), tmp_path / "logs")
    run.request("stop", source="test", at_step=6)
    start_supervisor(run)
    assert wait_finished(run) == "stopped"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "kronos_train.cli", "resume", str(run.path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outputs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    try:
        started = [out for code, out, _ in outputs if code == 0 and "supervisor pid" in out]
        refused = [out + err for code, out, err in outputs if code != 0]
        assert len(started) == 1 and len(refused) == 1, outputs
        assert "already running" in refused[0] or "still running" in refused[0]
        assert all("Traceback" not in out + err for _, out, err in outputs)
    finally:
        run.request("abort", source="test")
        wait_finished(run)


@pytest.mark.slow
def test_sigterm_to_a_foreground_run_ends_it_cleanly(tmp_path):
    logs = tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "kronos_train.cli", "run", "--config",
                             str(short_preset(tmp_path, tokenizer_epochs=200)), "--logs", str(logs), "--foreground"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    run: RunFolder = wait_until(lambda: (list_runs(logs) or [None])[0], 60, 0.05, "the run folder")
    wait_until(lambda: any(r["event"] == "step" for r in read_events(run.events_path)), 180, 0.05, "a step")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err[-2000:]                    # aborted
    assert "Traceback" not in out + err, err[-3000:]
    assert run.read_status()["state"] == "aborted"
    time.sleep(0.2)
