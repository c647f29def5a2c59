"""The recorder when the machine fails mid-search: real searches on a real local Ray, with a
SQLite file another connection locks, a PostgreSQL server of the test's own stopped and
started, and a full tmpfs as --storage-path. Each fault is set off when the search logs a
known line (the first finished trial), so nothing depends on timing."""

from __future__ import annotations

import errno
import logging
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nasfcn.search import SearchConfig, SearchStoppedError, execution_options, run_search, with_execution
from nasfcn.space import load_space
from nasfcn.store import (
    FINISHED_STATUSES,
    _engine,
    epochs_frame,
    leaderboard_frame,
    open_store,
    searches_frame,
)
from nasfcn.train import TrainRecipe

pytestmark = pytest.mark.slow

RETRY_LINE = "unavailable while"  # a write or a cache lookup waits for the database


def _config(tmp_path: Path, space: Path, **overrides) -> SearchConfig:
    options = {
        "space": str(space),
        "data": "shapes",
        "name": "s",
        "trials": 4,
        "epochs": 2,
        "strategy": "grid",
        "scheduler": "fifo",
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "recipe": TrainRecipe(epochs=2, batch_size=8),
        "concurrency": 1,
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


@pytest.fixture(autouse=True)
def _dispose_stores(store_tracker: list) -> None:
    """Close every pooled connection a test opened (unclosed ones warn when collected)."""


class _OnLog(logging.Handler):
    """Runs each action the first time the search logs a line containing its text."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.actions: dict[str, Callable[[], None]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for text in [t for t in self.actions if t in message]:
            self.actions.pop(text)()


@pytest.fixture
def on_log() -> Iterator[dict[str, Callable[[], None]]]:
    handler = _OnLog()
    logger = logging.getLogger("nasfcn")
    logger.addHandler(handler)
    try:
        yield handler.actions
    finally:
        logger.removeHandler(handler)


class _Lock:
    """A second connection holding SQLite's write lock, as another writer's transaction would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.holder: sqlite3.Connection | None = None
        self.taken = False

    def take(self) -> None:
        self.holder = sqlite3.connect(self.path, isolation_level=None)
        self.holder.execute("BEGIN EXCLUSIVE")
        self.taken = True

    def release(self) -> None:
        if self.holder is not None:
            self.holder.rollback()
            self.holder.close()
            self.holder = None


def _statuses(db: str, name: str) -> tuple[str, list[str]]:
    store = open_store(db, create=False)
    try:
        search = searches_frame(store).set_index("name").loc[name, "status"]
        board = leaderboard_frame(store, name).sort_values("number")
        return str(search), list(board["status"])
    finally:
        store.dispose()


def test_a_locked_sqlite_database_is_waited_for_and_the_search_goes_on(
    ray_local, tmp_path, micro_space, monkeypatch, on_log
) -> None:
    monkeypatch.setattr(_engine, "SQLITE_BUSY_TIMEOUT_S", 0.5)  # each attempt waits 0.5 s, not 30 s
    lock = _Lock(tmp_path / "nasfcn.db")
    on_log.update({"completed": lock.take, RETRY_LINE: lock.release})
    summary = run_search(_config(tmp_path, micro_space, name="locked"))
    assert lock.taken
    assert lock.holder is None  # released when the first retry was announced
    assert summary.counts == {"completed": 4}
    assert len(epochs_frame(open_store(summary.database), "locked")) == 8
    log = (tmp_path / "runs" / "search.log").read_text()
    assert "database is locked); retry 1 in" in log
    assert "back after" in log
    assert _statuses(summary.database, "locked")[0] == "completed"


def test_a_lock_held_beyond_the_retry_budget_stops_the_search_cleanly(
    ray_local, tmp_path, micro_space, monkeypatch, on_log
) -> None:
    monkeypatch.setattr(_engine, "SQLITE_BUSY_TIMEOUT_S", 0.5)
    monkeypatch.setenv("NASFCN_DB_RETRY_S", "1")
    lock = _Lock(tmp_path / "nasfcn.db")
    # Released when the driver gives up: its one last try marks the statuses.
    on_log.update({"completed": lock.take, "search stopped": lock.release})
    config = _config(tmp_path, micro_space, name="stuck")
    with pytest.raises(SearchStoppedError) as caught:
        run_search(config)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"database {config.execution.db} unreachable for ")
    assert "locked): search stopped; finished trials are saved; the search and its running trials" in message
    assert message.endswith("; continue with nasfcn search --resume --name stuck")
    search, trials = _statuses(config.execution.db, "stuck")
    assert search == "interrupted"
    assert trials[0] == "completed"
    assert set(trials[1:]) <= {"interrupted"}

    monkeypatch.delenv("NASFCN_DB_RETRY_S")
    summary = run_search(with_execution(config, resume=True))
    search, trials = _statuses(config.execution.db, "stuck")
    assert search == "completed"
    assert sum(s in FINISHED_STATUSES for s in trials) == 4
    assert "running" not in trials
    assert summary.counts["completed"] == 4


def test_a_postgresql_restart_mid_search_is_waited_for(
    ray_local, tmp_path, micro_space, own_postgres, on_log
) -> None:
    on_log.update({"completed": own_postgres.stop, RETRY_LINE: own_postgres.start})
    summary = run_search(_config(tmp_path, micro_space, name="restart", db=own_postgres.url))
    assert summary.counts == {"completed": 4}
    store = open_store(own_postgres.url)
    assert len(epochs_frame(store, "restart")) == 8
    store.dispose()
    assert _statuses(own_postgres.url, "restart")[0] == "completed"
    assert "retry 1 in" in (tmp_path / "runs" / "search.log").read_text()


def _env(tmp_path: Path, db: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        RAY_TMPDIR=tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        NASFCN_DB=db,
        NASFCN_DB_RETRY_S="2",
        COLUMNS="1000",  # the closing message on one physical line
    )
    return env


def _finished(db: str, name: str) -> int:
    try:
        return sum(s in FINISHED_STATUSES for s in _statuses(db, name)[1])
    except Exception:  # not created yet
        return 0


def test_postgresql_away_beyond_the_budget_ends_with_one_line_and_resume_completes(
    tmp_path, micro_space, own_postgres
) -> None:
    env = _env(tmp_path, own_postgres.url)
    args = [
        *(sys.executable, "-m", "nasfcn.cli", "search", "--space", str(micro_space), "--name", "away"),
        *("--trials", "4", "--epochs", "3", "--scheduler", "fifo", "--strategy", "grid"),
        *("--concurrency", "1", "--data", "shapes", "--image-size", "32", "--train-samples", "32"),
        *("--storage-path", str(tmp_path / "runs")),
    ]
    driver = subprocess.Popen(
        args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while _finished(own_postgres.url, "away") < 1:
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.5)
    own_postgres.stop()
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 1, out + err
    assert "Traceback" not in out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("database postgresql+psycopg://postgres@127.0.0.1:")
    # the driver's next write after the first trial is the recorder's or the grid's cache lookup,
    # whichever Ray runs first: either is named
    assert re.search(r" unreachable for \d+ s while (recording trial \d+|looking up a cached result)\b", last)
    assert "search stopped; finished trials are saved; the database is still unreachable" in last
    assert last.endswith("continue with nasfcn search --resume --name away")

    own_postgres.start()
    search, trials = _statuses(own_postgres.url, "away")
    assert search == "running"  # the database was away at the end: the resume fixes it
    assert trials[0] == "completed"
    resumed = subprocess.run(
        [*args, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    search, trials = _statuses(own_postgres.url, "away")
    assert search == "completed"
    assert sum(s in FINISHED_STATUSES for s in trials) == 4
    assert "running" not in trials


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """A 4 MB tmpfs for --storage-path and a function that fills it, or (where mounting is not
    allowed) a plain folder and None: the test then injects ENOSPC at a checkpoint instead."""
    storage = tmp_path / "runs"
    storage.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(storage)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        yield storage, None
        return

    def fill() -> None:
        with open(storage / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise

    try:
        yield storage, fill
    finally:
        subprocess.run(["umount", "-l", str(storage)], capture_output=True, check=False)


def test_a_full_disk_under_the_storage_path_stops_the_search_cleanly(
    ray_local, tmp_path, micro_space, on_log, full_disk, capsys, trial_failures
) -> None:
    storage, fill = full_disk
    config = _config(tmp_path, micro_space, name="full", storage_path=str(storage))
    if fill is None:  # no tmpfs here: the second trial's checkpoint meets ENOSPC instead
        second = list(load_space(micro_space).iter_genotypes(include_train=False))[1]
        trial_failures({second.arch_id: "disk_full"})
    else:
        on_log["completed"] = fill
    with pytest.raises(SearchStoppedError) as caught:
        run_search(config)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"no space left on {storage} (--storage-path): the checkpoint of trial 1 ")
    assert re.search(
        r"\(\d[\d.]* [KMGT]?B free; a checkpoint of this search needs about \d[\d.]* KB\)", message
    )
    assert "): search stopped; finished trials are saved; the search and its running trials are" in message
    assert message.endswith("free space, then continue with nasfcn search --resume --name full")
    search, trials = _statuses(config.execution.db, "full")
    assert search == "interrupted"
    assert trials == ["completed", "interrupted"]  # re-run by the resume, not a failed candidate
    board = leaderboard_frame(open_store(config.execution.db), "full").set_index("number")
    assert "No space left on device" in board.loc[1, "error"]
    if fill is not None:
        err = capsys.readouterr().err
        assert "Logging error" not in err
        assert err.count(f"search log {storage / 'search.log'}: cannot write") == 1
        (storage / "filler").unlink()

    trial_failures({})  # the disk has room again
    summary = run_search(with_execution(config, resume=True))
    assert summary.counts["completed"] == 4
    assert _statuses(config.execution.db, "full")[0] == "completed"


def test_the_live_view_of_a_resumed_run_counts_done_and_left_from_the_earlier_runs() -> None:
    from rich.console import Console

    from nasfcn.search._recorder import Progress

    progress = Progress(requested=16, finished_before=6, noun="runs")
    progress.counts = {"completed": 2}
    console = Console(record=True, width=200)
    console.print(progress.render())
    text = console.export_text()
    assert "runs 8/16" in text  # 6 before the resume, 2 since
    assert "8 left, ~" in text  # an ETA from this session's 2 runs, for the 8 still to run


def test_the_live_view_shows_the_fidelity() -> None:
    from rich.console import Console

    from nasfcn.search._recorder import Progress

    shown = "epochs 1-2 at 32 px on 25% of the train images (cost 0.0625 of an epoch each), then full size"
    console = Console(record=True, width=200)
    console.print(Progress(requested=4, fidelity=shown).render())
    assert f"fidelity: {shown}" in console.export_text()
    console = Console(record=True, width=200)
    console.print(Progress(requested=4).render())
    assert "fidelity" not in console.export_text()


@pytest.mark.parametrize(("trained", "status"), [(4, "completed"), (2, "stopped_early")])
def test_a_trial_is_complete_at_its_own_planned_epochs(tmp_path: Path, trained: int, status: str) -> None:
    """A budgeted search plans each trial's epochs (its recipe's): reaching them is completing."""
    from types import SimpleNamespace

    from nasfcn.genotype import EncoderGene, Genotype
    from nasfcn.search._recorder import Progress, StoreRecorder
    from nasfcn.store import create_search

    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    sid = create_search(store, "s", "shapes")
    genotype = Genotype(encoder=EncoderGene(stages=2, width=4), skip="none", upsample="bilinear")
    recorder = StoreRecorder(store, sid, "shapes", {"epochs": 16, "seed": 0}, 16, Progress(requested=1))
    trial = SimpleNamespace(
        trial_id="t0",
        config={"genotype": genotype.to_json(), "number": 0, "recipe_overrides": {"epochs": 4}},
        last_result={"epoch": trained, "nasfcn_status": "running"},
    )
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_complete(0, [], trial)
    assert leaderboard_frame(store, "s")["status"].tolist() == [status]


def test_a_reduced_fidelity_result_is_stored_under_its_fidelity(tmp_path: Path) -> None:
    """Only a search at the same fidelity reuses it: a full-size one's lookup does not find it."""
    from types import SimpleNamespace

    from nasfcn.data import DataConfig
    from nasfcn.genotype import EncoderGene, Genotype
    from nasfcn.search._recorder import Progress, StoreRecorder
    from nasfcn.store import create_search, find_reusable

    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    sid = create_search(store, "s", "shapes")
    genotype = Genotype(encoder=EncoderGene(stages=2, width=4), skip="none", upsample="bilinear")
    full = {"epochs": 2, "seed": 0}
    reduced = {**full, "fidelity": {"resolution": 0.5, "subset": 0.5, "low_epochs": 1}}
    data = DataConfig(image_size=32).key()
    recorder = StoreRecorder(store, sid, "shapes", reduced, 2, Progress(requested=1), data=data)
    trial = SimpleNamespace(
        trial_id="t0",
        config={"genotype": genotype.to_json(), "number": 0},
        last_result={"epoch": 2, "nasfcn_status": "running"},
    )
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_complete(0, [], trial)
    trial_id = int(leaderboard_frame(store, "s")["trial_id"].iloc[0])
    assert find_reusable(store, genotype, "shapes", full, data) is None
    assert find_reusable(store, genotype, "shapes", reduced, data) == trial_id
    store.dispose()


@pytest.mark.parametrize(("node_lost", "status"), [(None, "failed"), ("the node is gone", "interrupted")])
def test_a_trial_that_died_with_its_ray_node_runs_again(
    tmp_path: Path, node_lost: str | None, status: str
) -> None:
    """A trial killed because Ray declared its node dead is the machine's fault, not the candidate's."""
    from types import SimpleNamespace

    from nasfcn.genotype import EncoderGene, Genotype
    from nasfcn.search._recorder import Progress, StoreRecorder
    from nasfcn.store import create_search

    store = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    sid = create_search(store, "s", "shapes")
    genotype = Genotype(encoder=EncoderGene(stages=2, width=4), skip="none", upsample="bilinear")
    recorder = StoreRecorder(
        store, sid, "shapes", {"epochs": 2, "seed": 0}, 2, Progress(requested=1), node_lost=lambda: node_lost
    )
    trial = SimpleNamespace(
        trial_id="t0",
        config={"genotype": genotype.to_json(), "number": 0},
        last_result={},
        error_file=None,
        get_error=lambda: (
            "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task."
        ),
    )
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_error(0, [], trial)
    assert leaderboard_frame(store, "s")["status"].tolist() == [status]
    store.dispose()
