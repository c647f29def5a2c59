"""Searches as separate processes: killed and resumed, and on a two-node Ray cluster."""

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

from nasfcn.search._liveness import LOCAL_LOST
from nasfcn.search._ray_session import RECORD, session_pids
from nasfcn.store import FINISHED_STATUSES, leaderboard_frame, open_store, searches_frame

pytestmark = pytest.mark.slow

NASFCN = [sys.executable, "-m", "nasfcn.cli"]
COMMON = ["--data", "shapes", "--image-size", "32", "--train-samples", "32", "--strategy", "random"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        RAY_TMPDIR=tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        NASFCN_DB=f"sqlite:///{tmp_path / 'nasfcn.db'}",
        COLUMNS="200",
    )
    return env


def _fifo_search(
    space: Path, tmp_path: Path, name: str, *, trials: int, epochs: int, concurrency: int | None = None
) -> list[str]:
    """The command line of a FIFO search ``name`` (no early stopping), its runs under ``tmp_path``."""
    limit = ["--concurrency", str(concurrency)] if concurrency else []
    return [
        *NASFCN,
        "search",
        "--space",
        str(space),
        "--name",
        name,
        "--trials",
        str(trials),
        "--epochs",
        str(epochs),
        "--scheduler",
        "fifo",
        *limit,
        "--storage-path",
        str(tmp_path / "runs"),
        *COMMON,
    ]


def _finished(db: str, name: str) -> int:
    try:
        board = leaderboard_frame(open_store(db, create=False), name)
    except Exception:
        return 0
    return int(board["status"].isin(FINISHED_STATUSES).sum())


def _start_until_finished(args: list[str], env: dict[str, str], cwd: Path, name: str, count: int, **output):
    """Start the search CLI in its own session; return once ``count`` of its trials finished."""
    driver = subprocess.Popen(args, env=env, cwd=cwd, start_new_session=True, **output)
    deadline = time.monotonic() + 300
    while _finished(env["NASFCN_DB"], name) < count:
        assert driver.poll() is None, f"the search ended before {count} trials finished"
        assert time.monotonic() < deadline, f"{count} trials did not finish in time"
        time.sleep(0.5)
    return driver


def test_killed_search_resumes_without_losing_or_duplicating(tmp_path: Path, micro_space: Path) -> None:
    env = _env(tmp_path)
    db = env["NASFCN_DB"]
    args = _fifo_search(micro_space, tmp_path, "crash", trials=4, epochs=3, concurrency=1)
    driver = _start_until_finished(
        args, env, tmp_path, "crash", 2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started: a crash
    driver.wait(30)
    store = open_store(db)
    before = leaderboard_frame(store, "crash")
    done_before = before[before["status"].isin(FINISHED_STATUSES)].set_index("number")
    assert len(done_before) >= 2

    resumed = subprocess.run(
        [*args, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = leaderboard_frame(store, "crash")
    assert after["number"].is_unique
    finished = after[after["status"].isin(FINISHED_STATUSES)].set_index("number")
    assert len(finished) == 4  # the requested number, no more
    for number, row in done_before.iterrows():  # finished trials kept as they were
        assert finished.loc[number, "trial_id"] == row["trial_id"]
        assert finished.loc[number, "best_miou"] == row["best_miou"]
        assert finished.loc[number, "epochs_trained"] == row["epochs_trained"]
    assert set(after["status"]) <= {*FINISHED_STATUSES, "interrupted"}
    assert "resuming:" in resumed.stdout


def test_ctrl_c_stops_cleanly_and_marks_running_trials(tmp_path: Path, micro_space: Path) -> None:
    env = _env(tmp_path)
    db = env["NASFCN_DB"]
    args = _fifo_search(micro_space, tmp_path, "stop", trials=8, epochs=4)
    driver = _start_until_finished(
        args, env, tmp_path, "stop", 1, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    driver.send_signal(signal.SIGINT)  # what Ctrl-C sends to the driver
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output
    assert "interrupted" in output
    assert "--resume --name stop" in output
    store = open_store(db)
    board = leaderboard_frame(store, "stop")
    assert "running" not in set(board["status"])
    assert len(board) < 8
    from nasfcn.store import searches_frame

    assert searches_frame(store).set_index("name").loc["stop", "status"] == "interrupted"


def _raylet(run_folder: Path) -> tuple[int, Path]:
    """The pid of the raylet of the local Ray the search in ``run_folder`` started, and its logs."""
    folder = json.loads((run_folder / RECORD).read_text())["folder"]
    for pid in session_pids(folder):
        try:
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if program.endswith(b"/raylet"):
            return pid, Path(folder) / "session_latest" / "logs"
    raise AssertionError(f"no raylet among the processes of {folder}")


def _until_running(db: str, name: str) -> None:
    deadline = time.monotonic() + 120
    while "running" not in set(leaderboard_frame(open_store(db, create=False), name)["status"]):
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.2)


def _overload(raylet: int, logs: Path) -> None:
    """Freeze the raylet until the GCS declares its node dead (what an overloaded machine did)."""
    os.kill(raylet, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 120
        while "Node is dead because the health check failed" not in _text(logs / "gcs_server.out"):
            assert time.monotonic() < deadline, "the GCS did not declare the frozen raylet's node dead"
            time.sleep(0.5)
    finally:
        os.kill(raylet, signal.SIGCONT)  # it learns it was declared dead, and exits


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def test_a_search_whose_local_ray_node_is_declared_dead_stops_and_resumes(
    tmp_path: Path, micro_space: Path
) -> None:
    """Once the GCS declared the local node dead, Ray Tune waited forever for its resources."""
    env = _env(tmp_path)
    # Short health checks (the driver leaves keys set in the environment alone), so a frozen
    # raylet is declared dead within seconds instead of the local Ray's ~2 min of silence.
    checks = {
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_timeout_ms": "3000",
        "RAY_health_check_failure_threshold": "3",
    }
    db = env["NASFCN_DB"]
    args = _fifo_search(micro_space, tmp_path, "dead", trials=6, epochs=3, concurrency=1)
    driver = _start_until_finished(
        args,
        {**env, **checks},
        tmp_path,
        "dead",
        2,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _until_running(db, "dead")  # a trial dies with the node: interrupted, not failed
        _overload(*_raylet(tmp_path / "runs"))
        output, _ = driver.communicate(timeout=240)  # before the fix: no end
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(30)
    assert driver.returncode == 1, output
    assert LOCAL_LOST in output, output
    assert "--resume --name dead" in output
    store = open_store(db)
    assert searches_frame(store).set_index("name").loc["dead", "status"] == "interrupted"
    before = leaderboard_frame(store, "dead")
    assert set(before["status"]) <= {*FINISHED_STATUSES, "interrupted"} - {"failed"}
    done_before = before[before["status"].isin(FINISHED_STATUSES)].set_index("number")
    assert len(done_before) >= 2

    resumed = subprocess.run(
        [*args, "--resume"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = leaderboard_frame(store, "dead")
    assert after["number"].is_unique
    finished = after[after["status"].isin(FINISHED_STATUSES)].set_index("number")
    assert len(finished) == 6 == len(after)  # every trial exactly once
    for number, row in done_before.iterrows():  # finished trials kept as they were
        assert finished.loc[number, "trial_id"] == row["trial_id"]
        assert finished.loc[number, "best_miou"] == row["best_miou"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_search_on_a_two_node_ray_cluster(tmp_path: Path, micro_space: Path) -> None:
    env = _env(tmp_path)
    port = _free_port()
    ray = str(Path(sys.executable).parent / "ray")
    common = ["--num-cpus", "1", "--disable-usage-stats", "--block"]
    head = subprocess.Popen(
        [
            ray,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            *common,
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        time.sleep(8)
        worker = subprocess.Popen(
            [ray, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(8)
        result = subprocess.run(
            [
                *NASFCN,
                "search",
                "--space",
                str(micro_space),
                "--name",
                "cluster",
                "--trials",
                "4",
                "--epochs",
                "1",
                "--ray-address",
                f"127.0.0.1:{port}",
                "--storage-path",
                str(tmp_path / "runs"),
                *COMMON,
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        board = leaderboard_frame(open_store(env["NASFCN_DB"]), "cluster")
        assert set(board["status"]) <= {"completed", "stopped_early"}
        assert len(board) == 4
    finally:
        for process in (worker, head):
            if process is None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
