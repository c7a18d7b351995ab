"""The app as a whole: start-up, navigation, the palette, help, sizes, no torch."""
from __future__ import annotations

import subprocess
import sys

from synthetic_runs import LiveRun, RunSpec, write_run
from screen_text import screen_text
from tui_helpers import wait_for, wait_text


def test_the_tui_never_imports_torch():
    code = ("import sys, kronos_tui.app, kronos_tui.__main__, kronos_tui.follow;"
            "from kronos_tui.screens import presets, checklist, monitor, runs, advisor, editor, launch;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_starts_on_presets_and_tabs_switch_modes_by_key_and_click(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        text = await wait_text(pilot, "[1 Presets]")
        assert "demo" in text and "kaggle" in text
        await pilot.press("4")
        await wait_text(pilot, "[4 Runs]")
        assert app.current_mode == "runs"
        assert await pilot.click("#nav-checklist")
        await wait_text(pilot, "[2 Checks]")
        assert app.current_mode == "checklist"
        await pilot.press("3")
        text = await wait_text(pilot, "No run attached")
        below_nav = [line.strip() for line in text.split("\n")[1:] if line.strip()]
        assert below_nav[0] == "No run attached.", "no empty log pane or buttons above it"
        assert await pilot.click("#nav-advisor")
        await wait_text(pilot, "No run attached: the advisor")


async def test_a_live_run_from_an_earlier_session_is_found_and_attached(make_app, services):
    run = write_run(services.logs_dir, RunSpec(run_id="20261127-180000-demo", finish=False, state="running",
                                               stop_at={"tokenizer": 60}))
    write_run(services.logs_dir, RunSpec(run_id="20261127-170000-demo"))      # an older, finished one
    with LiveRun(run):
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.current_mode == "monitor" and app.snapshot is not None,
                           what="attached to the live run")
            assert app.attached_run.run_id == "20261127-180000-demo"
            await wait_text(pilot, "▶ running")
            await wait_text(pilot, "tokenizer")      # the stage panel fills on the next redraw


async def test_a_run_given_on_the_command_line_opens_the_monitor_first(make_app, services):
    write_run(services.logs_dir, RunSpec(run_id="20261127-190000-demo"))
    app = make_app("20261127-190000")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.current_mode == "monitor"
        await wait_text(pilot, "✓ completed")


async def test_an_unknown_preset_on_the_command_line_is_said_not_raised(make_app):
    app = make_app("no-such-preset")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_text(pilot, "no-such-preset")
        assert app.current_mode == "presets"


async def test_help_lists_the_keys_of_every_screen(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        text = await wait_text(pilot, "kronos-tui keys")
        assert "early stop" in text and "Advisor" in text
        await pilot.press("escape")
        await wait_text(pilot, "[1 Presets]")


async def test_the_command_palette_offers_every_action_of_the_screen(make_app, services):
    from kronos_tui.commands import KronosCommands

    write_run(services.logs_dir, RunSpec(run_id="20261127-190000-demo"))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        provider = KronosCommands(app.screen)
        await provider.startup()                 # what opening the palette does
        titles = [title for title, _, _ in provider._commands()]
        for needed in ("Edit", "YAML", "New", "Diff", "Import", "Launch", "Presets", "Runs", "Monitor",
                       "Switch preset: kaggle", "Attach run: 20261127-190000-demo"):
            assert any(t == needed or t.startswith(needed) for t in titles), needed
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        await pilot.press(*"switch preset: low")
        await wait_text(pilot, "Switch preset: low-memory")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.selected_preset == "low-memory", what="preset switched via palette")


async def test_q_quits_and_leaves_runs_alone(make_app, services):
    run = write_run(services.logs_dir, RunSpec(finish=False, state="running", stop_at={"tokenizer": 20}))
    with LiveRun(run):
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await pilot.press("q")
            await pilot.pause(0.2)
        assert run.is_alive()               # the app exited; the (fake) supervisor did not
        assert not (run.requests_dir / "stop.json").exists()


async def test_inside_tmux_at_80x23_the_controls_and_footer_stay_on_screen(make_app, services):
    run = write_run(services.logs_dir, RunSpec(finish=False, state="running", stop_at={"tokenizer": 20}))
    with LiveRun(run):
        app = make_app()
        async with app.run_test(size=(80, 23)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            text = await wait_text(pilot, "Log-y")
            assert "Early stop (e)" in text and "Abort (x)" in text
            assert text.rstrip("\n").split("\n")[-1].startswith("l Log-y")       # the footer is the last row
            assert await pilot.click("#btn-early-stop")
            await wait_for(pilot, lambda: (run.requests_dir / "early_stop.json").exists(), what="early stop request")


class FakeLaunchError(Exception):
    def __init__(self, problems):
        super().__init__("\n".join(problems))
        self.problems = problems


async def test_launch_dialog_shows_the_launchers_problems_and_starts_nothing(make_app, services):
    seen = []

    def refuse(preset, logs_dir, **options):
        seen.append((preset, options))
        raise FakeLaunchError(["data.data_path: /nope.csv does not exist", "2 GPUs requested, 0 present"])

    services.launch = refuse
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await pilot.press("l")
        await wait_text(pilot, "Launch preset demo")
        await pilot.press("t")                                   # tokenizer off
        app.screen.query_one("#gpus").value = "2"
        app.screen.query_one("#budget").value = "1.2.3"
        assert await pilot.click("#launch")
        await wait_text(pilot, "give minutes")                   # nothing is sent with a bad budget
        assert seen == []
        app.screen.query_one("#budget").value = "510"
        await pilot.press("ctrl+l")
        text = await wait_text(pilot, "nothing was started")
        assert "/nope.csv does not exist" in text and "2 GPUs requested" in text
        assert seen == [("demo", {"num_gpus": 2, "skip_tokenizer": True, "skip_basemodel": False,
                                  "skip_existing": False, "time_budget_minutes": 510.0})]
        assert app.attached_run is None


async def test_a_launch_moves_the_app_to_the_monitor(make_app, services):
    def start(preset, logs_dir, **options):
        return write_run(logs_dir, RunSpec(finish=False, state="running", stop_at={"tokenizer": 20}))

    services.launch = start
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_text(pilot, "preset demo")
        await pilot.press("l")
        await wait_text(pilot, "Launch preset demo")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.current_mode == "monitor" and app.snapshot is not None)
        await wait_text(pilot, "tokenizer loss")


async def test_launching_a_preset_with_errors_is_refused_before_the_dialog(make_app, services):
    (services.user_presets_dir / "bad.yaml").write_text("extends: demo\ntraining:\n  batch_size: 0\n")
    app = make_app("bad")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_text(pilot, "preset bad")
        await pilot.press("l")
        await wait_text(pilot, "batch_size")
        assert "Launch preset" not in screen_text(app)


async def test_the_monitor_counts_down_the_time_budget_of_a_live_run(make_app, services):
    from kronos_train.config import load_preset, to_dict
    from tui_helpers import FIXED_NOW

    config = to_dict(load_preset("demo")[0])
    config["training"]["time_budget_minutes"] = 90
    run = write_run(services.logs_dir, RunSpec(run_id="20261127-180000-demo", finish=False, state="running",
                                               stop_at={"tokenizer": 60}, config=config, t0=FIXED_NOW - 1800))
    with LiveRun(run):
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_text(pilot, "budget 1h00m left")          # 90 min less the 30 the attempt has run


def test_the_nav_bar_never_cuts_a_run_id_that_fits_alone():
    from kronos_tui.widgets.navbar import context_text

    run = "20261127-190000-kaggle-8gpu"
    assert context_text("kaggle-8gpu", run, 60) == f"preset kaggle-8gpu · run {run}"
    assert context_text("kaggle-8gpu", run, 28) == run                  # 80 columns: the id alone, whole
    assert context_text("kaggle-8gpu", run, 12) == "…" + run[-11:]     # only when even the id cannot fit
    assert context_text("demo", None, 27) == "preset demo"
