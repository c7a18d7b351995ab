"""Write a run's curves as CSV, or publish them to a tracker (--to): every step and validation
point, resumes accounted for."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..control.events import read_events
from ..export import curve_points, to_csv
from ..control.launch import LaunchError, load_run_config
from ..control.runfolder import RunFolder, write_text_atomic
from . import run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, folder, or 'last'")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="where to write (default: <run folder>/curves.csv; '-' for standard output)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")
    parser.add_argument("--to", nargs="+", default=None, metavar="TRACKER [TARGET]",
                        help="publish to a tracker instead of writing CSV: 'tensorboard [DIR]' (default "
                             "<run>/tensorboard), 'mlflow [URI]' (default tracking.mlflow_tracking_uri or "
                             "$MLFLOW_TRACKING_URI), 'wandb' (tracking.wandb_project / wandb_mode)")


def main(args: argparse.Namespace) -> int:
    run = run_from_args(args, "export")
    if run is None:
        return 2
    if not run.events_path.is_file():
        print(f"kronos-train export: {run.events_path} does not exist: the run has logged nothing yet",
              file=sys.stderr)
        return 2
    if args.to:
        return publish(run, args.to)
    rows = curve_points(read_events(run.events_path))
    text = to_csv(rows)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out) if args.out else run.path / "curves.csv"
    write_text_atomic(out, text)
    steps = sum(row["kind"] == "step" for row in rows)
    print(f"wrote {out}: {steps} step and {len(rows) - steps} validation rows of run {run.run_id}", file=sys.stderr)
    return 0


def publish(run: RunFolder, to: list[str]) -> int:
    """``--to TRACKER [TARGET]``: a fresh tracker run with every point the CSV would hold."""
    from ..tracking import TRACKERS
    from ..tracking.backends import TrackerUnavailable
    from ..tracking.publish import publish_run

    tracker, target = to[0], (to[1] if len(to) > 1 else "")
    if tracker not in TRACKERS or len(to) > 2 or (tracker == "wandb" and target):
        print(f"kronos-train export: --to {' '.join(to)}: expected 'tensorboard [DIR]', 'mlflow [URI]' or 'wandb'",
              file=sys.stderr)
        return 2
    try:
        cfg = load_run_config(run)
    except LaunchError as exc:
        print(f"kronos-train export: {exc}", file=sys.stderr)
        return 2
    try:
        where, points = publish_run(run, cfg, tracker, target)
    except TrackerUnavailable as exc:
        print(f"kronos-train export: {tracker}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the tracker's own failure (server down ...): say it, exit 1
        print(f"kronos-train export: {tracker} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"published {points} points of run {run.run_id} to {tracker}: {where}", file=sys.stderr)
    return 0
