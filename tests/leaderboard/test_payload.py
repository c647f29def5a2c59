"""The static page's data block: compact, lossless where it matters, inert as HTML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leaderboard._payload import (
    board_payload,
    encode_curves,
    encode_genotypes,
    encode_shared_curves,
    json_script,
    numbers,
    thin,
)
from leaderboard.data import Board, load_board, load_view
from leaderboard.table import pretty_genotype, table_frame
from nasfcn.space import load_space
from nasfcn.store import Store, epochs_frame, open_store


def _decode(encoded: dict, i: int) -> dict:
    """Trial ``i``'s genotype back from the block, as the page script rebuilds it."""
    root: dict = {}
    for path, values, codes in zip(encoded["paths"], encoded["values"], encoded["codes"], strict=True):
        if codes[i] < 0:
            continue
        *parents, leaf = path.split(".")
        at = root
        for key in parents:
            at = at.setdefault(key, {})
        at[leaf] = values[codes[i]]
    return root


def test_genotypes_round_trip_and_share_their_values() -> None:
    space = load_space("search_spaces/fcn_small.yaml")
    texts = [space.sample(i).to_json() for i in range(50)]
    encoded = encode_genotypes(texts)
    for i, text in enumerate(texts):
        assert _decode(encoded, i) == json.loads(text)
    skip = encoded["paths"].index("skip")
    assert len(encoded["values"][skip]) < 10  # a handful of skip paths, each written once
    assert len(json.dumps(encoded)) < sum(map(len, texts)) / 2


def test_genotype_values_keep_their_json_type_and_missing_leaves() -> None:
    encoded = encode_genotypes(['{"a": 1, "b": {"c": [1, 2]}}', '{"a": true, "b": {}}', '{"a": 1.0}'])
    a = encoded["paths"].index("a")
    assert [encoded["values"][a][c] for c in encoded["codes"][a]] == [1, True, 1.0]
    assert [type(encoded["values"][a][c]) for c in encoded["codes"][a]] == [int, bool, float]
    assert _decode(encoded, 1) == {"a": True, "b": {}}  # an empty dict is a leaf
    assert _decode(encoded, 2) == {"a": 1.0}  # no b at all


def test_curves_are_compact_and_thinned_to_what_a_plot_can_show() -> None:
    epochs = pd.DataFrame(
        {
            "trial_id": [1, 1, 1, 2, 2, 3],
            "epoch": [1, 2, 3, 1, 4, 1],
            "val_miou": [0.1, 0.2, 0.3, 0.5, 0.6, np.nan],
        }
    )
    assert encode_curves(epochs, [2, 1, 3, 4]) == [
        [[1, 4], [0.5, 0.6]],  # a gap: the epochs are listed
        [1, [0.1, 0.2, 0.3]],  # one by one from epoch 1
        [[], []],  # no evaluated epoch
        [[], []],  # no epochs at all
    ]
    values = np.sin(np.linspace(0, 3, 5_000))
    kept = thin(values, 600)
    assert len(kept) <= 600
    assert kept[0] == 0
    assert kept[-1] == len(values) - 1
    assert int(np.argmax(values)) in kept
    long = pd.DataFrame({"trial_id": 7, "epoch": np.arange(1, 5_001), "val_miou": values})
    ((steps, mious),) = encode_curves(long, [7])
    assert len(steps) == len(mious) <= 600
    assert max(mious) == pytest.approx(values.max(), abs=1e-6)


def test_numbers_round_to_six_digits_and_keep_missing_values_missing() -> None:
    assert numbers(np.array([0.123456789, 12345.6789, np.nan, np.inf, 0.0, -2.5e-7])) == [
        0.123457,
        12345.7,
        None,
        None,
        0.0,
        -2.5e-07,
    ]
    assert numbers(pd.Series([3, 40_000_000_000])) == [3, 40_000_000_000]
    assert numbers(pd.Series([None, 1.5], dtype=object)) == [None, 1.5]


def test_json_script_cannot_be_closed_by_stored_text() -> None:
    hostile = "</script><script>window.__x=1</script>&amp;\u2028"
    element = json_script({"name": hostile}, "board-data")
    assert element.count("</script>") == 1
    assert element.endswith("</script>")
    assert "<script>window" not in element
    body = element.removeprefix('<script type="application/json" id="board-data">').removesuffix("</script>")
    assert json.loads(body) == {"name": hostile}


def _expand(column: list | dict) -> list:
    """A column as the page reads it (``texts`` may have coded it)."""
    return column if isinstance(column, list) else [column["values"][c] for c in column["codes"]]


def _fact(payload: dict, k: int) -> list[str]:
    """Fact ``k`` of every trial as the page reads it: coded texts, or a table column's numbers
    written as the table writes them."""
    from leaderboard.table import COLUMNS, format_cell

    fact = payload["detail"]["facts"][k]
    if isinstance(fact, dict) and "column" in fact:
        kind = next(c.kind for c in COLUMNS if c.key == fact["column"])
        return [format_cell(v, kind) for v in payload["table"]["sort"][fact["column"]]]
    return _expand(fact)


def test_columns_of_few_distinct_texts_are_coded_once_per_value() -> None:
    from leaderboard._payload import texts

    statuses = ["completed"] * 90 + ["failed"] * 10
    coded = texts(statuses)
    assert coded == {"values": ["completed", "failed"], "codes": [0] * 90 + [1] * 10}
    assert _expand(coded) == statuses
    assert texts(["a", "b", "c"]) == ["a", "b", "c"]  # as many values as rows: kept as they are


def test_the_block_holds_each_trials_detail_as_the_detail_page_showed_it(handmade_db: str) -> None:
    from leaderboard._payload import board_payload
    from leaderboard.table import detail_items, table_frame

    board = load_board(Store(handmade_db), "alpha")
    payload = board_payload(board, board.curves(), table_frame(board.trials))
    detail = payload["detail"]
    for i, row in enumerate(board.trials.to_dict("records")):
        items = detail_items(row)[:10]
        assert [label for label, _ in items] == detail["labels"]
        assert [_fact(payload, k)[i] for k in range(10)] == [text for _, text in items]
        assert _decode(payload["genotypes"], i) == json.loads(pretty_genotype(row["genotype_json"]))
    best = payload["curves"][0]
    assert best == [1, [0.3, 0.6, 0.5]]
    assert payload["classes"][0][:2] == [0.9, 0.6]  # at the best epoch
    assert payload["classes"][0][2] is None


def test_genotypes_shared_by_many_trials_decode_to_each_ones_own() -> None:
    space = load_space("search_spaces/fcn_small.yaml")
    distinct = [space.sample(i).to_json() for i in range(4)]
    texts = [distinct[(i * 7 + i // 5) % 4] for i in range(80)]  # an arena's trials re-run a few networks
    encoded = encode_genotypes(texts)
    for i, text in enumerate(texts):
        assert _decode(encoded, i) == json.loads(text)
    for codes, values in zip(encoded["codes"], encoded["values"], strict=True):
        assert len(values) <= 4  # each value written once however many trials share it
        by_text = dict(zip(texts, codes, strict=True))
        assert [by_text[t] for t in texts] == codes  # one genotype, one code: whichever trial it is
    single = encode_genotypes(texts[:1])
    assert _decode(single, 0) == json.loads(texts[0])


def _trial_curve(payload: dict, i: int) -> tuple[list[int], list[float]]:
    """Trial ``i``'s (epochs, val mIoU) as the page script reads them (``board.js``'s ``curveOf``)."""
    shared = payload.get("curve_of")
    if shared is None:
        first, values = payload["curves"][i]
        count = len(values)
    elif shared["curve"][i] < 0:
        return [], []
    else:
        first, values = payload["curves"][shared["curve"][i]]
        count = shared["points"][i]
    epochs = list(range(first, first + count)) if isinstance(first, int) else first[:count]
    return epochs, values[:count]


def _arena_board(url: str, name: str) -> tuple[dict, pd.DataFrame, Board]:
    """The arena's page payload, its epochs as stored (one row per trial and epoch), its board."""
    store = open_store(url)
    try:
        board = load_view(store, name, curves_only=True)
        assert isinstance(board, Board)
        payload = board_payload(board, board.curves(), table_frame(board.trials))
        return payload, epochs_frame(store, name, columns=("epoch", "val_miou")), board
    finally:
        store.dispose()


@pytest.mark.slow
def test_each_arena_trial_shows_its_own_curve_read_from_its_table_run(arena_db) -> None:
    payload, epochs, board = _arena_board(*arena_db(2))
    ids = payload["table"]["ids"]
    assert len(ids) == 2 * 2 * 50  # pairs x repeats x trials
    stored = {t: group.sort_values("epoch") for t, group in epochs.groupby("trial_id")}
    cut = 0
    for i, trial in enumerate(ids):
        mine = stored.get(trial, epochs.iloc[0:0])
        xs, ys = _trial_curve(payload, i)
        assert xs == mine["epoch"].tolist()
        assert ys == pytest.approx(mine["val_miou"].tolist())
        cut += payload["curve_of"]["points"][i] < len(payload["curves"][payload["curve_of"]["curve"][i]][1])
    assert cut > 0  # trials ASHA stopped read a prefix of a longer run of the same network and seed
    expanded = board.curves()  # what the plots draw: each trial's own epochs too
    assert len(expanded) == len(epochs)
    merged = expanded.merge(epochs, on=["trial_id", "epoch"], suffixes=("", "_stored"))
    assert len(merged) == len(epochs)
    assert merged["val_miou"].tolist() == pytest.approx(merged["val_miou_stored"].tolist())


@pytest.mark.slow
def test_an_arena_board_reads_and_embeds_one_curve_per_table_run_not_per_trial(arena_db) -> None:
    small, _, small_board = _arena_board(*arena_db(2))
    big, _, big_board = _arena_board(*arena_db(20))
    assert len(big["table"]["ids"]) == 10 * len(small["table"]["ids"])
    runs = 4 * 2  # architectures x table seeds
    for board, payload in ((small_board, small), (big_board, big)):
        assert board.epochs["trial_id"].nunique() <= runs  # read from the database
        assert len(payload["curves"]) <= runs  # written into the page
    assert len(json.dumps(big["curves"])) < 2 * len(json.dumps(small["curves"]))
    per_trial = len(json.dumps(big["curve_of"])) / len(big["table"]["ids"])
    assert per_trial < 12  # a curve index and a point count


def test_shared_curves_give_each_trial_the_points_up_to_its_last_epoch() -> None:
    shared = pd.DataFrame(
        {"trial_id": [10, 10, 10, 10, 20, 20, 20], "epoch": [1, 2, 3, 4, 1, 3, 5], "val_miou": [0.1] * 7}
    )
    source = pd.Series({1: 10.0, 2: 10.0, 3: 20.0, 4: np.nan, 5: 10.0, 6: 30.0})
    trained = pd.Series({1: 2, 2: 4, 3: 4, 4: 3, 5: 0, 6: 2})
    encoded = encode_shared_curves(shared, source, trained, [1, 2, 3, 4, 5, 6])
    assert encoded["curves"] == [[1, [0.1] * 4], [[1, 3, 5], [0.1] * 3]]
    # a prefix of its run; epochs with gaps counted up to its last; no run (NaN, or none read): none
    assert encoded["curve_of"] == {"curve": [0, 0, 1, -1, 0, -1], "points": [2, 4, 2, 0, 0, 0]}
    assert _trial_curve(encoded, 2) == ([1, 3], [0.1, 0.1])
