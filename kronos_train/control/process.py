"""Process helpers shared by the supervisor and the training ranks.

Light module: standard library only, so ``train/`` can use it without reaching
up into the supervisor.
"""
from __future__ import annotations

import ctypes


def set_parent_death_signal(sig: int) -> None:
    """Linux: deliver ``sig`` to this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(sig))           # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
