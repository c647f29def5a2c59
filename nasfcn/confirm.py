"""Noise-aware winners: which trials a search confirms over extra seeds, and what the runs pool to.

One run of a network is one draw of its training noise; the best of many draws on val is
biased upwards (the winner's curse). A search therefore ends by re-training its top ``K``
distinct networks + training knobs (by best val mIoU of its completed trials) with ``S``
extra seeds each, and ranks and exports by the mean over those runs. Everything here is
plain data (no torch, no Ray), so the search, the leaderboard, the export and the arena use
one policy and one pooling rule:

* **Policy** (``ConfirmPolicy``, ``to_confirm``, ``confirmation_runs``): the top ``K`` by
  best val mIoU among completed or cached trials that are not confirmation runs themselves,
  one per network + knobs (``trial_key``); seeds ``seed + 1 .. seed + S`` for every network
  (the search's trials all ran with ``seed``), so every confirmed network has the same
  seeds and no run repeats another. A confirmation run that finished is never run again; an
  interrupted one runs again under its own number.
* **Pooling** (``pooled``): a confirmed trial and the runs with ``confirms`` = its number are
  one group; its mean, sample SD and Student-t 95% interval come from ``nasfcn.stats``.
* **Tie groups** (``overlap_groups``): the best pooled mean opens group 1 and every network
  whose interval overlaps the leader's joins; the best of the rest opens group 2; and so on.
  A group of one run has no interval and cannot be told apart from the leader it meets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from nasfcn.stats import summarize

Row = TypeVar("Row", bound=Mapping[str, Any])

#: Networks a search confirms, and extra seeds each, when --confirm-top / --confirm-seeds are
#: not given. Measured in the arena (benchmarks/confirm_arena.py on fcn_bench_shapes, 100
#: paired repeats, TPE + ASHA, RESULTS.md "Confirmation at equal epochs"): at equal median total
#: epochs no K x S lowers the exported network's true regret significantly (Holm p >= 0.16 at 64
#: and at 32 trials), and 3 x 2 never raised it (mean regret 0.0075 vs 0.0085 unconfirmed at 64
#: trials, 0.0121 vs 0.0124 at 32; 5 x 2 raised it at 32 trials: 0.0142), while it cuts the
#: winner's curse of the reported val mIoU from 0.009-0.021 to 0.002. So 3 x 2 stays: the least
#: harm to what is found, the most honest figure for it.
CONFIRM_TOP = 3
CONFIRM_SEEDS = 2
#: Statuses whose val mIoU is a full run's (``nasfcn.store.RESULT_STATUSES``).
FULL_RUNS = ("completed", "cached")
#: Columns ``pooled`` adds to a leaderboard frame.
POOLED_COLUMNS = (
    "confirmed_n",
    "confirmed_mean",
    "confirmed_sd",
    "confirmed_ci_low",
    "confirmed_ci_high",
    "tie_group",
)


@dataclass(frozen=True)
class ConfirmPolicy:
    """How many networks a search confirms and with how many extra seeds each."""

    top: int = CONFIRM_TOP
    seeds: int = CONFIRM_SEEDS

    @property
    def runs(self) -> int:
        return self.top * self.seeds

    def describe(self) -> str:
        return f"top {self.top} x {self.seeds} seeds"


@dataclass(frozen=True)
class ConfirmRun:
    """One confirmation run: trial ``confirms`` again with ``seed``."""

    confirms: int  # number of the trial it re-seeds
    seed: int
    number: int | None = None  # an interrupted confirmation run again: its own number; None: the next


def confirmation_seeds(seed: int, count: int) -> tuple[int, ...]:
    """The extra seeds: the search's trials all trained with ``seed``, so the next ``count``."""
    return tuple(seed + 1 + i for i in range(count))


def to_confirm(rows: Iterable[Mapping[str, Any]], top: int) -> list[Mapping[str, Any]]:
    """The best ``top`` full runs by val mIoU, one per network + knobs, that neither confirm
    another trial nor train one's network longer (a final run, ``extends``) themselves.

    ``rows``: trial rows with ``number``, ``status``, ``best_miou``, ``trial_key`` and ``confirms``.
    """
    full = [
        row for row in search_proper(rows) if row.get("status") in FULL_RUNS and is_set(row.get("best_miou"))
    ]
    full.sort(key=lambda row: (-float(row["best_miou"]), int(row["number"])))
    chosen: list[Mapping[str, Any]] = []
    keys: set[str] = set()
    for row in full:
        if row["trial_key"] not in keys and len(chosen) < top:
            keys.add(row["trial_key"])
            chosen.append(row)
    return chosen


def confirmation_runs(
    rows: Sequence[Mapping[str, Any]], policy: ConfirmPolicy, seed: int
) -> tuple[list[Mapping[str, Any]], list[ConfirmRun]]:
    """(the trials to confirm, the runs still to do) from every trial of a search (any status).

    A confirmation run that finished (any finished status) is not repeated; one left
    ``interrupted`` runs again under its own number.
    """
    targets = to_confirm(rows, policy.top)
    done: dict[tuple[int, int], Mapping[str, Any]] = {
        (int(row["confirms"]), int(row["seed"])): row for row in rows if _confirms(row)
    }
    runs = []
    for target in targets:
        for extra in confirmation_seeds(seed, policy.seeds):
            earlier = done.get((int(target["number"]), extra))
            if earlier is None:
                runs.append(ConfirmRun(int(target["number"]), extra))
            elif earlier["status"] == "interrupted":
                runs.append(ConfirmRun(int(target["number"]), extra, int(earlier["number"])))
    return targets, runs


def search_proper(rows: Iterable[Row]) -> list[Row]:
    """The rows of the search proper: neither confirmation runs nor final runs."""
    return [row for row in rows if not _confirms(row) and not is_set(row.get("extends"))]


def _confirms(row: Mapping[str, Any]) -> bool:
    return is_set(row.get("confirms"))


def is_set(value: Any) -> bool:
    """A cell that holds a value: not None, not NaN (how pandas reads a missing number)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def final_runs(board: pd.DataFrame) -> pd.DataFrame:
    """A search's final runs (``extends``, ``nasfcn.search._final``) that trained: full runs, or
    stopped by the budget's end after an epoch. What ``nasfcn export`` and the summary pick from."""
    if "extends" not in board:
        return board.iloc[:0]
    statuses = (*FULL_RUNS, "stopped_early")
    return board[board["extends"].notna() & board["status"].isin(statuses) & board["best_miou"].notna()]


def pooled(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per confirmed trial (``group``: its number): runs ``confirmed_n``, mean, SD, 95%
    interval and ``tie_group``, best pooled mean first. Empty when nothing was confirmed.

    ``trials``: leaderboard rows with ``number``, ``confirms``, ``status`` and ``best_miou``.
    """
    columns = ["group", *POOLED_COLUMNS]
    if trials.empty or "confirms" not in trials or not trials["confirms"].notna().any():
        return pd.DataFrame(columns=columns)
    group = trials["confirms"].fillna(trials["number"]).astype(int)
    confirmed = set(trials.loc[trials["confirms"].notna(), "confirms"].astype(int))
    full = trials["status"].isin(FULL_RUNS) & trials["best_miou"].notna() & group.isin(confirmed)
    rows = []
    for number, values in trials.loc[full, "best_miou"].groupby(group[full]):
        summary = summarize([float(v) for v in values])
        rows.append((int(number), summary.n, summary.mean, summary.std, summary.ci_low, summary.ci_high))
    frame = pd.DataFrame(rows, columns=columns[:-1])
    frame = frame.sort_values(["confirmed_mean", "group"], ascending=[False, True], ignore_index=True)
    groups = overlap_groups(list(zip(frame["confirmed_ci_low"], frame["confirmed_ci_high"], strict=True)))
    return frame.assign(tie_group=groups)


def overlap_groups(intervals: Sequence[tuple[float, float]]) -> list[int]:
    """Tie groups of intervals ordered best mean first: each leader takes the rest whose interval
    overlaps its own (NaN: no interval, overlaps any)."""
    groups = [0] * len(intervals)
    group = 0
    for i, (low, _) in enumerate(intervals):
        if groups[i]:
            continue
        group += 1
        groups[i] = group
        for j in range(i + 1, len(intervals)):
            high = intervals[j][1]
            if not groups[j] and (math.isnan(low) or math.isnan(high) or high >= low):
                groups[j] = group
    return groups


def with_pooled(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` with ``POOLED_COLUMNS`` on every run of a confirmed group, ranked by pooled mean.

    Without confirmation runs the frame is returned with empty columns and its own order and
    ranks. With them, confirmed groups come first by pooled mean (every run of a group shares
    its rank), then the other trials by best val mIoU as before.
    """
    stats = pooled(trials)
    if stats.empty:
        return trials.assign(**dict.fromkeys(POOLED_COLUMNS, math.nan))
    group = trials["confirms"].fillna(trials["number"]).astype(int)
    indexed = stats.set_index("group")
    added = {column: group.map(indexed[column]).astype(float) for column in POOLED_COLUMNS}
    frame = trials.assign(**added)
    order = {int(number): place for place, number in enumerate(stats["group"], start=1)}
    place = group.map(order)
    frame = frame.assign(_place=place.fillna(math.inf), _group=group)
    frame = frame.sort_values(
        ["_place", "best_miou", "number"], ascending=[True, False, True], na_position="last", kind="stable"
    )
    frame = _resorted(frame)
    others = frame["_place"] == math.inf
    rank = frame["_place"].where(~others)
    scored = others & frame["best_miou"].notna()
    rank[scored] = len(stats) + frame.loc[scored, "best_miou"].rank(ascending=False, method="min")
    return frame.assign(rank=rank).drop(columns=["_place", "_group"]).reset_index(drop=True)


def _resorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Within the unconfirmed trials, best val mIoU first (the order a search without confirmation has)."""
    confirmed = frame[frame["_place"] != math.inf]
    rest = frame[frame["_place"] == math.inf].sort_values(
        ["best_miou", "number"], ascending=[False, True], na_position="last", kind="stable"
    )
    return pd.concat([confirmed, rest])


def pooled_text(row: Mapping[str, Any]) -> str | None:
    """``0.612 ± 0.013 [0.580, 0.644] (3), tie group 1`` for a run of a confirmed group, else None."""
    count = row.get("confirmed_n")
    if count is None or not is_set(count):
        return None
    text = f"{row['confirmed_mean']:.3f}"
    if is_set(row.get("confirmed_sd")):
        low, high = row["confirmed_ci_low"], row["confirmed_ci_high"]
        text += f" ± {row['confirmed_sd']:.3f} [{low:.3f}, {high:.3f}]"
    return f"{text} ({int(count)}), tie group {int(row['tie_group'])}"


def policy_for(top: int | None, seeds: int | None, budgeted: bool) -> ConfirmPolicy | None:
    """The policy a search runs with: what the options give (either one turns it on), else the
    defaults under a time budget; None for none (0 networks or 0 seeds, or --trials alone)."""
    if top is None and seeds is None and not budgeted:
        return None
    policy = ConfirmPolicy(CONFIRM_TOP if top is None else top, CONFIRM_SEEDS if seeds is None else seeds)
    return policy if policy.runs > 0 else None
