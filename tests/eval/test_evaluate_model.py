"""A tiny pair trained on planted-pattern data beats the baselines; the CLI writes eval.json and an eval event."""
from __future__ import annotations

import json

import pytest

from kronos_eval_helpers import HORIZON, make_run, tiny_config, write_preset
from kronos_train.cli import main as cli
from kronos_train.control.events import read_events, validate_record
from kronos_train.control.runfolder import RunFolder
from kronos_train.checks.trained_model import check_forecast_vs_baselines, check_inference
from kronos_train.evaluation import EvaluationError
from kronos_train.evaluation.forecasting import ForecastSettings
from kronos_train.evaluation.runner import EvaluationRequest, evaluate
from kronos_train.evaluation.sources import load_run_models, resolve_model_source


def run_evaluation(cfg, source, windows=128):
    settings = ForecastSettings.from_config(cfg, batch_size=64)
    return evaluate(EvaluationRequest(cfg, source, HORIZON, windows, settings))


def test_trained_model_beats_always_up_and_majority(tiny_pair, planted_csv):
    result = run_evaluation(tiny_config(planted_csv), resolve_model_source(tiny_pair))
    m = result["metrics"]
    model = m["model"]["direction_accuracy"]
    assert result["windows"] == 128 and result["horizon"] == HORIZON
    assert model >= 0.8, m
    for baseline in ("always_up", "majority", "majority_global", "persistence"):
        assert model > m[baseline]["direction_accuracy"] + 0.2, (baseline, m)
    assert m["model"]["mae_return"] < m["persistence"]["mae_return"]
    assert m["model"]["ce"] > 0 and m["model"]["failed_forecasts"] == 0
    # The baselines need no network and match their definitions on the same windows.
    truth = result["truth"]["up_share"]
    assert m["always_up"]["direction_accuracy"] == pytest.approx(truth)
    assert m["persistence"]["direction_accuracy"] == pytest.approx(1 - truth)


def test_evaluate_cli_on_a_run_writes_eval_json_and_event(tiny_pair, planted_csv, untrained_predictor, logs_dir,
                                                          capsys):
    tok, pred = tiny_pair
    run = make_run(logs_dir, tiny_config(planted_csv), tok, pred, pretrained_predictor=untrained_predictor)
    assert cli(["evaluate", str(run), "--windows", "48"]) == 0
    out = capsys.readouterr().out
    assert "always_up" in out and "pretrained" in out and "written:" in out
    result = json.loads((run / "eval.json").read_text())
    assert result["models"] == ["model", "pretrained", "always_up", "majority", "majority_global", "persistence"]
    assert result["model_paths"]["pretrained"]["predictor"] == str(untrained_predictor)
    assert any("tokenizer stage has no best/" in n for n in result["notes"])
    m = result["metrics"]
    assert m["model"]["direction_accuracy"] > m["pretrained"]["direction_accuracy"]
    assert m["model"]["ce"] < m["pretrained"]["ce"]
    event = [r for r in read_events(run / "events.jsonl") if r["event"] == "eval"][-1]
    assert validate_record(event) == []
    assert event["horizon"] == HORIZON and event["windows"] == 48 and event["path"] == str(run / "eval.json")
    assert event["metrics"]["model"]["direction_accuracy"] == m["model"]["direction_accuracy"]
    # The after-run checks read the same folder.
    assert check_forecast_vs_baselines(run).status == "ok"
    inference = check_inference(run)
    assert inference.status == "ok", inference.detail
    assert inference.id == "run.model_loads" and inference.phase == "after"


def test_evaluate_json_output_and_horizon_flag(tiny_pair, planted_csv, tmp_path, capsys):
    preset = write_preset(tmp_path / "tiny.yaml", tiny_config(planted_csv))
    out = tmp_path / "eval.json"
    code = cli(["evaluate", *map(str, tiny_pair), "--config", str(preset), "--horizon", "4", "--windows", "16",
                "--json", "--out", str(out)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["horizon"] == 4 and printed["windows"] == 16 and out.is_file()
    assert "pretrained" not in printed["metrics"]          # nothing known about the model before fine-tuning


def test_horizon_longer_than_the_validation_period_is_explained(tiny_pair, planted_csv):
    with pytest.raises(EvaluationError, match="no validation window for horizon 500.*Lower --horizon"):
        settings = ForecastSettings.from_config(tiny_config(planted_csv))
        evaluate(EvaluationRequest(tiny_config(planted_csv), resolve_model_source(tiny_pair), 500, 8, settings))


def test_model_folders_without_config_ask_for_one(tiny_pair, capsys):
    assert cli(["evaluate", *map(str, tiny_pair)]) == 2
    assert "pass --config PRESET" in capsys.readouterr().err


def test_bad_model_folders_are_named(tiny_pair, tmp_path, capsys):
    tok, _ = tiny_pair
    assert cli(["evaluate", str(tok)]) == 2
    assert "is a tokenizer folder; pass the predictor folder as well" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert cli(["evaluate", str(tok), str(broken)]) == 2
    assert f"{broken} is not a Kronos model folder" in capsys.readouterr().err
    assert cli(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "neither a run folder nor a model folder" in capsys.readouterr().err


def test_load_run_models_and_check_inference_on_a_broken_run(tiny_pair, planted_csv, logs_dir):
    tok, pred = tiny_pair
    run = make_run(logs_dir, tiny_config(planted_csv), tok, pred, run_id="20260101-000001-broken")
    tokenizer, predictor, info = load_run_models(run)
    assert info["predictor"] == str(run / "checkpoints" / "basemodel" / "best") and not predictor.training
    (run / "checkpoints" / "basemodel" / "best" / "model.safetensors").write_bytes(b"truncated")
    result = check_inference(run)
    assert result.status == "error" and "model.safetensors" in result.detail
    assert check_forecast_vs_baselines(RunFolder(run)).status == "pending"     # a RunFolder works too
