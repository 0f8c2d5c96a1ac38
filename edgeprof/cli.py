"""The `edgeprof` command. Thin: parse, call the Python API, render with rich, write files.

Every user error ends with exit code 2 and one line on stderr; output files are checked for writability
before any work and written atomically, so a failed run leaves none behind.
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_outputs, check_writable, json_text, write_json_atomic

if TYPE_CHECKING:
    from edgeprof.optimize.split_advisor import Constraints, SplitAdvice, UplinkSweep
    from edgeprof.sim.split import Link, PointCost, SplitProblem

app = typer.Typer(
    name="edgeprof",
    help="What it costs, and what it leaks, to split a PyTorch model between a device and an edge server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)  # messages stay on one line; tables still fit the terminal
err_console = Console(stderr=True, soft_wrap=True)


class Dtype(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Cuts(str, Enum):
    clean = "clean"
    all = "all"


class Energy(str, Enum):
    auto = "auto"
    none = "none"
    nvml = "nvml"
    jetson = "jetson"
    rapl = "rapl"


class Source(str, Enum):
    zoo = "zoo"
    torchvision = "torchvision"


def _version(value: bool) -> None:
    if value:
        from edgeprof import __version__

        print(f"edgeprof {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """What it costs, and what it leaks, to split a PyTorch model between a device and an edge server."""


PROGRESS_EVERY_S = 30.0  # with stderr not a terminal (a log, CI), a progress line at most this often


class _LineProgress:
    """`rich.progress.Progress`'s add_task/update for logs: a plain line on stderr when a task finishes and at most
    every `PROGRESS_EVERY_S` seconds in between, so long runs are not silent in a log."""

    def __init__(self) -> None:
        self.tasks: dict[int, dict[str, Any]] = {}
        self.started = time.monotonic()

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> int:
        self.tasks[len(self.tasks)] = {"description": description, "total": total, "completed": 0, "printed": 0.0}
        return len(self.tasks) - 1

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, completed=self.tasks[task]["completed"] + advance)

    def update(self, task: int, completed: float | None = None, total: float | None = None,
               description: str | None = None) -> None:
        state = self.tasks[task]
        state.update({key: value for key, value in (("completed", completed), ("total", total),
                                                     ("description", description)) if value is not None})
        now = time.monotonic()
        finished = state["total"] is not None and state["completed"] >= state["total"]
        if finished or now - state["printed"] >= PROGRESS_EVERY_S:
            state["printed"] = now
            of = f"/{state['total']:g}" if state["total"] is not None else ""
            print(f"edgeprof: {state['description']}: {state['completed']:g}{of} ({now - self.started:.0f} s)",
                  file=sys.stderr, flush=True)


def _progress(quiet: bool) -> Any:
    """A progress bar on a terminal, periodic lines in a log, nothing with --quiet."""
    if quiet or err_console.is_terminal:
        return Progress(console=err_console, disable=quiet, transient=True)
    return _LineProgress()


def _si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _bytes(value: float) -> str:
    return _si(value, "B")


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape))


@app.command("models")
def models_command(
    source: Annotated[Source | None, typer.Option(help="Only models from this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the built-in models: the papers' zoo and every torchvision classification model."""
    from edgeprof.profiler.models import list_models

    entries = [e for e in list_models() if source is None or e.source == source.value]
    if as_json:
        print(json.dumps([e.__dict__ for e in entries], indent=1))
        return
    table = Table(title="Built-in models (MODEL may also be package.module:factory or a saved model file)")
    for column in ("name", "source", "input", "papers", "description"):
        table.add_column(column)
    for e in entries:
        table.add_row(e.name, e.source, f"{e.input_size}x{e.input_size}", e.papers, e.description)
    console.print(table)


def _ms(stats: dict[str, float] | None) -> str:
    return "" if not stats else f"{stats['median']:.3f}"


def _mj(energy: dict[str, float] | None) -> str:
    return "" if not energy or energy.get("total") is None else f"{energy['total']:.3f}"


def _print_device(profile: dict[str, Any]) -> None:
    device = profile["device"]
    speed = f"{device['flops_per_s'] / 1e9:.2f} GFLOP/s" if device.get("flops_per_s") else "n/a"
    console.print(f"measured on {device['kind']} {device['name']}: whole model "
                  f"{device['whole_model_latency_ms']['median']:.3f} ms (median of {profile['timing']['repeats']}), "
                  f"{speed}", highlight=False)
    if device.get("energy_source"):
        per_flop = device.get("joules_per_flop")
        console.print(f"energy from {device['energy_source']}: idle {device['idle_power_w']:.2f} W, whole model "
                      f"{device['whole_model_energy_mj']['total']:.3f} mJ"
                      + (f", {per_flop * 1e12:.3f} pJ/FLOP dynamic" if per_flop is not None else ""), highlight=False)
    else:
        console.print(f"energy not measured: {device.get('energy_unavailable')}", highlight=False)
    for warning in profile["timing"].get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _print_profile(profile: dict[str, Any], top: int | None) -> None:
    model, totals, counting = profile["model"], profile["totals"], profile["counting"]
    measured = "device" in profile
    inputs = model.get("inputs") or [{"shape": model["input_shape"], "dtype": model["dtype"]}]
    shapes = " + ".join(f"{_shape(entry['shape'])} {entry['dtype']}" for entry in inputs)
    console.print(
        f"[bold]{model['name']}[/bold] ({model['source']}, weights: {model['weights']})  "
        f"input {shapes}  params {model['params']:,} ({_bytes(model['param_bytes'])})"
        + (f", {model['params_used']:,} used by forward ({_bytes(model['param_bytes_used'])})"
           if model.get("params_used", model["params"]) != model["params"] else "")
    )
    console.print(
        f"MACs {totals['macs']:,}  FLOPs {totals['flops']:,} (= 2 x MACs: conv/linear/matmul/attention, no bias)  "
        f"elementwise FLOPs {totals['elementwise_flops']:,} (separate)"
    )
    for warning in profile.get("graph", {}).get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if counting["uncounted_ops"]:
        ops = ", ".join(f"{op} x{n}" for op, n in counting["uncounted_ops"].items())
        console.print(f"[yellow]ops with no FLOP formula (counted as 0):[/yellow] {ops}")
    if measured:
        _print_device(profile)

    layers = profile["layers"]
    shown = sorted(layers, key=lambda layer: -layer["flops"])[:top] if top else layers
    table = Table(title=f"Top {len(shown)} layers by FLOPs" if top else f"Layers ({len(layers)})")
    columns = ["#", "layer", "type", "MACs", "% FLOPs", "params", "output", "out bytes"] + (["ms"] if measured else [])
    for column in columns:
        table.add_column(column, justify="left" if column in ("layer", "type", "output") else "right")
    for layer in shown:
        share = 100 * layer["flops"] / totals["flops"] if totals["flops"] else 0.0
        row = [str(layer["index"]), layer["name"], layer["type"], _si(layer["macs"]), f"{share:.1f}",
               _si(layer["params"]), _shape(layer["output_shape"]), _bytes(layer["output_bytes"])]
        table.add_row(*row, *([_ms(layer.get("latency_ms"))] if measured else []))
    console.print(table)

    table = Table(title="Partition points (z layers on the device, the rest on the edge)")
    with_energy = measured and profile["device"].get("energy_source") is not None
    columns = ["z", "after", "upload", "tensors", "device FLOPs", "% on device", "device params"]
    columns += (["device ms", "edge ms"] if measured else []) + (["device mJ", "edge mJ"] if with_energy else [])
    for column in columns:
        table.add_column(column, justify="left" if column == "after" else "right")
    for point in profile["partition_points"]:
        share = 100 * point["device_flops"] / totals["flops"] if totals["flops"] else 0.0
        tensors = str(len(point["tensors"])) if point["single_tensor"] else f"{len(point['tensors'])} (multi)"
        row = [str(point["z"]), point["after"] or "(input)", _bytes(point["upload_bytes"]), tensors,
               _si(point["device_flops"]), f"{share:.1f}", _bytes(point["device_param_bytes"])]
        if measured:
            row += [_ms(point.get("device_latency_ms")), _ms(point.get("edge_latency_ms"))]
        if with_energy:
            row += [_mj(point.get("device_energy_mj")), _mj(point.get("edge_energy_mj"))]
        table.add_row(*row)
    console.print(table)


def _verify(analysis, runnable, seed: int, quiet: bool) -> None:
    from edgeprof.profiler.static import verify_cuts

    with _progress(quiet) as progress:
        task = progress.add_task("verifying cuts", total=len(analysis.cuts))
        checks = verify_cuts(analysis, runnable, seed=seed, progress=lambda z: progress.advance(task))
    failed = [c for c in checks if not c.ok]
    for check in failed:
        after = analysis.graph.describe_cut(analysis.cuts[check.z]) or "the input"
        err_console.print(f"verify-cuts: z={check.z} (after {after}): prefix + suffix differs from the whole "
                          f"model by {check.max_abs_diff:.3g}", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)
    if not quiet:
        worst = max(c.max_abs_diff for c in checks)
        console.print(f"verify-cuts: all {len(checks)} points reproduce the model's output (max |diff| {worst:.2g})")


def _measure(analysis, runnable, settings, sensor, quiet: bool) -> dict[str, Any]:
    from edgeprof.profiler.measure import measure_profile

    with _progress(quiet) as progress:
        task = progress.add_task(f"measuring on {settings.device}", total=settings.repeats)

        def report(stage: str, done: int, total: int) -> None:
            label = "timing rounds" if stage == "timing" else "energy, partition points"
            progress.update(task, description=f"{label} on {settings.device}", completed=done, total=total)

        return measure_profile(analysis, runnable, settings, sensor, progress=report)


@app.command("profile")
def profile_command(
    model: Annotated[str, typer.Argument(help="A name from `edgeprof models`, package.module:factory, or a "
                                              "TorchScript / torch.export file.")],
    weights: Annotated[str | None, typer.Option(help="A state_dict file, or a torchvision weights name (e.g. "
                                                     "IMAGENET1K_V1) already in torch's hub cache. Default: "
                                                     "random init.")] = None,
    input_size: Annotated[int | None, typer.Option(min=1, help="Input height and width (default per model).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 1,
    input_shape: Annotated[list[str] | None, typer.Option(help="An input's whole shape, batch first, optionally "
                                                                "with its dtype: 1x1x28x28, 1x3x224x320, "
                                                                "1x128:int64. Repeat for a model of several "
                                                                "inputs. Replaces --input-size and --batch.")] = None,
    model_arg: Annotated[list[str] | None, typer.Option(help="A keyword argument for the model's factory, "
                                                              "name=value (a Python literal, else a string): "
                                                              "num_classes=21, weights_backbone=None. "
                                                              "Repeatable.")] = None,
    dtype: Annotated[Dtype, typer.Option(help="Parameter and activation dtype.")] = Dtype.float32,
    cuts: Annotated[Cuts, typer.Option(help="clean: single-tensor cuts after each computational layer; all: "
                                            "also the multi-tensor cuts inside blocks.")] = Cuts.clean,
    verify_cuts: Annotated[bool | None, typer.Option("--verify-cuts/--no-verify-cuts", help="Run prefix then "
                                                     "suffix at every point and check the model's output. By "
                                                     "default only a model no tracer can trace (profiled as its "
                                                     "children in order) is checked, and refused if wrong; "
                                                     "--no-verify-cuts skips even that.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random init and input used by --verify-cuts.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the profile JSON here.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the partition points to this CSV, and the layers to "
                                                  "the same name with .layers.csv.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw device FLOPs and upload per point to this PNG.")] = None,
    top: Annotated[int | None, typer.Option(min=1, help="Show only the N heaviest layers.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    measure: Annotated[bool, typer.Option("--measure", help="Also time every prefix, suffix and layer on "
                                                            "--device, and measure energy.")] = False,
    device: Annotated[str, typer.Option(help="With --measure: cpu, cuda, cuda:N or auto (a GPU if there is "
                                             "one).")] = "auto",
    energy: Annotated[Energy, typer.Option(help="With --measure: the energy sensor; auto picks the one for "
                                                "--device and records why when there is none.")] = Energy.auto,
    warmup: Annotated[int, typer.Option(min=0, help="With --measure: untimed runs before timing.")] = 10,
    repeats: Annotated[int, typer.Option(min=1, help="With --measure: timed runs per measurement.")] = 50,
    threads: Annotated[int | None, typer.Option(min=1, help="With --measure on a CPU: intra-op threads (default: "
                                                            "torch's current count).")] = None,
    rails: Annotated[str | None, typer.Option(help="With --measure on a Jetson: comma-separated power rails whose "
                                               "sum is the board's power (default: NVIDIA's rule for the board, "
                                               "e.g. VDD_IN, or VIN on Thor).")] = None,
    leakage: Annotated[Path | None, typer.Option(help="Attach this leakage.csv (from `edgeprof leakage`) to the "
                                                      "partition points.")] = None,
) -> None:
    """Count FLOPs, parameters and activation bytes of every layer and partition point of MODEL; with
    --measure, also its latency and energy on this machine."""
    from edgeprof.profiler.measure import MeasureSettings
    from edgeprof.profiler.models import load_model, parse_input_spec, parse_model_args
    from edgeprof.profiler.static import analyze, static_profile
    from edgeprof.profiler.timing import resolve_device

    _check_suffix(output, ".json")
    _check_suffix(csv, ".csv", "--csv")
    _check_suffix(plot, ".png", "--plot")
    layers_csv = csv.with_name(csv.stem + ".layers.csv") if csv else None
    for path in (output, csv, layers_csv, plot):
        if path is not None:
            check_writable(path)
    sensor = (None, None)
    if measure:  # a missing GPU or sensor is an error before any work
        from edgeprof.profiler.energy import open_meter
        from edgeprof.profiler.energy.rails import parse_rails_option

        sensor = open_meter(energy.value, str(resolve_device(device)), parse_rails_option(rails))
    try:
        inputs = tuple(parse_input_spec(text) for text in input_shape) if input_shape else None
        build = functools.partial(load_model, model, weights, input_size, batch, dtype.value, input_specs=inputs,
                                  model_args=parse_model_args(model_arg))
        loaded = build(device="meta")
        analysis = analyze(loaded, cuts.value, verify_fallback=verify_cuts is not False)
        runnable = None
        if verify_cuts or measure:
            runnable = build(device="cpu", seed=seed)
        if verify_cuts:
            _verify(analysis, runnable, seed, quiet)
        if measure:
            settings = MeasureSettings(device, energy.value, warmup, repeats, threads, seed=seed,
                                       rails=parse_rails_option(rails))
            profile = _measure(analysis, runnable, settings, sensor, quiet)
        else:
            profile = static_profile(analysis)
    finally:
        if sensor[0] is not None:  # closing twice is harmless; this covers failures before measuring
            sensor[0].close()
    if leakage:
        from edgeprof.inversion.report import (
            attach_leakage,
            describe_table,
            read_leakage_table,
        )

        rows = read_leakage_table(leakage)
        attach_leakage(profile, rows, describe_table(rows, str(leakage)))
    _write_profile_outputs(profile, output, csv, layers_csv, plot)
    if not quiet:
        _print_profile(profile, top)


def _write_profile_outputs(profile: dict[str, Any], output: Path | None, csv: Path | None, layers_csv: Path | None,
                           plot: Path | None) -> None:
    """The profile's JSON, its two CSVs and its figure: all of the requested ones, or none."""
    from edgeprof.profiler.plot import tradeoff_figure
    from edgeprof.profiler.schema import validate_profile
    from edgeprof.profiler.tables import layers_frame, points_frame

    validate_profile(profile)
    writers = {output: lambda tmp: tmp.write_text(json_text(profile), encoding="utf-8"),
               csv: lambda tmp: points_frame(profile).to_csv(tmp, index=False),
               layers_csv: lambda tmp: layers_frame(profile).to_csv(tmp, index=False),
               plot: lambda tmp: tradeoff_figure(profile).savefig(tmp, dpi=150, format="png")}
    chosen = {path: write for path, write in writers.items() if path is not None}
    with atomic_outputs(*chosen) as temporaries:
        for write, tmp in zip(chosen.values(), temporaries, strict=True):
            write(tmp)


def _check_suffix(path: Path | None, suffixes: str | tuple[str, ...], option: str = "-o") -> None:
    """Refuse an output whose extension names another format than the option writes."""
    allowed = (suffixes,) if isinstance(suffixes, str) else suffixes
    if path is not None and path.suffix.lower() not in allowed:
        raise EdgeprofError(f"{option} {path}: this writes {' or '.join(s.lstrip('.').upper() for s in allowed)}; "
                            f"name the file {' or '.join('*' + s for s in allowed)}")


@app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Profile JSON files to check.")],
    every: Annotated[bool, typer.Option("--all", help="One line per problem instead of one per file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the files that fail.")] = False,
) -> None:
    """Check profile files against the edgeprof.profile/1 schema and every invariant that can be recomputed from
    them: one line per file (its first problem and how many more), every file checked; exit 2 if any failed."""
    from edgeprof.profiler.schema import profile_problems, read_profile_json

    failed = False
    for path in files:
        try:
            profile = read_profile_json(path)
            problems = profile_problems(profile)
        except EdgeprofError as error:
            problems = [str(error).removeprefix(f"{path}: ")]
        shown = problems if every else problems[:1]
        for problem in shown:
            more = "" if every or len(problems) < 2 else f" (and {len(problems) - 1} more: --all lists them)"
            err_console.print(f"edgeprof: error: {path}: {problem}{more}", highlight=False, markup=False)
        failed = failed or bool(problems)
        if not problems and not quiet:
            console.print(f"{path}: valid {profile['schema']} ({profile['model']['name']}, "
                          f"{len(profile['partition_points'])} partition points)", highlight=False)
    if failed:
        raise typer.Exit(2)


class Attack(str, Enum):
    inverse_net = "inverse-net"
    rmle = "rmle"


class Preset(str, Enum):
    smoke = "smoke"
    default = "default"
    paper = "paper"


class SmallImages(str, Enum):
    upscale = "upscale"
    skip = "skip"


@app.command("leakage")
def leakage_command(
    model: Annotated[str, typer.Option("--model", help="MODEL as for `edgeprof profile`.")],
    data: Annotated[str, typer.Option(help="A folder of images (ImageFolder or flat), a folder of CIFAR-10/100 or "
                                           "MNIST files in torchvision's layout, or builtin: scikit-image's bundled "
                                           "photos, for smoke tests only.")] = "builtin",
    preset: Annotated[Preset, typer.Option(help="Attack budget: smoke (2 CPU cores, minutes), default (a GPU at "
                                                "224 px), paper.")] = Preset.smoke,
    input_size: Annotated[int | None, typer.Option(min=11, help="Image size (default: the preset's cap or the "
                                                                "model's own size, whichever is smaller).")] = None,
    points: Annotated[str, typer.Option(help="all, or comma-separated z of the profile's partition points and "
                                             "point names (the table's after column).")] = "all",
    cuts: Annotated[Cuts, typer.Option(help="clean: the profile's partition points; all: also He et al.'s points "
                                            "just before each activation and pooling.")] = Cuts.clean,
    attack: Annotated[Attack, typer.Option(help="inverse-net: a decoder trained on the attacker's images; rmle: "
                                                "white-box optimisation of the input.")] = Attack.inverse_net,
    weights: Annotated[str | None, typer.Option(help="Target weights, as for `edgeprof profile`.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "auto",
    output: Annotated[Path, typer.Option("--output", "-o", help="OUTDIR for leakage.csv, leakage.json and the "
                                                                "pictures.")] = Path("leakage"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue a run from OUTDIR's checkpoints.")] = False,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the data split, crops and target init.")] = 0,
    decoder_seed: Annotated[int, typer.Option(min=0, help="Seed of the attack: decoder init and batch order.")] = 0,
    repeats: Annotated[int | None, typer.Option(min=1, help="Decoders trained per point, with different seeds; "
                                                            "their spread widens the interval (default: the "
                                                            "preset's).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Override the preset's training steps per point.")] = None,
    train_images: Annotated[int | None, typer.Option(min=1, help="Override the preset's attacker images.")] = None,
    ssim_weight: Annotated[float, typer.Option(min=0, help="Add this x (1 - SSIM) to the decoder's MSE loss.")] = 0.0,
    rmle_iterations: Annotated[int | None, typer.Option(min=1, help="rmle: optimisation steps per image (default: "
                                                                    "the preset's, up to twice that at the deepest "
                                                                    "point).")] = None,
    rmle_tv_weight: Annotated[float | None, typer.Option(min=0, help="rmle: weight of the total-variation prior "
                                                                     "(default: 0.05 at the input, rising to 0.2 at "
                                                                     "the deepest point).")] = None,
    rmle_learning_rate: Annotated[float | None, typer.Option(help="rmle: Adam's learning rate "
                                                                 "(default 0.05).")] = None,
    normalize: Annotated[str, typer.Option(help="How the victim normalises [0, 1] images before the model: "
                                                "imagenet, cifar10, mnist, unit ([-1, 1]), none, weights (the "
                                                "torchvision weights' own), or M,M,M/S,S,S.")] = "imagenet",
    small_images: Annotated[SmallImages, typer.Option(help="Images smaller than the input size: upscale them (with "
                                                           "a warning) or skip them.")] = SmallImages.upscale,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: torch's current count).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Train inversion attacks at each partition point and write an SSIM leakage table with pictures."""
    from edgeprof.inversion.leakage import LeakageRequest, run_leakage
    from edgeprof.inversion.report import point_label
    from edgeprof.stats import format_interval

    request = LeakageRequest(model, output, data, preset.value, input_size, points, attack.value, weights, device,
                             seed, resume, steps, train_images, ssim_weight, threads, decoder_seed, repeats,
                             normalize, small_images.value, cuts.value, rmle_iterations, rmle_tv_weight,
                             rmle_learning_rate)
    with _progress(quiet) as progress:
        tasks: dict[str, Any] = {}

        def report(label: str, done: int, total: int) -> None:
            key = "points" if label == "points" else "steps"
            if key not in tasks:
                tasks[key] = progress.add_task(label, total=total)
            progress.update(tasks[key], description=label, completed=done, total=total)

        result = run_leakage(request, report)
    if quiet:
        return
    meta = result.metadata
    console.print(f"[bold]{model}[/bold] ({meta['model']['weights']}) at {meta['model']['input_size']} px, "
                  f"{attack.value}, {preset.value} preset, data: {meta['data']['source']}"
                  + (" (smoke-test source)" if meta["data"]["smoke_test_only"] else ""))
    for warning in meta["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    table = Table(title=f"Leakage (SSIM; the dataset-mean image scores {meta['baseline_ssim']:.3f})")
    for column in ("z", "after", "feature", "SSIM", "95% interval", "decoder sd", "PSNR dB", "normalised", "> 0.3"):
        table.add_column(column, justify="left" if column in ("after", "feature") else "right")
    for row in result.rows:
        psnr = "" if row["psnr_mean"] is None else f"{row['psnr_mean']:.1f}"
        spread = "" if row.get("ssim_repeats_sd") is None else f"{row['ssim_repeats_sd']:.3f}"
        after = row["after"] or "(input)"
        table.add_row(str(row["z"]) if row["z"] is not None else "", after if row["z"] is not None else
                      f"{after} ({point_label(row)})", row["feature_shape"], f"{row['ssim_mean']:.3f}",
                      format_interval(row["ssim_ci95_low"], row["ssim_ci95_high"], 3), spread, psnr,
                      f"{row['leakage_norm']:.3f}", f"{row['share_ssim_above_0_3']:.2f}")
    console.print(table)
    console.print(f"wrote {output}/leakage.csv, leakage.json, reconstructions.png, leakage_curve.png")


@app.command("devices")
def devices_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the compute devices and energy sensors found here, with the reason for each one that is not."""
    from edgeprof.profiler.energy import probe_sensors
    from edgeprof.profiler.measure import compute_devices

    if as_json:
        print(json.dumps({"devices": [{"device": name, "available": available, "detail": detail}
                                      for name, available, detail in compute_devices()],
                          "sensors": [{"sensor": status.kind, "available": status.available, "detail": status.detail}
                                      for status in probe_sensors()]}, indent=1))
        return
    table = Table(title="Compute devices")
    for column in ("device", "status", "detail"):
        table.add_column(column)
    for name, available, detail in compute_devices():
        table.add_row(name, "available" if available else "unavailable", detail)
    console.print(table)
    table = Table(title="Energy sensors (--energy)")
    for column in ("sensor", "status", "detail"):
        table.add_column(column)
    for status in probe_sensors():
        table.add_row(status.kind, "available" if status.available else "unavailable", status.detail)
    console.print(table)


@app.command("calibrate")
def calibrate_command(
    files: Annotated[list[Path], typer.Argument(help="Measured profiles of one device.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the summary as JSON.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Summarise measured profiles of one device: its effective FLOP/s and joules per FLOP."""
    from edgeprof.profiler.calibrate import calibrate
    from edgeprof.profiler.schema import load_profile

    _check_suffix(output, ".json")
    if output:
        check_writable(output)
    summary = calibrate({str(path): load_profile(path) for path in files})
    if output:
        write_json_atomic(output, summary)
    for warning in summary["warnings"]:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)
    if as_json:
        print(json_text(summary), end="")
    if as_json or quiet:
        return
    device = summary["device"]
    table = Table(title=f"{device['kind']} {device['name']}")
    for column in ("model", "input", "dtype", "GFLOPs", "latency ms", "GFLOP/s", "pJ/FLOP"):
        table.add_column(column, justify="left" if column in ("model", "input", "dtype") else "right")
    for row in summary["profiles"]:
        per_flop = row["joules_per_flop"]
        table.add_row(row["model"], _shape(row["input_shape"]), row["dtype"], f"{row['flops'] / 1e9:.3f}",
                      f"{row['latency_ms']:.3f}", f"{row['flops_per_s'] / 1e9:.2f}",
                      "" if per_flop is None else f"{per_flop * 1e12:.3f}")
    console.print(table)
    console.print(f"median: {summary['flops_per_s_median'] / 1e9:.2f} GFLOP/s"
                  + (f", {summary['joules_per_flop_median'] * 1e12:.3f} pJ/FLOP"
                     if summary["joules_per_flop_median"] is not None else ", no energy measured"), highlight=False)
    if summary["latency_fit"]:
        fit = summary["latency_fit"]
        console.print(f"fit latency = {fit['overhead_s'] * 1e3:.3f} ms + FLOPs / ({fit['flops_per_s'] / 1e9:.2f} "
                      "GFLOP/s)", highlight=False)


class SplitObjective(str, Enum):
    latency = "latency"
    energy = "energy"
    privacy = "privacy"
    weighted = "weighted"


def _split_link(uplink: str | None, downlink: str | None, rtt: str, tx_power: str, sweep: str | None,
                points: int) -> tuple[Link, list[float] | None]:
    """The link of --uplink (or a template for the sweep) and the sweep's rates, parsed before any work."""
    from edgeprof.optimize.split_advisor import log_spaced
    from edgeprof.sim.split import Link
    from edgeprof.units import parse_bitrate, parse_bitrate_range, parse_duration, parse_power

    if uplink is None and sweep is None:
        raise EdgeprofError("give the link's rate: --uplink RATE (e.g. 20Mbps), or --sweep-uplink LOW:HIGH")
    rates = log_spaced(*parse_bitrate_range(sweep, "--sweep-uplink"), points) if sweep else None
    link = Link(
        uplink_bps=parse_bitrate(uplink, "--uplink") if uplink else rates[0],
        downlink_bps=parse_bitrate(downlink, "--downlink") if downlink else None,
        rtt_s=parse_duration(rtt, "--rtt"),
        tx_power_w=parse_power(tx_power, "--tx-power"),
    )
    return link, rates


def _split_constraints(max_latency: str | None, max_energy: str | None, max_leakage: float | None) -> Constraints:
    from edgeprof.optimize.split_advisor import Constraints
    from edgeprof.units import parse_duration, parse_energy

    return Constraints(
        max_latency_s=parse_duration(max_latency, "--max-latency") if max_latency else None,
        max_energy_j=parse_energy(max_energy, "--max-energy") if max_energy else None,
        max_leakage=max_leakage,
    )


def _after(cost: PointCost) -> str:
    return cost.after or "(input)"


def _print_split_points(problem: SplitProblem, advice: SplitAdvice) -> None:
    from edgeprof.optimize.split_advisor import constraint_excess, pareto_dimensions
    from edgeprof.units import format_bitrate, format_duration, format_energy

    link = advice.link
    console.print(f"link: uplink {format_bitrate(link.uplink_bps)}, downlink {format_bitrate(link.result_downlink_bps)}"
                  f", RTT {format_duration(link.rtt_s)}, tx power {link.tx_power_w:.3g} W", highlight=False)
    pareto = set(advice.pareto_z)
    table = Table(title="Partition points: latency = device + upload + RTT + edge + download (z = L: device only)")
    columns = ["z", "after", "upload", "device ms", "upload ms", "edge ms", "download ms", "latency ms"]
    columns += (["device mJ"] if problem.has_energy else []) + (["SSIM"] if problem.has_leakage else []) + [""]
    for column in columns:
        table.add_column(column, justify="left" if column in ("after", "") else "right")
    for cost in advice.costs:
        marks = (["best"] if cost.z == advice.best.z else []) + (["pareto"] if cost.z in pareto else [])
        marks += ["over limit"] if constraint_excess(cost, advice.constraints) else []
        row = [str(cost.z), _after(cost), _bytes(cost.upload_bytes)]
        row += [f"{getattr(cost, name) * 1e3:.3f}" for name in ("device_s", "upload_s", "edge_s", "download_s",
                                                                 "latency_s")]
        row += [f"{cost.device_energy_j * 1e3:.3f}"] if problem.has_energy else []
        row += [f"{cost.leakage:.3f}"] if problem.has_leakage else []
        table.add_row(*row, ", ".join(marks))
    console.print(table)
    best = advice.best
    parts = [f"latency {format_duration(best.latency_s)}"]
    parts += [f"device energy {format_energy(best.device_energy_j)}"] if best.device_energy_j is not None else []
    parts += [f"leakage (SSIM) {best.leakage:.3g}"] if best.leakage is not None else []
    where = f"after {best.after}" if best.after else "the input"
    console.print(f"[bold]best for {advice.objective}: z={best.z} ({where})[/bold]: {', '.join(parts)}",
                  highlight=False)
    dimensions = {"latency_s": "latency", "device_energy_j": "device energy", "leakage": "leakage"}
    names = ", ".join(dimensions[name] for name in pareto_dimensions(advice.costs))
    console.print(f"Pareto front of ({names}): z = {', '.join(map(str, advice.pareto_z))}", highlight=False)


def _print_split_sweep(problem: SplitProblem, sweep: UplinkSweep) -> None:
    from edgeprof.units import format_bitrate, format_duration

    link = sweep.links[0]
    downlink = "downlink = uplink" if link.downlink_bps is None else f"downlink {format_bitrate(link.downlink_bps)}"
    table = Table(title=f"Best point ({sweep.objective}) by uplink rate; {downlink}, RTT {format_duration(link.rtt_s)}")
    columns = ["uplink", "best z", "after", "latency ms"] + (["device mJ"] if problem.has_energy else [])
    for column in columns + (["SSIM"] if problem.has_leakage else []):
        table.add_column(column, justify="left" if column == "after" else "right")
    for each, best in zip(sweep.links, sweep.best, strict=True):
        if best is None:
            table.add_row(format_bitrate(each.uplink_bps), "-", "no point meets the limits", *[""] * (len(columns) - 3))
            continue
        row = [format_bitrate(each.uplink_bps), str(best.z), _after(best), f"{best.latency_s * 1e3:.3f}"]
        row += [f"{best.device_energy_j * 1e3:.3f}"] if problem.has_energy else []
        row += [f"{best.leakage:.3f}"] if problem.has_leakage else []
        table.add_row(*row)
    console.print(table)


@app.command("split")
def split_command(
    device_profile: Annotated[Path, typer.Argument(help="Profile of the model on the device (edgeprof profile "
                                                        "--measure, or a static one with --device-flops).")],
    edge_profile: Annotated[Path, typer.Argument(help="Profile of the same model, input size and dtype on the edge "
                                                      "server.")],
    uplink: Annotated[str | None, typer.Option(
        metavar="RATE", help="Uplink rate, e.g. 20Mbps (bits) or 2.5MB/s (bytes); needed unless --sweep-uplink "
                             "is given.")] = None,
    downlink: Annotated[str | None, typer.Option(
        metavar="RATE", help="Rate the result comes back at (default: the uplink rate).")] = None,
    rtt: Annotated[str, typer.Option(
        metavar="TIME", help="Round-trip time, paid once by every point that offloads.")] = "0ms",
    objective: Annotated[SplitObjective, typer.Option(help="What to minimise: latency, device energy, leakage "
                                                           "(privacy), or a weighted sum.")] = SplitObjective.latency,
    weights: Annotated[str | None, typer.Option(
        "--objective-weights", "--weights", metavar="WEIGHTS",
        help="With --objective weighted: weights per second, joule and SSIM, e.g. latency=1,energy=0.5,privacy=2 "
             "(--weights is the old spelling).")] = None,
    max_latency: Annotated[str | None, typer.Option(
        metavar="TIME", help="Only points whose end-to-end latency is at most this, e.g. 100ms.")] = None,
    max_energy: Annotated[str | None, typer.Option(
        metavar="ENERGY", help="Only points whose device energy is at most this, e.g. 50mJ.")] = None,
    max_leakage: Annotated[float | None, typer.Option(
        metavar="SSIM", help="Only points whose leakage (SSIM) is at most this.")] = None,
    batch: Annotated[int | None, typer.Option(min=1, help="Inputs per request (default: the profiles' batch; from "
                                                          "batch-1 profiles, scaled linearly).")] = None,
    tx_power: Annotated[str, typer.Option(
        metavar="POWER", help="Radio transmit power while uploading: W, mW or dBm.")] = "0.2W",
    device_flops: Annotated[str | None, typer.Option(
        metavar="SPEED", help="Device speed, e.g. 50GFLOPS: device latency = FLOPs / speed instead of the profile's "
                              "numbers.")] = None,
    edge_flops: Annotated[str | None, typer.Option(
        metavar="SPEED", help="Edge speed, e.g. 1.5TFLOPS: edge latency = FLOPs / speed instead of the profile's "
                              "numbers.")] = None,
    sweep_uplink: Annotated[str | None, typer.Option(
        metavar="LOW:HIGH", help="e.g. 1Mbps:1Gbps: the best point at log-spaced uplink rates.")] = None,
    sweep_points: Annotated[int, typer.Option(min=2, help="Rates in --sweep-uplink.")] = 25,
    plot: Annotated[Path | None, typer.Option(help="PNG: latency of every point against the uplink rate with "
                                                   "--sweep-uplink, else each point's latency parts.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the advice as JSON.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Where to split a model for one device, one edge server and one link (Neurosurgeon's question)."""
    from edgeprof.optimize import split_advisor as advisor
    from edgeprof.profiler.schema import load_profile
    from edgeprof.sim.split import build_split_problem
    from edgeprof.units import parse_flop_rate

    _check_suffix(output, ".json")
    _check_suffix(plot, ".png", "--plot")
    for path in (output, plot):
        if path is not None:
            check_writable(path)
    link, rates = _split_link(uplink, downlink, rtt, tx_power, sweep_uplink, sweep_points)
    constraints = _split_constraints(max_latency, max_energy, max_leakage)
    weight_map = advisor.parse_weights(weights) if weights else None
    advisor.objective_weights(objective.value, weight_map)  # a bad objective/weights pair fails before reading files
    problem = build_split_problem(
        load_profile(device_profile), load_profile(edge_profile), batch=batch,
        device_flops_per_s=parse_flop_rate(device_flops, "--device-flops") if device_flops else None,
        edge_flops_per_s=parse_flop_rate(edge_flops, "--edge-flops") if edge_flops else None,
    )
    advice = advisor.advise(problem, link, objective.value, weight_map, constraints) if uplink else None
    sweep = advisor.sweep_uplink(problem, rates, link, objective.value, weight_map, constraints) if rates else None
    outputs = {path: kind for path, kind in ((output, "json"), (plot, "png")) if path is not None}
    with atomic_outputs(*outputs) as temporaries:  # both files or neither
        for kind, tmp in zip(outputs.values(), temporaries, strict=True):
            if kind == "json":
                tmp.write_text(json_text(advisor.split_report(problem, advice, sweep)), encoding="utf-8")
            else:
                figure = (advisor.sweep_figure(problem, sweep) if sweep is not None
                          else advisor.advice_figure(problem, advice))
                advisor.save_png(figure, tmp)
    if quiet:
        return
    model = problem.model
    console.print(f"[bold]{model['name']}[/bold]  input {_shape(model['input_shape'])} {model['dtype']}  batch "
                  f"{problem.batch}", highlight=False)
    console.print("basis: " + "; ".join(f"{name.replace('_', ' ')}: {basis}" for name, basis in problem.basis.items()),
                  highlight=False, markup=False)
    for name, why in problem.missing.items():
        console.print(f"{name.replace('_', ' ')} unavailable: {why}", highlight=False, markup=False)
    console.print("; ".join(problem.notes), highlight=False, markup=False)
    if advice is not None:
        _print_split_points(problem, advice)
    if sweep is not None:
        _print_split_sweep(problem, sweep)


def _listing_command(listing: Callable[[], str]) -> type:
    """A command class whose `--help` ends with `listing()`, computed only when the help is shown (the
    registries it reads may import heavy modules)."""
    from typer.core import TyperCommand

    class ListingCommand(TyperCommand):
        def format_epilog(self, ctx: Any, formatter: Any) -> None:
            super().format_epilog(ctx, formatter)
            with formatter.section("Choices"):
                formatter.write_text(listing())

    return ListingCommand


def _solver_listing() -> str:
    from edgeprof.optimize.solve import solvers_for
    from edgeprof.sim.systems import system_names

    return "\n".join(f"{system}: {', '.join(solvers_for(system)) or 'none'}" for system in system_names())


def _trainer_listing() -> str:
    from edgeprof.rl.trainers import trainers

    return ", ".join(trainers())


def _load(scenario: str, overrides: list[str] | None):
    """The scenario and its checked workload."""
    from edgeprof.sim.evaluation import load_workload
    from edgeprof.sim.scenario import load_scenario

    loaded = load_scenario(scenario, overrides)
    return loaded, load_workload(loaded)


SCENARIO_HELP = "A preset (`edgeprof scenario list`) or a scenario TOML file."
SET_HELP = "section.field=value (TOML syntax); repeatable."


@app.command("solve", cls=_listing_command(_solver_listing))
def solve_command(
    solver: Annotated[str | None, typer.Option(help="A solver of the scenario's system (see Choices).")] = None,
    scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    slots: Annotated[int, typer.Option(min=1, help="Slots per seed.")] = 100,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (one episode each).")] = "0,1,2,3,4",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write per-seed rows as CSV (or JSON: "
                                                                      "*.json).")] = None,
    list_solvers: Annotated[bool, typer.Option("--list", help="List the solvers of every system and exit.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run a solver (heuristic, optimizer, exact) of the scenario's system over several seeds: mean and 95%
    interval of each metric."""
    from edgeprof.optimize.solve import get_solver, run_solver, solvers_for
    from edgeprof.sim.evaluation import parse_seeds
    from edgeprof.sim.systems import system_names

    if list_solvers:
        for system in system_names():
            for info in solvers_for(system).values():
                print(f"{system:6s} {info.name:14s} {info.description}")
        return
    if solver is None:
        raise EdgeprofError("give --solver NAME (see `edgeprof solve --list`)")
    _check_suffix(output, (".csv", ".json"))
    if output:
        check_writable(output)
    seed_list = parse_seeds(seeds)
    loaded, workload = _load(scenario, overrides)
    get_solver(loaded.system_name, solver)
    with _progress(quiet) as bar:
        task = bar.add_task(f"{solver}: seeds", total=len(seed_list))
        rows = run_solver(solver, loaded, workload, slots, seed_list,
                          lambda done, total: bar.update(task, completed=done, total=total))
    if output:
        _write_rows(output, rows)
    if not quiet:
        _print_summary(f"{solver} on {scenario}: {slots} slots x {len(seed_list)} seeds (mean, 95% interval)", rows,
                       loaded.system, as_json)


def _print_summary(title: str, rows: list[dict[str, Any]], system: Any, as_json: bool = False) -> None:
    """The mean and 95% interval over seeds of every reported metric (`edgeprof solve`, `edgeprof evaluate`);
    with `as_json`, that summary and the per-seed rows as JSON."""
    from edgeprof.sim.evaluation import summarise
    from edgeprof.stats import format_interval

    summary = summarise(rows, system.metrics, system.bounded_metrics, system.rate_trials)
    if as_json:
        intervals = {key: {"mean": mean, "ci95_low": low, "ci95_high": high, "n": n}
                     for key, (mean, low, high, n) in summary.items()}
        print(json_text({"title": title, "summary": intervals, "rows": rows}), end="")
        return
    table = Table(title=title)
    for column in ("metric", "mean", "95% interval"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, (mean, low, high, n) in summary.items():
        if mean is None:
            table.add_row(key, "undefined", "no seed defines it")
        else:
            table.add_row(key, f"{mean:.4g}", format_interval(low, high) + (f" (n = {n})" if n < len(rows) else ""))
    console.print(table)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Per-seed rows as CSV, or as a JSON list when the file is named *.json."""
    import pandas as pd

    from edgeprof.files import atomic_output, non_finite

    where = non_finite(rows)
    if where is not None:
        raise EdgeprofError(f"refusing to write {path}: a metric is not finite ({where}); the scenario's numbers "
                            "overflow the simulator")
    if path.suffix.lower() == ".json":
        write_json_atomic(path, rows)
        return
    with atomic_output(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


@app.command("train", cls=_listing_command(_trainer_listing))
def train_command(
    algorithm: Annotated[str | None, typer.Argument(help="A trainer (see Choices, or --list).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="RUNDIR: config.json, log.csv, "
                                                                      "checkpoints/.")] = None,
    scenario: Annotated[str | None, typer.Option(help=SCENARIO_HELP + " Default: the default preset of the "
                                                      "trainer's system.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    iterations: Annotated[int, typer.Option(min=1, help="Total iterations (seed 001: 1000).")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of everything: networks, actions, episodes.")] = 0,
    slots: Annotated[int | None, typer.Option(min=1, help="Slots per iteration in each environment (the trainer's "
                                                          "default: seed 001's is 200).")] = None,
    envs: Annotated[int | None, typer.Option(min=1, help="Environments stepped together (batched; the trainer's "
                                                         "default).")] = None,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Iterations between checkpoints.")] = 10,
    hyperparameters: Annotated[list[str] | None, typer.Option(
        "--hparam", help="NAME=VALUE: any setting of the trainer's configuration (learning_rate, multiplier_lr, "
                         "epochs, ...) or GROUP.NAME of a nested group (policy.user_hidden); repeatable.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUNDIR from its checkpoint (the same "
                                                          "command line; --iterations may grow).")] = False,
    list_trainers: Annotated[bool, typer.Option("--list", help="List the trainers and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Train a learning method (HC-MAPPO-L and its ablations, ...) through its system's simulator; resumable."""
    from edgeprof.rl.runs import train
    from edgeprof.rl.trainers import get_trainer, trainers

    if list_trainers:
        found = list(trainers().values())
        system_width, name_width = (max(len(getattr(info, key)) for info in found) for key in ("system", "name"))
        for info in found:
            print(f"{info.system:{system_width}s}  {info.name:{name_width}s}  {info.description}")
        return
    if algorithm is None or output is None:
        raise EdgeprofError("give an ALGORITHM and -o RUNDIR (see `edgeprof train --list`)")
    info = get_trainer(algorithm)
    settings = {"iterations": iterations, "seed": seed, "checkpoint_every": checkpoint_every,
                **({"slots_per_iteration": slots} if slots is not None else {}),
                **({"num_envs": envs} if envs is not None else {}),
                **info.hyperparameters(hyperparameters or [])}
    try:
        config = info.make_config(**settings)
    except TypeError as error:
        raise EdgeprofError(f"{algorithm} does not take these settings: {error}") from None
    if scenario is None:
        from edgeprof.sim.systems import get_system

        scenario = get_system(info.system).default_preset
        if scenario is None:
            raise EdgeprofError(f"system {info.system} ships no preset: give --scenario FILE.toml")
    loaded, workload = _load(scenario, overrides)
    with _progress(quiet) as bar:
        task = bar.add_task(f"{algorithm}: training", total=iterations)

        def report(done: int, total: int, row: dict[str, Any]) -> None:
            bar.update(task, completed=done, description=f"{algorithm}: {info.summary(row)}")

        rows = train(config, loaded, workload, output, resume=resume, scenario_name=scenario, progress=report)
    if not quiet:
        console.print(f"{algorithm}: {rows[-1]['iteration']} iterations in {output}; last iteration: "
                      f"{info.summary(rows[-1])}", highlight=False)


@app.command("evaluate")
def evaluate_command(
    rundir: Annotated[Path, typer.Argument(help="A run of `edgeprof train`.")],
    episodes: Annotated[int | None, typer.Option(min=1, help="Evaluate on seeds 0..N-1 (default 5).")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds instead (one episode each; the same "
                                                   "seeds as `edgeprof solve` give the same episodes).")] = None,
    slots: Annotated[int, typer.Option(min=1, help="Slots per episode.")] = 100,
    sample: Annotated[bool, typer.Option("--sample", help="Draw every layer's actions from the policies, as in "
                                                         "training, instead of taking the most probable (each "
                                                         "episode's draws seeded by its seed).")] = False,
    draw: Annotated[str | None, typer.Option(help="Comma-separated action layers that draw their actions (seed "
                                                  "001: deployment, user, allocation); the others act "
                                                  "greedily.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write per-seed rows as CSV (or JSON: "
                                                                      "*.json).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run a trained run's policies greedily (or drawing their actions: every layer's, `--sample`, or some,
    `--draw`) through the simulator: the metrics of `edgeprof solve`."""
    from edgeprof.rl.runs import evaluate_run, load_run
    from edgeprof.sim.evaluation import parse_seeds

    if episodes is not None and seeds is not None:
        raise EdgeprofError("give --episodes or --seeds, not both")
    if sample and draw is not None:
        raise EdgeprofError("give --sample or --draw, not both")
    run = load_run(rundir)
    layers = run.trainer.layers if sample else tuple(name.strip() for name in (draw or "").split(",") if name.strip())
    if draw is not None and not layers:
        raise EdgeprofError(f"--draw needs at least one layer: {', '.join(run.trainer.layers)}")
    seed_list = parse_seeds(seeds) if seeds is not None else list(range(episodes or 5))
    _check_suffix(output, (".csv", ".json"))
    if output:
        check_writable(output)
    with _progress(quiet) as bar:
        task = bar.add_task(f"{run.algorithm}: seeds", total=len(seed_list))
        rows = evaluate_run(rundir, slots, seed_list, lambda done, total: bar.update(task, completed=done), layers)
    if output:
        _write_rows(output, rows)
    if not quiet:
        mode = ("greedy" if not layers else "sampled" if set(layers) == set(run.trainer.layers)
                else f"{', '.join(layers)} drawn")
        _print_summary(f"{run.algorithm} ({rundir}) on {run.scenario_name or 'its scenario'}, {mode}: {slots} slots "
                       f"x {len(seed_list)} seeds (mean, 95% interval)", rows, run.scenario.system, as_json)


@app.command("plot")
def plot_command(
    rundirs: Annotated[list[Path], typer.Argument(help="One or more runs of `edgeprof train`, drawn together.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The PNG (default: "
                                                                      "FIRST_RUNDIR/training.png).")] = None,
    smooth: Annotated[int, typer.Option(min=1, help="Moving average over this many iterations.")] = 10,
    by_algorithm: Annotated[bool, typer.Option("--by-algorithm", help="One line per algorithm: the mean of its "
                                               "runs (seeds) with a 95% interval band, up to the iteration all "
                                               "of them have reached.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Training curves in the layout the runs' trainer declares (seed 001: Fig. 5, tau-bar on the delay panel)."""
    from edgeprof.rl.curves import plot_training
    from edgeprof.rl.runs import load_run

    for rundir in rundirs:
        load_run(rundir)
    path = output or rundirs[0] / "training.png"
    _check_suffix(path, ".png")
    check_writable(path)
    plot_training(rundirs, path, smooth, by_algorithm)
    if not quiet:
        console.print(f"wrote {path}", highlight=False)


scenario_app = typer.Typer(help="Scenarios of every system (TOML): presets, files, fields.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("show")
def scenario_show_command(
    scenario: Annotated[str, typer.Argument(help=SCENARIO_HELP)] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Print a scenario as documented TOML: a starting point for your own scenario file."""
    from edgeprof.sim.scenario import load_scenario, to_toml

    print(to_toml(load_scenario(scenario, overrides)), end="")


@scenario_app.command("list")
def scenario_list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """List the systems and the shipped presets."""
    from edgeprof.sim.scenario import preset_document, preset_names
    from edgeprof.sim.systems import get_system, system_names

    if as_json:
        print(json.dumps({"systems": [{"name": name, "default_preset": get_system(name).default_preset,
                                       "description": get_system(name).description} for name in system_names()],
                          "presets": [{"name": name, "base": preset_document(name).get("base")}
                                      for name in preset_names()]}, indent=1))
        return
    table = Table(title="Systems")
    for column in ("system", "default preset", "description"):
        table.add_column(column)
    for name in system_names():
        system = get_system(name)
        table.add_row(name, system.default_preset or "", system.description)
    console.print(table)
    presets = Table(title="Presets (--scenario NAME)")
    for column in ("preset", "base"):
        presets.add_column(column)
    for name in preset_names():
        presets.add_row(name, preset_document(name).get("base", ""))
    console.print(presets)


@app.command("simulate", cls=_listing_command(_solver_listing))
def simulate_command(
    scenario: Annotated[str, typer.Option(help=SCENARIO_HELP)] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
    policy: Annotated[str, typer.Option("--solver", "--policy", help="A solver of the scenario's system (see "
                                        "Choices; seed 001's baselines: section V-A, README); --policy is the old "
                                        "spelling.")] = "random",
    slots: Annotated[int, typer.Option(min=1, help="Slots to simulate.")] = 100,
    envs: Annotated[int, typer.Option(min=1, help="Independent environments run in parallel (batched).")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the system draws and of the random policy.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the metrics as JSON.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run one policy through one episode of the scenario's system, fed by real profiles, and report every
    metric (all requests, and successful ones where the system tells them apart)."""
    from edgeprof.optimize.solve import get_solver

    _check_suffix(output, ".json")
    if output:
        check_writable(output)
    loaded, workload = _load(scenario, overrides)
    info = get_solver(loaded.system_name, policy)
    prepared = info.prepare(loaded) if info.prepare else loaded
    with _progress(quiet) as bar:
        task = bar.add_task(f"simulating {policy}", total=slots)
        metrics = loaded.system.run_episode(prepared, workload, info.make, slots, seed, envs,
                                            lambda done: bar.update(task, completed=done))
    report = {"scenario": scenario, "overrides": overrides or [], "policy": policy, "seed": seed, **metrics}
    if output:
        write_json_atomic(output, report)
    if as_json:
        print(json_text(report), end="")
    if quiet or as_json:
        return
    table = Table(title=f"{policy} on {scenario} ({loaded.system_name}): {slots} slots x {envs} environment(s), "
                        f"seed {seed}")
    with_success = any(f"{name}_success" in metrics for name in loaded.system.metrics)
    for column in ("metric", "all requests", *(("successful requests",) if with_success else ())):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in loaded.system.metrics:
        success = metrics.get(f"{name}_success")
        cells = [f"{metrics[name]:.4g}", *(("" if success is None else f"{success:.4g}",) if with_success else ())]
        table.add_row(name, *cells)
    console.print(table)


trace_app = typer.Typer(help="Mobility traces for the foci system (README: the trace CSV).", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


@trace_app.command("porto")
def trace_porto_command(
    source: Annotated[Path, typer.Argument(help="Kaggle's Porto taxi train.csv (POLYLINE of [lon, lat] fixes, 15 s).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The trace CSV to write (device,t_s,lat,lon).")],
    box: Annotated[str | None, typer.Option(help="lat_min,lat_max,lon_min,lon_max to keep (default: a 2.5 km^2 "
                                                 "square of downtown Porto).")] = None,
    max_trips: Annotated[int | None, typer.Option(min=1, help="Stop after this many trips.")] = None,
) -> None:
    """Convert Porto's taxi trajectories into a trace CSV (`mobility.source = "trace"`)."""
    from edgeprof.sim.mobility import PORTO_DOWNTOWN, convert_porto

    check_writable(output)
    try:
        bounds = PORTO_DOWNTOWN if box is None else tuple(float(part) for part in box.split(","))
    except ValueError:
        raise EdgeprofError(f"--box must be four numbers lat_min,lat_max,lon_min,lon_max, got {box!r}") from None
    count = convert_porto(source, output, bounds, max_trips)
    console.print(f"wrote {count} trips to {output}", highlight=False)


data_app = typer.Typer(help="The shipped profiles of the papers' model zoo.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("build")
def data_build_command(
    models: Annotated[str | None, typer.Option(help="Comma-separated models (default: the whole shipped zoo).")] = None,
    workdir: Annotated[Path, typer.Option(help="Leakage runs and their checkpoints (a rerun resumes).")] = Path(
        "edgeprof-data-work"),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the profiles (default: "
                                                                      "the installed package's data).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for the leakage attacks.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the leakage attacks.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Profile the papers' model zoo and attach a leakage table to each profile (hours on a laptop CPU)."""
    from edgeprof.data.build import SHIPPED_MODELS, BuildSettings, build_one, check_build

    names = SHIPPED_MODELS if models is None else tuple(name.strip() for name in models.split(",") if name.strip())
    settings = BuildSettings(names, output, workdir, seed=seed, threads=threads)
    check_build(settings)
    for name in names:
        with _progress(quiet) as bar:
            task = bar.add_task(name, total=None)

            def report(label: str, done: int, total: int, model: str = name, task: Any = task) -> None:
                bar.update(task, description=f"{model}: {label}", completed=done, total=total)

            path = build_one(name, settings, report)
        if not quiet:
            console.print(f"{name}: wrote {path}", highlight=False)


experiment_app = typer.Typer(help="The papers' experiments as resumable sweeps (serial, process pool or Ray).",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("list")
def experiment_list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the experiments: paper, what they vary, their methods and the runs of each budget."""
    from dataclasses import asdict

    from edgeprof.experiments.definitions import EXPERIMENTS
    from edgeprof.experiments.sweep import plan

    if as_json:
        print(json.dumps([asdict(experiment) for experiment in EXPERIMENTS.values()], indent=1))
        return
    table = Table(title="Experiments (edgeprof experiment run NAME --budget smoke|paper -o OUTDIR)")
    for column in ("name", "reference", "varies", "methods", "runs: smoke / paper"):
        table.add_column(column)
    for experiment in EXPERIMENTS.values():
        runs = " / ".join(str(len(plan(experiment, budget))) for budget in ("smoke", "paper"))
        table.add_row(experiment.name, experiment.reference, experiment.vary or "(one setting)",
                      str(len(experiment.methods)), runs)
    console.print(table)


class Backend(str, Enum):
    serial = "serial"
    process = "process"
    ray = "ray"


class Budget(str, Enum):
    smoke = "smoke"
    paper = "paper"


@experiment_app.command("run")
def experiment_run_command(
    name: Annotated[str, typer.Argument(help="An experiment (`edgeprof experiment list`).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="OUTDIR: runs/, results.csv, experiment.json.")],
    budget: Annotated[Budget, typer.Option(help="smoke: a laptop in minutes; paper: the paper's budget (a "
                                                "cluster).")] = Budget.smoke,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated replicate seeds, as in `edgeprof solve` "
                                                   "(default: 0..N-1 for the budget's N).")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated subset of the experiment's methods.")] = None,
    backend: Annotated[Backend, typer.Option(help="Where runs execute.")] = Backend.serial,
    workers: Annotated[int, typer.Option(min=1, help="Processes (process) or CPUs (local ray).")] = 2,
    address: Annotated[str | None, typer.Option(help="A Ray cluster's address (ray backend; default: a local "
                                                     "one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs and what is done; run nothing.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUTDIR: skip finished runs, retry failed ones, "
                                                          "resume unfinished training from its checkpoint.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run an experiment's sweep (method x varied value x seed) into OUTDIR; resumable, any backend."""
    from edgeprof.experiments.backends import make_backend
    from edgeprof.experiments.definitions import get_experiment
    from edgeprof.experiments.sweep import plan, run_experiment, run_id, state
    from edgeprof.sim.evaluation import parse_seeds

    experiment = get_experiment(name)
    chosen = None if methods is None else [item.strip() for item in methods.split(",") if item.strip()]
    seed_list = None if seeds is None else parse_seeds(seeds)
    planned = plan(experiment, budget.value, seed_list, chosen)
    if address is not None and backend is not Backend.ray:
        raise EdgeprofError("--address is for the ray backend: add --backend ray")
    if dry_run:
        done = state(output, planned)
        finished, failed = set(done.finished), set(done.failed)
        for config in planned:
            identifier = run_id(config)
            status = "done" if identifier in finished else "failed" if identifier in failed else "to run"
            value = "" if config["vary"] is None else f" {config['vary']}={json.dumps(config['value'])}"
            print(f"{identifier}  {config['method']['name']:18s} seed {config['seed']}{value}  {status}")
        print(f"{len(planned)} runs, {len(done.pending)} to run", file=sys.stderr)
        return
    runner = make_backend(backend.value, workers, address)
    with _progress(quiet) as bar:
        task = bar.add_task(f"{name}: runs", total=None)

        def report(done: int, total: int, result: dict[str, Any]) -> None:
            bar.update(task, completed=done, total=total)

        summary = run_experiment(name, output, budget.value, seed_list, chosen, runner, resume, report)
    for failure in summary["failed"]:
        err_console.print(f"warning: run {failure['id']} failed: {failure['error']} (see "
                          f"{output}/runs/{failure['id']}/error.json; --resume retries it)", highlight=False,
                          markup=False)
    if not quiet:
        console.print(f"{name}: {summary['finished']} of {summary['planned']} runs finished "
                      f"({summary['ran']} run now, {len(summary['failed'])} failed); {output}/results.csv",
                      highlight=False)


@experiment_app.command("report")
def experiment_report_command(
    outdir: Annotated[Path, typer.Argument(help="An experiment's OUTDIR.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Write OUTDIR/report.md (measured beside the paper's numbers) and OUTDIR/report.png (the figure)."""
    from edgeprof.experiments.report import report_experiment

    markdown_path, figure_path = report_experiment(outdir)
    if not quiet:
        console.print(f"wrote {markdown_path} and {figure_path}", highlight=False)


def _is_click_exception(error: BaseException) -> bool:
    """Click's usage errors, whether typer uses click itself or its own vendored copy of it."""
    return any(cls.__name__ == "ClickException" for cls in type(error).__mro__)


OLD_SPELLINGS = {("split", "--weights"): "--objective-weights", ("simulate", "--policy"): "--solver"}  # one release


def _notice_old_spellings(argv: list[str]) -> None:
    """One line on stderr for each option this release renamed (the old spelling still works)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    for (name, old), new in OLD_SPELLINGS.items():
        if command == name and any(arg == old or arg.startswith(old + "=") for arg in argv):
            err_console.print(f"edgeprof: note: {name} {old} is now {new}; {old} goes in the next release",
                              highlight=False, markup=False)


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary files are removed and locks released on the way out."""
    raise KeyboardInterrupt


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"edgeprof: error: {message}", highlight=False, markup=False)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app and turn user errors into one line and exit code 2: edgeprof's own refusals, and
    what the outside world can do to any command (an unreadable or non-UTF-8 file, a full disk, no memory)."""
    with contextlib.suppress(ValueError):  # only the main thread may set handlers (tests may call from others)
        signal.signal(signal.SIGTERM, _terminate)
    _notice_old_spellings(sys.argv[1:])
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n
    except EdgeprofError as error:
        _fail(str(error))
    except UnicodeDecodeError as error:
        _fail(f"a file is not UTF-8 text ({error.reason} at byte {error.start}): is it the right file?")
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        _fail(f"{where}{error.strerror or error}")
    except MemoryError:
        _fail("out of memory: make the input, scenario or batch smaller")
    except typer.Abort:  # click's form of Ctrl-C (and of SIGTERM, through `_terminate`)
        _fail("interrupted", 130)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    except Exception as error:
        if not _is_click_exception(error):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":  # plain `edgeprof`: the help is the answer
            print(error.format_message())
            sys.exit(0)
        err_console.print(f"edgeprof: error: {error.format_message()}", highlight=False, markup=False)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
