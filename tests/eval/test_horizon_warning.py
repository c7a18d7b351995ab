"""The checklist warns when data.predict_window and evaluation.horizon disagree (the guide's 1 vs Kaggle's 30)."""
from __future__ import annotations

import json

from kronos_train.cli import main as cli
from kronos_train.config import KronosConfig, dump_yaml, validate

MESSAGE = "differs from evaluation.horizon"


def horizon_warnings(cfg: KronosConfig) -> list:
    return [p for p in validate(cfg) if p.path == "data.predict_window" and p.level == "warning"]


def test_validate_warns_only_when_they_differ():
    cfg = KronosConfig()
    cfg.data.predict_window, cfg.evaluation.horizon = 1, 30
    (problem,) = horizon_warnings(cfg)
    assert MESSAGE in problem.message and "30" in problem.message
    cfg.data.predict_window = 30
    assert horizon_warnings(cfg) == []


def test_check_command_shows_the_warning_for_the_kaggle_preset(capsys, user_presets):
    assert cli(["check", "--config", "kaggle", "--only", "config"]) == 0
    out = capsys.readouterr().out
    assert "WARN" in out and "data.predict_window = 1" in out and MESSAGE in out


def test_check_json_carries_the_warning_and_none_when_aligned(tmp_path, capsys, user_presets):
    cfg = KronosConfig()
    cfg.data.data_path = "train.csv"
    cfg.model_paths.pretrained_tokenizer = cfg.model_paths.pretrained_predictor = "models"
    cfg.data.predict_window, cfg.evaluation.horizon = 5, 30
    preset = tmp_path / "p.yaml"
    preset.write_text(dump_yaml(cfg))
    assert cli(["check", "--config", str(preset), "--only", "config", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["status"] == "warn" and any(MESSAGE in item for item in result["items"])
    cfg.data.predict_window = 30
    preset.write_text(dump_yaml(cfg))
    assert cli(["check", "--config", str(preset), "--only", "config", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert not any(MESSAGE in item for item in result["items"])
