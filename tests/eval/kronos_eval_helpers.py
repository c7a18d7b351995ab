"""Helpers for the evaluation tests: planted-pattern data, a tiny trained pair, fake runs.

The planted pattern: every ticker's close follows a sine of period ``PERIOD``
rows (random phase and amplitude per ticker) times small i.i.d. noise.  Over
half a period the close is higher exactly when the sine is below its mean, so
direction at horizon ``PERIOD // 2`` is learnable from the history.  A small
drift per ticker (up for some, down for others) makes the per-ticker majority
right a little more often than always-up, but far less often than the pattern.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from kronos_train.calendar import next_trading_days
from kronos_train.config import KronosConfig

PERIOD = 16
HORIZON = PERIOD // 2
LOOKBACK = 32


def planted_frame(n_tickers: int = 16, n_rows: int = 400, seed: int = 0, start: str = "2020-01-02") -> pd.DataFrame:
    """Kaggle layout: Date, Open, High, Low, Close, Volume, Dividends, Stock Splits, Ticker."""
    rng = np.random.default_rng(seed)
    # NYSE sessions, so that a horizon counted in trading days equals a count of rows.
    dates = pd.DatetimeIndex(next_trading_days(pd.Timestamp(start) - pd.Timedelta(days=1), n_rows))
    frames = []
    for k in range(n_tickers):
        phase = rng.uniform(0, 2 * np.pi)
        amplitude = rng.uniform(0.04, 0.08)
        t = np.arange(n_rows)
        drift = rng.choice([-1.0, 1.0]) * rng.uniform(0.001, 0.003)     # gives the per-ticker majority a point
        log_close = (np.log(rng.uniform(20, 200)) + drift * t
                     + amplitude * np.sin(2 * np.pi * t / PERIOD + phase))
        close = np.exp(log_close + rng.normal(0, 0.003, n_rows))
        open_ = np.concatenate([[close[0]], close[:-1]])
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n_rows)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n_rows)))
        volume = np.round(rng.lognormal(12, 0.3, n_rows))
        frames.append(pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Open": open_, "High": high, "Low": low,
                                    "Close": close, "Volume": volume, "Dividends": 0.0, "Stock Splits": 0.0,
                                    "Ticker": f"ticker_{k + 1}"}))
    return pd.concat(frames, ignore_index=True)


def write_planted(path: Path, **kwargs) -> Path:
    planted_frame(**kwargs).to_csv(path, index=False)
    return path


def train_tiny_pair(data_path: Path, out_dir: Path, *, tokenizer_steps: int = 300, predictor_steps: int = 500,
                    batch_size: int = 64, seed: int = 0) -> tuple[Path, Path, float]:
    """Train tiny-tokenizer then tiny-predictor from scratch with the model package's losses.

    A plain loop (the training engine is another issue); returns the two saved
    folders and the seconds it took.
    """
    import torch

    from kronos_train.architectures import resolve_architecture
    from kronos_train.data import DataSpec, prepare_data
    from kronos_train.model import build_predictor, build_tokenizer, predictor_loss, save_pretrained, tokenizer_loss

    started = time.time()
    torch.manual_seed(seed)
    prepared = prepare_data(DataSpec(data_path, lookback_window=LOOKBACK, predict_window=HORIZON,
                                     train_ratio=0.7, val_ratio=0.3), cache_dir=None)
    assert prepared.report.ok, prepared.report.summary()
    rng = np.random.default_rng(seed)
    tokenizer = build_tokenizer(resolve_architecture("tiny-tokenizer"))
    predictor = build_predictor(resolve_architecture("tiny-predictor"))

    def batches(steps: int):
        for _ in range(steps):
            x, stamp = prepared.train.get_batch(rng.integers(0, len(prepared.train), batch_size))
            yield torch.from_numpy(x), torch.from_numpy(stamp)

    tokenizer.train()
    opt = torch.optim.AdamW(tokenizer.parameters(), lr=3e-3, weight_decay=0.01)
    for x, _ in batches(tokenizer_steps):
        loss, _ = tokenizer_loss(tokenizer, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokenizer.eval()
    predictor.train()
    opt = torch.optim.AdamW(predictor.parameters(), lr=3e-3, weight_decay=0.01)
    generator = torch.Generator().manual_seed(seed)
    for x, stamp in batches(predictor_steps):
        loss, _ = predictor_loss(predictor, tokenizer, x, stamp, generator=generator)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(predictor.parameters(), 3.0)
        opt.step()
    predictor.eval()
    tok_dir = save_pretrained(tokenizer, out_dir / "tokenizer")
    pred_dir = save_pretrained(predictor, out_dir / "predictor")
    return tok_dir, pred_dir, time.time() - started


def tiny_config(data_path: Path, **evaluation) -> KronosConfig:
    """The windows the tiny pair was trained on, and quick deterministic sampling."""
    cfg = KronosConfig()
    cfg.data.data_path = str(data_path)
    cfg.data.lookback_window, cfg.data.predict_window, cfg.data.max_context = LOOKBACK, HORIZON, 64
    cfg.data.train_ratio, cfg.data.val_ratio = 0.7, 0.3
    cfg.evaluation.horizon, cfg.evaluation.sample_count, cfg.evaluation.max_windows = HORIZON, 1, 128
    for key, value in evaluation.items():
        setattr(cfg.evaluation, key, value)
    return cfg


def write_preset(path: Path, cfg) -> Path:
    from kronos_train.config import dump_yaml

    path.write_text(dump_yaml(cfg), encoding="utf-8")
    return path


def make_run(logs_dir: Path, cfg, tokenizer_dir: Path, predictor_dir: Path, pretrained_predictor: Path | None = None,
             run_id: str = "20260101-000000-tiny") -> Path:
    """A finished run folder as the training engine leaves it: config.yaml, events.jsonl, checkpoints.

    The tokenizer stage was skipped (its pretrained folder is used), so
    resolving the run exercises the fallback; the basemodel stage saved best/.
    """
    import shutil

    from kronos_train.control.events import EventWriter

    run = logs_dir / run_id
    (run / "checkpoints" / "basemodel").mkdir(parents=True)
    shutil.copytree(predictor_dir, run / "checkpoints" / "basemodel" / "best")
    cfg.model_paths.pretrained_tokenizer = str(tokenizer_dir)
    cfg.model_paths.pretrained_predictor = str(pretrained_predictor or "")
    cfg.experiment.train_tokenizer = False
    cfg.experiment.pre_trained_predictor = pretrained_predictor is not None
    write_preset(run / "config.yaml", cfg)
    with EventWriter(run / "events.jsonl") as events:
        events.emit("run_start", schema=1, run_id=run_id, preset="tiny", stages=["basemodel"], world_size=1, attempt=0)
        events.emit("run_end", status="completed", attempt=0)
    return run
