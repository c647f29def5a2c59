"""The run's log file: nasfcn's and Ray's messages for the length of a search or benchmark."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.data")


@contextmanager
def ray_logs_to_file() -> Iterator[None]:
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
