"""SHA-256 of image files, read once and cached by (path, size, mtime), for the validation leak guard.

The guard compares the content of every training (or to-be-pseudo-labelled) image with every validation
image, which would re-read a large dataset on every run. The digests are kept in one small json per image
folder under ``<cache root>/hashes/`` (the mask cache's root: ``data.cache_dir`` or the default), keyed by
the file's path relative to the folder together with its size and modification time, so an edited or
replaced file is hashed again. Writes are temp-then-rename; ranks or runs writing at once leave one whole
file. A cache that cannot be written costs speed only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

_log = logging.getLogger("segkit.data")
_VERSION = 1


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FileHashes:
    """``digests(folder, names)``: the SHA-256 of ``folder / name`` for each name, cached under ``cache_root``
    (None: nothing is cached)."""

    def __init__(self, cache_root: str | Path | None, progress: bool = False) -> None:
        self.root = Path(cache_root).expanduser() / "hashes" if cache_root is not None else None
        self.progress = progress

    def _cache_file(self, folder: Path) -> Path | None:
        if self.root is None:
            return None
        digest = hashlib.blake2b(str(folder.resolve()).encode("utf-8"), digest_size=8).hexdigest()
        return self.root / f"{digest}.json"

    def digests(self, folder: str | Path, names: Sequence[str]) -> list[str]:
        folder = Path(folder)
        cache_file = self._cache_file(folder)
        known = _read(cache_file) if cache_file is not None else {}
        out, changed = [], False
        for name in tqdm(names, desc=f"hashing {folder}", unit="img", leave=False,
                         disable=not self.progress or len(names) < 100):
            path = folder / name
            stat = path.stat()
            entry = known.get(name)
            if entry is None or entry[:2] != [stat.st_size, stat.st_mtime_ns]:
                entry = [stat.st_size, stat.st_mtime_ns, file_sha256(path)]
                known[name] = entry
                changed = True
            out.append(entry[2])
        if changed and cache_file is not None:
            _write(cache_file, folder, known)
        return out


def _read(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("version") == _VERSION else None
    return {k: v for k, v in files.items() if isinstance(v, list) and len(v) == 3} if isinstance(files, dict) else {}


def _write(path: Path, folder: Path, files: dict[str, list]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"version": _VERSION, "folder": str(folder.resolve()), "files": files}),
                       encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        _log.warning("file hashes: cannot write %s (%s); images will be hashed again next time", path,
                     err.strerror or err)
