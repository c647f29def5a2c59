"""One live driver per search: the lease contract, on SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import multiprocessing
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event

import pytest
from sqlalchemy import update

from nasfcn.store import (
    LeaseHeldError,
    LeaseLostError,
    Store,
    acquire_lease,
    create_search,
    current_lease,
    fence_writes,
    new_owner,
    open_store,
    release_lease,
    renew_lease,
    searches_frame,
    set_search_status,
)
from nasfcn.store._schema import SearchLease


def _backdate(store: Store, search_id: int, seconds: float) -> None:
    """What a holder that died ``seconds`` ago leaves behind: its last heartbeat."""
    stamp = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    with store.session_scope(guarded=False) as session:
        session.execute(
            update(SearchLease).where(SearchLease.search_id == search_id).values(heartbeat_at=stamp)
        )


def test_a_live_lease_is_refused_naming_its_holder(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "dup", "shapes")
    first, second = new_owner(), new_owner()
    held = acquire_lease(store, search, first)
    assert (held.owner, held.host) == (first, socket.gethostname())
    with pytest.raises(LeaseHeldError) as refused:
        acquire_lease(store, search, second, stale_after_s=60)
    message = str(refused.value)
    assert "'dup'" in message
    assert f"pid {held.pid} on host {held.host}" in message
    assert "running since" in message
    assert "last heartbeat" in message
    assert re.search(r"expires 60 s after its last heartbeat \(in \d+ s\)", message)
    assert refused.value.holder.owner == first
    assert acquire_lease(store, search, first).owner == first  # the holder may take it again


def test_a_stale_lease_is_taken_over_and_its_old_holder_has_lost_it(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "crashed", "shapes")
    old, new = new_owner(), new_owner()
    acquire_lease(store, search, old)
    _backdate(store, search, 61)
    assert acquire_lease(store, search, new, stale_after_s=60).owner == new
    with pytest.raises(LeaseLostError, match="lost the lease of search 'crashed'"):
        renew_lease(store, search, old)
    assert not release_lease(store, search, old)  # the old holder cannot free the new one's lease
    lease = current_lease(store, search)
    assert lease is not None
    assert lease.owner == new


def test_a_lease_just_short_of_stale_is_still_refused(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "slow", "shapes")
    acquire_lease(store, search, new_owner())
    _backdate(store, search, 50)
    with pytest.raises(LeaseHeldError, match=r"\(in 1?\d s\)"):
        acquire_lease(store, search, new_owner(), stale_after_s=60)


def test_heartbeats_keep_a_lease_and_release_frees_it(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "beating", "shapes")
    owner = new_owner()
    acquire_lease(store, search, owner)
    _backdate(store, search, 120)
    renew_lease(store, search, owner)  # a fresh heartbeat: no longer stale
    with pytest.raises(LeaseHeldError):
        acquire_lease(store, search, new_owner(), stale_after_s=60)
    assert release_lease(store, search, owner)
    assert current_lease(store, search) is None
    assert acquire_lease(store, search, new_owner()).search_id == search


def test_a_holder_gone_from_this_host_is_taken_over_at_once(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "killed", "shapes")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    acquire_lease(store, search, "killed-driver")
    with store.session_scope(guarded=False) as session:
        statement = update(SearchLease).where(SearchLease.search_id == search)
        session.execute(statement.values(pid=gone.pid))  # a fresh heartbeat, but the process is gone
    assert acquire_lease(store, search, new_owner(), stale_after_s=60).search_id == search

    elsewhere = create_search(store, "remote", "shapes")
    acquire_lease(store, elsewhere, "remote-driver")
    with store.session_scope(guarded=False) as session:
        statement = update(SearchLease).where(SearchLease.search_id == elsewhere)
        session.execute(statement.values(pid=gone.pid, host="another-machine"))
    with pytest.raises(LeaseHeldError, match="on host another-machine"):  # no way to tell from here
        acquire_lease(store, elsewhere, new_owner(), stale_after_s=60)


def test_a_fenced_store_writes_nothing_once_its_lease_is_lost(db_url: str) -> None:
    store, other = open_store(db_url), Store(db_url)
    search = create_search(store, "fenced", "shapes")
    owner = new_owner()
    acquire_lease(store, search, owner)
    fence_writes(store, search, owner)
    set_search_status(store, search, "running")  # holding the lease: writes go through
    _backdate(other, search, 120)
    acquire_lease(other, search, new_owner())
    with pytest.raises(LeaseLostError, match="stopped writing"):
        set_search_status(store, search, "interrupted")
    assert searches_frame(other).set_index("name").loc["fenced", "status"] == "running"
    fence_writes(store, search, None)
    set_search_status(store, search, "completed")  # unfenced, as before
    other.dispose()


def _contend(url: str, search: int, start: Barrier, done: Event, results: Queue) -> None:
    store = Store(url)
    start.wait(60)
    try:
        results.put(acquire_lease(store, search, new_owner()).owner)
    except LeaseHeldError:
        results.put(None)
    done.wait(60)  # stay alive: a holder that exited could be taken over at once
    store.dispose()


@pytest.mark.slow
def test_racing_drivers_never_both_win(db_url: str) -> None:
    store = open_store(db_url)
    search = create_search(store, "race", "shapes")
    context = multiprocessing.get_context("spawn")
    contenders = 4
    start, done, results = context.Barrier(contenders), context.Event(), context.Queue()
    workers = [
        context.Process(target=_contend, args=(db_url, search, start, done, results))
        for _ in range(contenders)
    ]
    for worker in workers:
        worker.start()
    owners = [results.get(timeout=120) for _ in workers]
    done.set()
    for worker in workers:
        worker.join(60)
    winners = [owner for owner in owners if owner is not None]
    assert len(winners) == 1
    lease = current_lease(store, search)
    assert lease is not None
    assert lease.owner == winners[0]
