"""Shared test set-up: keep torch to the cores we have and runs out of ./logs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Two cores on CI: more threads than cores only adds contention in small tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def logs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs land in a temporary logs folder, never in the repo's ./logs."""
    path = tmp_path / "logs"
    path.mkdir()
    monkeypatch.setenv("KRONOS_LOGS_DIR", str(path))
    return path


@pytest.fixture
def user_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user preset folder, so tests never read the developer's own."""
    path = tmp_path / "user-presets"
    path.mkdir()
    monkeypatch.setenv("KRONOS_TUI_PRESETS", str(path))
    return path
