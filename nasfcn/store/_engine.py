"""Opening a database: engine settings per backend, schema revision checks, sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nasfcn.store._url import mask_text, mask_url, resolve_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(RuntimeError):
    """The database cannot be used; the message (password masked) says how to fix it."""


class SchemaOutdatedError(StoreError):
    """The database was made by another version of nasfcn."""


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
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
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Store:
    """One database: SQLite (the default ``sqlite:///nasfcn.db``) or any SQLAlchemy URL."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.masked_url = mask_url(self.url)
        parsed = make_url(self.url)
        self.backend = parsed.get_backend_name()
        options: dict[str, Any] = {"future": True}
        if self.backend == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options["pool_pre_ping"] = True
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

    def __repr__(self) -> str:
        return f"Store({self.masked_url!r})"

    # -- schema ------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema revision of the database, or None for an empty database."""
        with self._connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def has_tables(self) -> bool:
        with self._connect() as connection:
            return bool(inspect(connection).get_table_names())

    def upgrade(self) -> tuple[str | None, str]:
        """Apply migrations up to this nasfcn's schema; returns (before, after)."""
        before = self.revision()
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
            raise StoreError(f"database error on {self.masked_url}: {mask_text(str(err))}") from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

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
