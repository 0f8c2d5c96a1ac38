"""Turning a MODEL argument into an `nn.Module` in eval mode, with its weights and default input size.

MODEL may be a torchvision classification model name, a zoo name (`edgeprof.profiler.zoo`),
`package.module:factory`, or a saved TorchScript / `torch.export` file. Counting needs no real weights, so
built-in models can be built on the meta device, where construction and counting cost no arithmetic;
`device="cpu"` builds a runnable model (random init from `seed` unless weights are given). Factories may take
keyword arguments (`model_args`, the CLI's `--model-arg k=v`), and inputs may be any number of tensors of any
shape and dtype (`input_specs`, the CLI's `--input-shape`). Nothing is ever downloaded: a factory that would
fetch weights is stopped, and the error says which argument to pass instead.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import functools
import hashlib
import importlib
import inspect
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from edgeprof.errors import EdgeprofError
from edgeprof.profiler import zoo

RANDOM_INIT = "random init"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
INPUT_DTYPES = {**DTYPES, "float64": torch.float64, "int64": torch.int64, "int32": torch.int32,
                "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}


@dataclass(frozen=True)
class InputSpec:
    """One input tensor of a model: its shape (batch first) and dtype (None: the model's dtype)."""

    shape: tuple[int, ...]
    dtype: torch.dtype | None = None


def parse_input_spec(text: str) -> InputSpec:
    """`--input-shape` text: "1x3x224x320" or "1,16" with an optional ":dtype" ("1x16:int64")."""
    shape_text, _, dtype_name = text.strip().partition(":")
    if dtype_name and dtype_name not in INPUT_DTYPES:
        raise EdgeprofError(f"--input-shape {text}: unknown dtype {dtype_name!r}; use one of {', '.join(INPUT_DTYPES)}")
    try:
        shape = tuple(int(part) for part in re.split(r"[x,]", shape_text.lower()) if part.strip())
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise EdgeprofError(f"--input-shape {text}: write the whole shape, batch first, as positive integers "
                            "joined by x (1x3x224x224), optionally followed by :dtype (1x16:int64)")
    return InputSpec(shape, INPUT_DTYPES[dtype_name] if dtype_name else None)


def parse_model_args(pairs: list[str] | None) -> dict[str, Any]:
    """`--model-arg k=v` pairs as keyword arguments: v read as a Python literal (21, None, True, 'x', (1, 2)), else
    kept as the string it is."""
    args: dict[str, Any] = {}
    for pair in pairs or []:
        key, equals, text = pair.partition("=")
        if not equals or not key.strip().isidentifier():
            raise EdgeprofError(f"--model-arg {pair}: write name=value, e.g. --model-arg num_classes=21")
        try:
            args[key.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            args[key.strip()] = text.strip()
    return args


@dataclass(frozen=True)
class ModelEntry:
    """A model `edgeprof models` lists."""

    name: str
    source: str  # "zoo" or "torchvision"
    input_size: int
    papers: str
    description: str


_PAPERS = {
    **{name: "seed 001" for name in ("lenet7", "lenet9", "lenet12", "resnet18", "resnet34", "resnet50", "vgg13",
                                     "vgg16", "vgg19")},
    "mobilenet_v3_large": "seed 002",
    "cerl-net": "seed 003",
}
_ZOO: dict[str, tuple[Callable[[], nn.Module], int, str]] = {
    "lenet7": (zoo.lenet7, 32, "LeNet, 3 conv + 2 pool + 2 fc (HC-MAPPO-L's LeNet7, reconstructed)"),
    "lenet9": (zoo.lenet9, 32, "LeNet, 4 conv + 2 pool + 3 fc (our deeper variant)"),
    "lenet12": (zoo.lenet12, 32, "LeNet, 6 conv + 3 pool + 3 fc (our deeper variant)"),
    "cerl-net": (zoo.cerl_net, 64, "CERL's 8-layer device model: 6 conv, 1 transformer, 1 fc"),
}
_MODEL_FILE_SUFFIXES = {".pt", ".pth", ".pt2", ".ts", ".jit"}
_SIZED_BY_INPUT = {"vit_": "image_size", "maxvit_": "input_size"}  # torchvision builders with a fixed size


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    return tuple(torchvision.models.list_models(module=torchvision.models))


def default_input_size(name: str) -> int:
    if name in _ZOO:
        return _ZOO[name][1]
    return 299 if name == "inception_v3" else 224


def list_models() -> list[ModelEntry]:
    entries = [ModelEntry(name, "zoo", size, _PAPERS.get(name, ""), text) for name, (_, size, text) in _ZOO.items()]
    entries += [
        ModelEntry(name, "torchvision", default_input_size(name), _PAPERS.get(name, ""), "torchvision classification")
        for name in torchvision_names()
    ]
    return entries


@dataclass
class LoadedModel:
    """A model ready to profile, and what a profile must say about where it came from."""

    module: nn.Module
    name: str
    source: str  # torchvision / zoo / import / file
    weights: str  # RANDOM_INIT, "torchvision:<Enum>.<NAME>" or a file path
    weights_sha256: str | None
    input_shape: tuple[int, ...]  # the first input's, e.g. (batch, channels, height, width)
    dtype: torch.dtype  # of the parameters, and of every input that does not say otherwise
    device: torch.device
    reload: Callable[[], LoadedModel] | None = None  # the same model built runnable on the CPU
    inputs: tuple[InputSpec, ...] = ()  # every input; default: one of `input_shape`
    args: dict[str, Any] = field(default_factory=dict)  # the factory's keyword arguments

    def __post_init__(self) -> None:
        if not self.inputs:
            self.inputs = (InputSpec(self.input_shape),)

    @property
    def batch_size(self) -> int:
        return self.input_shape[0]

    def input_dtypes(self) -> list[torch.dtype]:
        return [spec.dtype or self.dtype for spec in self.inputs]

    def example_inputs(self, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Seeded random inputs, one per input of the model (empty on the meta device): normal floats, and 0/1
        integers (valid token ids and masks) for integer or boolean inputs."""
        dtypes = self.input_dtypes()
        if self.device.type == "meta":
            return tuple(torch.empty(spec.shape, dtype=dtype, device="meta") for spec, dtype in zip(self.inputs, dtypes,
                                                                                                    strict=True))
        generator = torch.Generator().manual_seed(seed)
        return tuple(
            (torch.randn(spec.shape, generator=generator) if dtype.is_floating_point
             else torch.randint(0, 2, spec.shape, generator=generator)).to(self.device, dtype)
            for spec, dtype in zip(self.inputs, dtypes, strict=True)
        )


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Build modules whose parameters and buffers live on the meta device, so no weights are initialised.

    Unlike `with torch.device("meta")`, ordinary tensor arithmetic in a constructor (regnet computes its
    widths with tensors) still runs on the CPU.
    """
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter_on_meta(module, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(module, name, param)

    def buffer_on_meta(module, name, tensor, persistent=True):
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter_on_meta, buffer_on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise EdgeprofError(f"cannot read weights file {path}: {_first_line(error)}") from None
    for key in ("state_dict", "model", "model_state_dict"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EdgeprofError(f"weights file {path} does not hold a state_dict (a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_state_dict(module: nn.Module, state: dict[str, torch.Tensor], what: str, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying into meta parameters is a shape check, and says so loudly
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            details = " ".join(line.strip() for line in str(error).splitlines()[1:3])
            raise EdgeprofError(f"weights {what} do not fit model {name}: {details}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _torchvision_weights(name: str, weights: str):
    """The torchvision weights enum member `weights` names, if its file is already in torch's hub cache."""
    try:
        enum = torchvision.models.get_model_weights(name)
        member = enum[weights.rsplit(".", 1)[-1]] if weights != "DEFAULT" else enum.DEFAULT
    except (KeyError, ValueError):
        known = ", ".join(w.name for w in torchvision.models.get_model_weights(name))
        raise EdgeprofError(
            f"no weights file {weights} and no torchvision weights of that name for {name} (known: {known})"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(member.url).name
    if not cached.is_file():
        raise EdgeprofError(
            f"torchvision weights {member} are not in the local cache ({cached}) and cannot be downloaded here: "
            "copy the file there or pass a state_dict file to --weights"
        )
    return member, cached


class DownloadRefused(EdgeprofError):
    """A factory tried to download weights; edgeprof never downloads."""


def weights_arguments(factory: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The factory's `weights*` arguments that are not None, given `kwargs` and its defaults (torchvision's
    `weights_backbone` defaults to ImageNet weights, for one)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    found = {name: kwargs.get(name, parameter.default) for name, parameter in parameters.items()
             if name.startswith("weights")}
    return {name: value for name, value in found.items() if value is not None and value is not inspect.Parameter.empty}


@contextlib.contextmanager
def _no_downloads(name: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> Iterator[None]:
    """Refuse any download from torch's hub (weights a factory fetches), saying which argument avoids it."""
    fetch = torch.hub.download_url_to_file

    def refuse(url: str, *args: Any, **kw: Any) -> None:
        named = weights_arguments(factory, kwargs)
        fix = (" and ".join(f"--model-arg {key}=None" for key in named) if named
               else "the factory argument that turns its pretrained weights off")
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise DownloadRefused(f"building {name} would download {url}, and edgeprof never downloads: pass {fix} "
                              f"for random init, or put {Path(url).name} in {cache}")

    torch.hub.download_url_to_file = refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file = fetch


def _build(name: str, factory: Callable[..., nn.Module], device: str, seed: int, **kwargs: Any) -> nn.Module:
    with warnings.catch_warnings(), _no_downloads(name, factory, kwargs):
        # torchvision's notes on init defaults, and loading weights into meta parameters (a shape check only)
        warnings.simplefilter("ignore")
        try:
            if device == "meta":
                with _parameters_on_meta():
                    return factory(**kwargs)
            torch.manual_seed(seed)
            return factory(**kwargs)
        except EdgeprofError:
            raise
        except SystemExit as stop:
            raise EdgeprofError(f"cannot build {name}: its factory called sys.exit({stop.code})") from None
        except Exception as error:
            settings = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "weights")
            raise EdgeprofError(f"cannot build {name}{f' ({settings})' if settings else ''}: "
                                f"{_first_line(error)}") from None


def _import_factory(spec: str) -> Callable[..., nn.Module]:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except SystemExit as stop:
        raise EdgeprofError(f"cannot import {module_name} for model {spec}: it called sys.exit({stop.code})") from None
    except Exception as error:
        raise EdgeprofError(f"cannot import {module_name} for model {spec}: {_first_line(error)}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise EdgeprofError(f"model {spec}: {module_name} has no callable named {attribute}")
    return factory


def _load_file(path: Path) -> tuple[nn.Module, tuple[InputSpec, ...] | None]:
    """A torch.export archive (.pt2) or a TorchScript file, and the inputs it was exported for."""
    if path.suffix == ".pt2":
        if not zipfile.is_zipfile(path):
            raise EdgeprofError(f"cannot load {path} as a torch.export archive: it is not a zip file (truncated "
                                "or not written by torch.export.save)")
        try:
            program = torch.export.load(str(path))
        except Exception as error:
            raise EdgeprofError(f"cannot load {path} as a torch.export archive: {_first_line(error)}") from None
        users = [n for n in program.graph.nodes if n.name in program.graph_signature.user_inputs]
        return program.module(), tuple(InputSpec(tuple(n.meta["val"].shape), n.meta["val"].dtype) for n in users)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
        try:
            return torch.jit.load(str(path), map_location="cpu"), None
        except Exception as error:
            reason = _first_line(error)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        state = None
    if isinstance(state, dict):
        raise EdgeprofError(f"{path} is a state_dict, not a model: pass a model name and --weights {path}")
    raise EdgeprofError(f"cannot load {path} as a TorchScript model (torch.export archives end in .pt2): {reason}")


def _unknown_model(spec: str) -> EdgeprofError:
    names = [*_ZOO, *torchvision_names()]
    close = difflib.get_close_matches(spec.lower(), names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return EdgeprofError(
        f"unknown model {spec!r}: {hint}`edgeprof models` lists the built-in names; a model can also be "
        "package.module:factory or a TorchScript / torch.export file"
    )


def _build_builtin(
    spec: str, weights: str | None, input_size: int | None, device: str, seed: int, args: dict[str, Any]
) -> tuple[nn.Module, int, str, str | None]:
    """A zoo or torchvision model, its input size, and its weights label and hash if named weights."""
    size = input_size or default_input_size(spec)
    if spec in _ZOO:
        return _build(spec, _ZOO[spec][0], device, seed, **args), size, RANDOM_INIT, None
    builder = torchvision.models.get_model_builder(spec)
    if weights is not None and not Path(weights).is_file():
        member, cached = _torchvision_weights(spec, weights)
        size = input_size or member.transforms.keywords.get("crop_size", size)
        module = _build(spec, builder, device, seed, **args, weights=member)
        return module, size, f"torchvision:{member}", _sha256(cached)
    kwargs: dict[str, Any] = dict(args)
    for prefix, keyword in _SIZED_BY_INPUT.items():
        if spec.startswith(prefix) and size != default_input_size(spec) and weights is None:
            kwargs.setdefault(keyword, size if keyword == "image_size" else (size, size))
    return _build(spec, builder, device, seed, **kwargs), size, _weights_label(builder, kwargs), None


def _weights_label(factory: Callable[..., Any], kwargs: dict[str, Any]) -> str:
    """RANDOM_INIT, or the weights arguments the factory loaded (from torch's hub cache: nothing downloads)."""
    named = weights_arguments(factory, kwargs)
    return ", ".join(f"{key}={value}" for key, value in named.items()) if named else RANDOM_INIT


def _build_imported(spec: str, device: str, seed: int, args: dict[str, Any]) -> tuple[nn.Module, str, str]:
    """A `package.module:factory` model, on meta if its constructor allows it, else on the CPU; where it was
    built and its weights label."""
    factory = _import_factory(spec)
    module = None
    if device == "meta":
        try:  # factories that compute with their weights need real ones
            module = _build(spec, factory, "meta", seed, **args)
        except DownloadRefused:
            raise
        except EdgeprofError:
            module = None
    if module is None:
        device, module = "cpu", _build(spec, factory, "cpu", seed, **args)
    if not isinstance(module, nn.Module):
        raise EdgeprofError(f"model {spec}: the factory returned {type(module).__name__}, not an nn.Module")
    return module, device, _weights_label(factory, args)


def _input_specs(
    spec: str, given: tuple[InputSpec, ...] | None, exported: tuple[InputSpec, ...] | None, input_size: int | None,
    batch_size: int, size: int
) -> tuple[InputSpec, ...]:
    """The model's inputs: an export archive's own, the user's `--input-shape`s, or one (batch, 3, size, size)."""
    if exported is not None:
        wrong_size = input_size is not None and tuple(exported[0].shape[2:]) != (input_size, input_size)
        wrong_given = given is not None and [s.shape for s in given] != [s.shape for s in exported]
        if wrong_size or wrong_given or batch_size not in (1, exported[0].shape[0]):
            shapes = " and ".join(str(list(s.shape)) for s in exported)
            raise EdgeprofError(f"{spec} was exported for input shape {shapes} only")
        return exported
    if given is not None:
        if input_size is not None or batch_size != 1:
            raise EdgeprofError("--input-shape gives the whole shape, batch first: drop --input-size and --batch")
        return given
    return (InputSpec((batch_size, 3, size, size)),)


def load_model(
    spec: str,
    weights: str | None = None,
    input_size: int | None = None,
    batch_size: int = 1,
    dtype: str = "float32",
    device: str = "meta",
    seed: int = 0,
    input_specs: tuple[InputSpec, ...] | None = None,
    model_args: dict[str, Any] | None = None,
) -> LoadedModel:
    """Resolve MODEL, build it in eval mode on `device` ("meta" or "cpu") and load `weights` if given.

    `model_args` are the factory's keyword arguments; `input_specs` every input's shape and dtype (default: one
    (batch_size, 3, input_size, input_size) input of `dtype`). Files and some imported factories are always built
    on the CPU; `LoadedModel.device` says where.
    """
    if dtype not in DTYPES:
        raise EdgeprofError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if batch_size < 1:
        raise EdgeprofError(f"batch size must be at least 1, got {batch_size}")
    if input_size is not None and input_size < 1:
        raise EdgeprofError(f"input size must be at least 1, got {input_size}")
    args = dict(model_args or {})
    label, sha256, exported, size = RANDOM_INIT, None, None, input_size or 224
    if spec in _ZOO or spec in torchvision_names():
        source = "zoo" if spec in _ZOO else "torchvision"
        module, size, label, sha256 = _build_builtin(spec, weights, input_size, device, seed, args)
    elif Path(spec).is_file():
        if args:
            raise EdgeprofError(f"--model-arg configures a factory; {spec} is a saved model, built already")
        source, device = "file", "cpu"
        module, exported = _load_file(Path(spec))
        if weights is None:  # a saved model carries its weights: name the file and its hash
            label, sha256 = str(spec), _sha256(Path(spec))
    elif ":" in spec:
        source = "import"
        module, device, label = _build_imported(spec, device, seed, args)
    elif "/" in spec or Path(spec).suffix in _MODEL_FILE_SUFFIXES:
        raise EdgeprofError(f"model file {spec} does not exist")
    else:
        raise _unknown_model(spec)

    if weights is not None and label == RANDOM_INIT:
        path = Path(weights)
        if not path.is_file():
            raise EdgeprofError(f"weights file {weights} does not exist")
        _load_state_dict(module, _read_state_dict(path), str(path), spec)
        label, sha256 = str(path), _sha256(path)

    inputs = _input_specs(spec, input_specs, exported, input_size, batch_size, size)
    if exported is None:
        module = module.eval()  # exported programs are already in inference form and refuse eval()
    module = module.to(dtype=DTYPES[dtype])
    reload = functools.partial(load_model, spec, weights, input_size, batch_size, dtype, "cpu", seed, input_specs,
                               model_args)
    return LoadedModel(module, spec, source, label, sha256, inputs[0].shape, DTYPES[dtype], torch.device(device),
                       reload, inputs, args)
