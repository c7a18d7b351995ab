"""The TUI on a login node, against the real SLURM cluster: launch dialog -> SLURM job on
2 nodes, watched from "another host" (KRONOS_HOSTNAME differs from the job's, so liveness
comes from the heartbeat), stopped with the Stop key, resumed with the Resume key (a new
job), ending with the losses of the local run."""
from __future__ import annotations

import sys

import pytest

from cluster_helpers import (LOGIN_HOST, REPO, events, job_output, kronos_train, submit, wait_final,
                             write_short_demo)
from kronos_train.control.scheduler import read_job_record
from kronos_tui.app import KronosApp
from kronos_tui.services import Services

sys.path.insert(0, str(REPO / "tests" / "tui"))
from tui_helpers import wait_for, wait_text  # noqa: E402

pytestmark = pytest.mark.slow


def slurm_line(app: KronosApp) -> str:
    return app.snapshot.header.scheduler if app.snapshot is not None else ""


async def test_launch_on_slurm_watch_stop_and_resume_from_the_tui(slurm_cluster, workspace, monkeypatch):
    root, _, logs = workspace
    # A tokenizer stage far longer than the test: the Stop key always finds it training
    # (the short demo can end before a key press on a fast machine); after the resume the
    # Early-stop key ends it, and the short basemodel stage completes the run.
    preset = write_short_demo(root / "user-presets", root / "data", name="long-demo", tokenizer_epochs=200,
                              early_stopping={"enabled": False})
    monkeypatch.setenv("PYTHONPATH", str(REPO))             # the jobs sbatch starts import this checkout
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("KRONOS_HOSTNAME", LOGIN_HOST)        # this app is on the login node
    monkeypatch.setenv("KRONOS_TUI_PRESETS", str(preset.parent))   # the preset is one of the user's
    app = KronosApp("long-demo", services=Services(logs_dir=logs, auto_model_check=False, poll_interval=0.2,
                                                   user_presets_dir=preset.parent))
    run = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_text(pilot, "preset long-demo")
            await pilot.press("l")
            await wait_text(pilot, "Launch preset")
            await pilot.press("u")                               # where: SLURM
            await wait_for(pilot, lambda: app.screen.query_one("#slurm-row").display, what="the SLURM fields")
            app.screen.query_one("#gpus").value = "1"            # one CPU process per node
            app.screen.query_one("#slurm-nodes").value = "2"
            app.screen.query_one("#slurm-gpus").value = "0"
            app.screen.query_one("#slurm-time").value = "15:00"
            await pilot.press("ctrl+l")
            await wait_for(pilot, lambda: app.attached_run is not None, timeout=60, what="the job to be submitted")
            run = app.attached_run
            first_job = read_job_record(run).job_id
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.plot.raw and app.snapshot.header.alive,
                           timeout=300, what="steps of the SLURM job")
            await wait_for(pilot, lambda: "running on node[1-2]" in slurm_line(app), timeout=30,
                           what="the job's nodes on the monitor")
            assert run.read_status()["host"] != LOGIN_HOST        # the supervisor is on a compute node
            await pilot.press("s")
            await wait_for(pilot, lambda: app.snapshot.header.state == "stopped" and not app.snapshot.header.alive, timeout=300,
                           what="the run to stop")
            assert wait_final(run, first_job) == "stopped" and run.has_committed_checkpoint()
            await wait_for(pilot, lambda: "the run stopped, resumable" in slurm_line(app), timeout=30,
                           what="the job's end on the monitor")
            stopped_at = events(run, "stop")[-1]["step"]
            await pilot.press("r")                               # resume: a new job, same run folder
            await wait_for(pilot, lambda: read_job_record(run).job_id != first_job, timeout=60,
                           what="a new job to be submitted")
            second_job = read_job_record(run).job_id
            await wait_for(pilot, lambda: app.snapshot.header.alive and app.snapshot.plot.last_step is not None
                           and app.snapshot.plot.last_step > stopped_at, timeout=300, what="steps of the resumed job")
            await pilot.press("e")                               # early stop: the tokenizer ends here
            assert wait_final(run, second_job) == "completed", job_output(run)
            await wait_for(pilot, lambda: app.snapshot.header.state == "completed", timeout=30, what="completed on screen")
        assert [r["status"] for r in events(run, "run_end")] == ["stopped", "completed"]
        resumed = [r for r in events(run, "stage_start", "tokenizer") if r.get("attempt") == 1]
        assert resumed and resumed[0]["resumed_from"] == stopped_at       # exactly where the Stop key left it
        ends = {r["stage"]: r["status"] for r in events(run, "stage_end") if r.get("attempt") == 1}
        assert ends == {"tokenizer": "early_stopped", "basemodel": "completed"}
    finally:
        if run is not None and read_job_record(run) is not None:
            kronos_train("stop", str(run.path), "--abort", check=False)


async def test_the_monitor_shows_a_queued_job_and_its_stop_key_cancels_it(slurm_cluster, workspace, monkeypatch):
    root, _, logs = workspace
    preset = write_short_demo(root / "user-presets", root / "data")
    run, job_id = submit(preset, logs, "--begin", "now+1hour")
    monkeypatch.setenv("KRONOS_HOSTNAME", LOGIN_HOST)
    app = KronosApp(run.run_id, services=Services(logs_dir=logs, auto_model_check=False, poll_interval=0.2))
    async with app.run_test(size=(200, 30)) as pilot:               # the whole run line: long preset path
        await wait_text(pilot, f"⏸ queued · job {job_id}: queued (BeginTime)")
        assert app.screen.query_one("#btn-early-stop").disabled and not app.screen.query_one("#btn-stop").disabled
        await pilot.press("s")
        await wait_text(pilot, f"✗ cancelled · job {job_id}: CANCELLED", timeout=30)
    assert run.read_status()["state"] == "cancelled"
