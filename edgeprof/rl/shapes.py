"""Shape checks that fail loudly: a silently broadcast (B, 1) against (B,) fits every value to the batch mean."""

from __future__ import annotations

import torch


def check_shape(name: str, tensor: torch.Tensor, expected: tuple[int, ...]) -> None:
    """Raise when `tensor` does not have exactly the shape `expected`."""
    if tuple(tensor.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(tensor.shape)}")


def check_same_shape(**tensors: torch.Tensor) -> tuple[int, ...]:
    """Raise unless every tensor has the same shape (no broadcasting); return that shape."""
    shapes = {name: tuple(tensor.shape) for name, tensor in tensors.items()}
    first = next(iter(shapes.values()))
    if any(shape != first for shape in shapes.values()):
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes must match exactly (no broadcasting): {listed}")
    return first
