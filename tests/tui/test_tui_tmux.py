"""A real terminal: kronos-tui inside tmux, driven by send-keys and read with
capture-pane.  The pane is 80x23: what a 24-row terminal leaves under tmux's
status line."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from synthetic_runs import RunSpec, write_run

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_pane(session: str, *texts: str, timeout: float = 40.0) -> str:
    """The pane once it shows every one of ``texts`` at the same time.  A capture
    can catch a frame half written (top rows new, bottom rows old), so whatever
    a test asserts about a frame is waited for together."""
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = capture(session)
        if all(text in pane for text in texts):
            return pane
        time.sleep(0.2)
    missing = [text for text in texts if text not in pane]
    raise AssertionError(f"{missing} never appeared in the tmux pane:\n{pane}")


def start_app(tmp_path: Path, cwd: Path = REPO) -> str:
    """kronos-tui in a new 80x23 tmux session on ``tmp_path``'s logs and presets; the session's name."""
    logs, user = tmp_path / "logs", tmp_path / "user"
    logs.mkdir(exist_ok=True)
    user.mkdir(exist_ok=True)
    session = f"kronos-tui-test-{uuid.uuid4().hex[:8]}"
    env = {"KRONOS_LOGS_DIR": str(logs), "KRONOS_TUI_PRESETS": str(user), "PYTHONPATH": str(REPO),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TEXTUAL_ANIMATIONS": "none"}
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # -u: LINES/COLUMNS inherited from the test runner would override the real pane size.
    command = f"env -u LINES -u COLUMNS {command} {shlex.quote(sys.executable)} -m kronos_tui; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "23", "-c", str(cwd), command],
                   check=True)
    return session


def test_kronos_tui_in_tmux(tmp_path):
    write_run(tmp_path / "logs", RunSpec(host="node1", val_losses={"basemodel": [3.9, 3.5, 3.41, 3.45]}))
    session = start_app(tmp_path)
    try:
        pane = wait_pane(session, "[1 Presets]", "demo", "kaggle", "palette")
        lines = pane.rstrip("\n").split("\n")
        assert len(lines) == 23 and "palette" in lines[-1]          # the footer is on the last row
        tmux("send-keys", "-t", session, "4")
        wait_pane(session, "[4 Runs]", "✓ done")
        tmux("send-keys", "-t", session, "Enter")
        wait_pane(session, "[3 Monitor]")
        wait_pane(session, "@ step 80 (epoch 2)", "best val 3.41", "Early stop (e)")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "[3 Monitor]" in capture(session):
            time.sleep(0.2)
        assert "[3 Monitor]" not in capture(session)                # the app quit cleanly
        assert "Traceback" not in capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.slow
def test_a_launched_runs_newest_log_line_shows_in_the_pane(tmp_path):
    """Launch the demo from the app; the log pane follows stdout.log: once the file
    has more lines than the pane, its newest step line is on screen."""
    from kronos_train.control.runfolder import list_runs

    work = tmp_path / "work"                     # the demo generates its data in the working directory
    work.mkdir()
    session = start_app(tmp_path, cwd=work)
    run = None
    try:
        wait_pane(session, "[1 Presets]", "demo")
        tmux("send-keys", "-t", session, "l")
        wait_pane(session, "Launch preset demo")
        tmux("send-keys", "-t", session, "C-l")
        wait_pane(session, "[3 Monitor]", "▶ running", timeout=60)
        run = list_runs(tmp_path / "logs")[0]
        deadline = time.monotonic() + 240
        shown = False
        while time.monotonic() < deadline and not shown:
            lines = [line for line in run.stdout_path.read_text(errors="replace").splitlines() if line.strip()]
            newest = lines[-1][:40] if lines else ""
            # More lines than the pane shows, the newest a step: a panel that stopped following fails here.
            shown = len(lines) > 8 and "step" in newest and newest in capture(session)
            time.sleep(0.3)
        assert shown, f"the newest stdout.log line never showed:\n{capture(session)}"
    finally:
        if run is not None and run.is_alive():
            run.request("abort", source="test")
            deadline = time.monotonic() + 60
            while run.is_alive() and time.monotonic() < deadline:
                time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
