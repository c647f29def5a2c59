"""The search driver: Ray Tune + Optuna + ASHA, with the database writer in this process."""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live

from nasfcn.data import DataConfig, absolute_spec, is_generated, load_dataset
from nasfcn.genotype import Genotype
from nasfcn.references import for_space
from nasfcn.search._config import (
    SEARCH_RESUME,
    SearchConfig,
    SearchConfigError,
    SearchStoppedError,
    SearchSummary,
)
from nasfcn.search._lease import register_under_lease
from nasfcn.search._ray_session import clean_leftovers, record_session, session_folder, start_watchdog
from nasfcn.search._recorder import DiskFullError, Progress, StoreRecorder
from nasfcn.search._resume import conflict_message, given_fields, merge_stored
from nasfcn.search._scheduler import make_scheduler
from nasfcn.search._searcher import GridSearch, Replay, SpaceSearch, grid_refusal
from nasfcn.search._trainable import TrialSettings, train_candidate
from nasfcn.space import load_space, size_text
from nasfcn.store import (
    DatabaseUnavailableError,
    LeaseLostError,
    Store,
    StoreError,
    create_search,
    epochs_frame,
    finished_trials,
    get_search,
    interrupt_unfinished,
    interrupted_trials,
    leaderboard_frame,
    mask_text,
    next_trial_number,
    open_store,
    reusable_result,
    set_search_status,
)

log = logging.getLogger("nasfcn.search")
_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data")
_COMMANDS = {"table": "tabulate"}  # the command of each search-row kind, where it is another word
_WATCHDOGS: list[Any] = []  # the local Ray's watchdog: its stdin closes when this process ends


def default_name(space_name: str) -> str:
    """``<space name>-<UTC time>``, the space name cut to a folder name's characters (see name_problem)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", space_name).lstrip(".-")[:80] or "search"
    return f"{safe}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


def run_search(
    config: SearchConfig,
    console: Console | None = None,
    _failure_injection: dict[str, str] | None = None,
) -> SearchSummary:
    """Run (or resume) a search; every trial lands in the database as it happens."""
    with ExitStack() as held:  # the search's lease, once it is registered
        return _run_search(config, console, _failure_injection, held)


def _run_search(
    config: SearchConfig,
    console: Console | None,
    _failure_injection: dict[str, str] | None,
    held: ExitStack,
) -> SearchSummary:
    started = time.monotonic()
    console = console or Console(quiet=config.quiet)
    store = open_store(config.db)
    changes: tuple[str, ...] = ()
    if config.resume:
        config, changes = _resumed(config, store)
    config = replace(config, data=absolute_spec(config.data))  # trials run in folders of their own
    space = load_space(config.space)
    if config.strategy == "grid" and (refusal := grid_refusal(space)):
        raise SearchConfigError(refusal)  # counted, not enumerated: before anything is written
    name = config.name or default_name(space.name)
    config = replace(config, name=name)
    data_options: dict[str, Any] = {
        "image_size": config.image_size,
        "train_samples": config.train_samples,
        "val_samples": config.val_samples,
        "seed": config.seed,
    }
    with console.status(f"checking dataset {config.data} ..."):
        bundle = load_dataset(config.data, DataConfig(**data_options))  # fails fast, names the file
    recipe = replace(config.recipe, epochs=config.epochs, seed=config.seed)
    recipe_dict = recipe.to_dict()

    sid = register_under_lease(  # one live driver per search; refused while another runs
        held,
        store,
        name,
        config.resume,
        lambda: create_search(
            store,
            name,
            config.data,
            space_name=space.name,
            space_yaml=space.text,
            config={**config.as_dict(), "class_names": list(bundle.class_names)},
            recipe=recipe_dict,
            resume=config.resume,
        ),
    )
    interrupted = interrupt_unfinished(store, sid) if config.resume else 0
    finished = finished_trials(store, sid)
    references = for_space(space, config.references) if config.references else {}
    requested = config.trials + len(references)  # references come on top of --trials
    remaining = requested - len(finished)
    stopped = interrupted_trials(store, sid)
    reruns = stopped[: max(0, remaining)]  # run again first, counted against --trials
    done_references = {row["reference"] for row in [*finished, *reruns] if row.get("reference")}
    pending_references = {n: g for n, g in references.items() if n not in done_references}
    replays = [Replay.rerun(row) for row in reruns] + Replay.references(pending_references)
    folder = config.run_folder(name)
    folder.mkdir(parents=True, exist_ok=True)
    with log_to_file(folder / "search.log"):
        log.info(
            "search %s (id %s) in %s: %d trials requested, %d finished before, %d interrupted, %d run again",
            name,
            sid,
            store.masked_url,
            config.trials,
            len(finished),
            interrupted,
            len(reruns),
        )
        console.print(
            f"[bold]search {name}[/bold]: space {space.name} ({size_text(space.size())} architectures), "
            f"data {config.data} ({bundle.num_classes} classes), {config.trials} trials x "
            f"{config.epochs} epochs, {config.strategy} + {config.scheduler}"
            + (f", plus references {', '.join(references)}" if references else "")
        )
        console.print(
            f"results: {store.masked_url}   logs: {folder}   "
            f"checkpoints: {mask_text(config.checkpoint_storage(name))}"
        )
        if config.resume:
            console.print(_resume_message(len(finished), stopped, reruns, config.trials), markup=False)
            if changes:
                console.print(f"changed for this and later resumes: {', '.join(changes)}", markup=False)
        if remaining <= 0:
            console.print(
                f"nothing left to run: {len(finished)} trials already finished, {requested} asked for "
                f"(--trials {config.trials}{' plus references' if references else ''}); "
                "a larger --trials extends the search",
                markup=False,
            )
            set_search_status(store, sid, "completed")
            return _summary(store, sid, name, folder, started, interrupted=False)
        with settled_on_error(store, sid, f"nasfcn search --resume --name {name}"):
            was_interrupted = _tune(
                config,
                space,
                store,
                sid,
                folder,
                recipe_dict,
                data_options,
                bundle,
                finished,
                remaining,
                replays,
                console,
                _failure_injection,
            )
        left = interrupt_unfinished(store, sid)
        if was_interrupted:
            set_search_status(store, sid, "interrupted")
            console.print(
                f"[yellow]interrupted[/yellow]: {left} running trials marked interrupted; "
                f"continue with --resume --name {name}"
            )
        else:
            set_search_status(store, sid, "completed")
        return _summary(store, sid, name, folder, started, interrupted=was_interrupted)


@contextmanager
def settled_on_error(store: Store, sid: int, resume_command: str) -> Iterator[None]:
    """Whatever ends a registered run early leaves no trial or search ``running``.

    A database that stayed away or a full disk becomes one ``SearchStoppedError`` line; any
    other error (an unreachable Ray cluster, a bug) marks the run interrupted and is raised
    as it was. A driver that lost its lease writes nothing more: the new holder owns the run.
    """
    try:
        yield
    except LeaseLostError:
        raise
    except (DatabaseUnavailableError, DiskFullError) as err:
        raise _stopped(store, sid, resume_command, err) from None
    except BaseException as err:
        if not isinstance(err, KeyboardInterrupt):
            log.error("run stopped by %s: %s", type(err).__name__, mask_text(str(err)))
        _mark_interrupted(store, sid)
        raise


def _mark_interrupted(store: Store, sid: int) -> bool:
    """One try, no retries: the run and its running trials become ``interrupted``."""
    try:
        interrupt_unfinished(store, sid)
        set_search_status(store, sid, "interrupted")
    except StoreError:
        return False
    return True


def _stopped(store: Store, sid: int, resume_command: str, fault: Exception) -> SearchStoppedError:
    """Ray's trials are stopped; mark what ran interrupted and say how to go on."""
    log.error("search stopped: %s", fault)
    if _mark_interrupted(store, sid):
        statuses = "the search and its running trials are marked interrupted"
    else:
        statuses = "the database is still unreachable, so --resume will mark the running trials interrupted"
    advice = "free space, then continue" if isinstance(fault, DiskFullError) else "continue"
    return SearchStoppedError(
        f"{fault}: search stopped; finished trials are saved; {statuses}; {advice} with {resume_command}"
    )


def _resumed(config: SearchConfig, store: Store) -> tuple[SearchConfig, tuple[str, ...]]:
    """A resume continues the stored search with every stored setting (``nasfcn.search._resume``).

    Returns the config to run and the adjustable settings given with new values. A refused
    setting raises before anything is written.
    """
    if config.name is None:
        raise SearchConfigError("--resume needs the --name of the search to continue")
    stored = get_search(store, config.name)
    if stored is None:
        raise SearchConfigError(f"--resume: no search named {config.name!r} in {store.masked_url}")
    if stored["kind"] != "search":
        raise SearchConfigError(
            f"--resume: {config.name!r} is a {stored['kind']}; "
            f"continue it with nasfcn {_COMMANDS.get(stored['kind'], stored['kind'])} --resume"
        )
    given = given_fields(config)
    saved = {**stored["config"], "data": stored["dataset"]}
    merged = merge_stored(config, saved, SEARCH_RESUME, given, {"data": absolute_spec})
    conflicts = list(merged.conflicts)
    if "space" in given and config.space and stored["space_yaml"] and _other_space(config.space, stored):
        conflicts.insert(0, f"--space {config.space} differs from the stored space {stored['space_name']}")
    if conflicts:
        raise SearchConfigError(conflict_message(conflicts, "search"))
    resumed = replace(config, **merged.values)
    folder = resumed.run_folder(config.name)
    folder.mkdir(parents=True, exist_ok=True)
    space_file = folder / "space.yaml"  # exactly the space the search started with
    space_file.write_text(stored["space_yaml"] or Path(config.space).read_text(), encoding="utf-8")
    return replace(resumed, space=str(space_file)), merged.changes


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


def _tune(
    config: SearchConfig,
    space: Any,
    store: Store,
    sid: int,
    folder: Path,
    recipe_dict: dict[str, Any],
    data_options: dict[str, Any],
    bundle: Any,
    finished: list[dict[str, Any]],
    remaining: int,
    replays: list[Replay],
    console: Console,
    failure_injection: dict[str, str] | None,
) -> bool:
    """Run the trials still to do; True when the user interrupted."""
    start_ray(config.ray_address, folder)
    first_number = next_trial_number(store, sid)

    def lookup(genotype: Genotype) -> dict[str, Any] | None:
        found = store.retrying(
            lambda: reusable_result(store, genotype, config.data, recipe_dict), "looking up a cached result"
        )
        if found is not None:
            log.info("reusing trial %s for %s", found["trial_id"], genotype.arch_id)
        return found

    cached = lookup if config.cache else None

    if config.strategy == "grid":
        done = {Genotype.from_json(row["genotype_json"]).trial_key for row in finished}
        done |= {Genotype.from_json(r.genotype_json).trial_key for r in replays if r.number is not None}
        searcher: Any = GridSearch(space, config.metrics[0], config.modes[0], first_number, done, cached)
    else:
        train_defaults = {k: recipe_dict[k] for k in ("lr", "weight_decay", "batch_size", "optimizer")}
        searcher = SpaceSearch(
            space,
            config.strategy,
            config.metrics,
            config.modes,
            config.seed,
            first_number,
            cached,
            train_defaults,
        )
        if finished:
            told = searcher.warm_start(finished, config.metrics)
            log.info("told the optimizer about %d finished trials", told)
    scheduler = make_scheduler(config, _histories(store, config.name, finished))

    settings = TrialSettings(
        data=config.data,
        data_options=data_options,
        recipe=recipe_dict,
        latency_input=config.latency_input or config.image_size,
        max_params=config.max_params,
        max_flops=config.max_flops,
        max_latency_ms=config.max_latency_ms,
        device=trial_device(config.gpus_per_trial, config.device),
        threads=max(1, int(config.cpus_per_trial)),
        failure_injection=failure_injection,
    )
    searcher.add_replays(replays)
    return run_trials(
        TrialRun(
            store=store,
            search_id=sid,
            searcher=searcher,
            scheduler=scheduler,
            settings=settings,
            resources={"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial},
            num_samples=remaining,
            concurrency=config.default_concurrency(),
            storage_path=config.checkpoint_storage(config.name or folder.name),
            epochs=config.epochs,
            finished_before=len(finished),
            time_budget_s=config.time_budget_min * 60 if config.time_budget_min else None,
            datasets=shippable({config.data: bundle}),
        ),
        console,
    )


def _histories(store: Store, name: str | None, finished: list[dict[str, Any]]) -> list[list[float]]:
    """Val mIoU per epoch of each finished trial, oldest first: what the scheduler saw of them."""
    if not finished:
        return []
    frame = epochs_frame(store, name).dropna(subset=["val_miou"]).sort_values(["number", "epoch"])
    by_number = {int(number): group["val_miou"].tolist() for number, group in frame.groupby("number")}
    return [by_number.get(int(row["number"]), []) for row in finished]


def shippable(bundles: dict[str, Any]) -> dict[str, Any]:
    """The generated datasets among ``bundles`` (spec -> DatasetBundle): worth sending to trials."""
    return {spec: bundle for spec, bundle in bundles.items() if is_generated(spec)}


def trial_device(gpus_per_trial: float, device: str) -> str:
    """What a trial trains on: the GPU Ray assigns when it is given one, else ``device``."""
    return "cuda" if gpus_per_trial > 0 else ("cpu" if device == "auto" else device)


@dataclass
class TrialRun:
    """One Ray Tune run of trials for a search or a benchmark (already registered in the store)."""

    store: Store
    search_id: int
    searcher: Any  # a Ray Tune Searcher producing nasfcn trial configs
    scheduler: Any
    settings: TrialSettings
    resources: dict[str, float]
    num_samples: int
    concurrency: int
    storage_path: str
    epochs: int
    finished_before: int = 0
    time_budget_s: float | None = None
    # Generated datasets the driver already made, by spec: sent once through Ray's object
    # store instead of every worker generating them again. File datasets are read by workers.
    datasets: dict[str, Any] = field(default_factory=dict)
    noun: str = "trials"  # what the live view counts: a search's trials, a benchmark's runs


def run_trials(run: TrialRun, console: Console) -> bool:
    """Run the trials on Ray Tune (Ray already started) with the live view; True when interrupted."""
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(train_candidate, settings=run.settings, datasets=run.datasets), run.resources
    )
    progress = Progress(
        requested=run.finished_before + run.num_samples, finished_before=run.finished_before, noun=run.noun
    )
    with Live(progress.render(), console=console, refresh_per_second=2, transient=False) as live:
        recorder = StoreRecorder(
            run.store,
            run.search_id,
            run.settings.data,
            run.settings.recipe,
            run.epochs,
            progress,
            live,
            storage_path=run.storage_path,
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=run.searcher,
                scheduler=run.scheduler,
                num_samples=run.num_samples,
                max_concurrent_trials=run.concurrency,
                time_budget_s=run.time_budget_s,
                reuse_actors=True,  # a worker process (imports, data) serves trial after trial
            ),
            run_config=tune.RunConfig(
                name=f"tune-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S-%f')}",
                storage_path=run.storage_path,
                callbacks=[recorder],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        with _ctrl_c_watch() as watch, _ray_logs_to_file():
            try:
                tuner.fit()
            except KeyboardInterrupt:
                watch.hit = True
            except Exception as err:
                # Tune stops every trial, then re-raises what the recorder raised (as a TuneError
                # holding the traceback as text when it came from a trial's result or error).
                if recorder.failure is not None:
                    raise recorder.failure from None
                if isinstance(err, OSError) and err.errno == errno.ENOSPC:  # Ray's own files
                    raise DiskFullError(
                        f"no space left on {run.storage_path} (--storage-path): {err}"
                    ) from None
                raise
        live.update(progress.render())
    if recorder.failure is not None:  # a give-up Tune swallowed (in on_checkpoint) at the very end
        raise recorder.failure
    return watch.interrupted


class _CtrlC:
    """SIGINT handler placed under Ray Tune's: Tune hands it back when it sees a Ctrl-C."""

    def __init__(self) -> None:
        self.hit = False
        self.interrupted = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.hit = True
        raise KeyboardInterrupt


@contextmanager
def _ctrl_c_watch() -> Iterator[_CtrlC]:
    """Tells whether the user pressed Ctrl-C while Tune ran (Tune stops cleanly, silently)."""
    watch = _CtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield watch
        watch.interrupted = watch.hit
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, watch)
    try:
        yield watch
    finally:
        tune_handled = not os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        handed_back = signal.getsignal(signal.SIGINT) is watch
        watch.interrupted = watch.hit or (handed_back and tune_handled)
        signal.signal(signal.SIGINT, previous)


def start_ray(address: str | None, run_folder: Path | None = None) -> None:
    """Connect to the cluster at ``address``, or start a quiet local Ray (no dashboard).

    A local Ray gets a session folder of its own and a watchdog that stops it when this
    process dies; with ``run_folder`` it is recorded there, and what a killed earlier driver
    of the same run left behind is stopped first.
    """
    import ray

    # Tune's own console output and checkpoint-sync warnings: the live view replaces them.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if run_folder is not None and (left := clean_leftovers(run_folder)):
        log.info("stopped %d processes of the local Ray a killed earlier driver left", len(left))
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "include_dashboard": False,
        "ignore_reinit_error": True,
        "configure_logging": True,
    }
    if address:
        ray.init(address=address, **options)
    else:
        # A local Ray keeps Ray's default token authentication; the notice that it is on
        # would only clutter the live view.
        logging.getLogger(_RAY_AUTH_LOGGER).setLevel(logging.ERROR)
        folder = session_folder()
        _WATCHDOGS.append(start_watchdog(folder))  # kept open for as long as this process lives
        if run_folder is not None:
            record_session(run_folder, folder, _WATCHDOGS[-1])
        ray.init(num_cpus=os.cpu_count(), _temp_dir=folder, **options)
    log.info("Ray: %s", ray.cluster_resources())


@contextmanager
def _ray_logs_to_file() -> Iterator[None]:
    """While Tune runs, Ray's console handlers step aside: its messages go to search.log only."""
    removed: list[tuple[logging.Logger, logging.Handler]] = []
    for name in RAY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # the console, not our FileHandler
                logger.removeHandler(handler)
                removed.append((logger, handler))
    try:
        yield
    finally:
        for logger, handler in removed:
            logger.addHandler(handler)


class _SearchLogHandler(logging.FileHandler):
    """The search log; when it cannot be written (a full disk) it says so once and stops,
    instead of logging's "--- Logging error ---" and a traceback for every record."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if self.failed:
            return
        self.failed = True
        error = sys.exc_info()[1]
        sys.stderr.write(f"search log {self.baseFilename}: cannot write ({error}); no more log messages\n")

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the last flush on a full disk: already said
            self.failed = True


@contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    """nasfcn's and Ray's messages go to the search's log file for the length of the search."""
    handler = _SearchLogHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger("nasfcn").setLevel(logging.INFO)
    loggers = [logging.getLogger(name) for name in ("nasfcn", *RAY_LOGGERS)]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


def _summary(
    store: Store, sid: int, name: str, folder: Path, started: float, interrupted: bool
) -> SearchSummary:
    frame = leaderboard_frame(store, name)
    counts = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
    ranked = frame.dropna(subset=["best_miou"])
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
