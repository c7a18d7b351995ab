"""Nothing read back from a run folder runs code: trainer and rank state are safetensors + JSON,
a crafted or old pickle checkpoint is refused with a message naming the file."""
from __future__ import annotations

import json
import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from kronos_train.control.runfolder import RunFolder
from kronos_train.train import checkpoint, statefile
from kronos_train.control import commit
from kronos_train.train.distributed import DistEnv

REPO = Path(__file__).resolve().parents[2]
# As the review hook: the builtins eval/exec, not methods or names that end in "eval" (model.eval()).
FORBIDDEN = re.compile(r"weights_only *= *False|pickle\.loads?\(|yaml\.load\(|(?<![.\w])(eval|exec)\(")


class Payload:
    """Unpickling this creates ``target``: proof that a pickle ran code."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def tiny_optimizer_state() -> dict:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return optimizer.state_dict()


def test_trainer_and_rng_state_round_trip_bit_for_bit(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = {"optimizer": tiny_optimizer_state(), "rng": checkpoint.capture_rng(),
             "window": {"sums": {"loss": torch.tensor(1.0 / 3, dtype=torch.float64)}, "steps": 2, "lr": float("nan")}}
    statefile.save_state(state, tmp_path, "trainer_state")
    back = statefile.load_state(tmp_path, "trainer_state")
    assert back["rng"]["python"] == state["rng"]["python"]
    assert back["rng"]["numpy"][0] == "MT19937" and np.array_equal(back["rng"]["numpy"][1], state["rng"]["numpy"][1])
    assert back["rng"]["numpy"][1].dtype == np.uint32 and back["rng"]["numpy"][2:] == state["rng"]["numpy"][2:]
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    for key, value in state["optimizer"]["state"][0].items():       # integer keys survive
        assert torch.equal(back["optimizer"]["state"][0][key], value)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.95)
    assert back["window"]["sums"]["loss"].item() == 1.0 / 3 and np.isnan(back["window"]["lr"])
    checkpoint.restore_rng(back["rng"])
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    checkpoint.restore_rng(state["rng"])
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())


def committed_last(run: RunFolder) -> Path:
    """A real committed last/ checkpoint of one process."""
    from test_checkpoints import save     # tests/train: the tiny tokenizer checkpoint

    save(run, 3)
    return run.checkpoint_dir("tokenizer", "last")


def test_a_crafted_pickle_in_an_old_format_checkpoint_never_executes(tmp_path):
    run = RunFolder(tmp_path / "run")
    last = committed_last(run)
    sentinel = tmp_path / "pwned"
    for name in ("trainer_state.pt", "rank_state_0.pt"):
        (last / name).write_bytes(pickle.dumps(Payload(sentinel)))
    with pytest.raises(commit.CheckpointError, match=r"trainer_state\.pt.*pickle format"):
        checkpoint.load_last(run, "tokenizer", DistEnv())
    assert not sentinel.exists()
    assert not run.can_resume() and any("pickle format" in p for p in run.checkpoint_problems())


def test_a_crafted_state_file_is_refused_with_its_name(tmp_path):
    run = RunFolder(tmp_path / "run")
    last = committed_last(run)
    (last / "trainer_state.json").write_text(json.dumps({"format": 1, "tree": {"__tensor__": "nope"}}))
    staged = commit.aside_dir(last.parent, "last", 4)        # re-commit, so the checksums match the craft
    for item in last.iterdir():
        if item.name != "COMMITTED":
            (staged / item.name).write_bytes(item.read_bytes())
    commit.commit_dir(staged, last, 4)
    with pytest.raises(commit.CheckpointError, match=r"trainer_state\.json: refers to a tensor 'nope'"):
        checkpoint.load_last(run, "tokenizer", DistEnv())


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"not json", b'{"format": 2}', b"[1, 2]",
                                     b'{"format": 1, "tree": {"__ndarray__": "t0", "dtype": "object", "shape": [1]}}'],
                         ids=["empty", "zeros", "not-json", "format-2", "a-list", "object-array"])
def test_garbage_state_files_raise_checkpoint_error_naming_the_file(tmp_path, content):
    statefile.save_state({"a": torch.zeros(2)}, tmp_path, "rank_state_0")
    (tmp_path / "rank_state_0.json").write_bytes(content)
    with pytest.raises(commit.CheckpointError, match="rank_state_0.json"):
        statefile.load_state(tmp_path, "rank_state_0")


def test_a_damaged_safetensors_file_is_refused_with_its_name(tmp_path):
    statefile.save_state({"a": torch.zeros(2)}, tmp_path, "trainer_state")
    (tmp_path / "trainer_state.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(commit.CheckpointError, match="trainer_state.safetensors"):
        statefile.load_state(tmp_path, "trainer_state")


def test_no_code_loading_call_anywhere_in_the_packages():
    hits = [f"{path.relative_to(REPO)}:{n}: {line.strip()}"
            for package in ("kronos_train", "kronos_tui") for path in sorted((REPO / package).rglob("*.py"))
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if FORBIDDEN.search(line)]
    assert hits == []
