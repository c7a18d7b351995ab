"""kronos_train: the engine behind kronos-tui.

Light (no torch): ``control`` (the control plane: run folder, events and their
fold, run config, launch, supervisor, ...), ``config``, ``checks``, ``advisor``,
``data`` (numpy/pyarrow).  Heavy (torch): ``model``, ``train``, ``evaluation``.
Who may import whom: docs/architecture.md, enforced by tests/test_architecture.py.
"""
__version__ = "0.1.0"
