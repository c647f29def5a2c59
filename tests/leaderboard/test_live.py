"""The live app's boards: a refresh reads only what changed since the last one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import pytest
from sqlalchemy import event

from leaderboard import app as live
from leaderboard._live import HELD_SEARCHES, LiveBoards
from leaderboard.data import load_live_view, load_trial_board
from nasfcn.space import load_space
from nasfcn.store import (
    Store,
    finish_trial,
    record_cost,
    record_epoch,
    search_details,
    search_list,
    upsert_trial,
)

TRIALS = 600
#: What a refresh may read when nothing changed: the watermark, one statement, no row of a trial.
UNCHANGED_STATEMENTS = 1
#: What a refresh may read after one trial learned an epoch: the watermark, the moved trials,
#: the seed spread and recipe, the proxy scores of the moved networks, the best 25 architectures
#: across searches, and the epochs and per-class IoU of the moved trial if it is drawn.
MOVED_STATEMENTS, MOVED_ROWS = 9, 60
COMPARED = ("trial_id", "number", "rank", "status", "best_miou", "epochs_trained", "latency_ms")


@dataclass
class Reads:
    """The SQL statements a block of code ran and the rows pandas read back."""

    statements: list[str] = field(default_factory=list)
    rows: int = 0


@contextmanager
def counting(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    reads = Reads()
    read_sql = pd.read_sql

    def counted(*args: object, **kwargs: object) -> pd.DataFrame:
        frame = read_sql(*args, **kwargs)  # type: ignore[call-overload]
        reads.rows += len(frame)
        return frame

    def statement(conn, cursor, text: str, *rest: object) -> None:
        reads.statements.append(text)

    with monkeypatch.context() as patch:
        patch.setattr(pd, "read_sql", counted)
        event.listen(store.engine, "before_cursor_execute", statement)
        try:
            yield reads
        finally:
            event.remove(store.engine, "before_cursor_execute", statement)


def _pick(statuses: list[str]) -> object:
    return lambda trials: live._drawn(statuses, {}, None, trials)


def _same_trials(board: pd.DataFrame, full: pd.DataFrame) -> None:
    assert board.loc[:, list(COMPARED)].equals(full.loc[:, list(COMPARED)])


@pytest.mark.slow
def test_a_refresh_reads_nothing_when_nothing_changed_and_only_what_moved_when_it_did(
    fresh_bulk, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, search = fresh_bulk(TRIALS)
    store = Store(url)
    details = search_details(store, search)
    boards = LiveBoards()
    first = boards.board(store, details, _pick([]))
    _same_trials(first.trials, load_live_view(store, search, _pick([])).trials)

    with counting(store, monkeypatch) as unchanged:
        again = boards.board(store, details, _pick([]))
    assert len(unchanged.statements) == UNCHANGED_STATEMENTS
    assert unchanged.rows == 0
    assert again.trials is first.trials

    with counting(store, monkeypatch) as filtered:  # other trials drawn: only their epochs are read
        failed = boards.board(store, details, _pick(["failed", "stopped_early"]))
    assert failed.trials is first.trials
    assert not any("FROM trials LEFT OUTER JOIN trial_costs" in s for s in filtered.statements)

    genotype = load_space("search_spaces/fcn_small.yaml").sample(10**6)
    recipe = {"epochs": 10}
    trial = upsert_trial(
        store, details["search_id"], TRIALS, genotype, dataset="shapes", recipe=recipe, status="running"
    )
    record_cost(store, trial, {"params": 1234, "latency_ms": 0.5})
    record_epoch(store, trial, 1, {"val_miou": 0.999, "val_per_class_iou": [0.999] * 4})
    with counting(store, monkeypatch) as moved:
        running = boards.board(store, details, _pick([]))
    assert len(moved.statements) <= MOVED_STATEMENTS
    assert moved.rows <= MOVED_ROWS < TRIALS  # a read of the search would be TRIALS rows
    full = load_live_view(store, search, _pick([]))
    _same_trials(running.trials, full.trials)
    top = running.trials.iloc[0]
    assert (top["trial_id"], top["status"], top["rank"], top["latency_ms"]) == (trial, "running", 1, 0.5)
    assert running.curve(trial)["val_miou"].tolist() == [0.999]  # the best is drawn, its epochs read

    record_epoch(store, trial, 2, {"val_miou": 0.5, "val_per_class_iou": [0.5] * 4})
    finish_trial(store, trial, "completed")
    done = boards.board(store, details, _pick([]))
    _same_trials(done.trials, load_live_view(store, search, _pick([])).trials)
    assert done.trials.iloc[0]["status"] == "completed"
    assert done.curve(trial)["val_miou"].tolist() == [0.999, 0.5]
    store.dispose()


#: What the detail page reads on each tick: its trial's row, epochs, per-class IoU and proxy scores.
DETAIL_ROWS = 20


@pytest.mark.slow
def test_a_trials_detail_page_reads_that_trial_and_nothing_over_the_others(
    fresh_bulk, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, search = fresh_bulk(TRIALS)
    store = Store(url)
    trial = int(load_live_view(store, search, lambda trials: []).trials["trial_id"].iloc[0])
    with counting(store, monkeypatch) as reads:
        board = load_trial_board(store, trial)
    store.dispose()
    assert reads.rows <= DETAIL_ROWS < TRIALS  # the best per architecture alone was every trial's row
    assert list(board.trials["trial_id"]) == [trial]
    assert len(board.curve(trial)) == 10
    assert board.across.empty


def test_the_server_holds_the_boards_of_the_latest_searches_only(handmade_db: str) -> None:
    store = Store(handmade_db)
    boards = LiveBoards()
    names = list(search_list(store)["name"])
    try:
        for name in [*names, names[0]]:
            board = boards.board(store, search_details(store, name), lambda trials: [])
            assert board.search == name
        held = list(boards._held)  # search ids, the one looked at longest ago first
        latest = [search_details(store, name)["search_id"] for name in [*names[2:], names[0]]]
    finally:
        store.dispose()
    assert len(names) > HELD_SEARCHES
    assert held == latest[-HELD_SEARCHES:]
