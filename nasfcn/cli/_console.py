"""Where the commands write: the consoles, the one-line refusal and the exit codes."""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

# Piped output (logs, CI, tests) gets wide tables instead of rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 1  # the machine stopped the command (database unreachable, disk full)
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` as it is on stderr and return the exit to raise (``raise fail(...)``)."""
    err_console.print(message, markup=False, highlight=False)
    return typer.Exit(code)
