"""Torch's process-wide settings for a training run: threads, matmul precision, seeding."""

from contextlib import contextmanager

import numpy as np
import torch

MATMUL_PRECISIONS = ('highest', 'high', 'medium')


@contextmanager
def torch_settings(threads: int = 1, matmul_precision: str = None,
                   flush_denormal: bool = False):
    """Run the block with ``threads`` torch threads (and the other settings); restore after.

    Small networks train fastest on one thread, and on a busy machine extra threads spin.
    ``matmul_precision`` (None: leave it) 'medium' lets PyTorch compute float32 matrix
    products in bfloat16 with float32 accumulation where the CPU has it (AMX, AVX512-BF16):
    about three times faster there, with about three significant digits per product.
    ``flush_denormal`` flushes denormal numbers to zero (Adam's second moments and tiny
    gradients make them; they cost the CPU about 10% in the off-policy loops) and turns
    flushing off again after.
    """
    if matmul_precision is not None and matmul_precision not in MATMUL_PRECISIONS:
        raise ValueError(f'matmul_precision {matmul_precision!r} is not one of '
                         f'{", ".join(MATMUL_PRECISIONS)}')
    old_threads, old_precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    torch.set_num_threads(threads)
    if matmul_precision is not None:
        torch.set_float32_matmul_precision(matmul_precision)
    if flush_denormal:
        torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flush_denormal:
            torch.set_flush_denormal(False)
        torch.set_num_threads(old_threads)
        if matmul_precision is not None:
            torch.set_float32_matmul_precision(old_precision)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch and return a NumPy generator for the algorithm's own sampling."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
