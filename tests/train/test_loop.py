"""The loop in-process (one process, no torchrun): early stopping on patience, accumulation,
a request seen at the next step, the status command's view of the run."""
from __future__ import annotations

import json

from kronos_train.cli import main as cli
from kronos_train.control.events import EventWriter, validate_story
from kronos_train.control.launch import create_run, load_run_config
from kronos_train.train.distributed import DistEnv
from kronos_train.train.stages import run_stage

from train_helpers import events, write_preset


def in_process(tmp_path, **changes):
    run = create_run(write_preset(tmp_path, **changes), tmp_path / "logs", num_gpus=1, skip_basemodel=True)
    EventWriter(run.events_path).emit("run_start", schema=1, run_id=run.run_id, preset="tiny", stages=["tokenizer"],
                                      world_size=1, attempt=0)
    status = run_stage(run, load_run_config(run), "tokenizer", 0, DistEnv())
    EventWriter(run.events_path).emit("run_end", status="completed", attempt=0)
    return run, status


def test_early_stopping_fires_after_patience_bad_evaluations(tmp_path):
    # min_delta larger than any possible gain: every pass after the baseline is a bad one.
    run, status = in_process(tmp_path, training={"tokenizer_epochs": 6, "train_windows_per_epoch": 64,
                                                 "early_stopping": {"patience": 2, "min_delta": 100.0}})
    assert status == "early_stopped"
    vals = events(run, "val")
    assert [(v["epoch"], v["improved"], v["bad_evals"]) for v in vals] == [(0, True, 0), (1, False, 1), (2, False, 2)]
    stop = events(run, "early_stop")[0]
    assert stop["reason"] == "patience" and stop["bad_evals"] == 2 and stop["patience"] == 2
    end = events(run, "stage_end")[0]
    assert end["status"] == "early_stopped" and end["best_val_loss"] == vals[0]["val_loss"]
    assert validate_story(events(run)) == []
    # Killed after the last checkpoint but before stage_end: a resume ends it the same way.
    assert run_stage(run, load_run_config(run), "tokenizer", 1, DistEnv()) == "early_stopped"
    assert not [r for r in events(run, "val") if r["attempt"] == 1]          # no more training
    assert {r["step"] for r in events(run, "step") if r["attempt"] == 1} <= {end["step"]}


def test_a_stage_killed_while_ending_on_an_early_stop_request_does_not_come_back(tmp_path):
    run = create_run(write_preset(tmp_path), tmp_path / "logs", num_gpus=1, skip_basemodel=True)
    run.request("early_stop", source="test", stage="tokenizer")
    cfg = load_run_config(run)
    assert run_stage(run, cfg, "tokenizer", 0, DistEnv()) == "early_stopped"
    assert run.pending_request("early_stop") is None
    assert run_stage(run, cfg, "tokenizer", 1, DistEnv()) == "early_stopped"
    assert not [r for r in events(run, "step") if r["attempt"] == 1]


def test_accumulation_counts_micro_batches_and_requests_are_acted_on_at_the_next_step(tmp_path):
    run = create_run(write_preset(tmp_path, training={"accumulation_steps": 2, "train_windows_per_epoch": 128}),
                     tmp_path / "logs", num_gpus=1, skip_basemodel=True)
    run.request("stop", source="test")
    status = run_stage(run, load_run_config(run), "tokenizer", 0, DistEnv())
    assert status == "stopped"
    assert run.pending_request("stop") is None, "honoured: no reader may show it as pending any more"
    start = events(run, "stage_start")[0]
    assert start["steps_per_epoch"] == 4 and start["global_batch"] == 32 and start["accumulation_steps"] == 2
    assert events(run, "stop")[0]["step"] == 1
    state = json.loads((run.checkpoint_dir("tokenizer", "last") / "train_state.json").read_text())
    assert (state["step"], state["batch_in_epoch"], state["epoch"]) == (1, 2, 0)   # two micro-batches used


def test_status_shows_the_table_and_the_details(tmp_path, capsys):
    run, _ = in_process(tmp_path, training={"tokenizer_epochs": 1, "train_windows_per_epoch": 64})
    run.write_status(state="completed", stage=None, attempt=0)
    logs = str(run.path.parent)
    assert cli(["status", "--logs", logs]) == 0
    table = capsys.readouterr().out
    assert run.run_id in table and "completed" in table
    assert cli(["status", run.run_id, "--logs", logs]) == 0
    details = capsys.readouterr().out
    assert "tokenizer" in details and "best val" in details and "step 4/4" in details
    assert cli(["status", run.run_id, "--logs", logs, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stages"]["tokenizer"]["status"] == "completed"
    assert cli(["stop", run.run_id, "--logs", logs]) == 1            # not running: nothing to stop


def test_fine_tuning_starts_from_pretrained_folders(tmp_path):
    """pre_trained: true loads model_paths.pretrained_* (official layout), both stages in-process."""
    import torch

    from kronos_train.architectures import resolve_architecture
    from kronos_train.model import build_predictor, build_tokenizer, load_tokenizer, save_pretrained

    torch.manual_seed(1)
    save_pretrained(build_tokenizer(resolve_architecture("tiny-tokenizer")), tmp_path / "pre-tok")
    save_pretrained(build_predictor(resolve_architecture("tiny-predictor")), tmp_path / "pre-pred")
    preset = write_preset(tmp_path, experiment={"pre_trained": True}, architecture={"tokenizer": "", "predictor": ""},
                          model_paths={"pretrained_tokenizer": str(tmp_path / "pre-tok"),
                                       "pretrained_predictor": str(tmp_path / "pre-pred")},
                          training={"tokenizer_epochs": 1, "basemodel_epochs": 1, "train_windows_per_epoch": 64})
    run = create_run(preset, tmp_path / "logs", num_gpus=1)
    cfg = load_run_config(run)
    start = load_tokenizer(tmp_path / "pre-tok").state_dict()
    assert run_stage(run, cfg, "tokenizer", 0, DistEnv()) == "completed"
    baseline = events(run, "val", "tokenizer")[0]
    tuned = load_tokenizer(run.checkpoint_dir("tokenizer", "best")).state_dict()
    assert any(not torch.equal(start[k], tuned[k]) for k in start)       # it trained from those weights
    assert run_stage(run, cfg, "basemodel", 0, DistEnv()) == "completed"
    state = json.loads((run.checkpoint_dir("basemodel", "last") / "train_state.json").read_text())
    assert state["tokenizer_path"] == str(run.checkpoint_dir("tokenizer", "best"))
    assert baseline["baseline"] and events(run, "stage_end", "basemodel")[0]["status"] == "completed"


def test_a_spent_time_budget_stops_the_stage_with_a_checkpoint_and_the_supervisor_between_stages(tmp_path):
    import time

    from kronos_train.control.supervisor import Supervisor

    run = create_run(write_preset(tmp_path, training={"time_budget_minutes": 30}), tmp_path / "logs", num_gpus=1,
                     skip_basemodel=True)
    cfg = load_run_config(run)
    assert run_stage(run, cfg, "tokenizer", 0, DistEnv(), deadline=time.time()) == "stopped"
    stop, end = events(run, "stop")[0], events(run, "stage_end")[0]
    assert (stop["kind"], stop["source"], stop["step"]) == ("stop", "time_budget", 1)
    assert "time budget of 30 min reached at step 1; resumable" == end["message"]
    assert run.has_committed_checkpoint("tokenizer")
    # The next attempt has its own budget and picks up at step 1.
    assert run_stage(run, cfg, "tokenizer", 1, DistEnv(), deadline=time.time() + 3600) == "completed"
    assert events(run, "stage_start")[-1]["resumed_from"] == 1
    # The supervisor: the deadline goes to every worker, and a spent budget starts no stage.
    supervisor = Supervisor(run, resume=True, foreground=False)
    assert abs(supervisor.deadline - supervisor.started - 1800) < 1e-6
    command = supervisor.torchrun_command("tokenizer")
    assert command[-2:] == ["--deadline", f"{supervisor.deadline:.3f}"]
    supervisor.deadline = time.time() - 1
    run.write_status(stages={})
    supervisor.resume = False                       # nothing finished earlier: the tokenizer would start
    assert supervisor.execute() == "stopped" and supervisor.budget_reached
    assert "the time budget is spent" in events(run, "log")[-1]["message"]
