"""Forecast evaluation against baselines: what ``kronos-train evaluate`` does.

Kronos users' most common disappointment is a fine-tune that made forecasts
worse without anyone noticing.  ``evaluate`` scores the model where the
competition scores it, H trading days ahead, on validation windows, next to
baselines that need no model:

- ``model``: the evaluated tokenizer + predictor (a run's ``best/`` folders);
- ``pretrained``: the model before fine-tuning (``model_paths.pretrained_*`` of
  the config, when both folders exist and the predictor started from them);
- ``always_up``: predicts a rise every time;
- ``majority``: the majority direction of H-step close changes of the ticker's
  own training rows (a tie or a ticker without H+1 training rows falls back to
  ``majority_global``);
- ``majority_global``: the same majority pooled over every ticker's training rows
  (an exact 50/50 tie counts as up);
- ``persistence``: the last close stays (return 0).  The target is "close *higher*",
  so an unchanged close is *not* a rise: persistence predicts "not up" every time,
  and a window whose true close equals the last close counts as "not up" too.

A horizon window of ticker k is ``lookback`` rows of history followed by H rows
whose last close is the target; the H rows lie in the ticker's validation
period (the same per-ticker time split as the data pipeline), the history may
reach back into the training period.  Metrics per model: ``direction_accuracy``
(forecast close at t+H above the last close, against the truth), ``mae_return``
(mean |predicted return - true return|, returns relative to the last close; null
for the direction-only baselines), ``up_share`` (share of windows predicted up),
and for networks ``ce``/``ce_s1``/``ce_s2`` (the training loss on the pipeline's
validation windows, each pair scored with its own tokenizer).

The parts, in the order an evaluation uses them:

- ``sources``: which tokenizer + predictor to evaluate (a run folder or two model
  folders), the model before fine-tuning, loading them;
- ``metrics``: horizon windows, direction accuracy, MAE, the baselines (numpy);
- ``forecasting``: the networks' forecasts and cross-entropy (torch, imported
  inside the functions);
- ``runner``: ``evaluate`` itself, which ties the parts together;
- ``report``: ``eval.json``, the ``eval`` event and the terminal table.

The after-run checklist lines built on it are in ``kronos_train.checks.trained_model``.
Light at import (numpy only); torch loads inside the functions that run networks.
"""
from __future__ import annotations


class EvaluationError(ValueError):
    """A user-facing problem (bad path, data too short, ...); the message says what to do."""


__all__ = ["EvaluationError"]
