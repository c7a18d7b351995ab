"""A run's curves as one table (CSV): every step and validation point a reader
should believe after resumes, for a notebook, a spreadsheet or another tracker.

After a resume the earlier attempt's points past the step the new attempt
resumed from were never part of the final model's history: they are dropped,
as the TUI drops them, and a later attempt's point replaces an earlier one at
the same step.  Light: no torch, no pandas.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Callable, Iterable

from .control.events import STAGES

KINDS = ("step", "val")
COLUMNS = ("stage", "kind", "step", "epoch", "loss", "val_loss", "best_val_loss", "improved", "lr", "grad_norm",
           "samples_per_s", "data_wait", "mem_gb", "attempt", "t")
STEP_FIELDS = ("epoch", "loss", "lr", "grad_norm", "samples_per_s", "data_wait", "mem_gb", "attempt", "t")
VAL_FIELDS = ("epoch", "val_loss", "best_val_loss", "improved", "attempt", "t")


PointKey = tuple  # (stage, name, step, ...): a point a later attempt may replace or drop


def fold_points(records: Iterable[dict[str, Any]],
                points_of: Callable[[dict[str, Any]], Iterable[tuple[PointKey, Any]]]) -> dict[PointKey, Any]:
    """The resume rule of docs/events.md, once for every reader of a run's points.

    ``points_of(record)`` turns a record into ``(key, point)`` pairs keyed by
    ``(stage, name, step, ...)``.  A ``stage_start`` of a later attempt drops that
    stage's points past its ``resumed_from`` (all of them when it started over:
    ``resumed_from`` null); a later point replaces an earlier one with the same key.
    """
    points: dict[PointKey, Any] = {}
    for rec in records:
        if rec.get("event") == "stage_start" and int(rec.get("attempt") or 0) > 0:
            stage, start = rec.get("stage"), rec.get("resumed_from")
            start = start if isinstance(start, int) else -1
            points = {key: point for key, point in points.items() if not (key[0] == stage and key[2] > start)}
        for key, point in points_of(rec):
            points[key] = point
    return points


def stage_rank(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def curve_row(rec: dict[str, Any]) -> list[tuple[PointKey, dict[str, Any]]]:
    event, stage = rec.get("event"), rec.get("stage")
    if event not in KINDS or not stage or not isinstance(rec.get("step"), int):
        return []
    row = {"stage": stage, "kind": event, "step": rec["step"]}
    row.update((name, rec.get(name)) for name in (STEP_FIELDS if event == "step" else VAL_FIELDS))
    for part, value in (rec.get("parts") or {}).items():
        row[f"part_{part}"] = value
    return [((stage, event, rec["step"]), row)]


def curve_points(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in stage order, then step (a step's training point before its validation)."""
    points = fold_points(records, curve_row)

    def order(key: PointKey) -> tuple[int, str, int, int]:
        stage, kind, step = key
        return stage_rank(stage), stage, step, KINDS.index(kind)

    return [points[key] for key in sorted(points, key=order)]


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The fixed columns, then one ``part_<name>`` column per loss part seen."""
    parts = sorted({name for row in rows for name in row if name.startswith("part_")})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *parts], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()
