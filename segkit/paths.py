"""Output paths: folders created up front (an unwritable ``--out`` is one line, not a traceback later),
names kept inside them, and files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from segkit.errors import SegkitError


def output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` (and parents) if needed and return it; ``flag`` names the option in the error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SegkitError(f"{flag} {path}: cannot create the folder ({err.strerror})") from err
    return path


def relative_output(file_name: str, suffix: str) -> Path:
    """``a/b.jpg`` -> ``a/b<suffix>``, kept inside an output folder whatever the name holds (``..``, a root)."""
    parts = [part for part in Path(file_name).parts if part not in ("..", ".") and part != Path(file_name).anchor]
    return Path(*parts).with_suffix(suffix)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", sync: bool = False) -> Iterator[IO]:
    """Write ``path`` through a temp file in its folder, renamed into place only if the block succeeds.

    So a reader (or a run stopped half-way) never sees a half-written file; ``sync`` fsyncs before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
