"""The search driver: Ray Tune + Optuna + ASHA, with the database writer in this process.

The steps every run shares (register under the lease, log file, Ray, settling the
status) are ``RunLifecycle``'s; this module holds what is a search's own: resuming its
stored settings, the space, references and interrupted trials to run again, the
strategy's searcher, the scheduler, and the summary.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console

from nasfcn import catalogue
from nasfcn.confirm import final_runs, search_proper, with_pooled
from nasfcn.genotype import Genotype
from nasfcn.references import for_space
from nasfcn.search._budgeting import (
    BUDGET,
    BudgetStart,
    budget_start,
    budgeted,
    plan_writer,
    planned_config,
    trials_cap,
)
from nasfcn.search._config import SEARCH_RESUME, SearchConfig, SearchConfigError, SearchSummary
from nasfcn.search._deadline import (
    BudgetKeeper,
    BudgetScheduler,
    BudgetSearch,
    overrun_allowance_s,
)
from nasfcn.search._lifecycle import Registered, Registration, RunLifecycle, Trials, shippable
from nasfcn.search._phases import (
    confirm_phase,
    confirm_runs,
    final_phase,
    final_seconds,
    trial_settings,
)
from nasfcn.search._resume import conflict_message, given_fields, merge_stored
from nasfcn.search._scheduler import make_scheduler
from nasfcn.search._searcher import ProxyLookup, Replay, grid_refusal
from nasfcn.search._strategies import SEARCHERS, SearcherInputs
from nasfcn.search._trainable import FIDELITY_ENTRY, data_key
from nasfcn.space import SearchSpace, load_space, size_text
from nasfcn.store import (
    Store,
    epochs_frame,
    get_search,
    interrupted_trials,
    leaderboard_frame,
    mask_text,
    next_trial_number,
    open_store,
    reusable_result,
    stored_proxies,
)

if TYPE_CHECKING:
    from nasfcn.data import DatasetBundle

log = logging.getLogger("nasfcn.search")
_COMMANDS = {"table": "tabulate"}  # the command of each search-row kind, where it is another word


def default_name(space_name: str) -> str:
    """``<space name>-<UTC time>``, the space name cut to a folder name's characters (see name_problem)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", space_name).lstrip(".-")[:80] or "search"
    return f"{safe}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class _Prepared:
    """A search ready to register: its final config (resumed, named), space and data."""

    config: SearchConfig
    space: SearchSpace
    bundle: DatasetBundle
    data_options: dict[str, Any]
    recipe: dict[str, Any]
    changes: tuple[str, ...]  # adjustable settings a resume was given with new values
    budget: BudgetStart | None = None  # --time-budget: what this driver may spend


@dataclass(frozen=True)
class _Plan:
    """What this driver runs: trials left, and the replays that go first."""

    requested: int  # --trials plus the references
    remaining: int
    stopped: list[dict[str, Any]]  # interrupted trials of earlier drivers
    reruns: list[dict[str, Any]]  # those run again now
    references: dict[str, Genotype]
    replays: list[Replay]


def run_search(config: SearchConfig, console: Console | None = None) -> SearchSummary:
    """Run (or resume) a search; every trial lands in the database as it happens."""
    started = time.monotonic()
    console = console or Console(quiet=config.execution.quiet)
    store = open_store(config.execution.db)
    prepared = _prepare(config, store, console)
    config = prepared.config
    name = str(config.name)
    stored_config = {**config.as_dict(), "class_names": list(prepared.bundle.class_names)}
    if config.proxies:  # the minibatch the scores are keyed by: the leaderboard shows those
        stored_config["proxy_input"] = _proxy_input(prepared)
    if prepared.budget is not None:
        stored_config[BUDGET] = prepared.budget.record()
    with RunLifecycle(config.execution, "nasfcn search", store) as run:
        registered = run.register(
            Registration(
                name,
                config.data,
                stored_config,
                prepared.recipe,
                space_name=prepared.space.name,
                space_yaml=prepared.space.text,
            )
        )
        registered = without_reruns(registered)
        plan = _plan(config, prepared.space, store, registered)
        folder = config.execution.run_folder(name)
        with run.logging(folder, "search.log"):
            _announce(prepared, plan, registered, store, folder, console)
            # built even when --trials is reached: a resume still runs the phases left (an
            # interrupted final or confirmation run) in the time the budget has left
            keeper = _keeper(prepared, store, registered.search_id, stored_config, plan, started)
            if (nothing := _nothing_left(prepared, plan, registered)) is not None:
                console.print(nothing, markup=False)
                interrupted = False
            else:
                interrupted = run.run_trials(
                    registered.search_id,
                    name,
                    folder,
                    lambda: _trials(prepared, store, registered, plan, keeper),
                    console,
                )
            if not interrupted:
                interrupted = confirm_phase(run, prepared, store, registered.search_id, keeper, console)
            if not interrupted and keeper is not None:
                interrupted = final_phase(run, prepared, store, registered.search_id, keeper, console)
            left = run.settle(registered.search_id, interrupted)
            if interrupted:
                console.print(
                    f"[yellow]interrupted[/yellow]: {left} running trials marked interrupted; "
                    f"continue with --resume --name {name}"
                )
            summary = _summary(store, registered.search_id, name, folder, started, interrupted=interrupted)
            return replace(summary, budget=_budget_used(keeper, prepared.budget)) if keeper else summary


def without_reruns(registered: Registered) -> Registered:
    """The search proper's finished trials: confirmation and final runs count against neither
    --trials nor the optimizer (``_confirm`` and ``_final`` read them from the database)."""
    return replace(registered, finished=search_proper(registered.finished))


def _nothing_left(prepared: _Prepared, plan: _Plan, registered: Registered) -> str | None:
    """Why this driver has nothing to run (--trials reached, the time budget spent), or None."""
    config, budget = prepared.config, prepared.budget
    if plan.remaining <= 0:
        return (
            f"nothing left to run: {len(registered.finished)} trials already finished, "
            f"{plan.requested} asked for (--trials {config.trials}"
            f"{' plus references' if plan.references else ''}); a larger --trials extends the search"
        )
    if budget is not None and budget.seconds <= 0:
        return (
            f"nothing left to run: the time budget of {config.time_budget_min:g} min is spent "
            f"(earlier runs' trials ran {budget.used_before_s / 60:.1f} min); "
            "a larger --time-budget extends the search"
        )
    return None


def _keeper(
    prepared: _Prepared,
    store: Store,
    sid: int,
    stored_config: dict[str, Any],
    plan: _Plan,
    started: float,
) -> BudgetKeeper | None:
    """The budget's keeper (None without a budget or once it is spent); its clock started with the
    command (Ray's start is spent from it too)."""
    config, budget = prepared.config, prepared.budget
    if budget is None or budget.seconds <= 0:
        return None
    keeper = BudgetKeeper(
        budget.seconds,
        config.execution.default_concurrency(),
        config.epochs,
        trials_cap=trials_cap(config, plan.remaining),
        grace_period=config.grace_period,
        reduction_factor=config.reduction_factor,
        asha=config.scheduler == "asha",
        shape=budget.shape,
        on_plan=plan_writer(store, str(config.name), config.data, stored_config, budget),
        fidelity=config.fidelity_schedule,
        confirm_runs=confirm_runs(config),
        final_s=final_seconds(config, store, sid, budget),
    )
    keeper.began = started
    return keeper


def _budget_used(keeper: BudgetKeeper, budget: BudgetStart | None) -> str:
    """The summary's budget line: how much was used, of what, and the last plan."""
    used = keeper.clock() - keeper.began
    total = budget.total_s if budget else keeper.seconds
    before = budget.used_before_s if budget else 0.0
    spent = used + before
    text = f"time budget: used {spent / 60:.1f} of {total / 60:g} min ({spent / total:.0%})"
    if before:
        text += f", {before / 60:.1f} min by earlier runs"
    if keeper.plan is not None:
        text += f"; last plan {keeper.plan.describe()}; {keeper.started} trials started"
    return text


def _prepare(config: SearchConfig, store: Store, console: Console) -> _Prepared:
    """Resume the stored settings, load the space and check the data, before anything is written."""
    from nasfcn.data import DataConfig, absolute_spec, load_dataset  # torch: not at import (the arena)

    changes: tuple[str, ...] = ()
    budget = budget_start(config, store)  # a resume's: read before its old trials are marked
    if config.execution.resume:
        config, changes = _resumed(config, store)
    else:
        config = budgeted(config, given_fields(config))
    config = replace(config, data=absolute_spec(config.data))  # trials run in folders of their own
    space = load_space(config.space)
    exhaustive = catalogue.STRATEGIES.get(config.strategy).exhaustive
    if exhaustive and (refusal := grid_refusal(space, config.strategy)):
        raise SearchConfigError(refusal)  # counted, not enumerated: before anything is written
    config = replace(config, name=config.name or default_name(space.name))
    data_options: dict[str, Any] = {
        "image_size": config.image_size,
        "train_samples": config.train_samples,
        "val_samples": config.val_samples,
        "seed": config.seed,
        "scale_range": config.scale_range,
    }
    with console.status(f"checking dataset {config.data} ..."):
        bundle = load_dataset(config.data, DataConfig(**data_options))  # fails fast, names the file
    recipe = replace(config.recipe, epochs=config.epochs, seed=config.seed).to_dict()
    if config.fidelity_schedule.reduced:  # part of the cache key: see FIDELITY_ENTRY
        recipe[FIDELITY_ENTRY] = asdict(config.fidelity_schedule)
    return _Prepared(config, space, bundle, data_options, recipe, changes, budget)


def _plan(config: SearchConfig, space: SearchSpace, store: Store, registered: Registered) -> _Plan:
    """References come on top of --trials; interrupted trials run again first, counted against it."""
    finished = registered.finished
    references = for_space(space, config.references) if config.references else {}
    requested = config.trials + len(references)
    remaining = requested - len(finished)
    stopped = search_proper(interrupted_trials(store, registered.search_id))
    reruns = stopped[: max(0, remaining)]
    done_references = {row["reference"] for row in [*finished, *reruns] if row.get("reference")}
    pending_references = {n: g for n, g in references.items() if n not in done_references}
    replays = [Replay.rerun(row) for row in reruns] + Replay.references(pending_references)
    return _Plan(requested, remaining, stopped, reruns, references, replays)


def _announce(
    prepared: _Prepared, plan: _Plan, registered: Registered, store: Store, folder: Path, console: Console
) -> None:
    """The log's first line and the console's header: what this driver is about to do."""
    config, space = prepared.config, prepared.space
    name = str(config.name)
    log.info(
        "search %s (id %s) in %s: %d trials requested, %d finished before, %d interrupted, %d run again",
        name,
        registered.search_id,
        store.masked_url,
        config.trials,
        len(registered.finished),
        registered.interrupted,
        len(plan.reruns),
    )
    console.print(
        f"[bold]search {name}[/bold]: space {space.name} ({size_text(space.size())} architectures), "
        f"data {config.data} ({prepared.bundle.num_classes} classes), {_size(config)}, "
        f"{config.strategy} + {config.scheduler}"
        + (f", plus references {', '.join(plan.references)}" if plan.references else "")
    )
    if config.fidelity_schedule.reduced:
        console.print(f"fidelity: {_fidelity_text(config)}", markup=False)
    console.print(
        f"results: {store.masked_url}   logs: {folder}   "
        f"checkpoints: {mask_text(config.execution.checkpoint_storage(name))}"
    )
    if config.execution.resume:
        console.print(
            _resume_message(len(registered.finished), plan.stopped, plan.reruns, config.trials), markup=False
        )
        if prepared.changes:
            console.print(f"changed for this and later resumes: {', '.join(prepared.changes)}", markup=False)


def _size(config: SearchConfig) -> str:
    """``12 trials x 3 epochs``, or what a time budget plans."""
    if not config.time_budget_min:
        return f"{config.trials} trials x {config.epochs} epochs"
    trials = f"at most {config.trials} trials" if trials_cap(config, config.trials) else "trials"
    return (
        f"time budget {config.time_budget_min:g} min: {trials} and up to {config.epochs} epochs "
        "planned from the first epochs' measured cost"
    )


def _fidelity_text(config: SearchConfig) -> str:
    """The live view's and the header's fidelity: what the first epochs train at, and ASHA's unit."""
    fidelity = config.fidelity_schedule
    text = fidelity.describe(config.image_size)
    if config.scheduler == "asha":
        text += "; ASHA counts full-epoch equivalents"
    return text


def _resumed(config: SearchConfig, store: Store) -> tuple[SearchConfig, tuple[str, ...]]:
    """A resume continues the stored search with every stored setting (``nasfcn.search._resume``).

    Returns the config to run and the adjustable settings given with new values. A refused
    setting raises before anything is written.
    """
    from nasfcn.data import absolute_spec

    if config.name is None:
        raise SearchConfigError("--resume needs the --name of the search to continue")
    stored = get_search(store, config.name)
    if stored is None:
        raise SearchConfigError(f"--resume: no search named {config.name!r} in {store.masked_url}")
    if stored["kind"] != "search":
        raise SearchConfigError(_not_a_search(config.name, stored["kind"]))
    given = given_fields(config)
    saved = {**stored["config"], "data": stored["dataset"]}
    merged = merge_stored(config, saved, SEARCH_RESUME, given, {"data": absolute_spec})
    conflicts = list(merged.conflicts)
    if "space" in given and config.space and stored["space_yaml"] and _other_space(config.space, stored):
        conflicts.insert(0, f"--space {config.space} differs from the stored space {stored['space_name']}")
    if conflicts:
        raise SearchConfigError(conflict_message(conflicts, "search"))
    resumed = replace(config, **merged.values)
    folder = resumed.execution.run_folder(config.name)
    folder.mkdir(parents=True, exist_ok=True)
    space_file = folder / "space.yaml"  # exactly the space the search started with
    space_file.write_text(stored["space_yaml"] or Path(config.space).read_text(), encoding="utf-8")
    return replace(resumed, space=str(space_file)), merged.changes


def _not_a_search(name: str, kind: str) -> str:
    """Why a resume refuses another kind of run, and what continues it (an arena: nothing does)."""
    if kind == "arena":
        return (
            f"--resume: {name!r} is an arena (searches simulated against a table, nothing trained), "
            "not a search: nothing to resume; replay it with nasfcn arena --table TABLE "
            f"--name {name} --replace"
        )
    return f"--resume: {name!r} is a {kind}; continue it with nasfcn {_COMMANDS.get(kind, kind)} --resume"


def _other_space(path: str, stored: dict[str, Any]) -> bool:
    """The space file at ``path`` says something else than the stored one (layout and comments aside)."""
    return yaml.safe_load(load_space(path).text) != yaml.safe_load(stored["space_yaml"])


def _resume_message(
    finished: int, stopped: list[dict[str, Any]], reruns: list[dict[str, Any]], trials: int
) -> str:
    """What a resume does with the trials of earlier runs, exactly."""
    parts = [f"resuming: {finished} finished trials kept"]
    if reruns:
        numbers = ", ".join(str(row["number"]) for row in reruns)
        parts.append(
            f"{len(reruns)} interrupted trials (number {numbers}) run again first with their stored "
            "configurations, under their own numbers, counted against --trials"
        )
    left = len(stopped) - len(reruns)
    if left:
        parts.append(f"{left} interrupted trials not run again: --trials {trials} is reached")
    if not stopped:
        parts.append("no interrupted trials")
    return "; ".join(parts)


def _trials(
    prepared: _Prepared, store: Store, registered: Registered, plan: _Plan, keeper: BudgetKeeper | None = None
) -> Trials:
    """The strategy's searcher, the scheduler and the trial settings (Ray is up)."""
    config, recipe = prepared.config, prepared.recipe
    finished = registered.finished
    data = data_key(prepared.data_options)

    def lookup(genotype: Genotype) -> dict[str, Any] | None:
        found = store.retrying(
            lambda: reusable_result(store, genotype, config.data, recipe, data, registered.search_id),
            "looking up a cached result",
        )
        if found is not None:
            log.info("reusing trial %s for %s", found["trial_id"], genotype.arch_id)
        return found

    searcher = SEARCHERS.get(config.strategy)(
        SearcherInputs(
            space=prepared.space,
            metrics=config.metrics,
            modes=config.modes,
            seed=config.seed,
            first_number=next_trial_number(store, registered.search_id),
            finished=finished,
            replays=plan.replays,
            cache=lookup if config.execution.cache else None,
            train_defaults={k: recipe[k] for k in ("lr", "weight_decay", "batch_size", "optimizer")},
        )
    )
    searcher.add_replays(plan.replays)
    if config.proxies:
        searcher.score_proxies(_proxy_lookup(prepared, store))
    settings = trial_settings(prepared)
    histories = _histories(store, config.name, finished)
    if keeper is None:
        scheduler = make_scheduler(config, histories)
        time_budget_s = config.time_budget_min * 60 if config.time_budget_min else None
    else:
        searcher = BudgetSearch(searcher, keeper)
        scheduler = BudgetScheduler(
            lambda shape, seen: make_scheduler(planned_config(config, shape), seen), keeper, histories
        )
        time_budget_s = keeper.seconds + overrun_allowance_s(keeper.seconds)  # the keeper stops first
    return Trials(
        searcher=searcher,
        scheduler=scheduler,
        settings=settings,
        num_samples=plan.remaining,
        epochs=config.epochs,
        finished_before=len(finished),
        time_budget_s=time_budget_s,
        datasets=shippable({config.data: prepared.bundle}),
        budget=keeper,
        fidelity=_fidelity_text(config) if config.fidelity_schedule.reduced else None,
    )


def _proxy_input(prepared: _Prepared) -> str:
    """The shape of the minibatch every trial's proxies are scored on (``nasfcn.proxies.trial_batch``)."""
    from nasfcn.proxies import batch_input, trial_batch

    return batch_input(trial_batch(prepared.bundle, prepared.config.seed))


def _proxy_lookup(prepared: _Prepared, store: Store) -> ProxyLookup:
    """Genotype -> the search's proxies the store holds no score of for that network on this
    minibatch: a trial scores only those (a network seen before, in any search, costs nothing)."""
    config = prepared.config
    key = (config.data, _proxy_input(prepared), config.seed)

    def missing(genotype: Genotype) -> list[str]:
        held = store.retrying(
            lambda: stored_proxies(store, genotype.arch_id, *key), "looking up stored proxy scores"
        )
        return [name for name in config.proxies if name not in held]

    return missing


def _histories(store: Store, name: str | None, finished: list[dict[str, Any]]) -> list[list[float]]:
    """Val mIoU per epoch of each finished trial, oldest first: what the scheduler saw of them."""
    if not finished:
        return []
    frame = epochs_frame(store, name).dropna(subset=["val_miou"]).sort_values(["number", "epoch"])
    by_number = {int(number): group["val_miou"].tolist() for number, group in frame.groupby("number")}
    return [by_number.get(int(row["number"]), []) for row in finished]


def _summary(
    store: Store, sid: int, name: str, folder: Path, started: float, interrupted: bool
) -> SearchSummary:
    frame = with_pooled(leaderboard_frame(store, name))  # the best: the confirmed winner, if any
    counts = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
    ranked = frame.dropna(subset=["best_miou"])
    finals = final_runs(ranked)
    if not finals.empty:  # what nasfcn export picks: the best final run
        ranked = finals.sort_values(["best_miou", "number"], ascending=[False, True])
    best = ranked.iloc[0] if not ranked.empty else None
    return SearchSummary(
        name=name,
        search_id=sid,
        database=store.masked_url,
        run_folder=folder,
        counts=counts,
        best_trial=int(best["number"]) if best is not None else None,
        best_arch_id=str(best["arch_id"]) if best is not None else None,
        best_miou=float(best["best_miou"]) if best is not None else None,
        seconds=time.monotonic() - started,
        interrupted=interrupted,
    )
