"""Fixtures of the evaluation tests: planted-pattern data and one tiny pair trained once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from kronos_eval_helpers import train_tiny_pair, write_planted


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on 2 shared cores: a second thread only adds synchronisation (measured 20x slower under load)."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def planted_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_planted(tmp_path_factory.mktemp("planted") / "train.csv")


@pytest.fixture(scope="session")
def tiny_pair(planted_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """tiny-tokenizer + tiny-predictor trained from scratch on the planted data (seeded)."""
    import torch

    torch.set_num_threads(1)
    tok, pred, _ = train_tiny_pair(planted_csv, tmp_path_factory.mktemp("tiny"), tokenizer_steps=80,
                                   predictor_steps=120, batch_size=32)
    return tok, pred


@pytest.fixture(scope="session")
def untrained_predictor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny predictor: the "model before fine-tuning" of the fake run."""
    import torch

    from kronos_train.architectures import resolve_architecture
    from kronos_train.model import build_predictor, save_pretrained

    torch.manual_seed(1)
    return save_pretrained(build_predictor(resolve_architecture("tiny-predictor")),
                           tmp_path_factory.mktemp("pretrained") / "predictor")
