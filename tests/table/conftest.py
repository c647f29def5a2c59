"""A small tabulation written through the store's public writes, with known numbers: no training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from nasfcn.genotype import Genotype
from nasfcn.space import parse_space
from nasfcn.store import (
    Store,
    create_search,
    finish_trial,
    open_store,
    record_cost,
    record_epoch,
    set_search_status,
    upsert_trial,
)

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


def write_tabulation(
    store: Store,
    name: str = "t8",
    kind: str = "table",
    finish: bool = True,
    value_of: Callable[[int, int, int], float] = miou,
) -> Tabulation:
    """Every architecture x seed x epoch valued by ``value_of`` (``miou``); the run ``FAILED`` fails."""
    plan = genotypes()
    recipe = {"epochs": EPOCHS, "lr": 0.003, "batch_size": 16, "seed": 0}
    sid = create_search(
        store,
        name,
        DATASET,
        space_name="bench8",
        space_yaml=SPACE_YAML,
        config={
            "name": name,
            "epochs": EPOCHS,
            "seeds": SEEDS,
            "image_size": 64,
            "train_samples": 32,
            "sample": None,
            "plan_archs": [{"label": g.arch_id, "genotype": g.to_json(), "reference": None} for g in plan],
            "class_names": {DATASET: CLASSES},
        },
        recipe=recipe,
        kind=kind,
    )
    number = 0
    for seed in range(SEEDS):
        for arch, genotype in enumerate(plan):
            if not finish and (arch, seed) == (0, 1):
                continue  # never started
            trial = upsert_trial(
                store, sid, number, genotype, dataset=DATASET, recipe=recipe, status="running", seed=seed
            )
            number += 1
            record_cost(
                store,
                trial,
                {
                    "params": 1000 * (arch + 1),
                    "flops": 50_000 * (arch + 1),
                    "latency_ms": latency(arch, seed),
                    "peak_memory_mb": 3.0,
                    "device": "cpu",
                    "input_shape": [1, 3, 64, 64],
                },
            )
            for epoch in range(1, EPOCHS + 1):
                value = value_of(arch, seed, epoch)
                record_epoch(
                    store,
                    trial,
                    epoch,
                    {
                        "val_miou": value,
                        "val_pixel_accuracy": value + 0.1,
                        "val_per_class_iou": [value + 0.05, value, value - 0.05],
                        "train_loss": 1.0 / epoch + arch / 100,
                        "seconds": 2.0 + arch,
                    },
                )
                if (arch, seed) == FAILED:
                    break
            if (arch, seed) == FAILED:
                finish_trial(store, trial, "failed", error="training diverged: loss is NaN")
            elif finish or (arch, seed) != (3, 0):
                finish_trial(store, trial, "completed")
    set_search_status(store, sid, "completed")
    return Tabulation(store, name, plan)


@pytest.fixture
def store(db_url: str, store_tracker: list) -> Store:
    """The table's database: every test that reads one runs on SQLite and on PostgreSQL."""
    return open_store(db_url)


@pytest.fixture
def tabulation(store: Store) -> Tabulation:
    return write_tabulation(store)


@pytest.fixture
def table_file(tabulation: Tabulation, tmp_path: Path) -> Path:
    from nasfcn.table import export_table

    return export_table(tabulation.store, tabulation.name, tmp_path / "t8.parquet")


@pytest.fixture
def arch_index(tabulation: Tabulation) -> Callable[[int], str]:
    return lambda i: tabulation.genotypes[i].arch_id


@pytest.fixture
def known() -> SimpleNamespace:
    """The fixture table's known numbers and helpers (conftest modules are not importable)."""
    return SimpleNamespace(
        SPACE_YAML=SPACE_YAML,
        SEEDS=SEEDS,
        EPOCHS=EPOCHS,
        CLASSES=CLASSES,
        FAILED=FAILED,
        miou=miou,
        latency=latency,
        write_tabulation=write_tabulation,
        genotypes=genotypes(),
    )
