"""Opening a database: engine settings per backend, schema revision checks, sessions."""

from __future__ import annotations

import ast
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nasfcn.errors import NasfcnError
from nasfcn.store._url import mask_text, mask_url, resolve_url

if TYPE_CHECKING:  # alembic is imported where a migration runs: every command opens a store
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Seconds a SQLite write waits for another connection's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Seconds a PostgreSQL connection attempt may take (a server that is away answers at once).
CONNECT_TIMEOUT_S = 10
#: The environment variable that sets how long writes wait out an unreachable database.
RETRY_ENV_VAR = "NASFCN_DB_RETRY_S"
#: SQLite result codes of a write that may succeed later: BUSY, LOCKED, IOERR, FULL.
_SQLITE_TRANSIENT = frozenset({5, 6, 10, 13})

log = logging.getLogger("nasfcn.store")
T = TypeVar("T")


class StoreError(NasfcnError, RuntimeError):
    """The database cannot be used; the message (password masked) says how to fix it."""


class SchemaOutdatedError(StoreError):
    """The database was made by another version of nasfcn."""


class TransientStoreError(StoreError):
    """The database was away or busy (connection refused or lost, server restarting, locked,
    disk full): the same write may succeed later. ``reason`` is the masked driver message."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseUnavailableError(StoreError):
    """A write kept failing with transient errors for the whole retry budget."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long a write waits out a database that is away: exponential backoff in a budget.

    Writes are idempotent upserts, so a retried write never duplicates a row.
    """

    budget_s: float = 90.0  # give up once this long has passed since the first failure
    first_delay_s: float = 0.5  # wait before the first retry; doubles after each failure
    max_delay_s: float = 10.0  # longest wait between two attempts

    def delays(self) -> Iterator[float]:
        delay = self.first_delay_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_delay_s)


def retry_policy_from_env() -> RetryPolicy:
    """The default policy, or ``$NASFCN_DB_RETRY_S`` seconds of retries (0: never retry)."""
    text = os.environ.get(RETRY_ENV_VAR)
    if text is None or not text.strip():
        return RetryPolicy()
    try:
        budget = float(text)
    except ValueError:
        budget = -1.0
    if not 0 <= budget < float("inf"):
        raise StoreError(f"{RETRY_ENV_VAR} must be a number of seconds >= 0, got {text!r}")
    return RetryPolicy(budget_s=budget)


def is_transient(err: BaseException) -> bool:
    """A database error that may pass by itself; constraint violations and bugs never do."""
    if isinstance(err, DisconnectionError):
        return True
    if not isinstance(err, DBAPIError):
        return False
    if err.connection_invalidated or isinstance(err, InterfaceError):
        return True
    if isinstance(err, OperationalError):
        code = getattr(err.orig, "sqlite_errorcode", None)  # PostgreSQL's are about the connection
        return code is None or code & 0xFF in _SQLITE_TRANSIENT
    return False


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


#: Where alembic keeps a database's schema revision (its default table).
VERSION_TABLE = "alembic_version"
#: A migration script's ``revision = "..."`` / ``down_revision = ...`` lines.
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def head_revision() -> str:
    """The newest migration's revision, read from the scripts' ``revision`` lines: importing
    alembic and loading every script was ~0.15 s of each command; anything but one plain head
    is left to alembic's own reading (and its errors)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            names = ast.literal_eval(value)
            found = {names} if isinstance(names, str) else set(names or ())
            (revisions if key == "revision" else parents).update(found)
    heads = revisions - parents
    if len(heads) == 1 and parents <= revisions:
        return heads.pop()
    return _alembic_head()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise StoreError("nasfcn ships no schema migrations; the installation is broken")
    return head


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the leaderboard read while a search writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


class Store:
    """One database: SQLite (the default ``sqlite:///nasfcn.db``) or any SQLAlchemy URL."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.masked_url = mask_url(self.url)
        parsed = make_url(self.url)
        self.backend = parsed.get_backend_name()
        self.retry_policy = retry_policy_from_env()
        options: dict[str, Any] = {"future": True}
        if self.backend == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            options["pool_pre_ping"] = True
            if parsed.get_driver_name() in ("psycopg", "psycopg2") and "connect_timeout" not in parsed.query:
                options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        try:
            self.engine: Engine = create_engine(self.url, **options)
        except (SQLAlchemyError, ImportError) as err:
            raise StoreError(f"cannot open database {self.masked_url}: {mask_text(str(err))}") from None
        if self.backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Runs in every guarded transaction before it commits and may refuse it (a driver's
        # lease fence: see nasfcn.store._leases.fence_writes).
        self.guard: Callable[[Session], None] | None = None
        # Called by a writer that met LeaseLostError: the lease holder's way to stop its run.
        self.on_lease_lost: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"Store({self.masked_url!r})"

    # -- schema ------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema revision of the database, or None for an empty database."""
        with self._connect() as connection:  # alembic's reading, without importing alembic
            if not inspect(connection).has_table(VERSION_TABLE):
                return None
            heads = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
            if len(heads) > 1:  # alembic refuses it, in its own words
                from alembic.runtime.migration import MigrationContext

                return MigrationContext.configure(connection).get_current_revision()
        return str(heads[0]) if heads else None

    def has_tables(self) -> bool:
        with self._connect() as connection:
            return bool(inspect(connection).get_table_names())

    def upgrade(self) -> tuple[str | None, str]:
        """Apply migrations up to this nasfcn's schema; returns (before, after)."""
        before = self.revision()
        from alembic import command

        with self._connect() as connection, connection.begin():
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return before, head_revision()

    def check(self, create: bool = True) -> None:
        """Make sure the schema is this version's: create it in an empty database, else refuse."""
        revision = self.revision()
        head = head_revision()
        if revision == head:
            return
        if revision is None and not self.has_tables():
            if create:
                self.upgrade()
                return
            raise StoreError(f"database {self.masked_url} is empty: run a search first")
        found = revision or "no revision (tables not made by nasfcn)"
        raise SchemaOutdatedError(
            f"database {self.masked_url} has schema {found}, this nasfcn needs {head}: "
            f"run `nasfcn db upgrade --db '{self.masked_url}'` (back the database up first)"
        )

    # -- sessions ----------------------------------------------------------------------
    @contextmanager
    def session_scope(self, guarded: bool = True) -> Iterator[Session]:
        """The one place writes happen: commit on success, roll back on any error."""
        session = self._sessions()
        try:
            yield session
            if guarded and self.guard is not None:
                self.guard(session)
            session.commit()
        except SQLAlchemyError as err:
            session.rollback()
            if is_transient(err):
                reason = mask_text(str(err).splitlines()[0])
                raise TransientStoreError(f"database error on {self.masked_url}: {reason}", reason) from None
            raise StoreError(f"database error on {self.masked_url}: {mask_text(str(err))}") from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def retrying(self, write: Callable[[], T], what: str, on_retry: Callable[[str], None] | None = None) -> T:
        """Run ``write`` (one whole idempotent write), again and again while the database is away.

        Transient errors are retried with exponential backoff for ``retry_policy.budget_s``
        seconds, each retry logged once as one line; then ``DatabaseUnavailableError``. Any
        other error is raised at once. ``what`` ("recording trial 7") completes the messages.
        """
        policy = self.retry_policy
        delays = policy.delays()
        first_failure: float | None = None
        retries = 0
        while True:
            try:
                result = write()
            except TransientStoreError as err:
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                left = policy.budget_s - (now - first_failure)
                if left <= 0:
                    raise DatabaseUnavailableError(
                        f"database {self.masked_url} unreachable for {now - first_failure:.0f} s "
                        f"while {what} ({err.reason})"
                    ) from None
                delay = min(next(delays), left)
                retries += 1
                message = (
                    f"database {self.masked_url} unavailable while {what} ({err.reason}); "
                    f"retry {retries} in {delay:.1f} s (gives up after {policy.budget_s:.0f} s)"
                )
                log.warning(message)
                if on_retry is not None:
                    on_retry(message)
                time.sleep(delay)
                continue
            if first_failure is not None:
                log.warning(
                    "database %s back after %.1f s; %s done",
                    self.masked_url,
                    time.monotonic() - first_failure,
                    what,
                )
            return result

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as err:
            raise StoreError(
                f"cannot connect to {self.masked_url}: {mask_text(str(err).splitlines()[0])}"
            ) from None
        try:
            yield connection
        finally:
            connection.close()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, create: bool = True) -> Store:
    """Open a database and check its schema (an empty one is created at the current schema)."""
    if not create:
        require_database(url)
    store = Store(url)
    store.check(create=create)
    return store


def require_database(url: str | None = None) -> None:
    """Refuse a SQLite file that does not exist yet: a read must not leave an empty one behind."""
    parsed = make_url(resolve_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database).expanduser()
    if not path.exists():
        raise StoreError(f"no database at {path} yet: run `nasfcn search` first (or pass --db)")
