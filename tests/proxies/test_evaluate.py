"""score: a table's architectures scored on its own data, judged against its means."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from nasfcn.proxies import ProxyError, candidate_data, compute, correlate, minibatch, score, table_candidates
from nasfcn.table import load


def test_the_evaluations_spearman_is_scipys_on_a_hand_made_table(hand_table: tuple) -> None:
    path, genotypes, means = hand_table
    table = load(path)
    scores = score(table_candidates(table), ["params", "synflow"], batch_size=4)
    by_arch = {g.arch_id: m for g, m in zip(genotypes, means, strict=True)}
    assert scores.archs == tuple(table.archs())
    assert list(scores.quality) == [by_arch[a] for a in scores.archs]
    rows = {row.name: row for row in correlate(scores.values, scores.seconds, scores.quality)}
    for name in ("params", "synflow"):
        expected = stats.spearmanr(scores.values[name], scores.quality).statistic
        assert rows[name].spearman == pytest.approx(expected, abs=1e-12)
        assert rows[name].n == 6
        assert rows[name].seconds == pytest.approx(float(np.mean(scores.seconds[name])))


def test_each_architecture_is_scored_on_the_tables_data_with_the_seeded_batch(hand_table: tuple) -> None:
    path = hand_table[0]
    table = load(path)
    candidates = table_candidates(table)
    scores = score(candidates, ["snip"], batch_size=4, seed=2, sample=2)
    batch = minibatch(candidate_data(candidates), 4, 2)
    assert scores.image_size == (32, 32)
    assert len(scores.archs) == 2
    for arch, value in zip(scores.archs, scores.values["snip"], strict=True):
        assert value == compute(table.genotype(arch), batch, ["snip"], seed=2)["snip"].value


def test_a_sample_larger_than_the_table_is_refused(hand_table: tuple) -> None:
    with pytest.raises(ProxyError, match=r"--sample 7: there are 6 architectures; give 1 to 6"):
        score(table_candidates(load(hand_table[0])), ["params"], sample=7)


def test_a_table_without_its_data_facts_is_refused(tmp_path: Path, helpers: SimpleNamespace) -> None:
    path = helpers.write_table_file(
        tmp_path / "old.parquet", helpers.bench_genotypes(3), [0.1, 0.2, 0.3], image_size=None
    )
    with pytest.raises(
        ProxyError, match=r"old\.parquet: the table metadata lacks image_size; export it again"
    ):
        table_candidates(load(path))
