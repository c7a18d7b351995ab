"""Reusable widgets of kronos-tui (each small, with its own DEFAULT_CSS)."""
