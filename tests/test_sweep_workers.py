"""What makes a sweep's runs cheap: workers forked from a forkserver that already imported what a run needs (with
one thread each), and a run's files written in one atomic commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from edgeprof.experiments.backends import ONE_THREAD, WORKER_PRELOAD, ProcessBackend
from edgeprof.experiments.definitions import get_experiment
from edgeprof.experiments.sweep import execute_run, plan, run_id

METHODS = ("greedy", "edge-only", "local-only")


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_the_preload_imports_without_torch_or_cvxpy():
    code = ("import importlib, sys\n"
            f"for name in {WORKER_PRELOAD!r}:\n    importlib.import_module(name)\n"
            "print(sorted({'torch', 'cvxpy'} & set(sys.modules)))")
    assert _fresh_python(code).strip() == "[]"


def test_a_solver_run_imports_no_edgeprof_module_beyond_the_preload(tmp_path):
    configs = plan(get_experiment("seed001-fig11"), "smoke", [0], METHODS)[::5]  # one value, each method
    assert sorted(config["method"]["name"] for config in configs) == sorted(METHODS)
    code = ("import importlib, json, sys\n"
            f"for name in {WORKER_PRELOAD!r}:\n    importlib.import_module(name)\n"
            "from edgeprof.experiments.sweep import execute_run\n"
            "before = set(sys.modules)\n"
            f"results = [execute_run(config, {str(tmp_path)!r}) for config in json.loads({json.dumps(configs)!r})]\n"
            "print(json.dumps({'status': [r['status'] for r in results],\n"
            "                  'new': sorted(m for m in set(sys.modules) - before if m.startswith('edgeprof'))}))")
    outcome = json.loads(_fresh_python(code))
    assert outcome == {"status": ["done"] * 3, "new": []}


def probe(config: dict, outdir: str) -> dict:
    """What a pool worker has when its run starts, and the environment its parent (the forkserver) started with."""
    with open(f"/proc/{os.getppid()}/environ", "rb") as handle:
        parent_env = dict(item.decode().partition("=")[::2] for item in handle.read().split(b"\0") if item)
    return {"id": str(config["n"]), "status": "done", "pid": os.getpid(), "parent": os.getppid(),
            "env": {name: os.environ.get(name) for name in ONE_THREAD},
            "parent_env": {name: parent_env.get(name) for name in ONE_THREAD},
            "missing": [name for name in WORKER_PRELOAD if name not in sys.modules]}


def test_pool_workers_start_with_the_preload_and_one_thread_each(monkeypatch):
    for name in ONE_THREAD:
        monkeypatch.delenv(name, raising=False)
    results = list(ProcessBackend(2).map(probe, [{"n": n} for n in range(6)], ""))
    assert sorted(int(result["id"]) for result in results) == list(range(6))
    assert len({result["parent"] for result in results}) == 1 and results[0]["parent"] != os.getpid()  # forkserver
    for result in results:
        assert result["env"] == result["parent_env"] == ONE_THREAD  # numpy's BLAS was imported with one thread
        assert result["missing"] == []  # every preloaded module was there before the run imported anything
    assert not set(ONE_THREAD) & set(os.environ)  # the driver's environment is left as it was


def test_a_run_writes_its_config_with_its_metrics_or_with_its_error(tmp_path):
    good = plan(get_experiment("seed001-fig11"), "smoke", [0], ["local-only"])[0]
    rundir = tmp_path / "runs" / run_id(good)
    rundir.mkdir(parents=True)
    (rundir / "error.json").write_text("{}")  # from a failed try: a retry that finishes removes it
    assert execute_run(good, str(tmp_path))["status"] == "done"
    assert sorted(path.name for path in rundir.iterdir()) == ["config.json", "metrics.json", "timing.json"]
    assert json.loads((rundir / "config.json").read_text()) == good
    assert json.loads((rundir / "metrics.json").read_text())["rows"][0]["solver"] == "local-only"
    bad = {**good, "preset": "no-such-preset"}
    result = execute_run(bad, str(tmp_path))
    assert result["status"] == "failed" and "no-such-preset" in result["error"]
    failed = tmp_path / "runs" / run_id(bad)
    assert sorted(path.name for path in failed.iterdir()) == ["config.json", "error.json"]
    assert json.loads((failed / "error.json").read_text())["error"] == result["error"]
