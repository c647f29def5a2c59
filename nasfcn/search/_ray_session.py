"""The local Ray a driver starts dies with it, even when the driver is killed with SIGKILL.

Each driver gives its local Ray a folder of its own (short: Ray's unix socket paths inside
it must stay under ~100 characters). Every process of that Ray names the folder on its
command line or holds a log file in it, which is how we prove a process is ours before
killing it. Two safety nets: a watchdog process (this file, run as a script: standard
library only) that kills the session when the driver's end of a pipe closes, and a record
in the run folder so the next driver of the same search kills what the last one left.
A cluster given with ``--ray-address`` is never touched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECORD = "ray-session.json"  # in the run folder
_MAX_BASE = 40  # longest temp folder that leaves Ray room for session_<date>_<pid>/sockets/...
_GRACE_S = 5.0  # between SIGTERM and SIGKILL


def session_folder() -> str:
    """A new, short, private folder for one local Ray (under ``RAY_TMPDIR`` when that is short)."""
    base = os.environ.get("RAY_TMPDIR") or "/tmp"
    if len(base) > _MAX_BASE or not Path(base).is_dir():
        base = "/tmp"
    return tempfile.mkdtemp(prefix="nasfcn-ray-", dir=base)


def session_pids(folder: str) -> list[int]:
    """Processes that provably belong to the Ray session in ``folder`` (Linux; none elsewhere).

    A process is the session's when its command line names the folder or one of its open
    files lies in it (Ray's workers rename themselves but log into the session folder).
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    named = re.compile(re.escape(folder.rstrip("/")) + r"(?![\w.-])")
    mine = {os.getpid()}
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if named.search(command) or any(named.match(target) for target in _open_files(entry)):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return sorted(found)


def _open_files(entry: Path) -> list[str]:
    targets = []
    for fd in (entry / "fd").iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return targets


def kill_session(folder: str, grace_s: float = _GRACE_S) -> list[int]:
    """SIGTERM the session's processes, SIGKILL what is left after ``grace_s``; returns the pids found."""
    found = session_pids(folder)
    _signal(found, signal.SIGTERM)
    left = set(found)
    deadline = time.monotonic() + grace_s
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left &= set(session_pids(folder))
    _signal(session_pids(folder), signal.SIGKILL)  # Ray's agents may ignore SIGTERM
    return found


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            continue


def start_watchdog(folder: str) -> subprocess.Popen:
    """A process that kills the session once this driver is gone (its stdin pipe closes)."""
    return subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).resolve()), folder, str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # survives a kill of the driver's process group, ignores its Ctrl-C
        close_fds=True,
    )


def record_session(run_folder: Path, folder: str, watchdog: subprocess.Popen) -> None:
    """Leave where the next driver of this search finds the session, should this one be killed."""
    record = {
        "folder": folder,
        "host": socket.gethostname(),
        "driver_pid": os.getpid(),
        "watchdog": watchdog.pid,
    }
    (run_folder / RECORD).write_text(json.dumps(record), encoding="utf-8")


def clean_leftovers(run_folder: Path) -> list[int]:
    """Kill what a dead earlier driver of this search left of its local Ray; returns the pids.

    Only a session recorded on this host by a driver whose process is gone is touched.
    """
    path = run_folder / RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        folder, host, driver = str(record["folder"]), str(record["host"]), int(record["driver_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if host != socket.gethostname() or driver == os.getpid() or _alive(driver):
        return []
    killed = kill_session(folder)
    path.unlink(missing_ok=True)
    return killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(folder: str, driver: int) -> None:
    """Wait until the driver (our parent) is gone, then stop what is left of its Ray session.

    Its end of our stdin closes when it exits or is killed; it may still be finishing its
    exit then (with files open in the session folder), so we also wait to be orphaned.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    while os.getppid() == driver:
        time.sleep(0.2)
    kill_session(folder)


if __name__ == "__main__":
    _watch(sys.argv[1], int(sys.argv[2]))
