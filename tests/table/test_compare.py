"""Two tables of one space: their rank agreement against a direct computation on known numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.table import TableError, compare_tables, export_table, load

#: The second table ranks the eight architectures in this order (index = the first's rank).
ORDER = (2, 0, 1, 3, 7, 5, 6, 4)


@pytest.fixture
def second_file(known, tabulation, tmp_path: Path) -> Path:
    def shuffled(arch: int, seed: int, epoch: int) -> float:
        return known.miou(ORDER[arch], seed, epoch)

    known.write_tabulation(tabulation.store, "t8b", value_of=shuffled)
    return export_table(tabulation.store, "t8b", tmp_path / "t8b.parquet")


def test_rank_agreement_equals_scipy_on_the_known_orders(known, table_file: Path, second_file: Path) -> None:
    first, second = load(table_file), load(second_file)
    agreement = compare_tables(first, second)
    # the first table's means rise with the architecture's index (seeds and the failed run's
    # missing epoch move them by less than one step of 0.05); the second's follow ORDER
    ranks = {arch: i for i, arch in enumerate(first.archs())}
    plan = sorted(first.archs(), key=lambda arch: first.mean(arch))
    x = [plan.index(arch) for arch in sorted(ranks)]
    y = [ORDER[i] for i in x]
    assert agreement.n == 8
    assert agreement.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert agreement.kendall == pytest.approx(stats.kendalltau(x, y).statistic)
    assert agreement.spearman_low <= agreement.spearman <= agreement.spearman_high
    # the top 10% of eight is one architecture: the first's best (7) is 4th in the second
    assert agreement.top10_overlap == 0.0
    assert agreement.epoch_first == agreement.epoch_second == known.EPOCHS


def test_itself_agrees_fully_and_an_early_epoch_costs_its_share(known, table_file: Path) -> None:
    table = load(table_file)
    agreement = compare_tables(table, table, epoch_second=1)
    assert agreement.spearman == pytest.approx(1.0)
    assert agreement.top10_overlap == 1.0
    # every epoch takes 2 + arch seconds; run (7, 1) failed after its first epoch
    per_seed = sum(2.0 + arch for arch in range(8))
    runs = 8 * known.SEEDS
    assert agreement.seconds_first == pytest.approx((per_seed * known.SEEDS * known.EPOCHS - 9.0) / runs)
    assert agreement.seconds_second == pytest.approx(per_seed * known.SEEDS / runs)
    assert agreement.cost_ratio == pytest.approx(agreement.seconds_second / agreement.seconds_first)


def test_tables_of_different_spaces_or_a_bad_epoch_are_refused(table_file: Path) -> None:
    table, other = load(table_file), load(table_file)
    other.facts["space_hash"] = "0" * 16
    with pytest.raises(TableError, match="compare tables of one space"):
        compare_tables(table, other)
    with pytest.raises(TableError, match="no epoch 5; epochs: 1 to 2"):
        compare_tables(table, table, epoch_second=5)


def test_the_command_prints_and_writes_the_figures(table_file: Path, second_file: Path, tmp_path) -> None:
    out = tmp_path / "agreement.json"
    result = CliRunner().invoke(
        app, ["tabulate", "compare", str(table_file), str(second_file), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "8 architectures in both" in result.output
    figures = json.loads(out.read_text())
    assert figures["n"] == 8
    assert figures["spearman"] == pytest.approx(compare_tables(load(table_file), load(second_file)).spearman)
    result = CliRunner().invoke(
        app, ["tabulate", "compare", str(table_file), str(second_file), "--epoch-second", "9"]
    )
    assert result.exit_code == 2
    assert "no epoch 9" in result.output
