"""Where a sweep's runs execute, behind one `map`: in this process, in a local process pool, or on Ray.

`backend.map(fn, configs, outdir)` calls the top-level function `fn(config, outdir)` once per config and yields
the results as runs finish (in completion order; the sweep's results are keyed by run id, so the order does
not matter). Every backend gives each run one torch thread. Ray is an optional extra (`pip install
"edgeprof[ray]"`), imported only by `RayBackend`: Ray Core tasks, a local cluster on the loopback interface, or
an existing one at `address`.

The process pool's workers are forks of a forkserver: one interpreter, started once per driver process, that has
imported what runs need (`WORKER_PRELOAD`: numpy, the schema checker, the systems and their heuristics). A fresh
interpreter per worker (spawn) paid those imports again in every worker of every pool; a plain fork of the driver
is not safe in general (its threads, e.g. the progress bar's, or torch's OpenMP pool, may hold locks that the
child would inherit held). The forkserver runs no work and has one thread, so forking it is safe.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import forkserver, get_context
from multiprocessing.context import BaseContext
from typing import Any

from edgeprof.errors import EdgeprofError

RunFunction = Callable[[dict[str, Any], str], dict[str, Any]]
BACKENDS = ("serial", "process", "ray")
REACH_TIMEOUT_S = 5.0
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}  # read at import
# imported once by the forkserver, so a forked worker starts with them; none of them imports torch or cvxpy
# (DESIGN.md), which would make every sweep's start-up pay for them
WORKER_PRELOAD = (
    "edgeprof.experiments.sweep", "edgeprof.profiler.schema", "edgeprof.sim.evaluation", "edgeprof.sim.env",
    "edgeprof.sim.rollout", "edgeprof.optimize.solve", "edgeprof.optimize.heuristics",
    "edgeprof.sim.dpa", "edgeprof.sim.foci", "edgeprof.sim.cerl", "edgeprof.sim.crowd_edge",
    "edgeprof.optimize.foci", "edgeprof.optimize.cerl", "edgeprof.optimize.crowd_edge",
)


def _one_thread() -> None:
    """Worker start-up: one thread per run (DESIGN.md), before torch is imported."""
    os.environ.update(ONE_THREAD)


class SerialBackend:
    """Every run in this process, one after another (the default; tests and CI)."""

    def map(self, fn: RunFunction, configs: Sequence[dict[str, Any]], outdir: str) -> Iterator[dict[str, Any]]:
        for config in configs:
            yield fn(config, outdir)


def worker_context() -> BaseContext:
    """The multiprocessing context of the process pool: forks of a forkserver that preloaded `WORKER_PRELOAD` (a
    module that fails to import there is imported by the run that needs it) and the driver's main module, where
    Python does (before CPython gh-126631's fix each worker imports the main module itself, as spawn did). The
    forkserver starts with the first pool of this process, with one thread per library (numpy's BLAS reads it when
    imported, in the forkserver); the driver's own environment is left as it was."""
    context = get_context("forkserver")
    context.set_forkserver_preload(["__main__", *WORKER_PRELOAD])
    saved = {name: os.environ.get(name) for name in ONE_THREAD}
    os.environ.update(ONE_THREAD)
    try:
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return context


class ProcessBackend:
    """A local pool of `workers` processes (forks of the forkserver, so nothing is shared but the run folder)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise EdgeprofError(f"--workers must be at least 1, got {workers}")
        self.workers = workers

    def map(self, fn: RunFunction, configs: Sequence[dict[str, Any]], outdir: str) -> Iterator[dict[str, Any]]:
        if not configs:
            return
        with ProcessPoolExecutor(self.workers, mp_context=worker_context(), initializer=_one_thread) as pool:
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
                                   "runtime_env": {"env_vars": dict(ONE_THREAD)}}
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
