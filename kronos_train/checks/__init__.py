"""The guide's checklist as pure functions returning structured results.

Shared by the TUI's Checklist screen and ``kronos-train check``.  Phases:
``before`` (pre.py: config, data, paths, models, GPUs, disk, batch, time),
``during`` and ``after`` (run.py: judged from a run's folded events and folder;
trained_model.py: the trained networks load and beat the baselines).

Light package: nothing here imports torch at import time.  The checks that must
load networks (``pre.check_models``, ``trained_model.check_inference``) import
torch inside the function; the TUI runs them through ``kronos-train check
--json`` in a subprocess (out_of_process.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "error", "info", "skip", "pending"]
STATUS_ORDER = {"error": 0, "warn": 1, "pending": 2, "info": 3, "skip": 4, "ok": 5}
STATUS_SYMBOL = {"ok": "✓", "warn": "!", "error": "✗", "info": "i", "skip": "-", "pending": "…"}


@dataclass
class CheckResult:
    id: str                      # stable key, e.g. "data.valid"
    title: str                   # the guide's checklist line
    status: Status
    detail: str = ""             # what was found, with figures
    hint: str = ""               # what to do about it
    phase: Literal["before", "during", "after"] = "before"
    items: list[str] = field(default_factory=list)   # sub-lines (data report entries ...)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "CheckResult":
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)


def worst(results: list[CheckResult]) -> Status:
    if not results:
        return "ok"
    return min((r.status for r in results), key=lambda s: STATUS_ORDER[s])


def has_errors(results: list[CheckResult]) -> bool:
    return any(r.status == "error" for r in results)


def format_results(results: list[CheckResult]) -> str:
    """Plain-text table for the CLI (readable without colour)."""
    lines = []
    for r in results:
        lines.append(f"[{STATUS_SYMBOL[r.status]}] {r.status.upper():5} {r.title}: {r.detail}")
        for item in r.items:
            lines.append(f"          - {item}")
        if r.hint and r.status in ("error", "warn"):
            lines.append(f"          → {r.hint}")
    return "\n".join(lines)


__all__ = ["CheckResult", "Status", "STATUS_ORDER", "STATUS_SYMBOL", "worst", "has_errors", "format_results"]
