"""The ``nasfcn`` command line: thin commands that parse, call the library and render."""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from nasfcn import __version__
from nasfcn.genotype import Genotype

if TYPE_CHECKING:
    from nasfcn.export import ExportResult
    from nasfcn.store import Store
    from nasfcn.train import EpochResult
from nasfcn.space import INTRINSIC_TEXT, SearchSpace, SpaceError, load_space, size_text

# Piped output (logs, CI, tests) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

app = typer.Typer(
    name="nasfcn",
    help="Architecture search and benchmarking for fully convolutional segmentation networks.\n\n"
    "A first journey: nasfcn search --space search_spaces/fcn_tiny.yaml --data folder:my_data --name first; "
    "nasfcn leaderboard --search first; nasfcn export --search first --out first_bundle; "
    "nasfcn finetune --bundle first_bundle --data folder:more_data --out my_model. "
    "Every command's --help has examples.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
spaces_app = typer.Typer(
    help="Inspect search spaces: validate, show, sample, and the reference architectures (refs).\n\n"
    "Example: nasfcn spaces sample search_spaces/fcn_tiny.yaml --n 5 --seed 0",
    no_args_is_help=True,
)
app.add_typer(spaces_app, name="spaces")
db_app = typer.Typer(
    help="The results database: upgrade its schema, show what is in it.\n\n"
    "Example: nasfcn db info --db postgresql+psycopg://user@127.0.0.1:5432/nasfcn",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
benchmark_app = typer.Typer(
    help="Train architectures x datasets x seeds and compare them with confidence intervals.\n\n"
    "Example: nasfcn benchmark --name cmp --archs ref:fcn8s,ref:unet,search:demo:top3 --seeds 3\n\n"
    "Then: nasfcn benchmark report cmp --out report.md",
    invoke_without_command=True,
)
app.add_typer(benchmark_app, name="benchmark")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="NASFCN_DB",
        help="SQLAlchemy URL of the results database (default sqlite:///nasfcn.db).",
        show_default=False,
    ),
]

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1  # the machine stopped the command (database unreachable, disk full)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    err_console.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def _load(path: Path) -> SearchSpace:
    try:
        return load_space(path)
    except SpaceError as err:
        raise _fail(str(err)) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"nasfcn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Architecture search and benchmarking for fully convolutional segmentation networks."""


@spaces_app.command("validate")
def spaces_validate(
    files: Annotated[list[Path], typer.Argument(help="Space files (YAML) to check.")],
) -> None:
    """Check space files; every problem is listed with its field path. Exit code 2 on errors.

    Example: nasfcn spaces validate search_spaces/*.yaml
    """
    failed = 0
    for path in files:
        try:
            space = load_space(path)
        except SpaceError as err:
            failed += 1
            err_console.print(str(err), markup=False, highlight=False)
            continue
        console.print(f"{path}: ok ({space.name}, {size_text(space.size())} architectures)")
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


@spaces_app.command("show")
def spaces_show(file: Annotated[Path, typer.Argument(help="A space file (YAML).")]) -> None:
    """Print a space's knobs, their values and conditions, and its size.

    Example: nasfcn spaces show search_spaces/fcn_small.yaml
    """
    space = _load(file)
    table = Table(title=f"{space.name}: {space.description}" if space.description else space.name)
    table.add_column("knob")
    table.add_column("values")
    table.add_column("active when")
    for path in space.order:
        knob = space.knobs[path]
        conditions = [INTRINSIC_TEXT[path]] if path in INTRINSIC_TEXT else []
        if knob.when:
            conditions.append(knob.when.text)
        table.add_row(path, knob.describe(), " and ".join(conditions), style=None if knob.searched else "dim")
    console.print(table)
    console.print(
        f"input: {space.in_channels} channels, min size {space.min_size}; searched knobs: "
        f"{len(space.searched)}; distinct architectures: {size_text(space.size())}; "
        f"with training knobs: {size_text(space.size(include_train=True))}"
    )


@spaces_app.command("sample")
def spaces_sample(
    file: Annotated[Path, typer.Argument(help="A space file (YAML).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many architectures to draw.")] = 5,
    seed: Annotated[int, typer.Option(help="First seed; architecture i uses seed + i.")] = 0,
    size: Annotated[
        int | None,
        typer.Option(help="Input height and width for the cost (default: 64 or the space's min size)."),
    ] = None,
    classes: Annotated[int, typer.Option(min=1, help="Number of output classes.")] = 21,
    device: Annotated[str, typer.Option(help="Device to measure latency on (cpu, cuda).")] = "cpu",
) -> None:
    """Draw architectures and print their cost: params, FLOPs, latency, peak memory.

    Example: nasfcn spaces sample search_spaces/fcn_tiny.yaml --n 5 --seed 0
    """
    from nasfcn.cost import format_count, measure
    from nasfcn.model import build_model

    space = _load(file)
    hw = size or max(64, space.min_size)
    table = Table(title=f"{n} samples of {space.name} at {hw}x{hw}, {classes} classes, {device}")
    for column in (
        "seed",
        "arch_id",
        "stages",
        "channels",
        "kernels",
        "skip",
        "upsample",
        "attention",
    ):
        table.add_column(column)
    for column in ("params", "FLOPs", "latency ms", "peak MB"):
        table.add_column(column, justify="right")
    with console.status("measuring...") as status:
        for i in range(n):
            genotype = space.sample(seed + i)
            status.update(f"measuring {i + 1}/{n}: {genotype.arch_id}")
            model = build_model(genotype, classes, space.in_channels)
            cost = measure(model, (hw, hw), device=device)
            table.add_row(
                str(seed + i),
                genotype.arch_id,
                str(genotype.encoder.stages),
                "-".join(map(str, genotype.encoder.channels)),
                "/".join(map(str, genotype.encoder.kernel_size)),
                genotype.skip,
                genotype.upsample,
                _attention(genotype),
                format_count(cost.params),
                format_count(cost.flops),
                f"{cost.latency_ms:.2f}",
                f"{cost.peak_memory_mb:.1f}",
            )
    console.print(table)


@spaces_app.command("refs")
def spaces_refs(
    space: Annotated[Path | None, typer.Option(help="Take the width from this space file.")] = None,
    width: Annotated[int | None, typer.Option(min=1, help="First-stage channels (default 16).")] = None,
    size: Annotated[int, typer.Option(min=8, help="Input height and width for the cost.")] = 64,
    classes: Annotated[int, typer.Option(min=1, help="Number of output classes.")] = 21,
    device: Annotated[str, typer.Option(help="Device to measure latency on (cpu, cuda).")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="Also write each genotype as <name>.json here.")] = None,
) -> None:
    """List the reference architectures (FCN-32s/16s/8s, SegNet, U-Net, ...) with their cost.

    Examples:

      nasfcn spaces refs

      nasfcn spaces refs --space search_spaces/fcn_tiny.yaml --out refs/
    """
    from nasfcn.cost import format_count, measure
    from nasfcn.model import build_model
    from nasfcn.references import DEFAULT_WIDTH, REFERENCES, width_for_space

    if space is not None and width is not None:
        raise _fail("give --space or --width, not both")
    chosen = width_for_space(_load(space)) if space is not None else (width or DEFAULT_WIDTH)
    table = Table(
        title=f"reference architectures at width {chosen}, {size}x{size}, {classes} classes, {device}"
    )
    for column in ("name", "arch_id", "design"):
        table.add_column(column)
    for column in ("params", "FLOPs", "latency ms"):
        table.add_column(column, justify="right")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    with console.status("measuring...") as status:
        for name in REFERENCES.names():
            entry = REFERENCES.get(name)
            genotype = entry.genotype(chosen)
            status.update(f"measuring {name}")
            cost = measure(build_model(genotype, classes), (size, size), device=device)
            table.add_row(
                name,
                genotype.arch_id,
                entry.summary,
                format_count(cost.params),
                format_count(cost.flops),
                f"{cost.latency_ms:.2f}",
            )
            if out is not None:
                (out / f"{name}.json").write_text(genotype.to_json() + "\n", encoding="utf-8")
    console.print(table)
    if out is not None:
        console.print(f"genotypes written to {out}/ (use with nasfcn train --genotype)")


@app.command("train")
def train(
    data: Annotated[str, typer.Option(help="Dataset: shapes, digits, voc:PATH or folder:PATH.")] = "shapes",
    space: Annotated[
        Path | None,
        typer.Option(help="Space file to draw the architecture from (with --sample-seed)."),
    ] = None,
    sample_seed: Annotated[int, typer.Option(help="Seed of the architecture drawn from --space.")] = 0,
    genotype: Annotated[Path | None, typer.Option(help="A genotype JSON file (instead of --space).")] = None,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 3e-3,
    optimizer: Annotated[str, typer.Option(help="sgd or adamw.")] = "adamw",
    schedule: Annotated[str, typer.Option(help="cosine, poly or constant.")] = "cosine",
    image_size: Annotated[int, typer.Option(min=8, help="Training and validation image side.")] = 64,
    train_samples: Annotated[int, typer.Option(min=1, help="Generated train images (synthetic data).")] = 512,
    seed: Annotated[int, typer.Option(help="Training seed (weights, batches, augmentation).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA (not on CPU).")] = True,
    channels_last: Annotated[
        bool, typer.Option("--channels-last/--no-channels-last", help="Channels-last memory format on CUDA.")
    ] = True,
    out: Annotated[Path, typer.Option(help="Folder for the best checkpoint.")] = Path("runs/train"),
) -> None:
    """Train one architecture and evaluate it after every epoch; keep the best checkpoint.

    Examples:

      nasfcn train --space search_spaces/fcn_tiny.yaml --sample-seed 3 --data shapes --epochs 10

      nasfcn train --genotype best.json --data folder:my_data --epochs 30 --out runs/mine
    """
    from nasfcn.data import DataConfig, DatasetError, load_dataset
    from nasfcn.genotype import GenotypeError
    from nasfcn.registry import UnknownChoiceError
    from nasfcn.train import TrainingDiverged, TrainRecipe, fit

    if (space is None) == (genotype is None):
        raise _fail("give exactly one of --space (with --sample-seed) or --genotype")
    try:
        if genotype is not None:
            chosen = Genotype.from_json(genotype.read_text())
        else:
            chosen = _load(space).sample(sample_seed)  # type: ignore[arg-type]
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
            options = DataConfig(image_size=image_size, train_samples=train_samples, seed=seed)
            bundle = load_dataset(data, options)
    except FileNotFoundError as err:
        raise _fail(f"{err.filename}: file not found") from None
    except (GenotypeError, DatasetError, UnknownChoiceError, ValueError) as err:
        raise _fail(str(err)) from None

    console.print(f"[bold]{chosen.arch_id}[/bold]: {chosen.describe()}")
    console.print(
        f"data {data}: {len(bundle.train)} train / {len(bundle.val)} val images, "
        f"{bundle.num_classes} classes, {image_size}x{image_size}"
    )
    with _epoch_progress(epochs) as (progress, task):

        def show(epoch: EpochResult) -> None:
            _advance(progress, task, epoch)

        try:
            result = fit(chosen, bundle, recipe, device=device, out_dir=out, progress=show)
        except TrainingDiverged as err:
            raise _fail(f"training diverged: {err}", code=1) from None

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
def _epoch_progress(epochs: int) -> Iterator[tuple[Progress, TaskID]]:
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


def _advance(progress: Progress, task: TaskID, epoch: EpochResult) -> None:
    progress.update(
        task,
        advance=1,
        loss=f"{epoch.train_loss:.3f}",
        miou=f"{epoch.val.miou:.3f}",
        speed=f"{epoch.images_per_s:.0f}",
    )


@app.command("search")
def search(
    ctx: typer.Context,
    space: Annotated[Path, typer.Option(help="Search space YAML.")] = Path("search_spaces/fcn_tiny.yaml"),
    data: Annotated[str, typer.Option(help="Dataset: shapes, digits, voc:PATH or folder:PATH.")] = "shapes",
    name: Annotated[str | None, typer.Option(help="Search name (default: <space>-<time>).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Candidates to evaluate.")] = 12,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per candidate (ASHA may stop earlier).")] = 3,
    strategy: Annotated[str, typer.Option(help="random, tpe, nsga2 or grid.")] = "tpe",
    scheduler: Annotated[str, typer.Option(help="asha (early stopping) or fifo.")] = "asha",
    grace_period: Annotated[
        int | None,
        typer.Option(help="ASHA: epochs every trial trains before a stop (default: epochs/4, at least 1)."),
    ] = None,
    reduction_factor: Annotated[
        int, typer.Option(help="ASHA: 1 in this many goes on at each rung (at g, g*f, g*f^2... epochs).")
    ] = 2,
    objectives: Annotated[str, typer.Option(help="Comma list, e.g. miou or miou,latency_ms.")] = "miou",
    max_params: Annotated[float | None, typer.Option(help="Reject candidates with more parameters.")] = None,
    max_flops: Annotated[float | None, typer.Option(help="Reject candidates with more FLOPs.")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="Reject slower candidates.")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs (and torch threads) per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per trial; 0.25 packs 4 trials per GPU.")] = 0.0,
    concurrency: Annotated[int | None, typer.Option(help="Trials at once (default: what fits).")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Stop after this many minutes.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the optimizer, the data and training.")] = 0,
    ray_address: Annotated[str | None, typer.Option(help="Existing Ray cluster (ray start --head).")] = None,
    db: DbOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the search of this --name.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Train even already-trained candidates.")
    ] = False,
    with_references: Annotated[
        bool,
        typer.Option(
            "--with-references", help="First train FCN-32s/16s/8s, SegNet, U-Net (see nasfcn spaces refs)."
        ),
    ] = False,
    references: Annotated[
        str | None, typer.Option(help="Only these references, comma-separated (implies --with-references).")
    ] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Training image side.")] = 64,
    train_samples: Annotated[int, typer.Option(min=1, help="Generated train images (synthetic data).")] = 512,
    lr: Annotated[float, typer.Option(help="Learning rate unless the space searches it.")] = 3e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size unless the space searches it.")] = 16,
    storage_path: Annotated[
        str | None, typer.Option(help="Checkpoints and logs (default runs/<name>); shared on a cluster.")
    ] = None,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA (not on CPU).")] = True,
    channels_last: Annotated[
        bool, typer.Option("--channels-last/--no-channels-last", help="Channels-last memory format on CUDA.")
    ] = True,
) -> None:
    """Search architectures on Ray Tune; every trial is recorded in the database as it runs.

    Examples:

      nasfcn search --space search_spaces/fcn_tiny.yaml --data shapes

      nasfcn search --space search_spaces/fcn_small.yaml --data folder:my_data --trials 64 --epochs 10
      --strategy nsga2 --objectives miou,latency_ms --max-latency-ms 20

      nasfcn search --name my-search --resume
    """
    from nasfcn.data import DatasetError
    from nasfcn.registry import UnknownChoiceError
    from nasfcn.search import SearchConfig, SearchConfigError, SearchStoppedError, run_search
    from nasfcn.store import DatabaseURLError, StoreError, mask_text
    from nasfcn.train import TrainRecipe

    try:
        config = SearchConfig(
            space=str(space),
            data=data,
            name=name,
            trials=trials,
            epochs=epochs,
            strategy=strategy,
            scheduler=scheduler,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            objectives=_comma_list(objectives),
            max_params=max_params,
            max_flops=max_flops,
            max_latency_ms=max_latency_ms,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            concurrency=concurrency,
            time_budget_min=time_budget,
            seed=seed,
            ray_address=ray_address,
            db=db,
            resume=resume,
            cache=not no_cache,
            references=_references(with_references, references),
            image_size=image_size,
            train_samples=train_samples,
            storage_path=storage_path,
            recipe=TrainRecipe(
                epochs=epochs, lr=lr, batch_size=batch_size, amp=amp, channels_last=channels_last
            ),
            explicit=_typed(ctx, SEARCH_FIELDS),
        )
        summary = run_search(config, console=console)
    except SpaceError as err:
        raise _fail(str(err)) from None
    except SearchStoppedError as err:
        raise _fail(mask_text(str(err)), EXIT_ENVIRONMENT) from None
    except (SearchConfigError, DatasetError, UnknownChoiceError, StoreError, DatabaseURLError) as err:
        raise _fail(mask_text(str(err))) from None
    counts = summary.counts
    console.print(
        f"\n[bold]{summary.name}[/bold] {'interrupted' if summary.interrupted else 'finished'} in "
        f"{summary.seconds:.0f} s: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
    )
    if summary.best_arch_id is not None:
        console.print(
            f"best: trial {summary.best_trial}, arch {summary.best_arch_id}, val mIoU {summary.best_miou:.3f}"
        )
    console.print(f"next: nasfcn trials --search {summary.name}")
    if summary.interrupted:
        raise typer.Exit(130)


#: Command-line parameters whose config field has another name (a resume compares typed options).
SEARCH_FIELDS = {
    "time_budget": "time_budget_min",
    "no_cache": "cache",
    "with_references": "references",
    "lr": "recipe.lr",
    "batch_size": "recipe.batch_size",
    "amp": "recipe.amp",
    "channels_last": "recipe.channels_last",
}
BENCHMARK_FIELDS = {
    "data": "datasets",
    "no_cache": "cache",
    "lr": "recipe.lr",
    "batch_size": "recipe.batch_size",
}
#: Parameters that are not settings of the search itself.
_NOT_SETTINGS = ("name", "db", "resume")


def _typed(ctx: typer.Context, fields: dict[str, str]) -> frozenset[str]:
    """The config fields of the options typed on the command line (not defaults, not $NASFCN_DB).

    Compared by name: typer carries its own copy of click, whose ParameterSource is another enum.
    """
    typed = [
        name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    ]
    return frozenset(fields.get(name, name) for name in typed if name not in _NOT_SETTINGS)


def _comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: how list options are written on the command line."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _references(every: bool, names: str | None) -> tuple[str, ...]:
    from nasfcn.references import REFERENCES

    if names:
        return _comma_list(names)
    return REFERENCES.names() if every else ()


def _store_call(action):
    from nasfcn.store import DatabaseURLError, StoreError, mask_text

    try:
        return action()
    except (StoreError, DatabaseURLError) as err:
        raise _fail(mask_text(str(err))) from None


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Bring a database to this nasfcn's schema (creates the tables in an empty one).

    Example: nasfcn db upgrade --db sqlite:///nasfcn.db
    """
    from nasfcn.store import Store

    def run() -> tuple[str, str | None, str]:
        store = Store(db)
        before, after = store.upgrade()
        return store.masked_url, before, after

    url, before, after = _store_call(run)
    if before == after:
        console.print(f"{url}: already at schema {after}")
    else:
        console.print(f"{url}: upgraded schema {before or '(empty)'} -> {after}")


@db_app.command("info")
def db_info(db: DbOption = None) -> None:
    """Show the database (password masked), its schema revision and row counts.

    Example: nasfcn db info
    """
    from nasfcn.store import Store, counts, head_revision

    def run() -> tuple[Store, str | None, dict[str, int] | None]:
        store = Store(db)
        revision = store.revision()
        return store, revision, counts(store) if revision == head_revision() else None

    store, revision, numbers = _store_call(run)
    console.print(f"database: {store.masked_url}")
    console.print(f"schema: {revision or '(empty)'} (this nasfcn: {head_revision()})")
    if numbers is None:
        console.print("run `nasfcn db upgrade` to bring it to this version's schema")
        return
    console.print(", ".join(f"{name}: {count:,}" for name, count in numbers.items()))


TRIAL_COLUMNS = (
    "rank",
    "number",
    "arch_id",
    "status",
    "best_miou",
    "best_pixel_accuracy",
    "params",
    "flops",
    "latency_ms",
    "epochs_trained",
    "skip",
    "upsample",
    "attention",
    "kernels",
)


@app.command("trials")
def trials(
    search: Annotated[str | None, typer.Option(help="Search name (default: the latest).")] = None,
    sort: Annotated[
        str, typer.Option(help="miou, pixel_accuracy, latency_ms, params, flops or number.")
    ] = "miou",
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most this many rows.")] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    db: DbOption = None,
) -> None:
    """List the trials of a search, best first.

    Examples:

      nasfcn trials --search demo --limit 10

      nasfcn trials --search demo --format csv > trials.csv
    """
    from nasfcn.store import OBJECTIVES, leaderboard_frame, open_store

    if output not in ("table", "csv", "json"):
        raise _fail(f"--format must be table, csv or json, got {output!r}")
    if sort != "number" and sort not in OBJECTIVES:
        raise _fail(f"--sort must be number or one of {', '.join(OBJECTIVES)}, got {sort!r}")
    frame = _store_call(lambda: leaderboard_frame(open_store(db, create=False), search))
    if sort != "number":
        column, direction = OBJECTIVES[sort]
        frame = frame.sort_values(column, ascending=direction == "min", na_position="last")
    else:
        frame = frame.sort_values("number")
    if limit is not None:
        frame = frame.head(limit)
    if output == "csv":
        sys.stdout.write(frame.drop(columns=["genotype_json"]).to_csv(index=False))
        return
    if output == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=2) + "\n")
        return
    if frame.empty:
        console.print("no trials yet")
        return
    table = Table()
    for column in TRIAL_COLUMNS:
        numeric = frame[column].dtype.kind in "if"
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column == "arch_id")
    for row in frame.itertuples(index=False):
        cells = [_cell(getattr(row, column), column) for column in TRIAL_COLUMNS]
        table.add_row(*cells)
    console.print(table)


def _cell(value: object, column: str) -> str:
    from nasfcn.cost import format_count

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column in ("params", "flops"):
        return format_count(int(value))  # type: ignore[call-overload]
    if column == "rank":
        return str(int(value))  # type: ignore[call-overload]
    if isinstance(value, float):
        return f"{value:.3f}" if column != "latency_ms" else f"{value:.2f}"
    return str(value)


def _attention(genotype: Genotype) -> str:
    att = genotype.attention
    return "none" if att.type == "none" else f"{att.type}@{att.where}"


def _results_store(db: str | None) -> Store:
    """The database to read, refusing one without results with a line saying what to run."""
    from nasfcn.store import Store
    from nasfcn.store._engine import require_database

    require_database(db)
    store = Store(db)
    if not store.has_tables():
        raise _fail(f"no results in {store.masked_url} yet: run `nasfcn search` first")
    store.check(create=False)
    return store


@app.command("leaderboard")
def leaderboard(
    db: DbOption = None,
    search: Annotated[str | None, typer.Option(help="Search name (default: the latest).")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("leaderboard.html"),
) -> None:
    """Write the leaderboard of a search as one self-contained HTML file (opens offline).

    Examples:

      nasfcn leaderboard

      nasfcn leaderboard --search demo --out reports/demo.html
    """
    from leaderboard.static import write_leaderboard
    from nasfcn.store import searches_frame

    def run() -> tuple[Path, str]:
        store = _results_store(db)
        if search is None and searches_frame(store).empty:
            raise _fail(f"no searches in {store.masked_url} yet: run `nasfcn search` first")
        path = write_leaderboard(store, out, search)
        return path, store.masked_url

    path, url = _store_call(run)
    console.print(f"leaderboard of {search or 'the latest search'} in {url}: {path.resolve()}", markup=False)


@app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 shares the page with your network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8050,
    refresh: Annotated[float, typer.Option(min=0.5, help="Seconds between re-reads of the database.")] = 5.0,
) -> None:
    """Serve the live leaderboard: it re-reads the database while searches run.

    Example: nasfcn serve --db sqlite:///nasfcn.db --port 8050
    """
    from leaderboard.app import serve as run_server
    from nasfcn.store import Store

    store = _store_call(lambda: Store(db))
    console.print(
        f"live leaderboard of {store.masked_url} on http://{host}:{port}/ (Ctrl-C stops it)", markup=False
    )
    store.dispose()
    run_server(db, host=host, port=port, refresh_s=refresh)


@app.command("export")
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
    metrics, fine-tuning recipe and a model card. Default: the best completed trial by val mIoU.

    Examples:

      nasfcn export --search demo --out runs/demo/best_bundle

      nasfcn export --search demo --max-latency-ms 5 --out fast.zip
    """
    from nasfcn.bundle import BundleError
    from nasfcn.export import ExportError, export_trial
    from nasfcn.store import open_store

    def run() -> ExportResult:
        store = open_store(db, create=False)
        with console.status("exporting (ONNX and TorchScript, each checked against PyTorch) ..."):
            return export_trial(
                store,
                out,
                search=search,
                trial=trial,
                rank=rank,
                max_latency_ms=max_latency_ms,
                overwrite=force,
            )

    try:
        result = _store_call(run)
    except (ExportError, BundleError) as err:
        raise _fail(str(err)) from None
    source, val = result.metrics["source"], result.metrics.get("val", {})
    reused = source.get("trained_by")
    console.print(
        f"exported trial {source['trial']} of {source['search']} ({result.arch_id}, val mIoU "
        f"{_cell(val.get('miou'), 'miou')})"
        + (f", trained as trial {reused['trial']} of {reused['search']}" if reused else "")
        + f" to {out}",
        markup=False,
    )
    _print_bundle_next(result, data_hint=True)


def _print_bundle_next(result: ExportResult, data_hint: bool) -> None:
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


@app.command("predict")
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
    from nasfcn.bundle import BundleError, load_bundle
    from nasfcn.predict import PredictError, predict_files
    from nasfcn.train import select_device

    try:
        loaded = load_bundle(bundle, select_device(device))
        results = predict_files(loaded, images, out, overlay=overlay, native=native)
    except (BundleError, PredictError, ValueError) as err:
        raise _fail(str(err)) from None
    for result in results:
        top = ", ".join(
            f"{name} {share:.0%}"
            for name, share in sorted(result.class_fractions.items(), key=lambda kv: -kv[1])[:3]
        )
        written = f"{result.mask}" + (f" + {result.overlay.name}" if result.overlay else "")
        console.print(f"{result.image} ({result.size[0]}x{result.size[1]}): {written}  [{top}]", markup=False)


@app.command("finetune")
def finetune(
    bundle: Annotated[Path, typer.Option(help="The bundle to start from (folder or .zip).")],
    data: Annotated[str, typer.Option(help="New data: shapes, digits, voc:PATH or folder:PATH.")],
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

    from nasfcn.bundle import BundleError, RecipeError, StageRecipe, load_recipe
    from nasfcn.data import DatasetError
    from nasfcn.export import ExportError
    from nasfcn.finetune import FinetuneError, finetune_bundle
    from nasfcn.registry import UnknownChoiceError
    from nasfcn.train import TrainingDiverged

    bars = ExitStack()
    current: dict[str, tuple[Progress, TaskID]] = {}

    def on_stage(name: str, stage: StageRecipe, trainable: int) -> None:
        bars.close()
        console.print(
            f"stage {name}: {stage.epochs} epochs at lr {stage.lr:g}, {trainable:,} parameters train"
        )
        current["bar"] = bars.enter_context(_epoch_progress(stage.epochs))

    def show(name: str, epoch: EpochResult) -> None:
        _advance(*current["bar"], epoch)

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
        raise _fail(f"training diverged: {err}", code=1) from None
    except (
        BundleError,
        RecipeError,
        DatasetError,
        FinetuneError,
        UnknownChoiceError,
        ExportError,
        ValueError,
    ) as err:
        raise _fail(str(err)) from None
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
    if result.replaced:
        console.print(
            f"new for {result.data.num_classes} classes: {', '.join(result.replaced)}", markup=False
        )
    console.print(f"bundle: {exported.path}", markup=False)
    _print_bundle_next(exported, data_hint=False)


@benchmark_app.callback()
def benchmark(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Benchmark name (unique in the database).")] = None,
    archs: Annotated[
        str | None,
        typer.Option(help="Comma list: search:NAME:topK, ref:NAME[:WIDTH], genotype .json files, arch_ids."),
    ] = None,
    data: Annotated[
        str, typer.Option(help="Comma list of datasets (shapes, digits, voc:, folder:).")
    ] = "shapes",
    seeds: Annotated[int, typer.Option(min=1, help="Runs per architecture and dataset (seeds 0..N-1).")] = 3,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per run (no early stopping).")] = 5,
    db: DbOption = None,
    ray_address: Annotated[str | None, typer.Option(help="Existing Ray cluster (ray start --head).")] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs (and torch threads) per run.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per run; 0.25 packs 4 runs per GPU.")] = 0.0,
    concurrency: Annotated[int | None, typer.Option(help="Runs at once (default: what fits).")] = None,
    image_size: Annotated[int, typer.Option(min=8, help="Training image side.")] = 64,
    train_samples: Annotated[int, typer.Option(min=1, help="Generated train images (synthetic data).")] = 512,
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
    from nasfcn.benchmark import BenchmarkConfig, BenchmarkError, run_benchmark
    from nasfcn.data import DatasetError
    from nasfcn.search import SearchConfigError, SearchStoppedError
    from nasfcn.store import DatabaseURLError, StoreError, mask_text
    from nasfcn.train import TrainRecipe

    if name is None or (archs is None and not resume):
        raise _fail("give --name and --archs (or --name with --resume); see nasfcn benchmark --help")
    try:
        config = BenchmarkConfig(
            name=name,
            archs=_comma_list(archs or ""),
            datasets=_comma_list(data),
            seeds=seeds,
            epochs=epochs,
            db=db,
            ray_address=ray_address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            concurrency=concurrency,
            image_size=image_size,
            train_samples=train_samples,
            recipe=TrainRecipe(epochs=epochs, lr=lr, batch_size=batch_size),
            ref_width=ref_width,
            storage_path=storage_path,
            resume=resume,
            cache=not no_cache,
            explicit=_typed(ctx, BENCHMARK_FIELDS),
        )
        summary = run_benchmark(config, console=console)
    except SearchStoppedError as err:
        raise _fail(mask_text(str(err)), EXIT_ENVIRONMENT) from None
    except (BenchmarkError, SearchConfigError, DatasetError, StoreError, DatabaseURLError) as err:
        raise _fail(mask_text(str(err))) from None
    console.print(
        f"\n[bold]{summary.name}[/bold] {'interrupted' if summary.interrupted else 'finished'} in "
        f"{summary.seconds:.0f} s: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(summary.counts.items()))
    )
    _print_benchmark(summary.results)
    console.print(f"next: nasfcn benchmark report {summary.name} --out {summary.name}.md", markup=False)
    if summary.interrupted:
        raise typer.Exit(130)


def _print_benchmark(results) -> None:
    import math

    from rich.text import Text

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
    from nasfcn.benchmark import BenchmarkError, write_report

    def run() -> Path:
        try:
            return write_report(_results_store(db), name, out)
        except BenchmarkError as err:
            raise _fail(str(err)) from None

    path = _store_call(run)
    console.print(f"report: {path.resolve()}", markup=False)


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """nasfcn's own warnings (e.g. a bundle without a manifest) as one line on stderr."""
    if category.__module__.split(".")[0] == "nasfcn":
        err_console.print(f"warning: {message}", markup=False, highlight=False)
    else:
        _python_show_warning(message, category, *args, **kwargs)  # type: ignore[arg-type]


_python_show_warning = warnings.showwarning


def main() -> None:
    warnings.showwarning = _show_warning
    app()


if __name__ == "__main__":
    main()
