"""The light control plane: what a run is, readable without torch.

The run folder, its events (writer, reader, the one tailer) and the one fold of
them into run state (``summary.RunSummary``), the single reader of a run's
``config.yaml``, the checkpoint commit protocol, failure kinds, launching and
the detached supervisor, process helpers and GPU readings.

Standard library (and numpy at most) only: ``kronos_tui`` imports this package
and must paint its first frame without loading torch.  ``kronos_train.train``
(torch) uses this package, never the other way round; both rules are import
contracts in pyproject.toml, checked by tests/test_architecture.py.
See docs/architecture.md.
"""
