"""Database fixtures: every storage test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ``NASFCN_TEST_POSTGRES_URL`` (``.ci/run`` starts a throwaway
cluster and sets it) or, when Debian's ``postgresql`` is installed, from a throwaway
cluster started here. In CI a missing PostgreSQL fails; elsewhere those cases skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOW_TO = (
    "PostgreSQL tests need a server: `apt-get install postgresql` (a throwaway cluster is "
    "then started automatically), or set NASFCN_TEST_POSTGRES_URL=postgresql+psycopg://..."
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_cluster() -> tuple[str, Path]:
    root = Path(tempfile.mkdtemp(prefix="nasfcn-pg-"))
    data, sockets = root / "data", root / "sock"
    data.mkdir()
    sockets.mkdir()
    runner: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(sockets, "postgres")
        runner = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*runner, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *runner,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", root


def _stop_cluster(root: Path) -> None:
    runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*runner, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
        capture_output=True,
        check=False,
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database."""
    url = os.environ.get("NASFCN_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if (PG_BIN / "initdb").exists():
        url, root = _start_cluster()
        try:
            yield url
        finally:
            _stop_cluster(root)
        return
    if os.environ.get("CI"):
        pytest.fail("CI must test PostgreSQL for real, but no server is available. " + HOW_TO)
    pytest.skip(HOW_TO)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the server, dropped after the test."""
    name = f"nasfcn_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nasfcn.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True)
def _dispose_stores(store_tracker: list) -> None:
    """Close every pooled connection a test opened (unclosed ones warn when collected)."""
