"""``make demo``: a small, real architecture search on the embedded defaults.

Validates the shipped spaces, searches ``fcn_tiny.yaml`` on the generated ``shapes``
dataset with Ray Tune (TPE + ASHA, two trials at a time on a 2-core CPU), records every
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
from nasfcn.train import TrainRecipe

# Its own console (the demo sits beside the CLI, not on it), as wide as the CLI's when piped.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
TINY = Path(__file__).resolve().parent.parent / "search_spaces" / "fcn_tiny.yaml"
# What lets the demo's candidates learn in a few CPU minutes (benchmarks/demo_recipe.py,
# RESULTS.md "The demo's recipe"): many small steps rather than few big ones. The old 288
# steps of 64 px scenes left every candidate near 0.3 val mIoU. A 32 px scene costs ~2.5x
# less, batches of 8 take twice the steps per image, 2,048 scenes make an epoch long enough
# to learn in, and the learning rate warms up over the first 15% of the run (one-cycle style)
# before its cosine decay. ASHA judges after 2 epochs (after 1, most candidates still predict
# only background) and keeps a third at each rung; the best get the 16 epochs (4,096 steps)
# a width-16 U-Net needs for ~0.6.
IMAGE_SIZE = 32
TRAIN_SAMPLES = 2048
BATCH_SIZE = 8
WARMUP = 0.15  # share of the epochs
TRIALS = 8
EPOCHS = 16
GRACE_PERIOD = 2
REDUCTION_FACTOR = 3


def demo_config() -> SearchConfig:
    """The demo's search: fcn_tiny on shapes, with the recipe and ASHA rungs above."""
    return SearchConfig(
        space=str(TINY),
        data="shapes",
        trials=TRIALS,
        epochs=EPOCHS,
        strategy="tpe",
        scheduler="asha",
        execution=Execution(cpus_per_trial=1, storage_path=None),
        image_size=IMAGE_SIZE,
        train_samples=TRAIN_SAMPLES,
        grace_period=GRACE_PERIOD,
        reduction_factor=REDUCTION_FACTOR,
        recipe=TrainRecipe(epochs=EPOCHS, batch_size=BATCH_SIZE, warmup_epochs=WARMUP * EPOCHS),
    )


def main() -> None:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    console.rule("nasfcn demo: a real search on fcn_tiny.yaml + shapes")
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
    for index, size in enumerate([(IMAGE_SIZE * 3 // 2, IMAGE_SIZE * 2), (IMAGE_SIZE + 5, IMAGE_SIZE - 3)]):
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
