"""The search log when its disk is full: one line that says so, not an error per message."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nasfcn.search._driver import log_to_file

FULL = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux) to fail writes with ENOSPC")
def test_a_search_log_on_a_full_disk_says_so_once_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("nasfcn.search")
    with log_to_file(FULL):
        for number in range(5):
            log.info("trial %d completed", number)
            log.warning("database unavailable, retry %d", number)
    err = capsys.readouterr().err
    assert "Logging error" not in err
    assert "Traceback" not in err
    assert err.splitlines() == [
        "search log /dev/full: cannot write ([Errno 28] No space left on device); no more log messages"
    ]
