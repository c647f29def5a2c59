"""``benchmarks/tune_baseline.py``: the hand-written baseline stays free of nasfcn, and its family builds."""

from __future__ import annotations

import ast
import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tune_baseline.py"


def _imported_modules(source: str) -> set[str]:
    """Every module the file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tune_baseline", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tune_baseline"] = module
    spec.loader.exec_module(module)
    return module


def test_the_baseline_imports_nothing_of_nasfcn():
    modules = _imported_modules(SCRIPT.read_text())
    assert {"ray", "ray.tune.search.optuna", "ray.tune.schedulers", "torch"} <= modules  # it is read at all
    assert not [m for m in modules if m.split(".")[0] in ("nasfcn", "leaderboard") or m.startswith(".")]


def test_the_import_check_sees_an_import_inside_a_function():
    source = "import torch\n\ndef f():\n    from nasfcn.data import load_dataset\n    import nasfcn.cli\n"
    assert {"nasfcn.data", "nasfcn.cli"} <= _imported_modules(source)


def test_every_configuration_of_its_family_segments_odd_sizes():
    baseline = _load()
    space = {**baseline.SPACE, "width": [8]}  # widths change channels, not the wiring
    for values in itertools.product(*space.values()):
        config = dict(zip(space, values, strict=True))
        model = baseline.build(config, classes=3).eval()
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 36, 44))
        assert out.shape == (1, 3, 36, 44), config
