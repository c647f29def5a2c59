"""Zero-cost proxy scores on the board: one column per proxy the store holds for a search.

Scores belong to architectures (``nasfcn.store.proxy_scores_frame``): one query reads those of
every network a search (or a page of it) trained, on the search's dataset, seed and minibatch
shape, and ``with_proxies`` joins them to the trials as ``proxy:<name>`` (value),
``proxy_seconds:<name>`` and ``proxy_error:<name>`` columns. A search without scores gets none,
so the table shows no proxy column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from nasfcn.store import Store, proxy_scores_frame, proxy_values

VALUE, SECONDS, ERROR = "proxy:", "proxy_seconds:", "proxy_error:"


def board_scores(
    store: Store, details: Mapping[str, Any], arch_ids: Iterable[str] | None = None
) -> pd.DataFrame:
    """The scores of a search's networks (or of ``arch_ids`` only) on its dataset, with the seed
    and minibatch shape its trials scored with (``config``'s ``seed`` and ``proxy_input``)."""
    config = details.get("config") or {}
    seed = config.get("seed")
    return proxy_scores_frame(
        store,
        details["name"] if arch_ids is None else None,
        arch_ids=arch_ids,
        dataset=details["dataset"],
        seed=None if seed is None else int(seed),
        shape=config.get("proxy_input"),
    )


def with_proxies(trials: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """``trials`` plus each held proxy's value, seconds and error by ``arch_id`` (nothing held: as is)."""
    if scores.empty or trials.empty:
        return trials
    latest = scores.drop_duplicates(["arch_id", "proxy"], keep="first")
    values = proxy_values(scores)
    names = list(values.columns)
    seconds = latest.pivot(index="arch_id", columns="proxy", values="seconds").reindex(columns=names)
    errors = latest.pivot(index="arch_id", columns="proxy", values="error").reindex(columns=names)
    wide = pd.concat(
        [values.add_prefix(VALUE), seconds.add_prefix(SECONDS), errors.add_prefix(ERROR)], axis=1
    )
    return trials.merge(wide, left_on="arch_id", right_index=True, how="left")


def proxy_names(frame: pd.DataFrame) -> list[str]:
    """The proxies ``frame`` has a value column of (``with_proxies``), in order."""
    return [str(c)[len(VALUE) :] for c in frame.columns if str(c).startswith(VALUE)]


def format_score(value: object) -> str:
    """A proxy's value: 4 significant digits, in powers of ten outside 0.001 to 10^4 (synflow
    reaches 10^20, naswot's are hundreds); ``board.js`` writes the same text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    number = float(value)  # type: ignore[arg-type]
    if number != 0 and not 1e-3 <= abs(number) < 1e4:
        mantissa, exponent = f"{number:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{float(f'{number:.4g}'):g}"


def proxy_facts(row: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(proxy, value, seconds, error) of one trial's row, for its detail page."""
    facts = []
    for column, value in row.items():
        if not str(column).startswith(VALUE):
            continue
        name = str(column)[len(VALUE) :]
        seconds, error = row.get(SECONDS + name), row.get(ERROR + name)
        if _missing(value) and _missing(seconds) and not isinstance(error, str):
            continue  # no score held for this trial's network
        took = "–" if seconds is None or _missing(seconds) else f"{float(seconds):.3f}"
        facts.append((name, format_score(value), took, error if isinstance(error, str) else ""))
    return facts


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
