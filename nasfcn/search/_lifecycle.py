"""One run's lifecycle, the steps a search, a benchmark and a table all take.

Open the store; register the run (a search row of the caller's ``kind``) under the
driver lease, marking what a killed earlier driver left running as interrupted; write
the run's log file; start Ray and run the trials, leaving nothing ``running`` whatever
ends them; settle the run's status. What differs (how a run resumes, what its trials
are, its summary) stays with the caller::

    with RunLifecycle(config.execution, "nasfcn benchmark", store) as run:
        registered = run.register(Registration(name, dataset, config_dict, recipe, kind="benchmark"))
        with run.logging(folder, "benchmark.log"):
            interrupted = run.run_trials(registered.search_id, name, folder, build_trials, console)
            run.settle(registered.search_id, interrupted)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console

from nasfcn.search._config import SearchStoppedError
from nasfcn.search._execution import Execution
from nasfcn.search._lease import register_under_lease
from nasfcn.search._liveness import RayNodeLostError
from nasfcn.search._log import log_to_file
from nasfcn.search._recorder import DiskFullError
from nasfcn.search._trainable import TrialSettings
from nasfcn.search._tune import TrialRun, run_trials, start_ray
from nasfcn.store import (
    DatabaseUnavailableError,
    LeaseLostError,
    Store,
    StoreError,
    create_search,
    finished_trials,
    interrupt_unfinished,
    mask_text,
    open_store,
    set_search_status,
)

log = logging.getLogger("nasfcn.search")


@dataclass(frozen=True)
class Registration:
    """What a run is recorded as: its row in the database's searches."""

    name: str
    dataset: str  # the dataset spec (a benchmark: its specs, comma-separated)
    config: dict[str, Any]  # stored as the run's config JSON
    recipe: dict[str, Any]
    kind: str = "search"  # search | benchmark | table
    space_name: str | None = None
    space_yaml: str | None = None


@dataclass(frozen=True)
class Registered:
    """A run in the database, leased to this driver."""

    search_id: int
    interrupted: int  # trials a killed earlier driver left running, now marked interrupted
    finished: list[dict[str, Any]]  # trials earlier drivers finished (finished_trials rows)


@dataclass(frozen=True)
class Trials:
    """What a run hands Ray Tune; where and with what resources is the lifecycle's part."""

    searcher: Any  # a Ray Tune Searcher producing nasfcn trial configs
    scheduler: Any
    settings: TrialSettings
    num_samples: int
    epochs: int
    finished_before: int = 0
    time_budget_s: float | None = None
    # Generated datasets the driver already made, by spec (see ``shippable``).
    datasets: dict[str, Any] = field(default_factory=dict)
    noun: str = "trials"  # what the live view counts: a search's trials, a benchmark's runs
    budget: Any = None  # --time-budget: the BudgetKeeper whose plan the live view shows
    fidelity: str | None = None  # --fidelity: what the first epochs train at, for the live view


class RunLifecycle(AbstractContextManager["RunLifecycle"]):
    """The shared steps of one run; leaving the ``with`` block releases the run's lease."""

    def __init__(self, execution: Execution, command: str, store: Store | None = None) -> None:
        """``command`` (``nasfcn search``) is what the user reruns with ``--resume``; ``store``:
        the run's database when the caller already opened it (a resume reads it first)."""
        self.execution = execution
        self.command = command
        self.store = store if store is not None else open_store(execution.db)
        self._held = ExitStack()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool | None:
        return self._held.__exit__(kind, error, trace)

    def register(self, registration: Registration) -> Registered:
        """Create (or on a resume, continue) the run; one live driver per run name."""
        resume = self.execution.resume
        search_id = register_under_lease(
            self._held,
            self.store,
            registration.name,
            resume,
            lambda: create_search(
                self.store,
                registration.name,
                registration.dataset,
                space_name=registration.space_name,
                space_yaml=registration.space_yaml,
                config=registration.config,
                recipe=registration.recipe,
                kind=registration.kind,
                resume=resume,
            ),
        )
        interrupted = interrupt_unfinished(self.store, search_id) if resume else 0
        return Registered(search_id, interrupted, finished_trials(self.store, search_id))

    def logging(self, folder: Path, filename: str) -> AbstractContextManager[None]:
        """The run's log file in ``folder`` (made if missing) while the block runs."""
        folder.mkdir(parents=True, exist_ok=True)
        return log_to_file(folder / filename)

    def run_trials(
        self, search_id: int, name: str, folder: Path, build: Callable[[], Trials], console: Console
    ) -> bool:
        """Start Ray, ``build`` the trials, run them; True when the user interrupted.

        Whatever ends them early leaves nothing ``running`` (``settled_on_error``).
        """
        with settled_on_error(self.store, search_id, f"{self.command} --resume --name {name}"):
            start_ray(self.execution.ray_address, folder)
            trials = build()
            run = TrialRun(
                store=self.store,
                search_id=search_id,
                searcher=trials.searcher,
                scheduler=trials.scheduler,
                settings=trials.settings,
                resources=self.execution.resources,
                num_samples=trials.num_samples,
                concurrency=self.execution.default_concurrency(),
                storage_path=self.execution.checkpoint_storage(name),
                epochs=trials.epochs,
                finished_before=trials.finished_before,
                time_budget_s=trials.time_budget_s,
                datasets=trials.datasets,
                noun=trials.noun,
                budget=trials.budget,
                fidelity=trials.fidelity,
                ray_address=self.execution.ray_address,
            )
            return run_trials(run, console)

    def settle(self, search_id: int, interrupted: bool) -> int:
        """Trials still running become interrupted; the run completed or interrupted. Returns those trials."""
        left = interrupt_unfinished(self.store, search_id)
        set_search_status(self.store, search_id, "interrupted" if interrupted else "completed")
        return left


@contextmanager
def settled_on_error(store: Store, sid: int, resume_command: str) -> Iterator[None]:
    """Whatever ends a registered run early leaves no trial or search ``running``.

    A database that stayed away, a full disk or a dead Ray node becomes one
    ``SearchStoppedError`` line; any other error (an unreachable Ray cluster, a bug) marks
    the run interrupted and is raised as it was. A driver that lost its lease writes
    nothing more: the new holder owns the run.
    """
    try:
        yield
    except LeaseLostError:
        raise
    except (DatabaseUnavailableError, DiskFullError, RayNodeLostError) as err:
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


def shippable(bundles: dict[str, Any]) -> dict[str, Any]:
    """The generated datasets among ``bundles`` (spec -> DatasetBundle): worth sending to trials."""
    from nasfcn.data import is_generated  # here: nasfcn.data imports torch, the arena must not

    return {spec: bundle for spec, bundle in bundles.items() if is_generated(spec)}
