"""The Plotly leaderboard: compare a search's candidates as one HTML file or a live web view.

It reads the database only through ``nasfcn.store``'s query functions (pandas frames):
``data`` loads one search (for a benchmark, its statistics over seeds), ``figures`` draws it
(pure frame -> figure functions), ``table`` lays out the ranked table, ``static`` writes the
self-contained HTML file, and ``app`` (Dash, imported on demand: ``from leaderboard.app
import create_app``) serves it live.
"""

from leaderboard.data import (
    BenchmarkBoard,
    Board,
    board_message,
    export_command,
    filter_trials,
    load_benchmark_board,
    load_board,
    load_view,
)
from leaderboard.static import render, write_leaderboard

__all__ = [
    "BenchmarkBoard",
    "Board",
    "board_message",
    "export_command",
    "filter_trials",
    "load_benchmark_board",
    "load_board",
    "load_view",
    "render",
    "write_leaderboard",
]
