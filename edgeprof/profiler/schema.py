"""Reading, checking and writing `edgeprof.profile/1` files. Imports no torch: simulators use it too.

A profile is checked twice: against the JSON schema (`profile.schema.json`, key names and types; numbers
must be finite) and against every invariant that can be recomputed from the file (bytes are prod(shape) x
itemsize, `device_flops` is the running sum of the layers' FLOPs, device + edge = totals, parameter bytes
within the model's, latency quantiles in order...). `profile_problems` lists every problem, one line each
starting with its JSON path; `validate_profile` raises the first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from edgeprof.errors import EdgeprofError
from edgeprof.files import parse_json, read_text, write_json_atomic

SCHEMA_ID = "edgeprof.profile/1"
_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
             "uint8": 1, "bool": 1}


class ProfileError(EdgeprofError):
    """A profile that breaks the schema or an invariant; the message starts with the JSON path."""


@functools.cache
def json_schema() -> dict[str, Any]:
    return json.loads(resources.files("edgeprof.profiler").joinpath("profile.schema.json").read_text())


def _finite_problems(value: Any, path: str = "$") -> list[str]:
    """NaN and infinities anywhere (Python's JSON reader accepts them; no invariant holds with them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path}: {value} is not a finite number"]
    if isinstance(value, dict):
        return [problem for key, item in value.items() for problem in _finite_problems(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [problem for i, item in enumerate(value) for problem in _finite_problems(item, f"{path}[{i}]")]
    return []


def _schema_problems(doc: Any) -> list[str]:
    import jsonschema  # imported here: it is slow to import and only this check needs it

    if not isinstance(doc, dict):
        return [f"$: expected a JSON object, got {type(doc).__name__}"]
    if "schema" not in doc:
        return [f"$.schema: missing; this is not an {SCHEMA_ID} file"]
    if doc["schema"] != SCHEMA_ID:
        return [f"$.schema: {doc['schema']!r} is not supported (this edgeprof reads {SCHEMA_ID})"]
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda error: list(error.absolute_path))
    best = jsonschema.exceptions.best_match(errors)
    ordered = [best, *(error for error in errors if error is not best)] if best is not None else []
    return [f"{error.json_path}: {_readable_message(error)}" for error in ordered]


def _readable_message(error: Any) -> str:
    """jsonschema's message, with an integer too long to read (10**400 fits JSON, not a float) named by its
    digit count, so that the error stays one readable line."""
    value = error.instance
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return error.message.replace(str(value), f"an integer of {len(str(abs(value)))} digits", 1)
    return error.message


Fail = Callable[[str, str], None]  # records one problem: its JSON path and what is wrong
Check = Callable[[str, dict[str, Any]], None]


def _invariant_problems(doc: dict[str, Any]) -> list[str]:
    """Everything that can be recomputed from the file and does not match, one line each."""
    model, totals, layers = doc["model"], doc["totals"], doc["layers"]
    problems: list[str] = []

    def fail(path: str, message: str) -> None:
        problems.append(f"{path}: {message}")

    def check_bytes(path: str, tensor: dict[str, Any]) -> None:
        if tensor["dtype"] not in _ITEMSIZE:
            fail(f"{path}.dtype", f"unknown dtype {tensor['dtype']!r} (known: {', '.join(_ITEMSIZE)})")
            return
        expected = math.prod(tensor["shape"]) * _ITEMSIZE[tensor["dtype"]]
        if tensor["bytes"] != expected:
            fail(f"{path}.bytes", f"{tensor['bytes']} != prod(shape) x itemsize = {expected}")

    def check_param_bytes(path: str, entry: dict[str, Any], params: str, nbytes: str) -> None:
        if not entry[params] <= entry[nbytes] <= 8 * entry[params]:
            fail(f"{path}.{nbytes}", f"{entry[nbytes]} bytes for {entry[params]} parameters (1 to 8 bytes each)")

    _check_model(model, fail, check_bytes, check_param_bytes)
    if totals["flops"] != 2 * totals["macs"]:
        fail("$.totals.flops", f"{totals['flops']} != 2 x macs = {2 * totals['macs']}")
    for i, layer in enumerate(layers):
        path = f"$.layers[{i}]"
        if layer["index"] != i + 1:
            fail(f"{path}.index", f"expected {i + 1}, got {layer['index']}")
        if layer["flops"] != 2 * layer["macs"]:
            fail(f"{path}.flops", f"{layer['flops']} != 2 x macs = {2 * layer['macs']}")
        check_param_bytes(path, layer, "params", "param_bytes")
        if layer["param_bytes"] > model["param_bytes"]:
            fail(f"{path}.param_bytes", f"{layer['param_bytes']} is more than the model's {model['param_bytes']}")
        _check_latency(f"{path}.latency_ms", layer.get("latency_ms"), fail)
    for key in ("macs", "flops", "elementwise_flops"):
        layer_sum = sum(layer[key] for layer in layers)
        if layer_sum != totals[key]:
            fail(f"$.totals.{key}", f"{totals[key]} != sum over layers = {layer_sum}")
    _check_points(doc, fail, check_bytes)
    _check_device(doc, fail)
    return problems


def _check_model(model: dict[str, Any], fail: Fail, check_bytes: Check, check_param_bytes: Callable[..., None]) -> None:
    if model["input_shape"][0] != model["batch_size"]:
        fail("$.model.batch_size", f"{model['batch_size']} differs from input_shape[0] = {model['input_shape'][0]}")
    if "inputs" in model:  # every input's own shape and dtype
        for i, entry in enumerate(model["inputs"]):
            check_bytes(f"$.model.inputs[{i}]", entry)
        if model["inputs"][0]["shape"] != model["input_shape"]:
            fail("$.model.inputs[0].shape", f"{model['inputs'][0]['shape']} differs from input_shape "
                                            f"{model['input_shape']}")
        expected_input = sum(entry["bytes"] for entry in model["inputs"])
        if model["input_bytes"] != expected_input:
            fail("$.model.input_bytes", f"{model['input_bytes']} != sum of the inputs' bytes = {expected_input}")
    else:
        expected_input = math.prod(model["input_shape"]) * _ITEMSIZE[model["dtype"]]
        if model["input_bytes"] != expected_input:
            fail("$.model.input_bytes", f"{model['input_bytes']} != prod(input_shape) x itemsize = {expected_input}")
    check_param_bytes("$.model", model, "params", "param_bytes")
    if "params_used" in model:
        if model["params_used"] > model["params"]:
            fail("$.model.params_used", f"{model['params_used']} is more than params = {model['params']}")
        if "param_bytes_used" in model:
            check_param_bytes("$.model", model, "params_used", "param_bytes_used")
    if model.get("output_shape") and model["output_bytes"] < math.prod(model["output_shape"]):
        fail("$.model.output_bytes", f"{model['output_bytes']} is less than one byte per element of output_shape "
                                     f"{model['output_shape']}")


def _check_points(doc: dict[str, Any], fail: Fail, check_bytes: Check) -> None:
    model, totals, layers, points = doc["model"], doc["totals"], doc["layers"], doc["partition_points"]
    if len(points) != len(layers) + 1:
        fail("$.partition_points", f"{len(points)} points for {len(layers)} layers (expected layers + 1)")
    last = len(points) - 1
    cumulative, previous = 0, None
    for i, point in enumerate(points):
        path = f"$.partition_points[{i}]"
        if point["z"] != i:
            fail(f"{path}.z", f"expected {i}, got {point['z']}")
        if point["device_flops"] + point["edge_flops"] != totals["flops"]:
            fail(f"{path}.edge_flops", f"device_flops + edge_flops = {point['device_flops'] + point['edge_flops']}, "
                                       f"but totals.flops = {totals['flops']}")
        if previous is not None and point["device_flops"] < previous["device_flops"]:
            fail(f"{path}.device_flops", f"{point['device_flops']} is less than at z = {i - 1} "
                                         f"({previous['device_flops']})")
        cumulative += layers[i - 1]["flops"] if 0 < i <= len(layers) else 0
        if point["device_flops"] != cumulative:
            fail(f"{path}.device_flops", f"{point['device_flops']} != the FLOPs of layers 1..{i} = {cumulative}")
        for j, tensor in enumerate(point["tensors"]):
            check_bytes(f"{path}.tensors[{j}]", tensor)
        tensor_bytes = sum(t["bytes"] for t in point["tensors"])
        if point["upload_bytes"] != tensor_bytes:
            fail(f"{path}.upload_bytes", f"{point['upload_bytes']} != sum of tensors' bytes = {tensor_bytes}")
        if point["single_tensor"] and 0 < i < last and len(point["tensors"]) != 1:
            fail(f"{path}.single_tensor", f"true, but {len(point['tensors'])} tensors cross")
        for key in ("device_param_bytes", "edge_param_bytes"):
            if point[key] > model["param_bytes"]:
                fail(f"{path}.{key}", f"{point[key]} is more than the model's param_bytes = {model['param_bytes']}")
        if previous is not None and point["device_param_bytes"] < previous["device_param_bytes"]:
            fail(f"{path}.device_param_bytes", f"{point['device_param_bytes']} is less than at z = {i - 1}: the "
                                               "device holds more layers")
        if previous is not None and point["edge_param_bytes"] > previous["edge_param_bytes"]:
            fail(f"{path}.edge_param_bytes", f"{point['edge_param_bytes']} is more than at z = {i - 1}: the edge "
                                             "holds fewer layers")
        for key in ("device_latency_ms", "edge_latency_ms"):
            _check_latency(f"{path}.{key}", point.get(key), fail)
        for key in ("device_energy_mj", "edge_energy_mj"):
            energy = point.get(key)
            if energy and None not in (energy["total"], energy["dynamic"]) and energy["dynamic"] > energy["total"]:
                fail(f"{path}.{key}.dynamic", f"{energy['dynamic']} is more than the total {energy['total']}")
        leakage = point.get("leakage")
        if leakage and not -1 <= leakage["ssim"] <= 1:
            fail(f"{path}.leakage.ssim", f"{leakage['ssim']} is outside SSIM's range [-1, 1]")
        previous = point
    first, final = points[0], points[-1]
    if first["upload_bytes"] != model["input_bytes"]:
        fail("$.partition_points[0].upload_bytes", f"z = 0 uploads the input ({model['input_bytes']} bytes)")
    if first["device_param_bytes"] != 0:
        fail("$.partition_points[0].device_param_bytes", "z = 0 holds no layer on the device, so it must be 0")
    if final["upload_bytes"] != 0:
        fail(f"$.partition_points[{last}].upload_bytes", "z = L sends nothing, so it must be 0")
    if final["edge_param_bytes"] != 0:
        fail(f"$.partition_points[{last}].edge_param_bytes", "z = L holds no layer on the edge, so it must be 0")
    used = model.get("param_bytes_used")
    if used is not None and (final["device_param_bytes"], first["edge_param_bytes"]) != (used, used):
        fail("$.model.param_bytes_used", f"{used}, but z = L holds {final['device_param_bytes']} on the device and "
                                         f"z = 0 {first['edge_param_bytes']} on the edge")


def _check_latency(path: str, stats: dict[str, float] | None, fail: Fail) -> None:
    if stats and not stats["min"] <= stats["p10"] <= stats["median"] <= stats["p90"]:
        fail(path, f"min {stats['min']} <= p10 {stats['p10']} <= median {stats['median']} <= p90 {stats['p90']} "
                   "does not hold")


def _check_device(doc: dict[str, Any], fail: Fail) -> None:
    """A measured profile's derived figures against what they are derived from."""
    device, flops, points = doc.get("device"), doc["totals"]["flops"], doc["partition_points"]
    if not device:
        return
    for i, point in enumerate(device.get("operating_points") or []):
        for key in ("device_latency_ms", "device_energy_mj"):
            values = point.get(key)
            if values is not None and len(values) != len(points):
                fail(f"$.device.operating_points[{i}].{key}", f"{len(values)} values for {len(points)} partition "
                                                              "points (one per z)")
    whole = device.get("whole_model_latency_ms")
    _check_latency("$.device.whole_model_latency_ms", whole, fail)
    if whole and device.get("flops_per_s") and flops and whole["median"] > 0:
        expected = flops / (whole["median"] / 1e3)
        if not math.isclose(device["flops_per_s"], expected, rel_tol=1e-3):
            fail("$.device.flops_per_s", f"{device['flops_per_s']} != totals.flops / whole-model median latency = "
                                         f"{expected:.6g}")
    energy = device.get("whole_model_energy_mj")
    if energy and energy.get("dynamic") is not None and device.get("joules_per_flop") is not None and flops:
        expected = energy["dynamic"] / 1e3 / flops
        if not math.isclose(device["joules_per_flop"], expected, rel_tol=1e-3, abs_tol=1e-18):
            fail("$.device.joules_per_flop", f"{device['joules_per_flop']} != whole-model dynamic energy / "
                                             f"totals.flops = {expected:.6g}")


def profile_problems(doc: Any) -> list[str]:
    """Every problem of `doc` as a profile, one line each starting with its JSON path; empty when it is valid.
    Schema problems come alone (the invariants assume the schema holds)."""
    problems = _finite_problems(doc) + _schema_problems(doc)
    return problems or _invariant_problems(doc)


def validate_profile(doc: Any) -> dict[str, Any]:
    """Raise `ProfileError` (JSON path first) unless `doc` is a valid, consistent profile; return it."""
    problems = profile_problems(doc)
    if problems:
        more = f" (and {len(problems) - 1} more: `edgeprof validate` lists them)" if len(problems) > 1 else ""
        raise ProfileError(problems[0] + more)
    return doc


def _read_profile_text(path: str | Path) -> tuple[str, Any]:
    """A profile file's text and JSON, not yet validated; unreadable files and non-JSON text are one-line errors."""
    path = Path(path)
    try:
        text = read_text(path, "profile")
        return text, parse_json(text, str(path))
    except EdgeprofError as error:
        raise ProfileError(str(error)) from None


def read_profile_json(path: str | Path) -> Any:
    """A profile file's JSON, not yet validated; unreadable files and non-JSON text are one-line errors."""
    return _read_profile_text(path)[1]


_VALID_TEXTS: set[bytes] = set()  # sha256 of every profile text this process has validated


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read and validate a profile file. Validation is a pure function of the file's text, and the costliest part
    of reading it (a sweep reads the same few profiles in every run), so a text already found valid in this
    process is parsed but not validated again; a changed file is validated anew."""
    text, doc = _read_profile_text(path)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    if digest in _VALID_TEXTS:
        return doc
    try:
        validate_profile(doc)
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from None
    _VALID_TEXTS.add(digest)
    return doc


def write_profile(doc: dict[str, Any], path: str | Path) -> None:
    """Validate `doc` and write it atomically."""
    validate_profile(doc)
    write_json_atomic(path, doc)
