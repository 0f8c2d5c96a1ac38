"""Shipped profiles of the papers' model zoo (with leakage attached) and the command that builds them.

Reading a shipped profile needs no torch (`shipped_profile`); building them does (`edgeprof.data.build`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError


def shipped_dir() -> Path:
    """Where the shipped profiles live inside the installed package."""
    return Path(str(resources.files("edgeprof.data"))) / "profiles"


def shipped_profile(name: str) -> dict[str, Any]:
    """A shipped profile by model name (validated on read)."""
    from edgeprof.profiler.schema import load_profile

    path = shipped_dir() / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in shipped_dir().glob("*.json"))) or "none"
        raise EdgeprofError(f"no shipped profile for {name!r} (shipped: {known}); run `edgeprof data build` or "
                            "point the scenario at your own profile file")
    return load_profile(path)
