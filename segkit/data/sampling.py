"""Sample order and augmentation randomness as pure functions of (seed, epoch, index).

A resumed run must see exactly the batches an uninterrupted run would have seen, whatever the number of
workers and wherever it stopped. So the sampler yields ``(index, sample_seed)`` pairs: the permutation comes
from ``(seed, epoch)``, it can start mid-epoch, it shards across DDP ranks, and ``SeededSamples`` reseeds every
random generator from ``sample_seed`` before building that one sample.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def sample_seed(seed: int, epoch: int, index: int, repeat: int = 0) -> int:
    """A well-mixed 63-bit seed per (run seed, epoch, sample index); ``repeat`` numbers the extra draws of an
    image that a weighted epoch takes more than once, so its copies are augmented differently."""
    entropy = [seed, epoch, index] if repeat == 0 else [seed, epoch, index, repeat]
    return int(np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32).view(np.uint64)[0]
               >> np.uint64(1))


@dataclass(frozen=True)
class WeightedSources:
    """Concatenated training sources of ``sizes`` images, each image of source ``s`` drawn ``weights[s]`` times
    per epoch on average (``data.train.sources``).

    The epoch length is ``round(sum(weight * size))``, the same every epoch (the LR schedule is computed from
    it), split over the sources by largest remainder (:meth:`quotas`). Source ``s`` fills its quota ``k`` with
    ``k // size`` full passes over its images plus ``k % size`` images drawn without replacement from a
    permutation of ``(seed, epoch, s)``. So every image is taken ``floor`` or ``ceil`` of its weight times,
    and the epoch is a pure function of ``(seed, epoch)``, which keeps resume and DDP sharding exact.
    """

    sizes: tuple[int, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.weights) or not self.sizes:
            raise ValueError(f"one weight per source: sizes {self.sizes}, weights {self.weights}")
        if any(n < 1 for n in self.sizes) or any(not w > 0 for w in self.weights):
            raise ValueError(f"sizes must be >= 1 and weights > 0, got {self.sizes}, {self.weights}")

    @property
    def total(self) -> int:
        """Images over all sources (the dataset's length)."""
        return sum(self.sizes)

    def quotas(self) -> list[int]:
        """Draws of each source per epoch; they add up to the epoch length (at least 1)."""
        exact = np.array([w * n for w, n in zip(self.weights, self.sizes)], dtype=np.float64)
        quotas = np.floor(exact).astype(np.int64)
        missing = max(int(np.round(exact.sum())), 1) - int(quotas.sum())
        for s in np.argsort(quotas - exact, kind="stable")[:missing]:  # largest remainders, ties by position
            quotas[s] += 1
        return quotas.tolist()

    def draws(self, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, repeats)`` of the epoch before shuffling: dataset positions, and which draw of that
        position each one is (0 for the first)."""
        indices, repeats = [], []
        offset = 0
        for s, (size, quota) in enumerate(zip(self.sizes, self.quotas())):
            passes, rest = divmod(quota, size)
            indices += [offset + np.arange(size)] * passes
            repeats += [np.full(size, p) for p in range(passes)]
            if rest:
                picked = np.random.default_rng([seed, epoch, s + 1]).permutation(size)[:rest]
                indices.append(offset + np.sort(picked))
                repeats.append(np.full(rest, passes))
            offset += size
        return np.concatenate(indices).astype(np.int64), np.concatenate(repeats).astype(np.int64)


class EpochSampler(Sampler):
    """Shuffled (training) or ordered (evaluation) indices for one rank, restartable at any position.

    Training shards pad the permutation so every rank gets the same number of samples (as DistributedSampler
    does); evaluation shards do not pad, so each image is counted exactly once in the summed confusion matrix.
    """

    def __init__(self, size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 sources: WeightedSources | None = None) -> None:
        if sources is not None and sources.total != size:
            raise ValueError(f"the sources hold {sources.total} images, the dataset {size}")
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.sources = sources if shuffle else None  # evaluation visits every image once, weights or not
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start`` samples of this rank's shard."""
        self.epoch = epoch
        self.start = start

    def _indices(self) -> list[tuple[int, int]]:
        """This rank's ``(index, repeat)`` pairs of the epoch."""
        if not self.shuffle:
            return [(i, 0) for i in range(self.rank, self.size, self.world_size)]
        if self.sources is None:
            indices, repeats = np.arange(self.size), np.zeros(self.size, np.int64)
        else:
            indices, repeats = self.sources.draws(self.seed, self.epoch)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(indices))
        padded = np.resize(order, -(-len(order) // self.world_size) * self.world_size)  # repeats if short
        mine = padded[self.rank :: self.world_size]
        return list(zip(indices[mine].tolist(), repeats[mine].tolist()))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index, repeat in self._indices()[self.start :]:
            yield index, sample_seed(self.seed, self.epoch, index, repeat)

    def __len__(self) -> int:
        return max(0, len(self._indices()) - self.start)


def epoch_sampler(dataset: Sequence[Any], shuffle: bool, seed: int = 0, rank: int = 0,
                  world_size: int = 1) -> EpochSampler:
    """The sampler of ``dataset``: weighted by its ``epoch_plan`` (a multi-source training set) when shuffling."""
    return EpochSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                        sources=getattr(dataset, "epoch_plan", None) if shuffle else None)


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
