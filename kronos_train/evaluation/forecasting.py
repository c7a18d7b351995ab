"""The networks' forecasts of the close H steps ahead, and their cross-entropy (torch).

torch and the model package load inside the functions, so importing this
module stays light.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .metrics import CLOSE

STD_EPS = 1e-5                # the official normalisation epsilon

@dataclass
class ForecastSettings:
    """Sampling and batching of autoregressive forecasts (evaluation section of a preset)."""
    sample_count: int = 5
    temperature: float = 0.6
    top_p: float = 0.9
    top_k: int = 0
    max_context: int = 512
    clip: float = 5.0
    seed: int = 0
    batch_size: int = 64
    use_cache: bool = True          # the exact KV cache of kronos_train.model (off: upstream's full recompute)

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> "ForecastSettings":
        ev = cfg.evaluation
        settings = cls(sample_count=ev.sample_count, temperature=ev.temperature, top_p=ev.top_p, top_k=ev.top_k,
                       max_context=cfg.data.max_context, clip=cfg.data.clip, seed=cfg.training.seed)
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings


Progress = Callable[[int, int, int, int], None]     # (batch, batches, done, total)


def normalize_history_batch(raw: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training normalisation (the data pipeline's, statistics of the history rows
    only, as the official KronosPredictor): (x [B,L,6], mean [B,6], std [B,6])."""
    from ..data import normalize_window

    return normalize_window(np.asarray(raw, np.float32), raw.shape[1], clip)


def forecast_close(tokenizer: Any, predictor: Any, history: np.ndarray, x_stamp: np.ndarray, y_stamp: np.ndarray,
                   settings: ForecastSettings, seed_offset: int = 0) -> np.ndarray:
    """Forecast close at the last of ``y_stamp``'s steps, in raw units, for a batch of
    equal-length histories (raw [B, L, 6]); NaN where the forecast is not finite."""
    from ..model import forecast_normalized

    x, mean, std = normalize_history_batch(history, settings.clip)
    mean, std = mean.astype(np.float64), std.astype(np.float64)
    horizon = y_stamp.shape[1]
    pred = forecast_normalized(tokenizer, predictor, x, x_stamp.astype(np.float32), y_stamp.astype(np.float32),
                               pred_len=horizon, max_context=settings.max_context, clip=settings.clip,
                               T=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
                               sample_count=settings.sample_count, seed=settings.seed + seed_offset,
                               use_cache=settings.use_cache)
    close = pred[:, -1, CLOSE].astype(np.float64) * (std[:, CLOSE] + STD_EPS) + mean[:, CLOSE]
    return np.where(np.isfinite(close), close, np.nan)


def forecast_windows(tokenizer: Any, predictor: Any, values: np.ndarray, stamps: np.ndarray, starts: np.ndarray,
                     lookback: int, horizon: int, settings: ForecastSettings,
                     progress: Progress | None = None) -> np.ndarray:
    """Forecast close at t+H for every horizon window, in batches (raw units)."""
    out = np.empty(len(starts), np.float64)
    history_rows = np.arange(lookback)
    future_rows = np.arange(lookback, lookback + horizon)
    batches = range(0, len(starts), settings.batch_size)
    for b, lo in enumerate(batches):
        chunk = starts[lo:lo + settings.batch_size]
        raw = np.asarray(values[chunk[:, None] + history_rows], np.float32)
        x_stamp = np.asarray(stamps[chunk[:, None] + history_rows], np.float32)
        # The future time features are known on a validation window: use the real ones.
        y_stamp = np.asarray(stamps[chunk[:, None] + future_rows], np.float32)
        out[lo:lo + len(chunk)] = forecast_close(tokenizer, predictor, raw, x_stamp, y_stamp, settings, seed_offset=b)
        if progress:
            progress(b + 1, len(batches), lo + len(chunk), len(starts))
    return out


def cross_entropy(tokenizer: Any, predictor: Any, windows: Any, idx: np.ndarray, batch_size: int,
                  teacher_forcing: bool, seed: int) -> dict[str, float | None]:
    """Mean training loss (ce, ce_s1, ce_s2) over validation windows of the data pipeline."""
    import torch

    from ..model import predictor_loss

    if not len(idx):
        return {"ce": None, "ce_s1": None, "ce_s2": None}
    device = next(predictor.parameters()).device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    totals = np.zeros(3)
    tokenizer.eval(), predictor.eval()
    with torch.no_grad():
        for lo in range(0, len(idx), batch_size):
            chunk = idx[lo:lo + batch_size]
            x, stamp = windows.get_batch(chunk)
            loss, parts = predictor_loss(predictor, tokenizer, torch.from_numpy(x).to(device),
                                         torch.from_numpy(stamp).to(device), teacher_forcing=teacher_forcing,
                                         generator=generator)
            totals += len(chunk) * np.array([float(loss), float(parts["ce_s1"]), float(parts["ce_s2"])])
    ce, ce_s1, ce_s2 = totals / len(idx)
    return {"ce": ce, "ce_s1": ce_s1, "ce_s2": ce_s2}


__all__ = ["ForecastSettings", "Progress", "cross_entropy", "forecast_close", "forecast_windows",
           "normalize_history_batch"]
