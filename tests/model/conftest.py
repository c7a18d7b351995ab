"""Shared fixtures for the kronos_train.model tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kronos_model_helpers import reference_dir


@pytest.fixture(autouse=True)
def _few_threads():
    # Tiny models: extra threads only add overhead on a 2-core machine.
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    path = reference_dir()
    if not (path / "expected.pt").is_file():
        pytest.skip(f"reference fixtures not found in {path}")
    return path
