"""Thread pinning: CPU results are bit-reproducible only for a fixed intra-op thread count."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None = 1):
    """Run with `n` torch intra-op threads (None: leave as is), restoring the setting afterwards."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
