"""Checkpoint I/O: byte format of the official folders, round trips, loader errors, pair checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from kronos_train.model import (
    Kronos,
    KronosTokenizer,
    ModelLoadError,
    PairProblem,
    build_predictor,
    build_tokenizer,
    check_pair,
    load_model,
    load_predictor,
    load_tokenizer,
    save_pretrained,
)
from kronos_train.model.checkpoint import MODEL_CARD

KINDS = ("tokenizer", "predictor")


def safetensors_keys(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


@pytest.fixture()
def copied(ref_dir: Path, tmp_path: Path):
    """Writable copies of the fixture checkpoint folders."""
    def copy(kind: str) -> Path:
        target = tmp_path / kind
        shutil.copytree(ref_dir / kind, target)
        for f in target.iterdir():
            f.chmod(0o644)
        return target
    return copy


# --------------------------------------------------------------------------- format and round trip


@pytest.mark.parametrize("kind", KINDS)
def test_resave_is_byte_identical_to_official(ref_dir: Path, tmp_path: Path, kind: str) -> None:
    model = load_model(ref_dir / kind)
    save_pretrained(model, tmp_path / "out")
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "out" / name).read_bytes() == (ref_dir / kind / name).read_bytes(), name
    assert (tmp_path / "out" / "README.md").read_text() == MODEL_CARD
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "config.json", "model.safetensors"]


@pytest.mark.parametrize("kind", KINDS)
def test_fresh_model_has_official_key_set(ref_dir: Path, tmp_path: Path, kind: str) -> None:
    config = json.loads((ref_dir / kind / "config.json").read_text())
    model = KronosTokenizer(**config) if kind == "tokenizer" else Kronos(**config)
    save_pretrained(model, tmp_path)
    assert safetensors_keys(tmp_path / "model.safetensors") == safetensors_keys(ref_dir / kind / "model.safetensors")


@pytest.mark.parametrize("kind", KINDS)
def test_config_json_written_like_the_mixin(tmp_path: Path, kind: str) -> None:
    model = build_tokenizer("tiny-tokenizer") if kind == "tokenizer" else build_predictor("tiny-predictor")
    save_pretrained(model, tmp_path)
    text = (tmp_path / "config.json").read_text()
    assert text == json.dumps(model.config, sort_keys=True, indent=2)
    assert not text.endswith("\n")
    assert '"ffn_dropout_p": 0.' in text  # floats stay floats (0.0, not 0)


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tok, pred = build_tokenizer("tiny-tokenizer").eval(), build_predictor("tiny-predictor").eval()
    x = torch.randn(2, 12, 6)
    stamp = torch.stack([torch.randint(0, n, (2, 12)) for n in (60, 24, 7, 32, 13)], -1).float()
    save_pretrained(tok, tmp_path / "tok")
    save_pretrained(pred, tmp_path / "pred")
    tok2, pred2 = load_tokenizer(tmp_path / "tok"), load_predictor(tmp_path / "pred")
    assert not tok2.training and not pred2.training
    with torch.no_grad():
        (a_pre, a), a_loss, a_q, a_idx = tok(x)
        (b_pre, b), b_loss, b_q, b_idx = tok2(x)
        s1, s2 = tok.encode(x, half=True)
        assert torch.equal(a, b) and torch.equal(a_pre, b_pre) and torch.equal(a_idx, b_idx) and torch.equal(a_loss, b_loss)
        assert torch.equal(pred.decode_s1(s1, s2, stamp)[0], pred2.decode_s1(s1, s2, stamp)[0])
    assert tok2.config == tok.config and pred2.config == pred.config


def test_save_unwraps_ddp_style_module(tmp_path: Path) -> None:
    class Wrapper(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.module = inner

    tok = build_tokenizer("tiny-tokenizer")
    save_pretrained(Wrapper(tok), tmp_path)
    assert set(load_file(str(tmp_path / "model.safetensors"))) == set(tok.state_dict())


def test_loads_pytorch_model_bin_and_tolerates_missing_constant_buffers(ref_dir: Path, copied) -> None:
    folder = copied("tokenizer")
    state = load_file(str(folder / "model.safetensors"))
    constants = [k for k in state if k.endswith("rotary.inv_freq") or k.startswith("tokenizer.bsq.")]
    assert constants
    for k in constants:
        del state[k]
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    reference = load_tokenizer(ref_dir / "tokenizer")
    loaded = load_tokenizer(folder)
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_load_model_detects_kind(ref_dir: Path) -> None:
    assert isinstance(load_model(ref_dir / "tokenizer"), KronosTokenizer)
    assert isinstance(load_model(ref_dir / "predictor"), Kronos)


# --------------------------------------------------------------------------- loader errors


def load_error(loader, path: Path) -> str:
    with pytest.raises(ModelLoadError) as info:
        loader(path)
    message = str(info.value)
    assert str(path) in message or str(path.parent) in message, message
    return message


def test_model_load_error_is_a_value_error() -> None:
    assert issubclass(ModelLoadError, ValueError)


def test_missing_path(tmp_path: Path) -> None:
    assert "does not exist" in load_error(load_tokenizer, tmp_path / "nowhere")


def test_path_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    assert "not a checkpoint folder" in load_error(load_predictor, path)


def test_no_config_json(tmp_path: Path) -> None:
    assert "config.json is missing" in load_error(load_model, tmp_path)


def test_config_json_not_json(copied) -> None:
    folder = copied("predictor")
    (folder / "config.json").write_text("{not json")
    assert "not valid JSON" in load_error(load_predictor, folder)


def test_tokenizer_folder_given_as_predictor(copied) -> None:
    message = load_error(load_predictor, copied("tokenizer"))
    assert "holds a Kronos tokenizer" in message and "predictor was expected" in message


def test_predictor_folder_given_as_tokenizer(copied) -> None:
    message = load_error(load_tokenizer, copied("predictor"))
    assert "holds a Kronos predictor" in message and "tokenizer was expected" in message


def test_config_of_unknown_model(copied) -> None:
    folder = copied("predictor")
    (folder / "config.json").write_text(json.dumps({"hidden_size": 8}))
    assert "neither a Kronos tokenizer nor a Kronos predictor" in load_error(load_model, folder)


def test_missing_weights_file(copied) -> None:
    folder = copied("tokenizer")
    (folder / "model.safetensors").unlink()
    assert "no weights" in load_error(load_tokenizer, folder)


def test_missing_and_unexpected_keys(copied) -> None:
    folder = copied("predictor")
    state = load_file(str(folder / "model.safetensors"))
    state["extra.weight"] = torch.zeros(1)
    del state["head.proj_s1.weight"]
    save_file(state, str(folder / "model.safetensors"))
    message = load_error(load_predictor, folder)
    assert "missing keys: head.proj_s1.weight" in message and "unexpected keys: extra.weight" in message


def test_shape_mismatch(copied) -> None:
    folder = copied("predictor")
    state = load_file(str(folder / "model.safetensors"))
    state["norm.weight"] = torch.ones(3)
    save_file(state, str(folder / "model.safetensors"))
    message = load_error(load_predictor, folder)
    assert "norm.weight" in message and "[3]" in message


def test_weights_from_another_size(copied) -> None:
    folder = copied("tokenizer")
    config = json.loads((folder / "config.json").read_text())
    config["d_model"] *= 2
    (folder / "config.json").write_text(json.dumps(config))
    assert "shape mismatch" in load_error(load_tokenizer, folder)


# --------------------------------------------------------------------------- pair check


def config(name: str) -> dict:
    from kronos_train.model import PUBLISHED_CONFIGS

    return PUBLISHED_CONFIGS[name].config


def test_matching_pair_has_no_problems(ref_dir: Path) -> None:
    assert check_pair(load_tokenizer(ref_dir / "tokenizer"), load_predictor(ref_dir / "predictor")) == []
    assert check_pair(config("Kronos-Tokenizer-base"), config("Kronos-small"), max_context=512) == []


def test_bit_mismatch_is_an_error_naming_the_folders(ref_dir: Path) -> None:
    tok = load_tokenizer(ref_dir / "tokenizer")
    pred = build_predictor("tiny-predictor")
    problems = check_pair(tok, pred)
    errors = [p for p in problems if p.level == "error"]
    assert {"s1_bits", "s2_bits"} <= {p.message.split()[0] for p in errors}
    assert all(str(ref_dir / "tokenizer") in p.message for p in errors)
    assert all(isinstance(p, PairProblem) and p.hint for p in problems)


def test_context_above_published_is_a_warning() -> None:
    problems = check_pair(config("Kronos-Tokenizer-base"), config("Kronos-small"), max_context=1024)
    assert [p.level for p in problems] == ["warning"]
    assert "512" in problems[0].message and "Kronos-small" in problems[0].message
    assert check_pair(config("Kronos-Tokenizer-2k"), config("Kronos-mini"), max_context=2048) == []


def test_mini_with_base_tokenizer_is_a_warning() -> None:
    problems = check_pair(config("Kronos-Tokenizer-base"), config("Kronos-mini"))
    assert [p.level for p in problems] == ["warning"]
    assert "Kronos-Tokenizer-2k" in problems[0].message


def test_no_context_warning_for_local_presets() -> None:
    assert check_pair(config("tiny-tokenizer"), config("tiny-predictor"), max_context=4096) == []
    assert check_pair(config("tiny-tokenizer"), config("tiny-predictor"), max_context=0)[0].level == "error"
