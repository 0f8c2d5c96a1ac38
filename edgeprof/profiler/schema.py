"""Reading, checking and writing `edgeprof.profile/1` files. Imports no torch: simulators use it too.

A profile is checked twice: against the JSON schema (`profile.schema.json`, key names and types) and
against the invariants that make it usable (per-point FLOPs add up to the total, the prefix grows with z,
z = 0 uploads the input, z = L runs everything on the device). Every problem names its JSON path.
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.files import write_text_atomic

SCHEMA_ID = "edgeprof.profile/1"
_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
             "uint8": 1, "bool": 1}


class ProfileError(EdgeprofError):
    """A profile that breaks the schema or an invariant; the message starts with the JSON path."""


@functools.cache
def json_schema() -> dict[str, Any]:
    return json.loads(resources.files("edgeprof.profiler").joinpath("profile.schema.json").read_text())


def _check_schema(doc: Any) -> None:
    import jsonschema  # imported here: it is slow to import and only this check needs it

    if not isinstance(doc, dict):
        raise ProfileError(f"$: expected a JSON object, got {type(doc).__name__}")
    if "schema" not in doc:
        raise ProfileError(f"$.schema: missing; this is not an {SCHEMA_ID} file")
    if doc["schema"] != SCHEMA_ID:
        raise ProfileError(f"$.schema: {doc['schema']!r} is not supported (this edgeprof reads {SCHEMA_ID})")
    validator = jsonschema.Draft202012Validator(json_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        raise ProfileError(f"{error.json_path}: {error.message}")


def _check_invariants(doc: dict[str, Any]) -> None:
    model, totals, layers, points = doc["model"], doc["totals"], doc["layers"], doc["partition_points"]

    def fail(path: str, message: str) -> None:
        raise ProfileError(f"{path}: {message}")

    def check_bytes(path: str, tensor: dict[str, Any]) -> None:
        if tensor["dtype"] not in _ITEMSIZE:
            fail(f"{path}.dtype", f"unknown dtype {tensor['dtype']!r}")
        expected = math.prod(tensor["shape"]) * _ITEMSIZE[tensor["dtype"]]
        if tensor["bytes"] != expected:
            fail(f"{path}.bytes", f"{tensor['bytes']} != prod(shape) x itemsize = {expected}")

    if model["input_shape"][0] != model["batch_size"]:
        fail("$.model.batch_size", f"{model['batch_size']} differs from input_shape[0] = {model['input_shape'][0]}")
    if "inputs" in model:  # every input's own shape and dtype
        for i, entry in enumerate(model["inputs"]):
            check_bytes(f"$.model.inputs[{i}]", entry)
        if model["inputs"] and model["inputs"][0]["shape"] != model["input_shape"]:
            fail("$.model.inputs[0].shape", f"{model['inputs'][0]['shape']} differs from input_shape "
                                            f"{model['input_shape']}")
        expected_input = sum(entry["bytes"] for entry in model["inputs"])
        if model["input_bytes"] != expected_input:
            fail("$.model.input_bytes", f"{model['input_bytes']} != sum of the inputs' bytes = {expected_input}")
    else:
        expected_input = math.prod(model["input_shape"]) * _ITEMSIZE[model["dtype"]]
        if model["input_bytes"] != expected_input:
            fail("$.model.input_bytes", f"{model['input_bytes']} != prod(input_shape) x itemsize = {expected_input}")
    if totals["flops"] != 2 * totals["macs"]:
        fail("$.totals.flops", f"{totals['flops']} != 2 x macs = {2 * totals['macs']}")
    for i, layer in enumerate(layers):
        if layer["index"] != i + 1:
            fail(f"$.layers[{i}].index", f"expected {i + 1}, got {layer['index']}")
        if layer["flops"] != 2 * layer["macs"]:
            fail(f"$.layers[{i}].flops", f"{layer['flops']} != 2 x macs = {2 * layer['macs']}")
    for key in ("flops", "elementwise_flops"):
        layer_sum = sum(layer[key] for layer in layers)
        if layer_sum != totals[key]:
            fail(f"$.totals.{key}", f"{totals[key]} != sum over layers = {layer_sum}")
    if len(points) != len(layers) + 1:
        fail("$.partition_points", f"{len(points)} points for {len(layers)} layers (expected layers + 1)")
    previous = 0
    for i, point in enumerate(points):
        path = f"$.partition_points[{i}]"
        if point["z"] != i:
            fail(f"{path}.z", f"expected {i}, got {point['z']}")
        if point["device_flops"] + point["edge_flops"] != totals["flops"]:
            fail(f"{path}.edge_flops", f"device_flops + edge_flops = {point['device_flops'] + point['edge_flops']}, "
                                       f"but totals.flops = {totals['flops']}")
        if point["device_flops"] < previous:
            fail(f"{path}.device_flops", f"{point['device_flops']} is less than at z = {i - 1} ({previous})")
        previous = point["device_flops"]
        tensor_bytes = sum(t["bytes"] for t in point["tensors"])
        if point["upload_bytes"] != tensor_bytes:
            fail(f"{path}.upload_bytes", f"{point['upload_bytes']} != sum of tensors' bytes = {tensor_bytes}")
    if points[0]["device_flops"] != 0:
        fail("$.partition_points[0].device_flops", "z = 0 runs nothing on the device, so it must be 0")
    if points[0]["upload_bytes"] != model["input_bytes"]:
        fail("$.partition_points[0].upload_bytes", f"z = 0 uploads the input ({model['input_bytes']} bytes)")
    last = len(points) - 1
    if points[-1]["edge_flops"] != 0:
        fail(f"$.partition_points[{last}].edge_flops", "z = L runs everything on the device, so it must be 0")
    if points[-1]["upload_bytes"] != 0:
        fail(f"$.partition_points[{last}].upload_bytes", "z = L sends nothing, so it must be 0")


def validate_profile(doc: Any) -> dict[str, Any]:
    """Raise `ProfileError` (JSON path first) unless `doc` is a valid, consistent profile; return it."""
    _check_schema(doc)
    _check_invariants(doc)
    return doc


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read and validate a profile file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise EdgeprofError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProfileError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    try:
        return validate_profile(doc)
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from None


def write_profile(doc: dict[str, Any], path: str | Path) -> None:
    """Validate `doc` and write it atomically."""
    validate_profile(doc)
    write_text_atomic(path, json.dumps(doc, indent=1) + "\n")
