"""Shared by the tracking tests (a plain module: test files import it, not conftest)."""
from __future__ import annotations

import importlib.util
import math
import os
from collections import defaultdict
from pathlib import Path

import pytest

from kronos_train.control.events import read_events
from kronos_train.tracking.scalars import published_points

STOP_AT = 5                       # the planned stop: mid-epoch in the basemodel stage


def need(module: str) -> None:
    """Skip without the tracker package, except on CI, where the [test] extra installs it."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed on CI: pip install -e '.[test]' installs it")
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


def expected(run) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] in step order: what every tracker must hold."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for p in published_points(read_events(run.events_path)):
        series[p.tag].append((p.step, p.value))
    return dict(series)


def same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """Same steps, each once, in order; values equal up to float32 (TensorBoard stores float32)."""
    return [s for s, _ in got] == [s for s, _ in want] and all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for (_, a), (_, b) in zip(got, want))


def tensorboard_series(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of a folder as TensorBoard's own reader sees it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
