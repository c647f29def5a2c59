"""One live driver per search: a lease row its holder keeps fresh, taken over only when stale.

Optuna's RDB storage does the same for trials (heartbeats, stale ones failed). Taking a
lease is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <stale or ours>`` statement, so
two drivers racing for a search cannot both win; the database decides. Timestamps are the
drivers' own UTC clocks: drivers on different machines need clocks that agree within seconds.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from nasfcn.store._engine import Store, StoreError
from nasfcn.store._schema import Search, SearchLease

#: How often a driver refreshes its lease, and how long without a refresh makes it stale.
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0

# The dialects with INSERT ... ON CONFLICT; their inserts share on_conflict_* but no common type
# declares it, hence Callable[..., Any].
_INSERTS: dict[str, Callable[..., Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class LeaseHeldError(StoreError):
    """Another driver, alive by its heartbeat, runs this search."""

    def __init__(self, message: str, holder: Lease) -> None:
        super().__init__(message)
        self.holder = holder


class LeaseLostError(StoreError):
    """This driver's lease was taken over (it stalled too long): it must stop writing."""


@dataclass(frozen=True)
class Lease:
    """Who drives a search, since when, and when it last said it was alive."""

    search_id: int
    owner: str  # host:pid:random, unique per driver process
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        return (
            f"pid {self.pid} on host {self.host}, running since {_clock(self.acquired_at)}, "
            f"last heartbeat {_ago(self.heartbeat_at)}"
        )


def new_owner() -> str:
    """A name for this driver that no other process, here or elsewhere, will use."""
    return f"{_host()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def pid_alive(pid: int) -> bool:
    """Whether a process of that id exists on this machine (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lease(store: Store, search_id: int, owner: str, stale_after_s: float = STALE_AFTER_S) -> Lease:
    """Take the search's lease: free, stale, already ours, or held by a process gone from this host.

    Raises ``LeaseHeldError`` naming the live holder and when its lease would expire.
    """
    taken = _claim(store, search_id, owner, stale_after_s, dead_owner=None)
    if taken is not None:
        return taken
    holder = current_lease(store, search_id)
    if holder is not None and holder.host == _host() and not pid_alive(holder.pid):
        # Its process is gone: no need to wait for the heartbeat to go stale.
        taken = _claim(store, search_id, owner, stale_after_s, dead_owner=holder.owner)
        if taken is not None:
            return taken
        holder = current_lease(store, search_id)
    if holder is None:  # released between the two statements: try once more
        taken = _claim(store, search_id, owner, stale_after_s, dead_owner=None)
        if taken is not None:
            return taken
        holder = current_lease(store, search_id)
    if holder is None:
        raise StoreError(f"could not take the lease of search {_name(store, search_id)!r}; try again")
    raise LeaseHeldError(_held_message(store, holder, stale_after_s), holder)


def renew_lease(store: Store, search_id: int, owner: str) -> datetime:
    """Refresh the heartbeat; ``LeaseLostError`` when another driver has taken the lease."""
    beat = _now()
    with store.session_scope(guarded=False) as session:
        result = session.execute(
            update(SearchLease)
            .where(SearchLease.search_id == search_id, SearchLease.owner == owner)
            .values(heartbeat_at=beat)
        )
        renewed = bool(result.rowcount)  # type: ignore[attr-defined]
    if not renewed:
        raise LeaseLostError(_lost_message(store, search_id))
    return beat


def release_lease(store: Store, search_id: int, owner: str) -> bool:
    """Give the lease back (only our own); True when there was one to give back."""
    with store.session_scope(guarded=False) as session:
        result = session.execute(
            delete(SearchLease).where(SearchLease.search_id == search_id, SearchLease.owner == owner)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def current_lease(store: Store, search_id: int) -> Lease | None:
    """The search's lease as stored (stale or not), or None when no driver holds it."""
    with store.session_scope(guarded=False) as session:
        row = session.get(SearchLease, search_id)
        return None if row is None else _lease(row)


def fence_writes(store: Store, search_id: int, owner: str | None) -> None:
    """Make every later transaction of ``store`` commit only while ``owner`` holds the lease.

    The check runs in the writing transaction itself (a shared row lock on PostgreSQL; on
    SQLite the transaction already holds the write lock), so a driver that lost its lease
    cannot slip a write in after the new holder took over. ``owner=None`` lifts the fence.
    """
    if owner is None:
        store.guard = None
        return

    def guard(session: Session) -> None:
        holder = session.execute(
            select(SearchLease.owner).where(SearchLease.search_id == search_id).with_for_update(read=True)
        ).scalar_one_or_none()
        if holder != owner:
            raise LeaseLostError(_lost_message(store, search_id))

    store.guard = guard


# -- helpers ---------------------------------------------------------------------------------
def _claim(
    store: Store, search_id: int, owner: str, stale_after_s: float, dead_owner: str | None
) -> Lease | None:
    """One atomic insert-or-take-over; the lease when this driver holds it afterwards, else None."""
    stamp = _now()
    values: dict[str, Any] = {
        "search_id": search_id,
        "owner": owner,
        "host": _host(),
        "pid": os.getpid(),
        "acquired_at": stamp,
        "heartbeat_at": stamp,
    }
    table = SearchLease.__table__
    takeable: list[ColumnElement[bool]] = [
        table.c.heartbeat_at < stamp - timedelta(seconds=stale_after_s),
        table.c.owner == owner,
    ]
    if dead_owner is not None:
        takeable.append(table.c.owner == dead_owner)
    with store.session_scope(guarded=False) as session:
        dialect = session.get_bind().dialect.name
        insert = _INSERTS.get(dialect)
        if insert is None:
            raise StoreError(f"search leases need SQLite or PostgreSQL, not {dialect}")
        statement = (
            insert(table)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["search_id"],
                set_={k: v for k, v in values.items() if k != "search_id"},
                where=or_(*takeable),
            )
            .returning(table.c.owner)
        )
        won = session.execute(statement).scalar_one_or_none() == owner
    if not won:
        return None
    return Lease(search_id, owner, values["host"], values["pid"], stamp, stamp)


def _held_message(store: Store, holder: Lease, stale_after_s: float) -> str:
    left = max(0, round(stale_after_s - (_now() - holder.heartbeat_at).total_seconds()))
    return (
        f"search {_name(store, holder.search_id)!r} is already being run by another driver: "
        f"{holder.describe()}. Stop that driver first (Ctrl-C); if it died, its lease expires "
        f"{stale_after_s:.0f} s after its last heartbeat (in {left} s), and --resume then takes it over"
    )


def _lost_message(store: Store, search_id: int) -> str:
    holder = current_lease(store, search_id)
    by = "nobody holds it now" if holder is None else f"now held by {holder.describe()}"
    return (
        f"this driver lost the lease of search {_name(store, search_id)!r} ({by}): "
        "it stopped writing; its trials continue under the driver that took over"
    )


def _name(store: Store, search_id: int) -> str:
    with store.session_scope(guarded=False) as session:
        name = session.execute(select(Search.name).where(Search.id == search_id)).scalar_one_or_none()
    return name or f"#{search_id}"


def _lease(row: SearchLease) -> Lease:
    return Lease(row.search_id, row.owner, row.host, row.pid, _utc(row.acquired_at), _utc(row.heartbeat_at))


def _host() -> str:
    return socket.gethostname()[:200]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(stamp: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _clock(stamp: datetime) -> str:
    return f"{_utc(stamp):%Y-%m-%d %H:%M:%S} UTC"


def _ago(stamp: datetime) -> str:
    return f"{max(0, round((_now() - _utc(stamp)).total_seconds()))} s ago"
