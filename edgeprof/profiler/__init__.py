"""Static and measured profiles of a model's layers and partition points.

`schema` is imported eagerly because it needs no torch (simulators read profiles through it); the rest is
imported on first use.
"""

from edgeprof.profiler.schema import SCHEMA_ID, ProfileError, load_profile, validate_profile, write_profile

_LAZY = {
    "profile_model": "edgeprof.profiler.static",
    "analyze": "edgeprof.profiler.static",
    "static_profile": "edgeprof.profiler.static",
    "verify_cuts": "edgeprof.profiler.static",
    "load_model": "edgeprof.profiler.models",
    "list_models": "edgeprof.profiler.models",
}

__all__ = ["SCHEMA_ID", "ProfileError", "load_profile", "validate_profile", "write_profile", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgeprof.profiler' has no attribute {name!r}")
