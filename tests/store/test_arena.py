"""Arenas in SQL: bulk inserts in one transaction, names refused or replaced, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import event, func, inspect, select

from nasfcn.genotype import Genotype
from nasfcn.space import load_space
from nasfcn.store import (
    SearchExistsError,
    arena_curves_frame,
    arena_leaderboard_frame,
    arena_trials_frame,
    check_arena_name,
    create_search,
    leaderboard_frame,
    open_store,
    searches_frame,
    write_arena,
)
from nasfcn.store._arena import longest_runs
from nasfcn.store._schema import Epoch, Search, Trial, TrialCost

SPACE = "search_spaces/fcn_tiny.yaml"


def _genotypes(n: int) -> list[Genotype]:
    space = load_space(SPACE)
    found: list[Genotype] = []
    for genotype in space.iter_genotypes(include_train=False):
        found.append(genotype)
        if len(found) == n:
            return found
    return found


def _frames(trials: int, epochs: int = 3) -> tuple[dict[str, str], pd.DataFrame, pd.DataFrame]:
    genotypes = _genotypes(2)
    rows = []
    for number in range(trials):
        g = genotypes[number % 2]
        info = {"strategy": "tpe" if number % 2 else "random", "scheduler": "asha", "repeat": number // 4}
        rows.append(
            {
                "number": number,
                "arch_id": g.arch_id,
                "trial_key": g.trial_key,
                "genotype_json": g.to_json(),
                "params_json": json.dumps({"arena": {**info, "trial": number % 4}}),
                "seed": number % 3,
                "status": "completed",
                "epochs_trained": epochs,
                "best_epoch": epochs,
                "best_miou": 0.5 + number / 1000,
                "best_pixel_accuracy": 0.9,
                "final_miou": 0.5 + number / 1000,
                "error": None,
                "started_at": pd.Timestamp("2026-01-01", tz="UTC"),
                "finished_at": pd.Timestamp("2026-01-01 00:01", tz="UTC"),
                "params": 1000,
                "flops": 5000,
                "latency_ms": float("nan"),  # not measured: stored as NULL
                "peak_memory_mb": 3.0,
                "device": "cpu",
                "input": "1x3x32x32",
            }
        )
    epoch_rows = [
        {"number": n, "epoch": e, "val_miou": 0.1 * e, "val_pixel_accuracy": 0.5, "seconds": 1.5}
        for n in range(trials)
        for e in range(1, epochs + 1)
    ]
    archs = {g.arch_id: g.arch_json() for g in genotypes}
    return archs, pd.DataFrame(rows), pd.DataFrame(epoch_rows)


SEARCH = {"dataset": "arena:t", "space_name": "fcn_tiny", "config": {"table": "t"}, "recipe": {"epochs": 3}}


def _count(store, model, sid: int) -> int:
    with store.session_scope() as session:
        if model is Trial:
            return int(session.execute(select(func.count()).where(Trial.search_id == sid)).scalar_one())
        ids = select(Trial.id).where(Trial.search_id == sid)
        column = Epoch.trial_id if model is Epoch else TrialCost.trial_id
        return int(session.execute(select(func.count()).where(column.in_(ids))).scalar_one())


def test_an_arena_is_stored_with_every_trial_epoch_and_cost(db_url: str) -> None:
    store = open_store(db_url)
    archs, trials, epochs = _frames(12)
    sid = write_arena(store, "a1", SEARCH, archs, trials, epochs)
    assert (_count(store, Trial, sid), _count(store, Epoch, sid), _count(store, TrialCost, sid)) == (
        12,
        36,
        12,
    )
    found = searches_frame(store).set_index("name").loc["a1"]
    assert (found["kind"], found["status"], found["trials"], found["completed"]) == (
        "arena",
        "completed",
        12,
        12,
    )
    board = leaderboard_frame(store, "a1")
    assert board["best_miou"].max() == pytest.approx(0.511)
    assert board["latency_ms"].isna().all()
    assert (board["params"] == 1000).all()
    members = arena_trials_frame(store, "a1").sort_values("trial_id")
    assert list(members["strategy"][:2]) == ["random", "tpe"]
    assert list(members["repeat"]) == [n // 4 for n in range(12)]


def test_a_taken_name_is_refused_unless_an_arena_is_replaced(db_url: str) -> None:
    store = open_store(db_url)
    archs, trials, epochs = _frames(4)
    write_arena(store, "a1", SEARCH, archs, trials, epochs)
    with pytest.raises(SearchExistsError, match=r"an arena named 'a1' already exists in .*--replace it"):
        check_arena_name(store, "a1")
    with pytest.raises(SearchExistsError, match="an arena named 'a1' already exists"):
        write_arena(store, "a1", SEARCH, archs, trials, epochs)
    archs, more, more_epochs = _frames(6, epochs=2)
    sid = write_arena(store, "a1", SEARCH, archs, more, more_epochs, replace=True)
    assert (_count(store, Trial, sid), _count(store, Epoch, sid)) == (6, 12)
    with store.session_scope() as session:  # the old arena's rows are gone, not orphaned
        assert session.execute(select(func.count()).select_from(Trial)).scalar_one() == 6
        assert session.execute(select(func.count()).select_from(Epoch)).scalar_one() == 12
        assert session.execute(select(func.count()).select_from(TrialCost)).scalar_one() == 6
    indexes = {index["name"] for index in inspect(store.engine).get_indexes("trials")}
    assert not [name for name in indexes if "tmp_arena" in name]  # the replace's own index is gone
    create_search(store, "real", "shapes")
    with pytest.raises(SearchExistsError, match=r"'real' in .* is a search, not an arena"):
        check_arena_name(store, "real", replace=True)


def test_a_failed_write_leaves_the_database_as_it_was(db_url: str) -> None:
    store = open_store(db_url)
    archs, trials, epochs = _frames(4)
    write_arena(store, "a1", SEARCH, archs, trials, epochs)
    broken = pd.concat([epochs, epochs.iloc[:1].assign(number=99)], ignore_index=True)  # no trial 99
    with pytest.raises(KeyError):
        write_arena(store, "a1", SEARCH, archs, trials.iloc[:2], broken, replace=True)
    with pytest.raises(KeyError):
        write_arena(store, "a2", SEARCH, archs, trials, broken)
    with store.session_scope() as session:
        assert session.execute(select(Search.name)).scalars().all() == ["a1"]
        assert session.execute(select(func.count()).select_from(Trial)).scalar_one() == 4


def test_an_arena_reads_one_curve_per_network_and_seed_and_its_replay_fields_with_its_trials(
    db_url: str,
) -> None:
    store = open_store(db_url)
    archs, trials, epochs = _frames(12, epochs=4)
    trained = [1 + (n * 5) % 4 for n in range(12)]  # ASHA stops some: prefixes of the same table run
    trials["epochs_trained"] = trained
    epochs = epochs[epochs["epoch"] <= epochs["number"].map(dict(enumerate(trained)))]
    write_arena(store, "a1", SEARCH, archs, trials, epochs)
    board = leaderboard_frame(store, "a1")
    runs = board.groupby(["arch_id", "seed"])
    longest = board.sort_values(["epochs_trained", "trial_id"], ascending=[False, True])
    expected = set(longest.drop_duplicates(["arch_id", "seed"])["trial_id"])
    curves = arena_curves_frame(store, "a1", columns=("epoch", "val_miou"))
    assert set(curves["trial_id"]) == expected  # one per (architecture, table seed): the longest
    assert len(expected) == runs.ngroups < len(board)
    assert (
        curves.groupby("trial_id").size().to_dict()
        == board.set_index("trial_id").loc[sorted(expected), "epochs_trained"].to_dict()
    )
    assert list(curves.columns) == ["trial_id", "number", "arch_id", "status", "seed", "epoch", "val_miou"]
    statements: list[str] = []

    def record(connection, cursor, statement: str, *rest) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    chosen = arena_curves_frame(store, "a1", columns=("epoch", "val_miou"), trials=board)
    event.remove(store.engine, "before_cursor_execute", record)
    pd.testing.assert_frame_equal(chosen, curves)  # the runs chosen from the trials read, not in SQL
    assert not any("row_number" in s for s in statements)

    both = arena_leaderboard_frame(store, "a1", keep=("started_at",))
    alone = leaderboard_frame(store, "a1").merge(arena_trials_frame(store, "a1"), on="trial_id")
    assert list(both["trial_id"]) == list(alone["trial_id"])
    for column in ("strategy", "scheduler", "repeat"):
        assert both[column].tolist() == alone[column].tolist()
    assert str(both["repeat"].dtype) == "Int64"
    assert both["started_at"].notna().all()


def _varied_arena(store) -> None:
    """An arena whose architectures differ in cost, with a failed run and per-trial times."""
    archs, trials, epochs = _frames(12)
    second = trials["arch_id"] == trials["arch_id"].iloc[1]
    trials.loc[second, ["params", "flops", "latency_ms", "peak_memory_mb"]] = [2000, 9000, 4.5, 7.0]
    trials.loc[5, ["status", "best_miou", "best_pixel_accuracy", "final_miou", "best_epoch"]] = [
        "failed",
        None,
        None,
        None,
        None,
    ]
    trials.loc[5, "error"] = "training diverged: loss is NaN"
    trials["best_epoch"] = trials["best_epoch"].astype("Int64")
    trials["started_at"] = [
        pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(seconds=7 * n) for n in range(12)
    ]
    trials["finished_at"] = trials["started_at"] + pd.to_timedelta([0.25 + n for n in range(12)], unit="s")
    write_arena(store, "a1", SEARCH, archs, trials, epochs)


def test_an_arena_board_frame_reads_genotype_and_cost_once_per_architecture_and_equals_the_generic_one(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(db_url)
    _varied_arena(store)
    statements: list[str] = []

    def record(connection, cursor, statement: str, *rest) -> None:
        statements.append(statement)

    keep = ("started_at", "finished_at")
    event.listen(store.engine, "before_cursor_execute", record)
    slim = arena_leaderboard_frame(store, "a1", keep)
    event.remove(store.engine, "before_cursor_execute", record)
    genotype_reads = [s for s in statements if "trials.genotype_json" in s and "FROM trials" in s]
    assert genotype_reads
    assert all("trials.id IN" in s for s in genotype_reads)  # one trial's per architecture, not all

    monkeypatch.setattr("nasfcn.store._arena._replay_fields", lambda dialect: None)
    generic = arena_leaderboard_frame(store, "a1", keep)  # leaderboard_frame + the replay in Python
    pd.testing.assert_frame_equal(slim, generic.astype({"strategy": object, "scheduler": object}))
    assert slim.loc[slim["status"] == "failed", "error"].tolist() == ["training diverged: loss is NaN"]
    assert sorted(set(slim["params"])) == [1000, 2000]


def test_the_run_read_per_network_and_seed_is_the_longest_trial_and_the_first_of_a_tie() -> None:
    trials = pd.DataFrame(
        {
            "trial_id": [7, 3, 9, 4, 5, 6],
            "arch_id": ["a", "a", "a", "b", "b", "a"],
            "seed": [0, 0, 0, 0, 0, 1],
            "epochs_trained": [4, 4, 2, None, 1, None],
        }
    )
    assert longest_runs(trials) == [3, 5, 6]  # a/0: 3 and 7 tie, 3 first; b/0: None counts as 0
