"""``nasfcn tabulate export``, ``report`` and ``compare``: a finished table as a file, what it shows, and
how alike two tables of one space rank its architectures.

Commands of the ``tabulate`` group (``_tabulate`` registers them). A refused input
(unknown table, unfinished runs, a tampered file) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table as RichTable

from nasfcn.cli._console import console, fail
from nasfcn.cli._options import DbOption
from nasfcn.errors import NasfcnError

if TYPE_CHECKING:
    from nasfcn.table import Table, TableReport


def export_command(
    name: Annotated[str, typer.Argument(help="The table's name (nasfcn tabulate --name).")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="The .parquet file to write.")],
    db: DbOption = None,
) -> None:
    """Write the finished table NAME to one Parquet file (rows, costs, genotypes, metadata).

    Example: nasfcn tabulate export fcn_bench_shapes --out fcn_bench_shapes.parquet
    """
    from nasfcn.store import mask_text, open_store
    from nasfcn.table import export_table, load

    try:
        store = open_store(db, create=False)
        path = export_table(store, name, out)
        table = load(path)
    except NasfcnError as err:
        raise fail(mask_text(str(err))) from None
    size = path.stat().st_size
    console.print(
        f"{path}: {len(table.archs())} architectures x {len(table.seeds)} seeds x {table.epochs} epochs, "
        f"{size / 1024:.0f} KiB; load it with nasfcn.table.load({str(path)!r})",
        markup=False,
    )


def report_command(
    target: Annotated[str, typer.Argument(help="A table's name in the database, or a .parquet file.")],
    db: DbOption = None,
    out: Annotated[Path | None, typer.Option("--out", dir_okay=False, help="HTML file to write.")] = None,
) -> None:
    """Show what a table says: variance between architectures vs seeds, knob effects, fidelity, Pareto front.

    TARGET is a table's name in the database or a .parquet file written by `tabulate export`.

    Example: nasfcn tabulate report fcn_bench_shapes.parquet --out report.html
    """
    from nasfcn.store import mask_text
    from nasfcn.table import render_html, table_report

    try:
        table = _open(target, db)
        report = table_report(table)
    except NasfcnError as err:
        raise fail(mask_text(str(err))) from None
    _print(report, table)
    if out is not None:
        path = out
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(report, table), encoding="utf-8")
        console.print(f"report: {path}", markup=False)


def compare_command(
    first: Annotated[str, typer.Argument(help="A table's name in the database, or a .parquet file.")],
    second: Annotated[str, typer.Argument(help="Another table of the same space (name or file).")],
    metric: Annotated[str, typer.Option(help="The metric to rank by (a table metric).")] = "val_miou",
    epoch_first: Annotated[
        int | None, typer.Option(min=1, help="Epoch of FIRST to rank at (default: its last).")
    ] = None,
    epoch_second: Annotated[
        int | None, typer.Option(min=1, help="Epoch of SECOND to rank at (default: its last).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", dir_okay=False, help="Write the figures as JSON here.")
    ] = None,
    db: DbOption = None,
) -> None:
    """How alike two tables of one space rank its architectures: across datasets or fidelities.

    Spearman's rho of the architectures' mean METRIC (with a 95% bootstrap CI), Kendall's tau,
    top-10% overlap, and the mean seconds a run takes in each (SECOND's cost as a share of FIRST's).

    Example: nasfcn tabulate compare fcn_bench_shapes.parquet fcn_bench_photos.parquet
    """
    import json

    from nasfcn.store import mask_text
    from nasfcn.table import compare_tables

    try:
        agreement = compare_tables(_open(first, db), _open(second, db), metric, epoch_first, epoch_second)
    except NasfcnError as err:
        raise fail(mask_text(str(err))) from None
    a = agreement
    console.print(
        f"{a.n} architectures in both; {a.metric} at epoch {a.epoch_first} vs {a.epoch_second}\n"
        f"Spearman {_f(a.spearman)} [95% CI {_f(a.spearman_low)}, {_f(a.spearman_high)}], "
        f"Kendall {_f(a.kendall)}, top-10% overlap {_f(a.top10_overlap, 2)}\n"
        f"seconds per run: {_f(a.seconds_first, 1)} vs {_f(a.seconds_second, 1)} "
        f"(second costs {_f(a.cost_ratio, 3)} of first)",
        highlight=False,
        markup=False,
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(a.as_dict(), indent=2) + "\n", encoding="utf-8")
        console.print(f"figures: {json_out}", markup=False)


def _open(target: str, db: str | None) -> Table:
    from nasfcn.store import open_store
    from nasfcn.table import Table, load, table_from_store

    if target.endswith(".parquet") or Path(target).is_file():
        return load(target)
    store = open_store(db, create=False)
    return Table.from_arrow(table_from_store(store, target), f"table {target}")


def _print(report: TableReport, table: Table) -> None:
    icc = report.icc
    facts = table.facts
    console.print(
        f"[bold]{facts.get('name')}[/bold]: space {facts.get('space_name')}, dataset {facts.get('dataset')}, "
        f"{len(report.archs)} architectures x {len(table.seeds)} seeds x {table.epochs} epochs, "
        f"{report.failed_runs} failed runs",
        highlight=False,
    )
    means = [m for m in report.means if not math.isnan(m)]
    if means:
        console.print(
            f"mean final val mIoU per architecture: min {min(means):.3f}, median "
            f"{sorted(means)[len(means) // 2]:.3f}, max {max(means):.3f}",
            highlight=False,
        )
    console.print(
        f"ICC(1) (share of variance between architectures): {_f(icc.icc)} "
        f"[95% CI {_f(icc.ci_low)}, {_f(icc.ci_high)}]",
        highlight=False,
        markup=False,
    )
    effects = RichTable(title="main effects (mean final val mIoU over architectures, 95% CI)")
    for column in ("knob", "value", "archs", "mean", "95% CI", "vs best: Holm p"):
        effects.add_column(column)
    for effect in report.effects:
        best = max(effect.levels, key=lambda level: effect.levels[level].mean)
        for level, summary in effect.levels.items():
            pair = next((p for p in effect.pairs if {p.a, p.b} == {best, level} and level != best), None)
            effects.add_row(
                effect.knob,
                level,
                str(summary.n),
                _f(summary.mean),
                f"[{_f(summary.ci_low)}, {_f(summary.ci_high)}]",
                "best" if level == best else _f(pair.p_adjusted if pair else math.nan),
            )
    console.print(effects)
    rhos = ", ".join(f"{k}: {_f(rho, 2)}" for k, rho in enumerate(report.fidelity, start=1))
    console.print(f"fidelity (Spearman of epoch-k means vs final): {rhos}", highlight=False, markup=False)
    front = [a for a, on in zip(report.archs, report.pareto, strict=True) if on]
    console.print(f"Pareto front (mIoU up, latency down): {', '.join(front)}", highlight=False, markup=False)


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"
