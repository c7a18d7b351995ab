"""The real pipeline: `kronos-train run` trains a tiny pair on planted data, `evaluate` and `predict` use the run."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kronos_eval_helpers import HORIZON, LOOKBACK
from kronos_train.cli import main as cli
from kronos_train.checks.trained_model import check_forecast_vs_baselines, check_inference

PRESET = f"""
data: {{data_path: "{{data}}", lookback_window: {LOOKBACK}, predict_window: {HORIZON}, max_context: 64,
        train_ratio: 0.7, val_ratio: 0.3}}
training: {{tokenizer_epochs: 1, basemodel_epochs: 2, batch_size: 32, log_interval: 10, num_workers: 0, seed: 0,
            tokenizer_learning_rate: 0.003, predictor_learning_rate: 0.003, adam_weight_decay: 0.01,
            train_windows_per_epoch: 2560, val_windows: 128, scheduler: {{name: constant}}}}
model_paths: {{pretrained_tokenizer: "", pretrained_predictor: ""}}
architecture: {{tokenizer: tiny-tokenizer, predictor: tiny-predictor}}
experiment: {{name: tiny, pre_trained: false}}
device: {{use_cuda: false}}
distributed: {{num_gpus: 1}}
evaluation: {{horizon: {HORIZON}, sample_count: 1, max_windows: 64}}
"""


@pytest.mark.slow
def test_run_then_evaluate_then_predict(planted_csv: Path, tmp_path: Path, logs_dir: Path, capsys,
                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "tiny.yaml"
    preset.write_text(PRESET.replace("{data}", str(planted_csv)))
    assert cli(["run", "--config", str(preset), "--foreground"]) == 0
    (run,) = list(logs_dir.iterdir())
    capsys.readouterr()

    monkeypatch.delenv("KRONOS_LOGS_DIR")                 # runs are found through --logs alone
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert cli(["evaluate", "last"]) == 2                 # no ./logs here
    assert "logs" in capsys.readouterr().err
    assert cli(["evaluate", "last", "--logs", str(logs_dir)]) == 0
    result = json.loads((run / "eval.json").read_text())
    m = result["metrics"]
    assert result["horizon"] == HORIZON and result["windows"] == 64
    assert m["model"]["direction_accuracy"] >= 0.8, m
    assert m["model"]["direction_accuracy"] > max(m["always_up"]["direction_accuracy"],
                                                  m["majority"]["direction_accuracy"]) + 0.2
    assert check_inference(run).status == "ok"
    assert check_forecast_vs_baselines(run).status == "ok"

    ids = [f"ticker_{k}" for k in range(1, 17)]
    pd.DataFrame({"ID": ids, "Date": "2030-01-02"}).to_csv(tmp_path / "test.csv", index=False)
    code = cli(["predict", "--model", "last", "--logs", str(logs_dir), "--data", str(planted_csv), "--test", str(tmp_path / "test.csv"),
                "--out", str(tmp_path / "submission.csv"), "--horizon", str(HORIZON)])
    assert code == 0, capsys.readouterr().err
    sub = pd.read_csv(tmp_path / "submission.csv")
    assert list(sub["ID"]) == ids and set(sub["Pred"]) <= {0, 1}
    report = json.loads((tmp_path / "submission.csv.report.json").read_text())
    assert report["defaulted"] == 0 and report["lookback_window"] == LOOKBACK      # the run's config was used
