"""Helpers shared by the TUI tests."""
from __future__ import annotations

import time
from typing import Any, Callable

from screen_text import screen_text

FIXED_NOW = 1_764_270_100.0


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Let the app run until ``predicate()`` is truthy (workers post from threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}\n--- screen ---\n{screen_text(pilot.app)}")


async def wait_text(pilot: Any, text: str, timeout: float = 10.0) -> str:
    def found() -> str:
        shown = screen_text(pilot.app)
        return shown if text in shown else ""
    return await wait_for(pilot, found, timeout, f"'{text}' on screen")


async def type_into(pilot: Any, text: str, target: Any = None) -> None:
    """Replace an Input's value at once, as a paste does (pressing each key of a
    long path is slow); ``target`` defaults to the focused widget."""
    widget = target if target is not None else pilot.app.focused
    widget.value = text
    await pilot.pause(0.05)
