"""Every reader of run-folder files survives wrong types, missing keys, garbage and huge values:
a clear message in the CLI, a marked state in the TUI, an ignored request in training — never a
traceback.  Property-based (hypothesis) over each reader, plus the cases seen in the field."""
from __future__ import annotations

import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kronos_train.cli import main as cli
from kronos_train.config import ConfigError, from_dict, parse_yaml
from kronos_train.control.events import EventTail, read_events
from kronos_train.control.launch import LaunchError, load_run_config
from kronos_train.control.runfolder import RunFolder, clean_status
from kronos_train.control import commit
from kronos_train.train import statefile
from kronos_train.train.checkpoint import read_train_state
from kronos_train.train.control import StopPoller
from kronos_train.train.distributed import DistEnv
from kronos_train.control.failures import read_failures
from kronos_train.control.outcome import read_result, result_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tui"))

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=12)
KNOWN_STATUS_KEYS = ["run_id", "preset", "state", "pid", "pgid", "host", "stage", "stages", "attempt", "world_size",
                     "started_at", "updated_at", "exit_code", "message", "token"]
status_like = st.dictionaries(st.sampled_from(KNOWN_STATUS_KEYS) | st.text(max_size=6), json_values, max_size=10)
STEP_KEYS = ["event", "stage", "attempt", "step", "epoch", "loss", "lr", "parts", "grad_norm", "samples_per_s",
             "data_wait", "elapsed_s", "total_steps", "resumed_from", "status", "message", "kind", "remedy",
             "best_val_loss", "val_loss", "t", "best_path"]
event_like = st.dictionaries(st.sampled_from(STEP_KEYS), json_values, max_size=12).map(
    lambda d: {**d, "event": d.get("event") if isinstance(d.get("event"), str) else "step"})


def make_run(tmp: Path) -> RunFolder:
    run = RunFolder(tmp / "logs" / "20260101-000000-fuzz")
    run.path.mkdir(parents=True, exist_ok=True)
    return run


def quiet(*argv: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = cli(list(argv))
    return code, buffer.getvalue()


def test_field_cases_give_messages_not_tracebacks(tmp_path):
    run = make_run(tmp_path)
    run.config_path.write_text("{}\n")
    for status in ({"state": 123}, {"state": None}, {"stages": "x"}, {"pid": 10**30, "pgid": "1"}):
        run.status_path.write_text(json.dumps(status))
        assert run.state() in ("unknown", "interrupted") and isinstance(run.read_status()["stages"], dict)
        assert quiet("status")[0] == 0
        code, out = quiet("status", str(run.path))
        assert code == 0 and "status.json damaged" in out
    run.events_path.write_text(json.dumps({"t": 1.0, "event": "step", "stage": "tokenizer", "attempt": 0,
                                           "step": 3, "epoch": 0.1, "loss": 1.0, "lr": "fast"}) + "\n")
    code, out = quiet("status", str(run.path))
    assert code == 0 and "loss" not in out          # a step record with a text lr is dropped, not shown
    assert read_events(run.events_path) == []


@SETTINGS
@given(status=status_like)
def test_status_json_of_any_shape_reads_typed(tmp_path, status):
    clean = clean_status(status)
    assert clean.get("state") in (None, "pending", "running", "stopping", "stopped", "completed", "failed", "aborted")
    assert isinstance(clean["stages"], dict) and all(isinstance(v, dict) for v in clean["stages"].values())
    for key in ("pid", "pgid"):
        assert clean.get(key) is None or (isinstance(clean[key], int) and 0 < clean[key] <= 2**22)


@SETTINGS
@given(status=st.one_of(status_like, json_values), records=st.lists(event_like, max_size=6),
       garbage=st.binary(max_size=40))
def test_status_command_and_tui_row_survive_any_run_folder(tmp_path, status, records, garbage):
    from kronos_tui.follow import RunFollower
    from kronos_tui.screens.runs import scan_run
    from kronos_tui.view import View

    run = make_run(tmp_path)
    run.status_path.write_text(json.dumps(status))
    lines = [json.dumps(r).encode() for r in records] + [garbage]
    run.events_path.write_bytes(b"\n".join(lines) + b"\n")
    assert quiet("status", str(run.path))[0] == 0
    assert quiet("status", "--json")[0] == 0
    row = scan_run(run, {}, time.time())
    assert isinstance(row.state, str)
    follower = RunFollower(run, sample_gpus=False)
    follower.poll()
    assert isinstance(follower.snapshot(View()).header.state, str)
    follower.close()


@SETTINGS
@given(lines=st.lists(st.one_of(event_like.map(lambda r: json.dumps(r).encode()), st.binary(max_size=30)),
                      max_size=10))
def test_the_event_reader_hands_out_only_typed_records(tmp_path, lines):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    for rec in EventTail(path).read_new():
        assert isinstance(rec["event"], str)
        for key in ("loss", "lr", "epoch", "val_loss", "best_val_loss"):
            assert rec.get(key) is None or isinstance(rec[key], (int, float)) and not isinstance(rec[key], bool)
        for key in ("step", "attempt", "total_steps"):
            assert rec.get(key) is None or type(rec[key]) is int
        assert rec.get("stage") in (None, "tokenizer", "basemodel")


@SETTINGS
@given(request=st.one_of(json_values, st.dictionaries(st.sampled_from(["kind", "at_step", "stage", "source", "t"]),
                                                      json_values, max_size=5)),
       kind=st.sampled_from(["early_stop", "stop", "abort"]))
def test_a_request_file_of_any_shape_never_crashes_the_poller(tmp_path, request, kind):
    run = make_run(tmp_path)
    run.requests_dir.mkdir(exist_ok=True)
    (run.requests_dir / f"{kind}.json").write_text(json.dumps(request))
    poller = StopPoller(run, "tokenizer", DistEnv())
    assert poller.poll(7) in (None, "early_stop", "stop", "abort")
    assert all(isinstance(line, str) for line in run.pending_request_lines())


def test_stop_at_step_abc_is_ignored_and_said(tmp_path, capsys):
    run = make_run(tmp_path)
    run.requests_dir.mkdir()
    (run.requests_dir / "stop.json").write_text(json.dumps({"kind": "stop", "at_step": "abc"}))
    poller = StopPoller(run, "tokenizer", DistEnv())
    assert poller.poll(1) is None and poller.poll(2) is None
    assert capsys.readouterr().out.count("at_step 'abc' is not an optimizer step") == 1
    assert "stop request ignored" in run.pending_request_lines()[0]


@SETTINGS
@given(failure=st.one_of(json_values, st.dictionaries(
    st.sampled_from(["kind", "message", "remedy", "rank", "exit_code", "stage", "attempt", "t", "traceback"]),
    json_values, max_size=9)), result=json_values)
def test_failure_and_result_files_of_any_shape(tmp_path, failure, result):
    from kronos_train.control.failures import failures_dir, root_cause

    run = make_run(tmp_path)
    failures_dir(run).mkdir(exist_ok=True)
    for rank in (0, 1):
        (failures_dir(run) / f"tokenizer.attempt0.rank{rank}.json").write_text(json.dumps(failure))
    found = read_failures(run, "tokenizer", 0)
    if found:
        assert isinstance(root_cause(found).message, str)
    result_path(run, "tokenizer", 0).parent.mkdir(exist_ok=True)
    result_path(run, "tokenizer", 0).write_text(json.dumps(result))
    outcome = read_result(run, "tokenizer", 0)
    assert outcome is None or outcome["status"] in ("completed", "early_stopped", "stopped", "failed", "skipped")


@SETTINGS
@given(state=json_values)
def test_train_state_and_trainer_state_of_any_shape(tmp_path, state):
    (tmp_path / "train_state.json").write_text(json.dumps(state))
    try:
        assert isinstance(read_train_state(tmp_path / "train_state.json"), dict)
    except commit.CheckpointError as exc:
        assert "train_state.json" in str(exc)
    statefile.save_state({}, tmp_path, "trainer_state")
    (tmp_path / "trainer_state.json").write_text(json.dumps({"format": 1, "tree": state}))
    try:
        statefile.load_state(tmp_path, "trainer_state")
    except commit.CheckpointError as exc:
        assert "trainer_state.json" in str(exc)


@SETTINGS
@given(raw=st.one_of(json_values, st.dictionaries(st.sampled_from(["data", "training", "checkpoint", "distributed"]),
                                                  st.dictionaries(st.text(max_size=20), json_values, max_size=4))),
       text=st.text(max_size=60))
def test_config_yaml_of_any_shape_gives_problems_not_exceptions(tmp_path, raw, text):
    try:
        parse_yaml(text)
    except ConfigError as exc:
        assert exc.problems
    if isinstance(raw, dict):
        from_dict(raw)
    run = make_run(tmp_path)
    run.config_path.write_text(json.dumps(raw))
    try:
        load_run_config(run)
    except LaunchError as exc:
        assert exc.problems


def test_huge_and_non_regular_run_folder_files_are_not_read(tmp_path):
    run = make_run(tmp_path)
    with open(run.status_path, "wb") as fh:
        fh.truncate(17 * 1024 * 1024)                   # sparse: 17 MiB of zeros
    assert run.read_status()["damaged"] and run.state() == "unknown"
    run.status_path.unlink()
    run.status_path.symlink_to("/dev/zero")
    assert "symbolic link" in run.read_status()["damaged"][0]


async def test_the_monitor_attaches_to_a_run_whose_status_is_damaged(tmp_path):
    from kronos_tui.app import KronosApp
    from kronos_tui.services import Services
    from tui_helpers import wait_text

    run = make_run(tmp_path)
    run.config_path.write_text("{}\n")
    for state in (123, None):
        run.status_path.write_text(json.dumps({"state": state, "stages": "x"}))
        app = KronosApp(str(run.path), services=Services(logs_dir=run.path.parent, poll_interval=0.05,
                                                         auto_model_check=False))
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_text(pilot, "? status.json damaged")
