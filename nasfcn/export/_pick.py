"""Picking the trial to export from a search's leaderboard."""

from __future__ import annotations

import pandas as pd

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
    (within ``max_latency_ms`` when given)."""
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
    trained = board[board["status"].isin(RESULT_STATUSES) & board["best_miou"].notna()]
    if trained.empty:
        statuses = ", ".join(f"{k} {v}" for k, v in board["status"].value_counts().items())
        raise ExportError(
            f"search {search!r} has no completed trial yet ({statuses}); let it finish, or export "
            f"a stopped-early one with --trial N"
        )
    if max_latency_ms is not None:
        fast = trained[trained["latency_ms"] <= max_latency_ms]
        if fast.empty:
            raise ExportError(
                f"no completed trial of {search!r} runs within {max_latency_ms:g} ms; the fastest "
                f"takes {trained['latency_ms'].min():.3g} ms"
            )
        trained = fast
    return trained.sort_values(["best_miou", "latency_ms", "number"], ascending=[False, True, True]).iloc[0]


def _latest_name(store: Store) -> str:
    from nasfcn.store import searches_frame

    return str(searches_frame(store)["name"].iloc[0])
