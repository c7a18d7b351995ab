"""The reader's side of the events contract (docs/events.md, kronos_train.control.events).

The TUI must read every record the schema allows, use only documented fields,
survive what the rules say readers must survive (torn last line, unknown extra
fields, unparseable lines, null numbers), and apply the resume rule.  The
writer's side is tested with the trainer.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kronos_train.control.events import EVENT_FIELDS, GPU_FIELDS, SCHEMA_VERSION, WORKER_FIELDS, encode, validate_record, validate_story
from kronos_train.control.runfolder import RunFolder
from kronos_tui.follow import RunFollower, View
from kronos_tui.runstate import FIELDS_READ, RunState
from synthetic_runs import RunSpec, write_run

DOCS = Path(__file__).resolve().parents[1] / "docs" / "events.md"
COMMON = {"t", "event", "stage", "attempt"}

SAMPLE_VALUES = {
    "schema": SCHEMA_VERSION, "run_id": "r", "preset": "demo", "stages": ["tokenizer", "basemodel"], "world_size": 2,
    "attempt": 0, "stage": "tokenizer", "epochs": 2, "steps_per_epoch": 10, "total_steps": 20, "step": 5,
    "epoch": 0.5, "loss": 0.3, "lr": 1e-3, "val_loss": 0.4, "best_val_loss": 0.4, "improved": True, "host": "n1",
    "gpus": [{"index": 0, "name": "H100", "util": 90.0, "mem_used_mb": 1.0, "mem_total_mb": 2.0, "temp_c": 50.0,
              "power_w": 300.0}],
    "kind": "last", "path": "/x", "reason": "patience", "status": "completed", "message": "m", "horizon": 30,
    "metrics": {}, "level": "info", "resumed_from": None, "parts": {"recon": 0.1}, "remedy": ["x"],
    "workers": [{"pid": 4100, "rank": 0, "cpu": 180.0, "rss_mb": 900.0, "threads": 9}],
}
KIND_BY_EVENT = {"error": "oom", "stop": "early_stop", "checkpoint": "last"}


def record(event: str, optional: bool) -> dict:
    required, optional_fields = EVENT_FIELDS[event]
    fields = set(required) | (set(optional_fields) if optional else set())
    rec = {"t": 1.0, "event": event}
    for name in sorted(fields):
        rec[name] = SAMPLE_VALUES.get(name, 1)
    if "kind" in rec:
        rec["kind"] = KIND_BY_EVENT.get(event, rec["kind"])
    if event == "run_end":
        rec["status"] = "completed"
    return rec


def test_every_field_the_reader_uses_is_documented():
    for event, used in FIELDS_READ.items():
        assert event in EVENT_FIELDS, f"the reader handles an undocumented event {event!r}"
        required, optional = EVENT_FIELDS[event]
        undocumented = used - required - optional - COMMON
        assert not undocumented, f"{event}: the reader uses undocumented fields {sorted(undocumented)}"


def test_the_reader_handles_every_documented_event():
    assert set(EVENT_FIELDS) - set(FIELDS_READ) <= {"eval"}          # eval results are shown by `evaluate`


@pytest.mark.parametrize("event", sorted(EVENT_FIELDS))
@pytest.mark.parametrize("optional", [False, True])
def test_each_record_folds_with_required_or_all_fields(event, optional):
    rec = record(event, optional)
    assert validate_record(rec) == [], "the sample itself must be schema-valid"
    state = RunState()
    state.add(rec)
    assert state.unknown_events == 0 and state.records == 1


def test_unknown_extra_fields_and_null_numbers_are_tolerated():
    state = RunState()
    state.add({**record("step", True), "loss": None, "grad_norm": None, "future_field": {"x": 1}})
    state.add({**record("val", True), "val_loss": None, "future": 2})
    state.add({"t": 2.0, "event": "an_event_from_schema_9", "x": 1})
    assert state.records == 3 and state.unknown_events == 1
    assert state.stages["tokenizer"].best_val is None                 # a null val_loss is no best


def test_gpu_fields_the_panel_reads_are_documented():
    read = {"index", "name", "util", "mem_used_mb", "mem_total_mb", "temp_c", "power_w"}
    assert read <= GPU_FIELDS


def test_worker_readings_are_documented_and_folded():
    from kronos_train.control.procstat import WorkerReading

    written = set(WorkerReading(1, 0, 1.0, 1.0, 1).to_event())
    assert written == WORKER_FIELDS, "the supervisor writes exactly the documented worker fields"
    state = RunState()
    state.add(record("workers", True))
    state.add({**record("workers", True), "workers": [{"pid": 4101, "rank": 1, "cpu": None, "rss_mb": 5.0}]})
    assert list(state.workers) == [("n1", 4101)], "a reading replaces the processes of the host's previous one"
    assert validate_record({**record("workers", False), "workers": [{"pid": 1, "gpu": 3}]}) != []


def test_the_documented_example_reads(tmp_path):
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"## Example\s+```json\n(.*?)```", text, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    state = RunState().add_all(records)
    assert state.unknown_events == 0
    assert state.stages["tokenizer"].baseline_val == 0.93 and state.curves["tokenizer"].loss[-1] == 0.41


def test_torn_last_line_waits_and_garbage_is_counted(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.path.mkdir()
    good = encode(record("step", False))
    run.events_path.write_bytes(good + b"\x00\xff not json\n" + good[:10])
    follower = RunFollower(run, sample_gpus=False)
    follower.poll()
    assert follower.state.records == 1 and follower.tail.bad_lines == 1
    with open(run.events_path, "ab") as fh:
        fh.write(good[10:])
    follower.poll()
    assert follower.state.records == 2


def test_the_resume_rule(tmp_path):
    """After a run_start with a higher attempt, the earlier attempts' step/val
    points of a stage past its new stage_start.resumed_from are dropped."""
    base = {"stage": "basemodel"}
    recs = [record("run_start", False),
            {**record("stage_start", False), **base}]
    recs += [{**record("step", False), **base, "step": s, "loss": float(s)} for s in range(1, 31)]
    recs += [{**record("val", False), **base, "step": 20, "epoch": 2, "val_loss": 0.5},
             {**record("val", False), **base, "step": 30, "epoch": 3, "val_loss": 0.1}]
    recs += [{**record("run_start", False), "attempt": 1},
             {**record("stage_start", False), **base, "attempt": 1, "resumed_from": 20}]
    recs += [{**record("step", False), **base, "attempt": 1, "step": s, "loss": float(s)} for s in range(21, 26)]
    state = RunState().add_all(recs)
    curve = state.curves["basemodel"]
    assert list(curve.step) == [float(s) for s in range(1, 26)]
    assert list(curve.val_step) == [20.0] and state.stages["basemodel"].best_val == 0.5
    assert validate_story(recs + [{"t": 9.0, "event": "stage_end", "stage": "basemodel", "status": "completed"},
                                  {"t": 9.0, "event": "run_end", "status": "completed"}]) == []


def test_the_synthetic_runs_the_tui_tests_use_follow_the_contract(tmp_path):
    for spec in (RunSpec(), RunSpec(run_id="b", oom="basemodel", state="failed")):
        run = write_run(tmp_path, spec)
        records = [json.loads(line) for line in run.events_path.read_text().splitlines()]
        assert validate_story(records) == [], spec.run_id
    follower = RunFollower(RunFolder(tmp_path / "b"), sample_gpus=False)
    follower.poll()
    snap = follower.snapshot(View())
    assert [s.status for s in snap.stages] == ["completed", "failed"]
