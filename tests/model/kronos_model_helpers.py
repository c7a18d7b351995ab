"""Helpers shared by the kronos_train.model tests (a uniquely named module, not conftest,
so that other test folders' conftest files cannot shadow it)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REF_DIR = REPO_ROOT / "tests" / "fixtures" / "kronos-ref"


def reference_dir() -> Path:
    """Fixture folder: $KRONOS_REF_DIR if set, else the copy shipped with the tests."""
    return Path(os.environ.get("KRONOS_REF_DIR") or DEFAULT_REF_DIR)
