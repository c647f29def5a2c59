"""One page of a search's ranked trials, sorted and filtered in SQL, and the refresh watermark."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import event, text

from nasfcn.space import load_space
from nasfcn.store import (
    ColumnFilter,
    Condition,
    PageQuery,
    PageQueryError,
    Store,
    board_watermark,
    create_search,
    finish_trial,
    knob_values,
    leaderboard_frame,
    open_store,
    record_cost,
    record_epoch,
    search_list,
    search_watermark,
    seed_spread_frame,
    trials_page,
    trials_since,
    upsert_trial,
)
from nasfcn.store._pages import _page_statements, _watermark_statement

SPACE = load_space("search_spaces/fcn_small.yaml")
RECIPE = {"epochs": 2}
#: (val mIoU per epoch, final status) of the search's trials; two share the best result.
PLANS = [
    ([0.3, 0.5], "completed"),
    ([0.6], "stopped_early"),
    ([], "failed"),
    ([0.2, 0.6], "completed"),
    ([0.1, 0.4], "completed"),
    ([0.35], "stopped_early"),
    ([], "rejected_by_constraint"),
    ([0.45, 0.55], "completed"),
]


def _search(store: Store, name: str = "paged") -> int:
    search = create_search(store, name, "shapes", config={}, recipe=RECIPE)
    for number, (curve, status) in enumerate(PLANS):
        trial = upsert_trial(
            store, search, number, SPACE.sample(number), dataset="shapes", recipe=RECIPE, status="running"
        )
        record_cost(store, trial, {"params": 1000 * (number + 1), "latency_ms": 9.0 - number})
        for epoch, miou in enumerate(curve, start=1):
            record_epoch(store, trial, epoch, {"val_miou": miou, "val_per_class_iou": [miou, miou]})
        finish_trial(store, trial, status, error="boom" if status == "failed" else None)
    return search


def _ids(frame: pd.DataFrame) -> list[int]:
    return [int(t) for t in frame["trial_id"]]


def test_pages_follow_the_leaderboards_order_and_ranks(db_url: str) -> None:
    store = open_store(db_url)
    search = _search(store)
    board = leaderboard_frame(store, "paged")
    first = trials_page(store, search, PageQuery(offset=0, limit=3))
    rest = trials_page(store, search, PageQuery(offset=3, limit=100))
    assert first.total == rest.total == len(PLANS)
    assert list(first.rows.columns) == list(board.columns)
    assert _ids(first.rows) + _ids(rest.rows) == _ids(board)
    ranks = pd.concat([first.rows, rest.rows])["rank"]
    assert list(ranks.fillna(-1)) == list(board["rank"].fillna(-1))  # ties share a rank; none: no rank
    assert list(first.rows["rank"]) == [1, 1, 3]
    assert first.rows.loc[0, "upsample"] == board.loc[0, "upsample"]  # knobs parsed as the board does


def test_a_page_sorts_by_a_column_with_blanks_last_and_ties_in_rank_order(db_url: str) -> None:
    store = open_store(db_url)
    search = _search(store)
    board = leaderboard_frame(store, "paged")
    worst_first = trials_page(store, search, PageQuery(sort=(("best_miou", "asc"),))).rows
    scored = board[board["best_miou"].notna()].sort_values(["best_miou", "latency_ms"], kind="stable")
    assert _ids(worst_first)[: len(scored)] == _ids(scored)
    assert worst_first["best_miou"].tail(2).isna().all()
    ranks = dict(zip(board["trial_id"], board["rank"].fillna(-1), strict=True))
    assert list(worst_first["rank"].fillna(-1)) == [
        ranks[t] for t in worst_first["trial_id"]
    ]  # counted from below
    by_rank = trials_page(store, search, PageQuery(sort=(("rank", "asc"),))).rows
    assert _ids(by_rank) == _ids(board)
    widest = trials_page(store, search, PageQuery(sort=(("width", "desc"),))).rows
    assert list(widest["width"]) == sorted(board["width"], reverse=True)
    with pytest.raises(PageQueryError, match="cannot sort by 'genotype_json'"):
        trials_page(store, search, PageQuery(sort=(("genotype_json", "asc"),)))


def test_a_page_filters_by_status_knob_and_column_conditions(db_url: str) -> None:
    store = open_store(db_url)
    search = _search(store)
    board = leaderboard_frame(store, "paged")
    done = trials_page(store, search, PageQuery(statuses=("completed", "failed")))
    assert done.total == int(board["status"].isin(["completed", "failed"]).sum())
    upsample = str(board.loc[0, "upsample"])
    same = trials_page(store, search, PageQuery(knobs={"upsample": (upsample,)})).rows
    assert _ids(same) == _ids(board[board["upsample"] == upsample])
    attention = str(board.loc[0, "attention"])  # "none" or "type@where", as the board writes it
    assert _ids(board.head(1))[0] in _ids(
        trials_page(store, search, PageQuery(knobs={"attention": (attention,)})).rows
    )
    good = ColumnFilter((Condition("best_miou", "greaterThanOrEqual", 0.55),))
    assert _ids(trials_page(store, search, PageQuery(filters=(good,))).rows) == _ids(
        board[board["best_miou"] >= 0.55]
    )
    cheap, failed = Condition("params", "lessThan", 2500), Condition("status", "contains", "FAIL")
    picked = trials_page(store, search, PageQuery(filters=(ColumnFilter((cheap, failed), "or"),))).rows
    expected = board[(board["params"] < 2500) | (board["status"] == "failed")]
    assert sorted(_ids(picked)) == sorted(_ids(expected))
    kernels = str(board.loc[0, "kernels"])
    typed = ColumnFilter((Condition("kernels", "equals", kernels),))
    assert set(trials_page(store, search, PageQuery(filters=(typed,))).rows["kernels"]) == {kernels}
    blank = ColumnFilter((Condition("best_miou", "blank"),))
    assert trials_page(store, search, PageQuery(filters=(blank,))).total == 2
    with pytest.raises(PageQueryError, match="unknown filter condition 'like'"):
        trials_page(store, search, PageQuery(filters=(ColumnFilter((Condition("arch_id", "like", "a"),)),)))
    assert knob_values(store, search, ["upsample"])["upsample"] == sorted(set(board["upsample"]))
    later = create_search(store, "later", "shapes", config={}, recipe=RECIPE)
    assert later > search
    assert list(search_list(store)["name"]) == ["later", "paged"]


def test_the_watermark_moves_when_a_trial_starts_learns_or_finishes_and_only_then(db_url: str) -> None:
    store = open_store(db_url)
    search = _search(store)
    other = create_search(store, "other", "shapes", config={}, recipe=RECIPE)
    mark = board_watermark(store, search)
    assert board_watermark(store, search) == mark
    genotype = SPACE.sample(99)
    trial = upsert_trial(store, search, 99, genotype, dataset="shapes", recipe=RECIPE, status="running")
    started = board_watermark(store, search)
    assert started != mark
    record_epoch(store, trial, 1, {"val_miou": 0.9})
    learned = board_watermark(store, search)
    assert learned != started
    finish_trial(store, trial, "completed")
    assert board_watermark(store, search) != learned
    assert trials_page(store, search, PageQuery(limit=1)).rows.loc[0, "best_miou"] == 0.9
    assert board_watermark(store, other) == board_watermark(store, other)


def test_trials_since_reads_the_trials_that_moved_and_no_other(db_url: str) -> None:
    store = open_store(db_url)
    search = _search(store)
    everything = trials_since(store, search)
    assert _ids(everything) == sorted(_ids(leaderboard_frame(store, "paged")))
    mark = search_watermark(store, search)
    last = int(everything["trial_id"].iloc[-1])  # the trial at the marked start and finish
    assert _ids(trials_since(store, search, mark)) == [last]
    genotype = SPACE.sample(99)
    trial = upsert_trial(store, search, 99, genotype, dataset="shapes", recipe=RECIPE, status="running")
    started = search_watermark(store, search)
    assert trial in _ids(trials_since(store, search, mark))
    old = int(everything["trial_id"].iloc[0])
    record_epoch(store, old, 9, {"val_miou": 0.99})  # a finished trial learns (an epoch rewritten)
    learned = trials_since(store, search, started, also=[trial])
    assert {old, trial} <= set(_ids(learned)) <= {old, trial, last}  # and the one at the marked finish
    assert learned.set_index("trial_id").loc[old, "best_miou"] == 0.99
    assert {"upsample", "started_at", "finished_at"} <= set(learned.columns)  # knobs and times parsed
    before = search_watermark(store, search)
    finish_trial(store, trial, "completed")
    assert trial in _ids(trials_since(store, search, before))


def _plan(store: Store, statement: object) -> str:
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    with store.engine.connect() as connection:
        return "\n".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))


def test_sqlite_pages_through_the_rank_index_and_reads_the_watermark_from_indexes(tmp_path) -> None:
    """The plans at 10^5 trials depend on these: a page walks ``ix_trials_search_best`` in rank
    order and stops at its limit (no sort of the whole search); the watermark reads maxima
    from indexes."""
    store = open_store(f"sqlite:///{tmp_path / 'plans.db'}")
    search = _search(store)
    count, page = _page_statements(store, search, PageQuery(offset=100, limit=100))
    plan = _plan(store, page)
    assert "SEARCH trials USING INDEX ix_trials_search_best (search_id=?)" in plan
    assert "USING COVERING INDEX ix_trials_search_best (search_id=? AND best_miou>?)" in plan  # the rank
    assert "SCAN trials" not in plan
    assert "SCAN trials" not in _plan(store, count)
    watermark = _plan(store, _watermark_statement(search))
    assert "ix_trials_search_started" in watermark
    assert "ix_trials_search_finished" in watermark
    assert "SCAN trials" not in watermark


def test_sqlite_finds_a_pages_seed_spread_through_the_arch_index(tmp_path) -> None:
    """A live page reads the runs of its own networks: by arch id through ``ix_trials_arch``, not
    by walking ``ix_trials_dataset_best`` over every run on the dataset (10^5 at scale)."""
    store = open_store(f"sqlite:///{tmp_path / 'spread.db'}")
    _search(store)
    arch_ids = leaderboard_frame(store, "paged")["arch_id"].head(3).tolist()
    read: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement: str, parameters: object, *_rest: object) -> None:
        read.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        seed_spread_frame(store, "shapes", repeated_only=True, arch_ids=arch_ids)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    (statement, parameters), *_ = [(s, p) for s, p in read if "trial_key" in s]
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    store.dispose()
    plan = "\n".join(str(row[-1]) for row in rows)
    assert "ix_trials_arch (arch_id=?)" in plan
    assert "ix_trials_dataset_best" not in plan
    assert "SCAN trials" not in plan
