"""Thin torch adapters over WindowSet + EpochSampler (the only module here importing torch).

``WindowBatches`` is a map-style Dataset whose items are whole batches: item j
of an epoch is ``get_batch(sampler.batches(epoch)[j])`` as two tensors. Use it
with ``DataLoader(ds, batch_size=None, num_workers=k)``: the vectorised fetch
stays one call per batch, and workers (if any) each build whole batches.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from .sampler import EpochSampler
from .windows import WindowSet


class WindowDataset(Dataset):
    """One window per item: (x float32 [W, 6], stamp float32 [W, 5]) tensors."""

    def __init__(self, windows: WindowSet) -> None:
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, stamp = self.windows.get(int(i))
        return torch.from_numpy(x), torch.from_numpy(stamp)


class WindowBatches(Dataset):
    """The batches of one epoch for one rank, from ``start_batch`` on (exact resume)."""

    def __init__(self, windows: WindowSet, sampler: EpochSampler, epoch: int, start_batch: int = 0) -> None:
        self.windows = windows
        self.batch_indices = sampler.batches(epoch, start_batch)

    def __len__(self) -> int:
        return len(self.batch_indices)

    def __getitem__(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, stamp = self.windows.get_batch(self.batch_indices[j])
        return torch.from_numpy(x), torch.from_numpy(stamp)


def epoch_loader(windows: WindowSet, sampler: EpochSampler, epoch: int, start_batch: int = 0,
                 num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader yielding this rank's (x [B, W, 6], stamp [B, W, 5]) batches in sampler order."""
    return DataLoader(WindowBatches(windows, sampler, epoch, start_batch), batch_size=None, shuffle=False,
                      num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=False, collate_fn=None)


def collate_windows(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack single windows (for WindowDataset with a plain DataLoader)."""
    xs, stamps = zip(*items)
    return torch.stack(xs), torch.stack(stamps)
