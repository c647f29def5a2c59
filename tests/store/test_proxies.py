"""Zero-cost proxy scores in SQL, on SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import math
import threading

import pytest

from nasfcn.space import load_space
from nasfcn.store import (
    PROXY_SCORE_COLUMNS,
    Store,
    create_search,
    open_store,
    proxy_scores_frame,
    proxy_values,
    record_proxy_scores,
    stored_proxies,
    upsert_architecture,
    upsert_trial,
)

SPACE = load_space("search_spaces/fcn_tiny.yaml")
SHAPE = "16x3x64x64"


def _search(store: Store, name: str, numbers: list[int], dataset: str = "shapes") -> list[str]:
    """A search whose trials built ``SPACE.sample(n)`` for each n; their arch ids."""
    search = create_search(store, name, dataset)
    archs = []
    for number, sample in enumerate(numbers):
        genotype = SPACE.sample(sample)
        upsert_trial(store, search, number, genotype, dataset=dataset, recipe={}, status="running")
        archs.append(genotype.arch_id)
    return archs


def test_a_score_is_stored_once_and_an_error_without_a_value(db_url: str) -> None:
    store = open_store(db_url)
    (arch,) = _search(store, "s", [0])
    scores = {
        "synflow": {"value": 1.5e20, "error": None, "seconds": 0.04},
        "snip": {"value": math.nan, "error": "RuntimeError: out of memory", "seconds": 0.2},
    }
    record_proxy_scores(store, arch, "shapes", SHAPE, 0, scores, device="cpu")
    again = {"synflow": {"value": 7.0, "error": None, "seconds": 9.0}}  # a second writer of the same score
    record_proxy_scores(store, arch, "shapes", SHAPE, 0, again, device="cuda:0")

    frame = proxy_scores_frame(store, "s")
    assert tuple(frame.columns) == PROXY_SCORE_COLUMNS
    frame = frame.set_index("proxy")
    assert len(frame) == 2
    assert frame.loc["synflow", "value"] == pytest.approx(1.5e20)  # the first stays
    assert frame.loc["synflow", "device"] == "cpu"
    assert frame.loc["synflow", "seconds"] == pytest.approx(0.04)
    assert math.isnan(frame.loc["snip", "value"])
    assert frame.loc["snip", "error"] == "RuntimeError: out of memory"
    assert stored_proxies(store, arch, "shapes", SHAPE, 0) == {"synflow", "snip"}
    assert stored_proxies(store, arch, "shapes", SHAPE, 1) == set()  # another seed
    assert stored_proxies(store, arch, "shapes", "8x3x64x64", 0) == set()  # another minibatch
    assert stored_proxies(store, arch, "digits", SHAPE, 0) == set()  # another dataset


def test_a_search_reads_its_networks_scores_on_its_dataset_in_one_frame(db_url: str) -> None:
    store = open_store(db_url)
    mine = _search(store, "mine", [0, 1, 1])
    other = _search(store, "other", [2])
    for arch, value in zip([*mine[:2], *other], [1.0, 2.0, 3.0], strict=True):
        record_proxy_scores(store, arch, "shapes", SHAPE, 0, {"zen": {"value": value, "seconds": 0.1}})
    record_proxy_scores(store, mine[0], "digits", SHAPE, 0, {"zen": {"value": 9.0, "seconds": 0.1}})
    record_proxy_scores(store, mine[0], "shapes", SHAPE, 3, {"synflow": {"value": 4.0, "seconds": 0.1}})

    frame = proxy_scores_frame(store, "mine")
    assert set(frame["arch_id"]) == set(mine)
    assert set(frame["dataset"]) == {"shapes"}
    assert sorted(proxy_scores_frame(store, "mine", seed=0)["value"]) == [1.0, 2.0]
    assert proxy_scores_frame(store, "mine", shape="1x3x8x8").empty
    by_arch = proxy_scores_frame(store, arch_ids=[mine[0]], dataset="digits")
    assert by_arch["value"].tolist() == [9.0]

    wide = proxy_values(frame)
    assert list(wide.columns) == ["synflow", "zen"]  # the catalogue's order
    assert wide.loc[mine[0], "zen"] == 1.0
    assert wide.loc[mine[1], "zen"] == 2.0
    assert wide.loc[mine[0], "synflow"] == 4.0
    assert math.isnan(wide.loc[mine[1], "synflow"])


def test_writers_of_the_same_score_at_once_store_it_once(db_url: str) -> None:
    store = open_store(db_url)
    genotype = SPACE.sample(4)
    upsert_architecture(store, genotype)
    writers = 4
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(value: float) -> None:
        own = open_store(db_url)  # a store (engine, connections) per writer, as per process
        try:
            start.wait()
            scores = {name: {"value": value, "seconds": 0.1} for name in ("synflow", "zen", "params")}
            own.retrying(
                lambda: record_proxy_scores(own, genotype.arch_id, "shapes", SHAPE, 0, scores), "writing"
            )
        except BaseException as err:  # reported below, in the test's thread
            failures.append(err)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=write, args=(float(k),)) for k in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    frame = proxy_scores_frame(store, arch_ids=[genotype.arch_id])
    assert sorted(frame["proxy"]) == ["params", "synflow", "zen"]
