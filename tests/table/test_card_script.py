"""``benchmarks/tables/card.py`` on the table tests' known tables: the card's figures and regime."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nasfcn.table import load


@pytest.fixture(scope="module")
def card(load_script) -> ModuleType:
    return load_script("tables/card")


def test_the_card_states_the_table_its_icc_and_the_agreement_of_two(
    card: ModuleType, table_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["card.py", str(table_file), str(table_file)])
    card.main()
    out = capsys.readouterr().out
    assert "8 architectures of `bench8` x 2 seeds x 2 epochs = 16 runs (1 failed)" in out
    assert "regime: image_size 64, train_samples 32, lr 0.003, batch_size 16, epochs 2" in out
    assert "**ICC(1) = " in out
    assert out.count("| upsample | ") == 4  # two values in the knob table, once per table
    assert "| 8 | 1.000 [" in out  # a table agrees with itself


def test_training_knobs_the_space_fixes_are_the_regime_not_the_recipe(
    card: ModuleType, table_file: Path
) -> None:
    table = load(table_file)
    fixed = {
        arch: dataclasses.replace(
            table.genotype(arch), train=dataclasses.replace(table.genotype(arch).train, lr=0.01, batch_size=8)
        )
        for arch in table.archs()
    }
    table.genotype = fixed.__getitem__  # type: ignore[method-assign]
    regime = card._regime(table)
    assert "lr 0.01 (fixed by the space), batch_size 8 (fixed by the space)" in regime
    assert "0.003" not in regime
