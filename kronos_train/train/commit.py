"""Atomic directory commits (docs/run-folder.md, "Checkpoint commit protocol").

A checkpoint folder is written aside as ``.<name>.tmp-<step>/``, every file is
fsynced, then a ``COMMITTED`` marker (holding the step) is written last.  The
old ``<name>/`` is renamed to ``.<name>.old-<step>/``, the new one renamed into
place, and only then is the old one deleted.  A kill at any moment therefore
leaves at least one committed folder, and ``recover`` puts the newest committed
one back at ``<name>/``.

Light module (no torch): the launcher calls ``recover`` before deciding
whether a run can be resumed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

from ..runfolder import COMMIT_MARKER

_ASIDE = re.compile(r"^\.(?P<name>[A-Za-z0-9_]+)\.(?P<kind>tmp|old)-(?P<step>\d+)$")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and new entries in ``path`` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    for item in sorted(path.rglob("*")):
        if item.is_file():
            fsync_file(item)
    fsync_dir(path)


def aside_path(parent: Path, name: str, step: int) -> Path:
    return parent / f".{name}.tmp-{step}"


def aside_dir(parent: Path, name: str, step: int) -> Path:
    """A fresh, empty staging folder ``.<name>.tmp-<step>/`` next to the target."""
    tmp = aside_path(parent, name, step)
    if tmp.exists():
        shutil.rmtree(tmp)          # left by a kill during an earlier attempt at this step
    tmp.mkdir(parents=True)
    return tmp


def marker_step(folder: Path) -> int | None:
    """The step a committed folder was taken at; None when it is not committed."""
    try:
        text = (folder / COMMIT_MARKER).read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        return int(json.loads(text)["step"])
    except (ValueError, KeyError, TypeError):
        return -1                   # committed by an older writer: valid, step unknown


def commit_dir(tmp: Path, final: Path, step: int) -> Path:
    """Mark ``tmp`` committed and swap it in as ``final``; the old one goes last."""
    fsync_tree(tmp)
    marker = tmp / COMMIT_MARKER
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump({"step": int(step), "t": round(time.time(), 3)}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(tmp)
    old = final.parent / f".{final.name}.old-{step}"
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover(parent: Path, name: str) -> Path | None:
    """Leave the newest committed ``<name>`` folder in place and remove the rest.

    Called before loading: after a kill between the two renames of
    ``commit_dir`` there is no ``<name>/`` but a committed aside folder.
    Uncommitted staging folders are deleted (a kill left them half written).
    """
    final = parent / name
    candidates: list[tuple[int, int, Path]] = []
    if (step := marker_step(final)) is not None:
        candidates.append((step, 1, final))      # ties go to the folder already in place
    asides = [p for p in parent.glob(f".{name}.*") if (m := _ASIDE.match(p.name)) and m["name"] == name]
    for path in asides:
        if (step := marker_step(path)) is not None:
            candidates.append((step, 0, path))
    if not candidates:
        for path in asides:
            shutil.rmtree(path, ignore_errors=True)
        return None
    _, _, best = max(candidates, key=lambda c: (c[0], c[1]))
    if best != final:
        if final.exists():
            shutil.rmtree(final)
        os.replace(best, final)
        fsync_dir(parent)
    for path in asides:
        if path != best and path.exists():
            shutil.rmtree(path, ignore_errors=True)
    return final
