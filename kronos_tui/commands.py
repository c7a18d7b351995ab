"""The command palette (ctrl+p): every key of the current screen, plus
"switch preset: …" and "attach run: …" entries.

Actions come from the screen's active bindings, so a key added to a screen is
in the palette with no extra code; actions that ``check_action`` disables are
left out, as they are dimmed in the footer.  Presets and runs are listed once
per opening of the palette, off the UI thread (they read folders), not on
every key typed.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

SKIP_ACTIONS = {"app.focus_next", "app.focus_previous", "screen.copy_text", "help_quit", "command_palette",
                "app.command_palette"}
RUNS_LISTED = 20

Command = tuple[str, Any, str]          # title, callback, help text


class KronosCommands(Provider):
    async def startup(self) -> None:
        """When the palette opens: the presets and runs to offer while it stays open."""
        self._listed = await asyncio.to_thread(self._presets_and_runs)

    def _presets_and_runs(self) -> list[Command]:
        app: Any = self.app
        found: list[Command] = []
        try:
            from kronos_train.config import list_presets

            for info in list_presets(app.services.extra_preset_dirs):
                found.append((f"Switch preset: {info.name}", partial(app.select_preset, info.name),
                              f"{info.origin}: {info.path}"))
        except Exception:          # a broken preset folder must not break the palette
            pass
        try:
            from kronos_train.control.runfolder import list_runs

            for run in list_runs(app.services.logs_dir)[:RUNS_LISTED]:
                found.append((f"Attach run: {run.run_id}", partial(app.attach, run), "follow it on the monitor"))
        except OSError:
            pass
        return found

    def _keys(self) -> Iterator[Command]:
        """The current screen's active bindings (read on the UI thread: they change with the screen)."""
        app: Any = self.app
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not active.enabled or binding.action in SKIP_ACTIONS or not binding.description:
                continue
            title = f"{binding.description}"
            if title in seen:
                continue
            seen.add(title)
            yield title, partial(app.run_action, binding.action, active.node), f"key: {binding.key_display or key}"

    async def discover(self) -> Hits:
        for title, callback, help_text in self._keys():
            yield DiscoveryHit(title, callback, help=help_text)

    def _commands(self) -> list[Command]:
        return [*self._keys(), *self._listed]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
