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


def test_kronos_tui_in_tmux(tmp_path):
    logs = tmp_path / "logs"
    write_run(logs, RunSpec(host="node1", val_losses={"basemodel": [3.9, 3.5, 3.41, 3.45]}))
    user = tmp_path / "user"
    user.mkdir()
    session = f"kronos-tui-test-{uuid.uuid4().hex[:8]}"
    env = {"KRONOS_LOGS_DIR": str(logs), "KRONOS_TUI_PRESETS": str(user), "PYTHONPATH": str(REPO),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TEXTUAL_ANIMATIONS": "none"}
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # -u: LINES/COLUMNS inherited from the test runner would override the real pane size.
    command = f"env -u LINES -u COLUMNS {command} {shlex.quote(sys.executable)} -m kronos_tui; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "23", "-c", str(REPO), command],
                   check=True)
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
