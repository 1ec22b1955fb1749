"""Output folders created up front, so an unwritable ``--out`` is one line, not a traceback later."""

from __future__ import annotations

from pathlib import Path

from segkit.errors import SegkitError


def output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` (and parents) if needed and return it; ``flag`` names the option in the error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SegkitError(f"{flag} {path}: cannot create the folder ({err.strerror})") from err
    return path
