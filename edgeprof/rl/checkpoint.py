"""Save and restore a training run whole, so that a resumed run continues exactly as an uninterrupted one.

A checkpoint holds the iteration counter, the state of every named component (models, optimisers, normalisers,
the multiplier: anything with `state_dict`/`load_state_dict`, and torch or numpy generator objects), the global
generators of python, numpy and torch, and small `extra` data (plain python values and tensors). Rollout
buffers are not saved: checkpoint between iterations, when they are empty. The file is written to a temporary
name and renamed, so a kill during the save leaves the previous checkpoint intact. It is read back with
`torch.load(weights_only=True)`: loading a checkpoint runs no code from it.

Equality after resume also needs what `seeding` says (one thread) and an environment whose state is either
rebuilt from the seed and the iteration (a reset per rollout) or saved as well (its generator in `components`).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output
from edgeprof.rl.seeding import generator_state, rng_state, set_generator_state, set_rng_state

FORMAT = "edgeprof.rl.checkpoint/1"


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


Component = Stateful | torch.Generator | np.random.Generator


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns besides the restored components."""

    iteration: int
    extra: dict[str, Any]


def save_checkpoint(path: str | Path, iteration: int, components: Mapping[str, Component],
                    extra: Mapping[str, Any] | None = None) -> None:
    """Write the run's state after `iteration` completed iterations to `path`, atomically."""
    payload = {
        "format": FORMAT,
        "iteration": int(iteration),
        "components": {name: _state_of(component) for name, component in components.items()},
        "rng": rng_state(),
        "extra": dict(extra or {}),
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, components: Mapping[str, Component]) -> Checkpoint:
    """Restore `components` (the same names as when saved) and the global generators from `path`."""
    path = Path(path)
    payload = _read(path)
    saved, wanted = set(payload["components"]), set(components)
    if saved != wanted:
        raise EdgeprofError(f"checkpoint {path} holds components {sorted(saved)} but this run has {sorted(wanted)}: "
                            "was it written by another algorithm or configuration?")
    for name, component in components.items():
        try:
            _load_into(component, payload["components"][name])
        except RuntimeError as error:  # torch's size mismatch: the network's code or configuration changed
            differences = shape_differences(payload["components"][name], component.state_dict())
            raise EdgeprofError(f"checkpoint {path}: its {name!r} has another shape than this run builds "
                                f"({differences or error}): was it written by another version of edgeprof or "
                                "another configuration? Start the run afresh") from None
    set_rng_state(payload["rng"])
    return Checkpoint(payload["iteration"], payload["extra"])


def component_state(path: str | Path, name: str) -> Any:
    """The saved state of one component, touching nothing else (no generator is restored): what evaluating
    a trained policy needs from a training checkpoint."""
    path = Path(path)
    components = _read(path)["components"]
    if name not in components:
        raise EdgeprofError(f"checkpoint {path} holds no {name!r} (it holds {sorted(components)})")
    return components[name]


def shape_differences(saved: Mapping[str, Any], expected: Mapping[str, Any], shown: int = 3) -> str:
    """What keeps a saved state dict from loading into a module whose state is `expected`: its tensors of another
    shape, and those missing or extra (the first `shown` of each kind); "" when the shapes agree."""
    def shape(tensor: Any) -> str:
        return "x".join(map(str, tuple(tensor.shape))) or "scalar"

    reshaped = [f"{key} is {shape(saved[key])} there, {shape(value)} here" for key, value in expected.items()
                if key in saved and hasattr(saved[key], "shape") and tuple(saved[key].shape) != tuple(value.shape)]
    missing = [key for key in expected if key not in saved]
    extra = [key for key in saved if key not in expected]
    parts = reshaped[:shown]
    for label, keys in (("missing", missing), ("not in this network", extra)):
        if keys:
            parts.append(f"{label}: {', '.join(keys[:shown])}" + (f" and {len(keys) - shown} more"
                                                                   if len(keys) > shown else ""))
    if len(reshaped) > shown:
        parts.append(f"{len(reshaped) - shown} more of another shape")
    return "; ".join(parts)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EdgeprofError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError):
        # torch's own message blames its `weights_only` default, which would send the user the wrong way
        raise EdgeprofError(f"{path} is not a readable checkpoint: it is damaged, or edgeprof did not write it"
                            ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise EdgeprofError(f"{path} is not an {FORMAT} checkpoint")
    return payload


def _state_of(component: Component) -> Any:
    if isinstance(component, (torch.Generator, np.random.Generator)):
        return generator_state(component)
    return component.state_dict()


def _load_into(component: Component, state: Any) -> None:
    if isinstance(component, (torch.Generator, np.random.Generator)):
        set_generator_state(component, state)
    else:
        component.load_state_dict(state)
