"""Checklist (before/during/after, workers, cache), Runs (table, diff, resume) and Advisor screens."""
from __future__ import annotations

import os
import time

import yaml

from kronos_train.config import load_preset, to_dict
from synthetic_runs import RunSpec, write_run
from screen_text import screen_text
from tui_helpers import wait_for, wait_text


def data_preset(services, tmp_path, rows: int = 400) -> str:
    """A user preset whose data file exists, so the data check really reads it."""
    import numpy as np

    csv = tmp_path / "bars.csv"
    rng = np.random.default_rng(0)
    with open(csv, "w") as fh:
        fh.write("timestamps,open,high,low,close,volume,amount,ticker\n")
        for ticker in ("AAA", "BBB"):
            price = 10.0
            for i in range(rows):
                price *= 1 + rng.normal(0, 0.01)
                fh.write(f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{price},{price * 1.01},{price * 0.99},"
                         f"{price},{100 + i},{price * 100},{ticker}\n")
    (services.user_presets_dir / "mydata.yaml").write_text(
        f"extends: demo\ndata:\n  data_path: {csv}\n  synthetic:\n    enabled: false\n  ticker_column: ticker\n")
    return "mydata"


async def test_before_checks_run_in_workers_and_are_cached(make_app, services, calls, tmp_path):
    preset = data_preset(services, tmp_path)
    app = make_app(preset)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("2")
        text = await wait_text(pilot, "all checks done")
        for line in ("Config file valid", "Data format valid", "Pretrained model paths correct",
                     "Pretrained models load and fit together", "Output folders writable",
                     "GPUs available", "Disk room", "Effective batch, steps and time"):
            assert line in text, line
        assert "fake: both loaded" in text and "steps/epoch" in text
        assert calls.preset_model_checks == [preset]
        await pilot.press("1")
        await pilot.press("2")
        await wait_text(pilot, "all checks done")
        assert calls.preset_model_checks == [preset]           # cached: the inputs did not change
        # Touching the data file changes the inputs: the checks run again.
        csv = tmp_path / "bars.csv"
        os.utime(csv, ns=(time.time_ns(), time.time_ns() + 10**9))
        await pilot.press("1")
        await pilot.press("2")
        await wait_for(pilot, lambda: len(calls.preset_model_checks) == 2, what="checks re-run")
        await wait_text(pilot, "all checks done")
        await pilot.press("r")                                 # r ignores the cache
        await wait_for(pilot, lambda: len(calls.preset_model_checks) == 3, what="forced re-run")


async def test_bad_data_shows_the_reports_errors(make_app, services, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("timestamps,open,high,low,close\n2024-01-01,1,2,0.5,x\n")
    (services.user_presets_dir / "bad.yaml").write_text(f"extends: demo\ndata:\n  data_path: {csv}\n"
                                                      "  synthetic:\n    enabled: false\n")
    app = make_app("bad")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("2")
        text = await wait_text(pilot, "all checks done")
        assert "[✗] ERROR   Data format valid" in text


async def test_during_and_after_come_from_the_attached_run(make_app, services, calls):
    write_run(services.logs_dir, RunSpec(gpu_util=55.0))
    app = make_app("last")
    async with app.run_test(size=(100, 50)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press("2")
        text = await wait_text(pilot, "During training")
        assert "Training loss falls" in text and "GPU utilisation above 80 %" in text
        assert "[✓] OK      Model files saved" in text
        assert "[…] PENDING The model loads for inference" in text
        await pilot.press("m")
        await wait_for(pilot, lambda: calls.run_model_checks == ["20261127-190000-demo"])
        await wait_text(pilot, "[✓] OK      The model loads for inference")


async def test_runs_table_diff_and_attach(make_app, services):
    kaggle = to_dict(load_preset("kaggle")[0])
    lowmem = to_dict(load_preset("low-memory")[0])
    lowmem["extends"] = "kaggle"
    write_run(services.logs_dir, RunSpec(run_id="20261127-170000-kaggle", preset="kaggle", config=kaggle))
    write_run(services.logs_dir, RunSpec(run_id="20261127-180000-low-memory", preset="low-memory", config=lowmem,
                                         oom="basemodel", state="failed"))
    write_run(services.logs_dir, RunSpec(run_id="20261127-190000-demo", finish=False, state="running",
                                         stop_at={"tokenizer": 60}))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        text = await wait_text(pilot, "low-memory")
        assert "! interrupted" in text and "✗ failed" in text and "✓ done" in text
        assert "T✓ B✗" in text                                   # the OOM run: tokenizer done, basemodel failed
        assert "T!" in text and "▶" not in text.split("\n", 2)[2]  # the killed run's stage is not "running"
        assert "20261127-180000-low-memory" in text              # whole ids
        assert "6 knobs" in text                                  # low-memory vs kaggle; the names below
        await pilot.press("down")
        text = await wait_text(pilot, "lookback_window 256→128")
        # The interrupted demo run is first (newest) and resumable; the completed kaggle run is not.
        assert app.screen.check_action("resume", ()) is True
        await pilot.press("down", "down")
        await pilot.pause(0.1)
        assert app.screen.check_action("resume", ()) is None
        # Mark two runs and compare their configs.
        await pilot.press("space", "up", "space", "d")
        text = await wait_text(pilot, "20261127-170000-kaggle vs 20261127-180000-low-memory")
        assert "training.batch_size" in text and "data.lookback_window" in text
        await pilot.press("escape")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "monitor" and app.snapshot is not None
                       and app.snapshot.header.run_id == "20261127-180000-low-memory")
        await wait_text(pilot, "oom error")


async def test_resume_from_the_runs_table(make_app, services, calls):
    write_run(services.logs_dir, RunSpec(finish=False, state="running", stop_at={"tokenizer": 60}))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_text(pilot, "resumable (r)")
        await pilot.press("r")
        await wait_for(pilot, lambda: calls.resumes == ["20261127-190000-demo"])
        await wait_for(pilot, lambda: app.current_mode == "monitor")


async def test_a_garbage_run_folder_is_listed_not_fatal(make_app, services):
    bad = services.logs_dir / "20261127-000000-junk"
    bad.mkdir()
    (bad / "status.json").write_text("{not json")
    (bad / "events.jsonl").write_bytes(b"\x00\xffgarbage\n{}\n")
    (bad / "config.yaml").write_text(": : :\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await wait_text(pilot, "000000-junk")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.snapshot is not None)
        assert "Traceback" not in screen_text(app)


async def test_advisor_writes_a_preset_extending_the_runs_preset(make_app, services):
    write_run(services.logs_dir, RunSpec(oom="basemodel", state="failed"))
    app = make_app("last")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press("5")
        text = await wait_text(pilot, "GPU out of memory")
        assert "32 × 1 GPU(s) × 1 = 32 → 16 × 1 × 2 = 32 (unchanged)" in text
        await pilot.press("w")
        path = services.user_presets_dir / "demo-oom-batch.yaml"
        await wait_for(pilot, path.exists, what="preset written")
        assert yaml.safe_load(path.read_text()) == {"extends": "demo",
                                                    "training": {"batch_size": 16, "accumulation_steps": 2}}
        assert app.selected_preset == "demo-oom-batch"
        cfg, problems = load_preset("demo-oom-batch")
        assert cfg.training.batch_size == 16 and not [p for p in problems if p.level == "error"]


async def test_advisor_without_a_run_says_how_to_get_one(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_text(pilot, "No run attached")
        assert app.screen.check_action("write", ()) is None


async def test_a_crashing_check_is_a_line_not_a_traceback(make_app, monkeypatch):
    from kronos_train.checks import pre

    def broken(*args, **kwargs):
        raise RuntimeError("disk exploded")

    monkeypatch.setattr(pre, "check_disk", broken)
    app = make_app()
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await pilot.press("2")
        text = await wait_text(pilot, "all checks done")
        assert "quick checks (crashed)" in text and "RuntimeError: disk exploded" in text
