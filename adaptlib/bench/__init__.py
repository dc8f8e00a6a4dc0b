"""Benchmarks of speed and memory, measured side by side in one run (``make bench``; see ``methods``), against the
machine's own limit (``peak``: an fp32 matmul's GFLOP/s and the FLOPs torch counts in a run)."""

from __future__ import annotations

from .methods import summarise
from .peak import counted_flops, matmul_peak_gflops

__all__ = ["counted_flops", "matmul_peak_gflops", "summarise"]
