"""Latency of a callable on a CPU or a CUDA device: warm-up, repeats, robust statistics.

CPU work is timed with `time.perf_counter_ns` around each call. CUDA work is asynchronous, so each repeat
is bracketed by CUDA events and the elapsed times are read after one final synchronisation (no host sync
between repeats, so launches pipeline as they would in deployment). Statistics are the median with p10, p90
and the minimum: on a shared machine the mean is dominated by stalls. On a CPU, each round also records the
process's CPU time beside the wall time (`RoundLoad`): a process that got much less than a core while it was
computing was being preempted, and its timings say more about the machine's load than about the model.
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


@dataclass(frozen=True)
class RoundLoad:
    """One timing round (every callable once): its wall time and the CPU time the process used meanwhile."""

    wall_s: float
    cpu_s: float

    @property
    def cpu_share(self) -> float:
        """CPU seconds per wall second: about 1 (or the thread count) when nothing else competed for the cores."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


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


def time_callables(
    fns: list[Callable[[], object]],
    device: torch.device,
    warmup: int,
    repeats: int,
    on_round: Callable[[int], None] | None = None,
    rounds: list[RoundLoad] | None = None,
) -> list[LatencyStats]:
    """Time each of `fns` `repeats` times on `device`, round-robin, after `warmup` untimed calls of each.

    Round-robin (f1 f2 f3 f1 f2 f3 ...) rather than one after the other spreads slow drifts and stalls of a
    shared machine over every callable alike, so that their medians stay comparable (a prefix plus its suffix
    against the whole model, say). `on_round(r)` is called after each round, for progress bars. On a CPU,
    `rounds` (when given) gets each round's `RoundLoad`.
    """
    if repeats < 1 or warmup < 0:
        raise EdgeprofError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}")
    for fn in fns:
        for _ in range(warmup):
            fn()
    synchronize(device)
    if device.type == "cuda":
        events = [[(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in fns]
                  for _ in range(repeats)]
        for r, round_events in enumerate(events, start=1):
            for fn, (start, end) in zip(fns, round_events, strict=True):
                start.record()
                fn()
                end.record()
            if on_round:
                on_round(r)
        synchronize(device)
        return [LatencyStats(tuple(round_events[i][0].elapsed_time(round_events[i][1]) for round_events in events))
                for i in range(len(fns))]
    samples: list[list[float]] = [[] for _ in fns]
    for r in range(1, repeats + 1):
        round_wall, round_cpu = time.perf_counter(), time.process_time()
        for fn, times in zip(fns, samples, strict=True):
            began = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - began) / 1e6)
        if rounds is not None:
            rounds.append(RoundLoad(time.perf_counter() - round_wall, time.process_time() - round_cpu))
        if on_round:
            on_round(r)
    return [LatencyStats(tuple(times)) for times in samples]


def time_callable(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> LatencyStats:
    """Time `fn()` `repeats` times on `device` after `warmup` untimed calls."""
    return time_callables([fn], device, warmup, repeats)[0]
