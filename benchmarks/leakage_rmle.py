"""Benchmark: the white-box rMLE attack's strength by depth, the evidence for its per-depth defaults.

For each model, runs `edgeprof leakage --attack rmle` at every attacked point with fixed total-variation
weights and with the per-depth default (`edgeprof.inversion.leakage.rmle_settings`), at the same iterations,
on the builtin images, and writes the SSIM of each (point, weight) pair and the weight that did best at each
depth to benchmarks/results/leakage_rmle.json. Random-init targets, smoke preset (8 images per point).

    python benchmarks/leakage_rmle.py [--models lenet7,edgeprof.inversion.he2019:cifar10_cnn]
                                      [--tv-weights 0.01,0.05,0.2,0.5] [--iterations 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from reporting import header, write_result

from edgeprof.inversion.leakage import RMLE_RULE, LeakageRequest, run_leakage

RESULTS = Path(__file__).parent / "results"


def table(model: str, tv_weight: float | None, iterations: int | None, threads: int, outdir: Path) -> dict:
    result = run_leakage(LeakageRequest(model, outdir, input_size=32, attack="rmle", device="cpu", threads=threads,
                                        rmle_tv_weight=tv_weight, rmle_iterations=iterations))
    last = max(row["position"] for row in result.rows)
    return {row["after"]: {"depth": round(row["position"] / last, 3), "ssim": row["ssim_mean"],
                           "tv_weight": row["training"][0]["rmle"]["tv_weight"],
                           "iterations": row["training"][0]["rmle"]["iterations"]}
            for row in result.rows if row["attack"] == "rmle"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet7,edgeprof.inversion.he2019:cifar10_cnn")
    parser.add_argument("--tv-weights", default="0.01,0.05,0.2,0.5")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", default=str(RESULTS / "leakage_rmle.json"))
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()
    torch.set_num_threads(args.threads)
    weights = [float(w) for w in args.tv_weights.split(",")]
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            runs = {str(w): table(model, w, args.iterations, args.threads, Path(tmp) / f"{model}-{w}")
                    for w in weights}
            runs["per-depth default"] = table(model, None, args.iterations, args.threads, Path(tmp) / f"{model}-d")
            points = list(runs[str(weights[0])])
            best = {point: max(runs, key=lambda name, point=point: runs[name][point]["ssim"]) for point in points}
            models[model] = {"runs": runs, "best_by_point": best,
                             "depth": {point: runs[str(weights[0])][point]["depth"] for point in points}}
    write_result(Path(args.output), {
        **header("leakage_rmle", args.threads, load_before),
        "setting": {"input_size": 32, "data": "builtin", "weights": "random init", "images_per_point": 8,
                    "iterations": args.iterations, "default_rule": RMLE_RULE},
        "models": models,
        "summary": {model: entry["best_by_point"] for model, entry in models.items()},
        "wall_s": round(time.perf_counter() - started, 1),
    }, "summary")


if __name__ == "__main__":
    main()
