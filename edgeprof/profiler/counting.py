"""Counting FLOPs the way `torch.utils.flop_counter.FlopCounterMode` does, plus what it leaves out.

`flops` uses FlopCounterMode's own formulas (2 x multiply-accumulates of conv, linear, matmul and attention;
no bias, no elementwise work), so totals match it exactly. Two things are added:

- `elementwise_flops`, an estimate of the non-MAC work (activations, norms, pooling, residual adds), kept in
  a separate field and never mixed into `flops`; the rules per op are in `ELEMENTWISE_RULES`.
- a report of the aten ops that got no formula at all, so nothing is silently counted as 0.

Counting happens in a canonical mode (`canonical_counting`): the fused multi-head-attention fast path is off
and scaled-dot-product attention uses the math kernel, so attention decomposes into counted matmuls whatever
the device. On the meta device this costs no arithmetic at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def _cpu_flash_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """The CPU flash kernel is missing from torch's registry; its cost is that of any SDPA kernel."""
    return flop_counter.sdpa_flop_count(query, key, value)


MAC_FORMULAS: dict[Any, Any] = {
    **flop_counter.flop_registry,
    aten._scaled_dot_product_flash_attention_for_cpu: flop_counter.shape_wrapper(_cpu_flash_attention_flops),
}


def _numel(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (tuple, list)):
        return sum(_numel(v) for v in value)
    return 0


def _first_tensor(values: Any) -> torch.Tensor | None:
    for value in values if isinstance(values, (tuple, list)) else (values,):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _pool_window(args: tuple) -> int:
    kernel = args[1]
    if isinstance(kernel, int):
        kernel = [kernel, kernel]
    window = 1
    for k in kernel:
        window *= k
    return window


def _per_output(per_element: int):
    return lambda args, out: per_element * _numel(_first_tensor(out))


def _per_input(per_element: int):
    return lambda args, out: per_element * _numel(args[0])


def _pooling(args: tuple, out: Any) -> int:
    return _pool_window(args) * _numel(_first_tensor(out))


_POINTWISE = """
    abs add addcdiv addcmul bitwise_and bitwise_not bitwise_or ceil clamp clamp_max clamp_min cos div elu eq erf
    exp expm1 floor ge gelu gt hardsigmoid hardswish hardtanh le leaky_relu log log1p log_sigmoid logical_and
    logical_not logical_or lt maximum minimum mish mul ne neg pow prelu reciprocal relu relu6 remainder round
    rsqrt rsub selu sigmoid sign silu sin softplus sqrt square sub tanh threshold where
"""
_FREE = """
    _to_copy _unsafe_view alias arange as_strided cat chunk clone constant_pad_nd contiguous copy detach dim
    empty empty_like empty_strided expand fill flatten full full_like index index_select is_contiguous
    lift_fresh lift_fresh_copy masked_fill narrow new_empty new_full new_ones new_zeros numel ones ones_like
    permute reflection_pad2d repeat replication_pad2d reshape roll scalar_tensor select size slice split
    split_with_sizes squeeze stack stride sym_size sym_stride t transpose unbind unfold unsqueeze view zero
    zeros zeros_like
"""

ELEMENTWISE_RULES: dict[str, Any] = {
    **{name: _per_output(1) for name in _POINTWISE.split()},
    # Inference batch norm is a folded scale and shift; layer/group norm also computes mean and variance.
    "native_batch_norm": _per_input(2),
    "_native_batch_norm_legit_no_training": _per_input(2),
    "native_layer_norm": _per_input(5),
    "native_group_norm": _per_input(5),
    # Softmax: subtract the max, exponentiate, normalise.
    "_softmax": _per_input(3),
    "_safe_softmax": _per_input(3),
    "_log_softmax": _per_input(3),
    "max_pool2d_with_indices": _pooling,
    "max_pool2d": _pooling,
    "avg_pool2d": _pooling,
    "max_pool3d_with_indices": _pooling,
    "avg_pool3d": _pooling,
    "_adaptive_avg_pool2d": _per_input(1),
    "adaptive_max_pool2d": _per_input(1),
    "_adaptive_avg_pool3d": _per_input(1),
    "mean": _per_input(1),
    "sum": _per_input(1),
    "amax": _per_input(1),
    "amin": _per_input(1),
    "max": _per_input(1),
    "min": _per_input(1),
    "linalg_vector_norm": _per_input(2),
    "var": _per_input(2),
    "std": _per_input(2),
    "var_mean": _per_input(2),
    "upsample_nearest2d": _per_output(1),
    "upsample_bilinear2d": _per_output(4),
}
FREE_OPS = frozenset(_FREE.split())


def _base_name(func) -> str:
    """`aten.relu_` and `aten.relu` follow the same rule."""
    name = func._overloadpacket.__name__
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


class OpCounter(TorchDispatchMode):
    """Counts every aten op that runs inside it: FLOPs, elementwise FLOPs and ops with no formula.

    The running totals are plain attributes, so a caller can read them before and after a piece of work
    (an fx node) to attribute costs to it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.elementwise_flops = 0
        self.uncounted: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        name = _base_name(func)
        known = packet in MAC_FORMULAS or name in ELEMENTWISE_RULES or name in FREE_OPS
        if not known:
            # Same rule as FlopCounterMode: an op without a formula is counted through its decomposition.
            # (Known elementwise ops are not decomposed: it would only be slower, never add MACs.)
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if packet in MAC_FORMULAS:
            self.flops += MAC_FORMULAS[packet](*args, **kwargs, out_val=out)
        elif name in ELEMENTWISE_RULES:
            self.elementwise_flops += ELEMENTWISE_RULES[name](args, out)
        elif name not in FREE_OPS and _numel(out) > 0:
            self.uncounted[f"aten.{packet.__name__}"] += 1
        return out


@contextlib.contextmanager
def canonical_counting() -> Iterator[None]:
    """Inference mode with attention decomposed into matmuls (fast path off, math SDPA kernel)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


@dataclass
class NodeCost:
    """What one fx node costs and produces."""

    flops: int
    elementwise_flops: int
    outputs: list[tuple[tuple[int, ...], torch.dtype]]  # shape and dtype of each tensor it returns

    @property
    def output_bytes(self) -> int:
        return sum(math.prod(shape) * dtype.itemsize for shape, dtype in self.outputs)


def tensor_leaves(value: Any) -> list[torch.Tensor]:
    """Every tensor inside `value`, in order: through tuples, lists, dicts (`ModelOutput`-style outputs are dicts)
    and dataclasses; any other value holds none."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, (tuple, list)):
        return [tensor for item in value for tensor in tensor_leaves(item)]
    return []


def _tensor_specs(value: Any) -> list[tuple[tuple[int, ...], torch.dtype]]:
    return [(tuple(tensor.shape), tensor.dtype) for tensor in tensor_leaves(value)]


class _CountingInterpreter(fx.Interpreter):
    def __init__(self, module: fx.GraphModule, counter: OpCounter) -> None:
        super().__init__(module, garbage_collect_values=True)
        self.counter = counter
        self.costs: dict[fx.Node, NodeCost] = {}

    def run_node(self, node: fx.Node) -> Any:
        flops, elementwise = self.counter.flops, self.counter.elementwise_flops
        result = super().run_node(node)
        self.costs[node] = NodeCost(
            self.counter.flops - flops, self.counter.elementwise_flops - elementwise, _tensor_specs(result)
        )
        return result


def count_nodes(
    module: fx.GraphModule, inputs: tuple[torch.Tensor, ...]
) -> tuple[dict[fx.Node, NodeCost], Counter[str], Any]:
    """Run `module` on `inputs` (meta tensors suffice) and return each node's cost, the ops that got no
    formula, and the output."""
    counter = OpCounter()
    interpreter = _CountingInterpreter(module, counter)
    with canonical_counting(), counter:
        output = interpreter.run(*inputs)
    return interpreter.costs, counter.uncounted, output
