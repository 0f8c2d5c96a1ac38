"""Shared helpers: run the CLI in-process exactly as the `edgeprof` script does."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import torch

torch.set_num_threads(1)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Call `edgeprof.cli.main` with the given arguments; return its exit code, stdout and stderr."""
    from edgeprof.cli import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["edgeprof", *map(str, args)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
