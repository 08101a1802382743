import os

import pytest

# Tests never touch the shipped results or the user's checkpoints.
@pytest.fixture
def scratch_roots(tmp_path, monkeypatch):
    res, work = tmp_path / "results", tmp_path / "work"
    monkeypatch.setenv("SCALINGLAWS_RESULTS", str(res))
    monkeypatch.setenv("SCALINGLAWS_WORK", str(work))
    return res, work


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is ~10x faster than two that
    contend with other processes (measured: 0.3 s vs 4-5 s per smoke routing model)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
