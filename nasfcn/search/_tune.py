"""Ray and Ray Tune: start (or join) Ray, then run one registered run's trials with the live view."""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from nasfcn.search._liveness import NodeWatch, RayNodeLostError, local_system_config
from nasfcn.search._log import ray_logs_to_file
from nasfcn.search._ray_session import clean_leftovers, record_session, session_folder, start_watchdog
from nasfcn.search._recorder import DiskFullError, Progress, StoreRecorder
from nasfcn.search._trainable import TrialSettings, data_key, train_candidate
from nasfcn.store import Store

log = logging.getLogger("nasfcn.search")
_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"
_WATCHDOGS: list[Any] = []  # the local Ray's watchdog: its stdin closes when this process ends


def start_ray(address: str | None, run_folder: Path | None = None) -> None:
    """Connect to the cluster at ``address``, or start a quiet local Ray (no dashboard).

    A local Ray gets a session folder of its own, a watchdog that stops it when this
    process dies, and GCS health checks that tolerate a busy machine (``LOCAL_HEALTH_CHECKS``);
    with ``run_folder`` it is recorded there, and what a killed earlier driver of the same run
    left behind is stopped first.
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
        ray.init(num_cpus=os.cpu_count(), _temp_dir=folder, _system_config=local_system_config(), **options)
    log.info("Ray: %s", ray.cluster_resources())


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
    budget: Any = None  # --time-budget: the BudgetKeeper whose plan the live view shows
    fidelity: str | None = None  # --fidelity: what the first epochs train at, for the live view
    ray_address: str | None = None  # the cluster the trials run on; None: the local Ray


def run_trials(run: TrialRun, console: Console) -> bool:
    """Run the trials on Ray Tune (Ray already started) with the live view; True when interrupted.

    Raises ``RayNodeLostError`` once the trials' Ray node is gone (Tune would wait for it forever).
    """
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(train_candidate, settings=run.settings, datasets=run.datasets), run.resources
    )
    progress = Progress(
        requested=run.finished_before + run.num_samples,
        finished_before=run.finished_before,
        noun=run.noun,
        budget=run.budget,
        fidelity=run.fidelity,
    )
    with Live(progress.render(), console=console, refresh_per_second=2, transient=False) as live:
        nodes = NodeWatch(run.ray_address)
        recorder = StoreRecorder(
            run.store,
            run.search_id,
            run.settings.data,
            run.settings.recipe,
            run.epochs,
            progress,
            live,
            storage_path=run.storage_path,
            data=data_key(run.settings.data_options),
            node_lost=nodes.check,
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
                stop=nodes,
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        with _ctrl_c_watch() as watch, ray_logs_to_file():
            nodes.start()
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
            finally:
                nodes.close()
        live.update(progress.render())
    if recorder.failure is not None:  # a give-up Tune swallowed (in on_checkpoint) at the very end
        raise recorder.failure
    if nodes.lost is not None:
        raise RayNodeLostError(nodes.lost)
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
