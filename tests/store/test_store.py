"""Storage contract, run on SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
from multiprocessing.synchronize import Event
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.space import load_space
from nasfcn.store import (
    NoSuchSearchError,
    SchemaOutdatedError,
    SearchExistsError,
    Store,
    StoreError,
    best_per_architecture,
    counts,
    create_search,
    epochs_frame,
    find_reusable,
    finish_trial,
    finished_trials,
    head_revision,
    leaderboard_frame,
    mask_text,
    mask_url,
    open_store,
    pareto_front,
    recipe_key,
    record_cost,
    record_epoch,
    reusable_result,
    searches_frame,
    seed_spread_frame,
    set_search_status,
    trial_record,
    upsert_architecture,
    upsert_trial,
)

SPACE = load_space("search_spaces/fcn_tiny.yaml")
RECIPE = {"epochs": 2, "lr": 0.003}
#: A data config as ``DataConfig.key()`` gives it (plain values: the store imports no torch).
DATA = {"image_size": [64, 64], "train_samples": 512, "val_samples": 128, "seed": 0}
COST = {
    "params": 1234,
    "flops": 56789,
    "latency_ms": 1.5,
    "peak_memory_mb": 2.5,
    "device": "cpu",
    "input_shape": [1, 3, 64, 64],
}


def _metrics(miou: float, epoch: int = 1) -> dict:
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "val_miou": miou,
        "val_pixel_accuracy": 0.9,
        "val_per_class_iou": [0.5, None, float("nan")],
        "seconds": 1.25,
        "lr": 0.01,
        "images_per_s": 100.0,
    }


def _trial(store: Store, search: int, number: int, mious: list[float], status: str = "completed") -> int:
    genotype = SPACE.sample(number)
    trial = upsert_trial(
        store, search, number, genotype, dataset="shapes", recipe=RECIPE, status="running", data=DATA
    )
    record_cost(store, trial, {**COST, "params": 1000 + number})
    for epoch, miou in enumerate(mious, start=1):
        record_epoch(store, trial, epoch, _metrics(miou, epoch))
    finish_trial(store, trial, status)
    return trial


def test_fresh_database_is_at_head(db_url: str) -> None:
    store = open_store(db_url)
    assert store.revision() == head_revision()
    assert counts(store) == {"searches": 0, "architectures": 0, "trials": 0, "epochs": 0}


def test_round_trip_of_every_table(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(
        store,
        "s1",
        "shapes",
        space_name="fcn_tiny",
        space_yaml=SPACE.text,
        config={"trials": 3},
        recipe=RECIPE,
    )
    trial = _trial(store, search, 0, [0.25, 0.5])
    searches = searches_frame(store)
    assert searches.loc[0, "name"] == "s1"
    assert searches.loc[0, "completed"] == 1
    assert searches.loc[0, "best_miou"] == pytest.approx(0.5)
    board = leaderboard_frame(store, "s1")
    row = board.iloc[0]
    genotype = SPACE.sample(0)
    assert row["trial_id"] == trial
    assert row["arch_id"] == genotype.arch_id
    assert row["params"] == 1000
    assert row["flops"] == COST["flops"]
    assert row["latency_ms"] == pytest.approx(1.5)
    assert row["best_miou"] == pytest.approx(0.5)
    assert row["epochs_trained"] == 2
    assert row["skip"] == genotype.skip
    assert json.loads(row["genotype_json"]) == json.loads(genotype.to_json())
    epochs = epochs_frame(store, "s1")
    assert list(epochs["epoch"]) == [1, 2]
    assert json.loads(epochs.loc[0, "per_class_iou_json"]) == [0.5, None, None]
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT space_yaml, config_json, versions_json FROM searches")).one()
    assert stored[0] == SPACE.text
    assert json.loads(stored[1]) == {"trials": 3}
    assert "torch" in json.loads(stored[2])


def test_rewrites_update_instead_of_duplicating(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "s", "shapes")
    genotype = SPACE.sample(1)
    first = upsert_trial(store, search, 0, genotype, dataset="shapes", recipe=RECIPE, status="running")
    again = upsert_trial(store, search, 0, genotype, dataset="shapes", recipe=RECIPE, status="running")
    assert first == again
    record_epoch(store, first, 1, _metrics(0.3))
    record_epoch(store, first, 1, _metrics(0.4))  # the same epoch, written after a resume
    record_epoch(store, first, 2, _metrics(0.35, 2))
    finish_trial(store, first, "completed")
    finish_trial(store, first, "completed")
    assert counts(store) == {"searches": 1, "architectures": 1, "trials": 1, "epochs": 2}
    row = leaderboard_frame(store, "s").iloc[0]
    assert row["best_miou"] == pytest.approx(0.4)
    assert row["final_miou"] == pytest.approx(0.35)
    # A finished trial is never reopened by a late "running" event.
    upsert_trial(store, search, 0, genotype, dataset="shapes", recipe=RECIPE, status="running")
    assert leaderboard_frame(store, "s").iloc[0]["status"] == "completed"


def test_measured_costs_are_never_erased(db_url: str) -> None:
    store = open_store(db_url)
    genotype = SPACE.sample(2)
    search = create_search(store, "s", "shapes")
    trial = upsert_trial(store, search, 0, genotype, dataset="shapes", recipe=RECIPE)
    record_cost(store, trial, COST)
    upsert_architecture(store, genotype)
    upsert_trial(store, search, 0, genotype, dataset="shapes", recipe=RECIPE, status="running")
    assert leaderboard_frame(store, "s").iloc[0]["params"] == COST["params"]
    record_cost(store, trial, {**COST, "latency_ms": 1.75})  # the same trial's cost, written again
    row = leaderboard_frame(store, "s").iloc[0]
    assert (row["params"], row["latency_ms"]) == (COST["params"], pytest.approx(1.75))
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM trial_costs")).scalar_one() == 1


#: The same network costed by two searches: at 64x64 on the CPU, at 128x128 on a GPU.
SMALL_CPU = COST
LARGE_GPU = {
    **COST,
    "flops": 4 * COST["flops"],
    "latency_ms": 0.25,
    "peak_memory_mb": 9.5,
    "device": "cuda:0 (NVIDIA H100 80GB HBM3)",
    "input_shape": [1, 3, 128, 128],
}


def _costed_trial(store: Store, search: int, number: int, cost: dict | None, **finish) -> int:
    """Trial ``number`` of ``search`` on SPACE.sample(0): trained (val mIoU ``miou``), or cached."""
    genotype = SPACE.sample(0)
    trial = upsert_trial(
        store, search, number, genotype, dataset="shapes", recipe=RECIPE, status="running", data=DATA
    )
    if cost is not None:
        record_cost(store, trial, cost)
    miou = finish.pop("miou", None)
    if miou is not None:
        record_epoch(store, trial, 1, _metrics(miou))
    finish_trial(store, trial, "completed" if miou is not None else "cached", **finish)
    return trial


def test_each_trial_keeps_the_cost_of_its_own_input_and_device(db_url: str) -> None:
    store = open_store(db_url)
    small = create_search(store, "small", "shapes", recipe=RECIPE)
    measured = _costed_trial(store, small, 0, SMALL_CPU, miou=0.5)
    large = create_search(store, "large", "shapes", recipe=RECIPE)
    trained = _costed_trial(store, large, 0, LARGE_GPU, miou=0.6)
    # Cached from the small search: at its input and device (no cost of its own), and elsewhere.
    alike = _costed_trial(store, large, 1, None, cached_from=measured)
    elsewhere = _costed_trial(store, large, 2, LARGE_GPU, cached_from=measured)

    def figures(cost: dict) -> dict:
        shape = "x".join(map(str, cost["input_shape"]))
        return {
            "flops": cost["flops"],
            "latency_ms": cost["latency_ms"],
            "input": shape,
            "device": cost["device"],
        }

    expected = {measured: SMALL_CPU, trained: LARGE_GPU, alike: SMALL_CPU, elsewhere: LARGE_GPU}
    boards = pd.concat([leaderboard_frame(store, "small"), leaderboard_frame(store, "large")])
    for trial, cost in expected.items():
        record = trial_record(store, trial)
        row = boards.set_index("trial_id").loc[trial]
        assert {
            "flops": record["flops"],
            "latency_ms": record["latency_ms"],
            "input": record["cost_input"],
            "device": record["cost_device"],
        } == figures(cost)
        assert (row["flops"], row["latency_ms"], row["peak_memory_mb"]) == (
            cost["flops"],
            pytest.approx(cost["latency_ms"]),
            pytest.approx(cost["peak_memory_mb"]),
        )
    assert {row["number"]: row["flops"] for row in finished_trials(store, small)} == {0: SMALL_CPU["flops"]}
    best = best_per_architecture(store, "shapes").iloc[0]  # the large search's trial 0 has the best mIoU
    assert (best["trial_id"], best["flops"]) == (trained, LARGE_GPU["flops"])
    reused = reusable_result(store, SPACE.sample(0), "shapes", RECIPE, DATA)
    assert reused is not None
    assert reused["trial_id"] == trained
    assert reused["metrics"]["latency_ms"] == pytest.approx(LARGE_GPU["latency_ms"])
    assert reused["cost"] == {"input_shape": [1, 3, 128, 128], "device": LARGE_GPU["device"]}


def test_failed_trials_keep_error_and_traceback_excerpt(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "s", "shapes")
    trial = upsert_trial(store, search, 0, SPACE.sample(3), dataset="shapes", recipe=RECIPE, status="running")
    long_traceback = "\n".join(f"line {i}" for i in range(200))
    finish_trial(store, trial, "failed", error="TrainingDiverged: loss nan", traceback=long_traceback)
    row = leaderboard_frame(store, "s").iloc[0]
    assert row["status"] == "failed"
    assert row["error"] == "TrainingDiverged: loss nan"
    assert math.isnan(row["rank"])
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT traceback FROM trials")).scalar_one()
    assert stored.splitlines()[-1] == "line 199"
    assert len(stored.splitlines()) == 40


def test_ranking_pareto_and_cross_search_views(db_url: str) -> None:
    store = open_store(db_url)
    first = create_search(store, "a", "shapes")
    _trial(store, first, 0, [0.2, 0.6])
    _trial(store, first, 1, [0.7])
    _trial(store, first, 2, [0.1], status="stopped_early")
    second = create_search(store, "b", "shapes")
    _trial(store, second, 0, [0.65])  # the same architecture as a/0, trained again
    board = leaderboard_frame(store, "a")
    assert list(board["number"]) == [1, 0, 2]
    assert list(board["rank"]) == [1.0, 2.0, 3.0]
    assert leaderboard_frame(store).equals(leaderboard_frame(store, "b"))  # latest by default
    across = best_per_architecture(store, "shapes")
    by_arch = across.set_index("arch_id")
    assert by_arch.loc[SPACE.sample(0).arch_id, "best_miou"] == pytest.approx(0.65)
    assert by_arch.loc[SPACE.sample(0).arch_id, "runs"] == 2
    assert by_arch.loc[SPACE.sample(0).arch_id, "search"] == "b"
    assert best_per_architecture(store, "digits").empty
    top = best_per_architecture(store, "shapes", top=1)  # the best architecture only, its runs counted
    assert list(top["arch_id"]) == [across.sort_values("best_miou").iloc[-1]["arch_id"]]
    assert top.iloc[0].equals(across.sort_values("best_miou").iloc[-1])


def test_the_seed_spread_can_leave_single_runs_in_the_database(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "seeds", "shapes", recipe=RECIPE)
    for number, (arch, seed, miou) in enumerate([(0, 0, 0.5), (0, 1, 0.7), (1, 0, 0.6)]):
        genotype = SPACE.sample(arch)
        trial = upsert_trial(
            store, search, number, genotype, dataset="shapes", recipe=RECIPE, status="running", seed=seed
        )
        record_epoch(store, trial, 1, _metrics(miou, 1))
        finish_trial(store, trial, "completed")
    spread = seed_spread_frame(store, "shapes")
    repeated = seed_spread_frame(store, "shapes", repeated_only=True)
    assert sorted(spread["seeds"]) == [1, 2]
    assert repeated.equals(spread[spread["seeds"] >= 2].reset_index(drop=True))
    assert list(repeated["arch_id"]) == [SPACE.sample(0).arch_id]
    # a final run trains network 1 for more epochs with seed 0 again: another recipe, not a seed
    final = upsert_trial(
        store, search, 3, SPACE.sample(1), dataset="shapes", recipe=RECIPE, status="running", extends=2
    )
    record_epoch(store, final, 1, _metrics(0.9, 1))
    finish_trial(store, final, "completed")
    assert seed_spread_frame(store, "shapes").equals(spread)
    assert leaderboard_frame(store, "seeds").set_index("number").loc[3, "extends"] == 2


def test_reuse_lookup_matches_network_dataset_and_recipe(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "a", "shapes")
    trial = _trial(store, search, 0, [0.5])
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, DATA) == trial
    assert find_reusable(store, SPACE.sample(0), "digits", RECIPE, DATA) is None
    assert find_reusable(store, SPACE.sample(0), "shapes", {**RECIPE, "epochs": 3}, DATA) is None
    assert find_reusable(store, SPACE.sample(1), "shapes", RECIPE, DATA) is None
    cached = upsert_trial(store, search, 1, SPACE.sample(0), dataset="shapes", recipe=RECIPE)
    finish_trial(store, cached, "cached", cached_from=trial)
    row = leaderboard_frame(store, "a").set_index("trial_id").loc[cached]
    assert row["status"] == "cached"
    assert row["best_miou"] == pytest.approx(0.5)
    assert row["cached_from"] == trial


@pytest.mark.parametrize(
    "other",
    [
        {**DATA, "image_size": [32, 32]},
        {**DATA, "train_samples": 64},
        {**DATA, "val_samples": 32},
        {**DATA, "seed": 1},
        {**DATA, "with_test": True},
    ],
)
def test_reuse_lookup_matches_the_data_config(db_url: str, other: dict) -> None:
    store = open_store(db_url)
    trial = _trial(store, create_search(store, "a", "shapes"), 0, [0.5])  # trained on DATA
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, other) is None
    assert reusable_result(store, SPACE.sample(0), "shapes", RECIPE, other) is None
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, dict(DATA)) == trial


def test_a_trial_of_an_older_version_is_reused_only_by_its_own_search(db_url: str) -> None:
    # Versions before the data config counted keyed a trial by its recipe alone: what upsert_trial
    # still stores without ``data``. Nothing says which data it trained on, so only a resume of its
    # own search (whose data settings are kept) reuses it.
    store = open_store(db_url)
    old = create_search(store, "old", "shapes")
    trial = upsert_trial(store, old, 0, SPACE.sample(0), dataset="shapes", recipe=RECIPE, status="running")
    record_epoch(store, trial, 1, _metrics(0.5))
    finish_trial(store, trial, "completed")
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT recipe_key FROM trials")).scalar_one()
    assert stored == recipe_key(RECIPE) == hashlib.sha256(b'{"epochs":2,"lr":0.003}').hexdigest()[:16]
    other = create_search(store, "new", "shapes")
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, DATA) is None
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, DATA, search_id=other) is None
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, DATA, search_id=old) == trial


def test_an_interrupted_trial_run_again_takes_the_data_aware_key(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "old", "shapes")
    trial = upsert_trial(store, search, 0, SPACE.sample(0), dataset="shapes", recipe=RECIPE, status="running")
    finish_trial(store, trial, "interrupted")
    again = upsert_trial(
        store, search, 0, SPACE.sample(0), dataset="shapes", recipe=RECIPE, status="running", data=DATA
    )
    record_epoch(store, again, 1, _metrics(0.5))
    finish_trial(store, again, "completed")
    assert again == trial
    assert find_reusable(store, SPACE.sample(0), "shapes", RECIPE, DATA) == trial


def test_a_trial_is_never_cached_from_itself(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "a", "shapes")
    trial = _trial(store, search, 0, [0.5])
    with pytest.raises(StoreError, match=f"trial {trial} cannot be cached from itself"):
        finish_trial(store, trial, "cached", cached_from=trial)
    row = leaderboard_frame(store, "a").set_index("trial_id").loc[trial]
    assert row["status"] == "completed"
    assert pd.isna(row["cached_from"])


def test_search_names_are_unique_unless_resumed(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "a", "shapes")
    with pytest.raises(SearchExistsError, match="--resume"):
        create_search(store, "a", "shapes")
    set_search_status(store, search, "interrupted")
    assert create_search(store, "a", "shapes", resume=True) == search
    assert searches_frame(store).loc[0, "status"] == "running"
    with pytest.raises(NoSuchSearchError, match="searches: a"):
        leaderboard_frame(store, "nope")


def test_old_or_foreign_schemas_are_refused_with_the_fix(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    with pytest.raises(SchemaOutdatedError, match="run `nasfcn db upgrade --db"):
        open_store(db_url)
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(SchemaOutdatedError, match="tables not made by nasfcn"):
        open_store(db_url)


def test_db_upgrade_command_creates_the_schema(db_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert f"-> {head_revision()}" in result.stdout
    again = runner.invoke(app, ["db", "upgrade", "--db", db_url])
    assert "already at schema" in again.stdout
    info = runner.invoke(app, ["db", "info", "--db", db_url])
    assert "searches: 0" in info.stdout
    assert f"schema: {head_revision()}" in info.stdout


def test_trials_command_formats(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    store = open_store(url)
    search = create_search(store, "demo", "shapes")
    for number in range(3):
        _trial(store, search, number, [0.1 * (number + 1)])
    runner = CliRunner()
    table = runner.invoke(app, ["trials", "--db", url, "--search", "demo"])
    assert table.exit_code == 0, table.output
    assert SPACE.sample(2).arch_id in table.stdout
    csv = runner.invoke(app, ["trials", "--db", url, "--format", "csv", "--limit", "2"])
    frame = pd.read_csv(__import__("io").StringIO(csv.stdout))
    assert list(frame["number"]) == [2, 1]
    as_json = json.loads(
        runner.invoke(app, ["trials", "--db", url, "--format", "json", "--sort", "params"]).stdout
    )
    assert [row["params"] for row in as_json] == [1000, 1001, 1002]
    missing = runner.invoke(app, ["trials", "--db", url, "--search", "nope"])
    assert missing.exit_code == 2
    assert "no search named 'nope'" in missing.stderr


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def test_passwords_are_masked() -> None:
    url = "postgresql+psycopg://alice:s3cret-pw@db.internal:5432/nas"
    assert "s3cret-pw" not in mask_url(url)
    assert mask_url(url) == "postgresql+psycopg://alice:***@db.internal:5432/nas"
    assert "s3cret" not in mask_text(f"could not connect with {url} (timeout)")
    assert mask_url("sqlite:///nasfcn.db") == "sqlite:///nasfcn.db"


def test_connection_errors_never_show_the_password() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://alice:s3cret-pw@127.0.0.1:9/nas?connect_timeout=2")
    assert "s3cret-pw" not in str(info.value)
    assert "alice:***@127.0.0.1:9" in str(info.value)
    result = CliRunner().invoke(
        app, ["db", "info", "--db", "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:9/nas"]
    )
    assert result.exit_code == 2
    assert "s3cret-pw" not in result.output


# -- concurrency ---------------------------------------------------------------------------


def _append_epochs(url: str, trial: int, count: int, reading: Event, half_seen: Event) -> None:
    """Append ``count`` epochs once the reader reads; pause halfway until it has seen that state.

    Without the handshake a reader process that starts slower than the writer (spawn and
    imports on a loaded machine) saw only the finished table.
    """
    store = Store(url)
    reading.wait(60)
    for epoch in range(1, count + 1):
        record_epoch(store, trial, epoch, _metrics(epoch / count, epoch))
        if epoch == count // 2:
            half_seen.wait(60)


def _read_while_writing(
    url: str, expected: int, queue: multiprocessing.Queue, reading: Event, half_seen: Event
) -> None:
    store = Store(url)
    seen = []
    try:
        while not seen or seen[-1] < expected:
            frame = epochs_frame(store, "live")
            leaderboard_frame(store, "live")
            seen.append(len(frame))
            reading.set()
            if seen[-1] >= expected // 2:
                half_seen.set()
        queue.put(("ok", seen))
    except Exception as err:
        queue.put(("error", repr(err)))


def test_sqlite_reader_sees_a_writer_append_epochs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store = open_store(url)
    search = create_search(store, "live", "shapes")
    trial = upsert_trial(store, search, 0, SPACE.sample(0), dataset="shapes", recipe=RECIPE, status="running")
    context = multiprocessing.get_context("spawn")
    queue, reading, half_seen = context.Queue(), context.Event(), context.Event()
    reader = context.Process(target=_read_while_writing, args=(url, 150, queue, reading, half_seen))
    writer = context.Process(target=_append_epochs, args=(url, trial, 150, reading, half_seen))
    reader.start()
    writer.start()
    writer.join(120)
    reader.join(120)
    status, seen = queue.get(timeout=10)
    assert status == "ok", seen
    assert writer.exitcode == 0
    assert seen == sorted(seen)  # the reader only ever saw the table grow
    assert seen[0] == 0
    assert seen[-1] == 150
    assert 75 in seen  # it read a half-written table while the writer had the file open


def _write_trials(url: str, search: int, numbers: list[int]) -> None:
    store = Store(url)
    for number in numbers:
        genotype = SPACE.sample(number % 3)  # shared architectures: racing inserts of one row
        trial = upsert_trial(
            store, search, number, genotype, dataset="shapes", recipe=RECIPE, status="running"
        )
        record_cost(store, trial, COST)
        for epoch in (1, 2):
            record_epoch(store, trial, epoch, _metrics(0.1 * epoch, epoch))
        finish_trial(store, trial, "completed")


def test_concurrent_writers_on_postgresql(postgres_url: str) -> None:
    store = open_store(postgres_url)
    search = create_search(store, "parallel", "shapes")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_write_trials, args=(postgres_url, search, list(range(i, 24, 4))))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert counts(store) == {"searches": 1, "architectures": 3, "trials": 24, "epochs": 48}
    assert set(leaderboard_frame(store, "parallel")["status"]) == {"completed"}


def test_pareto_front_on_a_hand_made_frame() -> None:
    frame = pd.DataFrame(
        {
            "best_miou": [0.5, 0.6, 0.55, 0.7, None, 0.4],
            "latency_ms": [1.0, 2.0, 3.0, 4.0, 0.5, 1.0],
        }
    )
    assert list(pareto_front(frame, ["miou", "latency_ms"])) == [True, True, False, True, False, False]
    with pytest.raises(ValueError, match="unknown objective"):
        pareto_front(frame, ["speed"])


def test_shipped_migrations_build_exactly_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from nasfcn.store._schema import Base

    store = open_store(db_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_training_device_and_peak_memory_are_kept_per_trial(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "gpu", "shapes", config={}, recipe=RECIPE)
    genotype = SPACE.sample(0)
    trial = upsert_trial(store, search, 0, genotype, dataset="shapes", recipe=RECIPE, status="running")
    record_cost(store, trial, COST)
    device = "cuda:0 (NVIDIA H100 80GB HBM3)"
    for epoch, peak in ((1, 300.0), (2, 250.0)):
        record_epoch(
            store,
            trial,
            epoch,
            {**_metrics(0.5, epoch), "train_device": device, "peak_train_memory_mb": peak},
        )
    finish_trial(store, trial, "completed")
    reuse = upsert_trial(store, search, 1, genotype, dataset="shapes", recipe=RECIPE, status="running")
    finish_trial(store, reuse, "cached", cached_from=trial)

    board = leaderboard_frame(store, "gpu").set_index("trial_id")
    for row in (board.loc[trial], board.loc[reuse]):
        assert row["train_device"] == device
        assert row["peak_train_memory_mb"] == pytest.approx(300.0)  # the peak over epochs


def test_upgrade_from_the_first_schema_keeps_the_rows(tmp_path: Path) -> None:
    from alembic import command

    from nasfcn.store._engine import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    with store.engine.connect() as connection, connection.begin():
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert store.revision() == "0001"
    with pytest.raises(SchemaOutdatedError, match="nasfcn db upgrade"):
        open_store(url)
    with store.engine.connect() as connection, connection.begin():
        connection.execute(
            text(
                "INSERT INTO searches (name, kind, dataset, config_json, recipe_json, versions_json, status,"
                " created_at) VALUES ('old', 'search', 'shapes', '{}', '{}', '{}', 'completed', '2026-11-01')"
            )
        )
    assert store.upgrade() == ("0001", head_revision())
    upgraded = open_store(url)
    assert list(searches_frame(upgraded)["name"]) == ["old"]
    store.dispose()


def _at_revision(url: str, revision: str) -> None:
    from alembic import command

    from nasfcn.store._engine import _alembic_config

    store = Store(url)
    with store.engine.connect() as connection, connection.begin():
        config = _alembic_config()
        config.attributes["connection"] = connection
        if store.revision() is None or store.revision() < revision:
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
    store.dispose()


#: Rows as nasfcn 0003 wrote them: one architecture costed (overwritten by the last search to
#: cost it), one never costed; three trials with an epoch each.
_ROWS_AT_0003 = [
    "INSERT INTO searches (id, name, kind, dataset, config_json, recipe_json, versions_json, status,"
    " created_at) VALUES (1, 'old', 'search', 'shapes', '{}', '{}', '{}', 'completed', '2026-11-01')",
    "INSERT INTO architectures (arch_id, genotype_json, params, flops, latency_ms, peak_memory_mb,"
    " cost_device, cost_input, created_at) VALUES ('costed', '{}', 1234, 56789, 1.5, 2.5, 'cpu',"
    " '1x3x64x64', '2026-11-01')",
    "INSERT INTO architectures (arch_id, genotype_json, created_at) VALUES ('bare', '{}', '2026-11-01')",
    *(
        "INSERT INTO trials (id, search_id, number, arch_id, trial_key, genotype_json, dataset,"
        f" recipe_key, seed, status, epochs_trained) VALUES ({n}, 1, {n}, '{arch}', 'k{n}', '{{}}',"
        " 'shapes', 'r', 0, 'completed', 1)"
        for n, arch in ((1, "costed"), (2, "costed"), (3, "bare"))
    ),
    *(f"INSERT INTO epochs (trial_id, epoch, val_miou) VALUES ({n}, 1, 0.5)" for n in (1, 2, 3)),
]


def _store_at_0003(db_url: str) -> Store:
    """A database at revision 0003 holding ``_ROWS_AT_0003``: what the migrations after it meet."""
    _at_revision(db_url, "0003")
    store = Store(db_url)
    with store.engine.begin() as connection:
        for statement in _ROWS_AT_0003:
            connection.execute(text(statement))
    return store


def test_upgrade_to_per_trial_costs_gives_each_trial_its_architectures_figures(db_url: str) -> None:
    store = _store_at_0003(db_url)
    _at_revision(db_url, "0004")
    with store.engine.connect() as connection:
        costs = connection.execute(
            text(
                "SELECT trial_id, arch_id, input, device, params, flops, latency_ms, peak_memory_mb"
                " FROM trial_costs ORDER BY trial_id"
            )
        ).all()
        assert connection.execute(text("SELECT count(*) FROM epochs")).scalar_one() == 3
        columns = {column["name"] for column in inspect(connection).get_columns("architectures")}
    assert [tuple(row) for row in costs] == [
        (n, "costed", "1x3x64x64", "cpu", 1234, 56789, 1.5, 2.5) for n in (1, 2)
    ]  # the never-costed architecture's trial gets no row: it has no figures to show
    assert columns == {"arch_id", "genotype_json", "created_at"}
    # and back: each architecture holds the figures of its latest costed trial again
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE trial_costs SET latency_ms = 3.5 WHERE trial_id = 2"))
    _at_revision(db_url, "0003")
    with store.engine.connect() as connection:
        figures = connection.execute(
            text("SELECT arch_id, params, latency_ms, cost_input FROM architectures ORDER BY arch_id")
        ).all()
        assert connection.execute(text("SELECT count(*) FROM epochs")).scalar_one() == 3
    assert [tuple(row) for row in figures] == [("bare", None, None, None), ("costed", 1234, 3.5, "1x3x64x64")]
    store.dispose()


def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    with pytest.raises(StoreError, match=r"no database at .*nothing\.db yet"):
        open_store(url, create=False)
    result = CliRunner().invoke(app, ["trials", "--db", url])
    assert result.exit_code == 2
    assert "run `nasfcn search` first" in result.output
    assert not (tmp_path / "nothing.db").exists()


def test_upgrade_to_proxies_and_confirmations_keeps_the_trials_and_goes_back(db_url: str) -> None:
    store = _store_at_0003(db_url)
    _at_revision(db_url, "0006")
    with store.engine.begin() as connection:
        rows = connection.execute(
            text("SELECT id, confirms, test_miou, test_metrics_json FROM trials ORDER BY id")
        ).all()
        connection.execute(
            text(
                "INSERT INTO proxy_scores (arch_id, dataset, input, seed, proxy, value, created_at)"
                " VALUES ('costed', 'shapes', '8x3x32x32', 0, 'synflow', 12.5, '2026-11-30')"
            )
        )
    assert [tuple(row) for row in rows] == [(n, None, None, None) for n in (1, 2, 3)]
    _at_revision(db_url, "0005")
    with store.engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("trials")}
        assert "proxy_scores" not in inspect(connection).get_table_names()
        assert connection.execute(text("SELECT count(*) FROM trials")).scalar_one() == 3
    assert not {"confirms", "test_miou", "test_metrics_json"} & columns
    store.dispose()


def test_upgrade_to_final_runs_adds_extends_and_goes_back(db_url: str) -> None:
    store = _store_at_0003(db_url)
    _at_revision(db_url, "0007")
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, extends FROM trials ORDER BY id")).all()
    assert [tuple(row) for row in rows] == [(n, None) for n in (1, 2, 3)]
    _at_revision(db_url, "0006")
    with store.engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("trials")}
        assert connection.execute(text("SELECT count(*) FROM trials")).scalar_one() == 3
    assert "extends" not in columns
    assert "confirms" in columns
    store.dispose()


def test_upgrade_indexes_the_trials_cached_from_another_and_goes_back(db_url: str) -> None:
    store = _store_at_0003(db_url)
    _at_revision(db_url, "0008")
    with store.engine.connect() as connection:
        indexes = {index["name"] for index in inspect(connection).get_indexes("trials")}
        assert "ix_trials_cached_from" in indexes
        assert connection.execute(text("SELECT count(*) FROM trials")).scalar_one() == 3
        if connection.dialect.name == "sqlite":  # the foreign key's SET NULL lookup probes it
            plan = connection.execute(text("EXPLAIN QUERY PLAN SELECT id FROM trials WHERE cached_from = 2"))
            assert "ix_trials_cached_from" in " ".join(str(row[-1]) for row in plan)
    _at_revision(db_url, "0007")
    with store.engine.connect() as connection:
        assert "ix_trials_cached_from" not in {i["name"] for i in inspect(connection).get_indexes("trials")}
    store.dispose()


def test_the_revisions_are_alembics_own_without_importing_alembic(db_url: str) -> None:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from nasfcn.store._engine import _alembic_config

    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()
    empty = Store(db_url)
    assert empty.revision() is None  # no version table
    store = open_store(db_url)
    with store.engine.connect() as connection:
        assert (
            store.revision()
            == MigrationContext.configure(connection).get_current_revision()
            == head_revision()
        )
    with store.engine.begin() as connection:  # two heads: refused as alembic refuses them
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0005')"))
    with pytest.raises(CommandError, match="more than one head"):
        store.revision()
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
    assert store.revision() is None  # an empty version table: as alembic reads it


@pytest.mark.slow
def test_opening_a_store_imports_no_alembic(tmp_path: Path) -> None:
    """Every command opens a store; alembic (~0.15 s to import) is only needed to migrate."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    open_store(url).dispose()  # made at the head revision here; the child only checks it
    opened = f"from nasfcn.store import open_store; open_store({url!r})"
    check = f"import sys; {opened}; print('alembic' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
