"""Published configurations: parameter counts (on the meta device, so no memory is used) and builders."""

from __future__ import annotations

import pytest
import torch

from kronos_train.model import (
    PUBLISHED_CONFIGS,
    Kronos,
    KronosTokenizer,
    build_predictor,
    build_tokenizer,
    predictor_parameter_count,
    tokenizer_parameter_count,
)

README_COUNTS = {
    "Kronos-Tokenizer-base": 3_958_042,
    "Kronos-Tokenizer-2k": 3_958_042,
    "Kronos-mini": 4_108_032,
    "Kronos-small": 24_741_376,
    "Kronos-base": 102_310_592,
}


def build_on_meta(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        kind = PUBLISHED_CONFIGS[name].kind
        return build_tokenizer(name) if kind == "tokenizer" else build_predictor(name)


@pytest.mark.parametrize("name", sorted(README_COUNTS))
def test_published_parameter_counts(name: str) -> None:
    model = build_on_meta(name)
    assert sum(p.numel() for p in model.parameters()) == README_COUNTS[name]
    entry = PUBLISHED_CONFIGS[name]
    count = tokenizer_parameter_count if entry.kind == "tokenizer" else predictor_parameter_count
    assert count(entry.config) == README_COUNTS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_CONFIGS))
def test_every_config_builds_and_matches_its_analytic_count(name: str) -> None:
    entry = PUBLISHED_CONFIGS[name]
    model = build_on_meta(name)
    assert isinstance(model, KronosTokenizer if entry.kind == "tokenizer" else Kronos)
    assert model.config == entry.config
    count = tokenizer_parameter_count if entry.kind == "tokenizer" else predictor_parameter_count
    assert sum(p.numel() for p in model.parameters()) == count(entry.config)


def test_published_contexts() -> None:
    assert PUBLISHED_CONFIGS["Kronos-mini"].context == 2048
    assert PUBLISHED_CONFIGS["Kronos-small"].context == PUBLISHED_CONFIGS["Kronos-base"].context == 512
    kind, config, context = PUBLISHED_CONFIGS["Kronos-small"]  # plain tuple unpacking works
    assert kind == "predictor" and config["d_model"] == 512 and context == 512


def test_block_counts_follow_the_official_rules() -> None:
    tok = build_on_meta("Kronos-Tokenizer-base")
    assert len(tok.encoder) == len(tok.decoder) == 3  # n_enc_layers - 1
    pred = build_on_meta("Kronos-base")
    assert len(pred.transformer) == 12
    assert pred.dep_layer.cross_attn.n_heads == 4 and pred.dep_layer.cross_attn.head_dim == 208


def test_builders_accept_dicts_and_reject_the_wrong_kind() -> None:
    config = dict(PUBLISHED_CONFIGS["tiny-tokenizer"].config)
    assert build_tokenizer(config).config == config
    with pytest.raises(ValueError, match="predictor config"):
        build_tokenizer("Kronos-small")
    with pytest.raises(ValueError, match="tokenizer config"):
        build_predictor(config)
    with pytest.raises(ValueError, match="unknown"):
        build_predictor("Kronos-huge")
    with pytest.raises(ValueError, match="missing keys"):
        build_predictor({"d_model": 8})


def test_learn_te_false_uses_frozen_sinusoidal_tables() -> None:
    config = dict(PUBLISHED_CONFIGS["tiny-predictor"].config, learn_te=False)
    model = build_predictor(config)
    table = model.time_emb.hour_embed.emb.weight
    assert not table.requires_grad
    assert torch.allclose(table[1, 0], torch.sin(torch.tensor(1.0)))  # not re-initialised (upstream P18)
    assert "time_emb.hour_embed.emb.weight" in model.state_dict()
