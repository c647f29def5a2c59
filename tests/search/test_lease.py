"""One live driver per search, end to end: a second driver is refused, a dead one taken over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete, insert, update
from typer.testing import CliRunner

from nasfcn.cli import app
from nasfcn.search import SearchConfig, execution_options, run_search
from nasfcn.space import load_space
from nasfcn.store import (
    FINISHED_STATUSES,
    NoSuchSearchError,
    Store,
    acquire_lease,
    current_lease,
    leaderboard_frame,
    open_store,
    search_id,
    searches_frame,
    upsert_trial,
)
from nasfcn.store._schema import SearchLease
from nasfcn.train import TrainRecipe

pytestmark = pytest.mark.slow

OPTIONS = ["--data", "shapes", "--image-size", "32", "--train-samples", "32", "--strategy", "random"]


def _config(tmp_path: Path, space: Path, **overrides) -> SearchConfig:
    options = {
        "space": str(space),
        "data": "shapes",
        "name": "dup",
        "trials": 1,
        "epochs": 1,
        "strategy": "random",
        "scheduler": "fifo",
        "db": f"sqlite:///{tmp_path / 'nasfcn.db'}",
        "storage_path": str(tmp_path / "runs"),
        "image_size": 32,
        "train_samples": 32,
        "val_samples": 16,
        "recipe": TrainRecipe(epochs=1, batch_size=8),
        "concurrency": 1,
        "quiet": True,
    }
    options.update(overrides)
    execution, rest = execution_options(options)
    return SearchConfig(**rest, execution=execution)


def _held_elsewhere(store: Store, search: int, heartbeat_age_s: float) -> None:
    """The lease as a driver on another machine leaves it, its last heartbeat that long ago."""
    stamp = datetime.now(timezone.utc) - timedelta(seconds=heartbeat_age_s)
    row = {"owner": "build-7:4242:feedbeef", "host": "build-7", "pid": 4242, "heartbeat_at": stamp}
    with store.session_scope(guarded=False) as session:
        session.execute(delete(SearchLease).where(SearchLease.search_id == search))
        session.execute(insert(SearchLease).values(search_id=search, acquired_at=stamp, **row))


def test_resume_is_refused_while_another_driver_runs_and_taken_over_once_it_is_stale(
    ray_local, tmp_path: Path, micro_space: Path
) -> None:
    config = _config(tmp_path, micro_space)
    first = run_search(config)
    store = open_store(config.execution.db)
    assert current_lease(store, first.search_id) is None  # released at the end
    genotype = load_space(micro_space).sample(7)
    left_running = upsert_trial(
        store, first.search_id, 1, genotype, dataset="shapes", recipe={}, status="running"
    )
    _held_elsewhere(store, first.search_id, heartbeat_age_s=5)
    resume = [
        "search",
        "--space",
        str(micro_space),
        "--name",
        "dup",
        "--resume",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--db",
        config.execution.db,
        "--storage-path",
        str(tmp_path / "runs"),
        "--scheduler",
        "fifo",
        *OPTIONS,
    ]
    refused = CliRunner().invoke(app, resume)
    assert refused.exit_code == 2, refused.output
    message = " ".join(refused.stderr.split())
    assert "'dup' is already being run by another driver: pid 4242 on host build-7" in message
    assert "running since" in message
    # The heartbeat was written 5 s before the CLI started; a loaded machine adds a few seconds.
    age = re.search(r"last heartbeat (\d+) s ago", message)
    assert age is not None, message
    assert 5 <= int(age.group(1)) <= 30
    expiry = re.search(r"expires 60 s after its last heartbeat \(in (\d+) s\)", message)
    assert expiry is not None, message
    assert abs(int(expiry.group(1)) - (60 - int(age.group(1)))) <= 1  # two clock reads, rounded
    assert "Traceback" not in refused.output
    board = leaderboard_frame(store, "dup").set_index("trial_id")
    assert board.loc[left_running, "status"] == "running"  # the live driver's trial is left alone

    _held_elsewhere(store, first.search_id, heartbeat_age_s=61)  # that driver died a minute ago
    resumed = CliRunner().invoke(app, resume)
    assert resumed.exit_code == 0, resumed.output
    board = leaderboard_frame(store, "dup").set_index("trial_id")
    # The dead driver's running trial was marked interrupted, then run again under its number.
    assert "1 interrupted trials (number 1) run again first" in " ".join(resumed.output.split())
    assert board.loc[left_running, "status"] == "completed"
    assert board.loc[left_running, "arch_id"] == genotype.arch_id
    assert int(board["status"].isin(FINISHED_STATUSES).sum()) == 2
    assert current_lease(store, first.search_id) is None


def _finished(store: Store, name: str) -> int:
    try:
        return int(leaderboard_frame(store, name)["status"].isin(FINISHED_STATUSES).sum())
    except NoSuchSearchError:
        return 0


def test_a_driver_that_loses_its_lease_stops_writing(tmp_path: Path, micro_space: Path) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        "NASFCN_DB": db,
    }
    args = ["--name", "stolen", "--trials", "8", "--epochs", "3", "--concurrency", "1", "--scheduler", "fifo"]
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nasfcn.cli",
            "search",
            "--space",
            str(micro_space),
            *args,
            *OPTIONS,
            "--storage-path",
            str(tmp_path / "runs"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        store = open_store(db)
        deadline = time.monotonic() + 300
        while _finished(store, "stolen") < 1:
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.5)
        stolen = search_id(store, "stolen")
        with store.session_scope(guarded=False) as session:  # as if the driver had stalled for 2 min
            stale = datetime.now(timezone.utc) - timedelta(minutes=2)
            session.execute(update(SearchLease).values(heartbeat_at=stale))
        acquire_lease(store, stolen, "other:1:taker")
        taken = leaderboard_frame(store, "stolen")
        _, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)
    assert driver.returncode == 2, stderr
    message = " ".join(stderr.split())
    assert f"this driver lost the lease of search 'stolen' (now held by pid {os.getpid()}" in message
    assert "it stopped writing" in message
    assert "Traceback" not in stderr
    lease = current_lease(store, stolen)
    assert lease is not None
    assert lease.owner == "other:1:taker"  # the loser did not release the new holder's lease
    assert searches_frame(store).set_index("name").loc["stolen", "status"] == "running"
    after = leaderboard_frame(store, "stolen")
    pd.testing.assert_frame_equal(after, taken)  # not one write after the lease was taken
