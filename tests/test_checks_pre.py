"""The "before training" checklist as pure functions."""
from __future__ import annotations

import json
from pathlib import Path

from kronos_train.architectures import ARCHITECTURES, count_params
from kronos_train.checks import has_errors, worst
from kronos_train.checks import pre
from kronos_train.config import KronosConfig, load_preset_strict

from fake_nvml import FakeGpu, FakeNvml


def model_folder(root: Path, name: str, arch: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(ARCHITECTURES[arch].config))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def kaggle_cfg(tmp_path: Path, tokenizer="Kronos-Tokenizer-base", predictor="Kronos-small") -> KronosConfig:
    cfg = load_preset_strict("kaggle")
    cfg.model_paths.pretrained_tokenizer = str(model_folder(tmp_path, "tok", tokenizer))
    cfg.model_paths.pretrained_predictor = str(model_folder(tmp_path, "pred", predictor))
    return cfg


def test_published_parameter_counts():
    assert count_params(ARCHITECTURES["Kronos-mini"].config) == 4_108_032
    assert count_params(ARCHITECTURES["Kronos-small"].config) == 24_741_376
    assert count_params(ARCHITECTURES["Kronos-base"].config) == 102_310_592
    assert count_params(ARCHITECTURES["Kronos-Tokenizer-base"].config) == 3_958_042


def test_model_paths_ok_for_a_matching_pair(tmp_path):
    result = pre.check_model_paths(kaggle_cfg(tmp_path))
    assert result.status == "ok" and "24,741,376" in result.detail


def test_swapped_model_paths_are_named(tmp_path):
    cfg = kaggle_cfg(tmp_path)
    cfg.model_paths.pretrained_tokenizer, cfg.model_paths.pretrained_predictor = \
        cfg.model_paths.pretrained_predictor, cfg.model_paths.pretrained_tokenizer
    result = pre.check_model_paths(cfg)
    assert result.status == "error" and "swap the two paths" in result.detail


def test_mismatched_bits_and_context(tmp_path):
    cfg = kaggle_cfg(tmp_path, tokenizer="tiny-tokenizer", predictor="Kronos-small")
    result = pre.check_model_paths(cfg)
    assert result.status == "error" and any("do not match" in i for i in result.items)
    ok_pair = pre.pair_problems(ARCHITECTURES["Kronos-Tokenizer-base"].config, ARCHITECTURES["Kronos-small"].config, 1024, 300)
    assert [level for level, _ in ok_pair] == ["warning"] and "512" in ok_pair[0][1]


def test_missing_or_incomplete_folders(tmp_path):
    cfg = kaggle_cfg(tmp_path)
    (Path(cfg.model_paths.pretrained_predictor) / "model.safetensors").unlink()
    cfg.model_paths.pretrained_tokenizer = str(tmp_path / "nowhere")
    detail = pre.check_model_paths(cfg).detail
    assert "nowhere does not exist" in detail and "download is incomplete" in detail


def test_gpu_count_against_request(tmp_path):
    cfg = kaggle_cfg(tmp_path)
    cfg.distributed.num_gpus = 4
    assert pre.check_gpus(cfg, FakeNvml()).status == "error"
    cfg.distributed.num_gpus = 2
    busy = FakeNvml([FakeGpu(mem_used=70 * 2**30), FakeGpu()])
    assert pre.check_gpus(cfg, busy).status == "warn"             # another job holds GPU 0
    assert pre.check_gpus(cfg, FakeNvml()).status == "ok"
    assert pre.check_gpus(cfg, FakeNvml(missing_library=True)).status == "warn"
    cfg.device.use_cuda = False
    assert pre.check_gpus(cfg, FakeNvml()).status == "info"


def test_batch_and_time_arithmetic(tmp_path):
    cfg = kaggle_cfg(tmp_path)
    cfg.distributed.num_gpus, cfg.training.accumulation_steps = 8, 2
    report = type("R", (), {"n_train_windows": 100_000})()
    result = pre.check_batch_and_time(cfg, report)
    assert result.data["effective_batch"] == 32 * 8 * 2 == 512
    assert result.data["steps_per_epoch"] == 100_000 // 512
    assert "32 x 8 process(es) x 2 accumulation = 512" in result.detail
    hours = result.data["estimate_hours"]
    assert hours["basemodel"] > hours["tokenizer"] > 0
    tiny = type("R", (), {"n_train_windows": 100})()
    assert pre.check_batch_and_time(cfg, tiny).status == "error"
    assert result.status == "info"
    total_minutes = 60 * (hours["tokenizer"] + hours["basemodel"])
    cfg.training.time_budget_minutes = total_minutes * 2
    assert pre.check_batch_and_time(cfg, report).status == "info"
    cfg.training.time_budget_minutes = total_minutes / 2
    over = pre.check_batch_and_time(cfg, report)
    assert over.status == "warn" and "time budget" in over.detail and "resume" in over.hint


def test_output_not_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = pre.check_output(KronosConfig(), blocker / "logs")
    assert result.status == "error"


def test_demo_preset_passes_the_light_checklist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = pre.run_pre_checks(load_preset_strict("demo"), logs_dir=tmp_path / "logs", nvml=FakeNvml(missing_library=True))
    assert not has_errors(results), [r for r in results if r.status == "error"]
    assert worst(results) in ("ok", "info", "skip", "warn")


def test_data_check_reports_the_pipeline_errors_and_figures(tmp_path, monkeypatch):
    from kronos_train.data.synthetic import write_synthetic

    monkeypatch.setenv("KRONOS_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_preset_strict("demo")
    cfg.data.data_path = str(tmp_path / "good.csv")
    write_synthetic(cfg.data.data_path, n_tickers=3, n_rows_per_ticker=200, seed=1)
    result = pre.check_data(cfg)
    assert result.status == "ok" and result.data["n_tickers"] == 3 and result.data["n_train_windows"] > 0
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume,Ticker\n2024-01-02,1,2,0.5,1.5,10,A\nnot-a-date,1,2,0.5,1.5,10,A\n")
    cfg.data.data_path = str(bad)
    result = pre.check_data(cfg)
    assert result.status == "error" and any("bad.csv" in item for item in result.items)


def test_checklist_fills_the_cache_the_launcher_reads(tmp_path, monkeypatch):
    """The checklist and the launcher share one parse cache: a file validated once is not parsed again."""
    from kronos_train.data import inspect_data
    from kronos_train.data.synthetic import write_synthetic
    from kronos_train.control.runfolder import data_cache_dir

    monkeypatch.delenv("KRONOS_CACHE_DIR", raising=False)
    logs = tmp_path / "logs"
    cfg = load_preset_strict("demo")
    cfg.data.data_path = str(tmp_path / "d.csv")
    write_synthetic(cfg.data.data_path, n_tickers=2, n_rows_per_ticker=150, seed=1)
    pre.run_pre_checks(cfg, logs_dir=logs, nvml=FakeNvml(missing_library=True))
    assert data_cache_dir(logs) == tmp_path / ".kronos-cache"
    assert inspect_data(pre.data_spec(cfg), cache_dir=data_cache_dir(logs)).cache == "hit"


def test_a_relative_base_path_says_which_folder_it_creates_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = KronosConfig()
    cfg.model_paths.base_path = "./kaggle_finetuned/"            # what the kaggle preset passes on
    result = pre.check_output(cfg, tmp_path / "logs")
    assert result.status == "warn" and "creates ./kaggle_finetuned/ in the working directory" in result.detail
    (tmp_path / "kaggle_finetuned").mkdir()
    assert pre.check_output(cfg, tmp_path / "logs").status == "ok"        # there already: nothing new
    cfg.model_paths.base_path = str(tmp_path / "models")
    assert pre.folder_created_here(cfg) is None                               # absolute: the user chose it
