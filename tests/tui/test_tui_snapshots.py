"""A few screens at 80x24, compared with committed SVG baselines.

Update with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update`` after
checking the report; the data are synthetic and fixed (a run on host "node1",
so the TUI shows its GPU events rather than this machine's NVML).
"""
from __future__ import annotations

import pytest

from synthetic_runs import RunSpec, write_run
from tui_helpers import wait_for, wait_text

SIZE = (80, 24)


@pytest.fixture
def finished_run(services):
    return write_run(services.logs_dir, RunSpec(host="node1", gpus=2, gpu_util=91.0,
                                                val_losses={"basemodel": [3.9, 3.5, 3.41, 3.45]}))


def test_presets_screen(snap_compare, make_app):
    async def ready(pilot):
        await wait_for(pilot, lambda: "valid" in str(pilot.app.screen.query_one("#preset-detail").render()))
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready)


def test_monitor_of_a_finished_run(snap_compare, make_app, finished_run):
    app = make_app("last")

    async def ready(pilot):
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.caught_up and app.snapshot.gpus)
        await pilot.pause(0.3)
    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_runs_table(snap_compare, make_app, finished_run, services):
    write_run(services.logs_dir, RunSpec(run_id="20261127-200000-demo", host="node1", finish=False,
                                         state="running", stop_at={"tokenizer": 60}))
    app = make_app()

    async def ready(pilot):
        await pilot.press("4")
        await wait_for(pilot, lambda: len(getattr(pilot.app.screen, "rows", [])) == 2)
        # The table sizes its columns on a later refresh: wait until the ids show whole.
        await wait_text(pilot, "20261127-200000")
        await pilot.pause(0.2)
    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_launch_dialog(snap_compare, make_app):
    async def ready(pilot):
        await pilot.press("l")
        await wait_for(pilot, lambda: "GPU" in str(pilot.app.screen.query_one("#gpu-hint").render()))
        await pilot.pause(0.1)
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=ready)
