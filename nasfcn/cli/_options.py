"""What several commands share: option declarations, how list options are read, the run summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from nasfcn.catalogue import DATASETS, one_of
from nasfcn.cli._console import EXIT_INTERRUPTED, console

if TYPE_CHECKING:
    from nasfcn.search import Execution

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="NASFCN_DB",
        help="SQLAlchemy URL of the results database (default sqlite:///nasfcn.db).",
        show_default=False,
    ),
]
#: Every catalogued dataset as a user writes it (e.g. shapes, photos, voc:PATH, folder:PATH).
DATA_SPECS = one_of(DATASETS.get(name).spec for name in DATASETS)
DataOption = Annotated[str, typer.Option(help=f"Dataset: {DATA_SPECS}.")]
RayAddressOption = Annotated[str | None, typer.Option(help="Existing Ray cluster (ray start --head).")]
ImageSizeOption = Annotated[int, typer.Option(min=8, help="Training image side.")]
TrainSamplesOption = Annotated[int, typer.Option(min=1, help="Generated train images (synthetic data).")]
ScaleJitterOption = Annotated[
    str,
    typer.Option(
        "--scale-jitter",
        help="Train-time random rescale: off, or LOW,HIGH (e.g. 0.75,1.25). Off by default: on "
        "short runs it cost 25-28 points of val mIoU (benchmarks/RESULTS.md).",
    ),
]
AmpOption = Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision on CUDA (not on CPU).")]
ChannelsLastOption = Annotated[
    bool, typer.Option("--channels-last/--no-channels-last", help="Channels-last memory format on CUDA.")
]

#: Parameters that are not settings of the run itself.
_NOT_SETTINGS = ("name", "db", "resume")


def typed(ctx: typer.Context, fields: dict[str, str]) -> frozenset[str]:
    """The config fields of the options typed on the command line (not defaults, not $NASFCN_DB).

    Compared by name: typer carries its own copy of click, whose ParameterSource is another enum.
    """
    given = [
        name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    ]
    return frozenset(fields.get(name, name) for name in given if name not in _NOT_SETTINGS)


def scale_range(text: str) -> tuple[float, float]:
    """``--scale-jitter`` as ``DataConfig.scale_range``; a bad value is a usage error naming it."""
    from nasfcn.data import DatasetError, parse_scale_range

    try:
        return parse_scale_range(text)
    except DatasetError as err:
        raise typer.BadParameter(str(err), param_hint="'--scale-jitter'") from None


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: how list options are written on the command line."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


class RunSummary(Protocol):
    """What a search's and a benchmark's summaries both carry."""

    @property
    def name(self) -> str: ...
    @property
    def interrupted(self) -> bool: ...
    @property
    def seconds(self) -> float: ...
    @property
    def counts(self) -> dict[str, int]: ...


def print_summary(summary: RunSummary) -> None:
    """The first line after a search or a benchmark: finished or interrupted, how long, the counts."""
    console.print(
        f"\n[bold]{summary.name}[/bold] {'interrupted' if summary.interrupted else 'finished'} in "
        f"{summary.seconds:.0f} s: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(summary.counts.items()))
    )


def exit_if_interrupted(summary: RunSummary) -> None:
    """Ctrl-C stopped the run: exit 130 once its summary is printed, as a shell expects."""
    if summary.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def execution_from(params: Mapping[str, Any]) -> Execution:
    """Where and how a run command's trials execute, from its parsed options (``ctx.params``):
    search, benchmark and tabulate name these options alike."""
    from nasfcn.search import Execution

    return Execution(
        db=params["db"],
        ray_address=params["ray_address"],
        cpus_per_trial=params["cpus_per_trial"],
        gpus_per_trial=params["gpus_per_trial"],
        concurrency=params["concurrency"],
        storage_path=params["storage_path"],
        cache=not params["no_cache"],
        resume=params["resume"],
    )
