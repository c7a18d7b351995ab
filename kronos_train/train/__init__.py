"""The training stages: one ``torchrun`` process group per stage.

``stages.py`` is the torchrun entry point (``python -m kronos_train.train.stages
RUN_DIR STAGE``); ``loop.py`` is the training loop; the other modules are the
pieces it is built from.  This package file stays light (no torch) because
``commit.py`` and ``failures.py`` are also used by the supervisor and launcher.
"""
