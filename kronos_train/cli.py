"""``kronos-train``: everything the TUI does, as commands for scripts and SLURM.

Each subcommand lives in ``kronos_train/commands/<name>.py`` with
``add_arguments(parser)`` and ``main(args) -> int``; its module docstring's
first line is the help text.  Commands are imported only when chosen, so
``kronos-train status`` never pays for importing torch.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = ("presets", "check", "run", "status", "stop", "resume", "slurm", "evaluate", "predict", "export")


def _help_line(name: str) -> str:
    spec = importlib.util.find_spec(f"kronos_train.commands.{name}")
    if spec is None or spec.origin is None:
        return ""
    # Read the docstring without importing the module (imports can be heavy).
    import ast

    with open(spec.origin, encoding="utf-8") as fh:
        doc = ast.get_docstring(ast.parse(fh.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kronos-train",
                                     description="Everything the kronos-tui cockpit does, as commands for scripts and SLURM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if importlib.util.find_spec(f"kronos_train.commands.{name}") is None:
            continue
        help_line = _help_line(name)
        sp = sub.add_parser(name, help=help_line, description=help_line)
        if name == chosen:
            importlib.import_module(f"kronos_train.commands.{name}").add_arguments(sp)
        else:
            sp.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


class _PipeTolerantStdout:
    """stdout that survives its reader going away (`kronos-train run ... | head -1`): the
    command carries on (a launch is never left half done) and further output is dropped."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def _drop_output(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop_output()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop_output()
            self._stream.flush()


def main(argv: list[str] | None = None) -> int:
    if not isinstance(sys.stdout, _PipeTolerantStdout) and hasattr(sys.stdout, "fileno"):
        sys.stdout = _PipeTolerantStdout(sys.stdout)
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(f"kronos_train.commands.{args.command}")
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
