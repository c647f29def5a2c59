"""``make demo``: a small, real architecture search on the embedded defaults.

Validates the shipped spaces, searches ``fcn_cpu.yaml`` (the default space) on the generated
``shapes`` dataset for 2.5 minutes with Ray Tune (TPE + ASHA, two trials at a time on a 2-core
CPU; trials, epochs and rungs planned to the budget), records every
trial in ``nasfcn.db``, prints the best architectures, writes ``leaderboard.html``, and
exports the best candidate as a bundle (``runs/<name>/best_bundle``) that segments two new
images and is ready for ``nasfcn finetune``.
Re-running it starts a new search in the same database; architectures already trained are
reused, not retrained.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from leaderboard.static import write_leaderboard
from nasfcn.cost import format_count
from nasfcn.search import Execution, SearchConfig, run_search
from nasfcn.space import load_space, shipped_spaces, size_text
from nasfcn.store import leaderboard_frame, open_store

# Its own console (the demo sits beside the CLI, not on it), as wide as the CLI's when piped.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
SPACE = Path(__file__).resolve().parent.parent / "search_spaces" / "fcn_cpu.yaml"
# The demo is the default search given a budget: `nasfcn search --data shapes --time-budget 2.5`.
# Its defaults are measured (benchmarks/RESULTS.md, "What holds a short run back" and "The
# demo's recipe"): fcn_cpu's two-block U-Net / FCN-8s networks under a 15% warm-up without
# scale jitter reach 0.72 val mIoU in 12 epochs of 64 px `shapes`, where fcn_tiny's one-block
# networks under the old recipe stood near 0.3-0.45. The planner fits trials, epochs and ASHA's
# rungs into the budget from the first epochs' measured cost.
BUDGET_MIN = 2.5


def demo_config() -> SearchConfig:
    """The demo's search: the default space, strategy, scheduler and recipe, on a budget."""
    return SearchConfig(
        space=str(SPACE),
        data="shapes",
        time_budget_min=BUDGET_MIN,
        strategy="tpe",
        scheduler="asha",
        execution=Execution(cpus_per_trial=1, storage_path=None),
    )


def main() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    console.rule(f"nasfcn demo: a real {BUDGET_MIN:g}-minute search on fcn_cpu.yaml + shapes")
    for path in shipped_spaces():
        space = load_space(path)
        console.print(f"[green]ok[/green] {path.name}: {size_text(space.size())} architectures")
    config = demo_config()
    summary = run_search(config, console=console)
    board = leaderboard_frame(open_store(config.execution.db), summary.name)
    board = board.dropna(subset=["best_miou"]).head(5)
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
    page = write_leaderboard(open_store(config.execution.db), Path("leaderboard.html"), summary.name)
    console.print(f"Leaderboard (one HTML file, opens offline): {page.resolve()}", markup=False)
    console.print(
        f"Next: [bold]nasfcn serve[/bold] (live leaderboard), [bold]nasfcn trials --search {summary.name}"
        "[/bold], or a bigger search: "
        "[bold]nasfcn search --space search_spaces/fcn_small.yaml --data shapes --trials 32[/bold]"
    )
    export_best(config.execution.db, summary.name, summary.run_folder)


def export_best(db: str | None, search: str, folder: Path) -> None:
    """Export the best candidate as a bundle, segment two new images with it, and say how to
    fine-tune it: the step a user takes after a search."""
    from nasfcn.data import generate_shapes
    from nasfcn.export import ExportError, export_trial
    from nasfcn.predict import predict_files

    console.rule("export the best candidate")
    bundle = Path(os.path.relpath(folder / "best_bundle"))
    try:
        with console.status("exporting: ONNX and TorchScript, each checked against PyTorch ..."):
            result = export_trial(open_store(db), bundle, search=search, overwrite=True)
    except ExportError as err:
        console.print(f"no bundle: {err}", markup=False)
        return
    checks = ", ".join(f"{p.format} max abs diff {p.max_abs_diff:.1e}" for p in result.parity)
    console.print(f"bundle of {result.arch_id} ({checks} at 37x53): {bundle}", markup=False)
    samples = bundle.parent / "samples"
    samples.mkdir(exist_ok=True)
    paths = []
    # New scenes at sizes never trained on: 1.5 x 2 times the training side, and an odd one near it.
    side = demo_config().image_size
    for index, size in enumerate([(side * 3 // 2, side * 2), (side + 5, side - 3)]):
        images, _ = generate_shapes(1234, "val", 1, size, start=index)
        paths.append(samples / f"scene_{index}.png")
        Image.fromarray(images[0].permute(1, 2, 0).numpy()).save(paths[-1])
    for prediction in predict_files(bundle, paths, bundle.parent / "predictions", overlay=True):
        console.print(
            f"predicted {prediction.image} ({prediction.size[0]}x{prediction.size[1]}): "
            f"{prediction.mask} + {prediction.overlay}",
            markup=False,
        )
    console.print(f"\nBundle: [bold]{bundle}[/bold]")
    console.print(
        f"Fine-tune it on your own data next: [bold]nasfcn finetune --bundle {bundle} "
        "--data folder:my_data --out my_model[/bold]"
    )


if __name__ == "__main__":
    main()
