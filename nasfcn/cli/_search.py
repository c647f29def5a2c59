"""``nasfcn search``: options -> SearchConfig -> run_search, then the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from nasfcn.catalogue import PROXIES, SCHEDULERS, STRATEGIES, one_of
from nasfcn.cli._console import EXIT_ENVIRONMENT, console, fail
from nasfcn.cli._options import (
    AmpOption,
    ChannelsLastOption,
    DataOption,
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


def strategy_help() -> str:
    """``--strategy``'s help: the catalogued strategies, as registered when it is read."""
    return f"{one_of(STRATEGIES.names())}."


class SearchCommand(TyperCommand):
    """``nasfcn search``, whose help lists the strategies registered when it is shown.

    A strategy registered in ``nasfcn.search`` (or by a plugin before the command runs) is
    listed, though the help text was written when the CLI was imported.
    """

    def format_help(self, ctx: Any, formatter: Any) -> Any:  # typer's own copy of click's types
        import nasfcn.search  # noqa: F401 - runs the strategies' registrations

        for param in self.params:
            if param.name == "strategy":
                param.help = strategy_help()  # type: ignore[attr-defined]  # an Option's
        return super().format_help(ctx, formatter)


_STRATEGY_HELP = strategy_help()
#: ``nasfcn search``'s default --proxies (nasfcn.search.DEFAULT_SEARCH_PROXIES, read without importing it).
_DEFAULT_PROXIES = "none"
_SCHEDULER_HELP = f"{one_of(SCHEDULERS.get(name).label for name in SCHEDULERS)}."


# long: the signature is the command's option table (one typed option a line, as Typer reads it)
# and the body passes each option to its SearchConfig field; split, both would be read twice.
def search(
    ctx: typer.Context,
    space: Annotated[Path, typer.Option(help="Search space YAML.")] = Path("search_spaces/fcn_cpu.yaml"),
    data: DataOption = "shapes",
    name: Annotated[str | None, typer.Option(help="Search name (default: <space>-<time>).")] = None,
    trials: Annotated[int, typer.Option(min=1, help="Candidates to evaluate.")] = 12,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per candidate (ASHA may stop earlier).")] = 3,
    strategy: Annotated[str, typer.Option(help=_STRATEGY_HELP)] = "tpe",
    scheduler: Annotated[str, typer.Option(help=_SCHEDULER_HELP)] = "asha",
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
    time_budget: Annotated[
        float | None,
        typer.Option(
            help="Minutes for the whole search: trials, epochs and ASHA's rungs are planned from the "
            "first epochs' cost (--trials/--epochs, when given, cap the plan)."
        ),
    ] = None,
    fidelity: Annotated[
        str,
        typer.Option(
            help="'epochs': every epoch at full size. resolution=R,subset=F (each in (0, 1]): the grace "
            "period's epochs train at R x the image side on a seeded share F of the train images, then "
            "full size; ASHA counts full-epoch equivalents ((R^2) x F per reduced epoch)."
        ),
    ] = "epochs",
    confirm_top: Annotated[
        int | None,
        typer.Option(
            help="When the search proper ends, train its best N networks (by val mIoU) again with "
            "--confirm-seeds extra seeds, then rank and export by their mean over seeds. Default: 3 "
            "with --time-budget when the plan leaves the time; none with --trials unless given; 0: none."
        ),
    ] = None,
    confirm_seeds: Annotated[
        int | None, typer.Option(help="Extra seeds per confirmed network (default 2; see --confirm-top).")
    ] = None,
    final_share: Annotated[
        float | None,
        typer.Option(
            help="With --time-budget: the share of the budget kept for final runs, in which the search's "
            "best networks (one per worker) train again from scratch for as many epochs as fill it; "
            "export then picks the best of them. Default: 0 (none) below 15 minutes, 0.5 from 15 "
            "minutes up; on shapes half the budget kept lowered what the search exported at 5 "
            "minutes and raised it at 15 (benchmarks/RESULTS.md, 'Final runs'). A resume keeps the "
            "search's share."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the optimizer, the data and training.")] = 0,
    ray_address: RayAddressOption = None,
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
    image_size: ImageSizeOption = 64,
    train_samples: TrainSamplesOption = 512,
    scale_jitter: ScaleJitterOption = "off",
    lr: Annotated[float, typer.Option(help="Learning rate unless the space searches it.")] = 3e-3,
    batch_size: Annotated[int, typer.Option(min=1, help="Batch size unless the space searches it.")] = 16,
    storage_path: Annotated[
        str | None, typer.Option(help="Checkpoints and logs (default runs/<name>); shared on a cluster.")
    ] = None,
    amp: AmpOption = True,
    channels_last: ChannelsLastOption = True,
    proxies: Annotated[
        str,
        typer.Option(
            help="Zero-cost proxies scored on each trial's network at its cost step, stored per "
            f"architecture (comma list of {one_of(PROXIES.names())}; or none)."
        ),
    ] = _DEFAULT_PROXIES,
) -> None:
    """Search architectures on Ray Tune; every trial is recorded in the database as it runs.

    Examples:

      nasfcn search --space search_spaces/fcn_tiny.yaml --data shapes

      nasfcn search --space search_spaces/fcn_small.yaml --data folder:my_data --trials 64 --epochs 10
      --strategy nsga2 --objectives miou,latency_ms --max-latency-ms 20

      nasfcn search --name my-search --resume
    """
    from nasfcn.search import FINAL_SHARE, SearchConfig, SearchStoppedError, run_search
    from nasfcn.store import mask_text
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
            objectives=comma_list(objectives),
            max_params=max_params,
            max_flops=max_flops,
            max_latency_ms=max_latency_ms,
            time_budget_min=time_budget,
            fidelity=fidelity,
            confirm_top=confirm_top,
            confirm_seeds=confirm_seeds,
            final_share=FINAL_SHARE if final_share is None else final_share,
            seed=seed,
            execution=execution_from(ctx.params),
            references=_references(with_references, references),
            proxies=_proxies(proxies),
            image_size=image_size,
            train_samples=train_samples,
            scale_range=scale_range(scale_jitter),
            recipe=TrainRecipe(
                epochs=epochs, lr=lr, batch_size=batch_size, amp=amp, channels_last=channels_last
            ),
            explicit=typed(ctx, SEARCH_FIELDS),
        )
        summary = run_search(config, console=console)
    except SearchStoppedError as err:
        raise fail(mask_text(str(err)), EXIT_ENVIRONMENT) from None
    print_summary(summary)
    if summary.budget is not None:
        console.print(summary.budget, markup=False)
    _test_confirmed(config, summary.name)
    if summary.best_arch_id is not None:
        console.print(
            f"best: trial {summary.best_trial}, arch {summary.best_arch_id}, val mIoU {summary.best_miou:.3f}"
        )
    console.print(f"next: nasfcn trials --search {summary.name}")
    exit_if_interrupted(summary)


#: Command-line parameters whose config field has another name (a resume compares typed options).
SEARCH_FIELDS = {
    "time_budget": "time_budget_min",
    "scale_jitter": "scale_range",
    "no_cache": "execution.cache",
    "cpus_per_trial": "execution.cpus_per_trial",
    "gpus_per_trial": "execution.gpus_per_trial",
    "concurrency": "execution.concurrency",
    "ray_address": "execution.ray_address",
    "storage_path": "execution.storage_path",
    "with_references": "references",
    "lr": "recipe.lr",
    "batch_size": "recipe.batch_size",
    "amp": "recipe.amp",
    "channels_last": "recipe.channels_last",
}


def _test_confirmed(config: Any, name: str) -> None:
    """The confirmed networks' held-out test figures, once each (``nasfcn.export.test_confirmed``)."""
    from nasfcn.export import test_confirmed
    from nasfcn.store import open_store

    for line in test_confirmed(open_store(config.execution.db), name):
        console.print(line, markup=False)


def _proxies(text: str) -> tuple[str, ...]:
    """``--proxies a,b`` -> (a, b); ``none`` -> (); an unknown name is one line and exit code 2."""
    names = comma_list(text)
    if [n.lower() for n in names] == ["none"]:
        return ()
    for name in names:
        if name not in PROXIES:
            raise fail(
                f"--proxies: unknown zero-cost proxy {name!r}; valid: {', '.join(PROXIES.names())} "
                "(comma-separated), or none"
            )
    return names


def _references(every: bool, names: str | None) -> tuple[str, ...]:
    from nasfcn.references import REFERENCES

    if names:
        return comma_list(names)
    return REFERENCES.names() if every else ()
