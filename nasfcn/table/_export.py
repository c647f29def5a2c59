"""A finished tabulation in the database -> one Parquet file (``nasfcn tabulate export``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nasfcn.genotype import Genotype
from nasfcn.space import parse_space, space_hash
from nasfcn.store import (
    FINISHED_STATUSES,
    Store,
    table_epochs_frame,
    table_facts,
    table_runs_frame,
)
from nasfcn.table._errors import TableError
from nasfcn.table._format import (
    FORMAT_VERSION,
    KEY_COLUMNS,
    METRICS,
    RUN_COLUMNS,
    checksum,
    class_column,
    encode_metadata,
    schema,
)


def export_table(store: Store, name: str, out_path: str | Path) -> Path:
    """Write the table ``name`` to ``out_path`` (Parquet, zstd); refused unless every run finished."""
    table = table_from_store(store, name)
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


def table_from_store(store: Store, name: str) -> pa.Table:
    """The table ``name`` as the file holds it: rows, schema and metadata (checksum included)."""
    facts = table_facts(store, name)
    if facts["kind"] != "table":
        raise TableError(
            f"{name!r} in {store.masked_url} is a {facts['kind']}, not a table: "
            "only what `nasfcn tabulate` built can be exported as a table"
        )
    runs = _without_superseded(table_runs_frame(store, facts["id"]))
    seeds = _check_complete(name, facts["config"], runs)
    dataset = _one_dataset(name, runs, facts["dataset"])
    class_names = _class_names(facts["config"], dataset)
    epochs = table_epochs_frame(store, facts["id"])
    count = max([int(facts["config"].get("epochs") or 0), *(int(e) for e in epochs["epoch"])])
    rows = _rows(runs, epochs, count, len(class_names))
    data = pa.Table.from_pandas(rows, schema=schema(len(class_names)), preserve_index=False)
    metadata = _metadata(facts, dataset, class_names, seeds, count, runs)
    metadata["checksum"] = checksum(data)
    return data.replace_schema_metadata(encode_metadata(metadata))


def _without_superseded(runs: pd.DataFrame) -> pd.DataFrame:
    """Drop runs that did not finish and whose (architecture, seed) finished in another run.

    A stopped build marks its running runs interrupted; ``--resume`` trains those pairs again
    as new runs and keeps the interrupted rows as the build's history. The table holds the run
    that finished; an unfinished pair with no finished run still counts as unfinished.
    """
    finished = runs["status"].isin(FINISHED_STATUSES)
    pairs = list(zip(runs["arch_id"], runs["seed"].astype(int), strict=True))
    done = {pair for pair, ok in zip(pairs, finished, strict=True) if ok}
    superseded = np.array(
        [not ok and pair in done for pair, ok in zip(pairs, finished, strict=True)], dtype=bool
    )
    return runs[~superseded].reset_index(drop=True)


def _check_complete(name: str, config: dict[str, Any], runs: pd.DataFrame) -> list[int]:
    """Every planned (architecture, seed) ran to a final status exactly once; returns the seeds."""
    planned_archs = [_arch_id_of(entry["genotype"]) for entry in config.get("plan_archs", [])]
    archs = sorted(set(planned_archs) | set(runs["arch_id"]))
    seeds = _seed_list(config.get("seeds"), runs)
    present = set(zip(runs["arch_id"], runs["seed"].astype(int), strict=True))
    missing = len(archs) * len(seeds) - len(present & {(a, s) for a in archs for s in seeds})
    unfinished = int((~runs["status"].isin(FINISHED_STATUSES)).sum())
    if missing or unfinished:
        total = len(archs) * len(seeds)
        raise TableError(
            f"table {name!r} has {missing + unfinished} unfinished runs of {total} "
            f"({unfinished} not finished, {missing} not started): finish them with "
            f"`nasfcn tabulate --resume --name {name}`, then export"
        )
    duplicated = runs[runs.duplicated(["arch_id", "seed"], keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        pairs = len(duplicated.drop_duplicates(["arch_id", "seed"]))
        raise TableError(
            f"table {name!r} holds {len(duplicated)} runs for {pairs} "
            f"(architecture, seed) pairs more than once, e.g. {first['arch_id']} seed {int(first['seed'])}: "
            "a table has one run per pair"
        )
    return seeds


def _arch_id_of(genotype_json: str) -> str:
    return Genotype.from_json(genotype_json).arch_id


def _seed_list(seeds: Any, runs: pd.DataFrame) -> list[int]:
    if isinstance(seeds, int):
        return list(range(seeds))
    if isinstance(seeds, list):
        return sorted(int(s) for s in seeds)
    return sorted(int(s) for s in runs["seed"].unique())


def _one_dataset(name: str, runs: pd.DataFrame, stored: str) -> str:
    datasets = sorted(set(runs["dataset"])) or [stored]
    if len(datasets) > 1:
        raise TableError(
            f"table {name!r} holds runs on {len(datasets)} datasets ({', '.join(datasets)}); "
            "a table file holds one dataset: build one table per dataset"
        )
    return datasets[0]


def _class_names(config: dict[str, Any], dataset: str) -> list[str]:
    names = config.get("class_names") or {}
    found = names.get(dataset)
    if found is None and len(names) == 1:
        found = next(iter(names.values()))
    return [str(n) for n in found or []]


def _rows(runs: pd.DataFrame, epochs: pd.DataFrame, count: int, classes: int) -> pd.DataFrame:
    """Every run x epoch 1..count, sorted by architecture, seed and epoch."""
    grid = runs.merge(pd.DataFrame({"epoch": np.arange(1, count + 1, dtype=np.int64)}), how="cross")
    rows = grid.merge(epochs, on=["trial_id", "epoch"], how="left")
    per_class = np.full((len(rows), classes), np.nan)
    for i, text in enumerate(rows["per_class_iou_json"]):
        if isinstance(text, str):
            values = [np.nan if v is None else float(v) for v in json.loads(text)][:classes]
            per_class[i, : len(values)] = values
    for c in range(classes):
        rows[class_column(c)] = per_class[:, c]
    rows["seed"] = rows["seed"].astype(np.int64)
    rows["params"] = rows["params"].astype("Int64")
    rows["flops"] = rows["flops"].astype("Int64")
    columns = [n for n, _ in KEY_COLUMNS] + list(METRICS) + [class_column(c) for c in range(classes)]
    columns += [n for n, _ in RUN_COLUMNS]
    return rows.sort_values(["arch_id", "seed", "epoch"], ignore_index=True)[columns]


def _metadata(
    facts: dict[str, Any],
    dataset: str,
    class_names: list[str],
    seeds: list[int],
    epochs: int,
    runs: pd.DataFrame,
) -> dict[str, Any]:
    config = {k: v for k, v in facts["config"].items() if k != "plan_archs"}
    yaml_text = facts["space_yaml"]
    return {
        "format_version": FORMAT_VERSION,
        "name": facts["name"],
        "space_name": facts["space_name"],
        "space_hash": space_hash(parse_space(yaml_text, source=f"table {facts['name']}"))
        if yaml_text
        else None,
        "space_yaml": yaml_text,
        "dataset": dataset,
        "class_names": class_names,
        "recipe": facts["recipe"],
        "epochs": epochs,
        "seeds": seeds,
        "archs": int(runs["arch_id"].nunique()),
        "image_size": config.get("image_size"),
        "train_samples": config.get("train_samples"),
        "sample": config.get("sample"),
        "config": config,
        "versions": facts["versions"],
        "built_at": _iso(facts["created_at"]),
        "finished_at": _iso(facts["finished_at"]),
        "exported_at": _iso(datetime.now(timezone.utc)),
        "exported_with": {"nasfcn": _version("nasfcn"), "pyarrow": pa.__version__},
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
