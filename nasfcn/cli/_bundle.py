"""``nasfcn export``, ``predict`` and ``finetune``: the commands that make or use a bundle."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from nasfcn.cli._console import console, fail
from nasfcn.cli._db import cell
from nasfcn.cli._options import DATA_SPECS, DbOption
from nasfcn.cli._train import advance, epoch_progress

if TYPE_CHECKING:
    from nasfcn.export import ExportResult
    from nasfcn.finetune import FinetuneResult
    from nasfcn.train import EpochResult

_NEW_DATA_HELP = f"New data: {DATA_SPECS}."


def export(
    out: Annotated[Path, typer.Option(help="The bundle: a folder, or a .zip file when PATH ends so.")],
    search: Annotated[str | None, typer.Option(help="Search name (default: the latest).")] = None,
    trial: Annotated[int | None, typer.Option(help="Trial number, as `nasfcn trials` lists it.")] = None,
    rank: Annotated[int | None, typer.Option(min=1, help="Leaderboard rank (1 = best val mIoU).")] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="The best completed trial at or below this latency.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle at --out.")] = False,
    db: DbOption = None,
) -> None:
    """Export a trial as a bundle: genotype, safetensors weights, ONNX, TorchScript, preprocessing,
    metrics, fine-tuning recipe and a model card. Default: the best completed trial by val mIoU
    (when a time budget stopped every trial early, the best of those).

    Examples:

      nasfcn export --search demo --out runs/demo/best_bundle

      nasfcn export --search demo --max-latency-ms 5 --out fast.zip
    """
    from nasfcn.export import export_trial
    from nasfcn.store import open_store

    store = open_store(db, create=False)
    with console.status("exporting (ONNX and TorchScript, each checked against PyTorch) ..."):
        result = export_trial(
            store,
            out,
            search=search,
            trial=trial,
            rank=rank,
            max_latency_ms=max_latency_ms,
            overwrite=force,
        )
    source, val = result.metrics["source"], result.metrics.get("val", {})
    reused = source.get("trained_by")
    console.print(
        f"exported trial {source['trial']} of {source['search']} ({result.arch_id}, val mIoU "
        f"{cell(val.get('miou'), 'miou')})"
        + (f", trained as trial {reused['trial']} of {reused['search']}" if reused else "")
        + f" to {out}",
        markup=False,
    )
    console.print(_test_text(result.metrics.get("test") or {}), markup=False)
    _print_bundle_next(result, data_hint=True)


def _test_text(test: Mapping[str, Any]) -> str:
    """One line: the held-out test figures, or why there are none (val never stands in for them)."""
    if not test.get("images"):
        reason = test.get("reason") or "no test split"
        return f"test: {reason}; the val mIoU above selected this network, so it overstates it"
    miou, accuracy = cell(test.get("miou"), "miou"), cell(test.get("pixel_accuracy"), "miou")
    return (
        f"test mIoU {miou}, pixel accuracy {accuracy} on {test['images']} held-out test images "
        "(never used to train or select)"
    )


def _print_bundle_next(result: ExportResult, data_hint: bool) -> None:
    """How close the exported files came to PyTorch, and the commands to run next."""
    checks = ", ".join(
        f"{p.format} max abs diff {p.max_abs_diff:.1e} at {'x'.join(map(str, p.input_shape))}"
        for p in result.parity
    )
    console.print(f"checked against PyTorch: {checks} (limit {result.parity[0].tolerance:g})", markup=False)
    console.print(
        f"next: nasfcn predict --bundle {result.path} IMAGE... --out predictions --overlay", markup=False
    )
    if data_hint:
        console.print(
            f"      nasfcn finetune --bundle {result.path} --data folder:my_data --out my_model", markup=False
        )


def predict(
    images: Annotated[list[Path], typer.Argument(help="Images to segment (any size).")],
    bundle: Annotated[Path, typer.Option(help="A bundle folder or .zip (from nasfcn export).")],
    out: Annotated[Path, typer.Option(help="Folder for the masks (<stem>.png, palette PNGs).")],
    overlay: Annotated[bool, typer.Option("--overlay", help="Also write <stem>_overlay.png.")] = False,
    native: Annotated[
        bool, typer.Option("--native", help="Run at each image's own size instead of the trained size.")
    ] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
) -> None:
    """Segment images: one palette PNG mask per image, at the image's own size.

    Example: nasfcn predict --bundle runs/demo/best_bundle photo.jpg scan.png --out masks --overlay
    """
    from nasfcn.bundle import load_bundle
    from nasfcn.predict import predict_files
    from nasfcn.train import select_device

    try:
        loaded = load_bundle(bundle, select_device(device))
        results = predict_files(loaded, images, out, overlay=overlay, native=native)
    except ValueError as err:  # also a device this machine does not have
        raise fail(str(err)) from None
    for result in results:
        top = ", ".join(
            f"{name} {share:.0%}"
            for name, share in sorted(result.class_fractions.items(), key=lambda kv: -kv[1])[:3]
        )
        written = f"{result.mask}" + (f" + {result.overlay.name}" if result.overlay else "")
        console.print(f"{result.image} ({result.size[0]}x{result.size[1]}): {written}  [{top}]", markup=False)


def finetune(
    bundle: Annotated[Path, typer.Option(help="The bundle to start from (folder or .zip).")],
    data: Annotated[str, typer.Option(help=_NEW_DATA_HELP)],
    out: Annotated[Path, typer.Option(help="The new bundle: a folder, or a .zip file.")],
    classes: Annotated[
        int | None, typer.Option(min=1, help="Number of classes (default: the data's class names).")
    ] = None,
    recipe: Annotated[
        Path | None, typer.Option(help="Staged recipe YAML (default: the bundle's finetune.yaml).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Replace an existing bundle at --out.")] = False,
) -> None:
    """Fine-tune a bundle on new data in three stages (head, + decoder, whole model at a lower
    learning rate); the head is replaced when the number of classes differs. The result is a bundle.

    Examples:

      nasfcn finetune --bundle runs/demo/best_bundle --data folder:my_data --out my_model

      nasfcn finetune --bundle best.zip --data voc:VOC2012 --recipe my_recipe.yaml --out voc_model.zip
    """
    from contextlib import ExitStack

    from nasfcn.bundle import StageRecipe, load_recipe
    from nasfcn.finetune import finetune_bundle
    from nasfcn.train import TrainingDiverged

    bars = ExitStack()
    current: dict[str, tuple[Progress, TaskID]] = {}

    def on_stage(name: str, stage: StageRecipe, trainable: int) -> None:
        bars.close()
        console.print(
            f"stage {name}: {stage.epochs} epochs at lr {stage.lr:g}, {trainable:,} parameters train"
        )
        current["bar"] = bars.enter_context(epoch_progress(stage.epochs))

    def show(name: str, epoch: EpochResult) -> None:
        advance(*current["bar"], epoch)

    try:
        with bars:
            chosen = load_recipe(recipe) if recipe is not None else None
            result, exported = finetune_bundle(
                bundle,
                data,
                out,
                recipe=chosen,
                classes=classes,
                device=device,
                overwrite=force,
                on_stage=on_stage,
                progress=show,
            )
    except TrainingDiverged as err:
        raise fail(f"training diverged: {err}", code=1) from None
    except ValueError as err:  # also a device this machine does not have
        raise fail(str(err)) from None
    _print_finetuned(result, exported, data)


def _print_finetuned(result: FinetuneResult, exported: ExportResult, data: str) -> None:
    """Val metrics before and after each stage, the replaced layers and where the bundle is."""
    table = Table(title=f"fine-tuning {result.model.genotype.arch_id} on {data} ({result.device})")
    for column in ("stage", "epochs", "lr", "trainable params", "val mIoU", "pixel accuracy"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    table.add_row(
        "before", "-", "-", "-", f"{result.baseline.miou:.3f}", f"{result.baseline.pixel_accuracy:.3f}"
    )
    for stage in result.stages:
        table.add_row(
            stage.name,
            str(stage.epochs),
            f"{stage.lr:g}",
            f"{stage.trainable_params:,}",
            f"{stage.val.miou:.3f}",
            f"{stage.val.pixel_accuracy:.3f}",
        )
    console.print(table)
    if result.best_stage:
        best = result.best
        later = [s.name for s in result.stages[result.stages.index(best) + 1 :]]
        console.print(
            f"kept stage {best.name} (val mIoU {best.val.miou:.3f}, the best)"
            + (f"; later stage(s) {', '.join(later)} did no better and were undone" if later else ""),
            markup=False,
        )
    if result.replaced:
        console.print(
            f"new for {result.data.num_classes} classes: {', '.join(result.replaced)}", markup=False
        )
    console.print(f"bundle: {exported.path}", markup=False)
    _print_bundle_next(exported, data_hint=False)
