"""Control requests (early stop, stop, abort), agreed by all ranks on the same step.

The TUI and the CLI write ``requests/<kind>.json`` into the run folder.  Rank 0
looks once per optimizer step (one ``listdir``); its finding is shared with
one all-reduce, so every rank acts after the very same step and nobody is
left waiting in a collective.  An early stop aimed at another stage (its
``stage`` field) is ignored, so a late "early stop" for the tokenizer never
cuts the basemodel stage short; stop and abort concern the whole run, so
their ``stage`` (what the sender saw) does not matter.  A request with
``at_step`` waits until ``stage`` (any stage if it is None) reaches that
optimizer step: a stop planned ahead, e.g. before a maintenance window.
A ``deadline`` (``training.time_budget_minutes`` after the attempt began)
acts like a stop request from the source ``time_budget``.
"""
from __future__ import annotations

import os
import time

from ..control.events import TIME_BUDGET_SOURCE
from ..control.runfolder import RunFolder
from .distributed import DistEnv

# Stronger requests win when several are pending.
ACTIONS = (None, "early_stop", "stop", "abort")


class StopPoller:
    def __init__(self, run: RunFolder, stage: str, dist: DistEnv, deadline: float | None = None):
        self.run, self.stage, self.dist, self.deadline = run, stage, dist, deadline
        self.source: str | None = None
        self.warned: set[str] = set()

    def _pending_code(self, step: int) -> int:
        code = 0
        if self.deadline is not None and time.time() >= self.deadline:
            code, self.source = ACTIONS.index("stop"), TIME_BUDGET_SOURCE
        try:
            names = os.listdir(self.run.requests_dir)
        except FileNotFoundError:
            return code
        for kind in ACTIONS[1:]:
            if f"{kind}.json" not in names:
                continue
            request = self.run.pending_request(kind)
            if request is None or request.get("invalid"):
                self.warn_once(kind, request)
                continue
            if self._due(kind, request, step) and ACTIONS.index(kind) > code:
                code, self.source = ACTIONS.index(kind), request.get("source") or "request"
        return code

    def warn_once(self, kind: str, request: dict | None) -> None:
        """An unusable request file is ignored, said once per stage (it is polled every step)."""
        if kind in self.warned:
            return
        self.warned.add(kind)
        reason = (request or {}).get("invalid") or f"{kind}.json vanished while being read"
        print(f"[{self.stage}] {kind} request ignored: {reason}", flush=True)

    def _due(self, kind: str, request: dict, step: int) -> bool:
        aimed_here = request.get("stage") in (None, self.stage)
        at_step = request.get("at_step")
        if at_step is not None:
            return aimed_here and step >= int(at_step)
        return aimed_here or kind != "early_stop"

    def poll(self, step: int) -> str | None:
        """The action every rank takes after optimizer step ``step``, or None to go on."""
        code = self._pending_code(step) if self.dist.is_main else 0
        return ACTIONS[self.dist.all_reduce_max_int(code)]
