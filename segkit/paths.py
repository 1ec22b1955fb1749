"""Output paths: folders created up front (an unwritable ``--out`` is one line, not a traceback later),
names kept inside them, and files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from glob import escape as glob_escape
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


def check_output_file(path: str | Path, flag: str) -> Path:
    """Before anything is loaded or predicted: ``path`` can become a file (not a folder, no file among its
    parents, its nearest existing folder writable), so a run never fails at its end over its output path."""
    path = Path(path)
    if path.is_dir():
        raise SegkitError(f"{flag} {path} is a folder; give a file path such as {path / 'submission.csv'}")
    _check_creatable(path.parent, flag, path)
    return path


def check_output_folder(path: str | Path, flag: str) -> Path:
    """Like :func:`check_output_file` for a folder that will be created (or filled)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SegkitError(f"{flag} {path} is a file; give a folder")
    _check_creatable(path, flag, path)
    return path


def _check_creatable(folder: Path, flag: str, target: Path) -> None:
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise SegkitError(f"{flag} {target}: {existing} is a file, not a folder; choose another path")
    try:  # a real write: os.access says yes to root even where the file system refuses (/proc, read-only mounts)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise SegkitError(f"{flag} {target}: cannot write in {existing} ({err.strerror}); choose another path") from err


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temp files (``.<name>.<pid>.tmp``) that runs killed while writing ``path`` left behind; a temp
    file of a process that is still running is kept. Returns what was removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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
