"""KronosPredictor / forecast_normalized behaviour beyond the reference fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kronos_train.model import (
    KronosPredictor,
    forecast_normalized,
    load_predictor,
    load_tokenizer,
    sample_from_logits,
)

GREEDY = dict(T=1.0, top_k=1, top_p=1.0, sample_count=1)
COLUMNS = ["open", "high", "low", "close", "volume", "amount"]


@pytest.fixture()
def models(ref_dir: Path):
    return load_tokenizer(ref_dir / "tokenizer"), load_predictor(ref_dir / "predictor")


@pytest.fixture()
def predictor(models) -> KronosPredictor:
    tok, pred = models
    return KronosPredictor(pred, tok, device="cpu", max_context=16)


def make_series(rows: int, pred_len: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, rows))
    df = pd.DataFrame({
        "open": close + rng.normal(0, 0.1, rows), "high": close + 1, "low": close - 1, "close": close,
        "volume": rng.uniform(100, 200, rows), "amount": rng.uniform(1e4, 2e4, rows),
    })
    stamps = pd.Series(pd.date_range("2024-03-01 09:30", periods=rows + pred_len, freq="5min"))
    return df, stamps[:rows].reset_index(drop=True), stamps[rows:].reset_index(drop=True)


def test_models_are_put_in_eval_mode(models) -> None:
    tok, pred = models
    tok.train(), pred.train()
    KronosPredictor(pred, tok)
    assert not tok.training and not pred.training


def test_seeded_sampling_is_reproducible(predictor) -> None:
    df, x_ts, y_ts = make_series(30, 5)
    sampled = dict(T=1.0, top_k=0, top_p=0.9, sample_count=2)
    a = predictor.predict(df, x_ts, y_ts, 5, seed=7, **sampled)
    b = predictor.predict(df, x_ts, y_ts, 5, seed=7, **sampled)
    c = predictor.predict(df, x_ts, y_ts, 5, seed=8, **sampled)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert list(a.columns) == COLUMNS and (a.index == pd.DatetimeIndex(y_ts)).all()


def test_timestamps_as_datetimeindex_or_list(predictor) -> None:
    df, x_ts, y_ts = make_series(20, 4)
    ref = predictor.predict(df, x_ts, y_ts, 4, **GREEDY)
    via_index = predictor.predict(df, pd.DatetimeIndex(x_ts), pd.DatetimeIndex(y_ts), 4, **GREEDY)
    via_list = predictor.predict(df, list(x_ts), list(y_ts), 4, **GREEDY)
    np.testing.assert_array_equal(ref.to_numpy(), via_index.to_numpy())
    np.testing.assert_array_equal(ref.to_numpy(), via_list.to_numpy())


def test_batch_with_different_history_lengths_equals_single_predictions(predictor) -> None:
    series = [make_series(20, 3, seed=1), make_series(26, 3, seed=2), make_series(20, 3, seed=3)]
    batch = predictor.predict_batch([s[0] for s in series], [s[1] for s in series], [s[2] for s in series], 3, **GREEDY)
    for (df, x_ts, y_ts), got in zip(series, batch):
        single = predictor.predict(df, x_ts, y_ts, 3, **GREEDY)
        np.testing.assert_allclose(got.to_numpy(), single.to_numpy(), rtol=1e-5, atol=1e-4)


def test_greedy_sample_paths_average_to_the_single_path(predictor) -> None:
    df, x_ts, y_ts = make_series(20, 3)
    one = predictor.predict(df, x_ts, y_ts, 3, **GREEDY)
    three = predictor.predict(df, x_ts, y_ts, 3, **dict(GREEDY, sample_count=3))
    np.testing.assert_allclose(one.to_numpy(), three.to_numpy(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda df: df.drop(columns=["close"]), r"price columns \['close'\] are missing"),
        (lambda df: df.assign(high=np.where(np.arange(len(df)) == 3, np.nan, df["high"])), "NaN/inf values in columns \\['high'\\]"),
        (lambda df: df.iloc[:0], "no rows"),
    ],
)
def test_bad_frames_raise_clear_errors(predictor, mutate, match: str) -> None:
    df, x_ts, y_ts = make_series(20, 3)
    df = mutate(df)
    with pytest.raises(ValueError, match=match):
        predictor.predict(df, x_ts[: len(df)], y_ts, 3)


def test_length_checks(predictor) -> None:
    df, x_ts, y_ts = make_series(20, 3)
    with pytest.raises(ValueError, match="pred_len is 4"):
        predictor.predict(df, x_ts, y_ts, 4)
    with pytest.raises(ValueError, match="x_timestamp has 19 entries but df has 20 rows"):
        predictor.predict(df, x_ts[:19], y_ts, 3)
    with pytest.raises(ValueError, match="equal lengths"):
        predictor.predict_batch([df], [x_ts, x_ts], [y_ts], 3)


def test_existing_amount_is_kept_when_volume_is_missing(predictor) -> None:
    df, x_ts, y_ts = make_series(20, 3)
    no_volume = predictor.predict(df.drop(columns=["volume"]), x_ts, y_ts, 3, **GREEDY)
    zero_volume = predictor.predict(df.assign(volume=0.0), x_ts, y_ts, 3, **GREEDY)
    np.testing.assert_array_equal(no_volume.to_numpy(), zero_volume.to_numpy())


def test_forecast_normalized_matches_reference_and_restores_modes(ref_dir: Path, models) -> None:
    tok, pred = models
    inputs = torch.load(ref_dir / "inputs.pt", weights_only=True)
    expected = torch.load(ref_dir / "expected.pt", weights_only=True)
    pred_len = inputs["y_stamp"].shape[1]
    max_context = min(int(k.removeprefix("ar_greedy_mc")) for k in expected if k.startswith("ar_greedy_mc") and not k.endswith("_full"))
    pred.train()
    out = forecast_normalized(
        tok, pred, inputs["x"].numpy(), inputs["x_stamp"].numpy(), inputs["y_stamp"].numpy(), pred_len,
        max_context=max_context, batch_size=1, **GREEDY,
    )
    assert pred.training and not tok.training  # modes restored
    assert out.shape == tuple(expected[f"ar_greedy_mc{max_context}"].shape) and out.dtype == np.float32
    assert torch.allclose(torch.from_numpy(out), expected[f"ar_greedy_mc{max_context}"], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="y_stamp"):
        forecast_normalized(tok, pred, inputs["x"], inputs["x_stamp"], inputs["y_stamp"], pred_len + 1)


def test_sampling_filters() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    assert sample_from_logits(logits, top_k=1).item() == 1
    g = torch.Generator().manual_seed(0)
    draws = {sample_from_logits(logits, top_k=2, generator=g).item() for _ in range(200)}
    assert draws == {1, 3}
    # Probabilities ~[.03, .64, .09, .24]: top_p 0.7 keeps the two largest.
    draws = {sample_from_logits(logits, top_p=0.7, generator=g).item() for _ in range(200)}
    assert draws == {1, 3}


def test_training_s1_sampling_follows_the_softmax() -> None:
    from kronos_train.model.predictor import sample_own_s1

    logits = torch.tensor([0.0, 1.0, -1e9, 2.0]).expand(400, 100, 4)
    g = torch.Generator().manual_seed(0)
    draws = sample_own_s1(logits, g)
    assert draws.shape == (400, 100) and draws.dtype == torch.long
    freq = torch.bincount(draws.flatten(), minlength=4).float() / draws.numel()
    assert freq[2] == 0  # a zero-probability token is never drawn
    assert torch.allclose(freq, torch.softmax(logits[0, 0], -1), atol=0.01)
    assert torch.equal(draws, sample_own_s1(logits, torch.Generator().manual_seed(0)))
