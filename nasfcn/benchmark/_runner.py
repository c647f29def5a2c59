"""Run a benchmark: every architecture x dataset x seed through the search's Ray Tune runner.

No optimizer and no early stopping: a fixed plan of runs (``PlanSearch``) under FIFO.
Runs land in the same database as searches (a search row of kind ``benchmark``), so a
benchmark resumes like a search: finished runs are kept and never repeated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from nasfcn.benchmark._archs import BenchArch, resolve_archs, space_file, space_source
from nasfcn.benchmark._config import (
    BENCHMARK_RESUME,
    COMMANDS,
    BenchmarkConfig,
    BenchmarkError,
    BenchmarkSummary,
)
from nasfcn.data import DataConfig, DatasetBundle, absolute_spec, load_dataset
from nasfcn.genotype import Genotype
from nasfcn.results import benchmark_results
from nasfcn.search import (
    PlannedRun,
    PlanSearch,
    Registered,
    Registration,
    RunLifecycle,
    RunLookup,
    Trials,
    TrialSettings,
    conflict_message,
    given_fields,
    merge_stored,
    shippable,
)
from nasfcn.space import load_space
from nasfcn.store import (
    Store,
    benchmark_runs_frame,
    get_search,
    next_trial_number,
    open_store,
    reusable_result,
)

log = logging.getLogger("nasfcn.benchmark")


@dataclass(frozen=True)
class _Prepared:
    """A benchmark ready to register: its final config, architectures, data and recipe."""

    config: BenchmarkConfig
    archs: list[BenchArch]
    bundles: dict[str, DatasetBundle]  # by dataset spec
    data_options: dict[str, Any]
    recipe: dict[str, Any]
    changes: tuple[str, ...]  # adjustable settings a resume was given with new values


def run_benchmark(config: BenchmarkConfig, console: Console | None = None) -> BenchmarkSummary:
    """Run (or resume) a benchmark; every run lands in the database as it happens."""
    started = time.monotonic()
    console = console or Console(quiet=config.execution.quiet)
    store = open_store(config.execution.db)
    prepared = _prepare(config, store, console)
    config = prepared.config
    command = COMMANDS[config.kind]
    with RunLifecycle(config.execution, command, store) as run:
        registered = run.register(_registration(prepared))
        plan = _plan(prepared.archs, config, registered.finished)
        folder = config.run_folder()
        with run.logging(folder, f"{config.kind}.log"):
            _announce(prepared, registered, len(plan), console)
            interrupted = bool(plan) and run.run_trials(
                registered.search_id,
                config.name,
                folder,
                lambda: _trials(prepared, store, registered, plan),
                console,
            )
            run.settle(registered.search_id, interrupted)
    return _summary(prepared, store, registered.search_id, folder, started, interrupted)


def _prepare(config: BenchmarkConfig, store: Store, console: Console) -> _Prepared:
    """Resume the stored plan, resolve the architectures and check every dataset, before writing."""
    stored_archs = None
    changes: tuple[str, ...] = ()
    if config.execution.resume:
        config, stored_archs, changes = _resumed(config, store)
    archs = stored_archs or resolve_archs(config.archs, store, config.ref_width)
    config = replace(config, datasets=tuple(absolute_spec(d) for d in config.datasets))
    data_options: dict[str, Any] = {
        "image_size": config.image_size,
        "train_samples": config.train_samples,
        "val_samples": config.val_samples,
        "seed": 0,  # the data are the same for every seed: seeds vary the training only
        "scale_range": config.scale_range,
    }
    bundles = {}
    for spec in config.datasets:
        with console.status(f"checking dataset {spec} ..."):
            bundles[spec] = load_dataset(spec, DataConfig(**data_options))
    recipe = replace(config.recipe, epochs=config.epochs, seed=0).to_dict()
    return _Prepared(config, archs, bundles, data_options, recipe, changes)


def _registration(prepared: _Prepared) -> Registration:
    """The benchmark's row: its config with the resolved plan, so a resume runs the same networks."""
    config = prepared.config
    stored = {
        **config.as_dict(),
        "plan_archs": [
            {"label": a.label, "genotype": a.genotype.to_json(), "reference": a.reference}
            for a in prepared.archs
        ],
        **_space_fields(config),
        "class_names": {spec: list(bundle.class_names) for spec, bundle in prepared.bundles.items()},
    }
    space_name, space_yaml = _space_row(config) if not config.execution.resume else (None, None)
    return Registration(
        config.name,
        ",".join(config.datasets),
        stored,
        prepared.recipe,
        kind=config.kind,
        space_name=space_name,
        space_yaml=space_yaml,
    )


def _announce(prepared: _Prepared, registered: Registered, to_run: int, console: Console) -> None:
    config, archs = prepared.config, prepared.archs
    total = len(archs) * len(config.datasets) * config.seeds
    console.print(
        f"[bold]{config.kind} {config.name}[/bold]: {len(archs)} architectures x {len(config.datasets)} "
        f"datasets x {config.seeds} seeds = {total} runs of {config.epochs} epochs; "
        f"{len(registered.finished)} finished before, {to_run} to run"
    )
    if registered.interrupted:
        console.print(f"resuming: {registered.interrupted} interrupted runs are run again")
    if prepared.changes:
        console.print(f"changed for this and later resumes: {', '.join(prepared.changes)}", markup=False)


def _trials(prepared: _Prepared, store: Store, registered: Registered, plan: list[PlannedRun]) -> Trials:
    """The plan's searcher under FIFO (no early stopping), once Ray is up."""
    from ray.tune.schedulers import FIFOScheduler

    config, execution = prepared.config, prepared.config.execution
    settings = TrialSettings(
        data=config.datasets[0],
        data_options=prepared.data_options,
        recipe=prepared.recipe,
        latency_input=config.image_size,
        max_params=None,
        max_flops=None,
        max_latency_ms=None,
        device=execution.trial_device(),
        threads=execution.threads,
    )
    first_number = next_trial_number(store, registered.search_id)
    data = DataConfig(**prepared.data_options).key()
    lookup = _lookup(store, data, registered.search_id) if execution.cache else None
    return Trials(
        searcher=PlanSearch(plan, "val_miou", prepared.recipe, first_number, lookup),
        scheduler=FIFOScheduler(),
        settings=settings,
        num_samples=len(plan),
        epochs=config.epochs,
        finished_before=len(registered.finished),
        datasets=shippable(prepared.bundles),
        noun="runs",
    )


def _summary(
    prepared: _Prepared, store: Store, search_id: int, folder: Path, started: float, interrupted: bool
) -> BenchmarkSummary:
    config = prepared.config
    runs = benchmark_runs_frame(store, config.name)
    return BenchmarkSummary(
        name=config.name,
        search_id=search_id,
        database=store.masked_url,
        run_folder=folder,
        counts={str(k): int(v) for k, v in runs["status"].value_counts().items()},
        results=benchmark_results(runs, {a.genotype.arch_id: a.label for a in prepared.archs}),
        seconds=time.monotonic() - started,
        interrupted=interrupted,
    )


def _plan(archs: list[BenchArch], config: BenchmarkConfig, finished: list[dict]) -> list[PlannedRun]:
    done = {(row["trial_key"], row["dataset"], row["seed"]) for row in finished}
    return [
        PlannedRun(arch.genotype, data, seed, arch.reference)
        for data in config.datasets
        for seed in range(config.seeds)
        for arch in archs
        if (arch.genotype.trial_key, data, seed) not in done
    ]


def _space_row(config: BenchmarkConfig) -> tuple[str | None, str | None]:
    """The space's name and YAML for the search row when the benchmark trains one space (a table)."""
    source = space_source(config.archs)
    if source is None:
        return None, None
    space = load_space(space_file(source.space))
    return space.name, space.text


def _space_fields(config: BenchmarkConfig) -> dict[str, Any]:
    """A table's config also says which space it trains and how it was sampled (from the stored
    ``archs`` on a resume, so every resume records the same)."""
    source = space_source(config.archs)
    if source is None:
        return {}
    return {"space": source.space, "sample": source.sample, "sample_seed": source.seed}


def _lookup(store: Store, data_config: dict[str, Any], search_id: int) -> RunLookup:
    """Reusable results trained on ``data_config`` (``DataConfig.key``): all of this benchmark's runs."""

    def lookup(genotype: Genotype, data: str, recipe: dict[str, Any]) -> dict[str, Any] | None:
        found = reusable_result(store, genotype, data, recipe, data_config, search_id)
        if found is not None:
            log.info("reusing trial %s for %s on %s", found["trial_id"], genotype.arch_id, data)
        return found

    return lookup


def _resumed(
    config: BenchmarkConfig, store: Store
) -> tuple[BenchmarkConfig, list[BenchArch] | None, tuple[str, ...]]:
    """A resume runs the stored plan: the same networks, datasets, seeds, epochs and recipe.

    A plan setting given with another value is refused; where to run (Ray address,
    resources, storage) may change and is recorded (``nasfcn.search._resume``). Returns the
    config, the stored architectures and the changed settings.
    """
    stored = get_search(store, config.name)
    if stored is None or stored["kind"] != config.kind:
        raise BenchmarkError(f"--resume: no {config.kind} named {config.name!r} in {store.masked_url}")
    saved = stored["config"]
    normalize = {"datasets": lambda specs: tuple(absolute_spec(d) for d in specs)}
    merged = merge_stored(config, saved, BENCHMARK_RESUME, given_fields(config), normalize)
    if merged.conflicts:
        raise BenchmarkError(conflict_message(merged.conflicts, config.kind))
    archs = [
        BenchArch(entry["label"], Genotype.from_json(entry["genotype"]), entry.get("reference"))
        for entry in saved.get("plan_archs", [])
    ]
    return replace(config, **merged.values), archs or None, merged.changes
