"""A model's dataflow graph, the cuts through it, and the device-side prefix / edge-side suffix of a cut.

The graph is a `torch.fx` graph in execution order. Nodes that depend on the input (directly or through
other nodes) are *work nodes* and get positions 1..N; a cut at position k runs work nodes 1..k on the device
and the rest on the edge. Parameters, and anything computed from parameters alone, never cross a cut: each
side keeps its own copy. What crosses cut k is every value made at or before k and used after it; position 0
uploads the raw input.

When fx cannot trace a model, `torch.export` (non-strict) is tried; when neither can, the graph falls back to
calling the model's top-level children in order, and says so in `warnings` (that is only right when
`forward` does exactly that, which `static.analyze` checks before using such a graph).
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn


@dataclass
class ModelGraph:
    """An fx graph with positions, module ownership and liveness; the shared input of counting and cutting."""

    module: fx.GraphModule
    method: str  # "fx", "export" or "children"
    warnings: list[str] = field(default_factory=list)
    fallback: str | None = None  # why the tracers failed, for a "children" graph

    def __post_init__(self) -> None:
        nodes = list(self.module.graph.nodes)
        self.placeholders = [n for n in nodes if n.op == "placeholder"]
        self.output_node = next(n for n in nodes if n.op == "output")
        self.dependent: set[fx.Node] = set(self.placeholders)
        self.work: list[fx.Node] = []
        for node in nodes:
            if node.op in ("call_module", "call_function", "call_method") and any(
                arg in self.dependent for arg in node.all_input_nodes
            ):
                self.dependent.add(node)
                self.work.append(node)
        self.position = {node: 0 for node in self.placeholders}
        self.position.update({node: i for i, node in enumerate(self.work, start=1)})

        end = len(self.work) + 1  # "used by the output": alive after the last position
        self.last_use: dict[fx.Node, int] = {}
        for node in [*self.placeholders, *self.work]:
            uses = [end if user.op == "output" else self.position.get(user, end) for user in node.users]
            self.last_use[node] = max(uses, default=self.position[node])

        self._stacks = {node: self._find_module_stack(node) for node in self.work}
        self._module_ends: dict[str, int] = {}  # module path -> position of its last work node
        self._call_index: dict[fx.Node, int] = {}  # a module's 1st, 2nd... call
        calls: dict[str, int] = {}
        for node in self.work:
            for path in self._stacks[node]:
                self._module_ends[path] = self.position[node]
            if node.op == "call_module":
                calls[node.target] = calls.get(node.target, 0) + 1
                self._call_index[node] = calls[node.target]

    @property
    def num_positions(self) -> int:
        return len(self.work)

    def crossing(self, k: int) -> list[fx.Node]:
        """Values made at or before position k and used after it (the model's outputs when k = N)."""
        return [n for n, last in self.last_use.items() if self.position[n] <= k < last]

    def crossing_sets(self) -> list[list[fx.Node]]:
        """`crossing(k)` for every k in 0..N, in one sweep."""
        starts: dict[int, list[fx.Node]] = {}
        for node, last in self.last_use.items():
            if last > self.position[node]:
                starts.setdefault(self.position[node], []).append(node)
        alive: dict[fx.Node, int] = {}
        sets = []
        for k in range(self.num_positions + 1):
            for node in starts.get(k, []):
                alive[node] = self.last_use[node]
            for node in [n for n, last in alive.items() if last <= k]:
                del alive[node]
            sets.append(sorted(alive, key=self.position.__getitem__))
        return sets

    def module_stack(self, node: fx.Node) -> list[str]:
        """Module paths enclosing `node`, outermost first; a call_module node ends with its own target."""
        return self._stacks[node] if node in self._stacks else self._find_module_stack(node)

    @staticmethod
    def _find_module_stack(node: fx.Node) -> list[str]:
        paths = [entry[0] for entry in node.meta.get("nn_module_stack", {}).values()]
        if node.op == "call_module" and (not paths or paths[-1] != node.target):
            paths.append(node.target)
        return [p for p in paths if p]

    def owner(self, node: fx.Node) -> str:
        stack = self.module_stack(node)
        return stack[-1] if stack else ""

    def label(self, node: fx.Node) -> str:
        """A readable, unambiguous name: a module path, `path#2` for a module's second call, or `path:op`."""
        if node.op == "call_module":
            index = self._call_index.get(node, 1)
            return node.target if index == 1 else f"{node.target}#{index}"
        owner = self.owner(node)
        return f"{owner}:{node.name}" if owner else node.name

    def describe_cut(self, k: int) -> str | None:
        """What cut k comes after: the outermost module that ends there ("layer1.0"), else the last node's
        label ("flatten"); None for k = 0, the raw input."""
        if k == 0:
            return None
        node = self.work[k - 1]
        ending = [path for path in self.module_stack(node) if self._module_ends[path] == k]
        return ending[0] if ending else self.label(node)

    def with_constants(self, chosen: set[fx.Node]) -> list[fx.Node]:
        """`chosen` plus the parameter-only nodes it reads, in graph order."""
        needed = set(chosen)
        stack = list(chosen)
        while stack:
            for arg in stack.pop().all_input_nodes:
                if arg not in self.dependent and arg not in needed:
                    needed.add(arg)
                    stack.append(arg)
        return [n for n in self.module.graph.nodes if n in needed]

    def segment(self, start: int, stop: int, boundary: bool = False) -> fx.GraphModule:
        """The work between cuts `start` and `stop` (0 <= start <= stop <= N) as a module of its own.

        It takes the model's inputs when start = 0, else the values crossing cut `start` (positionally, in
        `crossing(start)` order). It returns the values crossing cut `stop` (one value, or a tuple when several
        cross), except that for stop = N it returns the model's output, structure and all (a dict, a dataclass),
        unless `boundary`. With `boundary` it always returns a tuple, the arguments of the segment that follows.
        """
        if not 0 <= start <= stop <= self.num_positions:
            raise ValueError(f"segment {start}..{stop} outside 0..{self.num_positions}")
        graph = fx.Graph()
        if start == 0:
            env: dict[fx.Node, Any] = {node: graph.node_copy(node) for node in self.placeholders}
        else:
            env = {node: graph.placeholder(node.name) for node in self.crossing(start)}
        for node in self.with_constants({n for n in self.work if start < self.position[n] <= stop}):
            env[node] = graph.node_copy(node, env.__getitem__)
        if stop == self.num_positions and not boundary:
            graph.output(fx.map_arg(self.output_node.args[0], env.__getitem__))
        else:
            outputs = [env[node] for node in self.crossing(stop)]
            graph.output(tuple(outputs) if boundary or len(outputs) != 1 else outputs[0])
        return fx.GraphModule(self.module, graph)

    def split(self, k: int) -> tuple[fx.GraphModule, fx.GraphModule]:
        """The device-side prefix (positions 1..k) and edge-side suffix (k+1..N) of cut k.

        `prefix(*inputs)` returns the tuple of values crossing the cut; `suffix(*values)` returns the model's
        output. For k = N the prefix computes everything and returns the output's values (its tensors and
        whatever else it holds), and the suffix only puts them back into the output's structure.
        """
        return self.segment(0, k, boundary=True), self.segment(k, self.num_positions)


def run_split(prefix: nn.Module, suffix: nn.Module, *inputs: torch.Tensor) -> Any:
    """Run a prefix then its suffix (from `ModelGraph.split`), as the device and the edge server would."""
    return suffix(*prefix(*inputs))


_SHAPE_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device", "is_cuda"})
_SHAPE_METHODS = frozenset({"size", "dim", "numel", "get_device"})
_SHAPE_ARITHMETIC = frozenset({
    operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv, operator.mod,
    operator.neg, operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge, len, int, float,
})


def _reads_metadata(node: fx.Node, metadata: set[fx.Node]) -> bool:
    """A node that reads a tensor's shape (`x.shape`, `x.size()`...) or does arithmetic on such values only."""
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in _SHAPE_ATTRIBUTES
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    inputs = node.all_input_nodes
    return node.op == "call_function" and node.target in _SHAPE_ARITHMETIC and bool(inputs) and all(
        n in metadata for n in inputs)


def hoist_shape_reads(module: fx.GraphModule) -> fx.GraphModule:
    """Move every shape read right after the value it reads.

    fx records `input.shape` where it is first used, not where it is written, so a model that reads its input's
    shape at the end (torchvision segmentation: `F.interpolate(out, size=input.shape[-2:])`) would keep the whole
    input alive across every cut. Read early, only the shape (a few integers) crosses: the input is free.
    """
    graph, metadata = module.graph, set()
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    for node in list(graph.nodes):
        if not _reads_metadata(node, metadata):
            continue
        metadata.add(node)
        order = {n: i for i, n in enumerate(graph.nodes)}
        anchor = max(node.all_input_nodes, key=order.__getitem__)
        anchor = placeholders[-1] if anchor.op == "placeholder" else anchor
        if anchor.next is not node:
            anchor.append(node)
    module.recompile()
    return module


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _user_frame(error: BaseException) -> str | None:
    """Where in the model's own code a tracer gave up: the last frame outside torch, as `file:line: code`."""
    torch_dir = Path(torch.__file__).parent
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not Path(frame.filename).is_relative_to(torch_dir) and Path(frame.filename) != Path(__file__)]
    if not frames:
        return None
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}: {(frame.line or '').strip()}"


def describe_failure(tool: str, error: BaseException) -> str:
    """One line: which tracer failed, why, and at which line of the model's code."""
    where = _user_frame(error)
    return f"{tool}: {_first_line(error)}" + (f" (at {where})" if where else "")


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Without export's notes on specialised dimensions and deprecations, and the graph it prints to stderr when
    it fails (warnings, torch's log records and prints)."""
    names = ("torch", "torch._export", "torch.export", "torch._dynamo", "torch.fx.experimental.symbolic_shapes")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> fx.GraphModule:
    """The model as `torch.export` (non-strict) traces it; TorchScript through torch's TorchScript converter."""
    if isinstance(model, torch.jit.ScriptModule):
        from torch._export.converter import (
            TS2EPConverter,  # what torch.export's own error points to
        )

        program = TS2EPConverter(model, inputs).convert()
    else:
        program = torch.export.export(model, inputs, strict=False)
    return program.module()


def _children_in_order(model: nn.Module) -> fx.GraphModule:
    graph = fx.Graph()
    value = graph.placeholder("x")
    for name, _ in model.named_children():
        value = graph.call_module(name, (value,))
    graph.output(value)
    return fx.GraphModule(model, graph)


def trace(model: nn.Module, inputs: tuple[torch.Tensor, ...] | None = None) -> ModelGraph:
    """The model's graph: `torch.fx` first, then `torch.export` (non-strict, on `inputs`), then as a last resort
    its top-level children called in order, which is only right when `forward` does exactly that (the graph's
    `fallback` says why the tracers failed; `static.analyze` verifies such a graph before trusting it)."""
    if isinstance(model, fx.GraphModule):
        return ModelGraph(hoist_shape_reads(model), "export")
    failures = []
    if not isinstance(model, torch.jit.ScriptModule):
        try:
            return ModelGraph(hoist_shape_reads(fx.symbolic_trace(model)), "fx")
        except (Exception, SystemExit) as error:  # fx raises many types (and forward may exit): "not traceable"
            failures.append(describe_failure("torch.fx", error))
    if inputs is not None:
        try:
            with _quiet_export():
                module = _export(model, inputs)
            method_warnings = [f"traced with torch.export after {failure}" for failure in failures]
            return ModelGraph(hoist_shape_reads(module), "export", method_warnings)
        except (Exception, SystemExit) as error:  # as above: any failure means "not exportable"
            failures.append(describe_failure("torch.export", error))
    fallback = "; ".join(failures) or "no example input to trace with"
    warning = (f"no tracer could trace this model ({fallback}); partition points are its top-level children "
               "called in order, which is only right if forward() does exactly that")
    return ModelGraph(_children_in_order(model), "children", [warning], fallback=fallback)
