"""Flat tables of a profile (pandas), for CSV files and notebooks."""

from __future__ import annotations

from typing import Any

import pandas as pd

_LAYER_COLUMNS = ["index", "name", "type", "macs", "flops", "elementwise_flops", "params", "param_bytes",
                  "output_shape", "output_bytes"]
_POINT_COLUMNS = ["z", "after", "layer", "single_tensor", "upload_bytes", "device_flops", "edge_flops",
                  "device_param_bytes", "edge_param_bytes"]


def _shape_text(shape: list[int]) -> str:
    return "x".join(map(str, shape))


def _flatten_stats(row: dict[str, Any], key: str, value: Any) -> None:
    """Measured statistics ({"median": ..., "p10": ...}) become columns `key_median`, `key_p10`..."""
    if isinstance(value, dict):
        for stat, number in value.items():
            row[f"{key}_{stat}"] = number
    elif value is not None:
        row[key] = value


def layers_frame(profile: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for layer in profile["layers"]:
        row = {key: layer[key] for key in _LAYER_COLUMNS}
        row["output_shape"] = _shape_text(layer["output_shape"])
        for key in ("latency_ms", "energy_mj"):
            _flatten_stats(row, key, layer.get(key))
        rows.append(row)
    return pd.DataFrame(rows)


def points_frame(profile: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for point in profile["partition_points"]:
        row = {key: point.get(key) for key in _POINT_COLUMNS}
        row["tensors"] = len(point["tensors"])
        row["tensor_shapes"] = ";".join(_shape_text(t["shape"]) for t in point["tensors"])
        for key in ("device_latency_ms", "edge_latency_ms", "device_energy_mj", "edge_energy_mj", "leakage"):
            _flatten_stats(row, key, point.get(key))
        rows.append(row)
    return pd.DataFrame(rows)
