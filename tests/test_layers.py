"""The layering of docs/architecture.md: the import contracts hold, and the torch-free modules stay so.

The contracts live in pyproject.toml ([tool.importlinter]); ``make lint`` and CI run them too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "optuna")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages and pyproject.toml under ``root``, leaving no cache behind."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=False,
    )


def _heavy_modules_after(code: str) -> list[str]:
    """Which of torch, Ray and Optuna a fresh interpreter has loaded after running ``code``."""
    report = f"import sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_refuse_a_leaderboard_that_imports_the_benchmark_runner(tmp_path: Path) -> None:
    for package in ("nasfcn", "leaderboard"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    data = tmp_path / "leaderboard" / "data.py"
    data.write_text(data.read_text() + "\n\ndef _ranks():\n    from nasfcn.benchmark import run_benchmark\n")

    result = _lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    contract = "The leaderboard reads nasfcn through the store and torch-free modules only"
    assert f"{contract} BROKEN" in result.stdout
    assert "leaderboard is not allowed to import torch" in result.stdout
    assert "leaderboard.data -> nasfcn.benchmark" in result.stdout


def test_the_contracts_refuse_a_benchmark_that_imports_a_private_search_module(tmp_path: Path) -> None:
    for package in ("nasfcn", "leaderboard"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    runner = tmp_path / "nasfcn" / "benchmark" / "_runner.py"
    private = "\n\ndef _run():\n    from nasfcn.search._tune import run_trials\n"
    runner.write_text(runner.read_text() + private)

    result = _lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    contract = "Benchmarks and the arena run through the search's public names (nasfcn.search)"
    assert f"{contract} BROKEN" in result.stdout
    assert "nasfcn.benchmark._runner -> nasfcn.search._tune" in result.stdout


@pytest.mark.parametrize(
    "module", ["nasfcn.store", "nasfcn.results", "nasfcn.space", "leaderboard.data", "leaderboard.app"]
)
def test_importing_a_torch_free_module_loads_neither_torch_ray_nor_optuna(module: str) -> None:
    assert _heavy_modules_after(f"import {module}") == []


def test_importing_the_arena_loads_no_torch() -> None:
    """The arena only looks results up: it loads Ray and Optuna (the real searchers), not torch."""
    assert "torch" not in _heavy_modules_after("import nasfcn.arena")


def test_a_training_recipe_loads_neither_torch_ray_nor_optuna() -> None:
    assert _heavy_modules_after("from nasfcn.recipe import TrainRecipe; TrainRecipe(epochs=2)") == []


def test_the_leaderboard_reads_a_benchmark_without_torch_ray_or_optuna(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    code = f"""
from leaderboard.data import load_benchmark_board
from nasfcn.store import create_search, open_store
store = open_store({url!r})
create_search(store, "cmp", "shapes", config={{"datasets": ["shapes"], "seeds": 2}}, kind="benchmark")
assert load_benchmark_board(store, "cmp").results.empty
"""
    assert _heavy_modules_after(code) == []


def test_the_torch_free_check_sees_a_module_that_imports_torch() -> None:
    assert "torch" in _heavy_modules_after("import nasfcn.model")
