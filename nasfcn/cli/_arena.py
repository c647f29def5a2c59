"""``nasfcn arena``: replay whole searches against a table, many times, and say which strategy wins.

Thin: it opens the table (a file or a stored table, as ``tabulate report`` does), checks the
name is free before the first replay, runs ``nasfcn.arena.run_arena`` with a progress display
on stderr, then prints the summary and writes the JSON, the HTML report and the SQL rows.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from nasfcn.cli._console import console, err_console, fail
from nasfcn.cli._options import DbOption, comma_list
from nasfcn.cli._tables import _open as open_table

if TYPE_CHECKING:
    from nasfcn.arena import ArenaPlan, ArenaRun, ReplayResult

_JSON_HELP = (
    "Write the summary as JSON (format nasfcn.arena/1). Keys: name, table {name, hash, space_name, "
    "space_hash, architectures, seeds, epochs}, target {miou, spec, architectures_reaching}, "
    "budget_epochs, strategies, schedulers, trials, repeats, concurrency, seed, objectives, "
    "grace_period, reduction_factor, confirm_top, confirm_seeds (null: no confirmation), baseline "
    "(the --baseline pair), versions, and pairs: one entry per strategy x scheduler "
    "with pair, strategy, scheduler, repeats, epochs_to_target {median, low, high}, reached_share, "
    "regret_at_budget {median, low, high}, p_value, p_holm (against the baseline), mean_rank, "
    "winners_curse {median, low, high}, per_repeat: [{seed, epochs, epochs_to_target, "
    "regret_at_budget, final_regret, winners_curse, reached}] in seed order (repeat r of every pair "
    "has seed --seed + r, so any two pairs can be tested paired). null: never reached / not defined."
)


# long: the signature is the command's option table (one typed option a line, as Typer reads it)
def arena(
    table: Annotated[str, typer.Option("--table", help="A table's .parquet file, or its name in --db.")],
    strategies: Annotated[str, typer.Option(help="Search strategies, comma-separated.")] = "random,tpe",
    schedulers: Annotated[str, typer.Option(help="Trial schedulers, comma-separated.")] = "fifo,asha",
    trials: Annotated[int, typer.Option(min=1, help="Trials per replayed search.")] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Replays of each strategy x scheduler.")] = 20,
    concurrency: Annotated[int, typer.Option(min=1, help="Simulated workers (trials at once).")] = 4,
    seed: Annotated[int, typer.Option(help="Repeat r of every pair replays with seed + r.")] = 0,
    name: Annotated[
        str | None, typer.Option(help="The arena's name in --db (default arena-<table>).")
    ] = None,
    db: DbOption = None,
    objectives: Annotated[str, typer.Option(help="As nasfcn search's; nsga2 needs two.")] = "miou",
    target: Annotated[
        str,
        typer.Option(help="Top share of architectures (1%) or a mean val mIoU (0.62) that counts as found."),
    ] = "1%",
    budget: Annotated[
        int | None,
        typer.Option(
            min=1, help="Epochs at which regret is compared (default: the fewest any replay trained)."
        ),
    ] = None,
    grace_period: Annotated[
        int | None, typer.Option(min=1, help="ASHA grace period (search default).")
    ] = None,
    reduction_factor: Annotated[int, typer.Option(min=2, help="ASHA reduction factor.")] = 2,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="The STRATEGY+SCHEDULER pair every other pair is tested against (Wilcoxon, paired by "
            "repeat, Holm); one of the arena's pairs, e.g. tpe+asha. Default random+fifo, which "
            "may be absent: then no p-values.",
            show_default=False,
        ),
    ] = None,
    confirm_top: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="End every replayed search as nasfcn search --confirm-top K does: its top K networks "
            "train --confirm-seeds more full runs on other table seeds (counted in its epochs) and the "
            "export is the best pooled mean. Off by default in the arena, so its figures are the best "
            "single run's; 0: off.",
        ),
    ] = None,
    confirm_seeds: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Extra table seeds per confirmed network, at most the table's seeds - 1. Either "
            "option turns confirmation on, the other taking nasfcn search's default.",
        ),
    ] = None,
    fidelity: Annotated[
        str,
        typer.Option(
            help="Only 'epochs': a table holds full-size epochs, so reduced fidelities are not replayed "
            "(measure them with benchmarks/fidelity.py)."
        ),
    ] = "epochs",
    json_out: Annotated[Path | None, typer.Option("--json", dir_okay=False, help=_JSON_HELP)] = None,
    html: Annotated[
        Path | None, typer.Option("--html", dir_okay=False, help="HTML report (default arena_<name>.html).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the stored arena of this --name.")
    ] = False,
) -> None:
    """Replay whole searches against a table: every strategy x scheduler, --repeats times each.

    Each replay runs the very searcher and scheduler `nasfcn search` uses, on a simulated clock
    of --concurrency workers, with every epoch looked up in the table instead of trained. The
    summary compares the pairs: epochs until the exported architecture's true mean reaches
    --target, regret at equal epochs, paired Wilcoxon tests against --baseline (default
    random + fifo; Holm), mean ranks and the winner's curse. The arena is stored in --db
    (nasfcn leaderboard --search NAME shows it); a --name already there is refused unless
    --replace.

    Examples:

      nasfcn arena --table fcn_bench_shapes.parquet --strategies random,tpe --schedulers fifo,asha
        --trials 64 --repeats 100 --json arena.json

      nasfcn arena --table fcn_bench_shapes --strategies tpe,nsga2 --objectives miou,latency_ms

      nasfcn arena --table fcn_bench_shapes.parquet --strategies tpe --schedulers asha
        --confirm-top 3 --confirm-seeds 2

      nasfcn arena --table fcn_bench_shapes.parquet --strategies tpe,surrogate --schedulers asha
        --baseline tpe+asha --json paired.json
    """
    from nasfcn.arena import (
        BASELINE,
        ArenaPlan,
        ArenaTable,
        arena_json,
        check_names,
        check_plan,
        parse_pair,
        render_arena_html,
        run_arena,
        store_arena,
        target_of,
    )
    from nasfcn.confirm import policy_for
    from nasfcn.store import check_arena_name, open_store

    if fidelity.strip() != "epochs":
        raise fail(
            f"--fidelity {fidelity!r}: nasfcn arena replays tables trained at full size; only --fidelity "
            "epochs is allowed (measure a reduced one with benchmarks/fidelity.py)"
        )
    plan = ArenaPlan(
        comma_list(strategies),
        comma_list(schedulers),
        trials,
        repeats,
        concurrency,
        seed,
        comma_list(objectives),
        grace_period,
        reduction_factor,
        policy_for(confirm_top, confirm_seeds, budgeted=False),
        BASELINE if baseline is None else parse_pair(baseline),
    )
    check_names(plan, baseline_given=baseline is not None)  # before the table is read
    board = ArenaTable(open_table(table, db))
    arena_name = name or f"arena-{board.table.facts.get('name') or Path(table).stem}"
    store = open_store(db)
    check_plan(board, plan)  # everything refused now, not after the replays
    target_of(board, target)
    check_arena_name(store, arena_name, replace)
    started = time.perf_counter()
    with _Progress(plan) as advance:
        run = run_arena(board, plan, arena_name, target, budget, advance)
    _print(run, time.perf_counter() - started)
    if json_out is not None:
        _write(json_out, json.dumps(arena_json(run), indent=2, allow_nan=False) + "\n")
        console.print(f"summary: {json_out}", markup=False)
    page = html or Path(f"arena_{_file_safe(arena_name)}.html")
    _write(page, render_arena_html(run))
    console.print(f"report: {page}", markup=False)
    written = time.perf_counter()
    store_arena(store, run, replace)
    stored = sum(len(r.trials) for r in run.results)
    console.print(
        f"stored {stored:,} simulated trials in {store.masked_url} in {time.perf_counter() - written:.1f} s; "
        f"see them with nasfcn leaderboard --search {arena_name}",
        markup=False,
    )


class _Progress:
    """Replays done of all, the pair and repeat at hand and the time left, on stderr."""

    def __init__(self, plan: ArenaPlan) -> None:
        self.repeats = plan.repeats
        self.pairs = len(plan.strategies) * len(plan.schedulers)
        self.done = 0
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("replays, ETA"),
            TimeRemainingColumn(),
            console=err_console,
        )
        self.task = self.bar.add_task("replaying", total=self.pairs * self.repeats)

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, result: ReplayResult) -> None:
        self.done += 1
        pairs_done = self.done // self.repeats
        self.bar.update(
            self.task,
            advance=1,
            description=f"{result.search.pair}: pairs {pairs_done}/{self.pairs} done",
        )


def _print(run: ArenaRun, seconds: float) -> None:
    from nasfcn.arena import pair_name, summary_cells

    plan, summary = run.plan, run.summary
    pairs = len(plan.strategies) * len(plan.schedulers)
    console.print(
        f"[bold]{run.name}[/bold]: {pairs} pairs x {plan.repeats} repeats x {plan.trials} trials on table "
        f"{run.table_name} (hash {run.table_hash[:12]}), concurrency {plan.concurrency}, seed {plan.seed}; "
        f"{len(run.results)} replays in {seconds:.1f} s",
        highlight=False,
    )
    console.print(f"target: {run.target.describe()}", markup=False, highlight=False)
    if plan.confirm is not None:
        console.print(
            f"confirmation: every search ends by confirming its top {plan.confirm.top} networks over "
            f"{plan.confirm.seeds} extra table seeds each ({plan.confirm.runs * run.board.table.epochs} "
            "epochs, counted in its epochs); the export is the best pooled mean",
            markup=False,
            highlight=False,
        )
    console.print(
        f"budget: regret at equal epochs is compared at {summary.budget} epochs"
        + (" (the fewest any replay trained)" if run.summary.budget == _fewest(run) else ""),
        markup=False,
        highlight=False,
    )
    rich = RichTable(title=f"strategy x scheduler over {plan.repeats} repeats (median [95% bootstrap CI])")
    for column in (
        "strategy + scheduler",
        "epochs to target",
        "reached",
        f"regret at {summary.budget} epochs",
        f"p vs {pair_name(summary.baseline)} (Holm)",
        "mean rank",
        "winner's curse",
    ):
        rich.add_column(column, no_wrap=True)
    for row in summary.summary.to_dict("records"):
        rich.add_row(*summary_cells(row, summary.baseline))
    console.print(rich)
    console.print(
        "regret: the table's best mean val mIoU minus the true mean of the exported architecture; "
        "winner's curse: how much that architecture's best single run overstates its true mean; "
        f"p: Wilcoxon signed-rank on regret at equal epochs against {pair_name(summary.baseline)}, "
        "paired by repeat, Holm-adjusted.",
        markup=False,
        highlight=False,
    )


def _fewest(run: ArenaRun) -> int:
    return int(run.summary.per_repeat["epochs"].min())


def _file_safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "arena"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
