"""``nasfcn leaderboard`` (one HTML file) and ``nasfcn serve`` (the live page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasfcn.cli._console import console, fail
from nasfcn.cli._db import results_store
from nasfcn.cli._options import DbOption


def leaderboard(
    db: DbOption = None,
    search: Annotated[str | None, typer.Option(help="Search name (default: the latest).")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("leaderboard.html"),
) -> None:
    """Write the leaderboard of a search as one self-contained HTML file (opens offline).

    Examples:

      nasfcn leaderboard

      nasfcn leaderboard --search demo --out reports/demo.html
    """
    from leaderboard.static import write_leaderboard
    from nasfcn.store import searches_frame

    store = results_store(db)
    if search is None and searches_frame(store).empty:
        raise fail(f"no searches in {store.masked_url} yet: run `nasfcn search` first")
    path = write_leaderboard(store, out, search)
    console.print(
        f"leaderboard of {search or 'the latest search'} in {store.masked_url}: {path.resolve()}",
        markup=False,
    )


def serve(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 shares the page with your network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8050,
    refresh: Annotated[float, typer.Option(min=0.5, help="Seconds between re-reads of the database.")] = 5.0,
) -> None:
    """Serve the live leaderboard: it re-reads the database while searches run.

    Example: nasfcn serve --db sqlite:///nasfcn.db --port 8050
    """
    from leaderboard.app import serve as run_server
    from nasfcn.store import Store

    store = Store(db)
    console.print(
        f"live leaderboard of {store.masked_url} on http://{host}:{port}/ (Ctrl-C stops it)", markup=False
    )
    store.dispose()
    run_server(db, host=host, port=port, refresh_s=refresh)
