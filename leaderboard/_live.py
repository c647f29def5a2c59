"""The live app's boards, kept between refreshes and brought up to date by what changed.

A refresh first reads the search's watermark (``search_watermark``, one indexed statement).
Unchanged, the board is the one held: a filter, a cost axis or a comparison redraws it reading
no trial row, only the epochs and per-class IoU of trials it has not drawn before. Moved, it
reads the trials that changed since (``trials_since``: new, started, finished, with a new
epoch, or still unfinished), puts them in place of their old rows, and drops the epochs held
for them; a count that then disagrees with the watermark (trials deleted) reads the search
again. What a board adds to its trials from elsewhere (the seed spread of repeated networks,
proxy scores, the best per architecture across searches) is read again only when it moved.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from leaderboard._proxies import board_scores, with_proxies
from leaderboard.data import ACROSS_TOP, Board, class_names, with_seed_spread
from nasfcn.confirm import with_pooled
from nasfcn.store import (
    ARENA_KIND,
    EPOCH_COLUMNS,
    Store,
    Watermark,
    arena_trials_frame,
    best_per_architecture,
    epochs_frame,
    per_class_iou_frame,
    rank_trials,
    search_watermark,
    seed_spread_frame,
    spread_recipe,
    trials_since,
)

#: Statuses a trial can still leave: its row is read again on every move of the watermark.
UNFINISHED = ("pending", "running")
#: Columns a board's trials keep beyond the leaderboard's (the detail page shows them).
TIMES = ("started_at", "finished_at")
#: Searches whose boards the server holds (the latest looked at): memory does not grow with the
#: searches a reader switches between.
HELD_SEARCHES = 4


@dataclass
class _Held:
    """One search's board as last read: the raw trial rows, and what was read for them."""

    mark: Watermark
    rows: pd.DataFrame  # trials_since(..., None) brought up to date, unranked
    moved: list[str] | None = None  # arch ids of the trials read at the last move; None: all
    extras: dict[str, Any] = field(default_factory=dict)  # trials, scores, across, arena
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)  # of the trials in ``drawn``
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)
    drawn: set[int] = field(default_factory=set)  # trials whose epochs and per-class IoU are held


class LiveBoards:
    """The boards the live app shows, one per search, shared by the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}

    def board(
        self, store: Store, details: Mapping[str, Any], pick: Callable[[pd.DataFrame], Sequence[int]]
    ) -> Board:
        """Search ``details``' board, its epochs and per-class IoU those of the trials ``pick``
        chooses (trials -> ids), read only where the watermark says something changed."""
        with self._lock:
            held = self._update(store, details)
            trials = self._trials(store, details, held)
            chosen = {int(t) for t in pick(trials)}
            reused = {int(t) for t in trials.loc[trials["trial_id"].isin(chosen), "cached_from"].dropna()}
            self._draw(store, held, chosen | reused)
            epochs = held.epochs[held.epochs["trial_id"].isin(chosen)]
            per_class = held.per_class[held.per_class["trial_id"].isin(chosen)].reset_index(drop=True)
            return Board(
                search=details["name"],
                dataset=_dataset(details),
                status=details["status"],
                database=store.masked_url,
                trials=trials,
                epochs=epochs.reset_index(drop=True),
                per_class=per_class,
                across=held.extras["across"],
                searches=pd.DataFrame(),  # the live board draws no list of searches
                reused_epochs=held.epochs[held.epochs["trial_id"].isin(reused - chosen)],
                class_names=class_names(details, per_class),
                proxies=held.extras["scores"],
            )

    def _update(self, store: Store, details: Mapping[str, Any]) -> _Held:
        """The held board of the search, brought up to its current watermark."""
        search = int(details["search_id"])
        mark = search_watermark(store, search)
        held = self._held.pop(search, None)
        if held is None:
            held = _Held(mark, trials_since(store, search))
        elif held.mark != mark:
            held = _moved(store, search, held, mark)
        self._held[search] = held  # the latest last: the first one is the one looked at longest ago
        while len(self._held) > HELD_SEARCHES:
            self._held.pop(next(iter(self._held)))
        return held

    def _trials(self, store: Store, details: Mapping[str, Any], held: _Held) -> pd.DataFrame:
        """The board's trials (as ``search_trials`` gives them) from the held rows and extras."""
        if "trials" in held.extras:
            return held.extras["trials"]
        name, dataset = details["name"], details["dataset"]
        trials = rank_trials(held.rows, keep=TIMES)
        if not trials.empty:
            spread = seed_spread_frame(store, dataset, repeated_only=True)
            trials = with_seed_spread(trials, spread, spread_recipe(store, name))
        if details["kind"] == ARENA_KIND:  # an arena is stored once, whole: its facts never change
            arena = held.extras.get("arena")
            if arena is None or len(arena) != len(trials):
                arena = arena_trials_frame(store, name)
            held.extras["arena"] = arena
            trials = trials.merge(arena, on="trial_id", how="left")
        scores = _scores(store, details, held)
        held.extras.update(
            scores=scores,
            across=best_per_architecture(store, dataset, top=ACROSS_TOP),
            trials=with_proxies(with_pooled(trials), scores),
        )
        return held.extras["trials"]

    def _draw(self, store: Store, held: _Held, wanted: set[int]) -> None:
        """Read the epochs and per-class IoU of the ``wanted`` trials not held yet."""
        missing = sorted(wanted - held.drawn)
        if not missing and "trial_id" in held.epochs:
            return
        held.epochs = _joined(held.epochs, epochs_frame(store, trial_ids=missing, columns=EPOCH_COLUMNS))
        held.per_class = _joined(held.per_class, per_class_iou_frame(store, trial_ids=missing))
        held.drawn |= set(missing)


def _moved(store: Store, search: int, held: _Held, mark: Watermark) -> _Held:
    """``held`` with the trials that changed since its watermark read again, and what was read
    for them dropped; a count that disagrees with ``mark`` (trials deleted) reads them all."""
    unfinished = held.rows.loc[held.rows["status"].isin(UNFINISHED), "trial_id"].tolist()
    changed = trials_since(store, search, held.mark, also=unfinished)
    kept_rows = held.rows[~held.rows["trial_id"].isin(changed["trial_id"])]
    rows = pd.concat([kept_rows, changed], ignore_index=True)
    if len(rows) != mark.trials:
        return _Held(mark, trials_since(store, search))
    dropped = set(changed["trial_id"].astype(int))
    kept: dict[str, Any] = {k: held.extras[k] for k in ("arena", "scores") if k in held.extras}
    return _Held(
        mark,
        rows,
        moved=sorted(set(changed["arch_id"])),
        extras=kept,
        epochs=held.epochs[~held.epochs["trial_id"].isin(dropped)],
        per_class=held.per_class[~held.per_class["trial_id"].isin(dropped)],
        drawn=held.drawn - dropped,
    )


def _scores(store: Store, details: Mapping[str, Any], held: _Held) -> pd.DataFrame:
    """The proxy scores of the search's networks: all of them once, then those of the networks
    whose trials moved (a network is scored at its trial's cost step), newest first."""
    old = held.extras.get("scores")
    if old is None or held.moved is None:
        return board_scores(store, details)
    if not held.moved:
        return old
    fresh = board_scores(store, details, held.moved)
    return pd.concat([fresh, old[~old["arch_id"].isin(held.moved)]], ignore_index=True)


def _joined(held: pd.DataFrame, read: pd.DataFrame) -> pd.DataFrame:
    if held.empty:
        return read
    return pd.concat([held, read], ignore_index=True).sort_values(
        [c for c in ("trial_id", "epoch", "class_index") if c in read], ignore_index=True
    )


def _dataset(details: Mapping[str, Any]) -> str:
    if details["kind"] == ARENA_KIND:
        return f"table {details['config'].get('table')} (arena)"
    return str(details["dataset"])
