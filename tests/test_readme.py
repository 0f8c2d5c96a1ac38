"""The README's set-up commands are the ones CI runs, its Python example works, and its first console
example is what the command prints."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
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
    # what the example's comment says: at 10 Mbit/s all on the device, at 50 Mbit/s the image uploaded
    layers = len(namespace["profile"]["layers"])
    slow, fast = namespace["best"][10], namespace["best"][50]
    assert (slow.z, round(slow.latency_s, 2)) == (layers, 0.18) and layers == 10
    assert (fast.z, round(fast.latency_s, 2)) == (0, 0.11)
    assert namespace["prefix"] is not None and namespace["suffix"] is not None


def test_readme_first_console_example_is_real_output(tmp_path):
    """The tour's profile example: every line the README shows is a line the command prints ("..." elides)."""
    block = re.search(r"```console\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    command, *shown = block.splitlines()
    assert command.startswith("$ edgeprof profile ")
    result = subprocess.run([sys.executable, "-m", "edgeprof", *shlex.split(command[len("$ edgeprof "):])],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    printed = set(result.stdout.splitlines())
    assert [line for line in shown if line != "..." and line not in printed] == []
    assert (tmp_path / "resnet18.json").is_file() and (tmp_path / "resnet18.png").is_file()
