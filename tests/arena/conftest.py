"""A small table where the answer is known, written through the store and exported: no training.

Eight architectures (the table tests' space); architecture 7 in plan order is clearly best.
Architectures lie 0.06 apart and a run's seed and epoch move it by at most 0.03, so every run
of a better architecture beats every run of a worse one at every epoch: the best single run
always belongs to the better architecture, and ASHA never stops the best one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nasfcn.genotype import Genotype
from nasfcn.space import parse_space
from nasfcn.store import open_store
from nasfcn.table import Table, export_table, load

SPACE_YAML = """\
# eight networks for the arena tests
name: arena8
input: {channels: 3, min_size: 32}
encoder: {stages: 3, width: 8, max_width: 32, kernel_size: 3, downsample: maxpool}
skip: {choices: [none, fcn8s]}
upsample: {choices: [bilinear, transposed]}
attention: {type: {choices: [none, se]}, where: decoder}
"""
SEEDS = 3
EPOCHS = 4
BEST = 7  # plan index of the clearly best architecture
FAILED = (2, 1)  # (plan index, seed) of the run that fails after one epoch in table arena8f


def miou(arch: int, seed: int, epoch: int) -> float:
    return round(0.2 + 0.06 * arch + 0.006 * seed + 0.004 * epoch, 6)


def genotypes() -> tuple[Genotype, ...]:
    return tuple(parse_space(SPACE_YAML).iter_genotypes(include_train=False))


def metrics(arch: int, seed: int, epoch: int) -> dict[str, object]:
    value = miou(arch, seed, epoch)
    return {
        "val_miou": value,
        "val_pixel_accuracy": value + 0.1,
        "train_loss": 1.0 / epoch,
        "val_per_class_iou": [value, value, value],
        "seconds": 1.0 + arch % 3,
    }


@pytest.fixture(scope="session")
def table_files(tmp_path_factory: pytest.TempPathFactory, hand_tabulation: type) -> Iterator[dict[str, Path]]:
    """The whole table, one that lacks the last architecture (same space), one with a failed run."""
    folder = tmp_path_factory.mktemp("arena")
    store = open_store(f"sqlite:///{folder / 'arena.db'}")
    tables = hand_tabulation("arena8", SPACE_YAML, SEEDS, EPOCHS, hand_tabulation.arch_cost, metrics)
    try:
        tables.write(store, "arena8")
        tables.write(store, "arena7", archs=7)
        tables.write(store, "arena8f", failed=FAILED)
        names = ("arena8", "arena7", "arena8f")
        yield {name: export_table(store, name, folder / f"{name}.parquet") for name in names}
    finally:
        store.dispose()


@pytest.fixture(scope="session")
def table(table_files: dict[str, Path]) -> Table:
    return load(table_files["arena8"])


@pytest.fixture(scope="session")
def best_arch() -> str:
    return genotypes()[BEST].arch_id


@pytest.fixture(scope="session")
def failed_run() -> tuple[str, int]:
    """(arch_id, seed) of the run that fails in table arena8f."""
    return genotypes()[FAILED[0]].arch_id, FAILED[1]


# -- a table where a lucky run fools the best-single-run export (confirmation tests) -----------------
LUCKY = 6  # plan index: one high run (seed 0), two low ones; mean 0.50
STEADY = 3  # plan index: every run 0.70; the best mean of the table
LUCKY_RUNS = (0.90, 0.30, 0.30)


def lucky_miou(arch: int, seed: int, epoch: int) -> float:
    """Final-epoch values: the lucky network's by seed, the steady one's 0.70, the rest 0.20-0.41."""
    if arch == LUCKY:
        final = LUCKY_RUNS[seed]
    elif arch == STEADY:
        final = 0.70
    else:
        final = 0.20 + 0.03 * arch + 0.01 * seed
    return round(final - 0.01 * (EPOCHS - epoch), 6)


def lucky_metrics(arch: int, seed: int, epoch: int) -> dict[str, object]:
    return {**metrics(arch, seed, epoch), "val_miou": lucky_miou(arch, seed, epoch)}


@pytest.fixture(scope="session")
def lucky_file(tmp_path_factory: pytest.TempPathFactory, hand_tabulation: type) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("arena-lucky")
    store = open_store(f"sqlite:///{folder / 'lucky.db'}")
    try:
        hand_tabulation("arena8", SPACE_YAML, SEEDS, EPOCHS, hand_tabulation.arch_cost, lucky_metrics).write(
            store, "lucky8"
        )
        yield export_table(store, "lucky8", folder / "lucky8.parquet")
    finally:
        store.dispose()


@pytest.fixture(scope="session")
def lucky_table(lucky_file: Path) -> Table:
    return load(lucky_file)


@pytest.fixture(scope="session")
def lucky_archs() -> tuple[str, str]:
    """(the lucky network's arch_id, the steady one's)."""
    return genotypes()[LUCKY].arch_id, genotypes()[STEADY].arch_id
