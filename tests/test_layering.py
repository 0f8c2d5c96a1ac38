"""The architecture's rules, kept by tests: data flows one way between the packages (DESIGN.md), and the
simulators and optimizers load without torch or cvxpy (a scenario loads and a heuristic runs without them)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import edgeprof

PACKAGE = Path(edgeprof.__file__).parent
BASE = {"errors", "files", "units", "stats"}  # leaf modules every package may use
ALLOWED = {
    "errors": set(),
    "files": {"errors"},
    "units": {"errors"},
    "stats": {"errors"},
    "profiler": BASE,
    "inversion": BASE | {"profiler"},
    "data": BASE | {"profiler", "inversion"},
    "sim": BASE | {"profiler", "data"},
    "optimize": BASE | {"profiler", "data", "sim"},
    "rl": BASE | {"profiler", "data", "sim", "optimize"},
    "experiments": BASE | {"profiler", "inversion", "data", "sim", "optimize", "rl"},
}
FREE = {"cli", "__main__", "__init__"}  # the command line and the package root may import anything


def edgeprof_imports(path: Path) -> set[str]:
    """The top-level edgeprof packages a module imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {name.split(".")[1] for name in names if name.startswith("edgeprof.")}
    return found


def package_of(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def violations(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        package = package_of(path, root)
        if package in FREE:
            continue
        allowed = ALLOWED.get(package)
        if allowed is None:
            found.append(f"{path.relative_to(root)}: package {package} has no layering rule")
            continue
        for target in sorted(edgeprof_imports(path) - allowed - {package}):
            found.append(f"{path.relative_to(root)} imports edgeprof.{target}")
    return found


def test_packages_import_only_downstream_of_themselves():
    assert violations() == []


def test_the_rule_finds_an_upstream_import_inside_a_function(tmp_path):
    fake = tmp_path / "edgeprof"
    (fake / "optimize").mkdir(parents=True)
    (fake / "optimize" / "bad.py").write_text("def f():\n    from edgeprof.rl.lagrange import x\n")
    (fake / "newpackage").mkdir()
    (fake / "newpackage" / "a.py").write_text("")
    assert violations(fake) == ["newpackage/a.py: package newpackage has no layering rule",
                                "optimize/bad.py imports edgeprof.rl"]


HEAVY = ("torch", "cvxpy")


def _loaded_after(code: str) -> dict:
    script = f"import json, sys\n{code}\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("package", ["edgeprof.sim", "edgeprof.optimize"])
def test_simulators_and_optimizers_import_without_torch_or_cvxpy(package):
    code = (f"import importlib, pkgutil, {package} as p\n"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]")
    assert _loaded_after(code) == dict.fromkeys(HEAVY, False)


def test_solving_a_preset_with_a_heuristic_loads_neither():
    code = ("import atexit\nfrom edgeprof.cli import main\n"
            "sys.argv = ['edgeprof', 'solve', '--scenario', 'small', '--solver', 'greedy', '--slots', '1', '-q']\n"
            "try:\n    main()\nexcept SystemExit as stop:\n    assert stop.code == 0, stop.code")
    assert _loaded_after(code) == dict.fromkeys(HEAVY, False)
