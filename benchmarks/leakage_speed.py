"""Benchmark: the leakage command's speed, this code side by side with an older commit's, in the same run.

Issue 30's target is VGG16 with the smoke preset at 64 px (17 points, 300 steps) in under 10 minutes on 2
CPU cores; the code before it took 1,318 s. Both versions run `edgeprof leakage --model vgg16` as a
subprocess (the old one from `git archive REF`), one after the other, with the same points, steps and
threads, so they see the same machine. A reduced budget (`--points`, `--steps`) keeps the run short; the JSON
says which budget ran and what the whole target would take at the measured speed (the attack's seconds per
point scale with the steps, the features' do not, so the projection from a reduced run is rough).

    python benchmarks/leakage_speed.py [--old-ref 3e4005b] [--points 1,4,8,12,15] [--steps 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from reporting import header, write_result

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
TARGET_S, TARGET_POINTS, TARGET_STEPS = 600, 17, 300  # issue 30: VGG16 smoke, 17 points, 64 px, < 10 minutes


def checkout(ref: str, folder: Path) -> str:
    """The `edgeprof` package of git `ref`, unpacked into `folder`; returns the commit's hash."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "edgeprof"], capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return commit


def timed_run(code: Path, points: str, steps: int, threads: int, outdir: Path) -> dict:
    """`edgeprof leakage` of the package in `code`: wall seconds, seconds per point and the SSIM column."""
    command = [sys.executable, "-c", "from edgeprof.cli import main; main()", "leakage", "--model", "vgg16",
               "--input-size", "64", "--points", points, "--steps", str(steps), "--device", "cpu", "--threads",
               str(threads), "-o", str(outdir), "-q"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": str(code)})
    wall = time.perf_counter() - started
    metadata = json.loads((outdir / "leakage.json").read_text())
    attacked = [row for row in metadata["rows"] if row["attack"] not in ("by definition",)]
    per_point = {str(key): value for key, value in metadata["seconds_per_point"].items()}
    return {"wall_s": round(wall, 1), "seconds_per_point": per_point,
            "attack_seconds": round(sum(per_point.values()), 1),
            "ssim": {row["after"] or "input": row["ssim_mean"] for row in metadata["rows"]},
            "attacked_points": len(attacked), "budget": metadata["budget"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-ref", default="3e4005b", help="the commit to compare with (main before issue 30)")
    parser.add_argument("--points", default="1,4,8,12,15")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", default=str(RESULTS / "leakage_speed.json"))
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        old_code = Path(tmp) / "old"
        old_commit = checkout(args.old_ref, old_code)
        runs = {"new": timed_run(ROOT, args.points, args.steps, args.threads, Path(tmp) / "new-out"),
                "old": timed_run(old_code, args.points, args.steps, args.threads, Path(tmp) / "old-out")}
    new, old = runs["new"], runs["old"]
    per_point_new = new["attack_seconds"] / new["attacked_points"]
    result = {
        **header("leakage_speed", args.threads, load_before),
        "setting": {"model": "vgg16", "input_size": 64, "preset": "smoke", "data": "builtin",
                    "points": args.points, "steps": args.steps, "threads": args.threads,
                    "reduced": f"{new['attacked_points']} attacked points at {args.steps} steps, not the target's "
                               f"{TARGET_POINTS} points at {TARGET_STEPS} steps (the machine's time limit)"},
        "old_commit": old_commit,
        "runs": runs,
        "summary": {
            "new_wall_s": new["wall_s"], "old_wall_s": old["wall_s"],
            "speedup_wall": round(old["wall_s"] / new["wall_s"], 2),
            "speedup_attack": round(old["attack_seconds"] / new["attack_seconds"], 2),
            "new_seconds_per_attacked_point": round(per_point_new, 1),
            "target_projection_s": round(per_point_new * (TARGET_POINTS - 2) * TARGET_STEPS / args.steps, 0),
            "target_projection_note": "upper bound: scales every second of a point with the steps, features too",
            "target_s": TARGET_S,
        },
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_result(Path(args.output), result, "summary")


if __name__ == "__main__":
    main()
