"""The KV-cached forecasting loop gives the same forecasts as the full recomputation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from kronos_train.model import (
    KronosPredictor,
    auto_regressive_inference,
    build_predictor,
    build_tokenizer,
    forecast_normalized,
)

ATOL = 1e-5


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return build_tokenizer("tiny-tokenizer").eval(), build_predictor("tiny-predictor").eval()


def make_inputs(n: int, history: int, pred_len: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, history, 6, generator=gen)
    stamps = torch.stack([
        torch.randint(0, 60, (n, history + pred_len), generator=gen),
        torch.randint(0, 24, (n, history + pred_len), generator=gen),
        torch.randint(0, 7, (n, history + pred_len), generator=gen),
        torch.randint(1, 32, (n, history + pred_len), generator=gen),
        torch.randint(1, 13, (n, history + pred_len), generator=gen),
    ], dim=-1).float()
    return x, stamps[:, :history], stamps[:, history:]


def run_both(models, history: int, pred_len: int, max_context: int, n: int, seed: int | None, **sampling):
    tok, pred = models
    x, x_stamp, y_stamp = make_inputs(n, history, pred_len)
    outs = []
    for use_cache in (True, False):
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        outs.append(auto_regressive_inference(
            tok, pred, x, x_stamp, y_stamp, max_context=max_context, pred_len=pred_len,
            generator=generator, use_cache=use_cache, **sampling,
        ))
    return outs


# (history, pred_len, max_context): the last step sees history + pred_len - 1 tokens.
CASES = {
    "growing": (12, 6, 32),          # the window never fills
    "exactly_full": (12, 6, 17),     # the last step's window is exactly max_context long
    "slides_midway": (12, 8, 15),    # cached for 4 steps, then the window slides
    "history_too_long": (20, 5, 16), # slides from the first step: the cache is never used
}


@pytest.mark.parametrize("case", CASES)
def test_greedy_cached_equals_full(models, case: str) -> None:
    history, pred_len, max_context = CASES[case]
    cached, full = run_both(models, history, pred_len, max_context, n=3, seed=None,
                            T=1.0, top_k=1, top_p=1.0, sample_count=1)
    assert cached.shape == full.shape == (3, min(history + pred_len, max_context), 6)
    np.testing.assert_allclose(cached, full, atol=ATOL, rtol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_seeded_sampling_cached_equals_full(models, case: str) -> None:
    # Same draws in the same order from the same generator: the paths must agree token for token.
    history, pred_len, max_context = CASES[case]
    cached, full = run_both(models, history, pred_len, max_context, n=2, seed=123,
                            T=0.8, top_k=0, top_p=0.9, sample_count=3)
    np.testing.assert_allclose(cached, full, atol=ATOL, rtol=ATOL)


def test_cached_steps_match_decode_s1_and_decode_s2(models) -> None:
    """Logits of prefill + decode_step / decode_s2_step against the full forward, position by position."""
    _, pred = models
    gen = torch.Generator().manual_seed(1)
    vocab = pred.s1_vocab_size
    s1, s2 = torch.randint(0, vocab, (2, 2, 10), generator=gen)
    stamp = make_inputs(2, 10, 0)[1]
    sibling = torch.randint(0, vocab, (2, 1), generator=gen)
    with torch.no_grad():
        logits, cache = pred.prefill(s1[:, :4], s2[:, :4], stamp[:, :4], capacity=10)
        for t in range(4, 11):
            full_s1, context = pred.decode_s1(s1[:, :t], s2[:, :t], stamp[:, :t])
            torch.testing.assert_close(logits, full_s1[:, -1:], atol=ATOL, rtol=ATOL)
            torch.testing.assert_close(pred.decode_s2_step(sibling, cache),
                                       pred.decode_s2(context, sibling)[:, -1:], atol=ATOL, rtol=ATOL)
            if t < 10:
                logits = pred.decode_step(s1[:, t:t + 1], s2[:, t:t + 1], stamp[:, t:t + 1], cache)
        assert cache.length == 10
        with pytest.raises(ValueError, match="full"):
            pred.decode_step(s1[:, :1], s2[:, :1], stamp[:, :1], cache)


def test_cache_is_eval_only_and_train_mode_takes_the_full_path(models) -> None:
    tok, pred = models
    pred.train()
    try:
        with pytest.raises(RuntimeError, match="eval mode"):
            pred.prefill(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
        # In train mode use_cache is ignored: with the same seed both calls draw the same dropout masks.
        x, xs, ys = make_inputs(1, 8, 3)
        outs = []
        for use_cache in (True, False):
            torch.manual_seed(5)
            outs.append(auto_regressive_inference(tok, pred, x, xs, ys, max_context=16, pred_len=3,
                                                  top_k=1, sample_count=1, use_cache=use_cache))
        np.testing.assert_array_equal(outs[0], outs[1])
    finally:
        pred.eval()


def test_forecast_normalized_and_predictor_switch(models) -> None:
    tok, pred = models
    x, xs, ys = make_inputs(2, 10, 4)
    sampled = dict(T=1.0, top_k=0, top_p=0.9, sample_count=2, seed=3)
    a = forecast_normalized(tok, pred, x, xs, ys, pred_len=4, max_context=12, use_cache=True, **sampled)
    b = forecast_normalized(tok, pred, x, xs, ys, pred_len=4, max_context=12, use_cache=False, **sampled)
    np.testing.assert_allclose(a, b, atol=ATOL, rtol=ATOL)

    rng = np.random.default_rng(0)
    close = 100 + np.cumsum(rng.normal(0, 1, 20))
    df = pd.DataFrame({"open": close, "high": close + 1, "low": close - 1, "close": close,
                       "volume": rng.uniform(100, 200, 20), "amount": rng.uniform(1e4, 2e4, 20)})
    stamps = pd.Series(pd.date_range("2024-03-01 09:30", periods=25, freq="5min"))
    frames = [
        KronosPredictor(pred, tok, max_context=64, use_cache=use_cache).predict(
            df, stamps[:20], stamps[20:], 5, top_k=1)
        for use_cache in (True, False)
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1], atol=ATOL, rtol=ATOL)
