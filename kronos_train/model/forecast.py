"""Forecasting with a tokenizer + predictor pair, equivalent to the official KronosPredictor (spec §6).

Differences from the official code, none of which changes its outputs on valid
input (the reference fixtures check that):
- both models are put in eval mode (official P1: they stay in train mode);
- sampling can use a seeded torch.Generator for reproducible forecasts;
- inputs are validated with clear messages (price columns, NaN/inf, lengths of
  the timestamp sequences including len(y_timestamp) == pred_len);
- timestamps may be a pandas Series, a DatetimeIndex or any sequence of datetimes;
- an `amount` column that is present is kept when `volume` is missing (the
  official code overwrites it with zeros);
- predict_batch accepts series of different history lengths (grouped by length).
Kept as in the official code: normalisation statistics over the whole given
history, the tokenizer encodes the whole history even past max_context (its
causal encoder sees the earlier rows, so truncating would change the tokens),
and top_p is ignored when top_k > 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .predictor import Kronos
from .tokenizer import KronosTokenizer

PRICE_COLUMNS = ("open", "high", "low", "close")
VOLUME_COLUMN = "volume"
AMOUNT_COLUMN = "amount"
FEATURE_COLUMNS = (*PRICE_COLUMNS, VOLUME_COLUMN, AMOUNT_COLUMN)
NORM_EPS = 1e-5

ArrayLike = np.ndarray | torch.Tensor


# --------------------------------------------------------------------------- sampling


def filter_top_k(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the top_k logits per row (ties with the k-th kept), others to -inf."""
    top_k = min(top_k, logits.shape[-1])
    kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest prefix whose cumulative probability exceeds top_p."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative > top_p
    # Shift right: the token that crosses the threshold stays, and so does the best one.
    drop_sorted[..., 1:] = drop_sorted[..., :-1].clone()
    drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_from_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row, [N, 1]. As upstream, top_p is not applied when top_k > 0."""
    logits = logits.float() / temperature
    if top_k > 0:
        logits = filter_top_k(logits, top_k)
    elif top_p < 1.0:
        logits = filter_top_p(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


# --------------------------------------------------------------------------- core loop


def repeat_samples(t: torch.Tensor, sample_count: int) -> torch.Tensor:
    """[N, ...] -> [N * S, ...] with each series' samples consecutive (official order)."""
    return t.repeat_interleave(sample_count, dim=0)


def auto_regressive_inference(
    tokenizer: KronosTokenizer,
    model: Kronos,
    x: torch.Tensor,
    x_stamp: torch.Tensor,
    y_stamp: torch.Tensor,
    max_context: int,
    pred_len: int,
    clip: float = 5,
    T: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.99,
    sample_count: int = 5,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Official autoregressive forecast in normalised units.

    x [N, T0, 6] (normalised), x_stamp [N, T0, 5], y_stamp [N, pred_len, 5].
    Returns the decoded last min(T0 + pred_len, max_context) positions,
    averaged over the sample paths, as a float32 array [N, L, 6]; the forecast
    is the last pred_len rows. Does not change the models' train/eval mode.

    `use_cache` (eval mode only; a model in train mode always takes the full
    path): while the window still starts at position 0, the history runs through
    the trunk once and each step adds only the new token (Kronos.prefill /
    decode_step). Once the window slides every position shifts, so those steps
    recompute the window in full, as upstream does for every step.
    """
    use_cache = use_cache and not model.training
    with torch.no_grad():
        n_series, history = x.shape[0], x.shape[1]
        x = repeat_samples(torch.clip(x, -clip, clip), sample_count)
        stamps = repeat_samples(torch.cat([x_stamp, y_stamp], dim=1), sample_count)
        s1, s2 = tokenizer.encode(x, half=True)
        cache = None
        for step in range(pred_len):
            known = history + step
            start = max(0, known - max_context)
            # The stamps of the input positions; the predicted position's stamp is never given.
            if use_cache and start == 0:
                if cache is None:
                    # Room for every position the window holds before it would slide.
                    capacity = min(max_context, history + pred_len - 1)
                    s1_last, cache = model.prefill(s1, s2, stamps[:, :known], capacity)
                else:
                    # Only the token sampled at the previous step is new; its stamp is known - 1's.
                    s1_last = model.decode_step(s1[:, -1:], s2[:, -1:], stamps[:, known - 1 : known], cache)
                next_s1 = sample_from_logits(s1_last[:, -1], T, top_k, top_p, generator)
                next_s2 = sample_from_logits(model.decode_s2_step(next_s1, cache)[:, -1], T, top_k, top_p, generator)
            else:
                s1_logits, context = model.decode_s1(s1[:, start:known], s2[:, start:known], stamps[:, start:known])
                next_s1 = sample_from_logits(s1_logits[:, -1], T, top_k, top_p, generator)
                s2_logits = model.decode_s2(context, next_s1)
                next_s2 = sample_from_logits(s2_logits[:, -1], T, top_k, top_p, generator)
            s1, s2 = torch.cat([s1, next_s1], dim=1), torch.cat([s2, next_s2], dim=1)
        start = max(0, history + pred_len - max_context)
        decoded = tokenizer.decode([s1[:, start:], s2[:, start:]], half=True)
        decoded = decoded.reshape(n_series, sample_count, decoded.shape[1], decoded.shape[2])
        return decoded.float().cpu().numpy().mean(axis=1)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Eval mode for the duration, then restore each module's previous mode."""
    previous = [m.training for m in modules]
    try:
        for m in modules:
            m.train(False)
        yield
    finally:
        for m, was_training in zip(modules, previous):
            m.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None  # global RNG, as the official code
    return torch.Generator(device=device).manual_seed(int(seed))


def forecast_normalized(
    tokenizer: KronosTokenizer,
    model: Kronos,
    x_norm: ArrayLike,
    x_stamp: ArrayLike,
    y_stamp: ArrayLike,
    pred_len: int,
    max_context: int = 512,
    clip: float = 5,
    T: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.9,
    sample_count: int = 1,
    seed: int | None = None,
    batch_size: int | None = None,
    use_cache: bool = True,
) -> np.ndarray:
    """Batched forecast on already normalised arrays, no pandas: returns [N, pred_len, 6] float32.

    x_norm [N, T0, 6], x_stamp [N, T0, 5], y_stamp [N, pred_len, 5] (numpy or torch).
    Runs in eval mode and restores the models' modes afterwards. `batch_size`
    series per model call bounds memory; with sampling, a seeded result depends on it.
    `use_cache=False` recomputes the whole window at every step (see auto_regressive_inference).
    """
    device = model_device(model)
    x_t, xs_t, ys_t = (torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a) for a in (x_norm, x_stamp, y_stamp))
    validate_array_shapes(x_t, xs_t, ys_t, pred_len)
    generator = make_generator(seed, device)
    step = batch_size or x_t.shape[0]
    outputs = []
    with eval_mode(tokenizer, model):
        for lo in range(0, x_t.shape[0], step):
            chunk = [t[lo : lo + step].to(device=device, dtype=torch.float32) for t in (x_t, xs_t, ys_t)]
            preds = auto_regressive_inference(
                tokenizer, model, *chunk, max_context=max_context, pred_len=pred_len, clip=clip,
                T=T, top_k=top_k, top_p=top_p, sample_count=sample_count, generator=generator,
                use_cache=use_cache,
            )
            outputs.append(preds[:, -pred_len:, :])
    return np.concatenate(outputs, axis=0).astype(np.float32, copy=False)


def validate_array_shapes(x: torch.Tensor, x_stamp: torch.Tensor, y_stamp: torch.Tensor, pred_len: int) -> None:
    if x.dim() != 3 or x_stamp.dim() != 3 or y_stamp.dim() != 3:
        raise ValueError(f"expected 3-D arrays, got x {tuple(x.shape)}, x_stamp {tuple(x_stamp.shape)}, y_stamp {tuple(y_stamp.shape)}")
    if pred_len < 1:
        raise ValueError(f"pred_len must be at least 1, got {pred_len}")
    if x.shape[1] < 1:
        raise ValueError("the history is empty: x has 0 time steps")
    if x_stamp.shape[:2] != x.shape[:2]:
        raise ValueError(f"x_stamp {tuple(x_stamp.shape)} must match x {tuple(x.shape)} in series and time steps")
    if y_stamp.shape[0] != x.shape[0] or y_stamp.shape[1] != pred_len:
        raise ValueError(f"y_stamp {tuple(y_stamp.shape)} must be [{x.shape[0]}, pred_len={pred_len}, 5]")


# --------------------------------------------------------------------------- pandas front end


def time_features_and_index(timestamps: Any) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """[T, 5] float32 (minute, hour, weekday Mon=0, day, month) and the timestamps as a DatetimeIndex."""
    try:
        index = pd.DatetimeIndex(pd.to_datetime(timestamps))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"timestamps must be datetimes (Series, DatetimeIndex or list): {exc}") from exc
    if getattr(timestamps, "name", None) is not None:
        index = index.rename(timestamps.name)
    columns = [index.minute, index.hour, index.day_of_week, index.day, index.month]
    return np.stack([np.asarray(c) for c in columns], axis=-1).astype(np.float32), index


def prepare_features(df: pd.DataFrame) -> np.ndarray:
    """The six model columns as float32 [T, 6], filling volume/amount like the official code."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in PRICE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"price columns {missing} are missing; the DataFrame needs {list(PRICE_COLUMNS)} "
            f"(volume and amount are optional). Found columns: {list(df.columns)}"
        )
    if len(df) == 0:
        raise ValueError("df has no rows: at least one history row is needed")
    df = df.copy()
    if VOLUME_COLUMN not in df.columns:
        df[VOLUME_COLUMN] = 0.0
        if AMOUNT_COLUMN not in df.columns:
            df[AMOUNT_COLUMN] = 0.0
    elif AMOUNT_COLUMN not in df.columns:
        df[AMOUNT_COLUMN] = df[VOLUME_COLUMN] * df[list(PRICE_COLUMNS)].mean(axis=1)
    try:
        values = df[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64).astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"columns {list(FEATURE_COLUMNS)} must be numeric: {exc}") from exc
    bad = ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        names = sorted({FEATURE_COLUMNS[c] for c in cols})
        raise ValueError(
            f"{int(bad.sum())} NaN/inf values in columns {names} (first at row {int(rows[0])}); "
            "fill or drop them before forecasting"
        )
    return values


def normalize_single_history(values: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score with the history's own mean and population std, then clip (float32, as upstream)."""
    mean, std = np.mean(values, axis=0), np.std(values, axis=0)
    normed = np.clip((values - mean) / (std + NORM_EPS), -clip, clip)
    return normed, mean, std


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class KronosPredictor:
    """DataFrame-in, DataFrame-out forecaster equivalent to the official KronosPredictor."""

    def __init__(
        self,
        model: Kronos,
        tokenizer: KronosTokenizer,
        device: str | torch.device | None = "cpu",
        max_context: int = 512,
        clip: float = 5,
        use_cache: bool = True,
    ) -> None:
        """`use_cache=False` turns off the KV cache of the forecasting loop (same results, slower)."""
        if max_context < 1:
            raise ValueError(f"max_context must be at least 1, got {max_context}")
        self.device = resolve_device(device)
        # Eval mode on purpose: upstream forecasts in train mode (dropout on, P1).
        self.model = model.to(self.device).train(False)
        self.tokenizer = tokenizer.to(self.device).train(False)
        self.max_context = max_context
        self.clip = clip
        self.use_cache = use_cache
        self.price_cols, self.vol_col, self.amt_vol = list(PRICE_COLUMNS), VOLUME_COLUMN, AMOUNT_COLUMN

    def _prepare_series(self, df: pd.DataFrame, x_timestamp: Any, y_timestamp: Any, pred_len: int) -> dict[str, Any]:
        values = prepare_features(df)
        x_stamp, _ = time_features_and_index(x_timestamp)
        y_stamp, y_index = time_features_and_index(y_timestamp)
        if len(x_stamp) != len(values):
            raise ValueError(f"x_timestamp has {len(x_stamp)} entries but df has {len(values)} rows")
        if len(y_stamp) != pred_len:
            raise ValueError(f"y_timestamp has {len(y_stamp)} entries but pred_len is {pred_len}; they must be equal")
        normed, mean, std = normalize_single_history(values, self.clip)
        return dict(x=normed, x_stamp=x_stamp, y_stamp=y_stamp, mean=mean, std=std, index=y_index)

    def _generate(self, series: list[dict[str, Any]], pred_len: int, sampling: dict[str, Any]) -> list[np.ndarray]:
        """Normalised forecasts, one model call per group of equal history length."""
        generator = make_generator(sampling.pop("seed"), self.device)
        results: list[np.ndarray | None] = [None] * len(series)
        by_length: dict[int, list[int]] = {}
        for i, s in enumerate(series):
            by_length.setdefault(len(s["x"]), []).append(i)
        for members in by_length.values():
            batch = [
                torch.from_numpy(np.stack([series[i][key] for i in members])).to(self.device)
                for key in ("x", "x_stamp", "y_stamp")
            ]
            preds = auto_regressive_inference(
                self.tokenizer, self.model, *batch, max_context=self.max_context, pred_len=pred_len,
                clip=self.clip, generator=generator, use_cache=self.use_cache, **sampling,
            )[:, -pred_len:, :]
            for row, i in enumerate(members):
                results[i] = preds[row]
        return results  # type: ignore[return-value]

    @staticmethod
    def _to_frame(pred: np.ndarray, s: dict[str, Any]) -> pd.DataFrame:
        raw = pred * (s["std"] + NORM_EPS) + s["mean"]
        return pd.DataFrame(raw, columns=list(FEATURE_COLUMNS), index=s["index"])

    def predict(
        self,
        df: pd.DataFrame,
        x_timestamp: Any,
        y_timestamp: Any,
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 0.9,
        sample_count: int = 1,
        seed: int | None = None,
        verbose: bool = False,
    ) -> pd.DataFrame:
        """Forecast pred_len rows (raw units, indexed by y_timestamp) for one series."""
        return self.predict_batch(
            [df], [x_timestamp], [y_timestamp], pred_len,
            T=T, top_k=top_k, top_p=top_p, sample_count=sample_count, seed=seed, verbose=verbose,
        )[0]

    def predict_batch(
        self,
        df_list: Sequence[pd.DataFrame],
        x_timestamp_list: Sequence[Any],
        y_timestamp_list: Sequence[Any],
        pred_len: int,
        T: float = 1.0,
        top_k: int = 0,
        top_p: float = 0.9,
        sample_count: int = 1,
        seed: int | None = None,
        verbose: bool = False,
    ) -> list[pd.DataFrame]:
        """Forecast several series at once; each keeps its own normalisation statistics."""
        del verbose  # accepted for signature compatibility; nothing is printed
        if not (len(df_list) == len(x_timestamp_list) == len(y_timestamp_list)):
            raise ValueError(
                f"df_list, x_timestamp_list and y_timestamp_list must have equal lengths, got "
                f"{len(df_list)}, {len(x_timestamp_list)}, {len(y_timestamp_list)}"
            )
        if len(df_list) == 0:
            raise ValueError("df_list is empty")
        if pred_len < 1:
            raise ValueError(f"pred_len must be at least 1, got {pred_len}")
        series = []
        for i, (df, x_ts, y_ts) in enumerate(zip(df_list, x_timestamp_list, y_timestamp_list)):
            try:
                series.append(self._prepare_series(df, x_ts, y_ts, pred_len))
            except ValueError as exc:
                raise ValueError(f"series {i}: {exc}" if len(df_list) > 1 else str(exc)) from exc
        sampling = dict(T=T, top_k=top_k, top_p=top_p, sample_count=sample_count, seed=seed)
        with eval_mode(self.tokenizer, self.model):
            preds = self._generate(series, pred_len, sampling)
        return [self._to_frame(p, s) for p, s in zip(preds, series)]
