"""Open the kronos-tui cockpit: presets, checklist, launch, live monitor, runs, advisor.

With a preset name (or file) it is selected; with a run id (or ``last``) the
monitor attaches to it; with nothing, a run still going from an earlier session
is found and attached.  Quitting never stops a run.
"""
from __future__ import annotations

import argparse
import locale
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kronos-tui", description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", metavar="PRESET_OR_RUN",
                        help="a preset name or YAML file to select, or a run id / folder / 'last' to monitor")
    parser.add_argument("--logs", type=Path, default=None,
                        help="logs folder with the runs (default: $KRONOS_LOGS_DIR or ./logs)")
    parser.add_argument("--ascii", action="store_true",
                        help="ASCII bars and sparklines (for terminals without a UTF-8 locale)")
    parser.add_argument("--refresh", type=float, default=0.5, metavar="SECONDS",
                        help="how often the monitor looks for new events (default 0.5 s)")
    return parser


def utf8_terminal() -> bool:
    encoding = (getattr(sys.stdout, "encoding", "") or locale.getpreferredencoding(False) or "").lower()
    return "utf" in encoding


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from kronos_train.control.runfolder import logs_dir_from_env

    from .app import KronosApp
    from .services import Services

    services = Services(logs_dir=args.logs or logs_dir_from_env(), poll_interval=max(0.1, args.refresh))
    app = KronosApp(args.target, services=services, ascii_only=args.ascii or not utf8_terminal())
    app.run()
    run = app.attached_run
    if run is not None and run.is_alive():
        print(f"{run.run_id} keeps running (detached). `kronos-tui` attaches again; "
              f"`kronos-train status {run.run_id}` from a script.")
    return int(app.return_code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
