"""The machine's limit and a run's useful work: an fp32 matmul's GFLOP/s, and the FLOPs torch counts in a run.

Share of peak = a run's counted FLOPs (matmuls, convolutions, attention: ``torch.utils.flop_counter``, forward and
backward) over its wall time, against the GFLOP/s of a square fp32 matmul on the same number of threads, measured
in the same process. Element-wise work (norms, activations, the optimiser) is not counted: it is the overhead of
small models, and a sweep that spends its time there is not at the limit.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch


def matmul_peak_gflops(threads: int = 1, size: int = 1024, repeats: int = 15, device: str = "cpu") -> float:
    """Median GFLOP/s of a ``size`` x ``size`` fp32 matmul on ``threads`` CPU threads (restored after), or on the
    CUDA device (``size`` 4096 is a fairer peak there)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    try:
        g = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=g).to(device) for _ in range(2))
        out = torch.empty(size, size, device=device)
        for _ in range(3):  # warm the allocator and the kernel
            torch.mm(a, b, out=out)
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            sync()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return 2 * size**3 / statistics.median(times) / 1e9


def counted_flops(fn: Callable[[], Any]) -> tuple[Any, int]:
    """(``fn()``, the FLOPs torch's counter saw while it ran). The counter slows the call down: time another call."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        result = fn()
    return result, int(counter.get_total_flops())
