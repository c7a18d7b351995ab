"""On-disk cache of a cleaned SeriesTable and its report (.npy files, mmap on load).

The key is the file's identity and content (absolute path, size, mtime_ns and a
hash of sampled blocks) plus the parameters that change what is read. Window
parameters are not in the key: windows are rebuilt from the cached table in
milliseconds, so changing lookback_window still hits the cache. An entry is
written into a temporary folder and renamed into place, so a reader never sees
half an entry; concurrent writers (several ranks) simply race to the rename.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

import numpy as np

from .report import DataReport
from .series import SeriesTable

CACHE_VERSION = 4                 # 4: a missing amount is volume x mean(OHLC)
SAMPLE_BLOCKS = 16
BLOCK_BYTES = 1 << 16
ARRAYS = ("values", "times", "stamps", "offsets")


def file_fingerprint(path: str) -> dict[str, Any]:
    """Size, mtime_ns and a hash of 16 evenly spaced 64 KiB blocks plus the last one."""
    stat = os.stat(path)
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        size = stat.st_size
        positions = {0, max(size - BLOCK_BYTES, 0)}
        positions.update(int(size * k / SAMPLE_BLOCKS) for k in range(1, SAMPLE_BLOCKS))
        for pos in sorted(positions):
            f.seek(pos)
            digest.update(f.read(BLOCK_BYTES))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sample_hash": digest.hexdigest()}


def cache_key(path: str, options: dict[str, Any]) -> tuple[str, str]:
    """(prefix naming the file and the options, key naming its content).

    Entries sharing a prefix are versions of one file read one way: only the
    newest is worth keeping.
    """
    abspath = os.path.abspath(path)
    named = json.dumps({"path": abspath, "options": options}, sort_keys=True)
    prefix = hashlib.blake2b(named.encode(), digest_size=6).hexdigest()
    content = json.dumps({"v": CACHE_VERSION, "file": file_fingerprint(path)}, sort_keys=True)
    return prefix, hashlib.blake2b(content.encode(), digest_size=10).hexdigest()


def entry_dir(cache_dir: str, path: str, options: dict[str, Any]) -> str:
    prefix, key = cache_key(path, options)
    return os.path.join(cache_dir, "data", f"{prefix}-{key}")


@contextlib.contextmanager
def entry_lock(directory: str) -> Iterator[None]:
    """An exclusive lock on one entry (flock; released if the holder dies). No-op if it cannot lock."""
    lock_file = None
    try:
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        lock_file = open(directory + ".lock", "a+")
        import fcntl
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
    except (OSError, ImportError):
        pass   # no lock (read-only cache dir, odd file system): concurrent readers just both read
    try:
        yield
    finally:
        if lock_file is not None:
            lock_file.close()


def load_entry(directory: str) -> tuple[SeriesTable | None, DataReport] | None:
    """The cached (table, report), arrays memory-mapped; None when absent or unreadable."""
    meta_path = os.path.join(directory, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("version") != CACHE_VERSION:
            return None
        report = DataReport.from_dict(meta["report"])
        if not meta.get("has_table"):
            return None, report
        arrays = {name: np.load(os.path.join(directory, f"{name}.npy"), mmap_mode="r") for name in ARRAYS}
        table = SeriesTable(meta["tickers"], np.asarray(arrays["offsets"]), arrays["values"], arrays["times"],
                            arrays["stamps"], mapped_from=directory)
        return table, report
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_entry(directory: str, table: SeriesTable | None, report: DataReport) -> bool:
    """Write an entry atomically and remove older entries of the same file. False if it could not."""
    parent = os.path.dirname(directory)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    except OSError:
        return False
    try:
        meta = {"version": CACHE_VERSION, "report": report.to_dict(), "has_table": table is not None,
                "tickers": table.tickers if table is not None else []}
        if table is not None:
            for name in ARRAYS:
                np.save(os.path.join(tmp, f"{name}.npy"), np.ascontiguousarray(getattr(table, name)))
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f)
        try:
            os.rename(tmp, directory)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)   # another process wrote it first: keep theirs
            return os.path.isdir(directory)
        _remove_stale_siblings(directory)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def _remove_stale_siblings(directory: str) -> None:
    """Entries of the same file and options with older content are dead weight."""
    parent, name = os.path.split(directory)
    prefix = name.split("-")[0] + "-"
    for other in os.listdir(parent):
        if not other.startswith(prefix) or other in (name, name + ".lock"):
            continue
        target = os.path.join(parent, other)
        if os.path.isdir(target):
            shutil.rmtree(target, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(target)
