"""The static page's data: every trial once, as one compact JSON block the page draws from.

The page (``board.js``) builds the ranked table, each trial's detail section and its plots
from this block on demand, so the file grows by a few hundred bytes per trial instead of
by whole figures. Layout, column-wise so each key is written once:

- ``table``: the ranked table's ``columns``, their display ``cells`` (formatted as
  ``format_cell`` does, so the page shows what the live app shows), numeric ``sort`` keys,
  each row's trial ``ids``, ``status`` and ``reference`` flag;
- ``detail``: the facts of ``detail_items`` column-wise, errors, numbers, the export command's
  ``export`` prefix and suffix (the trial number goes between), and per zero-cost proxy its
  table column (the value), seconds and errors (``proxies``; empty when none is stored);
- ``genotypes``: each genotype's leaves, dictionary-encoded per dotted path (most knobs take a
  handful of values, so a trial costs a few small integers);
- ``curves``: ``[first epoch or epoch list, val mIoU list]`` each, at most ``CURVE_POINTS``
  points (a plot has no more pixels); ``curve_of``: None when ``curves`` has one per trial, in
  the table's order, else per trial the ``curve`` it reads (-1: none) and how many of its
  ``points`` (an arena's trials share their (architecture, table seed) run: each trial's
  curve is a prefix of it, so 10^5 trials carry a few hundred curves and two numbers each);
  ``classes``: best-epoch per-class IoU.

Text stays data: ``json_script`` escapes ``<``, ``>`` and ``&`` so no stored text can close
the script element, and the page puts text into the DOM with ``textContent`` only.
"""

from __future__ import annotations

import bisect
import json
import shlex
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.io as pio

from leaderboard._proxies import ERROR, SECONDS, VALUE, proxy_names
from leaderboard.data import Board
from leaderboard.figures import PALETTE, TEMPLATE
from leaderboard.table import (
    DETAIL_FACTS,
    STATUS_STYLE,
    Column,
    format_column,
    table_columns,
)
from nasfcn.store import DEFAULT_URL

#: The most points one trial's curve is drawn with: about a detail plot's width in pixels.
CURVE_POINTS = 600
#: Significant digits kept of measured values (IoU, latency): more than a plot or a sort can tell.
DIGITS = 6


def board_payload(board: Board, curves: pd.DataFrame, frame: pd.DataFrame) -> dict[str, Any]:
    """Everything the page needs about ``board``'s trials; ``curves`` is ``board.curves()``,
    ``frame`` its ``table_frame``."""
    columns = table_columns(frame)
    ids = [int(t) for t in board.trials["trial_id"]]
    return {
        "search": board.search,
        "table": _table(frame, columns),
        "detail": _detail(board),
        "genotypes": encode_genotypes(board.trials["genotype_json"].tolist()),
        **_curves(board, curves, ids),
        "classes": _classes(board, ids),
        "class_names": list(board.class_names),
        "status_style": {s: list(style) for s, style in STATUS_STYLE.items()},
        "palette": list(PALETTE),
        "template": pio.templates[TEMPLATE].to_plotly_json(),
    }


def json_script(payload: dict[str, Any], element_id: str) -> str:
    """``payload`` as an inert ``<script type="application/json">`` element."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _table(frame: pd.DataFrame, columns: Sequence[Column]) -> dict[str, Any]:
    # Numbers come once, in ``sort``: the page writes their cells (``board.js``'s ``cell``, as
    # ``format_cell`` does); texts come as cells.
    cells = {c.key: texts(format_column(frame[c.key], c.kind)) for c in columns if c.kind == "text"}
    sort: dict[str, list[Any] | dict[str, list[Any]]] = {
        c.key: numbers(frame[c.key]) for c in columns if c.kind != "text"
    }
    sort["status"] = texts(frame["status_key"].tolist())  # by status, not by its label's symbol
    return {
        "columns": [{"key": c.key, "title": c.title, "kind": c.kind} for c in columns],
        "cells": cells,
        "sort": sort,
        "ids": [int(v) for v in frame["id"]],
        "status": texts(frame["status_key"].tolist()),
        "reference": [isinstance(r, str) for r in frame["reference"]],
    }


def _detail(board: Board) -> dict[str, Any]:
    # column by column (``detail_items``' facts, each distinct value formatted once), not a
    # dict and ten formatted cells per trial: seconds at 10^5 trials
    trials = board.trials
    labels = [label for label, _, _ in DETAIL_FACTS] if len(trials) else []
    prefix = ["nasfcn", "export", "--search", board.search, "--trial"]
    suffix = ["--db", board.database] if board.database != DEFAULT_URL else []
    return {
        "numbers": [int(n) for n in trials["number"].tolist()],
        "titles": texts(format_column(trials["status"].astype(str), "status")),
        "errors": [e if isinstance(e, str) and e else None for e in trials["error"].tolist()],
        "labels": labels,
        "facts": [
            {"column": FACT_COLUMNS[label]}
            if label in FACT_COLUMNS
            else texts(format_column(trials[key], kind))
            for label, key, kind in (DETAIL_FACTS if labels else ())
        ],
        "export": [shlex.join(prefix), shlex.join(suffix)],
        "proxies": _proxies(trials),
    }


def _proxies(trials: pd.DataFrame) -> list[dict[str, Any]]:
    """Per proxy: the table column holding its values, each trial's seconds and error ("": none)."""
    return [
        {
            "name": name,
            "column": f"{VALUE}{name}",
            "seconds": numbers(trials[SECONDS + name]),
            "errors": texts([e if isinstance(e, str) else "" for e in trials[ERROR + name].tolist()]),
        }
        for name in proxy_names(trials)
    ]


#: Facts the table shows too, in the same format: the page reads them from the table's column.
FACT_COLUMNS = {
    "val mIoU (best epoch)": "best_miou",
    "pixel accuracy": "pixel_accuracy",
    "parameters": "params",
    "FLOPs": "flops",
    "latency ms": "latency_ms",
    "epochs trained": "epochs",
}


def texts(values: list[str]) -> list[str] | dict[str, list[Any]]:
    """A column of texts with few distinct values (statuses, knobs, "–") as ``{"values": [...],
    "codes": [...]}``: row ``i`` reads ``values[codes[i]]`` (the page expands it when it loads);
    at 10^5 rows a code is a byte or two where the text was ten or twenty."""
    # codes in order of first appearance, as a dictionary would number them
    codes, distinct = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    if len(distinct) * 4 > len(values):
        return values
    return {"values": distinct.tolist(), "codes": codes.tolist()}


def encode_genotypes(texts: Sequence[str]) -> dict[str, Any]:
    """Genotype JSON texts as ``{"paths": [...], "values": [[...] per path], "codes": [[...] per path]}``:
    trial ``i``'s value at ``paths[p]`` is ``values[p][codes[p][i]]`` (code -1: no such leaf)."""
    # Parsed once per distinct text (an arena's 10^5 trials re-run a table's few hundred
    # networks); ``which[i]`` is trial i's text among them, in order of first appearance.
    index: dict[str, int] = {}
    which = np.array([index.setdefault(text, len(index)) for text in texts], dtype=np.int64)
    flat = [_leaves(json.loads(text)) for text in index]
    paths = sorted(set().union(*flat)) if flat else []
    values: list[list[Any]] = []
    codes: list[list[int]] = []
    for path in paths:
        column = [leaves.get(path, _ABSENT) for leaves in flat]
        seen: dict[Any, int] = {}
        first = [-1 if v is _ABSENT else seen.setdefault(_key(v), len(seen)) for v in column]
        codes.append(np.asarray(first, dtype=np.int64)[which].tolist())
        distinct: dict[int, Any] = {}
        for value, code in zip(column, first, strict=True):
            if code >= 0 and code not in distinct:
                distinct[code] = value
        values.append([distinct[code] for code in range(len(seen))])
    return {"paths": paths, "values": values, "codes": codes}


_ABSENT = object()


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every leaf (lists are leaves: a per-stage knob reads as one)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(_leaves(item, path + "."))
        else:
            out[path] = item
    return out


def _key(value: Any) -> Any:
    """A dictionary key equal only for equal JSON values (``True`` is not ``1``)."""
    if isinstance(value, list):
        key = (list, *((v.__class__, v) for v in value))
        try:
            hash(key)
            return key
        except TypeError:  # a list of lists or dicts
            return json.dumps(value, sort_keys=True)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return (value.__class__, value)


def encode_curves(curves: pd.DataFrame, trial_ids: Sequence[int]) -> list[list[Any]]:
    """Per trial (in ``trial_ids``' order) ``[epochs, val mIoU]``; ``epochs`` is the first epoch
    when they run on one by one, else the list. Longer curves are thinned to ``CURVE_POINTS``."""
    points = curves[curves["val_miou"].notna()].sort_values(["trial_id", "epoch"], kind="stable")
    ids = points["trial_id"].to_numpy()
    epochs = points["epoch"].to_numpy(dtype=int)
    mious = points["val_miou"].to_numpy(dtype=float)
    rounded = numbers(mious)
    starts = np.searchsorted(ids, trial_ids, side="left")
    ends = np.searchsorted(ids, trial_ids, side="right")
    out = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        e = epochs[start:end]
        if end - start > CURVE_POINTS:
            keep = thin(mious[start:end], CURVE_POINTS)
            e, v = e[keep], [rounded[start + k] for k in keep.tolist()]
        else:
            v = rounded[start:end]
        steps = len(e) > 0 and int(e[-1]) - int(e[0]) == len(e) - 1
        out.append([int(e[0]) if steps else e.tolist(), v])
    return out


def _curves(board: Board, curves: pd.DataFrame, trial_ids: Sequence[int]) -> dict[str, Any]:
    """``curves`` and ``curve_of``: one curve per trial, or an arena's shared curves."""
    if board.curve_source is None:
        return {"curves": encode_curves(curves, trial_ids), "curve_of": None}
    trained = board.trials.set_index("trial_id")["epochs_trained"]
    return encode_shared_curves(board.epochs, board.curve_source, trained, trial_ids)


def encode_shared_curves(
    shared: pd.DataFrame, source: pd.Series, trained: pd.Series, trial_ids: Sequence[int]
) -> dict[str, Any]:
    """``shared``'s curves (``encode_curves``, one per trial id in it) and per trial of
    ``trial_ids`` which one it reads (``source``: trial id -> id in ``shared``) and how many of
    its points: those up to its last epoch (``trained``: trial id -> epochs trained)."""
    sources = np.array(sorted({int(t) for t in shared["trial_id"]}), dtype=np.int64)
    curves = encode_curves(shared, sources.tolist())
    if not curves:
        return {"curves": [], "curve_of": {"curve": [-1] * len(trial_ids), "points": [0] * len(trial_ids)}}
    origin = source.reindex(trial_ids).to_numpy(dtype=float)
    last = trained.reindex(trial_ids).to_numpy(dtype=float)
    position = np.clip(np.searchsorted(sources, np.nan_to_num(origin, nan=-1.0)), 0, len(sources) - 1)
    found = (sources[position] == origin) & ~np.isnan(last)  # NaN equals nothing: no source
    index = np.where(found, position, -1)
    # a curve of consecutive epochs is [first, values]: its points up to ``last`` are a count
    first = np.array([c[0] if isinstance(c[0], int) else -1 for c in curves])
    length = np.array([len(c[1]) for c in curves])
    points = np.where(found, np.clip(last - first[position] + 1, 0, length[position]), 0).astype(int)
    for i in np.flatnonzero(found & (first[position] < 0)).tolist():  # epochs with gaps: searched
        points[i] = bisect.bisect_right(curves[index[i]][0], int(last[i]))
    return {"curves": curves, "curve_of": {"curve": index.tolist(), "points": points.tolist()}}


def thin(values: np.ndarray, most: int) -> np.ndarray:
    """Indices of at most ``most`` points spread evenly over ``values``, keeping the first, the
    last and the best (what a reader looks for on a learning curve)."""
    if len(values) <= most:
        return np.arange(len(values))
    even = np.linspace(0, len(values) - 1, most - 1).round().astype(int)
    return np.unique(np.append(even, int(np.nanargmax(values))))


def _classes(board: Board, trial_ids: Sequence[int]) -> list[list[float | None] | None]:
    """Each trial's per-class IoU at its best epoch (None: no per-class result)."""
    per_class = board.per_class
    if per_class.empty:
        return [None] * len(trial_ids)
    width = int(per_class["class_index"].max()) + 1
    matrix = per_class.pivot_table(index="trial_id", columns="class_index", values="iou", dropna=False)
    matrix = matrix.reindex(columns=range(width))
    values = numbers(matrix.to_numpy(dtype=float).ravel())
    rows: dict[int, list[float | None]] = {
        int(t): values[k * width : (k + 1) * width] for k, t in enumerate(matrix.index)
    }
    return [rows.get(t) for t in trial_ids]


def numbers(values: Any) -> list[Any]:
    """JSON numbers: integers as they are, floats to ``DIGITS`` significant digits, missing as None.

    Rounded in one numpy step (``k / 10**d`` is the double nearest the short decimal, so it
    prints short), not one Python call per value: a big search has a million of them."""
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        return [int(v) for v in array.tolist()]
    floats = pd.to_numeric(pd.Series(array.ravel()), errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(floats)
    safe = np.where(finite & (floats != 0), np.abs(floats), 1.0)
    decimals = np.clip(DIGITS - 1 - np.floor(np.log10(safe)), 0, 15)
    scale = 10.0**decimals
    rounded = np.where(finite, np.rint(floats * scale) / scale, 0.0)
    return [v if ok else None for v, ok in zip(rounded.tolist(), finite.tolist(), strict=True)]
