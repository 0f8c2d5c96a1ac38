"""Latency of a callable on a CPU or a CUDA device: warm-up, repeats, robust statistics.

CPU work is timed with `time.perf_counter_ns` around each call. CUDA work is asynchronous, so each repeat
is bracketed by CUDA events and the elapsed times are read after one final synchronisation (no host sync
between repeats, so launches pipeline as they would in deployment). Statistics are the median with p10, p90
and the minimum: on a shared machine the mean is dominated by stalls.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from edgeprof.errors import EdgeprofError


@dataclass(frozen=True)
class LatencyStats:
    """Repeated timings of one piece of work, in milliseconds."""

    samples_ms: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    def quantile(self, q: float) -> float:
        """Linear-interpolated quantile, q in [0, 1]."""
        ordered = sorted(self.samples_ms)
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    def as_dict(self) -> dict[str, float]:
        """The profile's latency object: median, p10, p90, min (ms)."""
        return {
            "median": round(self.median, 6),
            "p10": round(self.quantile(0.1), 6),
            "p90": round(self.quantile(0.9), 6),
            "min": round(min(self.samples_ms), 6),
        }


def resolve_device(name: str) -> torch.device:
    """`cpu`, `cuda`, `cuda:N` or `auto` (the first CUDA GPU when there is one), checked to exist."""
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EdgeprofError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise EdgeprofError(f"unsupported device {name!r}: use cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise EdgeprofError(f"--device {name}: no CUDA GPU is available here (torch.cuda.is_available() is False)")
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise EdgeprofError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device("cuda", index)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def fixed_threads(threads: int | None) -> Iterator[int]:
    """Run with a fixed intra-op thread count (the current one when None); yields the count used."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise EdgeprofError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def time_callable(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> LatencyStats:
    """Time `fn()` `repeats` times on `device` after `warmup` untimed calls."""
    if repeats < 1 or warmup < 0:
        raise EdgeprofError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    if device.type == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        synchronize(device)
        return LatencyStats(tuple(start.elapsed_time(end) for start, end in events))
    samples = []
    for _ in range(repeats):
        began = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - began) / 1e6)
    return LatencyStats(tuple(samples))
