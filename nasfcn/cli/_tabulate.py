"""``nasfcn tabulate``: train every architecture of a space x seeds (a tabular benchmark).

The group builds when called with options; ``tabulate export``, ``tabulate report`` and
``tabulate compare`` (the table file, its statistics, two tables' rank agreement) are its subcommands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from nasfcn.cli._benchmark import BENCHMARK_FIELDS
from nasfcn.cli._console import EXIT_ENVIRONMENT, console, fail
from nasfcn.cli._options import (
    DataOption,
    DbOption,
    ImageSizeOption,
    RayAddressOption,
    ScaleJitterOption,
    TrainSamplesOption,
    execution_from,
    exit_if_interrupted,
    print_summary,
    scale_range,
    typed,
)
from nasfcn.cli._tables import compare_command, export_command, report_command

tabulate_app = typer.Typer(
    help="Train every architecture of a space for every seed: a tabular benchmark of FCN designs.\n\n"
    "Example: nasfcn tabulate --space my_space.yaml --data shapes --seeds 3 --epochs 8 --name t1\n\n"
    "A space with float ranges or over 5,000 architectures is refused: take a seeded sample with "
    "--sample N. Continue a stopped build with --name NAME --resume.",
    invoke_without_command=True,
)
tabulate_app.command("export")(export_command)
tabulate_app.command("report")(report_command)
tabulate_app.command("compare")(compare_command)

#: Command-line parameters whose config field has another name; those that are no config
#: field at all (what the table is of) are checked by nasfcn.benchmark.tabulate itself.
TABULATE_FIELDS = BENCHMARK_FIELDS  # a table is a benchmark: the same options, the same fields
_SOURCE_OPTIONS = ("space", "sample", "sample_seed")


# long: the signature is the command's option table (one typed option a line, as Typer reads it)
# and the body passes each option to its BenchmarkConfig field; split, both would be read twice.
@tabulate_app.callback()
def tabulate(
    ctx: typer.Context,
    space: Annotated[
        str | None, typer.Option(help="Space YAML file, or a shipped space's name (e.g. fcn_tiny).")
    ] = None,
    data: DataOption = "shapes",
    seeds: Annotated[int, typer.Option(min=1, help="Runs per architecture (seeds 0..N-1).")] = 3,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per run (every epoch is stored).")] = 5,
    name: Annotated[str | None, typer.Option(help="Table name (unique in the database).")] = None,
    sample: Annotated[
        int | None, typer.Option(min=1, help="Train a seeded uniform sample of N distinct architectures.")
    ] = None,
    sample_seed: Annotated[int | None, typer.Option(min=0, help="Seed of --sample (default 0).")] = None,
    db: DbOption = None,
    ray_address: RayAddressOption = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs (and torch threads) per run.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per run; 0.25 packs 4 runs per GPU.")] = 0.0,
    concurrency: Annotated[int | None, typer.Option(help="Runs at once (default: what fits).")] = None,
    image_size: ImageSizeOption = 64,
    train_samples: TrainSamplesOption = 512,
    scale_jitter: ScaleJitterOption = "off",
    val_samples: Annotated[int, typer.Option(min=1, help="Generated val images (synthetic data).")] = 128,
    lr: Annotated[float, typer.Option(help="Learning rate unless the space sets it.")] = 3e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size unless the space sets it.")] = 16,
    storage_path: Annotated[
        str | None, typer.Option(help="Checkpoints and logs (default runs/<name>).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the table of this --name.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Train even identical finished runs.")] = False,
) -> None:
    """Build a table: every architecture of --space on --data, once per seed, every epoch stored.

    A space whose knobs have float ranges, or with more than 5,000 architectures, is refused:
    take a seeded sample with --sample N. Killed or stopped, a table continues with
    --resume --name NAME: finished runs are kept, none is repeated.

    Examples:

      nasfcn tabulate --space my_space.yaml --data shapes --seeds 3 --epochs 8 --name t1

      nasfcn tabulate --space fcn_tiny --sample 200 --data folder:my_data --seeds 2 --name t2

      nasfcn tabulate --name t1 --resume
    """
    if ctx.invoked_subcommand is not None:
        return
    from nasfcn.benchmark import BenchmarkConfig, TableSource
    from nasfcn.benchmark import tabulate as build
    from nasfcn.search import SearchStoppedError
    from nasfcn.store import mask_text
    from nasfcn.train import TrainRecipe

    if name is None or (space is None and not resume):
        raise fail("give --space and --name (or --name with --resume); see nasfcn tabulate --help")
    given = typed(ctx, TABULATE_FIELDS)
    try:
        config = BenchmarkConfig(
            name=name,
            archs=(),
            datasets=(data,),
            seeds=seeds,
            epochs=epochs,
            execution=execution_from(ctx.params),
            image_size=image_size,
            train_samples=train_samples,
            scale_range=scale_range(scale_jitter),
            val_samples=val_samples,
            recipe=TrainRecipe(epochs=epochs, lr=lr, batch_size=batch_size),
            kind="table",
            explicit=given - set(_SOURCE_OPTIONS),
        )
        summary = build(TableSource(space, sample, sample_seed), config, console=console)
    except SearchStoppedError as err:
        raise fail(mask_text(str(err)), EXIT_ENVIRONMENT) from None
    print_summary(summary)
    console.print(f"run folder: {summary.run_folder}", markup=False)
    console.print(
        f"next: nasfcn tabulate export {summary.name} --out {summary.name}.parquet; "
        f"nasfcn tabulate report {summary.name}",
        markup=False,
    )
    exit_if_interrupted(summary)
