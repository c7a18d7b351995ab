"""After the fact: publish a run's folder to a tracker (``kronos-train export RUN --to X``).

The points are ``published_points``: the same mapping the live sink uses, through the
export fold, so resumed attempts are accounted for exactly as in the CSV.  Each export
starts a fresh tracker run (tagged ``kronos.source = export``); it never appends to the
run a live tracker filled, which would show every step twice.
"""
from __future__ import annotations

from typing import Any

from ..config import KronosConfig
from ..control.events import read_events
from ..control.runfolder import RunFolder
from .backends import BACKENDS, TrackingContext
from .scalars import published_points


def best_folders(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(stage, best_path) of each stage that ended with a best model, last word wins."""
    found = {rec["stage"]: rec["best_path"] for rec in records
             if rec.get("event") == "stage_end" and isinstance(rec.get("stage"), str)
             and isinstance(rec.get("best_path"), str)}
    return list(found.items())


def publish_run(run: RunFolder, cfg: KronosConfig, tracker: str, target: str = "") -> tuple[str, int]:
    """Publish every point of the run to one tracker; returns (where, points).  Raises
    ``TrackerUnavailable`` (package missing, folder in use) or the tracker's own error."""
    from pathlib import Path

    records = read_events(run.events_path)
    points = published_points(records)
    backend = BACKENDS[tracker]()
    backend.open(TrackingContext(run=run, cfg=cfg, preset=run.preset_name(), fresh=True, target=target))
    status = "completed"
    try:
        backend.log(points)
        if cfg.tracking.mlflow_log_models:
            for stage, folder in best_folders(records):
                if Path(folder).is_dir():
                    backend.log_model(stage, Path(folder))
        ends = [r.get("status") for r in records if r.get("event") == "run_end"]
        status = {"aborted": "stopped"}.get(str(ends[-1]), str(ends[-1])) if ends else "stopped"
    finally:
        backend.close(status)
    return backend.where(), len(points)
