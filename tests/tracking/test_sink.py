"""The live sink without training: a killed attempt and its resume through real TensorBoard
files, a tracker that is down, a tracker that is slow, and the light-import promise."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from kronos_train.config import from_dict
from kronos_train.control.events import EventWriter, read_events
from kronos_train.control.runfolder import RunFolder
from kronos_train.tracking.backends import MlflowBackend, TensorBoardBackend, TrackingContext
from kronos_train.tracking.live import CommitGate, LiveSink, TrackingWriter
from kronos_train.tracking.scalars import ScalarMapper, published_points

from tracking_helpers import need, same, tensorboard_series


def step(stage, n, loss, attempt):
    return {"event": "step", "stage": stage, "attempt": attempt, "step": n, "epoch": n / 4, "loss": loss,
            "lr": 1e-3, "parts": {"recon": loss / 2}}


def killed_attempt():
    """Attempt 0 checkpoints at step 4, logs steps 5-6 and a validation at 6, then dies."""
    records = [{"event": "stage_start", "stage": "tokenizer", "attempt": 0, "resumed_from": None},
               {"event": "val", "stage": "tokenizer", "attempt": 0, "step": 0, "epoch": 0, "val_loss": 9.0,
                "best_val_loss": 9.0, "improved": True},
               {"event": "gpu", "stage": "tokenizer", "attempt": 0, "host": "node-1.lan",
                "gpus": [{"index": 0, "util": 97.0, "mem_used_mb": 100.0}]}]
    records += [step("tokenizer", n, 10.0 - n, 0) for n in range(1, 5)]
    records.append({"event": "checkpoint", "stage": "tokenizer", "attempt": 0, "step": 4, "kind": "last", "path": "x"})
    records += [step("tokenizer", n, 10.0 - n, 0) for n in (5, 6)]
    records.append({"event": "gpu", "stage": "tokenizer", "attempt": 0, "host": "node-1.lan",
                    "gpus": [{"index": 0, "util": 50.0, "mem_used_mb": 120.0}]})
    records.append({"event": "val", "stage": "tokenizer", "attempt": 0, "step": 6, "epoch": 1, "val_loss": 5.0,
                    "best_val_loss": 5.0, "improved": True})
    return records


def resumed_attempt():
    """Attempt 1 resumes from the step-4 checkpoint and finishes with other numbers."""
    records = [{"event": "stage_start", "stage": "tokenizer", "attempt": 1, "resumed_from": 4},
               {"event": "gpu", "stage": "tokenizer", "attempt": 1, "host": "node-1.lan",
                "gpus": [{"index": 0, "util": 80.0}]}]
    records += [step("tokenizer", n, 20.0 - n, 1) for n in range(5, 9)]
    records.append({"event": "val", "stage": "tokenizer", "attempt": 1, "step": 8, "epoch": 2, "val_loss": 4.0,
                    "best_val_loss": 4.0, "improved": True})
    records.append({"event": "stage_end", "stage": "tokenizer", "attempt": 1, "status": "completed"})
    return records


@pytest.fixture
def run(tmp_path) -> RunFolder:
    folder = RunFolder(tmp_path / "20260101-000000-demo")
    folder.path.mkdir()
    return folder


def context(run, **tracking) -> TrackingContext:
    cfg, _ = from_dict({"tracking": tracking})
    return TrackingContext(run=run, cfg=cfg, preset="demo")


def publish_as_one_process(run, records, backends, **tracking) -> TrackingWriter:
    """What rank 0 of one stage process does: write each record, mirror it, finish."""
    writer = TrackingWriter(EventWriter(run.events_path), LiveSink(context(run, **tracking), backends).start())
    for rec in records:
        writer.emit(rec.pop("event"), **rec)
    return writer


def test_a_killed_attempt_and_its_resume_show_every_step_once_in_tensorboard(run):
    need("tensorboard")
    first = publish_as_one_process(run, killed_attempt(), [TensorBoardBackend()])
    first.sink.close()              # the process dies: nothing past the step-4 checkpoint may have gone out
    assert first.sink.gate.withheld() > 0
    publish_as_one_process(run, resumed_attempt(), [TensorBoardBackend()]).finish()
    want = {}
    for p in published_points(read_events(run.events_path)):
        want.setdefault(p.tag, []).append((p.step, p.value))
    assert want["tokenizer/train/loss"] == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 15.0), (6, 14.0),
                                            (7, 13.0), (8, 12.0)]
    assert want["tokenizer/val/loss"] == [(0, 9.0), (8, 4.0)]
    # The reading at step 6 was past the checkpoint; the resumed one came before step 5.
    assert want["tokenizer/gpu/node-1_lan/0/util"] == [(0, 97.0)]
    got = tensorboard_series(run.path / "tensorboard")
    assert set(got) == set(want)
    assert [tag for tag in want if not same(got[tag], want[tag])] == []


def test_immediate_publishing_sends_points_before_any_checkpoint():
    gate, mapper = CommitGate(immediate=True), ScalarMapper()
    out = [p for rec in killed_attempt()[:5] for p in gate.admit(rec, mapper.points(rec))]
    assert [p.step for p in out if p.tag == "tokenizer/train/loss"] == [1, 2]
    held = CommitGate()
    assert [p for rec in killed_attempt()[:5] for p in held.admit(rec, ScalarMapper().points(rec))] == []


def test_a_tracker_that_is_down_costs_a_warning_event_and_the_others_go_on(run, monkeypatch):
    need("mlflow")
    need("tensorboard")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    writer = publish_as_one_process(run, killed_attempt()[:2] + resumed_attempt()[-1:],
                                    [MlflowBackend(), TensorBoardBackend()], mlflow_tracking_uri="http://127.0.0.1:9")
    writer.finish()
    warnings = [r for r in read_events(run.events_path) if r["event"] == "log" and r["level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["message"].startswith("tracking: mlflow: open failed")
    assert "kronos-train export RUN --to mlflow" in warnings[0]["message"]
    assert tensorboard_series(run.path / "tensorboard")["tokenizer/val/loss"] == [(0, 9.0)]


class SlowTensorBoard(TensorBoardBackend):
    """A real TensorBoard backend behind a slow link."""

    def log(self, points):
        time.sleep(0.5)
        super().log(points)


def test_a_slow_tracker_never_slows_the_writer_and_dropped_records_are_reported(run):
    need("tensorboard")
    sink = LiveSink(context(run, publish="immediate"), [SlowTensorBoard()], queue_records=5).start()
    writer = TrackingWriter(EventWriter(run.events_path), sink)
    started = time.perf_counter()
    for n in range(1, 201):
        writer.emit("step", stage="tokenizer", attempt=0, step=n, epoch=n / 10, loss=1.0 / n, lr=1e-3)
    assert time.perf_counter() - started < 1.0          # 200 records while the tracker sleeps 0.5 s a call
    writer.finish()
    assert sink.dropped > 100
    messages = [r["message"] for r in read_events(run.events_path) if r["event"] == "log"]
    assert any("fell behind: records are being dropped" in m for m in messages)
    assert any(f"{sink.dropped} record(s) were not mirrored" in m for m in messages)
    assert 0 < len(tensorboard_series(run.path / "tensorboard")["tokenizer/train/loss"]) < 200


def test_a_tampered_tracking_file_is_not_trusted(run):
    from kronos_train.tracking.state import read_state, state_path

    state_path(run).write_text('{"mlflow": {"location": "http://x", "run_id": "../../etc"}, '
                               '"wandb": {"location": 3}, "tensorboard": {"location": "/tmp/tb"}, "x": []}')
    assert set(read_state(run)) == {"tensorboard"}
    state_path(run).write_text("not json")
    assert read_state(run) == {}


def test_the_base_install_and_the_tui_import_no_tracker():
    code = ("import sys, kronos_tui.app, kronos_train.tracking, kronos_train.tracking.live, "
            "kronos_train.tracking.publish, kronos_train.checks.pre, kronos_train.checks.run, kronos_train.cli; "
            "print(sorted(m for m in ('tensorboard', 'mlflow', 'wandb', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
