"""``benchmarks/fidelity.py`` on the table tests' known table: its rows are ``compare_tables``'."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nasfcn.table import compare_tables, load

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fidelity.py"


@pytest.fixture(scope="module")
def fidelity_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_benchmark", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fidelity_benchmark"] = module  # its dataclasses look their module up while they are built
    spec.loader.exec_module(module)
    return module


def test_every_epoch_is_ranked_against_full_training_at_its_measured_share(
    fidelity_script: ModuleType, known, table_file: Path
) -> None:
    table = load(table_file)
    rows = fidelity_script.rows(table, table, "epochs")
    assert [row.epoch for row in rows] == list(range(1, known.EPOCHS + 1))
    last = rows[-1].agreement
    assert last.spearman == pytest.approx(1.0)
    assert last.cost_ratio == pytest.approx(1.0)
    first = rows[0].agreement
    assert first == compare_tables(table, table, epoch_first=known.EPOCHS, epoch_second=1)
    assert 0 < first.cost_ratio < 1
    assert rows[0].line().startswith("| epochs | 1 | ")


def test_a_table_of_another_space_stops_the_script_with_the_reason(
    fidelity_script: ModuleType, table_file: Path
) -> None:
    table, other = load(table_file), load(table_file)
    other.facts["space_hash"] = "0" * 16
    with pytest.raises(SystemExit, match="compare tables of one space"):
        fidelity_script.rows(table, other, "other")
