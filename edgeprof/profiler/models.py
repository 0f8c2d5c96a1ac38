"""Turning a MODEL argument into an `nn.Module` in eval mode, with its weights and default input size.

MODEL may be a torchvision classification model name, a zoo name (`edgeprof.profiler.zoo`),
`package.module:factory`, or a saved TorchScript / `torch.export` file. Counting needs no real weights, so
built-in models can be built on the meta device, where construction and counting cost no arithmetic;
`device="cpu"` builds a runnable model (random init from `seed` unless weights are given).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import importlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from edgeprof.errors import EdgeprofError
from edgeprof.profiler import zoo

RANDOM_INIT = "random init"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


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
    input_shape: tuple[int, ...]  # (batch, channels, height, width)
    dtype: torch.dtype
    device: torch.device

    @property
    def batch_size(self) -> int:
        return self.input_shape[0]

    def example_input(self, seed: int = 0) -> torch.Tensor:
        """A seeded random input (empty on the meta device)."""
        if self.device.type == "meta":
            return torch.empty(self.input_shape, dtype=self.dtype, device="meta")
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(self.input_shape, generator=generator).to(self.device, self.dtype)


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


def _build(name: str, factory: Callable[..., nn.Module], device: str, seed: int, **kwargs: Any) -> nn.Module:
    with warnings.catch_warnings():
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
        except Exception as error:
            settings = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "weights")
            raise EdgeprofError(f"cannot build {name}{f' ({settings})' if settings else ''}: "
                                f"{_first_line(error)}") from None


def _import_factory(spec: str) -> Callable[..., nn.Module]:
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise EdgeprofError(f"cannot import {module_name} for model {spec}: {_first_line(error)}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise EdgeprofError(f"model {spec}: {module_name} has no callable named {attribute}")
    return factory


def _load_file(path: Path) -> tuple[nn.Module, tuple[int, ...] | None]:
    """A torch.export archive (.pt2) or a TorchScript file, and the input shape it was exported for."""
    if path.suffix == ".pt2":
        try:
            program = torch.export.load(str(path))
        except Exception as error:
            raise EdgeprofError(f"cannot load {path} as a torch.export archive: {_first_line(error)}") from None
        user_input = next(n for n in program.graph.nodes if n.name in program.graph_signature.user_inputs)
        return program.module(), tuple(user_input.meta["val"].shape)
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
    spec: str, weights: str | None, input_size: int | None, device: str, seed: int
) -> tuple[nn.Module, int, str, str | None]:
    """A zoo or torchvision model, its input size, and its weights label and hash if named weights."""
    size = input_size or default_input_size(spec)
    if spec in _ZOO:
        return _build(spec, _ZOO[spec][0], device, seed), size, RANDOM_INIT, None
    factory = functools.partial(torchvision.models.get_model, spec)
    if weights is not None and not Path(weights).is_file():
        member, cached = _torchvision_weights(spec, weights)
        size = input_size or member.transforms.keywords.get("crop_size", size)
        module = _build(spec, factory, device, seed, weights=member)
        return module, size, f"torchvision:{member}", _sha256(cached)
    kwargs: dict[str, Any] = {}
    for prefix, keyword in _SIZED_BY_INPUT.items():
        if spec.startswith(prefix) and size != default_input_size(spec) and weights is None:
            kwargs[keyword] = size if keyword == "image_size" else (size, size)
    return _build(spec, factory, device, seed, **kwargs), size, RANDOM_INIT, None


def _build_imported(spec: str, device: str, seed: int) -> tuple[nn.Module, str]:
    """A `package.module:factory` model, on meta if its constructor allows it, else on the CPU."""
    factory = _import_factory(spec)
    module = None
    if device == "meta":
        with contextlib.suppress(EdgeprofError):  # factories that compute with their weights need real ones
            module = _build(spec, factory, "meta", seed)
    if module is None:
        device, module = "cpu", _build(spec, factory, "cpu", seed)
    if not isinstance(module, nn.Module):
        raise EdgeprofError(f"model {spec}: the factory returned {type(module).__name__}, not an nn.Module")
    return module, device


def load_model(
    spec: str,
    weights: str | None = None,
    input_size: int | None = None,
    batch_size: int = 1,
    dtype: str = "float32",
    device: str = "meta",
    seed: int = 0,
) -> LoadedModel:
    """Resolve MODEL, build it in eval mode on `device` ("meta" or "cpu") and load `weights` if given.

    Files and some imported factories are always built on the CPU; `LoadedModel.device` says where.
    """
    if dtype not in DTYPES:
        raise EdgeprofError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if batch_size < 1:
        raise EdgeprofError(f"batch size must be at least 1, got {batch_size}")
    if input_size is not None and input_size < 1:
        raise EdgeprofError(f"input size must be at least 1, got {input_size}")
    label, sha256, exported_shape, size = RANDOM_INIT, None, None, input_size or 224
    if spec in _ZOO or spec in torchvision_names():
        source = "zoo" if spec in _ZOO else "torchvision"
        module, size, label, sha256 = _build_builtin(spec, weights, input_size, device, seed)
    elif Path(spec).is_file():
        source, device = "file", "cpu"
        module, exported_shape = _load_file(Path(spec))
        if weights is None:  # a saved model carries its weights: name the file and its hash
            label, sha256 = str(spec), _sha256(Path(spec))
    elif ":" in spec:
        source = "import"
        module, device = _build_imported(spec, device, seed)
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

    if exported_shape is not None:
        wrong_size = input_size is not None and tuple(exported_shape[2:]) != (input_size, input_size)
        if wrong_size or batch_size not in (1, exported_shape[0]):
            raise EdgeprofError(f"{spec} was exported for input shape {list(exported_shape)} only")
        input_shape = exported_shape
    else:
        input_shape = (batch_size, 3, size, size)
        module = module.eval()  # exported programs are already in inference form and refuse eval()
    module = module.to(dtype=DTYPES[dtype])
    return LoadedModel(module, spec, source, label, sha256, input_shape, DTYPES[dtype], torch.device(device))
