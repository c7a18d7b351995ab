"""kronos-train's light commands: presets and check (exit codes, JSON, messages)."""
from __future__ import annotations

import json
import subprocess
import sys

from kronos_train.cli import main


def test_presets_lists_the_bundled_ones(capsys, user_presets):
    assert main(["presets", "--json"]) == 0
    names = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert names["low-memory"]["extends"] == "kaggle" and names["demo"]["state"] == "ok"


def test_check_exits_nonzero_on_errors_and_names_the_field(tmp_path, capsys, logs_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {batch_size: 0}\ndata: {data_path: nowhere.csv}\n")
    assert main(["check", "--config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "training.batch_size = 0: must be at least 1" in out
    assert "nowhere.csv does not exist" in out


def test_check_json_is_a_list_of_results(tmp_path, capsys, logs_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--config", "demo", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert {"config.valid", "data.present", "models.paths", "gpus.count", "batch.time"} <= {r["id"] for r in results}


def test_broken_yaml_gives_one_clear_line_not_a_traceback(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("data:\n  clip: [1, 2\n")
    proc = subprocess.run([sys.executable, "-m", "kronos_train.cli", "check", "--config", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "line 3" in proc.stdout or "line 2" in proc.stdout


def test_cli_help_does_not_import_torch():
    code = "import sys; from kronos_train.cli import main; main(['presets']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_check_run_judges_a_run_folder(logs_dir, capsys):
    from kronos_train.control.events import EventWriter, SCHEMA_VERSION

    run = logs_dir / "20260101-000000-demo"
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    with EventWriter(run / "events.jsonl") as w:
        w.emit("run_start", schema=SCHEMA_VERSION, run_id=run.name, preset="demo", stages=["tokenizer"], world_size=1, attempt=0)
        w.emit("stage_start", stage="tokenizer", attempt=0, epochs=2, steps_per_epoch=4, total_steps=8, world_size=1)
        for step in range(1, 9):
            w.emit("step", stage="tokenizer", attempt=0, step=step, epoch=step / 4, loss=1.0 / step, lr=1e-3)
        w.emit("stage_end", stage="tokenizer", status="completed")
        w.emit("run_end", status="completed")
    assert main(["check", "--run", "last", "--json"]) == 1          # finished, but no best/ model saved
    results = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert results["run.models_saved"]["status"] == "error"
    assert results["run.model_loads"]["status"] == "error"
    assert results["run.forecast_vs_baselines"]["status"] == "pending"
    assert main(["check", "--run", "nothing"]) == 2


def test_stop_at_step_plans_the_request_for_the_running_stage(logs_dir, capsys, monkeypatch):
    from kronos_train.control.runfolder import RunFolder
    run = RunFolder(logs_dir / "20260101-000000-demo")
    run.path.mkdir(parents=True)
    run.write_status(state="running", stage="basemodel")
    monkeypatch.setattr(RunFolder, "is_alive", lambda self: True)
    assert main(["stop", run.run_id, "--logs", str(logs_dir), "--at-step", "40"]) == 0
    assert "when the basemodel stage reaches step 40" in capsys.readouterr().out
    request = run.pending_request("stop")
    assert (request["stage"], request["at_step"]) == ("basemodel", 40) and run.immediate_request("stop") is None
    assert main(["stop", run.run_id, "--logs", str(logs_dir), "--early", "--at-step", "7", "--stage", "tokenizer"]) == 0
    assert (run.pending_request("early_stop")["stage"], run.pending_request("early_stop")["at_step"]) == ("tokenizer", 7)
    assert main(["stop", run.run_id, "--logs", str(logs_dir), "--abort", "--at-step", "3"]) == 2
    assert "without --abort" in capsys.readouterr().out and run.pending_request("abort") is None
    assert main(["status", run.run_id, "--logs", str(logs_dir)]) == 0
    details = capsys.readouterr().out
    assert "pending: early stop planned at tokenizer step 7" in details
    assert "pending: stop planned at basemodel step 40" in details


def test_status_table_fits_80_columns_without_wrapping(capsys, logs_dir, monkeypatch):
    from synthetic_runs import RunSpec, write_run

    write_run(logs_dir, RunSpec(run_id="20261127-190000-demo", finish=False, state="running", stop_at={"tokenizer": 60}))
    write_run(logs_dir, RunSpec(run_id="20261127-180000-demo"))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status", "--logs", str(logs_dir)]) == 0
    narrow = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in narrow) <= 80 and "interrupted" in narrow[1]
    assert "STARTED" not in narrow[0] and "launch time" in narrow[-1]
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["status", "--logs", str(logs_dir)]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert wide[0].endswith("STARTED") and len(wide) == 3
