"""The monitor: live panels, view keys, GPUs, controls, resume, overlay."""
from __future__ import annotations

from fake_nvml import FakeNvml

from kronos_train.control.runfolder import COMMIT_MARKER
from synthetic_runs import LiveRun, RunSpec, write_run
from screen_text import screen_text
from tui_helpers import wait_for, wait_text


def live_spec(**kw) -> RunSpec:
    return RunSpec(finish=False, state="running", stop_at={"tokenizer": 60}, **kw)


async def test_a_finished_run_shows_stages_best_value_and_log(make_app, services):
    write_run(services.logs_dir, RunSpec(val_losses={"basemodel": [3.9, 3.5, 3.4123456, 3.6]}))
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "✓ completed")
        text = await wait_text(pilot, "best val 3.41235")                     # the exact value ...
        assert "@ step 80 (epoch 2)" in text                                   # ... and its step
        assert "tokenizer" in text and "basemodel" in text and "100%" in text
        await wait_text(pilot, "supervisor: starting stages")                  # stdout tail
        await wait_text(pilot, "basemodel loss")


async def test_view_keys_change_the_plot(make_app, services):
    write_run(services.logs_dir, RunSpec(steps_per_epoch=400, epochs=3, log_interval=1))
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "basemodel loss · all steps")
        await pilot.press("z")
        await wait_text(pilot, "basemodel loss · last 5000 steps")
        await pilot.press("z")
        await wait_text(pilot, "last 1000 steps")
        await pilot.press("l")
        await wait_text(pilot, "· log")
        await pilot.press("w")
        await wait_text(pilot, "ema 0.9")
        await pilot.press("t")                          # the other stage: negative losses on a log axis
        text = await wait_text(pilot, "tokenizer loss")
        assert "log scale hides" in text
        await pilot.press("v")
        await wait_text(pilot, "tokenizer learning rate")
        await pilot.press("v")
        text = await wait_text(pilot, "util")
        assert "NVIDIA H100 80GB HBM3" in text


async def test_gpus_several_unsupported_fields_and_a_lost_one(make_app, services, nvml):
    write_run(services.logs_dir, RunSpec(gpus=0))
    app = make_app("last")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("v", "v")
        text = await wait_text(pilot, "Tesla P100")
        assert "n/a" in text                              # the P100 reports no power
        assert "45%" in text                              # the idle H100
        nvml.gpus[1].lost = True
        app._follower._gpu_t = -1e18                      # sample now rather than in 2 s
        app.wake_follower()
        text = await wait_text(pilot, "LOST")
        assert "stopped answering" in text


async def test_no_nvidia_gpu_is_said_once_and_the_cpu_workers_shown(make_app, services):
    services.nvml = FakeNvml(missing_library=True)
    write_run(services.logs_dir, RunSpec(gpus=0, cpu_workers=2))
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_text(pilot, "CPU workers")
        assert text.count("no NVIDIA GPU") == 1 and "r1" in text and "9t" in text    # the compact side panel
        await pilot.press("v", "v")
        text = await wait_text(pilot, "rank 1 · pid 4101 · 9 threads")
        assert "library not found" in text.lower() or "shared library" in text.lower()
        assert text.count("no NVIDIA GPU") == 1, "the GPU view says it, the side column leaves it out"
        assert "cpu   136%" in text and "rss   1.0G" in text      # rank 1 at step 120: 95 + 40 + 120 % 7; 1030 MB


async def test_gpu_events_of_a_remote_node_are_shown(make_app, services):
    write_run(services.logs_dir, RunSpec(host="gpu-node-7", gpus=4, gpu_util=55.0))
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_text(pilot, " 55%")
        assert "0  55%" in text or "0   55%" in text
        assert [g.index for g in app.snapshot.hardware.gpus] == [0, 1, 2, 3]     # the side column scrolls to the others
        assert app._follower.should_sample_gpus() is False     # another node: not this node's NVML


async def test_early_stop_and_stop_write_requests_by_key_and_by_click(make_app, services):
    run = write_run(services.logs_dir, live_spec())
    with LiveRun(run):
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.header.alive)
            await pilot.press("e")
            await wait_for(pilot, lambda: (run.requests_dir / "early_stop.json").exists())
            await wait_text(pilot, "early stop requested")
            assert await pilot.click("#btn-stop")
            await wait_for(pilot, lambda: (run.requests_dir / "stop.json").exists())
            import json
            request = json.loads((run.requests_dir / "stop.json").read_text())
            assert request["source"] == "tui" and request["stage"] == "tokenizer"


async def test_abort_asks_first(make_app, services):
    run = write_run(services.logs_dir, live_spec())
    with LiveRun(run):
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.header.alive)
            await pilot.press("x")
            await wait_text(pilot, "Abort 20261127-190000-demo?")
            await pilot.press("n")
            await pilot.pause(0.2)
            assert not (run.requests_dir / "abort.json").exists()
            assert await pilot.click("#btn-abort")
            await wait_text(pilot, "Abort 20261127-190000-demo?")
            assert await pilot.click("#yes")
            await wait_for(pilot, lambda: (run.requests_dir / "abort.json").exists())


async def test_controls_are_dimmed_on_a_finished_run(make_app, services):
    run = write_run(services.logs_dir, RunSpec())
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "✓ completed")
        assert app.screen.check_action("early_stop", ()) is None
        assert app.screen.check_action("resume", ()) is None      # completed: nothing to resume
        await pilot.press("e")
        await pilot.pause(0.2)
        assert not run.requests_dir.exists()
        assert app.screen.query_one("#btn-abort").disabled


async def test_resume_is_enabled_only_for_an_interrupted_run_with_a_checkpoint(make_app, services, calls):
    run = write_run(services.logs_dir, RunSpec(finish=False, state="running", stop_at={"tokenizer": 60}))
    # status says running but no supervisor holds the lock: interrupted
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        def stage_line() -> str:
            return next((line for line in screen_text(app).splitlines() if line.lstrip().startswith("tokenizer")), "")

        await wait_for(pilot, lambda: "! interrupted" in stage_line(), what="the stage line says interrupted")
        assert "ETA" not in stage_line() and "running" not in stage_line()
        await wait_for(pilot, lambda: app.snapshot.header.can_resume and not app.screen.query_one("#btn-resume").disabled)
        await pilot.pause(0.1)
        assert app.screen.check_action("resume", ()) is True
        assert await pilot.click("#btn-resume")
        await wait_for(pilot, lambda: calls.resumes == [run.run_id], what="resume called")
    # Without a committed checkpoint the key is dimmed.
    for marker in run.path.glob(f"checkpoints/*/last/{COMMIT_MARKER}"):
        marker.unlink()
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "! interrupted")
        await pilot.pause(0.2)
        assert app.screen.check_action("resume", ()) is None
        assert app.screen.query_one("#btn-resume").disabled


async def test_events_arrive_live_and_garbage_lines_are_skipped(make_app, services):
    run = write_run(services.logs_dir, live_spec())
    with LiveRun(run) as live:
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            with open(run.events_path, "ab") as fh:
                fh.write(b"{garbage\n")
            live.step("tokenizer", 65)
            live.emit("error", stage="tokenizer", kind="oom", message="CUDA out of memory",
                      remedy=["halve batch_size"])
            text = await wait_text(pilot, "unreadable line")
            assert "65/120" in text and "oom error" in text
            assert "✗ error oom [tokenizer]: CUDA out of memory" in text


async def test_overlay_another_run(make_app, services):
    write_run(services.logs_dir, RunSpec(run_id="20261127-180000-demo"))
    write_run(services.logs_dir, RunSpec(run_id="20261127-190000-demo"))
    app = make_app("20261127-190000-demo")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "✓ completed")
        await pilot.press("o")
        await wait_text(pilot, "Overlay another run")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.plot.overlay, what="overlay drawn")
        assert app.snapshot.plot.overlay_label == "20261127-180000-demo"
        legend = screen_text(app)
        assert "0000-demo" in legend                  # the legend names it
        assert "++ " in legend and "•• loss" in legend, "the overlay and the loss differ by marker, not colour only"


async def test_the_x_axis_cycles_steps_epochs_and_wall_time(make_app, services):
    write_run(services.logs_dir, RunSpec(steps_per_epoch=40, epochs=3, log_interval=1))
    app = make_app("last")
    async with app.run_test(size=(80, 24)) as pilot:
        def x_ticks(text: str) -> list[str]:
            lines = text.splitlines()
            axis = next(i for i, line in enumerate(lines) if "└" in line)
            return lines[axis + 1].split("│")[0].split()

        before = await wait_text(pilot, "basemodel loss · all steps")
        assert x_ticks(before)[-1] == "120"                                # 3 epochs of 40 steps
        await pilot.press("a")
        after = await wait_text(pilot, "· x: epochs")
        assert app.view.x_axis == "epochs" and x_ticks(after)[-1] == "3.00"
        await pilot.press("a")
        timed = await wait_text(pilot, "· x: minutes")
        # 119 logged steps 0.5 s apart after the stage's first point: about one minute
        assert app.view.x_axis == "time" and 0.9 <= float(x_ticks(timed)[-1]) <= 1.0
        await pilot.press("a")
        await wait_for(pilot, lambda: app.view.x_axis == "steps" and "· x:" not in screen_text(app))


async def test_the_log_pane_follows_new_lines_unless_scrolled_up(make_app, services):
    from textual.widgets import Log

    run = write_run(services.logs_dir, live_spec())

    def append(first: int, last: int) -> None:
        with open(run.stdout_path, "a") as fh:
            fh.writelines(f"[tokenizer] line {i}\n" for i in range(first, last))

    with LiveRun(run):
        app = make_app("last")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_text(pilot, "supervisor: starting stages")
            log = app.screen.query_one("#log-tail", Log)
            for end in (10, 20):                           # more lines than the pane holds, twice
                append(end - 10, end)
                text = await wait_text(pilot, f"line {end - 1}")
                assert f"line {end - 5}" in text          # five lines shown at 80x24
            log.scroll_home(animate=False)
            await pilot.pause(0.1)
            append(20, 25)
            await wait_for(pilot, lambda: "new lines ↓" in screen_text(app), what="the marker")
            assert "line 24" not in screen_text(app) and log.scroll_y == 0     # the reader's place is kept
            log.scroll_end(animate=False)
            append(25, 26)
            text = await wait_text(pilot, "line 25")
            assert "new lines ↓" not in text
            await pilot.press("f")                         # the enlarged pane shows far more
            text = await wait_text(pilot, "line 12")
            assert "line 25" in text and not app.screen.query_one("#monitor-main").display   # the plot makes room
