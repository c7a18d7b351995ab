"""Subcommands of ``kronos-train`` (one module each; see kronos_train/cli.py)."""
