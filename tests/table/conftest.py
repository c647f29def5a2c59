"""A small tabulation written through the store's public writes, with known numbers: no training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from nasfcn.genotype import Genotype
from nasfcn.space import parse_space
from nasfcn.store import Store, open_store

#: Eight architectures: skip x upsample x attention at a fixed tiny encoder.
SPACE_YAML = """\
# eight networks for the table tests
name: bench8
input: {channels: 3, min_size: 32}
encoder: {stages: 3, width: 8, max_width: 32, kernel_size: 3, downsample: maxpool}
skip: {choices: [none, fcn8s]}
upsample: {choices: [bilinear, transposed]}
attention: {type: {choices: [none, se]}, where: decoder}
"""
SEEDS = 2
EPOCHS = 2
CLASSES = ["background", "circle", "square"]
DATASET = "shapes"
FAILED = (7, 1)  # (architecture index, seed): this run fails after its first epoch


def miou(arch: int, seed: int, epoch: int) -> float:
    """The known val mIoU of every run: architectures apart by 0.05, seeds by 0.01, epochs by 0.1."""
    return round(0.2 + 0.05 * arch + 0.01 * seed + 0.1 * epoch, 6)


def latency(arch: int, seed: int) -> float:
    return 5.0 + arch % 3 + 0.5 * seed


@dataclass(frozen=True)
class Tabulation:
    store: Store
    name: str
    genotypes: tuple[Genotype, ...]  # in plan order; index = the arch index of ``miou``


def genotypes() -> tuple[Genotype, ...]:
    return tuple(parse_space(SPACE_YAML).iter_genotypes(include_train=False))


def cost(arch: int, seed: int) -> dict[str, object]:
    return {
        "params": 1000 * (arch + 1),
        "flops": 50_000 * (arch + 1),
        "latency_ms": latency(arch, seed),
        "peak_memory_mb": 3.0,
        "device": "cpu",
        "input_shape": [1, 3, 64, 64],
    }


def metrics(
    arch: int, seed: int, epoch: int, value_of: Callable[[int, int, int], float] = miou
) -> dict[str, object]:
    value = value_of(arch, seed, epoch)
    return {
        "val_miou": value,
        "val_pixel_accuracy": value + 0.1,
        "val_per_class_iou": [value + 0.05, value, value - 0.05],
        "train_loss": 1.0 / epoch + arch / 100,
        "seconds": 2.0 + arch,
    }


def write_tabulation(
    writer: type,
    store: Store,
    name: str = "t8",
    kind: str = "table",
    finish: bool = True,
    value_of: Callable[[int, int, int], float] = miou,
) -> Tabulation:
    """Every architecture x seed x epoch valued by ``value_of`` (``miou``); the run ``FAILED`` fails.
    Unfinished (``finish=False``): run (0, 1) never started and run (3, 0) is still running.
    ``writer``: the suite's ``HandTabulation`` (fixture ``hand_tabulation``)."""
    tables = writer(
        "bench8",
        SPACE_YAML,
        SEEDS,
        EPOCHS,
        cost,
        partial(metrics, value_of=value_of),
        dataset=DATASET,
        classes=tuple(CLASSES),
        config={"image_size": 64, "train_samples": 32, "sample": None},
    )
    unfinished = frozenset() if finish else frozenset({(3, 0)})
    skipped = frozenset() if finish else frozenset({(0, 1)})
    tables.write(store, name, failed=FAILED, kind=kind, skipped=skipped, unfinished=unfinished)
    return Tabulation(store, name, genotypes())


@pytest.fixture
def store(db_url: str, store_tracker: list) -> Store:
    """The table's database: every test that reads one runs on SQLite and on PostgreSQL."""
    return open_store(db_url)


@pytest.fixture
def tabulation(store: Store, hand_tabulation: type) -> Tabulation:
    return write_tabulation(hand_tabulation, store)


@pytest.fixture
def table_file(tabulation: Tabulation, tmp_path: Path) -> Path:
    from nasfcn.table import export_table

    return export_table(tabulation.store, tabulation.name, tmp_path / "t8.parquet")


@pytest.fixture
def arch_index(tabulation: Tabulation) -> Callable[[int], str]:
    return lambda i: tabulation.genotypes[i].arch_id


@pytest.fixture
def known(hand_tabulation: type) -> SimpleNamespace:
    """The fixture table's known numbers and helpers (conftest modules are not importable)."""
    return SimpleNamespace(
        SPACE_YAML=SPACE_YAML,
        SEEDS=SEEDS,
        EPOCHS=EPOCHS,
        CLASSES=CLASSES,
        FAILED=FAILED,
        miou=miou,
        latency=latency,
        write_tabulation=partial(write_tabulation, hand_tabulation),
        genotypes=genotypes(),
    )
