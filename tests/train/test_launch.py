"""Launching validates first (a bad preset launches nothing), the skip flags behave like the
seed's train_kaggle.sh, and resume refuses when exactness would break."""
from __future__ import annotations

import fcntl
import os

import pytest
import yaml

from kronos_train.cli import main as cli
from kronos_train.config import config_hash, to_dict
from kronos_train.control.launch import (LaunchError, basemodel_tokenizer, create_run, data_fingerprint, load_run_config,
                                         official_best_model, resume_problems, skip_reason)
from kronos_train.control.runfolder import RunFolder

from train_helpers import write_preset


def runs_in(logs):
    return [p for p in logs.iterdir()] if logs.exists() else []


def test_a_bad_preset_launches_nothing_and_says_why(tmp_path, capsys):
    logs = tmp_path / "logs"
    bad = write_preset(tmp_path, "bad", training={"batch_size": 0, "scheduler": {"name": "sometimes"}})
    with pytest.raises(LaunchError) as err:
        create_run(bad, logs)
    text = "\n".join(err.value.problems)
    assert "training.batch_size = 0: must be at least 1" in text and "training.scheduler.name" in text
    assert runs_in(logs) == []
    assert cli(["run", "--config", str(bad), "--logs", str(logs)]) == 2
    out = capsys.readouterr().out
    assert "nothing was started" in out and "training.batch_size" in out and "Traceback" not in out
    assert runs_in(logs) == []


def test_bad_data_and_missing_models_launch_nothing(tmp_path):
    logs = tmp_path / "logs"
    csv = tmp_path / "broken.csv"
    csv.write_text("timestamps,open,high,low,close\n2024-01-02,1,2,0.5,x\n")
    preset = write_preset(tmp_path, "baddata", data={"data_path": str(csv), "synthetic": {"enabled": False}})
    with pytest.raises(LaunchError) as err:
        create_run(preset, logs)
    assert any("broken.csv" in p for p in err.value.problems)
    nomodel = write_preset(tmp_path, "nomodel", experiment={"pre_trained": True},
                           model_paths={"pretrained_tokenizer": str(tmp_path / "nowhere"),
                                        "pretrained_predictor": str(tmp_path / "nowhere2")})
    with pytest.raises(LaunchError) as err:
        create_run(nomodel, logs)
    assert any("nowhere" in p for p in err.value.problems)
    mismatch = write_preset(tmp_path, "mismatch", architecture={"predictor": "Kronos-mini"})
    with pytest.raises(LaunchError) as err:
        create_run(mismatch, logs)
    assert any("bits" in p for p in err.value.problems)       # 6-bit tokenizer, 10-bit predictor
    assert runs_in(logs) == []


def test_create_run_writes_the_resolved_config_with_the_flags(tmp_path):
    logs = tmp_path / "logs"
    run = create_run(write_preset(tmp_path), logs, num_gpus=1, skip_basemodel=True, time_budget_minutes=510)
    raw = yaml.safe_load(run.config_path.read_text())
    assert raw["distributed"]["num_gpus"] == 1 and raw["experiment"]["train_basemodel"] is False
    assert raw["training"]["time_budget_minutes"] == 510
    assert os.path.isabs(raw["data"]["data_path"]) and (tmp_path / "data" / "tiny.csv").is_file()   # generated
    assert (run.path / "preset.txt").read_text().strip().endswith("tiny.yaml")
    assert run.state() == "pending" and not run.status_path.exists()


def official_model(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")


def test_skip_flags_follow_the_seed_script(tmp_path):
    cfg = load_run_config(create_run(write_preset(tmp_path, model_paths={"base_path": str(tmp_path / "out")}),
                                     tmp_path / "logs"))
    assert official_best_model(cfg, "tokenizer") == tmp_path / "out" / "tiny" / "tokenizer" / "best_model"
    assert skip_reason(cfg, "tokenizer") is None and skip_reason(cfg, "basemodel") is None
    cfg.experiment.train_tokenizer = False                              # --skip-tokenizer
    assert "--skip-tokenizer" in skip_reason(cfg, "tokenizer")
    cfg.experiment.train_tokenizer, cfg.experiment.skip_existing = True, True   # --skip-existing
    assert skip_reason(cfg, "tokenizer") is None                        # nothing exists yet
    official_model(official_best_model(cfg, "tokenizer"))
    assert "--skip-existing" in skip_reason(cfg, "tokenizer") and skip_reason(cfg, "basemodel") is None
    assert basemodel_tokenizer(cfg) == official_best_model(cfg, "tokenizer")
    official_model(official_best_model(cfg, "basemodel"))
    preset = write_preset(tmp_path, "done", model_paths={"base_path": str(tmp_path / "out")})
    with pytest.raises(LaunchError, match="every stage is skipped"):
        create_run(preset, tmp_path / "logs", skip_existing=True)


def test_skip_tokenizer_needs_a_tokenizer_for_the_basemodel(tmp_path):
    with pytest.raises(LaunchError) as err:
        create_run(write_preset(tmp_path), tmp_path / "logs", skip_tokenizer=True)
    assert any("needs a trained tokenizer" in p for p in err.value.problems)


def fake_checkpoint(run: RunFolder, stage: str, world_size: int, **train_state) -> None:
    """A committed last/ whose train_state says what it was taken under."""
    cfg = load_run_config(run)
    last = run.checkpoint_dir(stage, "last")
    import json

    from kronos_train.control.commit import aside_dir, commit_dir

    staged = aside_dir(last.parent, "last", 4)
    (staged / "train_state.json").write_text(json.dumps({"world_size": world_size, "config_hash": config_hash(cfg),
                                                         "config": to_dict(cfg), **train_state}))
    commit_dir(staged, last, 4)


def test_resume_refuses_what_breaks_exactness(tmp_path):
    run = create_run(write_preset(tmp_path), tmp_path / "logs")
    assert any("no committed checkpoint" in p for p in resume_problems(run))
    fake_checkpoint(run, "tokenizer", world_size=2)
    run.write_status(state="stopped", attempt=0)
    assert resume_problems(run) == []
    # a field that does not change the numbers is fine ...
    raw = yaml.safe_load(run.config_path.read_text())
    raw["experiment"]["description"] = "renamed"
    raw["training"]["checkpoint_every_steps"] = 50
    run.config_path.write_text(yaml.safe_dump(raw))
    assert resume_problems(run) == []
    # ... the learning rate or the process count is not
    raw["training"]["tokenizer_learning_rate"] = 0.01
    raw["distributed"]["num_gpus"] = 4
    run.config_path.write_text(yaml.safe_dump(raw))
    text = "\n".join(resume_problems(run))
    assert "taken with 2 process(es)" in text and "tokenizer_learning_rate: 0.002 -> 0.01" in text
    assert cli(["resume", str(run.path)]) == 2


def test_resume_refuses_a_changed_data_file(tmp_path):
    run = create_run(write_preset(tmp_path), tmp_path / "logs")
    fake_checkpoint(run, "tokenizer", world_size=2, data_file=data_fingerprint(load_run_config(run)))
    run.write_status(state="stopped")
    assert resume_problems(run) == []
    with open(tmp_path / "data" / "tiny.csv", "a") as fh:
        fh.write("\n")
    assert any("is not the file the checkpoint was trained on" in p for p in resume_problems(run))


def test_resume_refuses_running_and_completed_runs(tmp_path):
    run = create_run(write_preset(tmp_path), tmp_path / "logs")
    fake_checkpoint(run, "tokenizer", world_size=2)
    run.write_status(state="running")
    fd = os.open(run.lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert any("still running" in p for p in resume_problems(run))
    finally:
        os.close(fd)
    run.write_status(state="completed")
    assert any("has completed" in p for p in resume_problems(run))


def test_launch_module_stays_light():
    import subprocess
    import sys

    code = "import sys, kronos_train.control.launch, kronos_train.control.supervisor; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_run_refuses_a_negative_time_budget_and_names_the_field(tmp_path, capsys):
    from kronos_train.cli import main as cli

    code = cli(["run", "--config", str(write_preset(tmp_path)), "--logs", str(tmp_path / "logs"), "--time-budget", "-5"])
    assert code == 2
    out = capsys.readouterr().out
    assert "nothing was started" in out and "training.time_budget_minutes = -5.0" in out
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


def test_a_resume_may_bring_another_time_budget_without_breaking_exactness(tmp_path, capsys):
    import time

    from kronos_train.control.launch import set_time_budget
    from kronos_train.train.distributed import DistEnv
    from kronos_train.train.stages import run_stage

    run = create_run(write_preset(tmp_path, training={"time_budget_minutes": 30}), tmp_path / "logs", num_gpus=1,
                     skip_basemodel=True)
    assert run_stage(run, load_run_config(run), "tokenizer", 0, DistEnv(), deadline=time.time()) == "stopped"
    run.write_status(state="stopped")
    assert resume_problems(run) == []
    set_time_budget(run, 45)                                  # the next session is shorter
    assert load_run_config(run).training.time_budget_minutes == 45
    assert resume_problems(run) == []                         # a budget never changes what is computed
    with pytest.raises(LaunchError):
        set_time_budget(run, -1)
    assert cli(["resume", run.run_id, "--logs", str(tmp_path / "logs"), "--time-budget", "-1"]) == 2
    assert "give minutes" in capsys.readouterr().out
    assert load_run_config(run).training.time_budget_minutes == 45
