"""Subcommands of ``kronos-train`` (one module each; see kronos_train/cli.py)."""
from __future__ import annotations

import argparse
import sys

from ..control.runfolder import RunFolder, find_run, logs_dir_from_env


def run_from_args(args: argparse.Namespace, command: str) -> RunFolder | None:
    """The run named by ``args.run`` in ``args.logs``, or None after saying on stderr
    why there is none (the command then exits 2)."""
    try:
        return find_run(args.run, getattr(args, "logs", None) or logs_dir_from_env())
    except LookupError as exc:
        print(f"kronos-train {command}: {exc}", file=sys.stderr)
        return None
