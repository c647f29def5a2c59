"""``nasfcn spaces``: validate, show and sample search spaces; the reference architectures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nasfcn.cli._console import EXIT_BAD_INPUT, console, err_console, fail
from nasfcn.genotype import Genotype
from nasfcn.space import INTRINSIC_TEXT, SearchSpace, SpaceError, load_space, size_text

spaces_app = typer.Typer(
    help="Inspect search spaces: validate, show, sample, and the reference architectures (refs).\n\n"
    "Example: nasfcn spaces sample search_spaces/fcn_tiny.yaml --n 5 --seed 0",
    no_args_is_help=True,
)


def load(path: Path) -> SearchSpace:
    """The space in ``path``; a bad file is one refusal naming the field (exit 2)."""
    try:
        return load_space(path)
    except SpaceError as err:
        raise fail(str(err)) from None


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
    space = load(file)
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

    space = load(file)
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
        raise fail("give --space or --width, not both")
    chosen = width_for_space(load(space)) if space is not None else (width or DEFAULT_WIDTH)
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


def _attention(genotype: Genotype) -> str:
    att = genotype.attention
    return "none" if att.type == "none" else f"{att.type}@{att.where}"
