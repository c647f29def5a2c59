"""Picking the trial to export from a search's leaderboard."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from nasfcn.confirm import FULL_RUNS, final_runs, pooled
from nasfcn.export._write import ExportError
from nasfcn.store import RESULT_STATUSES, Store


def select_trial(
    board: pd.DataFrame,
    search: str,
    trial: int | None = None,
    rank: int | None = None,
    max_latency_ms: float | None = None,
) -> pd.Series:
    """The leaderboard row to export: by trial number, by rank, or the best completed trial
    (within ``max_latency_ms`` when given); a search with final runs: the best of them; else with
    confirmation runs: the confirmed winner (``confirmed_winner``). When no trial completed
    but some were stopped early (a time budget's
    deadline can stop every one of them), the best of those: each is a trained network."""
    chosen = [
        name
        for name, v in (("--trial", trial), ("--rank", rank), ("--max-latency-ms", max_latency_ms))
        if v is not None
    ]
    if len(chosen) > 1:
        raise ExportError(
            f"give at most one of --trial, --rank and --max-latency-ms, got {' and '.join(chosen)}"
        )
    if board.empty:
        raise ExportError(f"search {search!r} has no trials yet")
    if trial is not None:
        rows = board[board["number"] == trial]
        if rows.empty:
            raise ExportError(
                f"search {search!r} has no trial {trial}; its trials are numbered "
                f"{int(board['number'].min())}..{int(board['number'].max())} "
                f"(see nasfcn trials --search {search})"
            )
        return rows.iloc[0]
    if rank is not None:
        rows = board[board["rank"] == rank]
        if rows.empty:
            ranked = int(board["rank"].max()) if board["rank"].notna().any() else 0
            raise ExportError(f"search {search!r} has no trial at rank {rank}; ranks go from 1 to {ranked}")
        return rows.iloc[0]
    scored = board["best_miou"].notna()
    trained = board[board["status"].isin(RESULT_STATUSES) & scored]
    if trained.empty:
        trained = board[(board["status"] == "stopped_early") & scored]
    if trained.empty:
        statuses = ", ".join(f"{k} {v}" for k, v in board["status"].value_counts().items())
        raise ExportError(
            f"search {search!r} has no trained trial yet ({statuses}); let it run until a trial "
            "has finished an epoch"
        )
    if max_latency_ms is not None:
        fast = trained[trained["latency_ms"] <= max_latency_ms]
        if fast.empty:
            raise ExportError(
                f"no completed trial of {search!r} runs within {max_latency_ms:g} ms; the fastest "
                f"takes {trained['latency_ms'].min():.3g} ms"
            )
        trained = fast
    finals = final_runs(board)
    if max_latency_ms is not None:
        finals = finals[finals["latency_ms"] <= max_latency_ms]
    if not finals.empty:  # the search's best networks trained for longer (nasfcn.search._final)
        trained = finals
    else:
        winner = confirmed_winner(board, trained)
        if winner is not None:
            return winner
    return trained.sort_values(["best_miou", "latency_ms", "number"], ascending=[False, True, True]).iloc[0]


def confirmed_winner(board: pd.DataFrame, allowed: pd.DataFrame | None = None) -> pd.Series | None:
    """The run to export of the network with the best mean over its confirmation runs (ties: lower
    latency, then the earlier trial), or None when nothing was confirmed.

    The run is the group's best by val (its weights are what gets exported); ``allowed``: the rows
    that may win (a latency limit), default all. Every run of the group is listed in ``confirmed``.
    """
    stats = pooled(board)
    if stats.empty:
        return None
    allowed = board if allowed is None else allowed
    group = board["confirms"].fillna(board["number"]).astype(int)
    runs = board.assign(_group=group)
    latency = runs.groupby("_group")["latency_ms"].min()
    stats = stats.assign(latency=stats["group"].map(latency))
    stats = stats.sort_values(["confirmed_mean", "latency", "group"], ascending=[False, True, True])
    for row in stats.itertuples(index=False):
        members = runs[(runs["_group"] == row.group) & runs["status"].isin(FULL_RUNS)]
        members = members[members.index.isin(allowed.index) & members["best_miou"].notna()]
        if members.empty:
            continue
        best = members.sort_values(["best_miou", "number"], ascending=[False, True]).iloc[0]
        return best.drop(labels=["_group"]).copy()
    return None


def confirmed_figures(board: pd.DataFrame, number: int) -> dict[str, Any] | None:
    """What a bundle says of a confirmed network (the group of trial ``number``): runs, mean, SD,
    95% interval, the seeds and the stored test mIoU; None when ``number`` was not confirmed."""
    group = board["confirms"].fillna(board["number"]).astype(int)
    stats = pooled(board)
    own = int(group[board["number"] == number].iloc[0]) if (board["number"] == number).any() else None
    found = stats[stats["group"] == own]
    if own is None or found.empty:
        return None
    row = found.iloc[0]
    runs = board[(group == own) & board["status"].isin(FULL_RUNS) & board["best_miou"].notna()]
    tested = runs["test_miou"].dropna() if "test_miou" in runs else pd.Series(dtype=float)
    sd = float(row["confirmed_sd"])
    figures: dict[str, Any] = {
        "seeds": int(row["confirmed_n"]),
        "mean": float(row["confirmed_mean"]),
        "sd": None if math.isnan(sd) else sd,
        "ci95": [_plain(row["confirmed_ci_low"]), _plain(row["confirmed_ci_high"])],
        "tie_group": int(row["tie_group"]),
        "runs": {int(n): float(v) for n, v in zip(runs["number"], runs["best_miou"], strict=True)},
        "run_seeds": sorted(int(s) for s in runs["seed"]),
        "test_miou": float(tested.iloc[0]) if not tested.empty else None,
    }
    spread = f" ± {sd:.3f}" if not math.isnan(sd) else ""
    figures["text"] = f"confirmed over {figures['seeds']} seeds: mean {figures['mean']:.3f}{spread}"
    return figures


def _plain(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def _latest_name(store: Store) -> str:
    from nasfcn.store import searches_frame

    return str(searches_frame(store)["name"].iloc[0])
