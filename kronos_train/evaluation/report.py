"""What an evaluation leaves behind: ``eval.json``, an ``eval`` event, and the terminal table."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..control.events import finite_json

EVAL_FILE = "eval.json"


def write_eval(run_dir: Path, result: dict[str, Any], path: Path | None = None) -> Path:
    """``eval.json`` (atomic) and an ``eval`` event in the run's events.jsonl."""
    from ..control.events import EventWriter
    from ..control.runfolder import write_json_atomic

    target = Path(path) if path else Path(run_dir) / EVAL_FILE
    write_json_atomic(target, finite_json(result))
    with EventWriter(Path(run_dir) / "events.jsonl") as writer:
        writer.emit("eval", horizon=result["horizon"], metrics=result["metrics"], models=result["models"],
                    path=str(target), windows=result["windows"])
    return target


def write_eval_file(path: Path, result: dict[str, Any]) -> Path:
    from ..control.runfolder import write_json_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(path), finite_json(result))
    return Path(path)


TABLE_COLUMNS = (("direction_accuracy", "dir. acc", "{:.1%}"), ("mae_return", "MAE return", "{:.4f}"),
                 ("up_share", "pred. up", "{:.1%}"), ("ce", "CE", "{:.4f}"))


def format_table(result: dict[str, Any]) -> str:
    """The terminal table: one row per model, best direction accuracy marked."""
    metrics = result["metrics"]
    best = max((m.get("direction_accuracy") or 0.0) for m in metrics.values())
    header = f"{'model':<17}" + "".join(f"{title:>12}" for _, title, _ in TABLE_COLUMNS)
    lines = [f"horizon {result['horizon']} steps, {result['windows']} validation windows "
             f"({result['tickers']} tickers; truth up in {result['truth']['up_share']:.1%})", header,
             "-" * len(header)]
    for name in result["models"]:
        row = metrics[name]
        cells = "".join(f"{_cell(row.get(key), fmt):>12}" for key, _, fmt in TABLE_COLUMNS)
        mark = " *" if row.get("direction_accuracy") == best else ""
        lines.append(f"{name:<17}{cells}{mark}")
    lines.append("* best direction accuracy; MAE/CE '-' where a baseline has no return or loss")
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


__all__ = ["EVAL_FILE", "format_duration", "format_table", "print_err", "write_eval", "write_eval_file"]
