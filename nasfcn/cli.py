"""The ``nasfcn`` command line: thin commands that parse, call the library and render."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from nasfcn import __version__
from nasfcn.genotype import Genotype
from nasfcn.space import INTRINSIC_TEXT, SearchSpace, SpaceError, load_space

# Piped output (logs, CI, tests) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160
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
    help="Inspect search spaces: validate, show, sample.\n\n"
    "Example: nasfcn spaces sample search_spaces/fcn_tiny.yaml --n 5 --seed 0",
    no_args_is_help=True,
)
app.add_typer(spaces_app, name="spaces")

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
        console.print(f"{path}: ok ({space.name}, {_size(space.size())} architectures)")
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
        table.add_row(
            path, knob.describe(), " and ".join(conditions), style=None if knob.searched else "dim"
        )
    console.print(table)
    console.print(
        f"input: {space.in_channels} channels, min size {space.min_size}; searched knobs: "
        f"{len(space.searched)}; distinct architectures: {_size(space.size())}; "
        f"with training knobs: {_size(space.size(include_train=True))}"
    )


@spaces_app.command("sample")
def spaces_sample(
    file: Annotated[Path, typer.Argument(help="A space file (YAML).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many architectures to draw.")] = 5,
    seed: Annotated[int, typer.Option(help="First seed; architecture i uses seed + i.")] = 0,
    size: Annotated[
        int | None,
        typer.Option(
            help="Input height and width for the cost (default: 64 or the space's min size)."
        ),
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


def _attention(genotype: Genotype) -> str:
    att = genotype.attention
    return "none" if att.type == "none" else f"{att.type}@{att.where}"


def _size(count: float) -> str:
    return "infinite (float ranges)" if math.isinf(count) else f"{int(count):,}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
