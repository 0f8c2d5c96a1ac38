"""One seed for every generator a training run draws from, and their states for checkpoints.

Bit-for-bit reproducible runs on CPU also need a fixed thread count: call `torch.set_num_threads(1)` (the
caller's job, once, at start-up; on a small shared machine it is also much faster for these small networks).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's `random`, numpy's global generator and torch's (CPU and every CUDA device)."""
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must lie in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global generators' states, as plain data and tensors (loadable with `torch.load(weights_only=True)`)."""
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": _to_plain(random.getstate()),
        "numpy": {**numpy_state, "state": {"key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                                           "pos": int(numpy_state["state"]["pos"])}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {"key": state["numpy"]["state"]["key"].numpy().astype(np.uint32),
                            "pos": state["numpy"]["state"]["pos"]}
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state(generator: torch.Generator | np.random.Generator) -> dict[str, Any]:
    """The state of a torch or numpy generator object (an environment's, a minibatch shuffler's)."""
    if isinstance(generator, torch.Generator):
        return {"kind": "torch", "state": generator.get_state()}
    return {"kind": "numpy", "state": _to_plain(generator.bit_generator.state)}


def set_generator_state(generator: torch.Generator | np.random.Generator, state: dict[str, Any]) -> None:
    kind = "torch" if isinstance(generator, torch.Generator) else "numpy"
    if state["kind"] != kind:
        raise ValueError(f"a {state['kind']} generator's state cannot be loaded into a {kind} generator")
    if kind == "torch":
        generator.set_state(state["state"])
    else:
        generator.bit_generator.state = state["state"]


def _to_plain(value: Any) -> Any:
    """Tuples of ints and dicts pass through; numpy scalars become python numbers."""
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
