"""``nasfcn db`` (upgrade, info) and ``nasfcn trials``: what the results database holds."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from nasfcn.cli._console import console, fail
from nasfcn.cli._options import DbOption

if TYPE_CHECKING:
    from nasfcn.store import Store

db_app = typer.Typer(
    help="The results database: upgrade its schema, show what is in it.\n\n"
    "Example: nasfcn db info --db postgresql+psycopg://user@127.0.0.1:5432/nasfcn",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Bring a database to this nasfcn's schema (creates the tables in an empty one).

    Example: nasfcn db upgrade --db sqlite:///nasfcn.db
    """
    from nasfcn.store import Store

    store = Store(db)
    before, after = store.upgrade()
    url = store.masked_url
    if before == after:
        console.print(f"{url}: already at schema {after}")
    else:
        console.print(f"{url}: upgraded schema {before or '(empty)'} -> {after}")


@db_app.command("info")
def db_info(db: DbOption = None) -> None:
    """Show the database (password masked), its schema revision and row counts.

    Example: nasfcn db info
    """
    from nasfcn.store import Store, counts, head_revision

    store = Store(db)
    revision = store.revision()
    numbers = counts(store) if revision == head_revision() else None
    console.print(f"database: {store.masked_url}")
    console.print(f"schema: {revision or '(empty)'} (this nasfcn: {head_revision()})")
    if numbers is None:
        console.print("run `nasfcn db upgrade` to bring it to this version's schema")
        return
    console.print(", ".join(f"{name}: {count:,}" for name, count in numbers.items()))


TRIAL_COLUMNS = (
    "rank",
    "number",
    "arch_id",
    "status",
    "best_miou",
    "best_pixel_accuracy",
    "params",
    "flops",
    "latency_ms",
    "epochs_trained",
    "skip",
    "upsample",
    "attention",
    "kernels",
)


def trials(
    search: Annotated[str | None, typer.Option(help="Search name (default: the latest).")] = None,
    sort: Annotated[
        str, typer.Option(help="miou, pixel_accuracy, latency_ms, params, flops or number.")
    ] = "miou",
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most this many rows.")] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    db: DbOption = None,
) -> None:
    """List the trials of a search, best first.

    Examples:

      nasfcn trials --search demo --limit 10

      nasfcn trials --search demo --format csv > trials.csv
    """
    from nasfcn.confirm import with_pooled
    from nasfcn.store import OBJECTIVES, leaderboard_frame, open_store

    if output not in ("table", "csv", "json"):
        raise fail(f"--format must be table, csv or json, got {output!r}")
    if sort != "number" and sort not in OBJECTIVES:
        raise fail(f"--sort must be number or one of {', '.join(OBJECTIVES)}, got {sort!r}")
    frame = with_pooled(leaderboard_frame(open_store(db, create=False), search))
    confirmed = bool(frame["confirmed_n"].notna().any())
    if sort == "miou" and confirmed:
        pass  # confirmed networks first, by their mean over seeds (the leaderboard's rank)
    elif sort != "number":
        column, direction = OBJECTIVES[sort]
        frame = frame.sort_values(column, ascending=direction == "min", na_position="last")
    else:
        frame = frame.sort_values("number")
    if limit is not None:
        frame = frame.head(limit)
    if output == "csv":
        sys.stdout.write(frame.drop(columns=["genotype_json"]).to_csv(index=False))
        return
    if output == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=2) + "\n")
        return
    if frame.empty:
        console.print("no trials yet")
        return
    table = Table()
    columns = _trial_columns(frame)
    for column in columns:
        numeric = frame[column].dtype.kind in "if"
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "arch_id")
    for row in frame.itertuples(index=False):
        cells = [cell(getattr(row, column), column) for column in columns]
        table.add_row(*cells)
    console.print(table)


def _trial_columns(frame: Any) -> tuple[str, ...]:
    """``TRIAL_COLUMNS``, with test mIoU beside val and the pooled figures where a search has them."""
    columns = list(TRIAL_COLUMNS)
    if frame["test_miou"].notna().any():
        columns.insert(columns.index("best_miou") + 1, "test_miou")
    if frame["confirmed_n"].notna().any():
        columns[columns.index("best_miou") : columns.index("best_miou")] = CONFIRMED_COLUMNS
    return tuple(columns)


#: The pooled figures of a confirmed network (``nasfcn.confirm``), before its run's own val mIoU.
CONFIRMED_COLUMNS = ("confirmed_mean", "confirmed_ci_low", "confirmed_ci_high", "confirmed_n", "tie_group")


def cell(value: object, column: str) -> str:
    from nasfcn.cost import format_count

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column in ("params", "flops"):
        return format_count(int(value))  # type: ignore[call-overload]
    if column in ("rank", "confirmed_n", "tie_group"):
        return str(int(value))  # type: ignore[call-overload]
    if isinstance(value, float):
        return f"{value:.3f}" if column != "latency_ms" else f"{value:.2f}"
    return str(value)


def results_store(db: str | None) -> Store:
    """The database to read, refusing one without results with a line saying what to run."""
    from nasfcn.store import Store, require_database

    require_database(db)
    store = Store(db)
    if not store.has_tables():
        raise fail(f"no results in {store.masked_url} yet: run `nasfcn search` first")
    store.check(create=False)
    return store
