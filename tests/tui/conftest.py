"""Fixtures for the TUI tests: synthetic run folders, a fake NVML, an app factory.

Every test gets its own logs folder and user preset folder, a fake NVML with
several GPUs (one field unsupported), model checks that never start torch, and
a fast poll interval so the follower answers within a few frames.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from textual.widgets import Input, TextArea

sys.path.insert(0, str(Path(__file__).resolve().parent))           # screen_text
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))       # fake_nvml

from fake_nvml import FakeGpu, FakeNvml  # noqa: E402

from kronos_train.checks import CheckResult  # noqa: E402
from kronos_tui.app import KronosApp  # noqa: E402
from kronos_tui.services import Services  # noqa: E402

from tui_helpers import FIXED_NOW  # noqa: E402


@pytest.fixture(autouse=True)
def _steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """No blinking cursor: snapshots and text assertions stay deterministic."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None, raising=False)


@pytest.fixture
def nvml() -> FakeNvml:
    """Three GPUs: two busy H100s and an older board without power readings."""
    return FakeNvml(gpus=[FakeGpu(), FakeGpu(util=45.0),
                          FakeGpu(name="Tesla P100", power_mw=None, temp=None, util=88.0)])


class Calls:
    def __init__(self) -> None:
        self.preset_model_checks: list[str] = []
        self.run_model_checks: list[str] = []
        self.launches: list[tuple[str, dict[str, Any]]] = []
        self.resumes: list[str] = []


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def services(tmp_path: Path, nvml: FakeNvml, calls: Calls, monkeypatch: pytest.MonkeyPatch) -> Services:
    logs = tmp_path / "logs"
    logs.mkdir()
    user = tmp_path / "user-presets"
    user.mkdir()
    monkeypatch.setenv("KRONOS_LOGS_DIR", str(logs))
    monkeypatch.setenv("KRONOS_TUI_PRESETS", str(user))

    def preset_model_check(preset: str) -> list[CheckResult]:
        calls.preset_model_checks.append(preset)
        return [CheckResult("models.load", "Pretrained models load and fit together", "ok", "fake: both loaded")]

    def run_model_check(run: Any) -> list[CheckResult]:
        calls.run_model_checks.append(run.run_id)
        return [CheckResult("models.load", "The model loads for inference", "ok", "fake: best/ loads")]

    def fake_resume(run: Any) -> int:
        calls.resumes.append(run.run_id)
        return 4242

    return Services(logs_dir=logs, nvml=nvml, preset_model_check=preset_model_check,
                    run_model_check=run_model_check, resume=fake_resume, clock=lambda: FIXED_NOW,
                    poll_interval=0.05, user_presets_dir=user, auto_model_check=True)


@pytest.fixture
def make_app(services: Services) -> Callable[..., KronosApp]:
    def make(target: str | None = None, **kwargs: Any) -> KronosApp:
        return KronosApp(target, services=services, **kwargs)
    return make
