"""The one reader of a run's config.yaml and its error policy; the one table of state words."""
from __future__ import annotations

import pytest

from kronos_train.config import ConfigError
from kronos_train.control.run_config import LaunchError, load_run_config, read_run_config
from kronos_train.control.runfolder import STATE_WORDS, RunFolder, state_word


def run_with_config(tmp_path, text: str) -> RunFolder:
    run = RunFolder(tmp_path / "20260101-000000-demo")
    run.path.mkdir()
    run.config_path.write_text(text, encoding="utf-8")
    return run


def test_a_readable_config_comes_back_with_its_problems(tmp_path):
    run = run_with_config(tmp_path, "extends: demo\ntraining:\n  batch_size: 0\n")
    cfg, problems = read_run_config(run.path)
    assert cfg.extends == "demo"
    assert any(p.path == "training.batch_size" for p in problems)


def test_only_a_file_that_cannot_be_a_config_raises(tmp_path):
    with pytest.raises(ConfigError):
        read_run_config(tmp_path / "no-such-run")
    with pytest.raises(ConfigError):
        read_run_config(run_with_config(tmp_path, "training: [unclosed\n").path)


def test_starting_a_run_refuses_any_error(tmp_path):
    with pytest.raises(LaunchError, match="training.batch_size"):
        load_run_config(run_with_config(tmp_path, "training:\n  batch_size: 0\n"))


def test_every_run_state_has_its_words():
    assert state_word("completed", short=True) == "✓ done" and state_word("completed") == "✓ completed"
    assert state_word("stopped") == "■ stopped (resumable)"
    assert state_word("something new") == "something new"
    assert {"pending", "running", "stopping", "completed", "stopped", "failed", "aborted",
            "interrupted"} <= STATE_WORDS.keys()
