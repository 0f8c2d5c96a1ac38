"""Profiles with real workloads and a stand-in leakage table, for benchmarks that must run before
`edgeprof data build` has attacked every model: FLOPs and bytes come from the static profiler; leakage is
SSIM 1 - z/L at z = 1..L-1 (z = 0 is 1 and z = L is 0 by definition). Results made with them say so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SOURCE = "synthetic 1 - z/L (benchmark stand-in)"


def synthetic_profile(name: str) -> dict[str, Any]:
    """The static profile of `name` at its default size, with the stand-in leakage attached."""
    from edgeprof.profiler.static import profile_model

    profile = profile_model(name)
    points = profile["partition_points"]
    last = len(points) - 1
    for z in range(1, last):
        points[z]["leakage"] = {"ssim": 1 - z / last, "source": SOURCE}
    return profile


def profiles_override(models: list[str] | tuple[str, ...], directory: Path) -> str:
    """Write the stand-in profiles of `models` to `directory`; the `services.profiles={...}` override."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for name in models:
        path = directory / f"{name}.json"
        path.write_text(json.dumps(synthetic_profile(name)), encoding="utf-8")
        entries.append(f'{name} = "{path}"')
    return "services.profiles={" + ", ".join(entries) + "}"
