"""benchmarks/bench_official.py needs the official code, which the project cannot ship: without a
checkout it must stop at once and say how to get one (its timings are checked on GPU machines)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_official.py"


def test_without_the_official_checkout_it_stops_and_says_how_to_get_one(tmp_path):
    out = subprocess.run([sys.executable, str(BENCH), "--official", str(tmp_path / "Kronos"), "--tiny"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "no model/kronos.py there" in out.stderr
    assert "git clone --depth 1 https://github.com/shiyu-coder/Kronos" in out.stderr
