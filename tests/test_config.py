"""The config tree: the seed's YAML unchanged, every problem at once, extends."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kronos_train import config as C

FIXTURE = Path(__file__).parent / "fixtures" / "kaggle_config.yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_seed_yaml_loads_unchanged_with_its_values():
    cfg, problems = C.load_preset(FIXTURE)
    assert C.errors_of(problems) == []
    # the only remark is the horizon mismatch the evaluation issue asks to flag
    assert [p.path for p in problems] == ["data.predict_window"]
    assert cfg.data.lookback_window == 256 and cfg.data.max_context == 512 and cfg.data.clip == 5.0
    assert cfg.training.tokenizer_learning_rate == pytest.approx(2e-4)   # YAML reads "2e-4" as text
    assert cfg.training.predictor_learning_rate == pytest.approx(4e-5)
    assert cfg.model_paths.pretrained_predictor == "/models/Kronos-base"
    assert cfg.experiment.train_tokenizer and cfg.device.use_cuda
    raw = yaml.safe_load(FIXTURE.read_text())
    for section, values in raw.items():
        for key, value in values.items():
            got = getattr(getattr(cfg, section), key)
            assert got == (float(value) if isinstance(got, float) else value), f"{section}.{key}"


def test_defaults_match_the_guide():
    cfg = C.KronosConfig()
    d, t = cfg.data, cfg.training
    assert (d.lookback_window, d.predict_window, d.max_context, d.clip, d.train_ratio, d.val_ratio) == (256, 1, 512, 5.0, 0.9, 0.1)
    assert (t.tokenizer_epochs, t.basemodel_epochs, t.batch_size, t.accumulation_steps) == (20, 15, 32, 1)
    assert (t.tokenizer_learning_rate, t.predictor_learning_rate) == (2e-4, 4e-5)
    assert t.scheduler.name == "onecycle" and t.precision == "fp32"


def test_official_epochs_alias_sets_both_stages(tmp_path):
    path = write(tmp_path, "p", "training: {epochs: 7}\ndata: {data_path: x.csv}\n"
                 "model_paths: {pretrained_tokenizer: a, pretrained_predictor: b}\n")
    cfg, problems = C.load_preset(path)
    assert cfg.training.tokenizer_epochs == cfg.training.basemodel_epochs == 7


def test_every_problem_comes_back_at_once_with_path_value_and_allowed(tmp_path):
    path = write(tmp_path, "bad", """
data: {data_path: x.csv, lookback_window: 0, clip: -1, train_ratio: 1.5}
training: {batch_size: many, precision: fp8, scheduler: {name: linear}, early_stopping: {patience: 0}}
distributed: {backend: mpi}
model_paths: {pretrained_tokenizer: a, pretrained_predictor: b}
""")
    _, problems = C.load_preset(path)
    by_path = {p.path: p for p in C.errors_of(problems)}
    for expected in ("data.lookback_window", "data.clip", "data.train_ratio", "training.batch_size",
                     "training.precision", "training.scheduler.name", "training.early_stopping.patience",
                     "distributed.backend"):
        assert expected in by_path, expected
    assert by_path["training.precision"].value == "fp8"
    assert "fp32, bf16, fp16" in by_path["training.precision"].message
    assert "onecycle" in by_path["training.scheduler.name"].message
    assert "whole number" in by_path["training.batch_size"].message
    assert all(p.source == str(path) for p in problems)
    assert str(by_path["data.clip"]).startswith(f"{path}: data.clip = -1.0")


def test_unknown_keys_are_errors_with_a_did_you_mean(tmp_path):
    path = write(tmp_path, "typo", "training:\n  learning_rate: 1e-4\n  batch_sise: 16\nmodel_path: {}\n")
    _, problems = C.load_preset(path)
    messages = {p.path: p.message for p in problems}
    assert "did you mean 'batch_size'" in messages["training.batch_sise"]
    assert "did you mean 'model_paths'" in messages["model_path"]
    assert "unknown key" in messages["training.learning_rate"]


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = write(tmp_path, "broken", "data:\n  clip: [1, 2\n")
    cfg, problems = C.load_preset(path)
    assert len(problems) == 1 and problems[0].path == "<yaml>"
    assert "line" in problems[0].message and problems[0].source == str(path)


def test_extends_chain_merges_deeply(tmp_path):
    write(tmp_path, "base", "data: {data_path: x.csv, lookback_window: 128}\ntraining: {batch_size: 16, seed: 1}\n"
          "model_paths: {pretrained_tokenizer: a, pretrained_predictor: b}\n")
    write(tmp_path, "mid", "extends: base\ntraining: {batch_size: 8}\n")
    child = write(tmp_path, "child", "extends: mid\ntraining: {seed: 3}\n")
    cfg, problems = C.load_preset(child)
    assert C.errors_of(problems) == []
    assert (cfg.data.lookback_window, cfg.training.batch_size, cfg.training.seed) == (128, 8, 3)
    assert cfg.extends == "mid"
    chain = [p.stem for p, _ in C.load_raw_chain(child)]
    assert chain == ["child", "mid", "base"]


def test_extends_cycles_and_missing_parents_are_refused(tmp_path):
    write(tmp_path, "a", "extends: b\n")
    write(tmp_path, "b", "extends: a\n")
    _, problems = C.load_preset(tmp_path / "a.yaml")
    assert problems[0].path == "extends" and "cycle" in problems[0].message
    orphan = write(tmp_path, "orphan", "extends: kagle\n")
    _, problems = C.load_preset(orphan)
    assert problems[0].path == "extends" and "did you mean 'kaggle'" in problems[0].message.lower()


def test_bundled_presets_load_and_say_what_the_guide_says(user_presets):
    names = {p.name for p in C.list_presets()}
    assert {"kaggle", "kaggle-8gpu", "low-memory", "progressive", "demo"} <= names
    for name in names:
        _, problems = C.load_preset(name)
        assert C.errors_of(problems) == [], name
    low = C.load_preset_strict("low-memory")
    assert (low.training.batch_size, low.training.accumulation_steps) == (16, 2)
    assert (low.data.lookback_window, low.data.max_context) == (128, 256)
    prog = C.load_preset_strict("progressive")
    assert (prog.training.tokenizer_learning_rate, prog.training.predictor_learning_rate) == (1e-4, 2e-5)
    assert prog.training.tokenizer_epochs == prog.training.basemodel_epochs == 10
    assert C.load_preset_strict("kaggle-8gpu").distributed.num_gpus == 8
    demo = C.load_preset_strict("demo")
    assert demo.data.synthetic.enabled and not demo.experiment.pre_trained_tokenizer


def test_user_presets_shadow_bundled_ones(user_presets):
    write(user_presets, "kaggle", "extends: progressive\n")
    info = {p.name: p for p in C.list_presets()}["kaggle"]
    assert info.path.parent == user_presets and info.origin == "user"


def test_save_diff_and_hash(tmp_path):
    cfg = C.KronosConfig()
    other = C.KronosConfig()
    other.training.batch_size = 64
    assert C.diff(cfg, other) == [("training.batch_size", 32, 64)]
    assert C.config_hash(cfg) != C.config_hash(other)
    path = C.save_preset(tmp_path / "out" / "x.yaml", C.to_dict(other))
    again, problems = C.from_dict(C.read_yaml(path))
    assert again == other


def test_pure_functions_do_not_touch_the_input():
    base = {"training": {"batch_size": 8}}
    merged = C.merge(base, {"training": {"seed": 1}})
    assert base == {"training": {"batch_size": 8}} and merged["training"] == {"batch_size": 8, "seed": 1}
