"""Mirror a run's events to TensorBoard, MLflow and W&B, live and after the fact.

Light: this module and ``scalars``/``state`` import no tracker package; the backends
import theirs when opened.  See docs/tracking.md.
"""
from __future__ import annotations

import importlib.util

from ..config import TRACKERS

# tracker name -> (module to import, extra to install)
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}


def install_line(tracker: str) -> str:
    return f"pip install 'kronos-tui[{PACKAGES[tracker][1]}]'"


def missing_packages(report_to: list[str]) -> list[str]:
    """Trackers asked for whose package is not importable (found without importing it)."""
    return [name for name in report_to if name in PACKAGES and importlib.util.find_spec(PACKAGES[name][0]) is None]


__all__ = ["TRACKERS", "PACKAGES", "install_line", "missing_packages"]
