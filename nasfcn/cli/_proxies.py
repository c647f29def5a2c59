"""``nasfcn proxies evaluate``: how well zero-cost proxies rank trained architectures (a table or a search).

Parse, call ``nasfcn.proxies`` (score every architecture, then correlate), render: a
terminal table, ``--json`` and ``--html``. With ``--search`` the scores the database holds
(``nasfcn search --proxies`` stored them) are used as they are; only the missing ones are
computed, and stored. Progress goes to stderr. A refused input (a
table that does not load, an unknown search or proxy, a sample larger than the table) is
one line on stderr (URLs masked) and exit code 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from nasfcn.catalogue import PROXIES, one_of
from nasfcn.cli._console import console, err_console, fail
from nasfcn.cli._options import DbOption
from nasfcn.errors import NasfcnError

if TYPE_CHECKING:
    from nasfcn.proxies._evaluate import Candidates, Held, Scores
    from nasfcn.proxies._rank import Figures
    from nasfcn.store import Store

proxies_app = typer.Typer(
    help="Zero-cost proxies: score untrained networks, and judge the scores against a table.\n\n"
    "Example: nasfcn proxies evaluate --table fcn_bench_shapes.parquet --json proxies.json",
    no_args_is_help=True,
)


_CHOICES = one_of(PROXIES)


def _names(given: list[str] | None) -> list[str] | None:
    """``--names a,b --names c`` -> [a, b, c], each checked against the catalogue."""
    from nasfcn.registry import UnknownChoiceError

    if not given:
        return None
    names = [n.strip() for part in given for n in part.split(",") if n.strip()]
    for name in names:
        try:
            PROXIES.get(name)
        except UnknownChoiceError as err:
            raise fail(f"--names: {err}") from None
    return list(dict.fromkeys(names))


@proxies_app.command("evaluate")
def evaluate_command(
    table: Annotated[
        Path | None, typer.Option("--table", dir_okay=False, help="A table file (tabulate export).")
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="A search's completed trials instead (with --db).")
    ] = None,
    db: DbOption = None,
    names: Annotated[
        list[str] | None,
        typer.Option("--names", help=f"Proxies, comma-separated or repeated: {_CHOICES} (default: all)."),
    ] = None,
    sample: Annotated[
        int | None, typer.Option(min=1, help="Score a seeded sample of N architectures only.")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0, help="Seed of the minibatch, the weights and --sample (default 0; --search: the search's)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=2, help="Images in the minibatch.")] = 16,
    json_out: Annotated[
        Path | None, typer.Option("--json", dir_okay=False, help="Write the figures as JSON.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", dir_okay=False, help="Write one scatter per proxy (HTML).")
    ] = None,
) -> None:
    """Spearman, Kendall and top-10% precision of each proxy (and of rank ensembles) against the
    architectures' mean final val mIoU, with bootstrap 95% intervals and seconds per architecture.

    Examples:

      nasfcn proxies evaluate --table fcn_bench_shapes.parquet --json proxies.json --html proxies.html

      nasfcn proxies evaluate --table t.parquet --names params,synflow,naswot --sample 40

      nasfcn proxies evaluate --search first --db nasfcn.db
    """
    from nasfcn.proxies import correlate, score
    from nasfcn.store import mask_text

    if (table is None) == (search is None):
        raise fail("give --table FILE or --search NAME (one of them); see nasfcn proxies evaluate --help")
    chosen = _names(names)
    try:
        if table is not None:
            candidates, store, seed = _table_candidates(table), None, seed or 0
        else:
            candidates, store, seed = _search_candidates(search, db, seed)
        lookup = _Stored(store, candidates, seed) if store is not None else None
        with _progress() as report:
            scores = score(
                candidates,
                chosen,
                sample=sample,
                seed=seed,
                batch_size=batch_size,
                progress=report,
                held=lookup,
            )
        if lookup is not None:
            lookup.record(scores)
    except NasfcnError as err:
        raise fail(mask_text(str(err))) from None
    figures = correlate(scores.values, scores.seconds, scores.quality, seed=seed)
    _print(scores, figures)
    _write(scores, figures, json_out, html)


def _table_candidates(table: Path) -> Candidates:
    from nasfcn.proxies import table_candidates
    from nasfcn.table import load

    return table_candidates(load(table))


def _search_candidates(search: str | None, db: str | None, seed: int | None) -> tuple[Candidates, Store, int]:
    """A search's completed trials, its database, and the seed: given, else the one its proxies used."""
    from nasfcn.proxies import search_candidates
    from nasfcn.store import leaderboard_frame, open_store, search_details

    store = open_store(db, create=False)
    details = search_details(store, search)
    candidates = search_candidates(details, leaderboard_frame(store, search))
    return candidates, store, int(details["config"].get("seed") or 0) if seed is None else seed


class _Stored:
    """The scores a search's database holds for the candidates, and the recording of new ones."""

    def __init__(self, store: Store, candidates: Candidates, seed: int) -> None:
        self.store, self.candidates, self.seed = store, candidates, seed
        self.shape = ""

    def __call__(self, shape: str) -> Held:
        """arch -> proxy -> result of what is held on a minibatch of ``shape`` with this seed."""
        from nasfcn.proxies import ProxyResult
        from nasfcn.store import proxy_scores_frame

        self.shape = shape
        frame = proxy_scores_frame(
            self.store,
            arch_ids=list(self.candidates.genotypes),
            dataset=self.candidates.dataset,
            seed=self.seed,
            shape=shape,
        ).drop_duplicates(["arch_id", "proxy"])
        held: dict[str, dict[str, ProxyResult]] = {}
        for row in frame.itertuples(index=False):
            error = row.error if isinstance(row.error, str) and row.error else None
            held.setdefault(str(row.arch_id), {})[str(row.proxy)] = ProxyResult(
                math.nan if error else float(row.value), float(row.seconds), error
            )
        return held

    def record(self, scores: Scores) -> None:
        """Store what ``score`` computed now (a score another writer stored meanwhile stays)."""
        from nasfcn.store import record_proxy_scores

        where = {arch: i for i, arch in enumerate(scores.archs)}
        for arch, names in scores.computed.items():
            i = where[arch]
            computed = {
                name: {
                    "value": scores.values[name][i],
                    "error": scores.errors[name].get(arch),
                    "seconds": scores.seconds[name][i],
                }
                for name in names
            }
            record_proxy_scores(
                self.store, arch, self.candidates.dataset, self.shape, self.seed, computed, device="cpu"
            )
        if scores.computed:
            err_console.print(
                f"stored the scores of {len(scores.computed)} architectures; "
                f"{len(scores.archs) - len(scores.computed)} had every score stored already",
                markup=False,
                highlight=False,
            )


@contextmanager
def _progress() -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar on stderr, fed by ``score``'s callback; gone when done."""
    columns = (TextColumn("proxies"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("architectures", total=None)

        def update(done: int, total: int, arch: str) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _print(scores: Scores, figures: list[Figures]) -> None:
    console.print(
        f"{len(scores.archs)} architectures of {scores.source}; quality: mean final val mIoU over seeds; "
        f"minibatch of {scores.batch_size} images at {scores.image_size[0]} x {scores.image_size[1]}, "
        f"seed {scores.seed}",
        markup=False,
        highlight=False,
    )
    table = RichTable(title="zero-cost proxies vs trained quality")
    for column in ("proxy", "n", "Spearman", "95% CI", "Kendall", "top-10%", "s/arch", "errors"):
        table.add_column(column, justify="left" if column == "proxy" else "right")
    for row in figures:
        table.add_row(
            row.name,
            str(row.n),
            _f(row.spearman),
            f"[{_f(row.spearman_low, 2)}, {_f(row.spearman_high, 2)}]",
            _f(row.kendall),
            _f(row.top10_precision, 2),
            _f(row.seconds, 3),
            str(len(scores.errors.get(row.name, {}))),
        )
    console.print(table)
    for row in figures:
        if row.members:
            console.print(f"{row.name}: {row.note}: {', '.join(row.members)}", markup=False, highlight=False)
    for name, failed in scores.errors.items():
        if failed:
            arch, error = next(iter(failed.items()))
            console.print(f"{name} failed on {len(failed)} architectures, e.g. {arch}: {error}", markup=False)
    console.print(
        f"seconds per architecture (network + every proxy): {float(scores.arch_seconds.mean()):.2f}",
        markup=False,
        highlight=False,
    )


def _write(scores: Scores, figures: list[Figures], json_out: Path | None, html: Path | None) -> None:
    from nasfcn.proxies import as_json, render_html

    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(as_json(scores, figures), indent=2) + "\n", encoding="utf-8")
        console.print(f"json: {json_out}", markup=False)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(scores, figures), encoding="utf-8")
        console.print(f"html: {html}", markup=False)
