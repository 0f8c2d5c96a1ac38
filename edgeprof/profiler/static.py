"""The static profile: everything that can be known about a model and its partition points without timing.

`analyze` traces and counts a model once; `static_profile` turns that into an `edgeprof.profile/1`
document; `verify_cuts` runs every prefix and suffix for real and compares with the whole model.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import torch
from torch import fx

import edgeprof
from edgeprof.errors import EdgeprofError
from edgeprof.profiler.counting import NodeCost, count_nodes, tensor_leaves
from edgeprof.profiler.graph import ModelGraph, describe_failure, run_split, trace
from edgeprof.profiler.models import LoadedModel, load_model
from edgeprof.profiler.partition import (
    Layer,
    build_layers,
    choose_cuts,
    tensor_carriers,
)
from edgeprof.profiler.schema import SCHEMA_ID


@dataclass
class Analysis:
    """A traced and counted model with its chosen partition points."""

    model: LoadedModel
    graph: ModelGraph
    costs: dict[fx.Node, NodeCost]
    uncounted: Counter[str]
    output_specs: list[tuple[tuple[int, ...], torch.dtype]]
    crossing: list[list[fx.Node]]
    cut_mode: str
    cuts: list[int]  # positions of z = 0..L
    layers: list[Layer]

    def split(self, z: int) -> tuple[fx.GraphModule, fx.GraphModule]:
        """The device-side prefix and edge-side suffix modules of partition point z."""
        if not 0 <= z < len(self.cuts):
            raise EdgeprofError(f"partition point z={z} outside 0..{len(self.cuts) - 1}")
        return self.graph.split(self.cuts[z])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def analyze(model: LoadedModel, cut_mode: str = "clean", verify_fallback: bool = True) -> Analysis:
    """Trace `model`, count every node on its example inputs and choose the partition points.

    A model no tracer can trace falls back to its top-level children called in order; unless
    `verify_fallback` is False, that graph is checked at every point on a runnable copy (`model` itself when
    it is not on the meta device, else `model.reload()`) and refused, naming what stopped the tracers, when it
    does not reproduce the model.
    """
    graph = trace(model.module, model.example_inputs())
    try:
        costs, uncounted, output = count_nodes(graph.module, model.example_inputs())
    except Exception as error:
        shape = "x".join(map(str, model.input_shape))
        if graph.method == "children":
            raise EdgeprofError(_untraceable(model, f"calling its children in order fails ({_first_line(error)})",
                                             graph.fallback)) from None
        raise EdgeprofError(f"{model.name} cannot run on a {shape} input: {_first_line(error)}") from None
    crossing = graph.crossing_sets()
    cuts = choose_cuts(graph, costs, crossing, cut_mode)
    layers = build_layers(graph, costs, cuts)
    if not layers:
        raise EdgeprofError(f"{model.name} has nothing to split: its forward does no work on the input "
                            "(no operation between the input and the output)")
    specs = [(tuple(t.shape), t.dtype) for t in tensor_leaves(output)]
    analysis = Analysis(model, graph, costs, uncounted, specs, crossing, cut_mode, cuts, layers)
    if graph.method == "children":
        if verify_fallback:
            _check_fallback(analysis)
        else:
            graph.warnings.append("the fallback was not verified (--no-verify-cuts): these points may be wrong")
    return analysis


def _untraceable(model: LoadedModel, problem: str, fallback: str | None) -> str:
    return (f"{model.name} cannot be profiled: no tracer can trace it ({fallback}), and {problem}; make that "
            "construct traceable (torch.cond for a data-dependent branch, torch.fx.wrap for a helper) or save "
            "the model with torch.export (.pt2)")


def _check_fallback(analysis: Analysis) -> None:
    """Refuse a children-in-order graph that does not reproduce the model at every point."""
    model = analysis.model
    runnable = model if model.device.type != "meta" else model.reload() if model.reload else None
    if runnable is None:
        raise EdgeprofError(_untraceable(model, "its children-in-order fallback cannot be checked without a "
                                                "runnable copy", analysis.graph.fallback))
    try:
        failed = [check for check in verify_cuts(analysis, runnable) if not check.ok]
    except EdgeprofError:
        raise
    except Exception as error:
        raise EdgeprofError(_untraceable(model, f"calling its children in order fails ({_first_line(error)})",
                                         analysis.graph.fallback)) from None
    if failed:
        worst = max(failed, key=lambda check: check.max_abs_diff)
        raise EdgeprofError(_untraceable(
            model, f"calling its children in order does not reproduce its output (z={worst.z}: max |diff| "
                   f"{worst.max_abs_diff:.3g})", analysis.graph.fallback))
    analysis.graph.warnings.append(f"the fallback reproduces the model's output at all {len(analysis.cuts)} points")


def _nbytes(specs: list[tuple[tuple[int, ...], torch.dtype]]) -> int:
    return sum(math.prod(shape) * dtype.itemsize for shape, dtype in specs)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _parameters_read(module: torch.nn.Module, nodes: list[fx.Node]) -> list[torch.nn.Parameter]:
    found: dict[int, torch.nn.Parameter] = {}
    for node in nodes:
        if node.op == "call_module":
            found.update((id(p), p) for p in module.get_submodule(node.target).parameters())
        elif node.op == "get_attr":
            value = operator.attrgetter(node.target)(module)
            if isinstance(value, torch.nn.Parameter):
                found[id(value)] = value
    return list(found.values())


def _layer_entries(analysis: Analysis) -> tuple[list[dict[str, Any]], list[list[torch.nn.Parameter]]]:
    """One entry per layer, and the parameters each layer reads (a tied parameter counts for every reader).

    A layer's cost includes the parameter-only nodes it is the first to read; any left over (never read
    by input-dependent work) are charged to layer 1.
    """
    graph, costs = analysis.graph, analysis.costs
    reads = [graph.with_constants(set(layer.nodes)) for layer in analysis.layers]
    charged: dict[fx.Node, int] = {}
    for index, nodes in enumerate(reads):
        for node in nodes:
            charged.setdefault(node, index)
    for node in costs:
        charged.setdefault(node, 0)
    costed: list[list[fx.Node]] = [[] for _ in analysis.layers]
    for node, index in charged.items():
        costed[index].append(node)

    entries, parameters = [], []
    for index, layer in enumerate(analysis.layers):
        params = _parameters_read(graph.module, reads[index])
        flops = sum(costs[n].flops for n in costed[index])
        last = costs[layer.nodes[-1]].outputs[:1]
        entries.append({
            "index": index + 1,
            "name": layer.name,
            "type": layer.type,
            "modules": list(dict.fromkeys(graph.owner(n) or graph.label(n) for n in layer.nodes)),
            "macs": flops // 2,
            "flops": flops,
            "elementwise_flops": sum(costs[n].elementwise_flops for n in costed[index]),
            "params": sum(p.numel() for p in params),
            "param_bytes": sum(p.numel() * p.element_size() for p in params),
            "output_shape": list(last[0][0]) if last else [],
            "output_bytes": _nbytes(last),
        })
        parameters.append(params)
    return entries, parameters


def _input_name(analysis: Analysis, node: fx.Node) -> str:
    """"input" for a model of one input; the argument's name when there are several."""
    return "input" if len(analysis.model.inputs) == 1 else str(node.target)


def _point_entries(
    analysis: Analysis, layers: list[dict[str, Any]], parameters: list[list[torch.nn.Parameter]]
) -> list[dict[str, Any]]:
    """One entry per partition point z = 0..L."""
    graph, costs = analysis.graph, analysis.costs
    first_reader: dict[int, int] = {}  # parameter id -> first and last layer (1-based) that reads it
    last_reader: dict[int, int] = {}
    param_bytes: dict[int, int] = {}
    for z, params in enumerate(parameters, start=1):
        for p in params:
            first_reader.setdefault(id(p), z)
            last_reader[id(p)] = z
            param_bytes[id(p)] = p.numel() * p.element_size()

    total_flops = sum(layer["flops"] for layer in layers)
    num_layers = len(layers)
    points, device_flops = [], 0
    for z, k in enumerate(analysis.cuts):
        device_flops += layers[z - 1]["flops"] if z else 0
        if z == 0:
            crossing = graph.placeholders
        else:  # z = L: the result stays on the device, nothing crosses
            crossing = [] if z == num_layers else analysis.crossing[k]
        carriers = tensor_carriers(crossing, costs)
        tensors = [
            {"name": _input_name(analysis, node) if node.op == "placeholder" else graph.label(node),
             "shape": list(shape), "dtype": _dtype_name(dtype), "bytes": math.prod(shape) * dtype.itemsize}
            for node in carriers for shape, dtype in costs[node].outputs
        ]
        carried = [graph.label(node) for node in crossing if node not in carriers]
        points.append({
            "z": z,
            "after": graph.describe_cut(k),
            "layer": analysis.layers[z - 1].name if z else None,
            "node": graph.work[k - 1].name if z else None,
            "single_tensor": z == num_layers or (len(carriers) == 1 and len(tensors) == 1),
            "tensors": tensors,
            **({"carried": carried} if carried else {}),
            "upload_bytes": sum(t["bytes"] for t in tensors),
            "device_flops": device_flops,
            "edge_flops": total_flops - device_flops,
            "device_param_bytes": sum(b for i, b in param_bytes.items() if first_reader[i] <= z),
            "edge_param_bytes": sum(b for i, b in param_bytes.items() if last_reader[i] > z),
        })
    return points


def static_profile(analysis: Analysis) -> dict[str, Any]:
    """The `edgeprof.profile/1` document of an analysis (no measured keys)."""
    model, graph = analysis.model, analysis.graph
    layers, parameters = _layer_entries(analysis)
    points = _point_entries(analysis, layers, parameters)
    all_params = list(model.module.parameters())
    used = list({id(p): p for params in parameters for p in params}.values())  # read by some layer
    inputs = [
        {"name": _input_name(analysis, node), "shape": list(spec.shape), "dtype": _dtype_name(dtype),
         "bytes": math.prod(spec.shape) * dtype.itemsize}
        for node, spec, dtype in zip(graph.placeholders, model.inputs, model.input_dtypes(), strict=False)
    ]
    return {
        "schema": SCHEMA_ID,
        "edgeprof_version": edgeprof.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": model.name,
            "source": model.source,
            "weights": model.weights,
            "weights_sha256": model.weights_sha256,
            "input_shape": list(model.input_shape),
            "dtype": _dtype_name(model.dtype),
            "batch_size": model.batch_size,
            "params": sum(p.numel() for p in all_params),
            "param_bytes": sum(p.numel() * p.element_size() for p in all_params),
            "params_used": sum(p.numel() for p in used),
            "param_bytes_used": sum(p.numel() * p.element_size() for p in used),
            "inputs": inputs,
            "input_bytes": sum(entry["bytes"] for entry in inputs),
            **({"args": {key: repr(value) for key, value in model.args.items()}} if model.args else {}),
            "output_shape": list(analysis.output_specs[0][0]) if analysis.output_specs else [],
            "output_bytes": _nbytes(analysis.output_specs),
        },
        "counting": {
            "tool": "torch.utils.flop_counter formulas (edgeprof.profiler.counting)",
            "torch": torch.__version__,
            "mac_to_flop": 2,
            "bias": False,
            "elementwise": "separate",
            "attention": "math kernel, fast path off",
            "count_device": model.device.type,
            "uncounted_ops": dict(sorted(analysis.uncounted.items())),
        },
        "graph": {
            "method": graph.method,
            "cuts": analysis.cut_mode,
            "positions": graph.num_positions,
            "warnings": list(graph.warnings),
        },
        "totals": {
            "macs": sum(layer["macs"] for layer in layers),
            "flops": sum(layer["flops"] for layer in layers),
            "elementwise_flops": sum(layer["elementwise_flops"] for layer in layers),
        },
        "layers": layers,
        "partition_points": points,
    }


def runnable_graph(analysis: Analysis, runnable: LoadedModel) -> ModelGraph:
    """The graph of a real copy of the analysed model (which was counted on the meta device), so that the
    analysis' cut positions can be run."""
    graph = trace(runnable.module, runnable.example_inputs())
    if [n.name for n in graph.work] != [n.name for n in analysis.graph.work]:
        raise EdgeprofError("the runnable model does not trace to the same graph as the analysed one")
    return graph


@dataclass
class CutCheck:
    z: int
    max_abs_diff: float
    ok: bool


def run_model(runnable: LoadedModel, inputs: tuple[Any, ...]) -> Any:
    """`runnable`'s output on real `inputs`. Tracing runs on meta tensors, which check shapes but not values (an
    index out of range), so a forward that fails only for real is caught here, as one line naming the code."""
    try:
        return runnable.module(*inputs)
    except SystemExit as stop:
        raise EdgeprofError(f"{runnable.name} fails when run on a real input: its forward called "
                            f"sys.exit({stop.code})") from None
    except Exception as error:
        raise EdgeprofError(f"{runnable.name} fails when run on a real input: "
                            f"{describe_failure(type(error).__name__, error)}") from None


def verify_cuts(
    analysis: Analysis,
    runnable: LoadedModel,
    seed: int = 0,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    progress: Callable[[int], None] | None = None,
) -> list[CutCheck]:
    """Run prefix then suffix at every partition point on `runnable` (a real copy of the analysed model)
    and compare with the whole model's output on the same seeded input: every tensor the output holds (in a
    tuple, dict or dataclass), shape and value."""
    inputs = runnable.example_inputs(seed)
    with torch.inference_mode():
        expected = tensor_leaves(run_model(runnable, inputs))  # first: a forward that fails is one line
    graph = runnable_graph(analysis, runnable)
    checks = []
    with torch.inference_mode():
        scale = max((t.abs().max().item() for t in expected if t.numel()), default=0.0)
        for z, k in enumerate(analysis.cuts):
            prefix, suffix = graph.split(k)
            got = tensor_leaves(run_split(prefix, suffix, *inputs))
            same_shapes = [a.shape for a in got] == [b.shape for b in expected]
            pairs = zip(got, expected, strict=False)
            diff = max(((a - b).abs().max().item() for a, b in pairs if a.numel()), default=0.0)
            diff = diff if same_shapes else math.inf
            checks.append(CutCheck(z, diff, diff <= atol + rtol * scale))
            if progress:
                progress(z)
    return checks


def profile_model(
    model: str,
    *,
    weights: str | None = None,
    input_size: int | None = None,
    batch_size: int = 1,
    dtype: str = "float32",
    cuts: str = "clean",
    verify_fallback: bool = True,
) -> dict[str, Any]:
    """The static profile of MODEL (a name, `package.module:factory` or a file): `edgeprof profile` in Python."""
    loaded = load_model(model, weights, input_size, batch_size, dtype, device="meta")
    return static_profile(analyze(loaded, cuts, verify_fallback))
