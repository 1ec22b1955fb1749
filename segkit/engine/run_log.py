"""The run's human-readable log: train.log in the work dir plus the console, without breaking tqdm bars."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record))


def setup_run_logger(work_dir: Path | None, quiet: bool = False) -> logging.Logger:
    """A ``segkit`` logger writing to the console and, when given, ``work_dir/train.log`` (appended).

    ``quiet`` (DDP ranks other than 0) keeps only warnings, so the console shows each message once.
    """
    logger = logging.getLogger("segkit")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _TqdmHandler()
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if work_dir is not None:
        file_handler = logging.FileHandler(work_dir / "train.log", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(file_handler)
    return logger
