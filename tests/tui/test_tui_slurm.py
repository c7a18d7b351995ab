"""The TUI's SLURM parts that need no cluster: the launch dialog's "where" section hands
the options to the submitter (or says what is wrong with them), and a run whose SLURM job
cannot be asked says so on the monitor and in Runs instead of failing.  Against a real
cluster: tests/cluster/test_tui_on_a_login_node.py."""
from __future__ import annotations

import json

from kronos_train.control.scheduler import SCHEDULER_FILE
from kronos_train.control.slurm_job import SlurmOptions
from synthetic_runs import RunSpec, write_run
from tui_helpers import wait_for, wait_text


async def test_the_launch_dialog_submits_to_slurm_with_the_options_it_shows(make_app, services):
    submitted = []

    def submit(preset, logs_dir, options, **flags):
        submitted.append((preset, options, flags))
        return write_run(logs_dir, RunSpec(finish=False, state="running", stop_at={"tokenizer": 20}))

    services.submit_slurm = submit
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await pilot.press("l")
        await wait_text(pilot, "Launch preset demo")
        await pilot.press("u")
        await wait_for(pilot, lambda: app.screen.query_one("#slurm-row").display, what="the SLURM fields")
        await wait_text(pilot, "partition")
        app.screen.query_one("#gpus").value = "3"
        app.screen.query_one("#slurm-time").value = "99:99:99:99"
        await pilot.press("ctrl+l")
        await wait_text(pilot, "not a SLURM time")
        assert submitted == []
        app.screen.query_one("#slurm-time").value = "2:00:00"
        app.screen.query_one("#slurm-partition").value = "cpu"
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.current_mode == "monitor" and app.snapshot is not None)
    preset, options, flags = submitted[0]
    assert preset == "demo"
    assert options == SlurmOptions(nodes=2, gpus_per_node=0, procs_per_node=3, partition="cpu", time="2:00:00")
    assert flags == {"skip_tokenizer": False, "skip_basemodel": False, "skip_existing": False,
                     "time_budget_minutes": 0.0}


async def test_a_slurm_run_whose_scheduler_cannot_be_asked_says_so(make_app, services, tmp_path, monkeypatch):
    run = write_run(services.logs_dir, RunSpec(finish=True))
    (run.path / SCHEDULER_FILE).write_text(json.dumps({"scheduler": "slurm", "job_id": "4242", "options": {}}))
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    app = make_app(run.run_id)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_text(pilot, "job 4242: cannot ask SLURM: `squeue` is not installed here")
        await pilot.press("4")
        await wait_text(pilot, "SLURM job 4242: cannot ask SLURM")
