"""How long every experiment takes at the `smoke` budget on this machine, and that each finishes and draws its report.

    python benchmarks/experiments_smoke.py [--experiments NAME,...] [--keep DIR] [-o FILE.json]

Runs each experiment (default: all of `edgeprof experiment list`) at the smoke budget on the serial backend into a
fresh folder, then `experiment report` on it, and records the wall seconds of each, the runs planned, finished and
failed, and the load average before and after (the machine may be shared: the minutes are an upper bound on an
idle one). Writes the JSON and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from reporting import machine, write_result

import edgeprof
from edgeprof.experiments.definitions import EXPERIMENTS
from edgeprof.experiments.report import report_experiment
from edgeprof.experiments.sweep import run_experiment
from edgeprof.files import write_text_atomic

RESULTS = Path(__file__).parent / "results"


def smoke(name: str, folder: Path) -> dict:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    summary = run_experiment(name, folder, "smoke")
    ran = time.perf_counter() - started
    started = time.perf_counter()
    report_experiment(folder)
    return {"experiment": name, "planned": summary["planned"], "finished": summary["finished"],
            "failed": len(summary["failed"]), "run_s": ran, "report_s": time.perf_counter() - started,
            "load_before": load, "load_after": os.getloadavg()[0]}


def markdown(rows: list[dict], result: dict) -> str:
    lines = ["# Every experiment at the smoke budget", "",
             f"Serial backend, one experiment after another; {result['machine']['cores']} cores, load average "
             f"{min(r['load_before'] for r in rows):.1f}-{max(r['load_after'] for r in rows):.1f} (shared machine: "
             "an upper bound for an idle one). `python benchmarks/experiments_smoke.py`.", "",
             "| experiment | runs | failed | run (min) | report (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r['experiment']} | {r['finished']}/{r['planned']} | {r['failed']} | {r['run_s'] / 60:.2f} | "
              f"{r['report_s']:.1f} |" for r in rows]
    lines += ["", f"Total: {sum(r['run_s'] + r['report_s'] for r in rows) / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--keep", type=Path, help="write the experiment folders here (default: a temporary folder)")
    parser.add_argument("-o", "--output", type=Path, default=RESULTS / "experiments_smoke.json")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        rows = []
        for name in args.experiments.split(","):
            rows.append(smoke(name, base / name))
            print(f"{name}: {rows[-1]['finished']}/{rows[-1]['planned']} runs in {rows[-1]['run_s'] / 60:.2f} min",
                  flush=True)
    result = {"benchmark": "experiments_smoke", "edgeprof": edgeprof.__version__, "machine": machine(),
              "rows": rows, "summary": {"experiments": len(rows), "failed_runs": sum(r["failed"] for r in rows),
                                        "total_min": sum(r["run_s"] + r["report_s"] for r in rows) / 60},
              "wall_s": time.perf_counter() - started}
    write_result(args.output, result, "summary")
    write_text_atomic(args.output.with_suffix(".md"), markdown(rows, result))


if __name__ == "__main__":
    main()
