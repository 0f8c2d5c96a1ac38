"""The README's set-up commands are the ones CI runs, and its Python example works."""

from __future__ import annotations

import re
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
