"""The ``nasfcn`` command line: thin commands that parse, call the library and render."""

from __future__ import annotations

import math
import os
import sys
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
    from nasfcn.train import EpochResult
from nasfcn.space import INTRINSIC_TEXT, SearchSpace, SpaceError, load_space, size_text

# Piped output (logs, CI, tests) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

app = typer.Typer(
    name="nasfcn",
    help="Architecture search and benchmarking for fully convolutional segmentation networks.",
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
            progress.update(
                task,
                advance=1,
                loss=f"{epoch.train_loss:.3f}",
                miou=f"{epoch.val.miou:.3f}",
                speed=f"{epoch.images_per_s:.0f}",
            )

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


@app.command("search")
def search(
    space: Annotated[Path, typer.Option(help="Search space YAML.")] = Path("search_spaces/fcn_tiny.yaml"),
    data: Annotated[str, typer.Option(help="Dataset: shapes, digits, voc:PATH or folder:PATH.")] = "shapes",
    name: Annotated[str | None, typer.Option(help="Search name (default: <space>-<time>).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Candidates to evaluate.")] = 12,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per candidate (ASHA may stop earlier).")] = 3,
    strategy: Annotated[str, typer.Option(help="random, tpe, nsga2 or grid.")] = "tpe",
    scheduler: Annotated[str, typer.Option(help="asha (early stopping) or fifo.")] = "asha",
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
    from nasfcn.search import SearchConfig, SearchConfigError, run_search
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
            objectives=tuple(o.strip() for o in objectives.split(",") if o.strip()),
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
        )
        summary = run_search(config, console=console)
    except SpaceError as err:
        raise _fail(str(err)) from None
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


def _references(every: bool, names: str | None) -> tuple[str, ...]:
    from nasfcn.references import REFERENCES

    if names:
        return tuple(n.strip() for n in names.split(",") if n.strip())
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
