"""Dataset records kept as pickled bytes in one NumPy buffer, so DataLoader workers do not copy the parent's memory.

A forked worker shares the parent's pages until it writes to one. Reading a Python object writes to it (its
reference count), so a worker that reads annotation dicts and lists slowly copies every page they live on;
on a json the size of TACO that is hundreds of MB per worker. Two NumPy arrays (the bytes, the end offsets)
are two objects whatever the number of records: reading a record unpickles a private copy and touches
nothing shared. This is the idea of detectron2's ``_TorchSerializedList``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np


class SerializedList(Sequence):
    """A read-only list whose items are unpickled on access (each access returns a fresh object)."""

    def __init__(self, records: Iterable[Any]) -> None:
        blobs = [np.frombuffer(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL), dtype=np.uint8) for r in records]
        self._ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._buffer = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if not -size <= index < size:
            raise IndexError(f"record {index} out of range for {size} records")
        index %= size
        start = int(self._ends[index - 1]) if index else 0
        return pickle.loads(self._buffer[start : int(self._ends[index])].data)

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    @property
    def nbytes(self) -> int:
        return self._buffer.nbytes + self._ends.nbytes


class RecordsById(Mapping):
    """``{record id: item}`` over a :class:`SerializedList` whose ``k``-th item belongs to ``ids[k]``.

    The ids live in a sorted NumPy array (looked up by binary search), not in a dict of Python ints.
    """

    def __init__(self, ids: Sequence[int], items: SerializedList) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        self._ids = ids
        self._items = items

    def position(self, record_id: Any) -> int | None:
        """Where ``record_id`` is in the list, or None."""
        if isinstance(record_id, bool) or not isinstance(record_id, int | np.integer):
            return None
        k = int(np.searchsorted(self._sorted, record_id))
        if k < len(self._sorted) and self._sorted[k] == record_id:
            return int(self._order[k])
        return None

    def __getitem__(self, record_id: Any) -> Any:
        position = self.position(record_id)
        if position is None:
            raise KeyError(record_id)
        return self._items[position]

    def __iter__(self) -> Iterator[int]:
        return (int(i) for i in self._ids)

    def __len__(self) -> int:
        return len(self._ids)
