"""Many (item, image) pairs through the model in forwards of at most ``batch_size`` inputs.

TTA views and sliding windows share the same problem: every image of a batch needs the same set of
variants (views, windows), and the model should see as many of them at once as ``batch_size`` allows.
The pairs are taken item-major, so a forward usually holds few items, each with a run of consecutive images,
and a run's inputs and outputs are plain slices of the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch

T = TypeVar("T")
Run = tuple[T, int, int]  # (item, first image, one past the last image)


def chunk_runs(items: Sequence[T], images: int, batch_size: int) -> Iterator[list[Run]]:
    """The pairs ``(item, i)`` for every item and ``i < images``, item-major, in chunks of ``batch_size``.

    Each chunk is a list of runs ``(item, i0, i1)`` covering images ``i0..i1-1`` of that item.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    runs: list[Run] = []
    room = batch_size
    for item in items:
        start = 0
        while start < images:
            stop = min(images, start + room)
            runs.append((item, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield runs
                runs, room = [], batch_size
    if runs:
        yield runs


def batched_apply(items: Sequence[T], images: int, batch_size: int,
                  make_input: Callable[[T, int, int], torch.Tensor],
                  forward: Callable[[torch.Tensor], torch.Tensor],
                  consume: Callable[[T, int, int, torch.Tensor], None]) -> None:
    """For every chunk: concatenate ``make_input(item, i0, i1)`` of its runs, ``forward`` them together, and
    hand each run its slice of the output with ``consume(item, i0, i1, output)``."""
    for runs in chunk_runs(items, images, batch_size):
        inputs = [make_input(item, i0, i1) for item, i0, i1 in runs]
        outputs = forward(inputs[0] if len(inputs) == 1 else torch.cat(inputs))
        offset = 0
        for item, i0, i1 in runs:
            consume(item, i0, i1, outputs[offset:offset + i1 - i0])
            offset += i1 - i0
