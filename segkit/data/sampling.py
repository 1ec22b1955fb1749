"""Sample order and augmentation randomness as pure functions of (seed, epoch, index).

A resumed run must see exactly the batches an uninterrupted run would have seen, whatever the number of
workers and wherever it stopped. So the sampler yields ``(index, sample_seed)`` pairs: the permutation comes
from ``(seed, epoch)``, it can start mid-epoch, it shards across DDP ranks, and ``SeededSamples`` reseeds every
random generator from ``sample_seed`` before building that one sample.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed per (run seed, epoch, sample index)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32).view(np.uint64)[0]
               >> np.uint64(1))


class EpochSampler(Sampler):
    """Shuffled (training) or ordered (evaluation) indices for one rank, restartable at any position.

    Training shards pad the permutation so every rank gets the same number of samples (as DistributedSampler
    does); evaluation shards do not pad, so each image is counted exactly once in the summed confusion matrix.
    """

    def __init__(self, size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start`` samples of this rank's shard."""
        self.epoch = epoch
        self.start = start

    def _indices(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.rank, self.size, self.world_size))
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        padded = np.resize(order, -(-self.size // self.world_size) * self.world_size).tolist()  # repeats if short
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self._indices()[self.start :]:
            yield index, sample_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return max(0, len(self._indices()) - self.start)


class SeededSamples(Dataset):
    """Indexes ``dataset`` with ``(index, sample_seed)`` and seeds every generator a sample may draw from.

    In the main process (``num_workers=0``) the caller's generator states are restored afterwards, so data
    loading never changes the randomness the model itself sees.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # classes, pipeline, ... of the wrapped dataset
        # Never dunders: the DataLoader would call a wrapped Subset's __getitems__ with (index, seed) pairs.
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        in_worker = torch.utils.data.get_worker_info() is not None
        saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed would also queue CUDA seeding
            pipeline = getattr(self.dataset, "pipeline", None)
            if pipeline is not None:
                pipeline.set_random_seed(seed % 2**32)
            return self.dataset[index]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])
