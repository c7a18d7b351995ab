"""Every screen and dialog at 80x24 and at 120x40, compared with committed SVG baselines.

Update with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` after
checking the report.  The data are synthetic and fixed: runs on host "node1"
(so the TUI shows their GPU events rather than this machine's NVML), the fake
NVML, a fixed clock, checks that would show this machine's paths or free disk
replaced by fixed lines, and no toasts (they come and go with timing).
"""
from __future__ import annotations

import pytest

from kronos_train.checks import CheckResult
from kronos_train.checks import pre
from kronos_tui.app import KronosApp
from kronos_tui.screens.dialogs import ConfirmDialog, DiffScreen, HelpScreen, PickDialog, PromptDialog
from kronos_tui.screens.editor import PresetEditor
from synthetic_runs import LiveRun, RunSpec, write_run
from tui_helpers import wait_for, wait_text

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@pytest.fixture(autouse=True)
def _steady(monkeypatch):
    monkeypatch.setattr(KronosApp, "notify", lambda self, *a, **k: None)
    monkeypatch.setattr(pre, "check_output", lambda cfg, logs: CheckResult(
        "paths.output", "Output folders writable", "ok", "logs"))
    monkeypatch.setattr(pre, "check_disk", lambda cfg, logs: CheckResult(
        "disk", "Disk room for checkpoints", "ok", "500.0 GiB free"))


@pytest.fixture
def finished_run(services):
    return write_run(services.logs_dir, RunSpec(host="node1", gpus=2, gpu_util=91.0,
                                                val_losses={"basemodel": [3.9, 3.5, 3.41, 3.45]}))


def on(pilot, screen_type):
    return lambda: isinstance(pilot.app.screen, screen_type)


async def monitor_ready(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.reading.caught_up
                   and (app.snapshot.hardware.gpus or app.snapshot.hardware.workers))
    await pilot.pause(0.3)


@SIZES
def test_presets_screen(snap_compare, make_app, size):
    async def ready(pilot):
        await wait_for(pilot, lambda: "valid" in str(pilot.app.screen.query_one("#preset-detail").render()))
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@SIZES
def test_new_preset_prompt(snap_compare, make_app, services, size, monkeypatch):
    from pathlib import Path

    monkeypatch.setattr(services, "presets_target_dir", lambda: Path("~/.config/kronos-tui/presets"))  # shown only

    async def ready(pilot):
        await wait_text(pilot, "preset demo")
        await pilot.press("n")
        await wait_for(pilot, on(pilot, PromptDialog))
        await pilot.pause(0.1)
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@SIZES
@pytest.mark.parametrize("key", ["e", "y", "f5"], ids=["form", "yaml", "diff"])
def test_preset_editor(snap_compare, make_app, size, key):
    async def ready(pilot):
        await wait_text(pilot, "preset demo")
        await pilot.press("e" if key == "f5" else key)
        await wait_for(pilot, on(pilot, PresetEditor))
        if key == "f5":
            await pilot.press("f5")
        await pilot.pause(0.3)
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@SIZES
def test_checklist(snap_compare, make_app, size, tmp_path, monkeypatch):
    # The demo's data are generated into the working directory on launch: an empty
    # one makes "not generated yet" the same line on every checkout.
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")

    async def ready(pilot):
        await pilot.press("2")
        await wait_text(pilot, "all checks done")
        await pilot.pause(0.2)
    assert snap_compare(make_app("demo"), terminal_size=size, run_before=ready)


@SIZES
def test_launch_dialog(snap_compare, make_app, size):
    async def ready(pilot):
        await pilot.press("l")
        await wait_for(pilot, lambda: "GPU" in str(pilot.app.screen.query_one("#gpu-hint").render()))
        await pilot.pause(0.1)
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@SIZES
@pytest.mark.parametrize("keys", [(), ("v",), ("v", "v"), ("f",)], ids=["loss", "lr", "gpus", "big-log"])
def test_monitor_of_a_finished_run(snap_compare, make_app, finished_run, size, keys):
    async def ready(pilot):
        await monitor_ready(pilot)
        await pilot.press(*keys)
        await pilot.pause(0.3)
    assert snap_compare(make_app("last"), terminal_size=size, run_before=ready)


@SIZES
def test_monitor_cpu_workers(snap_compare, make_app, services, size):
    write_run(services.logs_dir, RunSpec(host="node1", gpus=0, cpu_workers=2))

    async def ready(pilot):
        await monitor_ready(pilot)
        await pilot.press("v", "v")
        await pilot.pause(0.3)
    assert snap_compare(make_app("last"), terminal_size=size, run_before=ready)


@SIZES
def test_abort_confirmation_and_overlay_pick(snap_compare, make_app, services, finished_run, size):
    """A live run: Abort asks first (the confirm dialog); the overlay picker lists the other run."""
    live = write_run(services.logs_dir, RunSpec(run_id="20261127-200000-demo", host="node1", finish=False,
                                                state="running", stop_at={"tokenizer": 60}))
    with LiveRun(live):
        async def ready(pilot):
            await monitor_ready(pilot)
            await wait_for(pilot, lambda: pilot.app.snapshot.header.alive)
            await pilot.press("x")
            await wait_for(pilot, on(pilot, ConfirmDialog))
            await pilot.pause(0.2)
        assert snap_compare(make_app("20261127-200000-demo"), terminal_size=size, run_before=ready)

        async def pick(pilot):
            await monitor_ready(pilot)
            await pilot.press("o")
            await wait_for(pilot, on(pilot, PickDialog))
            await pilot.pause(0.2)
        assert snap_compare(make_app("20261127-200000-demo"), terminal_size=size, run_before=pick)


@SIZES
def test_runs_table(snap_compare, make_app, finished_run, services, size):
    write_run(services.logs_dir, RunSpec(run_id="20261127-200000-demo", host="node1", finish=False,
                                         state="running", stop_at={"tokenizer": 60}))
    app = make_app()

    async def ready(pilot):
        await pilot.press("4")
        await wait_for(pilot, lambda: len(getattr(pilot.app.screen, "rows", [])) == 2)
        # The table sizes its columns on a later refresh: wait until the ids show whole.
        await wait_text(pilot, "20261127-200000-demo")
        await pilot.pause(0.2)
    assert snap_compare(app, terminal_size=size, run_before=ready)


@SIZES
def test_two_runs_config_diff(snap_compare, make_app, services, size):
    from kronos_train.config import load_preset, to_dict

    write_run(services.logs_dir, RunSpec(run_id="20261127-170000-kaggle", preset="kaggle", host="node1",
                                         config=to_dict(load_preset("kaggle")[0])))
    write_run(services.logs_dir, RunSpec(run_id="20261127-180000-low-memory", preset="low-memory", host="node1",
                                         config=to_dict(load_preset("low-memory")[0])))

    async def ready(pilot):
        await pilot.press("4")
        await wait_for(pilot, lambda: len(getattr(pilot.app.screen, "rows", [])) == 2)
        await pilot.press("space", "down", "space", "d")
        await wait_for(pilot, on(pilot, DiffScreen))
        await pilot.pause(0.2)
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)


@SIZES
def test_advisor(snap_compare, make_app, finished_run, size):
    async def ready(pilot):
        await monitor_ready(pilot)
        await pilot.press("5")
        await pilot.pause(0.5)
    assert snap_compare(make_app("last"), terminal_size=size, run_before=ready)


@SIZES
def test_help(snap_compare, make_app, size):
    async def ready(pilot):
        await wait_text(pilot, "preset demo")
        await pilot.press("question_mark")
        await wait_for(pilot, on(pilot, HelpScreen))
        await pilot.pause(0.2)
    assert snap_compare(make_app(), terminal_size=size, run_before=ready)
