"""The README's set-up commands are the ones CI runs, and its Python example works."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_has_exactly_two_setup_commands_for_ci():
    commands = [line for line in (ROOT / "README.md").read_text().splitlines()
                if line.startswith("python3 -m venv .venv && ")]
    assert len(commands) == 2
    assert commands[0].endswith("pip install . && edgeprof profile vgg16")
    assert commands[1].endswith('pip install ".[test]" && python -m pytest -n auto')
    assert "grep -E '^python3 -m venv \\.venv && ' README.md" in (ROOT / ".ci" / "run").read_text()


def test_readme_python_example_runs(tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block, namespace)  # noqa: S102
    assert (tmp_path / "resnet18.json").is_file()
    assert namespace["best"]["z"] == len(namespace["profile"]["layers"])  # z = L uploads nothing
    assert namespace["prefix"] is not None and namespace["suffix"] is not None


def test_readme_leakage_example_is_what_the_command_prints(run_cli, tmp_path, monkeypatch):
    """The console block of the leakage section is rerun: its command must print exactly the lines shown."""
    section = (ROOT / "README.md").read_text().split("### `edgeprof leakage --model MODEL`")[1]
    block = re.search(r"```console\n(.*?)```", section, re.DOTALL).group(1).splitlines()
    command = shlex.split(block[0].removeprefix("$ "))
    shown = block[1:next(i for i, line in enumerate(block) if i and line.startswith("$ "))]
    assert command[:2] == ["edgeprof", "leakage"] and command[-2:] == ["-o", "leak/"]
    monkeypatch.setenv("COLUMNS", "120")  # a terminal wide enough for the table
    result = run_cli(*command[1:-1], tmp_path / "leak")
    assert result.code == 0, result.err
    assert result.out.replace(str(tmp_path / "leak"), "leak").splitlines() == shown
