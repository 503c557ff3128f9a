"""The import policy (docs/DESIGN.md): the command line stays light, and the packages' arrows point one way."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "ray", "mlflow")


def test_importing_the_command_line_loads_no_torch_ray_or_mlflow():
    """`unisweep --help` must not wait seconds for these: they load only when a command needs them."""
    code = f"import sys, unisweep.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def _imports(package: str) -> set[str]:
    """Every module a package's files import (top-level or not)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def test_sweeps_imports_neither_analysis_nor_the_command_line_root():
    imported = _imports("sweeps")
    assert not {m for m in imported if m.split(".")[0] in ("analysis", "unisweep")}


def test_unified_imports_nothing_above_it():
    assert not {m for m in _imports("unified") if m.split(".")[0] in ("sweeps", "analysis", "unisweep")}
