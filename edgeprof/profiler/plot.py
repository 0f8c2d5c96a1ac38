"""The partition trade-off figure: device-side work grows with z while the upload shrinks (or does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprof.files import atomic_output

_MAX_NAMED_TICKS = 40


def plot_tradeoff(profile: dict[str, Any], path: str | Path) -> None:
    """`tradeoff_figure` written to `path` as a PNG, atomically."""
    with atomic_output(path) as tmp:
        tradeoff_figure(profile).savefig(tmp, dpi=150, format="png")


def tradeoff_figure(profile: dict[str, Any]) -> Any:
    """Cumulative device FLOPs (share of the model) and upload bytes at every partition point (a matplotlib
    figure outside pyplot: nothing to close)."""
    from matplotlib.figure import Figure

    points = profile["partition_points"]
    total = profile["totals"]["flops"] or 1
    z = [p["z"] for p in points]
    device_share = [100 * p["device_flops"] / total for p in points]
    upload_kb = [p["upload_bytes"] / 1e3 for p in points]
    model = profile["model"]

    fig = Figure(figsize=(max(6.0, 0.28 * len(points) + 2.5), 4.2), layout="constrained")
    flops_axis = fig.subplots()
    flops_axis.plot(z, device_share, "o-", color="tab:blue", markersize=3, label="FLOPs on the device")
    flops_axis.set_ylabel("FLOPs on the device (% of model)", color="tab:blue")
    flops_axis.set_ylim(0, 105)
    flops_axis.set_xlabel("partition point z (layers on the device)")
    upload_axis = flops_axis.twinx()
    upload_axis.plot(z[:-1], upload_kb[:-1], "s-", color="tab:red", markersize=3, label="upload (z = L sends nothing)")
    upload_axis.set_yscale("log")
    upload_axis.set_ylabel("upload at the cut (kB, log scale)", color="tab:red")
    if len(points) <= _MAX_NAMED_TICKS:
        labels = ["input"] + [p["after"] or "" for p in points[1:]]
        flops_axis.set_xticks(z, labels, rotation=75, fontsize=7)
    shape = "x".join(map(str, model["input_shape"]))
    flops_axis.set_title(
        f"{model['name']} ({shape}, {model['dtype']}, {profile['totals']['flops'] / 1e9:.3g} GFLOPs): "
        "where to split", fontsize=10
    )
    handles = flops_axis.get_legend_handles_labels()[0] + upload_axis.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8)
    flops_axis.grid(alpha=0.3)
    return fig
