"""Read a W&B run file (``run-<id>.wandb``) of an offline run: LevelDB log framing
(32 KiB blocks of checksummed fragments) around W&B's own ``Record`` protobufs.
wandb 0.2x+ ships no Python reader for it (the Go core writes it), so the framing is
decoded here and every record is parsed with wandb's protobuf classes."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

HEADER = 7                      # ":W&B" + magic (2 bytes) + version (1 byte)
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _fragments(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = HEADER
    while pos + 7 <= len(data):
        left = BLOCK - (pos % BLOCK)
        if left < 7:                       # block trailer: padding
            pos += left
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        payload = data[pos + 7:pos + 7 + length]
        if zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF != checksum:
            raise ValueError(f"bad checksum at byte {pos}")
        yield kind, payload
        pos += 7 + length


def records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pending = b""
    for kind, payload in _fragments(data):
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def history_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def run_id(path: Path) -> str:
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run.run_id
    return ""


def wait_complete(path: Path, timeout: float = 60.0) -> None:
    """``run.finish()`` returns before W&B's core process has written the offline file's
    last records; wait for its ``exit`` record."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.WhichOneof("record_type") == "exit" for r in records(path)):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path} has no exit record after {timeout:.0f} s")
