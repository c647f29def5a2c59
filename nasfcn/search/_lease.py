"""The driver's hold on its search: take the lease, keep it fresh from a thread, give it back.

While the lease is held the store is fenced (``fence_writes``): if another driver takes the
lease over after a long stall, this driver's next write fails with ``LeaseLostError`` instead
of mixing its trials into the new driver's, and a run in progress is stopped as by Ctrl-C.
"""

from __future__ import annotations

import _thread
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from nasfcn.store import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    Lease,
    LeaseLostError,
    Store,
    StoreError,
    acquire_lease,
    fence_writes,
    get_search,
    new_owner,
    release_lease,
    renew_lease,
)

log = logging.getLogger("nasfcn.search")


class _Heartbeat(threading.Thread):
    """Refreshes the lease every ``interval`` seconds until stopped or the lease is lost."""

    def __init__(self, store: Store, lease: Lease, interval: float, stop_main: bool) -> None:
        super().__init__(name=f"nasfcn-lease-{lease.search_id}", daemon=True)
        self.store = store
        self.lease = lease
        self.interval = interval
        self.stop_main = stop_main  # interrupt the main thread (it runs Tune) when the lease is lost
        self.stopping = threading.Event()
        self.main_lock = threading.Lock()
        self.lost: LeaseLostError | None = None
        self.run_stopped = False

    def stop_run(self) -> None:
        """Stop the Tune run in the main thread as Ctrl-C does, once (a second one would abort it)."""
        with self.main_lock:
            if self.stop_main and not self.run_stopped:
                self.run_stopped = True
                _thread.interrupt_main()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                renew_lease(self.store, self.lease.search_id, self.lease.owner)
            except LeaseLostError as err:
                self.lost = err
                log.error("%s", err)
                self.stop_run()  # Tune stops its trials as on Ctrl-C
                return
            except StoreError as err:  # the database is unreachable for now: try again next beat
                log.warning("could not refresh the lease: %s", err)

    def stop(self) -> None:
        with self.main_lock:
            self.stop_main = False
        self.stopping.set()
        self.join()


@contextmanager
def driver_lease(store: Store, search_id: int) -> Iterator[Lease]:
    """Hold the search's lease for the length of the block; ``LeaseHeldError`` if it is taken.

    Heartbeats every ``HEARTBEAT_S`` seconds; another driver's lease is taken once it has
    sent none for ``STALE_AFTER_S`` seconds (module settings, read at each call).
    """
    lease = acquire_lease(store, search_id, new_owner(), stale_after_s=STALE_AFTER_S)
    log.info("lease of search %s taken: %s", search_id, lease.describe())
    beat = _Heartbeat(store, lease, HEARTBEAT_S, threading.current_thread() is threading.main_thread())
    fence_writes(store, search_id, lease.owner)
    store.on_lease_lost = beat.stop_run  # a fenced write that finds the lease gone stops the run too
    beat.start()
    try:
        yield lease
    except BaseException:
        lost = beat.lost or _lost_now(store, lease)
        if lost is not None:
            raise lost from None  # the stop came from losing the lease, not from the user
        raise
    finally:
        beat.stop()
        store.on_lease_lost = None
        fence_writes(store, search_id, None)
        if beat.lost is None:
            _release(store, lease)
    if beat.lost is not None:
        raise beat.lost


def register_under_lease(
    held: ExitStack, store: Store, name: str, resume: bool, register: Callable[[], int]
) -> int:
    """Register a search with ``register`` (``create_search``) while holding its lease in ``held``.

    A resume takes the lease before it touches the stored search, so a refused second driver
    leaves the running one's row as it was; a new search is leased as soon as it exists.
    """
    stored = get_search(store, name) if resume else None
    if stored is not None:
        held.enter_context(driver_lease(store, stored["id"]))
    search_id = register()
    if stored is None:
        held.enter_context(driver_lease(store, search_id))
    return search_id


def _lost_now(store: Store, lease: Lease) -> LeaseLostError | None:
    """Whether the lease was taken over (a fenced write may notice before the heartbeat does)."""
    try:
        renew_lease(store, lease.search_id, lease.owner)
    except LeaseLostError as err:
        return err
    except StoreError:
        return None
    return None


def _release(store: Store, lease: Lease) -> None:
    try:
        release_lease(store, lease.search_id, lease.owner)
    except StoreError as err:  # it goes stale on its own
        log.warning("could not release the lease of search %s: %s", lease.search_id, err)
