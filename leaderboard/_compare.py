"""The compare menu's choices: bounded, whatever the size of the search.

A menu of one option per trial grows with the search (10^5 trials: megabytes on every refresh,
and a list nobody scrolls). The menu offers the best ``MENU_TOP`` trials the board shows and the
ones compared; typing a trial number or the start of an arch id asks the database for the
trials it names (``found_options``), at most ``MENU_FOUND`` of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from nasfcn.store import ColumnFilter, Condition, PageQuery, Store, trials_page

#: Trials the menu offers from the ranking (the best of those shown), and per typed text.
MENU_TOP, MENU_FOUND = 50, 20


def option(row: Mapping[str, Any]) -> dict[str, Any]:
    """One trial as the menu shows it; the label holds what a reader types to find it."""
    return {
        "label": f"#{int(row['number'])} {row['arch_id']} (mIoU {float(row['best_miou']):.3f})",
        "value": int(row["trial_id"]),
    }


def menu_options(shown: pd.DataFrame, trials: pd.DataFrame, chosen: Sequence[int]) -> list[dict[str, Any]]:
    """The best ``MENU_TOP`` scored trials of ``shown`` (in rank order), then the ``chosen`` ones
    of ``trials`` not among them: at most ``MENU_TOP`` + len(chosen) options."""
    best = shown.loc[shown["best_miou"].notna()].head(MENU_TOP)
    extra = trials[trials["trial_id"].isin(chosen) & ~trials["trial_id"].isin(best["trial_id"])]
    return [option(row) for row in pd.concat([best, extra]).to_dict("records")]


def found_options(store: Store, search: int, text: str) -> list[dict[str, Any]]:
    """The scored trials of search ``search`` (id) whose number is ``text`` or whose arch id starts
    with it (``#`` aside), best first: one SQL page of at most ``MENU_FOUND`` rows."""
    typed = text.strip().lstrip("#").strip()
    if not typed:
        return []
    names = [Condition("arch_id", "startsWith", typed)]
    if typed.isdigit():
        names.append(Condition("number", "equals", int(typed)))
    scored = ColumnFilter((Condition("best_miou", "notBlank"),))
    query = PageQuery(limit=MENU_FOUND, filters=(ColumnFilter(tuple(names), "or"), scored))
    return [option(row) for row in trials_page(store, search, query).rows.to_dict("records")]


def merged(kept: Sequence[dict[str, Any]], found: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The menu's own options, then those found that it lacks."""
    values = {o["value"] for o in kept}
    return [*kept, *(o for o in found if o["value"] not in values)]
