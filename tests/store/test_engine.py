"""Writes wait out a database that is away: a locked SQLite file, a PostgreSQL server restarting."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from nasfcn.store import (
    RETRY_ENV_VAR,
    DatabaseUnavailableError,
    RetryPolicy,
    Store,
    StoreError,
    TransientStoreError,
    _engine,
    create_search,
    get_search,
    open_store,
    set_search_status,
)
from nasfcn.store._schema import Trial

SHORT = RetryPolicy(budget_s=0.6, first_delay_s=0.1, max_delay_s=0.2)


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A SQLite store whose writes give up on a lock after 0.2 s instead of 30 s."""
    monkeypatch.setattr(_engine, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    store = open_store(f"sqlite:///{tmp_path / 'nasfcn.db'}")
    create_search(store, "s", "shapes")
    return store


def _lock(store: Store) -> sqlite3.Connection:
    """Another connection holding the write lock, as a second writer in a transaction would."""
    holder = sqlite3.connect(store.engine.url.database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_a_write_to_a_locked_sqlite_file_is_retried_once_the_lock_is_released(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    holder = _lock(sqlite_store)
    notices: list[str] = []

    def release(message: str) -> None:  # the holder lets go as soon as the first retry is announced
        notices.append(message)
        holder.rollback()
        holder.close()

    sid = get_search(sqlite_store, "s")["id"]
    with caplog.at_level(logging.WARNING, logger="nasfcn.store"):
        sqlite_store.retrying(lambda: set_search_status(sqlite_store, sid, "completed"), "testing", release)
    assert get_search(sqlite_store, "s")["status"] == "completed"
    assert len(notices) == 1
    for part in ("database is locked", "while testing", "retry 1 in", sqlite_store.masked_url):
        assert part in notices[0]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == notices[0]  # each retry logged once, as one line
    assert "back after" in lines[1]


def test_a_lock_held_beyond_the_budget_gives_up_with_one_line(sqlite_store: Store) -> None:
    holder = _lock(sqlite_store)
    sqlite_store.retry_policy = SHORT
    notices: list[str] = []
    sid = get_search(sqlite_store, "s")["id"]
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            sqlite_store.retrying(
                lambda: set_search_status(sqlite_store, sid, "completed"), "recording trial 7", notices.append
            )
    finally:
        holder.close()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"database {sqlite_store.masked_url} unreachable for ")
    assert "while recording trial 7 (" in message
    assert "database is locked" in message
    assert len(notices) >= 2  # exponential backoff: 0.1 s, 0.2 s, ... within 0.6 s
    assert get_search(sqlite_store, "s")["status"] == "running"


def test_errors_that_cannot_pass_are_not_retried(sqlite_store: Store) -> None:
    notices: list[str] = []

    def orphan() -> None:  # a trial of a search that does not exist: a constraint violation
        with sqlite_store.session_scope() as session:
            session.add(Trial(search_id=999, number=0, arch_id="x", trial_key="x", genotype_json="{}"))

    with pytest.raises(StoreError) as caught:
        sqlite_store.retrying(orphan, "testing", notices.append)
    assert not isinstance(caught.value, TransientStoreError)
    assert "IntegrityError" in str(caught.value)
    assert notices == []
    with pytest.raises(ValueError, match="unknown search status"):  # a bug is raised as it is
        sqlite_store.retrying(lambda: set_search_status(sqlite_store, 1, "x"), "testing", notices.append)
    assert notices == []


@pytest.mark.parametrize(
    ("statement", "locked", "transient"),
    [
        ("INSERT INTO t VALUES (1)", True, True),  # database is locked
        ("SELECT * FROM no_such_table", False, False),
        ("INSERT INTO t VALUES (1, 2)", False, False),  # 1 column, 2 values
    ],
)
def test_which_sqlite_errors_are_transient(
    tmp_path: Path, statement: str, locked: bool, transient: bool
) -> None:
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a)")
    if locked:
        holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0.05)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            other.execute(statement)
    finally:
        other.close()
        holder.close()
    error = OperationalError(statement, {}, caught.value)
    assert _engine.is_transient(error) is transient


@pytest.mark.parametrize(
    ("value", "budget"), [(None, 90.0), ("", 90.0), ("5", 5.0), ("0", 0.0), ("2.5", 2.5)]
)
def test_the_retry_budget_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, budget: float
) -> None:
    if value is None:
        monkeypatch.delenv(RETRY_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(RETRY_ENV_VAR, value)
    assert _engine.retry_policy_from_env().budget_s == budget


@pytest.mark.parametrize("value", ["abc", "-1", "inf", "nan"])
def test_a_bad_retry_budget_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(RETRY_ENV_VAR, value)
    with pytest.raises(
        StoreError, match=rf"^NASFCN_DB_RETRY_S must be a number of seconds >= 0, got '{value}'$"
    ):
        Store("sqlite://")


@pytest.mark.slow
def test_writes_go_on_after_a_postgresql_restart(own_postgres) -> None:
    store = open_store(own_postgres.url)
    create_search(store, "s", "shapes")  # the pool now holds a connection the restart will cut
    sid = get_search(store, "s")["id"]
    own_postgres.stop()
    notices: list[str] = []

    def come_back(message: str) -> None:
        notices.append(message)
        if len(notices) == 1:
            own_postgres.start()

    store.retrying(lambda: set_search_status(store, sid, "completed"), "testing", come_back)
    assert get_search(store, "s")["status"] == "completed"
    assert len(notices) == 1
    assert "unavailable while testing" in notices[0]
    with store.engine.connect() as connection:  # the pool was renewed, not left with dead connections
        assert connection.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.slow
def test_a_postgresql_server_away_beyond_the_budget_gives_up(own_postgres) -> None:
    store = open_store(own_postgres.url)
    create_search(store, "s", "shapes")
    sid = get_search(store, "s")["id"]
    store.retry_policy = SHORT
    own_postgres.stop()
    with pytest.raises(DatabaseUnavailableError, match=r"^database postgresql\+psycopg://postgres@127"):
        store.retrying(lambda: set_search_status(store, sid, "completed"), "testing")
    own_postgres.start()
    assert get_search(store, "s")["status"] == "running"
