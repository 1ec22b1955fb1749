"""Output paths: folders created up front (an unwritable ``--out`` is one line, not a traceback later),
names kept inside them, and files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
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


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """Before any work: ``path`` is not a folder, no part of its folder is a file, and its folder exists
    (created if needed) and takes a new file. ``flag`` names the option in the error."""
    path = Path(path)
    if path.is_dir():
        raise SegkitError(f"{flag} {path} is a folder; give a file path")
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise SegkitError(f"{flag} {path}: {blocking} is a file, not a folder; give a path in a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise SegkitError(f"{flag} {path}: cannot write in {path.parent} ({err.strerror}); give a writable "
                          "folder") from err
    return path


def relative_output(file_name: str, suffix: str) -> Path:
    """``a/b.jpg`` -> ``a/b<suffix>``, kept inside an output folder whatever the name holds (``..``, a root)."""
    parts = [part for part in Path(file_name).parts if part not in ("..", ".") and part != Path(file_name).anchor]
    return Path(*parts).with_suffix(suffix)


class StagedFile:
    """A file written under a temp name next to ``path`` and renamed into place by :meth:`commit`.

    So a reader (or a run stopped half-way) never sees a half-written file; :meth:`abort`, or a failed
    ``check`` in :meth:`commit`, removes the temp file and leaves ``path`` as it was.
    """

    def __init__(self, path: str | Path, mode: str = "w") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        self.handle: IO = open(self.tmp, mode, **text)  # noqa: SIM115  (closed by commit/abort)

    def commit(self, check: Callable[[Path], None] | None = None, sync: bool = True) -> Path:
        """Close (fsync when ``sync``), run ``check(temp path)``, rename into place; return the path."""
        try:
            self.handle.flush()
            if sync:
                os.fsync(self.handle.fileno())
            self.handle.close()
            if check is not None:
                check(self.tmp)
            os.replace(self.tmp, self.path)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", sync: bool = False) -> Iterator[IO]:
    """``with atomic_file(path) as handle:`` a :class:`StagedFile` committed only if the block succeeds."""
    staged = StagedFile(path, mode)
    try:
        yield staged.handle
    except BaseException:
        staged.abort()
        raise
    staged.commit(sync=sync)
