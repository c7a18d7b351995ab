"""The events file: writer, incremental reader, schema (writer side of the contract)."""
from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from kronos_train.control import events as E


def story() -> list[tuple[str, dict]]:
    return [
        ("run_start", dict(schema=E.SCHEMA_VERSION, run_id="r", preset="demo", stages=["tokenizer", "basemodel"],
                           world_size=1, attempt=0)),
        ("stage_start", dict(stage="tokenizer", attempt=0, epochs=1, steps_per_epoch=2, total_steps=2, world_size=1)),
        ("val", dict(stage="tokenizer", attempt=0, step=0, epoch=0, val_loss=1.0, best_val_loss=1.0, improved=True, baseline=True)),
        ("step", dict(stage="tokenizer", attempt=0, step=1, epoch=0.5, loss=0.9, lr=1e-3, parts={"recon": 0.8})),
        ("stage_end", dict(stage="tokenizer", status="completed", best_val_loss=0.8)),
        ("stage_end", dict(stage="basemodel", status="skipped")),
        ("run_end", dict(status="completed")),
    ]


def test_written_story_reads_back_valid(tmp_path):
    path = tmp_path / "events.jsonl"
    with E.EventWriter(path) as writer:
        for event, fields in story():
            writer.emit(event, **fields)
    records = E.read_events(path)
    assert [r["event"] for r in records] == [e for e, _ in story()]
    assert E.validate_story(records) == []


def test_schema_catches_missing_and_undocumented_fields():
    assert E.validate_record({"t": 1.0, "event": "step", "stage": "tokenizer"})  # missing step/loss/...
    rec = E.make_record("stage_end", stage="tokenizer", status="done")
    assert any("status" in p for p in E.validate_record(rec))
    rec = E.make_record("log", level="info", message="x", surprise=1)
    assert any("undocumented" in p for p in E.validate_record(rec))
    assert E.validate_record(E.make_record("nonsense")) == ["unknown event 'nonsense'"]
    assert E.validate_story([]) != []


def test_nan_and_inf_become_null(tmp_path):
    path = tmp_path / "e.jsonl"
    E.EventWriter(path).emit("log", level="warn", message="x", attempt=math.nan)
    assert E.read_events(path)[0]["attempt"] is None


def test_tail_reads_only_new_bytes_and_waits_for_a_torn_line(tmp_path):
    path = tmp_path / "events.jsonl"
    tail = E.EventTail(path)
    assert tail.read_new() == []                       # file not there yet
    writer = E.EventWriter(path)
    writer.emit("log", level="info", message="one")
    assert [r["message"] for r in tail.read_new()] == ["one"]
    with open(path, "ab") as fh:                       # half a record: a writer mid-line
        fh.write(b'{"t": 2, "event": "log", "level": "info", ')
    assert tail.read_new() == []
    with open(path, "ab") as fh:
        fh.write(b'"message": "two"}\n{"garbage\n')
    got = tail.read_new()
    assert [r["message"] for r in got] == ["two"] and tail.bad_lines == 1
    assert tail.read_new() == []


def test_tail_starts_over_when_the_file_is_replaced(tmp_path):
    path = tmp_path / "events.jsonl"
    E.EventWriter(path).emit("log", level="info", message="old")
    tail = E.EventTail(path)
    tail.read_new()
    path.unlink()                                      # log rotated: a new file, a new inode
    E.EventWriter(path).emit("log", level="info", message="new")
    assert [r["message"] for r in tail.read_new()] == ["new"]


def test_line_tail_starts_near_the_end_and_says_when_the_file_was_replaced(tmp_path):
    path = tmp_path / "stdout.log"
    path.write_bytes(b"first line\n" * 10 + b"last\n")
    tail = E.LineTail(path, start_near_end=8, max_pending=10)
    assert tail.read() == b"last\n"                   # the partial line it landed in is dropped
    assert not tail.restarted
    path.unlink()
    path.write_bytes(b"new\n")                        # replaced: read again from (near) its start
    assert tail.read() == b"new\n" and tail.restarted
    with open(path, "ab") as fh:
        fh.write(b"x" * 100)                          # a line that has not ended yet
    assert tail.read() == b""
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert tail.read() == b"x" * 10 + b"\n"           # what max_pending kept of it


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=20))
def test_tail_sees_every_record_whatever_the_chunking(tmp_path_factory, cuts):
    path = tmp_path_factory.mktemp("tail") / "events.jsonl"
    blob = b"".join(E.encode(E.make_record("log", level="info", message=f"m{i}")) for i in range(30))
    tail, seen, pos = E.EventTail(path), [], 0
    with open(path, "wb") as fh:
        for cut in cuts + [len(blob)]:
            fh.write(blob[pos:pos + cut])
            fh.flush()
            pos += cut
            seen += tail.read_new()
    assert [r["message"] for r in seen] == [f"m{i}" for i in range(30)]


def test_an_evaluation_may_follow_the_end_of_the_run(tmp_path):
    records = [E.make_record(event, **fields) for event, fields in story()]
    records.append(E.make_record("eval", horizon=30, metrics={"model": {"direction_accuracy": 0.6}}))
    assert E.validate_story(records) == []
    records.append(E.make_record("step", stage="tokenizer", attempt=0, step=9, epoch=1.0, loss=1.0, lr=1e-3))
    assert "the last record is not run_end" in E.validate_story(records)
