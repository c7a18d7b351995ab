"""The monitor's model without Textual: folding, tailing, overview, downsampling."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kronos_train.control.events import EventWriter, encode
from kronos_tui import follow
from kronos_tui.follow import RunFollower, View, sample_overview
from kronos_tui.runstate import RunState
from kronos_tui.series import (EmaState, ema_debiased, fmt_duration, last_downsample, minmax_downsample, plottable,
                               sparkline)
from synthetic_runs import LiveRun, RunSpec, write_run


# --------------------------------------------------------------------------- series

def test_ema_is_debiased_at_the_start():
    # A biased EMA starts near 0; the debiased one starts at the first value.
    out = ema_debiased([10.0, 10.0, 10.0], 0.9)
    assert out == pytest.approx([10.0, 10.0, 10.0])


def test_ema_skips_non_finite_values():
    out = ema_debiased([1.0, math.nan, 3.0], 0.5)
    assert out[0] == 1.0 and out[1] == 1.0
    assert out[2] == pytest.approx((0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.sampled_from([0.0, 0.6, 0.9, 0.99]))
@settings(max_examples=50, deadline=None)
def test_incremental_ema_matches_batch(values, weight):
    inc = EmaState(weight)
    assert [inc.push(v) for v in values] == pytest.approx(ema_debiased(values, weight))


def test_minmax_downsample_keeps_spikes_and_bounds_points():
    x = np.arange(100_000, dtype=float)
    y = np.ones_like(x)
    y[54_321] = 50.0
    xs, ys = minmax_downsample(x, y, 60)
    assert len(xs) == 120 and ys.max() == 50.0
    lx, ly = last_downsample(x, y, 120)
    assert len(lx) == 120 and lx[-1] == x[-1]


def test_plottable_drops_what_plotext_cannot_draw():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([1.0, -0.5, math.nan, 2.0])
    xs, ys, hidden = plottable(x, y, log_y=True)
    assert ys.tolist() == [1.0, 2.0] and hidden == 2
    xs, ys, hidden = plottable(x, y, log_y=False)
    assert hidden == 1


def test_sparkline_and_durations_read_without_colour():
    assert sparkline([0, 50, 100], 3, 0, 100) == "▁▅█"
    assert sparkline([0, 50, 100], 3, 0, 100, ascii_only=True) == "_=@"
    assert sparkline([None, 10.0], 2) == " ▅"
    assert fmt_duration(59) == "59s" and fmt_duration(3725) == "1h02m" and fmt_duration(None) == "—"


# --------------------------------------------------------------------------- folding

def steps(stage: str, start: int, stop: int, attempt: int = 0, t0: float = 0.0):
    for s in range(start, stop + 1):
        yield {"t": t0 + s, "event": "step", "stage": stage, "attempt": attempt, "step": s, "epoch": s / 10,
               "loss": 1.0 / s, "lr": 1e-3}


def test_resume_drops_the_earlier_attempts_points_past_the_resume_step():
    state = RunState()
    state.add({"t": 0, "event": "run_start", "schema": 1, "run_id": "r", "preset": "demo", "stages": ["tokenizer"],
               "world_size": 1, "attempt": 0})
    state.add({"t": 0, "event": "stage_start", "stage": "tokenizer", "attempt": 0, "epochs": 2,
               "steps_per_epoch": 10, "total_steps": 20, "world_size": 1})
    state.add_all(steps("tokenizer", 1, 14))
    state.add({"t": 10, "event": "val", "stage": "tokenizer", "attempt": 0, "step": 10, "epoch": 1,
               "val_loss": 0.5, "best_val_loss": 0.5, "improved": True})
    state.add({"t": 12.5, "event": "val", "stage": "tokenizer", "attempt": 0, "step": 12, "epoch": 1,
               "val_loss": 0.1, "best_val_loss": 0.1, "improved": True})
    # Killed at step 14; the last checkpoint was at step 10.
    state.add({"t": 20, "event": "run_start", "schema": 1, "run_id": "r", "preset": "demo", "stages": ["tokenizer"],
               "world_size": 1, "attempt": 1, "resumed": True})
    state.add({"t": 21, "event": "stage_start", "stage": "tokenizer", "attempt": 1, "epochs": 2,
               "steps_per_epoch": 10, "total_steps": 20, "world_size": 1, "resumed_from": 10})
    curve = state.curves["tokenizer"]
    assert list(curve.step) == [float(s) for s in range(1, 11)]
    assert list(curve.val_step) == [10.0]
    assert state.stages["tokenizer"].best_val == 0.5          # the step-12 best was in the dropped part
    assert curve.resume_marks == [10]
    state.add_all(steps("tokenizer", 11, 20, attempt=1, t0=20))
    assert list(curve.step) == [float(s) for s in range(1, 21)]
    assert curve.smooth[-1] == pytest.approx(ema_debiased(list(curve.loss), state.smoothing)[-1])


def test_unknown_events_and_wrong_shapes_are_counted_not_raised():
    state = RunState()
    state.add({"t": 1, "event": "from_the_future", "x": 1})
    state.add({"t": 1, "event": "step", "stage": "tokenizer"})          # no step field
    state.add({"t": 1, "event": "step", "stage": "tokenizer", "step": 1, "loss": None, "lr": None, "epoch": 0.1})
    assert state.unknown_events == 2
    assert math.isnan(state.curves["tokenizer"].loss[0])


def test_gpu_rows_from_events_and_a_lost_local_gpu(tmp_path):
    from kronos_train.control.gpu import GpuMonitor

    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fake_nvml import FakeGpu, FakeNvml

    state = RunState(local_host="here")
    state.add({"t": 1, "event": "gpu", "host": "node2", "gpus": [{"index": 0, "util": 50.0, "mem_used_mb": 1.0,
                                                                     "mem_total_mb": 2.0, "power_w": None}]})
    nvml = FakeNvml(gpus=[FakeGpu(), FakeGpu()])
    monitor = GpuMonitor(nvml)
    snap = monitor.sample()
    snap.host = "here"
    state.add_local_gpu(snap, 2.0)
    nvml.gpus[1].lost = True
    snap = monitor.sample()
    snap.host = "here"
    state.add_local_gpu(snap, 4.0)
    assert state.gpus[("node2", 0)].power[-1] is None
    assert state.gpus[("here", 1)].lost and not state.gpus[("here", 0)].lost
    assert "stopped answering" in state.local_gpu_reason


# --------------------------------------------------------------------------- tailing

def test_follower_reads_only_new_bytes_and_waits_for_a_torn_line(tmp_path):
    run = write_run(tmp_path, RunSpec(stages=("tokenizer",), finish=False, state="running", epochs=1))
    follower = RunFollower(run, sample_gpus=False)
    follower.poll()
    n = follower.state.records
    offset = follower.tail.offset
    line = encode({"t": 1e9, "event": "step", "stage": "tokenizer", "attempt": 0, "step": 999, "epoch": 9.9,
                   "loss": 0.25, "lr": 1e-4})
    with open(run.events_path, "ab") as fh:
        fh.write(line[:20])
    follower.poll()
    assert follower.state.records == n                        # the half line waits
    with open(run.events_path, "ab") as fh:
        fh.write(line[20:])
        fh.write(b"not json at all\n")
    follower.poll()
    assert follower.state.records == n + 1 and follower.tail.bad_lines == 1
    assert follower.tail.offset == offset + len(line) + len(b"not json at all\n")
    assert follower.state.curves["tokenizer"].step[-1] == 999.0


def test_log_tail_shows_the_end_of_stdout_and_stderr_marked(tmp_path):
    run = write_run(tmp_path, RunSpec(stages=("tokenizer",), epochs=1))
    run.stdout_path.write_text("x" * 100_000 + "\nlast stdout line\n")
    run.stderr_path.write_text("Traceback: boom\n")
    follower = RunFollower(run, sample_gpus=False)
    follower.poll()
    lines = list(follower.log_lines)
    assert "  last stdout line" in lines and "E Traceback: boom" in lines
    assert all(len(line) < 2000 for line in lines)           # the 100k line was cut by the tail window


def test_snapshot_downsamples_to_the_plot_width_and_marks_the_best(tmp_path):
    run = write_run(tmp_path, RunSpec(stages=("basemodel",), steps_per_epoch=2000, epochs=2, log_interval=1,
                                      val_losses={"basemodel": [3.0, 2.5, 2.7]}))
    follower = RunFollower(run, sample_gpus=False)
    while not follower.caught_up:
        follower.poll()
    snap = follower.snapshot(View(width=50))
    assert len(snap.plot.raw.x) <= 100 and len(snap.plot.smooth.x) <= 100
    assert snap.plot.best == (2.5, 2000, 1)
    zoom = follower.snapshot(View(width=50, zoom_last=100, log_y=True))
    assert min(zoom.plot.raw.x) >= 3900
    assert snap.stages[0].status == "completed" and snap.stages[0].fraction == 1.0


def test_eta_comes_from_the_events_own_clock(tmp_path):
    run = write_run(tmp_path, RunSpec(stages=("tokenizer",), finish=False, state="running", epochs=4,
                                      steps_per_epoch=40, stop_at={"tokenizer": 80}, step_s=0.5))
    with LiveRun(run):
        follower = RunFollower(run, sample_gpus=False, clock=lambda: 1e12)   # a far-off clock changes nothing
        follower.poll()
        stage = follower.snapshot(View()).stages[0]
    # 80 of 160 steps done at 5 steps per 0.5 s: 80 more steps take 8 s.
    assert stage.eta_s == pytest.approx(8.0, rel=0.01)


def test_overview_of_a_long_file_matches_the_exact_read(tmp_path, monkeypatch):
    monkeypatch.setattr(follow, "OVERVIEW_MIN_BYTES", 1 << 16)
    run = write_run(tmp_path, RunSpec(stages=("tokenizer", "basemodel"), steps_per_epoch=500, epochs=4,
                                      log_interval=1))
    found = sample_overview(run.events_path, samples=300, edge_bytes=1 << 12)
    assert found is not None
    overview, _ = found
    exact = RunFollower(run, sample_gpus=False)
    while not exact.caught_up or exact.overview is not None:
        exact.poll()
    for name in ("tokenizer", "basemodel"):
        assert overview.stages[name].best_val == exact.state.stages[name].best_val
        assert overview.stages[name].status == "completed"
        assert overview.stages[name].last_step == exact.state.stages[name].last_step == 2000
        # The sampled curve ends within one sample spacing of the exact one.
        assert exact.state.curves[name].step[-1] - overview.curves[name].step[-1] <= 2 * 4000 / 300
        assert 100 < len(overview.curves[name].step) < len(exact.state.curves[name].step)


def test_bulk_reading_gives_the_same_state_as_one_record_at_a_time(tmp_path):
    run = write_run(tmp_path, RunSpec(steps_per_epoch=700, epochs=2, log_interval=1, gpus=2))
    records = [__import__("json").loads(line) for line in run.events_path.read_text().splitlines()]
    one_by_one = RunState().add_all(records)
    bulk = RunState()
    assert bulk.add_block(run.events_path.read_bytes()) == 0
    for name in ("tokenizer", "basemodel"):
        a, b = one_by_one.curves[name], bulk.curves[name]
        assert list(a.step) == list(b.step) and list(a.loss) == list(b.loss) and list(a.lr) == list(b.lr)
        assert list(a.smooth) == pytest.approx(list(b.smooth))
        sa, sb = one_by_one.stages[name], bulk.stages[name]
        assert (sa.last_step, sa.best_val, sa.status, sa.first_step) == (sb.last_step, sb.best_val, sb.status,
                                                                          sb.first_step)
        assert sa.early_losses == sb.early_losses and list(sa.recent_losses) == list(sb.recent_losses)
    assert one_by_one.records == bulk.records


def test_bulk_reading_falls_back_when_a_line_is_unusual(tmp_path):
    lines = [encode({"t": i, "event": "step", "stage": "tokenizer", "attempt": 0, "step": i, "epoch": 0.1,
                     "loss": 0.5, "lr": 1e-3}) for i in range(1, 200)]
    lines[100] = encode({"t": 101, "event": "step", "stage": "tokenizer", "attempt": 0, "step": 101,
                         "epoch": 0.1, "loss": None, "lr": None, "parts": {"loss": 3.0}})   # a second "loss"
    state = RunState()
    state.add({"t": 0, "event": "stage_start", "stage": "tokenizer", "attempt": 0, "epochs": 1,
               "steps_per_epoch": 200, "total_steps": 200, "world_size": 1})
    state.add_block(b"".join(lines))
    curve = state.curves["tokenizer"]
    assert list(curve.step) == [float(s) for s in range(1, 200)]
    assert math.isnan(curve.loss[100]) and curve.loss[99] == curve.loss[101] == 0.5


def test_follower_shows_the_overview_first_then_the_exact_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(follow, "OVERVIEW_MIN_BYTES", 1 << 16)
    run = write_run(tmp_path, RunSpec(stages=("basemodel",), steps_per_epoch=3000, epochs=2, log_interval=1))
    follower = RunFollower(run, sample_gpus=False)
    follower.poll(budget_s=0.001)
    first = follower.snapshot(View())
    assert follower.overview is not None and any("overview" in n for n in first.plot.notes)
    assert first.plot.raw and first.plot.best is not None
    while not follower.caught_up:
        follower.poll()
    follower.poll()
    last = follower.snapshot(View())
    assert follower.overview is None and not any("overview" in n for n in last.plot.notes)


def test_a_replaced_events_file_is_read_again(tmp_path):
    run = write_run(tmp_path, RunSpec(stages=("tokenizer",), epochs=1))
    follower = RunFollower(run, sample_gpus=False)
    follower.poll()
    before = follower.state.records
    tmp = run.events_path.with_suffix(".new")
    with EventWriter(tmp) as w:
        w.emit("log", level="info", message="rewritten")
    os.replace(tmp, run.events_path)
    follower.poll()
    assert before > 1
    assert follower.tail.offset == run.events_path.stat().st_size
    assert follower.state.records == 1                         # the new story only, not both


def test_the_follower_tells_requested_and_planned_stops_apart(tmp_path):
    run = write_run(tmp_path, RunSpec(stages=("tokenizer",), finish=False, state="running", epochs=1))
    follower = RunFollower(run, sample_gpus=False)
    with LiveRun(run):
        run.request("early_stop", source="tui", stage="tokenizer")
        run.request("stop", source="cli", stage="basemodel", at_step=40)
        follower.force_status()
        follower.poll()
        assert follower.snapshot(View()).header.pending_requests == ["early stop requested", "stop planned at basemodel step 40"]
    follower.force_status()
    follower.poll()
    assert follower.snapshot(View()).header.pending_requests == [], "a run that ended honours no request any more"


def test_the_time_budget_left_counts_from_the_attempt_start_while_the_run_lives(tmp_path):
    from kronos_train.config import KronosConfig, to_dict
    from synthetic_runs import T0

    config = to_dict(KronosConfig())
    config["training"]["time_budget_minutes"] = 60
    run = write_run(tmp_path, RunSpec(stages=("tokenizer",), finish=False, state="running", config=config,
                                      stop_at={"tokenizer": 20}))
    follower = RunFollower(run, sample_gpus=False, clock=lambda: T0 + 600)
    with LiveRun(run):
        follower.force_status()
        follower.poll()
        assert follower.snapshot(View()).header.budget_left_s == pytest.approx(3000)
    follower.force_status()
    follower.poll()
    assert follower.snapshot(View()).header.budget_left_s is None          # not running: nothing counts down
