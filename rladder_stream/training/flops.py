"""Counting against the limit: the arithmetic a piece of work does and the device's peak, so that training logs
and the benchmarks report what fraction of the chip they use (docs/design.md#counting-against-the-limit).

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`: matrix products and convolutions,
forward and backward as they run; element-wise work is not counted. The peak is a large matrix product timed
on the same device: bf16 on a GPU (the tensor cores' rate), float32 on a CPU.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Callable

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn`` over ``repeats`` calls (after the caller's warm-up), device work included."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of the matrix products and convolutions ``fn()`` runs (its backward too, if it calls one)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


@functools.lru_cache(maxsize=None)
def measure_peak(device: torch.device, quick: bool = False, cpu_bf16: bool = False) -> tuple[float, str]:
    """FLOP/s of a large matrix product on ``device`` and what was measured: bf16 8192^3 on a GPU, float32
    2048^3 on a CPU (1024^3 with ``quick``; bf16 with ``cpu_bf16``, the arithmetic such training runs in).
    Measured once per process and device."""
    if device.type == "cuda":
        n, dtype = 8192, torch.bfloat16
    else:
        n, dtype = (1024 if quick else 2048), torch.bfloat16 if cpu_bf16 else torch.float32
    # its own generator: the global one would advance on the first call in a process only, so a training run's
    # draws would depend on whether an earlier run in the same process had measured the peak already
    gen = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(n, n, device=device, dtype=dtype, generator=gen) for _ in range(2))
    for _ in range(2):
        a @ b
    # the best of several timings: on a CPU shared with other work the mean would understate the peak
    seconds = min(timed(lambda: a @ b, device, 1 if device.type == "cpu" else 10) for _ in range(5))
    return 2 * n**3 / seconds, f"{str(dtype).removeprefix('torch.')} matmul {n}x{n}x{n}, best of 5"
