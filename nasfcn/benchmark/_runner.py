"""Run a benchmark: every architecture x dataset x seed through the search's Ray Tune runner.

No optimizer and no early stopping: a fixed plan of runs (``PlanSearch``) under FIFO.
Runs land in the same database as searches (a search row of kind ``benchmark``), so a
benchmark resumes like a search: finished runs are kept and never repeated.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import replace
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
from nasfcn.data import DataConfig, absolute_spec, load_dataset
from nasfcn.genotype import Genotype
from nasfcn.results import benchmark_results
from nasfcn.search._driver import (
    TrialRun,
    log_to_file,
    run_trials,
    settled_on_error,
    shippable,
    start_ray,
    trial_device,
)
from nasfcn.search._lease import register_under_lease
from nasfcn.search._resume import conflict_message, given_fields, merge_stored
from nasfcn.search._searcher import PlannedRun, PlanSearch
from nasfcn.search._trainable import TrialSettings
from nasfcn.space import load_space
from nasfcn.store import (
    Store,
    benchmark_runs_frame,
    create_search,
    finished_trials,
    get_search,
    interrupt_unfinished,
    next_trial_number,
    open_store,
    reusable_result,
    set_search_status,
)

log = logging.getLogger("nasfcn.benchmark")


def run_benchmark(config: BenchmarkConfig, console: Console | None = None) -> BenchmarkSummary:
    """Run (or resume) a benchmark; every run lands in the database as it happens."""
    with ExitStack() as held:  # the benchmark's lease, once it is registered
        return _run_benchmark(config, console, held)


def _run_benchmark(config: BenchmarkConfig, console: Console | None, held: ExitStack) -> BenchmarkSummary:
    started = time.monotonic()
    console = console or Console(quiet=config.quiet)
    store = open_store(config.db)
    stored_archs = None
    changes: tuple[str, ...] = ()
    if config.resume:
        config, stored_archs, changes = _resumed(config, store)
    archs = stored_archs or resolve_archs(config.archs, store, config.ref_width)
    config = replace(config, datasets=tuple(absolute_spec(d) for d in config.datasets))
    data_options: dict[str, Any] = {
        "image_size": config.image_size,
        "train_samples": config.train_samples,
        "val_samples": config.val_samples,
        "seed": 0,  # the data are the same for every seed: seeds vary the training only
    }
    bundles = {}
    for spec in config.datasets:
        with console.status(f"checking dataset {spec} ..."):
            bundles[spec] = load_dataset(spec, DataConfig(**data_options))
    class_names = {spec: list(bundle.class_names) for spec, bundle in bundles.items()}
    recipe = replace(config.recipe, epochs=config.epochs, seed=0)
    recipe_dict = recipe.to_dict()
    space_name, space_yaml = _space_row(config) if not config.resume else (None, None)
    sid = register_under_lease(  # one live driver per benchmark, as for searches
        held,
        store,
        config.name,
        config.resume,
        lambda: create_search(
            store,
            config.name,
            ",".join(config.datasets),
            space_name=space_name,
            space_yaml=space_yaml,
            config={
                **config.as_dict(),
                **_space_fields(config),
                "plan_archs": [
                    {"label": a.label, "genotype": a.genotype.to_json(), "reference": a.reference}
                    for a in archs
                ],
                "class_names": class_names,
            },
            recipe=recipe_dict,
            kind=config.kind,
            resume=config.resume,
        ),
    )
    interrupted = interrupt_unfinished(store, sid) if config.resume else 0
    finished = finished_trials(store, sid)
    plan = _plan(archs, config, finished)
    folder = config.run_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with log_to_file(folder / "benchmark.log"):
        total = len(archs) * len(config.datasets) * config.seeds
        console.print(
            f"[bold]{config.kind} {config.name}[/bold]: {len(archs)} architectures x {len(config.datasets)} "
            f"datasets x {config.seeds} seeds = {total} runs of {config.epochs} epochs; "
            f"{len(finished)} finished before, {len(plan)} to run"
        )
        if interrupted:
            console.print(f"resuming: {interrupted} interrupted runs are run again")
        if changes:
            console.print(f"changed for this and later resumes: {', '.join(changes)}", markup=False)
        was_interrupted = False
        with settled_on_error(store, sid, f"{COMMANDS[config.kind]} --resume --name {config.name}"):
            if plan:
                start_ray(config.ray_address, folder)
                lookup = _lookup(store) if config.cache else None
                settings = TrialSettings(
                    data=config.datasets[0],
                    data_options=data_options,
                    recipe=recipe_dict,
                    latency_input=config.image_size,
                    max_params=None,
                    max_flops=None,
                    max_latency_ms=None,
                    device=trial_device(config.gpus_per_trial, config.device),
                    threads=max(1, int(config.cpus_per_trial)),
                )
                from ray.tune.schedulers import FIFOScheduler

                was_interrupted = run_trials(
                    TrialRun(
                        store=store,
                        search_id=sid,
                        searcher=PlanSearch(
                            plan, "val_miou", recipe_dict, next_trial_number(store, sid), lookup
                        ),
                        scheduler=FIFOScheduler(),
                        settings=settings,
                        resources={"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial},
                        num_samples=len(plan),
                        concurrency=config.default_concurrency(),
                        storage_path=config.checkpoint_storage(),
                        epochs=config.epochs,
                        finished_before=len(finished),
                        datasets=shippable(bundles),
                        noun="runs",
                    ),
                    console,
                )
        interrupt_unfinished(store, sid)
        set_search_status(store, sid, "interrupted" if was_interrupted else "completed")
    runs = benchmark_runs_frame(store, config.name)
    return BenchmarkSummary(
        name=config.name,
        search_id=sid,
        database=store.masked_url,
        run_folder=folder,
        counts={str(k): int(v) for k, v in runs["status"].value_counts().items()},
        results=benchmark_results(runs, {a.genotype.arch_id: a.label for a in archs}),
        seconds=time.monotonic() - started,
        interrupted=was_interrupted,
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


def _lookup(store: Store):
    def lookup(genotype: Genotype, data: str, recipe: dict) -> dict | None:
        found = reusable_result(store, genotype, data, recipe)
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
