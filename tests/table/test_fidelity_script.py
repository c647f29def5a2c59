"""``benchmarks/fidelity.py`` on the table tests' known table: its rows are ``compare_tables``'."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from nasfcn.table import compare_tables, load


@pytest.fixture(scope="module")
def fidelity_script(load_script) -> ModuleType:
    return load_script("fidelity")


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
