"""Bulk writes: tens of thousands of rows in one transaction, without ORM objects.

``upsert_trial`` / ``record_epoch`` take a transaction per row, which is right for a search's
recorder and minutes for an arena (38,400 simulated trials) or a benchmark's 100,000-trial
search. These insert each table's rows ``CHUNK`` at a time: one executemany per chunk, or on
PostgreSQL ``COPY ... FROM STDIN`` (psycopg's executemany sends a row at a time, and its
multi-row VALUES statements are parsed client-side). A failed write leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from nasfcn.store._engine import Store
from nasfcn.store._schema import Architecture, Base
from nasfcn.store._writes import now

#: Rows per executemany: large enough that the round trips vanish, small enough for any driver.
CHUNK = 10_000
#: The tables ``bulk_insert`` writes; every row of a call has the same keys, in the same order.
BULK_TABLES = ("trials", "trial_costs", "epochs")


def bulk_insert(store: Store, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """Insert ``rows`` (column -> plain Python value) into ``table``, one of ``BULK_TABLES``, in
    one transaction."""
    if table not in BULK_TABLES:
        raise ValueError(f"bulk_insert writes {', '.join(BULK_TABLES)}, not {table!r}")
    with store.session_scope() as session:
        insert_rows(session, Base.metadata.tables[table], rows)


def add_architectures(store: Store, archs: Mapping[str, str]) -> None:
    """Store the architectures (arch_id -> genotype JSON) the database does not hold yet."""
    with store.session_scope() as session:
        insert_architectures(session, archs)


def insert_architectures(session: Session, archs: Mapping[str, str]) -> None:
    """``add_architectures`` inside the caller's transaction."""
    known: set[str] = set()
    names = sorted(archs)
    for start in range(0, len(names), CHUNK):  # an IN list per chunk: backends cap parameters
        part = names[start : start + CHUNK]
        known.update(
            session.execute(select(Architecture.arch_id).where(Architecture.arch_id.in_(part))).scalars()
        )
    created = now()
    rows = ({"arch_id": a, "genotype_json": archs[a], "created_at": created} for a in names if a not in known)
    insert_rows(session, Architecture, rows)


def insert_rows(session: Session, model: type | Table, rows: Iterable[dict[str, Any]]) -> None:
    """Bulk INSERT of ``rows``, ``CHUNK`` at a time, in the session's transaction."""
    table = model if isinstance(model, Table) else model.__table__  # type: ignore[attr-defined]
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            _write_chunk(session, table, chunk)
            chunk = []
    if chunk:
        _write_chunk(session, table, chunk)


def _write_chunk(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    import psycopg

    # COPY through the session's own psycopg connection: the same transaction
    columns = list(rows[0])
    driver: Any = session.connection().connection.driver_connection
    names = ", ".join(f'"{c}"' for c in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    except psycopg.Error as err:  # as SQLAlchemy's own: the store rolls back and names the database
        raise DBAPIError(statement, None, err) from err
