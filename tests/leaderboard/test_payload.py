"""The static page's data block: compact, lossless where it matters, inert as HTML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leaderboard._payload import encode_curves, encode_genotypes, json_script, numbers, thin
from leaderboard.data import load_board
from leaderboard.table import pretty_genotype
from nasfcn.space import load_space
from nasfcn.store import Store


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
