"""``nasfcn train``: one architecture, trained and evaluated every epoch, with a progress bar."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nasfcn.catalogue import LR_SCHEDULES, OPTIMIZERS, one_of
from nasfcn.cli._console import console, fail
from nasfcn.cli._options import (
    AmpOption,
    ChannelsLastOption,
    DataOption,
    ScaleJitterOption,
    TrainSamplesOption,
    scale_range,
)
from nasfcn.cli._spaces import load
from nasfcn.genotype import Genotype

if TYPE_CHECKING:
    from nasfcn.train import EpochResult, TrainResult

_OPTIMIZER_HELP = f"{one_of(OPTIMIZERS.names())}."
_SCHEDULE_HELP = f"{one_of(LR_SCHEDULES.names())}."


def train(
    data: DataOption = "shapes",
    space: Annotated[
        Path | None,
        typer.Option(help="Space file to draw the architecture from (with --sample-seed)."),
    ] = None,
    sample_seed: Annotated[int, typer.Option(help="Seed of the architecture drawn from --space.")] = 0,
    genotype: Annotated[Path | None, typer.Option(help="A genotype JSON file (instead of --space).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 3e-3,
    optimizer: Annotated[str, typer.Option(help=_OPTIMIZER_HELP)] = "adamw",
    schedule: Annotated[str, typer.Option(help=_SCHEDULE_HELP)] = "cosine",
    image_size: Annotated[int, typer.Option(min=8, help="Training and validation image side.")] = 64,
    train_samples: TrainSamplesOption = 512,
    scale_jitter: ScaleJitterOption = "off",
    seed: Annotated[int, typer.Option(help="Training seed (weights, batches, augmentation).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: AmpOption = True,
    channels_last: ChannelsLastOption = True,
    out: Annotated[Path, typer.Option(help="Folder for the best checkpoint.")] = Path("runs/train"),
) -> None:
    """Train one architecture and evaluate it after every epoch; keep the best checkpoint.

    Examples:

      nasfcn train --space search_spaces/fcn_tiny.yaml --sample-seed 3 --data shapes --epochs 10

      nasfcn train --genotype best.json --data folder:my_data --epochs 30 --out runs/mine
    """
    from nasfcn.data import DataConfig, load_dataset
    from nasfcn.train import TrainingDiverged, TrainRecipe, fit

    if (space is None) == (genotype is None):
        raise fail("give exactly one of --space (with --sample-seed) or --genotype")
    try:
        if genotype is not None:
            chosen = Genotype.from_json(genotype.read_text())
        else:
            chosen = load(space).sample(sample_seed)  # type: ignore[arg-type]
        recipe = TrainRecipe(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            schedule=schedule,
            seed=seed,
            amp=amp,
            channels_last=channels_last,
        )
        with console.status(f"loading and checking {data} ..."):
            options = DataConfig(
                image_size=image_size,
                train_samples=train_samples,
                seed=seed,
                scale_range=scale_range(scale_jitter),
            )
            bundle = load_dataset(data, options)
    except FileNotFoundError as err:
        raise fail(f"{err.filename}: file not found") from None
    except ValueError as err:  # also a genotype file that is not JSON at all
        raise fail(str(err)) from None

    console.print(f"[bold]{chosen.arch_id}[/bold]: {chosen.describe()}")
    console.print(
        f"data {data}: {len(bundle.train)} train / {len(bundle.val)} val images, "
        f"{bundle.num_classes} classes, {image_size}x{image_size}"
    )
    with epoch_progress(epochs) as (progress, task):

        def show(epoch: EpochResult) -> None:
            advance(progress, task, epoch)

        try:
            result = fit(chosen, bundle, recipe, device=device, out_dir=out, progress=show)
        except TrainingDiverged as err:
            raise fail(f"training diverged: {err}", code=1) from None
    _print_result(result, out)


def _print_result(result: TrainResult, out: Path) -> None:
    """The best epoch's per-class IoU table, its other metrics and where the checkpoint is."""
    table = Table(title=f"best epoch {result.best_epoch} of {len(result.history)} on {result.device}")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in zip(result.class_names, result.best.val.per_class_iou, strict=True):
        table.add_row(name, "-" if math.isnan(iou) else f"{iou:.3f}")
    best = result.best.val
    table.add_row("[bold]mean[/bold]", f"[bold]{best.miou:.3f}[/bold]")
    console.print(table)
    console.print(
        f"pixel accuracy {best.pixel_accuracy:.3f}, mean class accuracy "
        f"{best.mean_class_accuracy:.3f}, fw-IoU {best.fw_iou:.3f}, mean Dice {best.mean_dice:.3f}"
    )
    console.print(f"checkpoint: {out / 'best.safetensors'} (+ best.json)")


@contextmanager
def epoch_progress(epochs: int) -> Iterator[tuple[Progress, TaskID]]:
    """One bar over ``epochs`` showing loss, val mIoU and speed (train and each finetune stage)."""
    columns = (
        TextColumn("epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}  val mIoU {task.fields[miou]}  {task.fields[speed]} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=epochs, loss="-", miou="-", speed="-")
        yield progress, task


def advance(progress: Progress, task: TaskID, epoch: EpochResult) -> None:
    progress.update(
        task,
        advance=1,
        loss=f"{epoch.train_loss:.3f}",
        miou=f"{epoch.val.miou:.3f}",
        speed=f"{epoch.images_per_s:.0f}",
    )
