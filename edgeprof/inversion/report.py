"""Leakage outputs (CSV, JSON, pictures) and attaching a leakage table to a profile.

OUTDIR/leakage.csv has a row per partition point; leakage.json holds the run's metadata and the same rows;
reconstructions.png shows originals over each point's reconstructions; leakage_curve.png plots SSIM and the
no-information baseline against z. Reading a table back needs neither torch nor the attack code.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_outputs, json_text

COLUMNS = [
    "z", "position", "kind", "after", "layer", "model", "input_size", "feature_shape", "decoder_input", "feature_bytes",
    "attack", "train_images", "steps", "repeats", "eval_images", "eval_sources", "ssim_mean", "ssim_std",
    "ssim_ci95_low", "ssim_ci95_high", "ssim_images_ci95_low", "ssim_images_ci95_high", "ssim_attack_ci95_low",
    "ssim_attack_ci95_high", "ssim_repeats_sd", "psnr_mean", "mse_mean", "baseline_ssim", "leakage_norm",
    "share_ssim_above_0_3", "weights", "weights_sha256", "data", "preset", "ssim_weight", "decoder_seed",
]
PROVENANCE = ("weights", "weights_sha256", "data", "preset", "ssim_weight")


def write_outputs(result: Any, outdir: Path) -> list[Path]:
    """Write the four outputs of a `LeakageResult` into `outdir`, all of them or none; returns their paths."""
    paths = [outdir / name for name in ("leakage.csv", "leakage.json", "reconstructions.png", "leakage_curve.png")]
    with atomic_outputs(*paths) as (table, metadata, pictures, curve):
        with table.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in result.rows:
                writer.writerow({key: "" if row.get(key) is None else row[key] for key in COLUMNS})
        metadata.write_text(json_text({**result.metadata, "rows": result.rows}), encoding="utf-8")
        _plot_reconstructions(result, pictures)
        _plot_curve(result, curve)
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_reconstructions(result: Any, path: Path) -> None:
    plt = _pyplot()
    originals = result.originals
    rows = [("original", originals)] + [
        (f"{point_label(row)}\n{row['after']}", result.samples[row["position"]])
        for row in result.rows if row["position"] in result.samples
    ]
    columns = len(originals)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.3 * columns + 1.2, 1.3 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(images):
                picture = images[c].permute(1, 2, 0).numpy()
                axis.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=255)
            if c == 0:
                axis.set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"{result.metadata['model']['name']}: originals over reconstructions", fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def point_label(row: dict[str, Any]) -> str:
    """"z=3" for a partition point, "before activation" or "before pooling" for He et al.'s points."""
    return f"z={row['z']}" if row["z"] is not None else row["kind"]


def _plot_curve(result: Any, path: Path) -> None:
    plt = _pyplot()
    rows = result.rows
    x = list(range(len(rows)))  # in graph order; He et al.'s points sit between the partition points
    fig, axis = plt.subplots(figsize=(max(6.0, 0.3 * len(rows) + 2.5), 4), layout="constrained")
    axis.fill_between(x, [_or_nan(row["ssim_ci95_low"]) for row in rows],
                      [_or_nan(row["ssim_ci95_high"]) for row in rows], alpha=0.25, color="tab:blue",
                      label="95% interval (images and attack)")
    axis.plot(x, [row["ssim_mean"] for row in rows], "-", color="tab:blue", label="SSIM of reconstructions")
    partition = [i for i, row in enumerate(rows) if row["z"] is not None]
    inside = [i for i, row in enumerate(rows) if row["z"] is None]
    axis.plot(partition, [rows[i]["ssim_mean"] for i in partition], "o", color="tab:blue")
    if inside:
        axis.plot(inside, [rows[i]["ssim_mean"] for i in inside], "s", mfc="white", color="tab:blue",
                  label="before an activation or pooling (He et al.)")
    axis.axhline(result.metadata["baseline_ssim"], color="gray", linestyle="--",
                 label="dataset-mean image (no information)")
    axis.axhline(0.3, color="tab:red", linestyle=":", label="0.3: unrecognisable below (He et al.)")
    axis.set_ylim(0, 1.05)
    axis.set_xlabel("point (partition points z, in graph order)")
    axis.set_ylabel("SSIM")
    if len(rows) <= 40:
        labels = ["input" if row["position"] == 0 else (row["after"] or "") for row in rows]
        axis.set_xticks(x, labels, rotation=75, fontsize=7)
    meta = result.metadata
    source = "builtin images (smoke test)" if meta["data"]["smoke_test_only"] else meta["data"]["source"]
    axis.set_title(f"{meta['model']['name']} ({meta['model']['weights']}), {meta['attack']['name']}, "
                   f"{meta['preset']} preset, {source}", fontsize=9)
    axis.legend(fontsize=7, loc="upper right")
    axis.grid(alpha=0.3)
    fig.savefig(path, dpi=150, format="png")
    plt.close(fig)


def read_leakage_table(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a leakage.csv, with numbers parsed (`z` is None for points that are no partition point).

    A file that is not such a table, or one damaged (cut short, a cell that is no number), is refused with one
    line naming the file and the first bad row.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise EdgeprofError(f"cannot read leakage table {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise EdgeprofError(f"{path} is not a leakage table ({error}): give the leakage.csv of `edgeprof leakage`"
                            ) from None
    if not rows or not {"z", "ssim_mean", "model", "input_size"} <= set(rows[0]):
        raise EdgeprofError(f"{path} is not a leakage table (expected the columns of `edgeprof leakage`)")
    if not set(PROVENANCE) <= set(rows[0]):
        raise EdgeprofError(f"{path} does not say which weights and data produced it (an older `edgeprof leakage` "
                            "wrote it); run `edgeprof leakage` again")

    def number(text: str | None, column: str, line: int, kind: type = float, optional: bool = True) -> Any:
        if optional and text in ("", "None"):
            return None
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise EdgeprofError(f"{path}, line {line}: {column} is {text!r}, not a number: the table is damaged; "
                                "run `edgeprof leakage` again") from None
        if not math.isfinite(value):
            raise EdgeprofError(f"{path}, line {line}: {column} is {text}: the table is damaged; run `edgeprof "
                                "leakage` again")
        return value

    parsed = []
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise EdgeprofError(f"{path}, line {line}: {'too many' if None in row else 'too few'} cells: the table "
                                "is damaged; run `edgeprof leakage` again")
        parsed.append({**row, "z": number(row["z"], "z", line, int), "input_size": number(row["input_size"],
                       "input_size", line, int, optional=False),
                       "ssim_mean": number(row["ssim_mean"], "ssim_mean", line, optional=False),
                       "psnr_mean": number(row.get("psnr_mean", ""), "psnr_mean", line),
                       "baseline_ssim": number(row.get("baseline_ssim", ""), "baseline_ssim", line),
                       "weights_sha256": row["weights_sha256"] or None})
    return parsed


def describe_table(rows: list[dict[str, Any]], where: str) -> str:
    """A leakage `source` string: where the table is and what produced it."""
    row = next((r for r in rows if r.get("attack") not in (None, "", "by definition")), rows[0])
    return (f"edgeprof leakage: {where} ({row.get('attack') or 'by definition'}, weights {row['weights']}, "
            f"{row['preset']} preset, data {row['data']}, ssim weight {row['ssim_weight']})")


def _same_weights(row: dict[str, Any], model: dict[str, Any]) -> bool:
    if row["weights_sha256"] or model.get("weights_sha256"):
        return row["weights_sha256"] == model.get("weights_sha256")
    return row["weights"] == model.get("weights")


def attach_leakage(
    profile: dict[str, Any], rows: list[dict[str, Any]], source: str, allow_other_size: bool = False
) -> dict[str, Any]:
    """Set `leakage` on the profile's partition points from a table of the same model, weights and input size
    (or, with `allow_other_size`, of another size with the same partition points; say so in `source`).

    Rows of points that are not partition points (He et al.'s pre-activation and pre-pooling points) are
    left out: the profile has no place for them.
    """
    model = profile["model"]
    table_model, table_size = rows[0]["model"], rows[0]["input_size"]
    other_size = table_size != model["input_shape"][-1] and not allow_other_size
    if table_model != model["name"] or other_size:
        raise EdgeprofError(f"the leakage table is for {table_model} at {table_size} px, the profile for "
                            f"{model['name']} at {model['input_shape'][-1]} px")
    if not _same_weights(rows[0], model):
        table_weights = rows[0]["weights"] + (f" (sha256 {rows[0]['weights_sha256'][:12]})"
                                              if rows[0]["weights_sha256"] else "")
        raise EdgeprofError(f"the leakage table was computed with weights {table_weights}, the profile has "
                            f"{model.get('weights')}: run `edgeprof leakage` with the profile's weights")
    points = profile["partition_points"]
    for row in rows:
        if row["z"] is None:
            continue
        if not 0 <= row["z"] < len(points) or (row.get("after") or None) != points[row["z"]]["after"]:
            raise EdgeprofError(f"leakage row z={row['z']} (after {row.get('after') or 'input'}) does not match the "
                                "profile's partition points: profile and table used different cuts")
        points[row["z"]]["leakage"] = {"ssim": row["ssim_mean"], "psnr": row["psnr_mean"],
                                       "baseline_ssim": row["baseline_ssim"], "source": source}
    return profile
