"""Early stopping on the validation loss (the guide: stop after 3-5 epochs without progress).

``patience`` counts validation passes that did not improve on the best by
more than ``min_delta`` (strict, absolute: Lightning's and HF's rule).  The
baseline pass before the first epoch sets the first best, so a fine-tune that
never beats the starting model stops after ``patience`` epochs.  A NaN or
infinite loss never improves.  Only rank 0 feeds it; the decision reaches the
other ranks through a broadcast (see loop.py), so all ranks stop together.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    patience: int
    min_delta: float = 0.0
    enabled: bool = True
    best: float = math.inf
    best_step: int | None = None
    best_epoch: int | None = None
    bad_evals: int = 0

    def update(self, val_loss: float, step: int, epoch: int) -> bool:
        """Record one validation loss; True when it is a new best."""
        improved = math.isfinite(val_loss) and val_loss < self.best - self.min_delta
        if improved:
            self.best, self.best_step, self.best_epoch, self.bad_evals = val_loss, step, epoch, 0
        else:
            self.bad_evals += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.enabled and self.bad_evals >= self.patience

    @property
    def best_or_none(self) -> float | None:
        return self.best if math.isfinite(self.best) else None

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["best"] = self.best_or_none          # JSON has no infinity
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = math.inf if state.get("best") is None else float(state["best"])
        self.best_step = state.get("best_step")
        self.best_epoch = state.get("best_epoch")
        self.bad_evals = int(state.get("bad_evals", 0))
