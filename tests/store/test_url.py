"""Credentials never leave nasfcn: every form SQLAlchemy and libpq accept is masked, everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.store import mask_text, mask_url

SECRET = "Zq7s3cret"
NASFCN = Path(sys.executable).with_name("nasfcn")

#: (URL with the secret, what mask_url shows): one per credential form.
URLS = [
    ("postgresql+psycopg://alice:Zq7s3cret@db:5432/nas", "postgresql+psycopg://alice:***@db:5432/nas"),
    ("postgresql+psycopg://alice:Zq7s3cret%40x%2Fy@db/nas", "postgresql+psycopg://alice:***@db/nas"),
    ("postgresql+psycopg://alice:Zq7s3cret@x@db/nas", "postgresql+psycopg://alice:***@db/nas"),
    ("postgresql+psycopg://:Zq7s3cret@db/nas", "postgresql+psycopg://:***@db/nas"),
    (
        "postgresql+psycopg://alice@db:5432/nas?password=Zq7s3cret",
        "postgresql+psycopg://alice@db:5432/nas?password=***",
    ),
    (
        "postgresql+psycopg://alice@db/nas?sslmode=require&password=Zq7s3cret%26x&connect_timeout=5",
        "postgresql+psycopg://alice@db/nas?sslmode=require&password=***&connect_timeout=5",
    ),
    (
        "postgresql+psycopg://alice@db/nas?pass%77ord=Zq7s3cret",
        "postgresql+psycopg://alice@db/nas?pass%77ord=***",
    ),
    (
        "postgresql+psycopg://alice@db/nas?PASSWORD=Zq7s3cret",
        "postgresql+psycopg://alice@db/nas?PASSWORD=***",
    ),
    (
        "postgresql+psycopg://alice@db/nas?sslpassword=Zq7s3cret",
        "postgresql+psycopg://alice@db/nas?sslpassword=***",
    ),
    (
        "postgresql+psycopg://alice@db/nas?oauth_client_secret=Zq7s3cret&scram_client_key=Zq7s3cret",
        "postgresql+psycopg://alice@db/nas?oauth_client_secret=***&scram_client_key=***",
    ),
    ("mysql+pymysql://alice@db/nas?passwd=Zq7s3cret", "mysql+pymysql://alice@db/nas?passwd=***"),
    ("postgresql://alice@db/nas?api_token=Zq7s3cret", "postgresql://alice@db/nas?api_token=***"),
    (
        "postgresql+psycopg://alice@db/nas?options=-c%20password%3DZq7s3cret",
        "postgresql+psycopg://alice@db/nas?options=-c%20password%3D***",
    ),
    (
        "mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BSERVER%3Ddb%3BUID%3Dalice%3BPWD%3DZq7s3cret",
        "mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BSERVER%3Ddb%3BUID%3Dalice%3BPWD%3D***",
    ),
    (
        "postgresql+psycopg://alice@db/nas?password=Zq7s3cret x",
        "postgresql+psycopg://alice@db/nas?password=***",
    ),
    ("host=db user=alice password=Zq7s3cret dbname=nas", "host=db user=alice password=*** dbname=nas"),
    ("host=db password = 'Zq7s3cret \\' x' dbname=nas", "host=db password = *** dbname=nas"),
]

#: Free text as drivers and tracebacks write it, each holding the secret.
TEXTS = [
    "could not connect with postgresql+psycopg://alice:Zq7s3cret@db:5432/nas (timeout)",
    "cannot parse database URL 'postgresql+psycopg://alice@db/nas?password=Zq7s3cret'; expected",
    "bad URL postgresql://alice@db/nas?sslmode=require&password=Zq7s3cret&x=1 given",
    'invalid connection string "host=db password=Zq7s3cret port=x"',
    "invalid dsn: host=db password='Zq7s3cret with spaces' bogus=1",
    "connect() got {'host': 'db', 'password': 'Zq7s3cret'}",
    'json {"password": "Zq7s3cret", "host": "db"}',
    "PGPASSWORD=Zq7s3cret psql -h db",
    "first line\n  postgresql+psycopg://alice:Zq7s3cret@db/nas?password=Zq7s3cret\n  last line",
]

#: What is no credential stays as it was: a user needs it to fix a connection.
KEPT = [
    "sqlite:///nasfcn.db",
    "sqlite:////tmp/a:b@c/nasfcn.db",
    "postgresql+psycopg://alice@db:5432/nas?sslmode=verify-full&sslkey=/keys/client.key",
    "postgresql+psycopg://alice@db/nas?passfile=/home/alice/.pgpass&application_name=nasfcn",
    "connection to server at db (10.0.0.1), port 5432 failed: FATAL:  password authentication failed",
]


@pytest.mark.parametrize(("url", "shown"), URLS)
def test_mask_url_masks_every_credential_form(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert mask_url(shown) == shown  # masking twice changes nothing
    assert SECRET not in mask_text(f"error on {url} (retry)")


@pytest.mark.parametrize("message", TEXTS)
def test_mask_text_masks_credentials_in_free_text(message: str) -> None:
    masked = mask_text(message)
    assert SECRET not in masked
    assert "***" in masked
    assert mask_text(masked) == masked


def test_long_and_deeply_nested_text_is_masked_without_failing() -> None:
    nested = "?a=" * 5000 + "password=Zq7s3cret"  # 5000 nested parameters: no recursion per level
    assert mask_text(nested) == nested.replace(SECRET, "***")
    many = "postgresql://alice:Zq7s3cret@db/" * 2000
    assert SECRET not in mask_text(many)


@pytest.mark.parametrize("kept", KEPT)
def test_what_is_no_credential_is_kept(kept: str) -> None:
    assert mask_url(kept) == kept
    assert mask_text(kept) == kept


def test_store_and_errors_show_only_the_masked_url() -> None:
    url = "postgresql+psycopg://alice@127.0.0.1:9/nas?connect_timeout=2&password=Zq7s3cret"
    result = CliRunner().invoke(app, ["db", "info", "--db", url])
    assert result.exit_code == 2
    assert SECRET not in result.output
    assert "password=***" in result.output
    unparsable = CliRunner().invoke(app, ["db", "info", "--db", "host=db password=Zq7s3cret"])
    assert unparsable.exit_code == 2
    assert SECRET not in unparsable.output
    assert "password=***" in unparsable.output


@pytest.fixture
def password_url(postgres_server: str) -> str:
    """A database owned by a role with a password, reached with the password in the query string."""
    suffix = uuid.uuid4().hex[:10]
    role, database = f"nasfcn_pw_{suffix}", f"nasfcn_pw_{suffix}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}/x'"))
        connection.execute(text(f'CREATE DATABASE "{database}" OWNER {role}'))
    server = make_url(postgres_server)
    try:
        yield (
            f"postgresql+psycopg://{role}@{server.host}:{server.port}/{database}"
            f"?password={quote(SECRET + '/x', safe='')}"
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


@pytest.mark.slow
def test_a_search_leaves_the_password_nowhere(password_url: str, tmp_path: Path) -> None:
    space = tmp_path / "micro.yaml"
    space.write_text(
        "name: micro\ninput: {channels: 3, min_size: 16}\nencoder: {stages: 2, width: 4, kernel_size: 3}\n"
        "skip: {choices: [none, unet_add]}\nupsample: bilinear\n"
    )
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="nasfcn-ray-"),
        "COLUMNS": "200",
    }
    options = "--name secret --trials 2 --epochs 1 --image-size 16 --train-samples 16 --concurrency 1 "
    options += "--strategy random --scheduler fifo"
    search = subprocess.run(
        [str(NASFCN), "search", "--space", str(space), "--db", password_url, *options.split()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert search.returncode == 0, search.stdout + search.stderr
    assert "password=***" in search.stdout
    runner = CliRunner()
    shown = {
        "search": search.stdout + search.stderr,
        "db info": runner.invoke(app, ["db", "info", "--db", password_url]).output,
        "trials": runner.invoke(app, ["trials", "--db", password_url]).output,
        "leaderboard": runner.invoke(
            app, ["leaderboard", "--db", password_url, "--out", str(tmp_path / "board.html")]
        ).output,
    }
    assert "password=***" in shown["db info"]
    for path in tmp_path.rglob("*"):  # search.log, Ray's experiment state, board.html, ...
        if path.is_file():
            shown[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    assert "password=***" in (tmp_path / "board.html").read_text(encoding="utf-8")
    engine = create_engine(password_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM searches")).all()
    engine.dispose()
    shown["searches"] = " ".join(str(value) for row in rows for value in row)  # config_json among them
    assert "password=***" in shown["searches"]
    leaks = [where for where, output in shown.items() if SECRET in output]
    assert not leaks, f"the password shows in {leaks}"
