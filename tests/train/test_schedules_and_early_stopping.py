"""LR schedules (onecycle exactly as the official scripts) and early stopping."""
from __future__ import annotations

import math

import pytest
import torch

from kronos_train.config import SchedulerConfig
from kronos_train.train.early_stopping import EarlyStopping
from kronos_train.train.schedules import LRSchedule

PEAK = 2e-4


def make(name: str, total: int = 100, **cfg) -> tuple[torch.optim.Optimizer, LRSchedule]:
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = torch.optim.AdamW(params, lr=PEAK, betas=(0.9, 0.95))
    return opt, LRSchedule(opt, SchedulerConfig(name=name, **cfg), total, PEAK)


def lrs(opt: torch.optim.Optimizer, sched: LRSchedule, steps: int, val: float | None = None) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(sched.lr)
        opt.step()
        sched.after_step()
        if val is not None:
            sched.after_validation(val)
    return out


def test_onecycle_is_the_official_schedule():
    opt, sched = make("onecycle", total=1000)
    betas = []
    values = []
    for _ in range(1000):
        values.append(sched.lr)
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.after_step()
    assert values[0] == pytest.approx(PEAK / 10)                    # div_factor 10
    assert max(values) == pytest.approx(PEAK) and values.index(max(values)) in (29, 30)   # pct_start 0.03
    assert values[-1] == pytest.approx(PEAK * 1e-5, rel=0.05)       # final_div_factor 1e4
    # cycle_momentum: beta1 goes 0.95 -> 0.85 at the peak -> back to 0.95 (spec P9)
    assert betas[0] == pytest.approx(0.95) and min(betas) == pytest.approx(0.85) and betas[-1] == pytest.approx(0.95, abs=1e-3)


def test_step_wise_schedules_have_their_shape():
    const = lrs(*make("constant"), 50)
    assert set(const) == {PEAK}
    cos = lrs(*make("cosine", total=50, min_lr_ratio=0.01), 50)
    assert cos[0] == pytest.approx(PEAK) and cos == sorted(cos, reverse=True) and cos[-1] > PEAK * 0.01
    warm = lrs(*make("warmup_cosine", total=100, warmup_ratio=0.1), 100)
    assert warm[0] == pytest.approx(PEAK / 10) and warm[9] == pytest.approx(PEAK)
    assert warm[:10] == sorted(warm[:10]) and warm[10:] == sorted(warm[10:], reverse=True)


def test_plateau_lowers_the_lr_on_validation_only():
    opt, sched = make("plateau", plateau_factor=0.5, plateau_patience=1)
    assert lrs(opt, sched, 5) == [PEAK] * 5            # optimizer steps do not move it
    for val in (1.0, 1.0, 1.0):                        # best, then two without progress
        sched.after_validation(val)
    assert sched.lr == pytest.approx(PEAK / 2)
    sched.after_validation(float("nan"))               # a NaN loss is ignored, not a crash
    assert sched.lr == pytest.approx(PEAK / 2)


@pytest.mark.parametrize("name", ["onecycle", "constant", "cosine", "warmup_cosine", "plateau"])
def test_every_schedule_resumes_exactly(name):
    opt, sched = make(name, total=40, warmup_ratio=0.1)
    straight = lrs(opt, sched, 25, val=1.0)
    opt1, sched1 = make(name, total=40, warmup_ratio=0.1)
    first = lrs(opt1, sched1, 10, val=1.0)
    saved_opt, saved_sched = opt1.state_dict(), sched1.state_dict()
    opt2, sched2 = make(name, total=40, warmup_ratio=0.1)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert first + lrs(opt2, sched2, 15, val=1.0) == straight


def test_early_stopping_fires_after_patience_bad_evaluations():
    es = EarlyStopping(patience=3, min_delta=0.01)
    assert es.update(1.0, 0, 0)                  # the baseline sets the first best
    assert es.update(0.9, 10, 1)                 # better by more than min_delta
    assert not es.update(0.895, 20, 2)           # better, but not by more than min_delta
    assert not es.should_stop
    assert not es.update(float("nan"), 30, 3)    # a NaN never improves
    assert not es.should_stop
    assert not es.update(2.0, 40, 4)
    assert es.should_stop and es.bad_evals == 3 and es.best == 0.9 and es.best_step == 10


def test_early_stopping_state_round_trips_through_json():
    import json

    es = EarlyStopping(patience=2)
    es.update(0.5, 3, 1)
    es.update(0.6, 6, 2)
    copy = EarlyStopping(patience=2)
    copy.load_state_dict(json.loads(json.dumps(es.state_dict())))
    assert (copy.best, copy.best_step, copy.bad_evals) == (0.5, 3, 1)
    fresh = EarlyStopping(patience=2)
    fresh.load_state_dict(json.loads(json.dumps(EarlyStopping(patience=2).state_dict())))
    assert math.isinf(fresh.best)


def test_disabled_early_stopping_never_stops_but_tracks_the_best():
    es = EarlyStopping(patience=1, enabled=False)
    es.update(1.0, 0, 0)
    es.update(2.0, 1, 1)
    assert not es.should_stop and es.best == 1.0
