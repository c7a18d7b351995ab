"""``<run>/tracking.json``: which tracker run a kronos run publishes to, so a resumed
attempt (and the next stage) continues the same one, and the checklist can say where.

The file comes from a run folder, which may have been copied or edited: every entry is
checked for type and shape, and one that fails is ignored (a new tracker run is started
and the file rewritten) rather than trusted.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..control.runfolder import RunFolder, read_json, write_json_atomic

STATE_FILE = "tracking.json"
# MLflow run ids are 32 hex digits, W&B ids short alphanumerics; allow both, nothing else.
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_LOCATION = 4096


@dataclass(frozen=True)
class TrackerState:
    location: str          # TensorBoard folder, MLflow tracking URI, W&B run folder
    run_id: str = ""       # the tracker's own run id (MLflow, W&B)


def state_path(run: RunFolder) -> Path:
    return run.path / STATE_FILE


def parse_entry(raw: object) -> TrackerState | None:
    if not isinstance(raw, dict):
        return None
    location, run_id = raw.get("location"), raw.get("run_id", "")
    if not isinstance(location, str) or not isinstance(run_id, str) or len(location) > MAX_LOCATION:
        return None
    if run_id and not RUN_ID.match(run_id):
        return None
    return TrackerState(location=location, run_id=run_id)


def read_state(run: RunFolder) -> dict[str, TrackerState]:
    """The valid entries of tracking.json by tracker name (empty when absent or unreadable)."""
    raw = read_json(state_path(run)) or {}
    entries = {name: parse_entry(value) for name, value in raw.items() if isinstance(name, str)}
    return {name: entry for name, entry in entries.items() if entry is not None}


def remember(run: RunFolder, tracker: str, entry: TrackerState) -> None:
    """Record one tracker's run; written only by rank 0's tracking thread, one stage at a time."""
    state = {name: asdict(value) for name, value in read_state(run).items()}
    state[tracker] = asdict(entry)
    write_json_atomic(state_path(run), state)
