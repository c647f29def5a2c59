"""The single database writer: a Ray Tune callback in the driver process.

Workers only report to Ray; this callback turns trial starts, epoch results, early
stops, completions and failures into idempotent writes, and keeps the live terminal view.

Faults of the machine stop the search instead of being recorded as the candidates' fault:
every write waits out a database that is away (``Store.retrying``); once it gives up, or a
checkpoint finds the disk full, the callback raises, which makes Ray Tune stop every
trial and re-raise from ``Tuner.fit()``; the driver then marks what was running interrupted.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS, DONE, EXPERIMENT_TAG, SHOULD_CHECKPOINT, TRIAL_ID
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nasfcn.errors import NasfcnError
from nasfcn.genotype import Genotype
from nasfcn.search._trainable import STATUS_KEY, keyed_recipe, trial_recipe
from nasfcn.store import (
    DatabaseUnavailableError,
    LeaseLostError,
    Store,
    finish_trial,
    mask_text,
    record_cost,
    record_epoch,
    record_proxy_scores,
    set_checkpoint,
    upsert_trial,
)

log = logging.getLogger("nasfcn.search")
T = TypeVar("T")

#: What Ray Tune adds to every result (bookkeeping, the trial's whole config) and what the
#: trial_costs and proxy_scores tables already hold: none of it belongs in a trial's stored metrics.
_NOT_METRICS = frozenset(
    {*AUTO_RESULT_KEYS, DONE, EXPERIMENT_TAG, SHOULD_CHECKPOINT, TRIAL_ID, STATUS_KEY, "cost", "proxies"}
)


class DiskFullError(NasfcnError, RuntimeError):
    """A trial could not write its checkpoint: the storage path has no space left."""


def trial_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The metrics a trial reported, without Tune's additions."""
    return {k: v for k, v in result.items() if k not in _NOT_METRICS}


def checkpoint_location(checkpoint: Any) -> str:
    """A local folder as a path; on remote storage a URI (``s3://bucket/...``) export can open."""
    filesystem = getattr(checkpoint, "filesystem", None)
    kind = getattr(filesystem, "type_name", "local")
    if filesystem is None or kind == "local":
        return str(checkpoint.path)
    return f"{kind}://{str(checkpoint.path).lstrip('/')}"


@dataclass
class Progress:
    """What the live view shows; updated by the recorder."""

    requested: int
    started_at: float = field(default_factory=time.monotonic)
    counts: dict[str, int] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    best_miou: float | None = None
    best_arch: str | None = None
    best_number: int | None = None
    finished_before: int = 0  # a resumed search's earlier trials
    notice: str | None = None  # what the database is doing while a write waits for it
    noun: str = "trials"  # what is counted: a search's trials, a benchmark's runs
    budget: Any = None  # --time-budget: a BudgetKeeper (plan, budget used and left) or None
    fidelity: str | None = None  # --fidelity: what the first epochs train at

    def offer(self, miou: float | None, arch_id: str, number: int) -> None:
        """Keep the best val mIoU seen so far, with the trial that reached it."""
        if miou is not None and (self.best_miou is None or miou > self.best_miou):
            self.best_miou, self.best_arch, self.best_number = float(miou), arch_id, number

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def render(self) -> Table:
        elapsed = time.monotonic() - self.started_at
        done = self.done
        requested = self.requested
        if self.budget is not None and self.budget.plan is not None:
            requested = self.finished_before + self.budget.plan.trials
        remaining = max(0, requested - done - self.finished_before)
        eta = elapsed / done * remaining if done else math.nan
        if self.budget is not None:  # the plan ends by the deadline
            eta = self.budget.seconds_left()
        planned = "?" if self.budget is not None and self.budget.plan is None else str(requested)
        table = Table.grid(padding=(0, 2))
        table.add_row(
            Text(f"{self.noun} {done + self.finished_before}/{planned}", style="bold"),
            f"running {len(self.running)}",
            f"completed {self.counts.get('completed', 0)}",
            f"stopped early {self.counts.get('stopped_early', 0)}",
            f"cached {self.counts.get('cached', 0)}",
            f"rejected {self.counts.get('rejected_by_constraint', 0)}",
            Text(f"failed {self.counts.get('failed', 0)}", style="red" if self.counts.get("failed") else ""),
        )
        best = (
            "-"
            if self.best_miou is None
            else f"{self.best_miou:.3f} ({self.best_arch}, trial {self.best_number})"
        )
        table.add_row(
            Text(f"best val mIoU {best}", style="green"),
            f"elapsed {_clock(elapsed)}",
            f"{remaining if planned != '?' else '?'} left, ~{_clock(eta)}"
            if math.isfinite(eta)
            else f"{remaining} left, time ?",
        )
        if self.budget is not None:
            table.add_row(Text(self.budget.line(), style="cyan"))
        if self.fidelity:
            table.add_row(Text(f"fidelity: {self.fidelity}", style="cyan"))
        if self.notice:
            table.add_row(Text(self.notice, style="yellow"))
        return table


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _quiet_once_the_lease_is_lost(event: Callable[..., None]) -> Callable[..., None]:
    """A Tune event that writes nothing once another driver took the search's lease.

    The first fenced write that finds the lease gone stops the run as Ctrl-C does (through the
    lease's holder, ``Store.on_lease_lost``) instead of raising into Tune, which would print a
    traceback for every trial it stops; the driver raises the loss once Tune has returned.
    """

    @functools.wraps(event)
    def quiet(self: StoreRecorder, *args: Any, **kwargs: Any) -> None:
        if isinstance(self.failure, LeaseLostError):
            return
        try:
            event(self, *args, **kwargs)
        except LeaseLostError as err:
            self.failure = err
            if self.store.on_lease_lost is not None:
                self.store.on_lease_lost()

    return quiet


class StoreRecorder(Callback):
    """Writes every trial event of one search to the database (the only writer)."""

    def __init__(
        self,
        store: Store,
        search_id: int,
        dataset: str,
        recipe: dict[str, Any],
        epochs: int,
        progress: Progress,
        live: Live | None = None,
        storage_path: str | None = None,
        data: dict[str, Any] | None = None,
        node_lost: Callable[[], str | None] | None = None,
    ) -> None:
        self.store = store
        self.data = data  # the data config trials train on: part of their reuse key
        self.search_id = search_id
        self.dataset = dataset
        self.recipe = recipe
        self.epochs = epochs
        self.progress = progress
        self.live = live
        self._rows: dict[str, int] = {}  # Ray trial id -> trials.id
        self._costed: set[str] = set()
        self._scored: set[str] = set()  # trials whose proxy scores are recorded
        self._finished: set[str] = set()
        self.storage_path = storage_path  # where checkpoints go: named when the disk is full
        self._checkpoint_bytes = 0  # the largest checkpoint written so far: what one more needs
        self.node_lost = node_lost  # why the trials' Ray node is gone (asked now), or None
        # Why the search stops: the database stayed away, the disk is full, or another driver
        # took the search's lease (then not one more write may land).
        self.failure: DatabaseUnavailableError | DiskFullError | LeaseLostError | None = None

    # Ray pickles callbacks with the experiment state; the database and the terminal stay here.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("store", "live")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = None  # type: ignore[assignment]
        self.live = None

    # -- helpers -------------------------------------------------------------------------
    def _write(self, trial: Any, write: Callable[[], T]) -> T:
        """One whole write under the store's retry rule; after a give-up nothing more is written.

        Tune swallows what ``on_checkpoint`` raises, so every later event raises it again.
        """
        if self.failure is not None:
            raise self.failure
        try:
            result = self.store.retrying(
                write, f"recording trial {trial.config['number']}", on_retry=self._notice
            )
        except (DatabaseUnavailableError, LeaseLostError) as err:
            self.failure = err
            raise
        if self.progress.notice is not None:
            self._notice(None)
        return result

    def _notice(self, message: str | None) -> None:
        self.progress.notice = message
        self._refresh()

    def _row(self, trial: Any) -> int:
        if trial.trial_id not in self._rows:
            config = trial.config
            genotype = Genotype.from_json(config["genotype"])
            params = json.loads(config["params"]) if config.get("params") else None
            recipe = trial_recipe(config, self.recipe)
            self._rows[trial.trial_id] = self._write(
                trial,
                lambda: upsert_trial(
                    self.store,
                    self.search_id,
                    int(config["number"]),
                    genotype,
                    dataset=config.get("data") or self.dataset,
                    recipe=keyed_recipe(config, self.recipe),
                    seed=int(recipe.get("seed", 0)),
                    status="running",
                    ray_trial_id=trial.trial_id,
                    params=params,
                    reference=config.get("reference"),
                    confirms=config.get("confirms"),
                    extends=config.get("extends"),
                    data=self.data,
                ),
            )
        return self._rows[trial.trial_id]

    def _record_proxies(self, trial: Any, arch_id: str, proxies: dict[str, Any]) -> None:
        """The trial's zero-cost proxy scores, stored per architecture (a score held already stays)."""
        dataset = trial.config.get("data") or self.dataset
        scores = proxies.get("scores") or {}
        self._write(
            trial,
            lambda: record_proxy_scores(
                self.store,
                arch_id,
                dataset,
                str(proxies["input"]),
                int(proxies["seed"]),
                scores,
                device=proxies.get("device"),
            ),
        )
        self._scored.add(trial.trial_id)
        failed = sorted(name for name, score in scores.items() if score.get("error"))
        log.info(
            "trial %s: proxies %s scored%s",
            trial.config["number"],
            ", ".join(scores) or "none",
            f" ({', '.join(failed)} raised)" if failed else "",
        )

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self.progress.render())

    def _finish(self, trial: Any, status: str, **details: Any) -> None:
        if trial.trial_id in self._finished:
            return
        row = self._row(trial)
        self._write(trial, lambda: finish_trial(self.store, row, status, **details))
        self._finished.add(trial.trial_id)
        self.progress.running.discard(trial.trial_id)
        self.progress.counts[status] = self.progress.counts.get(status, 0) + 1
        log.info("trial %s (%s) %s", trial.config["number"], trial.trial_id, status)
        self._refresh()

    # -- Tune events ---------------------------------------------------------------------
    @_quiet_once_the_lease_is_lost
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._row(trial)
        self.progress.running.add(trial.trial_id)
        log.info("trial %s (%s) started", trial.config["number"], trial.trial_id)
        self._refresh()

    @_quiet_once_the_lease_is_lost
    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        row = self._row(trial)
        genotype = Genotype.from_json(trial.config["genotype"])
        if trial.trial_id not in self._costed and isinstance(result.get("cost"), dict):
            self._write(trial, lambda: record_cost(self.store, row, result["cost"]))
            self._costed.add(trial.trial_id)
        if trial.trial_id not in self._scored and isinstance(result.get("proxies"), dict):
            self._record_proxies(trial, genotype.arch_id, result["proxies"])
        if result.get(STATUS_KEY) == "running":
            metrics = trial_metrics(result)
            self._write(trial, lambda: record_epoch(self.store, row, int(result["epoch"]), metrics))
            self.progress.offer(result.get("val_miou"), genotype.arch_id, int(trial.config["number"]))
            self._refresh()

    @_quiet_once_the_lease_is_lost
    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        # Tune only logs (with a traceback on the console) what this raises: a give-up is kept
        # in ``failure`` for the next event, or for the driver once Tune returns.
        try:
            row = self._row(trial)
            self._write(trial, lambda: set_checkpoint(self.store, row, checkpoint_location(checkpoint)))
        except DatabaseUnavailableError:
            return
        if checkpoint_location(checkpoint) == str(checkpoint.path):  # a local folder
            self._checkpoint_bytes = max(self._checkpoint_bytes, _folder_bytes(Path(checkpoint.path)))

    @_quiet_once_the_lease_is_lost
    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        status = result.get(STATUS_KEY)
        if status == "rejected_by_constraint":
            self._finish(trial, "rejected_by_constraint", error=result.get("reason"))
        elif status == "cached":
            arch_id = Genotype.from_json(trial.config["genotype"]).arch_id
            self.progress.offer(result.get("val_miou"), arch_id, int(trial.config["number"]))
            self._finish(trial, "cached", cached_from=int(result["cached_from"]))
        else:
            epochs = int(result.get("epoch", 0) or 0)
            planned = int(trial_recipe(trial.config, self.recipe).get("epochs") or self.epochs)
            self._finish(trial, "completed" if epochs >= planned else "stopped_early")

    @_quiet_once_the_lease_is_lost
    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        text = _read_error(trial)
        text = mask_text(str(text or "the trial failed; see the Ray logs in the search folder"))
        lines = [line for line in text.strip().splitlines() if line.strip()]
        message = _error_line(lines)
        if _disk_full(message):  # the machine's fault: re-run on --resume, not a failed candidate
            self._finish(trial, "interrupted", error=message, traceback=text)
            # Raised by the next event, not here: Ray's own callbacks after this one still
            # close the trial's files (Tune skips them when one raises).
            self.failure = DiskFullError(self._disk_full_text(trial))
            return
        if self.node_lost is not None and self.node_lost():  # died with its node: re-run on --resume
            self._finish(trial, "interrupted", error=message, traceback=text)
            return
        self._finish(trial, "failed", error=message, traceback=text)

    def _disk_full_text(self, trial: Any) -> str:
        """Which path is full, what is free there, and about how much the checkpoint needs."""
        where = self.storage_path or "the storage path"
        free = _free_bytes(self.storage_path)
        needed = self._checkpoint_bytes
        if not needed and (trial.last_result or {}).get("params"):  # float32 weights + best.json
            needed = 4 * int(trial.last_result["params"]) + 4096
        return (
            f"no space left on {where} (--storage-path): the checkpoint of trial "
            f"{trial.config['number']} could not be written ({_size(free) if free is not None else '?'} free"
            + (f"; a checkpoint of this search needs about {_size(needed)}" if needed else "")
            + ")"
        )


def _disk_full(error_line: str) -> bool:
    """A trial error that is the disk's (ENOSPC), however Ray and pyarrow word it."""
    return f"[Errno {errno.ENOSPC}]" in error_line or "No space left on device" in error_line


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    except OSError:
        return 0


def _free_bytes(path: str | None) -> int | None:
    if not path:
        return None
    try:
        return shutil.disk_usage(path).free
    except OSError:  # a remote URI or a folder not made yet
        return None


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover - the loop always returns


def _read_error(trial: Any) -> str | None:
    """The trial's error trace: Ray writes it next to the trial before telling callbacks."""
    try:
        path = trial.error_file
        if path and Path(path).exists():
            return Path(path).read_text(errors="replace")
        return trial.get_error()
    except Exception:
        return None


def _error_line(lines: list[str]) -> str:
    """The most telling line of a Ray error trace: the last 'SomethingError: ...' line."""
    for line in reversed(lines):
        stripped = line.strip()
        head = stripped.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Diverged")) and " " not in head:
            return stripped[:1000]
    return (lines[-1] if lines else "failed")[:1000]
