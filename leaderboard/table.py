"""The ranked table of trials: which columns, in which order, and how statuses are marked.

Shared by the static HTML file and the live app, so both show the same rows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from leaderboard._proxies import VALUE, format_score, proxy_names
from nasfcn.confirm import POOLED_COLUMNS, pooled_text

T = TypeVar("T")


@dataclass(frozen=True)
class Column:
    key: str  # key in the rows of ``table_frame`` (or ``benchmark_table``)
    title: str
    kind: str  # text | int | ratio (0..1, 3 decimals) | count (1.2k) | ms | rank (3 significant digits)
    # | score (a zero-cost proxy: 4 significant digits, powers of ten beyond 10^4)
    group: str = ""  # the header above several columns: a benchmark's dataset


#: The table's columns, in order.
COLUMNS = (
    Column("rank", "rank", "int"),
    Column("trial", "trial", "int"),
    Column("arch_id", "arch_id", "text"),
    Column("status", "status", "text"),
    Column("strategy", "strategy", "text"),
    Column("scheduler", "scheduler", "text"),
    Column("repeat", "repeat", "int"),
    Column("best_miou", "val mIoU", "ratio"),
    Column("test_miou", "test mIoU", "ratio"),
    Column("confirmed", "confirmed: mean ± sd [95% CI] (n), tie group", "text"),
    Column("seeds", "seeds: mean ± sd (n)", "text"),
    Column("pixel_accuracy", "pixel acc", "ratio"),
    Column("params", "params", "count"),
    Column("flops", "FLOPs", "count"),
    Column("latency_ms", "latency ms", "ms"),
    Column("epochs", "epochs", "int"),
    Column("skip", "skip", "text"),
    Column("upsample", "upsample", "text"),
    Column("attention", "attention", "text"),
    Column("kernels", "kernels", "text"),
    Column("depth", "depth", "int"),
    Column("width", "width", "int"),
    Column("note", "note", "text"),
)

#: What an arena's trials add (``leaderboard.data`` reads them from the store).
ARENA_COLUMNS = ("strategy", "scheduler", "repeat")

#: status -> (label shown in the table, colour used in the table and on the plots).
STATUS_STYLE = {
    "completed": ("✓ completed", "#2ca02c"),
    "stopped_early": ("▼ stopped early", "#ff7f0e"),
    "cached": ("↺ cached", "#1f77b4"),
    "running": ("▶ running", "#17becf"),
    "pending": ("… pending", "#bcbd22"),
    "interrupted": ("‖ interrupted", "#9467bd"),
    "failed": ("✕ failed", "#d62728"),
    "rejected_by_constraint": ("⊘ rejected", "#7f7f7f"),
}


#: Shown only when a row has something to say in them (strategy, scheduler, repeat: an arena's).
OPTIONAL_COLUMNS = ("seeds", "strategy", "scheduler", "repeat", "test_miou", "confirmed")


def table_columns(frame: pd.DataFrame) -> tuple[Column, ...]:
    """The columns of ``table_frame``'s rows worth showing: an all-blank optional column is left
    out; a column per zero-cost proxy the rows have scores of comes after the cost's."""
    shown = tuple(
        c for c in COLUMNS if c.key not in OPTIONAL_COLUMNS or (c.key in frame and frame[c.key].notna().any())
    )
    return with_proxy_columns(shown, frame)


def with_proxy_columns(columns: tuple[Column, ...], frame: pd.DataFrame) -> tuple[Column, ...]:
    """``columns`` with one ``score`` column per proxy of ``frame`` (``proxy:<name>``) after latency."""
    proxies = tuple(Column(f"{VALUE}{name}", name, "score") for name in proxy_names(frame))
    keys = [c.key for c in columns]
    at = keys.index("latency_ms") + 1 if "latency_ms" in keys else len(columns)
    return columns[:at] + proxies + columns[at:]


def status_label(status: str) -> str:
    return STATUS_STYLE.get(status, (status, ""))[0]


def status_color(status: str) -> str:
    return STATUS_STYLE.get(status, ("", "#444444"))[1]


def table_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """One display row per trial in the leaderboard's order; numbers stay numbers (for sorting).

    ``id`` is the trial id (links and row clicks use it); ``status_key`` the raw status;
    ``reference`` the reference design's name (rows to mark), else None.
    """
    # Only the columns each helper reads, row by row: a whole row per trial costs seconds at 10^4.
    notes = _per_row(trials, ("reference", "error", "cached_from", "extends"), _note)
    spread = ("seeds_n", "seeds_mean", "seeds_std", "seeds_other_recipe")
    seeds = _per_row(trials, spread, seed_spread_text)
    confirmed: list[str | None] = [None] * len(trials)
    if "confirmed_n" in trials and trials["confirmed_n"].notna().any():  # a search that confirmed
        confirmed = _per_row(trials, POOLED_COLUMNS, pooled_text)
    references = trials["reference"] if "reference" in trials else [None] * len(trials)
    frame = pd.DataFrame(
        {
            "id": trials["trial_id"].astype(int),
            "rank": trials["rank"],
            "trial": trials["number"].astype(int),
            "arch_id": trials["arch_id"].astype(str),
            "status": format_column(trials["status"].astype(str), "status"),
            "status_key": trials["status"].astype(str),
            **{key: trials.get(key) for key in ARENA_COLUMNS},
            "best_miou": trials["best_miou"],
            "test_miou": trials.get("test_miou"),
            "confirmed": confirmed,
            "seeds": seeds,
            "pixel_accuracy": trials["best_pixel_accuracy"],
            "params": trials["params"],
            "flops": trials["flops"],
            "latency_ms": trials["latency_ms"],
            "epochs": trials["epochs_trained"],
            "skip": trials["skip"],
            "upsample": trials["upsample"],
            "attention": trials["attention"],
            "kernels": trials["kernels"],
            "depth": trials["stages"],
            "width": trials["width"],
            "note": notes,
            "reference": [r if isinstance(r, str) and r else None for r in references],
            **{f"{VALUE}{name}": trials[f"{VALUE}{name}"] for name in proxy_names(trials)},
        }
    )
    return frame.reset_index(drop=True)


def _per_row(trials: pd.DataFrame, columns: Sequence[str], text: Callable[[dict[str, Any]], T]) -> list[T]:
    """``text`` of each row (a dict of those of ``columns`` it has, NaN as None), worked out
    once per distinct row: 10^5 trials have few distinct notes or seed spreads."""
    present = [c for c in columns if c in trials]
    if not present:
        return [text({})] * len(trials)
    values = [[None if _missing(v) else v for v in trials[c].tolist()] for c in present]
    done: dict[tuple[Any, ...], T] = {}
    out = []
    for row in zip(*values, strict=True):
        if row not in done:
            done[row] = text(dict(zip(present, row, strict=True)))
        out.append(done[row])
    return out


def seed_spread_text(row: Mapping[str, Any]) -> str | None:
    """ "0.612 ± 0.013 (3)" for a trial whose network and knobs ran with several seeds, else None.

    Reads the ``seeds*`` columns ``leaderboard.data.with_seed_spread`` adds; runs under another
    training recipe than the search's are said to be so.
    """
    count = row.get("seeds_n")
    if count is None or (isinstance(count, float) and math.isnan(count)) or count < 2:
        return None
    text = f"{row['seeds_mean']:.3f} ± {row['seeds_std']:.3f} ({int(count)})"
    return text + " other recipe" if row.get("seeds_other_recipe") else text


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as JSON-safe dicts: NaN becomes None (an empty cell that sorts last)."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def format_cell(value: object, kind: str) -> str:
    """The text of one cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "int":
        return str(int(value))  # type: ignore[call-overload]
    if kind == "ratio":
        return f"{float(value):.3f}"  # type: ignore[arg-type]
    if kind == "ms":
        return f"{float(value):.2f}"  # type: ignore[arg-type]
    if kind == "count":
        return compact(float(value))  # type: ignore[arg-type]
    if kind == "rank":
        return f"{float(value):.3g}"  # type: ignore[arg-type]
    if kind == "score":
        return format_score(value)
    return str(value)


def compact(n: float) -> str:
    """3 significant digits with an SI suffix: 1234567 -> 1.23M."""
    value, suffix = abs(n), ""
    for unit in ("k", "M", "G", "T"):
        if value < 999.5:
            break
        value, suffix = value / 1000, unit
    return f"{'-' if n < 0 else ''}{value:.3g}{suffix}"


#: The facts ``detail_items`` lists: (label, leaderboard column, ``format_cell`` kind; "status":
#: ``status_label``).
DETAIL_FACTS = (
    ("status", "status", "status"),
    ("val mIoU (best epoch)", "best_miou", "ratio"),
    ("pixel accuracy", "best_pixel_accuracy", "ratio"),
    ("parameters", "params", "count"),
    ("FLOPs", "flops", "count"),
    ("latency ms", "latency_ms", "ms"),
    ("peak inference memory MB", "peak_memory_mb", "ms"),
    ("epochs trained", "epochs_trained", "int"),
    ("training time s", "seconds", "ms"),
    ("checkpoint", "checkpoint", "text"),
)


def detail_items(trial: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) facts of one trial (a leaderboard row) for its detail page."""
    items = [(label, fact_text(trial[key], kind)) for label, key, kind in DETAIL_FACTS]
    note = _note(trial)
    return [*items, ("note", note)] if note else items


def fact_text(value: object, kind: str) -> str:
    """One fact of ``DETAIL_FACTS`` as text."""
    return status_label(str(value)) if kind == "status" else format_cell(value, kind)


def format_column(values: pd.Series, kind: str) -> list[str]:
    """``format_cell`` (or ``fact_text``) of each value, worked out once per distinct value: a
    column of 10^5 cells holds a few hundred (knobs, statuses, an arena's repeated networks)."""
    try:
        codes, distinct = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists): one at a time
        return [fact_text(_plain(v), kind) for v in values.tolist()]
    # code -1 (missing) reads the last label: the text of None
    labels = [fact_text(_plain(v), kind) for v in distinct.tolist()] + [fact_text(None, kind)]
    return np.asarray(labels, dtype=object)[codes].tolist()


_NUMBER_LIST = re.compile(r"\[\s+((?:-?[\d.eE+-]+,\s+)*-?[\d.eE+-]+)\s+\]")


def pretty_genotype(genotype_json: str) -> str:
    """Indented JSON with lists of numbers (per-stage knobs) kept on one line."""
    text = json.dumps(json.loads(genotype_json), indent=2, sort_keys=True)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)


def _note(row: Mapping[str, Any]) -> str:
    """What a row needs said: a classic reference design, the error, or where a result came from."""
    parts = []
    reference = row.get("reference")
    if isinstance(reference, str) and reference:
        parts.append(f"reference design {reference}")
    extends = row.get("extends")
    if extends is not None and not (isinstance(extends, float) and math.isnan(extends)):
        parts.append(f"final run: trial {int(extends)}'s network trained for longer")
    error = row.get("error")
    source = cached_source(row)
    if isinstance(error, str) and error:
        parts.append(error)
    elif source is not None:
        parts.append(f"result reused from trial id {source}")
    return "; ".join(parts)


def cached_source(row: Mapping[str, Any]) -> int | None:
    """The id of the trial whose result a cached trial reused, else None."""
    value = row.get("cached_from")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _plain(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


#: What the benchmark view's numbers mean (``nasfcn.stats`` has the full account).
BENCHMARK_METHOD = (
    "Every architecture is trained once per seed on every dataset with the same recipe, without "
    "early stopping; a run's figure is its best val mIoU. Failed runs are counted, not averaged.",
    "mIoU ± sd: the mean and sample standard deviation over seeds. 95% CI: Student's t interval "
    "of the mean (none with a single run).",
    "Ties: a paired t-test over shared seeds against the best architecture, Holm-adjusted. The best "
    "and every architecture not significantly worse than it (adjusted p ≥ 0.05) form tie group 1, "
    "marked =; the best of the rest opens group 2, and so on. Same group: the runs cannot tell them apart.",
    "Rank over datasets: the mean of the per-dataset ranks (1 = best mean val mIoU).",
)


def benchmark_columns(datasets: Sequence[str]) -> tuple[Column, ...]:
    """The benchmark table's columns: the architecture, then five per dataset (grouped under it)."""
    per_dataset = (
        ("rank", "rank", "int"),
        ("miou", "val mIoU ± sd", "text"),
        ("ci", "95% CI", "text"),
        ("runs", "runs", "text"),
        ("group", "tie group", "text"),
    )
    return (
        Column("mean_rank", "rank over datasets", "rank"),
        Column("label", "architecture", "text"),
        Column("arch_id", "arch_id", "text"),
        *(
            Column(f"d{i}_{key}", title, kind, group=dataset)
            for i, dataset in enumerate(datasets)
            for key, title, kind in per_dataset
        ),
    )


def benchmark_table(results: pd.DataFrame, ranks: pd.DataFrame, datasets: Sequence[str]) -> pd.DataFrame:
    """One display row per architecture, ordered by ``ranks`` (``aggregate_ranks``), with the
    cells of ``benchmark_columns(datasets)``; ``d<i>_tied`` flags the tie with the best."""
    rows = []
    for arch in ranks.to_dict("records"):
        mine = results[(results["label"] == arch["label"]) & (results["arch_id"] == arch["arch_id"])]
        reference = next((r for r in mine["reference"] if isinstance(r, str) and r), None)
        row: dict[str, object] = {
            "mean_rank": arch["mean_rank"],
            "label": f"{arch['label']} (ref)" if reference else str(arch["label"]),
            "arch_id": str(arch["arch_id"]),
        }
        by_dataset = {r["dataset"]: r for r in mine.to_dict("records")}
        for i, dataset in enumerate(datasets):
            row.update(_dataset_cells(f"d{i}_", by_dataset.get(dataset)))
        rows.append(row)
    keys = [c.key for c in benchmark_columns(datasets)] + [f"d{i}_tied" for i in range(len(datasets))]
    return pd.DataFrame(rows, columns=keys)


def _dataset_cells(prefix: str, result: Mapping[str, Any] | None) -> dict[str, object]:
    if result is None:  # the architecture has no run on this dataset
        return {f"{prefix}{key}": None for key in ("rank", "miou", "ci", "runs", "group")} | {
            f"{prefix}tied": False
        }

    def number(value: object) -> str:
        return "–" if _missing(value) else f"{float(value):.3f}"  # type: ignore[arg-type]

    mean, low = result["miou_mean"], result["miou_ci_low"]
    failed = int(result["failed"])
    group = result["group"]
    tied = bool(result["tied_with_best"]) and not _missing(mean)
    return {
        f"{prefix}rank": None if _missing(result["rank"]) else int(result["rank"]),
        f"{prefix}miou": None if _missing(mean) else f"{number(mean)} ± {number(result['miou_std'])}",
        f"{prefix}ci": None if _missing(low) else f"[{number(low)}, {number(result['miou_ci_high'])}]",
        f"{prefix}runs": f"{int(result['runs'])}" + (f" ({failed} failed)" if failed else ""),
        f"{prefix}group": None if _missing(group) else f"{int(group)}{'=' if tied else ''}",
        f"{prefix}tied": tied,
    }


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
