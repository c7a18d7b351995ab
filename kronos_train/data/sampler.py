"""EpochSampler: deterministic, DDP-ready batches of window indices (pure numpy).

For a given (seed, epoch) every rank computes the same global order, takes
``num_batches * batch_size * world_size`` of it and keeps its own share:
global batch j is split into ``world_size`` consecutive slices, slice r goes to
rank r. So ranks are disjoint, every rank has the same number of batches (no
rank waits for a collective that never comes), and ``batches(epoch, k)`` is
exactly the tail of ``batches(epoch)`` from batch k: resuming needs only
(seed, epoch, k), which a checkpoint stores.
"""
from __future__ import annotations

import math

import numpy as np


class EpochSampler:
    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True, samples_per_epoch: int | None = None, shuffle: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size is {batch_size}; must be at least 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} / world_size {world_size}: need 0 <= rank < world_size")
        if samples_per_epoch is not None and samples_per_epoch < 0:
            raise ValueError(f"samples_per_epoch is {samples_per_epoch}; must be >= 0 or None")
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last, self.shuffle = bool(drop_last), bool(shuffle)
        self.samples_per_epoch = None if samples_per_epoch is None else int(samples_per_epoch)
        self._cache: tuple[int, np.ndarray] | None = None

    @property
    def samples_drawn(self) -> int:
        """Windows drawn per epoch across all ranks, before dropping the last partial batch."""
        return self.n if self.samples_per_epoch is None else min(self.n, self.samples_per_epoch)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def num_batches(self, epoch: int = 0) -> int:
        """Batches per rank per epoch (the same on every rank and, here, every epoch)."""
        drawn = self.samples_drawn
        if self.drop_last:
            return drawn // self.global_batch
        return math.ceil(drawn / self.global_batch) if drawn else 0

    def __len__(self) -> int:
        return self.num_batches(0)

    def order(self, epoch: int) -> np.ndarray:
        """The global order of window indices for this epoch (same on all ranks)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        drawn = self.samples_drawn
        if self.shuffle:
            rng = np.random.default_rng([self.seed, int(epoch)])
            order = rng.permutation(self.n)[:drawn] if drawn < self.n else rng.permutation(self.n)
        elif drawn < self.n:
            # A fixed, evenly spread subset: every part of the data (every ticker) is represented.
            order = np.linspace(0, self.n - 1, drawn).round().astype(np.int64) if drawn else np.zeros(0, np.int64)
        else:
            order = np.arange(self.n, dtype=np.int64)
        self._cache = (int(epoch), order)
        return order

    def _rank_matrix(self, epoch: int) -> np.ndarray:
        """[num_batches, batch_size] window indices of this rank."""
        nb = self.num_batches(epoch)
        if nb == 0:
            return np.zeros((0, self.batch_size), np.int64)
        order = self.order(epoch)
        need = nb * self.global_batch
        if need > len(order):  # drop_last=False: pad by wrapping around, like DistributedSampler
            order = np.resize(order, need)
        grid = order[:need].reshape(nb, self.world_size, self.batch_size)
        return np.ascontiguousarray(grid[:, self.rank, :]).astype(np.int64, copy=False)

    def batches(self, epoch: int, start_batch: int = 0) -> list[np.ndarray]:
        """This rank's batches for ``epoch``, from batch ``start_batch`` on (exact resume)."""
        if start_batch < 0:
            raise ValueError(f"start_batch is {start_batch}; must be >= 0")
        matrix = self._rank_matrix(epoch)
        return list(matrix[start_batch:])

    def state(self, epoch: int, next_batch: int) -> dict[str, int | None]:
        """What a checkpoint must store to resume this sampler exactly."""
        return {"seed": self.seed, "epoch": int(epoch), "next_batch": int(next_batch), "n": self.n,
                "batch_size": self.batch_size, "world_size": self.world_size,
                "samples_per_epoch": self.samples_per_epoch}
