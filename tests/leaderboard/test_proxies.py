"""Zero-cost proxy scores on the board: a column per stored proxy, and each trial's scores in its detail."""

from __future__ import annotations

import json
import math
import re

import pytest
from plotly.utils import PlotlyJSONEncoder

from leaderboard import app as live
from leaderboard._grid import column_defs, page_query, page_rows
from leaderboard._payload import board_payload
from leaderboard._proxies import format_score, proxy_facts
from leaderboard.data import load_board, load_trial_board
from leaderboard.static import render
from leaderboard.table import Column, table_columns, table_frame
from nasfcn.store import Store, leaderboard_frame, record_proxy_scores, search_details


def _score(store: Store) -> dict[str, str]:
    """Scores of ``alpha``'s networks: synflow of its two best, and snip, which raised on the best."""
    board = leaderboard_frame(store, "alpha").sort_values("number")
    archs = board["arch_id"].tolist()
    record_proxy_scores(
        store, archs[0], "shapes", "16x3x32x32", 0, {"synflow": {"value": 1.5e20, "seconds": 0.04}}
    )
    record_proxy_scores(
        store,
        archs[0],
        "shapes",
        "16x3x32x32",
        0,
        {"snip": {"value": None, "error": "RuntimeError: <b>out of memory</b>", "seconds": 0.2}},
    )
    record_proxy_scores(
        store, archs[1], "shapes", "16x3x32x32", 0, {"synflow": {"value": 123.456, "seconds": 0.05}}
    )
    record_proxy_scores(store, archs[1], "digits", "16x3x32x32", 0, {"zen": {"value": 9.0, "seconds": 0.05}})
    return {"best": archs[0], "second": archs[1]}


@pytest.fixture
def scored(handmade_db: str) -> Store:
    store = Store(handmade_db)
    _score(store)
    yield store
    store.dispose()


def test_each_stored_proxy_is_a_column_after_the_cost_and_none_without_scores(scored: Store) -> None:
    board = load_board(scored, "alpha")
    columns = table_columns(table_frame(board.trials))
    keys = [c.key for c in columns]
    assert keys[keys.index("latency_ms") + 1 : keys.index("latency_ms") + 3] == [
        "proxy:synflow",
        "proxy:snip",
    ]
    assert Column("proxy:synflow", "synflow", "score") in columns
    assert "proxy:zen" not in keys  # scored on another dataset
    frame = table_frame(board.trials).set_index("trial")
    assert frame.loc[0, "proxy:synflow"] == pytest.approx(1.5e20)
    assert frame.loc[1, "proxy:synflow"] == pytest.approx(123.456)
    assert math.isnan(frame.loc[2, "proxy:synflow"])
    assert math.isnan(frame.loc[0, "proxy:snip"])
    lonely = load_board(scored, "lonely")
    assert not any(c.kind == "score" for c in table_columns(table_frame(lonely.trials)))


def test_the_static_file_has_the_columns_and_each_trials_scores_in_its_detail(scored: Store) -> None:
    board = load_board(scored, "alpha")
    html = render(board)
    assert '<th data-kind="score" scope="col">synflow</th>' in html
    assert '<th data-kind="score" scope="col">snip</th>' in html
    payload = board_payload(board, board.curves(), table_frame(board.trials))
    table = payload["table"]
    order = {trial: i for i, trial in enumerate(table["sort"]["trial"])}
    assert table["sort"]["proxy:synflow"][order[0]] == pytest.approx(1.5e20)
    proxies = {p["name"]: p for p in payload["detail"]["proxies"]}
    assert list(proxies) == ["synflow", "snip"]
    numbers = payload["detail"]["numbers"]
    best, second = numbers.index(0), numbers.index(1)
    assert proxies["synflow"]["column"] == "proxy:synflow"
    assert proxies["synflow"]["seconds"][best] == pytest.approx(0.04)
    assert proxies["snip"]["errors"][best] == "RuntimeError: <b>out of memory</b>"
    assert proxies["snip"]["errors"][second] == ""
    lonely = load_board(scored, "lonely")
    assert 'data-kind="score"' not in render(lonely)
    assert board_payload(lonely, lonely.curves(), table_frame(lonely.trials))["detail"]["proxies"] == []


def test_the_live_page_reads_its_rows_scores_and_does_not_sort_by_them(scored: Store) -> None:
    details = search_details(scored, "alpha")
    rows = page_rows(scored, details, page_query({"startRow": 0, "endRow": 2}))["rowData"]
    assert [row["proxy:synflow"] for row in rows] == [pytest.approx(1.5e20), pytest.approx(123.456)]
    request = {"startRow": 0, "endRow": 9, "sortModel": [{"colId": "proxy:synflow", "sort": "asc"}]}
    assert page_query(request).sort == ()  # the database sorts: not by a proxy
    spec = {s["field"]: s for s in column_defs((Column("proxy:synflow", "synflow", "score"),))}[
        "proxy:synflow"
    ]
    assert spec["sortable"] is False
    assert spec["filter"] is False
    assert "not sortable here" in spec["headerTooltip"]
    outputs = live._search_outputs(load_board(scored, "alpha"), [], {}, None, None)
    fields = [spec["field"] for spec in outputs[5]]  # the table's columnDefs
    assert fields[fields.index("latency_ms") + 1 : fields.index("latency_ms") + 3] == [
        "proxy:synflow",
        "proxy:snip",
    ]


def test_a_trials_detail_page_lists_its_networks_scores(scored: Store) -> None:
    trials = leaderboard_frame(scored, "alpha").set_index("number")
    best = int(trials.loc[0, "trial_id"])
    page = live.detail_page(load_trial_board(scored, best), best)
    text = json.dumps(page, cls=PlotlyJSONEncoder)
    assert "Zero-cost proxies" in text
    assert '"id": "proxies"' in text
    assert "RuntimeError: <b>out of memory</b>" in text
    assert "1.50e20" in text
    facts = proxy_facts(load_trial_board(scored, best).trials.iloc[0].to_dict())
    assert facts == [
        ("synflow", "1.50e20", "0.040", ""),
        ("snip", "–", "0.200", "RuntimeError: <b>out of memory</b>"),
    ]
    failed = int(trials.loc[2, "trial_id"])  # a network with no score held
    page = live.detail_page(load_trial_board(scored, failed), failed)
    assert "Zero-cost proxies" not in json.dumps(page, cls=PlotlyJSONEncoder)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5e20, "1.50e20"),
        (-2.346e-7, "-2.35e-7"),
        (123.456, "123.5"),
        (9999.6, "10000"),
        (0.001234, "0.001234"),
        (12.5, "12.5"),
        (0.0, "0"),
        (-2.0, "-2"),
        (float("nan"), "–"),
        (None, "–"),
    ],
)
def test_a_score_is_written_in_four_significant_digits(value: float | None, text: str) -> None:
    assert format_score(value) == text
    assert re.fullmatch(r"[-\d.e–]+", text)
