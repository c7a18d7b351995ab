"""Write a run's curves as CSV: every step and validation point, resumes accounted for."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..events import read_events
from ..export import curve_points, to_csv
from ..runfolder import write_text_atomic
from . import run_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, unique prefix, folder, or 'last'")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="where to write (default: <run folder>/curves.csv; '-' for standard output)")
    parser.add_argument("--logs", type=Path, default=None, help="logs folder (default ./logs or $KRONOS_LOGS_DIR)")


def main(args: argparse.Namespace) -> int:
    run = run_from_args(args, "export")
    if run is None:
        return 2
    if not run.events_path.is_file():
        print(f"kronos-train export: {run.events_path} does not exist: the run has logged nothing yet",
              file=sys.stderr)
        return 2
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
