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
