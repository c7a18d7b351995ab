"""End to end: launch the demo preset from the app, watch real events arrive,
press Early stop and see the stage end, then abort the rest.

The demo preset trains tiny networks on CPU with generated data; this test
runs the real detached supervisor and torchrun, so it takes a minute or two
(marked slow).  Everything else in tests/tui uses synthetic run folders.
"""
from __future__ import annotations

import sys

import pytest

from kronos_tui.app import KronosApp
from kronos_tui.services import Services
from tui_helpers import wait_for, wait_text

pytestmark = pytest.mark.slow


def stage_status(app: KronosApp, name: str) -> str:
    snap = app.snapshot
    for stage in snap.stages if snap is not None else []:
        if stage.name == name:
            return stage.status
    return ""


async def test_launch_demo_follow_it_and_early_stop_a_stage(tmp_path, monkeypatch, nvml):
    monkeypatch.chdir(tmp_path)                       # the demo's generated data lands here, not in the repo
    logs = tmp_path / "logs"
    monkeypatch.setenv("KRONOS_LOGS_DIR", str(logs))
    monkeypatch.setenv("KRONOS_TUI_PRESETS", str(tmp_path / "user"))
    app = KronosApp("demo", services=Services(logs_dir=logs, nvml=nvml, auto_model_check=False, poll_interval=0.2))
    torch_already_loaded = "torch" in sys.modules         # by earlier tests of the same session
    run = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_text(pilot, "preset demo")
            await pilot.press("l")
            await wait_text(pilot, "Launch preset demo")
            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: app.attached_run is not None, timeout=120, what="the run to start")
            run = app.attached_run
            assert app.current_mode == "monitor"
            # Real step events arrive from the tokenizer stage.
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.plot.raw, timeout=240,
                           what="the first loss points")
            assert app.snapshot.header.alive and stage_status(app, "tokenizer") == "running"
            await wait_text(pilot, "tokenizer loss")
            assert await pilot.click("#btn-early-stop")
            await wait_for(pilot, lambda: stage_status(app, "tokenizer") == "early_stopped", timeout=240,
                           what="the tokenizer stage to end early")
            await wait_text(pilot, "✓ early stopped")
            # The pipeline goes on with the next stage; abort it (after confirming) to finish quickly.
            await wait_for(pilot, lambda: stage_status(app, "basemodel") == "running", timeout=240,
                           what="the basemodel stage to start")
            await pilot.press("x")
            await wait_text(pilot, "Abort")
            await pilot.press("y")
            await wait_for(pilot, lambda: not app.snapshot.header.alive, timeout=120, what="the run to end")
            # All of that without torch in the TUI (test_the_tui_never_imports_torch checks it in a fresh process).
            assert torch_already_loaded or "torch" not in sys.modules
    finally:
        if run is not None and run.is_alive():
            run.request("abort", source="test")
