"""``benchmarks/surrogate_variants.py``: surrogate variants replayed beside TPE + ASHA on the small table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nasfcn.arena import ArenaTable
from nasfcn.search import SEARCHERS
from nasfcn.table import load


def test_every_variant_gets_a_row_against_tpe_and_leaves_no_strategy_behind(
    load_script, table_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script("surrogate_variants", fresh=True)
    variants = ["shipped", "fidelity+whole+startup2", "kappa0"]
    args = ["--table", str(table_files["arena8"]), "--variants", ",".join(variants)]
    bench.main([*args, "--repeats", "3", "--trials", "6", "--concurrency", "2"])
    printed = capsys.readouterr()
    rows = [line for line in printed.out.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [row.split("|")[1].strip() for row in rows] == variants
    assert all(len(row.strip().strip("|").split("|")) == 8 for row in rows)
    assert "3 paired replays of 6 trials" in printed.out
    assert "12/12 replays" in printed.err  # progress on stderr: tpe and three variants, 3 each
    assert not [name for name in SEARCHERS.names() if name.startswith("surrogate-")]


class _Recording:
    """A stand-in surrogate that keeps what it was fitted on and asked about."""

    def __init__(self) -> None:
        self.fitted = np.empty((0, 0))
        self.asked = np.empty((0, 0))

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Recording:
        self.fitted = x
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.asked = x
        return np.zeros(len(x)), np.zeros(len(x))


def test_fidelity_learns_at_the_epochs_reached_and_whole_scores_every_untried_network(
    load_script, table_files: dict[str, Path]
) -> None:
    """A trial stopped after 1 epoch and one that trained 4: fitted at log 1 and log 4, every
    one of the 6 untried networks of the 8 scored at log 4."""
    bench = load_script("surrogate_variants", fresh=True)
    space = ArenaTable(load(table_files["arena8"])).space
    searcher = bench.variant_class("fidelity+whole+startup2")(space, "val_miou", "max", 0, 0)
    searcher._surrogate = recording = _Recording()
    for trial, epochs in (("t0", 1), ("t1", 4)):
        assert searcher.suggest(trial) is not None
        for epoch in range(1, epochs + 1):
            searcher.on_trial_result(trial, {"val_miou": 0.1 * epoch, "training_iteration": epoch})
        searcher.on_trial_complete(trial, {"val_miou": 0.1 * epochs, "training_iteration": epochs})
    assert searcher.suggest("t2") is not None
    assert np.allclose(recording.fitted[:, -1], np.log([1, 4]))
    assert len(recording.asked) == 6
    assert np.allclose(recording.asked[:, -1], np.log(4))
    shipped = bench.variant_class("shipped")(space, "val_miou", "max", 0, 0)
    codes = shipped._features(list(space.iter_genotypes())[:2], [1, 4])
    assert codes.shape == (2, len(shipped._encoder.columns))  # no fidelity column without the change


def test_an_unknown_change_names_the_ones_there_are(load_script) -> None:
    bench = load_script("surrogate_variants", fresh=True)
    with pytest.raises(SystemExit, match="unknown change 'fidelty'; use fidelity, whole, kappaK, startupN"):
        bench.variant_class("fidelty+whole")
