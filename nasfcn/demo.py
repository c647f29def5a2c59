"""``make demo``: a small, real architecture search on the embedded defaults.

Validates the shipped spaces, searches ``fcn_tiny.yaml`` on the generated ``shapes``
dataset with Ray Tune (TPE + ASHA, two trials at a time on a 2-core CPU), records every
trial in ``nasfcn.db`` and prints the best architectures. Re-running it starts a new
search in the same database; architectures already trained are reused, not retrained.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.table import Table

from nasfcn.cli import console
from nasfcn.cost import format_count
from nasfcn.search import SearchConfig, run_search
from nasfcn.space import load_space, shipped_spaces, size_text
from nasfcn.store import leaderboard_frame, open_store
from nasfcn.train import TrainRecipe

TINY = Path(__file__).resolve().parent.parent / "search_spaces" / "fcn_tiny.yaml"


def main() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    console.rule("nasfcn demo: a real search on fcn_tiny.yaml + shapes")
    for path in shipped_spaces():
        space = load_space(path)
        console.print(f"[green]ok[/green] {path.name}: {size_text(space.size())} architectures")
    config = SearchConfig(
        space=str(TINY),
        data="shapes",
        trials=8,
        epochs=6,
        strategy="tpe",
        scheduler="asha",
        cpus_per_trial=1,
        train_samples=768,
        recipe=TrainRecipe(epochs=6, batch_size=16, lr=3e-3),
        storage_path=None,
    )
    summary = run_search(config, console=console)
    board = leaderboard_frame(open_store(config.db), summary.name).dropna(subset=["best_miou"]).head(5)
    table = Table(title=f"best architectures of {summary.name}")
    for column in (
        "rank",
        "trial",
        "arch_id",
        "val mIoU",
        "status",
        "params",
        "FLOPs",
        "latency ms",
        "skip",
        "upsample",
        "attention",
    ):
        table.add_column(column)
    for row in board.itertuples(index=False):
        table.add_row(
            str(int(row.rank)),
            str(row.number),
            row.arch_id,
            f"{row.best_miou:.3f}",
            row.status,
            format_count(int(row.params)),
            format_count(int(row.flops)),
            f"{row.latency_ms:.2f}",
            row.skip,
            row.upsample,
            row.attention,
        )
    console.print()
    console.print(table)
    console.print(
        f"\n{summary.name}: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(summary.counts.items()))
        + f" in {summary.seconds:.0f} s; results in {summary.database}, logs in {summary.run_folder}"
    )
    console.print(
        f"Next: [bold]nasfcn trials --search {summary.name}[/bold], or a bigger search: "
        "[bold]nasfcn search --space search_spaces/fcn_small.yaml --data shapes --trials 32[/bold]"
    )


if __name__ == "__main__":
    main()
