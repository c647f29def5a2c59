"""The compare menu: a bounded list however big the search, and typed text finds the rest."""

from __future__ import annotations

import pytest

from leaderboard import app as live
from leaderboard._compare import MENU_FOUND, MENU_TOP, found_options, menu_options, merged
from leaderboard.data import load_live_view
from nasfcn.store import Store, search_details

BIG = 5_000
#: Options a refresh may send: the best MENU_TOP and the compared ones, for any number of trials.
MENU_BOUND = MENU_TOP + live.COMPARE_MAX


@pytest.mark.slow
def test_the_compare_menu_of_a_big_search_is_bounded_and_typing_finds_any_trial(bulk_db) -> None:
    url, search = bulk_db(BIG)
    store = Store(url)
    try:
        details = search_details(store, search)
        loaded = load_live_view(store, search, lambda trials: live._drawn([], {}, None, trials))
        worst = loaded.scored.iloc[-1]
        chosen = [int(worst["trial_id"])]
        outputs = live._search_outputs(loaded, [], {}, None, chosen)
        found_by_number = found_options(store, details["search_id"], f"#{int(worst['number'])}")
        found_by_arch = found_options(store, details["search_id"], str(worst["arch_id"])[:6])
        nothing = found_options(store, details["search_id"], " # ")
    finally:
        store.dispose()
    options = outputs[7 + len(live.FILTER_KNOBS)]  # after the status and knob filters' options
    assert len(loaded.scored) > 10 * MENU_BOUND
    assert len(options) <= MENU_BOUND
    best = [int(t) for t in loaded.scored["trial_id"][:MENU_TOP]]
    assert [o["value"] for o in options] == [*best, int(worst["trial_id"])]  # the compared one stays
    assert any(o["value"] == int(worst["trial_id"]) for o in found_by_number)
    assert int(worst["trial_id"]) in {o["value"] for o in found_by_arch}
    assert len(found_by_arch) <= MENU_FOUND
    assert nothing == []


def test_found_trials_join_the_menu_once() -> None:
    kept = [{"label": "#1 a (mIoU 0.900)", "value": 1}]
    found = [{"label": "#1 a (mIoU 0.900)", "value": 1}, {"label": "#7 b (mIoU 0.100)", "value": 7}]
    assert [o["value"] for o in merged(kept, found)] == [1, 7]


def test_the_menu_lists_the_best_shown_trials_then_the_chosen(handmade_db: str) -> None:
    store = Store(handmade_db)
    try:
        trials = load_live_view(store, "alpha", lambda trials: []).trials
    finally:
        store.dispose()
    scored = trials[trials["best_miou"].notna()]
    last = int(scored["trial_id"].iloc[-1])
    options = menu_options(scored.head(1), trials, [last])
    assert [o["value"] for o in options] == [int(scored["trial_id"].iloc[0]), last]
    assert options[0]["label"].startswith(f"#{int(scored['number'].iloc[0])} {scored['arch_id'].iloc[0]}")
