"""List the presets (project, user and bundled folders) with their parent and state."""
from __future__ import annotations

import argparse
import json

from ..config import errors_of, list_presets, load_preset, read_yaml, ConfigError


UNREADABLE = ("<file>", "<yaml>", "<root>")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def main(args: argparse.Namespace) -> int:
    rows = []
    for info in list_presets():
        try:
            parent = read_yaml(info.path).get("extends", "") or ""
        except ConfigError:
            parent = "?"
        _, problems = load_preset(info.path)
        state = f"{len(errors_of(problems))} error(s)" if errors_of(problems) else "ok"
        if any(p.path in UNREADABLE for p in problems):      # not YAML text at all: say so, keep listing
            state = "unreadable"
        rows.append({"name": info.name, "origin": info.origin, "extends": parent, "state": state, "path": str(info.path)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    print(f"{'preset':<{width}}  {'origin':<8} {'extends':<12} {'state':<12} path")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['origin']:<8} {r['extends']:<12} {r['state']:<12} {r['path']}")
    return 0
