"""The local Ray a driver starts does not outlive it: watchdog, leftovers, and nothing else killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nasfcn.search._ray_session import RECORD, clean_leftovers, session_pids
from nasfcn.store import FINISHED_STATUSES, NoSuchSearchError, leaderboard_frame, open_store

pytestmark = pytest.mark.slow

STUBBORN = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
SLEEPER = "import sys, time; time.sleep(600)"
OPTIONS = ["--data", "shapes", "--image-size", "32", "--train-samples", "32", "--strategy", "random"]


def _gone_within(pids_of, seconds: float) -> list[int]:
    """Poll until ``pids_of()`` is empty or ``seconds`` pass; what is still there."""
    deadline = time.monotonic() + seconds
    left = pids_of()
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = pids_of()
    return left


def test_leftovers_of_a_dead_driver_are_stopped_and_nothing_else(tmp_path: Path) -> None:
    folder = tempfile.mkdtemp(prefix="nasfcn-ray-", dir="/tmp")
    (Path(folder) / "logs").mkdir()
    with open(Path(folder) / "logs" / "worker.out", "w") as log:  # a worker: renamed, logs in the folder
        worker = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=log)
    agent = subprocess.Popen([sys.executable, "-c", STUBBORN, f"--session-dir={folder}/session_1"])
    stranger = subprocess.Popen([sys.executable, "-c", SLEEPER, f"{folder}-other"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        run = tmp_path / "run"
        run.mkdir()
        record = {"folder": folder, "host": socket.gethostname(), "driver_pid": os.getppid()}
        (run / RECORD).write_text(json.dumps(record))
        assert clean_leftovers(run) == []  # its driver still runs: a live session is left alone
        assert worker.poll() is None

        (run / RECORD).write_text(json.dumps({**record, "driver_pid": dead.pid}))
        assert sorted(clean_leftovers(run)) == sorted([worker.pid, agent.pid])
        assert worker.wait(30) is not None
        assert agent.wait(30) is not None  # it ignored SIGTERM: SIGKILL came after the grace period
        assert stranger.poll() is None  # a similar name is not the session's
        assert not (run / RECORD).exists()
    finally:
        for process in (worker, agent, stranger):
            if process.poll() is None:
                process.kill()
                process.wait(30)


def _finished(db: str, name: str) -> int:
    try:
        return int(leaderboard_frame(open_store(db), name)["status"].isin(FINISHED_STATUSES).sum())
    except NoSuchSearchError:
        return 0


def test_the_ray_of_a_killed_driver_goes_away_and_the_search_resumes(
    tmp_path: Path, micro_space: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'nasfcn.db'}"
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        "NASFCN_DB": db,
    }
    runs = tmp_path / "runs"
    args = [
        *[sys.executable, "-m", "nasfcn.cli", "search", "--space", str(micro_space), "--name", "killed"],
        *["--trials", "4", "--epochs", "3", "--concurrency", "1", "--scheduler", "fifo"],
        *["--storage-path", str(runs), *OPTIONS],
    ]
    driver = subprocess.Popen(
        args,
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while _finished(db, "killed") < 1:
            assert driver.poll() is None, "the search ended early"
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.5)
        folder = json.loads((runs / RECORD).read_text())["folder"]
        assert len(folder) < 40  # Ray's socket paths inside it stay short
        assert len(session_pids(folder)) >= 3  # gcs, raylet, agents, workers, ...
        driver.send_signal(signal.SIGKILL)  # the driver alone: its Ray is not in the blast
        driver.wait(30)
        assert _gone_within(lambda: session_pids(folder), 60) == []
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)

    resumed = subprocess.run(
        [*args, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr  # a dead driver here: taken over at once
    assert _finished(db, "killed") == 4
    second = json.loads((runs / RECORD).read_text())["folder"]
    assert second != folder
    assert _gone_within(lambda: session_pids(second), 60) == []  # a clean exit leaves nothing either
