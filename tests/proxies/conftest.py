"""Tiny networks whose proxies can be written out by hand, and a small hand-made table file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from nasfcn.data import DataConfig, DatasetBundle, load_dataset
from nasfcn.genotype import Genotype
from nasfcn.proxies import Batch
from nasfcn.space import load_space
from nasfcn.table._format import FORMAT_VERSION, METRICS, RUN_COLUMNS, checksum, encode_metadata, schema

ROOT = Path(__file__).resolve().parents[2]
SHAPES_CLASSES = ["background", "circle", "square", "triangle"]


def two_layer_net(cin: int = 3, hidden: int = 4, classes: int = 3, seed: int = 0) -> nn.Sequential:
    """1x1 conv -> ReLU -> 1x1 conv, no biases, double precision: per pixel, z = W2 relu(W1 x)."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(cin, hidden, 1, bias=False),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, classes, 1, bias=False),
    )
    return net.double()


def double_batch(images: int = 3, size: int = 4, cin: int = 3, classes: int = 3, seed: int = 0) -> Batch:
    """Random images and labels with a few pixels ignored (255)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((images, cin, size, size), generator=generator, dtype=torch.float64)
    y = torch.randint(0, classes, (images, size, size), generator=generator)
    y[:, 0, :2] = 255
    return Batch(x, y, classes)


def bench_genotypes(count: int) -> list[Genotype]:
    """``count`` distinct fcn_bench architectures, spread over the space."""
    every = list(load_space(ROOT / "search_spaces" / "fcn_bench.yaml").iter_genotypes(include_train=False))
    return [every[i] for i in np.linspace(0, len(every) - 1, count).astype(int)]


def write_table_file(
    path: Path, genotypes: Sequence[Genotype], means: Sequence[float], **facts: object
) -> Path:
    """A valid one-seed, one-epoch table of ``genotypes`` whose final val mIoU are ``means``, on a
    tiny ``shapes`` dataset (32 px, 16 train images); ``facts`` overrides metadata fields."""
    order = sorted(range(len(genotypes)), key=lambda i: genotypes[i].arch_id)
    rows: dict[str, list[object]] = {"arch_id": [], "seed": [], "epoch": []}
    for name in (*METRICS, *(f"iou_{c}" for c in range(len(SHAPES_CLASSES))), *(n for n, _ in RUN_COLUMNS)):
        rows[name] = []
    for i in order:
        values: dict[str, object] = dict.fromkeys(rows)
        values.update(arch_id=genotypes[i].arch_id, seed=0, epoch=1, val_miou=float(means[i]))
        values.update(val_pixel_accuracy=0.9, train_loss=0.5, seconds=1.0, status="completed")
        values.update(genotype_json=genotypes[i].to_json(), params=1, flops=1, latency_ms=1.0)
        for name in rows:
            rows[name].append(values[name])
    data = pa.table(rows, schema=schema(len(SHAPES_CLASSES)))
    metadata: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "name": "hand",
        "dataset": "shapes",
        "class_names": SHAPES_CLASSES,
        "seeds": [0],
        "epochs": 1,
        "image_size": 32,
        "train_samples": 16,
        "config": {"val_samples": 4},
        "checksum": checksum(data),
    }
    metadata.update(facts)
    pq.write_table(data.replace_schema_metadata(encode_metadata(metadata)), path)
    return path


@pytest.fixture
def hand_table(tmp_path: Path) -> tuple[Path, list[Genotype], list[float]]:
    """Six fcn_bench architectures with known means, as a table file."""
    genotypes = bench_genotypes(6)
    means = [0.31, 0.12, 0.55, 0.40, 0.27, 0.48]
    return write_table_file(tmp_path / "hand.parquet", genotypes, means), genotypes, means


def shapes_bundle() -> DatasetBundle:
    """The tiny shapes data of ``write_table_file``'s tables: 32 px, 16 train images, data seed 0."""
    return load_dataset("shapes", DataConfig(image_size=32, train_samples=16, val_samples=4))


@pytest.fixture
def helpers() -> SimpleNamespace:
    """This conftest's builders (conftest modules are not importable)."""
    return SimpleNamespace(
        two_layer_net=two_layer_net,
        double_batch=double_batch,
        bench_genotypes=bench_genotypes,
        write_table_file=write_table_file,
        shapes_bundle=shapes_bundle,
    )
