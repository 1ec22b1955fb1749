import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """On a few shared cores, intra-op threads fighting other processes make tiny convolutions 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
