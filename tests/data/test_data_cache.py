"""Cache: hit on the same file and options, miss when the file or an option changes."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from bad_files import write_bad_file
from kronos_data_helpers import spec_for

from kronos_train.data import inspect_data, load_series, prepare_data
from kronos_train.data.synthetic import write_synthetic


def _entries(cache) -> list[str]:
    folder = os.path.join(cache, "data")
    if not os.path.isdir(folder):
        return []
    return sorted(e for e in os.listdir(folder) if not e.startswith(".") and not e.endswith(".lock"))


def test_second_prepare_hits_the_cache_and_equals_the_first(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 3, 50)
    cache = tmp_path / "cache"
    cold = prepare_data(spec_for(path), cache_dir=cache)
    warm = prepare_data(spec_for(path), cache_dir=cache)
    assert cold.report.cache == "miss" and warm.report.cache == "hit"
    assert isinstance(warm.table.values, np.memmap)
    np.testing.assert_array_equal(np.asarray(cold.table.values), np.asarray(warm.table.values))
    np.testing.assert_array_equal(cold.train.starts, warm.train.starts)
    np.testing.assert_array_equal(cold.train.get_batch([0, 1])[0], warm.train.get_batch([0, 1])[0])
    assert cold.report.codes() == warm.report.codes()
    assert cold.tickers == warm.tickers


def test_window_parameters_reuse_the_cached_table(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 3, 50)
    cache = tmp_path / "cache"
    prepare_data(spec_for(path), cache_dir=cache)
    other = prepare_data(spec_for(path, lookback_window=4, predict_window=1), cache_dir=cache)
    assert other.report.cache == "hit" and other.train.window_length == 6
    assert other.report.window["lookback_window"] == 4


def test_changed_file_misses_and_replaces_the_old_entry(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 3, 50, seed=1)
    cache = tmp_path / "cache"
    first = prepare_data(spec_for(path), cache_dir=cache)
    before = _entries(cache)
    write_synthetic(path, 3, 50, seed=2)            # same size class, new content
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1))
    second = prepare_data(spec_for(path), cache_dir=cache)
    assert second.report.cache == "miss"
    assert not np.array_equal(np.asarray(first.table.values), np.asarray(second.table.values))
    after = _entries(cache)
    assert len(after) == 1 and after != before


def test_same_size_and_mtime_but_new_content_misses(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 2, 50, seed=1)
    cache = tmp_path / "cache"
    prepare_data(spec_for(path), cache_dir=cache)
    stat = os.stat(path)
    data = bytearray(open(path, "rb").read())
    data[-5] = ord("9") if data[-5] != ord("9") else ord("8")
    open(path, "wb").write(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert prepare_data(spec_for(path), cache_dir=cache).report.cache == "miss"


def test_parse_option_change_misses(tmp_path):
    bad = write_bad_file(tmp_path / "d.csv", "duplicate_conflict")
    cache = tmp_path / "cache"
    assert not prepare_data(spec_for(bad.path), cache_dir=cache).report.ok
    fixed = prepare_data(spec_for(bad.path, duplicates="keep_last"), cache_dir=cache)
    assert fixed.report.cache == "miss" and fixed.report.ok
    again = prepare_data(spec_for(bad.path), cache_dir=cache)
    assert again.report.cache == "hit" and not again.report.ok   # the failing verdict is cached too


def test_inspect_and_load_series_share_the_cache(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 2, 50)
    cache = tmp_path / "cache"
    assert inspect_data(spec_for(path), cache_dir=cache).cache == "miss"
    assert prepare_data(spec_for(path), cache_dir=cache).report.cache == "hit"
    table, report = load_series(path, cache_dir=cache)
    assert report.cache == "hit" and len(table) == 2


def test_unwritable_cache_dir_still_prepares(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 2, 50)
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    prepared = prepare_data(spec_for(path), cache_dir=blocker)
    assert prepared.report.ok and len(prepared.train) > 0


def test_importing_the_package_pulls_neither_torch_nor_pandas_nor_pyarrow():
    code = ("import sys, kronos_train.data; "
            "print(sorted(m for m in ('torch', 'pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cached_reload_needs_no_pyarrow(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 2, 50)
    cache = tmp_path / "cache"
    prepare_data(spec_for(path), cache_dir=cache)
    code = ("import sys; from kronos_train.data import DataSpec, prepare_data; "
            f"p = prepare_data(DataSpec({str(path)!r}, lookback_window=8, predict_window=2, train_ratio=0.7, "
            f"val_ratio=0.3), cache_dir={str(cache)!r}); "
            "print(p.report.cache, 'pyarrow' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["hit", "False", "False"]


def test_concurrent_cold_prepares_read_the_file_once(tmp_path):
    path = write_synthetic(tmp_path / "c.csv", 3, 200)
    cache = tmp_path / "cache"
    code = ("from kronos_train.data import DataSpec, prepare_data; "
            f"p = prepare_data(DataSpec({str(path)!r}, lookback_window=8, predict_window=2), "
            f"cache_dir={str(cache)!r}); "
            "print(p.report.cache, p.report.ok, len(p.train))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = sorted(p.communicate()[0].split()[0] for p in procs)
    assert outputs == ["hit", "miss"]
    assert len(_entries(cache)) == 1


def test_pickled_cached_windows_reopen_the_memory_map(tmp_path):
    import pickle
    path = write_synthetic(tmp_path / "c.csv", 2, 50)
    prepared = prepare_data(spec_for(path), cache_dir=tmp_path / "cache")
    blob = pickle.dumps(prepared.train)
    assert len(blob) < 20_000 + prepared.train.starts.nbytes   # the arrays are not in it
    clone = pickle.loads(blob)
    assert isinstance(clone.table.values, np.memmap)
    np.testing.assert_array_equal(clone.get_batch([0, 3])[0], prepared.train.get_batch([0, 3])[0])
