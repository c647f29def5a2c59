"""The table file: one Parquet file, its columns, its metadata and the checksum of its rows.

One row per architecture x seed x epoch, sorted in that order, every run with every epoch
(a failed run's missing epochs are nulls), so a reader reshapes each metric into an
architectures x seeds x epochs array without a join. The per-run facts (status, error) and
per-architecture facts (genotype, cost) are columns repeated on each of the run's rows:
Parquet holds one table per file, and its dictionary and run-length encodings store a value
repeated on consecutive rows once, so the repetition costs a few bytes while any Parquet
reader (pandas, DuckDB, polars) sees the whole table in one frame.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pyarrow as pa

#: Bumped when a column or a metadata field changes meaning; a reader refuses other versions.
FORMAT_VERSION = 1
#: The Parquet key-value metadata entry that holds the table's facts (JSON).
METADATA_KEY = b"nasfcn.table"
#: Per-epoch metrics every table holds; per-class IoU adds ``iou_<i>`` (class names in metadata).
METRICS = ("val_miou", "val_pixel_accuracy", "train_loss", "seconds")
#: Per-run and per-architecture columns, repeated on each row of the run.
RUN_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("status", pa.string()),
    ("error", pa.string()),
    ("reference", pa.string()),
    ("genotype_json", pa.string()),
    ("params", pa.int64()),
    ("flops", pa.int64()),
    ("latency_ms", pa.float64()),
    ("peak_memory_mb", pa.float64()),
    ("device", pa.string()),
    ("input", pa.string()),
)
KEY_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("arch_id", pa.string()),
    ("seed", pa.int64()),
    ("epoch", pa.int64()),
)


def class_column(index: int) -> str:
    return f"iou_{index}"


def schema(classes: int) -> pa.Schema:
    """The columns of a table over ``classes`` classes, in file order."""
    metrics = [(name, pa.float64()) for name in METRICS]
    per_class = [(class_column(i), pa.float64()) for i in range(classes)]
    return pa.schema([*KEY_COLUMNS, *metrics, *per_class, *RUN_COLUMNS])


def checksum(table: pa.Table) -> str:
    """SHA-256 of the rows' content (column names, types and values; not the file's encoding).

    Numbers are hashed as float64 with nulls as NaN, text as UTF-8 with a marker for null, so
    the same rows give the same checksum whatever the compression or the pyarrow version.
    """
    digest = hashlib.sha256()
    for field, column in zip(table.schema, table.columns, strict=True):
        digest.update(f"{field.name}:{field.type};".encode())
        if pa.types.is_string(field.type):
            values = column.to_pylist()
            digest.update("\x1f".join("\x00" if v is None else v for v in values).encode())
        else:
            numbers = np.asarray(column.to_numpy(), dtype=np.float64)
            digest.update(np.where(np.isnan(numbers), np.nan, numbers).tobytes())
    return digest.hexdigest()


def encode_metadata(facts: dict[str, Any]) -> dict[bytes, bytes]:
    return {METADATA_KEY: json.dumps(facts, sort_keys=True, default=str).encode()}
