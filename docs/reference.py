"""Print the README's command reference from the command line itself (the text `--help` prints), so that it
stays true: `python docs/reference.py` and paste the output under "## Command reference"."""

from __future__ import annotations

import typer.main

from edgeprof.cli import app

# the reference's order: profiling first, then systems, then experiments
ORDER = ["models", "profile", "devices", "calibrate", "validate", "leakage", "split", "data build",
         "scenario list", "scenario show", "trace porto", "simulate", "solve", "train", "evaluate", "plot",
         "experiment list", "experiment run", "experiment report"]
# printed once above the tables instead of in every one
COMMON = {"--quiet": "`-q, --quiet` (nothing but errors)", "--json": "`--json` (JSON instead of tables)"}
METAVARS = {"<int range>": "INT", "<int>": "INT", "<float range>": "FLOAT", "<str>": "TEXT", "<path>": "PATH",
            "<list[str]>": "TEXT", "<list[Path]>": "PATH"}


def _flat(text: str | None) -> str:
    return " ".join((text or "").split())


def _cell(text: str) -> str:
    return _flat(text).replace("|", "\\|")


def _find(root, path: str):
    """The click command at `path` and its context (help records need one)."""
    import typer._click as click

    command, context = root, click.Context(root, info_name="edgeprof")
    for part in path.split():
        command = command.get_command(context, part)
        context = click.Context(command, info_name=part, parent=context)
    return command, context


def _options(command) -> list:
    return [parameter for parameter in command.params
            if parameter.param_type_name == "option" and "--help" not in parameter.opts]


def reference() -> str:
    root = typer.main.get_command(app)
    option_names = {path: {name for option in _options(_find(root, path)[0]) for name in option.opts} for path in ORDER}
    having = [f"{text} on " + ", ".join(f"`{path}`" for path in ORDER if option in option_names[path])
              for option, text in COMMON.items()]
    lines = ["; ".join(having) + ". The tables below leave these two out.", ""]
    for path in ORDER:
        command, context = _find(root, path)
        options = [option for option in _options(command) if not set(COMMON) & set(option.opts)]
        arguments = " ".join(
            parameter.name.upper() + ("..." if parameter.nargs == -1 else "") if parameter.required
            else f"[{parameter.name.upper()}]"
            for parameter in command.params if parameter.param_type_name == "argument")
        purpose = _flat(command.help).split(". ")[0].rstrip(".") + "."
        if type(command).__name__ == "ListingCommand":
            lister = "train" if path == "train" else "solve"
            purpose += f" The choices of every system: `edgeprof {lister} --list` (or this command's `--help`)."
        parts = ["edgeprof", path, "[OPTIONS]" if option_names[path] else "", arguments]
        usage = " ".join(part for part in parts if part)
        lines += [f"### `{usage}`", purpose, ""]
        if options:
            lines += ["| option | meaning |", "|---|---|"]
            for option in options:
                names, meaning = option.get_help_record(context)
                for raw, plain in METAVARS.items():
                    names = names.replace(raw, plain)
                lines.append(f"| `{_cell(names.replace('<', '{').replace('>', '}'))}` | {_cell(meaning)} |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())
