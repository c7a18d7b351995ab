"""Atomic directory commits (docs/run-folder.md, "Checkpoint commit protocol").

A checkpoint folder is written aside as ``.<name>.tmp-<step>/``, every file is
fsynced, then a ``COMMITTED`` marker (holding the step) is written last.  The
old ``<name>/`` is renamed to ``.<name>.old-<step>/``, the new one renamed into
place, and only then is the old one deleted.  A kill at any moment therefore
leaves at least one committed folder, and ``recover`` puts the newest committed
one back at ``<name>/``.

The marker also lists every file of the folder with its size and SHA-256
(``verify`` checks them), and ``commit_dir(..., keep=N)`` keeps the N - 1
previous committed folders as ``.<name>.kept-<step>/`` so a resume can fall back
to the newest one that verifies (``newest_verified``).

Light module (no torch): the launcher calls ``recover`` before deciding
whether a run can be resumed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import time
from pathlib import Path

from .runfolder import COMMIT_MARKER

_ASIDE = re.compile(r"^\.(?P<name>[A-Za-z0-9_]+)\.(?P<kind>tmp|old)-(?P<step>\d+)$")
_KEPT = re.compile(r"^\.(?P<name>[A-Za-z0-9_]+)\.kept-(?P<step>\d+)$")
_HASH_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: damaged, crafted, or written in an older format."""


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(folder: Path) -> dict[str, dict[str, object]]:
    """Every file of ``folder`` (relative path -> size and SHA-256), the marker excepted."""
    return {item.relative_to(folder).as_posix(): {"size": item.stat().st_size, "sha256": sha256_of(item)}
            for item in sorted(folder.rglob("*")) if item.is_file() and item.name != COMMIT_MARKER}


def commit_dir(tmp: Path, final: Path, step: int, keep: int = 1) -> Path:
    """Mark ``tmp`` committed (with its manifest) and swap it in as ``final``; the old one
    goes last, or is kept as ``.<name>.kept-<step>`` while fewer than ``keep`` folders exist."""
    fsync_tree(tmp)
    marker = tmp / COMMIT_MARKER
    record = {"step": int(step), "t": round(time.time(), 3), "files": manifest(tmp)}
    with open(marker, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
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
    if keep > 1 and old.exists():
        keep_previous(old, final, keep)
    shutil.rmtree(old, ignore_errors=True)
    return final


def kept_folders(parent: Path, name: str) -> list[Path]:
    """The kept earlier commits of ``name``, newest first."""
    found = [(int(m["step"]), p) for p in parent.glob(f".{name}.kept-*")
             if (m := _KEPT.match(p.name)) and m["name"] == name and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def keep_previous(old: Path, final: Path, keep: int) -> None:
    """Keep the folder ``final`` replaced (when committed) and drop kept ones beyond ``keep - 1``."""
    step = marker_step(old)
    if step is not None and step >= 0:
        target = final.parent / f".{final.name}.kept-{step}"
        if target.exists():
            shutil.rmtree(target)
        os.replace(old, target)
    for extra in kept_folders(final.parent, final.name)[keep - 1:]:
        shutil.rmtree(extra, ignore_errors=True)
    fsync_dir(final.parent)


def _marker_files(folder: Path) -> dict[str, dict[str, object]] | str:
    """The manifest a marker lists, or why there is none."""
    try:
        record = json.loads((folder / COMMIT_MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "is not committed (no COMMITTED marker)"
    except (OSError, ValueError):
        return f"{COMMIT_MARKER} is not readable JSON"
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not files:
        return f"{COMMIT_MARKER} lists no checksums (written by an older version, or damaged)"
    return files


def _file_problem(folder: Path, name: object, entry: object) -> str | None:
    if not isinstance(name, str) or not name or name.startswith("/") or ".." in name.split("/"):
        return f"{COMMIT_MARKER} names a file outside the folder: {str(name)[:80]!r}"
    if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
        return f"{COMMIT_MARKER}: the entry of {name} has no size and sha256"
    path = folder / name
    try:
        info = os.lstat(path)
    except OSError:
        return f"{name} is missing"
    if not stat.S_ISREG(info.st_mode):
        return f"{name} is not a regular file (a link or a device): refused"
    if info.st_size != entry["size"]:
        return f"{name} has {info.st_size} bytes, the commit recorded {entry['size']} (truncated or replaced)"
    if sha256_of(path) != entry["sha256"]:
        return f"{name} does not match its recorded SHA-256 (bytes changed after the commit)"
    return None


def verify(folder: Path) -> list[str]:
    """Why ``folder`` is not an intact commit (empty when every listed file matches)."""
    files = _marker_files(folder)
    if isinstance(files, str):
        return [f"{folder}: {files}"]
    return [f"{folder}: {problem}" for name, entry in files.items()
            if (problem := _file_problem(folder, name, entry)) is not None]


OLD_FORMAT_FILES = ("trainer_state.pt", "rank_state_0.pt")


def refuse_old_format(folder: Path) -> None:
    """Checkpoints of earlier versions hold pickles, which can run code when loaded."""
    old = [name for name in OLD_FORMAT_FILES if (folder / name).exists()]
    if old:
        raise CheckpointError(
            f"{folder} holds {', '.join(old)}: the pickle format of earlier kronos-tui versions, which can run "
            "code when loaded, so it is not loaded. Start a new run; to keep the trained weights, point "
            f"model_paths.pretrained_* at {folder.parent / 'best'} (a plain safetensors model folder)")


def stage_checkpoint_problems(parent: Path, cached: bool = True) -> list[str]:
    """Why the ``last/`` checkpoints under ``parent`` cannot be resumed from (empty when one
    verifies, or when nothing was committed at all)."""
    final = parent / "last"
    if not (final / COMMIT_MARKER).is_file() and not kept_folders(parent, "last"):
        return []
    try:
        refuse_old_format(final)
    except CheckpointError as exc:
        return [str(exc)]
    chosen, problems = newest_verified(parent, "last", cached=cached)
    return [] if chosen is not None else problems


_VERIFIED: dict[tuple, list[str]] = {}


def verify_cached(folder: Path) -> list[str]:
    """``verify`` for readers that ask again and again (status, the TUI): hashed once per
    change of any file's size, time or inode."""
    try:
        key = (str(folder),) + tuple((p.name, s.st_size, s.st_mtime_ns, s.st_ino)
                                     for p in sorted(folder.rglob("*")) for s in [p.lstat()])
    except OSError:
        return verify(folder)
    if key not in _VERIFIED:
        if len(_VERIFIED) > 256:          # a long-lived TUI sees many checkpoints come and go
            _VERIFIED.clear()
        _VERIFIED[key] = verify(folder)
    return _VERIFIED[key]


def newest_verified(parent: Path, name: str, cached: bool = False) -> tuple[Path | None, list[str]]:
    """The newest of ``<name>/`` and its kept predecessors that verifies, and the problems
    of the newer ones it had to pass over."""
    check = verify_cached if cached else verify
    problems: list[str] = []
    for folder in [parent / name, *kept_folders(parent, name)]:
        if not folder.is_dir():
            continue
        found = check(folder)
        if not found:
            return folder, problems
        problems += found
    return None, problems


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
