"""Where a sweep's runs execute, behind one `map`: in this process, in a local process pool, or on Ray.

`backend.map(fn, configs, outdir)` calls the top-level function `fn(config, outdir)` once per config and yields
the results as runs finish (in completion order; the sweep's results are keyed by run id, so the order does
not matter). Every backend gives each run one torch thread. Ray is an optional extra (`pip install
"edgeprof[ray]"`), imported only by `RayBackend`: Ray Core tasks, a local cluster on the loopback interface, or
an existing one at `address`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

from edgeprof.errors import EdgeprofError

RunFunction = Callable[[dict[str, Any], str], dict[str, Any]]
BACKENDS = ("serial", "process", "ray")
REACH_TIMEOUT_S = 5.0


def _one_thread() -> None:
    """Worker start-up: one thread per run (DESIGN.md), before torch is imported."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


class SerialBackend:
    """Every run in this process, one after another (the default; tests and CI)."""

    def map(self, fn: RunFunction, configs: Sequence[dict[str, Any]], outdir: str) -> Iterator[dict[str, Any]]:
        for config in configs:
            yield fn(config, outdir)


class ProcessBackend:
    """A local pool of `workers` processes (spawned, so nothing is shared but the run folder)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise EdgeprofError(f"--workers must be at least 1, got {workers}")
        self.workers = workers

    def map(self, fn: RunFunction, configs: Sequence[dict[str, Any]], outdir: str) -> Iterator[dict[str, Any]]:
        if not configs:
            return
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=_one_thread) as pool:
            pending = {pool.submit(fn, config, outdir) for config in configs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()


class RayBackend:
    """Ray Core tasks, one CPU each: a local Ray on the loopback interface with `workers` CPUs, or the cluster
    at `address` (its own CPUs)."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        if workers < 1:
            raise EdgeprofError(f"--workers must be at least 1, got {workers}")
        self.workers, self.address = workers, address

    def _check_reachable(self) -> None:
        """A HOST:PORT address must accept a connection within seconds (Ray itself retries for many minutes)."""
        host, sep, port = (self.address or "").rpartition(":")
        if not sep or not port.isdigit() or "://" in self.address:
            return  # "auto", "ray://..." and the like: Ray resolves them
        try:
            socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
        except OSError as error:
            raise EdgeprofError(f"cannot reach Ray at {self.address}: {error.strerror or error}") from None

    def start(self) -> Any:
        """Import Ray and connect to (or start) the cluster; returns the `ray` module."""
        self._check_reachable()
        try:
            import ray
        except ImportError:
            raise EdgeprofError('the ray backend needs Ray: pip install "edgeprof[ray]"') from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}}
        if self.address:
            options["address"] = self.address
        else:
            options.update(num_cpus=self.workers, _node_ip_address="127.0.0.1")
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise EdgeprofError(f"cannot start or reach Ray at {self.address or 'a local cluster'}: "
                                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
        return ray

    def map(self, fn: RunFunction, configs: Sequence[dict[str, Any]], outdir: str) -> Iterator[dict[str, Any]]:
        if not configs:
            return
        ray = self.start()
        try:
            remote = ray.remote(num_cpus=1)(fn)
            pending = [remote.remote(config, outdir) for config in configs]
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            ray.shutdown()


def make_backend(name: str, workers: int = 2, address: str | None = None) -> Any:
    """The backend called `name` (`BACKENDS`)."""
    if name == "serial":
        return SerialBackend()
    if name == "process":
        return ProcessBackend(workers)
    if name == "ray":
        return RayBackend(workers, address)
    raise EdgeprofError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
