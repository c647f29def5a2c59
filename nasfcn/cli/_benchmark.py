"""``nasfcn benchmark`` (architectures x datasets x seeds, then statistics) and its ``report``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from nasfcn.catalogue import DATASETS
from nasfcn.cli._console import EXIT_ENVIRONMENT, console, fail
from nasfcn.cli._db import results_store
from nasfcn.cli._options import (
    DbOption,
    ImageSizeOption,
    RayAddressOption,
    ScaleJitterOption,
    TrainSamplesOption,
    comma_list,
    execution_from,
    exit_if_interrupted,
    print_summary,
    scale_range,
    typed,
)

benchmark_app = typer.Typer(
    help="Train architectures x datasets x seeds and compare them with confidence intervals.\n\n"
    "Example: nasfcn benchmark --name cmp --archs ref:fcn8s,ref:unet,search:demo:top3 --seeds 3\n\n"
    "Then: nasfcn benchmark report cmp --out report.md",
    invoke_without_command=True,
)

#: Command-line parameters whose config field has another name (a resume compares typed options).
BENCHMARK_FIELDS = {
    "data": "datasets",
    "scale_jitter": "scale_range",
    "no_cache": "execution.cache",
    "cpus_per_trial": "execution.cpus_per_trial",
    "gpus_per_trial": "execution.gpus_per_trial",
    "concurrency": "execution.concurrency",
    "ray_address": "execution.ray_address",
    "storage_path": "execution.storage_path",
    "lr": "recipe.lr",
    "batch_size": "recipe.batch_size",
}

_DATASETS_HELP = (
    "Comma list of datasets "
    f"({', '.join(f'{name}:' if DATASETS.get(name).takes_path else name for name in DATASETS)})."
)


@benchmark_app.callback()
def benchmark(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Benchmark name (unique in the database).")] = None,
    archs: Annotated[
        str | None,
        typer.Option(help="Comma list: search:NAME:topK, ref:NAME[:WIDTH], genotype .json files, arch_ids."),
    ] = None,
    data: Annotated[str, typer.Option(help=_DATASETS_HELP)] = "shapes",
    seeds: Annotated[int, typer.Option(min=1, help="Runs per architecture and dataset (seeds 0..N-1).")] = 3,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per run (no early stopping).")] = 5,
    db: DbOption = None,
    ray_address: RayAddressOption = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs (and torch threads) per run.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per run; 0.25 packs 4 runs per GPU.")] = 0.0,
    concurrency: Annotated[int | None, typer.Option(help="Runs at once (default: what fits).")] = None,
    image_size: ImageSizeOption = 64,
    train_samples: TrainSamplesOption = 512,
    scale_jitter: ScaleJitterOption = "off",
    lr: Annotated[float, typer.Option(help="Learning rate unless a genotype carries its own.")] = 3e-3,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Batch size unless a genotype carries its own.")
    ] = 16,
    ref_width: Annotated[int | None, typer.Option(min=1, help="Width of ref: specs (default 16).")] = None,
    storage_path: Annotated[
        str | None, typer.Option(help="Checkpoints and logs (default runs/<name>).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the benchmark of this --name.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Train even identical finished runs.")] = False,
) -> None:
    """Run a benchmark: every architecture on every dataset with every seed, then the statistics.

    Examples:

      nasfcn benchmark --name classics --archs ref:fcn32s,ref:fcn8s,ref:unet --data shapes --seeds 3

      nasfcn benchmark --name winners --archs search:demo:top3,ref:unet --data shapes,digits --seeds 5

      nasfcn benchmark report classics --out classics.md
    """
    if ctx.invoked_subcommand is not None:
        return
    from nasfcn.benchmark import BenchmarkConfig, run_benchmark
    from nasfcn.search import SearchStoppedError
    from nasfcn.store import mask_text
    from nasfcn.train import TrainRecipe

    if name is None or (archs is None and not resume):
        raise fail("give --name and --archs (or --name with --resume); see nasfcn benchmark --help")
    try:
        config = BenchmarkConfig(
            name=name,
            archs=comma_list(archs or ""),
            datasets=comma_list(data),
            seeds=seeds,
            epochs=epochs,
            execution=execution_from(ctx.params),
            image_size=image_size,
            train_samples=train_samples,
            scale_range=scale_range(scale_jitter),
            recipe=TrainRecipe(epochs=epochs, lr=lr, batch_size=batch_size),
            ref_width=ref_width,
            explicit=typed(ctx, BENCHMARK_FIELDS),
        )
        summary = run_benchmark(config, console=console)
    except SearchStoppedError as err:
        raise fail(mask_text(str(err)), EXIT_ENVIRONMENT) from None
    print_summary(summary)
    _print_benchmark(summary.results)
    console.print(f"next: nasfcn benchmark report {summary.name} --out {summary.name}.md", markup=False)
    exit_if_interrupted(summary)


def _print_benchmark(results) -> None:
    for dataset, table in results.groupby("dataset", sort=True):
        view = Table(title=f"{dataset}: mean val mIoU over seeds, 95% CI; = tied with the best")
        for column in ("rank", "architecture", "runs", "mIoU", "+- sd", "95% CI", "p vs best", "group"):
            view.add_column(column, justify="left" if column == "architecture" else "right")
        for row in table.itertuples():
            label = f"{row.label} (ref)" if isinstance(row.reference, str) else str(row.label)
            ci = "-" if math.isnan(row.miou_ci_low) else f"[{row.miou_ci_low:.3f}, {row.miou_ci_high:.3f}]"
            view.add_row(
                "-" if math.isnan(row.rank) else f"{row.rank:.0f}",
                Text(label),
                str(row.runs),
                "-" if math.isnan(row.miou_mean) else f"{row.miou_mean:.3f}",
                "-" if math.isnan(row.miou_std) else f"{row.miou_std:.3f}",
                ci,
                "-" if math.isnan(row.p_vs_best) else f"{row.p_vs_best:.3f}",
                f"{row.group or '-'}{'=' if row.tied_with_best else ''}",
            )
        console.print(view)


@benchmark_app.command("report")
def benchmark_report(
    name: Annotated[str, typer.Argument(help="The benchmark's name.")],
    out: Annotated[Path, typer.Option(help="Markdown file to write (figures and CSV go beside it).")] = Path(
        "benchmark.md"
    ),
    db: DbOption = None,
) -> None:
    """Write a benchmark's results as Markdown (tables, method, how to reproduce) plus figures.

    Example: nasfcn benchmark report classics --out reports/classics.md
    """
    from nasfcn.benchmark import write_report

    path = write_report(results_store(db), name, out)
    console.print(f"report: {path.resolve()}", markup=False)
