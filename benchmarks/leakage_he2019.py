"""Benchmark: He et al. 2019's CIFAR-10 network, random and briefly trained, attacked at their split points.

He, Zhang & Lee (ACSAC 2019) report the black-box inverse network's SSIM on their CIFAR-10 CNN at conv11
(before the first ReLU), ReLU22 (16x16x128) and ReLU32 (8x8x128): 0.9993, 0.6939, 0.3124. CIFAR-10 cannot
be downloaded here, so this benchmark rebuilds their network (`edgeprof.inversion.he2019:cifar10_cnn`) and:

- trains it briefly on a proxy task made of bundled pictures: which of scikit-image's builtin train pictures
  a 32-px crop comes from (the leakage run's evaluation pictures are never shown to it);
- runs `edgeprof leakage --cuts all` at 32 px on the builtin images, once with random-init weights and once
  with the trained ones, at their three points and the partition points around them.

It writes benchmarks/results/leakage_he2019.json and a Markdown table beside their published numbers
(leakage_he2019.md). The numbers are not comparable one to one (other data, other SSIM window, a stronger
decoder, a tiny training budget); the comparison is the trend with depth and pooling.

    python benchmarks/leakage_he2019.py [--points ...] [--repeats 2] [--train-steps 600] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from reporting import header, write_result

from edgeprof.files import write_text_atomic
from edgeprof.inversion.data import BUILTIN_SPLIT, load_images, to_float
from edgeprof.inversion.he2019 import PUBLISHED_SSIM, cifar10_cnn
from edgeprof.inversion.leakage import NORMALIZATIONS, LeakageRequest, run_leakage
from edgeprof.stats import format_interval

RESULTS = Path(__file__).parent / "results"
MODEL = "edgeprof.inversion.he2019:cifar10_cnn"
HE_POINTS = ("conv11", "ReLU22", "ReLU32")
DEFAULT_POINTS = "conv11,ReLU11,pool1,ReLU22,pool2,ReLU32,flatten"


def _proxy_task(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the builtin train pictures, labelled with the picture they come from (crop k comes from
    picture k mod the number of pictures; the two stereo views of one scene share a label)."""
    crops = load_images("builtin", 32, (count, 0, 0), seed).train
    names = BUILTIN_SPLIT["train"]
    classes = sorted({name.removesuffix("_left").removesuffix("_right") for name in names})
    label_of = [classes.index(name.removesuffix("_left").removesuffix("_right")) for name in names]
    labels = torch.tensor([label_of[k % len(names)] for k in range(count)])
    return crops, labels


def train_briefly(steps: int, seed: int) -> tuple[torch.nn.Module, dict]:
    """cifar10_cnn trained with Adam on the proxy task, its inputs normalised as the leakage run does."""
    torch.manual_seed(seed)
    model = cifar10_cnn()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATIONS["imagenet"])
    train_x, train_y = _proxy_task(4000, seed=1)
    test_x, test_y = _proxy_task(700, seed=2)
    head = torch.nn.Linear(10, int(train_y.max()) + 1)  # the network's 10 outputs feed the proxy's classes
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        index = torch.randint(len(train_x), (64,), generator=generator)
        loss = F.cross_entropy(head(model((to_float(train_x[index]) - mean) / std)), train_y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        predicted = head(model((to_float(test_x) - mean) / std)).argmax(1)
    accuracy = float((predicted == test_y).double().mean())
    return model, {"task": "which builtin train picture a 32-px crop comes from", "classes": int(train_y.max()) + 1,
                   "train_crops": len(train_x), "steps": steps, "batch": 64, "optimizer": "Adam 1e-3",
                   "held_out_accuracy": round(accuracy, 4), "chance": round(1 / (int(train_y.max()) + 1), 4)}


def attack(weights: str | None, points: str, repeats: int, threads: int, outdir: Path) -> dict:
    result = run_leakage(LeakageRequest(MODEL, outdir, input_size=32, points=points, cuts="all", weights=weights,
                                        device="cpu", threads=threads, repeats=repeats))
    keys = ("z", "kind", "after", "feature_shape", "ssim_mean", "ssim_ci95_low", "ssim_ci95_high",
            "ssim_repeats", "psnr_mean", "leakage_norm")
    return {"weights": result.metadata["model"]["weights"], "baseline_ssim": result.metadata["baseline_ssim"],
            "seconds_per_point": result.metadata["seconds_per_point"],
            "rows": [{key: row.get(key) for key in keys} for row in result.rows]}


def markdown(result: dict) -> str:
    random_rows = {row["after"]: row for row in result["runs"]["random init"]["rows"]}
    trained_rows = {row["after"]: row for row in result["runs"]["briefly trained"]["rows"]}
    published = PUBLISHED_SSIM["inverse-net"]

    def cell(row: dict) -> str:
        return f"{row['ssim_mean']:.3f} ({format_interval(row['ssim_ci95_low'], row['ssim_ci95_high'], 3)})"

    lines = [
        "# He et al. 2019's CIFAR-10 CNN: SSIM of the black-box inverse network by split point",
        "",
        (f"Written by `benchmarks/leakage_he2019.py` ({result['created']}). Ours: `edgeprof leakage --cuts all` at "
         "32 px, smoke preset, builtin images (CIFAR-10 cannot be downloaded here), "
         f"{result['repeats']} decoders per point; the interval covers the evaluation pictures (2, so it is wide) "
         "and the decoders' spread. He et al.: their Table 4 (decoder trained on CIFAR-10's training set, "
         "skimage's 7x7 SSIM, 10 test images), target trained on CIFAR-10."),
        "",
        (f"Briefly trained: {result['training']['steps']} Adam steps on a proxy task "
         f"({result['training']['task']}, {result['training']['classes']} classes), held-out accuracy "
         f"{result['training']['held_out_accuracy']:.3f} (chance {result['training']['chance']:.3f}). "
         f"Dataset-mean baseline SSIM: {result['runs']['random init']['baseline_ssim']:.3f}."),
        "",
        "| point | feature | He et al. 2019 | ours, random init | ours, briefly trained |",
        "|---|---|---|---|---|",
    ]
    for name, row in random_rows.items():
        he = f"{published[name]:.4f}" if name in published else ""
        label = name if row["z"] is not None else f"{name} ({row['kind']})"
        lines.append(f"| {label} | {row['feature_shape']} | {he} | {cell(row)} | {cell(trained_rows[name])} |")
    lines += ["", *result["reading"], ""]
    return "\n".join(lines)


def reading(result: dict) -> list[str]:
    """What the numbers say about He et al.'s trend, computed from the rows (nothing hand-written)."""
    out = []
    for label, run in result["runs"].items():
        ssim = {row["after"]: row["ssim_mean"] for row in run["rows"]}
        he = [ssim[name] for name in HE_POINTS if name in ssim]
        if len(he) == len(HE_POINTS):
            falls = he[0] > he[1] > he[2]
            out.append(f"- {label}: conv11 {he[0]:.3f} > ReLU22 {he[1]:.3f} > ReLU32 {he[2]:.3f}: "
                       f"{'falls with depth as in He et al.' if falls else 'does NOT fall monotonically'}; "
                       f"ReLU32 is {he[2] - run['baseline_ssim']:+.3f} from the no-information baseline.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default=DEFAULT_POINTS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", default=str(RESULTS / "leakage_he2019.json"))
    args = parser.parse_args()
    started, load_before = time.perf_counter(), os.getloadavg()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        trained, training = train_briefly(args.train_steps, seed=0)
        weights = Path(tmp) / "cifar10_cnn_proxy.pt"
        torch.save(trained.state_dict(), weights)
        runs = {"random init": attack(None, args.points, args.repeats, args.threads, Path(tmp) / "random"),
                "briefly trained": attack(str(weights), args.points, args.repeats, args.threads,
                                          Path(tmp) / "trained")}
    result = {
        **header("leakage_he2019", args.threads, load_before),
        "published": {"source": "He, Zhang & Lee 2019, Tables 3 and 4 (CIFAR-10)", "ssim": PUBLISHED_SSIM},
        "repeats": args.repeats,
        "training": training,
        "runs": runs,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    result["reading"] = reading(result)
    write_result(Path(args.output), result, "reading")
    write_text_atomic(Path(args.output).with_suffix(".md"), markdown(result))


if __name__ == "__main__":
    main()
