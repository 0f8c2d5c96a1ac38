"""Which cuts are partition points, and what the layers between them are.

A *computational* node does multiply-accumulates (conv, linear, matmul, attention). Each one owns the
positions from itself up to the next computational node: the activation, norm, pool, dropout and reshapes
that follow it (seed 001, footnote 1). Within that stretch:

- `clean` (the default) cuts at the latest position where exactly one tensor crosses (values that hold no
  tensor, such as an input's shape read for a later resize, cross too but cost nothing), and nowhere if no
  position there is clean; the stretches without a clean cut merge with the next one, so residual and dense
  blocks become units by themselves, with no model-specific rules;
- `all` also cuts where several tensors cross (at the end of the stretch when none is clean).

z = 0 (raw input uploaded) and z = L (everything on the device) are always points. The layers are the runs
of nodes between consecutive points, so layer z is the work that moves to the device when z - 1 becomes z.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch import fx

from edgeprof.profiler.counting import NodeCost
from edgeprof.profiler.graph import ModelGraph

CUT_MODES = ("clean", "all")


@dataclass
class Layer:
    nodes: list[fx.Node]
    name: str
    type: str


def tensor_carriers(crossing: list[fx.Node], costs: dict[fx.Node, NodeCost]) -> list[fx.Node]:
    """The crossing values that hold tensors; the others (shapes, flags: a few bytes) ride along for free."""
    return [node for node in crossing if costs[node].outputs]


def _is_single_tensor(crossing: list[fx.Node], costs: dict[fx.Node, NodeCost]) -> bool:
    carriers = tensor_carriers(crossing, costs)
    return len(carriers) == 1 and len(costs[carriers[0]].outputs) == 1


def _modules_split(graph: ModelGraph, k: int) -> int:
    """How many modules hold both the node at position k and the next one, i.e. are cut open at k."""
    before, after = graph.module_stack(graph.work[k - 1]), graph.module_stack(graph.work[k])
    return len(list(itertools.takewhile(lambda pair: pair[0] == pair[1], zip(before, after, strict=False))))


def choose_cuts(
    graph: ModelGraph, costs: dict[fx.Node, NodeCost], crossing: list[list[fx.Node]], mode: str = "clean"
) -> list[int]:
    """Positions 0 = k_0 < k_1 < ... < k_L = N of the partition points."""
    if mode not in CUT_MODES:
        raise ValueError(f"unknown cut mode {mode!r}; use one of {', '.join(CUT_MODES)}")
    n = graph.num_positions
    starts = [graph.position[node] for node in graph.work if costs[node].flops > 0]
    cuts = [0]
    for begin, next_start in zip(starts, starts[1:], strict=False):
        stretch = range(begin, next_start)
        clean = [k for k in stretch if _is_single_tensor(crossing[k], costs)]
        if clean:
            # Prefer the cut that splits the fewest modules (after a block's last op, not before the next
            # block's first norm), then one after a tensor rather than after a shape read (which computes
            # nothing), then the latest one (trailing activation and pooling stay with the layer).
            cuts.append(min(clean, key=lambda k: (_modules_split(graph, k), not costs[graph.work[k - 1]].outputs, -k)))
        elif mode == "all":
            cuts.append(next_start - 1)
    if n > 0:
        cuts.append(n)
    return sorted(set(cuts))


def _module_types(graph: ModelGraph) -> dict[str, str]:
    types = {"": type(graph.module).__name__}
    for node in graph.work:
        for path, cls in node.meta.get("nn_module_stack", {}).values():
            types[path] = cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1].strip("'>")
        if node.op == "call_module":
            types[node.target] = type(graph.module.get_submodule(node.target)).__name__
    return types


def _node_type(graph: ModelGraph, node: fx.Node, types: dict[str, str]) -> str:
    if node.op == "call_module":
        return types[node.target]
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


MAX_NAME_PARTS = 4  # modules a layer name lists before it abbreviates


def _joined_name(parts: list[str]) -> str:
    """"features.5.expand1x1+expand3x3": the common dotted prefix once, then each part's rest joined by "+"."""
    split = [part.split(".") for part in parts]
    common = 0
    while all(len(p) > common + 1 and p[common] == split[0][common] for p in split):
        common += 1
    rests = [".".join(p[common:]) for p in split]
    if len(rests) > MAX_NAME_PARTS:
        rests = [*rests[:MAX_NAME_PARTS - 1], f"...+{rests[-1]} ({len(rests)} modules)"]
    return ".".join(split[0][:common] + ["+".join(rests)])


def build_layers(graph: ModelGraph, costs: dict[fx.Node, NodeCost], cuts: list[int]) -> list[Layer]:
    """The runs of work nodes between consecutive cuts, each named after the modules that hold its work.

    A layer's name lists, for each of its computational nodes, the outermost module that lies entirely inside
    the layer ("layer1.0", a BasicBlock; "features.0", a Conv2d grouped with its ReLU), or the node's label when
    no module fits; when several modules hold the work, it names them all ("features.5.expand1x1+expand3x3"),
    so a name never claims less than the layer does. The type is that of the first.
    """
    types = _module_types(graph)
    nodes_under: dict[str, int] = {}
    for node in graph.work:
        for path in graph.module_stack(node):
            nodes_under[path] = nodes_under.get(path, 0) + 1
    layers = []
    for begin, end in itertools.pairwise(cuts):
        nodes = graph.work[begin:end]
        computational = [n for n in nodes if costs[n].flops > 0] or nodes[:1]
        inside: dict[str, int] = {}
        for node in nodes:
            for path in graph.module_stack(node):
                inside[path] = inside.get(path, 0) + 1
        holders: dict[str, str] = {}  # name part -> type, in order
        for node in computational:
            whole = [p for p in graph.module_stack(node) if inside.get(p) == nodes_under[p]]
            if whole:
                holders.setdefault(whole[0], types.get(whole[0], "Module"))
            else:
                holders.setdefault(graph.label(node), _node_type(graph, node, types))
        parts = list(holders)
        layers.append(Layer(nodes, parts[0] if len(parts) == 1 else _joined_name(parts), holders[parts[0]]))
    return layers
