"""EpochSampler: deterministic, rank-disjoint, equal batch counts, exact resume."""
from __future__ import annotations

import numpy as np
import pytest

from kronos_train.data import EpochSampler


def test_same_seed_and_epoch_give_the_same_batches():
    a = EpochSampler(1000, 32, seed=7).batches(3)
    b = EpochSampler(1000, 32, seed=7).batches(3)
    assert all((x == y).all() for x, y in zip(a, b)) and len(a) == len(b) == 31


def test_each_epoch_has_its_own_permutation_and_seeds_differ():
    s = EpochSampler(1000, 10, seed=7)
    e0, e1 = np.concatenate(s.batches(0)), np.concatenate(s.batches(1))
    assert not (e0 == e1).all()
    assert not (np.concatenate(EpochSampler(1000, 10, seed=8).batches(0)) == e0).all()
    assert len(np.unique(e0)) == len(e0) == 1000


@pytest.mark.parametrize("n, world, batch", [(1000, 2, 32), (1001, 3, 7), (97, 4, 5), (10, 4, 8)])
def test_ranks_have_equal_batch_counts_and_disjoint_shards(n, world, batch):
    samplers = [EpochSampler(n, batch, seed=1, rank=r, world_size=world) for r in range(world)]
    per_rank = [s.batches(2) for s in samplers]
    counts = {len(b) for b in per_rank}
    assert counts == {n // (batch * world)} and {s.num_batches(2) for s in samplers} == counts
    flat = [np.concatenate(b) if b else np.zeros(0, int) for b in per_rank]
    union = np.concatenate(flat)
    assert len(np.unique(union)) == len(union)          # no window on two ranks
    assert all(len(x) == batch for b in per_rank for x in b)
    assert (union < n).all()


def test_resume_from_batch_k_is_the_tail_of_the_epoch():
    s = EpochSampler(500, 16, seed=3, rank=1, world_size=2)
    full = s.batches(4)
    for k in (0, 1, 7, len(full) - 1, len(full)):
        tail = EpochSampler(500, 16, seed=3, rank=1, world_size=2).batches(4, start_batch=k)
        assert len(tail) == len(full) - k
        assert all((a == b).all() for a, b in zip(tail, full[k:]))


def test_validation_order_is_fixed():
    s = EpochSampler(100, 10, seed=3, shuffle=False, drop_last=False)
    assert all((a == b).all() for a, b in zip(s.batches(0), s.batches(5)))
    assert (np.concatenate(s.batches(0)) == np.arange(100)).all()


def test_samples_per_epoch_caps_the_epoch():
    s = EpochSampler(10_000, 32, seed=0, world_size=2, samples_per_epoch=640)
    assert s.num_batches(0) == 10
    first, second = np.concatenate(s.batches(0)), np.concatenate(s.batches(1))
    assert len(first) == 320 and not (first == second).all()


def test_capped_validation_subset_is_fixed_and_spread():
    s = EpochSampler(1000, 10, seed=0, shuffle=False, samples_per_epoch=100)
    picked = np.concatenate(s.batches(0))
    assert (picked == np.concatenate(s.batches(9))).all()
    assert picked.min() == 0 and picked.max() == 999


def test_drop_last_false_pads_so_ranks_stay_equal():
    samplers = [EpochSampler(10, 3, seed=0, rank=r, world_size=2, drop_last=False) for r in range(2)]
    batches = [s.batches(0) for s in samplers]
    assert len(batches[0]) == len(batches[1]) == 2
    covered = np.unique(np.concatenate([np.concatenate(b) for b in batches]))
    assert (covered == np.arange(10)).all()


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        EpochSampler(10, 0, seed=0)
    with pytest.raises(ValueError):
        EpochSampler(10, 2, seed=0, rank=2, world_size=2)
    with pytest.raises(ValueError):
        EpochSampler(10, 2, seed=0).batches(0, start_batch=-1)


def test_checkpoint_state_names_what_resume_needs():
    state = EpochSampler(10, 2, seed=5, world_size=1).state(epoch=3, next_batch=2)
    assert state["seed"] == 5 and state["epoch"] == 3 and state["next_batch"] == 2
