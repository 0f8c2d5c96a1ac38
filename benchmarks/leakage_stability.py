"""Benchmark: how much a leakage score moves with the attack's own randomness.

Trains `--repeats` decoders (different decoder seeds, same target, same images) at lenet7's z = 2 with the
smoke preset on the builtin images, and writes each decoder's SSIM, their mean and the largest distance from
it to benchmarks/results/leakage_stability.json. The acceptance bound of issue 30 is +-0.02.

    python benchmarks/leakage_stability.py [--model lenet7] [--points 2] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from reporting import header, write_result

from edgeprof.inversion.leakage import LeakageRequest, run_leakage

RESULTS = Path(__file__).parent / "results"
BOUND = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet7")
    parser.add_argument("--points", default="2")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", default=str(RESULTS / "leakage_stability.json"))
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_leakage(LeakageRequest(args.model, Path(tmp), points=args.points, repeats=args.repeats,
                                            device="cpu", threads=args.threads))
    rows = []
    for row in result.rows:
        values = row["ssim_repeats"]
        mean = sum(values) / len(values)
        deviation = max(abs(value - mean) for value in values)
        rows.append({"z": row["z"], "after": row["after"], "ssim_by_decoder_seed": values, "mean": round(mean, 6),
                     "max_deviation_from_mean": round(deviation, 6), f"within_{BOUND}": deviation <= BOUND,
                     "ssim_repeats_sd": row["ssim_repeats_sd"],
                     "interval": [row["ssim_ci95_low"], row["ssim_ci95_high"]],
                     "attack_interval": [row["ssim_attack_ci95_low"], row["ssim_attack_ci95_high"]],
                     "steps_taken": [t["steps"] for t in row["training"]],
                     "best_steps": [t["best_step"] for t in row["training"]]})
    write_result(Path(args.output), {
        **header("leakage_stability", args.threads, load_before),
        "setting": {"model": args.model, "preset": "smoke", "data": "builtin", "seed": 0,
                    "decoder_seeds": f"--decoder-seed 0, repeats 0..{args.repeats - 1}",
                    "budget": result.metadata["budget"]},
        "bound": BOUND,
        "rows": rows,
        "wall_s": round(time.perf_counter() - started, 1),
    }, "rows")


if __name__ == "__main__":
    main()
