"""A real `demo` run published live, stopped and resumed: TensorBoard's own reader, a real
MLflow server and W&B's offline run file each hold every logged step exactly once, with the
numbers of events.jsonl."""
from __future__ import annotations

import glob
from collections import defaultdict
from pathlib import Path

import pytest

from kronos_train.checks.run import run_checks
from kronos_train.cli import main as cli
from kronos_train.control.events import read_events, validate_story
from kronos_train.export import curve_points
from kronos_train.tracking.state import read_state

from tracking_helpers import STOP_AT, expected, same, tensorboard_series
from wandb_file import history_rows, run_id as wandb_run_id, wait_complete

pytestmark = pytest.mark.slow


def test_the_run_was_stopped_resumed_and_the_scalars_cover_every_logged_number(tracked_run):
    records = read_events(tracked_run.events_path)
    assert validate_story(records) == []
    resumed = [r for r in records if r["event"] == "stage_start" and r["stage"] == "basemodel"]
    assert [r["resumed_from"] for r in resumed] == [None, STOP_AT]
    assert not [r for r in records if r["event"] == "log" and r["level"] == "warning"], "a tracker failed"
    want = expected(tracked_run)
    # Independent of the tracker mapping: every train and val number the CSV export keeps is a scalar.
    for row in curve_points(records):
        if row["kind"] == "step":
            assert (row["step"], row["loss"]) in want[f"{row['stage']}/train/loss"]
            assert (row["step"], row["lr"]) in want[f"{row['stage']}/train/lr"]
        else:
            assert (row["step"], row["val_loss"]) in want[f"{row['stage']}/val/loss"]
    assert {"tokenizer/train/recon", "basemodel/train/ce_s1", "tokenizer/events/checkpoint_last",
            "basemodel/perf/samples_per_s"} <= set(want)


def test_tensorboard_reads_back_every_scalar_once(tracked_run):
    state = read_state(tracked_run)["tensorboard"]
    assert Path(state.location) == tracked_run.path / "tensorboard"
    assert len(glob.glob(f"{state.location}/events.out.tfevents.*")) == 3    # tokenizer, basemodel, resumed basemodel
    got, want = tensorboard_series(Path(state.location)), expected(tracked_run)
    assert set(got) == set(want)
    assert [tag for tag in want if not same(got[tag], want[tag])] == []


def test_mlflow_holds_one_run_continued_after_the_resume_with_every_step_once(tracked_run, mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    state = read_state(tracked_run)["mlflow"]
    assert state.location == mlflow_server
    live = client.search_runs([client.get_experiment_by_name("demo").experiment_id],
                              f"tags.`kronos.run_id` = '{tracked_run.run_id}' and tags.`kronos.source` = 'live'")
    assert [r.info.run_id for r in live] == [state.run_id]
    run = live[0]
    assert run.info.status == "FINISHED" and run.info.run_name == tracked_run.run_id
    assert run.data.tags["kronos.preset"] == tracked_run.preset_name()
    assert run.data.params["training.log_interval"] == "3" and run.data.params["tracking.publish"] == "checkpointed"
    want = expected(tracked_run)
    history = {tag: sorted((m.step, m.value) for m in client.get_metric_history(state.run_id, tag)) for tag in want}
    assert [tag for tag in want if not same(history[tag], want[tag])] == []
    assert set(run.data.metrics) == set(want)
    artifacts = {a.path for a in client.list_artifacts(state.run_id, "basemodel/best")}
    assert {"basemodel/best/config.json", "basemodel/best/model.safetensors"} <= artifacts


def test_wandb_offline_run_is_resumed_by_id_and_holds_every_step_once(tracked_run):
    files = sorted(glob.glob(str(tracked_run.path / "wandb" / "offline-run-*" / "run-*.wandb")))
    assert len(files) == 3                                 # one per stage process, all the same W&B run
    for f in files:
        wait_complete(Path(f))
    stored = read_state(tracked_run)["wandb"].run_id
    assert {wandb_run_id(Path(f)) for f in files} == {stored}
    got: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for f in files:
        for row in history_rows(Path(f)):
            for tag, value in row.items():
                stage = tag.split("/")[0]
                if not tag.startswith("_") and tag != f"{stage}/step":
                    got[tag].append((row[f"{stage}/step"], value))
    want = expected(tracked_run)
    assert set(got) == set(want)
    assert [tag for tag in want if not same(sorted(got[tag]), want[tag])] == []


def test_the_checklist_says_where_the_run_was_published(tracked_run, mlflow_server):
    published = next(r for r in run_checks(tracked_run) if r.id == "run.published")
    assert published.status == "ok" and published.phase == "after"
    text = "\n".join(published.items)
    assert str(tracked_run.path / "tensorboard") in text and mlflow_server in text and "wandb" in text


def test_export_to_tensorboard_writes_what_the_live_run_wrote(tracked_run, tmp_path, capsys):
    target = tmp_path / "tb"
    assert cli(["export", str(tracked_run.path), "--to", "tensorboard", str(target)]) == 0
    assert f"to tensorboard: {target}" in capsys.readouterr().err
    assert tensorboard_series(target) == tensorboard_series(tracked_run.path / "tensorboard")
    assert cli(["export", str(tracked_run.path), "--to", "tensorboard", str(target)]) == 2     # never twice into one
    assert "already holds TensorBoard event files" in capsys.readouterr().err


def test_export_to_mlflow_publishes_a_fresh_run_with_the_same_histories(tracked_run, mlflow_server, capsys):
    from mlflow.tracking import MlflowClient

    assert cli(["export", str(tracked_run.path), "--to", "mlflow", mlflow_server]) == 0
    client = MlflowClient(mlflow_server)
    exported = client.search_runs([client.get_experiment_by_name("demo").experiment_id],
                                  f"tags.`kronos.run_id` = '{tracked_run.run_id}' and tags.`kronos.source` = 'export'")
    assert len(exported) == 1 and exported[0].info.run_id in capsys.readouterr().err
    live = read_state(tracked_run)["mlflow"].run_id
    assert exported[0].info.run_id != live
    for tag in expected(tracked_run):
        assert ([(m.step, m.value) for m in client.get_metric_history(exported[0].info.run_id, tag)] ==
                [(m.step, m.value) for m in client.get_metric_history(live, tag)]), tag


def test_export_to_wandb_offline_writes_a_new_run(tracked_run, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    before = set(glob.glob(str(tracked_run.path / "wandb" / "offline-run-*" / "run-*.wandb")))
    assert cli(["export", str(tracked_run.path), "--to", "wandb"]) == 0
    (new,) = set(glob.glob(str(tracked_run.path / "wandb" / "offline-run-*" / "run-*.wandb"))) - before
    wait_complete(Path(new))
    assert wandb_run_id(Path(new)) != read_state(tracked_run)["wandb"].run_id
    steps = [row["tokenizer/step"] for row in history_rows(Path(new)) if "tokenizer/train/loss" in row]
    assert steps == [s for s, _ in expected(tracked_run)["tokenizer/train/loss"]]
