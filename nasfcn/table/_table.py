"""A table file in memory: lookups by architecture, seed, epoch and metric (``nasfcn.table.load``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nasfcn.genotype import Genotype
from nasfcn.space import SearchSpace, space_hash
from nasfcn.table._errors import TableError, TableLookupError
from nasfcn.table._format import (
    FORMAT_VERSION,
    METADATA_KEY,
    METRICS,
    checksum,
    class_column,
    schema,
)

#: Per-run cost figures ``Table.cost`` reports (the median over the architecture's runs).
COST_FIGURES = ("params", "flops", "latency_ms", "peak_memory_mb")


@dataclass(frozen=True)
class Cost:
    """What one architecture costs: the median of its runs' measurements, where they were taken."""

    params: float
    flops: float
    latency_ms: float
    peak_memory_mb: float
    device: str | None
    input: str | None


def load(path: str | Path, space: SearchSpace | None = None) -> Table:
    """Read and check a table file; with ``space``, refuse a table built from another space."""
    source = str(path)
    try:
        data = pq.read_table(path)
    except FileNotFoundError:
        raise TableError(f"{source}: no such file") from None
    except (OSError, pa.ArrowException) as err:
        raise TableError(f"{source}: not a readable Parquet file ({err})") from err
    table = Table.from_arrow(data, source)
    if space is not None:
        table.check_space(space)
    return table


class Table:
    """Every architecture x seed x epoch of one tabulation; lookups are dict and array indexing."""

    def __init__(self, data: pa.Table, facts: Mapping[str, Any], source: str) -> None:
        self.facts = dict(facts)
        self.source = source
        self._data = data
        self._archs = tuple(data.column("arch_id").to_pylist()[:: self._run_rows(data)])
        self.seeds: tuple[int, ...] = tuple(int(s) for s in facts["seeds"])
        self.epochs = int(facts["epochs"])
        self.class_names: tuple[str, ...] = tuple(facts["class_names"])
        self.metrics = (*METRICS, *(class_column(i) for i in range(len(self.class_names))))
        self._arch_index = {arch: i for i, arch in enumerate(self._archs)}
        self._seed_index = {seed: i for i, seed in enumerate(self.seeds)}
        shape = (len(self._archs), len(self.seeds), self.epochs)
        self._values = {
            name: np.asarray(data.column(name).to_numpy(), dtype=np.float64).reshape(shape)
            for name in self.metrics
        }
        first = slice(None, None, self.epochs)  # the first row of each run
        self._status = np.asarray(data.column("status").to_pylist()[first], dtype=object).reshape(shape[:2])
        self._errors = np.asarray(data.column("error").to_pylist()[first], dtype=object).reshape(shape[:2])
        self._genotypes = data.column("genotype_json").to_pylist()[:: self._run_rows(data)]
        self._costs = {name: data.column(name).to_numpy()[first].reshape(shape[:2]) for name in COST_FIGURES}
        self._where = {name: data.column(name).to_pylist()[first] for name in ("device", "input")}
        self._frame: pd.DataFrame | None = None

    def _run_rows(self, data: pa.Table) -> int:
        """Rows per architecture: seeds x epochs."""
        return max(1, len(self.facts["seeds"]) * int(self.facts["epochs"]))

    @classmethod
    def from_arrow(cls, data: pa.Table, source: str = "<table>") -> Table:
        """Check a table's metadata, schema, checksum and shape, then index it."""
        facts = _facts(data, source)
        expected = schema(len(facts["class_names"]))
        if not data.schema.remove_metadata().equals(expected):
            raise TableError(f"{source}: {_schema_difference(data.schema, expected)}")
        found = checksum(data)
        if found != facts.get("checksum"):
            raise TableError(
                f"{source}: the rows' checksum is {found[:12]}..., the metadata says "
                f"{str(facts.get('checksum'))[:12]}...: the data were changed after export; export it again"
            )
        _check_shape(data, facts, source)
        return cls(data, facts, source)

    # -- what the table holds ------------------------------------------------------------
    def archs(self) -> list[str]:
        """Every architecture id, sorted."""
        return list(self._archs)

    @property
    def space_hash(self) -> str | None:
        return self.facts.get("space_hash")

    @property
    def frame(self) -> pd.DataFrame:
        """Every row as a pandas frame (arch_id, seed, epoch, metrics, status, cost, genotype)."""
        if self._frame is None:
            self._frame = self._data.to_pandas()
        return self._frame

    def check_space(self, space: SearchSpace) -> None:
        """Refuse the table unless it was built from ``space`` (by its canonical hash)."""
        expected = space_hash(space)
        if self.space_hash != expected:
            raise TableError(
                f"{self.source}: built from space {self.facts.get('space_name')!r} "
                f"(hash {self.space_hash}), not from {space.name!r} (hash {expected}) at {space.source}: "
                "use the table built from that space, or load without a space"
            )

    # -- lookups ---------------------------------------------------------------------------
    def query(self, arch_id: str, seed: int, epoch: int, metric: str) -> float:
        """One value: ``metric`` of ``arch_id``'s run with ``seed`` after ``epoch`` (1-based); NaN if
        that run failed before it."""
        return float(self._metric(metric)[self._arch(arch_id), self._seed(seed), self._epoch(epoch)])

    def curve(self, arch_id: str, seed: int, metric: str = "val_miou") -> np.ndarray:
        """``metric`` after every epoch of one run (a copy)."""
        return self._metric(metric)[self._arch(arch_id), self._seed(seed)].copy()

    def mean(self, arch_id: str, metric: str = "val_miou", epoch: int | None = None) -> float:
        """Mean over seeds after ``epoch`` (the final epoch by default); runs without a value are left out."""
        values = self._metric(metric)[self._arch(arch_id), :, self._epoch(epoch or self.epochs)]
        kept = values[~np.isnan(values)]
        return float(kept.mean()) if len(kept) else math.nan

    def means(self, metric: str = "val_miou", epoch: int | None = None) -> np.ndarray:
        """``mean`` of every architecture, in ``archs()`` order."""
        values = self._metric(metric)[:, :, self._epoch(epoch or self.epochs)]
        with np.errstate(invalid="ignore"):
            counts = (~np.isnan(values)).sum(axis=1)
            return np.where(counts > 0, np.nansum(values, axis=1) / np.maximum(counts, 1), np.nan)

    def values(self, metric: str = "val_miou") -> np.ndarray:
        """The whole architectures x seeds x epochs array of ``metric`` (a read-only view)."""
        view = self._metric(metric).view()
        view.flags.writeable = False
        return view

    def seconds(self, arch_id: str, seed: int) -> float:
        """The run's training seconds: the sum over the epochs it trained."""
        return float(np.nansum(self._values["seconds"][self._arch(arch_id), self._seed(seed)]))

    def status(self, arch_id: str, seed: int) -> str:
        return str(self._status[self._arch(arch_id), self._seed(seed)])

    def error(self, arch_id: str, seed: int) -> str | None:
        found = self._errors[self._arch(arch_id), self._seed(seed)]
        return None if found is None else str(found)

    def cost(self, arch_id: str) -> Cost:
        """The architecture's cost: the median over its runs (NaN where none measured)."""
        a = self._arch(arch_id)
        figures = {}
        for name in COST_FIGURES:
            values = np.asarray(self._costs[name][a], dtype=np.float64)
            values = values[~np.isnan(values)]
            figures[name] = float(np.median(values)) if len(values) else math.nan
        row = a * len(self.seeds)
        return Cost(**figures, device=self._where["device"][row], input=self._where["input"][row])

    def genotype(self, arch_id: str) -> Genotype:
        return Genotype.from_json(self._genotypes[self._arch(arch_id)])

    # -- name checks -------------------------------------------------------------------------
    def _arch(self, arch_id: str) -> int:
        found = self._arch_index.get(arch_id)
        if found is None:
            shown = ", ".join(self._archs[:5]) + (", ..." if len(self._archs) > 5 else "")
            raise TableLookupError(
                f"{self.source}: no architecture {arch_id!r}; the table holds {len(self._archs)} ({shown})"
            )
        return found

    def _seed(self, seed: int) -> int:
        found = self._seed_index.get(seed)
        if found is None:
            raise TableLookupError(
                f"{self.source}: no seed {seed!r}; seeds: {', '.join(map(str, self.seeds))}"
            )
        return found

    def _epoch(self, epoch: int) -> int:
        if not isinstance(epoch, (int, np.integer)) or not 1 <= epoch <= self.epochs:
            raise TableLookupError(f"{self.source}: no epoch {epoch!r}; epochs: 1 to {self.epochs}")
        return int(epoch) - 1

    def _metric(self, metric: str) -> np.ndarray:
        found = self._values.get(metric)
        if found is None:
            names = ", ".join(self.metrics)
            raise TableLookupError(f"{self.source}: no metric {metric!r}; metrics: {names}")
        return found


def _facts(data: pa.Table, source: str) -> dict[str, Any]:
    raw = (data.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise TableError(f"{source}: not a nasfcn table (no {METADATA_KEY.decode()} metadata)")
    try:
        facts = json.loads(raw)
    except json.JSONDecodeError as err:
        raise TableError(f"{source}: the table metadata is not valid JSON ({err})") from err
    version = facts.get("format_version") if isinstance(facts, dict) else None
    if version != FORMAT_VERSION:
        raise TableError(
            f"{source}: table format version {version!r}; this nasfcn reads version {FORMAT_VERSION}: "
            "export the table again with this nasfcn"
        )
    missing = [k for k in ("seeds", "epochs", "class_names", "checksum") if k not in facts]
    if missing:
        raise TableError(f"{source}: the table metadata lacks {', '.join(missing)}")
    return facts


def _schema_difference(found: pa.Schema, expected: pa.Schema) -> str:
    names, wanted = found.names, expected.names
    if names != wanted:
        extra = [n for n in names if n not in wanted]
        lacking = [n for n in wanted if n not in names]
        if extra or lacking:
            return (
                f"the columns do not match the table format: missing {', '.join(lacking) or 'none'}, "
                f"unexpected {', '.join(extra) or 'none'}"
            )
        return "the columns are not in the table format's order"
    for field in expected:
        other = found.field(field.name)
        if other.type != field.type:
            return f"column {field.name!r} is {other.type}, the table format has {field.type}"
    return "the schema does not match the table format"


def _check_shape(data: pa.Table, facts: Mapping[str, Any], source: str) -> None:
    """Rows sorted by (arch, seed, epoch), each run with every epoch, each arch with every seed."""
    seeds, epochs = [int(s) for s in facts["seeds"]], int(facts["epochs"])
    per_arch = len(seeds) * epochs
    rows = data.num_rows
    if not seeds or epochs < 1 or rows % per_arch:
        raise TableError(f"{source}: {rows} rows is not whole runs of {len(seeds)} seeds x {epochs} epochs")
    archs = np.asarray(data.column("arch_id").to_pylist(), dtype=object).reshape(-1, per_arch)
    seed_column = data.column("seed").to_numpy().reshape(-1, len(seeds), epochs)
    epoch_column = data.column("epoch").to_numpy().reshape(-1, len(seeds), epochs)
    ordered = list(archs[:, 0])
    if (
        np.any(archs != archs[:, :1])
        or ordered != sorted(set(ordered))
        or np.any(seed_column != np.asarray(seeds)[None, :, None])
        or np.any(epoch_column != np.arange(1, epochs + 1)[None, None, :])
    ):
        raise TableError(
            f"{source}: the rows are not one run per architecture and seed with epochs 1 to {epochs}, "
            "sorted by architecture, seed and epoch"
        )
