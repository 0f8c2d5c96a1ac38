"""The `edgeprof` command. Thin: parse, call the Python API, render with rich, write files.

Every user error ends with exit code 2 and one line on stderr; output files are checked for writability
before any work and written atomically, so a failed run leaves none behind.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from edgeprof.errors import EdgeprofError
from edgeprof.files import check_writable

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
    console.print(
        f"[bold]{model['name']}[/bold] ({model['source']}, weights: {model['weights']})  "
        f"input {_shape(model['input_shape'])} {model['dtype']}  params {model['params']:,} "
        f"({_bytes(model['param_bytes'])})"
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

    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as progress:
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

    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as progress:
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
    dtype: Annotated[Dtype, typer.Option(help="Parameter and activation dtype.")] = Dtype.float32,
    cuts: Annotated[Cuts, typer.Option(help="clean: single-tensor cuts after each computational layer; all: "
                                            "also the multi-tensor cuts inside blocks.")] = Cuts.clean,
    verify_cuts: Annotated[bool, typer.Option("--verify-cuts", help="Run prefix then suffix at every point "
                                                                    "and check the model's output.")] = False,
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
    leakage: Annotated[Path | None, typer.Option(help="Attach this leakage.csv (from `edgeprof leakage`) to the "
                                                      "partition points.")] = None,
) -> None:
    """Count FLOPs, parameters and activation bytes of every layer and partition point of MODEL; with
    --measure, also its latency and energy on this machine."""
    from edgeprof.profiler.measure import MeasureSettings
    from edgeprof.profiler.models import load_model
    from edgeprof.profiler.schema import write_profile
    from edgeprof.profiler.static import analyze, static_profile
    from edgeprof.profiler.timing import resolve_device

    layers_csv = csv.with_name(csv.stem + ".layers.csv") if csv else None
    for path in (output, csv, layers_csv, plot):
        if path is not None:
            check_writable(path)
    sensor = (None, None)
    if measure:  # a missing GPU or sensor is an error before any work
        from edgeprof.profiler.energy import open_meter

        sensor = open_meter(energy.value, str(resolve_device(device)))
    try:
        loaded = load_model(model, weights, input_size, batch, dtype.value, device="meta")
        analysis = analyze(loaded, cuts.value)
        runnable = None
        if verify_cuts or measure:
            runnable = load_model(model, weights, input_size, batch, dtype.value, device="cpu", seed=seed)
        if verify_cuts:
            _verify(analysis, runnable, seed, quiet)
        if measure:
            settings = MeasureSettings(device, energy.value, warmup, repeats, threads, seed=seed)
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
    if output:
        write_profile(profile, output)
    if csv:
        _write_csvs(profile, csv, layers_csv)
    if plot:
        from edgeprof.profiler.plot import plot_tradeoff

        plot_tradeoff(profile, plot)
    if not quiet:
        _print_profile(profile, top)


def _write_csvs(profile: dict[str, Any], points_path: Path, layers_path: Path) -> None:
    from edgeprof.files import atomic_output
    from edgeprof.profiler.tables import layers_frame, points_frame

    with atomic_output(points_path) as tmp:
        points_frame(profile).to_csv(tmp, index=False)
    with atomic_output(layers_path) as tmp:
        layers_frame(profile).to_csv(tmp, index=False)


@app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Profile JSON files to check.")],
) -> None:
    """Check profile files against the edgeprof.profile/1 schema and its invariants."""
    from edgeprof.profiler.schema import load_profile

    for path in files:
        profile = load_profile(path)
        console.print(f"{path}: valid {profile['schema']} ({profile['model']['name']}, "
                      f"{len(profile['partition_points'])} partition points)")


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


def _interval(low: float | None, high: float | None) -> str:
    return "n = 1" if low is None else f"{low:.3f}-{high:.3f}"


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
    from edgeprof.inversion.report import point_label, write_outputs

    request = LeakageRequest(model, output, data, preset.value, input_size, points, attack.value, weights, device,
                             seed, resume, steps, train_images, ssim_weight, threads, decoder_seed, repeats,
                             normalize, small_images.value, cuts.value)
    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def report(label: str, done: int, total: int) -> None:
            key = "points" if label == "points" else "steps"
            if key not in tasks:
                tasks[key] = progress.add_task(label, total=total)
            progress.update(tasks[key], description=label, completed=done, total=total)

        result = run_leakage(request, report)
    write_outputs(result, Path(output))
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
                      _interval(row["ssim_ci95_low"], row["ssim_ci95_high"]), spread, psnr,
                      f"{row['leakage_norm']:.3f}", f"{row['share_ssim_above_0_3']:.2f}")
    console.print(table)
    console.print(f"wrote {output}/leakage.csv, leakage.json, reconstructions.png, leakage_curve.png")


@app.command("devices")
def devices_command() -> None:
    """List the compute devices and energy sensors found here, with the reason for each one that is not."""
    from edgeprof.profiler.energy import probe_sensors
    from edgeprof.profiler.measure import compute_devices

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
) -> None:
    """Summarise measured profiles of one device: its effective FLOP/s and joules per FLOP."""
    from edgeprof.files import write_text_atomic
    from edgeprof.profiler.calibrate import calibrate
    from edgeprof.profiler.schema import load_profile

    if output:
        check_writable(output)
    summary = calibrate({str(path): load_profile(path) for path in files})
    if output:
        write_text_atomic(output, json.dumps(summary, indent=1) + "\n")
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
        metavar="WEIGHTS", help="With --objective weighted: weights per second, joule and SSIM, e.g. "
                                "latency=1,energy=0.5,privacy=2.")] = None,
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
    from edgeprof.files import write_text_atomic
    from edgeprof.optimize import split_advisor as advisor
    from edgeprof.profiler.schema import load_profile
    from edgeprof.sim.split import build_split_problem
    from edgeprof.units import parse_flop_rate

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
    if output:
        write_text_atomic(output, json.dumps(advisor.split_report(problem, advice, sweep), indent=1) + "\n")
    if plot:
        if sweep is not None:
            advisor.plot_sweep(problem, sweep, plot)
        else:
            advisor.plot_advice(problem, advice, plot)
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


@app.command("solve")
def solve_command(
    solver: Annotated[str | None, typer.Option(help="A solver from --list.")] = None,
    scenario: Annotated[str, typer.Option(help="paper, small, or a scenario TOML file.")] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="section.field=value (TOML syntax); "
                                                                      "repeatable.")] = None,
    slots: Annotated[int, typer.Option(min=1, help="Slots per seed.")] = 100,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds (one episode each).")] = "0,1,2,3,4",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write per-seed rows as CSV.")] = None,
    list_solvers: Annotated[bool, typer.Option("--list", help="List the solvers and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run a solver through the simulator over several seeds: mean and 95% interval of each metric."""
    from edgeprof.optimize.solve import SOLVERS, parse_seeds, run_solver

    if list_solvers:
        for info in SOLVERS.values():
            print(f"{info.name:14s} {info.description}")
        return
    if solver is None:
        raise EdgeprofError("give --solver NAME (see `edgeprof solve --list`)")
    if solver not in SOLVERS:
        raise EdgeprofError(f"unknown solver {solver!r}: `edgeprof solve --list` shows the solvers")
    if output:
        check_writable(output)
    from edgeprof.sim.scenario import load_scenario
    from edgeprof.sim.workload import load_service_table

    loaded = load_scenario(scenario, overrides)
    table = load_service_table(loaded)
    seed_list = parse_seeds(seeds)
    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as bar:
        task = bar.add_task(f"{solver}: seeds", total=len(seed_list))
        rows = run_solver(solver, loaded, table, slots, seed_list,
                          lambda done, total: bar.update(task, completed=done, total=total))
    if output:
        _write_rows_csv(output, rows)
    if not quiet:
        _print_summary(f"{solver} on {scenario}: {slots} slots x {len(seed_list)} seeds (mean, 95% interval)", rows)


def _print_summary(title: str, rows: list[dict[str, Any]]) -> None:
    """The mean and 95% interval over seeds of every reported metric (`edgeprof solve`, `edgeprof evaluate`)."""
    from edgeprof.optimize.solve import summarise

    table = Table(title=title)
    for column in ("metric", "mean", "95% interval"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, (mean, low, high) in summarise(rows).items():
        table.add_row(key, f"{mean:.4g}", f"{low:.4g} .. {high:.4g}")
    console.print(table)


def _write_rows_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from edgeprof.files import atomic_output

    with atomic_output(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


@app.command("train")
def train_command(
    algorithm: Annotated[str, typer.Argument(help="hc-mappo-l, h-mappo, h-ippo, hc-ippo-l or heuristic-mappo-l.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="RUNDIR: config.json, log.csv, checkpoints/.")],
    scenario: Annotated[str, typer.Option(help="paper, small, or a scenario TOML file.")] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="section.field=value (TOML syntax); "
                                                                      "repeatable.")] = None,
    iterations: Annotated[int, typer.Option(min=1, help="Total iterations (seed 001: 1000).")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of everything: networks, actions, episodes.")] = 0,
    slots: Annotated[int, typer.Option(min=1, help="Slots per iteration in each environment (seed 001: "
                                                   "200).")] = 200,
    envs: Annotated[int, typer.Option(min=1, help="Environments stepped together (batched).")] = 8,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Iterations between checkpoints.")] = 10,
    hyperparameters: Annotated[list[str] | None, typer.Option(
        "--hparam", help="NAME=VALUE: any TrainConfig setting (learning_rate, multiplier_lr, epochs, ...) or "
                         "policy.NAME for a network size; repeatable.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue RUNDIR from its checkpoint (the same "
                                                          "command line; --iterations may grow).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Train HC-MAPPO-L or one of its ablations (seed 001) through the simulator; resumable."""
    from edgeprof.rl.hc_mappo_l import make_config, parse_hyperparameters, train
    from edgeprof.sim.scenario import load_scenario
    from edgeprof.sim.workload import load_service_table

    config = make_config(algorithm, iterations=iterations, seed=seed, slots_per_iteration=slots, num_envs=envs,
                         checkpoint_every=checkpoint_every, **parse_hyperparameters(hyperparameters or []))
    loaded = load_scenario(scenario, overrides)
    table = load_service_table(loaded)
    tau = loaded["system.delay_constraint_s"]
    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as bar:
        task = bar.add_task(f"{algorithm}: training", total=iterations)

        def report(done: int, total: int, row: dict[str, Any]) -> None:
            bar.update(task, completed=done, description=f"{algorithm}: cost {row['cost']:.4g}, delay "
                                                         f"{row['delay_s']:.3g} s (tau-bar {tau:g}), lambda "
                                                         f"{row['multiplier']:.3g}")

        rows = train(config, loaded, table, output, resume=resume, scenario_name=scenario, progress=report)
    if quiet:
        return
    last = rows[-1]
    console.print(f"{algorithm}: {last['iteration']} iterations in {output}; last iteration: cost {last['cost']:.4g}, "
                  f"delay {last['delay_s']:.4g} s (tau-bar {tau:g} s), energy {last['energy_j']:.4g} J, privacy "
                  f"{last['privacy_cost']:.4g}, success rate {last['success_rate']:.3f}, lambda "
                  f"{last['multiplier']:.4g}", highlight=False)


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
    draw: Annotated[str | None, typer.Option(help="Comma-separated layers that draw their actions (deployment, user, "
                                                  "allocation); the others act greedily.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write per-seed rows as CSV.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run a trained run's policies greedily (or drawing their actions: every layer's, `--sample`, or some,
    `--draw`) through the simulator: the metrics of `edgeprof solve`."""
    from edgeprof.optimize.solve import parse_seeds
    from edgeprof.rl.hc_mappo_l import LAYERS, evaluate_run, load_run

    if episodes is not None and seeds is not None:
        raise EdgeprofError("give --episodes or --seeds, not both")
    if sample and draw is not None:
        raise EdgeprofError("give --sample or --draw, not both")
    layers = LAYERS if sample else tuple(name.strip() for name in (draw or "").split(",") if name.strip())
    if draw is not None and not layers:
        raise EdgeprofError("--draw needs at least one layer: deployment, user or allocation")
    seed_list = parse_seeds(seeds) if seeds is not None else list(range(episodes or 5))
    if output:
        check_writable(output)
    config, _, scenario_name = load_run(rundir)
    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as bar:
        task = bar.add_task(f"{config.algorithm}: seeds", total=len(seed_list))
        rows = evaluate_run(rundir, slots, seed_list, lambda done, total: bar.update(task, completed=done), layers)
    if output:
        _write_rows_csv(output, rows)
    if not quiet:
        mode = "greedy" if not layers else "sampled" if set(layers) == set(LAYERS) else f"{', '.join(layers)} drawn"
        _print_summary(f"{config.algorithm} ({rundir}) on {scenario_name or 'its scenario'}, {mode}: {slots} slots x "
                       f"{len(seed_list)} seeds (mean, 95% interval)", rows)


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
    """Training curves in the layout of seed 001's Fig. 5 (tau-bar drawn on the delay panel)."""
    from edgeprof.rl.curves import plot_training
    from edgeprof.rl.hc_mappo_l import load_run

    for rundir in rundirs:
        load_run(rundir)
    path = output or rundirs[0] / "training.png"
    check_writable(path)
    plot_training(rundirs, path, smooth, by_algorithm)
    if not quiet:
        console.print(f"wrote {path}", highlight=False)


scenario_app = typer.Typer(help="Scenarios of seed 001's edge system (TOML).", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("show")
def scenario_show_command(
    scenario: Annotated[str, typer.Argument(help="paper, small, or a TOML file.")] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="section.field=value (TOML syntax); "
                                                                      "repeatable.")] = None,
) -> None:
    """Print a scenario as documented TOML: a starting point for your own scenario file."""
    from edgeprof.sim.scenario import load_scenario, to_toml

    print(to_toml(load_scenario(scenario, overrides).fields), end="")


@app.command("simulate")
def simulate_command(
    scenario: Annotated[str, typer.Option(help="paper, small, or a scenario TOML file.")] = "paper",
    overrides: Annotated[list[str] | None, typer.Option("--set", help="section.field=value (TOML syntax); "
                                                                      "repeatable.")] = None,
    policy: Annotated[str, typer.Option(help="random, local-only, edge-only, greedy, neurosurgeon or lru (seed 001 "
                                             "section V-A; README).")] = "random",
    slots: Annotated[int, typer.Option(min=1, help="Slots to simulate.")] = 100,
    envs: Annotated[int, typer.Option(min=1, help="Independent environments run in parallel (batched).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the system draws and of the random policy.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the metrics as JSON.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Run a policy through seed 001's edge system fed by real profiles and report delay, energy, privacy, cost."""
    from edgeprof.files import write_text_atomic
    from edgeprof.optimize.heuristics import make_policy
    from edgeprof.sim.env import EdgeSystem
    from edgeprof.sim.rollout import run_policy
    from edgeprof.sim.scenario import load_scenario
    from edgeprof.sim.workload import load_service_table

    if output:
        check_writable(output)
    loaded = load_scenario(scenario, overrides)
    chosen = make_policy(policy, seed)
    system = EdgeSystem(loaded, load_service_table(loaded), envs, seed)
    with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as bar:
        task = bar.add_task(f"simulating {policy}", total=slots)
        metrics = run_policy(system, chosen, slots, lambda done: bar.update(task, completed=done))
    report = {"scenario": scenario, "overrides": overrides or [], "policy": policy, "seed": seed, **metrics}
    if output:
        write_text_atomic(output, json.dumps(report, indent=1) + "\n")
    if quiet:
        return
    table = Table(title=f"{policy} on {scenario}: J={loaded['system.num_servers']}, K={loaded['system.num_users']}, "
                        f"I={loaded.num_services}, {slots} slots x {envs} environment(s), seed {seed}")
    for column in ("metric", "all requests", "successful requests"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, label in (("delay_s", "delay (s)"), ("energy_j", "energy (J)"), ("privacy_cost", "privacy cost"),
                        ("cost", "cost (mu1 C_priv + mu2 e)")):
        success = metrics[f"{name}_success"]
        table.add_row(label, f"{metrics[name]:.4g}", "" if success is None else f"{success:.4g}")
    table.add_row("success rate", f"{metrics['success_rate']:.3f}", "")
    console.print(table)
    met = "met" if metrics["delay_constraint_met"] else "violated"
    console.print(f"long-term delay constraint {metrics['delay_constraint_s']} s: {met}", highlight=False)


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
    from edgeprof.data.build import SHIPPED_MODELS, BuildSettings, build_one

    names = tuple(models.split(",")) if models else SHIPPED_MODELS
    settings = BuildSettings(names, output, workdir, seed=seed, threads=threads)
    for name in names:
        with Progress(console=err_console, disable=quiet or not err_console.is_terminal, transient=True) as bar:
            task = bar.add_task(name, total=None)

            def report(label: str, done: int, total: int, model: str = name, task: Any = task) -> None:
                bar.update(task, description=f"{model}: {label}", completed=done, total=total)

            path = build_one(name, settings, report)
        if not quiet:
            console.print(f"{name}: wrote {path}", highlight=False)


def _is_click_exception(error: BaseException) -> bool:
    """Click's usage errors, whether typer uses click itself or its own vendored copy of it."""
    return any(cls.__name__ == "ClickException" for cls in type(error).__mro__)


def main() -> None:
    """Entry point: run the app and turn user errors into one line and exit code 2."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n
    except EdgeprofError as error:
        err_console.print(f"edgeprof: error: {error}", highlight=False, markup=False)
        sys.exit(2)
    except (typer.Exit, typer.Abort) as stop:
        sys.exit(getattr(stop, "exit_code", 130))
    except Exception as error:
        if not _is_click_exception(error):
            raise
        if type(error).__name__ == "NoArgsIsHelpError":  # plain `edgeprof`: the help is the answer
            print(error.format_message())
            sys.exit(0)
        err_console.print(f"edgeprof: error: {error.format_message()}", highlight=False, markup=False)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
