"""The during/after checklist lines and the advisor's FAQ rules, as pure functions."""
from __future__ import annotations

import random

import pytest

from kronos_train.advisor import diagnose, suggested_preset, write_suggested_preset
from kronos_train.checks import CheckResult
from kronos_train.checks.run import (check_gpu_utilisation, check_log_fresh, check_loss_falling,
                                     check_model_loads, check_models_saved, check_no_oom,
                                     check_val_falling, run_checks)
from kronos_train.checks.out_of_process import parse_check_output
from kronos_train.control.summary import summarize
from kronos_train.config import KronosConfig, load_preset, load_preset_strict
from synthetic_runs import RunSpec, write_run


def story(losses, vals=(), stage="basemodel", gpu_utils=(), errors=(), t0=1000.0, data_wait=0.02):
    recs = [{"t": t0, "event": "run_start", "schema": 1, "run_id": "r", "preset": "kaggle", "stages": [stage],
             "world_size": 8, "attempt": 0},
            {"t": t0, "event": "stage_start", "stage": stage, "attempt": 0, "epochs": 10, "steps_per_epoch": 100,
             "total_steps": 1000, "world_size": 8}]
    for i, loss in enumerate(losses, 1):
        recs.append({"t": t0 + i, "event": "step", "stage": stage, "attempt": 0, "step": i * 10, "epoch": i / 10,
                     "loss": loss, "lr": 4e-5, "data_wait": data_wait})
    for i, (step, val) in enumerate(vals):
        recs.append({"t": t0 + step, "event": "val", "stage": stage, "attempt": 0, "step": step, "epoch": i,
                     "val_loss": val, "best_val_loss": val, "improved": False, "baseline": i == 0})
    for i, util in enumerate(gpu_utils):
        recs.append({"t": t0 + i, "event": "gpu", "host": "n1", "gpus": [
            {"index": 0, "util": util, "mem_used_mb": 10000.0, "mem_total_mb": 80000.0}]})
    recs += [dict(e, t=t0 + 999) for e in errors]
    recs.sort(key=lambda r: r["t"])
    return summarize(recs)


def test_loss_falling_and_flat():
    assert check_loss_falling(story([3 - i * 0.01 for i in range(100)])).status == "ok"
    flat = check_loss_falling(story([2.0 + 0.001 * ((-1) ** i) for i in range(100)]))
    assert flat.status == "warn" and "lower it" in flat.hint
    assert check_loss_falling(story([1.0, 0.9])).status == "pending"


def test_tokenizer_losses_are_negative_and_still_fall():
    assert check_loss_falling(story([-0.01 - i * 0.0005 for i in range(60)], stage="tokenizer")).status == "ok"


def test_val_falling_warns_after_evaluations_without_progress():
    good = story([2.0] * 20, vals=[(0, 3.0), (100, 2.8), (200, 2.7)])
    assert check_val_falling(good).status == "ok"
    stuck = check_val_falling(story([2.0] * 20, vals=[(0, 3.0), (100, 2.6), (200, 2.7), (300, 2.8)]))
    assert stuck.status == "warn" and "2 evaluation" in stuck.detail and "2–5×" in stuck.hint


def test_gpu_utilisation_line():
    assert check_gpu_utilisation(story([1.0], gpu_utils=[95, 92, 97])).status == "ok"
    low = check_gpu_utilisation(story([1.0], gpu_utils=[40, 50, 45], data_wait=0.4))
    assert low.status == "warn" and "num_workers" in low.hint and "40%" in low.hint
    assert check_gpu_utilisation(story([1.0])).status == "skip"


def test_oom_line_carries_the_remedies():
    oom = {"event": "error", "kind": "oom", "stage": "basemodel", "message": "CUDA out of memory",
           "remedy": ["halve batch_size, double accumulation_steps", "bf16"]}
    result = check_no_oom(story([1.0], errors=[oom]))
    assert result.status == "error" and result.items == ["halve batch_size, double accumulation_steps", "bf16"]
    assert check_no_oom(story([1.0])).status == "ok"


def test_log_fresh_by_the_clock_and_the_supervisor():
    s = story([1.0, 0.9])
    assert check_log_fresh(s, now=s.last_t + 10, alive=True).status == "ok"
    assert check_log_fresh(s, now=s.last_t + 3600, alive=True).status == "warn"
    assert check_log_fresh(s, now=s.last_t + 10, alive=False).status == "error"


def test_after_checks_on_a_finished_run(tmp_path):
    run = write_run(tmp_path, RunSpec(val_losses={"tokenizer": [0.5, 0.4, 0.3, 0.35],
                                                  "basemodel": [3.0, 3.1, 3.2, 3.3]}))
    results = {r.id: r for r in run_checks(run, now=2e9)}
    assert results["run.models_saved"].status == "ok"
    beats = results["run.val_vs_baseline"]
    assert beats.status == "warn" and "basemodel" in beats.detail           # got worse than the start
    assert results["run.model_loads"].status == "pending"
    assert results["run.log_fresh"].status == "ok" and "ended" in results["run.log_fresh"].detail
    ok = check_model_loads([CheckResult("models.load", "x", "ok", "loaded 1 params")])
    bad = check_model_loads([CheckResult("models.load", "x", "error", "no config.json", "re-run")])
    assert ok.status == "ok" and bad.status == "error" and bad.hint == "re-run"


def test_models_missing_is_an_error(tmp_path):
    run = write_run(tmp_path, RunSpec(checkpoints=False))
    assert check_models_saved(summarize_of(run), run).status == "error"


def summarize_of(run):
    from kronos_train.control.summary import summarize_run

    return summarize_run(run)


def test_check_output_parser_tolerates_leading_noise():
    out = 'warning: something\n[{"id": "models.load", "title": "t", "status": "ok", "detail": "d", "extra": 1}]'
    results = parse_check_output(out)
    assert results[0].status == "ok" and results[0].detail == "d"
    with pytest.raises(ValueError):
        parse_check_output("Traceback (most recent call last):")


# --------------------------------------------------------------------------- advisor

def kaggle() -> KronosConfig:
    cfg = KronosConfig()
    cfg.distributed.num_gpus = 8
    return cfg


def test_plateau_suggests_a_lower_learning_rate():
    s = story([2.0] * 30, vals=[(0, 3.0), (100, 2.5), (200, 2.6), (300, 2.6), (400, 2.7)])
    (advice,) = [a for a in diagnose(s, kaggle()) if a.id == "basemodel-lr-down"]
    assert advice.change == {"training": {"predictor_learning_rate": 1e-05}}
    assert "2–5×" in advice.advice and "4e-05" in advice.advice


def test_oscillation_suggests_lr_and_accumulation_separately():
    rnd = random.Random(0)
    zigzag = [2.0 + (0.5 if i % 2 else -0.5) + rnd.uniform(-0.05, 0.05) for i in range(80)]
    ids = {a.id: a for a in diagnose(story(zigzag), kaggle())}
    assert ids["basemodel-lr-half"].change == {"training": {"predictor_learning_rate": 2e-05}}
    assert ids["basemodel-accumulate"].change == {"training": {"accumulation_steps": 2}}
    assert "32 × 8 GPU(s) × 1 = 256" in ids["basemodel-accumulate"].advice
    calm = [2.0 - 0.005 * i + rnd.uniform(-0.002, 0.002) for i in range(80)]
    assert not [a for a in diagnose(story(calm), kaggle()) if "oscill" in a.title.lower()]


def test_overfitting_suggests_weight_decay_and_fewer_epochs():
    falling = [2.5 - 0.01 * i for i in range(50)]
    s = story(falling, vals=[(0, 3.0), (100, 2.4), (200, 2.5), (300, 2.6), (400, 2.7)])
    ids = {a.id: a for a in diagnose(s, kaggle())}
    assert ids["basemodel-weight-decay"].change == {"training": {"adam_weight_decay": 0.2}}
    assert ids["basemodel-fewer-epochs"].change == {"training": {"basemodel_epochs": 1}}


def test_oom_shows_the_arithmetic_and_keeps_the_effective_batch():
    oom = {"event": "error", "kind": "oom", "stage": "basemodel", "message": "CUDA out of memory"}
    (advice,) = [a for a in diagnose(story([1.0], errors=[oom]), kaggle()) if a.id == "oom-batch"]
    assert advice.change == {"training": {"batch_size": 16, "accumulation_steps": 2}}
    assert "32 × 8 GPU(s) × 1 = 256 → 16 × 8 × 2 = 256 (unchanged)" in advice.advice
    cfg = kaggle()
    cfg.training.batch_size = 1
    (window,) = diagnose(story([1.0], errors=[oom]), cfg)
    assert window.change == {"data": {"lookback_window": 128}}


def test_low_utilisation_suggests_workers_then_batch():
    s = story([1.0] * 5, gpu_utils=[40, 50, 45], data_wait=0.5)
    ids = [a.id for a in diagnose(s, kaggle())]
    assert ids[:2] == ["gpu-workers", "gpu-batch"]
    busy = story([1.0] * 5, gpu_utils=[95, 96, 97])
    assert not [a for a in diagnose(busy, kaggle()) if a.id.startswith("gpu-")]


def test_written_preset_extends_the_parent_with_just_the_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = story([2.0] * 30, vals=[(0, 3.0), (100, 2.5), (200, 2.6), (300, 2.6), (400, 2.7)])
    advice = next(a for a in diagnose(s, kaggle()) if a.id == "basemodel-lr-down")
    folder = tmp_path / "presets"
    path = write_suggested_preset("kaggle", advice, folder)
    again = write_suggested_preset("kaggle", advice, folder)
    assert path.name == "kaggle-basemodel-lr-down.yaml" and again.name == "kaggle-basemodel-lr-down-2.yaml"
    assert suggested_preset("kaggle", advice) == {"extends": "kaggle",
                                                  "training": {"predictor_learning_rate": 1e-05}}
    cfg, problems = load_preset(path)
    assert cfg.training.predictor_learning_rate == pytest.approx(1e-5)
    assert cfg.training.batch_size == load_preset_strict("kaggle").training.batch_size
