"""kronos-tui: the terminal cockpit for fine-tuning Kronos (never imports torch)."""
__version__ = "0.1.0"
