"""Every config field is documented in docs/config.md with its real default."""
from __future__ import annotations

import re
from pathlib import Path
from typing import get_origin

from kronos_train.config import KronosConfig, field_paths, get_field

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def documented() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z_.0-9]+)` \| ([^|]+) \|", DOC.read_text(encoding="utf-8"), flags=re.M)
    return {path: default.strip() for path, default in rows}


def test_every_field_is_documented():
    missing = [path for path, _ in field_paths() if path != "extends" and path not in documented()]
    assert missing == []


def test_documented_defaults_are_the_real_ones():
    cfg, docs = KronosConfig(), documented()
    for path, typ in field_paths():
        if path == "extends" or path not in docs:
            continue
        text, value = docs[path].strip("`"), get_field(cfg, path)
        if typ is bool:
            assert text == str(value).lower(), path
        elif typ in (int, float):
            assert float(text) == value, path
        elif get_origin(typ) is list:
            assert text == str(value), path
        else:
            assert text == (value or '""'), path
