"""One events record -> the tracker scalars it stands for.

The live sink (rank 0, while training) and ``kronos-train export --to`` (after the
fact, through ``export.fold_points``) both go through ``ScalarMapper``, so a tracker
fed live and one fed from the folder hold the same points.  Names say the stage:
``tokenizer/train/loss``, ``basemodel/val/loss``, ``tokenizer/gpu/node1/0/util``.
The x axis is the stage's optimizer step.  Light: no tracker package, no torch.
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable, NamedTuple

from ..export import fold_points, stage_rank

STEP_SCALARS = {"loss": "train/loss", "lr": "train/lr", "grad_norm": "train/grad_norm", "epoch": "train/epoch",
                "samples_per_s": "perf/samples_per_s", "data_wait": "perf/data_wait",
                "step_time_s": "perf/step_time_s", "mem_gb": "perf/mem_gb"}
VAL_SCALARS = {"val_loss": "val/loss", "best_val_loss": "val/best_loss", "bad_evals": "val/bad_evals"}
GPU_SCALARS = ("util", "mem_used_mb", "temp_c", "power_w")
# Stages finished for good: nothing of theirs can be dropped by a later resume.
FINAL_STAGE_STATUSES = ("completed", "early_stopped")


class Point(NamedTuple):
    stage: str
    tag: str          # full name, stage first
    step: int
    value: float
    t: float          # unix seconds of the record


def number(value: Any) -> float | None:
    """A finite float, or None for null, NaN, booleans and anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def safe_name(text: Any) -> str:
    """Hosts go into metric names: keep what every tracker accepts."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text)) or "_"


class ScalarMapper:
    """Stateful over one record sequence (a stage process's own, or the whole file):
    ``gpu`` readings carry no step, so one is placed at the step its stage has reached,
    at most once per step; a resumed attempt places nothing at or before the step it
    resumed from (the earlier attempt published those)."""

    def __init__(self) -> None:
        self.step: dict[str, int] = {}                  # stage -> latest step seen
        self.floor: dict[str, int] = {}                 # stage -> steps up to here belong to an earlier attempt
        self.gpu_step: dict[tuple[str, str], int] = {}  # (stage, host) -> step of the last reading placed

    def points(self, rec: dict[str, Any]) -> list[Point]:
        event, stage = rec.get("event"), rec.get("stage")
        if not isinstance(stage, str) or not stage:
            return []
        if event == "stage_start":
            self._start(stage, rec.get("resumed_from"))
            return []
        if event == "gpu":
            return self._gpu(stage, rec)
        step = rec.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step <= self.floor.get(stage, -1):
            return []
        self.step[stage] = max(self.step.get(stage, 0), step)
        t = number(rec.get("t")) or 0.0
        if event == "step":
            values = {name: rec.get(key) for key, name in STEP_SCALARS.items()}
            parts = rec.get("parts")
            if isinstance(parts, dict):
                values.update((f"train/{safe_name(part)}", value) for part, value in parts.items())
        elif event == "val":
            values = {name: rec.get(key) for key, name in VAL_SCALARS.items()}
        elif event == "checkpoint" and rec.get("kind") in ("last", "best"):
            values = {f"events/checkpoint_{rec['kind']}": 1.0}
        elif event == "early_stop":
            values = {"events/early_stop": 1.0}
        else:
            return []
        return [Point(stage, f"{stage}/{name}", step, v, t)
                for name, value in values.items() if (v := number(value)) is not None]

    def _start(self, stage: str, resumed_from: Any) -> None:
        floor = resumed_from if isinstance(resumed_from, int) and not isinstance(resumed_from, bool) else -1
        self.floor[stage] = floor
        self.step[stage] = max(floor, 0)
        for key in [k for k in self.gpu_step if k[0] == stage]:
            del self.gpu_step[key]

    def _gpu(self, stage: str, rec: dict[str, Any]) -> list[Point]:
        host = safe_name(rec.get("host") or "host")
        step, floor = self.step.get(stage, 0), self.floor.get(stage, -1)
        if step <= max(floor, self.gpu_step.get((stage, host), -1)) or not isinstance(rec.get("gpus"), list):
            return []
        self.gpu_step[(stage, host)] = step
        t = number(rec.get("t")) or 0.0
        out = []
        for gpu in rec["gpus"]:
            if not isinstance(gpu, dict) or number(gpu.get("index")) is None:
                continue
            for name in GPU_SCALARS:
                value = number(gpu.get(name))
                if value is not None:
                    out.append(Point(stage, f"{stage}/gpu/{host}/{int(gpu['index'])}/{name}", step, value, t))
        return out


def published_points(records: Iterable[dict[str, Any]]) -> list[Point]:
    """What a tracker should hold for a whole events file, resumes accounted for, in
    stage order, then step: the after-the-fact export (``kronos-train export --to``)."""
    mapper = ScalarMapper()
    folded = fold_points(records, lambda rec: (((p.stage, p.tag, p.step), p) for p in mapper.points(rec)))
    order = {key: i for i, key in enumerate(folded)}
    return [folded[key] for key in sorted(folded, key=lambda k: (stage_rank(k[0]), k[0], k[2], order[k]))]
