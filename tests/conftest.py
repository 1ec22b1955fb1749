"""Shared fixtures: a tiny generated COCO dataset and configs that train on it in seconds."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from segkit.data.demo import make_demo_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# pytest-xdist runs the suite in one process per core (`-n auto` in pyproject.toml). Each worker and the
# processes its tests start then get an equal share of the cores: several workers each running torch's default
# thread pool over every core would oversubscribe the machine and make tiny convolutions many times slower.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _THREADS = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ["OMP_NUM_THREADS"] = _THREADS
    torch.set_num_threads(int(_THREADS))

TINY_CONFIG = """
_base_ = ["{repo}/configs/demo_unet.py"]
data = dict(root="{root}", num_workers=0, batch_size=4, val_batch_size=3,
            train=dict(pipeline=[dict(type="HorizontalFlip", p=0.5)]))
model = dict(decoder_channels=(32, 16, 16, 8, 8))
scheduler = dict(warmup_iters=2)
train = dict(epochs={epochs}, log_interval=1)
"""


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip with a reason on machines without a GPU instead of failing."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def private_mask_cache(tmp_path_factory):
    """Tests (and the processes they start) cache masks in a temporary folder, not in ~/.cache."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory) -> Path:
    """8 train / 4 val / 2 test images at 64 px."""
    root = tmp_path_factory.mktemp("tiny_demo")
    make_demo_dataset(root, num_train=8, num_val=4, num_test=2, size=64, progress=False)
    return root


@pytest.fixture
def tiny_config(tiny_demo, tmp_path) -> Callable[..., Path]:
    """Writes a config training on ``tiny_demo``; extra keyword arguments become extra config lines."""

    def write(epochs: int = 2, name: str | None = None, extra: str = "") -> Path:
        path = tmp_path / (name or f"tiny_{epochs}e.py")
        path.write_text(TINY_CONFIG.format(repo=REPO, root=tiny_demo, epochs=epochs) + extra)
        return path

    return write
